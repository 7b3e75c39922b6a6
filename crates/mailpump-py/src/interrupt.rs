//! Ctrl-C while the client waits on the network.
//!
//! Network calls run with the GIL released (see [`crate::errors::detach`], the one GIL-release helper), so Python's own
//! SIGINT handling cannot reach them: the C-level handler only sets a flag, and the signal may
//! even be delivered to another thread, so a blocked `recv` is not interrupted either. Without
//! help, a Ctrl-C would wait for the whole I/O timeout and then be lost among the errors.
//!
//! [`Interruptible`] wraps the TCP or Unix-domain socket transport (beneath TLS, so it covers every
//! byte) and blocks in slices of at most [`SLICE`]: between slices, and on `EINTR`, it asks Python
//! whether a signal handler raised (`PyErr_CheckSignals`, which runs the handlers on the main
//! thread and is a no-op elsewhere). If one did, the read or write fails with that exception inside
//! the `io::Error`; the client treats it like any broken connection (it closes the connection, so
//! no half-sent message can be completed later). The exception is also kept aside for this thread,
//! because the core may turn the `io::Error` into text (a failed TLS handshake) or ignore it (a
//! best-effort QUIT): [`crate::errors::detach`] re-raises it after the call, as itself
//! (`KeyboardInterrupt`, not an `SMTPConnectError`), except after a message's end-of-data mark,
//! where [`crate::errors::detach_delivery`] keeps the outcome. The caller's timeout still applies
//! to each operation as a whole.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mailpump::smtp::transport::{Transport, is_timeout};
use pyo3::prelude::*;

use crate::errors::PythonError;

/// The longest a read or write blocks before signals are checked again: short enough for a
/// prompt Ctrl-C, long enough that an idle wait costs nothing measurable.
pub const SLICE: Duration = Duration::from_millis(100);

/// A transport (TCP or a Unix-domain socket) whose blocking calls notice Python signals (see
/// the module docs).
pub struct Interruptible {
    inner: Box<dyn Transport>,
    /// The caller's limit for each read or write (`None`: no limit).
    timeout: Option<Duration>,
}

impl Interruptible {
    /// Wraps `inner`; [`Transport::set_timeout`] must be called before use (the client does).
    pub fn new(inner: Box<dyn Transport>) -> Self {
        Self {
            inner,
            timeout: None,
        }
    }

    /// Runs one blocking operation in slices until it completes, fails, the caller's timeout
    /// passes (the slice's own timeout error is returned) or a signal handler raises.
    fn sliced<T>(
        &mut self,
        mut op: impl FnMut(&mut Box<dyn Transport>) -> io::Result<T>,
    ) -> io::Result<T> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        loop {
            match op(&mut self.inner) {
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                    check_signals()?;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(if is_timeout(&e) {
                            e
                        } else {
                            io::Error::from(io::ErrorKind::TimedOut)
                        });
                    }
                }
                other => return other,
            }
        }
    }
}

thread_local! {
    /// The exception a signal handler raised during the current network call on this thread.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Keeps `e` (a `KeyboardInterrupt`, `SystemExit`, ...) to be re-raised by
/// [`crate::errors::detach`].
pub fn set_pending(py: Python<'_>, e: &PyErr) {
    PENDING.with(|p| *p.borrow_mut() = Some(e.clone_ref(py)));
}

/// Runs Python's pending signal handlers; an exception they raise becomes an `io::Error`.
pub fn check_signals() -> io::Result<()> {
    Python::attach(|py| {
        py.check_signals().map_err(|e| {
            set_pending(py, &e);
            io::Error::other(PythonError(e))
        })
    })
}

/// The exception kept by [`set_pending`] since the last call, if any.
pub fn take_pending() -> Option<PyErr> {
    PENDING.with(|p| p.borrow_mut().take())
}

impl Read for Interruptible {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sliced(|t| t.read(buf))
    }
}

impl Write for Interruptible {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sliced(|t| t.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for Interruptible {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.timeout = timeout;
        let slice = timeout.map_or(SLICE, |t| t.min(SLICE));
        self.inner.set_timeout(Some(slice))
    }

    fn shutdown(&mut self) {
        self.inner.shutdown();
    }

    fn peer_is_loopback(&self) -> bool {
        self.inner.peer_is_loopback()
    }

    fn has_pending_input(&mut self) -> io::Result<bool> {
        self.inner.has_pending_input()
    }
}
