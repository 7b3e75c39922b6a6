"""aiosmtpd, run in-process on 127.0.0.1, recording every transaction it accepts.

aiosmtpd's `Controller` needs a real free port (its readiness probe connects to the port it was
given; port 0 fails it), so the port is picked by binding a throwaway socket first.
"""

from __future__ import annotations

import dataclasses
import ssl
import threading
from typing import Any

from aiosmtpd.controller import BaseThreadedController, Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .ports import free_port as free_port

USER = "mailpump-user"
PASSWORD = "s3cret pass"  # a space: it must survive PLAIN and LOGIN intact


@dataclasses.dataclass(frozen=True)
class Received:
    """One transaction as the server stored it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    """The message bytes after the server removed the dot-stuffing and the end-of-data mark."""
    mail_options: list[str]
    peer: tuple[str, int]
    """The client's address: equal for two messages sent over one connection."""
    tls: bool
    auth_user: str | None


class Recorder:
    """aiosmtpd handler: keeps every accepted transaction, answers with a queue id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self.connections = 0

    @property
    def messages(self) -> list[Received]:
        """A snapshot of the transactions received so far."""
        with self._lock:
            return list(self._messages)

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return responses

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        with self._lock:
            self._messages.append(
                Received(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=content,
                    mail_options=list(envelope.mail_options),
                    peer=tuple(session.peer),  # type: ignore[arg-type]
                    tls=session.ssl is not None
                    or (
                        server.transport is not None
                        and server.transport.get_extra_info("ssl_object") is not None
                    ),
                    auth_user=session.auth_data,
                )
            )
            queue_id = f"Q{len(self._messages):06d}"
        return f"250 2.0.0 Ok: queued as {queue_id}"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Accept exactly USER / PASSWORD, by PLAIN or LOGIN."""
    if isinstance(auth_data, LoginPassword):
        user = auth_data.login.decode("utf-8", "replace")
        if user == USER and auth_data.password.decode("utf-8", "replace") == PASSWORD:
            # Without auth_data, session.auth_data stays empty (docs/benchmarking.md).
            return AuthResult(success=True, auth_data=user)
    return AuthResult(success=False, handled=False)


class RecorderServer:
    """What a running aiosmtpd with a `Recorder` offers: its transactions and `stop()`."""

    recorder: Recorder
    controller: BaseThreadedController

    @property
    def messages(self) -> list[Received]:
        """Every transaction received so far."""
        return self.recorder.messages

    def stop(self) -> None:
        """Stop the server's event loop and thread."""
        self.controller.stop()


class RecordingServer(RecorderServer):
    """A running aiosmtpd with a `Recorder`; `stop()` ends its thread."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        auth: bool = False,
        require_starttls: bool = False,
        smtputf8: bool = True,
    ) -> None:
        self.recorder = Recorder()
        self.host = "127.0.0.1"
        self.port = free_port()
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": "localhost",
            "data_size_limit": 0,  # aiosmtpd's default is 32 MiB
            "ready_timeout": 10.0,
            "enable_SMTPUTF8": smtputf8,
        }
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
            kwargs["require_starttls"] = require_starttls
        if implicit_tls is not None:
            kwargs["ssl_context"] = implicit_tls
        if auth:
            kwargs["authenticator"] = authenticator
            kwargs["auth_required"] = True
            # PLAIN/LOGIN in clear only where no TLS is offered at all.
            kwargs["auth_require_tls"] = tls_context is not None
        self.controller = Controller(self.recorder, **kwargs)
        self.controller.start()
