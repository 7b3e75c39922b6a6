"""`ssl_context=`: TLS through Python's OpenSSL (an `ssl.SSLContext`) under mailpump's client.

The servers are the scripted server with Python server contexts on loopback; the client contexts
are what a user makes: `ssl.create_default_context()`, with the test CA or a client certificate
loaded into it. Certificates made for one case come from the TLS matrix's helpers.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest
from servers.certs import Leaf, Pki
from servers.scripted import ScriptedServer
from test_tls_matrix import BODY, FROM, RCPT, Certs, context

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(60)

Scripted = Callable[..., ScriptedServer]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Certs:
    return Certs(tmp_path_factory.mktemp("ssl-context"), pki)


@pytest.fixture(scope="module")
def client_cert(certs: Certs) -> Leaf:
    return certs.signed("mailpump client", certs.root, san="DNS:client.example.test")


def trusting(pki: Pki) -> ssl.SSLContext:
    """Python's default client context, with the test CA added."""
    return ssl.create_default_context(cafile=str(pki.ca))


def send(server: ScriptedServer, /, **options: Any) -> Any:
    options = {"server": "localhost", "port": server.port, "tls": "implicit", "timeout": 10,
               **options}  # fmt: skip
    return mailpump.send(from_=FROM, rcpt=RCPT, source=BODY, **options)


def delivered(server: ScriptedServer, /, **options: Any) -> None:
    send(server, **options)
    [conn] = server.finished()
    assert conn.tls
    assert [t.message for t in conn.transactions] == [BODY]


def refused(server: ScriptedServer, kind: str, /, *advice: str, **options: Any) -> None:
    with pytest.raises(mailpump.SMTPError) as info:
        send(server, **options)
    assert info.value.kind == kind, str(info.value)
    for words in advice:
        assert words in str(info.value), str(info.value)
    [conn] = server.finished()
    assert conn.transactions == []


# -- delivered ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_implicit_tls(scripted: Scripted, pki: Pki, version: ssl.TLSVersion) -> None:
    server_ctx = context(pki.server, minimum_version=version, maximum_version=version)
    delivered(scripted(implicit_tls=server_ctx), ssl_context=trusting(pki))


def test_starttls(scripted: Scripted, pki: Pki) -> None:
    server = scripted(tls=context(pki.server))
    send(server, tls="starttls", ssl_context=trusting(pki))
    [conn] = server.finished()
    assert conn.tls
    assert conn.plaintext_after_starttls == b""
    assert [t.message for t in conn.transactions] == [BODY]


def test_client_certificate_from_the_context(
    scripted: Scripted, pki: Pki, client_cert: Leaf
) -> None:
    ctx = trusting(pki)
    ctx.load_cert_chain(client_cert.cert, client_cert.key)
    delivered(scripted(implicit_tls=context(pki.server, client_ca=pki.ca)), ssl_context=ctx)


def test_client_certificate_missing_from_the_context(scripted: Scripted, pki: Pki) -> None:
    # TLS 1.2 has no alert for it, only "handshake failure": the server's certificate request,
    # in clear text, tells why. (A TLS 1.3 server's refusal may come after the client's
    # handshake is over.)
    v12 = ssl.TLSVersion.TLSv1_2
    server_ctx = context(pki.server, client_ca=pki.ca, maximum_version=v12)
    refused(scripted(implicit_tls=server_ctx), "tls-client-certificate-required",
            "load_cert_chain", ssl_context=trusting(pki))  # fmt: skip


def test_many_messages_over_one_session(scripted: Scripted, pki: Pki) -> None:
    # TLS 1.3 session tickets arrive after the handshake, as EHLO goes out: they are not data
    # the server sent unasked, and the session goes on through every message.
    server = scripted(implicit_tls=context(pki.server))
    count = 60
    tables = (
        {"from": FROM, "rcpt": [f"<r{i}@example.test>"], "source": BODY} for i in range(count)
    )
    with mailpump.open("localhost", server.port, tls="implicit", timeout=10,
                       ssl_context=trusting(pki)) as session:  # fmt: skip
        session.greet()
        outcomes = list(session.send_many(tables))
        assert session.noop().code == 250
        session.quit()
    assert all(isinstance(o, mailpump.SendResult) for o in outcomes), outcomes
    [conn] = server.finished()
    assert len(conn.transactions) == count
    assert all(t.message == BODY for t in conn.transactions)


def test_pool_connections(scripted: Scripted, pki: Pki) -> None:
    server = scripted(implicit_tls=context(pki.server))
    with mailpump.Pool("localhost", server.port, tls="implicit", timeout=10, connections=2,
                       ssl_context=trusting(pki)) as pool:  # fmt: skip
        results = [pool.submit(from_=FROM, rcpt=RCPT, source=BODY) for _ in range(10)]
        assert all(isinstance(r.result(), mailpump.SendResult) for r in results)
    conns = server.finished(len(server.connections))
    assert sum(len(c.transactions) for c in conns) == 10
    assert all(c.tls for c in conns)


# -- refused, with advice for a context ----------------------------------------------------------


def test_untrusted_server(scripted: Scripted, pki: Pki) -> None:
    # The default context trusts the system's CAs, not the test CA.
    refused(scripted(implicit_tls=context(pki.server)), "certificate-unknown-issuer",
            "load_verify_locations", ssl_context=ssl.create_default_context())  # fmt: skip


def test_self_signed_server(scripted: Scripted, certs: Certs, pki: Pki) -> None:
    leaf = certs.self_signed("self-signed-ctx", ca=False)
    refused(scripted(implicit_tls=context(leaf)), "certificate-self-signed",
            "load_verify_locations", ssl_context=trusting(pki))  # fmt: skip


def test_wrong_name(scripted: Scripted, pki: Pki) -> None:
    refused(scripted(implicit_tls=context(pki.wrong_host)), "certificate-name-mismatch",
            ssl_context=trusting(pki))  # fmt: skip


def test_implicit_tls_against_a_plain_port(scripted: Scripted, pki: Pki) -> None:
    refused(scripted(), "tls-plain-port", "tls='starttls'", "220", ssl_context=trusting(pki))


# -- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        {"cafile": "ca.pem"},
        {"verify": False},
        {"verify": True},
        {"certfile": "client.pem"},
        {"keyfile": "client.key", "certfile": "client.pem"},
        {"fingerprint": "sha256:" + ":".join(["AB"] * 32)},
    ],
    ids=lambda o: "+".join(o),
)
def test_rustls_options_are_refused_with_a_context(
    scripted: Scripted, pki: Pki, option: dict[str, Any]
) -> None:
    server = scripted(implicit_tls=context(pki.server))
    with pytest.raises(ValueError, match="ssl_context") as info:
        send(server, ssl_context=trusting(pki), **option)
    for name in option:
        assert name in str(info.value)
    assert server.connections == []


def test_pool_refuses_them_too(pki: Pki) -> None:
    with pytest.raises(ValueError, match="cafile"):
        mailpump.Pool("localhost", 465, ssl_context=trusting(pki), cafile=str(pki.ca))


def test_a_context_of_the_wrong_type(scripted: Scripted) -> None:
    server = scripted()
    with pytest.raises(TypeError, match="ssl_context must be an ssl.SSLContext"):
        send(server, ssl_context="default")
    assert server.connections == []


def test_a_server_context(scripted: Scripted, pki: Pki) -> None:
    # A server-side context cannot start a client session: said, not a crash.
    refused(scripted(implicit_tls=context(pki.server)), "tls-config", "ssl_context",
            ssl_context=context(pki.server))  # fmt: skip
