"""Injection through every field (docs/security.md §2–§5: bpo-43124, CVE-2015-9096,
golang/go#21159, GHSA-v3q9-hj7j-63hq, CVE-2024-6923, CVE-2026-1299, cpython#100612).

CR, LF, NUL, the other C0 controls, DEL, C1 controls (NEL) and the Unicode line separators in
every envelope field, through `send()` and the `Session` methods, and in every header name, header
value and attachment file name given to `message()`:

- envelope addresses and the EHLO name: refused with a `ValueError` that names the problem, before
  a connection is even made when the check can be made up front (`send()`), and before a byte of
  the command is written inside a session (which stays usable and in step);
- AUTH data: credentials only ever travel base64-encoded (RFC 4954 §4), so a line break in a user
  name, password or token cannot start a command: they are encoded harmlessly, and the server
  decodes exactly what was given; what would shift the fields of the payload itself (NUL for
  PLAIN, RFC 4616 §2; 0x01 for XOAUTH2) is refused before the AUTH command;
- headers: `MessageError` naming the header, raised by `message()` before any byte is produced;
  an encoded-word that *decodes* to CRLF (`=?utf-8?q?x=0D=0ABcc:_y?=`) is text like any other, so
  it is emitted inside an encoded-word of its own and the parsed message has no extra field.
"""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.faults import FaultScript, FaultServer
from servers.recording import RecordingServer
from servers.scripted import Connection

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

BAD = {
    "CR": "\r",
    "LF": "\n",
    "CRLF": "\r\n",
    "NUL": "\x00",
    "SOH": "\x01",
    "BS": "\x08",
    "ESC": "\x1b",
    "US": "\x1f",
    "DEL": "\x7f",
    "NEL": "\x85",
    "CSI": "\x9b",
    "LS": "\u2028",
    "PS": "\u2029",
}
BAD_IDS = list(BAD)
INJECTED_COMMAND = "RCPT TO:<victim@example.test>"
FROM = "sender@example.test"
RCPT = ["one@example.test", "two@example.test"]


def with_bad(text: str, bad: str) -> str:
    """`text` with the bad character in the middle, and a command behind it for line breaks."""
    cut = len(text) // 2
    return text[:cut] + bad + (INJECTED_COMMAND + bad if bad in "\r\n" else "") + text[cut:]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    # SMTPUTF8 offered: non-ASCII addresses are not refused for want of it, only for what they hold.
    srv = FaultServer(
        FaultScript(
            auth=["PLAIN", "LOGIN", "XOAUTH2"], extensions=["PIPELINING", "8BITMIME", "SMTPUTF8"]
        )
    )
    yield srv
    srv.stop()


def send(server: FaultServer, **kw: Any) -> Any:
    options: dict[str, Any] = {
        "from_": FROM,
        "rcpt": RCPT,
        "source": b"Subject: x\r\n\r\nbody\r\n",
        "server": server.host,
        "port": server.port,
        "tls": "none",
        "timeout": 10,
    }
    options.update(kw)
    return mailpump.send(**options)


def verbs(conn: Connection) -> list[bytes]:
    return [c.split(b" ", 1)[0].split(b":", 1)[0].upper() for c in conn.commands]


def assert_nothing_injected(conn: Connection) -> None:
    for command in conn.commands:
        assert not command.upper().startswith(b"RCPT TO:<VICTIM"), conn.commands
        assert b"\x00" not in command


# -- the envelope, through send(): refused before connecting -------------------------------------


ASCII_BAD_IDS = [b for b in BAD_IDS if max(map(ord, BAD[b])) < 0x80]
ENVELOPE_CASES = [(f, b) for f in ("from", "rcpt-1", "rcpt-2") for b in BAD_IDS] + [
    ("domain", b)
    for b in ASCII_BAD_IDS  # a non-ASCII EHLO name: see the next test
]


@pytest.mark.parametrize(("field", "bad"), ENVELOPE_CASES)
def test_send_refuses_bad_envelope_fields_before_connecting(
    server: FaultServer, field: str, bad: str
) -> None:
    char = BAD[bad]
    cases: dict[str, dict[str, Any]] = {
        "from": {"from_": with_bad(FROM, char)},
        "rcpt-1": {"rcpt": [with_bad(RCPT[0], char), RCPT[1]]},
        "rcpt-2": {"rcpt": [RCPT[0], with_bad(RCPT[1], char)]},
        "domain": {"domain": with_bad("client.example.test", char)},
    }
    kw = cases[field]
    with pytest.raises(ValueError, match=r"control character|line separator|EHLO name") as info:
        send(server, **kw)
    assert "nothing was sent" in str(info.value) or "address" in str(info.value)
    # The send returned: had it connected, the server would have accepted that connection first.
    assert server.connections == []


@pytest.mark.parametrize("domain", ["h\u00e9.example", "a b", "", "[1.2.3.4]\r\n", "-bad-.example"])
def test_send_refuses_bad_ehlo_names_before_connecting(server: FaultServer, domain: str) -> None:
    with pytest.raises(ValueError, match="EHLO name"):
        send(server, domain=domain)
    assert server.connections == []


# -- the envelope, through a Session: refused before the command, the session stays in step ------


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("method", ["greet", "mail", "rcpt", "send-from", "send-rcpt"])
def test_session_refuses_bad_envelope_fields_and_stays_in_step(
    server: FaultServer, method: str, bad: str
) -> None:
    char = BAD[bad]
    with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
        if method != "greet":
            session.greet()
        calls: dict[str, Callable[[], Any]] = {
            "greet": lambda: session.greet(with_bad("client.example.test", char)),
            "mail": lambda: session.mail(with_bad(FROM, char)),
            "rcpt": lambda: session.rcpt(with_bad(RCPT[0], char)),
            "send-from": lambda: session.send(from_=with_bad(FROM, char), rcpt=RCPT, source=b"x"),
            "send-rcpt": lambda: session.send(
                from_=FROM, rcpt=[RCPT[0], with_bad(RCPT[1], char)], source=b"x"
            ),
        }
        before = len(server.connections[0].commands) if server.connections else 0
        with pytest.raises(ValueError, match=r"control character|line separator|EHLO name"):
            calls[method]()
        if method == "greet":
            session.greet()  # the refused name was never sent: the dialogue can start properly
        else:
            assert session.noop().code == 250  # in step: NOOP gets its own reply
        assert session.send(from_=FROM, rcpt=RCPT, source=b"Subject: ok\r\n\r\nok\r\n")
    [conn] = server.finished()
    sent = verbs(conn)
    if method == "greet":
        assert sent[:2] == [b"EHLO", b"MAIL"]  # only the good EHLO
    else:
        # Nothing between the EHLO and the NOOP: the refused command wrote no byte.
        assert conn.commands[before].upper() == b"NOOP", conn.commands
    assert sent.count(b"MAIL") == 1 and sent.count(b"DATA") == 1
    assert_nothing_injected(conn)
    assert [t.rcpt_tos for t in conn.transactions] == [[r.encode() for r in RCPT]]


# -- AUTH data: base64 only, so encoded harmlessly; field separators refused ---------------------


def auth_payloads(conn: Connection) -> list[bytes]:
    """The AUTH initial response and continuation lines, decoded."""
    out = []
    for i, command in enumerate(conn.commands):
        if command.upper().startswith(b"AUTH "):
            words = command.split()
            if len(words) > 2:
                out.append(base64.b64decode(words[2], validate=True))
            # Continuations up to the next command (LOGIN: user, then password).
            for line in conn.commands[i + 1 :]:
                if line[:4].upper() in (b"MAIL", b"QUIT", b"RSET", b"NOOP"):
                    break
                out.append(base64.b64decode(line, validate=True))
    return out


def expected_payloads(mechanism: str, user: str, secret: str) -> list[bytes]:
    if mechanism == "PLAIN":
        return [b"\x00" + user.encode() + b"\x00" + secret.encode()]
    if mechanism == "LOGIN":
        return [user.encode(), secret.encode()]
    return [f"user={user}\x01auth=Bearer {secret}\x01\x01".encode()]


def refused_in_payload(mechanism: str, char: str) -> bool:
    return (mechanism == "PLAIN" and char == "\x00") or (mechanism == "XOAUTH2" and char == "\x01")


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("where", ["user", "secret"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "XOAUTH2"])
@pytest.mark.parametrize("via", ["send", "session"])
def test_auth_data_is_encoded_harmlessly_or_refused(
    server: FaultServer, via: str, mechanism: str, where: str, bad: str
) -> None:
    char = BAD[bad]
    user = with_bad("mailpump-user", char) if where == "user" else "mailpump-user"
    secret = with_bad("s3cret pass", char) if where == "secret" else "s3cret pass"
    creds: dict[str, Any] = {"user": user}
    creds["oauth_token" if mechanism == "XOAUTH2" else "password"] = secret
    refused = refused_in_payload(mechanism, char)

    def attempt() -> None:
        if via == "send":
            send(server, auth=mechanism, **creds)
            return
        with mailpump.open(server.host, server.port, tls="none", timeout=10) as session:
            session.greet()
            user_ = creds.pop("user")
            try:
                session.auth(
                    user_,
                    creds.get("password"),
                    mechanism=mechanism,
                    oauth_token=creds.get("oauth_token"),
                )
            finally:
                assert session.noop().code == 250  # refused or not, the session is in step
            session.send(from_=FROM, rcpt=RCPT, source=b"Subject: x\r\n\r\nbody\r\n")

    if refused:
        with pytest.raises(ValueError, match="NUL|0x01"):
            attempt()
    else:
        attempt()
    [conn] = server.finished()
    assert_nothing_injected(conn) if not refused else None
    if refused:
        assert b"AUTH" not in verbs(conn)  # refused before the AUTH command
        assert not any(t.complete for t in conn.transactions)
    else:
        # One AUTH exchange whose lines decode to exactly what was given; nothing else slipped in.
        assert auth_payloads(conn) == expected_payloads(mechanism, user, secret)
        assert verbs(conn).count(b"MAIL") == 1 and verbs(conn).count(b"RCPT") == len(RCPT)
        assert [t.rcpt_tos for t in conn.transactions] == [[r.encode() for r in RCPT]]


# -- headers, through message() ------------------------------------------------------------------


def parse(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


HEADER_BAD_IDS = [b for b in BAD_IDS if b != "CSI"]
"""Everything but the C1 controls other than NEL, which are no line break anywhere: see
`test_c1_controls_in_headers_are_no_line_break`."""


HEADER_CASES = [
    (k, b)
    for k in ("str", "bytes", "address-list", "display-name", "name")
    for b in (ASCII_BAD_IDS if k == "bytes" else HEADER_BAD_IDS)  # bytes hold no characters
]


@pytest.mark.parametrize(("kind", "bad"), HEADER_CASES)
def test_header_injection_is_refused_before_any_byte(kind: str, bad: str) -> None:
    char = BAD[bad]
    by_kind: dict[str, dict[str, Any]] = {
        "str": {"subject": with_bad("a friendly subject", char)},
        "bytes": {"x-raw": with_bad("a raw value", char).encode()},
        "address-list": {"to": [RCPT[0], with_bad(RCPT[1], char)]},
        "display-name": {"to": [with_bad("Friendly Name", char) + f" <{RCPT[0]}>"]},
        "name": {with_bad("X-Custom", char): "value"},
    }
    headers = by_kind[kind]
    with pytest.raises(mailpump.MessageError) as info:
        mailpump.message({"headers": headers, "body": "body"})
    error = info.value
    assert error.header is not None and error.header.lower() == next(iter(headers)).lower()
    assert error.part == "message"
    assert error.reason


@pytest.mark.parametrize("kind", ["str", "address-list", "display-name"])
def test_c1_controls_in_headers_are_no_line_break(kind: str) -> None:
    # U+009B (CSI) is no line break for any reader: the header encoder lets it through (inside an
    # encoded-word for text), and the header block parses back to exactly the fields given.
    value = with_bad("a friendly subject", "\x9b")
    by_kind: dict[str, dict[str, Any]] = {
        "str": {"subject": value},
        "address-list": {"to": [RCPT[0], with_bad(RCPT[1], "\x9b")]},
        "display-name": {"to": [f'"{value}" <{RCPT[0]}>']},
    }
    headers = by_kind[kind]
    raw = b"".join(mailpump.message({"headers": headers, "body": "body"}))
    msg = parse(raw)
    for name in ("Subject", "To", "Date", "Message-ID"):
        assert len(msg.get_all(name) or []) == (1 if name in msg else 0)
    assert sorted(msg.keys()) == sorted(
        [
            *(k.title() for k in headers),
            "Date",
            "Message-ID",
            "MIME-Version",
            "X-Mailer",
            "Content-Type",
            "Content-Transfer-Encoding",
        ]
    )


def test_a_bcc_header_is_never_sent(aiosmtpd_server: Callable[..., RecordingServer]) -> None:
    # The Bcc line is written by message() and left out by the sending path (the core's
    # header_envelope); tests/test_header_envelope.py has the envelope side.
    server = aiosmtpd_server(tls="none", auth=False)
    msg = mailpump.message({"headers": {"to": RCPT[0], "bcc": "hidden@example.test"}, "body": "x"})
    mailpump.send(from_=FROM, rcpt=RCPT[0], source=msg, server=server.host, port=server.port,
                  tls="none", timeout=10)  # fmt: skip
    (got,) = server.messages
    assert b"hidden@example.test" not in got.data


ENCODED_WORDS = [
    "=?utf-8?q?x=0D=0ABcc:_victim@example.test?=",
    "=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXhhbXBsZS50ZXN0?=",
    "=?us-ascii?q?x=0ABcc:_victim@example.test?=",
    "before =?utf-8?q?=0D=0A?= Bcc: victim@example.test",
]


@pytest.mark.parametrize("value", ENCODED_WORDS)
@pytest.mark.parametrize("where", ["subject", "x-custom", "display-name"])
def test_encoded_words_that_decode_to_crlf_are_emitted_harmlessly(where: str, value: str) -> None:
    # The caller's text is text: an encoded-word in it is not taken as one, but encoded as the
    # literal characters, so a reader decodes exactly the string given (no CR, no LF, no field).
    if where == "display-name":
        headers: dict[str, Any] = {"to": [f'"{value}" <{RCPT[0]}>']}
    else:
        headers = {where: value}
    raw = b"".join(mailpump.message({"headers": headers, "body": "body"}))
    head = raw.split(b"\r\n\r\n", 1)[0]
    msg = parse(raw)
    assert "Bcc" not in msg
    assert not any(line.lower().startswith(b"bcc") for line in head.split(b"\r\n"))
    name = "to" if where == "display-name" else where
    assert len(msg.get_all(name) or []) == 1
    decoded = str(msg[name])
    assert "\r" not in decoded and "\n" not in decoded
    if where == "display-name":
        assert msg[name].addresses[0].display_name == value
        assert msg[name].addresses[0].addr_spec == RCPT[0]
    else:
        assert decoded == value


@pytest.mark.parametrize("bad", BAD_IDS)
def test_attachment_filename_injection_is_refused(bad: str) -> None:
    char = BAD[bad]
    with pytest.raises(mailpump.MessageError, match="file name") as info:
        part = mailpump.attachment(b"data", filename=with_bad("report.pdf", char))
        mailpump.message({"body": [part]})
    assert info.value.header == "Content-Disposition"


@pytest.mark.parametrize("bad", ["CR", "LF", "CRLF", "NUL", "ESC", "DEL"])
def test_attachment_content_type_injection_is_refused(bad: str) -> None:
    with pytest.raises(mailpump.MessageError) as info:
        part = mailpump.attachment(
            b"data", filename="a.txt", content_type=with_bad("text/plain", BAD[bad])
        )
        mailpump.message({"body": [part]})
    assert info.value.header == "Content-Type"


@pytest.mark.parametrize("bad", ["CR", "LF", "CRLF", "NUL", "ESC", "DEL", "LS"])
def test_text_subtype_injection_is_refused(bad: str) -> None:
    with pytest.raises(mailpump.MessageError) as info:
        mailpump.message({"body": [mailpump.text("hi", subtype=with_bad("plain", BAD[bad]))]})
    assert info.value.header == "Content-Type"


@pytest.mark.parametrize(
    "name",
    [
        "report.pdf",
        'we"ird\\name.txt',
        "\u00e9t\u00e9 \u2603.txt",
        "a" * 300 + ".txt",
        "x; filename=evil.exe",
    ],
)
def test_awkward_but_legal_filenames_round_trip(name: str) -> None:
    raw = b"".join(mailpump.message({"body": [mailpump.attachment(b"data", filename=name)]}))
    msg = parse(raw)
    [part] = list(msg.iter_attachments())
    assert part.get_filename() == name
    assert part.get_payload(decode=True) == b"data"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
