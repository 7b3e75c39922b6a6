"""The contract of `mailpump.message()`: round trip through Python's email parser, header
injection refused before any output, line limits, and the seed's first example."""

from __future__ import annotations

import email.message
import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mailcheck import badly_folded, collect, long_lines, parse
from seed import check_seed_message, png_bytes, seed_message

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

FIXED = {
    # Supplying these makes the output deterministic: defaults are kept only when absent.
    "date": "Tue, 14 Nov 2023 22:13:20 +0000",
    "message-id": "<fixed.1@mailpump.test>",
}

# -- strategies ----------------------------------------------------------------------------------

# Printable text of every script, single spaces between words, no "=?" (which a reader would take
# for an encoded-word) and no line or paragraph separators (those are refused, see below).
_word = st.text(
    st.characters(categories=["L", "M", "N", "P", "S"], exclude_characters="\u2028\u2029\x85"),
    min_size=1,
    max_size=30,
).filter(lambda w: "=?" not in w)
header_text = st.lists(_word, min_size=1, max_size=12).map(" ".join)
ascii_line = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
# Body lines never start with "-" so no body line can look like a boundary delimiter.
ascii_text = st.lists(ascii_line.filter(lambda s: not s.startswith("-")), max_size=8).map(
    "\r\n".join
)
utf8_text = st.lists(
    st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), max_size=60).filter(
        lambda s: not s.startswith("-")
    ),
    max_size=8,
).map("\r\n".join)
binary = st.binary(max_size=3000)
line_bytes = st.lists(
    st.binary(max_size=100).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").lstrip(b"-")),
    max_size=6,
).map(b"\r\n".join)


@st.composite
def leaf(draw: st.DrawFn) -> dict[str, Any]:
    """A simple part: one body kind with each transfer encoding it admits."""
    kind = draw(st.sampled_from(["str", "base64", "quoted-printable", "7bit", "8bit", "binary"]))
    headers: dict[str, Any] = {"x-note": draw(header_text)}
    part: dict[str, Any] = {"headers": headers}
    if kind == "str":
        part["body"] = draw(utf8_text)
    elif kind in ("base64", "quoted-printable"):
        headers["content-type"] = "application/octet-stream"
        part["body"] = draw(binary)
        part["encoding"] = kind
    elif kind == "7bit":
        part["body"] = draw(ascii_text)
        part["encoding"] = kind
    elif kind == "8bit":
        part["body"] = draw(utf8_text)
        part["encoding"] = kind
    else:
        headers["content-type"] = "application/octet-stream"
        part["body"] = draw(line_bytes)
        part["encoding"] = kind
    return part


def multipart(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    preamble = st.none() | ascii_text.filter(lambda s: "--" not in s)
    return st.builds(
        lambda parts, pre, epi, sub: {
            "headers": {"content-type": f"multipart/{sub}", "x-note": "nested"},
            "body": {
                "parts": parts,
                **({"preamble": pre} if pre is not None else {}),
                **({"epilogue": epi} if epi is not None else {}),
            },
        },
        st.lists(children, min_size=1, max_size=4),
        preamble,
        preamble,
        st.sampled_from(["mixed", "alternative", "related"]),
    )


trees = st.recursive(leaf(), multipart, max_leaves=10)


# -- comparison ----------------------------------------------------------------------------------


def _lf(s: Any) -> Any:
    return s.replace("\r\n", "\n") if isinstance(s, str) else s.replace(b"\r\n", b"\n")


def assert_same(part: dict[str, Any], got: email.message.EmailMessage, where: str) -> None:
    headers = part.get("headers", {})
    for name, value in headers.items():
        if name == "content-type":
            assert got.get_content_type() == value.split(";")[0], where
            continue
        assert got[name] == value, f"{where}: header {name}"
    body = part.get("body")
    if isinstance(body, dict):
        assert got.is_multipart(), where
        children = got.get_payload()
        assert isinstance(children, list)
        assert len(children) == len(body["parts"]), where
        for i, (child, sub) in enumerate(zip(body["parts"], children)):
            assert_same(child, sub, f"{where}.parts[{i}]")
        if body.get("preamble"):
            assert _lf(got.preamble or "").strip("\n") == _lf(body["preamble"]).strip("\n"), where
        if body.get("epilogue"):
            assert _lf(got.epilogue or "").strip("\n") == _lf(body["epilogue"]).strip("\n"), where
        return
    assert not got.is_multipart(), where
    encoding = part.get("encoding")
    if encoding is not None:
        assert got["content-transfer-encoding"].lower() == encoding, where
    payload = got.get_payload(decode=True)
    assert isinstance(payload, bytes)
    if isinstance(body, str):
        # A text body: compare the decoded text; line ends as the parser reports them.
        assert _lf(payload.decode("utf-8")) == _lf(body), where
    elif encoding == "quoted-printable":
        # RFC 2045 §6.7: a QP line break is a CRLF in the canonical form, whatever decodes it.
        assert _lf(payload) == _lf(body), where
    else:
        assert payload == body, where


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, subject=header_text)
def test_round_trip_through_the_email_parser(tree: dict[str, Any], subject: str) -> None:
    tree = dict(tree)
    tree["headers"] = {**tree.get("headers", {}), "subject": subject, "to": ["A <a@example.test>",
                       "b@example.test"]}  # fmt: skip
    raw = collect(mailpump.message(tree))
    assert long_lines(raw) == []
    assert badly_folded(raw) == []
    got = parse(raw)
    assert got.defects == []
    assert [a.addr_spec for a in got["to"].addresses] == ["a@example.test", "b@example.test"]
    expected = dict(tree)
    expected["headers"] = {k: v for k, v in tree["headers"].items() if k != "to"}
    assert_same(expected, got, "message")


def test_default_headers_top_level_only() -> None:
    raw = collect(mailpump.message({"headers": {"subject": "s"}, "body": {"parts": [
        {"body": "one"}, {"body": b"two"}]}}))  # fmt: skip
    got = parse(raw)
    for name in ("Date", "Message-ID", "MIME-Version", "X-Mailer"):
        assert got[name], name
    assert got["MIME-Version"] == "1.0"
    assert got.get_content_type() == "multipart/mixed"
    boundary = got.get_boundary()
    assert boundary and len(boundary) <= 70
    for part in got.iter_parts():
        assert part.get_content_type() == "text/plain"
        assert part.get_content_charset() == "utf-8"
        for name in ("Date", "Message-ID", "MIME-Version", "X-Mailer"):
            assert part[name] is None, name


def test_supplied_headers_are_kept() -> None:
    headers = {**FIXED, "x-mailer": "mine", "content-type": 'multipart/alternative; boundary="b0"'}
    raw = collect(mailpump.message({"headers": headers, "body": [{"body": "a"}, {"body": "b"}]}))
    got = parse(raw)
    assert got["Date"] == FIXED["date"]
    assert got["Message-ID"] == FIXED["message-id"]
    assert got["X-Mailer"] == "mine"
    assert got.get_content_type() == "multipart/alternative"
    assert got.get_boundary() == "b0"


def test_boundaries_are_fresh_and_random() -> None:
    seen = set()
    for _ in range(20):
        got = parse(collect(mailpump.message({"body": [{"body": "x"}]})))
        boundary = got.get_boundary()
        assert boundary is not None
        seen.add(boundary)
    assert len(seen) == 20


def test_header_names_come_out_canonical() -> None:
    raw = collect(mailpump.message({"headers": {**FIXED, "SUBJECT": "s", "x-custom-header": "v",
                  "content-TYPE": "text/plain", "mime-version": "1.0"}, "body": "b"}))  # fmt: skip
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    names = {line.split(b":", 1)[0] for line in head if not line[:1].isspace()}
    assert {b"Subject", b"X-Custom-Header", b"Content-Type", b"MIME-Version", b"Message-ID",
            b"Date"} <= names  # fmt: skip


def test_lua_style_integer_keys_and_bare_list() -> None:
    as_keys = {"headers": FIXED | {"content-type": 'multipart/mixed; boundary="k"'},
               "body": {1: {"body": "one"}, 2: {"body": "two"}}}  # fmt: skip
    as_list = {"headers": FIXED | {"content-type": 'multipart/mixed; boundary="k"'},
               "body": [{"body": "one"}, {"body": "two"}]}  # fmt: skip
    as_parts = {"headers": FIXED | {"content-type": 'multipart/mixed; boundary="k"'},
                "body": {"parts": [{"body": "one"}, {"body": "two"}]}}  # fmt: skip
    outs = {collect(mailpump.message(m)) for m in (as_keys, as_list, as_parts)}
    assert len(outs) == 1
    got = parse(outs.pop())
    assert [p.get_content() for p in got.iter_parts()] == ["one", "two"]


def test_deep_nesting() -> None:
    tree: dict[str, Any] = {"body": "leaf"}
    for _ in range(60):
        tree = {"body": [tree]}
    got: email.message.MIMEPart = parse(collect(mailpump.message(tree)))
    depth = 0
    while got.is_multipart():
        [got] = got.iter_parts()
        depth += 1
    assert depth == 60 and got.get_content() == "leaf"


def test_source_bodies_are_pulled_lazily() -> None:
    pulled: list[int] = []

    def body() -> Any:
        for i in range(3):
            pulled.append(i)
            yield b"chunk %d\r\n" % i

    src = mailpump.message({"headers": FIXED, "body": body()})
    assert pulled == []
    raw = collect(src)
    assert pulled == [0, 1, 2]
    assert raw.endswith(b"chunk 0\r\nchunk 1\r\nchunk 2\r\n")


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=20_000), cuts=st.lists(st.integers(0, 20_000), max_size=12),
       chunk_size=st.sampled_from([1, 2, 3, 76, 4096, 65536]))  # fmt: skip
def test_output_does_not_depend_on_how_bodies_are_split(
    data: bytes, cuts: list[int], chunk_size: int
) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    pieces = [data[a:b] for a, b in zip(points, points[1:])]

    def describe(body: Any) -> dict[str, Any]:
        return {
            "headers": {**FIXED, "content-type": 'multipart/mixed; boundary="fixed-b"'},
            "body": {"parts": [
                {"headers": {"content-type": "application/octet-stream"}, "body": body,
                 "encoding": "base64"},
                {"body": body if isinstance(body, bytes) else iter(pieces),
                 "encoding": "quoted-printable"},
            ]},
        }  # fmt: skip

    whole = collect(mailpump.message(describe(data)))
    split = collect(mailpump.message(describe(iter(pieces)), chunk_size=chunk_size))
    assert split == whole


@pytest.mark.parametrize("chunk_size", [1, 100, 4096, 65536])
def test_chunks_respect_chunk_size(chunk_size: int) -> None:
    mesgt = {"headers": {"subject": "chunks"}, "body": [
        {"body": b"a" * 200_000, "encoding": "base64"}, {"body": "text " * 1000}]}  # fmt: skip
    sizes = [len(c) for c in mailpump.message(mesgt, chunk_size=chunk_size)]
    assert 0 not in sizes
    assert max(sizes) <= chunk_size


# -- header injection and validation -------------------------------------------------------------

INJECTED_VALUES = [
    "x\r\nBcc: victim@example.test",
    "x\nBcc: victim@example.test",
    "x\rBcc: victim@example.test",
    "trailing newline\n",
    "nul\x00byte",
    "line\u2028separator",
    "next\x85line",
]


def _assert_refused(mesgt: dict[str, Any], header: str | None = None) -> BaseException:
    produced: list[bytes] = []
    with pytest.raises(mailpump.MessageError) as info:
        produced.extend(mailpump.message(mesgt))
    assert produced == []  # refused before any output
    assert isinstance(info.value, ValueError)
    if header is not None:
        assert header.lower() in str(info.value).lower()
    return info.value


@pytest.mark.parametrize("value", INJECTED_VALUES)
@pytest.mark.parametrize("header", ["subject", "x-custom", "from"])
def test_control_characters_in_values_are_refused(header: str, value: str) -> None:
    _assert_refused({"headers": {header: value}, "body": "b"}, header)


@pytest.mark.parametrize("value", INJECTED_VALUES)
def test_control_characters_in_nested_parts_are_refused(value: str) -> None:
    error = _assert_refused(
        {
            "body": [
                {"body": "fine"},
                {"body": [{"headers": {"content-description": value}, "body": "x"}]},
            ]
        },  # fmt: skip
        "content-description",
    )
    assert "parts" in str(error)  # names the part at fault


@pytest.mark.parametrize("value", [b"x\r\nBcc: y", b"x\nBcc: y", b"nul\x00"])
def test_control_characters_in_bytes_values_are_refused(value: bytes) -> None:
    _assert_refused({"headers": {"x-raw": value}, "body": "b"}, "x-raw")


@pytest.mark.parametrize("value", ["victim@example.test\r\nBcc: x@example.test", "a\nb"])
def test_control_characters_in_address_lists_are_refused(value: str) -> None:
    _assert_refused({"headers": {"to": ["ok@example.test", value]}, "body": "b"}, "to")


@pytest.mark.parametrize("name", ["x bad", "x:bad", "x-caf\u00e9", "x\r\nbcc", "x\x00", ""])
def test_bad_header_names_are_refused(name: str) -> None:
    _assert_refused({"headers": {name: "v"}, "body": "b"})


@pytest.mark.parametrize("bcc", ["hidden@example.test", ["hidden@example.test"]])
def test_a_non_empty_bcc_is_written_for_the_sending_path_to_read(bcc: Any) -> None:
    got = parse(collect(mailpump.message({"headers": {"Bcc": bcc}, "body": "b"})))
    assert got["bcc"] == "hidden@example.test"


def test_an_empty_bcc_is_not_written_as_a_recipient() -> None:
    raw = collect(mailpump.message({"headers": {"bcc": ""}, "body": "b"}))
    got = parse(raw)
    assert not got.get_all("bcc") or got["bcc"] == ""


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=200), name=st.sampled_from(["subject", "x-note", "comments"]))
def test_any_value_either_round_trips_or_is_refused(value: str, name: str) -> None:
    # docs/security.md §5: whatever the value, the header block parses back to exactly the
    # intended fields.
    try:
        raw = collect(mailpump.message({"headers": {**FIXED, name: value}, "body": "b"}))
    except mailpump.MessageError:
        assert any(c in value for c in "\r\n\x00\u2028\u2029\x85") or any(
            ord(c) < 0x20 and c != "\t" or c == "\x7f" for c in value
        ), repr(value)
        return
    assert long_lines(raw) == []
    got = parse(raw)
    fields = [k.lower() for k in got.keys()]
    assert fields.count(name) == 1
    assert "bcc" not in fields
    assert " ".join(got[name].split()) == " ".join(value.split())


# -- line limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["x" * 5000, "\u00e9" * 3000, "a" * 990])
def test_unbreakable_tokens_never_make_a_line_over_998(token: str) -> None:
    raw = collect(mailpump.message({"headers": {"subject": token, "x-other": "w " + token},
                                    "body": "b"}))  # fmt: skip
    assert long_lines(raw) == []
    got = parse(raw)
    assert got["subject"].replace(" ", "") == token
    assert badly_folded(raw) == []


def test_long_headers_fold_at_78() -> None:
    words = " ".join(f"word{i}" for i in range(200))
    raw = collect(mailpump.message({"headers": {"subject": words, "x-list": [
        f"Person {i} <p{i}@example.test>" for i in range(40)]}, "body": "b"}))  # fmt: skip
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert long_lines(head, 78) == []
    got = parse(raw)
    assert got["subject"] == words


def test_text_bodies_with_long_lines_are_encoded() -> None:
    body = "y" * 5000 + "\r\n" + "\u00fc" * 2000
    raw = collect(mailpump.message({"body": body}))
    assert long_lines(raw) == []
    got = parse(raw)
    assert got["content-transfer-encoding"].lower() == "quoted-printable"
    assert got.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n")


# -- helpers -------------------------------------------------------------------------------------


def test_text_and_attachment_helpers(tmp_path: Path) -> None:
    data = bytes(random.Random(7).getrandbits(8) for _ in range(100_000))
    path = tmp_path / "r\u00e9sum\u00e9 report.pdf"
    path.write_bytes(data)
    raw = collect(mailpump.message({"headers": {"subject": "files"}, "body": [
        mailpump.text("hello \u00e9"),
        mailpump.text("<p>hi</p>", "html"),
        mailpump.attachment(str(path)),
        mailpump.attachment(b"\x00\x01raw", filename="blob.bin"),
    ]}))  # fmt: skip
    assert long_lines(raw, 78) == [] or long_lines(raw) == []
    parts = list(parse(raw).iter_parts())
    assert parts[0].get_content().rstrip("\r\n") == "hello \u00e9"
    assert parts[1].get_content_type() == "text/html"
    assert parts[2].get_content_type() == "application/pdf"
    assert parts[2].get_filename() == path.name  # RFC 2231 for the non-ASCII name
    assert parts[2]["content-transfer-encoding"].lower() == "base64"
    assert parts[2].get_payload(decode=True) == data
    assert parts[3].get_filename() == "blob.bin"
    assert parts[3].get_payload(decode=True) == b"\x00\x01raw"


def test_missing_attachment_file_raises_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        mailpump.attachment(str(tmp_path / "nope.bin"))


# -- the seed's first example --------------------------------------------------------------------


def test_seed_first_example(tmp_path: Path) -> None:
    data = png_bytes()
    image = tmp_path / "image.png"
    image.write_bytes(data)
    raw = collect(seed_message(image))
    check_seed_message(raw, data)
    # LuaSocket's wrap() ends the base64 with CRLF, and the next delimiter adds its own.
    assert b"\r\n\r\n--" in raw


# -- memory --------------------------------------------------------------------------------------

MEMORY_SCRIPT = r"""
import os, resource, sys
import mailpump

path, size = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.truncate(size)  # sparse: costs no disk and no memory
src = mailpump.message({"headers": {"subject": "big"}, "body": [
    {"body": "see attachment"},
    {"headers": {"content-type": "application/octet-stream"},
     "body": mailpump.ltn12.source.file(path, "rb"), "encoding": "base64"},
]})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
total = 0
for chunk in src:
    total += len(chunk)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(total, (after - before) // 1024)
"""


def test_memory_stays_flat_for_a_256_mib_attachment(tmp_path: Path) -> None:
    import subprocess
    import sys

    size = 256 * 1024 * 1024
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / "big.bin"), str(size)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    total, growth_mib = map(int, out.stdout.split())
    assert total > size * 4 // 3  # the whole attachment went through, base64-encoded
    assert growth_mib < 64, f"peak RSS grew by {growth_mib} MiB"
    os.remove(tmp_path / "big.bin")
