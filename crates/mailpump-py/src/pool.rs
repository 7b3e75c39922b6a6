//! `Pool`: the core's connection pool for Python. Each message's outcome goes to a Python
//! callable, called by one reporting thread with the GIL; the pool's events go to the `mailpump`
//! logger. Futures (`concurrent.futures`, asyncio) are made in `mailpump.pool`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use mailpump::BoxError;
use mailpump::Source;
use mailpump::smtp::client::SendResult;
use mailpump::smtp::error::SmtpError;
use mailpump::smtp::pool::{Event, EventFn, Job, Pool, PoolOptions, Rate, is_cancelled, queue_id};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::errors::detach;
use crate::errors::smtp_to_pyerr;
use crate::options::ConnectOptions;
use crate::smtp::{ProgressFn, PySendResult, Transaction};

/// `logging.DEBUG` and `logging.INFO`.
const DEBUG: u8 = 10;
const INFO: u8 = 20;

/// The `mailpump` logger.
fn logger(py: Python<'_>) -> PyResult<&Py<PyAny>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOGGER.get_or_try_init(py, || {
        Ok(py
            .import("logging")?
            .call_method1("getLogger", ("mailpump",))?
            .unbind())
    })
}

fn enabled(py: Python<'_>, level: u8) -> bool {
    logger(py)
        .and_then(|l| l.bind(py).call_method1("isEnabledFor", (level,)))
        .and_then(|r| r.is_truthy())
        .unwrap_or(false)
}

/// Logs one record with the connection and the peer as `extra` (`conn`, `peer`).
fn log(py: Python<'_>, level: u8, conn: Option<u64>, peer: &str, message: &str) {
    if !enabled(py, level) {
        return;
    }
    let result = (|| -> PyResult<()> {
        let extra = pyo3::types::PyDict::new(py);
        extra.set_item("conn", conn)?;
        extra.set_item("peer", peer)?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("extra", extra)?;
        let tag = conn.map_or_else(|| format!("[{peer}]"), |c| format!("[#{c} {peer}]"));
        logger(py)?
            .bind(py)
            .call_method("log", (level, "%s %s", tag, message), Some(&kwargs))?;
        Ok(())
    })();
    // A failing log handler must not break the pool.
    drop(result);
}

/// Whether the `mailpump` logger records `level`, as last seen: looked up (with the GIL) at
/// most once a second, so that a pool whose INFO records nobody wants does not take the GIL for
/// each message. A change of the logging configuration takes effect within that second.
struct LevelCache {
    checked_ms: AtomicU64,
    /// Bit 0: DEBUG enabled, bit 1: INFO enabled, bit 2: looked up at least once.
    enabled: AtomicU8,
}

impl LevelCache {
    const fn new() -> Self {
        Self {
            checked_ms: AtomicU64::new(0),
            enabled: AtomicU8::new(0),
        }
    }

    fn records(&self, level: u8) -> bool {
        let now = since_start_ms();
        let bits = self.enabled.load(Ordering::Relaxed);
        let fresh = bits & 4 != 0 && now < self.checked_ms.load(Ordering::Relaxed) + 1000;
        let bits = if fresh {
            bits
        } else {
            let bits = Python::attach(|py| {
                4 | u8::from(enabled(py, DEBUG)) | (u8::from(enabled(py, INFO)) << 1)
            });
            self.enabled.store(bits, Ordering::Relaxed);
            self.checked_ms.store(now, Ordering::Relaxed);
            bits
        };
        if level <= DEBUG {
            bits & 1 != 0
        } else {
            bits & 2 != 0
        }
    }
}

/// Milliseconds since the first call, for [`LevelCache`].
fn since_start_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The level an event is recorded at.
fn event_level(event: &Event<'_>) -> u8 {
    match event {
        Event::Connected { .. } | Event::Closed { .. } | Event::Transcript { .. } => DEBUG,
        _ => INFO,
    }
}

/// The pool's events as records of the `mailpump` logger: one INFO record per message and per
/// retry, connections and the transcript at DEBUG.
fn events() -> EventFn {
    let levels = LevelCache::new();
    Arc::new(move |event: &Event<'_>| {
        if !levels.records(event_level(event)) {
            return;
        }
        Python::attach(|py| match event {
            Event::Connected { conn, peer } => {
                log(py, DEBUG, Some(*conn), peer, "connected");
            }
            Event::Closed { conn, peer, reason } => {
                log(py, DEBUG, Some(*conn), peer, &format!("closed: {reason}"));
            }
            Event::Retry {
                conn,
                peer,
                attempt,
                delay,
                reason,
            } => log(
                py,
                INFO,
                *conn,
                peer,
                &format!(
                    "retrying a message (attempt {attempt}) in {:.3} s: {reason}",
                    delay.as_secs_f64()
                ),
            ),
            Event::Sent { conn, peer, result } => {
                let id = queue_id(&result.reply).unwrap_or_else(|| result.reply.text());
                let mut message = format!("sent, queue id {id}");
                for (address, reply) in &result.refused {
                    let _ = write!(message, "; refused {address}: {reply}");
                }
                log(py, INFO, Some(*conn), peer, &message);
            }
            Event::Failed { conn, peer, error } => {
                log(
                    py,
                    INFO,
                    *conn,
                    peer,
                    &format!("not sent ({}): {error}", error.kind()),
                );
            }
            Event::Transcript {
                conn,
                peer,
                direction,
                line,
            } => log(
                py,
                DEBUG,
                Some(*conn),
                peer,
                &format!("{direction}: {line}"),
            ),
            _ => {}
        });
    })
}

/// A message's source with its `progress(sent, total)` callback, called after each chunk; an
/// exception it raises aborts the message before its end-of-data mark.
struct WithProgress {
    inner: Box<dyn Source>,
    progress: ProgressFn,
    sent: u64,
    total: Option<u64>,
}

impl Source for WithProgress {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        let before = out.len();
        let more = self.inner.pull(out)?;
        self.sent += (out.len() - before) as u64;
        self.progress.call(self.sent, self.total)?;
        Ok(more)
    }

    fn remaining_hint(&self) -> Option<u64> {
        self.inner.remaining_hint()
    }

    fn replay(&self) -> Option<Box<dyn Source>> {
        let inner = self.inner.replay()?;
        let progress = Python::attach(|py| self.progress.clone_ref(py));
        Some(Box::new(Self {
            total: inner.remaining_hint(),
            inner,
            progress,
            sent: 0,
        }))
    }

    fn needs_binarymime(&self) -> bool {
        self.inner.needs_binarymime()
    }
}

/// A handle on a submitted message: `cancel()` stops it if its end-of-data mark has not gone
/// out.
#[pyclass(name = "Ticket", module = "mailpump._mailpump", frozen)]
pub struct Ticket(Arc<AtomicBool>);

#[pymethods]
impl Ticket {
    /// Asks the pool not to send the message, or to abort it before its end-of-data mark.
    fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The core's pool: `submit(transaction, done)` calls `done(result)` from a worker thread with
/// a `SendResult`, the exception, or `None` when the message was cancelled unsent.
#[pyclass(name = "Pool", module = "mailpump._mailpump", frozen)]
pub struct PyPool {
    pool: Pool,
    /// Where the workers hand each outcome for [`report`] (see [`spawn_reporter`]).
    outcomes: mpsc::Sender<ToReporter>,
    /// The reporting thread, which a callback that closes the pool runs on.
    reporter: std::thread::ThreadId,
}

/// A duration in seconds, at least zero (see [`crate::options::bounded_seconds`]).
fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    crate::options::bounded_seconds(name, value)
}

/// The most worker connections a pool may open, and the longest queue it may keep: each
/// connection is a thread, and the queue's room is reserved up front.
const MAX_CONNECTIONS: usize = 1024;
const MAX_QUEUE: usize = 1 << 20;

#[pymethods]
impl PyPool {
    #[new]
    #[pyo3(signature = (options, /, *, connections = 4, max_messages = None, rate = None,
                        idle_timeout = 60.0, retries = 3, backoff = 1.0, queue = 1024))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        options: &Bound<'_, PyAny>,
        connections: usize,
        max_messages: Option<usize>,
        rate: Option<(u32, f64)>,
        idle_timeout: f64,
        retries: u32,
        backoff: f64,
        queue: usize,
    ) -> PyResult<Self> {
        let options: ConnectOptions = options.extract()?;
        if options.create.is_some() {
            return Err(PyTypeError::new_err(
                "Pool does not take create: its connections are opened by its worker threads",
            ));
        }
        let rate = rate
            .map(|(n, per)| {
                Rate::new(n, seconds("the rate's window", per)?).map_err(|e| smtp_to_pyerr(py, e))
            })
            .transpose()?;
        if connections > MAX_CONNECTIONS {
            return Err(PyValueError::new_err(format!(
                "connections must be at most {MAX_CONNECTIONS}, not {connections}"
            )));
        }
        if queue > MAX_QUEUE {
            return Err(PyValueError::new_err(format!(
                "queue must be at most {MAX_QUEUE}, not {queue}"
            )));
        }
        let idle_timeout = seconds("idle_timeout", idle_timeout)?;
        let backoff = seconds("backoff", backoff)?;
        let pool_options = PoolOptions {
            connections,
            max_messages,
            rate,
            idle_timeout,
            retries,
            backoff,
            queue,
            events: Some(events()),
            transcript: enabled(py, DEBUG),
            ..PoolOptions::default()
        };
        let pool = Pool::new(options.config, options.credentials, pool_options)
            .map_err(|e| smtp_to_pyerr(py, e))?;
        let (outcomes, reporter) = spawn_reporter()?;
        Ok(Self {
            pool,
            outcomes,
            reporter,
        })
    }

    /// Queues `transaction` (a dict: from, rcpt, source, step, progress); `done(outcome)` is
    /// called once from a worker thread. With `block`, waits while the queue is full.
    #[pyo3(signature = (transaction, done, /, *, block = true))]
    fn submit(
        &self,
        py: Python<'_>,
        transaction: &Bound<'_, PyAny>,
        done: Bound<'_, PyAny>,
        block: bool,
    ) -> PyResult<Ticket> {
        if !done.is_callable() {
            return Err(PyTypeError::new_err("done must be callable"));
        }
        if self.pool.is_closed() {
            return Err(PyRuntimeError::new_err("the pool is closed"));
        }
        let mut transaction: Transaction<'_> = transaction.extract()?;
        let mut source = transaction.source()?;
        if let Some(progress) = transaction.progress {
            source = Box::new(WithProgress {
                total: source.remaining_hint(),
                inner: source,
                progress,
                sent: 0,
            });
        }
        let flag = Arc::new(AtomicBool::new(false));
        let done = done.unbind();
        let outcomes = self.outcomes.clone();
        let job = Job {
            envelope: transaction.envelope,
            source,
            // The reporting thread owns the callback from here; if it is gone (the interpreter
            // is exiting), the outcome has nobody left to tell.
            on_done: Box::new(move |outcome| {
                drop(outcomes.send(ToReporter::Outcome(done, outcome)));
            }),
            cancel: Some(Arc::clone(&flag)),
        };
        let queued = if block {
            detach(py, || self.pool.submit(job))?
        } else {
            self.pool.push(job)
        };
        match queued {
            Ok(()) => Ok(Ticket(flag)),
            Err(_) => Err(PyRuntimeError::new_err("the pool is closed")),
        }
    }

    /// Closes the pool: `wait` drains the queue, otherwise what has not started is cancelled;
    /// `join` waits for the workers to end and for every callback they queued to have run, so
    /// that every future is done when `close` returns.
    #[pyo3(signature = (wait = true, join = true))]
    fn close(&self, py: Python<'_>, wait: bool, join: bool) -> PyResult<()> {
        if join {
            detach(py, || self.pool.close(wait))?;
            // A callback closing the pool runs on the reporting thread: it cannot wait for itself.
            if std::thread::current().id() != self.reporter {
                let (flushed, reported) = mpsc::sync_channel(1);
                if self.outcomes.send(ToReporter::Flush(flushed)).is_ok() {
                    // Err only if the reporting thread is gone: nothing is left to wait for.
                    detach(py, move || reported.recv().is_ok())?;
                }
            }
            Ok(())
        } else {
            if wait {
                self.pool.shutdown();
            } else {
                self.pool.close(false);
            }
            Ok(())
        }
    }

    /// Whether the pool is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// `(sent, refused, retried, failed, connections_opened, in_flight)`.
    #[getter]
    fn stats(&self) -> (u64, u64, u64, u64, u64, u64) {
        let s = self.pool.stats();
        (
            s.sent,
            s.refused,
            s.retried,
            s.failed,
            s.connections_opened,
            s.in_flight,
        )
    }
}

/// What the reporting thread is handed, in order.
enum ToReporter {
    /// A message's callback and its outcome, on their way to Python.
    Outcome(Py<PyAny>, Result<SendResult, SmtpError>),
    /// Answered once everything handed over before it has been reported.
    Flush(mpsc::SyncSender<()>),
}

/// Starts the thread that calls the pool's Python callbacks, and returns where to send them.
/// The workers never take the GIL for an outcome: they hand it over and go on sending, and this
/// one thread takes the GIL once for every batch that has arrived meanwhile (fewer switches
/// between threads than one GIL hand-over per message). It ends when the pool and every job
/// holding a sender are gone.
fn spawn_reporter() -> PyResult<(mpsc::Sender<ToReporter>, std::thread::ThreadId)> {
    const BATCH: usize = 256;
    let (tx, rx) = mpsc::channel::<ToReporter>();
    let reporter = move || {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            Python::attach(|py| {
                for item in batch {
                    match item {
                        ToReporter::Outcome(done, outcome) => report(py, &done, outcome),
                        ToReporter::Flush(flushed) => drop(flushed.send(())),
                    }
                }
            });
        }
    };
    let thread = std::thread::Builder::new()
        .name("mailpump-pool-outcomes".into())
        .spawn(reporter)
        .map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start the pool's reporting thread: {e}"))
        })?;
    Ok((tx, thread.thread().id()))
}

/// Calls `done` with the outcome; an exception it raises is reported as unraisable, never
/// carried into the worker.
fn report(py: Python<'_>, done: &Py<PyAny>, outcome: Result<SendResult, SmtpError>) {
    let value: PyResult<Py<PyAny>> = match outcome {
        Ok(result) => PySendResult::new(py, &result)
            .and_then(|r| Py::new(py, r))
            .map(Py::into_any),
        Err(e) if is_cancelled(&e) => Ok(py.None()),
        Err(e) => Ok(smtp_to_pyerr(py, e).into_value(py).into_any()),
    };
    let called = value.and_then(|v| done.bind(py).call1((v,)).map(drop));
    if let Err(e) = called {
        e.write_unraisable(py, Some(done.bind(py)));
    }
}
