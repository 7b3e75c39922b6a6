"""Fixtures: real servers on 127.0.0.1, started per test and stopped by handle or PID.

- `pki`: a test CA, a server certificate it signs (localhost, 127.0.0.1) and two bad ones.
- `aiosmtpd_server(...)`: aiosmtpd recording every transaction; STARTTLS, implicit TLS, AUTH.
- `smtp_sink(...)`: Postfix's smtp-sink as a child process (skips locally if Postfix is missing;
  with MAILPUMP_REQUIRE_SERVERS=1, as in CI, a missing binary fails instead).
- `scripted(...)`: the scripted fault server of `servers/scripted.py`.
- `postfix()`: a private Postfix smtpd (CHUNKING, PIPELINING, DSN, SMTPUTF8) delivering to a
  maildir the test reads (`servers/postfix.py`); skips or fails as `smtp_sink` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.certs import Pki, make_pki
from servers.postfix import PostfixServer, postfix_binary
from servers.recording import RecordingServer
from servers.scripted import Script, ScriptedServer
from servers.sink import SmtpSink, sink_binary


def pytest_configure(config: pytest.Config) -> None:
    # aiosmtpd cannot tell that an implicit-TLS listener is encrypted, so AUTH there is configured
    # without its TLS requirement, and it warns about that on every connection.
    config.addinivalue_line(
        "filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning"
    )


def require_binary(path: str | None, what: str) -> str:
    """The binary's path; skip (locally) or fail (CI) when it is missing."""
    if path is not None:
        return path
    reason = f"{what} is not installed (Debian package `postfix`)"
    if os.environ.get("MAILPUMP_REQUIRE_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates made once per test run."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def aiosmtpd_server(pki: Pki) -> Iterator[Callable[..., RecordingServer]]:
    """Factory: `aiosmtpd_server(tls="starttls"|"implicit"|"none", auth=True, cert=leaf)`."""
    servers: list[RecordingServer] = []

    def start(
        tls: str = "starttls", auth: bool = True, cert: Any = None, require_starttls: bool = True
    ) -> RecordingServer:
        leaf = cert or pki.server
        if tls == "starttls":
            server = RecordingServer(
                tls_context=leaf.server_context(), auth=auth, require_starttls=require_starttls
            )
        elif tls == "implicit":
            server = RecordingServer(implicit_tls=leaf.server_context(), auth=auth)
        elif tls == "none":
            server = RecordingServer(auth=auth)
        else:
            raise ValueError(tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_sink() -> Iterator[Callable[..., SmtpSink]]:
    """Factory: `smtp_sink(dump=False, *extra_args)` starts Postfix's smtp-sink."""
    binary = require_binary(sink_binary(), "smtp-sink")
    sinks: list[SmtpSink] = []

    def start(*extra: str, dump: bool = False) -> SmtpSink:
        sink = SmtpSink(binary, *extra, dump=dump)
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.stop()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    """Factory: `scripted(Script(...))` starts a scripted server; stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(script: Script | None = None, **fields: Any) -> ScriptedServer:
        server = ScriptedServer(script or Script(**fields))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def postfix() -> Iterator[Callable[..., PostfixServer]]:
    """Factory: `postfix()` starts a private Postfix, `postfix(settings="...")` with main.cf lines
    added; each is stopped with `postfix stop` after the test."""
    binary = require_binary(postfix_binary(), "postfix")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix master runs as root (it switches to the postfix user)")
    servers: list[PostfixServer] = []

    def start(settings: str = "") -> PostfixServer:
        server = PostfixServer(binary, extra_config=settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
