#!/usr/bin/env python3
"""The long soak: mailpump against the chaos SMTP server (tests/servers/chaos.py) until a count or
a time limit is reached, then the accounting of docs/security.md §13 (nothing lost).

    .venv/bin/python scripts/soak.py --count 100000 --seconds 300 --seed 7

Prints the figures (messages sent, delivered, failed by exception class, what the server accepted,
received complete without accepting, and discarded as partial) and every violation: a delivered
message not accepted exactly once, a failed one accepted, a complete message that differs from what
was sent. Exits 1 if there is any. `--threads N` runs N soaks side by side (one server each), the
way a program sending from several threads would.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers.chaos import ChaosServer, Report, Weights, settle, soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages per thread, at most")
    parser.add_argument("--seconds", type=float, default=300.0, help="time limit of the run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1.0, help="the client's I/O timeout")
    parser.add_argument("--refuse", type=float, default=Weights.refuse)
    parser.add_argument("--drop", type=float, default=Weights.drop)
    parser.add_argument("--stall", type=float, default=Weights.stall)
    args = parser.parse_args()
    weights = Weights(refuse=args.refuse, drop=args.drop, stall=args.stall)

    reports: list[Report] = []
    lock = threading.Lock()

    def one(seed: int) -> None:
        with ChaosServer(seed=seed, weights=weights) as server:
            report = soak(server, args.count, args.seconds, seed=seed, timeout=args.timeout)
            settle(server, report)
        with lock:
            reports.append(report)

    threads = [
        threading.Thread(target=one, args=(args.seed * 1000 + i,)) for i in range(args.threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    total: dict[str, object] = {}
    violations: list[str] = []
    for report in reports:
        violations += report.violations()
        for key, value in report.summary().items():
            if isinstance(value, dict):
                merged = total.setdefault(key, {})
                assert isinstance(merged, dict)
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v
            elif key == "seconds":
                total[key] = max(float(total.get(key, 0.0)), float(value))  # type: ignore[arg-type]
            else:
                total[key] = int(total.get(key, 0)) + int(value)  # type: ignore[call-overload]
    total["violations"] = len(violations)
    print(json.dumps(total, indent=2))
    for v in violations[:50]:
        print("VIOLATION:", v)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
