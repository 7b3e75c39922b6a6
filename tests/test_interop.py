"""The Python conventions around the core: progress callbacks, `email` interop, `logging`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage

import mailpump
import pytest
from mailpump import smtp
from servers.recording import RecordingServer
from servers.scripted import ScriptedServer

FROM = "sender@example.com"
TO = "rcpt@example.com"


class Abort(Exception):
    """Raised by a progress callback to stop a send."""


def raw_message(size: int) -> bytes:
    """A plain message of about `size` bytes: CRLF lines, no leading dots (sent as given)."""
    line = b"x" * 998 + b"\r\n"
    return b"Subject: big\r\n\r\n" + line * (size // len(line) + 1)


def test_send_reports_progress_up_to_the_known_total(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted()
    raw = raw_message(1_500_000)
    calls: list[tuple[int, int | None]] = []
    mailpump.send(from_=FROM, rcpt=TO, source=raw, server=server.host, port=server.port,
                  tls="none", progress=lambda sent, total: calls.append((sent, total)))  # fmt: skip
    assert len(calls) >= 2
    sents = [sent for sent, _ in calls]
    assert sents == sorted(sents)
    assert calls[-1] == (len(raw), len(raw))
    assert all(total == len(raw) for _, total in calls)
    [conn] = server.finished()
    assert conn.transactions[0].complete


def test_progress_total_is_none_for_a_message_being_encoded(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    calls: list[tuple[int, int | None]] = []
    msg = mailpump.message({"headers": {"subject": "s"}, "body": "x" * 600_000})
    mailpump.send({"from": FROM, "rcpt": TO, "source": msg, "server": server.host,
                   "port": server.port, "tls": "none",
                   "progress": lambda s, t: calls.append((s, t))})  # fmt: skip
    [received] = server.messages
    assert calls and calls[-1][1] is None
    # The message's bytes as the source produced them (the server removed only the end mark).
    assert calls[-1][0] == len(received.data)


def test_a_raising_progress_callback_aborts_cleanly(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted()

    def stop(sent: int, total: int | None) -> None:
        raise Abort(f"stop at {sent}")

    with pytest.raises(Abort):
        mailpump.send(from_=FROM, rcpt=TO, source=raw_message(1_000_000), server=server.host,
                      port=server.port, tls="none", progress=stop)  # fmt: skip
    [conn] = server.finished()
    # No end-of-data mark: the server never gets a message it could deliver.
    assert [t.complete for t in conn.transactions] in ([], [False])


def test_a_raising_progress_callback_stops_even_a_small_message(
    scripted: Callable[..., ScriptedServer],
) -> None:
    # The last report comes before the last write, so even a one-chunk message can be stopped.
    server = scripted()

    def stop(sent: int, total: int | None) -> None:
        raise Abort

    with pytest.raises(Abort):
        mailpump.send(from_=FROM, rcpt=TO, source=b"Subject: s\r\n\r\nhi\r\n",
                      server=server.host, port=server.port, tls="none", progress=stop)  # fmt: skip
    [conn] = server.finished()
    assert all(not t.complete for t in conn.transactions)


def test_session_send_and_data_take_progress(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    seen: list[str] = []
    with mailpump.open(server.host, server.port, tls="none") as session:
        session.greet()
        session.send({"from": FROM, "rcpt": TO, "source": raw_message(10_000),
                      "progress": lambda s, t: seen.append("send")})  # fmt: skip
        session.mail(FROM)
        session.rcpt(TO)
        session.data(raw_message(10_000), progress=lambda s, t: seen.append("data"))
        with pytest.raises(Abort):
            session.send(from_=FROM, rcpt=TO, source=raw_message(10_000),
                         progress=lambda s, t: (_ for _ in ()).throw(Abort()))  # fmt: skip
    assert "send" in seen and "data" in seen
    assert len(server.messages) == 2


def test_progress_must_be_callable(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted()
    with pytest.raises(TypeError, match="progress"):
        mailpump.send(from_=FROM, rcpt=TO, source=b"x", server=server.host,
                      port=server.port, tls="none", progress=42)  # type: ignore[call-overload]  # fmt: skip


def test_to_email_parses_a_message_source() -> None:
    msg = mailpump.to_email(
        mailpump.message({
            "headers": {"subject": "Relatório", "to": ["a@example.com", "b@example.com"]},
            "body": [mailpump.text("hé"), mailpump.attachment(b"\x00\x01", "a.bin")],
        })
    )  # fmt: skip
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == "Relatório"
    assert msg["To"] == "a@example.com, b@example.com"
    [attached] = list(msg.iter_attachments())
    assert isinstance(attached, EmailMessage)
    assert attached.get_filename() == "a.bin"
    assert attached.get_payload(decode=True) == b"\x00\x01"


def test_to_email_consumes_the_source() -> None:
    source = mailpump.message({"body": "x"})
    mailpump.to_email(source)
    assert list(source) == []
    assert smtp.to_email([b"Subject: s\r\n", b"\r\nbody\r\n"])["Subject"] == "s"


def test_an_email_message_is_a_send_source(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    original = EmailMessage()
    original["Subject"] = "from the standard library"
    original.set_content("hello\n.dot\n")
    mailpump.send(from_=FROM, rcpt=TO, source=original, server=server.host, port=server.port,
                  tls="none")  # fmt: skip
    [received] = server.messages
    back = mailpump.to_email([received.data])
    assert back["Subject"] == "from the standard library"
    assert back.get_content().replace("\r\n", "\n") == "hello\n.dot\n"


def test_transcript_follows_logging_conventions(
    aiosmtpd_server: Callable[..., RecordingServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with caplog.at_level(logging.DEBUG, logger="mailpump"):
        mailpump.send(from_=FROM, rcpt=TO, source=b"Subject: s\r\n\r\nsecret body\r\n",
                      server=server.host, port=server.port, tls="none")  # fmt: skip
    records = [r for r in caplog.records if r.name == "mailpump"]
    assert records
    for record in records:
        assert record.levelno == logging.DEBUG
        # Lazy %-formatting: the arguments stay apart until a handler formats the record.
        assert record.msg == "%s: %s"
        assert isinstance(record.args, tuple) and record.args[0] in ("C", "S")
    lines = [r.getMessage() for r in records]
    assert any(line.startswith("C: MAIL FROM:<sender@example.com>") for line in lines)
    assert any(line.startswith("S: 250") for line in lines)
    assert not any("secret body" in line for line in lines)


def test_no_transcript_records_when_debug_is_off(
    aiosmtpd_server: Callable[..., RecordingServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with caplog.at_level(logging.INFO, logger="mailpump"):
        mailpump.send(from_=FROM, rcpt=TO, source=b"Subject: s\r\n\r\nx\r\n",
                      server=server.host, port=server.port, tls="none")  # fmt: skip
    assert [r for r in caplog.records if r.name == "mailpump"] == []


def test_email_message_with_bcc_is_delivered_without_its_bcc_line(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    msg = EmailMessage()
    msg["Subject"] = "s"
    msg["Bcc"] = "hidden@example.test"
    msg.set_content("body")
    mailpump.send(from_="a@example.test", rcpt="hidden@example.test", source=msg,
                  server=server.host, port=server.port, timeout=10)  # fmt: skip
    (got,) = server.messages
    assert got.rcpt_tos == ["hidden@example.test"]
    assert b"hidden@example.test" not in got.data and b"Subject: s" in got.data
