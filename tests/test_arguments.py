"""Every public function called with arbitrary argument values: the process survives, and the
only exceptions are the documented ones (ValueError, TypeError, OverflowError, OSError and
MailpumpError with its subclasses). Numbers that would abort the process (an allocation of a
terabyte) or panic (a deadline past the end of time) are refused with a ValueError naming the
argument."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

mailpump = pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: mailpump.ltn12.source.file("/dev/zero", chunk_size=2**40), "chunk_size"),
        (lambda: mailpump.ltn12.source.string(b"x", chunk_size=2**40), "chunk_size"),
        (lambda: mailpump.message({"body": "x"}, chunk_size=2**40), "chunk_size"),
        (
            lambda: mailpump.send(from_="a@example.test", rcpt="b@example.test", source=b"x",
                                  server="127.0.0.1", port=1, tls="none", timeout=1.8e19),
            "timeout",
        ),
        (lambda: mailpump.send(from_="a@example.test", rcpt="b@example.test", source=b"x",
                               server="127.0.0.1", port=1, tls="none", timeout=float("nan")),
         "timeout"),
        (lambda: mailpump.Pool("127.0.0.1", 1, connections=2**40), "connections"),
        (lambda: mailpump.Pool("127.0.0.1", 1, backoff=1e300), "backoff"),
    ],
)  # fmt: skip
def test_absurd_numbers_are_refused_by_name(call: object, name: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=name):
        call()


# Run in a child process, so that a crash (SIGSEGV, SIGABRT) is a failed test, not a dead run.
# The examples are derandomized and bounded: the same few hundred calls on every run.
SCRIPT = textwrap.dedent(
    """
    import itertools
    import mailpump
    from mailpump import _mailpump as m
    from hypothesis import given, settings, HealthCheck, strategies as st

    DOCUMENTED = (ValueError, TypeError, OverflowError, OSError, mailpump.MailpumpError)

    numbers = st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, 1, -1, 2**31, 2**32, 2**40, 2**63, 2**64, -(2**63)]),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    values = st.one_of(
        numbers, st.none(), st.booleans(), st.text(max_size=20), st.binary(max_size=20),
        st.lists(st.binary(max_size=8), max_size=3),
        st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    )
    SEND = dict(from_="a@example.test", rcpt="b@example.test", source=b"x",
                server="127.0.0.1", port=1, tls="none")
    CALLS = {
        "source_string": lambda a, b: m.source_string(b"abc", a),
        "source_file": lambda a, b: m.source_file("/dev/zero", "rb", a),
        "message": lambda a, b: m.message({"body": "x"}, chunk_size=a),
        "wrap": lambda a, b: m.wrap("text", a),
        "wrap_qp": lambda a, b: m.wrap("quoted-printable", a),
        "wrp": lambda a, b: m.wrp(a, b"abc def", b),
        "qpwrp": lambda a, b: m.qpwrp(a, b"abc=20def", b),
        "dot": lambda a, b: m.dot(a, b"a\\r\\n.b"),
        "eol": lambda a, b: m.eol(a, b"a\\rb\\n", b),
        "b64": lambda a, b: m.b64(a, b),
        "qp": lambda a, b: m.qp(a, b),
        "unb64": lambda a, b: m.unb64(a, b),
        "unqp": lambda a, b: m.unqp(a, b),
        "encode": lambda a, b: m.encode(a, b),
        "decode": lambda a, b: m.decode(a, b),
        "normalize": lambda a, b: m.normalize(a),
        "text": lambda a, b: m.text(a, b),
        "attachment": lambda a, b: m.attachment(a, b),
        "send_timeout": lambda a, b: mailpump.send(**SEND, timeout=a),
        "send_port": lambda a, b: mailpump.send(**{**SEND, "port": a}),
        "pool": lambda a, b: mailpump.Pool("127.0.0.1", 1, connections=a, queue=b).close(),
        "pool_times": lambda a, b: mailpump.Pool("127.0.0.1", 1, idle_timeout=a, backoff=b).close(),
        "pool_rate": lambda a, b: mailpump.Pool("127.0.0.1", 1, rate=(a, b)).close(),
    }

    def drain(result):
        # A source or filter made from the arguments is run a little: its first chunks.
        if isinstance(result, (m.Source, m.MessageSource)):
            for chunk in itertools.islice(result, 3):
                assert isinstance(chunk, bytes)

    @settings(max_examples=%d, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(sorted(CALLS)), values, values)
    def run(name, a, b):
        try:
            drain(CALLS[name](a, b))
        except DOCUMENTED:
            pass

    run()
    print("survived")
    """
)


def test_random_arguments_crash_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT % 600], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0 and done.stdout.strip() == "survived", done.stderr[-3000:]
