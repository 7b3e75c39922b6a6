#!/usr/bin/env python3
"""A minimal SMTP server that discards messages, fast enough not to be the bottleneck.

It answers the dialogue (EHLO with PIPELINING, MAIL, RCPT, DATA, RSET, NOOP, QUIT; pipelined
commands included) and reads DATA 1 MiB at a time, scanning only for the end-of-data mark
(RFC 5321 §4.1.1.4). It prints `READY <port>` once listening, so whoever starts it needs no
polling, and it counts the DATA bytes it discarded (`STATS` line on exit).

    python bench/discard_server.py [--port 0] [--once]
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading

READ = 1 << 20
EHLO = (b"250-discard.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n"
        b"250 ENHANCEDSTATUSCODES\r\n")  # fmt: skip


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages = 0
        self.data_bytes = 0


def serve(conn: socket.socket, stats: Stats) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    out: list[bytes] = [b"220 discard.test ESMTP\r\n"]

    def flush() -> None:
        if out:
            conn.sendall(b"".join(out))
            out.clear()

    with conn:
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                flush()  # answer everything pipelined so far before blocking
                chunk = conn.recv(READ)
                if not chunk:
                    return
                buf += chunk
                continue
            line, buf = buf[: nl + 1], buf[nl + 1 :]
            verb = line[:4].upper()
            if verb in (b"EHLO",):
                out.append(EHLO)
            elif verb == b"DATA":
                out.append(b"354 go ahead\r\n")
                flush()
                buf, size = discard_data(conn, buf)
                if size < 0:
                    return
                with stats.lock:
                    stats.messages += 1
                    stats.data_bytes += size
                out.append(b"250 2.0.0 Ok: discarded\r\n")
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
                flush()
                return
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                out.append(b"250 2.0.0 Ok\r\n")
            else:
                out.append(b"500 5.5.2 unrecognised\r\n")


def discard_data(conn: socket.socket, buf: bytes) -> tuple[bytes, int]:
    """Skip to the end-of-data mark; returns the rest of the buffer and the bytes skipped."""
    if buf.startswith(b".\r\n"):
        return buf[3:], 0
    size = 0
    while True:
        end = buf.find(b"\r\n.\r\n")
        if end >= 0:
            return buf[end + 5 :], size + end + 5
        size += len(buf) - 4
        buf = buf[-4:]
        chunk = conn.recv(READ)
        if not chunk:
            return b"", -1
        buf += chunk


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--once", action="store_true", help="exit after the first connection")
    args = ap.parse_args()
    stats = Stats()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=128)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    print(f"READY {listener.getsockname()[1]}", flush=True)
    try:
        while True:
            conn, _ = listener.accept()
            if args.once:
                serve(conn, stats)
                break
            threading.Thread(target=serve, args=(conn, stats), daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        print(f"STATS messages={stats.messages} data_bytes={stats.data_bytes}", flush=True)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
