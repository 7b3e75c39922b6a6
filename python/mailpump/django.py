"""A Django email backend: ``EMAIL_BACKEND = "mailpump.django.EmailBackend"``.

It reads the settings Django's own SMTP backend reads (``EMAIL_HOST``, ``EMAIL_PORT``,
``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS``, ``EMAIL_USE_SSL``,
``EMAIL_TIMEOUT``, ``EMAIL_SSL_CERTFILE``, ``EMAIL_SSL_KEYFILE``), takes the same constructor
arguments (``get_connection(host=..., fail_silently=...)``), and sends what Django builds, with the
envelope Django's backend would use. A batch (``send_messages``, ``send_mass_mail``) goes over
one connection, pipelined with ``Session.send_many``.

Where it differs, on purpose: credentials are never sent over an unencrypted connection except to
a loopback address (set ``EMAIL_USE_TLS`` or ``EMAIL_USE_SSL``), and the server's certificate is
verified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage, sanitize_address

import mailpump
from mailpump.types import Transaction

__all__ = ["EmailBackend"]


class EmailBackend(BaseEmailBackend):
    """Sends Django's messages through mailpump (see the module's documentation)."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        fail_silently: bool = False,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.host: str = host or settings.EMAIL_HOST
        self.port: int = port or settings.EMAIL_PORT
        self.username: str = settings.EMAIL_HOST_USER if username is None else username
        self.password: str = settings.EMAIL_HOST_PASSWORD if password is None else password
        self.use_tls: bool = settings.EMAIL_USE_TLS if use_tls is None else use_tls
        self.use_ssl: bool = settings.EMAIL_USE_SSL if use_ssl is None else use_ssl
        self.timeout: float | None = settings.EMAIL_TIMEOUT if timeout is None else timeout
        self.ssl_keyfile: str | None = settings.EMAIL_SSL_KEYFILE if ssl_keyfile is None else ssl_keyfile
        self.ssl_certfile: str | None = (
            settings.EMAIL_SSL_CERTFILE if ssl_certfile is None else ssl_certfile
        )
        if self.use_ssl and self.use_tls:
            raise ValueError(
                "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set one of those "
                "settings to True."
            )
        self.session: mailpump.Session | None = None

    def _options(self) -> dict[str, Any]:
        # Django speaks plain SMTP unless told otherwise; so does this backend.
        tls = "implicit" if self.use_ssl else "starttls" if self.use_tls else "none"
        options: dict[str, Any] = {"tls": tls}
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.ssl_certfile:
            options["certfile"] = self.ssl_certfile
        if self.ssl_keyfile:
            options["keyfile"] = self.ssl_keyfile
        return options

    def open(self) -> bool | None:
        """Opens the connection; ``True`` when a new one was opened, as Django's backend says."""
        if self.session is not None:
            return False
        try:
            session = mailpump.open(self.host, self.port, **self._options())
            try:
                session.greet()
                if self.username and self.password:
                    session.auth(self.username, self.password)
            except BaseException:
                session.close()
                raise
        except (mailpump.SMTPError, OSError):
            if not self.fail_silently:
                raise
            return None
        self.session = session
        return True

    def close(self) -> None:
        """QUIT and close; errors are swallowed when ``fail_silently``."""
        if self.session is None:
            return
        try:
            self.session.quit()
        except (mailpump.SMTPError, OSError):
            self.session.close()
            if not self.fail_silently:
                raise
        finally:
            self.session = None

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Sends the batch over one connection; returns how many were sent."""
        messages = [m for m in email_messages if m.recipients()]
        if not messages:
            return 0
        new = self.open()
        if self.session is None:
            return 0
        sent = 0
        try:
            for outcome in self.session.send_many(self._table(m) for m in messages):
                if isinstance(outcome, BaseException):
                    if not self.fail_silently:
                        raise outcome
                else:
                    sent += 1
        except (mailpump.SMTPError, OSError):
            if not self.fail_silently:
                raise
        finally:
            if new:
                self.close()
        return sent

    @staticmethod
    def _table(message: EmailMessage) -> Transaction:
        # The envelope as Django's SMTP backend makes it: Bcc only here, never in the message.
        encoding = message.encoding or settings.DEFAULT_CHARSET
        return cast("Transaction", {
            "from": sanitize_address(message.from_email, encoding),
            "rcpt": [sanitize_address(a, encoding) for a in message.recipients()],
            "source": message.message(),
        })
