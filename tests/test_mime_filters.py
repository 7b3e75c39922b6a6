"""The Python-facing filters (`mailpump.mime`): output independent of how the input is split,
and equal to Python's own codecs where the two define the same thing."""

from __future__ import annotations

import base64
import binascii
import re
import smtplib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")


# Line-ending-heavy data finds state-machine bugs faster than uniform bytes.
spiky = st.lists(
    st.sampled_from(
        [
            b"\r",
            b"\n",
            b"\r\n",
            b".",
            b"=",
            b" ",
            b"\t",
            b"a",
            b"\xff",
            b"\x00",
            b"x" * 80,
            b"=4",
            b"-",
        ]
    ),  # fmt: skip
    max_size=200,
).map(b"".join)
data_st = st.binary(max_size=5000) | spiky


def run(make: Callable[[], Any], pieces: list[bytes]) -> bytes:
    """Feed `pieces` through a fresh filter, then flush with None."""
    f = make()
    out = []
    for piece in pieces:
        got = f(piece)
        assert isinstance(got, bytes)
        out.append(got)
    out.append(f(None) or b"")
    return b"".join(out)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


FILTERS: dict[str, Callable[[], Any]] = {
    "encode base64": lambda: mailpump.mime.encode("base64"),
    "decode base64": lambda: mailpump.mime.decode("base64"),
    "encode qp text": lambda: mailpump.mime.encode("quoted-printable"),
    "encode qp binary": lambda: mailpump.mime.encode("quoted-printable", "binary"),
    "decode qp": lambda: mailpump.mime.decode("quoted-printable"),
    "wrap text": lambda: mailpump.mime.wrap(),
    "wrap text 59": lambda: mailpump.mime.wrap("text", 59),
    "wrap base64": lambda: mailpump.mime.wrap("base64"),
    "wrap qp": lambda: mailpump.mime.wrap("quoted-printable"),
    "normalize": lambda: mailpump.mime.normalize(),
    "normalize LF": lambda: mailpump.mime.normalize(b"\n"),
    "stuff": lambda: mailpump.mime.stuff(),
    "base64 chain": lambda: mailpump.ltn12.filter.chain(
        mailpump.mime.encode("base64"), mailpump.mime.wrap("base64")
    ),
    "qp text chain": lambda: mailpump.ltn12.filter.chain(
        mailpump.mime.normalize(),
        mailpump.mime.encode("quoted-printable"),
        mailpump.mime.wrap("quoted-printable"),
    ),
    "smtp chain": lambda: mailpump.ltn12.filter.chain(
        mailpump.mime.normalize(), mailpump.mime.stuff()
    ),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
@settings(max_examples=120, deadline=None)
@given(data=data_st, cuts=st.lists(st.integers(0, 5000), max_size=20))
def test_output_does_not_depend_on_chunking(name: str, data: bytes, cuts: list[int]) -> None:
    make = FILTERS[name]
    whole = run(make, [data])
    assert run(make, split(data, cuts)) == whole
    assert run(make, [data[i : i + 1] for i in range(len(data))]) == whole
    assert run(make, [b""] + split(data, cuts) + [b""]) == whole  # empty chunks change nothing


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_a_flushed_filter_starts_afresh(name: str) -> None:
    data = b"ab.\r\ncd= \r\n\xff\r"
    f = FILTERS[name]()
    first = f(data) + (f(None) or b"")
    second = f(data) + (f(None) or b"")
    assert first == second


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000))
def test_base64_matches_python(data: bytes) -> None:
    assert run(FILTERS["encode base64"], [data]) == base64.b64encode(data)
    # encodebytes wraps at 76 with LF; LuaSocket's wrap uses CRLF and ends with one.
    assert run(FILTERS["base64 chain"], [data]) == base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert run(FILTERS["decode base64"], [base64.encodebytes(data)]) == data


@settings(max_examples=200, deadline=None)
@given(data=data_st)
def test_quoted_printable_binary_decodes_back_with_python(data: bytes) -> None:
    encoded = run(
        lambda: mailpump.ltn12.filter.chain(
            mailpump.mime.encode("quoted-printable", "binary"),
            mailpump.mime.wrap("quoted-printable"),
        ),
        [data],
    )
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert not any(b > 126 or (b < 32 and b not in (9, 10, 13)) for b in encoded)
    assert binascii.a2b_qp(encoded) == data
    assert run(FILTERS["decode qp"], [encoded]) == data


@settings(max_examples=200, deadline=None)
@given(data=data_st)
def test_quoted_printable_text_round_trips(data: bytes) -> None:
    normal = run(FILTERS["normalize"], [data])
    encoded = run(FILTERS["qp text chain"], [data])
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    decoded = run(FILTERS["decode qp"], [encoded])
    assert decoded == normal
    assert binascii.a2b_qp(encoded) == normal


@settings(max_examples=200, deadline=None)
@given(data=data_st)
def test_normalize_and_stuff_match_smtplib_where_they_agree(data: bytes) -> None:
    # LuaSocket's eol takes LF CR as one break and counts CR CR LF as three; smtplib's _fix_eols
    # differs there (docs/luasocket.md §3.1). Elsewhere both give the same CRLF text.
    assume(b"\n\r" not in data and b"\r\r" not in data)
    fixed = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)  # smtplib._fix_eols, on bytes
    assert run(FILTERS["normalize"], [data]) == fixed
    # mime.stuff doubles a dot after CRLF and at the very start, like smtplib's _quote_periods.
    assert run(FILTERS["smtp chain"], [data]) == smtplib._quote_periods(fixed)  # type: ignore[attr-defined]


def test_stuff_leaves_bare_line_feeds_alone() -> None:
    # Only CRLF starts a line for mime.stuff (docs/luasocket.md §2.8); send() normalises first.
    assert run(FILTERS["stuff"], [b"\n.\n"]) == b"\n.\n"
    assert run(FILTERS["stuff"], [b".\r\nStuffing the message.\r\n.\r\n."]) == (
        b"..\r\nStuffing the message.\r\n..\r\n.."
    )


def test_unknown_encoding_names_raise() -> None:
    with pytest.raises(ValueError):
        mailpump.mime.encode("rot13")
    with pytest.raises(ValueError):
        mailpump.mime.decode("uuencode")


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=10))
def test_source_chain_of_python_iterable_equals_filter(data: bytes, cuts: list[int]) -> None:
    src = mailpump.ltn12.source.chain(iter(split(data, cuts)), FILTERS["base64 chain"]())
    assert b"".join(src) == base64.encodebytes(data).replace(b"\n", b"\r\n")
