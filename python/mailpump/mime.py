"""LuaSocket's ``mime`` module: streaming content-transfer encodings.

High-level filter factories return native filters (callables ``f(chunk) -> bytes``; ``f(None)``
flushes) that compose in Rust with :func:`mailpump.ltn12.filter.chain`. The low-level primitives
``b64, unb64, qp, unqp, wrp, qpwrp, eol, dot`` keep LuaSocket's exact semantics and return tuples
where Lua returns two values (``nil`` is ``None``).
"""

from __future__ import annotations

from . import _mailpump
from ._mailpump import Filter, b64, dot, eol, qp, qpwrp, stuff, unb64, unqp, wrp
from .types import Codec, QpMode, WrapKind

__all__ = [
    "b64",
    "decode",
    "dot",
    "encode",
    "eol",
    "normalize",
    "qp",
    "qpwrp",
    "stuff",
    "unb64",
    "unqp",
    "wrap",
    "wrp",
]


def normalize(marker: bytes | str = b"\r\n") -> Filter:
    """End-of-line normalisation: every CR, LF, CRLF or LFCR becomes ``marker``.

    ``mime.normalize()`` in LuaSocket; see :func:`eol` for the exact rule.
    """
    return _mailpump.normalize(marker)


def encode(name: Codec, mode: QpMode = "text") -> Filter:
    """A content-transfer encoder: ``"base64"`` or ``"quoted-printable"``.

    For quoted-printable, ``mode="text"`` writes CRLF line breaks as line breaks (normalise the
    text first) and ``mode="binary"`` encodes them as ``=0D=0A``. Lines are not wrapped: chain
    :func:`wrap` after it. An unknown name raises ``ValueError("unknown key (name)")``.
    """
    if not isinstance(name, str):
        # LuaSocket's choose() would select "default", which encode lacks: an error either way.
        raise TypeError(f"encode() name must be str, not {type(name).__name__}")
    return _mailpump.encode(name, mode)


def decode(name: Codec) -> Filter:
    """A content-transfer decoder: ``"base64"`` or ``"quoted-printable"``."""
    if not isinstance(name, str):
        raise TypeError(f"decode() name must be str, not {type(name).__name__}")
    return _mailpump.decode(name)


def wrap(kind: WrapKind | int = "text", length: int = 76) -> Filter:
    """A line wrapper: lines of at most ``length`` bytes, broken with CRLF.

    ``"text"``, ``"base64"`` and ``"default"`` break anywhere (LuaSocket's ``wrp``); the output of a
    non-empty input always ends with CRLF. ``"quoted-printable"`` inserts soft breaks (``=`` CRLF)
    that never split an ``=XX`` escape, at 76 columns whatever ``length`` says, as LuaSocket does.
    As in LuaSocket, a number as the first argument means the text wrap: ``wrap(59)``.
    """
    if isinstance(kind, int) and not isinstance(kind, bool):
        return _mailpump.wrap("text", kind)
    if not isinstance(kind, str):
        raise TypeError(f"wrap() kind must be str or int, not {type(kind).__name__}")
    return _mailpump.wrap(kind, length)
