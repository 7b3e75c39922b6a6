"""Side-by-side measurement: every contender in a fresh process, interleaved rounds in rotated
order, pinned with taskset, median/min/max over the rounds, ratios to a reference contender.

A contender is a command whose last stdout line is a JSON object with at least `seconds` (the
measured work, startup excluded) and optionally `units` (bytes or messages processed) and
`baseline_kib` (the process's peak RSS before the work began). Peak RSS is read by
`/usr/bin/time -f %M` around every contender, so Python, Lua and C are measured the same way;
contenders that cannot report a baseline get one from `baseline_argv` (the same interpreter and
modules doing nothing), measured once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass
class Contender:
    """One way of doing the job."""

    name: str
    argv: Callable[[], list[str]] | list[str]
    """The command; a callable is evaluated per run (for per-round ports or files)."""
    cpu: str | None = "0"
    """taskset CPU list for the client process, or None for unpinned."""
    units: float | None = None
    """Units of work per run when the contender does not report them (e.g. smtp-source)."""
    external_timing: bool = False
    """Time the whole process (for C tools that print no timing)."""
    baseline_argv: list[str] | None = None
    """A do-nothing run of the same program, for the RSS baseline of non-Python contenders."""
    baseline_kib: float | None = None


@dataclasses.dataclass
class Sample:
    seconds: float
    units: float
    rss_growth_mib: float | None


@dataclasses.dataclass
class Result:
    name: str
    samples: list[Sample] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)

    def rates(self) -> list[float]:
        return [s.units / s.seconds for s in self.samples if s.seconds > 0]


TIME = "/usr/bin/time"


def _timed(argv: list[str]) -> list[str]:
    return [TIME, "-f", "MAXRSS_KIB %M", *argv] if os.access(TIME, os.X_OK) else argv


def _peak(err: str) -> float | None:
    for line in reversed(err.splitlines()):
        if line.startswith("MAXRSS_KIB "):
            return float(line.split()[1])
    return None


def run_once(contender: Contender, timeout: float) -> Sample:
    argv = contender.argv() if callable(contender.argv) else list(contender.argv)
    if contender.cpu is not None:
        argv = ["taskset", "-c", contender.cpu, *argv]
    argv = _timed(argv)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"timed out after {timeout} s") from None
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        lines = [x for x in err.strip().splitlines() if not x.startswith(("MAXRSS_KIB", "Command"))]
        raise RuntimeError(f"exit {proc.returncode}: {lines[-1] if lines else ''}")
    report: dict[str, float] = {}
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    if lines:
        report = json.loads(lines[-1])
    seconds = wall if contender.external_timing else float(report["seconds"])
    units = float(report.get("units", contender.units or 1))
    peak = _peak(err)
    baseline = report.get("baseline_kib", contender.baseline_kib)
    if baseline is None and contender.baseline_argv is not None and peak is not None:
        done = subprocess.run(_timed(contender.baseline_argv), capture_output=True, text=True)
        contender.baseline_kib = baseline = _peak(done.stderr)
    growth = (peak - baseline) / 1024 if peak is not None and baseline is not None else None
    return Sample(seconds, units, growth)


def measure(
    contenders: Sequence[Contender],
    rounds: int,
    timeout: float = 600,
    before_round: Callable[[int], None] | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> list[Result]:
    """Run every contender once per round, the order rotated each round."""
    results = {c.name: Result(c.name) for c in contenders}
    for r in range(rounds):
        if before_round is not None:
            before_round(r)
        order = list(contenders[r % len(contenders) :]) + list(contenders[: r % len(contenders)])
        for contender in order:
            try:
                sample = run_once(contender, timeout)
            except RuntimeError as e:
                results[contender.name].failures.append(str(e))
                log(f"  round {r + 1}: {contender.name}: FAILED {e}")
                continue
            results[contender.name].samples.append(sample)
            log(f"  round {r + 1}: {contender.name}: {sample.units / sample.seconds:,.1f}/s")
    return [results[c.name] for c in contenders]


def table(
    results: Sequence[Result], reference: str, unit: str, scale: float = 1.0, digits: int = 1
) -> str:
    """Markdown table: median rate (min..max), peak RSS growth, ratio of medians to `reference`;
    rates divided by `scale`, shown with `digits` decimals."""
    medians = {r.name: statistics.median(r.rates()) / scale for r in results if r.rates()}
    ref = medians.get(reference)
    rows = [f"| contender | {unit} median | min | max | peak RSS growth (MiB) | x {reference} |",
            "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        if not r.rates():
            rows.append(f"| {r.name} | failed: {r.failures[0] if r.failures else '?'} | | | | |")
            continue
        rates = [x / scale for x in r.rates()]
        growth = [s.rss_growth_mib for s in r.samples if s.rss_growth_mib is not None]
        rss = f"{max(growth):,.1f}" if growth else "n/a"
        ratio = f"{medians[r.name] / ref:.2f}" if ref else "n/a"
        d = digits
        rows.append(f"| {r.name} | {medians[r.name]:,.{d}f} | {min(rates):,.{d}f} | "
                    f"{max(rates):,.{d}f} | {rss} | {ratio} |")  # fmt: skip
    return "\n".join(rows)


def worker_cmd(script: str, *args: str) -> list[str]:
    """A fresh Python process running `script --worker ...`."""
    return [sys.executable, os.path.join(HERE, script), "--worker", *args]


def report(seconds: float, units: float, baseline_kib: int, **extra: float) -> None:
    """Print a worker's JSON result line (called in the worker process)."""
    print(json.dumps({"seconds": seconds, "units": units, "baseline_kib": baseline_kib, **extra}))


def rss_kib() -> int:
    """This process's peak RSS so far, KiB."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def command_line() -> str:
    """How this benchmark was run, for the record."""
    return " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0]), *sys.argv[1:]])
