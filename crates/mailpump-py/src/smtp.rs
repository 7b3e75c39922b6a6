//! `send()`, `open()` and `Session`: the SMTP client's Python face. Every network call runs with
//! the GIL released; Python sources are pulled (with the GIL) as the client needs their chunks.

use std::sync::{Mutex, MutexGuard};

use mailpump::Source;
use mailpump::mime::header_block::check_fields;
use mailpump::smtp::address::Address;
use mailpump::smtp::auth::{Mechanism, login};
use mailpump::smtp::client::{Client, Envelope, MailParams, Progress, SendResult};
use mailpump::smtp::dsn::RcptDsn;
use mailpump::smtp::error::SmtpError;
use mailpump::smtp::header_envelope::HeaderSource;
use mailpump::smtp::reply::Reply;
use mailpump::smtp::transcript::TranscriptFn;
use mailpump::source::{BytesSource, DEFAULT_CHUNK};
use mailpump::{BoxError, MessageError};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::errors::{
    PythonError, detach, detach_delivery, enter, error_to_pyerr, message_err, peek, smtp_to_pyerr,
};
use crate::interrupt::Interruptible;
use crate::options::ConnectOptions;
use crate::source::{NativeSource, extract_source};
use crate::transport::PyTransport;

mod many;

/// An SMTP reply (RFC 5321 §4.2): the core's `Reply`, read through its own methods.
#[pyclass(name = "Reply", module = "mailpump._mailpump", frozen)]
pub struct PyReply(Reply);

impl From<&Reply> for PyReply {
    fn from(r: &Reply) -> Self {
        Self(r.clone())
    }
}

#[pymethods]
impl PyReply {
    /// The three-digit code.
    #[getter]
    fn code(&self) -> u16 {
        self.0.code
    }

    /// The enhanced status code (RFC 3463), such as `"2.0.0"`.
    #[getter]
    fn enhanced(&self) -> Option<String> {
        self.0.enhanced.map(|e| e.to_string())
    }

    /// The text, lines joined with `"\n"`, without the enhanced status code.
    #[getter]
    fn text(&self) -> String {
        self.0.text()
    }

    /// The lines as received, after the code.
    #[getter]
    fn lines(&self) -> Vec<String> {
        self.0.lines.clone()
    }

    /// A 4xx reply.
    #[getter]
    fn transient(&self) -> bool {
        self.0.is_transient()
    }

    /// A 5xx reply.
    #[getter]
    fn permanent(&self) -> bool {
        self.0.is_permanent()
    }

    fn __str__(&self) -> String {
        self.0.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<Reply {}>", self.0)
    }
}

/// `{address: Reply}` for each address with its reply, in order.
pub(crate) fn reply_map<'py>(
    py: Python<'py>,
    replies: &[(String, Reply)],
) -> PyResult<Bound<'py, PyDict>> {
    let map = PyDict::new(py);
    for (address, reply) in replies {
        map.set_item(address, PyReply::from(reply))?;
    }
    Ok(map)
}

/// What became of a message: truthy, with the accepted and refused recipients and the reply.
#[pyclass(name = "SendResult", module = "mailpump._mailpump", frozen)]
pub struct PySendResult {
    /// The recipients that got the message, as they were given.
    #[pyo3(get)]
    accepted: Py<PyList>,
    /// The recipients that did not, each with the server's reply.
    #[pyo3(get)]
    refused: Py<PyDict>,
    /// LMTP: each recipient accepted at RCPT with its own verdict; empty over SMTP.
    #[pyo3(get)]
    verdicts: Py<PyDict>,
    /// The reply to the end of data; it usually carries the server's queue id.
    #[pyo3(get)]
    reply: Py<PyReply>,
}

impl PySendResult {
    pub(crate) fn new(py: Python<'_>, r: &SendResult) -> PyResult<Self> {
        Ok(Self {
            accepted: PyList::new(py, &r.accepted)?.unbind(),
            refused: reply_map(py, &r.refused)?.unbind(),
            verdicts: reply_map(py, &r.verdicts)?.unbind(),
            reply: Py::new(py, PyReply::from(&r.reply))?,
        })
    }
}

#[pymethods]
impl PySendResult {
    #[allow(clippy::unused_self)] // Python's protocol: a result is always truthy.
    fn __bool__(&self) -> bool {
        true
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let verdicts = self.verdicts.bind(py).len();
        // LMTP's verdicts, only when there are some: an SMTP result reads as before.
        let verdicts = if verdicts > 0 {
            format!(" verdicts={verdicts}")
        } else {
            String::new()
        };
        format!(
            "<SendResult accepted={} refused={}{verdicts} reply={}>",
            self.accepted.bind(py).len(),
            self.refused.bind(py).len(),
            self.reply.get().__str__()
        )
    }
}

/// The `mailpump` logger, when it records DEBUG: then the transcript goes to it.
fn transcript(py: Python<'_>) -> PyResult<Option<TranscriptFn>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let logger = LOGGER.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("logging")?
            .call_method1("getLogger", ("mailpump",))?
            .unbind())
    })?;
    // logging.DEBUG
    if !logger
        .bind(py)
        .call_method1("isEnabledFor", (10,))?
        .is_truthy()?
    {
        return Ok(None);
    }
    let logger = logger.clone_ref(py);
    Ok(Some(Box::new(move |direction, line: &str| {
        Python::attach(|py| {
            // A failing log handler must not break the SMTP dialogue.
            let _ = logger
                .bind(py)
                .call_method1("debug", ("%s: %s", direction.to_string(), line));
        });
    })))
}

/// An `email.message.Message`, whose bytes are `bytes(msg)`.
fn is_email_message(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    static MESSAGE: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
    let class = MESSAGE.import(obj.py(), "email.message", "Message")?;
    obj.is_instance(class)
}

/// A step function (`ltn12.pump.step`-like) driving a source: each pull calls
/// `step(source, sink)` once and takes what reached the sink.
struct StepSource {
    step: Py<PyAny>,
    source: Py<PyAny>,
    sink: Py<PyAny>,
    chunks: Py<PyList>,
    done: bool,
}

impl Source for StepSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.done {
            return Ok(false);
        }
        Python::attach(|py| -> PyResult<bool> {
            let more = self
                .step
                .bind(py)
                .call1((self.source.bind(py), self.sink.bind(py)))?
                .is_truthy()?;
            let chunks = self.chunks.bind(py);
            for chunk in chunks.iter() {
                crate::source::append_chunk(&chunk, out, "a step's sink")?;
            }
            chunks.call_method0("clear")?;
            Ok(more)
        })
        .map(|more| {
            self.done = !more;
            true
        })
        .map_err(|e| Box::new(PythonError(e)) as BoxError)
    }
}

/// A message (an `EmailMessage` or a `message()` source) as a [`HeaderSource`]: its header read
/// for the envelope, its Bcc fields left out of what is sent. `None` for other sources, which
/// are sent as they are.
fn message_source(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Option<HeaderSource>> {
    let inner: Box<dyn Source> = if is_email_message(obj)? {
        let bytes = py.import("builtins")?.getattr("bytes")?.call1((obj,))?;
        check_email_message(py, obj, "message")?;
        Box::new(BytesSource::new(bytes.cast::<PyBytes>()?.as_bytes()))
    } else if obj.cast::<crate::message::MessageSource>().is_ok() {
        extract_source(obj, DEFAULT_CHUNK)?
    } else {
        return Ok(None);
    };
    Ok(Some(HeaderSource::new(inner)))
}

/// Checks the stored fields of an `email.message.Message` and of each of its parts with the
/// core's header rules: the bytes it serialises to cannot tell a value's line break from a field.
fn check_email_message(py: Python<'_>, obj: &Bound<'_, PyAny>, part: &str) -> PyResult<()> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for item in obj.call_method0("raw_items")?.try_iter()? {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        fields.push((name.str()?.to_string(), value.str()?.to_string()));
    }
    check_fields(part, fields.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .map_err(|e| message_err(py, &e))?;
    if obj.call_method0("is_multipart")?.is_truthy()? {
        for (i, sub) in obj.call_method0("get_payload")?.try_iter()?.enumerate() {
            check_email_message(py, &sub?, &format!("{part}.parts[{i}]"))?;
        }
    }
    Ok(())
}

/// Converts any source `send()` takes: a `MessageSource` or native source (moved
/// in), `bytes`, `str` (as UTF-8), an `email.message.EmailMessage`, a binary file object or an
/// iterable of bytes; with `step`, pulled through it.
pub(crate) fn smtp_source(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    step: Option<&Bound<'_, PyAny>>,
) -> PyResult<Box<dyn Source>> {
    with_step(py, unstepped_source(py, obj)?, step)
}

/// The source of [`smtp_source`] before any `step`.
fn unstepped_source(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Box<dyn Source>> {
    Ok(if let Ok(s) = obj.cast::<PyString>() {
        Box::new(BytesSource::new(s.to_str()?.as_bytes()))
    } else if let Some(message) = message_source(py, obj)? {
        Box::new(message)
    } else {
        extract_source(obj, DEFAULT_CHUNK)?
    })
}

/// `source` pulled through `step` when one is given.
fn with_step(
    py: Python<'_>,
    source: Box<dyn Source>,
    step: Option<&Bound<'_, PyAny>>,
) -> PyResult<Box<dyn Source>> {
    let Some(step) = step.filter(|s| !s.is_none()) else {
        return Ok(source);
    };
    let chunks = PyList::empty(py);
    let sink = chunks.getattr("append")?;
    let iterator = Py::new(py, NativeSource::new(source, "message"))?;
    Ok(Box::new(StepSource {
        step: step.clone().unbind(),
        source: iterator.into_any(),
        sink: sink.unbind(),
        chunks: chunks.unbind(),
        done: false,
    }))
}

/// A Python progress callback `progress(sent, total)` as the core's callback: called from the
/// sending thread with the GIL re-acquired; an exception it raises aborts the message (no
/// end-of-data mark) and comes back out of the call as itself.
pub(crate) struct ProgressFn(Py<PyAny>);

impl ProgressFn {
    /// Another reference to the same callable.
    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Self {
        Self(self.0.clone_ref(py))
    }

    fn new(progress: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Self>> {
        match progress.filter(|p| !p.is_none()) {
            None => Ok(None),
            Some(p) if p.is_callable() => Ok(Some(Self(p.clone().unbind()))),
            Some(_) => Err(PyTypeError::new_err(
                "progress must be a callable progress(sent, total)",
            )),
        }
    }

    pub(crate) fn call(&self, sent: u64, total: Option<u64>) -> Result<(), BoxError> {
        Python::attach(|py| self.0.bind(py).call1((sent, total)).map(drop))
            .map_err(|e| Box::new(PythonError(e)) as BoxError)
    }
}

/// The callback the core calls before each write of a message body: Python's signal handlers run
/// first, so that a Ctrl-C stops a message whose socket never blocks (a fast server, a big
/// body) before the end-of-data mark; then the caller's `progress`, if any. The exception a
/// handler raises is kept for [`crate::errors::detach_delivery`].
fn body_progress(
    progress: Option<&ProgressFn>,
) -> impl FnMut(u64, Option<u64>) -> Result<(), BoxError> + '_ {
    move |sent, total| {
        crate::interrupt::check_signals().map_err(|e| Box::new(e) as BoxError)?;
        progress.map_or(Ok(()), |p| p.call(sent, total))
    }
}

/// The core's `Option<Progress>` borrowed from an optional closure.
fn as_progress<F>(report: &mut Option<F>) -> Option<Progress<'_>>
where
    F: FnMut(u64, Option<u64>) -> Result<(), BoxError>,
{
    report.as_mut().map(|r| r as Progress<'_>)
}

/// Parses an envelope address, the core's rules (`a@b`, `<a@b>`, `Name <a@b>`, `""` / `<>`).
fn address(py: Python<'_>, text: &str) -> PyResult<Address> {
    Address::parse(text).map_err(|e| smtp_to_pyerr(py, e))
}

/// `rcpt`: one address or a list of them.
fn recipients(py: Python<'_>, rcpt: &Bound<'_, PyAny>) -> PyResult<Vec<Address>> {
    if let Ok(s) = rcpt.cast::<PyString>() {
        return Ok(vec![address(py, s.to_str()?)?]);
    }
    rcpt.try_iter()?
        .map(|item| {
            let item = item?;
            let text = item
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("rcpt must be a str or a list of str"))?;
            address(py, text.to_str()?)
        })
        .collect()
}

/// One message to send, LuaSocket's table `{"from": ..., "rcpt": ..., "source": ..., "step":
/// ..., "progress": ...}`: the envelope is parsed and checked (at least one recipient) when the
/// table is read, before any I/O; the source is converted only when it is about to be sent.
pub struct Transaction<'py> {
    /// The envelope; when `from` or `rcpt` was left out, complete only once
    /// [`source`](Self::source) has read the message's header.
    pub(crate) envelope: Envelope,
    /// Whether the reverse-path and the recipients come from the message's header.
    from_header: (bool, bool),
    source: Bound<'py, PyAny>,
    step: Option<Bound<'py, PyAny>>,
    pub(crate) progress: Option<ProgressFn>,
}

/// The keys of a transaction, in the order an error message lists them.
const TRANSACTION_KEYS: [&str; 7] = [
    "from",
    "rcpt",
    "source",
    "step",
    "progress",
    "dsn",
    "binarymime",
];

impl<'py> FromPyObject<'_, 'py> for Transaction<'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let table = obj
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("a message to send is a dict: from, rcpt, source"))?;
        let mut unknown = Vec::new();
        for key in table.keys() {
            match key.extract::<&str>() {
                Ok(k) if TRANSACTION_KEYS.contains(&k) => {}
                Ok(k) => unknown.push(format!("'{k}'")),
                Err(_) => unknown.push(key.repr()?.to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(PyTypeError::new_err(format!(
                "a message takes {}; not {} (connection options go to send() or open())",
                TRANSACTION_KEYS.join(", "),
                unknown.join(", ")
            )));
        }
        let needed = |key: &str| -> PyResult<Bound<'py, PyAny>> {
            table.get_item(key)?.ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "a message needs '{key}': give from, rcpt and source"
                ))
            })
        };
        // A missing (or None) from or rcpt is taken from the message's header.
        let given = |key: &str| -> PyResult<Option<Bound<'py, PyAny>>> {
            Ok(table.get_item(key)?.filter(|v| !v.is_none()))
        };
        let from = match given("from")? {
            Some(from) => Some(address(
                py,
                from.cast::<PyString>()
                    .map_err(|_| PyTypeError::new_err("from must be a str"))?
                    .to_str()?,
            )?),
            None => None,
        };
        let rcpt = given("rcpt")?.map(|r| recipients(py, &r)).transpose()?;
        let from_header = (from.is_none(), rcpt.is_none());
        let mut envelope =
            Envelope::new(from.unwrap_or_else(Address::null), rcpt.unwrap_or_default());
        envelope.dsn = given("dsn")?
            .map(|d| crate::dsn::extract(py, &d))
            .transpose()?;
        // For a source that cannot say so itself (bytes, an EmailMessage): a message() with a
        // binary part says it.
        envelope.binary_mime = given("binarymime")?
            .map(|b| {
                b.extract::<bool>()
                    .map_err(|_| PyTypeError::new_err("binarymime must be True or False"))
            })
            .transpose()?
            .unwrap_or(false);
        if from_header == (false, false) {
            envelope.validate().map_err(|e| smtp_to_pyerr(py, e))?;
        }
        Ok(Self {
            envelope,
            from_header,
            source: needed("source")?,
            step: table.get_item("step")?,
            progress: ProgressFn::new(table.get_item("progress")?.as_ref())?,
        })
    }
}

impl Transaction<'_> {
    /// The source, converted now: a native source is moved out of its Python object. When
    /// `from` or `rcpt` was left out, the message's header is read for them first (the core's
    /// rule, `header_envelope`).
    pub(crate) fn source(&mut self) -> PyResult<Box<dyn Source>> {
        let py = self.source.py();
        if self.from_header == (false, false) {
            let source = unstepped_source(py, &self.source)?;
            // Known before `step` hides the source: a message with a binary part.
            self.envelope.binary_mime |= source.needs_binarymime();
            return with_step(py, source, self.step.as_ref());
        }
        let Some(mut message) = message_source(py, &self.source)? else {
            return Err(PyTypeError::new_err(
                "from and rcpt may be left out only when the source is an EmailMessage or a \
                 message(): give both",
            ));
        };
        let found = message.envelope().map_err(|e| error_to_pyerr(py, e))?;
        if self.from_header.0 {
            self.envelope.from = found.reverse_path.ok_or_else(|| {
                message_err(
                    py,
                    &MessageError::in_header(
                        "message",
                        "From",
                        "the message has no From or Sender header to take the sender from; give from",
                    ),
                )
            })?;
        }
        if self.from_header.1 {
            self.envelope.rcpt = found.recipients;
        }
        self.envelope.validate().map_err(|e| smtp_to_pyerr(py, e))?;
        self.envelope.binary_mime |= message.needs_binarymime();
        with_step(py, Box::new(message), self.step.as_ref())
    }
}

/// Connects: through `create()` when given, else TCP.
fn connect(py: Python<'_>, options: &ConnectOptions) -> PyResult<Client> {
    let config = &options.config;
    let result = match &options.create {
        Some(create) => {
            match PyTransport::connect(
                py,
                create.bind(py),
                &config.server,
                config.port,
                config.timeout,
            ) {
                Ok(transport) => {
                    detach(py, || Client::from_transport(Box::new(transport), config))?
                }
                // A timed-out connect keeps its kind: it maps to SMTPTimeoutError.
                Err(source) => Err(SmtpError::Connect {
                    server: config.server.clone(),
                    port: config.port,
                    kind: mailpump::smtp::error::ConnectKind::of_connect_error(&source),
                    source,
                }),
            }
        }
        // The TCP stream is made interruptible (Ctrl-C, see interrupt.rs).
        None => detach(py, || {
            Client::connect_with(config, |transport| Box::new(Interruptible::new(transport)))
        })?,
    };
    if let Some(e) = crate::interrupt::take_pending() {
        // Ctrl-C inside a create() socket's own connect(): raised as itself.
        return Err(e);
    }
    let mut client = result.map_err(|e| smtp_to_pyerr(py, e))?;
    client.set_transcript(transcript(py)?);
    Ok(client)
}

/// `send()`: one message over a new connection (LuaSocket's `smtp.send`).
#[pyfunction]
#[pyo3(signature = (transaction, options, /))]
pub fn send(
    py: Python<'_>,
    transaction: &Bound<'_, PyAny>,
    options: &Bound<'_, PyAny>,
) -> PyResult<PySendResult> {
    // Extracted here rather than by pyo3's argument handling, which would add its own words to
    // the message of every TypeError.
    let mut transaction: Transaction<'_> = transaction.extract()?;
    let options: ConnectOptions = options.extract()?;
    let mut source = transaction.source()?;
    let client = connect(py, &options)?;
    let result = detach_delivery(py, || {
        let creds = options.credentials.as_ref().map(|(c, m)| (c, *m));
        let mut report = Some(body_progress(transaction.progress.as_ref()));
        client.deliver(
            None,
            creds,
            &transaction.envelope,
            &mut *source,
            as_progress(&mut report),
        )
    })?;
    let result = result.map_err(|e| smtp_to_pyerr(py, e))?;
    PySendResult::new(py, &result)
}

/// An SMTP session over one connection (`open()`): many messages, one after the other. Python's
/// `mailpump.Session` subclasses it to take a message as keywords as well as a dict.
#[pyclass(name = "Session", module = "mailpump._mailpump", frozen, subclass)]
pub struct Session {
    client: Mutex<Client>,
}

impl Session {
    /// The client, or an error if another thread is using the session right now: interleaving
    /// two dialogues on one connection would corrupt both.
    fn client(&self) -> PyResult<MutexGuard<'_, Client>> {
        enter(&self.client, "Session")
    }

    /// Runs `f` on the client without the GIL and maps its error.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Client) -> Result<T, SmtpError> + Send,
    ) -> PyResult<T> {
        self.run_on_client(py, false, f)
    }

    /// [`Session::run`] for a call that delivers a message: a Ctrl-C after the end-of-data mark
    /// leaves the outcome reported (see [`detach_delivery`]).
    fn run_delivery<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Client) -> Result<T, SmtpError> + Send,
    ) -> PyResult<T> {
        self.run_on_client(py, true, f)
    }

    /// Both of the above: `delivery` picks how a pending Ctrl-C is weighed against the result.
    fn run_on_client<T: Send>(
        &self,
        py: Python<'_>,
        delivery: bool,
        f: impl FnOnce(&mut Client) -> Result<T, SmtpError> + Send,
    ) -> PyResult<T> {
        let mut guard = self.client()?;
        let client: &mut Client = &mut guard;
        let outcome = if delivery {
            detach_delivery(py, || f(client))
        } else {
            detach(py, || f(client))
        };
        match outcome {
            Ok(result) => result.map_err(|e| smtp_to_pyerr(py, e)),
            Err(stopped) => {
                // The dialogue stopped at an unknown point (a panic, Ctrl-C): it cannot go on.
                guard.close();
                Err(stopped)
            }
        }
    }

    /// A reply as a Python object.
    fn reply(py: Python<'_>, reply: &Reply) -> PyResult<Py<PyReply>> {
        Py::new(py, PyReply::from(reply))
    }
}

#[pymethods]
impl Session {
    /// Connects (nothing is read yet; `greet()` reads the greeting). A session authenticates
    /// with `auth()` after `greet()`, so credentials among the options are refused.
    #[new]
    #[pyo3(signature = (options, /))]
    fn new(py: Python<'_>, options: &Bound<'_, PyAny>) -> PyResult<Self> {
        let options: ConnectOptions = options.extract()?;
        if let Some(key) = options.credential_keys.first() {
            return Err(PyTypeError::new_err(format!(
                "open() does not authenticate, so it takes no {key}: call the session's \
                 auth(user, password) after greet()"
            )));
        }
        let client = connect(py, &options)?;
        Ok(Self {
            client: Mutex::new(client),
        })
    }

    /// Greeting, EHLO (HELO fallback), STARTTLS under the TLS policy; returns the EHLO reply.
    #[pyo3(signature = (domain = None))]
    fn greet(&self, py: Python<'_>, domain: Option<String>) -> PyResult<Option<Py<PyReply>>> {
        let reply = self.run(py, |c| {
            c.greet(domain.as_deref())?;
            Ok(c.ehlo_reply().or(c.greeting()).cloned())
        })?;
        reply.map(|r| Self::reply(py, &r)).transpose()
    }

    /// STARTTLS, the handshake, and EHLO again; returns the new EHLO reply.
    fn starttls(&self, py: Python<'_>) -> PyResult<Option<Py<PyReply>>> {
        let reply = self.run(py, |c| {
            c.starttls()?;
            Ok(c.ehlo_reply().cloned())
        })?;
        reply.map(|r| Self::reply(py, &r)).transpose()
    }

    /// AUTH with `password` (or `oauth_token`, for XOAUTH2); `mechanism` forces one.
    #[pyo3(signature = (user, password = None, *, mechanism = None, oauth_token = None))]
    fn auth(
        &self,
        py: Python<'_>,
        user: String,
        password: Option<Bound<'_, PyAny>>,
        mechanism: Option<&str>,
        oauth_token: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyReply>> {
        let password = password
            .map(|p| crate::options::secret("password", &p))
            .transpose()?;
        let oauth_token = oauth_token
            .map(|t| crate::options::secret("oauth_token", &t))
            .transpose()?;
        let mechanism = mechanism
            .map(str::parse::<Mechanism>)
            .transpose()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let Some((creds, mechanism)) = login(Some(user), password, oauth_token, mechanism)
            .map_err(|e| smtp_to_pyerr(py, e))?
        else {
            return Err(PyValueError::new_err(
                "auth() needs a password or an oauth_token",
            ));
        };
        let reply = self.run(py, |c| c.auth(&creds, mechanism))?;
        Self::reply(py, &reply)
    }

    /// MAIL FROM, with the DSN parameters `ret` and `envid` (RFC 3461 §4.3, §4.4).
    #[pyo3(signature = (from_, *, ret = None, envid = None))]
    fn mail(
        &self,
        py: Python<'_>,
        from_: &str,
        ret: Option<&Bound<'_, PyAny>>,
        envid: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyReply>> {
        let from = address(py, from_)?;
        let params = MailParams {
            ret: ret.map(|r| crate::dsn::ret(py, r)).transpose()?,
            envid: envid.map(crate::dsn::envid).transpose()?,
            ..MailParams::for_sender(&from)
        };
        let reply = self.run(py, |c| c.mail(&from, params))?;
        Self::reply(py, &reply)
    }

    /// RCPT TO, with the DSN parameters `notify` and `orcpt` (RFC 3461 §4.1, §4.2).
    #[pyo3(signature = (to, *, notify = None, orcpt = None))]
    fn rcpt(
        &self,
        py: Python<'_>,
        to: &str,
        notify: Option<&Bound<'_, PyAny>>,
        orcpt: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyReply>> {
        let to = address(py, to)?;
        let dsn = RcptDsn {
            notify: notify.map(|n| crate::dsn::notify(py, n)).transpose()?,
            orcpt: orcpt.map(|o| crate::dsn::orcpt(py, o)).transpose()?,
        };
        let reply = self.run(py, |c| c.rcpt_with_dsn(&to, dsn))?;
        Self::reply(py, &reply)
    }

    /// DATA and the message from `source`; returns the final reply.
    #[pyo3(signature = (source, step = None, *, progress = None))]
    fn data(
        &self,
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        step: Option<&Bound<'_, PyAny>>,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyReply>> {
        let progress = ProgressFn::new(progress)?;
        let mut source = smtp_source(py, source, step)?;
        let reply = self.run_delivery(py, |c| {
            let mut report = Some(body_progress(progress.as_ref()));
            c.data(&mut *source, as_progress(&mut report))
        })?;
        Self::reply(py, &reply)
    }

    /// One message: LuaSocket's table with `from`, `rcpt`, `source` and, optionally, `step` and
    /// `progress`.
    #[pyo3(signature = (mailt, /))]
    fn send(&self, py: Python<'_>, mailt: &Bound<'_, PyAny>) -> PyResult<PySendResult> {
        let mut mailt: Transaction<'_> = mailt.extract()?;
        let mut source = mailt.source()?;
        let result = self.run_delivery(py, |c| {
            let mut report = Some(body_progress(mailt.progress.as_ref()));
            c.send(&mailt.envelope, &mut *source, as_progress(&mut report))
        })?;
        PySendResult::new(py, &result)
    }

    /// Many messages over this connection, pipelined across transactions when the server offers
    /// PIPELINING: an iterator of one outcome per message, in order (see the stub).
    #[pyo3(signature = (mailts, /))]
    fn send_many(slf: Bound<'_, Self>, mailts: &Bound<'_, PyAny>) -> PyResult<many::SendMany> {
        let iterable = mailts.try_iter()?.unbind();
        Ok(many::SendMany::new(slf.unbind(), iterable))
    }

    /// RSET.
    fn rset(&self, py: Python<'_>) -> PyResult<Py<PyReply>> {
        let reply = self.run(py, Client::rset)?;
        Self::reply(py, &reply)
    }

    /// NOOP.
    fn noop(&self, py: Python<'_>) -> PyResult<Py<PyReply>> {
        let reply = self.run(py, Client::noop)?;
        Self::reply(py, &reply)
    }

    /// QUIT, then close.
    fn quit(&self, py: Python<'_>) -> PyResult<Py<PyReply>> {
        let reply = self.run(py, Client::quit)?;
        Self::reply(py, &reply)
    }

    /// Closes the connection without QUIT.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |c| {
            c.close();
            Ok(())
        })
    }

    /// Whether the connection is encrypted.
    #[getter]
    fn encrypted(&self) -> PyResult<bool> {
        Ok(self.client()?.is_encrypted())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// QUIT (best effort) and close, whatever happened inside the block.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.run(py, |c| {
            if c.is_usable() {
                let _ = c.quit();
            }
            c.close();
            Ok(())
        })?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match peek(&self.client) {
            Some(c) => format!(
                "<mailpump Session {}:{}{}>",
                c.config().server,
                c.config().port,
                if c.is_usable() { "" } else { " (closed)" }
            ),
            None => "<mailpump Session (busy)>".to_owned(),
        }
    }
}
