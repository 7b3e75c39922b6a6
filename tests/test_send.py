"""`send()` and `Session` against aiosmtpd: both seed examples with STARTTLS and AUTH, the TLS policies, wrong
password, untrusted certificates, the accepted source kinds, many messages over one Session."""

from __future__ import annotations

import base64
import email.message
import io
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from mailcheck import collect, parse, wire_form
from seed import check_seed_message, png_bytes, seed_message
from servers.certs import Pki
from servers.recording import PASSWORD, USER, RecordingServer

if TYPE_CHECKING:
    from mailpump.types import AuthMechanism

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

FROM = "<luasocket@example.test>"
RCPT = ["<fulano@example.test>", "<beltrano@example.test>", "<sicrano@example.test>"]

SEED2: dict[str, Any] = {
    "headers": {
        "to": "Fulano da Silva <fulano@example.test>",
        "cc": '"Beltrano F. Nunes" <beltrano@example.test>',
        "subject": "My first message",
    },
    "body": "I hope this works. If it does, I can send you another 1000 copies.",
}


def fixed(mesgt: dict[str, Any], n: int = 1) -> dict[str, Any]:
    """`mesgt` with Date and Message-ID supplied, so two message() calls give the same bytes."""
    headers = {"date": "Tue, 14 Nov 2023 22:13:20 +0000", "message-id": f"<seed.{n}@mailpump.test>"}
    return {**mesgt, "headers": {**headers, **mesgt["headers"]}}


def tls_options(server: RecordingServer, pki: Pki, tls: str = "starttls") -> dict[str, Any]:
    return {"server": server.host, "port": server.port, "tls": tls, "cafile": str(pki.ca),
            "user": USER, "password": PASSWORD, "timeout": 10}  # fmt: skip


def bare(addresses: Any) -> set[str]:
    return {str(a).strip("<>") for a in addresses}


def test_seed_second_example_delivers_to_all_three_without_bcc(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    result = mailpump.send({"from": FROM, "rcpt": RCPT, "source": mailpump.message(fixed(SEED2)),
                            **tls_options(server, pki)})  # fmt: skip
    assert result
    assert bare(result.accepted) == bare(RCPT)
    assert not result.refused
    assert result.reply.code == 250 and "queued as" in result.reply.text
    [got] = server.messages
    assert got.tls and got.auth_user == USER
    assert got.mail_from == "luasocket@example.test"
    assert bare(got.rcpt_tos) == bare(RCPT)
    assert got.data == wire_form(collect(mailpump.message(fixed(SEED2))))
    stored = parse(got.data)
    assert stored["bcc"] is None and b"sicrano" not in got.data
    assert stored["to"] == SEED2["headers"]["to"]
    assert stored.get_content().strip() == SEED2["body"]


def test_seed_first_example_over_starttls_and_auth(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki, tmp_path: Path
) -> None:
    data = png_bytes()
    image = tmp_path / "image.png"
    image.write_bytes(data)
    server = aiosmtpd_server(tls="starttls", auth=True)
    # The source is teed so the test sees exactly the bytes message() produced for this send.
    produced: list[bytes] = []

    def tee() -> Any:
        for chunk in seed_message(image):
            produced.append(chunk)
            yield chunk

    result = mailpump.send(from_="<sicrano@example.test>", rcpt="<fulano@example.test>",
                           source=tee(), **tls_options(server, pki))  # fmt: skip
    assert result
    [got] = server.messages
    assert got.data == wire_form(b"".join(produced))
    check_seed_message(got.data, data)


def test_native_message_source_stored_bytes_equal_message_output(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki
) -> None:
    # Dots at line starts and a body without a final CRLF: the server un-stuffs and gets back the
    # exact bytes message() produced (plus the CRLF the end-of-data mark needs).
    mesgt = {"headers": {"subject": "dots"}, "body": ".\r\n..two\r\n.three\r\nlast line"}
    server = aiosmtpd_server(tls="starttls", auth=True)
    mailpump.send(from_=FROM, rcpt=RCPT[0], source=mailpump.message(fixed(mesgt)),
                  **tls_options(server, pki))  # fmt: skip
    [got] = server.messages
    assert got.data == wire_form(collect(mailpump.message(fixed(mesgt))))


@pytest.mark.parametrize("tls", ["starttls", "implicit", "none", "auto"])
def test_tls_policies(aiosmtpd_server: Callable[..., RecordingServer], pki: Pki, tls: str) -> None:
    kind = {"auto": "starttls"}.get(tls, tls)
    server = aiosmtpd_server(tls=kind, auth=True, require_starttls=tls != "none")
    mailpump.send(from_=FROM, rcpt=RCPT, source=mailpump.message(fixed(SEED2)),
                  **tls_options(server, pki, tls))  # fmt: skip
    [got] = server.messages
    assert got.tls == (tls != "none")
    assert got.auth_user == USER  # over plaintext only because the server is on loopback


def test_localhost_name_is_verified_against_the_certificate(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    options = tls_options(server, pki) | {"server": "localhost"}
    mailpump.send(from_=FROM, rcpt=RCPT[0], source=b"Subject: x\r\n\r\nx\r\n", **options)
    assert [m.tls for m in server.messages] == [True]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_mechanisms(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki, mechanism: str
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    options = tls_options(server, pki) | {"auth": mechanism}
    mailpump.send(from_=FROM, rcpt=RCPT[0], source=b"Subject: a\r\n\r\nx\r\n", **options)
    assert [m.auth_user for m in server.messages] == [USER]


def test_wrong_password(aiosmtpd_server: Callable[..., RecordingServer], pki: Pki) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    with pytest.raises(mailpump.SMTPAuthError):
        mailpump.send(from_=FROM, rcpt=RCPT, source=b"Subject: x\r\n\r\nx\r\n",
                      **tls_options(server, pki) | {"password": "wrong"})  # fmt: skip
    assert server.messages == []


@pytest.mark.parametrize(
    ("password", "token", "auth"),
    [("pw", "tok", None),  # which one?
     (None, "tok", "PLAIN"),  # the token would go out as a PLAIN password
     ("pw", None, "XOAUTH2")],
)  # fmt: skip
def test_secret_and_mechanism_must_agree(
    aiosmtpd_server: Callable[..., RecordingServer],
    password: str | None,
    token: str | None,
    auth: AuthMechanism | None,
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with pytest.raises(ValueError, match="token|password"):
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=b"Subject: s\r\n\r\nx\r\n",
                      server=server.host, port=server.port, timeout=10, user="u", auth=auth,
                      password=password, oauth_token=token)  # fmt: skip
    assert server.messages == []


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
@pytest.mark.parametrize("which", ["untrusted", "wrong_host"])
def test_untrusted_certificates_fail(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki, tls: str, which: str
) -> None:
    server = aiosmtpd_server(tls=tls, auth=True, cert=getattr(pki, which))
    with pytest.raises(mailpump.SMTPTLSError):
        mailpump.send(from_=FROM, rcpt=RCPT, source=b"Subject: x\r\n\r\nx\r\n",
                      **tls_options(server, pki, tls))  # fmt: skip
    assert server.messages == []


def test_system_roots_do_not_trust_the_test_ca(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    options = tls_options(server, pki)
    del options["cafile"]
    with pytest.raises(mailpump.SMTPTLSError):
        mailpump.send(from_=FROM, rcpt=RCPT, source=b"Subject: x\r\n\r\nx\r\n", **options)


def test_verify_false_is_an_explicit_opt_out(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True, cert=pki.untrusted)
    options = tls_options(server, pki) | {"verify": False}
    assert mailpump.send(from_=FROM, rcpt=RCPT[0], source=b"Subject: x\r\n\r\nx\r\n", **options)
    assert [m.tls for m in server.messages] == [True]


def _email_message() -> email.message.EmailMessage:
    msg = email.message.EmailMessage()
    msg["Subject"] = "from the email package"
    msg["To"] = "fulano@example.test"
    msg.set_content("body line\n.dot line\n")
    return msg


SOURCES: dict[str, Callable[[Path], Any]] = {
    "bytes": lambda _: b"Subject: s\r\n\r\nbody line\r\n.dot line\r\n",
    "str": lambda _: "Subject: s\r\n\r\nbody line\r\n.dot line\r\n",
    "bare LF bytes": lambda _: b"Subject: s\n\nbody line\n.dot line\n",
    "iterable": lambda _: iter([b"Subject: s\r\n\r\nbody ", b"line\r\n.dot", b" line\r\n"]),
    "file object": lambda _: io.BytesIO(b"Subject: s\r\n\r\nbody line\r\n.dot line\r\n"),
    "ltn12 source": lambda p: mailpump.ltn12.source.file(str(p), "rb"),
    "EmailMessage": lambda _: _email_message(),
}


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_source_kinds(
    aiosmtpd_server: Callable[..., RecordingServer], kind: str, tmp_path: Path
) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: s\r\n\r\nbody line\r\n.dot line\r\n")
    server = aiosmtpd_server(tls="none", auth=False)
    mailpump.send(from_=FROM, rcpt=RCPT[0], source=SOURCES[kind](path), server=server.host,
                  port=server.port, timeout=10)  # fmt: skip
    [got] = server.messages
    assert b"\r\n.dot line\r\n" in got.data
    assert b"\n" not in got.data.replace(b"\r\n", b"")  # no bare LF reaches the server
    parse(got.data)  # whole and parseable


def test_keywords_and_dict_are_the_same(aiosmtpd_server: Callable[..., RecordingServer]) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    common = {"server": server.host, "port": server.port, "timeout": 10}
    mailpump.send({"from": FROM, "rcpt": RCPT[0], "source": b"Subject: 1\r\n\r\nx\r\n", **common})
    mailpump.send(from_=FROM, rcpt=[RCPT[1]], source=b"Subject: 2\r\n\r\nx\r\n", **common)
    assert [m.rcpt_tos for m in server.messages] == [["fulano@example.test"],
                                                     ["beltrano@example.test"]]  # fmt: skip


def test_module_constants_are_read_at_call_time(
    aiosmtpd_server: Callable[..., RecordingServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    monkeypatch.setattr(mailpump.smtp, "SERVER", server.host)
    monkeypatch.setattr(mailpump.smtp, "PORT", server.port)
    monkeypatch.setattr(mailpump.smtp, "TIMEOUT", 10)
    monkeypatch.setattr(mailpump.smtp, "DOMAIN", "constants.example.test")
    mailpump.send(from_=FROM, rcpt=RCPT[0], source=b"Subject: c\r\n\r\nx\r\n")
    assert len(server.messages) == 1


def test_null_reverse_path_and_address_forms(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    mailpump.send(from_="", rcpt=["a@example.test", "<b@example.test>", "Cee <c@example.test>"],
                  source=b"Subject: n\r\n\r\nx\r\n", server=server.host, port=server.port,
                  timeout=10)  # fmt: skip
    [got] = server.messages
    assert got.mail_from == "<>"
    assert got.rcpt_tos == ["a@example.test", "b@example.test", "c@example.test"]


def test_many_messages_over_one_session(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    count = 60
    with mailpump.open(
        server.host, server.port, tls="starttls", cafile=str(pki.ca), timeout=10
    ) as s:
        s.greet("client.example.test")
        s.auth(USER, PASSWORD)
        for i in range(count):
            result = s.send({"from": FROM, "rcpt": RCPT[i % 3],
                             "source": mailpump.message({"headers": {"subject": f"n{i}"},
                                                         "body": f"message {i}"})})  # fmt: skip
            assert result.reply.code == 250
        s.quit()
    got = server.messages
    assert [parse(m.data)["subject"] for m in got] == [f"n{i}" for i in range(count)]
    assert len({m.peer for m in got}) == 1  # one connection
    assert all(m.tls and m.auth_user == USER for m in got)


def test_session_low_level_commands(aiosmtpd_server: Callable[..., RecordingServer]) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as s:
        s.greet()
        s.noop()
        s.mail(FROM)
        s.rcpt(RCPT[0])
        s.rset()
        s.mail(FROM)
        s.rcpt(RCPT[1])
        s.data(mailpump.message({"headers": {"subject": "low"}, "body": "level"}))
        s.quit()
    [got] = server.messages
    assert got.rcpt_tos == ["beltrano@example.test"]


class CountingSocket:
    """A socket-like object for `create`: settimeout, connect, sendall, recv, close."""

    instances: list[CountingSocket] = []

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sent = 0
        self.received = 0
        self.closed = False
        CountingSocket.instances.append(self)

    def settimeout(self, t: float | None) -> None:
        self.sock.settimeout(t)

    def connect(self, address: tuple[str, int]) -> None:
        self.sock.connect(address)

    def sendall(self, data: bytes) -> None:
        self.sent += len(data)
        self.sock.sendall(data)

    def recv(self, n: int) -> bytes:
        data = self.sock.recv(n)
        self.received += len(data)
        return data

    def close(self) -> None:
        self.closed = True
        self.sock.close()


@pytest.mark.parametrize("tls", ["none", "starttls"])
def test_create_supplies_the_socket(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki, tls: str
) -> None:
    server = aiosmtpd_server(tls=tls, auth=tls != "none")
    CountingSocket.instances.clear()
    options = tls_options(server, pki, tls) if tls != "none" else {
        "server": server.host, "port": server.port, "tls": "none", "timeout": 10}  # fmt: skip
    body = b"Subject: created\r\n\r\n" + b"line\r\n" * 1000
    mailpump.send(from_=FROM, rcpt=RCPT[0], source=body, create=CountingSocket, **options)
    [sock] = CountingSocket.instances
    assert sock.sent > len(body) and sock.received > 0 and sock.closed
    [got] = server.messages
    assert got.data == body and got.tls == (tls != "none")


def test_step_is_called(aiosmtpd_server: Callable[..., RecordingServer]) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    calls = []

    def step(source: Any, sink: Any) -> bool:
        calls.append(1)
        return bool(mailpump.ltn12.pump.step(source, sink))

    mailpump.send(from_=FROM, rcpt=RCPT[0], source=iter([b"Subject: s\r\n\r\n", b"a\r\n", b"b\r\n"]),
                  step=step, server=server.host, port=server.port, timeout=10)  # fmt: skip
    assert len(calls) >= 3
    assert server.messages[0].data == b"Subject: s\r\n\r\na\r\nb\r\n"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_transcript_redacts_credentials(
    aiosmtpd_server: Callable[..., RecordingServer],
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    options = tls_options(server, pki) | {"auth": mechanism}
    with caplog.at_level(logging.DEBUG, logger="mailpump"):
        mailpump.send(from_=FROM, rcpt=RCPT[0], source=b"Subject: t\r\n\r\nsecret body\r\n",
                      **options)  # fmt: skip
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("mailpump"))
    assert "MAIL FROM" in text.upper() and "250" in text
    assert "<redacted>" in text
    assert f"AUTH {mechanism}" in text.upper()
    secrets = [
        PASSWORD,
        base64.b64encode(USER.encode()).decode(),
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(),
    ]
    for secret in secrets:
        assert secret not in text
    assert "secret body" not in text  # never the message body


def test_large_attachment_bytes_survive(
    aiosmtpd_server: Callable[..., RecordingServer], tmp_path: Path
) -> None:
    data = bytes(range(256)) * (8 * 4096)  # 8 MiB, every byte value
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    server = aiosmtpd_server(tls="none", auth=False)
    mailpump.send(from_=FROM, rcpt=RCPT[0], source=mailpump.message({"headers": {"subject": "big"},
                  "body": [{"body": "see attached"}, mailpump.attachment(str(path))]}),
                  server=server.host, port=server.port, timeout=30)  # fmt: skip
    [got] = server.messages
    parts = list(parse(got.data).iter_parts())
    assert parts[1].get_payload(decode=True) == data
