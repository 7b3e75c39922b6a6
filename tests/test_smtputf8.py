"""SMTPUTF8 (RFC 6531) and IDNA end to end against aiosmtpd, with and without SMTPUTF8 offered
(`enable_SMTPUTF8`). The command bytes for each case are tested in Rust (engine/smtputf8_tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.extended import ExtendedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

BODY = "Subject: idn\n\nhello\n"


@pytest.fixture
def extended() -> Iterator[Callable[..., ExtendedServer]]:
    servers: list[ExtendedServer] = []

    def start(**kwargs: Any) -> ExtendedServer:
        server = ExtendedServer(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def send(server: ExtendedServer, from_: str, rcpt: list[str]) -> Any:
    return mailpump.send(from_=from_, rcpt=rcpt, source=BODY, server=server.host,
                         port=server.port, tls="none")  # fmt: skip


def test_domains_become_a_labels_without_smtputf8(extended: Callable[..., ExtendedServer]) -> None:
    server = extended(dsn=False, smtputf8=False)
    send(server, "s@bücher.example", ["r@bücher.example", "t@example.test"])
    [t] = server.transactions
    assert t.mail_from == "s@xn--bcher-kva.example"
    assert t.rcpt_tos == ["r@xn--bcher-kva.example", "t@example.test"]
    assert "SMTPUTF8" not in t.mail_options


def test_utf8_addresses_as_they_are_with_smtputf8(extended: Callable[..., ExtendedServer]) -> None:
    server = extended(dsn=False, smtputf8=True)
    send(server, "s@example.test", ["zoë@bücher.example"])
    [t] = server.transactions
    assert t.rcpt_tos == ["zoë@bücher.example"]
    assert "SMTPUTF8" in t.mail_options


def test_a_utf8_local_part_without_smtputf8_fails_before_the_message(
    extended: Callable[..., ExtendedServer],
) -> None:
    server = extended(dsn=False, smtputf8=False)
    with pytest.raises(ValueError, match="SMTPUTF8"):
        send(server, "s@example.test", ["zoë@example.test"])
    assert server.transactions == []
