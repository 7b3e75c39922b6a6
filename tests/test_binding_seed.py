"""The seed's first example (LuaSocket manual, ``smtp.message``), translated to Python, read back
by Python's ``email`` parser: same headers, preamble, text and exact attachment bytes."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import subprocess
import sys
from pathlib import Path

from mailpump import mime
from mailpump.__main__ import demo_message, small_png

TEXT = b"""
  Lines in a message body should always end with CRLF.
  The smtp module will *NOT* perform translation. However, the
  send function *DOES* perform SMTP stuffing, whereas the message
  function does *NOT*.
"""


def parse(raw: bytes) -> email.message.EmailMessage:
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def check(raw: bytes, png: bytes) -> None:
    msg = parse(raw)
    assert not msg.defects
    assert msg["from"] == "Sicrano de Oliveira <sicrano@example.com>"
    assert msg["to"] == "Fulano da Silva <fulano@example.com>"
    assert msg["subject"] == "Here is a message with attachments"
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.preamble is not None
    assert msg.preamble.startswith(
        "If your client doesn't understand attachments, \r\n"
    )
    assert (
        "Preamble will probably appear even in a MIME enabled client." in msg.preamble
    )
    assert (
        msg.epilogue or ""
    ).strip() == "This might also show up, but after the attachments"
    text, image = list(msg.iter_parts())
    assert text.get_content_type() == "text/plain"
    expected = mime.eol(0, TEXT)[0]
    assert expected is not None
    payload = text.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.rstrip(b"\r\n") == expected.rstrip(b"\r\n")
    assert image.get_content_type() == "image/png"
    assert image.get_filename() == "image.png"
    assert image["content-description"] == "a beautiful image"
    assert image.get_payload(decode=True) == png


def test_seed_example_parses_back(tmp_path: Path) -> None:
    png = small_png()
    path = tmp_path / "image.png"
    path.write_bytes(png)
    raw = b"".join(demo_message(str(path)))
    assert b"\r\n" in raw
    check(raw, png)


def test_demo_print_prints_the_example() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mailpump", "demo", "--print"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    check(out, small_png())


def test_demo_sends_through_an_embedded_server() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mailpump", "demo"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    transcript, _, received = out.partition(b"--- message received by the server ---\n")
    assert b"C: MAIL FROM:<sicrano@example.com>" in transcript
    assert b"S: 250 2.0.0 OK: queued" in transcript
    assert b"accepted ['fulano@example.com']" in transcript
    check(received, small_png())
