#!/usr/bin/env python3
"""The CHUNKING benchmark (RFC 3030): BDAT against DATA, to a real server that offers both, a
private Postfix smtpd (tests/servers/postfix.py) that discards what it accepts.

    python bench/chunking.py                                   # both jobs (a few minutes)
    python bench/chunking.py --jobs large --size-mib 64 --large-rounds 3    # quick

Jobs, each contender in a fresh process, interleaved rounds (docs/benchmarking.md):
- large: one message with a SIZE-MiB attachment (256 by default, base64 on the wire) to Postfix,
  server and client unpinned: mailpump send() with CHUNKING (BDAT chunks), mailpump with
  chunking=False (DATA, dot-stuffed), and smtplib + email (the message built in memory, then
  sent with DATA) for reference. Time from the start of the build to the verdict, and peak RSS
  growth. Postfix's log confirms which command carried each message.
- proxy: M small messages over one connection through bench/delay_proxy.py (a 20 ms round trip
  by default) to Postfix (which offers PIPELINING and CHUNKING): Session.send_many with
  CHUNKING and with DATA (chunking=False), Pool(connections=1).map with CHUNKING and with DATA,
  Session.send, smtplib, smtp-source -d -s 1. The figure is messages per round trip (messages/s
  x the round trip); each contender's time includes connecting, the greeting, EHLO and QUIT.
  Postfix and the proxy run on CPU 1, the client on CPU 0. A last row sends straight to Postfix
  (no proxy): its rate x the round trip is the most Postfix itself lets through, the ceiling of
  every row above.

Postfix runs as root (its master switches users), listens on 127.0.0.1 only, takes messages of any
size (message_size_limit = 0), hands every accepted message to its `discard` transport (queued
in its private directory, then dropped: nothing piles up), and has in_flow_delay = 0 so that its
queue manager never slows smtpd down between messages. It is stopped with `postfix stop`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from rounds import Contender, command_line, measure, report, rss_kib, table, worker_cmd  # noqa: E402
from smtp import MIB, SOURCE, prebuilt  # noqa: E402
from volume import delay_proxy, probe_rtt  # noqa: E402
from volume import w_one as volume_w_one  # noqa: E402

# Postfix takes mail for its own test domain only (tests/servers/postfix.py).
FROM, RCPT = "<bench@mailpump.test>", "<sink@mailpump.test>"

# Appended to the private Postfix's main.cf: accepted mail is dropped, and smtpd never waits for
# the queue manager (in_flow_delay pauses it when mail arrives faster than it is delivered).
DISCARD = """\
virtual_transport = discard:benchmark
in_flow_delay = 0
"""


def small() -> bytes:
    """volume.py's small message (~1.2 KB), addressed to the Postfix test domain."""
    return prebuilt().replace(b"example.test", b"mailpump.test")


# -- workers -------------------------------------------------------------------------------------


def w_large(kind: str, host: str, port: int, path: str) -> None:
    """One message with the file at `path` attached: built and sent, timed to the verdict."""
    size = os.path.getsize(path)
    base = rss_kib()
    start = time.perf_counter()
    if kind in ("bdat", "data"):
        import mailpump

        source = mailpump.message({"headers": {"subject": "big"}, "body": [
            {"body": "see attachment"}, mailpump.attachment(path, "big.bin")]})  # fmt: skip
        mailpump.send(from_=FROM, rcpt=RCPT, source=source, server=host, port=port, tls="none",
                      timeout=300, chunking=kind == "bdat")  # fmt: skip
    elif kind == "smtplib":
        import email.message
        import smtplib

        with open(path, "rb") as f:
            data = f.read()
        msg = email.message.EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = FROM, RCPT, "big"
        msg.set_content("see attachment")
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="big.bin")
        with smtplib.SMTP(host, port, timeout=300) as s:
            s.send_message(msg)
    else:
        raise SystemExit(f"unknown kind {kind}")
    report(time.perf_counter() - start, size, base)


def w_one(kind: str, host: str, port: int, count: int) -> None:
    """`count` small messages over one connection, timed from connect to QUIT: volume.py's worker
    with this benchmark's message and envelope. `kind` is smtplib or WAY-bdat / WAY-data, WAY one
    of send, send_many, pool1."""
    way, _, command = kind.partition("-")
    volume_w_one(way, host, port, count, source=small(), sender=FROM, rcpt=RCPT,
                 chunking=command != "data")  # fmt: skip


# -- the server ----------------------------------------------------------------------------------


@contextmanager
def postfix(cpu: str | None) -> Iterator[Any]:
    """A private Postfix smtpd that discards what it accepts (see the module's docstring)."""
    if os.geteuid() != 0:
        sys.exit("the private Postfix runs as root (its master switches to the postfix user)")
    from servers.postfix import PostfixServer, postfix_binary

    binary = postfix_binary()
    if binary is None:
        sys.exit("Postfix is not installed (Debian package `postfix`)")
    server = PostfixServer(binary, extra_config=DISCARD, cpu=cpu)
    try:
        yield server
    finally:
        server.stop()


def commands_logged(server: Any) -> list[dict[str, int]]:
    """Every finished session's command counts from Postfix's log (`bdat=N data=M ...`)."""
    pattern = re.compile(r"postfix/smtpd\[\d+\]: disconnect from \S+ (.*)$", re.M)
    sessions = []
    for match in pattern.finditer(server.log_text()):
        counts = {}
        for item in match.group(1).split():
            name, _, value = item.partition("=")
            counts[name] = int(value.split("/")[-1])
        sessions.append(counts)
    return sessions


# -- driver --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--jobs", default="large,proxy")
    ap.add_argument("--size-mib", type=int, default=256, help="the attachment in the large job")
    ap.add_argument("--large-rounds", type=int, default=3)
    ap.add_argument("--proxy-count", type=int, default=400, help="messages in the proxy job")
    ap.add_argument("--rtt-ms", type=float, default=20.0, help="round trip through the proxy")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the proxy job")
    args = ap.parse_args()
    if args.worker:
        name, *rest = args.worker
        if name == "large":
            w_large(rest[0], rest[1], int(rest[2]), rest[3])
        elif name == "one":
            w_one(rest[0], rest[1], int(rest[2]), int(rest[3]))
        else:
            raise SystemExit(f"unknown worker {name}")
        return

    jobs = args.jobs.split(",")
    host = "127.0.0.1"
    print(f"# mailpump CHUNKING benchmark\n\ncommand: `{command_line()}`; each contender in a "
          "fresh process, order rotated each round; server: a private Postfix smtpd that "
          "discards what it accepts\n")  # fmt: skip

    if "large" in jobs:
        with tempfile.TemporaryDirectory(prefix="mailpump-bench-") as tmp, postfix(None) as server:
            path = os.path.join(tmp, "big.bin")
            with open(path, "wb") as f:
                for _ in range(args.size_mib):
                    f.write(os.urandom(MIB))
            p = str(server.port)
            cs = [
                Contender("mailpump, CHUNKING (BDAT)",
                          worker_cmd("chunking.py", "large", "bdat", host, p, path), cpu=None),
                Contender("mailpump, chunking=False (DATA)",
                          worker_cmd("chunking.py", "large", "data", host, p, path), cpu=None),
                Contender("smtplib + email (DATA)",
                          worker_cmd("chunking.py", "large", "smtplib", host, p, path), cpu=None),
            ]  # fmt: skip
            res = measure(cs, args.large_rounds, timeout=900)
            sessions = [s for s in commands_logged(server) if "mail" in s]
        print(f"## One {args.size_mib} MiB attachment (base64 on the wire) to Postfix, unpinned: "
              "MiB of attachment per second, from building the message to the verdict\n")
        print(table(res, "smtplib + email (DATA)", "MiB/s", MIB), "\n")
        times = ", ".join(f"{r.name} {statistics.median(s.seconds for s in r.samples):.2f} s"
                          for r in res if r.samples)  # fmt: skip
        bdat = sum(1 for s in sessions if s.get("bdat", 0) > 0)
        data = sum(1 for s in sessions if s.get("data", 0) > 0)
        print(f"Median times: {times}. Postfix's log: {bdat} sessions sent with BDAT, {data} "
              "with DATA.\n", flush=True)  # fmt: skip

    if "proxy" in jobs:
        n = str(args.proxy_count)
        rtt = args.rtt_ms / 1000
        with postfix("1") as server, delay_proxy(server.port, args.rtt_ms / 2, "1") as port:
            p = str(port)
            seen: list[float] = []

            def probe(_: int) -> None:  # the round trip as it is, before every round
                seen.extend(probe_rtt(port, 10))

            def one(kind: str) -> list[str]:
                return worker_cmd("chunking.py", "one", kind, host, p, n)

            cs = [
                Contender("smtp-source -d -s 1 (C)",
                          [SOURCE, "-d", "-s", "1", "-m", n, "-l", "1024",
                           "-f", FROM.strip("<>"), "-t", RCPT.strip("<>"), f"{host}:{p}"],
                          cpu="0", units=args.proxy_count, external_timing=True),
                Contender("mailpump send_many, CHUNKING", one("send_many-bdat"), cpu="0"),
                Contender("mailpump send_many, DATA", one("send_many-data"), cpu="0"),
                Contender("mailpump Pool(1).map, CHUNKING", one("pool1-bdat"), cpu="0"),
                Contender("mailpump Pool(1).map, DATA", one("pool1-data"), cpu="0"),
                Contender("mailpump Session.send, CHUNKING", one("send-bdat"), cpu="0"),
                Contender("smtplib", one("smtplib"), cpu="0"),
                # Postfix's own pace, for the reader: no proxy, so msg/s x the round trip is the
                # most any client could get through it.
                Contender("Postfix's ceiling: send_many, CHUNKING, no proxy",
                          worker_cmd("chunking.py", "one", "send_many-bdat", host,
                                     str(server.port), n), cpu="0"),
            ]  # fmt: skip
            # Bounded: a contender at 0.1 messages per round trip still ends well within this.
            res = measure(cs, args.rounds, timeout=max(120, 20 * args.proxy_count * rtt),
                          before_round=probe)  # fmt: skip
            sessions = [s for s in commands_logged(server) if "mail" in s]
        print(f"## {args.proxy_count} messages over one connection through a {args.rtt_ms:g} ms "
              "round trip (delay proxy; Postfix and proxy on CPU 1, client on CPU 0): messages "
              "per round trip (msg/s x the round trip)\n")  # fmt: skip
        print(table(res, "smtp-source -d -s 1 (C)", "msg/round trip", 1 / rtt, 3), "\n")
        real = statistics.median(seen)
        per_real = ", ".join(f"{r.name} {statistics.median(r.rates()) * real:.3f}"
                             for r in res if r.rates())  # fmt: skip
        bdat = sum(1 for s in sessions if s.get("bdat", 0) > 0)
        data = sum(1 for s in sessions if s.get("data", 0) > 0)
        print(f"The round trip as measured through the proxy ({len(seen)} NOOPs): median "
              f"{real * 1000:.2f} ms; the table uses the configured {args.rtt_ms:g} ms. Per "
              f"measured round trip: {per_real}. Postfix's log: {bdat} sessions with BDAT, "
              f"{data} with DATA.\n", flush=True)  # fmt: skip

    print("Target (issue 13): >= 4 messages per round trip through send_many and the pool "
          "with CHUNKING.")


if __name__ == "__main__":
    main()
