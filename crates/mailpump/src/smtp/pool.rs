//! A pool of connections to one server: worker threads, each owning at most one [`Client`], take
//! messages from a bounded queue and send them pipelined across transactions
//! ([`Client::send_many`]), with a shared rate limit and retries that never deliver a message
//! twice. No async runtime: a caller waits on its own terms (a channel, a future, a callback).
//!
//! # Retries
//!
//! A message is tried again, after `backoff * 2^(attempt - 1)` (at most
//! [`PoolOptions::max_backoff`]) and on a new connection when the old one is gone, only when the
//! server cannot have taken it: see [`retry_reason`]. A message whose end-of-data mark was written
//! and whose verdict never came is [`SmtpError::OutcomeUnknown`], reported and never retried; a
//! 5xx is final; a message whose source cannot be read again ([`Source::replay`] gives `None`)
//! is sent at most once. Over LMTP, recipients whose own verdict was a 4xx are sent the message
//! again, alone (never one that has it, or refused it with a 5xx), and the outcome gathers the
//! verdicts of every attempt.
//!
//! # Connections
//!
//! A worker connects (greeting, EHLO, TLS policy, AUTH) when it has a message and no
//! connection. A connection that failed is dropped; one that received a 421 is closed; one idle
//! for [`PoolOptions::idle_timeout`] is closed with QUIT; one idle for more than
//! [`PoolOptions::check_after`] is checked with NOOP before it is used again; after
//! [`PoolOptions::max_messages`] messages it is closed with QUIT and the next message opens a
//! fresh one.
//!
//! ```no_run
//! use mailpump::smtp::pool::{Pool, PoolOptions, Rate};
//! use mailpump::source::BytesSource;
//! use mailpump::{Address, ClientConfig, Envelope};
//! use std::time::Duration;
//!
//! let config = ClientConfig { server: "smtp.example.com".into(), port: 587, ..ClientConfig::default() };
//! let options = PoolOptions {
//!     connections: 4,
//!     rate: Some(Rate::new(100, Duration::from_secs(1))?),
//!     ..PoolOptions::default()
//! };
//! let pool = Pool::new(config, None, options)?;
//! let envelope = Envelope::new(Address::parse("me@example.com")?, vec![Address::parse("you@example.org")?]);
//! let result = pool.send(envelope, Box::new(BytesSource::new("Subject: hi\r\n\r\nhello\r\n")))?;
//! println!("queued: {}", result.reply.text());
//! pool.close(true);
//! # Ok::<(), mailpump::SmtpError>(())
//! ```

mod lmtp;
mod rate;
mod retry;
mod worker;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use rate::{Rate, TokenBucket};
pub use retry::{backoff, queue_id, retry_reason};

use super::auth::{Credentials, Mechanism};
use super::client::{Client, ClientConfig, Envelope, SendResult};
use super::error::{ConnectKind, SmtpError};
use super::transcript::Direction;
use crate::source::Source;

/// What a message's caller is told when it is done: called once, from a worker thread (or from
/// [`Pool::close`] for a message cancelled there).
pub type OnDone = Box<dyn FnOnce(Result<SendResult, SmtpError>) + Send>;

/// A hook that hears what the pool does (connections, retries, outcomes, the transcript): the
/// pool has no logging of its own, a program forwards these to its logger.
pub type EventFn = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// Opens a connection for the pool (greeting and AUTH are the pool's): for a caller that makes
/// its own transports. The default is [`Client::connect`].
pub type Connector = Arc<dyn Fn(&ClientConfig) -> Result<Client, SmtpError> + Send + Sync>;

/// Something the pool did. `conn` is the connection's number in this pool (from 1), `peer` the
/// server as `host:port`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A connection was opened, greeted and (with credentials) authenticated.
    Connected {
        /// The connection.
        conn: u64,
        /// The server.
        peer: &'a str,
    },
    /// A connection was closed or dropped.
    Closed {
        /// The connection.
        conn: u64,
        /// The server.
        peer: &'a str,
        /// Why, in words.
        reason: &'a str,
    },
    /// A message will be tried again.
    Retry {
        /// The connection it failed on (`None`: none could be opened).
        conn: Option<u64>,
        /// The server.
        peer: &'a str,
        /// The number of the coming attempt (2 for the first retry).
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// Why it failed, and why that is safe to retry.
        reason: &'a str,
    },
    /// A message was accepted.
    Sent {
        /// The connection.
        conn: u64,
        /// The server.
        peer: &'a str,
        /// The server's verdict and the refused recipients.
        result: &'a SendResult,
    },
    /// A message failed for good.
    Failed {
        /// The connection it failed on (`None`: none could be opened, or it never started).
        conn: Option<u64>,
        /// The server.
        peer: &'a str,
        /// Why.
        error: &'a SmtpError,
    },
    /// A line of a connection's transcript (only with [`PoolOptions::transcript`]).
    Transcript {
        /// The connection.
        conn: u64,
        /// The server.
        peer: &'a str,
        /// Who said it.
        direction: Direction,
        /// The line, credentials redacted.
        line: &'a str,
    },
}

/// How a [`Pool`] behaves.
#[derive(Clone)]
pub struct PoolOptions {
    /// The number of worker threads, each with at most one connection (at least 1).
    pub connections: usize,
    /// Messages per connection before QUIT and a fresh connection (`None`: no limit).
    pub max_messages: Option<usize>,
    /// At most this many messages per window, across every connection.
    pub rate: Option<Rate>,
    /// An idle connection is closed (QUIT) after this long.
    pub idle_timeout: Duration,
    /// A connection idle for longer than this is checked with NOOP before it is used again.
    pub check_after: Duration,
    /// How many times a message is tried again (see [`retry_reason`]).
    pub retries: u32,
    /// The wait before the first retry; it doubles with each one.
    pub backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// How many messages may wait in the queue before [`Pool::submit`] blocks (at least 1).
    pub queue: usize,
    /// Hears connections, retries, outcomes and (with `transcript`) the dialogue.
    pub events: Option<EventFn>,
    /// Whether [`Event::Transcript`] is sent to `events`.
    pub transcript: bool,
    /// Opens connections instead of [`Client::connect`].
    pub connector: Option<Connector>,
}

impl Default for PoolOptions {
    /// 4 connections, no message limit, no rate, 60 s idle, NOOP after 5 s idle, 3 retries from
    /// 1 s up to 60 s, a queue of 1024.
    fn default() -> Self {
        Self {
            connections: 4,
            max_messages: None,
            rate: None,
            idle_timeout: Duration::from_secs(60),
            check_after: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            queue: 1024,
            events: None,
            transcript: false,
            connector: None,
        }
    }
}

impl fmt::Debug for PoolOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolOptions")
            .field("connections", &self.connections)
            .field("max_messages", &self.max_messages)
            .field("rate", &self.rate)
            .field("idle_timeout", &self.idle_timeout)
            .field("check_after", &self.check_after)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("queue", &self.queue)
            .field("events", &self.events.is_some())
            .field("transcript", &self.transcript)
            .field("connector", &self.connector.is_some())
            .finish()
    }
}

/// One message for the pool.
pub struct Job {
    /// The envelope.
    pub envelope: Envelope,
    /// The message; retried only when [`Source::replay`] gives a fresh copy.
    pub source: Box<dyn Source>,
    /// Called once with the outcome.
    pub on_done: OnDone,
    /// Set it to stop the message: before it starts it is never sent; while its body goes out it
    /// is aborted before its end-of-data mark (the connection is closed, nothing is delivered);
    /// after the mark it is too late, and the outcome is reported as usual.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// The error of a message cancelled before its end-of-data mark (inside
/// [`SmtpError::Source`]); see [`is_cancelled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the message was cancelled before its end-of-data mark; it was not delivered")
    }
}

impl std::error::Error for Cancelled {}

/// Whether `error` says the message was cancelled (never delivered).
///
/// ```
/// use mailpump::smtp::pool::{Cancelled, is_cancelled};
/// use mailpump::SmtpError;
///
/// assert!(is_cancelled(&SmtpError::Source(Box::new(Cancelled))));
/// assert!(!is_cancelled(&SmtpError::invalid_input("x")));
/// ```
#[must_use]
pub fn is_cancelled(error: &SmtpError) -> bool {
    matches!(error, SmtpError::Source(e) if e.is::<Cancelled>())
}

fn cancelled() -> SmtpError {
    SmtpError::Source(Box::new(Cancelled))
}

/// What a pool has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Messages accepted by the server.
    pub sent: u64,
    /// Messages the server refused for good (a reply, every recipient, the size).
    pub refused: u64,
    /// Attempts made again after a failure that allowed it.
    pub retried: u64,
    /// Messages that failed otherwise (the connection, an unknown outcome, cancelled).
    pub failed: u64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Messages submitted and not yet done.
    pub in_flight: u64,
}

/// A message waiting in the queue.
struct Queued {
    job: Job,
    /// Attempts made so far.
    attempt: u32,
    /// Not to be tried before this (a retry's backoff).
    not_before: Option<Instant>,
    /// LMTP: what earlier attempts settled, and the deferred verdicts this attempt retries.
    settled: Option<Box<lmtp::Settled>>,
    /// Its source carries the pool's DKIM signature already.
    #[cfg(feature = "dkim")]
    signed: bool,
}

impl Queued {
    fn is_cancelled(&self) -> bool {
        self.job
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Acquire))
    }
}

/// The queue and what goes with it, under one lock.
struct State {
    queue: VecDeque<Queued>,
    /// No more submissions.
    closed: bool,
    /// `close(wait=false)`: messages not started are cancelled, retries too.
    discard: bool,
    bucket: Option<TokenBucket>,
}

/// What [`State::take_ready`] found.
enum Ready {
    Job(Queued),
    /// Nothing to take now; something may be ready after this long (`None`: nothing queued).
    Wait(Option<Duration>),
}

impl State {
    /// The first message whose backoff is over, if the rate allows one now.
    fn take_ready(&mut self, now: Instant) -> Ready {
        let Some(index) = self
            .queue
            .iter()
            .position(|q| q.not_before.is_none_or(|t| t <= now))
        else {
            let soonest = self.queue.iter().filter_map(|q| q.not_before).min();
            return Ready::Wait(soonest.map(|t| t.saturating_duration_since(now)));
        };
        // A cancelled message costs no token.
        if !self.queue[index].is_cancelled() {
            if let Some(bucket) = &mut self.bucket {
                if let Err(wait) = bucket.take(now) {
                    return Ready::Wait(Some(wait));
                }
            }
        }
        Ready::Job(self.queue.remove(index).expect("the index was found"))
    }
}

/// Counters behind [`Stats`].
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    refused: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    connections_opened: AtomicU64,
    in_flight: AtomicU64,
}

/// What the workers share with the pool.
struct Shared {
    config: ClientConfig,
    credentials: Option<(Credentials, Option<Mechanism>)>,
    options: PoolOptions,
    peer: String,
    state: Mutex<State>,
    /// Signalled when a message is queued, or the pool closes.
    work: Condvar,
    /// Signalled when the queue has room.
    room: Condvar,
    counters: Counters,
    next_conn: AtomicU64,
    /// The signer of `config`, which the workers apply once per message, not the connections
    /// once per attempt: a signature carries the time it was made (RFC 6376 §3.5 `t=`), and a
    /// retry sends the very bytes of the first attempt.
    #[cfg(feature = "dkim")]
    dkim: Option<crate::mime::dkim::DkimSigner>,
}

thread_local! {
    /// The pool whose worker this thread is (its `Shared`'s address), so that a callback that
    /// submits or closes from a worker does not wait for itself.
    static WORKER_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the queue half-changed: every change is one call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    fn on_worker(&self) -> bool {
        WORKER_OF.with(std::cell::Cell::get) == self.id()
    }

    fn event(&self, event: &Event<'_>) {
        if let Some(events) = &self.options.events {
            // A failing hook must not take a worker down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| events(event)));
        }
    }

    /// Tells a message's caller its outcome, counting it.
    fn finish(&self, job: Job, conn: Option<u64>, outcome: Result<SendResult, SmtpError>) {
        match &outcome {
            Ok(result) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                if let Some(conn) = conn {
                    self.event(&Event::Sent {
                        conn,
                        peer: &self.peer,
                        result,
                    });
                }
            }
            Err(error) => {
                let refused = error.reply().is_some()
                    || matches!(
                        error,
                        SmtpError::RecipientsRefused { .. }
                            | SmtpError::SizeExceeded { .. }
                            | SmtpError::NotOffered { .. }
                    );
                let counter = if refused {
                    &self.counters.refused
                } else {
                    &self.counters.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.event(&Event::Failed {
                    conn,
                    peer: &self.peer,
                    error,
                });
            }
        }
        self.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
        let on_done = job.on_done;
        // A panicking callback must not take a worker down.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || on_done(outcome)));
    }

    /// Puts a message back for another attempt after its backoff. The event is sent outside
    /// the lock: a hook may wait for something (an interpreter's lock) whose holder waits for
    /// the queue.
    fn retry(&self, mut queued: Queued, conn: Option<u64>, reason: &str) {
        let delay = backoff(
            self.options.backoff,
            queued.attempt,
            self.options.max_backoff,
        );
        let attempt = queued.attempt + 1;
        queued.not_before = Some(Instant::now() + delay);
        let refused = {
            let mut state = self.lock();
            if state.discard {
                Some(queued)
            } else {
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
                state.queue.push_front(queued);
                None
            }
        };
        match refused {
            None => {
                self.work.notify_one();
                self.event(&Event::Retry {
                    conn,
                    peer: &self.peer,
                    attempt,
                    delay,
                    reason,
                });
            }
            Some(queued) => self.finish(queued.job, conn, Err(cancelled())),
        }
    }

    /// A ready message without waiting, for a connection that is already busy.
    fn try_next(&self) -> Option<Queued> {
        let mut state = self.lock();
        match state.take_ready(Instant::now()) {
            Ready::Job(q) => {
                drop(state);
                self.room.notify_one();
                Some(q)
            }
            Ready::Wait(_) => None,
        }
    }
}

/// What a waiting worker gets.
enum Next {
    // Boxed: a queued message is large, the other variants empty.
    Job(Box<Queued>),
    /// The connection has been idle for `idle_timeout`.
    Idle,
    /// The pool is closed and the queue is empty.
    Closed,
}

impl Shared {
    /// Waits for a ready message, the idle deadline or the end.
    fn next(&self, idle_deadline: Option<Instant>) -> Next {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let wait = match state.take_ready(now) {
                Ready::Job(q) => {
                    drop(state);
                    self.room.notify_one();
                    return Next::Job(Box::new(q));
                }
                Ready::Wait(wait) => wait,
            };
            if state.closed && state.queue.is_empty() {
                return Next::Closed;
            }
            let idle = idle_deadline.map(|d| d.saturating_duration_since(now));
            if idle.is_some_and(|d| d.is_zero()) {
                return Next::Idle;
            }
            state = match [wait, idle].into_iter().flatten().min() {
                Some(timeout) => {
                    self.work
                        .wait_timeout(state, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// A pool of connections to one server; see the [module documentation](self).
pub struct Pool {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("peer", &self.shared.peer)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts the worker threads; nothing connects until a message comes. `credentials` are
    /// used on every connection (with the mechanism, or the best one offered).
    pub fn new(
        config: ClientConfig,
        credentials: Option<(Credentials, Option<Mechanism>)>,
        options: PoolOptions,
    ) -> Result<Self, SmtpError> {
        config.validate()?;
        if options.connections == 0 || options.queue == 0 || options.max_messages == Some(0) {
            return Err(SmtpError::invalid_input(
                "a pool needs at least one connection, a queue of at least one message, and \
                 max_messages of at least one",
            ));
        }
        if options.idle_timeout.is_zero() {
            return Err(SmtpError::invalid_input(
                "the idle timeout must be greater than zero",
            ));
        }
        let peer = format!("{}:{}", config.server, config.port);
        #[cfg(feature = "dkim")]
        let mut config = config;
        #[cfg(feature = "dkim")]
        let dkim = config.dkim.take();
        let shared = Arc::new(Shared {
            credentials,
            peer,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
                discard: false,
                bucket: options.rate.map(TokenBucket::new),
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            counters: Counters::default(),
            next_conn: AtomicU64::new(0),
            config,
            options,
            #[cfg(feature = "dkim")]
            dkim,
        });
        let mut workers = Vec::with_capacity(shared.options.connections);
        for n in 0..shared.options.connections {
            let mine = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("mailpump-pool-{n}"))
                .spawn(move || {
                    WORKER_OF.with(|w| w.set(mine.id()));
                    worker::run(&mine);
                });
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    let pool = Self {
                        shared,
                        workers: Mutex::new(workers),
                    };
                    pool.close(false);
                    return Err(SmtpError::Io(e));
                }
            }
        }
        Ok(Self {
            shared,
            workers: Mutex::new(workers),
        })
    }

    /// Queues a message; blocks while the queue is full (not when called from one of this
    /// pool's own callbacks). Its `on_done` is called once it is done. Fails, without calling
    /// `on_done`, once the pool is closed.
    pub fn submit(&self, job: Job) -> Result<(), SmtpError> {
        self.enqueue(job, true)
    }

    fn enqueue(&self, job: Job, bounded: bool) -> Result<(), SmtpError> {
        let shared = &self.shared;
        let mut state = shared.lock();
        let patient = bounded && !shared.on_worker();
        while patient && !state.closed && state.queue.len() >= shared.options.queue {
            state = shared
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed {
            return Err(SmtpError::Connect {
                server: shared.config.server.clone(),
                port: shared.config.port,
                kind: ConnectKind::Closed,
                source: io::Error::other("the pool is closed"),
            });
        }
        shared.counters.in_flight.fetch_add(1, Ordering::AcqRel);
        state.queue.push_back(Queued {
            job,
            attempt: 0,
            not_before: None,
            settled: None,
            #[cfg(feature = "dkim")]
            signed: false,
        });
        drop(state);
        shared.work.notify_one();
        Ok(())
    }

    /// Sends one message through the pool and waits for its outcome.
    pub fn send(
        &self,
        envelope: Envelope,
        source: Box<dyn Source>,
    ) -> Result<SendResult, SmtpError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Job {
            envelope,
            source,
            on_done: Box::new(move |outcome| {
                let _ = tx.send(outcome);
            }),
            cancel: None,
        })?;
        rx.recv().unwrap_or_else(|_| Err(cancelled()))
    }

    /// Closes the pool: no more submissions. With `wait`, the queue is drained first (retries
    /// and their backoff included); without, the messages that have not started are cancelled
    /// (their `on_done` gets [`Cancelled`]) and those being sent finish. Then every connection
    /// says QUIT and the workers end; the call returns when they have (at once when called from
    /// one of this pool's callbacks). Closing again does nothing more.
    pub fn close(&self, wait: bool) {
        let shared = &self.shared;
        let dropped: Vec<Queued> = {
            let mut state = shared.lock();
            state.closed = true;
            if wait {
                Vec::new()
            } else {
                state.discard = true;
                state.queue.drain(..).collect()
            }
        };
        shared.work.notify_all();
        shared.room.notify_all();
        for queued in dropped {
            shared.finish(queued.job, None, Err(cancelled()));
        }
        if shared.on_worker() {
            return;
        }
        let workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        for worker in workers {
            let _ = worker.join();
        }
    }

    /// Queues a message without waiting for room, for a caller that bounds its own work (an
    /// event loop must not block). Fails, without calling `on_done`, once the pool is closed.
    pub fn push(&self, job: Job) -> Result<(), SmtpError> {
        self.enqueue(job, false)
    }

    /// Closes the pool like `close(true)` but returns at once: the workers drain the queue and
    /// end on their own.
    pub fn shutdown(&self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
        self.shared.room.notify_all();
    }

    /// Whether [`Pool::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            sent: c.sent.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            connections_opened: c.connections_opened.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Acquire),
        }
    }
}

impl Drop for Pool {
    /// Cancels what has not started and lets the workers end on their own, without waiting for
    /// them (a drop must not block); [`Pool::close`] waits.
    fn drop(&mut self) {
        let dropped: Vec<Queued> = {
            let mut state = self.shared.lock();
            if state.closed {
                // close() ran: its queue is being drained, or was cancelled.
                Vec::new()
            } else {
                state.closed = true;
                state.discard = true;
                state.queue.drain(..).collect()
            }
        };
        self.shared.work.notify_all();
        self.shared.room.notify_all();
        for queued in dropped {
            self.shared.finish(queued.job, None, Err(cancelled()));
        }
    }
}
