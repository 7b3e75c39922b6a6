"""Every SMTP failure reaches Python as an exception carrying the core's `kind` and `transient`.

The failures a loopback server can provoke, each checked for its class, its kind, whether it is
transient and a message in plain words (no Rust debug text, no UNIX times); and the `ErrorKind`
literal checked against the kinds the core's source can produce, so that a kind added in Rust
fails here until the literal follows.
"""

from __future__ import annotations

import pickle
import re
import socket
import subprocess
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers.certs import Leaf, Pki
from servers.recording import free_port
from servers.scripted import Fault, ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

from mailpump.types import ErrorKind  # noqa: E402

pytestmark = pytest.mark.timeout(60)

FROM = "<sender@example.test>"
RCPT = ["<one@example.test>"]
BODY = b"Subject: kinds\r\n\r\nbody\r\n"
ERROR_RS = Path(__file__).resolve().parents[1] / "crates/mailpump/src/smtp/error.rs"

DEBUG_TEXT = [
    re.compile(p)
    for p in (
        r"\b[A-Z][A-Za-z]*\(",  # Other(, DnsName(, Some(, Kind(, ...
        r"\b[A-Z][A-Za-z]* \{",  # Custom { kind: ... }, Os { code: ... }
        r"\bkind: ",
        r"Error\b\(",
        r"\b1\d{9}\b",  # seconds since 1970, 2001 to 2033
        r"UnixTime",
    )
]


def assert_plain_words(text: str) -> None:
    assert text, "an empty message"
    for pattern in DEBUG_TEXT:
        assert not pattern.search(text), f"debug text ({pattern.pattern}) in {text!r}"


def check(error: BaseException, cls: type[BaseException], kind: str, transient: bool) -> None:
    assert type(error) is cls, repr(error)
    assert isinstance(error, mailpump.SMTPError)
    assert (error.kind, error.transient) == (kind, transient), str(error)
    assert kind in typing.get_args(ErrorKind)
    assert_plain_words(str(error))
    if isinstance(error, mailpump.SMTPRecipientsRefused):
        return  # its `refused` holds native Reply objects, which do not pickle
    back = pickle.loads(pickle.dumps(error))
    assert (type(back), back.kind, back.transient, str(back)) == (
        cls,
        kind,
        transient,
        str(error),
    )


def send(server: ScriptedServer, **kw: Any) -> Any:
    options: dict[str, Any] = {"from_": FROM, "rcpt": RCPT, "source": BODY, "server": server.host,
                               "port": server.port, "tls": "none", "timeout": 5}  # fmt: skip
    options.update(kw)
    return mailpump.send(**options)


def raised(call: Callable[[], object]) -> Any:
    with pytest.raises(mailpump.SMTPError) as info:
        call()
    return info.value


# -- the literal follows the core --------------------------------------------------------------


def _method_bodies(source: str, signature: str) -> list[str]:
    """The bodies of every method whose signature line contains `signature` (a method ends at the
    first line that closes a brace at its own indentation)."""
    bodies = []
    for match in re.finditer(rf"^(\s*)pub fn {re.escape(signature)}.*\{{\n", source, re.M):
        indent = match.group(1)
        end = source.index(f"\n{indent}}}\n", match.end())
        bodies.append(source[match.end() : end])
    return bodies


def core_kinds() -> set[str]:
    """Every name `SmtpError::kind()` can return: the literal arms of `kind()` and of each kind
    enum's `as_str()`."""
    source = ERROR_RS.read_text(encoding="utf-8")
    bodies = _method_bodies(source, "as_str(self)") + _method_bodies(source, "kind(&self)")
    # The five kind enums, and kind() itself.
    assert len(bodies) == 6, f"the shape of {ERROR_RS.name} changed: update this parser"
    return {name for body in bodies for name in re.findall(r'=>\s*"([^"]+)"', body)}


def test_error_kind_literal_lists_every_kind_the_core_produces() -> None:
    if not ERROR_RS.exists():
        pytest.skip("the Rust source is not next to the tests")
    kinds = core_kinds()
    assert {"outcome-unknown", "certificate-expired", "name-not-resolved", "io"} <= kinds
    assert set(typing.get_args(ErrorKind)) == kinds


def test_the_kinds_are_annotated() -> None:
    hints = typing.get_type_hints(mailpump.SMTPError)
    assert hints["kind"] == ErrorKind
    assert hints["transient"] is bool


# -- the outcome unknown -----------------------------------------------------------------------


def test_outcome_unknown_is_its_own_class_and_never_retried() -> None:
    cls = mailpump.SMTPOutcomeUnknown
    assert issubclass(cls, mailpump.SMTPError)
    for retried in (mailpump.SMTPConnectError, mailpump.SMTPTimeoutError, ConnectionError,
                    TimeoutError, OSError):  # fmt: skip
        assert not issubclass(cls, retried), retried
    assert "check" in (cls.__doc__ or "")


@pytest.mark.parametrize("fault", [Fault.DISCONNECT, Fault.GARBAGE])
def test_no_verdict_after_the_end_of_data_is_outcome_unknown(
    scripted: Callable[..., ScriptedServer], fault: Fault
) -> None:
    server = scripted(replies={"eod": fault})
    error = raised(lambda: send(server))
    check(error, mailpump.SMTPOutcomeUnknown, "outcome-unknown", False)
    assert not isinstance(error, ConnectionError | TimeoutError)
    assert "check" in str(error)
    [conn] = server.finished()
    # The server had read the whole message, end-of-data mark included.
    assert [t.complete for t in conn.transactions] == [True]


def test_a_stalled_verdict_is_outcome_unknown_too(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(replies={"eod": Fault.STALL})
    error = raised(lambda: send(server, timeout=0.5))
    check(error, mailpump.SMTPOutcomeUnknown, "outcome-unknown", False)
    assert not isinstance(error, TimeoutError)
    server.finished()


def test_a_refused_verdict_is_still_a_refusal(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(replies={"eod": "554 5.7.1 spam"})
    error = raised(lambda: send(server))
    check(error, mailpump.SMTPDataRefused, "message-refused", False)
    assert (error.code, error.enhanced, error.permanent) == (554, "5.7.1", True)


# -- connecting ----------------------------------------------------------------------------------


def test_refused_port() -> None:
    port = free_port()
    error = raised(lambda: mailpump.send(from_=FROM, rcpt=RCPT, source=BODY, server="127.0.0.1",
                                         port=port, tls="none", timeout=5))  # fmt: skip
    check(error, mailpump.SMTPConnectError, "connection-refused", True)
    assert f"127.0.0.1:{port}" in str(error)


def test_a_name_that_does_not_resolve() -> None:
    host = "no-such-host.invalid"  # RFC 6761 §6.4: never resolves
    error = raised(lambda: mailpump.send(from_=FROM, rcpt=RCPT, source=BODY, server=host,
                                         port=25, tls="none", timeout=5))  # fmt: skip
    check(error, mailpump.SMTPConnectError, "name-not-resolved", False)
    assert host in str(error)


def test_a_stalled_greeting_times_out(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(replies={"greeting": Fault.STALL})
    error = raised(lambda: send(server, timeout=0.5))
    # Silence where a greeting belongs is also what a TLS-first port does: the advice says so.
    check(error, mailpump.SMTPTimeoutError, "no-greeting", True)
    assert "tls='implicit'" in str(error)
    server.finished()


def test_a_session_used_after_close(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted()
    session = mailpump.open(server.host, server.port, tls="none", timeout=5)
    session.greet()
    session.close()
    error = raised(session.noop)
    check(error, mailpump.SMTPConnectError, "closed", False)


# -- TLS -----------------------------------------------------------------------------------------


def _openssl(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, cwd=cwd)


@pytest.fixture(scope="module")
def bad_certs(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> dict[str, Leaf]:
    """An expired leaf signed by the trusted CA, and a self-signed CA certificate served as the
    server's own (trusted as a CA, so only its use as a leaf is wrong)."""
    d = tmp_path_factory.mktemp("bad-certs")
    ca_key = pki.ca.with_suffix(".key")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/CN=expired", "-keyout", d / "expired.key",
             "-out", d / "expired.csr")  # fmt: skip
    (d / "expired.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                   "basicConstraints=critical,CA:FALSE\n"
                                   "extendedKeyUsage=serverAuth\n")  # fmt: skip
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
        "default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n"
    )
    # `openssl ca` is the tool that takes explicit dates: valid for one day, years ago.
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", pki.ca, "-keyfile", ca_key,
             "-in", "expired.csr", "-out", "expired.pem", "-extfile", "expired.ext", "-notext",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=d)  # fmt: skip
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", d / "self.key",
             "-out", d / "self.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")  # fmt: skip
    return {
        "expired": Leaf(d / "expired.pem", d / "expired.key"),
        "self-signed": Leaf(d / "self.pem", d / "self.key"),
    }


@pytest.mark.parametrize(
    ("cert", "kind"),
    [
        ("untrusted", "certificate-unknown-issuer"),
        ("wrong_host", "certificate-name-mismatch"),
        ("expired", "certificate-expired"),
        ("self-signed", "certificate-self-signed"),
    ],
)
def test_certificates_that_cannot_be_trusted(
    scripted: Callable[..., ScriptedServer],
    pki: Pki,
    bad_certs: dict[str, Leaf],
    cert: str,
    kind: str,
) -> None:
    leaf = bad_certs[cert] if cert in bad_certs else getattr(pki, cert)
    # A self-signed certificate given as cafile is trusted as itself (tests/test_tls_matrix.py).
    cafile = pki.ca
    server = scripted(tls=leaf.server_context(), auth=["PLAIN"])
    error = raised(lambda: send(server, tls="starttls", cafile=str(cafile)))
    check(error, mailpump.SMTPTLSError, kind, False)
    [conn] = server.finished()
    assert conn.transactions == []


def test_starttls_required_but_not_offered(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted()
    error = raised(lambda: send(server, tls="starttls"))
    check(error, mailpump.SMTPTLSError, "tls-not-offered", False)


def test_implicit_tls_to_a_plain_text_server(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted()
    error = raised(lambda: send(server, tls="implicit"))
    check(error, mailpump.SMTPTLSError, "tls-plain-port", False)
    assert "tls='starttls'" in str(error)


# -- authentication ------------------------------------------------------------------------------


def test_credentials_refused(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(auth=["PLAIN"], replies={"auth": "535 5.7.8 Authentication failed"})
    error = raised(lambda: send(server, user="u", password="p"))
    check(error, mailpump.SMTPAuthError, "auth-refused", False)
    assert (error.code, error.enhanced, error.text) == (535, "5.7.8", "Authentication failed")


def test_credentials_refused_for_now(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(auth=["PLAIN"], replies={"auth": "454 4.7.0 Try again later"})
    error = raised(lambda: send(server, user="u", password="p"))
    check(error, mailpump.SMTPAuthError, "auth-refused", True)


def test_no_common_mechanism(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(auth=[])
    error = raised(lambda: send(server, user="u", password="p"))
    check(error, mailpump.SMTPAuthError, "auth-no-mechanism", False)


class _UnknownPeer:
    """A socket-like object for `create=` that cannot say where it is connected (no
    `getpeername`), so the client must treat the server as remote; it talks to `target`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.sock = socket.socket()
        self.target = target

    def settimeout(self, t: float | None) -> None:
        self.sock.settimeout(t)

    def connect(self, address: tuple[str, int]) -> None:
        self.sock.connect(self.target)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, n: int) -> bytes:
        return self.sock.recv(n)

    def close(self) -> None:
        self.sock.close()


def test_credentials_never_cross_plain_text_to_a_remote_server(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(auth=["PLAIN"])
    target = (server.host, server.port)
    error = raised(lambda: mailpump.send(from_=FROM, rcpt=RCPT, source=BODY, tls="none",
                                         server="mail.example.test", port=587, timeout=5,
                                         user="u", password="p",
                                         create=lambda: _UnknownPeer(target)))  # fmt: skip
    check(error, mailpump.SMTPAuthError, "auth-insecure", False)
    [conn] = server.finished()
    assert not any(c.upper().startswith(b"AUTH") for c in conn.commands)


# -- refusals and broken dialogues -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("replies", "cls", "kind", "transient"),
    [
        ({"greeting": "554 5.3.2 no service"}, "SMTPReplyError", "greeting-refused", False),
        ({"mail": "550 5.1.0 no such sender"}, "SMTPSenderRefused", "sender-refused", False),
        ({"mail": "451 4.3.0 later"}, "SMTPSenderRefused", "sender-refused", True),
        ({"rcpt": "550 5.1.1 no such user"}, "SMTPRecipientsRefused", "recipients-refused", False),
        ({"rcpt": "450 4.2.0 greylisted"}, "SMTPRecipientsRefused", "recipients-refused", True),
        ({"data": "451 4.3.0 later"}, "SMTPDataRefused", "data-refused", True),
        ({"ehlo": Fault.GARBAGE}, "SMTPProtocolError", "malformed-reply", False),
    ],
)
def test_refusals_and_broken_replies(
    scripted: Callable[..., ScriptedServer],
    replies: dict[str, Any],
    cls: str,
    kind: str,
    transient: bool,
) -> None:
    server = scripted(replies=replies)
    error = raised(lambda: send(server))
    check(error, getattr(mailpump, cls), kind, transient)
    if isinstance(error, mailpump.SMTPReplyError):
        assert error.transient == (400 <= error.code < 500)
        assert error.permanent == (500 <= error.code < 600)


def test_a_lost_connection_before_the_end_of_data_is_transient(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(replies={"mail": Fault.DISCONNECT})
    error = raised(lambda: send(server))
    check(error, mailpump.SMTPConnectError, "connection-lost", True)

