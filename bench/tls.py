#!/usr/bin/env python3
"""The TLS benchmark: mailpump (rustls, and ssl_context=) against smtplib and aiosmtplib over
implicit TLS.

    python bench/tls.py                                    # full run
    python bench/tls.py --count 300 --big-mib 16 --rounds 3    # quick

stunnel (Debian's stunnel4) terminates TLS in front of the servers, with a self-signed
certificate made for the run (trusted by every client as cafile=):
- small: N small messages (~1.2 KB, pre-built) over one connection to Postfix's smtp-sink.
- big: one attachment streamed from a file to bench/discard_server.py (smtplib and aiosmtplib
  build it with `email`, as their users do).
Contenders: mailpump with rustls (cafile=), mailpump with ssl_context= (Python's OpenSSL, the same
context the others get), smtplib SMTP_SSL(context=), aiosmtplib (use_tls, tls_context=). Each in
a fresh process, rounds interleaved, client pinned to CPU 0 and the servers to CPU 1. Ratios are
medians against smtplib.
"""

from __future__ import annotations

import argparse
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rounds import Contender, command_line, measure, report, rss_kib, table, worker_cmd  # noqa: E402
from smtp import FROM, MIB, RCPT, discard_server, free_port, prebuilt, smtp_sink, wait_port  # noqa: E402

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") or "/usr/bin/stunnel4"
HOST = "127.0.0.1"
REFERENCE = "smtplib SMTP_SSL"


def client_context(cafile: str) -> ssl.SSLContext:
    """What every contender trusts: the run's certificate, in Python's default context."""
    return ssl.create_default_context(cafile=cafile)


# -- workers -------------------------------------------------------------------------------------


def w_small(who: str, port: int, count: int, cafile: str) -> None:
    raw = prebuilt()
    base = rss_kib()
    start = time.perf_counter()
    if who in ("rustls", "ssl_context"):
        import mailpump

        tls = {"cafile": cafile} if who == "rustls" else {"ssl_context": client_context(cafile)}
        with mailpump.open(HOST, port, tls="implicit", **tls) as s:
            s.greet()
            for _ in range(count):
                s.send({"from": FROM, "rcpt": RCPT, "source": raw})
            s.quit()
    elif who == "smtplib":
        import smtplib

        with smtplib.SMTP_SSL(HOST, port, context=client_context(cafile)) as s:
            for _ in range(count):
                s.sendmail(FROM, [RCPT], raw)
    else:
        import asyncio

        import aiosmtplib

        async def run() -> None:
            async with aiosmtplib.SMTP(hostname=HOST, port=port, use_tls=True,
                                       tls_context=client_context(cafile)) as s:  # fmt: skip
                for _ in range(count):
                    await s.sendmail(FROM, [RCPT], raw)

        asyncio.run(run())
    report(time.perf_counter() - start, count, base)


def w_big(who: str, port: int, path: str, cafile: str) -> None:
    size = os.path.getsize(path)
    base = rss_kib()
    start = time.perf_counter()
    if who in ("rustls", "ssl_context"):
        import mailpump

        tls = {"cafile": cafile} if who == "rustls" else {"ssl_context": client_context(cafile)}
        source = mailpump.message({"headers": {"subject": "big"}, "body": [
            {"body": "see attachment"}, mailpump.attachment(path, "big.bin")]})  # fmt: skip
        mailpump.send(from_=FROM, rcpt=RCPT, source=source, server=HOST, port=port,
                      tls="implicit", timeout=120, **tls)  # fmt: skip
    else:
        import email.message

        with open(path, "rb") as f:
            data = f.read()
        msg = email.message.EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = FROM, RCPT, "big"
        msg.set_content("see attachment")
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="big.bin")
        if who == "smtplib":
            import smtplib

            with smtplib.SMTP_SSL(HOST, port, context=client_context(cafile), timeout=120) as s:
                s.send_message(msg)
        else:
            import asyncio

            import aiosmtplib

            async def run() -> None:
                async with aiosmtplib.SMTP(hostname=HOST, port=port, use_tls=True, timeout=120,
                                           tls_context=client_context(cafile)) as s:  # fmt: skip
                    await s.send_message(msg)

            asyncio.run(run())
    report(time.perf_counter() - start, size, base)


# -- servers -------------------------------------------------------------------------------------


def make_certificate(d: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, the usual way (`openssl req -x509`)."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", key, "-out", cert, "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip
    return cert, key


@contextmanager
def stunnel(d: str, cert: str, key: str, backend: int, cpu: str) -> Iterator[int]:
    """stunnel accepting implicit TLS and passing the plain bytes to `backend`."""
    port = free_port()
    conf = os.path.join(d, f"stunnel-{port}.conf")
    with open(conf, "w") as f:
        f.write(f"foreground = yes\npid =\ndebug = 3\n[smtps]\naccept = {HOST}:{port}\n"
                f"connect = {HOST}:{backend}\ncert = {cert}\nkey = {key}\n")  # fmt: skip
    proc = subprocess.Popen(["taskset", "-c", cpu, STUNNEL, conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# -- driver --------------------------------------------------------------------------------------


def contenders(job: str, port: int, arg: str, cafile: str) -> list[Contender]:
    names = [("mailpump, rustls", "rustls"), ("mailpump, ssl_context=", "ssl_context"),
             (REFERENCE, "smtplib"), ("aiosmtplib", "aiosmtplib")]  # fmt: skip
    return [Contender(name, worker_cmd("tls.py", job, who, str(port), arg, cafile), cpu="0")
            for name, who in names]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=2000, help="small messages over one connection")
    ap.add_argument("--big-mib", type=int, default=64, help="attachment size for the big job")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jobs", default="small,big")
    args = ap.parse_args()
    if args.worker:
        job, who, port, arg, cafile = args.worker
        if job == "small":
            w_small(who, int(port), int(arg), cafile)
        else:
            w_big(who, int(port), arg, cafile)
        return

    print(f"# mailpump TLS benchmark\n\ncommand: `{command_line()}`; rounds: {args.rounds}; "
          "implicit TLS through stunnel; client on CPU 0, servers on CPU 1\n")  # fmt: skip
    tmp = tempfile.mkdtemp(prefix="mailpump-bench-tls-")
    try:
        cert, key = make_certificate(tmp)
        if "small" in args.jobs.split(","):
            with smtp_sink("1") as sink, stunnel(tmp, cert, key, sink, "1") as port:
                res = measure(contenders("small", port, str(args.count), cert), args.rounds)
            print(f"## {args.count} small messages over one connection (msg/s)\n")
            print(table(res, REFERENCE, "msg/s"), "\n", flush=True)
        if "big" in args.jobs.split(","):
            path = os.path.join(tmp, "big.bin")
            with open(path, "wb") as f:
                f.write(os.urandom(MIB) * args.big_mib)
            with discard_server("1") as plain, stunnel(tmp, cert, key, plain, "1") as port:
                res = measure(contenders("big", port, path, cert), args.rounds)
            print(f"## {args.big_mib} MiB attachment from a file (MiB/s of attachment)\n")
            print(table(res, REFERENCE, "MiB/s", MIB), "\n", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Targets (issue 10): rustls >= 2 x smtplib on small messages and >= 8 x on the "
          "attachment; ssl_context= >= 1.5 x smtplib on both.")


if __name__ == "__main__":
    main()
