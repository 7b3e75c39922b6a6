"""LMTP (RFC 2033) against aiosmtpd's LMTP server, over TCP and over a Unix-domain socket: LHLO,
one verdict per recipient in `SendResult.verdicts`, the errors when no recipient got the message
or the verdicts stop early, `Session` and `Pool` with `lmtp=True`, and the pool retrying
deferred recipients alone. The scripted server only for the lost connection between verdicts."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers.lmtp import LmtpServer
from servers.recording import RecordingServer
from servers.scripted import Fault, ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

FROM = "sender@example.test"
A, B, C = "a@example.test", "b@example.test", "c@example.test"


@pytest.fixture
def lmtp_server() -> Iterator[Any]:
    """Factory: `lmtp_server(path=None, verdicts=None)`; every server stopped after the test."""
    servers: list[LmtpServer] = []

    def start(
        path: Path | None = None,
        verdicts: dict[str, list[str]] | None = None,
        smtputf8: bool = True,
    ) -> Any:
        server = LmtpServer(path=path, verdicts=verdicts, smtputf8=smtputf8)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def socket_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A path for a Unix-domain socket: short, since such paths are limited to about 100
    bytes."""
    return Path(tmp_path_factory.mktemp("lmtp")) / "lmtp.sock"


def message(subject: str) -> Any:
    return mailpump.message(
        {"headers": {"from": FROM, "to": A, "subject": subject}, "body": "Delivered locally.\n"}
    )


def test_send_over_tcp_gets_a_verdict_per_recipient(lmtp_server: Any) -> None:
    server = lmtp_server()
    result = mailpump.send(
        {"from": FROM, "rcpt": [A, B], "source": message("over TCP")},
        server=server.host,
        port=server.port,
        lmtp=True,
        tls="none",
        timeout=10,
    )
    assert result.accepted == [A, B]
    assert result.refused == {}
    assert list(result.verdicts) == [A, B]
    assert all(r.code == 250 for r in result.verdicts.values())
    assert result.verdicts[B].enhanced == "2.0.0" and B in result.verdicts[B].text
    (received,) = server.messages
    assert received.rcpt_tos == [A, B]
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert parsed["Subject"] == "over TCP"
    assert parsed.get_content() == "Delivered locally.\r\n"


def test_send_over_a_unix_socket(lmtp_server: Any, socket_path: Path) -> None:
    server = lmtp_server(path=socket_path)
    for spelling in (str(socket_path), f"unix:{socket_path}"):
        result = mailpump.send(
            {"from": FROM, "rcpt": A, "source": message(spelling)},
            server=spelling,
            lmtp=True,
            timeout=10,
        )
        assert result.accepted == [A]
    subjects = [
        email.message_from_bytes(m.data, policy=email.policy.default)["Subject"]
        for m in server.messages
    ]
    assert subjects == [str(socket_path), f"unix:{socket_path}"]


def test_a_session_over_a_unix_socket_sends_many(lmtp_server: Any, socket_path: Path) -> None:
    server = lmtp_server(path=socket_path)
    with mailpump.open(server=str(socket_path), lmtp=True, timeout=10) as session:
        for i in range(3):
            result = session.send({"from": FROM, "rcpt": [A, C], "source": message(f"m{i}")})
            assert list(result.verdicts) == [A, C]
        # The step-by-step DATA cannot read one verdict per recipient: refused before a byte.
        session.mail(FROM)
        session.rcpt(A)
        with pytest.raises(ValueError, match="once per recipient"):
            session.data(b"Subject: x\r\n\r\ny\r\n")
    assert len(server.messages) == 3
    assert len({m.peer for m in server.messages}) == 1


def test_mixed_verdicts(lmtp_server: Any) -> None:
    server = lmtp_server(
        verdicts={B: ["452 4.2.2 <b> mailbox full"], C: ["550 5.1.1 <c> no such user"]}
    )
    result = mailpump.send(
        {"from": FROM, "rcpt": [A, B, C], "source": message("mixed")},
        server=server.host,
        port=server.port,
        lmtp=True,
        tls="none",
        timeout=10,
    )
    assert result.accepted == [A]
    assert {a: r.code for a, r in result.verdicts.items()} == {A: 250, B: 452, C: 550}
    assert {a: r.code for a, r in result.refused.items()} == {B: 452, C: 550}
    assert result.refused[B].transient and result.refused[C].permanent
    assert result.refused[B].enhanced == "4.2.2"
    assert result.reply.code == 250


def test_no_recipient_delivered_raises_with_each_verdict(lmtp_server: Any) -> None:
    server = lmtp_server(verdicts={A: ["451 4.3.0 try later"], B: ["554 5.7.1 refused"]})
    with pytest.raises(mailpump.SMTPDataRefused) as caught:
        mailpump.send(
            {"from": FROM, "rcpt": [A, B], "source": message("refused")},
            server=server.host,
            port=server.port,
            lmtp=True,
            tls="none",
            timeout=10,
        )
    error = caught.value
    assert error.kind == "message-refused"
    assert error.transient  # A may be sent it again later
    assert (error.code, error.enhanced) == (451, "4.3.0")
    assert {a: r.code for a, r in error.verdicts.items()} == {A: 451, B: 554}
    assert set(error.refused) == {A, B}
    assert f"{A}: 451" in str(error) and f"{B}: 554" in str(error)


def test_lost_between_verdicts(scripted: Any) -> None:
    server: ScriptedServer = scripted(
        eod_replies={1: "250 2.0.0 <a> delivered"}, after_eod=Fault.DISCONNECT
    )
    with pytest.raises(mailpump.SMTPOutcomeUnknown) as caught:
        mailpump.send(
            {"from": FROM, "rcpt": [A, B, C], "source": b"Subject: x\r\n\r\nbody\r\n"},
            server="127.0.0.1",
            port=server.port,
            lmtp=True,
            tls="none",
            timeout=10,
        )
    error = caught.value
    assert error.kind == "outcome-unknown" and not error.transient
    assert {a: r.code for a, r in error.verdicts.items()} == {A: 250}
    assert error.unknown == [B, C]
    assert "whether b@example.test, c@example.test received it is unknown" in str(error)
    (conn,) = server.finished()
    assert conn.commands[0] == b"LHLO localhost"


def test_pool_retries_deferred_recipients_alone(lmtp_server: Any) -> None:
    server = lmtp_server(verdicts={B: ["451 4.2.0 <b> mailbox locked", "250 2.0.0 <b> saved"]})
    with mailpump.Pool(
        server.host, server.port, lmtp=True, tls="none", timeout=10, backoff=0.001
    ) as pool:
        result = pool.send({"from": FROM, "rcpt": [A, B, C], "source": message("retried")})
        stats = pool.stats
    assert sorted(result.accepted) == [A, B, C]
    assert {a: r.code for a, r in result.verdicts.items()} == {A: 250, C: 250, B: 250}
    assert result.refused == {}
    # The second attempt went to B alone: nobody got the message twice.
    assert [m.rcpt_tos for m in server.messages] == [[A, B, C], [B]]
    assert stats.retried == 1


def test_pool_never_retries_a_permanent_verdict(lmtp_server: Any) -> None:
    server = lmtp_server(verdicts={B: ["550 5.1.1 <b> no such user"]})
    with mailpump.Pool(
        server.host, server.port, lmtp=True, tls="none", timeout=10, backoff=0.001
    ) as pool:
        result = pool.send({"from": FROM, "rcpt": [A, B], "source": message("final")})
    assert result.accepted == [A]
    assert result.refused[B].code == 550
    assert len(server.messages) == 1


@pytest.fixture
def smtp_without_smtputf8() -> Iterator[RecordingServer]:
    server = RecordingServer(smtputf8=False)
    yield server
    server.stop()


def test_accepted_keeps_the_address_as_given(
    smtp_without_smtputf8: RecordingServer, lmtp_server: Any
) -> None:
    """An international domain goes out as IDNA A-labels (the server offers no SMTPUTF8) and is
    reported as the caller wrote it, over SMTP and LMTP alike."""
    unicode_rcpt = "anna@bücher.example"
    lmtp = lmtp_server(smtputf8=False)
    for server, lmtp_mode in ((smtp_without_smtputf8, False), (lmtp, True)):
        result = mailpump.send(
            {"from": FROM, "rcpt": [unicode_rcpt], "source": b"Subject: x\r\n\r\ny\r\n"},
            server=server.host,
            port=server.port,
            lmtp=lmtp_mode,
            tls="none",
            timeout=10,
        )
        assert result.accepted == [unicode_rcpt]
        if lmtp_mode:
            assert list(result.verdicts) == [unicode_rcpt]
        (received,) = server.messages
        assert received.rcpt_tos == ["anna@xn--bcher-kva.example"]


def test_options_are_checked_before_connecting(socket_path: Path) -> None:
    with pytest.raises(TypeError, match="lmtp must be True or False"):
        mailpump.open(server="127.0.0.1", lmtp="yes")
    for tls in ("starttls", "implicit"):
        with pytest.raises(ValueError, match="TLS is not used over a Unix-domain socket"):
            mailpump.send(
                {"from": FROM, "rcpt": A, "source": b"x"},
                server=str(socket_path),
                lmtp=True,
                tls=tls,
            )
    with pytest.raises(mailpump.SMTPConnectError) as caught:
        mailpump.send(
            {"from": FROM, "rcpt": A, "source": b"x"}, server=str(socket_path), lmtp=True
        )
    assert caught.value.kind == "connection-refused"
    assert f"the Unix socket {socket_path}" in str(caught.value)


def test_cli_lmtp_over_a_unix_socket(
    lmtp_server: Any, socket_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from mailpump import cli
    from mailpump.__main__ import main

    server = lmtp_server(path=socket_path, verdicts={B: ["452 4.2.2 <b> mailbox full"]})
    code = main(["send", "--lmtp", "--server", str(socket_path), "--from", FROM,
                 "--to", A, "--to", B, "--subject", "cli", "--body", "hi"])  # fmt: skip
    out, err = capfd.readouterr()
    assert code == cli.EXIT_PARTIAL
    assert f"delivered: {A}: 250" in out
    assert f"refused: {B}: 452" in err
    (received,) = server.messages
    assert email.message_from_bytes(received.data, policy=email.policy.default)["Subject"] == "cli"


def test_send_many_matches_each_verdict_to_its_message(lmtp_server: Any) -> None:
    """Pipelined: each message's commands go out with the previous one's end of data, and each
    message's verdicts stay with it and its recipients."""
    server = lmtp_server(verdicts={B: ["250 2.0.0 ok", "451 4.2.0 <b> locked", "250 2.0.0 ok"]})
    with mailpump.open(server.host, server.port, lmtp=True, tls="none", timeout=10) as session:
        outcomes = list(
            session.send_many(
                {"from": FROM, "rcpt": [A, B], "source": message(f"m{i}")} for i in range(3)
            )
        )
    codes = [{a: r.code for a, r in o.verdicts.items()} for o in outcomes]
    assert codes == [{A: 250, B: 250}, {A: 250, B: 451}, {A: 250, B: 250}]
    assert [o.accepted for o in outcomes] == [[A, B], [A], [A, B]]
    subjects = [email.message_from_bytes(m.data)["Subject"] for m in server.messages]
    assert subjects == ["m0", "m1", "m2"]
