"""Panics and signals (docs/security.md §13).

A Rust panic inside a call surfaces as a `MailpumpError` and the interpreter lives on (through the
private hook `_mailpump._panic_for_tests`, which panics inside the same panic-catching helper every
network and encoding call uses: no real input makes the core panic).

Ctrl-C while a send waits on the network: the scripted server sends SIGINT to this process from its
own thread when the client reaches a given point (EHLO, the pipelined DATA, the middle of a large
body, the end of data), then stalls. Before the end of data, the send must raise
`KeyboardInterrupt` itself (not a wrapped error); after it, `SMTPOutcomeUnknown` chained from the
`KeyboardInterrupt`, so that the outcome is not lost (tests/test_ctrl_c_after_end_of_data.py
checks this in a child process for every API); either long before the I/O timeout (bounded by pytest-timeout, not by a timing assertion), close
the connection, and leave no message behind that the server acknowledged; a `Session` is unusable
afterwards. The handler is Python's default one, so this is exactly what a user's Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.faults import FaultScript, FaultServer
from servers.scripted import Connection, Fault

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(20)

IO_TIMEOUT = 60.0
"""Three times the test's own bound (pytest-timeout, 20 s): an interrupt noticed only at the
I/O timeout fails the test."""

BIG_BODY = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 8192  # 8 MiB: more than any buffer


def interrupt(_conn: Connection, *_: Any) -> None:
    """Sends SIGINT to the test process (from the server's thread, as a user's Ctrl-C would)."""
    os.kill(os.getpid(), signal.SIGINT)


def on_verb(verb: bytes) -> Callable[[Connection, bytes], None]:
    def hook(conn: Connection, line: bytes) -> None:
        if line.upper().startswith(verb):
            interrupt(conn)

    return hook


POINTS: dict[str, dict[str, Any]] = {
    # Waiting for the reply to EHLO.
    "ehlo": {"on_command": on_verb(b"EHLO"), "replies": {"ehlo": Fault.STALL}},
    # Waiting for the replies to the pipelined MAIL, RCPT, DATA.
    "data": {"on_command": on_verb(b"DATA"), "replies": {"data": Fault.STALL}},
    # Blocked writing a body the server has stopped reading.
    "body": {"on_body": interrupt, "body": Fault.STALL, "receive_buffer": 4096},
    # Waiting for the reply to the end of data.
    "eod": {"on_data_end": interrupt, "replies": {"eod": Fault.STALL}},
}


@pytest.fixture(autouse=True)
def default_sigint_handler() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def fault_server() -> Iterator[Callable[..., FaultServer]]:
    servers: list[FaultServer] = []

    def start(**fields: Any) -> FaultServer:
        server = FaultServer(FaultScript(**fields))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_panic_surfaces_as_a_mailpump_error() -> None:
    # The hook exists only in a build with the test-hooks feature (.ci/test builds one).
    hook = getattr(mailpump._mailpump, "_panic_for_tests", None)
    assert hook is not None, "build the extension with `maturin develop --features test-hooks`"
    for _ in range(3):  # and again: the interpreter and the module still work
        with pytest.raises(mailpump.MailpumpError, match="internal error.*deliberate panic"):
            hook()
    assert b"".join(mailpump.message({"body": "still alive"})).endswith(b"still alive")


@contextlib.contextmanager
def interrupted(point: str) -> Iterator[None]:
    """Expects the Ctrl-C itself before the end of data, the outcome unknown after it."""
    if point != "eod":
        with pytest.raises(KeyboardInterrupt):
            yield
        return
    with pytest.raises(mailpump.SMTPOutcomeUnknown) as caught:
        yield
    assert caught.value.kind == "outcome-unknown"
    assert isinstance(caught.value.__cause__, KeyboardInterrupt)


def assert_acknowledged_nothing(server: FaultServer, point: str) -> None:
    [conn] = server.finished()
    for txn in conn.transactions:
        # The server saw the whole message only when the signal came after the end of data, and
        # then it never acknowledged it (it stalled instead of replying): nothing was delivered.
        assert not txn.complete or point == "eod"
    assert b"QUIT" not in conn.after_fault.upper()


@pytest.mark.parametrize("point", list(POINTS))
def test_ctrl_c_during_send(fault_server: Callable[..., FaultServer], point: str) -> None:
    server = fault_server(**POINTS[point])
    with interrupted(point):
        mailpump.send(
            from_="a@example.test",
            rcpt=["b@example.test"],
            source=BIG_BODY,
            server=server.host,
            port=server.port,
            tls="none",
            timeout=IO_TIMEOUT,
        )
    server.release.set()
    assert_acknowledged_nothing(server, point)


@pytest.mark.parametrize("point", list(POINTS))
def test_ctrl_c_during_session_send_closes_the_session(
    fault_server: Callable[..., FaultServer], point: str
) -> None:
    server = fault_server(**POINTS[point])
    session = mailpump.open(server.host, server.port, tls="none", timeout=IO_TIMEOUT)
    try:
        with interrupted(point):
            session.greet()
            session.send(from_="a@example.test", rcpt="b@example.test", source=BIG_BODY)
        # Never a desynchronised dialogue: the session refuses to go on, with a clear error.
        with pytest.raises(mailpump.SMTPConnectError, match="closed after an earlier error"):
            session.noop()
    finally:
        session.close()
    server.release.set()
    assert_acknowledged_nothing(server, point)
    [conn] = server.connections
    assert b"NOOP" not in [c.upper() for c in conn.commands]


def test_ctrl_c_reaches_a_python_source() -> None:
    # A source written in Python sees the KeyboardInterrupt itself; it comes back out unchanged.
    def source() -> Iterator[bytes]:
        yield b"Subject: x\r\n\r\n"
        os.kill(os.getpid(), signal.SIGINT)
        yield b"never sent\r\n"

    server = FaultServer()
    try:
        with pytest.raises(KeyboardInterrupt):
            mailpump.send(
                from_="a@example.test",
                rcpt="b@example.test",
                source=source(),
                server=server.host,
                port=server.port,
                tls="none",
                timeout=IO_TIMEOUT,
            )
        [conn] = server.finished()
        assert all(not t.complete for t in conn.transactions)
    finally:
        server.stop()


def test_ctrl_c_stops_a_native_pump_that_never_blocks(tmp_path: Any) -> None:
    # A FIFO fed without end: the pump's reads never wait, so only a check between chunks can
    # see the signal. The writer sends SIGINT once a MiB has gone through (more than the pipe
    # holds, so the pump is running), and stops when the reader goes away.
    fifo = tmp_path / "endless"
    os.mkfifo(fifo)

    def feed() -> None:
        block = b"\0" * 65536
        try:
            with open(fifo, "wb", buffering=0) as w:
                for i in itertools.count():
                    w.write(block)
                    if i == 16:
                        os.kill(os.getpid(), signal.SIGINT)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    ltn12 = mailpump.ltn12
    with pytest.raises(KeyboardInterrupt):
        ltn12.pump.all(ltn12.source.file(str(fifo)), ltn12.sink.null())
    writer.join()
