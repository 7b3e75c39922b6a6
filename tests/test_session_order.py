"""Calls made in an unexpected order, and replies the server adds where none belongs: every command
goes through the same state machine, and the outcome of a delivered message is never lost."""

from __future__ import annotations

from collections.abc import Callable

import mailpump
import pytest
from servers.certs import Pki
from servers.scripted import Connection, ScriptedServer

FROM = "sender@example.test"
TO = "one@example.test"
BODY = b"Subject: order\r\n\r\nhello\r\n"


def verbs(commands: list[bytes]) -> list[bytes]:
    return [c.split(b" ", 1)[0].split(b":", 1)[0].upper() for c in commands]


def first_call(name: str) -> Callable[[mailpump.Session], object]:
    """A session method called before `greet()`, with arguments that would work after it."""
    calls: dict[str, Callable[[mailpump.Session], object]] = {
        "mail": lambda s: s.mail(FROM),
        "auth": lambda s: s.auth("user", "password"),
        "send": lambda s: s.send(from_=FROM, rcpt=TO, source=BODY),
    }
    return calls[name]


@pytest.mark.parametrize("name", ["mail", "auth", "send"])
def test_a_command_before_greet_greets_first_under_the_tls_policy(
    scripted: Callable[..., ScriptedServer], pki: Pki, name: str
) -> None:
    # Before, the command went out in clear text and the 220 greeting was taken for its reply.
    server = scripted(tls=pki.server.server_context(), auth=["PLAIN"])
    with mailpump.open(server.host, server.port, tls="starttls", cafile=str(pki.ca),
                       timeout=10) as session:  # fmt: skip
        first_call(name)(session)
        assert session.encrypted
    conn: Connection = server.finished()[0]
    plain = conn.commands[: len(conn.commands) - len(conn.tls_commands)]
    assert verbs(plain) == [b"EHLO", b"STARTTLS"]
    assert verbs(conn.tls_commands)[:2] == [b"EHLO", {"mail": b"MAIL", "auth": b"AUTH",
                                                     "send": b"MAIL"}[name]]  # fmt: skip


def test_rcpt_and_data_before_greet_keep_the_dialogue_in_step(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted()
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        assert session.mail(FROM).code == 250
        assert session.rcpt(TO).code == 250
        reply = session.data(BODY)
        assert reply.code == 250 and "queued" in reply.text
    conn = server.finished()[0]
    assert verbs(conn.commands)[:4] == [b"EHLO", b"MAIL", b"RCPT", b"DATA"]
    assert [t.message for t in conn.transactions] == [BODY]


def test_auth_before_greet_uses_the_mechanisms_the_server_offers(
    scripted: Callable[..., ScriptedServer],
) -> None:
    # Before, auth() without greet() said the server "offers no mechanism (offered: none)".
    server = scripted(auth=["LOGIN"])
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        assert session.auth("user", "password").code == 235
    assert verbs(server.finished()[0].commands)[:2] == [b"EHLO", b"AUTH"]


def test_auth_where_none_is_offered_says_so(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted()
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        session.greet()
        with pytest.raises(mailpump.SMTPAuthError) as caught:
            session.auth("user", "password")
    message = str(caught.value)
    assert "does not offer AUTH" in message and "offered: none" not in message


def test_a_reply_after_the_verdict_does_not_lose_the_outcome(
    scripted: Callable[..., ScriptedServer],
) -> None:
    # The server sends one more reply in the same segment as its 250 to the end of data. Before,
    # send() raised SMTPProtocolError although the message was accepted.
    server = scripted(replies={"eod": ["250 2.0.0 Ok: queued as Q1", "250 2.0.0 and this too"]})
    result = mailpump.send(from_=FROM, rcpt=TO, source=BODY, server=server.host,
                           port=server.port, tls="none", timeout=10)  # fmt: skip
    assert result.reply.code == 250 and "Q1" in result.reply.text
    assert [t.message for t in server.finished()[0].transactions] == [BODY]


def test_the_unasked_reply_is_the_next_commands_problem(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(replies={"eod": ["250 2.0.0 Ok: queued as Q1", "250 2.0.0 unasked"]})
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        result = session.send(from_=FROM, rcpt=TO, source=BODY)
        assert "Q1" in result.reply.text
        with pytest.raises(mailpump.SMTPProtocolError, match="no command asked for"):
            session.send(from_=FROM, rcpt=TO, source=BODY)
    # The second message never went out: the dialogue was out of step.
    assert len(server.finished()[0].transactions) == 1
