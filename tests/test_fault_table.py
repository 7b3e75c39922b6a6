"""Faults at every protocol stage, table-driven (docs/security.md §12), through `send()` and a `Session`.

Stages: connect, greeting, EHLO, STARTTLS, the TLS handshake, the three steps of AUTH LOGIN, MAIL,
RCPT (every recipient, or only the second), DATA, the middle of the body, the end of data, QUIT.
Faults: a 4xx reply, a 5xx reply, a disconnect, a stall (the client's timeout fires), garbage, an
oversized reply, and an unsolicited reply injected behind the real one (after STARTTLS: plaintext
that would be read as if it came over TLS); at connect, a refused connection or one that is never
accepted; during the handshake, a disconnect, a stall or plaintext garbage. Pairs that cannot
happen are left out of the table: `TABLE_SIZE` (96) counts the rest, each run through `send()` and
through a `Session`.

For each pair: the documented exception class carrying the reply's code (or, where the design says
so, success: a refused second recipient is reported in the result, a failed QUIT does not fail a
delivered message), raised within the timeout (bounded by pytest-timeout), the connection closed by
the client, no message acknowledged unless the send reports it, and afterwards a `Session` either
still in step (a plain refusal: NOOP gets its own 250) or unusable with a clear error that sends no
byte (anything that makes the dialogue untrustworthy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.certs import Pki
from servers.faults import FaultScript, FaultServer
from servers.recording import free_port
from servers.scripted import Connection, Fault

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(30)

FROM = "sender@example.test"
RCPT = ["one@example.test", "two@example.test"]
USER, PASSWORD = "fault-user", "fault password"
BODY = b"Subject: fault table\r\n\r\n" + b"line of the message body\r\n" * 40
BIG_BODY = (
    b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 8192
)  # 8 MiB: a body fault is mid-body
TIMEOUT = 10.0
STALL_TIMEOUT = 0.5
"""The client's timeout when the server stalls; everything before the stall is local and quick."""

FAULTS = ["4xx", "5xx", "disconnect", "stall", "garbage", "oversized", "inject"]


@dataclasses.dataclass(frozen=True)
class Stage:
    """A point of the dialogue and how to break it."""

    key: str
    """The `FaultScript.replies` key (or a special one: connect, handshake, body, rcpt-2)."""
    ok: str
    """The reply the server normally gives there (for the oversized and injected variants)."""
    codes: tuple[int, int]
    """The 4xx and 5xx codes to refuse with."""
    error: type[BaseException] | None
    """The exception a 4xx/5xx raises there (None: the send succeeds and reports it)."""
    faults: tuple[str, ...] = tuple(FAULTS)
    tls: bool = False
    in_step_after_refusal: bool = False
    """Whether a 4xx/5xx there leaves the session usable (RFC 5321: a refused command)."""


STAGES = [
    Stage("connect", "", (0, 0), None, faults=("refused", "stall")),
    Stage("greeting", "220 scripted.test ESMTP", (421, 554), mailpump.SMTPReplyError),
    Stage("ehlo", "250 scripted.test", (451, 554), mailpump.SMTPReplyError),
    Stage("starttls", "220 2.0.0 Ready to start TLS", (454, 554), mailpump.SMTPTLSError, tls=True),
    Stage("handshake", "", (0, 0), None, faults=("disconnect", "stall", "garbage"), tls=True),
    Stage(
        "auth", "334 VXNlcm5hbWU6", (454, 504), mailpump.SMTPAuthError, in_step_after_refusal=True
    ),
    Stage(
        "auth-user",
        "334 UGFzc3dvcmQ6",
        (454, 535),
        mailpump.SMTPAuthError,
        in_step_after_refusal=True,
    ),
    Stage(
        "auth-password",
        "235 2.7.0 Authentication successful",
        (454, 535),
        mailpump.SMTPAuthError,
        in_step_after_refusal=True,
    ),
    Stage(
        "mail",
        "250 2.1.0 Sender ok",
        (451, 550),
        mailpump.SMTPSenderRefused,
        in_step_after_refusal=True,
    ),
    Stage(
        "rcpt",
        "250 2.1.5 Recipient ok",
        (450, 550),
        mailpump.SMTPRecipientsRefused,
        in_step_after_refusal=True,
    ),
    Stage("rcpt-2", "250 2.1.5 Recipient ok", (450, 550), None, in_step_after_refusal=True),
    Stage(
        "data",
        "354 End data with <CR><LF>.<CR><LF>",
        (451, 554),
        mailpump.SMTPDataRefused,
        in_step_after_refusal=True,
    ),
    # A reply before the end of the message stops it without its end-of-data mark, and the
    # connection with it: the server's idea of where the data ends is no longer the client's.
    Stage(
        "body",
        "250 2.0.0 Ok: queued",
        (452, 552),
        mailpump.SMTPDataRefused,
        in_step_after_refusal=False,
    ),
    Stage(
        "eod",
        "250 2.0.0 Ok: queued as S1",
        (451, 554),
        mailpump.SMTPDataRefused,
        in_step_after_refusal=True,
    ),
    Stage("quit", "221 2.0.0 Bye", (421, 500), None),
]

TABLE = [(stage, fault) for stage in STAGES for fault in stage.faults]
TABLE_SIZE = len(TABLE)

FAULT_CLASSES: dict[str, type[BaseException]] = {
    "disconnect": mailpump.SMTPConnectError,
    "stall": mailpump.SMTPTimeoutError,
    "garbage": mailpump.SMTPProtocolError,
    "oversized": mailpump.SMTPProtocolError,
    "inject": mailpump.SMTPProtocolError,
}


def fault_reply(stage: Stage, fault: str) -> Any:
    """What the server answers at `stage` instead of `stage.ok`."""
    if fault in ("4xx", "5xx"):
        code = stage.codes[fault == "5xx"]
        return f"{code} {code // 100}.0.0 refused at {stage.key} ({fault})"
    if fault == "oversized":
        # A finite reply, but one line far beyond RFC 5321 §4.5.3.1.5's 512 octets.
        return stage.ok[:4].encode() + b"x" * 8192 + b"\r\n"
    if fault == "inject":
        return [stage.ok, "250 2.0.0 unsolicited"]
    return {"disconnect": Fault.DISCONNECT, "stall": Fault.STALL, "garbage": Fault.GARBAGE}[fault]


def script_for(stage: Stage, fault: str, pki: Pki) -> FaultScript:
    script = FaultScript(auth=["LOGIN", "PLAIN"])
    if stage.tls:
        script.tls = pki.server.server_context()
        script.auth = []
    reply = fault_reply(stage, fault)
    if stage.key == "handshake":
        script.handshake = reply
    elif stage.key == "body":
        script.body = reply
        script.receive_buffer = 4096
    elif stage.key == "rcpt-2":
        script.rcpt_replies = {RCPT[1]: reply}
    elif stage.key == "ehlo" and fault == "inject":
        script.replies["ehlo"] = [
            "250-scripted.test",
            "250-PIPELINING",
            "250 AUTH LOGIN PLAIN",
            "250 2.0.0 unsolicited",
        ]
    elif stage.key == "starttls" and fault == "inject":
        script.replies["starttls"] = b"220 2.0.0 go ahead\r\n250-evil.example\r\n250 AUTH PLAIN\r\n"
    else:
        script.replies[stage.key] = reply
    return script


@dataclasses.dataclass
class Expected:
    error: type[BaseException] | None
    code: int | None
    in_step: bool
    """After the error, the session still works (else: unusable, with a clear error)."""
    delivered: bool


def expected(stage: Stage, fault: str, mode: str) -> Expected:
    if stage.key == "connect":
        error = mailpump.SMTPTimeoutError if fault == "stall" else mailpump.SMTPConnectError
        return Expected(error, None, False, False)
    if stage.key == "quit":
        # send(): the message was accepted; a failing QUIT does not fail the delivery.
        if mode == "send":
            return Expected(None, None, False, True)
        refused = mailpump.SMTPReplyError if fault in ("4xx", "5xx") else FAULT_CLASSES[fault]
        code = stage.codes[fault == "5xx"] if fault in ("4xx", "5xx") else None
        return Expected(refused, code, False, True)
    if stage.key == "handshake":
        # Whatever breaks the handshake (other than a timeout) is a TLS failure: a server that
        # hangs up mid-handshake often wants what the client lacks, or does not speak TLS there.
        error = mailpump.SMTPTimeoutError if fault == "stall" else mailpump.SMTPTLSError
        return Expected(error, None, False, False)
    if fault in ("4xx", "5xx"):
        code = stage.codes[fault == "5xx"]
        if stage.key == "rcpt-2":
            return Expected(None, code, True, True)  # reported in result.refused
        # 421 closes the session whatever the command (RFC 5321 §3.8).
        error = mailpump.SMTPReplyError if code == 421 else stage.error
        return Expected(error, code, stage.in_step_after_refusal and code != 421, False)
    if stage.key == "starttls" and fault == "inject":
        return Expected(mailpump.SMTPProtocolError, None, False, False)
    if stage.key == "eod" and fault == "inject":
        # The verdict came (250); the reply behind it is the next command's problem: send()
        # reports the delivery, a Session's QUIT finds the unasked reply.
        if mode == "send":
            return Expected(None, None, False, True)
        return Expected(mailpump.SMTPProtocolError, None, False, True)
    if stage.key == "eod":
        # The end-of-data mark went out and no verdict came: the message may have been
        # delivered, which is neither a lost connection nor a timeout to retry.
        return Expected(mailpump.SMTPOutcomeUnknown, None, False, False)
    return Expected(FAULT_CLASSES[fault], None, False, False)


@contextlib.contextmanager
def unreachable(fault: str) -> Iterator[int]:
    """A port where connecting is refused, or (stall) never completes: a listener that accepts
    nothing, its queue filled, so that the kernel drops the client's SYNs (Linux)."""
    if fault == "refused":
        yield free_port()
        return
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


@pytest.fixture
def fault_server() -> Iterator[Callable[[FaultScript], FaultServer]]:
    servers: list[FaultServer] = []

    def start(script: FaultScript) -> FaultServer:
        server = FaultServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def verbs(conn: Connection) -> list[bytes]:
    return [c.split(b" ", 1)[0].split(b":", 1)[0].upper() for c in conn.commands]


def run_send(host: str, port: int, stage: Stage, fault: str, pki: Pki) -> Any:
    options: dict[str, Any] = {
        "from_": FROM,
        "rcpt": RCPT,
        "source": BIG_BODY if stage.key == "body" else BODY,
        "server": host,
        "port": port,
        "timeout": STALL_TIMEOUT if fault == "stall" else TIMEOUT,
    }
    if stage.tls:
        options.update(tls="starttls", cafile=str(pki.ca))
    else:
        options.update(tls="none", user=USER, password=PASSWORD, auth="LOGIN")
    return mailpump.send(**options)


def session_steps(session: Any, stage: Stage) -> Any:
    session.greet()
    if not stage.tls:
        session.auth(USER, PASSWORD, mechanism="LOGIN")
    source = BIG_BODY if stage.key == "body" else BODY
    result = session.send({"from": FROM, "rcpt": RCPT, "source": source})
    session.quit()
    return result


def check_error(error: BaseException, want: Expected, stage: Stage) -> None:
    assert want.error is not None
    assert type(error) is want.error, repr(error)
    assert str(error)  # a message that says what happened
    if want.code is not None:
        if isinstance(error, mailpump.SMTPReplyError | mailpump.SMTPAuthError):
            assert error.code == want.code
        else:  # SMTPTLSError names the refused STARTTLS reply in its message
            assert str(want.code) in str(error)
    if isinstance(error, mailpump.SMTPRecipientsRefused):
        assert {str(a) for a in error.refused} == set(RCPT)
        assert {r.code for r in error.refused.values()} == {want.code}


def check_server(server: FaultServer, stage: Stage, fault: str, want: Expected) -> None:
    server.release.set()  # a stalled body read goes on: the client has given up by now
    [conn] = server.finished()  # the client closed the connection (bounded wait)
    delivered = [t for t in conn.transactions if t.complete]
    if want.delivered:
        assert [t.message for t in delivered] == [BODY]
    elif stage.key == "body" and fault in ("4xx", "5xx", "garbage", "oversized", "inject"):
        # The server answered early (and refused, or broke the protocol): not delivered, whatever
        # data it went on reading.
        pass
    elif stage.key == "eod":
        # The whole message arrived, but the server refused it or never acknowledged it.
        pass
    else:
        assert delivered == []
    if stage.tls:
        # Nothing sensitive in clear after a failed STARTTLS (CVE-2016-0772).
        for verb in (b"AUTH", b"MAIL", b"RCPT", b"DATA"):
            assert verb not in verbs(conn)


@pytest.mark.parametrize(
    ("stage", "fault"), [pytest.param(s, f, id=f"{s.key}-{f}") for s, f in TABLE]
)
def test_fault_through_send(
    fault_server: Callable[[FaultScript], FaultServer], pki: Pki, stage: Stage, fault: str
) -> None:
    want = expected(stage, fault, "send")
    if stage.key == "connect":
        with unreachable(fault) as port, pytest.raises(want.error or Exception):
            run_send("127.0.0.1", port, stage, fault, pki)
        return
    server = fault_server(script_for(stage, fault, pki))
    if want.error is None:
        result = run_send(server.host, server.port, stage, fault, pki)
        assert result
        if stage.key == "rcpt-2":
            assert result.accepted == [RCPT[0]]
            assert result.refused[RCPT[1]].code == want.code
    else:
        with pytest.raises(want.error) as info:
            run_send(server.host, server.port, stage, fault, pki)
        check_error(info.value, want, stage)
    check_server(server, stage, fault, want)


@pytest.mark.parametrize(
    ("stage", "fault"), [pytest.param(s, f, id=f"{s.key}-{f}") for s, f in TABLE]
)
def test_fault_through_session(
    fault_server: Callable[[FaultScript], FaultServer], pki: Pki, stage: Stage, fault: str
) -> None:
    want = expected(stage, fault, "session")
    options: dict[str, Any] = {"timeout": STALL_TIMEOUT if fault == "stall" else TIMEOUT}
    options.update(tls="starttls", cafile=str(pki.ca)) if stage.tls else options.update(tls="none")
    if stage.key == "connect":
        with unreachable(fault) as port, pytest.raises(want.error or Exception):
            mailpump.open("127.0.0.1", port, **options)
        return
    server = fault_server(script_for(stage, fault, pki))
    session = mailpump.open(server.host, server.port, **options)
    try:
        if want.error is None:
            result = session_steps(session, stage)
            assert result.refused[RCPT[1]].code == want.code
        else:
            with pytest.raises(want.error) as info:
                session_steps(session, stage)
            check_error(info.value, want, stage)
            if want.in_step:
                # A refusal leaves the dialogue in step: NOOP gets NOOP's own reply.
                reply = session.noop()
                assert reply.code == 250 and "Ok" in reply.text
                session.quit()
            else:
                # Unusable, with a clear error, and without writing a byte.
                with pytest.raises(mailpump.SMTPConnectError, match="closed"):
                    session.noop()
                with pytest.raises(mailpump.SMTPConnectError, match="closed"):
                    session.send({"from": FROM, "rcpt": RCPT, "source": BODY})
    finally:
        session.close()
    check_server(server, stage, fault, want)
    [conn] = server.connections
    if not want.in_step:
        assert b"NOOP" not in verbs(conn)


class _RepliesAfterData(logging.Handler):
    """Counts the server replies the client read after it sent DATA (from the DEBUG transcript)."""

    def __init__(self, wanted: int) -> None:
        super().__init__(logging.DEBUG)
        self.wanted = wanted
        self.seen: int | None = None
        self.reached = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if line == "C: DATA":
            self.seen = 0
        elif line.startswith("S: ") and self.seen is not None:
            self.seen += 1
            if self.seen >= self.wanted:
                self.reached.set()


@pytest.mark.parametrize("extra", ["250 2.0.0 unsolicited", "550 5.0.0 unsolicited"])
def test_unsolicited_reply_in_a_pipeline_never_desynchronises(
    fault_server: Callable[[FaultScript], FaultServer], extra: str
) -> None:
    # docs/security.md §8 (aiosmtplib, unsolicited-data desync), made deterministic: the server answers
    # the pipelined MAIL with two replies, and holds its 354 to DATA until the client has read the
    # four replies it expects. Every reply is then one step late: the client takes RCPT's 250 for
    # DATA's answer. It must see that the dialogue is out of step (a 2xx to DATA, a 354 to RSET)
    # and give the connection up, not go on with a server that takes its commands as message data.
    watcher = _RepliesAfterData(wanted=4)
    script = FaultScript(replies={"mail": ["250 2.1.0 Sender ok", extra]})

    def hold_data(_conn: Connection, line: bytes) -> None:
        if line.upper() == b"DATA":
            watcher.reached.wait(10)

    script.on_command = hold_data
    server = fault_server(script)
    logger = logging.getLogger("mailpump")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watcher)
    try:
        session = mailpump.open(server.host, server.port, tls="none", timeout=TIMEOUT)
        try:
            with pytest.raises(mailpump.SMTPError) as info:
                session.send({"from": FROM, "rcpt": RCPT, "source": BODY})
            assert watcher.reached.is_set()
            assert type(info.value) is mailpump.SMTPProtocolError, repr(info.value)
            with pytest.raises(mailpump.SMTPConnectError, match="closed"):
                session.noop()
        finally:
            session.close()
    finally:
        logger.removeHandler(watcher)
        logger.setLevel(old_level)
    [conn] = server.finished()
    assert not any(t.complete for t in conn.transactions)
    assert b"NOOP" not in verbs(conn)
