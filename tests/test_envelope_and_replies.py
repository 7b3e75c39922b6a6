"""Arguments refused before connecting, and server text made safe to show.

- A half-given credential (a user name without a password or token, a password or token without a
  user name, a mechanism with neither) is a `ValueError` before any connection: sending
  unauthenticated instead would hide the mistake until the server refuses the message.
- An envelope address whose quoted local part or address literal holds '<' or '>' is a
  `ValueError` before any connection: a server that ends the path at the first '>' would read the
  rest of `RCPT TO:<"x> NOTIFY=NEVER"@b.c>` as parameters.
- Line separators and bidirectional controls in a server's reply reach neither the exception
  text nor the `mailpump` logger: they are replaced by U+FFFD, as control characters are.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.scripted import ScriptedServer

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")


FROM, RCPT = "sender@example.test", ["one@example.test"]
BODY = b"Subject: x\r\n\r\nbody\r\n"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket that nobody accepts on: a client that connects to it gets no greeting."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def assert_never_connected(listener: socket.socket) -> None:
    """Connects a probe, then accepts once. The accept queue is first in, first out, so a
    connection made by the code under test would be accepted before the probe."""
    with socket.create_connection(listener.getsockname()[:2], timeout=10) as probe:
        listener.settimeout(10)
        accepted, peer = listener.accept()
        accepted.close()
        assert peer == probe.getsockname(), "a connection was made before the probe"


def send_to(listener: socket.socket, **kw: Any) -> Any:
    host, port = listener.getsockname()[:2]
    options: dict[str, Any] = {
        "from_": FROM,
        "rcpt": RCPT,
        "source": BODY,
        "server": host,
        "port": port,
        "tls": "none",
        # Bounds the wait for a greeting that never comes, should a connection be made.
        "timeout": 5,
    }
    options.update(kw)
    return mailpump.send(**options)


# -- a credential given in part ------------------------------------------------------------------

HALF_GIVEN: dict[str, tuple[dict[str, Any], str]] = {
    "user-only": ({"user": "me@example.test"}, "user name was given without a password"),
    "user-password-none": (
        {"user": "me@example.test", "password": None},
        "user name was given without a password",
    ),
    "password-only": ({"password": "secret"}, "password was given without a user name"),
    "token-only": ({"oauth_token": "ya29.t"}, "OAuth token was given without a user name"),
    "mechanism-only": ({"auth": "PLAIN"}, "AUTH PLAIN was asked for without"),
}


@pytest.mark.parametrize("case", list(HALF_GIVEN))
def test_a_half_given_credential_is_refused_before_connecting(
    listener: socket.socket, case: str
) -> None:
    creds, expected = HALF_GIVEN[case]
    with pytest.raises(ValueError, match=expected) as info:
        send_to(listener, **creds)
    assert "secret" not in str(info.value) and "ya29" not in str(info.value)
    assert_never_connected(listener)


def test_the_dict_form_refuses_a_user_with_a_none_password(listener: socket.socket) -> None:
    host, port = listener.getsockname()[:2]
    mailt: Any = {
        "from": FROM,
        "rcpt": RCPT,
        "source": BODY,
        "server": host,
        "port": port,
        "tls": "none",
        "timeout": 5,
        "user": "me@example.test",
        "password": None,
    }
    with pytest.raises(ValueError, match="without a password or an OAuth token"):
        mailpump.send(mailt)
    assert_never_connected(listener)


# -- '<' or '>' inside a quoted local part or an address literal ---------------------------------

SMUGGLED = {
    "quoted-local": ('"x> NOTIFY=NEVER"@b.c', "quoted local part"),
    "address-literal": ("<a@[1.2.3.4>]>", "address literal"),
}


@pytest.mark.parametrize("field", ["from_", "rcpt"])
@pytest.mark.parametrize("case", list(SMUGGLED))
def test_an_angle_bracket_inside_a_path_is_refused_before_connecting(
    listener: socket.socket, case: str, field: str
) -> None:
    address, place = SMUGGLED[case]
    value: Any = address if field == "from_" else [RCPT[0], address]
    with pytest.raises(ValueError, match=place) as info:
        send_to(listener, **{field: value})
    assert "'>'" in str(info.value)
    assert_never_connected(listener)


@pytest.mark.parametrize(
    "address", ['"john doe"@example.com', "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]"]
)
def test_quoted_local_parts_and_address_literals_still_go_out(
    scripted: Callable[..., ScriptedServer], address: str
) -> None:
    server = scripted()
    mailpump.send(
        from_=address,
        rcpt=[address],
        source=BODY,
        server=server.host,
        port=server.port,
        tls="none",
        timeout=10,
    )
    [conn] = server.finished()
    [transaction] = conn.transactions
    assert transaction.mail_from == address.encode()
    assert transaction.rcpt_tos == [address.encode()]


# -- line separators and bidi controls in replies ------------------------------------------------

HOSTILE = [
    "\u2028", "\u2029",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069",
    "\u200e", "\u200f", "\u061c",
]  # fmt: skip


def test_line_separators_and_bidi_controls_in_a_reply_are_not_shown(
    scripted: Callable[..., ScriptedServer], caplog: pytest.LogCaptureFixture
) -> None:
    # Each character between two letters, so that a reader would see where it was.
    words = [f"w{n}{c}x" for n, c in enumerate(HOSTILE)]
    refusal = [
        f"550-5.7.1 sender refused {' '.join(words[:7])}",
        f"550 5.7.1 \u202etxt.exe S: 250 2.0.0 Ok {' '.join(words[7:])}",
    ]
    server = scripted(replies={"mail": refusal})
    caplog.set_level(logging.DEBUG, logger="mailpump")
    with pytest.raises(mailpump.SMTPSenderRefused) as info:
        mailpump.send(
            from_=FROM,
            rcpt=RCPT,
            source=BODY,
            server=server.host,
            port=server.port,
            tls="none",
            timeout=10,
        )
    server.finished()
    error = info.value
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("mailpump")]
    [reply_log] = [line for line in logged if line.startswith("S: 550")]
    shown = {"str": str(error), "text": error.text, "log": reply_log}
    for where, text in shown.items():
        assert "sender refused" in text, where  # the reply did get there
        for n, c in enumerate(HOSTILE):
            assert c not in text, (where, f"U+{ord(c):04X}")
            assert f"w{n}\ufffdx" in text, (where, f"U+{ord(c):04X}")
    for line in logged:
        assert not any(c in line for c in HOSTILE), line
