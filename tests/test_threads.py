"""Sessions in different threads run in parallel; one session shared by two threads at once
raises instead of corrupting the dialogue. No timing: a held GIL shows up as a deadlock that
the server's bounded barrier turns into a 451 (and pytest-timeout bounds the rest)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.scripted import ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")


def _run_in_threads(targets: list[Callable[[], Any]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(target: Callable[[], Any]) -> None:
        try:
            target()
        except BaseException as e:  # collected and asserted in the test thread
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.parametrize("pipelining", [True, False])
def test_two_sessions_in_two_threads_run_in_parallel(
    scripted: Callable[..., ScriptedServer], pipelining: bool
) -> None:
    # The server holds each DATA reply until both sessions have sent DATA. Thread 1 blocks inside
    # mailpump waiting for its reply; thread 2 can only reach DATA if that wait released the GIL.
    extensions = ["PIPELINING"] if pipelining else []
    server = scripted(data_barrier=threading.Barrier(2), extensions=extensions)

    def one(i: int) -> Callable[[], Any]:
        def send() -> Any:
            source = mailpump.message({"headers": {"subject": f"thread {i}"},
                                       "body": f"from thread {i}\r\n" * 100})  # fmt: skip
            return mailpump.send(from_="<t@example.test>", rcpt=f"<r{i}@example.test>",
                                 source=source, server=server.host, port=server.port,
                                 tls="none", timeout=60)  # fmt: skip

        return send

    assert _run_in_threads([one(0), one(1)]) == []
    conns = server.finished(2)
    assert sorted(len(c.transactions) for c in conns) == [1, 1]
    assert all(c.transactions[0].complete for c in conns)


def test_two_sessions_via_open(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(data_barrier=threading.Barrier(2))

    def one(i: int) -> Callable[[], Any]:
        def run() -> None:
            with mailpump.open(server.host, server.port, tls="none", timeout=60) as s:
                s.greet()
                s.send({"from": "<t@example.test>", "rcpt": f"<r{i}@example.test>",
                        "source": f"Subject: {i}\r\n\r\nbody\r\n"})  # fmt: skip
                s.quit()

        return run

    assert _run_in_threads([one(0), one(1)]) == []
    assert sorted(len(c.transactions) for c in server.finished(2)) == [1, 1]


def test_one_session_used_from_two_threads_at_once_raises(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted()
    inside, release = threading.Event(), threading.Event()

    def slow_source() -> Iterator[bytes]:
        yield b"Subject: shared\r\n\r\nfirst\r\n"
        inside.set()  # thread A is now inside session.data(), holding the session
        assert release.wait(30)
        yield b"second\r\n"

    results: list[Any] = []
    with mailpump.open(server.host, server.port, tls="none", timeout=30) as session:
        session.greet()

        def a() -> None:
            results.append(session.send({"from": "<a@example.test>", "rcpt": "<b@example.test>",
                                         "source": slow_source()}))  # fmt: skip

        thread_errors: list[BaseException] = []
        thread = threading.Thread(target=lambda: _capture(a, thread_errors))
        thread.start()
        try:
            assert inside.wait(30)
            with pytest.raises(Exception) as info:  # noqa: PT011 (any error; never a hang)
                session.noop()
            assert isinstance(info.value, (RuntimeError, mailpump.MailpumpError))
        finally:
            release.set()
            thread.join()
        assert thread_errors == []
        session.quit()
    [conn] = server.finished()
    # The dialogue was not corrupted: one complete message, no NOOP inside the DATA.
    [txn] = conn.transactions
    assert txn.complete and txn.message == b"Subject: shared\r\n\r\nfirst\r\nsecond\r\n"
    assert results and results[0]


def _capture(target: Callable[[], None], errors: list[BaseException]) -> None:
    try:
        target()
    except BaseException as e:  # asserted in the test thread
        errors.append(e)
