"""Ctrl-C after the end-of-data mark never loses the outcome (docs/errors.md, "The delivery
guarantee").

A child process sends one message with Python's default SIGINT handler, as a user's program
would. The scripted server (in this process) reads the whole message, end-of-data mark included,
sends SIGINT to the child with `os.kill`, and holds its verdict: it says nothing until the child
goes away. The child must report `SMTPOutcomeUnknown` (kind "outcome-unknown") chained from the
`KeyboardInterrupt`, never a plain `KeyboardInterrupt`, and long before its I/O timeout (bounded by
pytest-timeout, not by a timing assertion). Before the mark the interrupt is raised as itself
(tests/test_panics_and_signals.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest
from servers.faults import FaultScript, FaultServer
from servers.scripted import Connection, Fault

pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(30)

CHILD = r"""
import json, signal, sys
import mailpump

# Python's own Ctrl-C handler, as an interactive program has it: a child started from a
# background job inherits SIGINT ignored, and Python then installs no handler.
signal.signal(signal.SIGINT, signal.default_int_handler)

host, port, api = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mail = {"from_": "a@example.test", "rcpt": ["b@example.test"],
        "source": b"Subject: once\r\n\r\nsend me once\r\n"}

def describe(outcome):
    if isinstance(outcome, BaseException):
        cause = outcome.__cause__
        return {"raised": type(outcome).__name__, "kind": getattr(outcome, "kind", None),
                "cause": None if cause is None else type(cause).__name__}
    return {"result": type(outcome).__name__}

report = []
try:
    if api == "send":
        report.append(describe(mailpump.send(**mail, server=host, port=port, tls="none",
                                             timeout=90.0)))
    else:
        session = mailpump.open(host, port, tls="none", timeout=90.0)
        session.greet()
        if api == "session-send":
            report.append(describe(session.send(**mail)))
        elif api == "data":
            session.mail(mail["from_"])
            session.rcpt(mail["rcpt"][0])
            report.append(describe(session.data(mail["source"])))
        else:
            for outcome in session.send_many([mail]):
                report.append(describe(outcome))
except BaseException as e:
    report.append(describe(e))
print(json.dumps(report))
"""


def run_child(api: str, at_quit: bool = False) -> tuple[list[dict[str, Any]], FaultServer]:
    """Runs `api` in a child; SIGINT once the whole message arrived (the verdict then held back),
    or, with `at_quit`, once QUIT arrived after the verdict (QUIT then left unanswered)."""
    child: list[subprocess.Popen[str]] = []
    started = threading.Condition()

    def interrupt(_conn: Connection) -> None:
        with started:
            started.wait_for(lambda: bool(child))
        os.kill(child[0].pid, signal.SIGINT)

    def on_quit(conn: Connection, line: bytes) -> None:
        if line.upper().startswith(b"QUIT"):
            interrupt(conn)

    script = (
        FaultScript(on_command=on_quit, replies={"quit": Fault.STALL})
        if at_quit
        else FaultScript(on_data_end=interrupt, replies={"eod": Fault.STALL})
    )
    server = FaultServer(script)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, server.host, str(server.port), api],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with started:
            child.append(proc)
            started.notify_all()
        out, err = proc.communicate()
        assert proc.returncode == 0, err
        server.finished()
    finally:
        server.stop()
    report: list[dict[str, Any]] = json.loads(out)
    return report, server


@pytest.mark.parametrize("api", ["send", "session-send", "data", "send-many"])
def test_ctrl_c_after_the_mark_reports_the_outcome_as_unknown(api: str) -> None:
    report, server = run_child(api)
    [conn] = server.connections
    # The server read the whole message, mark included, and gave no verdict.
    assert [t.complete for t in conn.transactions] == [True]
    unknown = {"raised": "SMTPOutcomeUnknown", "kind": "outcome-unknown",
               "cause": "KeyboardInterrupt"}  # fmt: skip
    if api == "send-many":
        # The message's outcome comes first; the interruption then ends the iteration.
        assert report == [unknown, {"raised": "KeyboardInterrupt", "kind": None, "cause": None}]
    else:
        assert report == [unknown]


def test_ctrl_c_during_the_closing_quit_returns_the_delivery() -> None:
    # The verdict (250) was read; the Ctrl-C only cuts send()'s QUIT short.
    report, server = run_child("send", at_quit=True)
    [conn] = server.connections
    assert [t.complete for t in conn.transactions] == [True]
    assert b"QUIT" in [c.upper() for c in conn.commands]
    assert report == [{"result": "SendResult"}]
