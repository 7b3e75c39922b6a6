"""DSN (RFC 3461) end to end against aiosmtpd taught the parameters (servers/extended.py): what
the server records on MAIL and each RCPT, the choice when it does not offer DSN, and the
ValueError before connecting for bad values. The wire encoding (xtext, every parameter) is
tested in Rust."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.extended import ExtendedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

BODY = "Subject: dsn\n\nhello\n"


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


def send(server: ExtendedServer, **kw: Any) -> Any:
    return mailpump.send(
        from_="s@example.test", rcpt=["a@example.test", "b@example.test"], source=BODY,
        server=server.host, port=server.port, tls="none", **kw,
    )  # fmt: skip


def test_parameters_reach_the_server(extended: Callable[..., ExtendedServer]) -> None:
    server = extended()
    result = send(server, dsn={
        "ret": "hdrs", "envid": "order 42", "notify": ["failure", "delay"],
        "recipients": {"b@example.test": {"notify": "never", "orcpt": "list+b@example.test"}},
    })  # fmt: skip
    assert result.accepted == ["a@example.test", "b@example.test"]
    [t] = server.transactions
    assert "RET=HDRS" in t.mail_options
    assert "ENVID=ORDER+2042" in t.mail_options  # aiosmtpd upper-cases; the client wrote "order+2042"
    assert t.rcpt_options == [
        ["NOTIFY=FAILURE,DELAY"],
        ["NOTIFY=NEVER", "ORCPT=RFC822;LIST+2BB@EXAMPLE.TEST"],
    ]


def test_the_same_through_a_session(extended: Callable[..., ExtendedServer]) -> None:
    server = extended()
    with mailpump.open(server.host, server.port, tls="none") as session:
        session.send(from_="s@example.test", rcpt="a@example.test", source=BODY,
                     dsn={"notify": "success"})  # fmt: skip
        outcomes = list(session.send_many([
            {"from": "s@example.test", "rcpt": "a@example.test", "source": BODY,
             "dsn": {"ret": "full"}},
            {"from": "s@example.test", "rcpt": "a@example.test", "source": BODY},
        ]))  # fmt: skip
    assert all(isinstance(o, mailpump.SendResult) for o in outcomes)
    first, second, third = server.transactions
    assert first.rcpt_options == [["NOTIFY=SUCCESS"]]
    assert "RET=FULL" in second.mail_options
    assert not any(o.startswith(("RET", "ENVID")) for o in third.mail_options)
    assert third.rcpt_options == [[]]


def test_not_offered_fails_before_sending(extended: Callable[..., ExtendedServer]) -> None:
    server = extended(dsn=False)
    with pytest.raises(ValueError, match="DSN"):
        send(server, dsn={"notify": "failure"})
    assert server.transactions == []


def test_optional_drops_the_request(extended: Callable[..., ExtendedServer]) -> None:
    server = extended(dsn=False)
    result = send(server, dsn={"notify": "failure", "envid": "x", "optional": True})
    assert result.accepted == ["a@example.test", "b@example.test"]
    [t] = server.transactions
    assert t.rcpt_options == [[], []]
    assert not any(o.startswith(("RET", "ENVID")) for o in t.mail_options)


@pytest.mark.parametrize(
    ("dsn", "error"),
    [
        ({"notify": ["never", "failure"]}, ValueError),
        ({"notify": []}, ValueError),
        ({"notify": "sometimes"}, ValueError),
        ({"ret": "body"}, ValueError),
        ({"envid": "x" * 101}, ValueError),
        ({"envid": "caf\u00e9"}, ValueError),
        ({"envid": "a\r\nRSET"}, ValueError),
        ({"recipients": {"stranger@example.test": {"notify": "never"}}}, ValueError),
        ({"recipients": {"a@example.test": {"orcpt": "a b@example.test"}}}, ValueError),
        ({"colour": "blue"}, TypeError),
        ({"recipients": {"a@example.test": {"ret": "full"}}}, TypeError),
        ({"ret": 1}, TypeError),
        ("failure", TypeError),
    ],
)
def test_bad_values_fail_before_connecting(dsn: Any, error: type[Exception]) -> None:
    # Port 9 on loopback: nothing listens, so reaching the network would raise a connect error.
    with pytest.raises(error):
        mailpump.send(from_="s@example.test", rcpt="a@example.test", source=BODY,
                      server="127.0.0.1", port=9, tls="none", dsn=dsn)  # fmt: skip


def test_step_by_step_mail_and_rcpt_carry_the_parameters(
    extended: Callable[..., ExtendedServer],
) -> None:
    server = extended()
    with mailpump.open(server.host, server.port, tls="none") as session:
        session.mail("s@example.test", ret="hdrs", envid="step 1")
        session.rcpt("a@example.test", notify=["success", "failure"])
        session.rcpt("b@example.test", notify="never", orcpt="old@example.test")
        session.rcpt("c@example.test")
        session.data(BODY)
    [t] = server.transactions
    assert "RET=HDRS" in t.mail_options
    assert "ENVID=STEP+201" in t.mail_options
    assert t.rcpt_options == [
        ["NOTIFY=SUCCESS,FAILURE"],
        ["NOTIFY=NEVER", "ORCPT=RFC822;OLD@EXAMPLE.TEST"],
        [],
    ]


def test_step_by_step_refuses_before_a_byte_when_not_offered(
    extended: Callable[..., ExtendedServer],
) -> None:
    server = extended(dsn=False)
    with mailpump.open(server.host, server.port, tls="none") as session:
        with pytest.raises(ValueError, match="DSN"):
            session.mail("s@example.test", envid="x")
        # The session is still usable, and the refused MAIL never reached the server.
        session.mail("s@example.test")
        with pytest.raises(ValueError, match="DSN"):
            session.rcpt("a@example.test", notify="failure")
        session.rcpt("a@example.test")
        session.data(BODY)
    [t] = server.transactions
    assert t.rcpt_options == [[]]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.mail("s@example.test", ret="body"), ValueError),
        (lambda s: s.mail("s@example.test", envid="a\r\nRSET"), ValueError),
        (lambda s: s.mail("s@example.test", envid=7), TypeError),
        (lambda s: s.rcpt("a@example.test", notify=["never", "delay"]), ValueError),
        (lambda s: s.rcpt("a@example.test", orcpt=""), ValueError),
    ],
)
def test_step_by_step_bad_values(
    extended: Callable[..., ExtendedServer], call: Callable[[Any], object], error: type[Exception]
) -> None:
    server = extended()
    with mailpump.open(server.host, server.port, tls="none") as session:
        with pytest.raises(error):
            call(session)
    assert server.transactions == []
