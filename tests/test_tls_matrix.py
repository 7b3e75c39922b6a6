"""TLS against real TLS servers on loopback: one test per case of the TLS matrix.

Each server is the scripted server speaking implicit TLS through a Python `ssl` context (OpenSSL)
made for the case: protocol versions, key types, chains, dates, names, ciphers, client
certificates. A case that must work delivers a message; a case that must fail asserts the error's
kind and that its message carries the advice.
"""

from __future__ import annotations

import hashlib
import ssl
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from servers.certs import Leaf, Pki
from servers.scripted import ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(60)

FROM = "<sender@example.test>"
RCPT = ["<one@example.test>"]
BODY = b"Subject: tls\r\n\r\nbody\r\n"


def _openssl(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, cwd=cwd)


_KEYS = {
    "ec": ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
    "rsa": ("-newkey", "rsa:2048"),
    "ed25519": ("-newkey", "ed25519"),
}
_LEAF_EXT = "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"


class Certs:
    """Certificates made once per module with the openssl command line tool."""

    def __init__(self, d: Path, pki: Pki) -> None:
        self.d = d
        self.pki = pki
        (d / "index.txt").write_text("")
        (d / "serial").write_text("01\n")
        (d / "ca.cnf").write_text(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
            "serial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
            "[p]\ncommonName = supplied\n"
        )

    def self_signed(self, name: str, ca: bool, san: str = "DNS:localhost,IP:127.0.0.1") -> Leaf:
        """The usual test certificate (`openssl req -x509`), saying CA:TRUE or CA:FALSE."""
        cert, key = self.d / f"{name}.pem", self.d / f"{name}.key"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
                 "-addext", f"subjectAltName={san}",
                 "-addext", f"basicConstraints=critical,CA:{'TRUE' if ca else 'FALSE'}")  # fmt: skip
        return Leaf(cert, key)

    def signed(
        self,
        name: str,
        issuer: tuple[Path, Path],
        *,
        key: str = "ec",
        san: str | None = "DNS:localhost,IP:127.0.0.1",
        ca: bool = False,
        dates: tuple[str, str] | None = None,
    ) -> Leaf:
        """A certificate `issuer` (cert, key) signs, through `openssl ca` (which takes dates)."""
        cert, keyfile, csr = (self.d / f"{name}.{e}" for e in ("pem", "key", "csr"))
        ext = self.d / f"{name}.ext"
        ext.write_text(
            (f"subjectAltName={san}\n" if san else "")
            + ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n" if ca
               else _LEAF_EXT)
        )  # fmt: skip
        _openssl("req", "-new", *_KEYS[key], "-nodes", "-subj", f"/CN={name}",
                 "-keyout", keyfile, "-out", csr)  # fmt: skip
        when = ("-startdate", dates[0], "-enddate", dates[1]) if dates else ("-days", "2")
        _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", issuer[0], "-keyfile", issuer[1],
                 "-in", csr, "-out", cert, "-extfile", ext, "-notext", *when,
                 cwd=self.d)  # fmt: skip
        return Leaf(cert, keyfile)

    @property
    def root(self) -> tuple[Path, Path]:
        return self.pki.ca, self.pki.ca.with_suffix(".key")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Certs:
    return Certs(tmp_path_factory.mktemp("tls-matrix"), pki)


def context(leaf: Leaf, chain: Sequence[Path] = (), **settings: Any) -> ssl.SSLContext:
    """A server context presenting `leaf` (and `chain` after it), with `settings` applied."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if chain:
        full = leaf.cert.with_suffix(".chain.pem")
        full.write_bytes(leaf.cert.read_bytes() + b"".join(p.read_bytes() for p in chain))
        ctx.load_cert_chain(full, leaf.key)
    else:
        ctx.load_cert_chain(leaf.cert, leaf.key)
    for name, value in settings.items():
        if name == "ciphers":
            ctx.set_ciphers(value)
        elif name == "client_ca":
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(value)
        else:
            setattr(ctx, name, value)
    return ctx


def send(server: ScriptedServer, /, **options: Any) -> Any:
    options = {"server": "localhost", "port": server.port, "tls": "implicit", "timeout": 10,
               **options}  # fmt: skip
    return mailpump.send(from_=FROM, rcpt=RCPT, source=BODY, **options)


def delivered(server: ScriptedServer, /, **options: Any) -> None:
    send(server, **options)
    [conn] = server.finished()
    assert [t.message for t in conn.transactions] == [BODY]


def refused(server: ScriptedServer, kind: str, /, *advice: str, **options: Any) -> str:
    with pytest.raises(mailpump.SMTPError) as info:
        send(server, **options)
    error = info.value
    assert error.kind == kind, str(error)
    for words in advice:
        assert words in str(error), str(error)
    [conn] = server.finished()
    assert conn.transactions == []
    return str(error)


Scripted = Callable[..., ScriptedServer]

# -- protocol versions and key types -------------------------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_one_protocol_version_only(scripted: Scripted, pki: Pki, version: ssl.TLSVersion) -> None:
    ctx = context(pki.server, minimum_version=version, maximum_version=version)
    delivered(scripted(implicit_tls=ctx), cafile=str(pki.ca))


@pytest.mark.parametrize("key", ["rsa", "ec", "ed25519"])
def test_leaf_key_types(scripted: Scripted, certs: Certs, pki: Pki, key: str) -> None:
    leaf = certs.signed(f"leaf-{key}", certs.root, key=key)
    delivered(scripted(implicit_tls=context(leaf)), cafile=str(pki.ca))


# -- chains --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def intermediate(certs: Certs) -> tuple[Leaf, Leaf]:
    inter = certs.signed("mailpump intermediate", certs.root, san=None, ca=True)
    leaf = certs.signed("leaf-under-intermediate", (inter.cert, inter.key))
    return inter, leaf


def test_intermediate_sent(scripted: Scripted, pki: Pki, intermediate: tuple[Leaf, Leaf]) -> None:
    inter, leaf = intermediate
    delivered(scripted(implicit_tls=context(leaf, [inter.cert])), cafile=str(pki.ca))


def test_intermediate_missing(scripted: Scripted, pki: Pki, intermediate: tuple[Leaf, Leaf]) -> None:
    _, leaf = intermediate
    refused(scripted(implicit_tls=context(leaf)), "certificate-unknown-issuer",
            "mailpump intermediate", "cafile=", cafile=str(pki.ca))  # fmt: skip


def test_intermediate_missing_but_in_cafile(
    scripted: Scripted, pki: Pki, certs: Certs, intermediate: tuple[Leaf, Leaf]
) -> None:
    inter, leaf = intermediate
    bundle = certs.d / "root-and-intermediate.pem"
    bundle.write_bytes(pki.ca.read_bytes() + inter.cert.read_bytes())
    delivered(scripted(implicit_tls=context(leaf)), cafile=str(bundle))


def test_unknown_issuer_names_it_and_asks_for_cafile(scripted: Scripted, pki: Pki) -> None:
    refused(scripted(implicit_tls=context(pki.untrusted)), "certificate-unknown-issuer",
            "mailpump other-ca", "cafile=", "system")  # fmt: skip


# -- dates and names -----------------------------------------------------------------------------


def test_expired_gives_the_date(scripted: Scripted, certs: Certs, pki: Pki) -> None:
    leaf = certs.signed("expired", certs.root, dates=("20200101000000Z", "20200102000000Z"))
    refused(scripted(implicit_tls=context(leaf)), "certificate-expired", "2020-01-02T00:00:00Z",
            cafile=str(pki.ca))  # fmt: skip


def test_wrong_name_lists_the_names(scripted: Scripted, pki: Pki) -> None:
    refused(scripted(implicit_tls=context(pki.wrong_host)), "certificate-name-mismatch",
            "mail.example.invalid", cafile=str(pki.ca))  # fmt: skip


def test_cn_only_certificate(scripted: Scripted, certs: Certs, pki: Pki) -> None:
    leaf = certs.signed("localhost", certs.root, san=None)
    refused(scripted(implicit_tls=context(leaf)), "certificate-name-mismatch",
            "subjectAltName", "CN=localhost", cafile=str(pki.ca))  # fmt: skip


# -- a certificate trusted as itself -------------------------------------------------------------


@pytest.mark.parametrize("ca", [True, False], ids=["CA-TRUE", "CA-FALSE"])
def test_self_signed_certificate_as_cafile(scripted: Scripted, certs: Certs, ca: bool) -> None:
    leaf = certs.self_signed(f"self-{ca}", ca)
    delivered(scripted(implicit_tls=context(leaf)), cafile=str(leaf.cert))


def test_self_signed_certificate_as_cafile_still_checks_the_name(
    scripted: Scripted, certs: Certs
) -> None:
    leaf = certs.self_signed("self-named", True, san="DNS:mail.example.invalid")
    refused(scripted(implicit_tls=context(leaf)), "certificate-name-mismatch",
            "mail.example.invalid", cafile=str(leaf.cert))  # fmt: skip


def test_self_signed_certificate_not_given_says_pass_it(scripted: Scripted, certs: Certs) -> None:
    leaf = certs.self_signed("self-unknown", True)
    refused(scripted(implicit_tls=context(leaf)), "certificate-self-signed", "cafile=",
            "fingerprint=")  # fmt: skip


# -- ciphers and client certificates -------------------------------------------------------------


def test_cbc_only_server_says_ssl_context(scripted: Scripted, certs: Certs, pki: Pki) -> None:
    leaf = certs.signed("leaf-cbc", certs.root, key="rsa")
    ctx = context(leaf, maximum_version=ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA:@SECLEVEL=0")
    refused(scripted(implicit_tls=ctx), "tls-no-common-protocol", "ssl_context=",
            cafile=str(pki.ca))  # fmt: skip


@pytest.fixture(scope="module")
def client_cert(certs: Certs) -> Leaf:
    return certs.signed("mailpump client", certs.root, san="DNS:client.example.test")


@pytest.mark.parametrize("key_apart", [True, False], ids=["keyfile", "key-in-certfile"])
def test_client_certificate_delivered(
    scripted: Scripted, pki: Pki, certs: Certs, client_cert: Leaf, key_apart: bool
) -> None:
    if key_apart:
        options = {"certfile": str(client_cert.cert), "keyfile": str(client_cert.key)}
    else:
        both = certs.d / "client-with-key.pem"
        both.write_bytes(client_cert.cert.read_bytes() + client_cert.key.read_bytes())
        options = {"certfile": str(both)}
    server = scripted(implicit_tls=context(pki.server, client_ca=pki.ca))
    delivered(server, cafile=str(pki.ca), **options)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_certificate_required(scripted: Scripted, pki: Pki, version: ssl.TLSVersion) -> None:
    ctx = context(pki.server, client_ca=pki.ca, minimum_version=version, maximum_version=version)
    # TLS 1.2 has no alert of its own for it: the server hangs up or says "handshake failure",
    # and the client knows why from the server's certificate request.
    refused(scripted(implicit_tls=ctx), "tls-client-certificate-required", "certfile=",
            cafile=str(pki.ca))  # fmt: skip


# -- the system's trust store and pinning --------------------------------------------------------


def test_private_ca_through_ssl_cert_file(
    scripted: Scripted, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    delivered(scripted(implicit_tls=context(pki.server)))


def _fingerprint(leaf: Leaf) -> str:
    der = ssl.PEM_cert_to_DER_cert(leaf.cert.read_text())
    return "sha256:" + ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_fingerprint_right(scripted: Scripted, pki: Pki) -> None:
    # No CA vouches for this certificate: the pin alone accepts it.
    delivered(scripted(implicit_tls=context(pki.untrusted)), fingerprint=_fingerprint(pki.untrusted))


def test_fingerprint_wrong(scripted: Scripted, pki: Pki) -> None:
    refused(scripted(implicit_tls=context(pki.untrusted)), "certificate-fingerprint-mismatch",
            _fingerprint(pki.untrusted), fingerprint=_fingerprint(pki.server))  # fmt: skip


# -- port mix-ups --------------------------------------------------------------------------------


def test_implicit_tls_against_a_plain_port(scripted: Scripted) -> None:
    message = refused(scripted(), "tls-plain-port", "tls='starttls'", "220")
    assert "timed out" not in message


def test_plain_smtp_against_a_tls_port(scripted: Scripted, pki: Pki) -> None:
    server = scripted(implicit_tls=context(pki.server))
    with pytest.raises(mailpump.SMTPTimeoutError) as info:
        send(server, tls="none", timeout=0.5)
    assert info.value.kind == "no-greeting"
    assert "tls='implicit'" in str(info.value)
