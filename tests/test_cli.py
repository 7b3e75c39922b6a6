"""`mailpump send`: the command line against real servers on loopback, its exit codes and hints."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailpump import cli
from mailpump.__main__ import main
from mailpump.errors import (
    MailpumpError,
    SMTPAuthError,
    SMTPConnectError,
    SMTPDataRefused,
    SMTPError,
    SMTPOutcomeUnknown,
    SMTPProtocolError,
    SMTPRecipientsRefused,
    SMTPTimeoutError,
    SMTPTLSError,
)
from servers.certs import Pki
from servers.extended import ExtendedServer
from servers.recording import PASSWORD, USER, RecordingServer, free_port
from servers.scripted import Fault, ScriptedServer

TIMEOUT = SMTPTimeoutError("timed out waiting for the server's reply", kind="timeout")
GARBAGE = SMTPProtocolError("SMTP protocol error: not an SMTP reply", kind="malformed-reply")
FROM = "sender@example.com"
TO = "rcpt@example.com"


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def run(*argv: str) -> int:
    return main(["send", *argv])


def test_sends_text_attachment_cc_and_hidden_bcc(
    aiosmtpd_server: Callable[..., RecordingServer],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = aiosmtpd_server(tls="none", auth=False)
    payload = bytes(range(256)) * 40
    (tmp_path / "data.bin").write_bytes(payload)
    (tmp_path / "body.txt").write_text(
        "Olá,\r\n.a line with a leading dot\r\n", "utf-8"
    )
    code = run(
        "--server", server.host, "--port", str(server.port), "--tls", "none",
        "--from", f"Sender <{FROM}>", "--to", TO, "--cc", "cc@example.com",
        "--bcc", "hidden@example.com", "--subject", "Relatório",
        "--header", "X-Ticket: 42", "--body-file", str(tmp_path / "body.txt"),
        "--attach", str(tmp_path / "data.bin"),
    )  # fmt: skip
    out, err = capfd.readouterr()
    assert code == cli.EXIT_OK, err
    assert out.startswith("sent: 250")
    [received] = server.messages
    assert received.mail_from == FROM
    assert received.rcpt_tos == [TO, "cc@example.com", "hidden@example.com"]
    msg = parse(received.data)
    assert msg["Subject"] == "Relatório"
    assert msg["X-Ticket"] == "42"
    assert msg["Cc"] == "cc@example.com"
    assert "hidden@example.com" not in received.data.decode("ascii", "replace")
    text_part, attached = list(msg.iter_parts())
    assert isinstance(text_part, EmailMessage) and isinstance(attached, EmailMessage)
    assert (
        text_part.get_content().replace("\r\n", "\n")
        == "Olá,\n.a line with a leading dot\n"
    )
    assert attached.get_filename() == "data.bin"
    assert attached.get_payload(decode=True) == payload


def test_starttls_auth_with_password_from_the_environment(
    aiosmtpd_server: Callable[..., RecordingServer],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    monkeypatch.setenv(cli.PASSWORD_ENV, PASSWORD)
    code = run(
        "--server", "localhost", "--port", str(server.port), "--tls", "starttls",
        "--cafile", str(pki.ca), "--user", USER, "--from", FROM, "--to", TO,
        "--body", "hi", "--verbose",
    )  # fmt: skip
    out, err = capfd.readouterr()
    assert code == cli.EXIT_OK, err
    [received] = server.messages
    assert received.tls and received.auth_user == USER
    # --verbose: the transcript on stderr, the password nowhere in it.
    assert "STARTTLS" in err and "AUTH" in err
    assert PASSWORD not in err and PASSWORD not in out


def test_wrong_password_exits_5_with_a_hint(
    aiosmtpd_server: Callable[..., RecordingServer],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    monkeypatch.setenv(cli.PASSWORD_ENV, "wrong")
    code = run(
        "--server", "localhost", "--port", str(server.port), "--cafile", str(pki.ca),
        "--user", USER, "--from", FROM, "--to", TO, "--body", "hi",
    )  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_AUTH
    assert f"${cli.PASSWORD_ENV}" in err
    assert server.messages == []


def test_user_without_password_and_terminal_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(cli.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 (closed by pytest)
    code = run("--port", str(free_port()), "--user", "u", "--from", FROM, "--to", TO)
    _, err = capfd.readouterr()
    assert code == cli.EXIT_USAGE
    assert cli.PASSWORD_ENV in err


def test_dry_run_prints_the_message_and_connects_nowhere(
    capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    (tmp_path / "page.html").write_text("<p>hé</p>", "utf-8")
    port = free_port()  # nothing listens there: a connection attempt would fail
    code = run(
        "--port", str(port), "--from", FROM, "--to", TO, "--bcc", "hidden@example.com",
        "--subject", "s", "--body", "plain", "--html-file", str(tmp_path / "page.html"),
        "--dry-run",
    )  # fmt: skip
    out, _ = capfdbinary.readouterr()
    assert code == cli.EXIT_OK
    msg = parse(out)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Bcc"] is None and b"hidden@" not in out
    plain, html = list(msg.iter_parts())
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert plain.get_content() == "plain"
    assert html.get_content_type() == "text/html"
    assert html.get_content() == "<p>hé</p>"


def test_dry_run_shows_the_envelope_a_send_uses(
    aiosmtpd_server: Callable[..., RecordingServer],
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    # Standard error: MAIL FROM and each RCPT TO as the client writes them, Bcc marked, before
    # the message; standard output stays the message alone. The same arguments sent for real
    # give the server that envelope.
    server = aiosmtpd_server(tls="none", auth=False)
    argv = [
        "--server", server.host, "--port", str(server.port), "--tls", "none",
        "--from", f"Sender <{FROM}>", "--to", TO, "--cc", "cc@example.com",
        "--bcc", "Hidden <hidden@example.com>", "--subject", "s", "--body", "b",
    ]  # fmt: skip
    assert run(*argv, "--dry-run") == cli.EXIT_OK
    out, err = capfdbinary.readouterr()
    assert err.decode().splitlines() == [
        f"MAIL FROM:<{FROM}>",
        f"RCPT TO:<{TO}>",
        "RCPT TO:<cc@example.com>",
        "RCPT TO:<hidden@example.com>   (bcc)",
    ]
    assert b"hidden@" not in out and parse(out)["Cc"] == "cc@example.com"
    assert server.messages == []
    assert run(*argv) == cli.EXIT_OK
    [received] = server.messages
    assert received.mail_from == FROM
    assert received.rcpt_tos == [TO, "cc@example.com", "hidden@example.com"]


def test_dry_run_refuses_a_bad_envelope_address(
    capfd: pytest.CaptureFixture[str],
) -> None:
    code = run("--from", FROM, "--to", TO, "--bcc", "a@example.com\r\nDATA", "--dry-run")
    out, err = capfd.readouterr()
    assert code == cli.EXIT_USAGE
    assert out == "" and "RCPT" not in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--from", FROM, "--body", "x"], "no recipient"),
        (
            ["--from", FROM, "--to", TO, "--attach", "/nonexistent/file"],
            "/nonexistent/file",
        ),
        (["--from", FROM, "--to", TO, "--header", "no colon"], "Name: value"),
        (["--from", FROM, "--to", TO, "--header", "Bcc: x@example.com"], "--bcc"),
        (["--from", FROM, "--to", TO, "--header", "X-A: b\rc"], "X-A"),
        (["--from", "a@example.com\r\nRCPT TO:<x@example.com>", "--to", TO], "from"),
        (["--from", FROM, "--bcc", "b@example.com\r\nDATA"], "not valid"),
    ],
)
def test_usage_errors_exit_2_before_connecting(
    argv: list[str], needle: str, capfd: pytest.CaptureFixture[str]
) -> None:
    code = run("--port", str(free_port()), "--tls", "none", *argv)
    _, err = capfd.readouterr()
    assert code == cli.EXIT_USAGE
    assert needle in err


def test_argparse_errors_exit_2(capfd: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--to", TO],  # no --from
        ["--from", FROM, "--to", TO, "--body", "a", "--body-file", "b"],
        ["--from", FROM, "--to", TO, "--tls", "ssl"],
        ["--from", FROM, "--to", TO, "--port", "70000"],
    ):
        with pytest.raises(SystemExit) as exc:
            run(*argv)
        assert exc.value.code == cli.EXIT_USAGE
    capfd.readouterr()


def test_every_recipient_refused_exits_3(
    scripted: Callable[..., ScriptedServer], capfd: pytest.CaptureFixture[str]
) -> None:
    server = scripted(replies={"rcpt": "550 5.1.1 No such user"})
    code = run("--port", str(server.port), "--server", server.host, "--tls", "none",
               "--from", FROM, "--to", TO, "--body", "x")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_REFUSED
    assert "550" in err and "check the recipients" in err
    [conn] = server.finished()
    assert conn.transactions == []


def test_some_recipients_refused_exits_1_and_lists_them(
    scripted: Callable[..., ScriptedServer], capfd: pytest.CaptureFixture[str]
) -> None:
    server = scripted(rcpt_replies={"bad@example.com": "550 5.1.1 No such user"})
    code = run("--port", str(server.port), "--server", server.host, "--tls", "none",
               "--from", FROM, "--to", TO, "--to", "bad@example.com", "--body", "x")  # fmt: skip
    out, err = capfd.readouterr()
    assert code == cli.EXIT_PARTIAL
    assert out.startswith("sent: 250")
    assert "refused: bad@example.com: 550" in err


def test_temporary_refusal_says_try_again(
    scripted: Callable[..., ScriptedServer], capfd: pytest.CaptureFixture[str]
) -> None:
    server = scripted(replies={"mail": "451 4.3.0 Try later"})
    code = run("--port", str(server.port), "--server", server.host, "--tls", "none",
               "--from", FROM, "--to", TO, "--body", "x")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_REFUSED
    assert "try again later" in err


def test_connection_refused_exits_4(capfd: pytest.CaptureFixture[str]) -> None:
    code = run("--server", "127.0.0.1", "--port", str(free_port()),
               "--from", FROM, "--to", TO, "--body", "x")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_NETWORK
    assert "127.0.0.1" in err


def test_plain_text_client_on_an_implicit_tls_port_gets_the_tls_hint(
    scripted: Callable[..., ScriptedServer], pki: Pki, capfd: pytest.CaptureFixture[str]
) -> None:
    # An SMTPS listener says nothing until the TLS handshake: a STARTTLS client waits for a
    # greeting that never comes (the 465-with-starttls mix-up on another port number).
    server = scripted(implicit_tls=pki.server.server_context())
    code = run("--server", server.host, "--port", str(server.port), "--tls", "starttls",
               "--timeout", "0.5", "--from", FROM, "--to", TO, "--body", "x")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_NETWORK
    assert "hint:" in err and "--tls implicit" in err


def test_implicit_tls_on_a_plain_port_gets_the_starttls_hint(
    scripted: Callable[..., ScriptedServer], capfd: pytest.CaptureFixture[str]
) -> None:
    # A submission server (587 style) greets in plain text: a TLS client reads that greeting as
    # a corrupt TLS record.
    server = scripted()
    code = run("--server", server.host, "--port", str(server.port), "--tls", "implicit",
               "--from", FROM, "--to", TO, "--body", "x")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_NETWORK
    assert "hint:" in err and "--tls starttls" in err


@pytest.mark.parametrize(
    ("error", "port", "tls", "greeted", "code", "hint"),
    [
        (TIMEOUT, 465, "starttls", False, 4, "port 465 speaks TLS from the first byte"),
        (TIMEOUT, 465, "none", False, 4, "--tls implicit"),
        (TIMEOUT, 465, "starttls", True, 4, "raise --timeout"),
        (TIMEOUT, 2465, "auto", False, 4, "--tls implicit"),
        (GARBAGE, 465, "starttls", False, 4, "port 465 speaks TLS from the first byte"),
        (SMTPTLSError("TLS failed: received corrupt message", kind="tls-handshake"), 587,
         "implicit", False, 4, "port 587 starts in plain text"),
        (TIMEOUT, 465, "auto", False, 4, None),
        (SMTPTLSError("TLS failed", kind="tls-not-offered"), 587, "starttls", True, 4,
         "--tls implicit"),
        (SMTPTLSError("TLS failed", kind="tls-not-offered"), 465, "starttls", True, 4,
         "port 465 speaks TLS from the first byte"),
        (SMTPTLSError("TLS failed", kind="certificate-unknown-issuer"), 587, "auto", True, 4,
         "--cafile"),
        (SMTPTLSError("TLS failed", kind="certificate-self-signed"), 587, "auto", True, 4,
         "--cafile"),
        (SMTPTLSError("TLS failed", kind="certificate-name-mismatch"), 587, "auto", True, 4,
         "the name on the certificate"),
        (SMTPTLSError("TLS failed", kind="certificate-expired"), 587, "auto", True, 4, "renew"),
        (SMTPConnectError("could not connect", kind="connection-lost"), 25, "auto", False, 4,
         None),
        (SMTPConnectError("could not connect", kind="connection-refused"), 2525, "auto", False,
         4, "check --port"),
        (SMTPConnectError("could not connect", kind="name-not-resolved"), 25, "auto", False, 4,
         "check the server name"),
        (SMTPTimeoutError("no answer", kind="connect-timeout"), 465, "starttls", False, 4,
         "firewall"),
        (SMTPAuthError("authentication failed", kind="auth-insecure"), 25, "none", True, 5,
         "--tls starttls"),
        (SMTPAuthError("authentication failed", kind="auth-no-mechanism"), 25, "none", True, 5,
         "after STARTTLS"),
        (SMTPAuthError("authentication failed", kind="auth-refused", code=535), 587, "auto",
         True, 5, "app password"),
        (SMTPOutcomeUnknown("no verdict", kind="outcome-unknown"), 25, "auto", True, 6,
         "before sending it again"),
        (SMTPDataRefused("refused", kind="message-refused", code=451), 25, "auto", True, 3,
         "try again later"),
        (SMTPError("too big", kind="size-exceeded"), 25, "auto", True, 3, None),
        (SMTPRecipientsRefused("all refused", code=550, refused={}), 25, "auto", True, 3,
         "check the recipients"),
    ],
)  # fmt: skip
def test_explain_maps_errors_to_exit_codes_and_hints(
    error: MailpumpError,
    port: int,
    tls: str,
    greeted: bool,
    code: int,
    hint: str | None,
) -> None:
    got_code, got_hint = cli.explain(error, port=port, tls=tls, greeted=greeted)
    assert got_code == code
    if hint is None:
        assert got_hint is None or "465" not in got_hint
    else:
        assert got_hint is not None and hint in got_hint


@pytest.mark.parametrize(
    "error",
    [
        SMTPTLSError("STARTTLS not offered; certificate untrusted", kind="tls-refused"),
        SMTPAuthError("would go unencrypted: encrypt it", kind="auth-refused", code=535),
        SMTPConnectError("could not be resolved: connection refused", kind="connection-lost"),
    ],
)
def test_explain_decides_by_kind_not_by_message(error: SMTPError) -> None:
    _, hint = cli.explain(error, port=587, tls="auto")
    for words in ("STARTTLS here", "--cafile", "only sent over TLS", "--server", "--port"):
        assert hint is None or words not in hint, hint


def test_no_verdict_exits_6_and_warns_against_resending(
    scripted: Callable[..., ScriptedServer], capfd: pytest.CaptureFixture[str]
) -> None:
    server = scripted(replies={"eod": Fault.DISCONNECT})
    code = run("--server", server.host, "--port", str(server.port), "--tls", "none",
               "--from", FROM, "--to", TO, "--body", "x")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_UNKNOWN
    assert "hint:" in err and "before sending it again" in err
    [conn] = server.finished()
    assert [t.complete for t in conn.transactions] == [True]


def test_refused_port_hints_at_the_port(capfd: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code = run("--server", "127.0.0.1", "--port", str(port), "--tls", "none",
               "--from", FROM, "--to", TO, "--body", "x")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_NETWORK
    assert "hint:" in err and "check --port" in err


def test_progress_always_draws_a_bar_on_stderr(
    scripted: Callable[..., ScriptedServer],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    server = scripted()
    code = run("--server", server.host, "--port", str(server.port), "--tls", "none",
               "--from", FROM, "--to", TO, "--attach", str(tmp_path / "big.bin"),
               "--progress", "always")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_OK, err
    frames = [f for f in err.split("\r") if f.startswith("[")]
    assert len(frames) >= 2
    assert "MiB" in frames[-1] and "/s" in frames[-1]
    assert err.endswith("\n")


def test_progress_never_and_auto_off_a_terminal_draw_nothing(
    scripted: Callable[..., ScriptedServer],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(5 * 1024 * 1024))
    server = scripted()
    for mode in ("never", "auto"):  # stderr is not a terminal under pytest
        code = run("--server", server.host, "--port", str(server.port), "--tls", "none",
                   "--from", FROM, "--to", TO, "--attach", str(tmp_path / "big.bin"),
                   "--progress", mode)  # fmt: skip
        _, err = capfd.readouterr()
        assert code == cli.EXIT_OK
        assert "\r" not in err


def test_the_console_script_and_python_m_share_the_help() -> None:
    script = Path(sys.executable).with_name("mailpump")
    runs = [[sys.executable, "-m", "mailpump", "send", "--help"]]
    if script.exists():
        runs.append([str(script), "send", "--help"])
    for argv in runs:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=True
        )
        assert "exit codes:" in done.stdout
        assert cli.PASSWORD_ENV in done.stdout
        assert "--password" not in done.stdout


def test_stalled_server_times_out_with_exit_4(
    scripted: Callable[..., ScriptedServer], capfd: pytest.CaptureFixture[str]
) -> None:
    server = scripted(replies={"mail": Fault.STALL})
    code = run("--server", server.host, "--port", str(server.port), "--tls", "none",
               "--timeout", "0.5", "--from", FROM, "--to", TO, "--body", "x")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_NETWORK
    assert "timed out" in err


def test_ctrl_c_during_the_body_exits_130_and_delivers_nothing(
    scripted: Callable[..., ScriptedServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Ctrl-C while the body goes out reaches Python in the progress callback (it runs with the
    # GIL); here the callback raises it itself, as the signal handler would.
    def interrupted(self: cli.ProgressBar, sent: int, total: int | None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.ProgressBar, "__call__", interrupted)
    (tmp_path / "big.bin").write_bytes(os.urandom(1024 * 1024))
    server = scripted()
    code = run("--server", server.host, "--port", str(server.port), "--tls", "none",
               "--from", FROM, "--to", TO, "--attach", str(tmp_path / "big.bin"),
               "--progress", "always")  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_INTERRUPTED
    assert "interrupted" in err
    [conn] = server.finished()
    assert all(not t.complete for t in conn.transactions)


def test_dsn_options_reach_the_server(capfd: pytest.CaptureFixture[str]) -> None:
    server = ExtendedServer()
    try:
        code = run("--port", str(server.port), "--server", server.host, "--tls", "none",
                   "--from", FROM, "--to", TO, "--body", "x",
                   "--notify", "failure, delay", "--ret", "hdrs", "--envid", "batch-7")  # fmt: skip
        [t] = server.transactions
    finally:
        server.stop()
    assert code == cli.EXIT_OK, capfd.readouterr().err
    assert "RET=HDRS" in t.mail_options and "ENVID=BATCH-7" in t.mail_options
    assert t.rcpt_options == [["NOTIFY=FAILURE,DELAY"]]


@pytest.mark.parametrize(
    "args",
    [("--notify", "never,failure"), ("--notify", "soon"), ("--envid", "caf\u00e9")],
)
def test_bad_dsn_options_are_usage_errors(
    args: tuple[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    # Port 9 on loopback: nothing listens; the core refuses the values before connecting.
    code = run("--port", "9", "--server", "127.0.0.1", "--tls", "none",
               "--from", FROM, "--to", TO, "--body", "x", *args)  # fmt: skip
    _, err = capfd.readouterr()
    assert code == cli.EXIT_USAGE
    assert "DSN" in err or "notify" in err.lower(), err


def test_dsn_options_to_a_server_without_dsn_say_which_options_to_drop(
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = ExtendedServer(dsn=False)
    try:
        code = run("--port", str(server.port), "--server", server.host, "--tls", "none",
                   "--from", FROM, "--to", TO, "--body", "x", "--notify", "failure")  # fmt: skip
        transactions = server.transactions
    finally:
        server.stop()
    _, err = capfd.readouterr()
    assert code == cli.EXIT_USAGE
    assert "does not offer delivery status notifications" in err
    assert "without --notify, --ret and --envid" in err
    assert transactions == []
