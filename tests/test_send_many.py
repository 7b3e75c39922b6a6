"""`Session.send_many`: many messages pipelined over one connection, against smtp-sink, aiosmtpd
and the scripted server (refusals in the middle, the connection dropped after an end-of-data
mark); the iterable is consumed only as far as messages were started."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.recording import RecordingServer
from servers.scripted import Fault, ScriptedServer
from servers.sink import SmtpSink

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

COUNT = 1000
# How far send_many reads the iterable ahead of what it has yielded, at most (a batch).
BATCH = 1024


def table(i: int, rcpt: str | None = None) -> dict[str, Any]:
    source = mailpump.message({
        "headers": {"subject": f"bulk {i}", "message-id": f"<{i}@bulk.example.test>"},
        "body": f"message {i}\r\n",
    })  # fmt: skip
    return {"from": "<s@example.test>", "rcpt": rcpt or f"<r{i}@example.test>", "source": source}


class Counted:
    """An iterable of tables that counts how many were taken from it."""

    def __init__(self, tables: Iterator[dict[str, Any]]) -> None:
        self.tables = tables
        self.taken = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for t in self.tables:
            self.taken += 1
            yield t


def test_a_thousand_messages_to_smtp_sink_arrive_once_each(
    smtp_sink: Callable[..., SmtpSink],
) -> None:
    sink = smtp_sink(dump=True)
    with mailpump.open(sink.host, sink.port, tls="none", timeout=30) as session:
        session.greet("bulk.example.test")
        outcomes = list(session.send_many(table(i) for i in range(COUNT)))
        session.quit()
    assert len(outcomes) == COUNT
    assert all(isinstance(o, mailpump.SendResult) for o in outcomes)
    # The results in order: each names its own recipient.
    assert [list(o.accepted) for o in outcomes] == [
        [f"r{i}@example.test"] for i in range(COUNT)
    ]
    dumps = sink.messages()
    ids = sorted(
        line for d in dumps for line in d.message.split(b"\n") if line.startswith(b"Message-ID:")
    )
    assert ids == sorted(f"Message-ID: <{i}@bulk.example.test>".encode() for i in range(COUNT))


def test_the_iterable_is_read_at_most_a_batch_ahead(
    smtp_sink: Callable[..., SmtpSink],
) -> None:
    sink = smtp_sink()
    count = 2 * BATCH + 100
    tables = Counted(
        {"from": "<s@example.test>", "rcpt": f"<r{i}@example.test>", "source": b"Subject: x\r\n\r\nx\r\n"}
        for i in range(count)
    )  # fmt: skip
    with mailpump.open(sink.host, sink.port, tls="none", timeout=30) as session:
        session.greet()
        for i, outcome in enumerate(session.send_many(tables)):
            assert isinstance(outcome, mailpump.SendResult)
            assert tables.taken <= i + BATCH
    assert tables.taken == count


def test_a_thousand_messages_to_aiosmtpd_arrive_once_each_in_order(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    tables = Counted(table(i) for i in range(COUNT))
    with mailpump.open(server.host, server.port, tls="none", timeout=30) as session:
        session.greet()
        outcomes = session.send_many(tables)
        for i, outcome in enumerate(outcomes):
            assert isinstance(outcome, mailpump.SendResult)
            assert list(outcome.accepted) == [f"r{i}@example.test"]
    assert tables.taken == COUNT
    received = server.messages
    assert [m.rcpt_tos for m in received] == [[f"r{i}@example.test"] for i in range(COUNT)]
    assert [m.data.split(b"\r\n")[1] for m in received] == [
        f"Message-ID: <{i}@bulk.example.test>".encode() for i in range(COUNT)
    ]


def test_a_refused_recipient_in_the_middle_is_that_message_s_outcome(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(rcpt_replies={"gone@example.test": "550 5.1.1 No such user"})
    tables = [table(i, "<gone@example.test>" if i == 5 else None) for i in range(10)]
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=10) as session:
        session.greet()
        outcomes = list(session.send_many(tables))
        assert session.noop().code == 250, "the session goes on"
    assert len(outcomes) == 10
    refused = outcomes[5]
    assert isinstance(refused, mailpump.SMTPRecipientsRefused)
    assert refused.kind == "recipients-refused"
    assert all(isinstance(o, mailpump.SendResult) for i, o in enumerate(outcomes) if i != 5)
    [conn] = server.finished()
    assert [t.rcpt_tos for t in conn.transactions] == [
        [f"r{i}@example.test".encode()] for i in range(10) if i != 5
    ]


def test_a_dropped_connection_after_an_end_of_data_mark(
    scripted: Callable[..., ScriptedServer],
) -> None:
    # The second message's end-of-data mark goes out, then the server hangs up.
    server = scripted(eod_replies={2: Fault.DISCONNECT})
    tables = Counted(table(i) for i in range(20))
    got: list[object] = []
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=10) as session:
        session.greet()
        with pytest.raises(mailpump.SMTPConnectError) as raised:
            for outcome in session.send_many(tables):
                got.append(outcome)
    assert isinstance(got[0], mailpump.SendResult)
    assert isinstance(got[1], mailpump.SMTPOutcomeUnknown)
    # Any message started with it (pipelined after its end-of-data mark) failed with it, and
    # nothing more was taken from the iterable.
    assert all(
        isinstance(o, mailpump.SMTPError) and not isinstance(o, mailpump.SMTPOutcomeUnknown)
        for o in got[2:]
    )
    assert tables.taken == len(got)
    assert tables.taken < 20
    assert raised.value.kind == "closed"
    [conn] = server.finished()
    assert len(conn.transactions) == 2


def test_a_table_that_cannot_be_read_is_raised_after_the_outcomes_before_it(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    tables = [table(0), table(1), {"from": "<s@example.test>", "source": b"x"}, table(3)]
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        session.greet()
        outcomes = session.send_many(tables)
        assert isinstance(next(outcomes), mailpump.SendResult)
        assert isinstance(next(outcomes), mailpump.SendResult)
        with pytest.raises(TypeError, match="rcpt may be left out only"):
            next(outcomes)
        assert next(outcomes, None) is None
        assert session.noop().code == 250
    assert len(server.messages) == 2


def test_from_underscore_and_an_empty_iterable(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        session.greet()
        assert list(session.send_many([])) == []
        [result] = session.send_many([{"from_": "a@example.test", "rcpt": "b@example.test",
                                       "source": b"Subject: x\r\n\r\nx\r\n"}])  # fmt: skip
    assert result
    assert server.messages[0].mail_from == "a@example.test"
