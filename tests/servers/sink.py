"""Postfix's `smtp-sink`, started as a child process on 127.0.0.1 and stopped by its PID.

As root, smtp-sink needs `-u nobody`. With `-d DIR/%H%M%S.` it saves every transaction to its own
file: the envelope as `X-*-Args:` lines, a `Received:` header, then the message with its line ends
turned into LF and the dot-stuffing removed, then one empty line.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .recording import free_port

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"


def sink_binary() -> str | None:
    """The smtp-sink binary, or None where Postfix is not installed."""
    return SMTP_SINK if os.access(SMTP_SINK, os.X_OK) else shutil.which("smtp-sink")


@dataclasses.dataclass(frozen=True)
class Dump:
    """One transaction smtp-sink saved."""

    mail_from: str
    rcpt_tos: list[str]
    mail_args: str
    message: bytes
    """The message with LF line ends, as the sink stored it."""


def parse_dump(raw: bytes) -> Dump:
    """Split a `-d` file into the envelope and the message."""
    lines = raw.split(b"\n")
    mail_args, rcpts = "", []
    i = 0
    while lines[i].startswith((b"X-Client-", b"X-Helo-Args:", b"X-Mail-Args:", b"X-Rcpt-Args:")):
        name, _, value = lines[i].decode().partition(": ")
        if name == "X-Mail-Args":
            mail_args = value
        elif name == "X-Rcpt-Args":
            rcpts.append(value.split()[0])
        i += 1
    assert lines[i].startswith(b"Received: "), raw[:500]
    i += 1
    while lines[i].startswith(b"\t"):
        i += 1
    message = b"\n".join(lines[i:])
    assert message.endswith(b"\n\n") or message == b"\n", raw[-100:]
    return Dump(
        mail_from=mail_args.split()[0] if mail_args else "",
        rcpt_tos=rcpts,
        mail_args=mail_args,
        message=message[:-1],
    )


class SmtpSink:
    """A running smtp-sink; `messages()` reads what it dumped (when started with a dump dir)."""

    def __init__(self, binary: str, *extra: str, dump: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.dump_dir: Path | None = None
        args = [binary]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        if dump:
            # smtp-sink writes as `nobody`, who cannot enter pytest's private tmp_path: use a
            # directory of its own under the system temp dir, removed by stop().
            self.dump_dir = Path(tempfile.mkdtemp(prefix="mailpump-sink-"))
            self.dump_dir.chmod(0o777)
            args += ["-d", f"{self.dump_dir}/%H%M%S."]
        args += [*extra, f"{self.host}:{self.port}", "1000"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_listening()

    def _wait_listening(self) -> None:
        # smtp-sink signals nothing when it is ready; probe the port, bounded in count and time.
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"smtp-sink exited with {self.process.returncode}: {err}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("smtp-sink did not listen within 10 s") from None
                time.sleep(0.01)  # a readiness probe of another process, not test synchronisation

    def messages(self) -> list[Dump]:
        """Every transaction dumped so far, by file time then name: dumps written within one tick
        of the file system's clock come in no particular order."""
        assert self.dump_dir is not None, "start the sink with a dump directory"
        files = sorted(self.dump_dir.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [parse_dump(p.read_bytes()) for p in files]

    def stop(self) -> None:
        """Terminate the sink by its PID and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        if self.dump_dir is not None:
            shutil.rmtree(self.dump_dir, ignore_errors=True)
