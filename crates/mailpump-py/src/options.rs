//! The connection options `send()` and `Session()` take: one Python mapping, converted once into
//! the core's `ClientConfig` and credentials.

use std::path::PathBuf;
use std::time::Duration;

use mailpump::smtp::auth::{Credentials, Mechanism, login};
use mailpump::smtp::client::{ClientConfig, TlsPolicy};
use mailpump::smtp::connector::Connector;
use mailpump::smtp::fingerprint::Fingerprint;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString};

use crate::errors::smtp_to_pyerr;
use crate::pytls::SslContextConnector;

/// Every option, in the order an error message lists them.
const KEYS: [&str; 21] = [
    "allow_insecure_auth",
    "auth",
    "cafile",
    "certfile",
    "chunking",
    "create",
    "dkim",
    "domain",
    "fingerprint",
    "helo_fallback",
    "keyfile",
    "lmtp",
    "oauth_token",
    "password",
    "port",
    "server",
    "ssl_context",
    "timeout",
    "tls",
    "user",
    "verify",
];

/// The options of one connection, read from a mapping of option names to values. A missing key and
/// a `None` value both mean the default, `ClientConfig::default()`'s; an unknown key is refused
/// (`TypeError` naming it), as is a value of the wrong type; a value the core refuses is a
/// `ValueError`. All of it is checked before any connection.
pub struct ConnectOptions {
    /// Where and how to connect, validated by the core.
    pub config: ClientConfig,
    /// The credentials paired with the mechanism asked for (`mailpump::smtp::auth::login`).
    pub credentials: Option<(Credentials, Option<Mechanism>)>,
    /// `create()`: a callable returning a socket-like object used instead of a TCP socket.
    pub create: Option<Py<PyAny>>,
    /// The credential options given (not `None`), for a caller that does not authenticate.
    pub credential_keys: Vec<&'static str>,
}

/// `value` as a `T`, or a `TypeError` that names the option and what it must be.
fn typed<'py, T>(key: &str, value: &Bound<'py, PyAny>, expected: &str) -> PyResult<T>
where
    T: for<'a> FromPyObject<'a, 'py>,
{
    value
        .extract::<T>()
        .map_err(|_| wrong_type(key, value, expected))
}

/// A credential (`password`, `oauth_token`) as text. Its value never appears in the error: a str
/// that cannot be encoded (a lone surrogate, what `os.environ` gives for a non-UTF-8 byte) would
/// otherwise raise a `UnicodeEncodeError` holding the whole secret in its `args` and `object`.
pub fn secret(key: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let Ok(text) = value.cast::<PyString>() else {
        return Err(wrong_type(key, value, "a str"));
    };
    match text.to_str() {
        Ok(text) => Ok(text.to_owned()),
        // The encoding error is dropped, not chained: it holds the secret.
        Err(_) => Err(PyValueError::new_err(format!(
            "{key} cannot be encoded as UTF-8: it holds a lone surrogate (a non-UTF-8 byte read \
             from the environment or a file name, for example); its value is not shown"
        ))),
    }
}

/// `key must be {expected}, not {type of value}`.
fn wrong_type(key: &str, value: &Bound<'_, PyAny>, expected: &str) -> PyErr {
    let given = value
        .get_type()
        .name()
        .map_or_else(|_| "another type".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!("{key} must be {expected}, not {given}"))
}

/// The items of a mapping (a `dict` or any `collections.abc.Mapping`).
fn items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    if let Ok(dict) = obj.cast::<PyDict>() {
        return Ok(dict.items());
    }
    match obj.cast::<PyMapping>() {
        Ok(mapping) => mapping.items(),
        Err(_) => Err(wrong_type("the connection options", obj, "a dict")),
    }
}

impl<'py> FromPyObject<'_, 'py> for ConnectOptions {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let mut config = ClientConfig::default();
        let (mut user, mut password, mut token, mut mechanism) = (None, None, None, None);
        let mut create = None;
        let mut credential_keys = Vec::new();
        let mut unknown = Vec::new();
        let mut verify_given = false;
        for item in items(&obj)?.iter() {
            let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
            let Ok(name) = key.cast::<PyString>() else {
                unknown.push(key.repr()?.to_string());
                continue;
            };
            let name = name.to_str()?;
            let Some(&key) = KEYS.iter().find(|k| **k == name) else {
                unknown.push(format!("'{name}'"));
                continue;
            };
            if value.is_none() {
                continue;
            }
            match key {
                "server" => config.server = typed(key, &value, "a host name or address (str)")?,
                "port" => config.port = port(&value)?,
                "tls" => {
                    let policy: String = typed(key, &value, "a str")?;
                    config.tls = policy
                        .parse::<TlsPolicy>()
                        .map_err(|e| smtp_to_pyerr(py, e))?;
                }
                "timeout" => config.timeout = timeout(&value)?,
                "cafile" => {
                    config.cafile =
                        Some(typed::<PathBuf>(key, &value, "a path (str or PathLike)")?);
                }
                "verify" => {
                    config.verify = typed(key, &value, "True or False")?;
                    verify_given = true;
                }
                "ssl_context" => config.tls_connector = Some(ssl_context(py, &value)?),
                "certfile" => {
                    config.certfile =
                        Some(typed::<PathBuf>(key, &value, "a path (str or PathLike)")?);
                }
                "keyfile" => {
                    config.keyfile =
                        Some(typed::<PathBuf>(key, &value, "a path (str or PathLike)")?);
                }
                "fingerprint" => config.fingerprints = fingerprints(py, &value)?,
                "dkim" => config.dkim = Some(crate::dkim::signer(&value)?),
                "domain" => config.domain = typed(key, &value, "a str")?,
                "helo_fallback" => config.helo_fallback = typed(key, &value, "True or False")?,
                "chunking" => config.chunking = typed(key, &value, "True or False")?,
                "lmtp" => config.lmtp = typed(key, &value, "True or False")?,
                "allow_insecure_auth" => {
                    config.allow_insecure_auth = typed(key, &value, "True or False")?;
                }
                "create" if value.is_callable() => create = Some(value.unbind()),
                "create" => {
                    return Err(wrong_type(key, &value, "a callable returning a socket"));
                }
                "auth" => {
                    let name: String = typed(key, &value, "a mechanism name (str)")?;
                    let parsed = name
                        .parse::<Mechanism>()
                        .map_err(|e| PyValueError::new_err(e.to_string()))?;
                    mechanism = Some(parsed);
                }
                "user" => user = Some(typed(key, &value, "a str")?),
                "password" => password = Some(secret(key, &value)?),
                "oauth_token" => token = Some(secret(key, &value)?),
                _ => unreachable!("every key in KEYS has an arm"),
            }
            if matches!(key, "user" | "password" | "oauth_token" | "auth") {
                credential_keys.push(key);
            }
        }
        if !unknown.is_empty() {
            return Err(PyTypeError::new_err(format!(
                "unknown connection option{} {}; the options are {}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                KEYS.join(", ")
            )));
        }
        if config.tls_connector.is_some() && verify_given {
            // verify=True is no less at odds with ssl_context= than False: the context decides.
            config.verify = false;
        }
        // Checked before any connection, `create()`'s included.
        config.validate().map_err(|e| smtp_to_pyerr(py, e))?;
        let credentials =
            login(user, password, token, mechanism).map_err(|e| smtp_to_pyerr(py, e))?;
        Ok(Self {
            config,
            credentials,
            create,
            credential_keys,
        })
    }
}

/// `ssl_context`: TLS through this `ssl.SSLContext` (Python's OpenSSL) rather than rustls.
fn ssl_context(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Connector> {
    let class = py.import("ssl")?.getattr("SSLContext")?;
    if !value.is_instance(&class)? {
        return Err(wrong_type("ssl_context", value, "an ssl.SSLContext"));
    }
    let connector = SslContextConnector::new(value.clone().unbind());
    Ok(Connector::new(connector))
}

/// One pinned fingerprint (a str) or several (a list or tuple of str, for a certificate being
/// replaced).
fn fingerprints(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<Fingerprint>> {
    const EXPECTED: &str = "a str such as 'sha256:AB:CD:...', or a list of them";
    let texts: Vec<String> = if value.is_instance_of::<PyString>() {
        vec![typed("fingerprint", value, EXPECTED)?]
    } else {
        typed("fingerprint", value, EXPECTED)?
    };
    if texts.is_empty() {
        return Err(PyValueError::new_err(
            "fingerprint must name at least one certificate",
        ));
    }
    texts
        .iter()
        .map(|t| t.parse::<Fingerprint>().map_err(|e| smtp_to_pyerr(py, e)))
        .collect()
}

/// A TCP port, 0 to 65535.
fn port(value: &Bound<'_, PyAny>) -> PyResult<u16> {
    let n: i64 = typed("port", value, "an int")?;
    u16::try_from(n).map_err(|_| PyValueError::new_err(format!("port must be 0 to 65535, not {n}")))
}

/// A timeout in seconds (an int or a float); zero is left for the core to refuse.
fn timeout(value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let seconds: f64 = typed("timeout", value, "a number of seconds")?;
    bounded_seconds("timeout", seconds)
}

/// The longest duration any argument may give: a day. Longer ones are mistakes (milliseconds
/// passed as seconds, `float("inf")`), and a deadline computed from an unbounded one overflows.
pub const MAX_SECONDS: f64 = 86_400.0;

/// The largest `chunk_size`: each chunk is allocated whole, so an absurd one would abort the
/// process for want of memory rather than fail.
pub const MAX_CHUNK_SIZE: usize = 16 << 20;

/// A duration argument in seconds: finite, at least zero and at most [`MAX_SECONDS`].
pub fn bounded_seconds(name: &str, seconds: f64) -> PyResult<Duration> {
    if !(0.0..=MAX_SECONDS).contains(&seconds) {
        return Err(PyValueError::new_err(format!(
            "{name} must be a number of seconds from 0 to {MAX_SECONDS} (a day), not {seconds}"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A `chunk_size` argument: at most [`MAX_CHUNK_SIZE`] bytes (0 counts as 1, `LuaSocket`'s
/// reading of a non-positive size).
pub fn chunk_size(n: usize) -> PyResult<usize> {
    if n > MAX_CHUNK_SIZE {
        return Err(PyValueError::new_err(format!(
            "chunk_size must be at most {MAX_CHUNK_SIZE} bytes (16 MiB), not {n}"
        )));
    }
    Ok(n.max(1))
}
