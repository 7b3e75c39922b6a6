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
    from ssl import SSLContext

    from ._mailpump import DKIM, MessageSource, Part, Source

__all__ = [
    "AuthMechanism",
    "AuthOptions",
    "Body",
    "BodySource",
    "Codec",
    "ConnectionOptions",
    "DkimOptions",
    "Dsn",
    "DsnEvent",
    "DsnRecipient",
    "ErrorKind",
    "HeaderValue",
    "Mailt",
    "Mesgt",
    "Multipart",
    "OpenOptions",
    "PoolConnectionOptions",
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


ErrorKind: TypeAlias = Literal[
    # SMTPConnectError: no connection, or it is gone (before a message's end-of-data mark)
    "name-not-resolved",
    "connection-refused",
    "unreachable",
    "connection-lost",
    "closed",
    # SMTPTimeoutError
    "connect-timeout",
    "no-greeting",
    "timeout",
    # SMTPOutcomeUnknown: the end-of-data mark went out and no verdict came
    "outcome-unknown",
    # SMTPTLSError
    "tls-not-offered",
    "tls-refused",
    "certificate-unknown-issuer",
    "certificate-expired",
    "certificate-name-mismatch",
    "certificate-self-signed",
    "certificate-fingerprint-mismatch",
    "certificate-revoked",
    "certificate-invalid",
    "tls-no-common-protocol",
    "tls-client-certificate-required",
    "tls-server-failed",
    "tls-plain-port",
    "tls-handshake",
    "tls-config",
    "tls-not-built",
    # SMTPAuthError
    "auth-no-mechanism",
    "auth-refused",
    "auth-insecure",
    "auth-exchange",
    # SMTPProtocolError
    "malformed-reply",
    "unexpected-reply",
    "unasked-data",
    # SMTPReplyError and its subclasses: which step the server refused
    "greeting-refused",
    "hello-refused",
    "sender-refused",
    "recipient-refused",
    "data-refused",
    "message-refused",
    "command-refused",
    "recipients-refused",
    # the rest
    "size-exceeded",
    "extension-not-offered",
    "invalid-input",
    "source-failed",
    "invalid-message",
    "io",
]
"""``SMTPError.kind``: what went wrong, as a stable name a program can branch on (the message
is for people). ``"outcome-unknown"`` means the message may have been delivered: check before
sending it again."""


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


class OpenOptions(TypedDict, total=False):
    """The keywords ``open()`` takes besides ``server``, ``port`` and ``create``: how to talk to
    the server (``None`` means the default)."""

    tls: Tls | None
    timeout: float | None
    cafile: str | PathLike[str] | None
    """PEM certificates to trust besides the system's: CAs, and server certificates trusted as
    themselves (a self-signed one, whether or not it says ``CA:TRUE``; its dates and names are
    still checked)."""
    verify: bool | None
    """``False`` accepts any certificate for any name: an explicit, dangerous opt-out."""
    certfile: str | PathLike[str] | None
    """A client certificate (PEM) followed by its chain, and its key unless ``keyfile`` is given,
    as ``ssl.SSLContext.load_cert_chain`` takes them."""
    keyfile: str | PathLike[str] | None
    """The client certificate's private key (PEM), when it is not in ``certfile``."""
    fingerprint: str | Sequence[str] | None
    """The server certificate's SHA-256 fingerprint (``"sha256:AB:CD:..."``, as ``openssl x509
    -noout -fingerprint -sha256`` prints it), or several: the certificate is accepted by its
    digest alone, and no other is."""
    ssl_context: SSLContext | None
    """TLS through this :class:`ssl.SSLContext` (Python's OpenSSL) instead of mailpump's rustls,
    as smtplib's ``context=`` takes it: for servers rustls cannot speak to (TLS 1.2 with only CBC
    or DHE suites) and for contexts you already have. The context decides trust and the client
    certificate, so ``cafile``, ``verify``, ``certfile``, ``keyfile`` and ``fingerprint`` cannot
    be given with it."""
    domain: str | None
    helo_fallback: bool | None
    allow_insecure_auth: bool | None
    chunking: bool | None
    """``False`` sends every message after DATA even when the server offers CHUNKING (by default
    a server offering CHUNKING with PIPELINING gets ``BDAT`` chunks, several messages in flight)."""
    lmtp: bool | None
    """``True`` speaks LMTP (RFC 2033) to a local delivery agent (Dovecot, Cyrus): ``LHLO``
    instead of EHLO (no HELO fallback), and after the data one verdict per recipient, in
    ``SendResult.verdicts``. Messages go out after DATA, never as ``BDAT`` chunks."""
    dkim: DKIM | DkimOptions | None
    """Signs every message sent with DKIM (RFC 6376): a :class:`mailpump.DKIM`, made once (its key
    parsed once), or a dict of its arguments."""


class _DkimRequired(TypedDict):
    domain: str
    selector: str
    key: bytes | str | PathLike[str]


class DkimOptions(_DkimRequired, total=False):
    """``mailpump.DKIM``'s arguments as a dict, for ``dkim=``."""

    headers: Sequence[str] | None
    canonicalization: str
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] | None
    expiration: float | None


class AuthOptions(TypedDict, total=False):
    """The credentials ``send()`` takes: ``user`` with ``password`` or ``oauth_token`` (for
    XOAUTH2); ``auth`` forces a mechanism. A session authenticates with ``Session.auth()``."""

    user: str | None
    password: str | None
    oauth_token: str | None
    auth: AuthMechanism | None


class ConnectionOptions(OpenOptions, AuthOptions, total=False):
    """Every option of a connection, the one list the others derive from: where to connect
    (``server``, ``port`` or a ``create()`` socket), the :class:`OpenOptions` and the
    :class:`AuthOptions` (``None`` means the default)."""

    server: str | None
    port: int | None
    create: Callable[[], SocketLike] | None


class PoolConnectionOptions(OpenOptions, AuthOptions, total=False):
    """The connection keywords ``Pool()`` takes besides ``server`` and ``port``: the
    :class:`OpenOptions` and the :class:`AuthOptions` (no ``create``: the pool's worker threads
    open their own connections)."""


DsnEvent: TypeAlias = Literal["success", "failure", "delay"]
"""An event a delivery status notification reports (RFC 3461 §4.1)."""


class DsnRecipient(TypedDict, total=False):
    """One recipient's own DSN parameters (``Dsn["recipients"]``)."""

    notify: Literal["never"] | DsnEvent | Sequence[DsnEvent] | None
    orcpt: str | None


class Dsn(TypedDict, total=False):
    """Delivery status notifications asked for (RFC 3461), a message's ``dsn`` key.

    - ``ret``: ``"full"`` (the whole message) or ``"hdrs"`` (its header) in a failure report.
    - ``envid``: an identifier of yours returned in every report (1 to 100 printable ASCII).
    - ``notify``: for every recipient, ``"never"`` or any of ``"success"``, ``"failure"``,
      ``"delay"`` (a list, or one string with commas); ``"never"`` stands alone.
    - ``recipients``: ``{address: {"notify": ..., "orcpt": original_address}}`` for single
      recipients (each must be one of ``rcpt``).
    - ``optional``: ``True`` sends the message without these parameters when the server does
      not offer DSN; ``False`` (the default) raises ``ValueError``
      before any byte of the message.

    Values are xtext-encoded on the wire; bad values raise ``ValueError`` before any I/O.
    """

    ret: Literal["full", "hdrs"] | None
    envid: str | None
    notify: Literal["never"] | DsnEvent | Sequence[DsnEvent] | None
    recipients: Mapping[str, DsnRecipient] | None
    optional: bool | None


class TransactionOptions(TypedDict, total=False):
    """The keywords ``Session.send()`` takes besides ``from_``, ``rcpt`` and ``source``."""

    step: Step | None
    progress: Progress | None
    dsn: Dsn | None
    binarymime: bool | None


class SendOptions(ConnectionOptions, TransactionOptions, total=False):
    """The keywords ``send()`` takes besides ``from_``, ``rcpt`` and ``source``: the
    :class:`ConnectionOptions` and the :class:`TransactionOptions` (``None`` means the default,
    mostly from the ``mailpump.smtp`` constants)."""


_Envelope = TypedDict(
    "_Envelope",
    {"from": str, "rcpt": "str | Sequence[str]", "source": "SmtpSource"},
    total=False,
)


class Transaction(_Envelope, TransactionOptions, total=False):
    """One transaction for ``Session.send()``: ``source`` (needed, in the dict or as the keyword
    ``source=``), ``from`` and ``rcpt`` (``from_=``, ``rcpt=``; taken from the header of an
    ``EmailMessage`` or ``message()`` source when left out) and, optionally, ``step`` and
    ``progress``."""


class Mailt(Transaction, ConnectionOptions, total=False):
    """LuaSocket's ``mailt`` table, ``send()``'s dict: a :class:`Transaction` (``from``,
    ``rcpt``, ``source``; ``from`` and ``rcpt`` may come from the message's header) and the
    :class:`ConnectionOptions` (``None`` means the default)."""
