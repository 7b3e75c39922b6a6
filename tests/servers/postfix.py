"""A private Postfix `smtpd` on 127.0.0.1: its own configuration, queue and data directories in one
temporary directory, started with `postfix -c DIR start` and stopped with `postfix -c DIR stop`.

It offers PIPELINING, CHUNKING, DSN and SMTPUTF8 as shipped. Every message for the test domain
(`mailpump.test`) goes to one maildir through the `virtual` delivery agent, so a test reads back what
was delivered; `maillog_file` keeps Postfix's log in the directory, and the log's `disconnect` line
counts each session's commands (`bdat=N data=M`).

Facts this needs (Debian 12, Postfix 3.7, as root in a container without DAC override): the
directory must be 0755 (the `postfix` and `nobody` users enter it), `data_directory` owned by
`postfix` (the master creates its lock file there as that user), the maildir base owned by the user
`virtual` delivers as, `maillog_file_prefixes` must cover the log's path (else `postfix` refuses to
start, and says why only on a terminal), and no service is chrooted (a private queue directory holds
none of the files a chroot needs).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .ports import free_port

POSTFIX = "/usr/sbin/postfix"
DAEMONS = "/usr/lib/postfix/sbin"
DOMAIN = "mailpump.test"

# The services a private instance needs, none chrooted: smtpd on the test port, the queue manager
# and its helpers, `virtual` for delivery, and `postlog` behind `maillog_file`.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
daemon_directory = {daemons}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
# Leave the message as sent: no header rewriting or added headers for the loopback client.
local_header_rewrite_clients =
smtpd_forbid_bare_newline_exclusions =
# Every recipient in the test domain lands in one maildir, DIR/mail/box/.
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
message_size_limit = 0
virtual_mailbox_limit = 0
mailbox_size_limit = 0
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
biff = no
"""

# What `virtual` puts before the message it delivers.
PREPENDED = (b"Return-Path:", b"X-Original-To:", b"Delivered-To:", b"Received:")


def postfix_binary() -> str | None:
    """The `postfix` command, or None where Postfix is not installed."""
    ok = os.access(POSTFIX, os.X_OK) and os.access(f"{DAEMONS}/smtpd", os.X_OK)
    return POSTFIX if ok else None


def strip_delivery_headers(raw: bytes) -> bytes:
    """The message as sent (with LF line ends), without the headers delivery put before it."""
    lines = raw.split(b"\n")
    i = 0
    while i < len(lines) and (
        lines[i].startswith(PREPENDED) or (i > 0 and lines[i][:1] in (b" ", b"\t"))
    ):
        i += 1
    return b"\n".join(lines[i:])


class PostfixServer:
    """A running private Postfix; `delivered(n)` waits for and reads the maildir."""

    def __init__(
        self, binary: str = POSTFIX, *, extra_config: str = "", cpu: str | None = None
    ) -> None:
        """`extra_config`: lines appended to main.cf (the benchmarks discard mail with them);
        `cpu`: a `taskset` CPU list for the master and every process it starts."""
        self.binary = binary
        self.cpu = cpu
        self.host = "127.0.0.1"
        self.port = free_port()
        # Postfix's users must enter the directory: not pytest's private tmp_path (0700).
        self.dir = Path(tempfile.mkdtemp(prefix="mailpump-postfix-"))
        self.dir.chmod(0o755)
        self.conf = self.dir / "conf"
        self.maildir = self.dir / "mail" / "box"
        self.log = self.dir / "maillog"
        self._started = False
        nobody = pwd.getpwnam("nobody")
        postfix = pwd.getpwnam("postfix")
        for sub in ("conf", "queue", "data", "mail"):
            (self.dir / sub).mkdir(mode=0o755)
        os.chown(self.dir / "data", postfix.pw_uid, postfix.pw_gid)
        os.chown(self.dir / "mail", nobody.pw_uid, nobody.pw_gid)
        (self.conf / "main.cf").write_text(
            MAIN_CF.format(
                dir=self.dir, daemons=DAEMONS, domain=DOMAIN, uid=nobody.pw_uid, gid=nobody.pw_gid
            )
            + extra_config
        )
        (self.conf / "master.cf").write_text(MASTER_CF.format(port=self.port))
        try:
            self._postfix("start")
            self._started = True
            self._wait_greeting()
        except BaseException:
            self.stop()
            raise

    def _postfix(self, command: str) -> None:
        pin = ["taskset", "-c", self.cpu] if self.cpu is not None else []
        done = subprocess.run(
            [*pin, self.binary, "-c", str(self.conf), command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"postfix {command} exited with {done.returncode}: "
                f"{done.stderr.decode(errors='replace')}\n{self.log_text()[-3000:]}"
            )

    def _wait_greeting(self) -> None:
        # The master listens once `postfix start` returns; the first smtpd it spawns greets. Probe
        # until a 220 arrives, bounded in count and time.
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=10) as s:
                    greeting = s.recv(512)
                    if greeting.startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        s.recv(512)
                        return
                    raise RuntimeError(f"postfix greeted with {greeting!r}\n{self.log_text()}")
            except (ConnectionRefusedError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postfix did not greet\n{self.log_text()}") from None
                time.sleep(0.05)  # a readiness probe of another process, not test synchronisation

    def log_text(self) -> str:
        """Postfix's log so far (empty before postlogd wrote anything)."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                tail = self.log_text()[-4000:]
                raise AssertionError(f"postfix: no {what} within {timeout} s\n{tail}")
            time.sleep(0.02)  # polling another process's files for a condition, bounded

    def delivered(self, count: int, timeout: float = 60) -> list[bytes]:
        """Wait until `count` messages are in the maildir; each as sent (LF line ends), by
        delivery order."""
        new = self.maildir / "new"
        self._wait(
            f"{count} deliveries",
            lambda: new.is_dir() and len(os.listdir(new)) >= count,
            timeout,
        )
        files = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [strip_delivery_headers(p.read_bytes()) for p in files]

    def sessions(self, count: int, timeout: float = 30) -> list[dict[str, int]]:
        """Wait for `count` finished SMTP sessions; each one's command counts from its log line
        (`disconnect from ... ehlo=1 mail=2 rcpt=2 bdat=4 quit=1 commands=10`)."""
        pattern = re.compile(r"postfix/smtpd\[\d+\]: disconnect from \S+ (.*)$", re.M)

        def found() -> list[dict[str, int]]:
            out = []
            for match in pattern.finditer(self.log_text()):
                counts = {}
                for item in match.group(1).split():
                    name, _, value = item.partition("=")
                    counts[name] = int(value.split("/")[-1])
                out.append(counts)
            # The greeting probe's session (ehlo absent, quit=1 only) is not the test's.
            return [c for c in out if set(c) != {"quit", "commands"}]

        self._wait(f"{count} sessions", lambda: len(found()) >= count, timeout)
        return found()

    def stop(self) -> None:
        """`postfix -c DIR stop`, wait for the master to exit, remove the directory."""
        pid_file = self.dir / "queue" / "pid" / "master.pid"
        pid = None
        try:
            pid = int(pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            pass
        if self._started:
            self._started = False
            self._postfix("stop")
            if pid is not None:
                self._wait("master exit", lambda: not Path(f"/proc/{pid}").exists(), 30)
        shutil.rmtree(self.dir, ignore_errors=True)
