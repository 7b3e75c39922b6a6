"""The fault suite of `send()` against the scripted server: refusals, disconnects, stalls, garbage and
endless replies at every stage; STARTTLS stripping and response injection; a source failing
mid-DATA; envelope injection; SMTP smuggling; partial and total recipient refusal."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.certs import Pki
from servers.scripted import ENDLESS_BOUND, Connection, Fault, ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

FROM = "<sender@example.test>"
RCPT = ["<one@example.test>", "<two@example.test>"]
BODY = b"Subject: fault test\r\n\r\nline one\r\n.line two\r\n"
STAGES = ["greeting", "ehlo", "mail", "rcpt", "data", "eod"]


def send(target: ScriptedServer, **kw: Any) -> Any:
    options: dict[str, Any] = {"from_": FROM, "rcpt": RCPT, "source": BODY, "server": target.host,
                               "port": target.port, "tls": "none", "timeout": 5}  # fmt: skip
    options.update(kw)
    return mailpump.send(**options)


def verbs(conn: Connection) -> list[bytes]:
    return [c.split(b" ", 1)[0].split(b":", 1)[0].upper() for c in conn.commands]


def delivered(conn: Connection) -> bool:
    return any(t.complete for t in conn.transactions)


REPLY_ERRORS = {
    "greeting": mailpump.SMTPReplyError,
    "ehlo": mailpump.SMTPReplyError,
    "mail": mailpump.SMTPSenderRefused,
    "rcpt": mailpump.SMTPRecipientsRefused,
    "data": mailpump.SMTPDataRefused,
    "eod": mailpump.SMTPDataRefused,
}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("code", [421, 451, 550, 554])
def test_refusal_at_every_stage(
    scripted: Callable[..., ScriptedServer], stage: str, code: int
) -> None:
    if stage == "ehlo" and code >= 500:
        # A 5xx to EHLO means "try HELO" (RFC 5321 §4.1.4): refuse HELO too.
        replies = {"ehlo": f"{code} 5.5.1 no", "helo": f"{code} 5.5.1 no"}
    else:
        replies = {stage: f"{code} {code // 100}.0.0 refused at {stage}"}
    server = scripted(replies=replies)
    # 421 is the server closing the session (RFC 5321 §3.8) whatever the command: a plain reply
    # error, not a refusal of the sender, recipients or data.
    expected = mailpump.SMTPReplyError if code == 421 else REPLY_ERRORS[stage]
    with pytest.raises(expected) as info:
        send(server)
    error = info.value
    assert isinstance(error, mailpump.SMTPReplyError)
    assert error.code == code
    assert error.transient == (code < 500) and error.permanent == (code >= 500)
    [conn] = server.finished()
    assert not delivered(conn) or stage == "eod"
    if stage in ("greeting", "ehlo", "mail", "rcpt"):
        # A pipelining client may have sent DATA already; no message data may follow it.
        assert conn.transactions == []


def test_ehlo_refused_falls_back_to_helo(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(replies={"ehlo": "502 5.5.2 EHLO not implemented"})
    assert send(server)
    [conn] = server.finished()
    assert verbs(conn)[:2] == [b"EHLO", b"HELO"] and delivered(conn)


@pytest.mark.parametrize("stage", STAGES + ["quit"])
def test_disconnect_at_every_stage(scripted: Callable[..., ScriptedServer], stage: str) -> None:
    server = scripted(replies={stage: Fault.DISCONNECT})
    if stage == "quit":
        assert send(server)  # the message was accepted: a lost QUIT does not fail the send
    elif stage == "eod":
        # The whole message went out: it may have been delivered, so not a retryable loss.
        with pytest.raises(mailpump.SMTPOutcomeUnknown):
            send(server)
    else:
        with pytest.raises(mailpump.SMTPConnectError):
            send(server)
    server.finished()


@pytest.mark.parametrize("stage", STAGES)
def test_stall_at_every_stage_times_out(
    scripted: Callable[..., ScriptedServer], stage: str
) -> None:
    server = scripted(replies={stage: Fault.STALL})
    expected = mailpump.SMTPOutcomeUnknown if stage == "eod" else mailpump.SMTPTimeoutError
    with pytest.raises(expected):
        send(server, timeout=0.5)
    [conn] = server.finished()  # the client closed the connection it could no longer trust
    assert conn.after_fault == b"" or b"QUIT" not in conn.after_fault.upper()


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("fault", [Fault.GARBAGE, Fault.ENDLESS_LINES, Fault.ENDLESS_LINE])
def test_garbage_and_endless_replies(
    scripted: Callable[..., ScriptedServer], stage: str, fault: Fault
) -> None:
    server = scripted(replies={stage: fault})
    expected = mailpump.SMTPOutcomeUnknown if stage == "eod" else mailpump.SMTPProtocolError
    with pytest.raises(expected):
        send(server)
    [conn] = server.finished()
    assert conn.endless_sent < ENDLESS_BOUND  # the client gave up early: bounded memory
    assert not delivered(conn) or stage == "eod"


# -- STARTTLS ------------------------------------------------------------------------------------

INJECTIONS = [
    b"220 2.0.0 go ahead\r\n250-evil.example\r\n250 AUTH PLAIN\r\n",
    b"220 2.0.0 go ahead\r\n250-X",
    b"220 2.0.0 go ahead\r\n235 2.7.0 fake success\r\n",
]


@pytest.mark.parametrize("injected", INJECTIONS)
def test_plaintext_after_starttls_220_is_refused(
    scripted: Callable[..., ScriptedServer], pki: Pki, injected: bytes
) -> None:
    server = scripted(tls=pki.server.server_context(), auth=["PLAIN", "LOGIN"],
                      replies={"starttls": injected})  # fmt: skip
    with pytest.raises((mailpump.SMTPTLSError, mailpump.SMTPProtocolError)):
        send(server, tls="starttls", cafile=str(pki.ca), user="u", password="p")
    [conn] = server.finished()
    sent = verbs(conn)
    for verb in (b"AUTH", b"MAIL", b"RCPT", b"DATA"):
        assert verb not in sent
    assert conn.transactions == []


def _assert_nothing_sensitive(conn: Connection) -> None:
    sent = verbs(conn)
    for verb in (b"AUTH", b"MAIL", b"RCPT", b"DATA"):
        assert verb not in sent, sent
    assert conn.transactions == []


@pytest.mark.parametrize("user", [None, "u"])
def test_starttls_required_but_not_offered_fails_closed(
    scripted: Callable[..., ScriptedServer], pki: Pki, user: str | None
) -> None:
    server = scripted(auth=["PLAIN", "LOGIN"])  # no STARTTLS in EHLO
    creds = {"user": user, "password": "p"} if user else {}
    with pytest.raises(mailpump.SMTPTLSError):
        send(server, tls="starttls", cafile=str(pki.ca), **creds)
    [conn] = server.finished()
    _assert_nothing_sensitive(conn)


@pytest.mark.parametrize("reply", ["454 4.7.0 TLS not available", "500 5.5.1 unknown command"])
def test_starttls_refused_fails_closed(
    scripted: Callable[..., ScriptedServer], pki: Pki, reply: str
) -> None:
    server = scripted(tls=pki.server.server_context(), auth=["PLAIN"], replies={"starttls": reply})
    with pytest.raises(mailpump.SMTPError):
        send(server, tls="starttls", cafile=str(pki.ca), user="u", password="p")
    [conn] = server.finished()
    _assert_nothing_sensitive(conn)


def test_starttls_handshake_failure_fails_closed(
    scripted: Callable[..., ScriptedServer], pki: Pki
) -> None:
    server = scripted(tls=pki.untrusted.server_context(), auth=["PLAIN"])
    with pytest.raises(mailpump.SMTPTLSError):
        send(server, tls="starttls", cafile=str(pki.ca), user="u", password="p")
    [conn] = server.finished()
    _assert_nothing_sensitive(conn)


def test_capabilities_are_read_afresh_after_starttls(
    scripted: Callable[..., ScriptedServer], pki: Pki
) -> None:
    server = scripted(tls=pki.server.server_context(), auth=["PLAIN"])
    assert send(server, tls="starttls", cafile=str(pki.ca), user="u", password="p")
    [conn] = server.finished()
    assert conn.tls and conn.plaintext_after_starttls == b""
    assert verbs(conn)[:3] == [b"EHLO", b"STARTTLS", b"EHLO"]
    assert conn.tls_commands[0].upper().startswith(b"EHLO")


# -- DATA ----------------------------------------------------------------------------------------


class SourceFailed(Exception):
    pass


def test_source_raising_mid_data_sends_no_end_of_data_mark(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted()
    boom = SourceFailed("disk read failed")

    def source() -> Iterator[bytes]:
        yield b"Subject: partial\r\n\r\n"
        yield b"first half\r\n" * 30_000  # 360 KB: more than any sane write buffer
        raise boom

    with pytest.raises(BaseException) as info:
        send(server, source=source())
    chain: list[BaseException] = []
    error: BaseException | None = info.value
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert boom in chain, chain
    [conn] = server.finished()
    # Whatever reached the server (the client may have buffered it all), the mark never did.
    for txn in conn.transactions:
        assert not txn.complete
        assert b"\r\n.\r\n" not in txn.wire and not txn.wire.startswith(b".\r\n")


def test_message_source_raising_mid_data(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted()

    def body() -> Iterator[bytes]:
        yield b"x" * 70 + b"\r\n"
        raise SourceFailed("attachment unreadable")

    source = mailpump.message({"headers": {"subject": "s"}, "body": body(), "encoding": "base64"})
    with pytest.raises(BaseException) as info:
        send(server, source=source)
    assert isinstance(info.value, SourceFailed) or isinstance(
        info.value.__cause__ or info.value.__context__, SourceFailed
    )
    [conn] = server.finished()
    assert not any(t.complete for t in conn.transactions)


SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r", b"\r\r\n.\r\r\n", b"\r\n.\r\n"]


@pytest.mark.parametrize("payload", SMUGGLING)
@pytest.mark.parametrize("split", [False, True])
def test_smuggled_end_of_data_cannot_end_the_message(
    scripted: Callable[..., ScriptedServer], payload: bytes, split: bool
) -> None:
    body = (b"Subject: smuggle\r\n\r\nbefore" + payload +
            b"MAIL FROM:<evil@example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
            b"Subject: spoofed\r\n\r\nevil\r\n" + payload + b"after")  # fmt: skip
    source: Any = [body[i : i + 1] for i in range(len(body))] if split else body
    server = scripted()
    send(server, source=iter(source) if split else source)
    [conn] = server.finished()
    [txn] = conn.transactions  # one message: the smuggled one never became a transaction
    assert txn.complete
    assert b"\r" not in txn.wire.replace(b"\r\n", b"") and b"\n" not in txn.wire.replace(
        b"\r\n", b""
    )
    assert txn.wire.count(b"\r\n.\r\n") == 1 and txn.wire.endswith(b"\r\n.\r\n")
    assert re.search(rb"(^|\r\n)\.[^.]", txn.wire[:-3]) is None  # every leading dot stuffed
    assert b"after" in txn.message and verbs(conn).count(b"MAIL") == 1


@pytest.mark.parametrize("body", [b"", b"no final line end", b"ends with CRLF\r\n", b".", b"\r\n"])
def test_exactly_one_end_of_data_mark(scripted: Callable[..., ScriptedServer], body: bytes) -> None:
    server = scripted()
    send(server, source=body)
    [conn] = server.finished()
    [txn] = conn.transactions
    assert txn.complete and (txn.wire == b".\r\n" or txn.wire.endswith(b"\r\n.\r\n"))
    assert not txn.wire.endswith(b"\r\n\r\n.\r\n") or body.endswith(b"\r\n\r\n") or body == b"\r\n"


# -- envelope ------------------------------------------------------------------------------------

BAD_ADDRESSES = [
    "victim@example.test>\r\nDATA\r\n",
    "a@example.test\n",
    "a@example.test\r",
    "a@exa\x00mple.test",
    "a@example.test\x7f",
    "a\t@example.test",
    "a b@example.test",
]


@pytest.mark.parametrize("where", ["from", "rcpt"])
@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_envelope_injection_is_refused_before_any_byte(
    scripted: Callable[..., ScriptedServer], where: str, address: str
) -> None:
    server = scripted()
    kw = {"from_": address} if where == "from" else {"rcpt": ["<ok@example.test>", address]}
    with pytest.raises((ValueError, mailpump.MailpumpError)):
        send(server, **kw)
    server.stop()
    for conn in server.connections:
        assert b"MAIL" not in verbs(conn) and b"RCPT" not in verbs(conn)
        assert conn.transactions == []


# -- recipients ----------------------------------------------------------------------------------


def test_partial_refusal_delivers_to_the_rest(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(rcpt_replies={"two@example.test": "550 5.1.1 no such user"})
    result = send(server)
    assert [str(a).strip("<>") for a in result.accepted] == ["one@example.test"]
    [(address, reply)] = list(result.refused.items())
    assert str(address).strip("<>") == "two@example.test"
    assert reply.code == 550
    enhanced = reply.enhanced
    assert (
        ".".join(map(str, enhanced)) if isinstance(enhanced, tuple) else str(enhanced)
    ) == "5.1.1"
    [conn] = server.finished()
    assert [t.rcpt_tos for t in conn.transactions] == [[b"one@example.test"]]


@pytest.mark.parametrize("pipelining", [True, False])
def test_all_recipients_refused_sends_no_data(
    scripted: Callable[..., ScriptedServer], pipelining: bool
) -> None:
    extensions = ["PIPELINING", "8BITMIME"] if pipelining else ["8BITMIME"]
    server = scripted(extensions=extensions, replies={"rcpt": "550 5.1.1 no"})
    with pytest.raises(mailpump.SMTPRecipientsRefused) as info:
        send(server)
    assert {str(a).strip("<>") for a in info.value.refused} == {
        "one@example.test",
        "two@example.test",
    }
    [conn] = server.finished()
    assert all(t.message == b"" for t in conn.transactions)


def test_failed_quit_does_not_fail_an_accepted_send(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(replies={"quit": "500 5.5.1 what"})
    result = send(server)
    assert result and result.reply.code == 250
    [conn] = server.finished()
    assert delivered(conn)


# -- pipelining ----------------------------------------------------------------------------------


def test_pipelines_mail_rcpt_data_when_offered(scripted: Callable[..., ScriptedServer]) -> None:
    # The server answers MAIL only once DATA has arrived: only a pipelining client gets through.
    server = scripted(hold_mail_until_data=True, probe_timeout=30)
    assert send(server)
    [conn] = server.finished()
    pending = conn.unanswered_at_mail[0]
    assert pending.upper().count(b"RCPT TO:") == 2 and pending.upper().endswith(b"DATA\r\n")
    assert delivered(conn)


def test_does_not_pipeline_when_not_offered(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(extensions=["8BITMIME"])
    assert send(server)
    [conn] = server.finished()
    assert conn.unanswered_at_mail == [b""]
    assert delivered(conn)


def test_size_is_declared_when_offered(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(extensions=["PIPELINING", "SIZE 10000000"])
    send(server)
    [conn] = server.finished()
    [mail] = [c for c in conn.commands if c.upper().startswith(b"MAIL")]
    assert re.search(rb"SIZE=\d+", mail.upper())


def test_message_over_the_size_limit_fails_early(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(extensions=["PIPELINING", "SIZE 100"])
    with pytest.raises(mailpump.MailpumpError):
        send(server, source=b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 10)
    [conn] = server.finished()
    assert conn.transactions == []


def test_timeout_closes_the_session_for_good(scripted: Callable[..., ScriptedServer]) -> None:
    # After a timeout the connection is never reused (docs/security.md §8).
    server = scripted(replies={"noop": Fault.STALL})
    s = mailpump.open(server.host, server.port, tls="none", timeout=0.5)
    try:
        s.greet()
        with pytest.raises(mailpump.SMTPTimeoutError):
            s.noop()
        with pytest.raises((mailpump.MailpumpError, RuntimeError)):
            s.noop()
    finally:
        s.close()
    server.finished()


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("greeting", ["220 scripted.test ESMTP", "250 2.0.0 unsolicited"]),
        ("mail", ["250 2.1.0 Sender ok", "250 2.1.5 Recipient ok"]),
        ("rcpt", ["250 2.1.5 Recipient ok", "354 go ahead"]),
    ],
)
def test_unsolicited_replies_are_a_protocol_error(
    scripted: Callable[..., ScriptedServer], stage: str, reply: list[str]
) -> None:
    # Without PIPELINING the client waits for each reply, so an extra reply sent in the same write
    # is data where none belongs (docs/security.md §8, unsolicited-data desync): it must not be taken as the
    # answer to the next command.
    server = scripted(extensions=["8BITMIME"], replies={stage: reply})
    with pytest.raises(mailpump.SMTPProtocolError):
        send(server, rcpt=RCPT[0])
    [conn] = server.finished()
    assert not delivered(conn)


@pytest.fixture
def unasked_reply_server() -> Iterator[tuple[int, threading.Event, threading.Event]]:
    """Answers the greeting, EHLO and NOOP, then (when told) a reply nobody asked for."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    go = threading.Event()
    sent = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = conn.makefile("rb")
        conn.sendall(b"220 ready\r\n")
        lines.readline()  # EHLO
        conn.sendall(b"250 ok\r\n")
        lines.readline()  # NOOP
        conn.sendall(b"250 noop ok\r\n")
        go.wait(10)
        conn.sendall(b"250 unasked\r\n")
        sent.set()
        lines.readline()  # whatever follows, if anything
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, go, sent
    thread.join(10)
    listener.close()


def test_unasked_reply_between_commands_is_a_protocol_error(
    unasked_reply_server: tuple[int, threading.Event, threading.Event],
) -> None:
    port, go, sent = unasked_reply_server
    with mailpump.open("127.0.0.1", port, tls="none", timeout=10) as session:
        session.greet()
        assert session.noop().code == 250
        go.set()
        assert sent.wait(10)
        with pytest.raises(mailpump.SMTPProtocolError):
            session.rset()


@pytest.mark.parametrize(("server_name", "sni"), [("localhost", "localhost"), ("127.0.0.1", None)])
@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_sni_names_the_host_and_never_an_ip_literal(
    scripted: Callable[..., ScriptedServer], pki: Pki, tls: str, server_name: str, sni: str | None
) -> None:
    # RFC 6066 §3: the client names the host it verifies; a literal IP address is not sent.
    context = pki.server.server_context()
    script = {"tls": context} if tls == "starttls" else {"implicit_tls": context}
    server = scripted(**script)
    send(server, server=server_name, tls=tls, cafile=str(pki.ca))
    server.finished()
    assert server.sni_names == [sni]


def test_non_ascii_address_uses_smtputf8_when_offered(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(extensions=["PIPELINING", "SMTPUTF8", "8BITMIME"])
    assert send(server, rcpt=["<j\u00f6rg@example.test>"])
    [conn] = server.finished()
    [mail] = [c for c in conn.commands if c.upper().startswith(b"MAIL")]
    assert b"SMTPUTF8" in mail.upper()  # RFC 6531 §3.4
    assert conn.transactions[0].rcpt_tos == ["j\u00f6rg@example.test".encode()]


def test_non_ascii_address_without_smtputf8_fails_before_mail(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(extensions=["PIPELINING", "8BITMIME"])
    with pytest.raises((ValueError, mailpump.MailpumpError)):
        send(server, rcpt=["<j\u00f6rg@example.test>"])
    [conn] = server.finished()
    assert b"MAIL" not in verbs(conn) and conn.transactions == []
