"""A chaos SMTP server, and the soak that drives mailpump through it (docs/security.md §13).

`ChaosServer` speaks enough ESMTP for mailpump (EHLO/HELO, PIPELINING, MAIL, RCPT, DATA, RSET,
NOOP, QUIT) and, at every stage, at random, refuses (4xx or 5xx), drops the connection, stalls
(says nothing until the client gives up: the client's timeout fires) or goes on. In the middle of a
message body it may also hang up. It records every message it *accepted* (answered 250 to the end
of data, the reply written), every complete message it did not accept, and every partial one (the
connection ended before the end-of-data mark), each with the unique id the body carries.

`soak()` sends numbered messages through it in every way mailpump offers (`send()`, a reused
`Session`; bytes, a Python iterable in random chunks, a `MessageSource`; now and then a source that
raises mid-message) and `Report.violations()` does the accounting:

- every message reported delivered was accepted whole, exactly once;
- no message reported failed was accepted;
- no message was ever received complete but different from what was sent (truncated, or with
  anything added);
- a message whose source failed never reached the server complete.

Randomness comes from `random.Random(seed)` (per connection on the server side), so a run is
reproducible apart from thread timing. Every loop is bounded in count or time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from mailpump.types import Mailt, Mesgt

REFUSALS = {
    "4xx": "451 4.3.0 Chaos: try again later ({stage})",
    "5xx": "554 5.3.0 Chaos: refused ({stage})",
}
ID_HEADER = re.compile(rb"^X-Soak-Id: (\S+)\r$", re.MULTILINE)
STALL_BOUND = 60.0
"""The longest a stalled connection is held if the client never gives up."""


@dataclasses.dataclass(frozen=True)
class Weights:
    """Per stage, the chance of each fault (the rest of the time the server behaves)."""

    refuse: float = 0.03
    """A 4xx or 5xx reply (half each)."""
    drop: float = 0.01
    """Closing the connection instead of replying (mid-body: after part of the message)."""
    stall: float = 0.002
    """Saying nothing until the client gives up."""


@dataclasses.dataclass
class Received:
    """One DATA phase as the server saw it."""

    soak_id: str | None
    digest: str
    """SHA-256 of the message after un-stuffing, without the end-of-data mark (a long soak keeps
    digests, not messages)."""
    complete: bool
    accepted: bool


class _Stop(Exception):
    pass


def digest(content: bytes) -> str:
    """The SHA-256 of `content`, in hex."""
    return hashlib.sha256(content).hexdigest()


class _Conn:
    def __init__(self, sock: socket.socket, rng: random.Random, weights: Weights) -> None:
        self.sock = sock
        self.rng = rng
        self.weights = weights
        self.buf = b""

    def fault(self, stage: str) -> str | None:
        r = self.rng.random()
        w = self.weights
        if r < w.stall:
            return "stall"
        if r < w.stall + w.drop:
            return "drop"
        if r < w.stall + w.drop + w.refuse:
            return self.rng.choice(["4xx", "5xx"])
        return None

    def fill(self) -> bool:
        try:
            chunk = self.sock.recv(256 * 1024)
        except OSError:
            return False
        self.buf += chunk
        return bool(chunk)

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > 1 << 20 or not self.fill():
                raise _Stop
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def send(self, text: str) -> None:
        try:
            self.sock.sendall(text.encode() + b"\r\n")
        except OSError:
            raise _Stop from None

    def stall(self) -> None:
        # Read (and drop) whatever comes until the client hangs up; reply nothing.
        self.sock.settimeout(STALL_BOUND)
        while self.fill():
            self.buf = b""
        raise _Stop

    def reply(self, stage: str, ok: str) -> bool:
        """Answers `ok`, or a fault; True when the answer was `ok`."""
        fault = self.fault(stage)
        if fault == "stall":
            self.stall()
        if fault == "drop":
            raise _Stop
        if fault is not None:
            self.send(REFUSALS[fault].format(stage=stage))
            return False
        self.send(ok)
        return True


class ChaosServer:
    """A listening chaos server on 127.0.0.1. `stop()` closes everything and joins the threads."""

    def __init__(self, seed: int = 0, weights: Weights | None = None) -> None:
        self.seed = seed
        self.weights = weights or Weights()
        self.host = "127.0.0.1"
        self._listener = socket.create_server((self.host, 0), backlog=128)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.connections = 0
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="chaos-accept", daemon=True
        )
        self._acceptor.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping:
                    sock.close()
                    return
                self.connections += 1
                number = self.connections
                # Replies go out at once: with Nagle, a pipelined client would wait for the
                # delayed ACK of the previous reply (40 ms) before each one.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._socks.add(sock)
                # Finished threads are forgotten, so a long soak keeps a bounded list.
                self._threads = [t for t in self._threads if t.is_alive()]
                thread = threading.Thread(
                    target=self._serve, args=(sock, number), name=f"chaos-{number}", daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            socks = list(self._socks)
            threads = list(self._threads)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in [self._acceptor, *threads]:
            thread.join(timeout=10)

    def _record(self, content: bytes, complete: bool, accepted: bool) -> None:
        match = ID_HEADER.search(content)
        soak_id = match.group(1).decode() if match else None
        with self._lock:
            self.received.append(Received(soak_id, digest(content), complete, accepted))

    def _serve(self, sock: socket.socket, number: int) -> None:
        conn = _Conn(sock, random.Random(f"{self.seed}-{number}"), self.weights)
        try:
            self._dialogue(conn)
        except (_Stop, OSError):
            pass
        finally:
            with self._lock:
                self._socks.discard(sock)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _dialogue(self, conn: _Conn) -> None:
        if not conn.reply("greeting", "220 chaos.test ESMTP"):
            return  # a refused greeting: RFC 5321 §3.1, nothing else follows
        mail = False
        rcpts = 0
        while True:
            line = conn.readline()
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
            if verb == b"EHLO":
                fault = conn.fault("ehlo")
                if fault == "stall":
                    conn.stall()
                if fault == "drop":
                    return
                if fault is not None:
                    conn.send(REFUSALS[fault].format(stage="ehlo"))
                else:
                    conn.send("250-chaos.test\r\n250-PIPELINING\r\n250 8BITMIME")
            elif verb == b"HELO":
                conn.reply("helo", "250 chaos.test")
            elif verb == b"MAIL":
                rcpts = 0
                mail = conn.reply("mail", "250 2.1.0 Ok")
            elif verb == b"RCPT":
                if not mail:
                    conn.send("503 5.5.1 Error: need MAIL command")
                elif conn.reply("rcpt", "250 2.1.5 Ok"):
                    rcpts += 1
            elif verb == b"DATA":
                if not mail or not rcpts:
                    conn.send("554 5.5.1 Error: no valid recipients")
                elif conn.reply("data", "354 End data with <CR><LF>.<CR><LF>"):
                    self._data(conn)
                mail, rcpts = False, 0
            elif verb == b"RSET":
                mail, rcpts = False, 0
                conn.reply("rset", "250 2.0.0 Ok")
            elif verb == b"NOOP":
                conn.reply("noop", "250 2.0.0 Ok")
            elif verb == b"QUIT":
                conn.reply("quit", "221 2.0.0 Bye")
                return
            else:
                conn.send("502 5.5.2 Error: command not recognized")

    def _data(self, conn: _Conn) -> None:
        drop_at = None
        if conn.rng.random() < conn.weights.drop:
            drop_at = conn.rng.randrange(1, 4096)  # hang up after this many octets of the body
        lines: list[bytes] = []
        size = 0
        while True:
            if drop_at is not None and size + len(conn.buf) >= drop_at:
                # Hang up in the middle of the body (whatever is still unread is lost with it).
                self._record(b"".join(x + b"\r\n" for x in lines), False, False)
                raise _Stop
            if b"\n" not in conn.buf:
                if not conn.fill():
                    self._record(b"".join(x + b"\r\n" for x in lines) + conn.buf, False, False)
                    raise _Stop
                continue
            line, _, conn.buf = conn.buf.partition(b"\n")
            size += len(line) + 1
            line = line.rstrip(b"\r")
            if line == b".":
                break
            lines.append(line[1:] if line.startswith(b".") else line)  # RFC 5321 §4.5.2
        content = b"".join(line + b"\r\n" for line in lines)
        try:
            accepted = conn.reply("eod", "250 2.0.0 Ok: queued")
        except _Stop:
            self._record(content, True, False)
            raise
        self._record(content, True, accepted)


# -- the soak ------------------------------------------------------------------------------------


class SourceFailed(Exception):
    """Raised by the soak's deliberately failing sources."""


@dataclasses.dataclass
class Report:
    """What was sent, what each send reported, and what the server received."""

    expected: dict[str, str] = dataclasses.field(default_factory=dict)
    """Each message id and the digest of the content the server must store for it."""
    outcome: dict[str, str] = dataclasses.field(default_factory=dict)
    """Each id: "delivered", or the class name of the exception the send raised."""
    received: list[Received] = dataclasses.field(default_factory=list)
    connections: int = 0
    seconds: float = 0.0

    def violations(self) -> list[str]:
        """Every broken promise (empty when all is well)."""
        problems = []
        accepted: dict[str, int] = {}
        for r in self.received:
            if r.complete and r.soak_id is None:
                problems.append(f"a complete message without an id (digest {r.digest})")
            if r.complete and r.soak_id is not None:
                if r.digest != self.expected.get(r.soak_id):
                    problems.append(f"{r.soak_id}: received complete but not as sent")
                if self.outcome.get(r.soak_id) == "SourceFailed":
                    problems.append(f"{r.soak_id}: its source failed, yet it arrived complete")
            if r.accepted and r.soak_id is not None:
                accepted[r.soak_id] = accepted.get(r.soak_id, 0) + 1
        for soak_id, outcome in self.outcome.items():
            n = accepted.get(soak_id, 0)
            if outcome == "delivered" and n != 1:
                problems.append(f"{soak_id}: reported delivered, accepted {n} times")
            if outcome != "delivered" and n != 0:
                problems.append(f"{soak_id}: reported failed ({outcome}), accepted {n} times")
        return problems

    def summary(self) -> dict[str, Any]:
        failed: dict[str, int] = {}
        for outcome in self.outcome.values():
            if outcome != "delivered":
                failed[outcome] = failed.get(outcome, 0) + 1
        return {
            "sent": len(self.outcome),
            "delivered": sum(o == "delivered" for o in self.outcome.values()),
            "failed": dict(sorted(failed.items())),
            "connections": self.connections,
            "server accepted": sum(r.accepted for r in self.received),
            "server complete, not accepted": sum(
                r.complete and not r.accepted for r in self.received
            ),
            "server partial (discarded)": sum(not r.complete for r in self.received),
            "seconds": round(self.seconds, 1),
        }


def _body(soak_id: str, rng: random.Random) -> bytes:
    lines = [b"Subject: soak " + soak_id.encode(), b"X-Soak-Id: " + soak_id.encode(), b""]
    for _ in range(rng.randrange(0, 200)):
        line = rng.choice([b"plain text", b".leading dot", b"..two dots", b".", b"tail."])
        lines.append(line * rng.randrange(1, 8))
    return b"".join(line + b"\r\n" for line in lines)


def _chunks(data: bytes, rng: random.Random) -> Iterator[bytes]:
    i = 0
    while i < len(data):
        n = rng.randrange(1, 2048)
        yield data[i : i + n]
        i += n


def _failing(data: bytes, rng: random.Random) -> Iterator[bytes]:
    cut = rng.randrange(0, len(data))
    yield data[:cut]
    raise SourceFailed("the soak's source failed on purpose")


def soak(
    server: ChaosServer, count: int, seconds: float, seed: int = 0, timeout: float = 1.0
) -> Report:
    """Sends up to `count` messages, for at most `seconds`, through `server`."""
    import mailpump  # the server half of this module works without the extension

    rng = random.Random(seed)
    report = Report()
    session: Any = None
    target: dict[str, Any] = {
        "server": server.host,
        "port": server.port,
        "tls": "none",
        "timeout": timeout,
    }
    start = time.monotonic()
    try:
        for i in range(count):
            if time.monotonic() - start > seconds:
                break
            soak_id = f"{seed}-{i}"
            body = _body(soak_id, rng)
            kind = rng.choices(["bytes", "chunks", "message", "failing"], [4, 4, 4, 1])[0]
            source: Any
            if kind == "message":
                mesgt: Mesgt = {
                    "headers": {
                        "subject": "soak",
                        "x-soak-id": soak_id,
                        "date": "Sat, 28 Nov 2026 12:00:00 +0000",
                        "message-id": f"<{soak_id}@soak.test>",
                    },
                    "body": body.split(b"\r\n\r\n", 1)[1],
                }
                data = b"".join(mailpump.message(mesgt))
                source = mailpump.message(mesgt, chunk_size=rng.randrange(1, 4096))
            else:
                data = body
                if kind == "bytes":
                    source = data
                elif kind == "chunks":
                    source = _chunks(data, rng)
                else:
                    source = _failing(data, rng)
            report.expected[soak_id] = digest(data if data.endswith(b"\r\n") else data + b"\r\n")
            envelope: Mailt = {"from": "soak@example.test", "rcpt": ["one@example.test"], "source": source}
            use_session = rng.random() < 0.5
            try:
                if use_session:
                    if session is None:
                        session = mailpump.open(**target)
                        session.greet()
                    session.send(envelope)
                else:
                    mailpump.send(envelope, **target)
                report.outcome[soak_id] = "delivered"
            except (mailpump.MailpumpError, SourceFailed) as e:
                report.outcome[soak_id] = type(e).__name__
                keep = isinstance(e, mailpump.SMTPReplyError) and e.code != 421
                if use_session and session is not None and not keep:
                    session.close()
                    session = None
    finally:
        if session is not None:
            session.close()
        report.seconds = time.monotonic() - start
    return report


def settle(server: ChaosServer, report: Report, bound: float = 30.0) -> Report:
    """Waits (bounded) until the server has finished every connection, then takes its records.

    The client has closed every connection by now, so each server thread ends on its own."""
    with server._lock:
        threads = list(server._threads)
    deadline = time.monotonic() + bound
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    with server._lock:
        report.received = list(server.received)
        report.connections = server.connections
    return report
