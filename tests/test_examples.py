"""The Rust crate's examples (crates/mailpump/examples) run against aiosmtpd on loopback.

`cargo run --example` builds them first (the debug build `cargo test` already made, shared
through CARGO_TARGET_DIR). Without cargo on PATH these tests skip, unless
MAILPUMP_REQUIRE_SERVERS=1 (CI), where that fails.
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from servers.certs import Pki
from servers.recording import PASSWORD, USER, RecordingServer

ROOT = Path(__file__).resolve().parent.parent


def cargo_example(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    cargo = shutil.which("cargo")
    if cargo is None:
        if os.environ.get("MAILPUMP_REQUIRE_SERVERS") == "1":
            pytest.fail("cargo is not on PATH")
        pytest.skip("cargo is not on PATH")
    done = subprocess.run(
        [
            cargo,
            "run",
            "--quiet",
            "--locked",
            "-p",
            "mailpump",
            "--example",
            name,
            "--",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


# The first run may compile the examples.
pytestmark = pytest.mark.timeout(1800)


def test_send_example_with_starttls_and_auth(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    out = cargo_example(
        "send", "--server", "localhost", "--port", str(server.port), "--tls", "starttls",
        "--cafile", str(pki.ca), "--user", USER, "--to", "you@example.com",
        "--subject", "from the example",
        env={"MAILPUMP_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert "accepted: you@example.com" in out
    [received] = server.messages
    assert received.tls and received.auth_user == USER
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    assert msg["Subject"] == "from the example"
    assert [p.get_filename() for p in msg.iter_attachments()] == ["figures.csv"]


def test_attachment_example_streams_a_file(
    aiosmtpd_server: Callable[..., RecordingServer], tmp_path: Path
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "big.bin").write_bytes(payload)
    out = cargo_example("attachment", "--port", str(server.port), "--tls", "none",
                        "--file", str(tmp_path / "big.bin"))  # fmt: skip
    assert "reply: 250" in out
    [received] = server.messages
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    [attached] = list(msg.iter_attachments())
    assert attached.get_filename() == "big.bin"
    assert attached.get_payload(decode=True) == payload


def test_reuse_example_sends_many_over_one_connection(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    out = cargo_example(
        "reuse", "--port", str(server.port), "--tls", "none", "--count", "5"
    )
    assert out.count(": 250") == 5
    received = server.messages
    assert len(received) == 5
    assert len({r.peer for r in received}) == 1, "all five over one connection"
