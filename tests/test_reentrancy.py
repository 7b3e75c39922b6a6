"""A native object called again while a call on it runs raises RuntimeError, like a running
generator's "generator already executing", instead of waiting for itself forever.

Each case runs in a child interpreter with a bounded wait: before the fix they hung, which must
fail the test rather than stall the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(120)

CASES = {
    "message": """
        def body():
            yield b"a"
            next(msg)
        msg = mailpump.message({"body": body()})
        run = lambda: b"".join(msg)
    """,
    "message-taken-by-its-body": """
        def body():
            yield b"a"
            ltn12.source.cat(msg)
        msg = mailpump.message({"body": body()})
        run = lambda: b"".join(msg)
    """,
    "source-chain": """
        def inner():
            yield b"a"
            next(src)
        src = ltn12.source.chain(inner(), mailpump.mime.normalize())
        run = lambda: b"".join(src)
    """,
    "filter-chain": """
        chain = ltn12.filter.chain(mailpump.mime.normalize(), lambda c: chain(c))
        run = lambda: chain(b"a")
    """,
    "sink": """
        class Writer:
            def write(self, chunk):
                sink(b"again")
            def close(self):
                pass
        sink = ltn12.sink.file(Writer())
        run = lambda: sink(b"a")
    """,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reentering_a_native_object_raises(case: str) -> None:
    script = (
        "import mailpump\nfrom mailpump import ltn12\n"
        + textwrap.dedent(CASES[case])
        + textwrap.dedent(
            """
            try:
                run()
            except RuntimeError as e:
                print("RuntimeError", "already running" in str(e))
            else:
                print("no error")
            """
        )
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: the call waited for itself (hung)")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "RuntimeError True"


def test_a_refused_reentrant_call_leaves_the_object_usable() -> None:
    import mailpump
    from mailpump import ltn12

    refusals: list[str] = []

    def member(chunk: bytes | None) -> bytes | None:
        if chunk and not refusals:
            try:
                outer(b"x")
            except RuntimeError as e:
                refusals.append(str(e))
        return chunk

    outer = ltn12.filter.chain(member, mailpump.mime.normalize())
    assert outer(b"b\n") + outer(None) == b"b\r\n"
    assert len(refusals) == 1 and "already running" in refusals[0]
    assert outer(b"c\n") + outer(None) == b"c\r\n"
