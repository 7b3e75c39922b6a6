"""Credentials never leak (docs/security.md §10, credential leakage in logs).

Sends with AUTH PLAIN, LOGIN and XOAUTH2, succeeding and failing (a refused password, a server
that breaks off mid-exchange, a payload refused before it is sent), with the `mailpump` logger at
DEBUG. The captured transcript, every exception's message, repr and formatted traceback (its
chain included), and the reprs of results and sessions are searched for the password, the token
and the AUTH payloads, raw and base64-encoded at every alignment (so that a payload embedded in a
longer base64 string is found too).
"""

from __future__ import annotations

import base64
import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.faults import FaultScript, FaultServer
from servers.recording import PASSWORD, USER, RecordingServer
from servers.scripted import Fault

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

SECRET = "Canary-pa55w0rd-7f3e9b"
TOKEN = "ya29.Canary-t0ken-51c2d8"
FROM, RCPT = "sender@example.test", ["one@example.test"]
BODY = b"Subject: credentials\r\n\r\nbody\r\n"


def b64_fragments(secret: bytes) -> list[str]:
    """The base64 characters determined by `secret` alone, at each of the three alignments it can
    have inside a longer payload."""
    out = []
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + secret).decode()
        first = -(-8 * k // 6)  # the first 6-bit group that starts inside the secret
        last = (8 * (k + len(secret)) - 6) // 6  # the last one that ends inside it
        out.append(encoded[first : last + 1])
    return out


def forbidden(user: str, secret: str, mechanism: str) -> list[str]:
    """Every form of the secret the transcript and the errors must not contain."""
    raw = secret.encode()
    forms = [secret, *b64_fragments(raw)]
    payloads = {
        "PLAIN": b"\0" + user.encode() + b"\0" + raw,
        "LOGIN": raw,
        "XOAUTH2": f"user={user}\x01auth=Bearer {secret}\x01\x01".encode(),
    }
    forms.append(base64.b64encode(payloads[mechanism]).decode())
    return forms


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def transcript() -> Iterator[Capture]:
    logger = logging.getLogger("mailpump")
    capture = Capture()
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(old)


def exception_texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        texts += [str(e), repr(e), repr(getattr(e, "__dict__", {})), repr(e.args)]
        e = e.__cause__ or e.__context__
    return texts


def assert_clean(texts: list[str], forms: list[str]) -> None:
    for text in texts:
        for form in forms:
            assert form not in text, f"{form!r} leaked into {text!r}"


def attempt(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Runs `call`; its result and the texts of any exception it raised."""
    try:
        result = call()
    except mailpump.MailpumpError as e:
        return None, exception_texts(e)
    except ValueError as e:
        return None, exception_texts(e)
    return result, [repr(result)]


# -- aiosmtpd: real PLAIN and LOGIN --------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("outcome", ["accepted", "refused"])
@pytest.mark.parametrize("via", ["send", "session"])
def test_plain_and_login_leave_no_trace(
    aiosmtpd_server: Callable[..., RecordingServer],
    transcript: Capture,
    mechanism: str,
    outcome: str,
    via: str,
) -> None:
    server = aiosmtpd_server(tls="none", auth=True)
    password = PASSWORD if outcome == "accepted" else SECRET

    def send() -> Any:
        if via == "send":
            return mailpump.send(
                from_=FROM,
                rcpt=RCPT,
                source=BODY,
                server=server.host,
                port=server.port,
                tls="none",
                timeout=10,
                user=USER,
                password=password,
                auth=mechanism,
            )
        with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
            session.greet()
            texts = [repr(session)]
            session.auth(USER, password, mechanism=mechanism)
            result = session.send(from_=FROM, rcpt=RCPT, source=BODY)
            return texts + [repr(result)]

    result, texts = attempt(send)
    if outcome == "accepted":
        assert result and len(server.messages) == 1
    else:
        assert result is None and server.messages == []
        assert any("535" in t for t in texts)  # the refusal is reported, with its code
    log = "\n".join(transcript.lines)
    assert f"C: AUTH {mechanism}" in log and ("S: 235" in log or "S: 535" in log)  # it was recorded
    assert_clean([log, *texts], forbidden(USER, password, mechanism))


# -- the scripted server: XOAUTH2, and exchanges broken off midway ------------------------------

BREAKS: dict[str, dict[str, Any]] = {
    "accepted": {},
    "refused": {"auth": "535 5.7.8 Username and Password not accepted"},
    "refused-after-password": {"auth-password": "535 5.7.8 bad credentials"},
    "disconnect": {"auth-password": Fault.DISCONNECT},
    "garbage": {"auth-password": Fault.GARBAGE},
}


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "XOAUTH2"])
@pytest.mark.parametrize("case", list(BREAKS))
def test_every_mechanism_and_failure_leaves_no_trace(
    transcript: Capture, mechanism: str, case: str
) -> None:
    secret = TOKEN if mechanism == "XOAUTH2" else SECRET
    replies = dict(BREAKS[case])
    if mechanism != "LOGIN" and "auth-password" in replies:
        replies["auth"] = replies.pop("auth-password")  # PLAIN, XOAUTH2: one step
    server = FaultServer(FaultScript(auth=["PLAIN", "LOGIN", "XOAUTH2"], replies=replies))
    creds: dict[str, Any] = {"user": USER, "auth": mechanism}
    creds["oauth_token" if mechanism == "XOAUTH2" else "password"] = secret
    try:
        result, texts = attempt(
            lambda: mailpump.send(
                from_=FROM,
                rcpt=RCPT,
                source=BODY,
                server=server.host,
                port=server.port,
                tls="none",
                timeout=10,
                **creds,
            )
        )
        [conn] = server.finished()
    finally:
        server.stop()
    assert (result is not None) == (case == "accepted")
    if not (mechanism == "LOGIN" and case == "refused"):  # (refused before the password)
        # The secret did reach the server, base64-encoded: the search below would find it.
        wire = b"\n".join(conn.commands).decode()
        assert any(form in wire for form in forbidden(USER, secret, mechanism)[1:])
    log = "\n".join(transcript.lines)
    assert f"C: AUTH {mechanism}" in log
    assert_clean([log, *texts], forbidden(USER, secret, mechanism))


@pytest.mark.parametrize(
    ("mechanism", "secret"), [("PLAIN", "pass\x00" + SECRET), ("XOAUTH2", TOKEN + "\x01x")]
)
def test_a_payload_refused_before_sending_is_not_quoted(
    transcript: Capture, mechanism: str, secret: str
) -> None:
    server = FaultServer(FaultScript(auth=["PLAIN", "XOAUTH2"]))
    creds: dict[str, Any] = {"user": USER, "auth": mechanism}
    creds["oauth_token" if mechanism == "XOAUTH2" else "password"] = secret
    try:
        result, texts = attempt(
            lambda: mailpump.send(
                from_=FROM,
                rcpt=RCPT,
                source=BODY,
                server=server.host,
                port=server.port,
                tls="none",
                timeout=10,
                **creds,
            )
        )
        server.finished()
    finally:
        server.stop()
    assert result is None
    log = "\n".join(transcript.lines)
    plain = secret.replace("\x00", "").replace("\x01", "")
    assert_clean([log, *texts], [SECRET, TOKEN, plain, *b64_fragments(secret.encode())])


LONE_SURROGATE_SECRET = "hunter2-\udcff-tail"  # os.environ's reading of a non-UTF-8 byte


def assert_secret_hidden(excinfo: pytest.ExceptionInfo[BaseException], name: str) -> None:
    err = excinfo.value
    assert isinstance(err, ValueError) and name in str(err)
    shown = "".join(traceback.format_exception(err)) + repr(err) + repr(err.args)
    for part in ("hunter2", "tail"):
        assert part not in shown
    assert err.__cause__ is None and err.__context__ is None


@pytest.mark.parametrize("name", ["password", "oauth_token"])
def test_an_unencodable_secret_is_named_not_shown(name: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        mailpump.send(from_="a@example.test", rcpt="b@example.test", source=b"x",
                      server="127.0.0.1", port=1, tls="none", user="u",
                      **{name: LONE_SURROGATE_SECRET})  # fmt: skip
    assert_secret_hidden(excinfo, name)


@pytest.mark.parametrize("name", ["password", "oauth_token"])
def test_session_auth_names_an_unencodable_secret_without_showing_it(name: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with mailpump.open("127.0.0.1", port, tls="none", timeout=5) as session:
            with pytest.raises(ValueError) as excinfo:
                session.auth("u", **{name: LONE_SURROGATE_SECRET})
    assert_secret_hidden(excinfo, name)
