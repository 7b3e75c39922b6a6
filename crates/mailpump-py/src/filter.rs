//! LTN12 filters across the boundary: native filters as Python callables, Python callables as
//! core [`Filter`]s.

use std::sync::Mutex;

use mailpump::{BoxError, Chain, Filter};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyTuple};

use crate::errors::{PythonError, box_to_pyerr, detach, enter, moved_err, peek};
use crate::source::append_chunk;

/// A filter made by mailpump (`mime.*`, `ltn12.filter.chain`): `f(chunk)` returns the filtered
/// bytes, `f(None)` flushes what is held back and resets the filter.
#[pyclass(name = "Filter", module = "mailpump._mailpump", frozen)]
pub struct NativeFilter {
    inner: Mutex<Option<Box<dyn Filter>>>,
    name: String,
}

impl NativeFilter {
    /// Wraps a core filter; `name` appears in `repr()`.
    pub fn new(filter: Box<dyn Filter>, name: impl Into<String>) -> Self {
        Self {
            inner: Mutex::new(Some(filter)),
            name: name.into(),
        }
    }

    /// Takes the core filter out (the Python object is then spent).
    pub fn take(&self) -> PyResult<Box<dyn Filter>> {
        enter(&self.inner, "filter")?
            .take()
            .ok_or_else(|| moved_err("filter"))
    }
}

#[pymethods]
impl NativeFilter {
    #[pyo3(signature = (chunk = None, /))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        chunk: Option<PyBackedBytes>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut guard = enter(&self.inner, "filter")?;
        let filter = guard.as_mut().ok_or_else(|| moved_err("filter"))?;
        let mut out = Vec::new();
        let result = detach(py, || match &chunk {
            Some(bytes) => filter.update(bytes, &mut out),
            None => filter.finish(&mut out),
        })?;
        result.map_err(|e| box_to_pyerr(py, e))?;
        Ok(PyBytes::new(py, &out))
    }

    fn __repr__(&self) -> String {
        let moved = match peek(&self.inner).as_deref() {
            Some(Some(_)) => "",
            Some(None) => " (moved)",
            None => " (running)",
        };
        format!("<mailpump Filter {}{moved}>", self.name)
    }
}

/// A Python callable `f(chunk: bytes | None) -> bytes` as a core filter (one call per chunk).
pub struct CallableFilter {
    func: Py<PyAny>,
}

impl CallableFilter {
    fn call(&mut self, input: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), BoxError> {
        Python::attach(|py| -> PyResult<()> {
            let arg = input.map(|b| PyBytes::new(py, b));
            let result = self.func.bind(py).call1((arg,))?;
            append_chunk(&result, out, "a filter")
        })
        .map_err(|e| Box::new(PythonError(e)) as BoxError)
    }
}

impl Filter for CallableFilter {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.call(Some(input), out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.call(None, out)
    }
}

/// Converts a native filter (moved in) or a Python callable into a core filter.
pub fn extract_filter(obj: &Bound<'_, PyAny>) -> PyResult<Box<dyn Filter>> {
    if let Ok(native) = obj.cast::<NativeFilter>() {
        return native.get().take();
    }
    if obj.is_callable() {
        return Ok(Box::new(CallableFilter {
            func: obj.clone().unbind(),
        }));
    }
    let ty = obj.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "expected a filter (a callable), not {ty}"
    )))
}

/// `ltn12.filter.chain(*filters)`.
#[pyfunction]
#[pyo3(signature = (*filters))]
pub fn filter_chain(filters: &Bound<'_, PyTuple>) -> PyResult<NativeFilter> {
    let all = filters
        .iter()
        .map(|f| extract_filter(&f))
        .collect::<PyResult<Vec<_>>>()?;
    let n = all.len();
    let chain = Chain::new(all);
    crate::source::check_nesting(chain.nesting(), "filter.chain()")?;
    Ok(NativeFilter::new(Box::new(chain), format!("chain of {n}")))
}
