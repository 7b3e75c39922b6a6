"""The types of mailpump's descriptions and options, for annotations in your own code.

Plain dicts are what mailpump takes; these ``TypedDict``\\ s and ``Literal``\\ s only tell a type
checker (and an editor's completion) which keys and option strings exist::

    from mailpump.types import Mesgt

    def report(body: str) -> Mesgt:
        return {"headers": {"subject": "report"}, "body": body}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from email.message import Message
from os import PathLike
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias, TypedDict

if TYPE_CHECKING:
    from ._mailpump import MessageSource, Part, Source

__all__ = [
    "AuthMechanism",
    "Body",
    "BodySource",
    "Codec",
    "HeaderValue",
    "Mailt",
    "Mesgt",
    "Multipart",
    "OpenOptions",
    "Progress",
    "QpMode",
    "SendOptions",
    "SmtpSource",
    "SocketLike",
    "SourceLike",
    "Step",
    "Tls",
    "Transaction",
    "TransactionOptions",
    "TransferEncoding",
    "WrapKind",
]

Tls: TypeAlias = Literal["auto", "starttls", "implicit", "none"]
"""``tls=``: ``"auto"`` (implicit TLS on port 465, else STARTTLS whenever offered),
``"starttls"`` (required), ``"implicit"`` (TLS from the first byte) or ``"none"``."""

AuthMechanism: TypeAlias = Literal["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]
"""``auth=``/``mechanism=``: a SASL mechanism (RFC 4954); case does not matter at run time."""

TransferEncoding: TypeAlias = Literal[
    "base64", "quoted-printable", "7bit", "8bit", "binary"
]
"""A part's ``"encoding"``: the body is encoded on the fly with the matching header."""

Codec: TypeAlias = Literal["base64", "quoted-printable"]
"""The names ``mime.encode`` and ``mime.decode`` take."""

QpMode: TypeAlias = Literal["text", "binary"]
"""``mime.encode("quoted-printable", mode)``."""

WrapKind: TypeAlias = Literal["text", "base64", "default", "quoted-printable"]
"""``mime.wrap(kind)``."""


class _BinaryReader(Protocol):
    def read(self, n: int, /) -> bytes: ...


SourceLike: TypeAlias = (
    "Source | MessageSource | bytes | bytearray | _BinaryReader | Iterable[bytes]"
)
"""What a body or an LTN12 source may be: a native source or message, bytes, a binary file
object or any iterable of ``bytes`` chunks."""

HeaderValue: TypeAlias = "str | Sequence[str] | bytes | None"
"""A header's value: text (RFC 2047 encoded when not ASCII), a list of addresses, raw bytes
written as given, or ``None`` to leave the header out."""


class Mesgt(TypedDict, total=False):
    """A message or part description, ``message()``'s argument (every key optional)."""

    headers: Mapping[str, HeaderValue]
    body: Body
    encoding: TransferEncoding


class Multipart(TypedDict, total=False):
    """A multipart body: ``{"preamble": ..., "parts": [...], "epilogue": ...}``."""

    preamble: str
    parts: Sequence[Mesgt | Part]
    epilogue: str


Body: TypeAlias = (
    "str | BodySource | Multipart | Sequence[Mesgt | Part] | Mapping[int | str, object]"
)
"""A body: ``str``, bytes or a source, a :class:`Multipart`, a bare list of parts, or the
LuaSocket spelling with parts under integer keys ``1..n`` (``Mapping[int | str, object]``)."""

BodySource: TypeAlias = (
    "Source | MessageSource | bytes | bytearray | _BinaryReader | Iterator[bytes | bytearray]"
)
"""A body's data: a native source or message, bytes, a binary file object or an iterator of
``bytes`` chunks (a generator, ``iter(chunks)``; a list is a list of parts)."""


class SocketLike(Protocol):
    """What ``create()`` returns: the socket methods mailpump calls."""

    def settimeout(self, t: float | None, /) -> object: ...
    def connect(self, address: tuple[str, int], /) -> object: ...
    def sendall(self, data: bytes, /) -> object: ...
    def recv(self, n: int, /) -> bytes: ...
    def close(self) -> object: ...


SmtpSource: TypeAlias = "SourceLike | str | Message"
"""What ``send()`` sends: any source, ``str`` (as UTF-8) or an ``email.message.Message``."""

Step: TypeAlias = Callable[[Iterator[bytes], Callable[[bytes | None], object]], bool]
"""LuaSocket's pump step: ``step(source, sink) -> bool``."""

Progress: TypeAlias = Callable[[int, "int | None"], object]
"""``progress(sent, total)``: called from the sending thread with the message bytes sent so far
and the total when known (``None`` for a message being encoded); raising aborts the message."""


class SendOptions(TypedDict, total=False):
    """The keywords ``send()`` takes besides ``from_``, ``rcpt`` and ``source`` (``None`` means
    the default, mostly from the ``mailpump.smtp`` constants)."""

    user: str | None
    password: str | None
    server: str | None
    port: int | None
    domain: str | None
    step: Step | None
    create: Callable[[], SocketLike] | None
    tls: Tls | None
    timeout: float | None
    cafile: str | PathLike[str] | None
    verify: bool | None
    auth: AuthMechanism | None
    oauth_token: str | None
    helo_fallback: bool | None
    allow_insecure_auth: bool | None
    progress: Progress | None


class OpenOptions(TypedDict, total=False):
    """The keywords ``open()`` takes besides ``server``, ``port`` and ``create``."""

    tls: Tls | None
    timeout: float | None
    cafile: str | PathLike[str] | None
    verify: bool | None
    domain: str | None
    helo_fallback: bool | None
    allow_insecure_auth: bool | None


class TransactionOptions(TypedDict, total=False):
    """The keywords ``Session.send()`` takes besides ``from_``, ``rcpt`` and ``source``."""

    step: Step | None
    progress: Progress | None


Transaction = TypedDict(
    "Transaction",
    {
        "from": str,
        "rcpt": "str | Sequence[str]",
        "source": "SmtpSource",
        "step": "Step | None",
        "progress": "Progress | None",
    },
    total=False,
)
"""One transaction for ``Session.send()``: ``from``, ``rcpt``, ``source`` (each needed, in the
dict or as a keyword: ``from_=``, ``rcpt=``, ``source=``) and, optionally, ``step`` and
``progress``."""


class Mailt(Transaction, total=False):
    """LuaSocket's ``mailt`` table, ``send()``'s dict: a :class:`Transaction` (``from``,
    ``rcpt``, ``source``, each needed here or as a keyword) and the connection's options
    (``None`` means the default)."""

    user: str | None
    password: str | None
    server: str | None
    port: int | None
    domain: str | None
    create: Callable[[], SocketLike] | None
    tls: Tls | None
    timeout: float | None
    cafile: str | PathLike[str] | None
    verify: bool | None
    auth: AuthMechanism | None
    oauth_token: str | None
    helo_fallback: bool | None
    allow_insecure_auth: bool | None
