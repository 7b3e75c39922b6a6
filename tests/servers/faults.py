"""The scripted server with the fault stages of the fault table (docs/security.md §12) beyond `scripted.py`'s.

`FaultServer` is a `ScriptedServer` (same dialogue, same recording) that can also misbehave:

- at each step of AUTH LOGIN: the reply to `AUTH LOGIN` (stage `auth`), the challenge after the
  user name (`auth-user`) and the final reply after the password (`auth-password`);
- instead of the TLS handshake after a `220` to STARTTLS (`FaultScript.handshake`);
- in the middle of the message body, after `body_after` octets (`FaultScript.body`): a reply
  sent early (the server then reads on to the end of data, so the client finds it when it reads
  the reply to the end of data), a disconnect, garbage, or a stall that stops *reading*, so that
  a client writing a large body blocks in its writes;
- hooks that run when a given point is reached (`on_body`, `on_data_end`), for the tests that send
  a signal to the test process from the server thread.

It lives in its own module so that `scripted.py` (another helper's file) stays untouched.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable

from .scripted import (
    GARBAGE_LINE,
    Connection,
    Fault,
    Reply,
    Script,
    ScriptedServer,
    Transaction,
    _encode,
    _is_intermediate,
    _Stop,
)

STALL_BOUND = 60.0
"""The longest a body stall holds the connection before reading on (a failing test must end)."""


@dataclasses.dataclass
class FaultScript(Script):
    """A `Script` with the extra fault points (every one off by default)."""

    handshake: Fault | None = None
    """After the `220` to STARTTLS, instead of the handshake: DISCONNECT, STALL or GARBAGE."""
    body: Reply | None = None
    """What happens once `body_after` octets of the message arrived (see the module docs)."""
    body_after: int = 64 * 1024
    receive_buffer: int | None = None
    """SO_RCVBUF of every accepted connection: small, a stalled reader blocks the writer sooner."""
    on_body: Callable[[Connection], None] | None = None
    """Called once `body_after` octets of a message arrived (before `body` is applied)."""
    on_data_end: Callable[[Connection], None] | None = None
    """Called when a complete message (its end-of-data mark) arrived, before the reply."""


class FaultServer(ScriptedServer):
    """A `ScriptedServer` driven by a `FaultScript`."""

    script: FaultScript

    def __init__(self, script: FaultScript | None = None) -> None:
        self.release = threading.Event()
        """Ends a body stall: set by the test once the client gave up (and by `stop()`)."""
        script = script or FaultScript()
        super().__init__(script)
        if script.receive_buffer is not None:
            # Accepted sockets inherit the listener's buffer size (Linux), and the window the
            # client may fill follows from it.
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, script.receive_buffer)

    def stop(self) -> None:
        self.release.set()
        super().stop()

    def _stage(self, conn: Connection, stage: str, default: str) -> None:
        self._answer(conn, self.script.replies.get(stage, default))

    # -- AUTH LOGIN, step by step ----------------------------------------------------------------
    def _auth(self, conn: Connection, line: bytes) -> None:
        words = line.split()
        mechanism = words[1].upper() if len(words) > 1 else b""
        if mechanism != b"LOGIN":
            # PLAIN and XOAUTH2 carry their payload in the command: one reply.
            if mechanism in (b"PLAIN", b"XOAUTH2") and len(words) == 2:
                conn.send(b"334 \r\n")
                self._continuation(conn)
            self._stage(conn, "auth", "235 2.7.0 Authentication successful")
            return
        steps = [("auth", "334 VXNlcm5hbWU6"), ("auth-user", "334 UGFzc3dvcmQ6")]
        if len(words) > 2:  # the user name came as an initial response
            steps = [("auth", "334 UGFzc3dvcmQ6")]
        for stage, default in steps:
            reply = self.script.replies.get(stage, default)
            self._answer(conn, reply)
            if not _is_intermediate(reply):
                return  # the exchange ends at any reply other than a 334 challenge
            self._continuation(conn)
        self._stage(conn, "auth-password", "235 2.7.0 Authentication successful")

    # -- STARTTLS, with a faulty handshake -------------------------------------------------------
    def _starttls(self, conn: Connection) -> None:
        fault = self.script.handshake
        if fault is None:
            super()._starttls(conn)
            return
        self._answer(conn, self.script.replies.get("starttls", "220 2.0.0 Ready to start TLS"))
        if fault is Fault.GARBAGE:
            # Answer the client's first handshake bytes (its ClientHello) with plaintext: sent
            # before them, the garbage would be plaintext injected after the 220 instead, a
            # different fault with its own test.
            conn._fill()
            conn.send(GARBAGE_LINE)
        if fault is Fault.DISCONNECT:
            conn.close()
        else:
            conn.after_fault = conn.drain()
        raise _Stop

    # -- DATA, with faults mid-body and hooks ----------------------------------------------------
    def _data(self, conn: Connection, mail_from: bytes, rcpts: list[bytes]) -> None:
        reply = self.script.replies.get("data", "354 End data with <CR><LF>.<CR><LF>")
        if not rcpts and "data" not in self.script.replies:
            reply = "554 5.5.1 No valid recipients"
        self._answer(conn, reply)
        if not _is_intermediate(reply):
            return
        early = self._body_point(conn)
        if early is Fault.DISCONNECT:
            conn.transactions.append(Transaction(mail_from, rcpts, conn._buf, False))
            conn.close()
            raise _Stop
        if early is Fault.STALL:
            # Read nothing until the test releases the connection: the client's writes block.
            self.release.wait(STALL_BOUND)
            wire, complete = conn.read_data()
            conn.transactions.append(Transaction(mail_from, rcpts, wire, complete))
            conn.after_fault = conn.drain()
            raise _Stop
        if early is not None:
            # A reply in the middle of the body; the client finds it after its end of data.
            conn.send(GARBAGE_LINE if early is Fault.GARBAGE else _encode(early, 0))  # type: ignore[arg-type]
        wire, complete = conn.read_data()
        conn.transactions.append(Transaction(mail_from, rcpts, wire, complete))
        if not complete:
            raise _Stop
        if self.script.on_data_end is not None:
            self.script.on_data_end(conn)
        if early is None:
            self._reply(conn, "eod")
        elif early is Fault.GARBAGE:
            conn.after_fault = conn.drain()
            raise _Stop

    def _body_point(self, conn: Connection) -> Reply | None:
        """Reads the first `body_after` octets of the body (unless the message is shorter), runs
        `on_body`, and returns the body fault to apply."""
        if self.script.body is None and self.script.on_body is None:
            return None
        while len(conn._buf) < self.script.body_after and b"\r\n.\r\n" not in conn._buf:
            if not conn._fill():
                break
        if self.script.on_body is not None:
            self.script.on_body(conn)
        return self.script.body
