"""Sending e-mail from Celery workers: mailpump is the sending step, Celery and Redis the queue.

Run a worker (as many as you like, on as many machines) and enqueue from anywhere::

    MAILER_BROKER=redis://localhost:6379/0 MAILER_SMTP_HOST=smtp.example.com \
        celery -A mailer worker --concurrency 4

    from mailer import send_mail
    send_mail.delay({"headers": {"from": "news@example.com", "to": "fulano@example.com",
                                 "subject": "Hi"}, "body": "Hello"})

A task carries one message description: the dict of ``mailpump.message()`` (JSON, so bodies
are text; a file named in ``attachment()`` must be readable where the worker runs). The
envelope comes from its headers (From; To, Cc, Bcc), and Bcc is never transmitted.

The delivery rules:

- Each worker process opens one ``mailpump.Pool`` when it starts (``worker_process_init``) and
  closes it, after its last message, when it stops (``worker_process_shutdown``): a connection is
  reused from one task to the next, never opened per task.
- ``acks_late`` with ``task_reject_on_worker_lost``: a task is taken off the queue only when it
  is done, so a worker process that dies (killed, out of memory) hands its message back to the
  queue and another process sends it. The one message that process had sent whole, whose
  verdict came but whose task was not yet done, is sent twice; nothing is lost.
- A transient failure (``SMTPError.transient``: a 4xx reply, a connection refused or lost
  before the end of data) is retried by Celery, later, after the pool's own quick retries have
  run out. A permanent one fails the task. ``SMTPOutcomeUnknown`` (the message went out whole and
  no verdict came: it may have been delivered) is never retried: it fails the task, for a
  person or a reconciliation job to look at.

Settings come from the environment: ``MAILER_BROKER``, ``MAILER_SMTP_HOST``,
``MAILER_SMTP_PORT`` (587), ``MAILER_SMTP_USER`` and ``MAILER_SMTP_PASSWORD`` (no AUTH when
unset), ``MAILER_SMTP_TLS`` (``auto``), ``MAILER_HELO`` (the name to greet the server with; the
machine's name by default).
"""

from __future__ import annotations

import os
from typing import Any, cast

import mailpump
from celery import Celery, Task
from celery.signals import worker_process_init, worker_process_shutdown
from mailpump import smtp
from mailpump.types import Mesgt, Tls

app = Celery("mailer", broker=os.environ.get("MAILER_BROKER", "redis://localhost:6379/0"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    # Nobody waits for a result: the outcome is the delivery (and the worker's log).
    task_ignore_result=True,
    # A worker process that dies mid-task gives its message back to the queue (with acks_late).
    task_reject_on_worker_lost=True,
    # With acks_late, a worker holds no more unfinished messages than it runs.
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)

RETRY_LIMIT = 8
"""Celery retries of a transient failure, 30 s, 1, 2, 4 ... minutes apart (at most an hour)."""

_pool: mailpump.Pool | None = None


@worker_process_init.connect
def open_pool(**_: Any) -> None:
    """One pool per worker process, made in the process (a pool's threads do not survive
    ``fork``). A prefork process runs one task at a time, so one connection is enough."""
    global _pool
    user = os.environ.get("MAILER_SMTP_USER")
    _pool = mailpump.Pool(
        os.environ.get("MAILER_SMTP_HOST", "localhost"),
        int(os.environ.get("MAILER_SMTP_PORT", "587")),
        connections=1,
        tls=cast("Tls", os.environ.get("MAILER_SMTP_TLS", "auto")),
        domain=os.environ.get("MAILER_HELO"),
        user=user,
        password=os.environ.get("MAILER_SMTP_PASSWORD") if user else None,
    )


@worker_process_shutdown.connect
def close_pool(**_: Any) -> None:
    """Sends what the pool still holds and says QUIT."""
    if _pool is not None:
        _pool.close(wait=True)


@app.task(bind=True, acks_late=True, max_retries=RETRY_LIMIT)
def send_mail(self: Task[Any, Any], description: Mesgt) -> str:
    """Sends one message; returns the server's reply to it (its queue id, usually)."""
    if _pool is None:
        raise RuntimeError("no pool: the worker_process_init handler did not run")
    try:
        result = _pool.send({"source": smtp.message(description)})
    except mailpump.SMTPOutcomeUnknown:
        # Sent whole, no verdict: sending it again may deliver it twice. Fail, do not retry.
        raise
    except mailpump.SMTPError as e:
        if not e.transient:
            raise
        wait = min(30 * 2**self.request.retries, 3600)
        raise self.retry(exc=e, countdown=wait) from e
    return f"{result.reply.code} {result.reply.text}"
