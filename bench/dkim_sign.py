#!/usr/bin/env python3
"""The DKIM benchmark: one DKIM-signed (rsa-sha256, relaxed/relaxed) message with a large
attachment sent to bench/discard_server.py, mailpump against dkimpy + email + smtplib.

    python bench/dkim_sign.py                     # 256 MiB attachment, 5 rounds
    python bench/dkim_sign.py --mib 16 --rounds 3 # quick

Contenders, each in a fresh process, interleaved rounds (docs/benchmarking.md), server on CPU 1
and client on CPU 0:
- mailpump, replayable message(): the attachment given by its path; the message is encoded twice,
  once to hash and once to send.
- mailpump, one-shot source: the attachment read from an open file object, which can be read only
  once: the encoded message is spooled to an unnamed temporary file while it is hashed.
- mailpump, unsigned: the same message without DKIM, to show what signing costs.
- dkimpy + email + smtplib: EmailMessage with the attachment, serialised, signed by
  `dkim.sign` (dkimpy 1.1.8), sent by `smtplib.sendmail`: all of it in memory.
Rates are MiB/s of attachment (the ratio of times is the inverse); peak RSS growth over each
process's own baseline before the work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rounds import Contender, command_line, measure, report, rss_kib, table, worker_cmd  # noqa: E402
from smtp import FROM, MIB, RCPT, discard_server  # noqa: E402

DOMAIN, SELECTOR = "example.test", "bench"
SUBJECT = "DKIM-signed attachment"


def w_mailpump(kind: str, host: str, port: int, path: str, key: str) -> None:
    import mailpump

    size = os.path.getsize(path)
    base = rss_kib()
    start = time.perf_counter()
    dkim = None if kind == "unsigned" else mailpump.DKIM(DOMAIN, SELECTOR, key)
    with open(path, "rb") as f:
        attachment = mailpump.attachment(f if kind == "one-shot" else path, "big.bin")
        source = mailpump.message({
            "headers": {"from": FROM, "to": RCPT, "subject": SUBJECT},
            "body": [{"body": "see attachment"}, attachment],
        })  # fmt: skip
        assert source.replayable == (kind != "one-shot")
        mailpump.send(from_=FROM, rcpt=RCPT, source=source, server=host, port=port, tls="none",
                      timeout=300, dkim=dkim)  # fmt: skip
    report(time.perf_counter() - start, size, base)


def w_dkimpy(host: str, port: int, path: str, key: str) -> None:
    import email.message
    import email.policy
    import smtplib

    import dkim

    size = os.path.getsize(path)
    base = rss_kib()
    start = time.perf_counter()
    with open(path, "rb") as f:
        data = f.read()
    with open(key, "rb") as f:
        private = f.read()
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = FROM, RCPT, SUBJECT
    msg.set_content("see attachment")
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="big.bin")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    signature = dkim.sign(raw, SELECTOR.encode(), DOMAIN.encode(), private,
                          canonicalize=(b"relaxed", b"relaxed"))  # fmt: skip
    with smtplib.SMTP(host, port, timeout=300) as s:
        s.sendmail(FROM, [RCPT], signature + raw)
    report(time.perf_counter() - start, size, base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--mib", type=int, default=256, help="attachment size")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if args.worker:
        name, *rest = args.worker
        if name == "dkimpy":
            w_dkimpy(rest[0], int(rest[1]), rest[2], rest[3])
        else:
            w_mailpump(name, rest[0], int(rest[1]), rest[2], rest[3])
        return

    tmp = tempfile.mkdtemp(prefix="mailpump-bench-dkim-")
    try:
        path, key = os.path.join(tmp, "big.bin"), os.path.join(tmp, "dkim.pem")
        with open(path, "wb") as f:
            f.write(os.urandom(MIB) * args.mib)
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        print(f"# mailpump DKIM benchmark\n\ncommand: `{command_line()}`; rounds: {args.rounds}; "
              "each contender in a fresh process, order rotated each round; server CPU 1, "
              "client CPU 0\n")  # fmt: skip
        with discard_server("1") as port:
            at = ("127.0.0.1", str(port), path, key)
            cs = [
                Contender("dkimpy + email + smtplib", worker_cmd("dkim_sign.py", "dkimpy", *at)),
                Contender("mailpump DKIM, replayable message()",
                          worker_cmd("dkim_sign.py", "replayable", *at)),  # fmt: skip
                Contender("mailpump DKIM, one-shot source",
                          worker_cmd("dkim_sign.py", "one-shot", *at)),  # fmt: skip
                Contender("mailpump unsigned", worker_cmd("dkim_sign.py", "unsigned", *at)),
            ]
            res = measure(cs, args.rounds, timeout=900)
        print(f"## One {args.mib} MiB attachment, DKIM rsa-sha256 relaxed/relaxed, to the discard "
              "server (MiB/s of attachment)\n")  # fmt: skip
        print(table(res, "dkimpy + email + smtplib", "MiB/s", MIB), "\n", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
