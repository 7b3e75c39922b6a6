"""The types a user's checker sees: precise where it helps, and wrong code is caught.

Each case is a small program checked with ``mypy --strict`` (pyproject.toml's configuration,
which reads the package from python/ with its stub) in this process.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
from email.message import EmailMessage
from typing import assert_type

import mailpump
from mailpump import ltn12, mime, smtp
from mailpump.types import Mailt, Mesgt

part: Mesgt = {"headers": {"subject": "s", "to": ["a@example.com"]}, "body": "x"}
msg = smtp.message({
    "headers": {"subject": "report"},
    "body": {"preamble": "p", "parts": [part, mailpump.text("t"),
                                        {"body": b"raw", "encoding": "base64"}]},
})
assert_type(msg, mailpump.MessageSource)
lua = smtp.message({"body": {"preamble": "p", 1: {"body": "one"}, 2: {"body": "two"}}})
assert_type(mailpump.to_email(lua), EmailMessage)

mailt: Mailt = {"from": "a@example.com", "rcpt": ["b@example.com"], "source": msg,
                "tls": "starttls", "port": 587}
result = mailpump.send(mailt, progress=lambda sent, total: None)
assert_type(result.refused, dict[str, mailpump.Reply])
mailpump.send(from_="a@example.com", rcpt="b@example.com", source=EmailMessage(),
              tls="implicit", auth="XOAUTH2", oauth_token="t")

with mailpump.open("smtp.example.com", 587, tls="auto") as session:
    assert_type(session, mailpump.Session)
    session.auth("user", "password", mechanism="PLAIN")
    session.send({"from": "a@example.com", "rcpt": "b@example.com", "source": b"x"})
    session.send(from_="a@example.com", rcpt="b@example.com", source="x",
                 progress=lambda sent, total: None)
    session.data(b"x", progress=lambda sent, total: None)

assert_type(mime.b64(b"ab"), tuple[bytes | None, None])
assert_type(mime.b64(b"ab", b"c"), tuple[bytes | None, bytes | None])
assert_type(mime.qp(b"ab"), tuple[bytes | None, None])
assert_type(ltn12.source.string(b"x"), mailpump._mailpump.Source)
chain = ltn12.source.chain(ltn12.source.file("f.png"), mime.encode("base64"), mime.wrap())
assert_type(ltn12.pump.step(iter([b"x"]), ltn12.sink.null()), bool)
"""


def check(code: str, tmp_path: Path) -> list[str]:
    """mypy's error lines for `code` (empty when it type-checks)."""
    path = tmp_path / "case.py"
    path.write_text(textwrap.dedent(code), "utf-8")
    out, err, _ = api.run(["--config-file", str(ROOT / "pyproject.toml"), str(path)])
    assert not err, err
    return [line for line in out.splitlines() if ": error:" in line]


def test_typical_code_type_checks_with_precise_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert check(GOOD, tmp_path) == []


@pytest.mark.parametrize(
    "code",
    [
        'mailpump.send(from_="a@b.c", rcpt="d@e.f", source=b"x", tls="ssl")',
        'mailpump.open("h", 25, tls="STARTTLS")',
        'mailpump.send({"from": "a@b.c", "rcpt": "d@e.f", "source": b"x", "prot": 25})',
        'mailpump.send({"from": "a@b.c", "rcpt": 5, "source": b"x"})',
        'mailpump.send(from_=5, rcpt="d@e.f", source=b"x")',
        'mailpump.message({"bdoy": "typo"})',
        'mailpump.message({"body": "x", "encoding": "rot13"})',
        'mailpump.message({"headers": {"subject": 5}})',
        'mime.encode("rot13")',
        'mime.encode("quoted-printable", "txt")',
        'mime.wrap("fancy")',
        'mailpump.open("h", 25).auth("u", "p", mechanism="NTLM")',
        'mailpump.send(from_="a@b.c", rcpt="d@e.f", source=b"x", progress=lambda sent: None)',
        'mailpump.open("h", 25).send(from_="a@b.c", rcpt="d@e.f", source=b"x", tls="none")',
        'a, b = mime.b64(b"x")\nb.upper()',
        'ltn12.sink.list(["str"])',
    ],
)
def test_wrong_code_is_caught(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    errors = check(
        "import mailpump\nfrom mailpump import ltn12, mime\n" + code + "\n", tmp_path
    )
    # The error is reported on the code's last line (the two imports come first).
    last = 2 + code.count("\n") + 1
    assert any(f"case.py:{last}: error:" in line for line in errors), (
        errors or "accepted"
    )
