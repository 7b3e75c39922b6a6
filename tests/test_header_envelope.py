"""The envelope from the headers (the core's `smtp::header_envelope`), end to end through aiosmtpd:
`from_`/`rcpt` left out of `send`, `Session.send`, `send_many` and `Pool`, for `EmailMessage`
sources and `message()` descriptions; the envelope as the server received it, compared with what
`smtplib.send_message` gives for the same message; no Bcc line in what arrives; `Resent-*`
precedence (RFC 5322 §3.6.6)."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from servers.recording import Received, RecordingServer

import mailpump

ADDRESSES = {
    "From": "Sicrano <sicrano@example.test>",
    "To": "Fulano <fulano@example.test>, beltrano@example.test",
    "Cc": "Team: ana@example.test, bob@example.test;",
    "Bcc": "hidden@example.test",
    "Reply-To": "replies@example.test",
    "Subject": "news",
}
ENVELOPE = (
    "sicrano@example.test",
    sorted(["fulano@example.test", "beltrano@example.test", "ana@example.test",
            "bob@example.test", "hidden@example.test"]),
)  # fmt: skip


def email_message(fields: dict[str, str]) -> EmailMessage:
    msg = EmailMessage()
    for name, value in fields.items():
        msg[name] = value
    msg.set_content("Hello")
    return msg


def description(fields: dict[str, str]) -> mailpump.MessageSource:
    return mailpump.message({"headers": {k.lower(): v for k, v in fields.items()}, "body": "Hello"})


def envelope(got: Received) -> tuple[str, list[str]]:
    # smtplib orders To, Bcc, Cc; mailpump keeps the header's order: the set is what counts.
    return got.mail_from, sorted(got.rcpt_tos)


def no_blind_copy(got: Received) -> None:
    parsed = email.message_from_bytes(got.data, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["Resent-Bcc"] is None
    assert b"hidden@example.test" not in got.data
    assert parsed["Subject"] == "news" and parsed["Reply-To"] == "replies@example.test"


@pytest.fixture
def server(aiosmtpd_server: Callable[..., RecordingServer]) -> RecordingServer:
    return aiosmtpd_server(tls="none", auth=False)


def test_smtplib_takes_the_same_envelope(server: RecordingServer) -> None:
    # The reference: the standard library's send_message on the same message.
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        s.send_message(email_message(ADDRESSES))
    (got,) = server.messages
    assert envelope(got) == ENVELOPE
    no_blind_copy(got)


@pytest.mark.parametrize("make", [email_message, description], ids=["EmailMessage", "message"])
def test_send_takes_the_envelope_from_the_header(
    server: RecordingServer, make: Callable[[dict[str, str]], object]
) -> None:
    result = mailpump.send(source=make(ADDRESSES), server=server.host, port=server.port,  # type: ignore[call-overload]
                           tls="none", timeout=10)  # fmt: skip
    assert sorted(result.accepted) == sorted(ENVELOPE[1])
    (got,) = server.messages
    assert envelope(got) == ENVELOPE
    no_blind_copy(got)


def test_session_send_many_and_pool(server: RecordingServer) -> None:
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        session.greet()
        session.send(source=email_message(ADDRESSES))
        outcomes = list(session.send_many([{"source": description(ADDRESSES)},
                                           {"source": email_message(ADDRESSES)}]))  # fmt: skip
        assert all(isinstance(o, mailpump.SendResult) for o in outcomes)
    with mailpump.Pool(server.host, server.port, connections=1, tls="none", timeout=10) as pool:
        pool.send(source=description(ADDRESSES))
    assert len(server.messages) == 4
    for got in server.messages:
        assert envelope(got) == ENVELOPE
        no_blind_copy(got)


def test_one_side_given_the_other_from_the_header(server: RecordingServer) -> None:
    mailpump.send(from_="bounces@example.test", source=description(ADDRESSES),
                  server=server.host, port=server.port, tls="none", timeout=10)  # fmt: skip
    mailpump.send(rcpt="only@example.test", source=email_message(ADDRESSES),
                  server=server.host, port=server.port, tls="none", timeout=10)  # fmt: skip
    first, second = server.messages
    assert envelope(first) == ("bounces@example.test", ENVELOPE[1])
    assert envelope(second) == ("sicrano@example.test", ["only@example.test"])
    no_blind_copy(first)
    no_blind_copy(second)  # stripped even though the caller chose the recipients


@pytest.mark.parametrize("make", [email_message, description], ids=["EmailMessage", "message"])
def test_sender_and_resent_fields_take_precedence(
    server: RecordingServer, make: Callable[[dict[str, str]], object]
) -> None:
    resent = {
        "Resent-From": "desk@example.test",
        "Resent-To": "new@example.test",
        "Resent-Bcc": "hidden@example.test",
        "Resent-Date": "Mon, 01 Jan 2024 00:00:00 +0000",
        **ADDRESSES,
        "Sender": "secretary@example.test",
    }
    mailpump.send(source=make(resent), server=server.host, port=server.port,  # type: ignore[call-overload]
                  tls="none", timeout=10)  # fmt: skip
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        s.send_message(email_message(resent))
    ours, reference = server.messages
    assert envelope(ours) == ("desk@example.test", ["hidden@example.test", "new@example.test"])
    assert envelope(ours) == envelope(reference)
    no_blind_copy(ours)
    without_resent = {**ADDRESSES, "Sender": "secretary@example.test"}
    mailpump.send(source=make(without_resent), server=server.host, port=server.port,  # type: ignore[call-overload]
                  tls="none", timeout=10)  # fmt: skip
    assert envelope(server.messages[2]) == ("secretary@example.test", ENVELOPE[1])


def test_what_cannot_give_an_envelope_is_refused_before_connecting(
    server: RecordingServer,
) -> None:
    with pytest.raises(mailpump.MessageError, match="From"):
        mailpump.send(source=description({"To": "a@example.test"}),
                      server=server.host, port=server.port, tls="none", timeout=10)  # fmt: skip
    with pytest.raises(ValueError, match="recipient"):
        mailpump.send(source=email_message({"From": "a@example.test"}),
                      server=server.host, port=server.port, tls="none", timeout=10)  # fmt: skip
    with pytest.raises(TypeError, match="EmailMessage"):
        mailpump.send(source=b"To: a@example.test\r\n\r\nx\r\n",
                      server=server.host, port=server.port, tls="none", timeout=10)  # fmt: skip
    assert server.messages == []
