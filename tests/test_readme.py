"""Every ```python block of the README and of docs/*.md runs, in order (each document as one
script), against local servers.

The conventions the blocks follow are in readme_examples.py: servers named in the blocks are
redirected to aiosmtpd on 127.0.0.1 (``send``, ``open`` and ``Pool``) (port 465 or ``tls="implicit"`` to an implicit-TLS listener,
anything else to a STARTTLS one, the test CA as ``cafile``, any credentials accepted; with
``lmtp=True``, to aiosmtpd's LMTP server on a Unix-domain socket), and the files the blocks name
are made in the directory they run in.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import mailpump
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from mailpump import smtp
from mailpump.__main__ import main as command_line
from mailpump.__main__ import small_png
from readme_examples import (
    README,
    ROOT,
    blocks,
    command_files,
    documents,
    mailpump_commands,
    python_blocks,
    relative_files,
)
from servers.certs import Pki
from servers.lmtp import LmtpServer
from servers.recording import Received, Recorder, free_port

if TYPE_CHECKING:
    from mailpump.types import Mailt


def accept_anyone(
    server: SMTP, session: object, envelope: object, mechanism: str, auth_data: object
) -> AuthResult:
    """The README's credentials are placeholders: any user and password log in."""
    if isinstance(auth_data, LoginPassword):
        return AuthResult(
            success=True, auth_data=auth_data.login.decode("utf-8", "replace")
        )
    return AuthResult(success=False, handled=False)


class Local:
    """An aiosmtpd on 127.0.0.1 with STARTTLS (required) or implicit TLS, and AUTH."""

    def __init__(self, pki: Pki, *, implicit: bool) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        kwargs: dict[str, Any] = {
            "hostname": "127.0.0.1",
            "port": self.port,
            "server_hostname": "localhost",
            "authenticator": accept_anyone,
            "auth_required": True,
            "data_size_limit": 0,
            "ready_timeout": 10.0,
        }
        if implicit:
            # aiosmtpd cannot tell that this listener is encrypted (see conftest.py).
            kwargs.update(
                ssl_context=pki.server.server_context(), auth_require_tls=False
            )
        else:
            kwargs.update(
                tls_context=pki.server.server_context(), require_starttls=True
            )
        self.controller = Controller(self.recorder, **kwargs)
        self.controller.start()

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def local_servers(pki: Pki) -> Iterator[tuple[Local, Local]]:
    starttls = Local(pki, implicit=False)
    try:
        implicit = Local(pki, implicit=True)
    except BaseException:
        starttls.stop()
        raise
    yield starttls, implicit
    starttls.stop()
    implicit.stop()


@pytest.fixture
def local_lmtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LmtpServer]:
    """aiosmtpd's LMTP server on a Unix-domain socket, for the blocks that say ``lmtp=True``."""
    server = LmtpServer(path=tmp_path_factory.mktemp("lmtp") / "lmtp.sock")
    yield server
    server.stop()


def redirect(
    monkeypatch: pytest.MonkeyPatch,
    pki: Pki,
    starttls: Local,
    implicit: Local,
    lmtp: LmtpServer | None = None,
) -> None:
    """Points `send` and `open` at the local servers, keeping the TLS mode each block asked
    for (the port decides it under tls="auto"); LMTP to `lmtp`'s socket."""
    original_send, original_open = smtp.send, smtp.open

    def to_lmtp(options: dict[str, Any]) -> bool:
        """Sends the connection to the LMTP server's socket when the block asks for LMTP."""
        if not options.get("lmtp") or lmtp is None or lmtp.path is None:
            return False
        options.update(server=str(lmtp.path), port=None)
        return True

    def trust(options: dict[str, Any]) -> dict[str, Any]:
        """The test CA: as `cafile`, or loaded into the block's own `ssl_context`."""
        context = options.get("ssl_context")
        if context is None:
            return {"cafile": str(pki.ca)}
        context.load_verify_locations(str(pki.ca))
        return {}

    def target(port: object, tls: object) -> tuple[Local, str]:
        mode = tls or "auto"
        if mode == "implicit" or (mode == "auto" and port == 465):
            return implicit, "implicit"
        return starttls, str(mode)

    def send(mailt: Any = None, /, **kw: Any) -> mailpump.SendResult:
        args: dict[str, Any] = dict(mailt or {})
        for key, value in kw.items():
            args["from" if key == "from_" else key] = value
        if to_lmtp(args):
            return original_send(cast("Mailt", args))
        server, mode = target(args.get("port") or smtp.PORT, args.get("tls"))
        args.update(server="localhost", port=server.port, tls=mode, **trust(args))
        return original_send(cast("Mailt", args))

    def open_(
        server: str | None = None,
        port: int | None = None,
        create: Any = None,
        **options: Any,
    ) -> mailpump.Session:
        if to_lmtp(options):
            return original_open(options.pop("server"), options.pop("port"), create, **options)
        local, mode = target(port or smtp.PORT, options.get("tls"))
        options.update(tls=mode, **trust(options))
        return original_open("localhost", local.port, create, **options)

    for module in (mailpump, smtp):
        monkeypatch.setattr(module, "send", send)
        monkeypatch.setattr(module, "open", open_)

    original_pool = mailpump.Pool

    class Pool(original_pool):  # type: ignore[valid-type,misc]
        def __init__(
            self, server: str | None = None, port: int | None = None, **kw: Any
        ) -> None:
            if to_lmtp(kw):
                super().__init__(kw.pop("server"), kw.pop("port"), **kw)
                return
            local, mode = target(port or smtp.PORT, kw.get("tls"))
            kw.update(tls=mode, **trust(kw))
            super().__init__("localhost", local.port, **kw)

    monkeypatch.setattr(mailpump, "Pool", Pool)


def make_file(path: Path) -> None:
    if path.suffix == ".png":
        path.write_bytes(small_png())
    elif path.suffix in (".txt", ".csv", ".html", ".pem"):
        path.write_text(f"made for the README's examples: {path.name}\n", "utf-8")
    else:
        path.write_bytes(b"%made for the README's examples\n" + bytes(range(256)) * 64)


def test_readme_has_python_blocks() -> None:
    assert len(python_blocks(README.read_text("utf-8"))) >= 2


WITH_PYTHON = [d for d in documents() if python_blocks(d.read_text("utf-8"))]


@pytest.mark.parametrize("document", WITH_PYTHON, ids=lambda d: d.name)
def test_every_python_block_runs(
    document: Path,
    local_servers: tuple[Local, Local],
    local_lmtp: LmtpServer,
    pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    starttls, implicit = local_servers
    redirect(monkeypatch, pki, starttls, implicit, local_lmtp)
    monkeypatch.chdir(tmp_path)
    found = python_blocks(document.read_text("utf-8"))
    for block in found:
        for name in relative_files(block.code):
            if not (tmp_path / name).exists():
                make_file(tmp_path / name)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    for block in found:
        before = len(starttls.messages) + len(implicit.messages) + len(local_lmtp.messages)
        where = f"{document.name}:{block.line}"
        code = compile(block.code, where, "exec")
        try:
            exec(code, namespace)  # noqa: S102 (the documents' own examples)
        except Exception as e:
            raise AssertionError(f"the Python block at {where} failed: {e!r}") from e
        if "send(" in block.code:
            after = len(starttls.messages) + len(implicit.messages) + len(local_lmtp.messages)
            assert after > before, f"the block at {where} delivered nothing"
    capsys.readouterr()
    for received in [*starttls.messages, *implicit.messages]:
        # Every message the examples sent went over TLS, authenticated, and parses cleanly.
        assert received.auth_user is not None
        msg = email.message_from_bytes(received.data, policy=email.policy.default)
        assert not msg.defects, msg.defects
    for received in local_lmtp.messages:
        msg = email.message_from_bytes(received.data, policy=email.policy.default)
        assert not msg.defects, msg.defects


def test_every_mailpump_command_runs(
    local_servers: tuple[Local, Local],
    pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    starttls, implicit = local_servers
    monkeypatch.chdir(tmp_path)
    commands = mailpump_commands(README.read_text("utf-8"))
    assert commands, "the README shows no mailpump command"
    for command in commands:
        for name in command_files(command):
            if not (tmp_path / name).exists():
                make_file(tmp_path / name)
        monkeypatch.setenv("MAILPUMP_PASSWORD", "placeholder")
        for name, value in command.env.items():
            monkeypatch.setenv(name, value)
        argv = list(command.argv)
        if argv[:1] == ["send"]:
            port = argv[argv.index("--port") + 1] if "--port" in argv else "25"
            tls = argv[argv.index("--tls") + 1] if "--tls" in argv else "auto"
            to_implicit = tls == "implicit" or (tls == "auto" and port == "465")
            local = implicit if to_implicit else starttls
            # argparse keeps an option's last value: these win over the README's.
            argv += [
                "--server",
                "localhost",
                "--port",
                str(local.port),
                "--cafile",
                str(pki.ca),
            ]
            if to_implicit:
                argv += ["--tls", "implicit"]
        code = command_line(argv)
        _, err = capfd.readouterr()
        assert code == 0, (
            f"README line {command.line}: mailpump {' '.join(command.argv)}\n{err}"
        )


def test_rust_blocks_are_the_crate_readmes() -> None:
    # `cargo test --doc` compiles crates/mailpump/README.md (lib.rs includes it); the top-level
    # README cannot be included from the crate (it lies outside the package), so each of its
    # Rust blocks must be one of the crate README's, word for word.
    crate_readme = ROOT / "crates" / "mailpump" / "README.md"
    compiled = {b.code.strip() for b in blocks(crate_readme.read_text("utf-8"))}
    for block in blocks(README.read_text("utf-8")):
        if block.language == "rust":
            assert block.code.strip() in compiled, (
                f"the Rust block at README.md line {block.line} is not in {crate_readme} "
                "(where `cargo test --doc` compiles it): copy it there, or copy one from there"
            )
