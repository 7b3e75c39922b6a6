"""The Python contract of ``send()``, ``open()``/``Session``, ``SendResult``/``Reply`` and the SMTP
exceptions, against an in-process aiosmtpd server on 127.0.0.1.

aiosmtpd runs its event loop in a thread of this process: every successful exchange here also
shows that the client waits for the network with the GIL released (otherwise the server thread
could not answer and the test would hang into its timeout)."""

from __future__ import annotations

import email.message
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import mailpump
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from mailpump import errors


class Handler:
    """Records messages; refuses recipients whose local part starts with ``bad``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.in_data = threading.Event()
        self.release = threading.Event()
        self.release.set()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if address.startswith("bad"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        data = envelope.original_content or b""
        self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), data))
        return "250 2.0.0 OK queued as TEST1"


@pytest.fixture
def smtpd() -> Iterator[tuple[Controller, Handler]]:
    handler = Handler()
    with socket.socket() as probe:  # aiosmtpd's Controller needs a concrete port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def opts(controller: Controller) -> dict[str, Any]:
    return {
        "server": "127.0.0.1",
        "port": controller.port,
        "tls": "none",
        "timeout": 10,
    }


BODY = b"Subject: hi\r\n\r\nhello\r\n"


def test_send_with_dict_and_keywords_returns_a_send_result(
    smtpd: tuple[Controller, Handler],
) -> None:
    controller, handler = smtpd
    r1 = mailpump.send({"from": "a@example.test", "rcpt": "b@example.test", "source": BODY,  # type: ignore[call-overload]
                        **opts(controller)})  # fmt: skip
    r2 = mailpump.send(from_="<a@example.test>", rcpt=["c@example.test", "Dee <d@example.test>"],
                       source=mailpump.message({"headers": {"subject": "m"}, "body": "x"}),
                       **opts(controller))  # fmt: skip
    assert isinstance(r1, mailpump.SendResult) and r1 and r2
    assert r1.accepted == ["b@example.test"]
    assert r2.accepted == ["c@example.test", "d@example.test"]
    assert r1.refused == {}
    reply = r1.reply
    assert isinstance(reply, mailpump.Reply)
    assert (reply.code, reply.enhanced) == (250, "2.0.0")
    assert reply.text == "OK queued as TEST1"
    assert reply.lines == ["2.0.0 OK queued as TEST1"], "lines as received"
    assert not reply.transient and not reply.permanent
    assert "250" in repr(r1) and "250 2.0.0" in str(reply)
    assert [m[1] for m in handler.messages] == [["b@example.test"],
                                                ["c@example.test", "d@example.test"]]  # fmt: skip


def test_partial_refusal_is_reported_with_replies(
    smtpd: tuple[Controller, Handler],
) -> None:
    controller, _ = smtpd
    result = mailpump.send(from_="a@example.test", rcpt=["ok@example.test", "bad@example.test"],
                           source=BODY, **opts(controller))  # fmt: skip
    assert result.accepted == ["ok@example.test"]
    [(address, reply)] = result.refused.items()
    assert address == "bad@example.test"
    assert (reply.code, reply.enhanced, reply.permanent) == (550, "5.1.1", True)


def test_all_refused_raises_with_the_refusals(
    smtpd: tuple[Controller, Handler],
) -> None:
    controller, handler = smtpd
    with pytest.raises(errors.SMTPRecipientsRefused) as info:
        mailpump.send(from_="a@example.test", rcpt=["bad1@example.test", "bad2@example.test"],
                      source=BODY, **opts(controller))  # fmt: skip
    e = info.value
    assert set(e.refused) == {"bad1@example.test", "bad2@example.test"}
    assert all(r.code == 550 for r in e.refused.values())
    assert e.code == 550 and e.enhanced == "5.1.1" and e.permanent
    assert handler.messages == []


def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.SMTPConnectError) as info:
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=BODY,
                      server="127.0.0.1", port=port, tls="none", timeout=5)  # fmt: skip
    assert isinstance(info.value, ConnectionError)


def test_bad_arguments_raise_before_connecting() -> None:
    for bad in ("a@example.test\r\nRCPT TO:<x@y>", "a b@example.test"):
        with pytest.raises(ValueError):
            mailpump.send(from_=bad, rcpt="b@example.test", source=BODY, server="127.0.0.1",
                          port=9, timeout=5)  # fmt: skip
    with pytest.raises(TypeError, match="unknown connection option .bogus."):
        mailpump.send(  # type: ignore[call-overload]
            from_="a@example.test", rcpt="b@example.test", source=BODY, bogus=1
        )
    with pytest.raises(TypeError, match="left out only when the source is an EmailMessage"):
        mailpump.send(from_="a@example.test", source=BODY)
    with pytest.raises(ValueError, match="TLS policy"):
        mailpump.send(  # type: ignore[call-overload]
            from_="a@example.test", rcpt="b@example.test", source=BODY, tls="maybe"
        )


def test_source_exception_propagates_as_itself(
    smtpd: tuple[Controller, Handler],
) -> None:
    controller, handler = smtpd
    boom = RuntimeError("generator failed")

    def failing() -> Iterator[bytes]:
        yield BODY
        raise boom

    with pytest.raises(RuntimeError) as info:
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=failing(),
                      **opts(controller))  # fmt: skip
    assert info.value is boom
    assert handler.messages == []


def test_email_message_str_and_file_sources(smtpd: tuple[Controller, Handler]) -> None:
    import io

    controller, handler = smtpd
    msg = email.message.EmailMessage()
    msg["Subject"] = "from email"
    msg.set_content("body\n")
    for source in (msg, "Subject: str\r\n\r\nx\r\n", io.BytesIO(BODY)):
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=source,
                      **opts(controller))  # fmt: skip
    subjects = [m[2].split(b"\r\n")[0] for m in handler.messages]
    assert b"Subject: str" in subjects and b"Subject: hi" in subjects
    assert b"Subject: from email" in handler.messages[0][2]


def test_step_moves_each_chunk(smtpd: tuple[Controller, Handler]) -> None:
    controller, handler = smtpd
    seen: list[bytes | None] = []

    def step(src: Iterator[bytes], snk: Any) -> bool:
        chunk = next(src, None)
        seen.append(chunk)
        snk(chunk)
        return chunk is not None

    chunks = [b"Subject: step\r\n\r\n", b"one\r\n", b"two\r\n"]
    mailpump.send(from_="a@example.test", rcpt="b@example.test", source=iter(chunks), step=step,
                  **opts(controller))  # fmt: skip
    assert seen == [*chunks, None]
    assert handler.messages[0][2] == b"".join(chunks)


def test_create_adapts_a_python_socket(smtpd: tuple[Controller, Handler]) -> None:
    controller, handler = smtpd
    made: list[Any] = []

    class Sock:
        def __init__(self) -> None:
            self.s = socket.socket()
            self.calls: list[str] = []
            made.append(self)

        def settimeout(self, t: float | None) -> None:
            self.calls.append("settimeout")
            self.s.settimeout(t)

        def connect(self, addr: tuple[str, int]) -> None:
            self.calls.append("connect")
            self.s.connect(addr)

        def getpeername(self) -> Any:
            return self.s.getpeername()

        def sendall(self, data: bytes) -> None:
            self.s.sendall(data)

        def recv(self, n: int) -> bytes:
            return self.s.recv(n)

        def close(self) -> None:
            self.calls.append("close")
            self.s.close()

    mailpump.send(from_="a@example.test", rcpt="b@example.test", source=BODY, create=Sock,
                  **opts(controller))  # fmt: skip
    [sock] = made
    assert sock.calls[:2] == ["settimeout", "connect"] and sock.calls[-1] == "close"
    assert handler.messages[0][2] == BODY


def test_session_sends_many_messages_and_closes(
    smtpd: tuple[Controller, Handler],
) -> None:
    controller, handler = smtpd
    with mailpump.open("127.0.0.1", controller.port, tls="none", timeout=10) as s:
        assert isinstance(s, mailpump.Session)
        ehlo = s.greet("client.example.test")
        assert ehlo is not None and ehlo.code == 250
        assert s.noop().code == 250
        for i in range(5):
            r = s.send({"from": "a@example.test", "rcpt": "b@example.test"},
                       source=f"Subject: {i}\r\n\r\nx\r\n")  # fmt: skip
            assert r.reply.code == 250
        assert s.mail("a@example.test").code == 250
        assert s.rcpt("c@example.test").code == 250
        assert s.data(iter([b"Subject: low\r\n\r\n", b"level\r\n"])).code == 250
        assert s.rset().code == 250
        assert s.encrypted is False
    assert len(handler.messages) == 6
    with pytest.raises(errors.SMTPError):
        s.noop()


def test_session_refusals_keep_the_session(smtpd: tuple[Controller, Handler]) -> None:
    controller, _ = smtpd
    with mailpump.open("127.0.0.1", controller.port, tls="none", timeout=10) as s:
        s.greet()
        s.mail("a@example.test")
        with pytest.raises(errors.SMTPReplyError) as info:
            s.rcpt("bad@example.test")
        assert info.value.code == 550 and "RCPT" in (info.value.command or "").upper()
        assert s.rset().code == 250


def test_session_used_by_two_threads_at_once_raises(
    smtpd: tuple[Controller, Handler],
) -> None:
    controller, handler = smtpd
    inside, release = threading.Event(), threading.Event()

    def slow() -> Iterator[bytes]:
        yield b"Subject: shared\r\n\r\nfirst\r\n"
        inside.set()
        assert release.wait(30)
        yield b"second\r\n"

    with mailpump.open("127.0.0.1", controller.port, tls="none", timeout=30) as s:
        s.greet()
        results: list[Any] = []
        t = threading.Thread(
            target=lambda: results.append(
                s.send(from_="a@example.test", rcpt="b@example.test", source=slow())
            )
        )
        t.start()
        try:
            assert inside.wait(30)
            with pytest.raises(RuntimeError, match="another thread"):
                s.noop()
        finally:
            release.set()
            t.join(30)
        assert results and results[0]
    assert handler.messages[0][2] == b"Subject: shared\r\n\r\nfirst\r\nsecond\r\n"


def test_transcript_goes_to_the_logger_redacted(
    smtpd: tuple[Controller, Handler], caplog: pytest.LogCaptureFixture
) -> None:
    controller, _ = smtpd
    with caplog.at_level(logging.DEBUG, logger="mailpump"):
        mailpump.send(from_="a@example.test", rcpt="b@example.test",
                      source=b"Subject: t\r\n\r\nthe body text\r\n", **opts(controller))  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "mailpump"]
    assert all(
        r.levelno == logging.DEBUG for r in caplog.records if r.name == "mailpump"
    )
    assert any(line.startswith("C: MAIL FROM:<a@example.test>") for line in lines)
    assert any(line.startswith("S: 250") for line in lines)
    assert not any("the body text" in line for line in lines)


def test_no_transcript_without_debug(
    smtpd: tuple[Controller, Handler], caplog: pytest.LogCaptureFixture
) -> None:
    controller, _ = smtpd
    with caplog.at_level(logging.INFO, logger="mailpump"):
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=BODY,
                      **opts(controller))  # fmt: skip
    assert [r for r in caplog.records if r.name == "mailpump"] == []


def test_create_socket_returning_more_than_asked_loses_nothing() -> None:
    # A socket-like object whose recv() returns a whole reply however few bytes were asked for:
    # the EHLO reply (larger than one read of the client) arrives in one piece, and its end must
    # not be dropped.
    lines = [f"250-{'x' * 150} {i}" for i in range(90)] + ["250 ready"]
    ehlo_reply = "".join(line + "\r\n" for line in lines).encode()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as commands:
            conn.sendall(b"220 hello\r\n")
            commands.readline()  # EHLO
            conn.sendall(ehlo_reply)
            commands.readline()  # QUIT, or the end of the stream
            conn.sendall(b"221 bye\r\n")

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    class Greedy:
        def __init__(self) -> None:
            self.s = socket.socket()

        def settimeout(self, t: float | None) -> None:
            self.s.settimeout(t)

        def connect(self, addr: tuple[str, int]) -> None:
            self.s.connect(addr)

        def getpeername(self) -> Any:
            return self.s.getpeername()

        def sendall(self, data: bytes) -> None:
            self.s.sendall(data)

        def recv(self, n: int) -> bytes:
            # Everything up to the end of a complete reply (a final line: code and a space).
            data = b""
            while not (data.endswith(b"\r\n") and data.split(b"\r\n")[-2][3:4] == b" "):
                more = self.s.recv(65536)
                if not more:
                    break
                data += more
            return data

        def close(self) -> None:
            self.s.close()

    try:
        port = listener.getsockname()[1]
        with mailpump.open("127.0.0.1", port, create=Greedy, tls="none", timeout=5) as s:
            reply = s.greet("client.example.test")
            assert reply is not None
            assert reply.code == 250 and reply.lines == [line[4:] for line in lines]
    finally:
        listener.close()
        server.join()


def test_star_import_does_not_shadow_the_builtin_open() -> None:
    namespace: dict[str, Any] = {}
    exec("from mailpump import *", namespace)
    assert "open" not in namespace
    assert callable(mailpump.open)  # still reachable as mailpump.open
