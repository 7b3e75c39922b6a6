"""LuaSocket's ``socket.smtp``: describe a message with :func:`message`, send it with :func:`send`.

The module constants are read at call time, so assigning them changes every later call:

``DOMAIN``
    the name to greet the server with (EHLO); ``$SERVER_NAME`` or ``"localhost"``.
``PORT``
    the default port, 25.
``SERVER``
    the default server, ``"localhost"``.
``TIMEOUT``
    the timeout, in seconds, of every I/O operation, 60.
``ZONE``
    the zone of the default ``Date`` header, such as ``"+0200"``; ``None`` (the default) uses
    the machine's real local offset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from email.message import EmailMessage
from email.parser import BytesFeedParser
from email.policy import default as _default_policy
from typing import TYPE_CHECKING, Any, cast, overload

from . import _mailpump
from ._mailpump import MessageSource, Part, SendResult
from .types import Transaction

if TYPE_CHECKING:
    from typing import Unpack

    from .errors import SMTPError

    from .types import (
        ConnectionOptions,
        Mailt,
        Mesgt,
        OpenOptions,
        SendOptions,
        SmtpSource,
        SocketLike,
        TransactionOptions,
    )

__all__ = [
    "DOMAIN",
    "PORT",
    "SERVER",
    "TIMEOUT",
    "ZONE",
    "Session",
    "message",
    "open",
    "send",
    "to_email",
]

DOMAIN: str = os.environ.get("SERVER_NAME") or "localhost"
PORT: int = 25
SERVER: str = "localhost"
TIMEOUT: float = 60
ZONE: str | None = None


def message(mesgt: Mesgt | Part, *, chunk_size: int = 65536) -> MessageSource:
    """Describes a message; returns a :class:`~mailpump.MessageSource` of its bytes.

    See :func:`mailpump._mailpump.message` for the description's format. The description is
    validated at once (a :class:`~mailpump.MessageError` is raised before any byte); nothing is
    read or encoded until the result is iterated.
    """
    return _mailpump.message(mesgt, chunk_size=chunk_size, zone=ZONE)


_TRANSACTION_KEYS = Transaction.__optional_keys__


def _table(mailt: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> dict[str, Any]:
    """LuaSocket's table from a dict and keywords: keywords win, ``from_`` is ``from``."""
    table = dict(mailt or {})
    for key, value in kw.items():
        table["from" if key == "from_" else key] = value
    return table


def _connection(options: dict[str, Any]) -> ConnectionOptions:
    """The options with this module's constants for ``server``, ``port``, ``domain`` and
    ``timeout`` where they are missing or ``None``, read now."""
    defaults = {"server": SERVER, "port": PORT, "domain": DOMAIN, "timeout": TIMEOUT}
    for key, default in defaults.items():
        if options.get(key) is None:
            options[key] = default
    return cast("ConnectionOptions", options)


@overload
def send(
    mailt: Mailt,
    /,
    *,
    from_: str = ...,
    rcpt: str | Iterable[str] = ...,
    source: SmtpSource = ...,
    **kw: Unpack[SendOptions],
) -> SendResult: ...
@overload
def send(
    mailt: None = None,
    /,
    *,
    from_: str = ...,
    rcpt: str | Iterable[str] = ...,
    source: SmtpSource,
    **kw: Unpack[SendOptions],
) -> SendResult: ...
def send(mailt: Mailt | Mapping[str, Any] | None = None, /, **kw: Any) -> SendResult:
    """Sends one message over a new connection (LuaSocket's ``smtp.send``).

    Takes LuaSocket's table as a dict, ``send({"from": ..., "rcpt": ..., "source": ...})``, or
    keywords (``from_=``, ``rcpt=``, ``source=``), or both (keywords win). See the stub
    (``mailpump._mailpump.send``) for every key; :class:`mailpump.types.Mailt` types the dict.
    ``server``, ``port``, ``domain`` and ``timeout`` default to this module's constants, read
    now.

    ``progress=callable(sent, total)`` is called from the sending thread as the body goes out
    (``total`` is ``None`` when the size is not known in advance, as for a message being
    encoded); raising from it aborts the message without its end-of-data mark, and the
    exception propagates.

    Without ``from_`` or ``rcpt``, an ``EmailMessage`` or :func:`message` source gives them from
    its header, as ``smtplib.send_message`` does: ``Sender`` or ``From``, and ``To``, ``Cc`` and
    ``Bcc`` (the ``Resent-`` fields when present). ``Bcc`` and ``Resent-Bcc`` are never sent.
    """
    options = _table(mailt, kw)
    transaction = {key: options.pop(key) for key in _TRANSACTION_KEYS & options.keys()}
    return _mailpump.send(cast("Transaction", transaction), _connection(options))


class Session(_mailpump.Session):
    """An SMTP session over one connection, made by :func:`open`; see
    :class:`mailpump._mailpump.Session` for its methods. This class adds the keyword spelling
    of :meth:`send`."""

    __slots__ = ()

    @overload
    def send(
        self,
        mailt: Transaction,
        /,
        *,
        from_: str = ...,
        rcpt: str | Iterable[str] = ...,
        source: SmtpSource = ...,
        **kw: Unpack[TransactionOptions],
    ) -> SendResult: ...
    @overload
    def send(
        self,
        mailt: None = None,
        /,
        *,
        from_: str = ...,
        rcpt: str | Iterable[str] = ...,
        source: SmtpSource,
        **kw: Unpack[TransactionOptions],
    ) -> SendResult: ...
    def send(self, mailt: Transaction | None = None, /, **kw: Any) -> SendResult:
        """One transaction (MAIL, RCPT for each recipient, DATA; pipelined when offered) with
        ``send()``'s keys ``from`` (or ``from_``), ``rcpt``, ``source``, ``step`` and
        ``progress``, as a dict or keywords (keywords win)."""
        if kw or mailt is None:
            mailt = cast("Transaction", _table(mailt, kw))
        # The dict alone (the common case in a sending loop) goes straight to the native method.
        return _mailpump.Session.send(self, mailt)

    def send_many(
        self, mailts: Iterable[Transaction | Mapping[str, Any]], /
    ) -> Iterator[SendResult | SMTPError]:
        """Many messages, pipelined across transactions; see
        :meth:`mailpump._mailpump.Session.send_many`. A table may spell ``from`` as ``from_``."""
        return _mailpump.Session.send_many(self, map(_from_key, mailts))


def _from_key(mailt: Transaction | Mapping[str, Any]) -> Transaction:
    """The table with a ``from_`` key spelled ``from``, as :meth:`Session.send`'s keyword."""
    if "from_" not in mailt:
        return cast("Transaction", mailt)
    return cast("Transaction", _table(None, mailt))


def open(
    server: str | None = None,
    port: int | None = None,
    create: Callable[[], SocketLike] | None = None,
    **options: Unpack[OpenOptions],
) -> Session:
    """Opens an SMTP session: a context manager sending many messages over one connection.

    ``options``: ``tls``, ``timeout``, ``cafile``, ``verify``, ``certfile``, ``keyfile``,
    ``fingerprint``, ``ssl_context``, ``domain``, ``helo_fallback``, ``allow_insecure_auth``,
    ``chunking``, ``lmtp``, ``dkim`` (a :class:`~mailpump.DKIM` signing every message the session
    sends); ``server``, ``port``, ``domain`` and ``timeout`` default to this
    module's constants, read now. Nothing is read from the server until ``greet()``.
    """
    return Session(
        _connection({"server": server, "port": port, "create": create, **options})
    )


def to_email(source: Iterable[bytes]) -> EmailMessage:
    """Parses a message into an :class:`email.message.EmailMessage`, to inspect it with the
    standard library (``msg["Subject"]``, ``msg.iter_attachments()``, ...).

    ``source`` is a :class:`~mailpump.MessageSource` or any iterable of ``bytes`` chunks; it is
    consumed (a native source is spent afterwards, as when it is sent). The chunks are fed to
    :class:`email.parser.BytesFeedParser` (policy ``email.policy.default``) as they come, but
    the result holds the whole message in memory: use it for inspection, not for sending a huge
    one (send the ``MessageSource`` itself for that).

    >>> import mailpump
    >>> msg = mailpump.to_email(mailpump.message({"headers": {"subject": "hi"}, "body": "Hello"}))
    >>> msg["Subject"], msg.get_content()
    ('hi', 'Hello')
    """
    parser = BytesFeedParser(policy=_default_policy)
    for chunk in source:
        parser.feed(chunk)
    msg = parser.close()
    # The default policy's message factory is EmailMessage.
    assert isinstance(msg, EmailMessage)
    return msg

