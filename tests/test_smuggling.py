"""SMTP smuggling, end to end (docs/security.md §7, CVE-2023-51764/5/6, CERT VU#302671).

Hypothesis builds bodies out of every fake end-of-data spelling (`\\n.\\n`, `\\r.\\r`, `\\n.\\r\\n`,
`\\r\\n.\\n`, `\\r\\r\\n.\\r\\r\\n`), lone dots, NULs, 8-bit bytes and the commands of a second,
spoofed transaction, and sends them through `mailpump.send()` and a `Session` in random chunkings
(a Python iterable of random chunk sizes, a `MessageSource` with a random chunk size) to real
servers: aiosmtpd, which stores what it received, and the scripted server, which keeps the raw
DATA bytes. For every send the server stores exactly one message, with the envelope we gave, and
its content is the body with every line end made CRLF; no command spelt out in the body runs.

Lines stay under 1,000 octets: aiosmtpd refuses longer ones (RFC 5321 §4.5.3.1.6).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers.recording import RecordingServer
from servers.scripted import Script, ScriptedServer
from servers.sink import SmtpSink

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

FROM = "sender@example.test"
RCPT = ["one@example.test", "two@example.test"]

FAKE_ENDS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\r\n.\r\r\n", b"\r\n.\r", b"\r\n.\r\n"]
SMUGGLED = (
    b"MAIL FROM:<evil@example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
    b"From: ceo@example.test\r\nSubject: spoofed\r\n\r\nwire the money\r\n"
)
ATOMS = st.one_of(
    st.sampled_from(FAKE_ENDS),
    st.sampled_from(
        [
            b".",
            b"..",
            b"\x00",
            b"\r",
            b"\n",
            b"\r\n",
            b"\xff\xfe",
            b"\xe9t\xe9",
            SMUGGLED,
            b"QUIT\r\n",
        ]
    ),
    st.binary(max_size=12),
)
BODIES = st.lists(ATOMS, max_size=40).map(b"".join)
"""At most 40 atoms of at most 120 octets: every line stays far below 1,000 octets."""

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def crlf(body: bytes) -> bytes:
    """The body as the client must put it on the wire: every CR, LF or CRLF made one CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", body)


def stored(body: bytes) -> bytes:
    """What a server stores: the CRLF-normalised body, ended by a CRLF (the client adds one when
    the body does not end with a line end, RFC 5321 §4.1.1.4)."""
    wire = crlf(body)
    if wire and not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    return wire


def chunked(body: bytes, cuts: list[int]) -> Iterator[bytes]:
    """`body` cut at the given offsets (a Python source: any iterable of bytes)."""
    start = 0
    for cut in sorted({c % (len(body) + 1) for c in cuts}):
        yield body[start:cut]
        start = cut
    yield body[start:]


@pytest.fixture(scope="module")
def smtpd() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wire_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.stop()


def send_to(server: Any, source: Any) -> Any:
    return mailpump.send(
        from_=FROM,
        rcpt=RCPT,
        source=source,
        server=server.host,
        port=server.port,
        tls="none",
        timeout=30,
    )


def assert_one_message(server: RecordingServer, before: int, content: bytes) -> None:
    messages = server.messages[before:]
    assert len(messages) == 1, [m.mail_from for m in messages]
    [got] = messages
    assert (got.mail_from, got.rcpt_tos) == (FROM, RCPT)
    assert got.data == content


@PROPERTY
@given(body=BODIES, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_python_source_in_random_chunks(
    smtpd: RecordingServer, body: bytes, cuts: list[int]
) -> None:
    before = len(smtpd.messages)
    result = send_to(smtpd, chunked(body, cuts))
    assert result and sorted(result.accepted) == sorted(RCPT)
    assert_one_message(smtpd, before, stored(body))


@PROPERTY
@given(body=BODIES, chunk_size=st.integers(min_value=1, max_value=64))
def test_message_source_in_random_chunks(
    smtpd: RecordingServer, body: bytes, chunk_size: int
) -> None:
    # Date and Message-ID fixed, so that two encodings of the description are the same bytes.
    mesgt = {
        "headers": {
            "subject": "smuggling",
            "date": "Sat, 28 Nov 2026 12:00:00 +0000",
            "message-id": "<fixed@example.test>",
        },
        "body": body,
    }
    expected = b"".join(mailpump.message(mesgt))
    before = len(smtpd.messages)
    assert send_to(smtpd, mailpump.message(mesgt, chunk_size=chunk_size))
    assert_one_message(smtpd, before, stored(expected))


@PROPERTY
@given(body=BODIES, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_wire_has_one_end_of_data_mark_and_no_bare_line_ends(
    wire_server: ScriptedServer, body: bytes, cuts: list[int]
) -> None:
    before = len(wire_server.connections)
    assert send_to(wire_server, chunked(body, cuts))
    [conn] = wire_server.finished(before + 1)[before:]
    [txn] = conn.transactions
    assert txn.complete
    without_crlf = txn.wire.replace(b"\r\n", b"")
    assert b"\r" not in without_crlf and b"\n" not in without_crlf
    assert txn.wire.count(b"\r\n.\r\n") + txn.wire.startswith(b".\r\n") == 1
    assert txn.wire.endswith(b".\r\n")
    # Every line that begins with a dot is stuffed (RFC 5321 §4.5.2), so un-stuffing gives the body.
    lines = txn.wire[:-3].split(b"\r\n")
    assert all(not line.startswith(b".") or line.startswith(b"..") for line in lines)
    assert txn.message == stored(body)
    # The commands the body spells out never reached the command loop.
    verbs = [c.split(b" ", 1)[0].split(b":", 1)[0].upper() for c in conn.commands]
    assert verbs.count(b"MAIL") == 1 and verbs.count(b"DATA") == 1
    assert verbs.count(b"RCPT") == len(RCPT)


@pytest.fixture(scope="module")
def bdat_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer(Script(extensions=["PIPELINING", "8BITMIME", "CHUNKING"]))
    yield server
    server.stop()


@PROPERTY
@given(body=BODIES, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_bdat_chunks_carry_the_body_as_counted_bytes(
    bdat_server: ScriptedServer, body: bytes, cuts: list[int]
) -> None:
    # RFC 3030: a BDAT chunk is a byte count, so no spelling of an end of data can end it early;
    # the line ends are still made CRLF, and nothing is dot-stuffed.
    before = len(bdat_server.connections)
    assert send_to(bdat_server, chunked(body, cuts))
    [conn] = bdat_server.finished(before + 1)[before:]
    [txn] = conn.transactions
    assert txn.bdat and txn.complete
    assert txn.message == stored(body)
    verbs = [c.split(b" ", 1)[0].split(b":", 1)[0].upper() for c in conn.commands]
    assert verbs.count(b"MAIL") == 1 and verbs.count(b"DATA") == 0
    assert verbs.count(b"RCPT") == len(RCPT)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(BODIES, min_size=2, max_size=4), cuts=st.lists(st.integers(min_value=0)))
def test_many_hostile_messages_over_one_session(
    smtpd: RecordingServer, bodies: list[bytes], cuts: list[int]
) -> None:
    # Over one connection a smuggled transaction would inherit the session (and its AUTH).
    before = len(smtpd.messages)
    with mailpump.open(smtpd.host, smtpd.port, tls="none", timeout=30) as session:
        session.greet()
        for body in bodies:
            assert session.send({"from": FROM, "rcpt": RCPT, "source": chunked(body, cuts)})
    got = smtpd.messages[before:]
    assert [(m.mail_from, m.rcpt_tos) for m in got] == [(FROM, RCPT)] * len(bodies)
    assert [m.data for m in got] == [stored(b) for b in bodies]
    assert len({m.peer for m in got}) == 1  # one connection


@pytest.mark.parametrize("fake_end", FAKE_ENDS)
def test_every_fake_end_at_every_chunk_boundary(smtpd: RecordingServer, fake_end: bytes) -> None:
    # Deterministic companion of the properties: the spoofed transaction after each fake end,
    # cut at every offset of the fake end (two chunks), and one byte per chunk.
    body = b"Subject: hi\r\n\r\nbefore" + fake_end + SMUGGLED + fake_end + b"after"
    start = body.index(fake_end)
    splits = [[start + i] for i in range(len(fake_end) + 1)] + [list(range(len(body)))]
    for cuts in splits:
        before = len(smtpd.messages)
        assert send_to(smtpd, chunked(body, cuts))
        assert_one_message(smtpd, before, stored(body))


@pytest.mark.parametrize("fake_end", FAKE_ENDS)
def test_postfix_smtp_sink_sees_one_transaction(
    smtp_sink: Callable[..., SmtpSink], fake_end: bytes
) -> None:
    # A second, independent server implementation (Postfix's): one dump per send, with our
    # envelope, and the body line for line (smtp-sink stores LF line ends).
    sink = smtp_sink(dump=True)
    bodies = [b"Subject: hi\r\n\r\nbefore" + fake_end + SMUGGLED + fake_end + b"after", SMUGGLED]
    for body in bodies:
        assert send_to(sink, chunked(body, [3, 17, 40]))
    dumps = sink.messages()
    envelope = (f"<{FROM}>", [f"<{r}>" for r in RCPT])
    assert [(d.mail_from, d.rcpt_tos) for d in dumps] == [envelope] * len(bodies)
    # Sorted: two dumps written within the file system's timestamp granularity have no order.
    assert sorted(d.message for d in dumps) == sorted(
        stored(b).replace(b"\r\n", b"\n") for b in bodies
    )
