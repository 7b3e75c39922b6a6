//! LTN12 sinks made by mailpump: callables `s(chunk: bytes | None) -> None`; `None` ends the data.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList};

use crate::errors::{detach, enter, peek};

/// Where a sink puts its chunks.
enum Target {
    /// `sink.list(lst)`: appends each chunk.
    List(Py<PyList>),
    /// `sink.file(path)`: written in Rust, without the GIL; `None` once closed.
    Path(Option<BufWriter<File>>),
    /// `sink.file(f)`: an open binary file object; closed at the end, as LTN12 does.
    Object(Option<Py<PyAny>>),
    /// `sink.null()`: discards everything.
    Null,
}

/// A sink made by mailpump (`ltn12.sink.*`).
#[pyclass(name = "Sink", module = "mailpump._mailpump", frozen)]
pub struct NativeSink {
    target: Mutex<Target>,
}

#[pymethods]
impl NativeSink {
    #[pyo3(signature = (chunk = None, /))]
    fn __call__(&self, py: Python<'_>, chunk: Option<PyBackedBytes>) -> PyResult<()> {
        let mut target = enter(&self.target, "sink")?;
        match (&mut *target, chunk) {
            (Target::List(list), Some(bytes)) => list.bind(py).append(PyBytes::new(py, &bytes))?,
            (Target::Path(Some(w)), Some(bytes)) => detach(py, || w.write_all(&bytes))??,
            (Target::Path(w), None) => {
                if let Some(mut file) = w.take() {
                    detach(py, || file.flush())??;
                }
            }
            (Target::Path(None) | Target::Object(None), Some(_)) => {
                return Err(PyValueError::new_err(
                    "write to a sink after its end (None was already sent)",
                ));
            }
            (Target::Object(Some(f)), Some(bytes)) => {
                f.bind(py)
                    .call_method1("write", (PyBytes::new(py, &bytes),))?;
            }
            (Target::Object(f), None) => {
                if let Some(file) = f.take() {
                    file.bind(py).call_method0("close")?;
                }
            }
            (Target::List(_) | Target::Null, None) | (Target::Null, Some(_)) => {}
        }
        Ok(())
    }

    /// The list a `sink.list()` appends to (`None` for other sinks).
    #[getter]
    fn list(&self, py: Python<'_>) -> PyResult<Option<Py<PyList>>> {
        Ok(match &*enter(&self.target, "sink")? {
            Target::List(l) => Some(l.clone_ref(py)),
            _ => None,
        })
    }

    fn __repr__(&self) -> &'static str {
        match peek(&self.target).as_deref() {
            Some(Target::List(_)) => "<mailpump Sink list>",
            Some(Target::Path(_) | Target::Object(_)) => "<mailpump Sink file>",
            Some(Target::Null) => "<mailpump Sink null>",
            None => "<mailpump Sink (running)>",
        }
    }
}

/// `ltn12.sink.list(lst=None)`.
#[pyfunction]
#[pyo3(signature = (lst = None))]
pub fn sink_list(py: Python<'_>, lst: Option<Bound<'_, PyList>>) -> NativeSink {
    let items = lst.unwrap_or_else(|| PyList::empty(py));
    NativeSink {
        target: Mutex::new(Target::List(items.unbind())),
    }
}

/// `ltn12.sink.file(path | file, mode="wb")`.
#[pyfunction]
#[pyo3(signature = (file, mode = "wb"))]
pub fn sink_file(py: Python<'_>, file: &Bound<'_, PyAny>, mode: &str) -> PyResult<NativeSink> {
    if file.hasattr("write")? {
        return Ok(NativeSink {
            target: Mutex::new(Target::Object(Some(file.clone().unbind()))),
        });
    }
    let append = match mode {
        "wb" | "w" => false,
        "ab" | "a" => true,
        _ => {
            return Err(PyValueError::new_err(format!(
                "sink.file() writes; mode must be \"wb\" or \"ab\", not {mode:?}"
            )));
        }
    };
    let path: PathBuf = file.extract()?;
    let opened = detach(py, || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .append(append)
            .truncate(!append)
            .open(&path)
    })?
    .map_err(|e| crate::errors::os_error(py, e, &path))?;
    Ok(NativeSink {
        target: Mutex::new(Target::Path(Some(BufWriter::with_capacity(
            1 << 16,
            opened,
        )))),
    })
}

/// `ltn12.sink.null()`.
#[pyfunction]
pub fn sink_null() -> NativeSink {
    NativeSink {
        target: Mutex::new(Target::Null),
    }
}

/// `ltn12.pump.all(src, snk)` without a Python call per chunk, when `src` is native and `snk`
/// writes a path or discards: the whole loop runs in Rust with the GIL released. Returns `false`
/// (having touched nothing) when the pieces are not all native, for the Python loop to do it.
#[pyfunction]
pub fn pump_native(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    snk: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let Ok(native_sink) = snk.cast::<NativeSink>() else {
        return Ok(false);
    };
    let native_source = src.is_instance_of::<crate::source::NativeSource>()
        || src.is_instance_of::<crate::message::MessageSource>();
    if !native_source {
        return Ok(false);
    }
    let mut guard = enter(&native_sink.get().target, "sink")?;
    let target: &mut Target = &mut guard;
    if !matches!(target, Target::Path(Some(_)) | Target::Null) {
        return Ok(false);
    }
    let mut source = crate::source::extract_source(src, mailpump::source::DEFAULT_CHUNK)?;
    // The network's detach: a Ctrl-C between chunks (checked below, as an endless source or
    // /dev/zero never blocks) is raised as itself.
    let result = detach(py, || -> Result<(), mailpump::BoxError> {
        let mut buf = Vec::with_capacity(mailpump::source::DEFAULT_CHUNK);
        loop {
            crate::interrupt::check_signals()?;
            buf.clear();
            let more = source.pull(&mut buf)?;
            if let Target::Path(Some(w)) = &mut *target {
                w.write_all(&buf)?;
            }
            if !more {
                break;
            }
        }
        // The end of the data: a file sink flushes and closes, as `snk(None)` does.
        if let Target::Path(w) = &mut *target {
            if let Some(mut file) = w.take() {
                file.flush()?;
            }
        }
        Ok(())
    })?;
    result.map_err(|e| crate::errors::box_to_pyerr(py, e))?;
    Ok(true)
}
