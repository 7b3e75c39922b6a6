"""Checks a user would make on generated mail: line lengths, folding, parsing back, wire form."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import re
from collections.abc import Iterable

MAX_LINE = 998
"""RFC 5322 §2.1.1: a line is at most 998 octets, CRLF excluded."""
FOLD_AT = 78
"""RFC 5322 §2.1.1: lines SHOULD be at most 78 octets."""


def collect(chunks: Iterable[bytes]) -> bytes:
    """Every chunk of a source, joined; each must be `bytes`."""
    out = []
    for chunk in chunks:
        assert isinstance(chunk, bytes), type(chunk)
        out.append(chunk)
    return b"".join(out)


def parse(raw: bytes) -> email.message.EmailMessage:
    """Python's own parser, the judge of every generated message."""
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def long_lines(raw: bytes, limit: int = MAX_LINE) -> list[bytes]:
    """Lines (CRLF or LF separated) longer than `limit` octets."""
    return [line for line in re.split(rb"\r\n|\n", raw) if len(line) > limit]


def header_blocks(raw: bytes) -> list[bytes]:
    """The header block of the message and of every MIME part (by boundary), CRLF-split lines."""
    blocks = []
    head, _, _ = raw.partition(b"\r\n\r\n")
    blocks.append(head)
    for boundary in re.findall(rb'boundary="?([^";\r\n]+)"?', raw):
        for piece in raw.split(b"\r\n--" + boundary + b"\r\n")[1:]:
            blocks.append(piece.partition(b"\r\n\r\n")[0])
    return blocks


def badly_folded(raw: bytes) -> list[bytes]:
    """Header lines over 78 octets that could have been folded (they hold a space or tab after
    the field name), in the top-level header block and every part's header block."""
    bad = []
    for block in header_blocks(raw):
        for line in block.split(b"\r\n"):
            if len(line) <= FOLD_AT:
                continue
            body = line.split(b":", 1)[1] if not line[:1].isspace() else line
            words = body.strip().split()
            # Foldable: two or more words, and the line's first word alone would fit.
            if len(words) > 1 and len(line) - len(body) + 1 + len(words[0]) <= FOLD_AT:
                bad.append(line)
    return bad


def wire_form(message: bytes) -> bytes:
    """What an SMTP server stores for `message` sent by mailpump: every bare CR or LF made CRLF,
    and a CRLF added at the end if the message lacks one (the end-of-data mark needs it)."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data
