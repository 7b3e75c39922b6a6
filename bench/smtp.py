#!/usr/bin/env python3
"""The sending benchmark: mailpump against smtp-source (C), smtplib and aiosmtplib.

    python bench/smtp.py                                   # full run (a few minutes)
    python bench/smtp.py --count 300 --each 50 --big-mib 16 --rounds 3   # quick

Jobs, each contender in a fresh process, interleaved rounds (docs/benchmarking.md):
- small: N small messages (~1.2 KB) over one connection to Postfix's smtp-sink. mailpump sending
  pre-built bytes over one Session, mailpump building each message with message(), smtp-source
  (-d: one connection), smtplib pre-built, smtplib + EmailMessage, aiosmtplib pre-built.
- each: M messages with a new connection each: mailpump.send, smtplib, smtp-source (no -d).
- big: one attachment streamed from a file to bench/discard_server.py: mailpump (attachment(path)),
  smtp-source sending the same number of wire bytes, smtplib + email.
- threads: two threads each with its own session vs one thread, mailpump, unpinned.
Modes: "same core" (server and client on CPU 0) and "split" (server CPU 1, client CPU 0).
Rates are messages/s (MiB/s of attachment for big); ratios are medians against the reference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rounds import Contender, command_line, measure, report, rss_kib, table, worker_cmd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
MIB = 1024 * 1024
FROM, RCPT = "<bench@example.test>", "<sink@example.test>"
BODY = "".join(f"Line {i:02d} of a small benchmark message, about sixty octets long.\r\n"
               for i in range(15))  # fmt: skip


def prebuilt() -> bytes:
    return (f"From: {FROM}\r\nTo: {RCPT}\r\nSubject: benchmark message\r\n"
            f"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <b@example.test>\r\n\r\n"
            + BODY).encode()  # fmt: skip


# -- workers -------------------------------------------------------------------------------------


def w_mailpump(kind: str, host: str, port: int, count: int) -> None:
    import threading

    import mailpump

    raw = prebuilt()
    base = rss_kib()
    start = time.perf_counter()
    if kind == "each":
        for _ in range(count):
            mailpump.send(from_=FROM, rcpt=RCPT, source=raw, server=host, port=port, tls="none")
    elif kind == "threads":
        # `host` is "host:port,host:port": each thread talks to a server of its own, so the
        # single-threaded smtp-sink is not what limits the pair.
        servers = [(h, int(p)) for h, p in (x.rsplit(":", 1) for x in host.split(","))]

        def run(n: int, server: tuple[str, int]) -> None:
            with mailpump.open(server[0], server[1], tls="none") as s:
                s.greet()
                for _ in range(n):
                    s.send({"from": FROM, "rcpt": RCPT, "source": raw})
                s.quit()

        threads = [threading.Thread(target=run, args=(count // 2, srv)) for srv in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        with mailpump.open(host, port, tls="none") as s:
            s.greet()
            for i in range(count):
                source: object
                if kind == "message":
                    source = mailpump.message({"headers": {"from": FROM, "to": RCPT,
                                               "subject": f"benchmark message {i}"}, "body": BODY})  # fmt: skip
                else:
                    source = raw
                s.send({"from": FROM, "rcpt": RCPT, "source": source})
            s.quit()
    report(time.perf_counter() - start, count, base)


def w_smtplib(kind: str, host: str, port: int, count: int) -> None:
    import email.message
    import smtplib

    raw = prebuilt()
    base = rss_kib()
    start = time.perf_counter()
    if kind == "each":
        for _ in range(count):
            with smtplib.SMTP(host, port) as s:
                s.sendmail(FROM, [RCPT], raw)
    else:
        with smtplib.SMTP(host, port) as s:
            for i in range(count):
                if kind == "email":
                    msg = email.message.EmailMessage()
                    msg["From"], msg["To"] = FROM, RCPT
                    msg["Subject"] = f"benchmark message {i}"
                    msg.set_content(BODY)
                    s.send_message(msg)
                else:
                    s.sendmail(FROM, [RCPT], raw)
    report(time.perf_counter() - start, count, base)


def w_aiosmtplib(host: str, port: int, count: int) -> None:
    import asyncio

    import aiosmtplib

    raw = prebuilt()
    base = rss_kib()

    async def run() -> None:
        async with aiosmtplib.SMTP(hostname=host, port=port, start_tls=False) as s:
            for _ in range(count):
                await s.sendmail(FROM, [RCPT], raw)

    start = time.perf_counter()
    asyncio.run(run())
    report(time.perf_counter() - start, count, base)


def w_big(kind: str, host: str, port: int, path: str) -> None:
    size = os.path.getsize(path)
    base = rss_kib()
    start = time.perf_counter()
    if kind == "mailpump":
        import mailpump

        source = mailpump.message({"headers": {"subject": "big"}, "body": [
            {"body": "see attachment"}, mailpump.attachment(path, "big.bin")]})  # fmt: skip
        mailpump.send(from_=FROM, rcpt=RCPT, source=source, server=host, port=port, tls="none",
                      timeout=120)  # fmt: skip
    else:
        import email.message
        import smtplib

        with open(path, "rb") as f:
            data = f.read()
        msg = email.message.EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = FROM, RCPT, "big"
        msg.set_content("see attachment")
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="big.bin")
        with smtplib.SMTP(host, port, timeout=120) as s:
            s.send_message(msg)
    report(time.perf_counter() - start, size, base)


# -- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except ConnectionRefusedError:
            time.sleep(0.01)
    raise RuntimeError("server did not start")


@contextmanager
def smtp_sink(cpu: str | None) -> Iterator[int]:
    port = free_port()
    argv = [SINK, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "1000"]
    if cpu is not None:
        argv = ["taskset", "-c", cpu, *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def discard_server(cpu: str | None) -> Iterator[int]:
    argv = [sys.executable, os.path.join(HERE, "discard_server.py")]
    if cpu is not None:
        argv = ["taskset", "-c", cpu, *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "READY <port>": no polling needed
        yield int(line.split()[1])
    finally:
        proc.terminate()
        proc.wait(10)


# -- driver --------------------------------------------------------------------------------------


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=2000, help="small messages over one connection")
    ap.add_argument("--each", type=int, default=300, help="messages with a connection each")
    ap.add_argument("--big-mib", type=int, default=256, help="attachment size for the big job")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jobs", default="small,each,big,threads")
    ap.add_argument("--modes", default="same,split")
    args = ap.parse_args()
    if args.worker:
        name, *rest = args.worker
        if name == "mailpump":
            w_mailpump(rest[0], rest[1], int(rest[2]), int(rest[3]))
        elif name == "smtplib":
            w_smtplib(rest[0], rest[1], int(rest[2]), int(rest[3]))
        elif name == "aiosmtplib":
            w_aiosmtplib(rest[0], int(rest[1]), int(rest[2]))
        elif name == "big":
            w_big(rest[0], rest[1], int(rest[2]), rest[3])
        return

    jobs, modes = args.jobs.split(","), args.modes.split(",")
    cpus = {"same": ("0", "0"), "split": ("1", "0")}
    print(f"# mailpump SMTP benchmark\n\ncommand: `{command_line()}`; rounds: {args.rounds}; "
          "each contender in a fresh process, order rotated each round\n")  # fmt: skip
    port = 0

    def at() -> tuple[str, str]:
        return "127.0.0.1", str(port)

    for mode in modes:
        server_cpu, client_cpu = cpus[mode]
        label = {"same": "same core (server and client on CPU 0)",
                 "split": "split (server CPU 1, client CPU 0)"}[mode]  # fmt: skip
        if "small" in jobs:
            with smtp_sink(server_cpu) as port:
                n = str(args.count)
                cs = [
                    Contender(
                        "smtp-source (C)",
                        [SOURCE, "-d", "-s", "1", "-m", n, "-l", "1024", ":".join(at())],
                        cpu=client_cpu,
                        units=args.count,
                        external_timing=True,
                    ),  # fmt: skip
                    Contender(
                        "mailpump pre-built",
                        worker_cmd("smtp.py", "mailpump", "prebuilt", *at(), n),
                        cpu=client_cpu,
                    ),  # fmt: skip
                    Contender(
                        "mailpump message()",
                        worker_cmd("smtp.py", "mailpump", "message", *at(), n),
                        cpu=client_cpu,
                    ),  # fmt: skip
                    Contender(
                        "smtplib pre-built",
                        worker_cmd("smtp.py", "smtplib", "prebuilt", *at(), n),
                        cpu=client_cpu,
                    ),  # fmt: skip
                    Contender(
                        "smtplib + EmailMessage",
                        worker_cmd("smtp.py", "smtplib", "email", *at(), n),
                        cpu=client_cpu,
                    ),  # fmt: skip
                ]
                if have("aiosmtplib"):
                    cs.append(Contender("aiosmtplib pre-built", worker_cmd(
                        "smtp.py", "aiosmtplib", *at(), n), cpu=client_cpu))  # fmt: skip
                res = measure(cs, args.rounds)
            print(f"## {args.count} small messages over one connection, {label} (msg/s)\n")
            print(table(res, "smtp-source (C)", "msg/s"), "\n", flush=True)
        if "each" in jobs:
            with smtp_sink(server_cpu) as port:
                n = str(args.each)
                cs = [
                    Contender(
                        "smtp-source (C)",
                        [SOURCE, "-s", "1", "-m", n, "-l", "1024", ":".join(at())],
                        cpu=client_cpu,
                        units=args.each,
                        external_timing=True,
                    ),  # fmt: skip
                    Contender(
                        "mailpump.send",
                        worker_cmd("smtp.py", "mailpump", "each", *at(), n),
                        cpu=client_cpu,
                    ),  # fmt: skip
                    Contender(
                        "smtplib",
                        worker_cmd("smtp.py", "smtplib", "each", *at(), n),
                        cpu=client_cpu,
                    ),  # fmt: skip
                ]
                res = measure(cs, args.rounds)
            print(f"## {args.each} messages, a new connection each, {label} (msg/s)\n")
            print(table(res, "smtp-source (C)", "msg/s"), "\n", flush=True)
        if "big" in jobs:
            tmp = tempfile.mkdtemp(prefix="mailpump-bench-")
            path = os.path.join(tmp, "big.bin")
            with open(path, "wb") as f:
                f.write(os.urandom(MIB) * args.big_mib)
            # The wire size of the attachment message: base64 (4/3) wrapped at 76 (+2 per line).
            wire = args.big_mib * MIB * 4 // 3 * 78 // 76
            try:
                with discard_server(server_cpu) as port:
                    size = args.big_mib * MIB
                    cs = [
                        Contender(
                            "smtp-source (C), same wire bytes",
                            [SOURCE, "-s", "1", "-m", "1", "-l", str(wire), ":".join(at())],
                            cpu=client_cpu,
                            units=size,
                            external_timing=True,
                        ),  # fmt: skip
                        Contender(
                            "mailpump",
                            worker_cmd("smtp.py", "big", "mailpump", *at(), path),
                            cpu=client_cpu,
                        ),  # fmt: skip
                        Contender(
                            "smtplib + email",
                            worker_cmd("smtp.py", "big", "smtplib", *at(), path),
                            cpu=client_cpu,
                        ),  # fmt: skip
                    ]
                    res = measure(cs, args.rounds)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"## {args.big_mib} MiB attachment from a file to the discard server, {label} "
                  "(MiB/s of attachment; smtp-source sends the same wire bytes)\n")  # fmt: skip
            print(table(res, "smtp-source (C), same wire bytes", "MiB/s", MIB), "\n", flush=True)
    if "threads" in jobs:
        with smtp_sink(None) as port, smtp_sink(None) as port2:
            n = str(args.count)
            pair = f"127.0.0.1:{port},127.0.0.1:{port2}"
            cs = [
                Contender(
                    "mailpump, one thread",
                    worker_cmd("smtp.py", "mailpump", "prebuilt", "127.0.0.1", str(port), n),
                    cpu=None,
                ),
                Contender(
                    "mailpump, two threads",
                    worker_cmd("smtp.py", "mailpump", "threads", pair, "0", n),
                    cpu=None,
                ),
            ]
            res = measure(cs, args.rounds)
        print(
            f"## {args.count} messages: two threads, each with its own session and smtp-sink, vs "
            "one thread; unpinned (msg/s)\n"
        )
        print(table(res, "mailpump, one thread", "msg/s"), "\n", flush=True)
    print("Targets (docs/benchmarking.md), same core: pre-built >= 1.0 x smtp-source, message() >= 0.8 x, "
          ">= 10 x smtplib + EmailMessage; big: wall time <= 1.5 x smtp-source, RSS growth < 64 MiB;"
          " two threads >= 1.6 x one thread.")  # fmt: skip


if __name__ == "__main__":
    main()
