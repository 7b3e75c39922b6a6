"""The Python contract of ``mailpump.mime``: factories, argument shifting, the flush protocol,
chunk-split invariance through the binding, native/Python mixing, and the primitives' tuples."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mailpump import ltn12, mime
from mailpump._mailpump import Filter

FACTORIES: dict[str, Callable[[], Filter]] = {
    "normalize": mime.normalize,
    "normalize-lf": lambda: mime.normalize(b"\n"),
    "encode-base64": lambda: mime.encode("base64"),
    "encode-qp-text": lambda: mime.encode("quoted-printable"),
    "encode-qp-binary": lambda: mime.encode("quoted-printable", "binary"),
    "decode-base64": lambda: mime.decode("base64"),
    "decode-qp": lambda: mime.decode("quoted-printable"),
    "wrap-text": mime.wrap,
    "wrap-59": lambda: mime.wrap(59),
    "wrap-qp": lambda: mime.wrap("quoted-printable"),
    "stuff": mime.stuff,
}


def run(f: Filter, chunks: Sequence[bytes | bytearray]) -> bytes:
    return b"".join(f(c) for c in chunks) + f(None)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return [p for p in pieces if p]


@pytest.mark.parametrize("name", FACTORIES)
def test_factories_make_native_filters(name: str) -> None:
    f = FACTORIES[name]()
    assert isinstance(f, Filter)
    assert type(f(b"some input\r\n.line")) is bytes
    assert type(f(None)) is bytes
    assert f() == b"", "a flushed filter holds nothing"


@pytest.mark.parametrize("name", FACTORIES)
@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0), max_size=8)
)
def test_output_does_not_depend_on_chunking(
    name: str, data: bytes, cuts: list[int]
) -> None:
    whole = run(FACTORIES[name](), [data])
    assert run(FACTORIES[name](), split(data, cuts)) == whole
    assert run(FACTORIES[name](), [bytes([b]) for b in data]) == whole


def test_flush_resets_the_filter_for_a_new_stream() -> None:
    f = mime.encode("base64")
    first = run(f, [b"ab"])
    assert run(f, [b"ab"]) == first == b"YWI="


def test_bytearray_and_str_inputs() -> None:
    assert run(mime.encode("base64"), [bytearray(b"abc")]) == b"YWJj"
    assert mime.normalize("\n")(b"a\r\nb") == b"a\nb"


def test_wrap_argument_shifting() -> None:
    data = b"x" * 200
    assert run(mime.wrap(59), [data]) == run(mime.wrap("text", 59), [data])
    assert run(mime.wrap("base64", 59), [data]) == run(mime.wrap("text", 59), [data])
    # quoted-printable ignores the length, as LuaSocket does.
    assert run(mime.wrap("quoted-printable", 10), [data]) == run(
        mime.wrap("quoted-printable"), [data]
    )
    assert max(len(line) for line in run(mime.wrap(59), [data]).split(b"\r\n")) == 59


@pytest.mark.parametrize(
    "make",
    [
        lambda: mime.encode("rot13"),  # type: ignore[arg-type]
        lambda: mime.decode("7bit"),  # type: ignore[arg-type]
        lambda: mime.wrap("fancy"),  # type: ignore[arg-type]
    ],
)
def test_unknown_names_raise_like_luasocket(make: Callable[[], Filter]) -> None:
    with pytest.raises(ValueError, match=r"unknown key \("):
        make()


def test_wrong_types() -> None:
    with pytest.raises(TypeError):
        mime.encode(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mime.wrap(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mime.encode("base64")(12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        mime.encode("quoted-printable", "weird")  # type: ignore[arg-type]


def test_native_and_python_filters_mix_in_a_chain() -> None:
    calls: list[bytes | None] = []

    def upper(chunk: bytes | None) -> bytes:
        calls.append(chunk)
        return b"" if chunk is None else chunk.upper()

    chain = ltn12.filter.chain(mime.encode("base64"), upper, mime.wrap(8))
    out = run(chain, [b"hello ", b"world"])
    assert out.replace(b"\r\n", b"") == base64.b64encode(b"hello world").upper()
    assert calls[-1] is None, "the Python filter is flushed at the end"
    assert all(c is None or isinstance(c, bytes) for c in calls)


def test_used_filter_is_moved_into_the_chain() -> None:
    enc = mime.encode("base64")
    ltn12.filter.chain(enc)
    with pytest.raises(ValueError, match="moved"):
        enc(b"x")
    assert "moved" in repr(enc)


def test_a_filter_returning_none_is_treated_as_empty() -> None:
    src = ltn12.source.chain(
        ltn12.source.string(b"abc"), lambda c: None if c is None else c
    )
    assert b"".join(src) == b"abc"


def test_primitives_return_tuples() -> None:
    a, b = mime.b64(b"abcd", b"")
    assert isinstance(a, bytes) and isinstance(b, bytes)
    assert a + (mime.b64(b)[0] or b"") == base64.b64encode(b"abcd")
    assert mime.b64(b"") == (None, None)
    assert mime.b64(None) == (None, None)
    out, left = mime.wrp(76, b"abc")
    assert out == b"abc" and isinstance(left, int)
    out, ctx = mime.eol(0, b"a\nb")
    assert out == b"a\r\nb" and isinstance(ctx, int)
    out, state = mime.dot(2, b".x")
    assert out == b"..x" and isinstance(state, int)
    for fn in (mime.unb64, mime.qp, mime.unqp):
        res = fn(b"abc", b"")
        assert isinstance(res, tuple) and len(res) == 2
    wrapped = mime.qpwrp(76, b"abc")
    assert isinstance(wrapped, tuple) and len(wrapped) == 2


def test_primitives_accept_str() -> None:
    assert mime.eol(0, "a\nb")[0] == b"a\r\nb"
