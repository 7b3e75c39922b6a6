"""The connection options of ``send()`` and ``open()`` and the message's envelope: what is refused
before connecting (unknown options, unusable values, no recipient), what ``None`` means, and that
each option reaches the client."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import mailpump
import pytest
from mailpump import smtp
from servers.scripted import ScriptedServer

BODY = b"Subject: options\r\n\r\nhello\r\n"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port that accepts TCP connections and never answers: a client that connects is seen in
    the backlog; one that also waits for the greeting runs into its timeout."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        yield sock


def connections(sock: socket.socket) -> int:
    """How many connections the listener has received (each is taken from the backlog)."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def at(sock: socket.socket) -> dict[str, Any]:
    return {"server": "127.0.0.1", "port": sock.getsockname()[1], "tls": "none", "timeout": 5}


def test_no_recipient_is_refused_before_connecting(listener: socket.socket) -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        mailpump.send(from_="a@example.test", rcpt=[], source=BODY, **at(listener))
    assert connections(listener) == 0


def test_session_refuses_no_recipient_before_any_io(listener: socket.socket) -> None:
    with mailpump.open(**at(listener)) as session:
        conn, _ = listener.accept()
        with conn:
            with pytest.raises(ValueError, match="at least one recipient"):
                session.send(from_="a@example.test", rcpt=[], source=BODY)
            conn.setblocking(False)
            with pytest.raises(BlockingIOError):
                conn.recv(1)  # the client has written nothing
        session.close()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"prot": 25}, TypeError, r"unknown connection option 'prot'; the options are .*\bport\b"),
        ({"tls": "ssl"}, ValueError, "TLS policy"),
        ({"tls": 1}, TypeError, "tls must be a str, not int"),
        ({"timeout": -1}, ValueError, "timeout must be a number of seconds from 0 to 86400"),
        ({"timeout": 0}, ValueError, "timeout must be greater than zero"),
        ({"timeout": "10"}, TypeError, "timeout must be a number of seconds, not str"),
        ({"port": 70000}, ValueError, "port must be 0 to 65535"),
        ({"verify": "no"}, TypeError, "verify must be True or False"),
        ({"auth": "NTLM"}, ValueError, "unknown AUTH mechanism"),
        ({"create": "socket"}, TypeError, "create must be a callable"),
        ({"domain": "host\r\nRSET"}, ValueError, "EHLO name"),
    ],
)
def test_bad_options_are_refused_before_connecting(
    listener: socket.socket, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=BODY,
                      **{**at(listener), **options})  # fmt: skip
    with pytest.raises(error, match=message):
        mailpump.open(**{**at(listener), **options})
    assert connections(listener) == 0


def test_open_takes_no_credentials(listener: socket.socket) -> None:
    with pytest.raises(TypeError, match=r"open\(\) does not authenticate.*auth\(user, password\)"):
        mailpump.open(user="u", password="p", **at(listener))  # type: ignore[call-arg]
    assert connections(listener) == 0


def test_session_send_refuses_connection_options(listener: socket.socket) -> None:
    with mailpump.open(**at(listener)) as session:
        with pytest.raises(TypeError, match=r"not 'tls' \(connection options go to send\(\)"):
            session.send(from_="a@example.test", rcpt="b@example.test", source=BODY,  # type: ignore[call-overload]
                         tls="none")  # fmt: skip
        session.close()


def test_none_means_the_default(
    scripted: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted()
    # server, port, domain and timeout: the module constants, read at call time.
    monkeypatch.setattr(smtp, "SERVER", server.host)
    monkeypatch.setattr(smtp, "PORT", server.port)
    monkeypatch.setattr(smtp, "DOMAIN", "constant.example.test")
    nothing: dict[str, Any] = dict.fromkeys(
        ["server", "port", "domain", "timeout", "cafile", "verify", "helo_fallback",
         "allow_insecure_auth", "user", "password", "oauth_token", "auth", "create", "step",
         "progress"]
    )  # fmt: skip
    result = mailpump.send(from_="a@example.test", rcpt="b@example.test", source=BODY,
                           tls="none", **nothing)  # fmt: skip
    assert result.accepted == ["b@example.test"]
    [conn] = server.finished()
    assert conn.commands[0] == b"EHLO constant.example.test"
    assert not any(c.upper().startswith(b"AUTH") for c in conn.commands)


def test_domain_and_helo_fallback_reach_the_client(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(replies={"ehlo": "502 5.5.1 no EHLO here"})
    options: dict[str, Any] = {"server": server.host, "port": server.port, "tls": "none",
                               "timeout": 5}  # fmt: skip
    assert mailpump.send(from_="a@example.test", rcpt="b@example.test", source=BODY,
                         domain="given.example.test", **options)  # fmt: skip
    with pytest.raises(mailpump.SMTPReplyError):
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=BODY,
                      domain="given.example.test", helo_fallback=False, **options)  # fmt: skip
    first, second = server.finished(2)
    assert first.commands[:2] == [b"EHLO given.example.test", b"HELO given.example.test"]
    assert second.commands[0] == b"EHLO given.example.test"
    assert not any(c.startswith(b"HELO") for c in second.commands)


def test_reply_reads_the_core_reply(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(replies={"rcpt": "451 4.3.0 try later"})
    with pytest.raises(mailpump.SMTPRecipientsRefused) as info:
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=BODY,
                      server=server.host, port=server.port, tls="none", timeout=5)  # fmt: skip
    reply = info.value.refused["b@example.test"]
    assert (reply.code, reply.enhanced, reply.text) == (451, "4.3.0", "try later")
    assert reply.transient and not reply.permanent
    assert str(reply) == "451 4.3.0 try later"
