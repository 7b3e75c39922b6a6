"""aiosmtpd with the extensions its stock `SMTP` refuses: DSN (RFC 3461) parameters are taken
and recorded (stock aiosmtpd answers any MAIL or RCPT parameter it does not know with 555), and
SMTPUTF8 is offered or not. Every transaction is kept with its MAIL and RCPT parameters as the
client wrote them (aiosmtpd upper-cases them)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from .recording import free_port

DSN_PARAMETERS = ("RET", "ENVID", "NOTIFY", "ORCPT")


@dataclasses.dataclass(frozen=True)
class Transaction:
    """One transaction as the server stored it."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: list[list[str]]
    """Each recipient's parameters, in the order of `rcpt_tos`."""
    data: bytes


class Handler:
    """Keeps every transaction; records each RCPT's own parameters."""

    def __init__(self, dsn: bool) -> None:
        self.dsn = dsn
        self._lock = threading.Lock()
        self.transactions: list[Transaction] = []
        self._rcpt_options: list[list[str]] = []

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        session.host_name = hostname
        if self.dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        envelope.rcpt_tos.append(address)
        self._rcpt_options.append(list(rcpt_options))
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content
        assert isinstance(content, bytes)
        with self._lock:
            self.transactions.append(
                Transaction(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    mail_options=list(envelope.mail_options),
                    rcpt_options=self._rcpt_options,
                    data=content,
                )
            )
            self._rcpt_options = []
            return f"250 2.0.0 Ok: queued as Q{len(self.transactions)}"


class DsnSMTP(SMTP):
    """Takes the DSN parameters on MAIL and RCPT; they stay in the recorded options."""

    def _getparams(self, params: Sequence[str]) -> dict[str, str | bool] | None:
        result = super()._getparams(params)
        if result is not None:
            for key in DSN_PARAMETERS:
                result.pop(key, None)
        return result


class _Controller(Controller):
    def factory(self) -> SMTP:
        return DsnSMTP(self.handler, **self.SMTP_kwargs)


class ExtendedServer:
    """A running aiosmtpd on 127.0.0.1 offering DSN when `dsn`, SMTPUTF8 when `smtputf8`."""

    def __init__(self, *, dsn: bool = True, smtputf8: bool = True) -> None:
        self.handler = Handler(dsn)
        self.host = "127.0.0.1"
        self.port = free_port()
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": "localhost",
            "enable_SMTPUTF8": smtputf8,
            "ready_timeout": 10.0,
        }
        self.controller = _Controller(self.handler, **kwargs)
        self.controller.start()

    @property
    def transactions(self) -> list[Transaction]:
        with self.handler._lock:
            return list(self.handler.transactions)

    def stop(self) -> None:
        self.controller.stop()
