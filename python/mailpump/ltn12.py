"""LTN12 for Python: sources, sinks, filters and pumps.

The Python spellings: a **source** is any iterable of ``bytes`` chunks (exhaustion ends it, an
exception is its error); a **filter** is a callable ``f(chunk: bytes | None) -> bytes`` (``None``
flushes at the end); a **sink** is a callable ``s(chunk: bytes | None) -> None`` (``None`` ends
the data). The sources, filters and sinks made here are native: a chain whose pieces are all native
runs in Rust with the GIL released, without a Python call per chunk. Python iterables and
callables mix in freely, at the cost of one call per chunk.

Native pieces are *moved* into the chain, message or session they are used in; using them again
afterwards raises ``ValueError``.

Sources read ``BLOCKSIZE`` (64 KiB) bytes at a time, where LuaSocket reads 2048; a filter may
make a chunk larger or smaller.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator

from . import _mailpump

__all__ = ["BLOCKSIZE", "filter", "pump", "sink", "source"]

BLOCKSIZE = 65536

SourceLike = Iterable[bytes]
FilterLike = Callable[[bytes | None], bytes]
SinkLike = Callable[[bytes | None], object]
StepLike = Callable[[Iterator[bytes], SinkLike], bool]


class _Sources:
    """A namespace (a class, rather than a ``SimpleNamespace``, so that type checkers see each
    factory's signature)."""

    string = staticmethod(_mailpump.source_string)
    file = staticmethod(_mailpump.source_file)
    chain = staticmethod(_mailpump.source_chain)
    cat = staticmethod(_mailpump.source_cat)
    empty = staticmethod(_mailpump.source_empty)


source: _Sources = _Sources()
"""Source factories: ``string(s)``, ``file(path | file, mode="rb")``, ``chain(src, *filters)``,
``cat(*sources)``, ``empty()``."""


class _Sinks:
    list = staticmethod(_mailpump.sink_list)
    file = staticmethod(_mailpump.sink_file)
    null = staticmethod(_mailpump.sink_null)


sink: _Sinks = _Sinks()
"""Sink factories: ``list(lst=None)``, ``file(path | file, mode="wb")``, ``null()``."""


class _Filters:
    chain = staticmethod(_mailpump.filter_chain)


filter: _Filters = _Filters()
"""Filter combinators: ``chain(*filters)``."""


def _step(src: Iterator[bytes], snk: SinkLike) -> bool:
    """Moves one chunk from ``src`` (an iterator) to ``snk``; at the end, sends ``None``.

    Returns ``True`` while there may be more to move (LTN12's ``pump.step``).
    """
    chunk = next(src, None)
    snk(chunk)
    return chunk is not None


def _all(src: SourceLike, snk: SinkLike, step: StepLike | None = None) -> None:
    """Pumps all of ``src`` into ``snk`` with ``step`` (default :func:`pump.step`).

    Errors are exceptions: a source's or sink's exception propagates (LTN12 returns ``nil, err``).
    """
    if step is None and _mailpump.pump_native(src, snk):
        return  # every piece was native: the loop ran in Rust without the GIL
    it = builtins.iter(src)
    st = step if step is not None else _step
    while st(it, snk):
        pass


class _Pumps:
    step = staticmethod(_step)
    all = staticmethod(_all)


pump: _Pumps = _Pumps()
"""Pumps: ``step(src, snk) -> bool`` (``src`` an iterator) and ``all(src, snk, step=None)``."""
