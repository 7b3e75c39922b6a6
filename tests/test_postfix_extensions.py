"""DSN (RFC 3461) and SMTPUTF8 (RFC 6531) against a real MTA: a private Postfix smtpd that delivers
every message for the test domain to one maildir. The reports Postfix writes land there too (the
sender is in the test domain), so a test reads what a user would get back: the delivery status
notification, parsed by Python's `email` package."""

from __future__ import annotations

import email
from collections.abc import Callable
from email import policy
from email.message import EmailMessage

import pytest
from servers.postfix import DOMAIN, PostfixServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

BODY = "Subject: extensions\nMessage-ID: <ext@mailpump.test>\n\nhello\n"


def send(server: PostfixServer, rcpt: list[str], **kw: object) -> object:
    return mailpump.send(from_=f"s@{DOMAIN}", rcpt=rcpt, source=BODY,
                         server=server.host, port=server.port, tls="none", **kw)  # fmt: skip


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def reports(messages: list[bytes]) -> list[EmailMessage]:
    parsed = [parse(m) for m in messages]
    return [m for m in parsed if m.get_content_type() == "multipart/report"]


def status_fields(report: EmailMessage) -> list[dict[str, str]]:
    """The per-message and per-recipient field groups of the report's delivery-status part
    (the `email` package parses each group as a header block)."""
    [part] = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"]
    groups = part.get_payload()
    assert isinstance(groups, list)
    blocks = [group for group in groups if not isinstance(group, str)]
    return [{name.lower(): str(value) for name, value in block.items()} for block in blocks]


def test_a_success_report_carries_envid_orcpt_and_headers_only(
    postfix: Callable[..., PostfixServer],
) -> None:
    server = postfix()
    first, second = f"r1@{DOMAIN}", f"r2@{DOMAIN}"
    send(server, [first, second], dsn={
        "ret": "hdrs", "envid": "order 42+", "notify": ["success"],
        "recipients": {second: {"notify": "never"}, first: {"orcpt": f"old@{DOMAIN}"}},
    })  # fmt: skip
    # Two copies of the message and one report to the sender.
    [report] = reports(server.delivered(3))
    assert report["To"] == f"s@{DOMAIN}"
    envelope, *recipients = status_fields(report)
    # ENVID went out xtext-encoded ("order+2042+2B") and came back decoded.
    assert envelope["original-envelope-id"] == "order 42+"
    # Only the recipient that asked for a success report is in it; NEVER kept the other out.
    [recipient] = recipients
    assert recipient["final-recipient"] == f"rfc822; {first}"
    assert recipient["original-recipient"].replace(" ", "") == f"rfc822;old@{DOMAIN}"
    assert recipient["action"] == "delivered"
    # RET=HDRS: the report returns the header of the message, not the message.
    returned = [p for p in report.walk() if p.get_content_type() == "text/rfc822-headers"]
    assert len(returned) == 1


def test_utf8_addresses_reach_the_mailbox_with_smtputf8(
    postfix: Callable[..., PostfixServer],
) -> None:
    server = postfix()
    result = send(server, [f"zoë@{DOMAIN}"])
    assert isinstance(result, mailpump.SendResult)
    [message] = server.delivered(1)
    assert message.endswith(b"\n\nhello\n")
    assert f"to=<zoë@{DOMAIN}>" in server.log_text()


def test_without_smtputf8_domains_become_a_labels(postfix: Callable[..., PostfixServer]) -> None:
    a_label = f"xn--bcher-kva.{DOMAIN}"
    server = postfix(f"smtputf8_enable = no\nvirtual_mailbox_domains = {DOMAIN}, {a_label}\n")
    result = send(server, [f"r@bücher.{DOMAIN}"])
    assert isinstance(result, mailpump.SendResult)
    server.delivered(1)
    assert f"to=<r@{a_label}>" in server.log_text()


def test_without_smtputf8_a_utf8_local_part_sends_no_transaction(
    postfix: Callable[..., PostfixServer],
) -> None:
    server = postfix("smtputf8_enable = no\n")
    with pytest.raises(ValueError, match="SMTPUTF8"):
        send(server, [f"r@{DOMAIN}", f"zoë@{DOMAIN}"])
    # The client learnt the server's extensions and left: no MAIL, no RCPT.
    [session] = server.sessions(1)
    assert "mail" not in session and "rcpt" not in session, session
