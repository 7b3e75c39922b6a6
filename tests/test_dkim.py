"""DKIM signing (RFC 6376; ed25519-sha256 from RFC 8463) on `send`, `Session`, `send_many` and
`Pool`: every message the loopback server receives verifies with dkimpy, an independent verifier
whose DNS lookup the test answers with the key's TXT record; keys made by `openssl` as users make
them. A message that cannot be signed sends nothing."""

from __future__ import annotations

import base64
import dataclasses
import io
import subprocess
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from servers.postfix import PostfixServer
from servers.recording import RecordingServer
from servers.scripted import ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")
dkim = pytest.importorskip("dkim", reason="dkimpy is in the test extra (pyproject.toml)")

DOMAIN = "example.test"
SELECTOR = "mp"


@dataclasses.dataclass(frozen=True)
class Key:
    """A private key file and the TXT record that publishes its public half."""

    path: Path
    txt: bytes


def openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    """`rsa` (PKCS#8, what `openssl genrsa` writes), `rsa-pkcs1` (`-traditional`), `ed25519`."""
    d = tmp_path_factory.mktemp("dkim")
    made: dict[str, Key] = {}
    for name, command in [
        ("rsa", ["genrsa", "-out", str(d / "rsa.pem"), "2048"]),
        ("rsa-pkcs1", ["genrsa", "-traditional", "-out", str(d / "rsa-pkcs1.pem"), "2048"]),
        ("ed25519", ["genpkey", "-algorithm", "ed25519", "-out", str(d / "ed25519.pem")]),
    ]:
        openssl(*command)
        path = d / f"{name}.pem"
        spki = openssl("pkey", "-in", str(path), "-pubout", "-outform", "DER")
        if name == "ed25519":
            # RFC 8463 §4: the bare 32-byte public key, not its SubjectPublicKeyInfo.
            txt = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(spki[-32:])
        else:
            txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(spki)
        made[name] = Key(path, txt)
    return made


def verifies(data: bytes, key: Key) -> bool:
    """dkimpy's verdict on `data`, its DNS query answered with `key`'s record only."""

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode(), name
        return key.txt

    return bool(dkim.verify(data, dnsfunc=dns))


def signature(data: bytes) -> dict[str, str]:
    """The tags of the first DKIM-Signature field of `data`."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("DKIM-Signature: "), head[:200]
    field = head.split("\r\n")[0]
    for line in head.split("\r\n")[1:]:
        if not line[:1].isspace():
            break
        field += line
    tags = field.split(":", 1)[1]
    return {
        k.strip(): "".join(v.split())
        for k, v in (t.split("=", 1) for t in tags.split(";") if "=" in t)
    }


@pytest.fixture
def server(aiosmtpd_server: Callable[..., RecordingServer]) -> RecordingServer:
    return aiosmtpd_server(tls="none", auth=False)


def described(i: int = 0, body: Any = None) -> Any:
    """A message() source with a Bcc header: the envelope from its header."""
    return mailpump.message({
        "headers": {
            "from": f"Sender <s@{DOMAIN}>",
            "to": "r@example.org",
            "cc": "c@example.org",
            "bcc": "hidden@example.org",
            "subject": f"signed {i}",
        },
        "body": body if body is not None else f"Hello {i}.\r\n.a line with a dot\r\n",
    })  # fmt: skip


RAW = (
    f"From: s@{DOMAIN}\nTo: r@example.org\nSubject: raw\n\n"
    "bare LF line ends\n.dot line\n\ntrailing empty lines\n\n\n"
).encode()


def email_message() -> EmailMessage:
    m = EmailMessage()
    m["From"] = f"s@{DOMAIN}"
    m["To"] = "r@example.org"
    m["Bcc"] = "hidden@example.org"
    m["Subject"] = "an EmailMessage"
    m.set_content("Hello   with  spaces \n")
    m.add_attachment(b"\x00\x01binary" * 1000, maintype="application", subtype="octet-stream")
    return m


def chunks() -> Iterator[bytes]:
    yield f"From: s@{DOMAIN}\r\nTo: r@example.org\r\nSub".encode()
    yield b"ject: a generator\r\n\r\n"
    for i in range(200):
        yield f"line {i}\n".encode()


SOURCES: dict[str, Callable[[], Any]] = {
    "message": described,
    "bytes": lambda: RAW,
    "email-message": email_message,
    "generator": chunks,
    "file-object": lambda: io.BytesIO(RAW),
}


@pytest.mark.parametrize("canonicalization", ["simple/simple", "relaxed/relaxed", "relaxed"])
@pytest.mark.parametrize("kind", ["rsa", "rsa-pkcs1", "ed25519"])
def test_send_signs_what_the_server_receives(
    server: RecordingServer, keys: dict[str, Key], kind: str, canonicalization: str
) -> None:
    key = keys[kind]
    signer = mailpump.DKIM(DOMAIN, SELECTOR, key.path, canonicalization=canonicalization)
    assert signer.algorithm == ("ed25519-sha256" if kind == "ed25519" else "rsa-sha256")
    mailpump.send(source=described(), server=server.host, port=server.port, tls="none", dkim=signer)
    [got] = server.messages
    assert sorted(got.rcpt_tos) == ["c@example.org", "hidden@example.org", "r@example.org"]
    assert b"hidden@" not in got.data
    assert verifies(got.data, key)
    tags = signature(got.data)
    assert tags["d"] == DOMAIN and tags["s"] == SELECTOR
    assert tags["c"] == canonicalization if "/" in canonicalization else "relaxed/simple"
    # From is oversigned: one more From in h= than the message has.
    assert [h.lower() for h in tags["h"].split(":")].count("from") == 2
    # Changing a signed header breaks it: the verifier is really checking.
    assert not verifies(got.data.replace(b"Subject: signed 0", b"Subject: signed 1"), key)


@pytest.mark.parametrize("source", SOURCES)
def test_every_kind_of_source_is_signed_as_it_is_sent(
    server: RecordingServer, keys: dict[str, Key], source: str
) -> None:
    key = keys["ed25519"]
    signer = mailpump.DKIM(DOMAIN, SELECTOR, key.path.read_bytes(), canonicalization="simple")
    mailpump.send(
        {"from": f"s@{DOMAIN}", "rcpt": ["r@example.org"], "source": SOURCES[source]()},
        server=server.host,
        port=server.port,
        tls="none",
        dkim=signer,
    )
    [got] = server.messages
    assert b"hidden@" not in got.data
    assert b"\r\n" in got.data and b"\n" not in got.data.replace(b"\r\n", b"")
    assert verifies(got.data, key), got.data[:600]


def test_a_session_signs_each_message_and_send_many_too(
    server: RecordingServer, keys: dict[str, Key]
) -> None:
    key = keys["rsa"]
    signer = {"domain": DOMAIN, "selector": SELECTOR, "key": str(key.path)}
    with mailpump.open(server.host, server.port, tls="none", dkim=signer) as session:
        session.greet()
        for i in range(3):
            session.send(source=described(i))
        outcomes = list(session.send_many({"source": described(i)} for i in range(3, 10)))
        session.quit()
    assert all(isinstance(o, mailpump.SendResult) for o in outcomes)
    datas = [m.data for m in server.messages]
    assert len(datas) == 10
    assert all(verifies(d, key) for d in datas)
    assert len({signature(d)["b"] for d in datas}) == 10


def test_the_step_by_step_dialogue_signs_what_data_sends(
    server: RecordingServer, keys: dict[str, Key]
) -> None:
    key = keys["ed25519"]
    with mailpump.open(server.host, server.port, tls="none",
                       dkim=mailpump.DKIM(DOMAIN, SELECTOR, key.path)) as session:  # fmt: skip
        session.greet()
        session.mail(f"s@{DOMAIN}")
        session.rcpt("r@example.org")
        session.data(iter([b"From: s@example.test\nSubject: step by step\n\n", b"body\n"]))
    [got] = server.messages
    assert verifies(got.data, key)


def test_a_pool_signs_every_message(server: RecordingServer, keys: dict[str, Key]) -> None:
    key = keys["ed25519"]
    signer = mailpump.DKIM(DOMAIN, SELECTOR, key.path)
    with mailpump.Pool(server.host, server.port, tls="none", connections=2, dkim=signer) as pool:
        futures = [pool.submit(source=described(i)) for i in range(12)]
        futures.append(pool.submit(source=described(12, body=iter([b"one-shot body\r\n"]))))
        for f in futures:
            assert f.result(timeout=30)
    datas = [m.data for m in server.messages]
    assert len(datas) == 13
    assert all(verifies(d, key) for d in datas)


def test_sign_alone_gives_the_message_as_it_would_be_sent(keys: dict[str, Key]) -> None:
    key = keys["rsa"]
    signer = mailpump.DKIM(DOMAIN, SELECTOR, key.path.read_text(), headers=["From", "Subject"])
    signed = b"".join(signer.sign(email_message()))
    assert b"hidden@" not in signed
    assert verifies(signed, key)
    assert signature(signed)["h"].lower() == "subject:from"
    assert signer.headers == ("From", "Subject")


def test_bad_keys_and_options_are_refused_when_made(keys: dict[str, Key], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no PEM private key") as raised:
        mailpump.DKIM(DOMAIN, SELECTOR, b"not a key at all")
    secret = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleSBtYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ValueError) as raised:
        mailpump.DKIM(DOMAIN, SELECTOR, secret)
    assert "c2VjcmV0" not in str(raised.value)
    with pytest.raises(ValueError, match="does not fit"):
        mailpump.DKIM(DOMAIN, SELECTOR, keys["ed25519"].path, algorithm="rsa-sha256")
    with pytest.raises(ValueError, match="canonicalization"):
        mailpump.DKIM(DOMAIN, SELECTOR, keys["ed25519"].path, canonicalization="loose")
    with pytest.raises(ValueError, match="selector must not be empty"):
        mailpump.DKIM(DOMAIN, "", keys["ed25519"].path)
    with pytest.raises(ValueError, match="cannot go in"):
        mailpump.DKIM(DOMAIN, SELECTOR, keys["ed25519"].path, headers=["From:"])
    with pytest.raises(TypeError, match="list of header names"):
        mailpump.DKIM(DOMAIN, SELECTOR, keys["ed25519"].path, headers="From")
    with pytest.raises(FileNotFoundError):
        mailpump.DKIM(DOMAIN, SELECTOR, tmp_path / "missing.pem")
    with pytest.raises(TypeError, match="dkim must be a mailpump.DKIM"):
        mailpump.send(source=RAW, rcpt="r@example.org", from_="s@example.test", dkim="key.pem")


def test_a_message_that_cannot_be_signed_sends_nothing(
    server: RecordingServer, keys: dict[str, Key]
) -> None:
    signer = mailpump.DKIM(DOMAIN, SELECTOR, keys["ed25519"].path, headers=["From"])

    def failing() -> Iterator[bytes]:
        yield b"From: s@example.test\r\n\r\nfirst chunk\r\n"
        raise OSError("the disk went away")

    with mailpump.open(server.host, server.port, tls="none", dkim=signer) as session:
        session.greet()
        env = {"from": f"s@{DOMAIN}", "rcpt": "r@example.org"}
        with pytest.raises(ValueError, match="DKIM"):
            # No From: nothing to sign.
            session.send(env, source=b"Subject: no From\r\n\r\nbody\r\n")
        # Nothing of it reached the server: the session goes on, no transaction open.
        session.send(env, source=described(1))
    with mailpump.open(server.host, server.port, tls="none", dkim=signer) as session:
        session.greet()
        with pytest.raises(OSError, match="the disk went away"):
            session.send(env, source=failing())
    [got] = server.messages
    assert b"signed 1" in got.data


def test_the_command_line_signs_with_its_dkim_options(
    server: RecordingServer, keys: dict[str, Key], capfd: pytest.CaptureFixture[str]
) -> None:
    from mailpump import cli
    from mailpump.__main__ import main

    key = keys["rsa-pkcs1"]
    base = ["send", "--server", server.host, "--port", str(server.port), "--tls", "none",
            "--from", f"s@{DOMAIN}", "--to", "r@example.org", "--bcc", "hidden@example.org",
            "--subject", "from the command line", "--body", "signed"]  # fmt: skip
    signing = ["--dkim-domain", DOMAIN, "--dkim-selector", SELECTOR, "--dkim-key", str(key.path)]
    assert main([*base, *signing]) == cli.EXIT_OK
    [got] = server.messages
    assert b"hidden@" not in got.data
    assert verifies(got.data, key)
    assert main([*base, *signing[:4]]) == cli.EXIT_USAGE
    assert "together" in capfd.readouterr().err
    assert main([*base, *signing[:4], "--dkim-key", str(key.path) + ".missing"]) == cli.EXIT_USAGE
    assert len(server.messages) == 1


def test_bdat_chunks_carry_what_was_signed(
    postfix: Callable[[], PostfixServer], keys: dict[str, Key]
) -> None:
    from servers.postfix import DOMAIN as POSTFIX_DOMAIN

    key = keys["ed25519"]
    signer = mailpump.DKIM(DOMAIN, SELECTOR, key.path, canonicalization="simple/simple")
    lines = "".join(f"line {n} of a body past one BDAT chunk\n" for n in range(20_000))
    source = f"From: s@{DOMAIN}\nSubject: chunked\n\n.dot\nbare\rcr\n{lines}".encode()
    server = postfix()
    mailpump.send(from_=f"<s@{POSTFIX_DOMAIN}>", rcpt=f"<r@{POSTFIX_DOMAIN}>", source=source,
                  server="127.0.0.1", port=server.port, tls="none", dkim=signer)  # fmt: skip
    [session] = server.sessions(1)
    assert session.get("bdat", 0) >= 2 and session.get("data", 0) == 0, session
    [delivered] = server.delivered(1)
    # The maildir holds LF line ends; the wire had CRLF.
    assert verifies(delivered.replace(b"\n", b"\r\n"), key)


def test_a_binary_message_is_refused_before_a_byte(
    scripted: Callable[..., ScriptedServer], keys: dict[str, Key]
) -> None:
    # A binary part goes out unchanged (BINARYMIME) while DKIM hashes CRLF lines: no signature
    # could match, so signing refuses it, even to a server that takes BINARYMIME.
    signer = mailpump.DKIM(DOMAIN, SELECTOR, keys["ed25519"].path)
    binary = mailpump.message({
        "headers": {"from": f"s@{DOMAIN}", "to": "r@example.org"},
        "body": b"\x00bare\rCR\nLF",
        "encoding": "binary",
    })  # fmt: skip
    with pytest.raises(ValueError, match="binary part .* base64"):
        signer.sign(binary)
    server = scripted(extensions=["PIPELINING", "8BITMIME", "CHUNKING", "BINARYMIME"])
    with pytest.raises(ValueError, match="binary part"):
        mailpump.send(source=binary, server="127.0.0.1", port=server.port, tls="none",
                      dkim=signer)  # fmt: skip
    [conn] = server.finished()
    assert conn.transactions == []
    assert not any(c.startswith(b"MAIL") for c in conn.commands)
