"""The README's main command, `python -m mailpump demo`, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")


@pytest.mark.parametrize("args", [["--print"], []])
def test_demo_runs_and_shows_the_seed_message(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mailpump", "demo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "Here is a message with attachments" in done.stdout
    assert "image/png" in done.stdout
    if not args:  # the sending demo also shows the dialogue and what the server stored
        assert "250" in done.stdout + done.stderr
