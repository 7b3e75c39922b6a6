"""A scripted SMTP server for the faults real servers will not produce on demand.

It speaks enough ESMTP (and LMTP's LHLO) for a client to send mail (EHLO/HELO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT,
DATA, RSET, NOOP, QUIT, pipelined or not) and records every byte it receives, per connection. A
`Script` replaces the reply at any stage with another reply, raw bytes, or a fault: a disconnect, a
stall, garbage, or a reply that never ends. A `threading.Barrier` can hold every connection's DATA
reply until all of them have reached DATA (the threads test).

The server runs in threads of the test process on 127.0.0.1:0 and is stopped by `stop()`, which
shuts down every socket it holds, so no thread outlives the test.
"""

from __future__ import annotations

import dataclasses
import enum
import socket
import ssl
import threading
from collections.abc import Callable, Iterator


class Fault(enum.Enum):
    """What the server can do instead of replying."""

    DISCONNECT = "disconnect"
    """Close the connection at once."""
    STALL = "stall"
    """Say nothing and read nothing more until the client goes away."""
    GARBAGE = "garbage"
    """Answer with a line that is not an SMTP reply."""
    ENDLESS_LINES = "endless-lines"
    """An endless multi-line reply: `250-...` continuation lines that never reach a last line."""
    ENDLESS_LINE = "endless-line"
    """One reply line that never ends (no CRLF, ever)."""


Reply = str | bytes | Fault | list[str]
"""A stage's answer: a reply line (CRLF added), raw bytes (sent as they are, in one write), a list
of lines (sent in one write), or a `Fault`."""

STAGES = ("greeting", "ehlo", "helo", "starttls", "auth", "mail", "rcpt", "data", "eod", "rset",
          "noop", "quit")  # fmt: skip
"""Every place a reply is due; `eod` is the reply to the end-of-data mark."""

DEFAULT_REPLIES: dict[str, str] = {
    "greeting": "220 scripted.test ESMTP ready",
    "helo": "250 scripted.test",
    "starttls": "220 2.0.0 Ready to start TLS",
    "auth": "235 2.7.0 Authentication successful",
    "mail": "250 2.1.0 Sender ok",
    "rcpt": "250 2.1.5 Recipient ok",
    "data": "354 End data with <CR><LF>.<CR><LF>",
    "eod": "250 2.0.0 Ok: queued as S{n}",
    "rset": "250 2.0.0 Reset",
    "noop": "250 2.0.0 Ok",
    "quit": "221 2.0.0 Bye",
}

GARBAGE_LINE = b"HTTP/1.1 400 Bad Request\r\n"
ENDLESS_BOUND = 256 * 1024 * 1024
"""The most an endless reply sends before the server gives up on the client (bounded, as every loop)."""


@dataclasses.dataclass
class Script:
    """How the server behaves. Every field has a well-behaved default."""

    replies: dict[str, Reply] = dataclasses.field(default_factory=dict)
    """Per-stage replacements for `DEFAULT_REPLIES` (keys from `STAGES`)."""
    extensions: list[str] = dataclasses.field(
        default_factory=lambda: ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 0"]
    )
    """EHLO keywords; STARTTLS and AUTH are added from `tls` and `auth`."""
    tls: ssl.SSLContext | None = None
    """Offer STARTTLS with this server context (the `starttls` reply may still refuse it)."""
    advertise_starttls: bool | None = None
    """Override whether STARTTLS is listed in EHLO (default: when `tls` is set)."""
    implicit_tls: ssl.SSLContext | None = None
    """Speak TLS from the first byte (port 465 style)."""
    auth: list[str] = dataclasses.field(default_factory=list)
    """AUTH mechanisms to advertise (PLAIN and LOGIN are understood; any credentials pass)."""
    rcpt_replies: dict[str, Reply] = dataclasses.field(default_factory=dict)
    """Replies for RCPT by address (the text between the angle brackets)."""
    eod_replies: dict[int, Reply] = dataclasses.field(default_factory=dict)
    """Replies to the end-of-data mark of the n-th transaction of a connection (from 1), instead
    of the `eod` stage's."""
    after_eod: Fault | None = None
    """A fault right after the reply to each end-of-data mark (LMTP: the connection lost between
    one recipient's verdict and the next)."""
    data_barrier: threading.Barrier | None = None
    """Hold the reply to DATA until this many connections have reached DATA."""
    barrier_timeout: float = 30.0
    """After this, a broken barrier answers 451 so a failing test fails instead of hanging."""
    hold_mail_until_data: bool = False
    """Before answering MAIL, wait (bounded by `probe_timeout`) for the client's DATA command: a
    client that pipelines (RFC 2920) has already sent it, one that waits for each reply has not."""
    probe_timeout: float = 10.0
    on_command: Callable[[Connection, bytes], None] | None = None
    """Called for every command line (for tests that watch the dialogue as it happens)."""


@dataclasses.dataclass
class Transaction:
    """One DATA phase as received."""

    mail_from: bytes
    rcpt_tos: list[bytes]
    wire: bytes
    """The DATA bytes exactly as they came, dot-stuffing and end-of-data mark included (when complete)."""
    complete: bool
    """Whether the end-of-data mark arrived."""
    bdat: bool = False
    """Whether the message came in BDAT chunks (RFC 3030): `wire` is then the message itself."""

    @property
    def message(self) -> bytes:
        """The message as an SMTP server stores it: end-of-data mark removed, dots un-stuffed."""
        if self.bdat:
            return self.wire
        wire = self.wire
        if self.complete:
            assert wire.endswith(b".\r\n")
            wire = wire[:-3]
        lines = wire.split(b"\r\n")
        return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


class Connection:
    """What the server saw on one connection."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.commands: list[bytes] = []
        """Every command line, CRLF stripped, in order (AUTH continuation lines included)."""
        self.tls_commands: list[bytes] = []
        """The commands that arrived under TLS."""
        self.transactions: list[Transaction] = []
        self.plaintext_after_starttls = b""
        """Bytes the client sent after STARTTLS and before the TLS handshake (must stay empty)."""
        self.tls = False
        self.tls_error: str | None = None
        self.after_fault = b""
        self.unanswered_at_mail: list[bytes] = []
        """For each MAIL: what the client had sent beyond it before the server answered."""
        """Bytes the client sent after a stall or an endless reply began."""
        self.endless_sent = 0
        """How much of an endless reply went out before the client hung up."""
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._buf = b""

    # -- reading ---------------------------------------------------------------------------------
    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(256 * 1024)
        except (ConnectionError, OSError, ssl.SSLError):  # TimeoutError is an OSError
            return False
        if not chunk:
            return False
        self._buf += chunk
        return True

    def read_exact(self, size: int) -> bytes | None:
        """The next `size` bytes, or None at end of stream."""
        while len(self._buf) < size:
            if not self._fill():
                return None
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def readline(self, limit: int = 1 << 20) -> bytes | None:
        """The next line, CRLF included, or None at end of stream."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[: i + 1], self._buf[i + 1 :]
                return line
            if len(self._buf) > limit or not self._fill():
                return None

    def read_data(self) -> tuple[bytes, bool]:
        """The DATA payload up to and including the `.CRLF` line; (bytes, complete).

        Scans in bulk for CRLF.CRLF (RFC 5321 §4.1.1.4), so megabytes of data cost no per-line work.
        The data is searched with a CRLF put in front, so an empty message (the mark at once) is
        found too.
        """
        parts: list[bytes] = []
        pending = b"\r\n" + self._buf
        self._buf = b""
        while True:
            end = pending.find(b"\r\n.\r\n")
            if end >= 0:
                parts.append(pending[: end + 5])
                self._buf = pending[end + 5 :]
                return b"".join(parts)[2:], True
            keep = min(4, len(pending))  # the mark may straddle two reads
            parts.append(pending[: len(pending) - keep])
            pending = pending[len(pending) - keep :]
            try:
                chunk = self.sock.recv(1 << 20)
            except (ConnectionError, OSError, ssl.SSLError):
                chunk = b""
            if not chunk:
                parts.append(pending)
                return b"".join(parts)[2:], False
            pending += chunk

    def wait_for(self, marker: bytes, timeout: float) -> bool:
        """Read until `marker` is buffered, the client closes, or `timeout` passes."""
        self.sock.settimeout(timeout)
        try:
            while marker not in self._buf:
                if not self._fill():
                    return False
            return True
        finally:
            self.sock.settimeout(None)

    def drain(self) -> bytes:
        """Read until the client closes; everything it sent meanwhile."""
        got = [self._buf]
        self._buf = b""
        while self._fill():
            got.append(self._buf)
            self._buf = b""
        return b"".join(got)

    # -- writing ---------------------------------------------------------------------------------
    def send(self, data: bytes) -> bool:
        """Write `data`; False if the client has gone."""
        try:
            self.sock.sendall(data)
        except (ConnectionError, OSError, ssl.SSLError):
            return False
        return True

    def endless(self, fault: Fault) -> None:
        """Send a reply that never ends, until the client closes or the bound is reached."""
        if fault is Fault.ENDLESS_LINES:
            block = b"250-" + b"x" * 60 + b"\r\n"
            block *= 1024
        else:
            block = b"250 " + b"x" * 65532
        while self.endless_sent < ENDLESS_BOUND and self.send(block):
            self.endless_sent += len(block)
        self.close()

    def close(self) -> None:
        """Close the socket (idempotent)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _encode(reply: str | list[str] | bytes, n: int) -> bytes:
    if isinstance(reply, bytes):
        return reply
    lines = [reply] if isinstance(reply, str) else reply
    return b"".join(line.replace("{n}", str(n)).encode() + b"\r\n" for line in lines)


class _Stop(Exception):
    """Ends the dialogue loop."""


class ScriptedServer:
    """A listening scripted server. Use as a context manager or call `stop()`."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.host = "127.0.0.1"
        self._listener = socket.create_server((self.host, 0))
        self.port = int(self._listener.getsockname()[1])
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._accepted = threading.Condition(self._lock)
        self._queued = 0
        self.sni_names: list[str | None] = []
        """The server name each TLS client asked for (RFC 6066 §3), None when it sent none."""
        for ctx in (self.script.tls, self.script.implicit_tls):
            if ctx is not None:
                ctx.sni_callback = self._record_sni
        acceptor = threading.Thread(target=self._accept_loop, name="scripted-accept", daemon=True)
        acceptor.start()
        self._threads.append(acceptor)

    def _record_sni(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        with self._lock:
            self.sni_names.append(name)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            # Each scripted reply goes out at once, not held by Nagle's algorithm for the client's
            # delayed ACK of the previous one.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping:
                    sock.close()
                    return
                conn = Connection(sock, len(self.connections) + 1)
                self.connections.append(conn)
                self._accepted.notify_all()
                thread = threading.Thread(
                    target=self._serve, args=(conn,), name=f"scripted-{conn.number}", daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Close the listener and every connection, then join the threads."""
        with self._lock:
            self._stopping = True
            conns = list(self.connections)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        if self.script.data_barrier is not None:
            self.script.data_barrier.abort()
        for conn in conns:
            conn.close()
        for thread in self._threads:
            thread.join(timeout=10)

    def finished(self, count: int = 1, timeout: float = 30.0) -> list[Connection]:
        """The first `count` connections, once the server is done with each of them.

        A connection is done when the client closed it (or the server did). Waiting is bounded: a
        client that never closes a connection it should have closed fails the test here.
        """
        with self._lock:
            if not self._accepted.wait_for(lambda: len(self.connections) >= count, timeout):
                raise AssertionError(f"expected {count} connection(s), got {len(self.connections)}")
            conns = self.connections[:count]
        for conn in conns:
            if not conn.done.wait(timeout):
                raise AssertionError(f"connection {conn.number} was not closed by the client")
            if conn.error is not None:
                raise AssertionError(f"scripted server failed on connection {conn.number}") from (
                    conn.error
                )
        return conns

    # -- the dialogue ----------------------------------------------------------------------------
    def _reply(self, conn: Connection, stage: str, default: str | list[str] | None = None) -> None:
        reply: Reply | None = self.script.replies.get(stage)
        if reply is None:
            reply = default if default is not None else DEFAULT_REPLIES[stage]
        self._answer(conn, reply)

    def _answer(self, conn: Connection, reply: Reply) -> None:
        if reply is Fault.DISCONNECT:
            conn.close()
            raise _Stop
        if reply is Fault.STALL:
            conn.after_fault = conn.drain()
            raise _Stop
        if reply is Fault.GARBAGE:
            conn.send(GARBAGE_LINE)
            conn.after_fault = conn.drain()
            raise _Stop
        if reply in (Fault.ENDLESS_LINES, Fault.ENDLESS_LINE):
            assert isinstance(reply, Fault)
            conn.endless(reply)
            raise _Stop
        assert not isinstance(reply, Fault)
        if not conn.send(_encode(reply, len(conn.transactions) + 1)):
            raise _Stop

    def _ehlo_lines(self, conn: Connection) -> list[str]:
        keywords = list(self.script.extensions)
        advertise = self.script.advertise_starttls
        if advertise is None:
            advertise = self.script.tls is not None
        if advertise and not conn.tls:
            keywords.append("STARTTLS")
        if self.script.auth:
            keywords.append("AUTH " + " ".join(self.script.auth))
        lines = ["scripted.test greets you", *keywords]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    def _serve(self, conn: Connection) -> None:
        try:
            if self.script.implicit_tls is not None:
                conn.sock = self.script.implicit_tls.wrap_socket(conn.sock, server_side=True)
                conn.tls = True
            self._dialogue(conn)
        except _Stop:
            pass
        except ssl.SSLError as e:
            conn.tls_error = str(e)
        except OSError as e:  # the client hung up mid-handshake or mid-write: its right
            conn.tls_error = conn.tls_error or f"{type(e).__name__}: {e}"
        except BaseException as e:  # recorded and re-raised in the test thread by finished()
            conn.error = e
        finally:
            conn.close()
            conn.done.set()

    def _dialogue(self, conn: Connection) -> None:
        self._reply(conn, "greeting")
        mail_from: bytes | None = None
        rcpts: list[bytes] = []
        chunks: list[bytes] = []
        while True:
            raw = conn.readline()
            if raw is None:
                return
            line = raw.rstrip(b"\r\n")
            conn.commands.append(line)
            if conn.tls:
                conn.tls_commands.append(line)
            if self.script.on_command is not None:
                self.script.on_command(conn, line)
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
            if verb in (b"EHLO", b"LHLO"):
                self._reply(conn, "ehlo", self._ehlo_lines(conn))
            elif verb == b"HELO":
                self._reply(conn, "helo")
            elif verb == b"STARTTLS":
                self._starttls(conn)
            elif verb == b"AUTH":
                self._auth(conn, line)
            elif verb == b"MAIL":
                mail_from, rcpts = None, []
                if self.script.hold_mail_until_data:
                    conn.wait_for(b"DATA\r\n", self.script.probe_timeout)
                conn.unanswered_at_mail.append(conn._buf)
                mail_reply = self.script.replies.get("mail", DEFAULT_REPLIES["mail"])
                if _is_positive(mail_reply):
                    mail_from = _path(line)
                self._answer(conn, mail_reply)
            elif verb == b"RCPT" and mail_from is None:
                conn.send(b"503 5.5.1 Error: need MAIL command\r\n")  # RFC 5321 §4.1.4
            elif verb == b"RCPT":
                address = _path(line)
                special = self.script.rcpt_replies.get(address.decode("utf-8", "replace"))
                rcpt_reply: Reply = (
                    special
                    if special is not None
                    else self.script.replies.get("rcpt", DEFAULT_REPLIES["rcpt"])
                )
                if _is_positive(rcpt_reply):
                    rcpts.append(address)
                self._answer(conn, rcpt_reply)
            elif verb == b"DATA":
                if mail_from is None:
                    conn.send(b"503 5.5.1 Error: need MAIL command\r\n")
                else:
                    self._data(conn, mail_from, rcpts)
                mail_from, rcpts = None, []
            elif verb == b"BDAT":
                # RFC 3030 §2: a refused transaction's chunks are read and discarded.
                parts = line.split()
                data = conn.read_exact(int(parts[1]))
                if data is None:
                    conn.transactions.append(
                        Transaction(mail_from or b"", rcpts, b"".join(chunks), False, True)
                    )
                    raise _Stop
                last = parts[-1].upper() == b"LAST"
                if mail_from is None:
                    conn.send(b"503 5.5.1 Error: need MAIL command\r\n")
                elif not rcpts:
                    conn.send(b"554 5.5.1 Error: no valid recipients\r\n")
                elif not last:
                    chunks.append(data)
                    conn.send(b"250 2.0.0 %d octets received\r\n" % len(data))
                else:
                    chunks.append(data)
                    conn.transactions.append(
                        Transaction(mail_from, rcpts, b"".join(chunks), True, True)
                    )
                    numbered = self.script.eod_replies.get(len(conn.transactions))
                    if numbered is not None:
                        self._answer(conn, numbered)
                    else:
                        self._reply(conn, "eod")
                if last:
                    mail_from, rcpts, chunks = None, [], []
            elif verb == b"RSET":
                mail_from, rcpts, chunks = None, [], []
                self._reply(conn, "rset")
            elif verb == b"NOOP":
                self._reply(conn, "noop")
            elif verb == b"QUIT":
                self._reply(conn, "quit")
                conn.close()
                return
            else:
                conn.send(b"500 5.5.2 Command not recognised\r\n")

    def _starttls(self, conn: Connection) -> None:
        reply = self.script.replies.get("starttls", DEFAULT_REPLIES["starttls"])
        self._answer(conn, reply)
        encoded = reply if isinstance(reply, bytes) else _encode(reply, 0)  # type: ignore[arg-type]
        if not encoded.startswith(b"220") or self.script.tls is None:
            return
        # RFC 3207 §4: nothing may follow STARTTLS before the handshake; keep whatever did.
        conn.plaintext_after_starttls = conn._buf
        conn._buf = b""
        conn.sock = self.script.tls.wrap_socket(conn.sock, server_side=True)
        conn.tls = True

    def _auth(self, conn: Connection, line: bytes) -> None:
        words = line.split()
        mechanism = words[1].upper() if len(words) > 1 else b""
        if "auth" in self.script.replies:
            self._reply(conn, "auth")
            return
        if mechanism == b"PLAIN" and len(words) == 2:
            conn.send(b"334 \r\n")
            self._continuation(conn)
        elif mechanism == b"LOGIN":
            if len(words) == 2:
                conn.send(b"334 VXNlcm5hbWU6\r\n")
                self._continuation(conn)
            conn.send(b"334 UGFzc3dvcmQ6\r\n")
            self._continuation(conn)
        elif mechanism != b"PLAIN":
            conn.send(b"504 5.5.4 Unrecognized authentication type\r\n")
            return
        self._reply(conn, "auth")

    def _continuation(self, conn: Connection) -> None:
        raw = conn.readline()
        if raw is None:
            raise _Stop
        conn.commands.append(raw.rstrip(b"\r\n"))
        if conn.tls:
            conn.tls_commands.append(raw.rstrip(b"\r\n"))

    def _data(self, conn: Connection, mail_from: bytes, rcpts: list[bytes]) -> None:
        barrier = self.script.data_barrier
        if barrier is not None:
            try:
                barrier.wait(self.script.barrier_timeout)
            except threading.BrokenBarrierError:
                conn.send(b"451 4.3.0 The other session never reached DATA\r\n")
                return
        reply = self.script.replies.get("data", DEFAULT_REPLIES["data"])
        if not rcpts and "data" not in self.script.replies:
            reply = "554 5.5.1 No valid recipients"
        self._answer(conn, reply)
        if not _is_intermediate(reply):
            return
        wire, complete = conn.read_data()
        conn.transactions.append(Transaction(mail_from, rcpts, wire, complete))
        if not complete:
            raise _Stop
        numbered = self.script.eod_replies.get(len(conn.transactions))
        if numbered is not None:
            self._answer(conn, numbered)
        else:
            self._reply(conn, "eod")
        if self.script.after_eod is not None:
            self._answer(conn, self.script.after_eod)


def _path(line: bytes) -> bytes:
    start, end = line.find(b"<"), line.find(b">")
    if start < 0 or end < start:
        return line.split(b":", 1)[-1].strip()
    return line[start + 1 : end]


def _first_code(reply: Reply) -> bytes:
    if isinstance(reply, Fault):
        return b""
    return _encode(reply, 0)[:3]


def _is_positive(reply: Reply) -> bool:
    return _first_code(reply).startswith(b"2")


def _is_intermediate(reply: Reply) -> bool:
    return _first_code(reply).startswith(b"3")


def iter_stage_faults() -> Iterator[tuple[str, Fault]]:
    """Every (stage, fault) pair a send() can meet, for parametrised tests."""
    for stage in ("greeting", "ehlo", "mail", "rcpt", "data", "eod"):
        for fault in Fault:
            yield stage, fault
