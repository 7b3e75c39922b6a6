//! The connection options `send()` and `Session()` take: one Python mapping, converted once into
//! the core's `ClientConfig` and credentials.

use std::path::PathBuf;
use std::time::Duration;

use mailpump::smtp::auth::{Credentials, Mechanism, login};
use mailpump::smtp::client::{ClientConfig, TlsPolicy};
use mailpump::smtp::fingerprint::Fingerprint;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString};

use crate::errors::smtp_to_pyerr;

/// Every option, in the order an error message lists them.
const KEYS: [&str; 18] = [
    "allow_insecure_auth",
    "auth",
    "cafile",
    "certfile",
    "chunking",
    "create",
    "domain",
    "fingerprint",
    "helo_fallback",
    "keyfile",
    "oauth_token",
    "password",
    "port",
    "server",
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
                "verify" => config.verify = typed(key, &value, "True or False")?,
                "certfile" => {
                    config.certfile =
                        Some(typed::<PathBuf>(key, &value, "a path (str or PathLike)")?);
                }
                "keyfile" => {
                    config.keyfile =
                        Some(typed::<PathBuf>(key, &value, "a path (str or PathLike)")?);
                }
                "fingerprint" => config.fingerprints = fingerprints(py, &value)?,
                "domain" => config.domain = typed(key, &value, "a str")?,
                "helo_fallback" => config.helo_fallback = typed(key, &value, "True or False")?,
                "chunking" => config.chunking = typed(key, &value, "True or False")?,
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
                "password" => password = Some(typed(key, &value, "a str")?),
                "oauth_token" => token = Some(typed(key, &value, "a str")?),
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
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        PyValueError::new_err(format!(
            "timeout must be a positive number of seconds, not {seconds}"
        ))
    })
}
