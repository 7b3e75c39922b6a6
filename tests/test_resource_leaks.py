"""No leaks (docs/security.md §13): 5,000 sessions that fail in varied ways and 5,000 that succeed leave
the open file descriptors, the threads and the RSS where they were after a warm-up.

Postfix's smtp-sink is the server (fast, a separate process, so its own file descriptors and memory
are not counted): one accepting everything, and others told to refuse MAIL (5xx), RCPT (4xx) or
the end of data (5xx), to hang up after DATA, to answer the end of data with 421 and hang up, or to
wait before answering EHLO (the client's timeout fires). Connections refused by a closed port and
sources that raise in the middle of a message complete the failures.

Allowances: no file descriptor and no thread more; RSS at most `RSS_ALLOWANCE` more (the allocator
keeps some freed memory; a leak of even 1 KiB per session would be 10 MiB). Run with `-s` to see
the figures.
"""

from __future__ import annotations

import gc
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers.recording import free_port
from servers.sink import SmtpSink

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(300)

SESSIONS = 5000
"""Of each kind: failing, succeeding."""
WARM_UP = 300
RSS_ALLOWANCE = 4 * 1024 * 1024
STALL_EVERY = 50
"""One failure in this many is a timeout (each costs the client's timeout)."""
STALL_TIMEOUT = 0.02
BODY = b"Subject: leak test\r\n\r\n" + b"a line of the body\r\n" * 50


def usage() -> tuple[int, int, int]:
    """(open file descriptors, OS threads, RSS in bytes) of this process, from /proc."""
    fds = len(os.listdir("/proc/self/fd"))
    status = dict(
        line.split(":", 1)
        for line in Path("/proc/self/status").read_text().splitlines()
        if ":" in line
    )
    threads = int(status["Threads"])
    rss = int(status["VmRSS"].split()[0]) * 1024
    return fds, threads, rss


class Failing(Exception):
    pass


def failing_source() -> Iterator[bytes]:
    yield b"Subject: broken\r\n\r\n"
    yield b"half a message\r\n" * 100
    raise Failing("the source broke")


@pytest.fixture
def sinks(smtp_sink: Callable[..., SmtpSink]) -> dict[str, SmtpSink]:
    return {
        "ok": smtp_sink(),
        "mail-5xx": smtp_sink("-f", "MAIL"),
        "rcpt-4xx": smtp_sink("-r", "RCPT"),
        "eod-5xx": smtp_sink("-f", "."),
        "data-drop": smtp_sink("-q", "DATA"),
        "eod-421": smtp_sink("-Q", "."),
        "ehlo-stall": smtp_sink("-W", "EHLO:5"),
    }


def run(sinks: dict[str, SmtpSink], closed_port: int, count: int) -> dict[str, int]:
    """`count` failing and `count` succeeding sessions; how many of each kind ran."""
    ok = sinks["ok"]
    common: dict[str, Any] = {
        "from_": "a@example.test",
        "rcpt": ["b@example.test"],
        "server": "127.0.0.1",
        "tls": "none",
        "timeout": 10,
    }

    def to(port: int, source: Any = BODY, **over: Any) -> Callable[[], Any]:
        return lambda: mailpump.send(port=port, source=source, **{**common, **over})

    failures: list[tuple[str, Callable[[], Any]]] = [
        (name, to(sinks[name].port))
        for name in ("mail-5xx", "rcpt-4xx", "eod-5xx", "data-drop", "eod-421")
    ]
    failures += [("refused", to(closed_port))]
    stall = ("stall", to(sinks["ehlo-stall"].port, timeout=STALL_TIMEOUT))
    counts: dict[str, int] = {}
    kinds = itertools.cycle(failures)
    for i in range(count):
        if i % STALL_EVERY == 0:
            name, call = stall
        elif i % len(failures) == 0:
            # A fresh generator each time: a source fails only once.
            name, call = "source", to(ok.port, source=failing_source())
        else:
            name, call = next(kinds)
        with pytest.raises((mailpump.MailpumpError, Failing)):
            call()
        counts[name] = counts.get(name, 0) + 1
    for i in range(count):
        if i % 4 == 0:
            with mailpump.open("127.0.0.1", ok.port, tls="none", timeout=10) as session:
                session.greet()
                assert session.send(from_="a@example.test", rcpt="b@example.test", source=BODY)
            counts["ok-session"] = counts.get("ok-session", 0) + 1
        else:
            assert mailpump.send(port=ok.port, source=BODY, **common)
            counts["ok-send"] = counts.get("ok-send", 0) + 1
    return counts


def test_no_leaks_over_ten_thousand_sessions(sinks: dict[str, SmtpSink]) -> None:
    closed_port = free_port()
    run(sinks, closed_port, WARM_UP)
    gc.collect()
    fds0, threads0, rss0 = usage()
    py_threads0 = threading.active_count()
    counts = run(sinks, closed_port, SESSIONS)
    gc.collect()
    fds1, threads1, rss1 = usage()
    figures = (
        f"{sum(counts.values())} sessions {counts}: fds {fds0} -> {fds1}, threads {threads0} -> "
        f"{threads1}, RSS {rss0 / 2**20:.1f} MiB -> {rss1 / 2**20:.1f} MiB "
        f"({(rss1 - rss0) / 2**10:+.0f} KiB)"
    )
    print(figures)
    assert sum(counts.values()) == 2 * SESSIONS
    assert fds1 <= fds0, figures
    assert threads1 <= threads0 and threading.active_count() <= py_threads0, figures
    assert rss1 - rss0 <= RSS_ALLOWANCE, figures
