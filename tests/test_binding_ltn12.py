"""The Python contract of ``mailpump.ltn12``: sources, sinks, filters and pumps, native pieces
mixed with Python iterables and callables."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from mailpump import ltn12, mime
from mailpump._mailpump import Sink, Source


def test_source_string_is_an_iterator_of_bounded_chunks() -> None:
    src = ltn12.source.string(b"abcdefg", chunk_size=3)
    assert isinstance(src, Source)
    assert iter(src) is src
    assert list(src) == [b"abc", b"def", b"g"]
    assert list(src) == [], "fused"
    assert b"".join(ltn12.source.string("héllo")) == "héllo".encode()


def test_source_empty() -> None:
    assert list(ltn12.source.empty()) == []


def test_source_file_path_and_object(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    p = tmp_path / "data.bin"
    p.write_bytes(data)
    assert b"".join(ltn12.source.file(str(p), "rb")) == data
    assert b"".join(ltn12.source.file(p)) == data
    f = p.open("rb")
    assert b"".join(ltn12.source.file(f, chunk_size=1000)) == data
    assert f.closed, "LTN12's source.file closes its handle at the end"
    with pytest.raises(ValueError, match="mode"):
        ltn12.source.file(p, "wb")
    with pytest.raises(FileNotFoundError):
        ltn12.source.file(tmp_path / "missing")


def test_source_cat_mixes_every_kind() -> None:
    def gen() -> Iterator[bytes]:
        yield b"3"
        yield b"4"

    src = ltn12.source.cat(
        ltn12.source.string(b"1"),
        [b"2"],
        gen(),
        b"5",
        io.BytesIO(b"6"),
        ltn12.source.empty(),
    )
    assert b"".join(src) == b"123456"


def test_source_cat_rejects_str() -> None:
    with pytest.raises(TypeError, match="str"):
        ltn12.source.cat("text")  # type: ignore[arg-type]


def test_source_chain_native_and_python() -> None:
    native = ltn12.source.chain(
        ltn12.source.string(b"hello world"), mime.encode("base64"), mime.wrap(8)
    )
    expected = b"aGVsbG8g\r\nd29ybGQ=\r\n"
    assert b"".join(native) == expected
    mixed = ltn12.source.chain(
        iter([b"hello ", b"world"]),
        mime.encode("base64"),
        lambda c: b"" if c is None else c,
        mime.wrap(8),
    )
    assert b"".join(mixed) == expected
    nested = ltn12.source.chain(
        ltn12.source.chain(ltn12.source.string(b"hello world"), mime.encode("base64")),
        ltn12.filter.chain(mime.wrap(8)),
    )
    assert b"".join(nested) == expected


def test_source_chain_single_and_no_filter() -> None:
    assert b"".join(ltn12.source.chain(ltn12.source.string(b"x"))) == b"x"
    assert b"".join(ltn12.source.chain([b"a.b"], mime.normalize())) == b"a.b"


def test_moved_source() -> None:
    src = ltn12.source.string(b"x")
    ltn12.source.cat(src)
    with pytest.raises(ValueError, match="moved"):
        next(src)
    with pytest.raises(ValueError, match="moved"):
        ltn12.source.chain(src)


def test_sink_list() -> None:
    lst: list[bytes] = []
    snk = ltn12.sink.list(lst)
    assert isinstance(snk, Sink)
    snk(b"a")
    snk(bytearray(b"b"))
    snk(None)
    assert lst == [b"a", b"b"]
    assert snk.list is lst
    fresh = ltn12.sink.list()
    ltn12.pump.all(ltn12.source.string(b"xy"), fresh)
    assert fresh.list == [b"xy"]


def test_sink_file_path_and_object(tmp_path: Path) -> None:
    p = tmp_path / "out.bin"
    ltn12.pump.all(
        ltn12.source.string(b"abc" * 10000, chunk_size=7), ltn12.sink.file(p)
    )
    assert p.read_bytes() == b"abc" * 10000
    ltn12.pump.all([b"more"], ltn12.sink.file(str(p), "ab"))
    assert p.read_bytes().endswith(b"abcmore")
    buf = io.BytesIO()
    snk = ltn12.sink.file(buf)
    snk(b"z")
    assert buf.getvalue() == b"z"
    snk(None)
    assert buf.closed
    with pytest.raises(ValueError, match="after its end"):
        snk(b"late")
    with pytest.raises(ValueError, match="mode"):
        ltn12.sink.file(p, "rb")


def test_sink_null() -> None:
    snk = ltn12.sink.null()
    snk(b"x")
    snk(None)
    assert snk.list is None


def test_pump_step_and_all() -> None:
    got: list[bytes | None] = []
    it = iter([b"a", b"b"])
    assert ltn12.pump.step(it, got.append) is True
    assert ltn12.pump.step(it, got.append) is True
    assert ltn12.pump.step(it, got.append) is False
    assert got == [b"a", b"b", None]

    steps: list[int] = []

    def counting_step(src: Iterator[bytes], snk: ltn12.SinkLike) -> bool:
        steps.append(1)
        return ltn12.pump.step(src, snk)

    out: list[bytes | None] = []
    ltn12.pump.all([b"1", b"2", b"3"], out.append, counting_step)
    assert out == [b"1", b"2", b"3", None]
    assert len(steps) == 4


def test_pump_propagates_sink_errors() -> None:
    def bad_sink(chunk: bytes | None) -> None:
        raise RuntimeError("sink full")

    with pytest.raises(RuntimeError, match="sink full"):
        ltn12.pump.all(ltn12.source.string(b"x"), bad_sink)


def test_seed_attachment_chain(tmp_path: Path) -> None:
    """The seed's attachment chain, checked against Python's base64."""
    import base64

    data = bytes(range(256)) * 300
    p = tmp_path / "image.png"
    p.write_bytes(data)
    src = ltn12.source.chain(
        ltn12.source.file(str(p), "rb"),
        ltn12.filter.chain(mime.encode("base64"), mime.wrap()),
    )
    out = b"".join(src)
    lines = out.split(b"\r\n")
    assert lines[-1] == b""
    assert all(len(line) <= 76 for line in lines)
    assert base64.b64decode(b"".join(lines)) == data


def test_pump_all_of_native_pieces_runs_in_rust(tmp_path: Path) -> None:
    from mailpump import _mailpump

    data = bytes(range(256)) * 4000
    src_path, out = tmp_path / "in.bin", tmp_path / "out.b64"
    src_path.write_bytes(data)
    src = ltn12.source.chain(
        ltn12.source.file(src_path), mime.encode("base64"), mime.wrap()
    )
    ltn12.pump.all(src, ltn12.sink.file(out))
    import base64

    assert base64.b64decode(out.read_bytes()) == data
    with pytest.raises(ValueError, match="moved"):
        next(src)
    # Not all native: nothing is touched and the Python loop does the work.
    py_src = ltn12.source.string(b"x")
    assert _mailpump.pump_native(py_src, [].append) is False
    assert _mailpump.pump_native(iter([b"x"]), ltn12.sink.null()) is False
    assert _mailpump.pump_native(py_src, ltn12.sink.list()) is False
    assert next(py_src) == b"x"
    assert _mailpump.pump_native(ltn12.source.string(b"y"), ltn12.sink.null()) is True


def test_pump_all_propagates_a_python_error_inside_a_native_chain(
    tmp_path: Path,
) -> None:
    boom = ValueError("bad chunk")

    def bad(chunk: bytes | None) -> bytes:
        raise boom

    src = ltn12.source.chain(ltn12.source.string(b"abc"), bad)
    with pytest.raises(ValueError) as info:
        ltn12.pump.all(src, ltn12.sink.file(tmp_path / "x"))
    assert info.value is boom
