"""Header rules end to end through aiosmtpd, judged by the standard library's parser: an
`EmailMessage` source's fields pass `message()`'s rules before any byte is sent, and display
names holding specials arrive quoted (RFC 5322 §3.4)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from servers.recording import RecordingServer

import mailpump


@pytest.fixture
def server(aiosmtpd_server: Callable[..., RecordingServer]) -> RecordingServer:
    return aiosmtpd_server(tls="none", auth=False)


def send(server: RecordingServer, source: object) -> None:
    mailpump.send(source=source, server=server.host, port=server.port, tls="none", timeout=10)  # type: ignore[call-overload]


def email_message(name: str, value: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "a@example.test"
    msg["To"] = "b@example.test"
    msg.set_raw(name, value)
    msg.set_content("Hello")
    return msg


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Subject", "hello\r\nBcc: victim@example.test"),
        ("Subject", "hello\nBcc: victim@example.test"),
        ("Subject", "hello\rBcc: victim@example.test"),
        ("Bcc ", "victim@example.test"),
        ("X-Note\r\nBcc", "victim@example.test"),
    ],
    ids=["crlf", "lf", "cr", "name-trailing-space", "name-line-break"],
)
def test_email_message_header_injection_is_refused_before_sending(
    server: RecordingServer, name: str, value: str
) -> None:
    with pytest.raises(mailpump.MessageError) as info:
        send(server, email_message(name, value))
    assert info.value.header == name
    assert server.messages == []
    # Nothing reached the server: a valid message afterwards is the only one it holds.
    send(server, email_message("Subject", "folded\r\n fine"))
    (got,) = server.messages
    assert got.rcpt_tos == ["b@example.test"]
    assert email.message_from_bytes(got.data, policy=email.policy.default)["Subject"] == "folded fine"


def test_a_part_header_is_checked_too(server: RecordingServer) -> None:
    msg = email_message("Subject", "parts")
    msg.add_attachment(b"data", maintype="application", subtype="octet-stream", filename="a.bin")
    msg.get_payload()[1].set_raw("X-Tag", "x\nBcc: victim@example.test")  # type: ignore[index, union-attr]
    with pytest.raises(mailpump.MessageError) as info:
        send(server, msg)
    assert info.value.part == "message.parts[1]" and info.value.header == "X-Tag"
    assert server.messages == []


@pytest.mark.parametrize(
    "to",
    ["Doe, John <john@example.test>, ann@example.test",
     ["Doe, John <john@example.test>", "ann@example.test"]],
    ids=["string", "list"],
)  # fmt: skip
def test_display_names_with_specials_are_quoted(
    server: RecordingServer, to: str | list[str]
) -> None:
    send(server, mailpump.message({"headers": {"from": "Smith; Jane <jane@example.test>", "to": to,
                                               "subject": "names"}, "body": "Hello"}))  # fmt: skip
    (got,) = server.messages
    assert got.mail_from == "jane@example.test"
    assert sorted(got.rcpt_tos) == ["ann@example.test", "john@example.test"]
    parsed = email.message_from_bytes(got.data, policy=email.policy.default)
    to_addresses = [(a.display_name, a.addr_spec) for a in parsed["To"].addresses]
    assert to_addresses == [("Doe, John", "john@example.test"), ("", "ann@example.test")]
    (sender,) = parsed["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Smith; Jane", "jane@example.test")
