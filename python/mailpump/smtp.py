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
from typing import Any

from . import _mailpump
from ._mailpump import MessageSource

__all__ = ["DOMAIN", "PORT", "SERVER", "TIMEOUT", "ZONE", "message", "open", "send"]

DOMAIN: str = os.environ.get("SERVER_NAME") or "localhost"
PORT: int = 25
SERVER: str = "localhost"
TIMEOUT: float = 60
ZONE: str | None = None


def message(mesgt: Any, *, chunk_size: int = 65536) -> MessageSource:
    """Describes a message; returns a :class:`~mailpump.MessageSource` of its bytes.

    See :func:`mailpump._mailpump.message` for the description's format. The description is
    validated at once (a :class:`~mailpump.MessageError` is raised before any byte); nothing is
    read or encoded until the result is iterated.
    """
    return _mailpump.message(mesgt, chunk_size=chunk_size, zone=ZONE)


def send(mailt: Any = None, /, **kw: Any) -> Any:
    """Sends a message (not available in this build yet)."""
    raise NotImplementedError("mailpump.send is not available in this build yet")


def open(
    server: str | None = None,
    port: int | None = None,
    create: Any = None,
    **options: Any,
) -> Any:
    """Opens an SMTP session (not available in this build yet)."""
    raise NotImplementedError("mailpump.open is not available in this build yet")
