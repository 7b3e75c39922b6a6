//! A pool's worker thread: one connection at a time, many messages over it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::retry::{is_closing, retry_reason};
use super::{Event, Next, Queued, Shared, cancelled};
use crate::BoxError;
use crate::smtp::client::{Client, Envelope, SendResult};
use crate::smtp::error::{ConnectKind, SmtpError};
use crate::source::Source;

/// A worker's connection.
struct Connection {
    client: Client,
    id: u64,
    /// Messages started on it.
    used: usize,
    last_used: Instant,
}

impl Connection {
    /// QUIT (best effort) and close.
    fn quit(mut self, shared: &Shared, reason: &str) {
        if self.client.is_usable() {
            let _ = self.client.quit();
        }
        self.client.close();
        shared.event(&Event::Closed {
            conn: self.id,
            peer: &shared.peer,
            reason,
        });
    }
}

/// The worker's loop: wait for a message, connect when needed, send it and whatever else is
/// ready over the connection, look after the connection; until the pool is closed and empty.
pub(super) fn run(shared: &Shared) {
    let options = &shared.options;
    let mut conn: Option<Connection> = None;
    loop {
        let deadline = conn.as_ref().map(|c| c.last_used + options.idle_timeout);
        let first = match shared.next(deadline) {
            Next::Job(first) => *first,
            Next::Idle => {
                if let Some(c) = conn.take() {
                    c.quit(shared, "idle");
                }
                continue;
            }
            Next::Closed => {
                if let Some(c) = conn.take() {
                    c.quit(shared, "the pool is closed");
                }
                return;
            }
        };
        if first.is_cancelled() {
            shared.finish(first.job, None, Err(cancelled()));
            continue;
        }
        // A connection idle for a while may have been dropped by the server or a middlebox.
        if let Some(c) = conn.as_mut() {
            if c.last_used.elapsed() > options.check_after && c.client.noop().is_err() {
                if let Some(c) = conn.take() {
                    c.quit(shared, "it failed the NOOP check before reuse");
                }
            }
        }
        if conn.is_none() {
            match open(shared) {
                Ok(c) => conn = Some(c),
                Err(error) => {
                    outcome(shared, None, first, Err(error));
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let closing = send(shared, c, first);
        let spent = options.max_messages.is_some_and(|max| c.used >= max);
        if closing || !c.client.is_usable() || spent {
            let reason = if closing {
                "the server is closing the session (421)"
            } else if spent {
                "it carried max_messages messages"
            } else {
                "it failed"
            };
            if let Some(c) = conn.take() {
                c.quit(shared, reason);
            }
        } else {
            c.last_used = Instant::now();
        }
    }
}

/// Connects, greets and authenticates.
fn open(shared: &Shared) -> Result<Connection, SmtpError> {
    let mut client = match &shared.options.connector {
        Some(connect) => connect(&shared.config)?,
        None => Client::connect(&shared.config)?,
    };
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    if let (true, Some(events)) = (shared.options.transcript, &shared.options.events) {
        let events = Arc::clone(events);
        let peer = shared.peer.clone();
        client.set_transcript(Some(Box::new(move |direction, line: &str| {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                events(&super::Event::Transcript {
                    conn: id,
                    peer: &peer,
                    direction,
                    line,
                });
            }));
        })));
    }
    client.greet(None)?;
    if let Some((credentials, mechanism)) = &shared.credentials {
        client.auth(credentials, *mechanism)?;
    }
    shared
        .counters
        .connections_opened
        .fetch_add(1, Ordering::Relaxed);
    shared.event(&Event::Connected {
        conn: id,
        peer: &shared.peer,
    });
    Ok(Connection {
        client,
        id,
        used: 0,
        last_used: Instant::now(),
    })
}

/// A message on its way: what is needed to tell its caller, or to try it again.
struct InFlight {
    queued: Queued,
    /// A fresh copy of the source, for a retry (`None`: a one-shot source).
    spare: Option<Box<dyn Source>>,
}

/// The messages of one [`Client::send_many`] call.
struct Batch {
    /// The message the worker waited for, until the iterator takes it.
    first: Option<Queued>,
    /// The messages taken and not yet done, by index in the call from `base` on. Outcomes come
    /// in order, so the front is dropped as they do: a connection that stays busy for millions
    /// of messages keeps only those in flight.
    open: VecDeque<Option<InFlight>>,
    /// The index in the call of `open`'s front.
    base: usize,
    /// A 421 came: take nothing more on this connection.
    closing: bool,
}

/// Sends `first`, and every message that is ready while the connection is busy, over `c`.
/// Returns whether the server is closing the session.
fn send(shared: &Shared, c: &mut Connection, first: Queued) -> bool {
    let batch = RefCell::new(Batch {
        first: Some(first),
        open: VecDeque::new(),
        base: 0,
        closing: false,
    });
    let limit = shared.options.max_messages.unwrap_or(usize::MAX);
    let conn = c.id;
    let used = std::cell::Cell::new(c.used);
    let messages = std::iter::from_fn(|| {
        loop {
            let mut b = batch.borrow_mut();
            if b.closing || used.get() >= limit {
                return None;
            }
            #[cfg_attr(not(feature = "dkim"), allow(unused_mut))]
            let mut queued = if let Some(q) = b.first.take() {
                q
            } else {
                drop(b);
                let q = shared.try_next()?;
                b = batch.borrow_mut();
                q
            };
            if queued.is_cancelled() {
                drop(b);
                shared.finish(queued.job, None, Err(cancelled()));
                continue;
            }
            #[cfg(feature = "dkim")]
            if let Err(error) = sign_once(shared, &mut queued) {
                drop(b);
                shared.finish(queued.job, Some(conn), Err(error));
                continue;
            }
            used.set(used.get() + 1);
            return Some(b.start(queued));
        }
    });
    let on_result = |index: usize, result: Result<SendResult, SmtpError>| {
        let flight = {
            let mut b = batch.borrow_mut();
            if result.as_ref().is_err_and(is_closing) {
                b.closing = true;
            }
            b.take(index)
        };
        if let Some(InFlight { mut queued, spare }) = flight {
            let replayable = spare.is_some();
            if let Some(spare) = spare {
                queued.job.source = spare;
            }
            outcome_of(shared, Some(conn), queued, replayable, result);
        }
    };
    let started = c.client.send_many(messages, on_result);
    c.used = used.get();
    let mut b = batch.into_inner();
    if let Err(error) = started {
        // The connection could not start a transaction: the first message, untaken, gets it.
        if let Some(first) = b.first.take() {
            b.closing |= is_closing(&error);
            outcome(shared, Some(conn), first, Err(error));
        }
    }
    // A message taken after the server closed the session (a 421 read while the next one was
    // being queued) never went out and got no outcome: it is reported as cut off before its
    // end-of-data mark, which it was.
    for flight in b.open.iter_mut().filter_map(Option::take) {
        let InFlight { mut queued, spare } = flight;
        let replayable = spare.is_some();
        if let Some(spare) = spare {
            queued.job.source = spare;
        }
        let error = SmtpError::Connect {
            server: shared.config.server.clone(),
            port: shared.config.port,
            kind: ConnectKind::Lost,
            source: io::Error::other("the session ended before this message was started"),
        };
        outcome_of(shared, Some(conn), queued, replayable, Err(error));
    }
    b.closing
}

/// Signs `queued` with the pool's signer on its first attempt (see `Shared::dkim`); a retry
/// replays the signed source. Nothing is sent when signing fails.
#[cfg(feature = "dkim")]
fn sign_once(shared: &Shared, queued: &mut Queued) -> Result<(), SmtpError> {
    let Some(signer) = shared.dkim.as_ref().filter(|_| !queued.signed) else {
        return Ok(());
    };
    let binary_mime = queued.job.envelope.binary_mime;
    let source = std::mem::replace(&mut queued.job.source, Box::new(crate::source::EmptySource));
    queued.job.source = Box::new(signer.sign_for_sending(source, binary_mime)?);
    queued.signed = true;
    Ok(())
}

impl Batch {
    /// The message at `index` in the call, once; drops the finished ones from the front.
    fn take(&mut self, index: usize) -> Option<InFlight> {
        let flight = index
            .checked_sub(self.base)
            .and_then(|slot| self.open.get_mut(slot))
            .and_then(Option::take);
        while matches!(self.open.front(), Some(None)) {
            self.open.pop_front();
            self.base += 1;
        }
        flight
    }

    /// Registers `queued` as started; returns what `send_many` sends.
    fn start(&mut self, mut queued: Queued) -> (Envelope, Box<dyn Source>) {
        queued.attempt += 1;
        let source =
            std::mem::replace(&mut queued.job.source, Box::new(crate::source::EmptySource));
        // Send a fresh copy and keep the untouched original for a retry; a one-shot source is
        // sent itself and never again.
        let (sending, spare) = match source.replay() {
            Some(fresh) => (fresh, Some(source)),
            None => (source, None),
        };
        let envelope = queued.job.envelope.clone();
        let cancel = queued.job.cancel.clone();
        self.open.push_back(Some(InFlight { queued, spare }));
        (
            envelope,
            Box::new(Cancellable {
                inner: sending,
                cancel,
            }),
        )
    }
}

/// The outcome of a message that never reached a transaction (no connection).
fn outcome(
    shared: &Shared,
    conn: Option<u64>,
    mut queued: Queued,
    result: Result<SendResult, SmtpError>,
) {
    queued.attempt += 1;
    // Nothing was read from the source: it is as fresh as it came, whatever it is.
    outcome_of(shared, conn, queued, true, result);
}

/// Finishes a message, or puts it back for another attempt when that cannot deliver it twice.
fn outcome_of(
    shared: &Shared,
    conn: Option<u64>,
    mut queued: Queued,
    replayable: bool,
    result: Result<SendResult, SmtpError>,
) {
    let result = match queued.settled.take() {
        Some(settled) => settled.merge(result),
        None => result,
    };
    let may_retry =
        replayable && queued.attempt <= shared.options.retries && !queued.is_cancelled();
    if may_retry {
        // LMTP: the deferred recipients alone, never one that has the message.
        if let Some(retry) = super::lmtp::deferred_retry(&result, &queued.job.envelope) {
            queued.settled = Some(Box::new(retry.settled));
            queued.job.envelope = retry.envelope;
            shared.retry(queued, conn, &retry.reason);
            return;
        }
        if let Some(reason) = result.as_ref().err().and_then(retry_reason) {
            shared.retry(queued, conn, &reason);
            return;
        }
    }
    shared.finish(queued.job, conn, result);
}

/// A message's source that stops, before the end-of-data mark, once its cancel flag is set.
struct Cancellable {
    inner: Box<dyn Source>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Source for Cancellable {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Acquire))
        {
            return Err(Box::new(super::Cancelled));
        }
        self.inner.pull(out)
    }

    fn remaining_hint(&self) -> Option<u64> {
        self.inner.remaining_hint()
    }

    fn needs_binarymime(&self) -> bool {
        self.inner.needs_binarymime()
    }
}
