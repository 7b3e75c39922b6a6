"""BINARYMIME (RFC 3030 §3): a message with a binary part goes out unchanged, in BDAT chunks after
`MAIL ... BODY=BINARYMIME`, and only to a server that offers BINARYMIME with CHUNKING; anywhere else
it is refused before any byte of its transaction, never sent over DATA (whose CRLF normalisation
would change it).

No real server at hand offers BINARYMIME (Postfix offers CHUNKING alone; aiosmtpd 1.4.6 has no
BDAT), so the scripted server, which stores BDAT chunks as they came, is the positive case; the
private Postfix is the real server that refuses. The engine's table (which server, which option,
what MAIL says) is in Rust."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from servers.postfix import DOMAIN, PostfixServer
from servers.scripted import ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

BINARYMIME = ["PIPELINING", "8BITMIME", "CHUNKING", "BINARYMIME"]

# Bare CR, bare LF, NUL, lines starting with '.', a lone '.' line, a CRLF.CRLF that would end
# DATA, high bytes, and no line end at the end.
PAYLOAD = b".first\rbare cr\nbare lf\x00nul\r\n.\r\n..two dots\r\n\r\n.\r\n\xff\xfe\x80end."
# Past one BDAT chunk (256 KiB), so that the chunk boundaries fall inside the binary data.
BIG = PAYLOAD * 20_000


def description(payload: bytes) -> dict[str, Any]:
    """A message with a text part and a binary part, every generated value fixed: encoding it
    twice gives the same bytes."""
    return {
        "headers": {
            "from": f"s@{DOMAIN}",
            "to": f"r@{DOMAIN}",
            "subject": "binary",
            "date": "Sat, 05 Dec 2026 10:00:00 +0000",
            "message-id": f"<binary@{DOMAIN}>",
            "content-type": 'multipart/mixed; boundary="mailpump-binary-test"',
        },
        "body": {
            "parts": [
                {"body": "The attachment is binary.\r\n"},
                {
                    "headers": {"content-type": "application/octet-stream"},
                    "body": payload,
                    "encoding": "binary",
                },
            ]
        },
    }


def encoded(payload: bytes) -> bytes:
    return b"".join(mailpump.message(description(payload)))


def binary_part(raw: bytes) -> bytes:
    """The binary part's bytes as Python's `email` parser reads the message back."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    [_, part] = list(parsed.iter_parts())
    assert part["Content-Transfer-Encoding"] == "binary"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


def mail_lines(server: ScriptedServer) -> list[bytes]:
    [conn] = server.finished()
    return [c for c in conn.commands if c.startswith(b"MAIL")]


@pytest.mark.parametrize("payload", [PAYLOAD, BIG], ids=["small", "several-chunks"])
def test_a_binary_part_is_delivered_byte_for_byte(
    scripted: Callable[..., ScriptedServer], payload: bytes
) -> None:
    message = mailpump.message(description(payload))
    assert message.binarymime
    server = scripted(extensions=BINARYMIME)
    mailpump.send(from_=f"<s@{DOMAIN}>", rcpt=f"<r@{DOMAIN}>", source=message,
                  server="127.0.0.1", port=server.port, tls="none")  # fmt: skip
    [conn] = server.finished()
    assert [c for c in conn.commands if c.startswith(b"MAIL")] == [
        f"MAIL FROM:<s@{DOMAIN}> BODY=BINARYMIME".encode()
    ]
    assert b"DATA" not in conn.commands
    [transaction] = conn.transactions
    assert transaction.bdat and transaction.complete
    assert transaction.message == encoded(payload)
    assert binary_part(transaction.message) == payload


def test_bytes_marked_binarymime_go_out_unchanged(scripted: Callable[..., ScriptedServer]) -> None:
    raw = b"Subject: raw\nContent-Transfer-Encoding: binary\n\n" + PAYLOAD
    server = scripted(extensions=BINARYMIME)
    with mailpump.open("127.0.0.1", server.port, tls="none") as session:
        session.greet()
        session.send({"from": f"<s@{DOMAIN}>", "rcpt": f"<r@{DOMAIN}>", "source": raw,
                      "binarymime": True})  # fmt: skip
        # The same bytes without the flag are text: normalised, declared 8BITMIME.
        session.send({"from": f"<s@{DOMAIN}>", "rcpt": f"<r@{DOMAIN}>", "source": raw})
    [conn] = server.finished()
    assert [c for c in conn.commands if c.startswith(b"MAIL")] == [
        f"MAIL FROM:<s@{DOMAIN}> BODY=BINARYMIME".encode(),
        f"MAIL FROM:<s@{DOMAIN}> BODY=8BITMIME".encode(),
    ]
    binary, text = conn.transactions
    assert binary.message == raw
    assert text.message != raw and b"\r" not in text.message.replace(b"\r\n", b"")


def test_an_email_message_marked_binarymime(scripted: Callable[..., ScriptedServer]) -> None:
    msg = EmailMessage()
    msg["From"] = f"s@{DOMAIN}"
    msg["To"] = f"r@{DOMAIN}"
    msg["Subject"] = "from email"
    msg.set_content(b"\x00\x01\xff bytes", "application", "octet-stream", cte="binary")
    server = scripted(extensions=BINARYMIME)
    mailpump.send(source=msg, binarymime=True, server="127.0.0.1", port=server.port, tls="none")
    assert mail_lines(server) == [f"MAIL FROM:<s@{DOMAIN}> BODY=BINARYMIME".encode()]
    [conn] = server.finished()
    parsed = email.message_from_bytes(conn.transactions[0].message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_payload(decode=True) == b"\x00\x01\xff bytes"


def test_send_many_and_the_pool_send_binary_messages(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(extensions=BINARYMIME)
    tables = [
        {"from": f"<s@{DOMAIN}>", "rcpt": f"<r{i}@{DOMAIN}>",
         "source": mailpump.message(description(PAYLOAD)) if i % 2 else f"Subject: {i}\n\nhi\n"}
        for i in range(6)
    ]  # fmt: skip
    with mailpump.open("127.0.0.1", server.port, tls="none") as session:
        session.greet()
        assert all(isinstance(o, mailpump.SendResult) for o in session.send_many(tables))
    mails = mail_lines(server)
    assert [m.endswith(b"BODY=BINARYMIME") for m in mails] == [i % 2 == 1 for i in range(6)]

    server = scripted(extensions=BINARYMIME)
    with mailpump.Pool("127.0.0.1", server.port, connections=1, tls="none") as pool:
        pool.send(from_=f"<s@{DOMAIN}>", rcpt=f"<r@{DOMAIN}>",
                  source=mailpump.message(description(PAYLOAD)))  # fmt: skip
    [conn] = server.finished()
    assert conn.transactions[0].message == encoded(PAYLOAD)


@pytest.mark.parametrize(
    ("extensions", "chunking", "why"),
    [
        (["PIPELINING", "8BITMIME", "CHUNKING"], True, "does not offer BINARYMIME"),
        (BINARYMIME, False, "chunking=False"),
        (["PIPELINING", "8BITMIME", "BINARYMIME"], True, "without CHUNKING"),
    ],
)
def test_refused_before_any_byte_of_the_transaction(
    scripted: Callable[..., ScriptedServer], extensions: list[str], chunking: bool, why: str
) -> None:
    server = scripted(extensions=extensions)
    with pytest.raises(mailpump.SMTPError) as caught:
        mailpump.send(from_=f"<s@{DOMAIN}>", rcpt=f"<r@{DOMAIN}>",
                      source=mailpump.message(description(PAYLOAD)), server="127.0.0.1",
                      port=server.port, tls="none", chunking=chunking)  # fmt: skip
    assert caught.value.kind == "extension-not-offered"
    assert not caught.value.transient
    assert why in str(caught.value) and "BINARYMIME" in str(caught.value)
    [conn] = server.finished()
    assert not [c for c in conn.commands if c.split()[0] in (b"MAIL", b"RCPT", b"DATA", b"BDAT")]


def test_the_step_by_step_commands_refuse_a_binary_message(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(extensions=BINARYMIME)
    with mailpump.open("127.0.0.1", server.port, tls="none") as session:
        session.greet()
        session.mail(f"<s@{DOMAIN}>")
        session.rcpt(f"<r@{DOMAIN}>")
        with pytest.raises(mailpump.SMTPError) as caught:
            session.data(mailpump.message(description(PAYLOAD)))
        assert caught.value.kind == "extension-not-offered"
        session.rset()
    [conn] = server.finished()
    assert b"DATA" not in conn.commands and not conn.transactions


def test_postfix_refuses_it_before_any_byte_and_takes_the_others(
    postfix: Callable[[], PostfixServer],
) -> None:
    server = postfix()
    with mailpump.open("127.0.0.1", server.port, tls="none", timeout=60) as session:
        ehlo = session.greet()
        assert ehlo is not None
        # Postfix 3.7 offers CHUNKING, not BINARYMIME.
        keywords = ehlo.text.split()
        assert "CHUNKING" in keywords and "BINARYMIME" not in keywords
        with pytest.raises(mailpump.SMTPError) as caught:
            session.send({"from": f"<s@{DOMAIN}>", "rcpt": f"<r@{DOMAIN}>",
                          "source": mailpump.message(description(PAYLOAD))})  # fmt: skip
        assert caught.value.kind == "extension-not-offered"
        tables = [
            {"from": f"<s@{DOMAIN}>", "rcpt": f"<r{i}@{DOMAIN}>",
             "source": mailpump.message(description(PAYLOAD)) if i == 1 else f"Subject: {i}\n\nhi\n"}
            for i in range(3)
        ]  # fmt: skip
        outcomes = list(session.send_many(tables))
    assert isinstance(outcomes[0], mailpump.SendResult)
    assert isinstance(outcomes[1], mailpump.SMTPError)
    assert outcomes[1].kind == "extension-not-offered"
    assert isinstance(outcomes[2], mailpump.SendResult)
    [log] = server.sessions(1)
    # The binary messages never reached MAIL: two transactions in all.
    assert log["mail"] == 2 and log["rcpt"] == 2 and log.get("data", 0) == 0, log
    assert sorted(server.delivered(2)) == [b"Subject: 0\n\nhi\n", b"Subject: 2\n\nhi\n"]
