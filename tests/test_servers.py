"""The test servers themselves, driven by smtplib: if these fail, no other result can be trusted."""

from __future__ import annotations

import smtplib
import ssl
import threading
from collections.abc import Callable

import pytest
from servers.certs import Pki
from servers.recording import PASSWORD, USER, RecordingServer
from servers.scripted import Fault, Script, ScriptedServer
from servers.sink import SmtpSink

MESSAGE = b"Subject: hello\r\n\r\n.leading dot\r\nline two\r\n"


def test_aiosmtpd_starttls_auth_records_the_message(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=pki.client_context())
        client.login(USER, PASSWORD)
        client.sendmail("a@example.test", ["b@example.test", "c@example.test"], MESSAGE)
    [got] = server.messages
    assert got.data == MESSAGE  # un-stuffed, end-of-data mark removed
    assert got.rcpt_tos == ["b@example.test", "c@example.test"]
    assert got.tls and got.auth_user == USER


def test_aiosmtpd_refuses_mail_before_starttls(
    aiosmtpd_server: Callable[..., RecordingServer],
) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert server.messages == []


def test_aiosmtpd_wrong_password(aiosmtpd_server: Callable[..., RecordingServer], pki: Pki) -> None:
    server = aiosmtpd_server(tls="starttls", auth=True)
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=pki.client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(USER, "wrong")


def test_aiosmtpd_implicit_tls(aiosmtpd_server: Callable[..., RecordingServer], pki: Pki) -> None:
    server = aiosmtpd_server(tls="implicit", auth=True)
    with smtplib.SMTP_SSL(server.host, server.port, timeout=10, context=pki.client_context()) as c:
        c.login(USER, PASSWORD)
        c.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert [m.tls for m in server.messages] == [True]


@pytest.mark.parametrize("which", ["untrusted", "wrong_host"])
def test_bad_certificates_fail_verification(
    aiosmtpd_server: Callable[..., RecordingServer], pki: Pki, which: str
) -> None:
    server = aiosmtpd_server(tls="starttls", cert=getattr(pki, which))
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=pki.client_context())


def test_smtp_sink_dumps_each_transaction(smtp_sink: Callable[..., SmtpSink]) -> None:
    sink = smtp_sink(dump=True)
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("pipelining")
        for i in range(3):
            client.sendmail("a@example.test", [f"r{i}@example.test"], MESSAGE)
    dumps = sink.messages()
    assert sorted(d.rcpt_tos[0] for d in dumps) == [f"<r{i}@example.test>" for i in range(3)]
    assert {d.message for d in dumps} == {MESSAGE.replace(b"\r\n", b"\n")}


def test_scripted_default_dialogue(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(Script(auth=["PLAIN", "LOGIN"]))
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.login("u", "p")
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    [conn] = server.finished()
    [txn] = conn.transactions
    assert txn.complete and txn.wire.endswith(b"\r\n.\r\n")
    assert txn.message == MESSAGE
    assert txn.rcpt_tos == [b"b@example.test"]
    assert conn.commands[-1] == b"QUIT"


@pytest.mark.parametrize("stage", ["greeting", "ehlo", "mail", "rcpt", "data", "eod"])
@pytest.mark.parametrize("fault", [Fault.DISCONNECT, Fault.GARBAGE, Fault.ENDLESS_LINE])
def test_scripted_faults_reach_smtplib(
    scripted: Callable[..., ScriptedServer], stage: str, fault: Fault
) -> None:
    server = scripted(replies={stage: fault})
    with pytest.raises((smtplib.SMTPException, OSError)):
        # smtplib waits for more after garbage; a short timeout ends its wait.
        with smtplib.SMTP(server.host, server.port, timeout=0.5) as client:
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    [conn] = server.finished()
    assert all(t.complete for t in conn.transactions)


def test_scripted_stall_times_out(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(replies={"mail": Fault.STALL})
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        assert client.sock is not None
        client.sock.settimeout(0.2)
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            client.mail("a@example.test")
        client.close()
    server.finished()


def test_scripted_starttls_keeps_injected_plaintext(
    scripted: Callable[..., ScriptedServer], pki: Pki
) -> None:
    server = scripted(
        tls=pki.server.server_context(),
        replies={"starttls": b"220 go ahead\r\n250-evil\r\n250 AUTH PLAIN\r\n"},
    )
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        # smtplib reads only the 220 and leaves the injected lines unread: the bug class itself.
        client.starttls(context=pki.client_context())
        client.ehlo()
    [conn] = server.finished()
    assert conn.tls and conn.tls_commands[0].upper().startswith(b"EHLO")


def test_scripted_barrier_holds_data_until_both_arrive(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(data_barrier=threading.Barrier(2))
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            with smtplib.SMTP(server.host, server.port, timeout=60) as client:
                client.sendmail("a@example.test", [f"r{i}@example.test"], MESSAGE)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(c.transactions) for c in server.finished(2)) == [1, 1]


def test_scripted_barrier_breaks_into_451_when_alone(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(data_barrier=threading.Barrier(2), barrier_timeout=0.2)
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    assert info.value.smtp_code == 451


def test_scripted_partial_recipients(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(rcpt_replies={"bad@example.test": "550 5.1.1 No such user"})
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        refused = client.sendmail(
            "a@example.test", ["ok@example.test", "bad@example.test"], MESSAGE
        )
    assert list(refused) == ["bad@example.test"]
    [conn] = server.finished()
    assert conn.transactions[0].rcpt_tos == [b"ok@example.test"]


def test_scripted_pipelining_probe(scripted: Callable[..., ScriptedServer]) -> None:
    # smtplib never pipelines: the probe must time out and see nothing beyond MAIL.
    server = scripted(hold_mail_until_data=True, probe_timeout=0.2)
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.sendmail("a@example.test", ["b@example.test"], MESSAGE)
    [conn] = server.finished()
    assert conn.unanswered_at_mail == [b""]


def test_scripted_reads_large_data_in_bulk(scripted: Callable[..., ScriptedServer]) -> None:
    body = b"".join(b".%07d line of text\r\n" % i for i in range(200_000))  # ~4 MiB, all stuffed
    server = scripted()
    with smtplib.SMTP(server.host, server.port, timeout=30) as client:
        client.sendmail("a@example.test", ["b@example.test"], body)
    [conn] = server.finished()
    assert conn.transactions[0].message == body
