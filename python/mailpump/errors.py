"""The exceptions mailpump raises.

Every exception is a :class:`MailpumpError`. A message description that cannot be encoded safely
raises :class:`MessageError` (also a :class:`ValueError`) before any byte is produced; everything
that goes wrong while talking to a server is an :class:`SMTPError`. Exceptions raised by your own
sources and filters are not wrapped: they come back out as themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .types import ErrorKind

__all__ = [
    "MailpumpError",
    "MessageError",
    "SMTPAuthError",
    "SMTPConnectError",
    "SMTPDataRefused",
    "SMTPError",
    "SMTPOutcomeUnknown",
    "SMTPProtocolError",
    "SMTPRecipientsRefused",
    "SMTPReplyError",
    "SMTPSenderRefused",
    "SMTPTLSError",
    "SMTPTimeoutError",
]


class MailpumpError(Exception):
    """Base class of every exception mailpump raises (a Rust panic included)."""


class MessageError(MailpumpError, ValueError):
    """A message description that cannot be encoded safely.

    Raised by :func:`mailpump.message` before any byte is produced.

    Attributes:
        part: where in the message tree: ``"message"``, ``"message.parts[1]"``, ...
        header: the header at fault, as you spelled it, or ``None``.
        reason: what is wrong and what to do about it.
    """

    part: str | None
    header: str | None
    reason: str | None

    def __init__(
        self,
        message: str,
        *,
        part: str | None = None,
        header: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.part = part
        self.header = header
        self.reason = reason if reason is not None else message

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), self.__dict__))


class SMTPError(MailpumpError):
    """Anything that went wrong while talking to an SMTP server.

    The connection it happened on is closed whenever it can no longer be trusted. Decide by
    ``kind`` and ``transient``, not by the message, which is written for people and may change.

    Attributes:
        kind: what went wrong, as a stable name (:data:`mailpump.types.ErrorKind`):
            ``"connection-refused"``, ``"certificate-expired"``, ``"auth-refused"``,
            ``"recipient-refused"``, ``"outcome-unknown"``, ...
        transient: whether trying the same thing again later may succeed without delivering a
            message twice (a 4xx reply, a connection refused, lost or timed out before a
            message's end-of-data mark). Never true for :class:`SMTPOutcomeUnknown`.
    """

    kind: ErrorKind
    transient: bool
    _default_kind: ClassVar[ErrorKind] = "io"

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind if kind is not None else self._default_kind
        self.transient = bool(transient)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), self.__dict__))


class SMTPConnectError(SMTPError, ConnectionError):
    """The connection could not be made (``kind``: ``"name-not-resolved"``,
    ``"connection-refused"``, ``"unreachable"``), or it was lost or closed before a message's
    end-of-data mark (``"connection-lost"``, ``"closed"``): no message was left half-sent."""

    _default_kind: ClassVar[ErrorKind] = "connection-lost"


class SMTPTimeoutError(SMTPError, TimeoutError):
    """Connecting (``kind`` ``"connect-timeout"``) or a read or write (``"timeout"``) did not
    complete within the timeout, before any message's end-of-data mark."""

    _default_kind: ClassVar[ErrorKind] = "timeout"


class SMTPOutcomeUnknown(SMTPError):
    """The whole message was sent, end-of-data mark included, but no verdict came back: the
    connection was lost, the wait timed out, or the answer could not be understood.

    The server may well have accepted the message and be delivering it. Sending it again may
    deliver it twice: check whether it arrived (the recipient's mailbox, the server's log)
    before you do. ``kind`` is ``"outcome-unknown"`` and ``transient`` is false.

    This class is deliberately not a :class:`SMTPConnectError`, :class:`SMTPTimeoutError`,
    ``ConnectionError`` or ``TimeoutError``, so that code retrying those does not resend the
    message by accident.

    Over LMTP (``lmtp=True``) the server gives one verdict per recipient after the data; when
    they stop before the last one, those given are final and the rest are unknown.

    Attributes:
        verdicts: LMTP: each recipient that got its verdict before the failure, mapped to it (a
            :class:`~mailpump.Reply`: 2xx delivered, 4xx deferred, 5xx refused). Empty over SMTP.
        unknown: LMTP: the recipients accepted at RCPT that got no verdict; check whether they
            received the message before sending it to them again. Empty over SMTP.
    """

    _default_kind: ClassVar[ErrorKind] = "outcome-unknown"
    verdicts: Mapping[str, Any]
    unknown: list[str]

    def __init__(
        self,
        message: str,
        *,
        verdicts: Mapping[str, Any] | None = None,
        unknown: list[str] | None = None,
        kind: ErrorKind | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message, kind=kind, transient=transient)
        self.verdicts = dict(verdicts) if verdicts is not None else {}
        self.unknown = list(unknown) if unknown is not None else []


class SMTPTLSError(SMTPError):
    """TLS could not be used as the policy requires: STARTTLS not offered (``kind``
    ``"tls-not-offered"``) or refused, a certificate that cannot be trusted
    (``"certificate-unknown-issuer"``, ``"certificate-expired"``,
    ``"certificate-name-mismatch"``, ...), or a failed handshake."""

    _default_kind: ClassVar[ErrorKind] = "tls-handshake"


class SMTPAuthError(SMTPError):
    """Authentication failed or could not be attempted safely (``kind``: ``"auth-refused"``,
    ``"auth-no-mechanism"``, ``"auth-insecure"``, ``"auth-exchange"``).

    Attributes:
        code: the server's reply code when the server refused, else ``None``.
        enhanced: the enhanced status code (RFC 3463) of that reply, such as ``"5.7.8"``, or
            ``None``.
        text: the server's reply text when the server refused, else ``None``.
    """

    _default_kind: ClassVar[ErrorKind] = "auth-refused"
    code: int | None
    enhanced: str | None
    text: str | None

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        enhanced: str | None = None,
        text: str | None = None,
        kind: ErrorKind | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message, kind=kind, transient=transient)
        self.code = code
        self.enhanced = enhanced
        self.text = text


class SMTPProtocolError(SMTPError):
    """The server broke the protocol: a reply that cannot be parsed (``kind``
    ``"malformed-reply"``), one that cannot answer the command (``"unexpected-reply"``), or data
    where none belongs (``"unasked-data"``)."""

    _default_kind: ClassVar[ErrorKind] = "malformed-reply"


class SMTPReplyError(SMTPError):
    """The server answered a command with an unexpected reply.

    Attributes:
        code: the three-digit reply code (RFC 5321 §4.2).
        enhanced: the enhanced status code (RFC 3463) such as ``"5.1.1"``, or ``None``.
        text: the reply's text, its lines joined with ``"\\n"``.
        command: the command that got the reply (``"MAIL"``, ``"RCPT"``, ``"DATA"``, ...).
        transient: a 4xx reply: the same transaction may succeed later (RFC 5321 §4.2.1).
    """

    _default_kind: ClassVar[ErrorKind] = "command-refused"
    code: int
    enhanced: str | None
    text: str
    command: str | None

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        enhanced: str | None = None,
        text: str = "",
        command: str | None = None,
        kind: ErrorKind | None = None,
        transient: bool | None = None,
    ) -> None:
        if transient is None:
            transient = 400 <= code < 500
        super().__init__(message, kind=kind, transient=transient)
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.command = command

    @property
    def permanent(self) -> bool:
        """A 5xx reply: retrying the same transaction will fail again (RFC 5321 §4.2.1)."""
        return 500 <= self.code < 600


class SMTPSenderRefused(SMTPReplyError):
    """The server refused the reverse-path (``MAIL FROM``)."""

    _default_kind: ClassVar[ErrorKind] = "sender-refused"


class SMTPRecipientsRefused(SMTPReplyError):
    """Every recipient was refused; nothing was sent.

    Attributes:
        refused: each refused address mapped to the server's :class:`~mailpump.Reply`.
    """

    _default_kind: ClassVar[ErrorKind] = "recipients-refused"
    refused: Mapping[str, Any]

    def __init__(
        self,
        message: str,
        *,
        refused: Mapping[str, Any] | None = None,
        code: int = 0,
        enhanced: str | None = None,
        text: str = "",
        command: str | None = "RCPT",
        kind: ErrorKind | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(
            message,
            code=code,
            enhanced=enhanced,
            text=text,
            command=command,
            kind=kind,
            transient=transient,
        )
        self.refused = dict(refused) if refused is not None else {}


class SMTPDataRefused(SMTPReplyError):
    """The server refused ``DATA`` (``kind`` ``"data-refused"``) or, with its verdict on the
    end-of-data mark, the message (``"message-refused"``).

    Over LMTP (``lmtp=True``) it is raised when no recipient's own verdict was a 2xx: the message
    reached nobody. ``code``, ``enhanced`` and ``text`` are then the first verdict's, and
    ``transient`` says whether any recipient was deferred (4xx).

    Attributes:
        verdicts: LMTP: each recipient accepted at RCPT mapped to its verdict (a
            :class:`~mailpump.Reply`, 4xx or 5xx), in RCPT order. Empty over SMTP.
        refused: LMTP: every recipient that did not get the message, refused at RCPT or by its
            verdict, mapped to the reply. Empty over SMTP.
    """

    _default_kind: ClassVar[ErrorKind] = "data-refused"
    verdicts: Mapping[str, Any]
    refused: Mapping[str, Any]

    def __init__(
        self,
        message: str,
        *,
        verdicts: Mapping[str, Any] | None = None,
        refused: Mapping[str, Any] | None = None,
        code: int = 0,
        enhanced: str | None = None,
        text: str = "",
        command: str | None = None,
        kind: ErrorKind | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(
            message,
            code=code,
            enhanced=enhanced,
            text=text,
            command=command,
            kind=kind,
            transient=transient,
        )
        self.verdicts = dict(verdicts) if verdicts is not None else {}
        self.refused = dict(refused) if refused is not None else {}


def _rebuild(
    cls: type[MailpumpError], message: str, state: dict[str, object]
) -> MailpumpError:
    """Unpickles an exception whose constructor takes keyword-only attributes."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc
