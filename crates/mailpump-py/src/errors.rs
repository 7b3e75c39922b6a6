//! The one place where core errors become Python exceptions.
//!
//! The exception classes live in `mailpump/errors.py` (so that users can subclass and pickle them
//! like any Python exception); each is imported once and cached. A Python exception raised by a
//! source or filter travels through the core as a [`PythonError`] and comes back out as itself.

use std::any::Any;
use std::fmt;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, MutexGuard, TryLockError};

use mailpump::smtp::error::{ReplyKind, SmtpError};
use mailpump::smtp::reply::Reply;
use mailpump::{BoxError, Error, MessageError};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use crate::smtp::reply_map;

/// Declares a function returning one cached class of `mailpump.errors`.
macro_rules! exception_class {
    ($func:ident, $name:literal) => {
        #[doc = concat!("`mailpump.errors.", $name, "`, imported once.")]
        pub(crate) fn $func(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
            static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            CLASS.import(py, "mailpump.errors", $name)
        }
    };
}

exception_class!(mailpump_error, "MailpumpError");
exception_class!(message_error_class, "MessageError");
exception_class!(smtp_error, "SMTPError");
exception_class!(connect_error, "SMTPConnectError");
exception_class!(timeout_error, "SMTPTimeoutError");
exception_class!(outcome_unknown, "SMTPOutcomeUnknown");
exception_class!(tls_error, "SMTPTLSError");
exception_class!(auth_error, "SMTPAuthError");
exception_class!(protocol_error, "SMTPProtocolError");
exception_class!(reply_error, "SMTPReplyError");
exception_class!(sender_refused, "SMTPSenderRefused");
exception_class!(recipients_refused, "SMTPRecipientsRefused");
exception_class!(data_refused, "SMTPDataRefused");

/// A Python exception carried through the core's `BoxError` channel (a source or filter written in
/// Python raised it). It is re-raised unchanged when the error reaches Python again.
#[derive(Debug)]
pub struct PythonError(pub PyErr);

impl fmt::Display for PythonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Python source or filter raised an exception")
    }
}

impl std::error::Error for PythonError {}

impl From<PyErr> for PythonError {
    fn from(e: PyErr) -> Self {
        Self(e)
    }
}

/// Instantiates `class(message, **kwargs)` as a `PyErr`.
pub(crate) fn new_exception(
    class: PyResult<&Bound<'_, PyType>>,
    message: String,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyErr {
    let made = class.and_then(|cls| cls.call((message,), kwargs));
    match made {
        Ok(value) => PyErr::from_value(value),
        // The errors module itself failed to import or construct: report that instead.
        Err(e) => e,
    }
}

/// `mailpump.errors.MailpumpError(message)`.
pub(crate) fn mailpump_err(py: Python<'_>, message: impl Into<String>) -> PyErr {
    new_exception(mailpump_error(py), message.into(), None)
}

/// `MessageError` with its `part`, `header` and `reason` attributes.
pub(crate) fn message_err(py: Python<'_>, e: &MessageError) -> PyErr {
    let kwargs = PyDict::new(py);
    let filled = kwargs
        .set_item("part", &e.part)
        .and_then(|()| kwargs.set_item("header", e.header.as_deref()))
        .and_then(|()| kwargs.set_item("reason", &e.reason));
    if let Err(err) = filled {
        return err;
    }
    new_exception(message_error_class(py), e.to_string(), Some(&kwargs))
}

/// Maps an error of the message encoder.
pub(crate) fn error_to_pyerr(py: Python<'_>, e: Error) -> PyErr {
    match e {
        Error::Message(m) => message_err(py, &m),
        Error::Source(inner) => box_to_pyerr(py, inner),
    }
}

/// Maps any error that came through a `BoxError`: a Python exception comes back as itself, an I/O
/// error becomes the matching `OSError` subclass, the core's own errors their classes.
pub(crate) fn box_to_pyerr(py: Python<'_>, e: BoxError) -> PyErr {
    let e = match e.downcast::<PythonError>() {
        Ok(p) => return p.0,
        Err(e) => e,
    };
    let e = match e.downcast::<Error>() {
        Ok(inner) => return error_to_pyerr(py, *inner),
        Err(e) => e,
    };
    let e = match e.downcast::<MessageError>() {
        Ok(m) => return message_err(py, &m),
        Err(e) => e,
    };
    match e.downcast::<io::Error>() {
        Ok(io_err) => {
            // A Python error may have been wrapped into an io::Error by a reader adapter.
            if io_err
                .get_ref()
                .is_some_and(<dyn std::error::Error + Send + Sync>::is::<PythonError>)
            {
                if let Some(inner) = io_err.into_inner() {
                    return box_to_pyerr(py, inner);
                }
                return mailpump_err(py, "I/O error");
            }
            PyErr::from(*io_err)
        }
        Err(other) => mailpump_err(py, other.to_string()),
    }
}

/// An I/O error about `path` as the matching `OSError` subclass, with its `filename` set.
pub(crate) fn os_error(py: Python<'_>, e: io::Error, path: &std::path::Path) -> PyErr {
    let Some(errno) = e.raw_os_error() else {
        return PyErr::from(e);
    };
    let strerror = e.kind().to_string();
    // `OSError(errno, strerror, filename)` picks the subclass (FileNotFoundError, ...) itself.
    let made = py
        .import("builtins")
        .and_then(|b| b.getattr("OSError"))
        .and_then(|cls| cls.call1((errno, strerror, path)));
    match made {
        Ok(value) => PyErr::from_value(value),
        Err(err) => err,
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

/// Runs `f` without the GIL (other Python threads run meanwhile): the one way every encoding,
/// file and network call leaves Python.
///
/// A panic inside `f` becomes a `MailpumpError` instead of unwinding into the interpreter. An
/// exception a signal handler raised meanwhile (Ctrl-C noticed by
/// [`Interruptible`](crate::interrupt::Interruptible) or a native pump) wins over the call's own
/// outcome, whatever the core made of it: it is re-raised as itself.
pub(crate) fn detach<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    // A stale exception (from a call that failed before its result was looked at) must not leak
    // into this one.
    crate::interrupt::take_pending();
    let result = detach_catching(py, f);
    match crate::interrupt::take_pending() {
        Some(e) => Err(e),
        None => result,
    }
}

/// Runs `f` without the GIL, a panic becoming a `MailpumpError`; the caller takes the pending
/// signal exception itself.
fn detach_catching<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    py.detach(|| std::panic::catch_unwind(AssertUnwindSafe(f)))
        .map_err(|payload| {
            mailpump_err(
                py,
                format!(
                    "internal error in mailpump (please report it): {}",
                    panic_message(&*payload)
                ),
            )
        })
}

/// [`detach`] for a call that delivers a message (`send()`, `Session.send`, `Session.data`),
/// where a Ctrl-C noticed after the end-of-data mark must not hide the outcome:
///
/// - the verdict's read was cut short: the core's `OutcomeUnknown` is returned, and
///   [`smtp_to_pyerr`] chains it from the `KeyboardInterrupt` (its I/O source);
/// - the verdict was already read (only `send()`'s closing QUIT is left to interrupt): the
///   delivery is returned and the interrupt, which ended the QUIT at once, is dropped;
/// - otherwise (before the mark) the exception is raised as itself, as by [`detach`].
pub(crate) fn detach_delivery<T, F>(py: Python<'_>, f: F) -> PyResult<Result<T, SmtpError>>
where
    F: FnOnce() -> Result<T, SmtpError> + Send,
    T: Send,
{
    crate::interrupt::take_pending();
    let result = detach_catching(py, f);
    match (result, crate::interrupt::take_pending()) {
        (Ok(Err(e)), Some(interrupt)) if !e.is_outcome_unknown() => Err(interrupt),
        (result, _) => result,
    }
}

/// A private test hook (not part of the API): panics inside [`detach`], the helper every network
/// and encoding call goes through, so that the tests can check that a Rust panic surfaces as a
/// `MailpumpError` and leaves the interpreter running. No real input can make the core panic.
/// Built only with the `test-hooks` feature, which released wheels do not have.
#[cfg(feature = "test-hooks")]
#[pyfunction]
pub fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    detach(py, || -> () { panic!("deliberate panic for the tests") })
}

/// Locks the state of a native object (`what` names it) for one call, or raises `RuntimeError`
/// when a call on it is already running: in another thread, or further up this thread's own
/// stack (a body generator that reads the message it is the body of). Waiting would never end
/// in the second case, so neither waits, like a generator's "generator already executing".
/// A poisoned lock is recovered: every state it guards is left consistent between calls.
pub(crate) fn enter<'a, T>(mutex: &'a Mutex<T>, what: &str) -> PyResult<MutexGuard<'a, T>> {
    match mutex.try_lock() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(format!(
            "this {what} is already running: it was called again by a source or filter it is \
             reading, or from another thread; use each {what} from one place at a time"
        ))),
    }
}

/// The state of a native object for a look that must not fail (`repr()`), `None` while a call
/// on it is running.
pub(crate) fn peek<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// The `ValueError` for a native object that was already moved into a chain or message.
pub(crate) fn moved_err(what: &str) -> PyErr {
    PyValueError::new_err(format!(
        "this {what} was moved into a chain, a message or a session when it was used there; use that instead"
    ))
}

/// Sets `cause` as the `__cause__` of `err` (`raise err from cause`).
fn with_cause(py: Python<'_>, err: PyErr, cause: Option<PyErr>) -> PyErr {
    if let Some(cause) = cause {
        err.set_cause(py, Some(cause));
    }
    err
}

/// The Python exception inside an I/O error made by a `create()` socket, if any.
fn python_cause(e: io::Error) -> Option<PyErr> {
    let inner = e.into_inner()?;
    inner.downcast::<PythonError>().ok().map(|p| p.0)
}

/// Fills `code`, `enhanced`, `text` (and `command`) from a reply into `kwargs`.
fn set_reply(kwargs: &Bound<'_, PyDict>, reply: &Reply, command: Option<&str>) -> PyResult<()> {
    kwargs.set_item("code", reply.code)?;
    kwargs.set_item("enhanced", reply.enhanced.map(|e| e.to_string()))?;
    kwargs.set_item("text", reply.text())?;
    if let Some(command) = command {
        kwargs.set_item("command", command)?;
    }
    Ok(())
}

/// `SMTPOutcomeUnknown`'s LMTP attributes: the verdicts given, and who is left `unknown`.
fn set_unknown(
    kwargs: &Bound<'_, PyDict>,
    verdicts: &[(String, Reply)],
    unknown: Vec<String>,
) -> PyResult<()> {
    kwargs.set_item("verdicts", reply_map(kwargs.py(), verdicts)?)?;
    kwargs.set_item("unknown", unknown)
}

/// `SMTPDataRefused`'s LMTP attributes: the first verdict as the reply, every `verdicts`, and
/// in `refused` everyone who did not get the message (refused at RCPT, or by their verdict).
fn set_undelivered(
    kwargs: &Bound<'_, PyDict>,
    verdicts: &[(String, Reply)],
    refused: &[(String, Reply)],
) -> PyResult<()> {
    if let Some((_, first)) = verdicts.first() {
        set_reply(kwargs, first, Some("end of data"))?;
    }
    let verdicts = reply_map(kwargs.py(), verdicts)?;
    let everyone = reply_map(kwargs.py(), refused)?;
    everyone.update(verdicts.as_mapping())?;
    kwargs.set_item("verdicts", verdicts)?;
    kwargs.set_item("refused", everyone)
}

/// Maps an error of the SMTP client to its `mailpump.errors` class. Every `SMTPError` gets the
/// core's `kind` and `is_transient()` as `kind` and `transient`; the class follows the variant.
pub(crate) fn smtp_to_pyerr(py: Python<'_>, e: SmtpError) -> PyErr {
    let message = e.to_string();
    let kind_name = e.kind();
    let transient = e.is_transient();
    let timed_out = e.is_timeout();
    let kwargs = PyDict::new(py);
    let mut cause = None;
    let class = match e {
        // Not failures of the dialogue: the caller's own exception, or a ValueError.
        SmtpError::Source(inner) => return box_to_pyerr(py, inner),
        SmtpError::Message(m) => return message_err(py, &m),
        SmtpError::InvalidInput(reason) => return PyValueError::new_err(reason),
        SmtpError::Timeout { .. } => timeout_error(py),
        SmtpError::Connect { source, .. } | SmtpError::Io(source) => {
            cause = python_cause(source);
            if timed_out {
                timeout_error(py)
            } else {
                connect_error(py)
            }
        }
        // A Ctrl-C that cut the verdict's wait short is the cause (see `detach_delivery`).
        SmtpError::OutcomeUnknown { source, .. } => {
            cause = source.and_then(python_cause);
            outcome_unknown(py)
        }
        SmtpError::RecipientsUnknown {
            verdicts,
            unknown,
            source,
            ..
        } => {
            cause = source.and_then(python_cause);
            if let Err(err) = set_unknown(&kwargs, &verdicts, unknown) {
                return err;
            }
            outcome_unknown(py)
        }
        SmtpError::Undelivered { verdicts, refused } => {
            if let Err(err) = set_undelivered(&kwargs, &verdicts, &refused) {
                return err;
            }
            data_refused(py)
        }
        SmtpError::Tls { .. } => tls_error(py),
        SmtpError::Protocol { .. } => protocol_error(py),
        SmtpError::Auth { reply, .. } => {
            if let Some(reply) = &reply {
                if let Err(err) = set_reply(&kwargs, reply, None) {
                    return err;
                }
            }
            auth_error(py)
        }
        SmtpError::Reply {
            command,
            reply,
            kind,
        } => {
            let command = (!command.is_empty()).then_some(command.as_str());
            if let Err(err) = set_reply(&kwargs, &reply, command) {
                return err;
            }
            match kind {
                ReplyKind::Sender => sender_refused(py),
                ReplyKind::Data | ReplyKind::Message => data_refused(py),
                _ => reply_error(py),
            }
        }
        SmtpError::RecipientsRefused { refused } => {
            let filled = (|| -> PyResult<()> {
                if let Some((_, first)) = refused.first() {
                    set_reply(&kwargs, first, Some("RCPT"))?;
                }
                kwargs.set_item("refused", reply_map(py, &refused)?)
            })();
            if let Err(err) = filled {
                return err;
            }
            recipients_refused(py)
        }
        _ => smtp_error(py),
    };
    let filled = kwargs
        .set_item("kind", kind_name)
        .and_then(|()| kwargs.set_item("transient", transient));
    if let Err(err) = filled {
        return err;
    }
    with_cause(py, new_exception(class, message, Some(&kwargs)), cause)
}
