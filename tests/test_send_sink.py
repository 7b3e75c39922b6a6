"""`send()` and `Session` against Postfix's smtp-sink: pipelining, thousands of messages over one session, a
256 MiB attachment streamed from a file (peak RSS measured in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from servers.sink import SmtpSink

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")


def test_pipelined_send_to_smtp_sink(smtp_sink: Callable[..., SmtpSink]) -> None:
    sink = smtp_sink(dump=True)
    rcpt = [f"<r{i}@example.test>" for i in range(20)]
    result = mailpump.send(from_="<s@example.test>", rcpt=rcpt, server=sink.host, port=sink.port,
                           tls="none", timeout=10,
                           source=mailpump.message({"headers": {"subject": "pipelined"},
                                                    "body": ".dot\r\nline\r\n"}))  # fmt: skip
    assert result and len(result.accepted) == 20
    [dump] = sink.messages()
    assert dump.rcpt_tos == rcpt
    assert b"\n.dot\nline\n" in dump.message  # un-stuffed by the sink: it was stuffed on the wire


def test_thousands_of_messages_over_one_session(smtp_sink: Callable[..., SmtpSink]) -> None:
    sink = smtp_sink(dump=True)
    count = 2000
    with mailpump.open(sink.host, sink.port, tls="none", timeout=30) as s:
        s.greet("bulk.example.test")
        for i in range(count):
            source = mailpump.message({"headers": {"subject": f"bulk {i}", "message-id":
                                       f"<{i}@bulk.example.test>"}, "body": f"message {i}\r\n"})  # fmt: skip
            result = s.send({"from": "<s@example.test>", "rcpt": f"<r{i}@example.test>",
                             "source": source})  # fmt: skip
            assert result.reply.code == 250
        s.quit()
    dumps = sink.messages()
    assert len(dumps) == count
    assert sorted(d.rcpt_tos[0] for d in dumps) == sorted(
        f"<r{i}@example.test>" for i in range(count)
    )


BIG_SCRIPT = r"""
import resource, sys
import mailpump

path, size, host, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with open(path, "wb") as f:
    f.truncate(size)  # sparse: no disk, no memory
source = mailpump.message({"headers": {"subject": "big"}, "body": [
    {"body": "see attachment"}, mailpump.attachment(path, "big.bin", "application/octet-stream")]})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = mailpump.send(from_="<s@example.test>", rcpt="<r@example.test>", source=source,
                       server=host, port=port, tls="none", timeout=60)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(result.reply.code, (after - before) // 1024)
"""


def test_256_mib_attachment_streamed_from_a_file(
    smtp_sink: Callable[..., SmtpSink], tmp_path: Path
) -> None:
    sink = smtp_sink()
    path = tmp_path / "big.bin"
    out = subprocess.run(
        [sys.executable, "-c", BIG_SCRIPT, str(path), str(256 * 1024 * 1024), sink.host,
         str(sink.port)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    code, growth_mib = map(int, out.stdout.split())
    assert code == 250
    assert growth_mib < 64, f"peak RSS grew by {growth_mib} MiB"
