//! The `"dsn"` key of a transaction: a Python dict converted into the core's `Dsn`.

use mailpump::Address;
use mailpump::smtp::dsn::{Dsn, Notify, RcptDsn, Ret};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors::smtp_to_pyerr;

const KEYS: [&str; 5] = ["ret", "envid", "notify", "recipients", "optional"];
const RECIPIENT_KEYS: [&str; 2] = ["notify", "orcpt"];

/// `{"ret": ..., "envid": ..., "notify": ..., "recipients": {address: {"notify": ...,
/// "orcpt": ...}}, "optional": bool}`; the core checks the values.
pub fn extract(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Dsn> {
    let table = dict(value, "dsn", &KEYS)?;
    let mut dsn = Dsn::default();
    if let Some(ret) = item(&table, "ret")? {
        dsn.ret = Some(self::ret(py, &ret)?);
    }
    if let Some(envid) = item(&table, "envid")? {
        dsn.envid = Some(self::envid(&envid)?);
    }
    if let Some(notify) = item(&table, "notify")? {
        dsn.notify = Some(self::notify(py, &notify)?);
    }
    if let Some(optional) = item(&table, "optional")? {
        dsn.optional = optional
            .extract::<bool>()
            .map_err(|_| PyTypeError::new_err("dsn optional must be a bool"))?;
    }
    if let Some(recipients) = item(&table, "recipients")? {
        let recipients = recipients.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err("dsn recipients is a dict: address -> {notify, orcpt}")
        })?;
        for (address, own) in recipients.iter() {
            let address = text(&address, "a dsn recipients key", "an address str")?;
            let address = Address::parse(&address).map_err(|e| smtp_to_pyerr(py, e))?;
            let own = dict(&own, "a dsn recipient", &RECIPIENT_KEYS)?;
            let mut params = RcptDsn::default();
            if let Some(notify) = item(&own, "notify")? {
                params.notify = Some(self::notify(py, &notify)?);
            }
            if let Some(orcpt) = item(&own, "orcpt")? {
                params.orcpt = Some(self::orcpt(py, &orcpt)?);
            }
            dsn.recipients.push((address, params));
        }
    }
    Ok(dsn)
}

/// `"full"` or `"hdrs"`.
pub fn ret(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Ret> {
    text(value, "dsn ret", "'full' or 'hdrs'")?
        .parse::<Ret>()
        .map_err(|e| smtp_to_pyerr(py, e))
}

/// An ENVID, checked by the core.
pub fn envid(value: &Bound<'_, PyAny>) -> PyResult<String> {
    text(value, "dsn envid", "a str")
}

/// An ORCPT: the recipient's original address.
pub fn orcpt(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Address> {
    let orcpt = text(value, "dsn orcpt", "an address str")?;
    Address::parse(&orcpt).map_err(|e| smtp_to_pyerr(py, e))
}

/// `"never"`, `"failure,delay"`, or a list of words.
pub fn notify(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Notify> {
    let expected = "'never' or a list of 'success', 'failure', 'delay'";
    let words = if let Ok(s) = value.cast::<PyString>() {
        s.to_str()?.to_owned()
    } else {
        let words: Vec<String> = value
            .try_iter()
            .map_err(|_| PyTypeError::new_err(format!("dsn notify must be {expected}")))?
            .map(|w| text(&w?, "dsn notify", expected))
            .collect::<PyResult<_>>()?;
        words.join(",")
    };
    words.parse::<Notify>().map_err(|e| smtp_to_pyerr(py, e))
}

fn dict<'py>(value: &Bound<'py, PyAny>, what: &str, keys: &[&str]) -> PyResult<Bound<'py, PyDict>> {
    let table = value
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("{what} is a dict of {}", keys.join(", "))))?
        .clone();
    for key in table.keys() {
        if !key.extract::<&str>().is_ok_and(|k| keys.contains(&k)) {
            return Err(PyTypeError::new_err(format!(
                "{what} takes {}; not {}",
                keys.join(", "),
                key.repr()?
            )));
        }
    }
    Ok(table)
}

/// The value of `key`, `None` when missing or `None`.
fn item<'py>(table: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(table.get_item(key)?.filter(|v| !v.is_none()))
}

fn text(value: &Bound<'_, PyAny>, what: &str, expected: &str) -> PyResult<String> {
    Ok(value
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be {expected}")))?
        .to_str()?
        .to_owned())
}
