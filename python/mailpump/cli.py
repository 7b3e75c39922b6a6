"""``mailpump send``: one message from the command line, in the spirit of swaks.

The command builds the message with :func:`mailpump.message` (text and HTML bodies, streamed
attachments, extra headers), sends it with :func:`mailpump.send` and turns every failure into an
exit code and a message that says what to do. ``--dry-run`` prints the envelope and the message
instead, ``--verbose`` prints the SMTP transcript (the ``mailpump`` logger at DEBUG) on standard error.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any, Final

from . import smtp
from ._mailpump import DKIM, MessageSource, Part, SendResult, attachment, text
from .errors import (
    MailpumpError,
    MessageError,
    SMTPAuthError,
    SMTPConnectError,
    SMTPError,
    SMTPOutcomeUnknown,
    SMTPProtocolError,
    SMTPRecipientsRefused,
    SMTPReplyError,
    SMTPSenderRefused,
    SMTPTimeoutError,
    SMTPTLSError,
)
from .types import Dsn, Mailt

__all__ = [
    "EXIT_AUTH",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_REFUSED",
    "EXIT_UNKNOWN",
    "EXIT_USAGE",
    "PASSWORD_ENV",
    "ProgressBar",
    "add_send_command",
    "build_message",
    "envelope_commands",
    "explain",
    "run_send",
]

EXIT_OK: Final = 0
"""The server accepted the message for every recipient."""
EXIT_PARTIAL: Final = 1
"""The server accepted the message, but refused some recipients (listed on standard error)."""
EXIT_USAGE: Final = 2
"""Bad arguments or an unreadable file: nothing was sent."""
EXIT_REFUSED: Final = 3
"""The server refused the sender, every recipient or the message (or it is over the server's
size limit)."""
EXIT_NETWORK: Final = 4
"""The connection failed before the message was sent whole: refused, lost, timed out, TLS or
protocol failure. Nothing was delivered."""
EXIT_AUTH: Final = 5
"""Authentication failed or could not be attempted."""
EXIT_UNKNOWN: Final = 6
"""The whole message was sent but no verdict came: it may have been delivered. Check before
sending it again."""
EXIT_INTERRUPTED: Final = 130
"""Interrupted (Ctrl-C); a message being sent was abandoned without its end-of-data mark."""

PASSWORD_ENV: Final = "MAILPUMP_PASSWORD"
"""The environment variable read for ``--user``'s password (else a prompt on the terminal)."""

PROGRESS_THRESHOLD: Final = 4 * 1024 * 1024
"""With ``--progress auto``, messages estimated above this size get a progress bar."""

EXIT_CODES_HELP: Final = f"""\
exit codes:
  {EXIT_OK}    the server accepted the message for every recipient
  {EXIT_PARTIAL}    accepted, but some recipients were refused (listed on standard error)
  {EXIT_USAGE}    usage error: bad arguments or an unreadable file; nothing was sent
  {EXIT_REFUSED}    the server refused the sender, every recipient or the message
  {EXIT_NETWORK}    network failure: connection refused or lost, timeout, TLS or protocol error;
       nothing was delivered
  {EXIT_AUTH}    authentication failed
  {EXIT_UNKNOWN}    the whole message was sent but no verdict came: it may have been delivered,
       so check before sending it again
  {EXIT_INTERRUPTED}  interrupted; nothing half-sent is ever delivered

The password for --user is read from ${PASSWORD_ENV}, else asked for on the terminal; it is
never a command-line argument. Port 465 is implicit TLS (--tls implicit, what --tls auto picks
there); ports 587 and 25 start in plain text and upgrade with STARTTLS (--tls starttls or auto).
"""


class UsageError(Exception):
    """A problem with the arguments: exit code 2, nothing sent."""


def add_send_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Adds ``send`` and its options to the subcommands of the ``mailpump`` parser."""
    p = commands.add_parser(
        "send",
        help="send one message (text, HTML, attachments) to an SMTP server",
        description="Build one message and send it over SMTP. The envelope recipients are\n"
        "--to, --cc and --bcc together; Bcc addresses never appear in the message.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    conn = p.add_argument_group("connection")
    conn.add_argument(
        "--server",
        default=None,
        help="SMTP server (default: localhost); a path (unix:PATH, or any name with a /) is a "
        "Unix-domain socket",
    )
    conn.add_argument(
        "--port",
        type=_port,
        default=None,
        help="port (default: 25; 587 submission, 465 SMTPS)",
    )
    conn.add_argument(
        "--tls",
        choices=("auto", "starttls", "implicit", "none"),
        default="auto",
        help="auto: implicit TLS on 465, else STARTTLS when offered (default); starttls: "
        "require it; implicit: TLS from the first byte; none: plain text",
    )
    conn.add_argument(
        "--cafile",
        help="also trust the certificates in this PEM file: CAs, or the server's own "
        "(self-signed) certificate",
    )
    conn.add_argument(
        "--cert",
        metavar="FILE",
        help="client certificate (PEM, chain after it; and its key unless --key)",
    )
    conn.add_argument("--key", metavar="FILE", help="the client certificate's key (PEM)")
    conn.add_argument(
        "--fingerprint",
        metavar="SHA256",
        help="accept only the server certificate with this SHA-256 fingerprint "
        "(sha256:AB:CD:..., as `openssl x509 -noout -fingerprint -sha256` prints it)",
    )
    conn.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        help="seconds to wait for each network operation (default: 60)",
    )
    conn.add_argument(
        "--helo", metavar="DOMAIN", help="the name to greet the server with (EHLO)"
    )
    conn.add_argument(
        "--lmtp",
        action="store_true",
        help="speak LMTP (RFC 2033) to a local delivery agent such as Dovecot: LHLO, and one "
        "verdict per recipient, each printed",
    )
    conn.add_argument(
        "--user",
        help=f"authenticate as this user (password from ${PASSWORD_ENV} or a prompt)",
    )
    env = p.add_argument_group("envelope and headers")
    env.add_argument(
        "--from", dest="from_", required=True, metavar="ADDR", help="the sender"
    )
    env.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="ADDR",
        help="a recipient (repeatable)",
    )
    env.add_argument(
        "--cc",
        action="append",
        default=[],
        metavar="ADDR",
        help="a Cc recipient (repeatable)",
    )
    env.add_argument(
        "--bcc",
        action="append",
        default=[],
        metavar="ADDR",
        help="a hidden recipient (repeatable): in the envelope only",
    )
    env.add_argument(
        "--notify",
        metavar="EVENTS",
        help="ask for delivery status notifications (RFC 3461): 'never', or any of "
        "'success,failure,delay'",
    )
    env.add_argument(
        "--ret",
        choices=("full", "hdrs"),
        help="what a failure report returns: the whole message or its header",
    )
    env.add_argument("--envid", metavar="ID", help="an identifier every report carries back")
    env.add_argument("--subject", default=None, help="the Subject header")
    env.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra header (repeatable)",
    )
    body = p.add_argument_group("content")
    text_body = body.add_mutually_exclusive_group()
    text_body.add_argument("--body", help="the text body")
    text_body.add_argument(
        "--body-file",
        metavar="PATH",
        help="read the text body from a UTF-8 file ('-': stdin)",
    )
    body.add_argument(
        "--html-file",
        metavar="PATH",
        help="an HTML body (with a text body: multipart/alternative)",
    )
    body.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="PATH",
        help="attach a file, streamed from disk (repeatable)",
    )
    signing = p.add_argument_group(
        "DKIM signing (RFC 6376)", "all three together: the message is signed before it is sent"
    )
    signing.add_argument("--dkim-domain", metavar="DOMAIN", help="the signing domain (d=)")
    signing.add_argument(
        "--dkim-selector",
        metavar="SELECTOR",
        help="the selector (s=): the public key is at SELECTOR._domainkey.DOMAIN",
    )
    signing.add_argument(
        "--dkim-key",
        metavar="FILE",
        help="the private key (PEM): RSA (openssl genrsa 2048) or Ed25519 "
        "(openssl genpkey -algorithm ed25519)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--dry-run",
        action="store_true",
        help="print the envelope (MAIL FROM, each RCPT TO, Bcc included) on standard error "
        "and the message on standard output; send nothing",
    )
    out.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the SMTP transcript on standard error",
    )
    out.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="a progress bar on standard error: auto shows it on a terminal for messages over "
        "4 MiB (default)",
    )
    return p


def run_send(args: argparse.Namespace) -> int:
    """Runs ``mailpump send`` with parsed arguments; returns the exit code."""
    try:
        return _send(args)
    except UsageError as e:
        _say(f"mailpump send: error: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Nothing half-sent is delivered; an interrupt after the end of data may still have let
        # the server queue the whole message.
        _say("mailpump send: interrupted; the message was delivered only if it had been sent whole")
        return EXIT_INTERRUPTED


def _send(args: argparse.Namespace) -> int:
    rcpt: list[str] = [*args.to, *args.cc, *args.bcc]
    if not rcpt:
        raise UsageError("no recipient: give at least one --to, --cc or --bcc")
    try:
        message, estimate = build_message(args)
    except MessageError as e:
        raise UsageError(f"{e}") from e
    except OSError as e:
        raise UsageError(_os_error(e)) from e
    signer = _dkim(args)
    if args.dry_run:
        try:
            _show_envelope(args.from_, rcpt, len(args.bcc))
        except ValueError as e:
            raise UsageError(str(e)) from e
        out = sys.stdout.buffer
        for chunk in message if signer is None else signer.sign(message):
            out.write(chunk)
        out.flush()
        return EXIT_OK

    password = _password(args.user)
    dialogue = _Dialogue()
    undo = dialogue.watch(verbose=args.verbose)
    try:
        return _deliver(args, message, estimate, rcpt, password, dialogue, signer)
    finally:
        undo()


def _dkim(args: argparse.Namespace) -> DKIM | None:
    """The signer the ``--dkim-*`` options describe (all three, or none)."""
    given = [args.dkim_domain, args.dkim_selector, args.dkim_key]
    if not any(given):
        return None
    if not all(given):
        raise UsageError("DKIM signing needs --dkim-domain, --dkim-selector and --dkim-key together")
    try:
        return DKIM(args.dkim_domain, args.dkim_selector, args.dkim_key)
    except ValueError as e:
        raise UsageError(f"{e} (in {args.dkim_key})") from e
    except OSError as e:
        raise UsageError(_os_error(e)) from e


class _Rehearsal:
    """A socket for ``create=`` that answers like a server accepting everything and keeps the
    commands the client wrote: the envelope exactly as the core puts it on the wire."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self._pending = bytearray(b"220 dry-run\r\n")
        self._line = bytearray()
        self._in_data = False

    def settimeout(self, t: float | None, /) -> None:
        pass

    def connect(self, address: tuple[str, int], /) -> None:
        pass

    def sendall(self, data: bytes, /) -> None:
        self._line += data
        while (end := self._line.find(b"\r\n")) >= 0:
            line = bytes(self._line[:end])
            del self._line[: end + 2]
            if self._in_data:
                if line == b".":
                    self._in_data = False
                    self._pending += b"250 not sent (dry run)\r\n"
                continue
            self.commands.append(line.decode("utf-8", "replace"))
            verb = line[:4].upper()
            if verb == b"DATA":
                self._in_data = True
                self._pending += b"354 go on\r\n"
            elif verb == b"QUIT":
                self._pending += b"221 bye\r\n"
            else:
                self._pending += b"250 ok\r\n"

    def recv(self, n: int, /) -> bytes:
        chunk = bytes(self._pending[:n])
        del self._pending[:n]
        return chunk

    def close(self) -> None:
        pass


def envelope_commands(sender: str, rcpt: list[str]) -> list[str]:
    """The MAIL FROM and RCPT TO commands the client writes for this envelope, taken from the
    client itself talking to a stand-in server in memory (no connection is made).
    ``ValueError`` for an address the client refuses."""
    rehearsal = _Rehearsal()
    smtp.send(
        {
            "from": sender,
            "rcpt": rcpt,
            "source": b"\r\n",
            "server": "localhost",
            "tls": "none",
            "create": lambda: rehearsal,
        }
    )
    return [c for c in rehearsal.commands if c[:4].upper() in ("MAIL", "RCPT")]


def _dsn(args: argparse.Namespace) -> Dsn:
    # `--notify failure,delay`: the core checks the words (NEVER alone) and the ENVID.
    dsn: Dsn = {}
    if args.notify is not None:
        dsn["notify"] = args.notify
    if args.ret is not None:
        dsn["ret"] = args.ret
    if args.envid is not None:
        dsn["envid"] = args.envid
    return dsn


def _show_envelope(sender: str, rcpt: list[str], hidden: int) -> None:
    # Standard error, written before the message: standard output stays the message alone,
    # ready for `> message.eml`. The last `hidden` recipients are the Bcc ones.
    commands = envelope_commands(sender, rcpt)
    for i, command in enumerate(commands):
        bcc = i >= len(commands) - hidden
        sys.stderr.write(f"{command}   (bcc)\n" if bcc else f"{command}\n")
    sys.stderr.flush()


def _deliver(
    args: argparse.Namespace,
    message: MessageSource,
    estimate: int,
    rcpt: list[str],
    password: str | None,
    dialogue: _Dialogue,
    signer: DKIM | None,
) -> int:
    progress = _progress_bar(args.progress, estimate)
    server = args.server or smtp.SERVER
    port = args.port or smtp.PORT
    mailt: Mailt = {
        "from": args.from_,
        "rcpt": rcpt,
        "source": message,
        "server": server,
        "port": port,
        "tls": args.tls,
        "timeout": args.timeout,
        "cafile": args.cafile,
        "certfile": args.cert,
        "keyfile": args.key,
        "fingerprint": args.fingerprint,
        "domain": args.helo,
        "lmtp": args.lmtp,
        "user": args.user,
        "password": password,
        "progress": progress,
        "dkim": signer,
    }
    dsn = _dsn(args)
    if dsn:
        mailt["dsn"] = dsn
    try:
        result = smtp.send(mailt)
    except ValueError as e:
        # An envelope address or an option the core refused before a byte was written.
        if progress is not None:
            progress.end()
        if dsn and "DSN" in str(e) and "does not offer" in str(e):
            # The core's advice names the library's "optional"; here the choice is the options.
            raise UsageError(
                f"{server} does not offer delivery status notifications (DSN, RFC 3461); "
                "nothing was sent: send again without --notify, --ret and --envid"
            ) from e
        raise UsageError(str(e)) from e
    except MailpumpError as e:
        if progress is not None:
            progress.end()
        code, hint = explain(e, port=port, tls=args.tls, greeted=dialogue.greeted)
        _say(f"mailpump send: {e}")
        if hint:
            _say(f"hint: {hint}")
        return code
    if progress is not None:
        progress.end()
    return _report(result)


def build_message(args: argparse.Namespace) -> tuple[MessageSource, int]:
    """The message ``args`` describe and an estimate of its size in bytes (for the progress
    bar). Files are opened here (a missing one raises ``OSError``) and read while sending."""
    headers: dict[str, Any] = {"from": args.from_}
    if args.to:
        headers["to"] = list(args.to)
    if args.cc:
        headers["cc"] = list(args.cc)
    if args.subject is not None:
        headers["subject"] = args.subject
    for line in args.header:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {line!r}: write it as 'Name: value'")
        if name.strip().lower() == "bcc":
            raise UsageError(
                "--header 'Bcc: ...': use --bcc, which keeps the addresses hidden"
            )
        headers[name.strip()] = value.strip()

    body_text: str | None = args.body
    if args.body_file is not None:
        body_text = _read_text(args.body_file)
    html = _read_text(args.html_file) if args.html_file is not None else None
    # Text counts at its length: non-ASCII text grows when encoded, and the bar copes with an
    # estimate that falls short (its total becomes the bytes sent).
    estimate = 1024 + sum(len(v) for v in headers.values() if isinstance(v, str))
    estimate += len(body_text or "") + len(html or "")

    attachments: list[Part] = []
    for path in args.attach:
        size = os.stat(path).st_size
        # Base64: 4 bytes per 3, plus CRLF every 76 columns.
        estimate += (size + 2) // 3 * 4 * 78 // 76 + 512
        attachments.append(attachment(path))

    content: Any
    if html is not None and body_text is not None:
        content = {
            "headers": {"content-type": "multipart/alternative"},
            "body": [text(body_text), text(html, "html")],
        }
    elif html is not None:
        content = {
            "headers": {"content-type": 'text/html; charset="utf-8"'},
            "body": html,
        }
    else:
        content = {"body": body_text or ""}

    if attachments:
        return smtp.message(
            {"headers": headers, "body": [content, *attachments]}
        ), estimate
    # No attachment: the content is the whole message, its headers merged with the top level's
    # (a Content-Type given with --header wins).
    merged = dict(headers)
    given = {name.lower() for name in headers}
    for name, value in content.get("headers", {}).items():
        if name.lower() not in given:
            merged[name] = value
    return smtp.message({"headers": merged, "body": content["body"]}), estimate


def explain(
    error: MailpumpError, *, port: int, tls: str, greeted: bool = True
) -> tuple[int, str | None]:
    """The exit code for ``error`` and a hint saying what to do about it, if there is one.
    ``greeted`` says whether the server had said anything when the error happened.

    The decision is made on the exception's class and its ``kind``, never on its message. The
    most common configuration failure gets its own hints: port 465 speaks TLS from the first
    byte (implicit TLS, RFC 8314 §3.3) while 587 and 25 start in plain text and upgrade with
    STARTTLS (RFC 3207). Mixing them up shows as a wait for a greeting that never comes (plain
    text on 465) or a TLS handshake that reads a plain-text greeting (TLS on 587).
    """
    if not isinstance(error, SMTPError):
        return EXIT_NETWORK, None
    kind = error.kind
    implicit = tls == "implicit" or (tls == "auto" and port == 465)
    if isinstance(error, SMTPOutcomeUnknown):
        return EXIT_UNKNOWN, (
            "the server may have accepted the message: check the recipient's mailbox or the "
            "server's log before sending it again, or it may arrive twice"
        )
    if isinstance(error, SMTPAuthError):
        return EXIT_AUTH, _AUTH_HINTS.get(kind, _AUTH_HINT)
    if isinstance(error, SMTPRecipientsRefused):
        return EXIT_REFUSED, _reply_hint(error, "check the recipients' addresses")
    if isinstance(error, SMTPSenderRefused):
        return EXIT_REFUSED, _reply_hint(
            error,
            "the server may want you to authenticate first (--user) or a sender address of "
            "a domain it serves",
        )
    if isinstance(error, SMTPReplyError):
        return EXIT_REFUSED, _reply_hint(error, None)
    if kind == "size-exceeded":
        return EXIT_REFUSED, None
    if kind == "no-greeting" or (kind == "timeout" and not greeted and not implicit):
        if port == 465:
            return EXIT_NETWORK, _PORT_465_HINT
        return EXIT_NETWORK, (
            f"no greeting from port {port}: if this server speaks TLS from the first byte "
            "(SMTPS, usually port 465), use --tls implicit"
        )
    if kind == "tls-plain-port":
        return EXIT_NETWORK, (
            f"port {port} speaks plain SMTP (submission is 587, relay 25): use --tls starttls "
            "(or --tls auto); --tls implicit is for port 465"
        )
    not_tls = kind == "tls-handshake" or isinstance(error, SMTPProtocolError)
    if implicit and port != 465 and not_tls:
        return EXIT_NETWORK, (
            f"port {port} starts in plain text (submission is 587, relay 25): use --tls "
            "starttls (or --tls auto); --tls implicit is for port 465"
        )
    if isinstance(error, SMTPProtocolError) and not greeted and port == 465 and not implicit:
        return EXIT_NETWORK, _PORT_465_HINT
    if kind == "tls-not-offered":
        if port == 465:
            return EXIT_NETWORK, _PORT_465_HINT
        return EXIT_NETWORK, (
            "the server does not offer STARTTLS here: on port 465 use --tls implicit; "
            "--tls none sends in plain text (only on a network you trust)"
        )
    if kind == "connection-refused":
        return EXIT_NETWORK, (
            f"nothing accepts connections on port {port} there: check --port (587 submission, "
            "465 SMTPS, 25 relay) and that the server is running"
        )
    if isinstance(error, SMTPTimeoutError):
        if kind == "connect-timeout":
            return EXIT_NETWORK, (
                f"check --server and --port: a firewall may drop connections to port {port}"
            )
        return EXIT_NETWORK, "raise --timeout if the server is slow, or try again later"
    if isinstance(error, (SMTPConnectError, SMTPTLSError)):
        return EXIT_NETWORK, _NETWORK_HINTS.get(kind)
    return EXIT_NETWORK, None


_PORT_465_HINT: Final = (
    "port 465 speaks TLS from the first byte (SMTPS): use --tls implicit (or --tls auto)"
)

_AUTH_HINT: Final = (
    f"check --user and ${PASSWORD_ENV}; many providers want an app password or OAuth for SMTP"
)

_AUTH_HINTS: Final[dict[str, str]] = {
    "auth-insecure": (
        "credentials are only sent over TLS: use --tls starttls (port 587) or --tls implicit "
        "(port 465)"
    ),
    "auth-no-mechanism": (
        "the server offers no way to log in that mailpump can use here; many servers offer "
        "AUTH only after STARTTLS (--tls starttls) or only on the submission port 587"
    ),
}

_CAFILE_HINT: Final = (
    "the server's certificate is not trusted: check --server, or pass the CA that signed it "
    "with --cafile FILE"
)

_NETWORK_HINTS: Final[dict[str, str]] = {
    "name-not-resolved": "check the server name given with --server (a typo, or no DNS here)",
    "unreachable": "check --server and this machine's network connection",
    "certificate-unknown-issuer": _CAFILE_HINT,
    "certificate-self-signed": (
        "the server's certificate is self-signed: if it is the right one, pass it with "
        "--cafile FILE (or pin it with --fingerprint)"
    ),
    "certificate-fingerprint-mismatch": (
        "the server's certificate is not the pinned one: check --fingerprint, or whether the "
        "server's certificate was replaced"
    ),
    "tls-client-certificate-required": (
        "the server wants a client certificate it trusts: give it with --cert FILE "
        "(and --key FILE)"
    ),
    "tls-no-common-protocol": (
        "the server speaks only TLS versions or ciphers mailpump's TLS does not; from Python, "
        "ssl_context= goes through OpenSSL"
    ),
    "tls-server-failed": "the server's TLS failed on its side: its administrator must look",
    "certificate-name-mismatch": (
        "the certificate names another server: give --server the name on the certificate"
    ),
    "certificate-expired": (
        "the server's certificate has expired or is not valid yet: the server must renew it "
        "(or check this machine's clock)"
    ),
    "tls-config": (
        "check the --cafile, --cert and --key files: they must hold PEM certificates and keys"
    ),
}


def _reply_hint(error: SMTPReplyError, permanent_hint: str | None) -> str | None:
    if error.transient:
        return "the refusal is temporary (4xx): try again later"
    return permanent_hint


def _report(result: SendResult) -> int:
    print(f"sent: {result.reply}")
    # LMTP: each recipient's own verdict; the refused and deferred ones are repeated below.
    for address, reply in result.verdicts.items():
        if 200 <= reply.code < 300:
            print(f"delivered: {address}: {reply}")
    for address, reply in result.refused.items():
        _say(f"refused: {address}: {reply}")
    return EXIT_PARTIAL if result.refused else EXIT_OK


def _password(user: str | None) -> str | None:
    if user is None:
        return None
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise UsageError(
            f"--user needs a password: set ${PASSWORD_ENV} (no terminal to ask on)"
        )
    return getpass.getpass(f"password for {user}: ")


def _read_text(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise UsageError(
            f"{path}: not UTF-8 text ({e.reason}); attach it with --attach"
        ) from e
    except OSError as e:
        raise UsageError(_os_error(e)) from e


def _os_error(e: OSError) -> str:
    return f"{e.filename}: {e.strerror}" if e.filename else str(e)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Dialogue(logging.Handler):
    """Watches the transcript (the ``mailpump`` logger's DEBUG records, one per line): whether
    the server said anything tells a missing greeting from a later stall."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.greeted = False

    def emit(self, record: logging.LogRecord) -> None:
        # The binding logs ("%s: %s", direction, line); "S" is the server.
        if isinstance(record.args, tuple) and record.args[:1] == ("S",):
            self.greeted = True

    def watch(self, *, verbose: bool) -> Callable[[], None]:
        """Attaches itself (and, with ``verbose``, a handler printing the transcript on
        standard error) to the ``mailpump`` logger; returns the function that undoes it."""
        logger = logging.getLogger("mailpump")
        handlers: list[logging.Handler] = [self]
        if verbose:
            printer = logging.StreamHandler(sys.stderr)
            printer.setFormatter(logging.Formatter("%(message)s"))
            handlers.append(printer)
        level = logger.level
        for handler in handlers:
            logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)

        def undo() -> None:
            for handler in handlers:
                logger.removeHandler(handler)
            logger.setLevel(level)

        return undo


class ProgressBar:
    """``progress(sent, total)`` for :func:`mailpump.send`: one line on a stream, redrawn."""

    def __init__(self, stream: IO[str], estimate: int) -> None:
        self.stream = stream
        self.estimate = estimate
        self.started = time.monotonic()
        self.drawn = False

    def __call__(self, sent: int, total: int | None) -> None:
        known = total is not None
        whole = total if total is not None else max(self.estimate, sent)
        elapsed = time.monotonic() - self.started
        rate = sent / elapsed if elapsed > 0 else 0.0
        width = 30
        filled = min(width, width * sent // whole) if whole else width
        bar = "#" * filled + "-" * (width - filled)
        approx = "" if known else "~"
        self.stream.write(
            f"\r[{bar}] {_size(sent)} / {approx}{_size(whole)}  {_size(int(rate))}/s "
        )
        self.stream.flush()
        self.drawn = True

    def end(self) -> None:
        """Ends the bar's line, if one was drawn."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _progress_bar(mode: str, estimate: int) -> ProgressBar | None:
    if mode == "never":
        return None
    if mode == "auto" and not (sys.stderr.isatty() and estimate > PROGRESS_THRESHOLD):
        return None
    return ProgressBar(sys.stderr, estimate)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a port number (1-65535): {value}")
    return port


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a number of seconds: {value!r}"
        ) from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"the timeout must be positive: {value}")
    return seconds
