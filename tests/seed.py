"""The seed's examples (from LuaSocket's smtp manual) translated to Python."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from mailcheck import long_lines, parse

SEED_TEXT = """
       Lines in a message body should always end with CRLF. 
       The smtp module will *NOT* perform translation. However, the 
       send function *DOES* perform SMTP stuffing, whereas the message
       function does *NOT*.
    """  # noqa: W291 (the seed's trailing spaces are part of the example)

SEED_PREAMBLE = (
    "If your client doesn't understand attachments, \r\n"
    "it will still display the preamble and the epilogue.\r\n"
    "Preamble will probably appear even in a MIME enabled client."
)
SEED_EPILOGUE = "This might also show up, but after the attachments"


def png_bytes() -> bytes:
    """A PNG-like file: the signature and random binary bytes (every byte value appears)."""
    rng = random.Random(2046)
    return (
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + bytes(rng.getrandbits(8) for _ in range(50_000))
    )


def seed_message(image: Path) -> Any:
    """LuaSocket's documented attachment example, in Python, as the README shows it."""
    from mailpump import ltn12, mime, smtp

    return smtp.message({
        "headers": {
            "from": "Sicrano de Oliveira <sicrano@example.test>",
            "to": "Fulano da Silva <fulano@example.test>",
            "subject": "Here is a message with attachments",
        },
        "body": {
            "preamble": SEED_PREAMBLE,
            1: {"body": mime.eol(0, SEED_TEXT)[0]},
            2: {
                "headers": {
                    "content-type": 'image/png; name="image.png"',
                    "content-disposition": 'attachment; filename="image.png"',
                    "content-description": "a beautiful image",
                    "content-transfer-encoding": "BASE64",
                },
                "body": ltn12.source.chain(
                    ltn12.source.file(str(image), "rb"),
                    ltn12.filter.chain(mime.encode("base64"), mime.wrap()),
                ),
            },
            "epilogue": SEED_EPILOGUE,
        },
    })  # fmt: skip


def check_seed_message(raw: bytes, image_data: bytes) -> None:
    """The seed's first example parsed back: same headers, preamble, text, exact image bytes."""
    assert long_lines(raw) == []
    got = parse(raw)
    assert got["from"] == "Sicrano de Oliveira <sicrano@example.test>"
    assert got["to"] == "Fulano da Silva <fulano@example.test>"
    assert got["subject"] == "Here is a message with attachments"
    assert got.get_content_type() == "multipart/mixed"
    assert lf(got.preamble or "").strip("\n") == lf(SEED_PREAMBLE)
    assert lf(got.epilogue or "").strip("\n") == SEED_EPILOGUE
    text, image = got.iter_parts()
    assert text.get_content_type() == "text/plain"
    expected_text = SEED_TEXT.replace("\n", "\r\n")
    assert text.get_payload(decode=True) == expected_text.encode()
    assert image.get_content_type() == "image/png"
    assert image.get_filename() == "image.png"
    assert image["content-description"] == "a beautiful image"
    assert image.get_payload(decode=True) == image_data


def lf(s: str) -> str:
    """CRLF line ends as LF."""
    return s.replace("\r\n", "\n")
