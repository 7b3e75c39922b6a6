#!/usr/bin/env python3
"""The encoding benchmark: mailpump against Python's email/smtplib paths and LuaSocket.

    python bench/encode.py                       # full sizes, 5 rounds (a few minutes)
    python bench/encode.py --mib 32 --qp-mib 8 --big-mib 128 --rounds 3   # quick

Jobs (each contender in a fresh process, interleaved rounds, pinned to CPU 0):
- base64: a file as a base64 attachment. mailpump.message() with attachment(path), mailpump's
  ltn12 chain (source.file + encode("base64") + wrap()), Python's email (EmailMessage.add_attachment
  + BytesGenerator), LuaSocket's chain (lua5.4 + lua-socket), and binascii.b2a_base64 unwrapped
  (the fastest C primitive Python has, for scale).
- qp: text as quoted-printable. mailpump.message() with "encoding": "quoted-printable", mailpump's
  chain (normalize + encode("quoted-printable") + wrap("quoted-printable")), email's path
  (set_content(cte="quoted-printable") + BytesGenerator), LuaSocket, binascii.b2a_qp.
- stuff: CRLF normalisation + dot-stuffing. mailpump's chain (normalize() + stuff()), smtplib's
  path (_fix_eols + _quote_periods), LuaSocket's chain.
- big: peak RSS growth of mailpump.message() over a sparse file attachment (1 GiB by default).

Rates are MiB/s of input; ratios are medians against the email/smtplib contender.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rounds import Contender, command_line, measure, report, rss_kib, table, worker_cmd  # noqa: E402

MIB = 1024 * 1024
LUA = shutil.which("lua5.4")
HERE = os.path.dirname(os.path.abspath(__file__))

# -- input files ---------------------------------------------------------------------------------


def write_binary(path: str, size: int) -> None:
    rng = random.Random(1)
    block = rng.randbytes(MIB)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            n = min(MIB, size - written)
            f.write(block[:n])
            written += n


def text_block(rng: random.Random, lf_only: bool) -> bytes:
    words = ["the", "mail", "pump", "streams", "caf\u00e9", "na\u00efve", "r\u00e9sum\u00e9",
             "price=10", "a", "quick", "tab\there", "end.", "\u00fcber", "data"]  # fmt: skip
    lines = []
    for i in range(20000):
        n = rng.randint(3, 14)
        line = " ".join(rng.choice(words) for _ in range(n))
        if i % 10 == 0:
            line = "." + line
        if i % 17 == 0:
            line += " "
        lines.append(line)
    sep = "\n" if lf_only else "\r\n"
    return (sep.join(lines) + sep).encode()


def write_text(path: str, size: int, lf_only: bool = True) -> None:
    block = text_block(random.Random(2), lf_only)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            n = min(len(block), size - written)
            f.write(block[:n])
            written += n


# -- workers (each runs in its own process) ------------------------------------------------------


class Counter:
    """A binary file-like sink that only counts."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, b: bytes) -> int:
        self.n += len(b)
        return len(b)


def worker(name: str, job: str, path: str) -> None:
    size = os.path.getsize(path)
    if name.startswith("mailpump"):
        import mailpump
        from mailpump import ltn12, mime

        base = rss_kib()
        start = time.perf_counter()
        if name == "mailpump-message":
            if job == "base64":
                src = mailpump.message({"headers": {"subject": "bench"}, "body": [
                    {"body": "see attachment"}, mailpump.attachment(path, "data.bin")]})  # fmt: skip
            else:
                src = mailpump.message({"headers": {"subject": "bench"},
                                        "body": ltn12.source.file(path, "rb"),
                                        "encoding": "quoted-printable"})  # fmt: skip
        else:
            if job == "base64":
                f = ltn12.filter.chain(mime.encode("base64"), mime.wrap())
            elif job == "qp":
                f = ltn12.filter.chain(mime.normalize(), mime.encode("quoted-printable"),
                                       mime.wrap("quoted-printable"))  # fmt: skip
            else:
                f = ltn12.filter.chain(mime.normalize(), mime.stuff())
            src = ltn12.source.chain(ltn12.source.file(path, "rb"), f)
        out = sum(len(c) for c in src)
        report(time.perf_counter() - start, size, base, out=out)
    elif name == "email":
        import email.generator
        import email.message
        import email.policy

        base = rss_kib()
        start = time.perf_counter()
        with open(path, "rb") as fh:
            data = fh.read()
        msg = email.message.EmailMessage()
        msg["Subject"] = "bench"
        if job == "base64":
            msg.set_content("see attachment")
            msg.add_attachment(data, maintype="application", subtype="octet-stream",
                               filename="data.bin")  # fmt: skip
        else:
            msg.set_content(data.decode("utf-8"), cte="quoted-printable")
        sink = Counter()
        email.generator.BytesGenerator(sink, policy=email.policy.SMTP).flatten(msg)
        report(time.perf_counter() - start, size, base, out=sink.n)
    elif name == "smtplib":
        import re
        import smtplib

        base = rss_kib()
        start = time.perf_counter()
        with open(path, "rb") as fh:
            data = fh.read()
        # smtplib._fix_eols is str-only; this is its regex on bytes, then its _quote_periods.
        fixed = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
        out = smtplib._quote_periods(fixed)  # type: ignore[attr-defined]
        report(time.perf_counter() - start, size, base, out=len(out))
    elif name == "binascii":
        import binascii

        base = rss_kib()
        start = time.perf_counter()
        with open(path, "rb") as fh:
            data = fh.read()
        if job == "base64":
            encoded = binascii.b2a_base64(data, newline=False)
        else:
            encoded = binascii.b2a_qp(data)
        report(time.perf_counter() - start, size, base, out=len(encoded))
    else:
        raise SystemExit(f"unknown worker {name}")


def big_worker(path: str) -> None:
    import mailpump

    size = os.path.getsize(path)
    base = rss_kib()
    start = time.perf_counter()
    src = mailpump.message({"headers": {"subject": "big"}, "body": [
        {"body": "see attachment"}, mailpump.attachment(path, "big.bin")]})  # fmt: skip
    out = sum(len(c) for c in src)
    report(time.perf_counter() - start, size, base, out=out)


# -- driver --------------------------------------------------------------------------------------


def contenders(job: str, path: str, names: list[str]) -> list[Contender]:
    out = [Contender(n, worker_cmd("encode.py", n, job, path)) for n in names]
    if LUA:
        lua = [LUA, os.path.join(HERE, "lua", "encode.lua"), job, path]
        base = [LUA, "-e", 'require("ltn12"); require("mime"); require("socket")']
        out.append(Contender("LuaSocket chain", lua, baseline_argv=base))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--mib", type=int, default=256, help="base64 and stuffing input size (MiB)")
    ap.add_argument("--qp-mib", type=int, default=64, help="quoted-printable input size (MiB)")
    ap.add_argument("--big-mib", type=int, default=1024, help="attachment for the RSS figure (MiB)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jobs", default="base64,qp,stuff,big")
    ap.add_argument(
        "--dir", default=None, help="where to write the input files (default: a temp dir)"
    )
    args = ap.parse_args()
    if args.worker:
        if args.worker[0] == "big":
            big_worker(args.worker[1])
        else:
            worker(*args.worker)
        return

    jobs = args.jobs.split(",")
    tmp = tempfile.mkdtemp(prefix="mailpump-bench-", dir=args.dir)
    print(f"# mailpump encode benchmark\n\ncommand: `{command_line()}`; rounds: {args.rounds}; "
          f"contenders pinned to CPU 0 (taskset), each in a fresh process, order rotated\n")  # fmt: skip
    try:
        if "base64" in jobs:
            path = os.path.join(tmp, "binary.bin")
            write_binary(path, args.mib * MIB)
            res = measure(contenders("base64", path, ["mailpump-message", "mailpump-chain", "email",
                                                      "binascii"]), args.rounds)  # fmt: skip
            print(f"## base64 + 76-column wrap, {args.mib} MiB file (MiB/s of input)\n")
            print(table(res, "email", "MiB/s", MIB), "\n", flush=True)
            os.remove(path)
        if "qp" in jobs:
            path = os.path.join(tmp, "text.txt")
            write_text(path, args.qp_mib * MIB, lf_only=False)
            res = measure(contenders("qp", path, ["mailpump-message", "mailpump-chain", "email",
                                                  "binascii"]), args.rounds)  # fmt: skip
            print(f"## quoted-printable, {args.qp_mib} MiB of UTF-8 text (MiB/s of input)\n")
            print(table(res, "email", "MiB/s", MIB), "\n", flush=True)
            os.remove(path)
        if "stuff" in jobs:
            path = os.path.join(tmp, "lf-text.txt")
            write_text(path, args.mib * MIB, lf_only=True)
            res = measure(contenders("stuff", path, ["mailpump-chain", "smtplib"]), args.rounds)
            print(f"## CRLF normalisation + dot-stuffing, {args.mib} MiB of LF text (MiB/s)\n")
            print(table(res, "smtplib", "MiB/s", MIB), "\n", flush=True)
            os.remove(path)
        if "big" in jobs:
            path = os.path.join(tmp, "sparse.bin")
            with open(path, "wb") as f:
                f.truncate(args.big_mib * MIB)
            res = measure([Contender("mailpump-message", worker_cmd("encode.py", "big", path))],
                          max(1, min(args.rounds, 2)))  # fmt: skip
            print(f"## {args.big_mib} MiB attachment (sparse file): peak RSS growth\n")
            print(table(res, "mailpump-message", "MiB/s", MIB), "\n", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        "Targets (docs/benchmarking.md): base64+wrap and stuffing >= 10 x the email/smtplib path, "
        "quoted-printable >= 10 x, peak RSS growth < 64 MiB for a 1 GiB attachment."
    )


if __name__ == "__main__":
    main()
