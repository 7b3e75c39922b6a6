"""Free TCP ports on 127.0.0.1, for servers that must be told their port (aiosmtpd's Controller,
Postfix's master.cf). No third-party import: bench/ uses it with the Postfix server."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
