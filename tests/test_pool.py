"""`mailpump.Pool` against real servers (aiosmtpd, smtp-sink) and, for faults, the scripted server:
delivered once, retried only where the server cannot hold the message, cancelled cleanly,
closed both ways, used from many threads, from asyncio and through `map`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.recording import RecordingServer
from servers.scripted import Connection, Fault, ScriptedServer
from servers.sink import SmtpSink

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

FROM = "sender@example.test"
TO = "rcpt@example.test"


def msg(i: int) -> dict[str, Any]:
    return {"from": FROM, "rcpt": TO, "source": f"Message-ID: <{i}@pool.test>\r\n\r\nbody {i}\r\n"}


def ids(datas: list[bytes]) -> Counter[str]:
    return Counter(str(email.message_from_bytes(d)["Message-ID"]) for d in datas)


def pool_for(server: Any, **kw: Any) -> Any:
    kw.setdefault("backoff", 0.001)
    return mailpump.Pool(server.host, server.port, tls="none", timeout=10, **kw)


def test_every_message_once_through_aiosmtpd(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with pool_for(server, connections=3, max_messages=7) as pool:
        futures = [pool.submit(msg(i)) for i in range(60)]
        results = [f.result(timeout=30) for f in futures]
    assert all(r.reply.code == 250 for r in results)
    assert ids([m.data for m in server.messages]) == Counter(f"<{i}@pool.test>" for i in range(60))
    stats = pool.stats
    assert (stats.sent, stats.retried, stats.failed, stats.in_flight) == (60, 0, 0, 0)
    assert stats.connections_opened >= 60 // 7
    assert pool.closed


def test_every_message_once_through_smtp_sink(smtp_sink: Callable[..., SmtpSink]) -> None:
    sink = smtp_sink(dump=True)
    with pool_for(sink, connections=4) as pool:
        for f in [pool.submit(msg(i)) for i in range(200)]:
            f.result(timeout=30)
    assert ids([d.message for d in sink.messages()]) == Counter(
        f"<{i}@pool.test>" for i in range(200)
    )


@pytest.mark.parametrize("code", ["421 4.3.2 shutting down", "451 4.3.0 try again"])
def test_a_transient_verdict_on_a_schedule_is_retried_and_delivered_once(
    aiosmtpd_server: Callable[..., RecordingServer], code: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    recorder = server.recorder
    real = recorder.handle_DATA
    calls = Counter[str]()

    async def every_third_refused(srv: Any, session: Any, envelope: Any) -> str:
        calls["data"] += 1
        if calls["data"] % 3 == 1:
            return code
        return await real(srv, session, envelope)

    setattr(recorder, "handle_DATA", every_third_refused)  # noqa: B010 (an instance hook)
    caplog.set_level(logging.INFO, logger="mailpump")
    with pool_for(server, connections=2, retries=5) as pool:
        for f in [pool.submit(msg(i)) for i in range(12)]:
            f.result(timeout=30)
    assert ids([m.data for m in server.messages]) == Counter(f"<{i}@pool.test>" for i in range(12))
    assert pool.stats.retried > 0 and pool.stats.sent == 12
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == pool.stats.retried
    assert all(r.levelno == logging.INFO for r in retries)
    # Each says why; a message queued behind the refused one is cut off before its mark.
    assert all(code[:3] in r.getMessage() or "connection-lost" in r.getMessage() for r in retries)
    assert any(code[:3] in r.getMessage() for r in retries)
    assert all(getattr(r, "peer", None) == f"{server.host}:{server.port}" for r in retries)


def drop_first_connection_at_mail(conn: Connection, line: bytes) -> None:
    if conn.number == 1 and line.startswith(b"MAIL"):
        conn.close()


def test_a_connection_dropped_before_the_mark_is_retried_and_delivered_once(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(on_command=drop_first_connection_at_mail)
    with mailpump.Pool("127.0.0.1", server.port, tls="none", backoff=0.001) as pool:
        result = pool.send(msg(1))
    assert result.reply.code == 250
    first, second = server.finished(2)
    assert not first.transactions
    assert [t.complete for t in second.transactions] == [True]
    assert pool.stats.retried == 1


def test_a_connection_dropped_after_the_mark_is_an_unknown_outcome_not_retried(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(replies={"eod": Fault.DISCONNECT})
    with mailpump.Pool("127.0.0.1", server.port, tls="none", backoff=0.001) as pool:
        with pytest.raises(mailpump.SMTPOutcomeUnknown):
            pool.send(msg(1))
    [conn] = server.finished(1)
    assert len(server.connections) == 1
    assert [t.complete for t in conn.transactions] == [True]
    assert (pool.stats.retried, pool.stats.failed) == (0, 1)


def test_a_one_shot_source_is_sent_at_most_once(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(on_command=drop_first_connection_at_mail)
    one_shot = iter([b"Subject: once\r\n\r\n", b"body\r\n"])
    with mailpump.Pool("127.0.0.1", server.port, tls="none", backoff=0.001) as pool:
        with pytest.raises(mailpump.SMTPConnectError) as caught:
            pool.send({"from": FROM, "rcpt": TO, "source": one_shot})
    assert caught.value.kind == "connection-lost"
    assert pool.stats.retried == 0
    assert len(server.connections) == 1


def test_close_without_waiting_cancels_what_has_not_started(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    started, proceed = threading.Event(), threading.Event()

    def held() -> Iterator[bytes]:
        started.set()
        proceed.wait(30)
        yield b"Subject: held\r\n\r\nbody\r\n"

    pool = pool_for(server, connections=1)
    first = pool.submit({"from": FROM, "rcpt": TO, "source": held()})
    assert started.wait(30)
    queued = [pool.submit(msg(i)) for i in range(5)]
    closer = threading.Thread(target=pool.close, kwargs={"wait": False})
    closer.start()
    for f in queued:
        with pytest.raises(concurrent.futures.CancelledError):
            f.result(timeout=30)
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(msg(9))
    proceed.set()
    assert first.result(timeout=30).reply.code == 250
    closer.join(30)
    assert not closer.is_alive()
    assert len(server.messages) == 1
    assert pool.stats.in_flight == 0


def test_close_with_waiting_drains_the_queue(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    pool = pool_for(server, connections=2)
    futures = [pool.submit(msg(i)) for i in range(30)]
    pool.close(wait=True)
    assert all(f.done() and f.result().reply.code == 250 for f in futures)
    assert len(server.messages) == 30
    pool.close()  # again: nothing more


def test_a_raising_done_callback_does_not_stop_the_worker(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with pool_for(server, connections=1) as pool:
        f = pool.submit(msg(1))
        f.add_done_callback(lambda _: 1 / 0)
        f.result(timeout=30)
        assert pool.send(msg(2)).reply.code == 250


def test_many_threads_submitting_at_once(aiosmtpd_server: Callable[..., RecordingServer]) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    threads, each = 8, 25
    barrier = threading.Barrier(threads)
    with pool_for(server, connections=4) as pool:

        def run(t: int) -> list[int]:
            barrier.wait(30)
            return [pool.send(msg(t * each + i)).reply.code for i in range(each)]

        with concurrent.futures.ThreadPoolExecutor(threads) as executor:
            codes = [c for cs in executor.map(run, range(threads)) for c in cs]
    assert codes == [250] * threads * each
    assert ids([m.data for m in server.messages]) == Counter(
        f"<{i}@pool.test>" for i in range(threads * each)
    )


def test_map_over_a_generator_keeps_at_most_window_in_flight(
    smtp_sink: Callable[..., SmtpSink],
) -> None:
    sink = smtp_sink()
    count, window = 20_000, 64
    produced = 0
    yielded = 0
    most_ahead = 0

    def messages() -> Iterator[dict[str, Any]]:
        nonlocal produced, most_ahead
        for i in range(count):
            produced += 1
            most_ahead = max(most_ahead, produced - yielded)
            yield msg(i)

    seen = set()
    with pool_for(sink, connections=4) as pool:
        for index, outcome in pool.map(messages(), window=window):
            yielded += 1
            assert not isinstance(outcome, BaseException), outcome
            seen.add(index)
    assert seen == set(range(count))
    assert most_ahead <= window
    assert pool.stats.sent == count


def test_map_yields_a_bad_message_with_its_exception(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with pool_for(server) as pool:
        got = dict(pool.map([msg(0), {"from": FROM, "source": "x"}, msg(2)]))
    assert isinstance(got[1], TypeError)
    assert got[0].reply.code == 250 and got[2].reply.code == 250


def test_pool_asend_and_async_with(aiosmtpd_server: Callable[..., RecordingServer]) -> None:
    server = aiosmtpd_server(tls="none", auth=False)

    async def main() -> list[int]:
        async with pool_for(server, connections=2) as pool:
            results = await asyncio.gather(*(pool.asend(msg(i)) for i in range(40)))
        return [r.reply.code for r in results]

    assert asyncio.run(main()) == [250] * 40
    assert len(server.messages) == 40


def test_module_asend(aiosmtpd_server: Callable[..., RecordingServer]) -> None:
    server = aiosmtpd_server(tls="none", auth=False)

    async def main() -> int:
        result = await mailpump.asend(
            from_=FROM, rcpt=TO, source="Subject: hi\r\n\r\nhi\r\n",
            server=server.host, port=server.port, tls="none",
        )  # fmt: skip
        return int(result.reply.code)

    assert asyncio.run(main()) == 250
    assert len(server.messages) == 1


def test_asend_cancelled_before_it_starts_is_never_sent(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    proceed = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def held() -> Iterator[bytes]:
            loop.call_soon_threadsafe(started.set)
            proceed.wait(30)
            yield b"Subject: held\r\n\r\nbody\r\n"

        async with pool_for(server, connections=1) as pool:
            first = asyncio.ensure_future(
                pool.asend({"from": FROM, "rcpt": TO, "source": held()})
            )
            await started.wait()
            second = asyncio.ensure_future(pool.asend(msg(2)))
            await asyncio.sleep(0)  # let it be submitted
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            proceed.set()
            assert (await first).reply.code == 250
        assert pool.stats.sent == 1 and pool.stats.failed == 1

    asyncio.run(main())
    [only] = server.messages
    assert b"held" in only.data


def test_asend_cancelled_mid_body_never_gets_its_mark(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted()
    proceed = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def body() -> Iterator[bytes]:
            yield b"Subject: cut\r\n\r\nfirst chunk\r\n"
            loop.call_soon_threadsafe(started.set)
            proceed.wait(30)
            yield b"second chunk\r\n"

        async with mailpump.Pool("127.0.0.1", server.port, tls="none") as pool:
            task = asyncio.ensure_future(pool.asend({"from": FROM, "rcpt": TO, "source": body()}))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            proceed.set()
        assert pool.stats.failed == 1 and pool.stats.sent == 0

    asyncio.run(main())
    [conn] = server.finished(1)
    assert [t.complete for t in conn.transactions] == [False]


def test_submit_after_close_and_bad_arguments_raise_clearly(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with pytest.raises(TypeError, match="create"):
        mailpump.Pool(server.host, server.port, create=lambda: None)
    with pytest.raises(ValueError):
        mailpump.Pool(server.host, server.port, connections=0)
    with pytest.raises(ValueError):
        mailpump.Pool(server.host, server.port, rate=(0, 1.0))
    pool = pool_for(server)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(msg(1))
    with pytest.raises(RuntimeError, match="closed"):
        list(pool.map([msg(1)]))


def test_an_idle_connection_says_quit_after_the_idle_timeout(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted()
    pool = pool_for(server, connections=1, idle_timeout=0.2)
    try:
        assert pool.send(msg(0)).reply.code == 250
        # Nothing more to send: the connection ends by itself once idle for 0.2 s (the wait for
        # the server to see it closed is bounded; the pool stays open throughout).
        [conn] = server.finished(1, timeout=30)
        assert not pool.closed
        assert conn.commands[-1] == b"QUIT"
        assert [t.complete for t in conn.transactions] == [True]
        # The next message opens a new connection.
        assert pool.send(msg(1)).reply.code == 250
    finally:
        pool.close()
    assert pool.stats.connections_opened == 2


def _rss() -> int:
    """This process's resident set, in bytes (Linux)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_map_over_a_long_generator_keeps_memory_flat(smtp_sink: Callable[..., SmtpSink]) -> None:
    # A connection kept busy by a long stream once kept a record per message it had carried:
    # 200,000 messages grew this process by tens of MiB. Now only what is in flight is held.
    sink = smtp_sink()
    count = 200_000

    def stream(n: int) -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield {"from": FROM, "rcpt": TO, "source": b"Subject: %d\r\n\r\nbody\r\n" % i}

    with pool_for(sink, connections=4) as pool:
        for _, outcome in pool.map(stream(20_000), window=500):
            assert not isinstance(outcome, BaseException), outcome
        before = _rss()
        done = 0
        for _, outcome in pool.map(stream(count), window=500):
            assert not isinstance(outcome, BaseException), outcome
            done += 1
        grown = _rss() - before
    assert done == count
    assert grown < 8 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB over {count} messages"
