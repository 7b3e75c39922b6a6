"""aiosmtpd's LMTP server (RFC 2033), in-process, over TCP on 127.0.0.1 or a Unix-domain socket.

aiosmtpd's `LMTP` class speaks LHLO and refuses EHLO and HELO; what follows the data is the
handler's answer. `LmtpRecorder` answers as an LMTP delivery agent does: one reply per recipient
accepted at RCPT, in RCPT order. Each recipient's reply is `250` unless `verdicts` lists others
for it: one per delivery attempt, in turn (a mailbox locked once, then free).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiosmtpd.controller import BaseController, Controller, UnixSocketController
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from .ports import free_port
from .recording import Recorder, RecorderServer


class LmtpRecorder(Recorder):
    """Records every transaction and answers one verdict per recipient."""

    def __init__(self, verdicts: dict[str, list[str]] | None = None) -> None:
        super().__init__()
        self._verdicts = {address: list(replies) for address, replies in (verdicts or {}).items()}

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        await super().handle_DATA(server, session, envelope)
        lines = []
        for address in envelope.rcpt_tos:
            queued = self._verdicts.get(address)
            lines.append(queued.pop(0) if queued else f"250 2.0.0 <{address}> delivered")
        # RFC 2033 §4.2: one reply per accepted recipient; aiosmtpd writes the lines as given.
        return "\r\n".join(lines)


class _Lmtp(BaseController):
    """Mixin for a controller: its server speaks LMTP instead of SMTP."""

    def factory(self) -> SMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


class _LmtpController(_Lmtp, Controller):
    pass


class _LmtpUnixController(_Lmtp, UnixSocketController):
    pass


class LmtpServer(RecorderServer):
    """A running aiosmtpd LMTP server: on `path` (a Unix-domain socket) when given, else on
    127.0.0.1:`port`; `smtputf8=False` leaves SMTPUTF8 out of the LHLO reply. `stop()` ends its
    thread."""

    def __init__(
        self,
        *,
        path: Path | None = None,
        verdicts: dict[str, list[str]] | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.recorder = LmtpRecorder(verdicts)
        self.path = path
        self.host = "127.0.0.1"
        self.port = 0
        kwargs: dict[str, Any] = {
            "data_size_limit": 0,
            "ready_timeout": 10.0,
            "enable_SMTPUTF8": smtputf8,
        }
        self.controller: Controller | UnixSocketController
        if path is not None:
            self.controller = _LmtpUnixController(self.recorder, unix_socket=path, **kwargs)
        else:
            self.port = free_port()
            self.controller = _LmtpController(
                self.recorder, hostname=self.host, port=self.port, **kwargs
            )
        self.controller.start()
