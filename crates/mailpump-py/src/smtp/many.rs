//! `Session.send_many`: the core's `Client::send_many` fed from a Python iterable, a batch per
//! native call, and the outcomes handed back one by one in order.

use std::collections::VecDeque;
use std::sync::Mutex;

use mailpump::Source;
use mailpump::smtp::client::{Envelope, SendResult};
use mailpump::smtp::error::SmtpError;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyIterator;

use super::{PySendResult, Session, Transaction};
use crate::errors::detach;
use crate::errors::{enter, peek, smtp_to_pyerr};

/// How many messages one native call takes from the iterable at most: the outcomes of a batch
/// wait in memory until they are yielded, so memory stays bounded whatever the iterable's length
/// (a few hundred bytes each). A batch ends with every verdict in, so the window of messages in
/// flight (16 with CHUNKING) empties once per batch: a round trip with nothing sent. 1024 sends
/// 1.5 times as many messages per round trip as 64 did over a 20 ms round trip to Postfix with
/// CHUNKING (docs/benchmarking.md).
const BATCH: usize = 1024;

/// Why the messages stop coming.
enum Stop {
    /// The iterable is exhausted.
    End,
    /// To be raised once the outcomes before it are yielded: the iterable's own exception, a
    /// table that cannot be read, or the error that broke the connection.
    Raise(PyErr),
}

/// The Python iterable as the core's iterator of messages, taking at most [`BATCH`] of them;
/// each is read and converted with the GIL when the core asks for it, not before.
struct Tables<'a> {
    iterable: &'a Py<PyIterator>,
    /// How many messages were taken from the iterable (and handed to the core) in this batch.
    taken: usize,
    stop: Option<Stop>,
}

impl Iterator for Tables<'_> {
    type Item = (Envelope, Box<dyn Source>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.stop.is_some() || self.taken == BATCH {
            return None;
        }
        let read = Python::attach(|py| -> Option<PyResult<(Envelope, Box<dyn Source>)>> {
            match self.iterable.bind(py).clone().next()? {
                Ok(item) => Some(read_table(&item)),
                Err(e) => Some(Err(e)),
            }
        });
        match read {
            None => self.stop = Some(Stop::End),
            Some(Ok(message)) => {
                self.taken += 1;
                return Some(message);
            }
            // A table that cannot be read, or the iterable's own exception: raised once the
            // outcomes before it are yielded, as `Session.send` would raise it.
            Some(Err(e)) => self.stop = Some(Stop::Raise(e)),
        }
        None
    }
}

/// One table of `send_many`: `Session.send`'s keys but `progress`, which the pipelined path does
/// not report.
fn read_table(item: &Bound<'_, PyAny>) -> PyResult<(Envelope, Box<dyn Source>)> {
    let mut table: Transaction<'_> = item.extract()?;
    if table.progress.is_some() {
        return Err(PyTypeError::new_err(
            "send_many() takes no progress callback; send the message with send() to follow it",
        ));
    }
    let source = table.source()?;
    Ok((table.envelope, source))
}

/// Where the iteration is.
struct State {
    /// The outcomes of the last batch not yet yielded, in order.
    ready: VecDeque<Py<PyAny>>,
    /// `None` while more messages may come.
    stop: Option<Stop>,
    /// Released at the end, so that the iterable is not kept alive by a finished iterator.
    iterable: Option<Py<PyIterator>>,
}

/// The iterator `Session.send_many` returns: one `SendResult` or exception per message, in order.
#[pyclass(name = "SendManyIterator", module = "mailpump._mailpump", frozen)]
pub struct SendMany {
    session: Py<Session>,
    state: Mutex<State>,
}

impl SendMany {
    pub(super) fn new(session: Py<Session>, iterable: Py<PyIterator>) -> Self {
        Self {
            session,
            state: Mutex::new(State {
                ready: VecDeque::new(),
                stop: None,
                iterable: Some(iterable),
            }),
        }
    }
}

/// Runs one batch over the session: the outcomes in the batch's order, and why it stopped when
/// it did (`None`: the batch is full and more may come).
fn run_batch(
    py: Python<'_>,
    session: &Session,
    iterable: &Py<PyIterator>,
) -> PyResult<(Vec<Py<PyAny>>, Option<Stop>)> {
    let mut guard = session.client()?;
    let client = &mut *guard;
    let mut tables = Tables {
        iterable,
        taken: 0,
        stop: None,
    };
    let mut outcomes: Vec<(usize, Result<SendResult, SmtpError>)> = Vec::new();
    let sent = detach(py, || {
        let result = client.send_many(&mut tables, |i, outcome| outcomes.push((i, outcome)));
        (result, client.closed_error())
    });
    let (result, broken) = match sent {
        Ok(done) => done,
        Err(interrupted) => {
            // Ctrl-C or a panic: the dialogue stopped at an unknown point.
            guard.close();
            tables.stop = Some(Stop::Raise(interrupted));
            (Ok(0), None)
        }
    };
    drop(guard);
    let mut slots: Vec<Option<Py<PyAny>>> = (0..tables.taken).map(|_| None).collect();
    for (i, outcome) in outcomes {
        let value = match outcome {
            Ok(result) => Py::new(py, PySendResult::new(py, &result)?)?.into_any(),
            Err(e) => smtp_to_pyerr(py, e).into_value(py).into_any(),
        };
        slots[i] = Some(value);
    }
    let stop = match (result, broken, tables.stop) {
        (Err(e), _, _) => Some(Stop::Raise(smtp_to_pyerr(py, e))),
        (_, _, Some(Stop::Raise(e))) => Some(Stop::Raise(e)),
        (_, Some(e), _) => Some(Stop::Raise(smtp_to_pyerr(py, e))),
        (_, None, stop) => stop,
    };
    // Every message handed to the core has its outcome, even when the connection broke.
    Ok((slots.into_iter().flatten().collect(), stop))
}

#[pymethods]
impl SendMany {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let mut state = enter(&self.state, "send_many() iterator")?;
        loop {
            if let Some(next) = state.ready.pop_front() {
                return Ok(Some(next));
            }
            match state.stop.take() {
                Some(Stop::Raise(e)) => {
                    state.stop = Some(Stop::End);
                    return Err(e);
                }
                Some(Stop::End) => {
                    state.stop = Some(Stop::End);
                    state.iterable = None;
                    return Ok(None);
                }
                None => {}
            }
            let Some(iterable) = state.iterable.as_ref() else {
                return Ok(None);
            };
            let (outcomes, stop) = run_batch(py, self.session.get(), iterable)?;
            if stop.is_some() {
                state.iterable = None;
            }
            state.ready.extend(outcomes);
            state.stop = stop;
        }
    }

    fn __repr__(&self) -> String {
        let Some(state) = peek(&self.state) else {
            return "<mailpump send_many (running)>".to_owned();
        };
        let more = if state.iterable.is_some() {
            ""
        } else {
            " (finished)"
        };
        format!(
            "<mailpump send_many: {} outcome(s) ready{more}>",
            state.ready.len()
        )
    }
}
