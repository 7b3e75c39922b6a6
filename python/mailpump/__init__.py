"""mailpump: build e-mail messages as a stream and send them over SMTP.

LuaSocket's ``socket.smtp``, ``mime`` and ``ltn12`` for Python, with a Rust core: messages are
encoded lazily chunk by chunk (constant memory for any attachment size) with the GIL released.

>>> import mailpump
>>> msg = mailpump.message({"headers": {"subject": "hi"}, "body": "Hello"})
>>> raw = b"".join(msg)
"""

from __future__ import annotations

from . import errors, ltn12, mime, smtp, types
from ._mailpump import (
    DKIM,
    MessageSource,
    Part,
    Reply,
    SendResult,
    __version__,
    attachment,
    text,
)
from .parts import html
from .errors import (
    MailpumpError,
    MessageError,
    SMTPAuthError,
    SMTPConnectError,
    SMTPDataRefused,
    SMTPError,
    SMTPOutcomeUnknown,
    SMTPProtocolError,
    SMTPRecipientsRefused,
    SMTPReplyError,
    SMTPSenderRefused,
    SMTPTimeoutError,
    SMTPTLSError,
)
from .pool import Pool, PoolStats, asend
from .smtp import Session, message, send, to_email

# `mailpump.open`, but not in `__all__`: `from mailpump import *` must not shadow the builtin.
from .smtp import open as open  # noqa: A004

__all__ = [
    "DKIM",
    "MailpumpError",
    "MessageError",
    "MessageSource",
    "Part",
    "Pool",
    "PoolStats",
    "Reply",
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
    "SendResult",
    "Session",
    "__version__",
    "asend",
    "attachment",
    "errors",
    "html",
    "ltn12",
    "message",
    "mime",
    "send",
    "smtp",
    "text",
    "to_email",
    "types",
]
