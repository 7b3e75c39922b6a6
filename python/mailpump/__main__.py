"""The command line: ``mailpump send ...`` (see :mod:`mailpump.cli`) and ``mailpump demo``.

``demo`` builds the first example of LuaSocket's ``socket.smtp`` manual (a multipart message with a
preamble, a text part normalised with ``mime.eol``, a PNG attachment streamed from a file through
``base64`` and ``wrap``, and an epilogue), translated to Python, sends it through an embedded SMTP
server on loopback (aiosmtpd, the ``demo`` extra) and prints the transcript and what the server
received. ``demo --print`` only prints the message.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import struct
import sys
import tempfile
import zlib
from collections.abc import Sequence
from typing import Any

from . import __version__, cli, ltn12, mime, smtp
from ._mailpump import MessageSource

__all__ = ["demo_message", "main", "small_png"]


def small_png(width: int = 16, height: int = 16) -> bytes:
    """A small valid PNG (an RGB gradient), made without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00"
        + b"".join(bytes((x * 16 % 256, y * 16 % 256, 128)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def demo_message(image_path: str) -> MessageSource:
    """The seed's first example, translated to Python, with the PNG read from ``image_path``."""
    return smtp.message(
        {
            "headers": {
                # Remember that headers are *ignored* by smtp.send.
                "from": "Sicrano de Oliveira <sicrano@example.com>",
                "to": "Fulano da Silva <fulano@example.com>",
                "subject": "Here is a message with attachments",
            },
            "body": {
                "preamble": "If your client doesn't understand attachments, \r\n"
                "it will still display the preamble and the epilogue.\r\n"
                "Preamble will probably appear even in a MIME enabled client.",
                # First part: no headers means plain text. The mime.eol low-level filter
                # normalizes end-of-line markers.
                1: {
                    "body": mime.eol(
                        0,
                        b"""
  Lines in a message body should always end with CRLF.
  The smtp module will *NOT* perform translation. However, the
  send function *DOES* perform SMTP stuffing, whereas the message
  function does *NOT*.
""",
                    )[0],
                },
                # Second part: headers describe content to be a png image, sent under the base64
                # transfer content encoding. Nothing happens until the message is actually read:
                # small chunks are loaded right before transmission and encoded on the fly.
                2: {
                    "headers": {
                        "content-type": 'image/png; name="image.png"',
                        "content-disposition": 'attachment; filename="image.png"',
                        "content-description": "a beautiful image",
                        "content-transfer-encoding": "BASE64",
                    },
                    "body": ltn12.source.chain(
                        ltn12.source.file(image_path, "rb"),
                        ltn12.filter.chain(mime.encode("base64"), mime.wrap()),
                    ),
                },
                "epilogue": "This might also show up, but after the attachments",
            },
        }
    )


def print_demo() -> int:
    """Prints the demo message to standard output."""
    with tempfile.TemporaryDirectory(prefix="mailpump-demo-") as tmp:
        path = os.path.join(tmp, "image.png")
        with open(path, "wb") as f:
            f.write(small_png())
        out = sys.stdout.buffer
        for chunk in demo_message(path):
            out.write(chunk)
        out.flush()
    return 0


class _DemoHandler:
    """The embedded server's aiosmtpd handler: keeps each message it accepts."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.received.append(envelope.original_content or b"")
        return "250 2.0.0 OK: queued"


def send_demo() -> int:
    """Sends the demo message through an embedded SMTP server on loopback and prints the
    transcript and what the server received (needs aiosmtpd: ``pip install mailpump[demo]``)."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        print(
            "aiosmtpd is not installed (pip install 'mailpump[demo]'): printing the message only",
            file=sys.stderr,
        )
        return print_demo()

    handler_ = _DemoHandler()
    received = handler_.received

    with socket.socket() as probe:  # aiosmtpd's Controller wants a concrete port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler_, hostname="127.0.0.1", port=port)
    logger = logging.getLogger("mailpump")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    controller.start()
    try:
        with tempfile.TemporaryDirectory(prefix="mailpump-demo-") as tmp:
            path = os.path.join(tmp, "image.png")
            with open(path, "wb") as f:
                f.write(small_png())
            print(
                f"--- SMTP transcript (embedded server on 127.0.0.1:{port}) ---",
                flush=True,
            )
            result = smtp.send(
                {
                    "from": "<sicrano@example.com>",
                    "rcpt": "<fulano@example.com>",
                    "source": demo_message(path),
                    "server": "127.0.0.1",
                    "port": port,
                    "tls": "none",
                    "timeout": 10,
                }
            )
    finally:
        controller.stop()
        # Run in-process (tests, an embedding program), the demo leaves logging as it found it.
        logger.removeHandler(handler)
        logger.setLevel(level)
    print(f"--- result: accepted {result.accepted}, reply {result.reply} ---")
    print("--- message received by the server ---", flush=True)
    sys.stdout.buffer.write(received[0] if received else b"")
    sys.stdout.buffer.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m mailpump`` and the ``mailpump`` script."""
    parser = argparse.ArgumentParser(
        prog="mailpump",
        description="Streaming e-mail messages over SMTP.",
        epilog="`mailpump send --help` lists the options of send and the exit codes.",
    )
    parser.add_argument(
        "--version", action="version", version=f"mailpump {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cli.add_send_command(commands)
    demo = commands.add_parser(
        "demo", help="send the seed's first example through an embedded SMTP server"
    )
    demo.add_argument(
        "--print", action="store_true", help="only print the message, send nothing"
    )
    args = parser.parse_args(argv)
    if args.command == "send":
        return cli.run_send(args)
    if args.command == "demo":
        return print_demo() if args.print else send_demo()
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
