#!/usr/bin/env python3
"""An order-preserving TCP proxy on loopback that delays each direction by a fixed one-way delay.

Every chunk read from one side is queued with a release time (arrival + delay) and written to the
other side at that time, in the order it was read: no reordering, no merging or splitting of
chunks beyond what TCP itself does. With the default 10 ms each way a client sees a 20 ms round
trip to the server behind it; the bandwidth is not limited. An end of stream is passed on (as a
half-close) after the data before it, with the same delay. It prints `READY <port>` once
listening, like bench/discard_server.py, so whoever starts it needs no polling.

    python bench/delay_proxy.py --upstream 127.0.0.1:PORT [--delay-ms 10] [--port 0]
    python bench/delay_proxy.py --self-test      # bytes arrive unchanged and in order; prints OK

Listens on 127.0.0.1 only and forwards to a loopback address only.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import socket
import sys
import time

READ = 65536
QUEUE_CHUNKS = 1024  # a bound on what one direction holds: about 64 MiB at most


async def pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Forwards reader -> writer, each chunk released `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

    async def receive() -> None:
        try:
            while True:
                chunk = await reader.read(READ)
                await queue.put((loop.time() + delay, chunk))  # b"" marks the end of stream
                if not chunk:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time() + delay, b""))

    async def release() -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    receiving = asyncio.ensure_future(receive())
    try:
        await release()
    finally:
        receiving.cancel()


async def handle(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    upstream: tuple[str, int],
    delay: float,
) -> None:
    try:
        server_r, server_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    for w in (client_w, server_w):  # asyncio sets it already; say so for the reader
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    both = [
        asyncio.ensure_future(pump(client_r, server_w, delay)),
        asyncio.ensure_future(pump(server_r, client_w, delay)),
    ]
    try:
        # A failure in either direction (a reset) ends the connection as a whole.
        done, pending = await asyncio.wait(both, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
    except (ConnectionError, OSError):
        pass
    finally:
        for w in (client_w, server_w):
            w.close()


def loopback(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"upstream {host} is not a loopback address")
    return host, int(port)


async def serve(port: int, upstream: tuple[str, int], delay: float, ready: bool = True) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream, delay), "127.0.0.1", port, backlog=128
    )
    if ready:
        print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


# -- self-test -----------------------------------------------------------------------------------


async def self_test(delay: float) -> None:
    """Echo server behind the proxy; several connections at once send chunks of many sizes,
    half-close, and must read back exactly what they sent, in order. No timing threshold: the
    round trip seen is printed for the reader."""

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while chunk := await r.read(READ):
            w.write(chunk)
            await w.drain()
        w.close()

    echo_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    echo_port = echo_server.sockets[0].getsockname()[1]
    proxy = await asyncio.start_server(
        lambda r, w: handle(r, w, ("127.0.0.1", echo_port), delay), "127.0.0.1", 0
    )
    proxy_port = proxy.sockets[0].getsockname()[1]

    async def one(seed: int) -> float:
        r, w = await asyncio.open_connection("127.0.0.1", proxy_port)
        start = time.perf_counter()
        w.write(b"x")
        await w.drain()
        assert await r.readexactly(1) == b"x"
        rtt = time.perf_counter() - start
        # Chunks of sizes from 1 byte to 256 KiB, each numbered, written back to back.
        sizes = [1, 2, 3, 100, 1460, 4096, 65535, 65536, 65537, 262144, 7, 1]
        sent = bytearray()
        for i, n in enumerate(sizes * 2):
            chunk = (i.to_bytes(4, "big") + os.urandom(max(n - 4, 0)))[:n]
            sent += chunk
            w.write(chunk)
            if i % 3 == seed % 3:
                await w.drain()
        w.write_eof()
        got = await r.read()  # to the end of stream: the echo's half-close came through
        assert got == bytes(sent), f"connection {seed}: {len(got)} bytes back, {len(sent)} sent"
        w.close()
        return rtt

    rtts = await asyncio.gather(*(one(i) for i in range(4)))
    proxy.close()
    echo_server.close()
    ms = ", ".join(f"{x * 1000:.1f}" for x in rtts)
    print(f"OK: 4 connections, bytes unchanged and in order, end of stream passed on; "
          f"first round trip {ms} ms with {delay * 2000:.0f} ms configured")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", help="HOST:PORT of the server behind the proxy (loopback)")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    ap.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay (default 10)")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    delay = args.delay_ms / 1000
    if args.self_test:
        asyncio.run(asyncio.wait_for(self_test(delay), 60))
        return
    if not args.upstream:
        ap.error("--upstream is required")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(serve(args.port, loopback(args.upstream), delay))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
