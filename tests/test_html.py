"""`mailpump.html()` and `attachment(..., cid=)`: the issue's newsletter in a few lines, judged by
the standard library's parser as a mail reader would see it."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

import mailpump

HTML = '<p>This month: <img src="cid:logo@news"></p>'


def newsletter() -> bytes:
    # The newsletter: text and HTML alternatives, an inline image, an attachment, Cc, Bcc
    # and Reply-To.
    msg = mailpump.message({
        "headers": {"from": "news@example.test", "to": "a@example.test", "cc": "b@example.test",
                    "bcc": "c@example.test", "reply-to": "desk@example.test", "subject": "News"},
        "body": [mailpump.html(HTML, "This month: see the logo.",
                               inline=[mailpump.attachment(b"GIF89a", "logo.gif", cid="logo@news")]),
                 mailpump.attachment(b"%PDF-1.4", "report.pdf")]})  # fmt: skip
    return b"".join(msg)


def test_newsletter_structure_as_a_mail_reader_sees_it() -> None:
    parsed = email.message_from_bytes(newsletter(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    shape = [(p.get_content_type(), p.get_content_disposition()) for p in parsed.walk()]
    assert shape == [
        ("multipart/mixed", None),
        ("multipart/alternative", None),
        ("text/plain", None),
        ("multipart/related", None),
        ("text/html", None),
        ("image/gif", "inline"),
        ("application/pdf", "attachment"),
    ]
    # A reader shows one alternative: the richest it can, the HTML.
    body = parsed.get_body(preferencelist=("html", "plain"))
    assert body is not None and body.get_content_type() == "text/html"
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None and plain.get_content().strip() == "This month: see the logo."
    # The image the HTML references by cid: is the related part with that Content-ID.
    related = next(p for p in parsed.walk() if p.get_content_type() == "multipart/related")
    assert related.get_param("type") == "text/html"
    image = next(p for p in related.iter_parts() if p["Content-ID"])
    assert image["Content-ID"] == "<logo@news>" and image.get_content() == b"GIF89a"
    assert "cid:logo@news" in body.get_content()
    attachments = [p.get_filename() for p in parsed.iter_attachments()]
    assert attachments == ["report.pdf"]


def test_html_alone_and_with_text_only() -> None:
    alone = email.message_from_bytes(b"".join(mailpump.message(mailpump.html("<b>hi</b>"))),
                                     policy=email.policy.default)  # fmt: skip
    assert alone.get_content_type() == "text/html" and alone.get_content_charset() == "utf-8"
    both = email.message_from_bytes(b"".join(mailpump.message(mailpump.html("<b>hé</b>", "hé"))),
                                    policy=email.policy.default)  # fmt: skip
    assert [p.get_content_type() for p in both.iter_parts()] == ["text/plain", "text/html"]
    assert [p.get_content().strip() for p in both.iter_parts()] == ["hé", "<b>hé</b>"]


@pytest.mark.parametrize("cid", ["", "a b", "<x>", "caf\u00e9", "a\r\nBcc: x"])
def test_a_bad_content_id_is_refused(cid: str) -> None:
    with pytest.raises(mailpump.MessageError, match="Content-ID"):
        mailpump.attachment(b"x", "x.gif", cid=cid)
