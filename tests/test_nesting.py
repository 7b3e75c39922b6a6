"""Deep nesting never crashes the interpreter (docs/errors.md "Nesting").

Each case runs in a child interpreter: before the fix these died of SIGSEGV (stack overflow), which
would have killed pytest itself. Nesting past the documented 100 levels is refused with
`MessageError` (message parts) or `ValueError` (sources and filters); a flat chain of any length
works, and so does nesting up to the limit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(120)


def run_child(body: str) -> str:
    """Runs `body` in a fresh interpreter; returns its stdout. A crash fails the test with the
    signal that killed the child."""
    script = "import mailpump\nfrom mailpump import ltn12\n" + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    return done.stdout.strip()


REFUSED = """
try:
    result = build()
except (mailpump.MessageError, ValueError) as e:
    print(type(e).__name__, "100" in str(e))
else:
    print("accepted")
"""


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            'm = {"body": "leaf"}\nfor _ in range(6000): m = {"body": [m]}\nreturn mailpump.message(m)',
            "MessageError True",
        ),
        (
            'm = {"body": "leaf"}\nfor _ in range(10000): m = {"body": {1: m}}\nreturn mailpump.message(m)',
            "MessageError True",
        ),
        (
            'm = {"body": "leaf"}\nfor _ in range(10000): m = {"body": {"parts": [m]}}\n'
            "return mailpump.message(m)",
            "MessageError True",
        ),
        (
            'm = mailpump.message({"body": "leaf"})\n'
            'for _ in range(100000): m = mailpump.message({"body": m})\nreturn m',
            "MessageError True",
        ),
        (
            's = ltn12.source.string(b"x")\nfor _ in range(100000): s = ltn12.source.cat(s)\nreturn s',
            "ValueError True",
        ),
        (
            's = ltn12.source.string(b"x")\n'
            "for _ in range(100000): s = ltn12.source.chain(s, mailpump.mime.normalize())\nreturn s",
            "ValueError True",
        ),
        (
            "f = mailpump.mime.normalize()\nfor _ in range(100000): f = ltn12.filter.chain(f)\nreturn f",
            "ValueError True",
        ),
    ],
    ids=["list", "lua-keys", "parts", "message-sources", "cat", "source-chain", "filter-chain"],
)
def test_deep_nesting_is_refused_not_a_crash(build: str, expected: str) -> None:
    code = "def build():\n" + textwrap.indent(build, "    ") + "\n" + REFUSED
    assert run_child(code) == expected


def test_nesting_up_to_the_limit_works() -> None:
    out = run_child(
        """
        m = {"body": "leaf"}
        for _ in range(99): m = {"body": [m]}
        data = b"".join(mailpump.message(m))
        s = ltn12.source.string(b"x")
        for _ in range(98): s = ltn12.source.cat(s)
        print(data.count(b"leaf"), b"".join(s))
        """
    )
    assert out == "1 b'x'"


def test_a_flat_filter_chain_of_any_length_works() -> None:
    out = run_child(
        """
        chain = ltn12.filter.chain(*[lambda c: c for _ in range(200_000)])
        print(chain(b"abc") + chain(None))
        src = ltn12.source.chain(ltn12.source.string(b"de"), chain)
        print(b"".join(src))
        del chain, src
        print("dropped")
        """
    )
    assert out.splitlines() == ["b'abc'", "b'de'", "dropped"]
