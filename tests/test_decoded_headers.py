"""No header value decodes to CR, LF or NUL (docs/security.md §5).

An RFC 2047 encoded-word (`=?utf-8?q?x=0D=0ABcc:_v@e.test?=`) or an RFC 2231 parameter
(`filename*=utf-8''a%0D%0Ab`) that decodes to a line break would, once a reader decodes it, be a
second field (a hidden Bcc) or a cut value. Wherever the caller's text is written as given
(References, In-Reply-To, an unquoted display name, a group name, a Content-Disposition parameter,
raw bytes) it is refused with MessageError naming the header; the same value without the line
break is accepted, and `to_email()` never returns a value holding CR or LF.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

HIDDEN = "=?utf-8?q?x=0D=0ABcc:_victim@example.test?="
HARMLESS = "=?utf-8?q?x=20Bcc:_victim@example.test?="
HIDDEN_B = "=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXhhbXBsZS50ZXN0?="

CASES: dict[str, Callable[[str], str | bytes]] = {
    "References": lambda ew: f"<a@b.c> {ew}",
    "In-Reply-To": lambda ew: ew,
    "From": lambda ew: f"{ew} <d@e.f>",
    "To": lambda ew: f"{ew}: a@b.c;",
    "Content-Disposition": lambda ew: "attachment; filename*=utf-8''a%0D%0ABcc:%20victim@example.test"
    if ew is not HARMLESS
    else "attachment; filename*=utf-8''a%20Bcc:%20victim@example.test",
    "X-Raw": lambda ew: ew.encode(),
}


def build(name: str, value: str | bytes) -> Iterable[bytes]:
    headers: dict[str, str | bytes] = {"From": "a@b.c", "To": "d@e.f", "Subject": "hi"}
    headers[name] = value
    source: Iterable[bytes] = mailpump.message({"headers": headers, "body": "hello\n"})
    return source


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("word", [HIDDEN, HIDDEN_B], ids=["q", "b"])
def test_a_value_that_decodes_to_a_line_break_is_refused(name: str, word: str) -> None:
    if name == "From" and word is HIDDEN_B:
        # A display name that is one valid phrase encoded-word is re-encoded as literal text
        # (it then decodes to "=?utf-8?b?...?="): nothing to refuse.
        parsed = mailpump.to_email(build(name, CASES[name](word)))
        assert str(parsed["From"]).startswith("=?utf-8?b?") and parsed.get_all("Bcc") is None
        return
    with pytest.raises(mailpump.MessageError) as info:
        build(name, CASES[name](word))
    assert info.value.header == name
    assert "CR, LF or NUL" in str(info.value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_same_value_without_the_line_break_is_written(name: str) -> None:
    parsed = mailpump.to_email(build(name, CASES[name](HARMLESS)))
    for key, value in parsed.items():
        assert "\r" not in str(value) and "\n" not in str(value), (key, value)
    assert parsed.get_all("Bcc") is None
