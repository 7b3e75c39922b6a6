"""Test certificates made at test time with the `openssl` command line tool.

A private CA signs a server certificate for ``localhost`` and ``127.0.0.1``, so a client given
``cafile=ca.pem`` verifies the server (rustls/webpki want a v3 CA with basicConstraints and a leaf
with subjectAltName; RFC 5280 §4.2.1.9, RFC 6125 §6). A second, unrelated CA signs the
"untrusted" certificate, and a third leaf names another host, for the negative tests.
"""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A server certificate and its key, as PEM files."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """An `ssl` server context presenting this certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


@dataclasses.dataclass(frozen=True)
class Pki:
    """The trusted CA, the good server certificate and the bad ones."""

    ca: Path
    server: Leaf
    untrusted: Leaf
    wrong_host: Leaf

    def client_context(self) -> ssl.SSLContext:
        """An `ssl` client context that trusts only the test CA."""
        return ssl.create_default_context(cafile=str(self.ca))


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "2", "-subj", f"/CN=mailpump {name}", "-keyout", key, "-out", cert,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _leaf(directory: Path, name: str, ca: tuple[Path, Path], san: str) -> Leaf:
    cert, key, csr = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text(
        f"subjectAltName={san}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", f"/CN={name}", "-keyout", key, "-out", csr,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-days", "2", "-out", cert, "-extfile", ext,
    )  # fmt: skip
    return Leaf(cert, key)


def make_pki(directory: Path) -> Pki:
    """Write a CA, a server certificate it signs, and two bad certificates into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    other_ca = _ca(directory, "other-ca")
    return Pki(
        ca=ca[0],
        server=_leaf(directory, "localhost", ca, "DNS:localhost,IP:127.0.0.1"),
        untrusted=_leaf(directory, "untrusted", other_ca, "DNS:localhost,IP:127.0.0.1"),
        wrong_host=_leaf(directory, "wrong-host", ca, "DNS:mail.example.invalid"),
    )
