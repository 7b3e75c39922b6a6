//! `message()`: a Python message description converted into the core's part tree, and the
//! `MessageSource` iterator over its encoded bytes.

use std::path::PathBuf;
use std::sync::Mutex;

use mailpump::mime::message::{
    Body, HeaderValue, MessageEncoder, MessageOptions, Multipart, Part, TransferEncoding,
};
use mailpump::source::{DEFAULT_CHUNK, MAX_NESTING, ReaderSource};
use mailpump::{MessageError, Source};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::errors::{detach, enter, error_to_pyerr, message_err, moved_err, os_error, peek};
use crate::source::extract_source;

/// A `MessageError` raised while reading the description, before the core sees it.
fn describe_err(
    py: Python<'_>,
    part: &str,
    header: Option<&str>,
    reason: impl Into<String>,
) -> PyErr {
    let e = MessageError {
        part: part.to_owned(),
        header: header.map(str::to_owned),
        reason: reason.into(),
    };
    message_err(py, &e)
}

/// The name of `obj`'s type, for error messages.
fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// Converts one header value: `str`, a list of addresses, or `bytes`.
fn header_value(
    py: Python<'_>,
    path: &str,
    name: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<HeaderValue> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(HeaderValue::Text(s.to_str()?.to_owned()));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(HeaderValue::Raw(b.as_bytes().to_vec()));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let addresses = value
            .try_iter()?
            .map(|a| a.and_then(|a| a.extract::<String>()))
            .collect::<PyResult<Vec<_>>>();
        return addresses.map(HeaderValue::Addresses).map_err(|_| {
            describe_err(
                py,
                path,
                Some(name),
                "a list header value must hold only str addresses",
            )
        });
    }
    Err(describe_err(
        py,
        path,
        Some(name),
        format!(
            "a header value must be str, bytes or a list of str, not {}",
            type_name(value)
        ),
    ))
}

/// Converts the `headers` mapping, in the caller's order.
fn headers(
    py: Python<'_>,
    path: &str,
    obj: &Bound<'_, PyAny>,
) -> PyResult<Vec<(String, HeaderValue)>> {
    let dict = obj.cast::<PyDict>().map_err(|_| {
        describe_err(
            py,
            path,
            None,
            format!("headers must be a dict, not {}", type_name(obj)),
        )
    })?;
    let mut out = Vec::with_capacity(dict.len());
    for (key, value) in dict.iter() {
        let name: String = key.extract().map_err(|_| {
            describe_err(
                py,
                path,
                None,
                format!("header names must be str, not {}", type_name(&key)),
            )
        })?;
        if value.is_none() {
            // `None` leaves the header out, so optional headers can be written inline.
            continue;
        }
        let value = header_value(py, path, &name, &value)?;
        out.push((name, value));
    }
    Ok(out)
}

/// Converts a multipart description: a dict with `preamble`, `parts` (or Lua-style keys `1..n`) and
/// `epilogue`, or a bare list of parts.
fn multipart(
    py: Python<'_>,
    path: &str,
    obj: &Bound<'_, PyAny>,
    chunk: usize,
    depth: usize,
) -> PyResult<Multipart> {
    let mut mp = Multipart {
        preamble: None,
        parts: Vec::new(),
        epilogue: None,
    };
    let part_path = |i: usize| format!("{path}.parts[{i}]");
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut numbered: Vec<(i64, Bound<'_, PyAny>)> = Vec::new();
        let mut listed: Option<Bound<'_, PyAny>> = None;
        for (key, value) in dict.iter() {
            if let Ok(n) = key.extract::<i64>() {
                numbered.push((n, value));
                continue;
            }
            let key: String = key
                .extract()
                .map_err(|_| describe_err(py, path, None, "multipart keys must be str or int"))?;
            let text = |v: &Bound<'_, PyAny>| -> PyResult<Option<String>> {
                if v.is_none() {
                    return Ok(None);
                }
                v.extract::<String>().map(Some).map_err(|_| {
                    describe_err(
                        py,
                        path,
                        None,
                        format!("{key} must be str, not {}", type_name(v)),
                    )
                })
            };
            match key.as_str() {
                "preamble" => mp.preamble = text(&value)?,
                "epilogue" => mp.epilogue = text(&value)?,
                "parts" => listed = Some(value),
                other => {
                    return Err(describe_err(
                        py,
                        path,
                        None,
                        format!(
                            "unknown multipart key {other:?} (expected preamble, parts, epilogue or 1..n)"
                        ),
                    ));
                }
            }
        }
        if listed.is_some() && !numbered.is_empty() {
            return Err(describe_err(
                py,
                path,
                None,
                "give the parts either as \"parts\" or as keys 1..n, not both",
            ));
        }
        if let Some(list) = listed {
            for (i, item) in list.try_iter()?.enumerate() {
                mp.parts
                    .push(part(py, &part_path(i), &item?, chunk, depth + 1)?);
            }
        } else {
            numbered.sort_by_key(|(n, _)| *n);
            for (i, (n, item)) in numbered.iter().enumerate() {
                if usize::try_from(*n).ok() != Some(i + 1) {
                    return Err(describe_err(
                        py,
                        path,
                        None,
                        format!(
                            "numbered parts must be keyed 1..n without gaps; key {n} is out of place"
                        ),
                    ));
                }
                mp.parts
                    .push(part(py, &part_path(i), item, chunk, depth + 1)?);
            }
        }
    } else {
        for (i, item) in obj.try_iter()?.enumerate() {
            mp.parts
                .push(part(py, &part_path(i), &item?, chunk, depth + 1)?);
        }
    }
    Ok(mp)
}

/// Converts a body: `str`, `bytes`, a multipart description, or any source.
fn body(
    py: Python<'_>,
    path: &str,
    obj: &Bound<'_, PyAny>,
    chunk: usize,
    depth: usize,
) -> PyResult<Body> {
    if obj.is_none() {
        return Ok(Body::None);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Body::Text(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Body::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Body::Bytes(b.to_vec()));
    }
    if obj.is_instance_of::<PyDict>()
        || obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
    {
        return Ok(Body::Multipart(multipart(py, path, obj, chunk, depth)?));
    }
    extract_source(obj, chunk).map(Body::Source).map_err(|e| {
        if e.is_instance_of::<PyTypeError>(py) {
            describe_err(
                py,
                path,
                None,
                format!(
                    "a body must be str, bytes, a source or a multipart description, not {}",
                    type_name(obj)
                ),
            )
        } else {
            e
        }
    })
}

/// Converts one part: a dict `{"headers": ..., "body": ..., "encoding": ...}` or a `Part` made by
/// `text()` / `attachment()`. `depth` counts the multiparts around it: the description is walked
/// by recursion, so nesting past [`MAX_NESTING`] is refused before the stack could run out.
fn part(
    py: Python<'_>,
    path: &str,
    obj: &Bound<'_, PyAny>,
    chunk: usize,
    depth: usize,
) -> PyResult<Part> {
    if depth > MAX_NESTING {
        return Err(describe_err(
            py,
            path,
            None,
            format!(
                "parts are nested more than {MAX_NESTING} multiparts deep; at most {MAX_NESTING} are supported"
            ),
        ));
    }
    if let Ok(native) = obj.cast::<NativePart>() {
        return native.get().take();
    }
    let dict = obj.cast::<PyDict>().map_err(|_| {
        describe_err(
            py,
            path,
            None,
            format!("a message or part must be a dict, not {}", type_name(obj)),
        )
    })?;
    let mut part = Part::new();
    for (key, value) in dict.iter() {
        let key: String = key
            .extract()
            .map_err(|_| describe_err(py, path, None, "message keys must be str"))?;
        match key.as_str() {
            "headers" => {
                if !value.is_none() {
                    part.headers = headers(py, path, &value)?;
                }
            }
            "body" => part.body = body(py, path, &value, chunk, depth)?,
            "encoding" => {
                if !value.is_none() {
                    let name: String = value.extract()?;
                    let encoding = name.parse::<TransferEncoding>().map_err(|_| {
                        describe_err(py, path, None, format!("unknown encoding {name:?} (expected base64, quoted-printable, 7bit, 8bit or binary)"))
                    })?;
                    part.encoding = Some(encoding);
                }
            }
            other => {
                return Err(describe_err(
                    py,
                    path,
                    None,
                    format!("unknown key {other:?} (expected headers, body or encoding)"),
                ));
            }
        }
    }
    Ok(part)
}

/// Where a `MessageSource` is.
enum Now {
    /// Not read, or partly read by Python.
    Ready(MessageEncoder),
    /// Read to its end (or to an error) by Python.
    Done,
    /// Taken out by a chain, a message or a session.
    Moved,
}

/// What a `MessageSource` holds: where it is, and the message unread, kept to be sent again
/// when every body can be read again.
struct State {
    now: Now,
    /// Never read itself: each use after the first takes a replay of it. It holds the laid-out
    /// header bytes and the bodies' sources, not encoded output.
    again: Option<MessageEncoder>,
}

/// The encoded message: an iterator of `bytes` chunks, produced in Rust with the GIL released.
#[pyclass(name = "MessageSource", module = "mailpump._mailpump", frozen)]
pub struct MessageSource {
    state: Mutex<State>,
    /// Whether a part is binary, known when the message was laid out.
    binary: bool,
}

impl MessageSource {
    fn new(encoder: MessageEncoder) -> Self {
        let again = encoder.again();
        Self {
            binary: encoder.needs_binarymime(),
            state: Mutex::new(State {
                now: Now::Ready(encoder),
                again,
            }),
        }
    }

    /// Takes the encoder out, for a chain or an SMTP session that sends it in Rust. A message
    /// whose bodies can all be read again can be taken again (to retry a refused message, say):
    /// each later time gives the same bytes from the start.
    pub fn take_encoder(&self) -> PyResult<MessageEncoder> {
        let mut state = enter(&self.state, "message")?;
        if let Now::Ready(encoder) = std::mem::replace(&mut state.now, Now::Moved) {
            return Ok(encoder);
        }
        if let Some(again) = state.again.as_ref().and_then(MessageEncoder::again) {
            return Ok(again);
        }
        Err(pyo3::exceptions::PyValueError::new_err(
            "this message was already sent or read, and its bodies can be read only once \
             (an iterator or a file object among them): build it again to send it again",
        ))
    }
}

#[pymethods]
impl MessageSource {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut state = enter(&self.state, "message")?;
        let Now::Ready(encoder) = &mut state.now else {
            return match state.now {
                Now::Moved => Err(moved_err("message")),
                _ => Ok(None),
            };
        };
        let produced = detach(py, || encoder.next_chunk());
        let outcome = match produced {
            Ok(Ok(Some(chunk))) => return Ok(Some(PyBytes::new(py, chunk))),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(error_to_pyerr(py, e)),
            Err(panic) => Err(panic),
        };
        // Fused: after the end or an error, the encoder (and any file it reads) is released.
        state.now = Now::Done;
        outcome
    }

    /// Whether the message can be sent again: every body is a string, bytes, a file by its
    /// path or a native source that can be read again, so each send gives the same bytes.
    #[getter]
    fn replayable(&self) -> PyResult<bool> {
        Ok(enter(&self.state, "message")?.again.is_some())
    }

    /// Whether a part is `binary` (the core's `needs_binarymime`): the message is then sent
    /// with BDAT and BODY=BINARYMIME.
    #[getter]
    fn binarymime(&self) -> bool {
        self.binary
    }

    fn __repr__(&self) -> &'static str {
        match peek(&self.state).as_deref().map(|s| &s.now) {
            Some(Now::Ready(_)) => "<mailpump MessageSource>",
            Some(Now::Done) => "<mailpump MessageSource (exhausted)>",
            Some(Now::Moved) => "<mailpump MessageSource (moved)>",
            None => "<mailpump MessageSource (running)>",
        }
    }
}

/// `message(mesgt, *, chunk_size=65536, zone=None)`.
#[pyfunction]
#[pyo3(signature = (mesgt, *, chunk_size = 65536, zone = None))]
pub fn message(
    py: Python<'_>,
    mesgt: &Bound<'_, PyAny>,
    chunk_size: usize,
    zone: Option<String>,
) -> PyResult<MessageSource> {
    let chunk_size = crate::options::chunk_size(chunk_size)?;
    let root = part(py, "message", mesgt, chunk_size, 0)?;
    let options = MessageOptions {
        chunk_size: chunk_size.max(1),
        zone,
        ..MessageOptions::default()
    };
    let encoder =
        detach(py, || MessageEncoder::new(root, options))?.map_err(|e| message_err(py, &e))?;
    Ok(MessageSource::new(encoder))
}

/// A part made by `text()` or `attachment()`, to be placed in a multipart's parts.
#[pyclass(name = "Part", module = "mailpump._mailpump", frozen)]
pub struct NativePart {
    inner: Mutex<Option<Part>>,
    what: String,
}

impl NativePart {
    fn take(&self) -> PyResult<Part> {
        enter(&self.inner, "part")?
            .take()
            .ok_or_else(|| moved_err("part"))
    }
}

#[pymethods]
impl NativePart {
    fn __repr__(&self) -> String {
        let moved = match peek(&self.inner).as_deref() {
            Some(Some(_)) => "",
            Some(None) => " (moved)",
            None => " (running)",
        };
        format!("<mailpump Part {}{moved}>", self.what)
    }
}

/// `text(s, subtype="plain")`.
#[pyfunction]
#[pyo3(signature = (s, subtype = "plain"))]
pub fn text(s: String, subtype: &str) -> NativePart {
    NativePart {
        inner: Mutex::new(Some(Part::text(s, subtype))),
        what: format!("text/{subtype}"),
    }
}

/// `attachment(path | bytes | file | source, filename=None, content_type=None, *, cid=None)`.
#[pyfunction]
#[pyo3(signature = (data, filename = None, content_type = None, *, cid = None))]
pub fn attachment(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    filename: Option<String>,
    content_type: Option<String>,
    cid: Option<&str>,
) -> PyResult<NativePart> {
    let is_path = data.is_instance_of::<PyString>() || data.hasattr("__fspath__")?;
    let part = if is_path {
        let path: PathBuf = data.extract()?;
        // Opened here rather than through `Part::attachment_file`, whose error keeps only the
        // text of the I/O error: Python callers expect `FileNotFoundError` and its kin.
        let source =
            detach(py, || ReaderSource::open(&path))?.map_err(|e| os_error(py, e, &path))?;
        let default_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = filename.as_deref().or(default_name.as_deref());
        Part::attachment(
            Body::Source(Box::new(source)),
            name,
            content_type.as_deref(),
        )
        .map_err(|e| message_err(py, &e))?
    } else {
        let body = if let Ok(b) = data.cast::<PyBytes>() {
            Body::Bytes(b.as_bytes().to_vec())
        } else {
            Body::Source(extract_source(data, DEFAULT_CHUNK)?)
        };
        // A file object knows its name: use it when the caller gave none.
        let filename = match filename {
            Some(f) => Some(f),
            None => data
                .getattr("name")
                .ok()
                .and_then(|n| n.extract::<PathBuf>().ok())
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
        };
        Part::attachment(body, filename.as_deref(), content_type.as_deref())
            .map_err(|e| message_err(py, &e))?
    };
    let part = match cid {
        Some(cid) => part.inline(cid).map_err(|e| message_err(py, &e))?,
        None => part,
    };
    let what = filename_label(&part);
    Ok(NativePart {
        inner: Mutex::new(Some(part)),
        what,
    })
}

/// A short label for `repr()`: the part's Content-Type.
fn filename_label(part: &Part) -> String {
    part.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, v)| match v {
            HeaderValue::Text(t) => Some(t.split(';').next().unwrap_or("").trim().to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| "attachment".to_owned())
}
