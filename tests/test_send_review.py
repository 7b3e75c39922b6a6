"""Two guarantees of the Python path that a review found missing: an EmailMessage's Bcc never goes
out, and a reply the server sends unasked between commands is never taken for the next one's."""

from __future__ import annotations

import email.message
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import mailpump
import pytest
from servers.recording import RecordingServer

if TYPE_CHECKING:
    from mailpump.types import AuthMechanism


def test_email_message_with_bcc_is_refused_before_connecting(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    msg = email.message.EmailMessage()
    msg["Subject"] = "s"
    msg["Bcc"] = "hidden@example.test"
    msg.set_content("body")
    with pytest.raises(mailpump.MessageError, match="rcpt"):
        mailpump.send(from_="a@example.test", rcpt="hidden@example.test", source=msg,
                      server=server.host, port=server.port, timeout=10)  # fmt: skip
    assert server.messages == []


@pytest.fixture
def unasked_reply_server() -> Iterator[tuple[int, threading.Event, threading.Event]]:
    """Answers the greeting, EHLO and NOOP, then (when told) a reply nobody asked for."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    go = threading.Event()
    sent = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = conn.makefile("rb")
        conn.sendall(b"220 ready\r\n")
        lines.readline()  # EHLO
        conn.sendall(b"250 ok\r\n")
        lines.readline()  # NOOP
        conn.sendall(b"250 noop ok\r\n")
        go.wait(10)
        conn.sendall(b"250 unasked\r\n")
        sent.set()
        lines.readline()  # whatever follows, if anything
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, go, sent
    thread.join(10)
    listener.close()


def test_unasked_reply_between_commands_is_a_protocol_error(
    unasked_reply_server: tuple[int, threading.Event, threading.Event],
) -> None:
    port, go, sent = unasked_reply_server
    with mailpump.open("127.0.0.1", port, tls="none", timeout=10) as session:
        session.greet()
        assert session.noop().code == 250
        go.set()
        assert sent.wait(10)
        with pytest.raises(mailpump.SMTPProtocolError):
            session.rset()


@pytest.mark.parametrize(
    ("password", "token", "auth"),
    [("pw", "tok", None),  # which one?
     (None, "tok", "PLAIN"),  # the token would go out as a PLAIN password
     ("pw", None, "XOAUTH2")],
)  # fmt: skip
def test_secret_and_mechanism_must_agree(
    aiosmtpd_server: Callable[..., RecordingServer],
    password: str | None,
    token: str | None,
    auth: AuthMechanism | None,
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with pytest.raises(ValueError, match="token|password"):
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=b"Subject: s\r\n\r\nx\r\n",
                      server=server.host, port=server.port, timeout=10, user="u", auth=auth,
                      password=password, oauth_token=token)  # fmt: skip
    assert server.messages == []
