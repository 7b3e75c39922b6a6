"""The Python contract of ``message()`` and ``MessageSource``: conversion of the description,
the iterator protocol, errors before any byte, and the GIL released while Rust works."""

from __future__ import annotations

import email.parser
import email.policy
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import mailpump
import pytest
from mailpump import ltn12
from mailpump.types import Body, Mesgt

PARSER = email.parser.BytesParser(policy=email.policy.default)


def parse(raw: bytes) -> email.message.EmailMessage:
    msg = PARSER.parsebytes(raw)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_message_source_is_a_fused_iterator_of_bytes() -> None:
    msg = mailpump.message({"headers": {"subject": "hi"}, "body": "Hello"})
    assert isinstance(msg, mailpump.MessageSource)
    assert iter(msg) is msg
    chunks = list(msg)
    assert chunks and all(type(c) is bytes for c in chunks)
    with pytest.raises(StopIteration):
        next(msg)
    assert list(msg) == []
    assert parse(b"".join(chunks))["subject"] == "hi"


def test_chunk_size_sets_the_size_of_chunks() -> None:
    body = os.urandom(10_000)
    headers = {"content-type": "application/octet-stream"}
    msg = mailpump.message(
        {"headers": headers, "body": body, "encoding": "binary"}, chunk_size=512
    )
    chunks = list(msg)
    # Bytes given as they are come out in chunks of exactly chunk_size (the last one shorter).
    assert len(chunks) >= 10_000 // 512
    assert all(len(c) == 512 for c in chunks[:-1])
    assert parse(b"".join(chunks)).get_payload(decode=True) == body
    default = list(mailpump.message({"headers": headers, "body": os.urandom(200_000)}))
    assert max(len(c) for c in default) == 65536


def test_every_body_kind_is_accepted() -> None:
    def gen() -> Iterator[bytes | bytearray]:
        yield b"from a "
        yield bytearray(b"generator")

    parts: list[Mesgt | mailpump.Part] = [
        {"body": "str body"},
        {
            "body": b"bytes body",
            "headers": {"content-type": "application/octet-stream"},
        },
        {"body": gen(), "headers": {"content-type": "text/plain"}},
        {
            "body": ltn12.source.string(b"native source"),
            "headers": {"content-type": "text/plain"},
        },
        {
            "body": mailpump.message(
                {"headers": {"subject": "inner"}, "body": "inner body"}
            ),
            "headers": {"content-type": "message/rfc822"},
        },
        mailpump.text("a text part"),
    ]
    raw = b"".join(mailpump.message({"headers": {"subject": "kinds"}, "body": parts}))
    msg = parse(raw)
    got = list(msg.iter_parts())
    assert got[0].get_content().strip() == "str body"
    assert got[1].get_content() == b"bytes body"
    assert got[2].get_content().strip() == "from a generator"
    assert got[3].get_content().strip() == "native source"
    inner = got[4].get_content()
    assert inner["subject"] == "inner"
    assert got[5].get_content().strip() == "a text part"


@pytest.mark.parametrize(
    "body",
    [
        {"preamble": "pre", 1: {"body": "one"}, 2: {"body": "two"}, "epilogue": "epi"},
        {
            "preamble": "pre",
            "parts": [{"body": "one"}, {"body": "two"}],
            "epilogue": "epi",
        },
    ],
    ids=["lua-keys", "parts-key"],
)
def test_multipart_spellings(body: Body) -> None:
    msg = parse(b"".join(mailpump.message({"body": body})))
    assert msg.is_multipart()
    assert [p.get_content().strip() for p in msg.iter_parts()] == ["one", "two"]
    assert (msg.preamble or "").strip() == "pre"
    assert (msg.epilogue or "").strip() == "epi"


def test_bare_list_and_nesting() -> None:
    tree: Mesgt = {
        "body": [{"body": "a"}, {"body": [{"body": "b"}, {"body": [{"body": "c"}]}]}]
    }
    msg = parse(b"".join(mailpump.message(tree)))
    flat = [p.get_content().strip() for p in msg.walk() if not p.is_multipart()]
    assert flat == ["a", "b", "c"]


def test_header_value_kinds() -> None:
    raw = b"".join(
        mailpump.message(
            {
                "headers": {
                    "to": ["a@example.com", "Bee <b@example.com>"],
                    "x-raw": b"raw value",
                    "cc": None,
                    "subject": "s",
                },
                "body": "x",
            }
        )
    )
    msg = parse(raw)
    assert [a.addr_spec for a in msg["to"].addresses] == [
        "a@example.com",
        "b@example.com",
    ]
    assert msg["x-raw"] == "raw value"
    assert msg["cc"] is None


@pytest.mark.parametrize(
    ("mesgt", "part", "header"),
    [
        (
            {"headers": {"subject": "a\r\nBcc: x@example.com"}, "body": "x"},
            "message",
            "subject",
        ),
        ({"headers": {"subject": "nul\x00"}, "body": "x"}, "message", "subject"),
        (
            {"body": [{"body": "ok"}, {"headers": {"x-a": "b\nc"}, "body": "x"}]},
            "message.parts[1]",
            "x-a",
        ),
        ({"headers": {"subject": 5}}, "message", "subject"),
        ({"body": [{"body": "x", "encoding": "rot13"}]}, "message.parts[0]", None),
        ({"body": {1: {"body": "a"}, 3: {"body": "c"}}}, "message", None),
        ({"body": {"parts": [], 1: {"body": "a"}}}, "message", None),
        ({"bdoy": "typo"}, "message", None),
        ({"body": 3.5}, "message", None),
        ({"body": ["not a part"]}, "message.parts[0]", None),
    ],
)
def test_bad_descriptions_raise_message_error_before_any_byte(
    mesgt: dict[str, object], part: str, header: str | None
) -> None:
    with pytest.raises(mailpump.MessageError) as info:
        mailpump.message(mesgt)  # type: ignore[arg-type]
    err = info.value
    assert isinstance(err, ValueError)
    assert err.part == part
    assert err.header == header
    assert err.reason
    assert part in str(err)


def test_validation_reads_no_body() -> None:
    started: list[bool] = []

    def body() -> Iterator[bytes]:
        started.append(True)
        yield b"x"

    bad: Mesgt = {"body": [{"body": body()}, {"headers": {"subject": "a\nb"}, "body": "x"}]}
    with pytest.raises(mailpump.MessageError):
        mailpump.message(bad)
    assert started == []


def test_python_source_error_comes_back_as_itself() -> None:
    boom = RuntimeError("disk on fire")

    def failing() -> Iterator[bytes]:
        yield b"partial "
        raise boom

    msg = mailpump.message({"body": failing()})
    with pytest.raises(RuntimeError) as info:
        for _ in msg:
            pass
    assert info.value is boom
    assert list(msg) == [], "fused after an error"


def test_non_bytes_chunk_is_a_type_error() -> None:
    msg = mailpump.message({"body": iter(["text chunks are not bytes"])})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        b"".join(msg)


def test_native_pieces_are_moved_once() -> None:
    part = mailpump.text("once")
    mailpump.message({"body": [part]})
    with pytest.raises(ValueError, match="moved"):
        mailpump.message({"body": [part]})
    src = ltn12.source.string(b"x")
    mailpump.message({"body": src})
    with pytest.raises(ValueError, match="moved"):
        next(src)
    inner = mailpump.message({"body": "x"})
    mailpump.message({"body": inner})
    with pytest.raises(ValueError, match="moved"):
        next(inner)


def test_attachment_from_path_bytes_and_file(tmp_path: Path) -> None:
    data = os.urandom(5000)
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    with path.open("rb") as f:
        raw = b"".join(
            mailpump.message(
                {
                    "body": [
                        mailpump.attachment(str(path)),
                        mailpump.attachment(path, filename="other.bin"),
                        mailpump.attachment(data, filename="mem.png"),
                        mailpump.attachment(f),
                    ]
                }
            )
        )
    parts = list(parse(raw).iter_parts())
    assert [p.get_filename() for p in parts] == [
        "report.pdf",
        "other.bin",
        "mem.png",
        "report.pdf",
    ]
    assert all(p.get_content() == data for p in parts)
    assert parts[0].get_content_type() == "application/pdf"


def test_attachment_of_missing_file_raises_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        mailpump.attachment(tmp_path / "missing.bin")


def test_zone_constant_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mailpump.smtp, "ZONE", "+0200")
    msg = parse(b"".join(mailpump.message({"body": "x"})))
    assert str(msg["date"]).endswith("+0200")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_iteration_releases_the_gil_while_rust_waits(tmp_path: Path) -> None:
    """Thread A iterates a message whose body is a native file source on a FIFO: the read blocks
    in Rust until this thread writes. If A held the GIL while blocked, this thread could not run
    its write and both would deadlock (the join below would time out)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    payload = os.urandom(100_000)
    result: dict[str, object] = {}

    def reader() -> None:
        try:
            src = ltn12.source.file(
                str(fifo)
            )  # blocks in open() until the writer opens
            msg = mailpump.message({"body": src, "encoding": "base64"})
            result["raw"] = b"".join(msg)
        except Exception as e:  # noqa: BLE001 - reported by the main thread below
            result["error"] = e

    t = threading.Thread(target=reader)
    t.start()
    with open(fifo, "wb") as w:
        for i in range(0, len(payload), 4096):
            w.write(payload[i : i + 4096])
            w.flush()
    t.join(timeout=60)
    assert not t.is_alive(), "deadlock: the GIL was held while Rust blocked"
    assert "error" not in result, result.get("error")
    raw = result["raw"]
    assert isinstance(raw, bytes)
    assert parse(raw).get_payload(decode=True) == payload


def test_slow_python_source_lets_other_threads_progress() -> None:
    """A Python body that waits for another thread: the encoder re-attaches to pull it, and the
    other thread runs meanwhile (it sets the events the source waits for)."""
    ready = [threading.Event() for _ in range(3)]
    pulled: list[int] = []

    def slow() -> Iterator[bytes]:
        for i, ev in enumerate(ready):
            assert ev.wait(timeout=60), "the other thread never ran"
            pulled.append(i)
            yield f"chunk {i}\r\n".encode()

    def producer() -> None:
        for ev in ready:
            ev.set()

    msg = mailpump.message({"body": slow()})
    helper = threading.Thread(target=producer)
    helper.start()
    raw = b"".join(msg)
    helper.join(timeout=60)
    assert pulled == [0, 1, 2]
    assert b"chunk 2" in raw
