"""The Rust extension behind mailpump. Import the public names from ``mailpump``,
``mailpump.mime`` and ``mailpump.ltn12`` instead of from here.

Native objects (``Source``, ``Filter``, ``Part``, ``MessageSource``) are *moved* into whatever
they are used in (a chain, a message, a session): afterwards the original object is spent, and
using it raises ``ValueError``. This is what lets a chain of native pieces run entirely in Rust.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from os import PathLike
from typing import Any, Final, Literal, Protocol, Self, TypeAlias, final, overload

from typing_extensions import disjoint_base

from .errors import SMTPError

from .types import (
    AuthMechanism,
    Codec,
    ConnectionOptions,
    DsnEvent,
    Mesgt,
    Progress,
    QpMode,
    SmtpSource,
    SourceLike,
    Step,
    Transaction,
    WrapKind,
)

__version__: Final[str]

__all__ = [
    "Filter",
    "MessageSource",
    "Part",
    "Pool",
    "Reply",
    "SendResult",
    "Session",
    "Sink",
    "Source",
    "Ticket",
    "__version__",
    "attachment",
    "b64",
    "decode",
    "dot",
    "encode",
    "eol",
    "filter_chain",
    "message",
    "normalize",
    "pump_native",
    "qp",
    "qpwrp",
    "send",
    "sink_file",
    "sink_list",
    "sink_null",
    "source_cat",
    "source_chain",
    "source_empty",
    "source_file",
    "source_string",
    "stuff",
    "text",
    "unb64",
    "unqp",
    "wrap",
    "wrp",
]

class _BinaryReader(Protocol):
    def read(self, n: int, /) -> bytes: ...

class _BinaryWriter(Protocol):
    def write(self, b: bytes, /) -> object: ...

_Path: TypeAlias = str | PathLike[str]
_Data: TypeAlias = bytes | bytearray | str
_SourceLike: TypeAlias = SourceLike
# A Python filter may return None for "nothing now" (Lua's nil).
_FilterLike: TypeAlias = Filter | Callable[[bytes | None], bytes | bytearray | None]
_Mesgt: TypeAlias = Mesgt | Part

# --- messages ---------------------------------------------------------------------------------

@final
class MessageSource:
    """An encoded message: an iterator of ``bytes`` chunks of about ``chunk_size`` bytes (a body
    chunk that an encoding expands, such as base64, may make one larger).

    Each ``next()`` produces the next chunk in Rust with the GIL released, so other threads run
    while a message is encoded; a body that is a Python iterable is pulled (with the GIL) as the
    encoder reaches it. Nothing is read before the first ``next()``. The iterator is fused: after
    its end or an error it yields nothing more, and any file it was reading is closed.

    A body source that raises makes ``next()`` raise that same exception. A ``MessageSource`` can
    be used as the body of another message, in ``ltn12.source.chain``/``cat``, or as the source
    of ``send()``: it is then moved there. ``mailpump.to_email(msg)`` parses it into an
    ``email.message.EmailMessage`` to inspect it (consuming it).

    A message whose bodies can all be read again (see :attr:`replayable`) can be sent again, by
    ``send()`` or ``Session.send()``, to retry it after ``SMTPRecipientsRefused``, say: each
    time it is encoded afresh from the start, byte for byte the same (the same boundaries,
    ``Date`` and ``Message-ID``), without keeping the encoded message in memory. A one-shot
    message raises ``ValueError`` when it is used a second time.
    """

    def __iter__(self) -> MessageSource: ...
    def __next__(self) -> bytes: ...
    @property
    def replayable(self) -> bool:
        """Whether the message can be sent again: every body is a ``str``, ``bytes``, a file
        given by its path (``attachment(path)``, ``ltn12.source.file(path)``) or another source
        that can be read again (``ltn12.source.string``, ``cat`` or ``chain`` of such sources
        through mailpump's own filters, a replayable ``MessageSource``). A Python iterator or
        generator, a file object or a Python filter is read once, and so is the message.

        >>> import mailpump
        >>> mailpump.message({"body": "Hello"}).replayable
        True
        >>> mailpump.message({"body": iter([b"Hello"])}).replayable
        False
        """
    @property
    def binarymime(self) -> bool:
        """Whether a part's transfer encoding is ``binary`` (its ``"encoding"``, or its own
        ``Content-Transfer-Encoding`` header): the message is then sent unchanged with ``BDAT``
        and ``BODY=BINARYMIME`` (RFC 3030 §3), and refused before any byte by a server that does
        not offer BINARYMIME and CHUNKING.

        >>> import mailpump
        >>> mailpump.message({"body": b"\\x00\\r\\n", "encoding": "binary"}).binarymime
        True
        >>> mailpump.message({"body": b"\\x00", "encoding": "base64"}).binarymime
        False
        """

@final
class Part:
    """An opaque message part made by :func:`text` or :func:`attachment`.

    Use it wherever a part dict is accepted: in a multipart's ``parts`` (or numbered keys), or as
    the whole message. It is moved into the first message it is used in.
    """

def message(
    mesgt: _Mesgt, *, chunk_size: int = 65536, zone: str | None = None
) -> MessageSource:
    """Describes a message; returns a :class:`MessageSource` of its bytes.

    ``mesgt`` is ``{"headers": {...}, "body": BODY, "encoding": ENC}`` (every key optional):

    - ``headers``: names are case-insensitive and written in canonical capitalisation
      (``Content-Type``, ``MIME-Version``, ``Message-ID``, unknown names in Train-Case); values are
      ``str`` (non-ASCII becomes RFC 2047 encoded-words; folded at 78 columns), a list of
      addresses (joined with ``", "``), ``bytes`` (written as given, after validation), or
      ``None`` (the header is left out). CR, LF or NUL in a name or value raise
      :class:`~mailpump.MessageError`. ``Bcc`` is written like ``To``; sending leaves it out of
      what is transmitted and, when ``rcpt`` is not given, delivers to its addresses.
    - ``body``: ``str`` (UTF-8; 7bit or quoted-printable as needed), ``bytes`` (as given), any
      source (an iterable of ``bytes``, a binary file object, a native ``Source`` or another
      ``MessageSource``), or a multipart: ``{"preamble": str, "parts": [mesgt, ...],
      "epilogue": str}``, the same with Lua-style keys ``1..n`` instead of ``"parts"``, or a bare
      list of parts. Parts nest to any depth; a part may be a :class:`Part`.
    - ``encoding``: ``"base64"``, ``"quoted-printable"``, ``"7bit"``, ``"8bit"`` or ``"binary"``:
      the body is encoded on the fly and the matching Content-Transfer-Encoding header written.

    The top level gets ``Date`` (in ``zone``, such as ``"+0200"``, or the real local offset),
    ``Message-ID``, ``MIME-Version`` and ``X-Mailer`` unless given. The whole description is
    validated here, before any byte is produced: :class:`~mailpump.MessageError` names the part
    (``message.parts[1]``) and header at fault. Bodies are written as given, exactly as LuaSocket
    does: no line-ending translation, no dot-stuffing (``send()`` does that).
    """

def text(s: str, subtype: str = "plain") -> Part:
    """A text part: ``Content-Type: text/<subtype>; charset="utf-8"``, transfer encoding chosen
    from the content (7bit or quoted-printable)."""

def attachment(
    data: _Path | bytes | _BinaryReader | _SourceLike,
    filename: str | None = None,
    content_type: str | None = None,
    *,
    cid: str | None = None,
) -> Part:
    """An attachment part, base64-encoded while the message is read.

    With ``cid="logo"``, the part is shown inline under ``Content-ID: <logo>``, for an HTML part
    beside it in a ``multipart/related`` (see :func:`mailpump.html`) to reference as
    ``cid:logo``.

    ``data`` is a path (opened at once, so a missing file raises ``FileNotFoundError`` here, and
    read in chunks while the message is iterated, never whole), ``bytes``, a binary file object or
    any source. ``filename`` defaults to the file's name; non-ASCII names are written with RFC 2231.
    ``content_type`` defaults to a guess from the filename, else ``application/octet-stream``.
    """

# --- LTN12 ------------------------------------------------------------------------------------

@final
class Source:
    """A source made by mailpump (``ltn12.source.*``): an iterator of ``bytes`` chunks produced
    in Rust with the GIL released. Fused: after its end or an error it yields nothing more."""

    def __iter__(self) -> Source: ...
    def __next__(self) -> bytes: ...

@final
class Filter:
    """A filter made by mailpump (``mime.*``, ``ltn12.filter.chain``).

    ``f(chunk)`` returns the filtered bytes available so far (maybe ``b""``); ``f(None)`` (or
    ``f()``) returns what was held back and resets the filter for a new stream. The output is
    the same however the input is split into chunks. Large chunks are filtered with the GIL
    released.
    """

    def __call__(self, chunk: bytes | bytearray | None = None, /) -> bytes: ...

@final
class Sink:
    """A sink made by mailpump (``ltn12.sink.*``): ``s(chunk)`` consumes a chunk, ``s(None)``
    ends the data (a file sink then flushes and closes its file)."""

    def __call__(self, chunk: bytes | bytearray | None = None, /) -> None: ...
    @property
    def list(self) -> list[bytes] | None:
        """The list a ``sink.list()`` appends to; ``None`` for other sinks."""

def source_string(s: _Data, chunk_size: int = 65536) -> Source:
    """``ltn12.source.string(s)``: ``s`` (``str`` as UTF-8) in chunks of ``chunk_size``."""

def source_file(
    file: _Path | _BinaryReader, mode: str = "rb", chunk_size: int = 65536
) -> Source:
    """``ltn12.source.file(path | file, mode="rb")``.

    A path is opened at once (a missing file raises ``FileNotFoundError`` here) and read in Rust
    without the GIL, closed at its end. An open binary file object is read with ``read(n)`` and,
    as LTN12 does, closed at its end. ``mode`` must be ``"rb"`` (``"r"`` is accepted as the same).
    """

def source_empty() -> Source:
    """``ltn12.source.empty()``: a source with no data."""

def source_cat(*sources: _SourceLike) -> Source:
    """``ltn12.source.cat(*sources)``: the sources one after the other."""

def source_chain(src: _SourceLike, *filters: _FilterLike) -> Source:
    """``ltn12.source.chain(src, *filters)``: ``src``'s data through the filters, in order.

    When every piece is native the whole chain runs in Rust; Python iterables and callables mix
    in, called once per chunk.
    """

def filter_chain(*filters: _FilterLike) -> Filter:
    """``ltn12.filter.chain(*filters)``: one filter applying each in turn, built in Rust."""

def sink_list(lst: list[bytes] | None = None) -> Sink:
    """``ltn12.sink.list(lst=None)``: appends each chunk to ``lst`` (a new list when omitted; see
    :attr:`Sink.list`)."""

def sink_file(file: _Path | _BinaryWriter, mode: str = "wb") -> Sink:
    """``ltn12.sink.file(path | file, mode="wb")``: writes each chunk; ``None`` closes it.

    A path is written from Rust (``mode`` ``"wb"`` truncates, ``"ab"`` appends); a binary file
    object gets ``write(chunk)`` and ``close()`` at the end, as LTN12 does.
    """

def pump_native(src: object, snk: object) -> bool:
    """``ltn12.pump.all``'s fast path: when ``src`` is a native source or message and ``snk`` a
    native file or null sink, pumps everything in Rust with the GIL released and returns
    ``True``; otherwise touches nothing and returns ``False``."""

def sink_null() -> Sink:
    """``ltn12.sink.null()``: discards everything."""

# --- mime -------------------------------------------------------------------------------------

def normalize(marker: _Data | None = None) -> Filter:
    """``mime.normalize(marker=b"\\r\\n")``: every CR, LF, CRLF or LFCR becomes ``marker``."""

def encode(name: Codec, mode: QpMode = "text") -> Filter:
    """``mime.encode("base64")`` or ``mime.encode("quoted-printable", mode)``, mode ``"text"`` or
    ``"binary"``. Raises ``ValueError("unknown key (name)")`` for any other name."""

def decode(name: Codec) -> Filter:
    """``mime.decode("base64" | "quoted-printable")``."""

def wrap(kind: WrapKind = "text", length: int = 76) -> Filter:
    """``mime.wrap(kind, length)`` without LuaSocket's argument shifting (see ``mailpump.mime``)."""

def stuff() -> Filter:
    """``mime.stuff()``: LuaSocket's SMTP dot-stuffing (a ``.`` after CRLF is doubled)."""

@overload
def b64(c: _Data | None, d: None = None, /) -> tuple[bytes | None, None]: ...
@overload
def b64(c: _Data | None, d: _Data, /) -> tuple[bytes | None, bytes | None]: ...
@overload
def b64(c: _Data | None, d: _Data | None, /) -> tuple[bytes | None, bytes | None]:
    """``A, B = b64(C, D)``: base64 of the longest prefix of ``C + D`` whose length is a multiple
    of 3, and the 0-2 bytes left over. With ``D`` ``None`` the rest is padded and ``B`` is
    ``None``; an empty result is ``None``."""

@overload
def unb64(c: _Data | None, d: None = None, /) -> tuple[bytes | None, None]: ...
@overload
def unb64(c: _Data | None, d: _Data, /) -> tuple[bytes | None, bytes | None]: ...
@overload
def unb64(c: _Data | None, d: _Data | None, /) -> tuple[bytes | None, bytes | None]:
    """``A, B = unb64(C, D)``: base64 decoding that skips bytes outside the alphabet; with ``D``
    ``None`` an incomplete final group is dropped."""

@overload
def qp(
    c: _Data | None, d: None = None, marker: _Data | None = None, /
) -> tuple[bytes | None, None]: ...
@overload
def qp(
    c: _Data | None, d: _Data | None, marker: _Data | None = None, /
) -> tuple[bytes | None, bytes | None]:
    """``A, B = qp(C, D, marker)``: quoted-printable encoding; CRLF becomes ``marker``
    (``b"\\r\\n"`` by default); ``B`` holds the bytes whose encoding depends on what follows."""

@overload
def unqp(c: _Data | None, d: None = None, /) -> tuple[bytes | None, None]: ...
@overload
def unqp(c: _Data | None, d: _Data, /) -> tuple[bytes | None, bytes | None]: ...
@overload
def unqp(c: _Data | None, d: _Data | None, /) -> tuple[bytes | None, bytes | None]:
    """``A, B = unqp(C, D)``: quoted-printable decoding, LuaSocket's rules."""

def wrp(n: int, c: _Data | None, length: int = 76, /) -> tuple[bytes | None, int]:
    """``A, m = wrp(n, C, length)``: line wrapping with ``n`` bytes left on the current line."""

def qpwrp(n: int, c: _Data | None, length: int = 76, /) -> tuple[bytes | None, int]:
    """``A, m = qpwrp(n, C, length)``: quoted-printable soft line breaks, never splitting ``=XX``."""

def eol(
    ctx: int, c: _Data | None, marker: _Data | None = None, /
) -> tuple[bytes | None, int]:
    """``A, ctx = eol(ctx, C, marker)``: end-of-line normalisation; ``ctx`` is the code of a
    pending CR or LF from the previous chunk (0 at the start)."""

def dot(m: int, c: _Data | None, /) -> tuple[bytes | None, int]:
    """``A, m = dot(m, C)``: SMTP dot-stuffing; ``m`` is the state (2 at the start of the data)."""

# --- smtp -------------------------------------------------------------------------------------

_SmtpSource: TypeAlias = SmtpSource
_Step: TypeAlias = Step

@final
class Reply:
    """An SMTP reply (RFC 5321 §4.2)."""

    @property
    def code(self) -> int:
        """The three-digit reply code."""
    @property
    def enhanced(self) -> str | None:
        """The enhanced status code (RFC 3463) such as ``"2.0.0"``, or ``None``."""
    @property
    def text(self) -> str:
        """The text: the lines joined with ``"\\n"``, without the enhanced status code."""
    @property
    def lines(self) -> list[str]:
        """Each line as received, after the code (the enhanced status code still there)."""
    @property
    def transient(self) -> bool:
        """A 4xx reply."""
    @property
    def permanent(self) -> bool:
        """A 5xx reply."""

@final
class SendResult:
    """What became of a message. Always truthy."""

    @property
    def accepted(self) -> list[str]:
        """The recipients that got the message, as you gave them (``a@b``; an international
        domain as you wrote it, even when it went out as IDNA A-labels). Over LMTP, those whose
        own verdict was a 2xx."""
    @property
    def refused(self) -> dict[str, Reply]:
        """The recipients that did not get it, each with the server's reply: refused at RCPT,
        and over LMTP those whose verdict after the data was a 4xx or 5xx."""
    @property
    def reply(self) -> Reply:
        """The reply to the end of data; it usually carries the server's queue id. Over LMTP,
        the first 2xx verdict."""
    @property
    def verdicts(self) -> dict[str, Reply]:
        """LMTP: each recipient accepted at RCPT mapped to its own verdict after the data, in
        RCPT order: 2xx delivered, 4xx deferred (``reply.transient``: send it to them again
        later), 5xx refused. Empty over SMTP, where ``reply`` covers every accepted recipient."""
    def __bool__(self) -> bool: ...

@final
class DKIM:
    """A DKIM signer (RFC 6376; ``ed25519-sha256`` from RFC 8463), made once and given as
    ``dkim=`` to :func:`send`, :func:`~mailpump.open` and :class:`~mailpump.Pool`: every message
    sent is signed before its MAIL command, so a failure to sign sends nothing of it.

    ``key`` is a PEM private key: ``bytes``, a ``str`` holding the PEM text, or the path of a PEM
    file (``str`` or ``os.PathLike``). RSA keys (``openssl genrsa 2048``, PKCS#1 or PKCS#8) sign
    ``rsa-sha256``, Ed25519 keys (``openssl genpkey -algorithm ed25519``) ``ed25519-sha256``;
    ``algorithm`` only checks that the key is of that kind. The key is parsed once, here.

    ``headers``: the header fields to sign, in order; by default ``From``, ``Reply-To``,
    ``Subject``, ``Date``, ``To``, ``Cc``, ``Message-ID``, ``In-Reply-To``, ``References``,
    ``MIME-Version``, ``Content-Type``, ``Content-Transfer-Encoding``, and ``From`` a second time,
    so that a ``From`` added later breaks the signature (a listed field the message lacks is
    signed as absent the same way). ``canonicalization``: ``"header/body"``, each ``"simple"`` or
    ``"relaxed"`` (the default, ``"relaxed/relaxed"``). ``expiration``: seconds after signing
    when the signature expires (``x=``); ``None``, the default, never.

    What is signed is what is sent: after ``Bcc`` is stripped, with CRLF line ends. A message
    that can be read again (``bytes``, an ``EmailMessage``, a replayable :func:`message`) is read
    twice, once to hash and once to send; a one-shot source (an iterator, a file object) is
    spooled to an unnamed temporary file while it is hashed. Memory stays constant either way.

    A bad key, algorithm, canonicalization or header name raises ``ValueError`` (the key itself
    is never quoted); an unreadable key file ``OSError``.
    """

    def __new__(
        cls,
        domain: str,
        selector: str,
        key: bytes | str | PathLike[str],
        *,
        headers: Sequence[str] | None = None,
        canonicalization: str = "relaxed/relaxed",
        algorithm: Literal["rsa-sha256", "ed25519-sha256"] | None = None,
        expiration: float | None = None,
    ) -> Self: ...
    @property
    def domain(self) -> str:
        """The signing domain (``d=``)."""
    @property
    def selector(self) -> str:
        """The selector (``s=``): the public key is the TXT record of
        ``<selector>._domainkey.<domain>``."""
    @property
    def algorithm(self) -> Literal["rsa-sha256", "ed25519-sha256"]:
        """The signature algorithm, from the key."""
    @property
    def headers(self) -> tuple[str, ...]:
        """The header names given (empty: the default set)."""
    @property
    def canonicalization(self) -> str:
        """``"header/body"``, such as ``"relaxed/relaxed"``."""
    def sign(self, message: SmtpSource, /) -> Source:
        """The message as it would be sent (``Bcc`` stripped from an ``EmailMessage`` or
        :func:`message` source), its ``DKIM-Signature:`` field first. Signed now: an error (none
        of the headers to sign is in the message: ``ValueError``; the source's own) is raised
        here."""

@disjoint_base  # a native class: its subclasses cannot mix in another native base
class Session:
    """An SMTP session over one connection, made by ``mailpump.open()``; a context manager that
    says QUIT and closes at the end of the ``with`` block. ``mailpump.Session`` is this class
    with ``send()`` also taking keywords.

    Every network call releases the GIL, so sessions in different threads run in parallel. One
    session used from two threads at once raises ``RuntimeError`` rather than mixing two
    dialogues on one connection. After a timeout or a protocol error the connection is closed
    and every later call raises :class:`~mailpump.SMTPConnectError`.

    The ``mailpump`` logger records the dialogue at DEBUG level (AUTH payloads as
    ``<redacted>``, never the body) if it is enabled for DEBUG when the session is opened.
    """

    def __new__(cls, options: ConnectionOptions, /) -> Self:
        """Connects (nothing is read until ``greet()``); use ``mailpump.open``, which fills the
        defaults from the ``mailpump.smtp`` constants. ``options`` are ``send()``'s connection
        options without the credentials (``user``, ``password``, ``oauth_token``, ``auth``:
        ``TypeError``), since a session authenticates with :meth:`auth` after :meth:`greet`."""
    def greet(self, domain: str | None = None) -> Reply | None:
        """Reads the greeting, says EHLO (HELO when EHLO is refused), then applies the TLS policy
        (STARTTLS and EHLO again). Returns the EHLO reply (the greeting after HELO)."""
    def starttls(self) -> Reply | None:
        """STARTTLS, the TLS handshake and EHLO again; returns the new EHLO reply."""
    def auth(
        self,
        user: str,
        password: str | None = None,
        *,
        mechanism: AuthMechanism | None = None,
        oauth_token: str | None = None,
    ) -> Reply:
        """AUTH (RFC 4954): CRAM-MD5, PLAIN or LOGIN, the best offered; XOAUTH2 with
        ``oauth_token``; ``mechanism`` forces one. Credentials are refused over an unencrypted
        connection to a non-loopback server unless the session allows insecure auth.
        Raises :class:`~mailpump.SMTPAuthError`; the session stays usable."""
    def mail(
        self,
        from_: str,
        *,
        ret: Literal["full", "hdrs"] | None = None,
        envid: str | None = None,
    ) -> Reply:
        """MAIL FROM. ``ret`` and ``envid`` ask for delivery status notifications (RFC 3461
        §4.3, §4.4); a ValueError, before any byte, when the server does not offer DSN. Raises
        :class:`~mailpump.SMTPSenderRefused` on refusal."""
    def rcpt(
        self,
        to: str,
        *,
        notify: Literal["never"] | DsnEvent | Sequence[DsnEvent] | None = None,
        orcpt: str | None = None,
    ) -> Reply:
        """RCPT TO. ``notify`` and ``orcpt`` are the recipient's DSN parameters (RFC 3461 §4.1,
        §4.2); a ValueError, before any byte, when the server does not offer DSN. Raises
        :class:`~mailpump.SMTPReplyError` on refusal."""
    def data(
        self,
        source: _SmtpSource,
        step: _Step | None = None,
        *,
        progress: Progress | None = None,
    ) -> Reply:
        """DATA, the message (normalised to CRLF, dot-stuffed, ended with one CRLF.CRLF) and the
        final reply. A source that raises closes the connection without the end-of-data mark and
        its exception propagates. ``progress(sent, total)`` is called as for ``send()``. No
        verdict after the end-of-data mark raises :class:`~mailpump.SMTPOutcomeUnknown`."""
    def send(self, mailt: Transaction, /) -> SendResult:
        """One transaction (MAIL, RCPT for each recipient, DATA; pipelined when offered) from
        LuaSocket's table: ``from``, ``rcpt`` and ``source`` as for ``send()``, and optionally
        ``step`` and ``progress``. Another key raises ``TypeError``; no recipients raise
        ``ValueError`` before anything is sent. ``mailpump.Session.send`` also takes them as
        keywords (``from_=``, ``rcpt=``, ...)."""
    def send_many(
        self, mailts: Iterable[Transaction | Mapping[str, Any]], /
    ) -> Iterator[SendResult | SMTPError]:
        """Many messages over this connection, one transaction each, in order. When the server
        offers PIPELINING (RFC 2920) the end-of-data mark of one message goes out in the same
        write as the next message's MAIL, RCPT and DATA, so a message costs one round trip, not
        two; every reply is still read and matched to its message.

        Each item is a table as for :meth:`send` (``from`` or ``from_``, ``rcpt``, ``source``,
        ``step``; not ``progress``). The iterator yields one item per message, in order: its
        :class:`SendResult`, or the exception (an ``SMTPError`` with its ``kind``) when the
        server refused it or it failed; the other messages go on. Items are taken from
        ``mailts`` as they are sent, at most 1024 ahead of what has been yielded, so any number of
        messages runs in bounded memory; the network I/O runs with the GIL released.

        When the connection breaks, the messages already started yield their outcomes
        (``SMTPOutcomeUnknown`` for one whose end-of-data mark went out: it may have been
        delivered), then the iterator raises the connection's error; no further item of
        ``mailts`` is taken. A table that cannot be read (``TypeError``, ``ValueError`` for a bad
        address) is raised the same way, after the outcomes before it; the session stays usable.

        >>> import mailpump
        >>> with mailpump.open("localhost", 2525) as session:  # doctest: +SKIP
        ...     session.greet()
        ...     tables = ({"from": "news@example.com", "rcpt": to, "source": mailpump.message(
        ...         {"headers": {"to": to, "subject": "News"}, "body": "Hello!"})}
        ...         for to in ["a@example.org", "b@example.org"])
        ...     for outcome in session.send_many(tables):
        ...         if isinstance(outcome, mailpump.SMTPError):
        ...             print("failed:", outcome.kind, outcome)
        """
    def rset(self) -> Reply:
        """RSET."""
    def noop(self) -> Reply:
        """NOOP."""
    def quit(self) -> Reply:
        """QUIT, then close."""
    def close(self) -> None:
        """Closes the connection without QUIT."""
    @property
    def encrypted(self) -> bool:
        """Whether the connection is encrypted."""
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> bool: ...

def send(transaction: Transaction, options: ConnectionOptions, /) -> SendResult:
    """Sends one message over a new connection; use ``mailpump.send``, which takes LuaSocket's
    dict or keywords, splits them into these two dicts and fills ``server``, ``port``,
    ``domain`` and ``timeout`` from the ``mailpump.smtp`` constants.

    ``transaction``, the message:

    - ``from``, ``rcpt``: envelope addresses as ``a@b``, ``<a@b>`` or ``Name <a@b>``, sent as
      ``<a@b>``; ``""`` is the null reverse-path. Either may be left out (or ``None``) when the
      source is an ``EmailMessage`` or a ``MessageSource``: they are then read from its header
      as ``smtplib.send_message`` does (``Sender`` or ``From``; ``To``, ``Cc`` and ``Bcc``, or
      the ``Resent-`` fields of the newest resend, RFC 5322 §3.6.6). ``Bcc`` and ``Resent-Bcc``
      fields of such a source are never transmitted. Control characters, CR, LF or spaces outside
      quotes, or no recipient at all, raise ``ValueError`` before connecting.
    - ``source``: a ``MessageSource`` (sent entirely in Rust, GIL released), any iterable of
      bytes, ``bytes``/``str``, a binary file object, or an ``email.message.EmailMessage``. The
      body goes out with every bare CR or LF made CRLF, lines starting with ``.`` stuffed, and
      exactly one CRLF.CRLF at its end (in ``BDAT`` chunks with CHUNKING: no stuffing, no mark),
      except binary MIME (``binarymime`` below), which goes out unchanged.
    - ``step(source, sink) -> bool``: LuaSocket's pump step, called for every chunk.
    - ``progress(sent, total)``: called from the sending thread (holding the GIL) as the body
      goes out, with the message bytes sent so far and the total when it is known (``None``
      for a message being encoded); the last call comes before the end-of-data mark is
      written. If it raises, the connection is closed without the end-of-data mark (no
      truncated message is delivered) and its exception propagates.
    - ``dsn``: delivery status notifications (RFC 3461), a :class:`mailpump.types.Dsn`:
      ``{"ret": "hdrs", "envid": "order-42", "notify": ["failure", "delay"], "recipients":
      {"b@example.org": {"notify": "never", "orcpt": "old@example.org"}}, "optional": False}``.
      ``RET`` and ``ENVID`` go on MAIL, ``NOTIFY`` and ``ORCPT`` on each RCPT, xtext-encoded.
      When the server does not offer DSN the message is refused with ``ValueError``
      before any of it is sent, unless ``"optional": True`` lets it go
      without them. Bad values (``"never"`` with another event, an ``envid`` over 100
      characters or not printable ASCII, a ``recipients`` key not in ``rcpt``) raise
      ``ValueError`` before connecting.
    - ``binarymime`` (``False``): the source is binary MIME (RFC 3030 §3), a part with
      ``Content-Transfer-Encoding: binary``: it goes out unchanged (no CRLF normalisation, no
      dot-stuffing) in ``BDAT`` chunks after ``MAIL FROM:<...> BODY=BINARYMIME``. A
      ``message()`` with a part whose ``"encoding"`` is ``"binary"`` says so itself
      (:attr:`MessageSource.binarymime`); give it for ``bytes``, a file or an ``EmailMessage``
      holding such a part. When the server does not offer BINARYMIME and CHUNKING with
      PIPELINING, or ``chunking=False``, the message is refused before any of its bytes with
      :class:`~mailpump.SMTPError` of kind ``"extension-not-offered"`` (never sent over DATA,
      which would change it).

    ``options``, the connection (a missing key or ``None`` means the default in brackets):

    - ``server`` (``"localhost"``), ``port`` (25), ``domain``: the name given in EHLO
      (``"localhost"``), ``timeout``: seconds for connecting and for every single read or
      write (60).
    - ``tls``: ``"auto"`` (implicit TLS on port 465, else STARTTLS whenever offered; the
      default), ``"starttls"`` (required), ``"implicit"`` or ``"none"``. The server's
      certificate is checked against the system's trust store (``SSL_CERT_FILE`` and
      ``SSL_CERT_DIR`` when set; mailpump's bundled Mozilla roots where the system has none).
      ``cafile``: PEM certificates to trust as well, CAs or the server's own certificate
      (trusted as itself, dates and names still checked). ``fingerprint``: the server's
      certificate's SHA-256 (``"sha256:AB:..."``, or a list), accepted by its digest alone.
      ``certfile``/``keyfile``: a client certificate (PEM, chain after it; the key in
      ``certfile`` unless ``keyfile`` is given). ``verify=False`` turns certificate checks
      off. ``ssl_context``: an :class:`ssl.SSLContext`; TLS then runs through Python's
      OpenSSL (for servers rustls cannot speak to), the context deciding trust and the client
      certificate, so none of the options above may be given with it.
    - ``user`` with ``password`` (or ``oauth_token``) authenticates; ``auth`` forces a
      mechanism. ``allow_insecure_auth=True`` lets credentials cross an unencrypted connection
      to a server that is not on this machine.
    - ``helo_fallback`` (``True``): say HELO when the server does not know EHLO.
    - ``chunking`` (``True``): when the server offers CHUNKING with PIPELINING (RFC 3030),
      messages go out as ``BDAT`` chunks (no dot-stuffing), and ``send_many`` and the pool
      keep up to 16 messages in flight per connection; ``False`` forces DATA.
    - ``lmtp`` (``False``): speak LMTP (RFC 2033) to a local delivery agent: ``LHLO``, then
      after the data one verdict per recipient accepted at RCPT, each in
      ``SendResult.verdicts``; ``accepted`` holds those whose verdict was a 2xx and
      ``refused`` the others. If no recipient got a 2xx, :class:`~mailpump.SMTPDataRefused`
      (kind ``"message-refused"``) is raised with ``verdicts`` and ``refused``. If the verdicts
      stop early, :class:`~mailpump.SMTPOutcomeUnknown` carries those given (``verdicts``) and
      the recipients without one (``unknown``).
    - ``server`` may be a Unix-domain socket: ``"unix:PATH"`` or any name containing ``/``
      (``"/var/run/dovecot/lmtp"``); ``port`` is then unused, and TLS is not used over it
      (``tls="starttls"`` or ``"implicit"`` is a ``ValueError``).
    - ``create()``: returns a socket-like object used instead of a TCP socket (TLS runs over
      it).
    - ``dkim``: a :class:`DKIM` (or a dict of its arguments) that signs every message sent.

    An unknown option or a value of the wrong type raises ``TypeError``, a value the client
    cannot use (a TLS policy, a negative timeout) ``ValueError``, both before connecting.

    Recipients the server refuses are reported in the result; if all are refused nothing is
    sent and :class:`~mailpump.SMTPRecipientsRefused` is raised. A QUIT refused after the
    message was accepted does not fail the send.

    Every other failure raises a :class:`~mailpump.SMTPError` subclass carrying ``kind`` (a
    :data:`mailpump.types.ErrorKind` such as ``"connection-refused"`` or
    ``"certificate-expired"``: decide by it, not by the message) and ``transient`` (trying again
    later may succeed and cannot deliver the message twice). When the end-of-data mark was
    written and no verdict came, :class:`~mailpump.SMTPOutcomeUnknown` is raised: the message
    may have been delivered, so check before sending it again.
    """

@final
class Ticket:
    """A message submitted to a native :class:`Pool`; ``cancel()`` stops it if its end-of-data
    mark has not been written (not started: never sent; started: aborted, nothing delivered)."""

    def cancel(self) -> None:
        """Asks the pool not to send the message, or to abort it before its end-of-data mark."""
    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""

@final
class Pool:
    """The core's connection pool; use ``mailpump.Pool``, which makes futures of its outcomes.

    Worker threads (``connections``), each with at most one connection, send the queued messages
    pipelined across transactions; ``rate=(n, seconds)`` spaces messages ``seconds / n`` apart;
    failures after which the server cannot hold the message are retried ``retries`` times after
    ``backoff * 2**attempt`` seconds (at most 60). Its events go to the ``mailpump`` logger."""

    def __new__(
        cls,
        options: ConnectionOptions,
        /,
        *,
        connections: int = 4,
        max_messages: int | None = None,
        rate: tuple[int, float] | None = None,
        idle_timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        queue: int = 1024,
    ) -> Self:
        """Starts the workers; nothing connects until a message comes. ``options`` are
        ``send()``'s connection options without ``create`` (``TypeError``)."""
    def submit(
        self,
        transaction: Transaction,
        done: Callable[[SendResult | BaseException | None], object],
        /,
        *,
        block: bool = True,
    ) -> Ticket:
        """Queues `transaction` (waiting while the queue is full, unless ``block=False``);
        ``done(outcome)`` is called once from a worker thread with the result, the exception, or
        ``None`` when the message was cancelled unsent. ``RuntimeError`` once closed."""
    def close(self, wait: bool = True, join: bool = True) -> None:
        """No more messages: ``wait`` drains the queue, otherwise what has not started is
        cancelled; ``join`` waits for the workers to say QUIT and end."""
    @property
    def closed(self) -> bool:
        """Whether the pool is closed."""
    @property
    def stats(self) -> tuple[int, int, int, int, int, int]:
        """``(sent, refused, retried, failed, connections_opened, in_flight)``."""
