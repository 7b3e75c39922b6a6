"""A pool of SMTP connections: :class:`Pool` sends messages from any thread, from asyncio or
from an iterable, over a few connections kept open, pipelined across messages, with a rate
limit and retries that never deliver a message twice.

The worker threads are the Rust core's; this module only turns their outcomes into
:class:`concurrent.futures.Future`\\ s, asyncio futures (completed through the loop's
``call_soon_threadsafe``, no thread per call) and the stream of :meth:`Pool.map`.

Retries: a message is tried again (after ``backoff * 2**attempt`` seconds, at most 60, on a
new connection where the old one is gone) only when the server cannot have taken it: the
connection was refused, lost or timed out before its end-of-data mark, a 421 came at any
stage, a 4xx answered MAIL or DATA, or the verdict on the end of data was a 4xx. A 5xx is final;
:class:`~mailpump.SMTPOutcomeUnknown` (the mark went out, no verdict came) is reported and never
retried; a message whose source cannot be read again (an iterator, a file object) is sent at
most once. Each retry is logged at INFO on the ``mailpump`` logger with its reason.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import queue
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from . import _mailpump
from ._mailpump import SendResult
from .smtp import _connection, _table

if TYPE_CHECKING:
    from typing import Unpack

    from .types import PoolConnectionOptions, Transaction

__all__ = ["Pool", "PoolStats", "asend"]

_log = logging.getLogger("mailpump")

#: The pools still open, closed (what has not started is cancelled) when the interpreter exits.
_open_pools: weakref.WeakSet[Pool] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for pool in list(_open_pools):
        pool.close(wait=False)


@dataclass(frozen=True)
class PoolStats:
    """What a :class:`Pool` has done so far."""

    sent: int
    """Messages the server accepted."""
    refused: int
    """Messages the server refused for good (a reply, every recipient, the size)."""
    retried: int
    """Attempts made again after a failure that allowed it."""
    failed: int
    """Messages that failed otherwise: the connection, an unknown outcome, cancelled."""
    connections_opened: int
    """Connections opened."""
    in_flight: int
    """Messages submitted and not yet done."""


def _message(mailt: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> Transaction:
    if kw or mailt is None:
        return cast("Transaction", _table(mailt, kw))
    return cast("Transaction", mailt)


def _late(value: SendResult | BaseException | None) -> None:
    """The outcome of a message whose caller stopped waiting (a cancelled future)."""
    if value is None:
        return
    if isinstance(value, BaseException):
        _log.info("a message cancelled after its end-of-data mark failed: %s", value)
    else:
        _log.info("a message cancelled after its end-of-data mark was sent: %s", value.reply)


def _settle(
    future: concurrent.futures.Future[SendResult] | asyncio.Future[SendResult],
    value: SendResult | BaseException | None,
) -> None:
    """Completes `future` with a pool's outcome (``None``: cancelled before it was sent)."""
    if value is None:
        future.cancel()
        return
    if future.cancelled():
        _late(value)
        return
    try:
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)
    except (concurrent.futures.InvalidStateError, asyncio.InvalidStateError):
        # Cancelled in the meantime by its owner.
        _late(value)


class Pool:
    """A pool of connections to one server.

    ``Pool(server, port, *, connections=4, max_messages=None, rate=None, idle_timeout=60.0,
    retries=3, backoff=1.0, **connection_options)``: ``connection_options`` are ``send()``'s
    (``tls``, ``timeout``, ``cafile``, ``verify``, ``ssl_context``, ``domain``, ``helo_fallback``,
    ``allow_insecure_auth``, ``chunking``, ``lmtp``, ``dkim``, ``user``, ``password``, ``auth``,
    ``oauth_token``); a ``dkim`` signer signs each message once, so a retry sends the same bytes;
    ``server``, ``port``, ``domain`` and ``timeout`` default to the ``mailpump.smtp`` constants,
    read now.

    - ``connections``: worker threads, each with at most one connection, opened when needed.
    - ``max_messages``: messages per connection before QUIT and a fresh connection.
    - ``rate=(n, seconds)``: at most ``n`` messages in any window of ``seconds``, across every
      connection (messages are spaced ``seconds / n`` apart).
    - ``idle_timeout``: an idle connection says QUIT after this many seconds; one idle for more
      than 5 seconds is checked with NOOP before it is used again.
    - ``retries``, ``backoff``: see the module documentation; the wait is
      ``backoff * 2**attempt`` seconds, at most 60. With ``lmtp=True``, recipients whose own
      verdict was a 4xx are sent the message again, alone (never one that has it, or refused
      it with a 5xx); the result gathers every attempt's verdicts.

    Messages are the dicts (or keywords) of ``Session.send``: ``from``, ``rcpt``, ``source``,
    ``step``, ``progress``. Use it as a context manager (``with`` or ``async with``) or call
    :meth:`close`. The ``mailpump`` logger gets one INFO record per message (the server's
    queue id, the refused recipients) and per retry, each with ``conn`` and ``peer`` in its
    ``extra``, and the dialogue at DEBUG when DEBUG is enabled as the pool is made.
    """

    __slots__ = ("__weakref__", "_native")

    def __init__(
        self,
        server: str | None = None,
        port: int | None = None,
        *,
        connections: int = 4,
        max_messages: int | None = None,
        rate: tuple[int, float] | None = None,
        idle_timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        **connection_options: Unpack[PoolConnectionOptions],
    ) -> None:
        options = _connection({"server": server, "port": port, **connection_options})
        if rate is not None:
            n, seconds = rate
            rate = (int(n), float(seconds))
        self._native = _mailpump.Pool(
            options,
            connections=connections,
            max_messages=max_messages,
            rate=rate,
            idle_timeout=idle_timeout,
            retries=retries,
            backoff=backoff,
        )
        _open_pools.add(self)

    def submit(
        self, mailt: Transaction | None = None, /, **kw: Any
    ) -> concurrent.futures.Future[SendResult]:
        """Queues a message (waiting while the queue is full); returns a future of its
        :class:`~mailpump.SendResult`. Cancelling the future stops the message if its
        end-of-data mark has not been written; ``close(wait=False)`` cancels it if it has not
        started. Raises ``RuntimeError`` once the pool is closed."""
        future: concurrent.futures.Future[SendResult] = concurrent.futures.Future()
        ticket = self._native.submit(
            _message(mailt, kw), lambda value: _settle(future, value)
        )
        future.add_done_callback(lambda f: ticket.cancel() if f.cancelled() else None)
        return future

    def send(self, mailt: Transaction | None = None, /, **kw: Any) -> SendResult:
        """Sends a message through the pool and waits for its result (from any thread)."""
        return self.submit(mailt, **kw).result()

    async def asend(self, mailt: Transaction | None = None, /, **kw: Any) -> SendResult:
        """Sends a message from asyncio: the event loop never blocks, and no thread is made
        for the call. Cancelling the awaiting task stops the message cleanly: not started, it
        is never sent; started, it is aborted before its end-of-data mark; after the mark it is
        too late, and its outcome is only logged."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SendResult] = loop.create_future()

        def done(value: SendResult | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(_settle, future, value)
            except RuntimeError:
                # The loop is closed: nobody is waiting any more.
                _late(value)

        # The loop must not wait for room in the queue: the tasks it runs bound the work.
        ticket = self._native.submit(_message(mailt, kw), done, block=False)
        try:
            return await future
        except asyncio.CancelledError:
            ticket.cancel()
            raise

    def map(
        self, mailts: Iterable[Transaction | Mapping[str, Any]], *, window: int = 1000
    ) -> Iterator[tuple[int, SendResult | BaseException]]:
        """Sends every message of `mailts` and yields ``(index, result or exception)`` as each
        is done (not in order), with at most `window` messages taken from `mailts` and not yet
        yielded: an endless generator runs in bounded memory. A message that cannot be read
        (a bad dict) is yielded with its exception; one cancelled by ``close(wait=False)`` with
        a ``concurrent.futures.CancelledError``."""
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        done: queue.SimpleQueue[tuple[int, SendResult | BaseException | None]] = (
            queue.SimpleQueue()
        )
        iterator = iter(mailts)
        pending = 0
        index = 0
        exhausted = False
        while True:
            while not exhausted and pending < window:
                try:
                    mailt = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                i = index
                index += 1

                def report(
                    value: SendResult | BaseException | None, i: int = i
                ) -> None:
                    done.put((i, value))

                try:
                    self._native.submit(cast("Transaction", mailt), report)
                except RuntimeError:
                    raise
                except Exception as e:  # noqa: BLE001 (a bad message is its own result)
                    done.put((i, e))
                pending += 1
            if pending == 0:
                return
            i, value = done.get()
            pending -= 1
            yield i, concurrent.futures.CancelledError() if value is None else value

    def close(self, wait: bool = True) -> None:
        """Closes the pool: no more messages. ``wait=True`` sends what is queued first
        (retries included); ``wait=False`` cancels what has not started (their futures are
        cancelled) and lets the messages being sent finish. Returns when every connection has
        said QUIT. Closing again does nothing."""
        _open_pools.discard(self)
        self._native.close(wait)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.closed

    @property
    def stats(self) -> PoolStats:
        """The counters so far."""
        return PoolStats(*self._native.stats)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(wait=True)

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Draining the queue blocks: in a thread, so that the loop goes on.
        await asyncio.to_thread(self.close, True)

    def __repr__(self) -> str:
        s = self.stats
        state = " (closed)" if self.closed else ""
        return f"<mailpump Pool sent={s.sent} in_flight={s.in_flight}{state}>"


async def asend(mailt: Transaction | None = None, /, **kw: Any) -> SendResult:
    """Sends one message from asyncio with ``send()``'s arguments, over a new connection made
    by a worker thread (not retried, as ``send()`` is not). Cancelling the awaiting task stops
    the message as :meth:`Pool.asend` does."""
    options = _table(mailt, kw)
    keys = ("from", "rcpt", "source", "step", "progress", "dsn", "binarymime")
    transaction = {k: options.pop(k) for k in keys if k in options}
    server = options.pop("server", None)
    port = options.pop("port", None)
    pool = Pool(server, port, connections=1, retries=0, **options)
    try:
        return await pool.asend(cast("Transaction", transaction))
    finally:
        _open_pools.discard(pool)
        # The worker says QUIT and ends on its own: the loop does not wait for it.
        pool._native.close(True, False)
