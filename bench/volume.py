#!/usr/bin/env python3
"""The volume benchmark: mailpump's Pool, asyncio and pipelined sessions against smtp-source (C),
smtplib and aiosmtplib.

    python bench/volume.py                                             # full run (several minutes)
    python bench/volume.py --count 2000 --proxy-count 40 --map-count 20000 --rounds 3   # quick

Jobs, each contender in a fresh process, interleaved rounds (docs/benchmarking.md):
- pool: N small messages (~1.2 KB) over 4 connections to Postfix's smtp-sink: mailpump.Pool
  (connections=4) through map() and through submit(), smtp-source -s 4 -d (C), smtplib in a
  ThreadPoolExecutor(4) (a connection per worker thread, one task per message), aiosmtplib with 4
  connections under asyncio.gather, mailpump with 4 threads and a Session each. Ratios against
  smtp-source. In the same run, pool.asend from asyncio (every message a coroutine under
  asyncio.gather): a second table puts it against aiosmtplib.
- proxy: M messages over one connection through bench/delay_proxy.py (a 20 ms round trip by
  default) to smtp-sink: Session.send_many, Session.send, Pool(connections=1).map, smtplib,
  aiosmtplib, smtp-source -d -s 1. The figure is messages per round trip (messages/s x the round
  trip); each contender's time includes its connection, greeting, EHLO and QUIT, as smtp-source's
  does.
- map: pool.map over a generator of K small messages (each a distinct bytes object) to
  smtp-sink: peak RSS growth over the worker's baseline, beside 4 threads with a Session each
  pulling from the same kind of generator (the hand-made way, flat by construction).
Modes of the pool job: "both" (server and clients unpinned: 4 connections use both CPUs), "same"
(all on CPU 0), "split" (server CPU 1, clients CPU 0). The proxy job pins smtp-sink and the proxy to
CPU 1 and the client to CPU 0; the map job runs unpinned.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailpump.types import Transaction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rounds import Contender, command_line, measure, report, rss_kib, table, worker_cmd  # noqa: E402
from smtp import FROM, RCPT, SOURCE, prebuilt, smtp_sink  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONNECTIONS = 4


def distinct(i: int) -> bytes:
    """A small message of its own (its own bytes object), as a personalised mailing makes them:
    a pool that held on to messages it had sent would show in its RSS."""
    return (f"From: {FROM}\r\nTo: {RCPT}\r\nSubject: benchmark message {i}\r\n"
            f"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <b{i}@example.test>\r\n\r\n"
            ).encode() + BODY_BYTES  # fmt: skip


BODY_BYTES = prebuilt().split(b"\r\n\r\n", 1)[1]


def mailt(source: bytes, sender: str = FROM, rcpt: str = RCPT) -> Transaction:
    return {"from": sender, "rcpt": rcpt, "source": source}


def api(obj: object) -> Any:
    """`obj` untyped: Pool and Session.send_many are written against the API of issue 9, which
    may not be in the stub yet."""
    return obj


def fail_on(errors: int, total: int, expected: int) -> None:
    if errors or total != expected:
        sys.exit(f"{errors} errors, {total} results for {expected} messages")


# -- workers: 4 connections ----------------------------------------------------------------------


def w_pool(kind: str, host: str, port: int, count: int) -> None:
    """mailpump.Pool(connections=4): map, submit or asend."""
    import mailpump

    raw = prebuilt()
    pool_cls = api(mailpump).Pool  # until the API lands, an AttributeError here is a failed row
    base = rss_kib()
    errors = total = 0
    start = time.perf_counter()
    if kind == "map":
        with pool_cls(host, port, connections=CONNECTIONS, tls="none") as pool:
            for _, result in pool.map(mailt(raw)
                                      for _ in range(count)):  # fmt: skip
                total += 1
                errors += isinstance(result, BaseException)
    elif kind == "submit":
        with pool_cls(host, port, connections=CONNECTIONS, tls="none") as pool:
            futures = [pool.submit(mailt(raw))
                       for _ in range(count)]  # fmt: skip
            for f in futures:
                total += 1
                errors += f.exception() is not None
    elif kind == "asend":
        import asyncio

        async def run() -> list[object]:
            async with pool_cls(host, port, connections=CONNECTIONS, tls="none") as pool:
                done: list[object] = await asyncio.gather(
                    *(pool.asend(mailt(raw)) for _ in range(count)), return_exceptions=True
                )
                return done

        results = asyncio.run(run())
        total = len(results)
        errors = sum(isinstance(r, BaseException) for r in results)
    else:
        raise SystemExit(f"unknown pool kind {kind}")
    seconds = time.perf_counter() - start
    fail_on(errors, total, count)
    report(seconds, count, base)


def w_threads(host: str, port: int, count: int) -> None:
    """4 threads, each with its own Session, each sending its share."""
    import threading

    import mailpump

    raw = prebuilt()
    base = rss_kib()
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            with mailpump.open(host, port, tls="none") as s:
                s.greet()
                for _ in range(n):
                    s.send(mailt(raw))
                s.quit()
        except BaseException as e:  # noqa: BLE001  reported below
            failures.append(e)

    shares = [count // CONNECTIONS + (i < count % CONNECTIONS) for i in range(CONNECTIONS)]
    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(n,)) for n in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if failures:
        raise failures[0]
    report(seconds, count, base)


def w_smtplib_pool(host: str, port: int, count: int) -> None:
    """smtplib in a ThreadPoolExecutor(4): one task per message, a connection per worker thread."""
    import smtplib
    import threading
    from concurrent.futures import ThreadPoolExecutor

    raw = prebuilt()
    base = rss_kib()
    local = threading.local()
    lock = threading.Lock()
    conns: list[smtplib.SMTP] = []

    def send(_: int) -> None:
        s = getattr(local, "smtp", None)
        if s is None:
            s = local.smtp = smtplib.SMTP(host, port)
            with lock:
                conns.append(s)
        s.sendmail(FROM, [RCPT], raw)

    start = time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as ex:
        for _ in ex.map(send, range(count)):
            pass
    for s in conns:
        s.quit()
    report(time.perf_counter() - start, count, base)


def w_aiosmtplib(host: str, port: int, count: int, connections: int) -> None:
    """aiosmtplib: `connections` connections under asyncio.gather, sharing one iterator."""
    import asyncio

    import aiosmtplib

    raw = prebuilt()
    base = rss_kib()

    async def one(todo: Iterator[int]) -> None:
        async with aiosmtplib.SMTP(hostname=host, port=port, start_tls=False) as s:
            for _ in todo:
                await s.sendmail(FROM, [RCPT], raw)

    async def run() -> None:
        todo = iter(range(count))
        await asyncio.gather(*(one(todo) for _ in range(connections)))

    start = time.perf_counter()
    asyncio.run(run())
    report(time.perf_counter() - start, count, base)


# -- workers: one connection (through the delay proxy) -------------------------------------------


def w_one(
    kind: str,
    host: str,
    port: int,
    count: int,
    *,
    source: bytes | None = None,
    sender: str = FROM,
    rcpt: str = RCPT,
    chunking: bool = True,
) -> None:
    """One connection, timed from connect to QUIT. bench/chunking.py passes its own message and
    envelope, and `chunking` (mailpump's default, True, unless it measures DATA)."""
    raw = prebuilt() if source is None else source
    if kind == "smtplib":
        import smtplib

        base = rss_kib()
        start = time.perf_counter()
        with smtplib.SMTP(host, port) as s:
            for _ in range(count):
                s.sendmail(sender, [rcpt], raw)
        report(time.perf_counter() - start, count, base)
        return
    import mailpump

    base = rss_kib()
    errors = total = 0
    start = time.perf_counter()
    if kind == "pool1":
        pool_cls = api(mailpump).Pool
        with pool_cls(host, port, connections=1, tls="none", chunking=chunking) as pool:
            for _, result in pool.map(mailt(raw, sender, rcpt)
                                      for _ in range(count)):  # fmt: skip
                total += 1
                errors += isinstance(result, BaseException)
    else:
        with mailpump.open(host, port, tls="none", chunking=chunking) as s:
            s.greet()
            if kind == "send":
                for _ in range(count):
                    s.send(mailt(raw, sender, rcpt))
                    total += 1
            elif kind == "send_many":
                for result in api(s).send_many(mailt(raw, sender, rcpt)
                                          for _ in range(count)):  # fmt: skip
                    total += 1
                    errors += isinstance(result, BaseException)
            else:
                raise SystemExit(f"unknown kind {kind}")
            s.quit()
    seconds = time.perf_counter() - start
    fail_on(errors, total, count)
    report(seconds, count, base)


# -- workers: memory of map over a long generator ------------------------------------------------


def w_map(kind: str, host: str, port: int, count: int) -> None:
    import threading

    import mailpump

    def mailts() -> Iterator[Transaction]:
        for i in range(count):
            yield mailt(distinct(i))

    base = rss_kib()
    errors = total = 0
    start = time.perf_counter()
    if kind == "pool":
        pool_cls = api(mailpump).Pool
        with pool_cls(host, port, connections=CONNECTIONS, tls="none") as pool:
            for _, result in pool.map(mailts()):
                total += 1
                errors += isinstance(result, BaseException)
    else:  # 4 threads, each with a Session, pulling from one shared generator
        todo = mailts()
        lock = threading.Lock()
        counts = [0] * CONNECTIONS
        failures: list[BaseException] = []

        def run(k: int) -> None:
            try:
                with mailpump.open(host, port, tls="none") as s:
                    s.greet()
                    while True:
                        with lock:
                            one = next(todo, None)
                        if one is None:
                            break
                        s.send(one)
                        counts[k] += 1
                    s.quit()
            except BaseException as e:  # noqa: BLE001  reported below
                failures.append(e)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise failures[0]
        total = sum(counts)
    seconds = time.perf_counter() - start
    fail_on(errors, total, count)
    report(seconds, count, base)


# -- the delay proxy -----------------------------------------------------------------------------


@contextmanager
def delay_proxy(upstream: int, delay_ms: float, cpu: str | None) -> Iterator[int]:
    argv = [sys.executable, os.path.join(HERE, "delay_proxy.py"),
            "--upstream", f"127.0.0.1:{upstream}", "--delay-ms", str(delay_ms)]  # fmt: skip
    if cpu is not None:
        argv = ["taskset", "-c", cpu, *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "READY <port>"
        if not line.startswith("READY "):
            raise RuntimeError("delay proxy did not start")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        proc.wait(10)


def probe_rtt(port: int, count: int = 20) -> list[float]:
    """Round trips through the proxy, seconds: NOOP and its reply, `count` times."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()  # the greeting
        rtts = []
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(b"NOOP\r\n")
            f.readline()
            rtts.append(time.perf_counter() - start)
        sock.sendall(b"QUIT\r\n")
        f.readline()
    return rtts


# -- driver --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=10_000, help="messages in the pool job")
    ap.add_argument("--proxy-count", type=int, default=200, help="messages in the proxy job")
    ap.add_argument("--rtt-ms", type=float, default=20.0, help="round trip through the proxy")
    ap.add_argument("--map-count", type=int, default=1_000_000, help="messages in the map job")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--map-rounds", type=int, default=3,
                    help="rounds of the map job (its figure, RSS growth, varies little)")
    ap.add_argument("--jobs", default="pool,proxy,map")
    ap.add_argument("--modes", default="both", help="modes of the pool job: both,same,split")
    args = ap.parse_args()
    if args.worker:
        name, *rest = args.worker
        if name == "pool":
            w_pool(rest[0], rest[1], int(rest[2]), int(rest[3]))
        elif name == "threads":
            w_threads(rest[0], int(rest[1]), int(rest[2]))
        elif name == "smtplib-pool":
            w_smtplib_pool(rest[0], int(rest[1]), int(rest[2]))
        elif name == "aiosmtplib":
            w_aiosmtplib(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        elif name == "one":
            w_one(rest[0], rest[1], int(rest[2]), int(rest[3]))
        elif name == "map":
            w_map(rest[0], rest[1], int(rest[2]), int(rest[3]))
        else:
            raise SystemExit(f"unknown worker {name}")
        return

    jobs = args.jobs.split(",")
    cpus = {"both": (None, None), "same": ("0", "0"), "split": ("1", "0")}
    labels = {"both": "both CPUs (server and client unpinned)",
              "same": "same core (server and client on CPU 0)",
              "split": "split (server CPU 1, client CPU 0)"}  # fmt: skip
    print(f"# mailpump volume benchmark\n\ncommand: `{command_line()}`; rounds: {args.rounds}; "
          "each contender in a fresh process, order rotated each round\n")  # fmt: skip
    host = "127.0.0.1"

    if "pool" in jobs:
        for mode in args.modes.split(","):
            server_cpu, client_cpu = cpus[mode]
            n = str(args.count)
            with smtp_sink(server_cpu) as port:
                p = str(port)
                cs = [
                    Contender("smtp-source -s 4 (C)",
                              [SOURCE, "-d", "-s", "4", "-m", n, "-l", "1024", f"{host}:{p}"],
                              cpu=client_cpu, units=args.count, external_timing=True),
                    Contender("mailpump Pool(4).map",
                              worker_cmd("volume.py", "pool", "map", host, p, n), cpu=client_cpu),
                    Contender("mailpump Pool(4).submit",
                              worker_cmd("volume.py", "pool", "submit", host, p, n),
                              cpu=client_cpu),
                    Contender("mailpump Pool(4).asend, asyncio",
                              worker_cmd("volume.py", "pool", "asend", host, p, n),
                              cpu=client_cpu),
                    Contender("mailpump, 4 threads x Session",
                              worker_cmd("volume.py", "threads", host, p, n), cpu=client_cpu),
                    Contender("smtplib, ThreadPoolExecutor(4)",
                              worker_cmd("volume.py", "smtplib-pool", host, p, n), cpu=client_cpu),
                    Contender("aiosmtplib, 4 connections, gather",
                              worker_cmd("volume.py", "aiosmtplib", host, p, n, "4"),
                              cpu=client_cpu),
                ]  # fmt: skip
                res = measure(cs, args.rounds, timeout=300)
            print(f"## {args.count} small messages over 4 connections, {labels[mode]} (msg/s)\n")
            print(table(res, "smtp-source -s 4 (C)", "msg/s"), "\n", flush=True)
            aio = [r for r in res if r.name.startswith(("aiosmtplib", "mailpump Pool(4).asend"))]
            print("## The same run, asyncio only: pool.asend against aiosmtplib (msg/s)\n")
            print(table(aio, "aiosmtplib, 4 connections, gather", "msg/s"), "\n", flush=True)

    if "proxy" in jobs:
        n = str(args.proxy_count)
        rtt = args.rtt_ms / 1000
        with smtp_sink("1") as sink, delay_proxy(sink, args.rtt_ms / 2, "1") as port:
            p = str(port)
            seen: list[float] = []

            def probe(_: int) -> None:  # the round trip as it is, before every round
                seen.extend(probe_rtt(port, 10))

            cs = [
                Contender("smtp-source -d -s 1 (C)",
                          [SOURCE, "-d", "-s", "1", "-m", n, "-l", "1024", f"{host}:{p}"],
                          cpu="0", units=args.proxy_count, external_timing=True),
                Contender("mailpump Session.send_many",
                          worker_cmd("volume.py", "one", "send_many", host, p, n), cpu="0"),
                Contender("mailpump Session.send",
                          worker_cmd("volume.py", "one", "send", host, p, n), cpu="0"),
                Contender("mailpump Pool(1).map",
                          worker_cmd("volume.py", "one", "pool1", host, p, n), cpu="0"),
                Contender("smtplib",
                          worker_cmd("volume.py", "one", "smtplib", host, p, n), cpu="0"),
                Contender("aiosmtplib",
                          worker_cmd("volume.py", "aiosmtplib", host, p, n, "1"), cpu="0"),
            ]  # fmt: skip
            # Bounded: a contender at 0.1 messages per round trip still ends well within this.
            res = measure(cs, args.rounds, timeout=max(120, 20 * args.proxy_count * rtt),
                          before_round=probe)  # fmt: skip
        print(f"## {args.proxy_count} messages over one connection through a {args.rtt_ms:g} ms "
              "round trip (delay proxy; smtp-sink and proxy on CPU 1, client on CPU 0): "
              "messages per round trip (msg/s x the round trip)\n")  # fmt: skip
        ref = "smtp-source -d -s 1 (C)"
        print(table(res, ref, "msg/round trip", 1 / rtt, 3), "\n")
        seen.sort()
        real = statistics.median(seen)
        per_real = ", ".join(f"{r.name} {statistics.median(r.rates()) * real:.3f}"
                             for r in res if r.rates())  # fmt: skip
        print(f"The round trip as measured through the proxy ({len(seen)} NOOPs, 10 before each "
              f"round): median {real * 1000:.2f} ms (min {seen[0] * 1000:.2f}, max "
              f"{seen[-1] * 1000:.2f}); the table uses the configured {args.rtt_ms:g} ms. Per "
              f"measured round trip: {per_real}. Connect, greeting, EHLO and QUIT (about 2.5 "
              f"round trips) are in every time: one round trip per message scores at most "
              f"{args.proxy_count / (args.proxy_count + 2.5):.3f} per measured round trip.\n",
              flush=True)  # fmt: skip

    if "map" in jobs:
        n = str(args.map_count)
        with smtp_sink(None) as port:
            p = str(port)
            cs = [
                Contender("mailpump Pool(4).map, generator",
                          worker_cmd("volume.py", "map", "pool", host, p, n), cpu=None),
                Contender("mailpump, 4 threads x Session, shared generator",
                          worker_cmd("volume.py", "map", "threads", host, p, n), cpu=None),
            ]  # fmt: skip
            res = measure(cs, args.map_rounds, timeout=max(300, args.map_count / 500))
        print(f"## {args.map_count:,} small messages (each its own bytes) from a generator, "
              "4 connections, unpinned: peak RSS growth over the worker's baseline "
              f"({args.map_rounds} rounds; rates for context, msg/s)\n")  # fmt: skip
        print(table(res, "mailpump, 4 threads x Session, shared generator", "msg/s"), "\n",
              flush=True)  # fmt: skip

    print("Targets (docs/benchmarking.md): Pool(4) >= 1.0 x smtp-source -s 4; pool.asend >= 5 x "
          "aiosmtplib; Session.send_many >= 1.0 message per round trip through the proxy; "
          "pool.map over 1,000,000 messages: peak RSS growth < 32 MiB.")  # fmt: skip


if __name__ == "__main__":
    main()
