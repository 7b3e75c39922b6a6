//! `DKIM`: a DKIM signer made once, its key parsed once, and given as `dkim=` to `send()`,
//! `open()` and `Pool()`, where the core signs every message before its MAIL command. Its
//! `sign()` is the standalone face: a message in, the signed message out as a source.

use std::path::PathBuf;
use std::time::Duration;

use mailpump::mime::dkim::{Algorithm, Canonicalization, DkimError, DkimOptions, DkimSigner};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::errors::{box_to_pyerr, detach};
use crate::source::NativeSource;

/// The longest `expiration`: ten years, far beyond any key's rotation; longer ones are mistakes.
const MAX_EXPIRATION: f64 = 10.0 * 366.0 * 86_400.0;

/// A DKIM signer (RFC 6376; Ed25519 from RFC 8463).
#[pyclass(name = "DKIM", module = "mailpump._mailpump", frozen)]
pub struct PyDkim {
    pub(crate) signer: DkimSigner,
    domain: String,
    selector: String,
    headers: Vec<String>,
    canonicalization: String,
}

/// A core refusal as `ValueError`: the messages never quote the key.
fn value_error(e: &DkimError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// The PEM text of `key`: `bytes` or a `str` holding a PEM block as they are, another `str` or
/// an `os.PathLike` as the path of a PEM file.
fn pem(key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = key.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = key.cast::<PyString>() {
        let text = s.to_str()?;
        if text.contains("-----BEGIN") {
            return Ok(text.as_bytes().to_vec());
        }
    }
    let Ok(path) = key.extract::<PathBuf>() else {
        let given = key.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "the DKIM key must be PEM bytes or text, or the path of a PEM file, not {given}"
        )));
    };
    std::fs::read(&path).map_err(PyErr::from)
}

/// `expiration` in seconds: more than zero, at most ten years.
fn expiration(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) if (1.0..=MAX_EXPIRATION).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(PyValueError::new_err(format!(
            "the DKIM expiration must be from 1 second to ten years, in seconds, not {s}"
        ))),
    }
}

#[pymethods]
impl PyDkim {
    #[new]
    #[pyo3(signature = (domain, selector, key, *, headers = None, canonicalization = "relaxed/relaxed", algorithm = None, expiration = None))]
    #[allow(clippy::too_many_arguments)] // Python keywords, each one option.
    fn new(
        py: Python<'_>,
        domain: String,
        selector: String,
        key: &Bound<'_, PyAny>,
        headers: Option<&Bound<'_, PyAny>>,
        canonicalization: &str,
        algorithm: Option<&str>,
        expiration: Option<f64>,
    ) -> PyResult<Self> {
        let headers: Vec<String> = match headers.filter(|h| !h.is_none()) {
            None => Vec::new(),
            Some(h) if h.is_instance_of::<PyString>() => {
                return Err(PyTypeError::new_err(
                    "headers must be a list of header names, not a str",
                ));
            }
            Some(h) => h.extract().map_err(|_| {
                PyTypeError::new_err("headers must be a list of header names (str)")
            })?,
        };
        let (header_canonicalization, body_canonicalization) =
            Canonicalization::parse_pair(canonicalization).map_err(|e| value_error(&e))?;
        let options = DkimOptions {
            algorithm: algorithm
                .map(str::parse::<Algorithm>)
                .transpose()
                .map_err(|e| value_error(&e))?,
            headers: headers.clone(),
            header_canonicalization,
            body_canonicalization,
            expiration: self::expiration(expiration)?,
        };
        let pem = pem(key)?;
        // An RSA key takes a moment to check: without the GIL.
        let signer = detach(py, || DkimSigner::new(&domain, &selector, &pem, &options))?
            .map_err(|e| value_error(&e))?;
        let name = |c: Canonicalization| match c {
            Canonicalization::Simple => "simple",
            Canonicalization::Relaxed => "relaxed",
        };
        Ok(Self {
            signer,
            domain,
            selector,
            headers,
            canonicalization: format!(
                "{}/{}",
                name(header_canonicalization),
                name(body_canonicalization)
            ),
        })
    }

    /// The signing domain (`d=`).
    #[getter]
    fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`): the key's DNS record is at `<selector>._domainkey.<domain>`.
    #[getter]
    fn selector(&self) -> &str {
        &self.selector
    }

    /// `"rsa-sha256"` or `"ed25519-sha256"`, from the key.
    #[getter]
    fn algorithm(&self) -> &'static str {
        match self.signer.algorithm() {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    /// The header names signed, as given (empty: the default set).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.headers)
    }

    /// `"header/body"`, such as `"relaxed/relaxed"`.
    #[getter]
    fn canonicalization(&self) -> &str {
        &self.canonicalization
    }

    /// The message as it would be sent, its `DKIM-Signature:` field first; signed now (the
    /// message is read once here, and again as the result is iterated, when it can be).
    #[pyo3(signature = (message, /))]
    fn sign(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<NativeSource> {
        let source = crate::smtp::smtp_source(py, message, None)?;
        let signed = detach(py, || self.signer.sign(source))?.map_err(|e| {
            match e.downcast::<DkimError>() {
                Ok(dkim) => value_error(&dkim),
                Err(other) => box_to_pyerr(py, other),
            }
        })?;
        Ok(NativeSource::new(Box::new(signed), "dkim"))
    }

    fn __repr__(&self) -> String {
        format!(
            "<DKIM d={} s={} a={} c={}>",
            self.domain,
            self.selector,
            self.algorithm(),
            self.canonicalization
        )
    }
}

/// The `dkim=` connection option: a `DKIM`, or a dict of `DKIM()`'s arguments.
pub(crate) fn signer(value: &Bound<'_, PyAny>) -> PyResult<DkimSigner> {
    if let Ok(dkim) = value.cast::<PyDkim>() {
        return Ok(dkim.get().signer.clone());
    }
    let Ok(kwargs) = value.cast::<PyDict>() else {
        let given = value.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "dkim must be a mailpump.DKIM or a dict of its arguments, not {given}"
        )));
    };
    let made = value.py().get_type::<PyDkim>().call((), Some(kwargs))?;
    Ok(made.cast::<PyDkim>()?.get().signer.clone())
}
