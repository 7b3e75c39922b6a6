"""CHUNKING (RFC 3030) against a real server: a private Postfix smtpd, which offers CHUNKING and
PIPELINING. What a user checks: the messages delivered are byte-identical whether they went out as
BDAT chunks or as DATA, a window of messages shares one connection, and `chunking=False` uses DATA
(Postfix's log counts each session's BDAT and DATA commands)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from servers.postfix import DOMAIN, PostfixServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")


def body(i: int, size: int) -> str:
    # A leading dot, a bare CR, a bare LF and lines past one BDAT chunk in total.
    lines = "".join(f"{i:04d} line {n} of text, long enough to wrap nothing\n" for n in range(size))
    return f"Subject: postfix {i}\nMessage-ID: <m{i}@{DOMAIN}>\n\n.dot\nbare\rcr\n{lines}"


def expected(i: int, size: int) -> bytes:
    # What the maildir holds: every line end made CRLF on the wire, LF in the maildir.
    return body(i, size).replace("\r", "\n").encode()


def test_bdat_delivers_what_data_delivers(postfix: Callable[[], PostfixServer]) -> None:
    size = 40_000  # about 2.3 MB: several BDAT chunks
    delivered = []
    for chunking in (True, False):
        server = postfix()
        result = mailpump.send(from_=f"<s@{DOMAIN}>", rcpt=f"<r@{DOMAIN}>", source=body(1, size),
                               server="127.0.0.1", port=server.port, tls="none", chunking=chunking)  # fmt: skip
        assert isinstance(result, mailpump.SendResult)
        [session] = server.sessions(1)
        assert session.get("bdat", 0) >= (3 if chunking else 0), session
        assert session.get("data", 0) == (0 if chunking else 1), session
        [message] = server.delivered(1)
        delivered.append(message)
    assert delivered[0] == delivered[1] == expected(1, size)


def test_a_window_of_messages_over_one_connection(postfix: Callable[[], PostfixServer]) -> None:
    server = postfix()
    count = 24
    tables = [
        {"from": f"<s@{DOMAIN}>", "rcpt": f"<r{i}@{DOMAIN}>", "source": body(i, i * 50)}
        for i in range(count)
    ]
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=60) as session:
        session.greet()
        outcomes = list(session.send_many(tables))
    assert all(isinstance(o, mailpump.SendResult) for o in outcomes), outcomes
    [log] = server.sessions(1)
    assert log["mail"] == count and log["rcpt"] == count and log.get("data", 0) == 0, log
    assert log["bdat"] >= count, log
    delivered = server.delivered(count)
    # Delivery order is the queue manager's; the messages are the ones sent, each exactly once.
    assert sorted(delivered) == sorted(expected(i, i * 50) for i in range(count))


def test_chunking_false_uses_data(postfix: Callable[[], PostfixServer]) -> None:
    server = postfix()
    tables = [
        {"from": f"<s@{DOMAIN}>", "rcpt": f"<r{i}@{DOMAIN}>", "source": body(i, 10)}
        for i in range(5)
    ]
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=60, chunking=False) as session:
        session.greet()
        outcomes = list(session.send_many(tables))
    assert all(isinstance(o, mailpump.SendResult) for o in outcomes), outcomes
    [log] = server.sessions(1)
    assert log.get("bdat", 0) == 0 and log["data"] == 5, log
    assert sorted(server.delivered(5)) == sorted(expected(i, 10) for i in range(5))
