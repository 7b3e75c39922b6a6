//! `mailpump.mime`: the filter factories and `LuaSocket`'s low-level primitives.

use mailpump::mime::base64::{Base64Decoder, Base64Encoder};
use mailpump::mime::eol::Normalize;
use mailpump::mime::lowlevel;
use mailpump::mime::qp::{QpDecoder, QpEncoder, QpMode};
use mailpump::mime::wrap::{LineWrap, QpWrap};
use mailpump::smtp::dotstuff::DotStuff;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

use crate::errors::detach;
use crate::filter::NativeFilter;

/// Bytes or text (as UTF-8), the inputs the primitives accept.
#[derive(FromPyObject)]
pub enum Data {
    /// `bytes` / `bytearray`.
    Bytes(PyBackedBytes),
    /// `str`, encoded as UTF-8.
    Text(String),
}

impl AsRef<[u8]> for Data {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Bytes(b) => b,
            Self::Text(s) => s.as_bytes(),
        }
    }
}

/// `LuaSocket`'s `unknown key (name)`, as a `ValueError`.
fn unknown(name: &str) -> PyErr {
    PyValueError::new_err(format!("unknown key ({name})"))
}

/// `normalize(marker=b"\r\n")`: end-of-line normalisation (`LuaSocket`'s `mime.normalize`).
#[pyfunction]
#[pyo3(signature = (marker = None))]
pub fn normalize(marker: Option<Data>) -> NativeFilter {
    let filter = marker.map_or_else(Normalize::crlf, |m| Normalize::new(m.as_ref()));
    NativeFilter::new(Box::new(filter), "normalize")
}

/// `encode(name, mode="text")`: `base64` or `quoted-printable` (mode `text` or `binary`).
#[pyfunction]
#[pyo3(signature = (name, mode = "text"))]
pub fn encode(name: &str, mode: &str) -> PyResult<NativeFilter> {
    let filter: Box<dyn mailpump::Filter> = match name.to_ascii_lowercase().as_str() {
        "base64" => Box::new(Base64Encoder::new()),
        "quoted-printable" => {
            let mode = match mode.to_ascii_lowercase().as_str() {
                "text" => QpMode::Text,
                "binary" => QpMode::Binary,
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "unknown quoted-printable mode ({mode}); expected text or binary"
                    )));
                }
            };
            Box::new(QpEncoder::new(mode))
        }
        _ => return Err(unknown(name)),
    };
    Ok(NativeFilter::new(filter, format!("encode {name}")))
}

/// `decode(name)`: `base64` or `quoted-printable`.
#[pyfunction]
pub fn decode(name: &str) -> PyResult<NativeFilter> {
    let filter: Box<dyn mailpump::Filter> = match name.to_ascii_lowercase().as_str() {
        "base64" => Box::new(Base64Decoder::new()),
        "quoted-printable" => Box::new(QpDecoder::new()),
        _ => return Err(unknown(name)),
    };
    Ok(NativeFilter::new(filter, format!("decode {name}")))
}

/// `wrap(kind="text", length=76)` after `mime.py` has shifted `LuaSocket`-style arguments.
#[pyfunction]
#[pyo3(signature = (kind = "text", length = 76))]
pub fn wrap(kind: &str, length: usize) -> PyResult<NativeFilter> {
    let filter: Box<dyn mailpump::Filter> = match kind.to_ascii_lowercase().as_str() {
        "text" | "base64" | "default" => Box::new(LineWrap::new(length)),
        // `LuaSocket`'s `wrap("quoted-printable")` always uses 76 (RFC 2045 §6.7 rule 5).
        "quoted-printable" => Box::new(QpWrap::new(76)),
        _ => return Err(unknown(kind)),
    };
    Ok(NativeFilter::new(filter, format!("wrap {kind}")))
}

/// `stuff()`: `LuaSocket`'s SMTP dot-stuffing filter.
#[pyfunction]
pub fn stuff() -> NativeFilter {
    NativeFilter::new(Box::new(DotStuff::new()), "stuff")
}

/// A `bytes` object, or `None`.
fn opt_bytes(py: Python<'_>, v: Option<Vec<u8>>) -> Option<Bound<'_, PyBytes>> {
    v.map(|b| PyBytes::new(py, &b))
}

type Pair<'py> = (Option<Bound<'py, PyBytes>>, Option<Bound<'py, PyBytes>>);

/// `b64(C, D=None) -> (A, B)`. The four codec primitives run without the GIL: inputs may be large.
#[pyfunction]
#[pyo3(signature = (c, d = None, /))]
pub fn b64(py: Python<'_>, c: Option<Data>, d: Option<Data>) -> PyResult<Pair<'_>> {
    let (a, b) = detach(py, || {
        lowlevel::b64(c.as_ref().map(AsRef::as_ref), d.as_ref().map(AsRef::as_ref))
    })?;
    Ok((opt_bytes(py, a), opt_bytes(py, b)))
}

/// `unb64(C, D=None) -> (A, B)`.
#[pyfunction]
#[pyo3(signature = (c, d = None, /))]
pub fn unb64(py: Python<'_>, c: Option<Data>, d: Option<Data>) -> PyResult<Pair<'_>> {
    let (a, b) = detach(py, || {
        lowlevel::unb64(c.as_ref().map(AsRef::as_ref), d.as_ref().map(AsRef::as_ref))
    })?;
    Ok((opt_bytes(py, a), opt_bytes(py, b)))
}

/// `qp(C, D=None, marker=b"\r\n") -> (A, B)`.
#[pyfunction]
#[pyo3(signature = (c, d = None, marker = None, /))]
pub fn qp(
    py: Python<'_>,
    c: Option<Data>,
    d: Option<Data>,
    marker: Option<Data>,
) -> PyResult<Pair<'_>> {
    let marker = marker.as_ref().map_or(&b"\r\n"[..], AsRef::as_ref);
    let (a, b) = detach(py, || {
        lowlevel::qp(
            c.as_ref().map(AsRef::as_ref),
            d.as_ref().map(AsRef::as_ref),
            marker,
        )
    })?;
    Ok((opt_bytes(py, a), opt_bytes(py, b)))
}

/// `unqp(C, D=None) -> (A, B)`.
#[pyfunction]
#[pyo3(signature = (c, d = None, /))]
pub fn unqp(py: Python<'_>, c: Option<Data>, d: Option<Data>) -> PyResult<Pair<'_>> {
    let (a, b) = detach(py, || {
        lowlevel::unqp(c.as_ref().map(AsRef::as_ref), d.as_ref().map(AsRef::as_ref))
    })?;
    Ok((opt_bytes(py, a), opt_bytes(py, b)))
}

/// `wrp(n, C, length=76) -> (A, m)`.
#[pyfunction]
#[pyo3(signature = (n, c, length = 76, /))]
pub fn wrp(
    py: Python<'_>,
    n: i64,
    c: Option<Data>,
    length: i64,
) -> (Option<Bound<'_, PyBytes>>, i64) {
    let (a, m) = lowlevel::wrp(n, c.as_ref().map(AsRef::as_ref), length);
    (opt_bytes(py, a), m)
}

/// `qpwrp(n, C, length=76) -> (A, m)`.
#[pyfunction]
#[pyo3(signature = (n, c, length = 76, /))]
pub fn qpwrp(
    py: Python<'_>,
    n: i64,
    c: Option<Data>,
    length: i64,
) -> (Option<Bound<'_, PyBytes>>, i64) {
    let (a, m) = lowlevel::qpwrp(n, c.as_ref().map(AsRef::as_ref), length);
    (opt_bytes(py, a), m)
}

/// `eol(ctx, C, marker=b"\r\n") -> (A, ctx)`.
#[pyfunction]
#[pyo3(signature = (ctx, c, marker = None, /))]
pub fn eol(
    py: Python<'_>,
    ctx: u8,
    c: Option<Data>,
    marker: Option<Data>,
) -> (Option<Bound<'_, PyBytes>>, u8) {
    let marker = marker.as_ref().map_or(&b"\r\n"[..], AsRef::as_ref);
    let (a, m) = lowlevel::eol(ctx, c.as_ref().map(AsRef::as_ref), marker);
    (opt_bytes(py, a), m)
}

/// `dot(m, C) -> (A, m)`.
#[pyfunction]
#[pyo3(signature = (m, c, /))]
pub fn dot(py: Python<'_>, m: i64, c: Option<Data>) -> (Option<Bound<'_, PyBytes>>, i64) {
    let (a, state) = lowlevel::dot(m, c.as_ref().map(AsRef::as_ref));
    (opt_bytes(py, a), state)
}
