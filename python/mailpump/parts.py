"""Parts for the common shapes of an HTML message, composable with :func:`~mailpump.text` and
:func:`~mailpump.attachment`.

:func:`html` gives the body a mail reader shows as one message: the text and HTML versions as
``multipart/alternative`` (RFC 2046 §5.1.4: the plain version first, the preferred one last), and
the HTML with the images it references by ``cid:`` as ``multipart/related`` (RFC 2387). Inline
images are ``attachment(..., cid=...)``: the same part, shown inline under a Content-ID.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._mailpump import Part, text
from .types import Mesgt

__all__ = ["html"]


def html(html: str, text_version: str | None = None, *, inline: Sequence[Part] = ()) -> Mesgt:
    """An HTML body: ``html`` (``text/html``), with ``text_version`` as its plain-text
    alternative when given, and the ``inline`` parts (made by ``attachment(..., cid="logo")``,
    referenced in the HTML as ``<img src="cid:logo">``) beside it in a ``multipart/related``.

    The result is a part description: use it as a message's body, or as one part of a
    ``multipart/mixed`` body next to attachments.

    >>> import mailpump
    >>> body = mailpump.html("<p>Hi <img src='cid:logo'></p>", "Hi",
    ...                      inline=[mailpump.attachment(b"GIF89a", "logo.gif", cid="logo")])
    >>> body["headers"]["content-type"]
    'multipart/alternative'
    """
    rich: Mesgt = {"headers": {"content-type": 'text/html; charset="utf-8"'}, "body": html}
    if inline:
        rich = {
            "headers": {"content-type": 'multipart/related; type="text/html"'},
            "body": [rich, *inline],
        }
    if text_version is None:
        return rich
    return {
        "headers": {"content-type": "multipart/alternative"},
        "body": [text(text_version), rich],
    }
