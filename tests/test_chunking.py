"""CHUNKING (RFC 3030) through `send`, `Session.send_many` and the pool, against the scripted
server speaking BDAT: the bytes stored are those DATA would have stored, a window of messages is
written ahead of the replies, a refused MAIL in the middle of the window ends that message only,
a connection lost mid-window leaves no message without an outcome, and `chunking=False` forces
DATA. The engine's rules (every reply × every stage) are tested in Rust."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from servers.scripted import Fault, ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

CHUNKING = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING"]


def table(i: int) -> dict[str, Any]:
    body = f"Subject: chunk {i}\n\n.a leading dot\nbare\rline\n" + "x" * (i * 1000)
    return {"from": "<s@example.test>", "rcpt": f"<r{i}@example.test>", "source": body}


def test_bdat_stores_what_data_stores(scripted: Callable[..., ScriptedServer]) -> None:
    big = "Subject: big\n\n" + ("line of text\n" * 100_000)  # several chunks
    stored = []
    for chunking in (True, False):
        server = scripted(extensions=CHUNKING)
        mailpump.send(from_="<s@example.test>", rcpt="<r@example.test>", source=big,
                      server="127.0.0.1", port=server.port, tls="none", chunking=chunking)  # fmt: skip
        [conn] = server.finished()
        [transaction] = conn.transactions
        assert transaction.bdat is chunking
        assert any(c.startswith(b"BDAT") for c in conn.commands) is chunking
        assert any(c == b"DATA" for c in conn.commands) is not chunking
        stored.append(transaction.message)
    assert stored[0] == stored[1]
    assert stored[0].startswith(b"Subject: big\r\n\r\nline of text\r\n")


def test_a_window_of_messages_before_any_reply(scripted: Callable[..., ScriptedServer]) -> None:
    # The server holds its reply to the first MAIL until the fourth message's RCPT has come: a
    # client that waits for replies between messages never gets there (wait_for gives up).
    server = scripted(extensions=CHUNKING)
    held: list[bool] = []

    def hold_first_mail(conn: Any, line: bytes) -> None:
        if line.startswith(b"MAIL") and not held:
            held.append(conn.wait_for(b"<r3@example.test>", 10.0))

    server.script.on_command = hold_first_mail
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=30) as session:
        session.greet()
        outcomes = list(session.send_many(table(i) for i in range(40)))
    assert held == [True]
    assert all(isinstance(o, mailpump.SendResult) for o in outcomes)
    [conn] = server.finished()
    assert [t.rcpt_tos for t in conn.transactions] == [
        [f"r{i}@example.test".encode()] for i in range(40)
    ]


def test_a_refused_mail_in_the_window_is_that_message_s_outcome(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(extensions=CHUNKING)
    refused_from = "<refused@example.test>"
    tables = [table(i) for i in range(10)]
    tables[4]["from"] = refused_from

    def refuse(conn: Any, line: bytes) -> None:
        server.script.replies["mail"] = (
            "550 5.7.1 Sender refused" if refused_from.encode() in line else "250 2.1.0 Ok"
        )

    server.script.on_command = refuse
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=10) as session:
        session.greet()
        outcomes = list(session.send_many(tables))
        assert session.noop().code == 250, "the session goes on"
    assert isinstance(outcomes[4], mailpump.SMTPSenderRefused)
    assert all(isinstance(o, mailpump.SendResult) for i, o in enumerate(outcomes) if i != 4)
    [conn] = server.finished()
    assert len(conn.transactions) == 9


def test_a_connection_lost_mid_window_leaves_no_message_without_an_outcome(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(extensions=CHUNKING, eod_replies={3: Fault.DISCONNECT})
    got: list[object] = []
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=10) as session:
        session.greet()
        with pytest.raises(mailpump.SMTPConnectError):
            for outcome in session.send_many(table(i) for i in range(30)):
                got.append(outcome)
    assert all(isinstance(o, mailpump.SendResult) for o in got[:2])
    # The third and every message written after it: unknown (a retry could duplicate it) or,
    # for one whose mark never went out, an error a retry may follow.
    assert isinstance(got[2], mailpump.SMTPOutcomeUnknown)
    assert all(isinstance(o, mailpump.SMTPError) for o in got[2:])
    [conn] = server.finished()
    assert len(conn.transactions) == 3


def test_the_pool_sends_with_bdat(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(extensions=CHUNKING)
    with mailpump.Pool("127.0.0.1", server.port, connections=1, tls="none") as pool:
        results = [pool.submit(table(i)) for i in range(20)]
        outcomes = [r.result(timeout=30) for r in results]
    assert all(o.accepted == [f"r{i}@example.test"] for i, o in enumerate(outcomes))
    conns = server.finished()
    assert all(t.bdat for c in conns for t in c.transactions)
