"""The exception hierarchy and its attributes, and how errors cross the Rust boundary."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import mailpump
import pytest
from mailpump import errors, ltn12, mime


def test_hierarchy() -> None:
    assert issubclass(errors.MessageError, errors.MailpumpError)
    assert issubclass(errors.MessageError, ValueError)
    assert issubclass(errors.SMTPError, errors.MailpumpError)
    for cls in (
        errors.SMTPConnectError,
        errors.SMTPTimeoutError,
        errors.SMTPTLSError,
        errors.SMTPAuthError,
        errors.SMTPProtocolError,
        errors.SMTPReplyError,
        errors.SMTPOutcomeUnknown,
    ):
        assert issubclass(cls, errors.SMTPError), cls
    assert issubclass(errors.SMTPConnectError, ConnectionError)
    assert issubclass(errors.SMTPTimeoutError, TimeoutError)
    for cls in (
        errors.SMTPSenderRefused,
        errors.SMTPRecipientsRefused,
        errors.SMTPDataRefused,
    ):
        assert issubclass(cls, errors.SMTPReplyError), cls
    for name in errors.__all__:
        assert getattr(mailpump, name) is getattr(errors, name)


def test_reply_error_attributes() -> None:
    e = errors.SMTPSenderRefused(
        "550 5.1.0 no", code=550, enhanced="5.1.0", text="no", command="MAIL"
    )
    assert (e.code, e.enhanced, e.text, e.command) == (550, "5.1.0", "no", "MAIL")
    assert e.permanent and not e.transient
    t = errors.SMTPDataRefused("451 later", code=451, text="later", command="DATA")
    assert t.transient and not t.permanent
    assert t.enhanced is None


def test_recipients_refused_carries_the_refusals() -> None:
    e = errors.SMTPRecipientsRefused("all refused", refused={"a@x": "r"}, code=550)
    assert e.refused == {"a@x": "r"}
    assert e.command == "RCPT"
    assert errors.SMTPRecipientsRefused("x").refused == {}


@pytest.mark.parametrize(
    "exc",
    [
        errors.MessageError("m", part="message", header="to", reason="bad"),
        errors.SMTPReplyError(
            "r", code=554, enhanced="5.0.0", text="t", command="DATA"
        ),
        errors.SMTPRecipientsRefused("r", refused={"a@x": "no"}, code=550),
        errors.SMTPAuthError("a", code=535, text="bad credentials"),
        errors.SMTPConnectError("refused", kind="connection-refused", transient=True),
        errors.SMTPAuthError("a", code=454, enhanced="4.7.0", kind="auth-refused", transient=True),
        errors.SMTPOutcomeUnknown("no verdict", kind="outcome-unknown"),
    ],
)
def test_exceptions_pickle(exc: Exception) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.__dict__ == exc.__dict__
    if isinstance(exc, errors.SMTPError):
        assert isinstance(back, errors.SMTPError)
        assert (back.kind, back.transient) == (exc.kind, exc.transient)


def test_kind_and_transient_default_by_class() -> None:
    assert (errors.SMTPError("x").kind, errors.SMTPError("x").transient) == ("io", False)
    assert errors.SMTPOutcomeUnknown("x").kind == "outcome-unknown"
    assert errors.SMTPTimeoutError("x").kind == "timeout"
    # A reply error without an explicit `transient` says what its code says (RFC 5321 §4.2.1).
    assert errors.SMTPReplyError("x", code=421).transient
    assert not errors.SMTPReplyError("x", code=421, transient=False).transient


def test_message_error_from_rust_has_its_attributes() -> None:
    with pytest.raises(mailpump.MessageError) as info:
        mailpump.message(
            {"body": [{"body": "x"}, {"headers": {"X-Bad": "a\r\nb"}, "body": "y"}]}
        )
    e = info.value
    assert type(e) is errors.MessageError
    assert e.part == "message.parts[1]"
    assert e.header == "X-Bad"
    assert e.reason


def test_python_filter_error_comes_back_as_itself_through_a_native_chain() -> None:
    boom = KeyError("filter failed")

    def bad_filter(chunk: bytes | None) -> bytes:
        if chunk:
            raise boom
        return b""

    src = ltn12.source.chain(
        ltn12.source.string(b"abc"), mime.encode("base64"), bad_filter
    )
    with pytest.raises(KeyError) as info:
        list(src)
    assert info.value is boom
    assert list(src) == [], "fused after an error"


def test_python_source_error_inside_cat_and_message() -> None:
    boom = OSError(5, "device gone")

    def failing() -> Iterator[bytes]:
        yield b"ok"
        raise boom

    msg = mailpump.message(
        {"body": ltn12.source.cat(ltn12.source.string(b"a"), failing())}
    )
    with pytest.raises(OSError) as info:
        b"".join(msg)
    assert info.value is boom


def test_file_errors_are_os_errors(tmp_path: object) -> None:
    with pytest.raises(FileNotFoundError):
        ltn12.source.file("/nonexistent/mailpump/file.bin")
    with pytest.raises(IsADirectoryError):
        list(ltn12.source.file(str(tmp_path)))
