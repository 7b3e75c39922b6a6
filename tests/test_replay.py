"""Messages that can be sent again: the same bytes each time (same boundaries, Date and
Message-ID), `MessageSource.replayable` for each kind of body, and one-shot messages refused a
second time in plain words."""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers.recording import RecordingServer
from servers.scripted import ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")
from mailpump import ltn12, mime  # noqa: E402


def chunks() -> Iterator[bytes]:
    yield b"one-shot "
    yield b"body\r\n"


def test_the_same_message_sent_twice_arrives_byte_for_byte_the_same(
    aiosmtpd_server: Callable[..., RecordingServer], tmp_path: Path
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    path = tmp_path / "report.bin"
    path.write_bytes(bytes(range(256)) * 400)
    msg = mailpump.message({
        "headers": {"from": "a@example.test", "to": "b@example.test", "subject": "Grüße"},
        "body": [
            {"body": "Hello\r\n" * 50},
            {"body": "é, à, ü\n" * 20},
            mailpump.attachment(path),
            mailpump.attachment(b"\x00\x01" * 1000, "data.bin"),
        ],
    })  # fmt: skip
    assert msg.replayable
    options = {"server": server.host, "port": server.port, "tls": "none", "timeout": 10}
    assert mailpump.send(from_="a@example.test", rcpt="b@example.test", source=msg, **options)
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        session.greet()
        assert session.send(from_="a@example.test", rcpt="c@example.test", source=msg)
    first, second = server.messages
    assert first.data == second.data
    parsed = email.message_from_bytes(first.data)
    assert parsed["Message-ID"] and parsed["Date"]
    assert parsed.is_multipart() and len(parsed.get_payload()) == 4


def test_a_refused_message_can_be_sent_again(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(rcpt_replies={"gone@example.test": "550 5.1.1 No such user"})
    msg = mailpump.message({"headers": {"subject": "retry"}, "body": "Hello\r\n"})
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=10) as session:
        session.greet()
        with pytest.raises(mailpump.SMTPRecipientsRefused):
            session.send(from_="a@example.test", rcpt="gone@example.test", source=msg)
        assert session.send(from_="a@example.test", rcpt="b@example.test", source=msg)
        assert session.send(from_="a@example.test", rcpt="c@example.test", source=msg)
    [conn] = server.finished()
    first, second = conn.transactions
    assert first.message == second.message
    assert b"Message-ID: " in first.message


def test_a_one_shot_message_is_sent_once_and_then_refused_plainly(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    msg = mailpump.message({"headers": {"subject": "once"}, "body": chunks()})
    assert not msg.replayable
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        session.greet()
        assert session.send(from_="a@example.test", rcpt="b@example.test", source=msg)
        with pytest.raises(ValueError, match="bodies can be read only once"):
            session.send(from_="a@example.test", rcpt="b@example.test", source=msg)
    [got] = server.messages
    assert got.data.endswith(b"one-shot body\r\n")


def test_a_message_read_in_python_can_still_be_sent_when_replayable() -> None:
    msg = mailpump.message({"headers": {"subject": "read"}, "body": "Hello\r\n"})
    first = b"".join(msg)
    # Iterated to the end, it is exhausted as an iterator; as a body it is the same bytes again.
    assert b"".join(msg) == b""
    outer = mailpump.message({"headers": {"content-type": "message/rfc822"}, "body": msg})
    assert b"".join(outer).endswith(first)
    one_shot = mailpump.message({"body": chunks()})
    b"".join(one_shot)
    with pytest.raises(ValueError, match="read only once"):
        mailpump.message({"body": one_shot})


def replayable_bodies(tmp_path: Path) -> dict[str, tuple[object, bool]]:
    path = tmp_path / "file.txt"
    path.write_bytes(b"file body\r\n")
    return {
        "str": ("text\r\n", True),
        "bytes": (b"bytes\r\n", True),
        "bytearray": (bytearray(b"bytes\r\n"), True),
        "attachment(path)": ([mailpump.attachment(path)], True),
        "attachment(pathlib)": ([mailpump.attachment(str(path))], True),
        "attachment(bytes)": ([mailpump.attachment(b"data", "d.bin")], True),
        "text()": ([mailpump.text("hello")], True),
        "source.file(path)": (ltn12.source.file(str(path)), True),
        "source.string": (ltn12.source.string(b"s"), True),
        "source.cat of strings": (ltn12.source.cat(ltn12.source.string(b"a"), b"b"), True),
        "source.chain through mime filters": (
            ltn12.source.chain(ltn12.source.string(b"a\n"), mime.normalize(), mime.encode("base64")),
            True,
        ),
        "a replayable message": (mailpump.message({"body": "inner"}), True),
        "multipart of replayable parts": ({"parts": [{"body": "a"}, {"body": b"b"}]}, True),
        "generator": (chunks(), False),
        "list iterator": (iter([b"a", b"b"]), False),
        "file object": (path.open("rb"), False),
        "attachment(file object)": ([mailpump.attachment(path.open("rb"))], False),
        "source.file(file object)": (ltn12.source.file(path.open("rb")), False),
        "source.cat with a generator": (ltn12.source.cat(b"a", chunks()), False),
        "source.chain through a Python filter": (
            ltn12.source.chain(ltn12.source.string(b"a"), lambda c: c),
            False,
        ),
        "a one-shot message": (mailpump.message({"body": chunks()}), False),
        "one one-shot part among others": ({"parts": [{"body": "a"}, {"body": chunks()}]}, False),
    }


def test_replayable_for_each_kind_of_body(tmp_path: Path) -> None:
    bodies = replayable_bodies(tmp_path)
    got = {
        name: mailpump.message({"body": body}).replayable
        for name, (body, _) in bodies.items()
    }
    assert got == {name: expected for name, (_, expected) in bodies.items()}


def test_replayable_is_read_only() -> None:
    msg = mailpump.message({"body": "x"})
    with pytest.raises(AttributeError):
        msg.replayable = False

