"""The exceptions mailpump raises.

Every exception is a :class:`MailpumpError`. A message description that cannot be encoded safely
raises :class:`MessageError` (also a :class:`ValueError`) before any byte is produced; everything
that goes wrong while talking to a server is an :class:`SMTPError`. Exceptions raised by your own
sources and filters are not wrapped: they come back out as themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MailpumpError",
    "MessageError",
    "SMTPAuthError",
    "SMTPConnectError",
    "SMTPDataRefused",
    "SMTPError",
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

    The connection it happened on is closed whenever it can no longer be trusted.
    """


class SMTPConnectError(SMTPError, ConnectionError):
    """The connection was refused, reset or closed by the peer, at any stage."""


class SMTPTimeoutError(SMTPError, TimeoutError):
    """An I/O operation did not complete within the timeout."""


class SMTPTLSError(SMTPError):
    """TLS failed: handshake, certificate verification, or STARTTLS required but not offered."""


class SMTPAuthError(SMTPError):
    """Authentication failed or could not be attempted safely.

    Attributes:
        code: the server's reply code when the server refused, else ``None``.
        text: the server's reply text when the server refused, else ``None``.
    """

    code: int | None
    text: str | None

    def __init__(
        self, message: str, *, code: int | None = None, text: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.text = text

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), self.__dict__))


class SMTPProtocolError(SMTPError):
    """The server's reply could not be parsed, or data arrived where none belongs."""


class SMTPReplyError(SMTPError):
    """The server answered a command with an unexpected reply.

    Attributes:
        code: the three-digit reply code (RFC 5321 §4.2).
        enhanced: the enhanced status code (RFC 3463) such as ``"5.1.1"``, or ``None``.
        text: the reply's text, its lines joined with ``"\\n"``.
        command: the command that got the reply (``"MAIL"``, ``"RCPT"``, ``"DATA"``, ...).
    """

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
    ) -> None:
        super().__init__(message)
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.command = command

    @property
    def transient(self) -> bool:
        """A 4xx reply: the same transaction may succeed later (RFC 5321 §4.2.1)."""
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        """A 5xx reply: retrying the same transaction will fail again (RFC 5321 §4.2.1)."""
        return 500 <= self.code < 600

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), str(self), self.__dict__))


class SMTPSenderRefused(SMTPReplyError):
    """The server refused the reverse-path (``MAIL FROM``)."""


class SMTPRecipientsRefused(SMTPReplyError):
    """Every recipient was refused; nothing was sent.

    Attributes:
        refused: each refused address mapped to the server's :class:`~mailpump.Reply`.
    """

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
    ) -> None:
        super().__init__(
            message, code=code, enhanced=enhanced, text=text, command=command
        )
        self.refused = dict(refused) if refused is not None else {}


class SMTPDataRefused(SMTPReplyError):
    """The server refused ``DATA`` or the message after its end-of-data mark."""


def _rebuild(
    cls: type[MailpumpError], message: str, state: dict[str, object]
) -> MailpumpError:
    """Unpickles an exception whose constructor takes keyword-only attributes."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    return exc
