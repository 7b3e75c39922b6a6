"""`mailpump.django.EmailBackend` driven by Django's own `send_mail`, `send_mass_mail` and
`EmailMultiAlternatives` against aiosmtpd, compared with what Django's SMTP backend delivers for
the same calls: the same envelope, the same headers that matter, the same parts."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
from servers.recording import Received, RecordingServer

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.core import mail  # noqa: E402

import mailpump  # noqa: E402

OURS = "mailpump.django.EmailBackend"
DJANGOS = "django.core.mail.backends.smtp.EmailBackend"

if not settings.configured:
    settings.configure(EMAIL_BACKEND=OURS, DEFAULT_FROM_EMAIL="site@example.test")


@pytest.fixture
def server(aiosmtpd_server: Callable[..., RecordingServer]) -> Iterator[RecordingServer]:
    server = aiosmtpd_server(tls="none", auth=False)
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 10
    yield server


def shape(got: Received) -> tuple[object, ...]:
    parsed = email.message_from_bytes(got.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    headers = tuple(parsed.get(h) for h in ("From", "To", "Cc", "Bcc", "Reply-To", "Subject"))
    parts = tuple((p.get_content_type(), p.get_payload(decode=True)) for p in parsed.walk()
                  if not p.is_multipart())  # fmt: skip
    return got.mail_from, sorted(got.rcpt_tos), headers, parsed.get_content_type(), parts


def both(server: RecordingServer, send: Callable[[str], object]) -> list[tuple[object, ...]]:
    """What arrives when `send` goes through Django's backend, then through ours, side by side."""
    send(DJANGOS)
    first = len(server.messages)
    send(OURS)
    reference = [shape(m) for m in server.messages[:first]]
    ours = [shape(m) for m in server.messages[first:]]
    assert ours == reference
    return ours


def test_send_mail(server: RecordingServer) -> None:
    got = both(server, lambda backend: mail.send_mail(
        "Relatório", "Olá", "Site <site@example.test>", ["a@example.test", "B <b@example.test>"],
        connection=mail.get_connection(backend), html_message="<p>Olá</p>"))  # fmt: skip
    assert len(got) == 1 and got[0][3] == "multipart/alternative"


def test_send_mass_mail(server: RecordingServer) -> None:
    datatuple = [(f"s{i}", f"body {i}", "site@example.test", [f"r{i}@example.test"])
                 for i in range(5)]  # fmt: skip
    counts = []
    got = both(server, lambda backend: counts.append(
        mail.send_mass_mail(datatuple, connection=mail.get_connection(backend))))  # fmt: skip
    assert counts == [5, 5] and len(got) == 5


def test_email_multi_alternatives_with_cc_bcc_reply_to_and_attachment(
    server: RecordingServer,
) -> None:
    def send(backend: str) -> None:
        msg = mail.EmailMultiAlternatives(
            "News", "text", "site@example.test", ["a@example.test"], cc=["c@example.test"],
            bcc=["hidden@example.test"], reply_to=["desk@example.test"],
            connection=mail.get_connection(backend))  # fmt: skip
        msg.attach_alternative("<p>html</p>", "text/html")
        msg.attach("report.csv", "a,b\n1,2\n", "text/csv")
        msg.send()

    (got,) = both(server, send)
    assert "hidden@example.test" in got[1]  # type: ignore[operator]
    for m in server.messages:
        assert b"hidden@example.test" not in m.data


def test_fail_silently_and_the_default_backend(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = server.host, server.port, 10
    assert mail.send_mail("s", "b", None, ["a@example.test"]) == 1  # EMAIL_BACKEND is ours
    assert len(server.messages) == 1
    # A port nothing listens on: the connection is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        settings.EMAIL_PORT = s.getsockname()[1]
    assert mail.send_mail("s", "b", None, ["a@example.test"], fail_silently=True) == 0
    with pytest.raises(mailpump.SMTPError):
        mail.send_mail("s", "b", None, ["a@example.test"])
