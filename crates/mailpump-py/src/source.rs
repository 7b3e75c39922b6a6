//! LTN12 sources across the boundary: native sources as Python iterators, and Python iterables and
//! file objects as core [`Source`]s.

use std::path::PathBuf;
use std::sync::Mutex;

use mailpump::source::{
    BytesSource, CatSource, EmptySource, FilteredSource, MAX_NESTING, ReaderSource,
};
use mailpump::{BoxError, Chain, Source};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyIterator, PyTuple};

use crate::errors::{PythonError, box_to_pyerr, detach, enter, moved_err, peek};
use crate::filter::extract_filter;
use crate::message::MessageSource;

/// What a native source holds.
enum State {
    /// Still producing; `buf` is reused for every chunk.
    Active { src: Box<dyn Source>, buf: Vec<u8> },
    /// Exhausted, or failed: iteration has ended for good (the iterator is fused).
    Done,
    /// Taken out by a chain, a message or a session.
    Moved,
}

/// A source made by mailpump (`ltn12.source.*`): a Python iterator of `bytes` whose chunks are
/// produced in Rust with the GIL released.
#[pyclass(name = "Source", module = "mailpump._mailpump", frozen)]
pub struct NativeSource {
    state: Mutex<State>,
    kind: &'static str,
}

impl NativeSource {
    /// Wraps a core source; `kind` names it in `repr()`.
    pub fn new(src: Box<dyn Source>, kind: &'static str) -> Self {
        Self {
            state: Mutex::new(State::Active {
                src,
                buf: Vec::new(),
            }),
            kind,
        }
    }

    /// Takes the core source out (the Python object is then spent). An exhausted source gives an
    /// empty one.
    pub fn take(&self) -> PyResult<Box<dyn Source>> {
        let mut state = enter(&self.state, "source")?;
        match std::mem::replace(&mut *state, State::Moved) {
            State::Active { src, .. } => Ok(src),
            State::Done => Ok(Box::new(EmptySource)),
            State::Moved => Err(moved_err("source")),
        }
    }
}

#[pymethods]
impl NativeSource {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut state = enter(&self.state, "source")?;
        let State::Active { src, buf } = &mut *state else {
            return match *state {
                State::Moved => Err(moved_err("source")),
                _ => Ok(None),
            };
        };
        buf.clear();
        // A pull may legitimately yield nothing (a filter holding bytes back): keep pulling.
        let pulled = detach(py, || {
            loop {
                match src.pull(buf) {
                    Ok(true) if buf.is_empty() => {}
                    other => return other,
                }
            }
        });
        match pulled {
            Ok(Ok(true)) => Ok(Some(PyBytes::new(py, buf))),
            Ok(Ok(false)) => {
                *state = State::Done;
                Ok(None)
            }
            Ok(Err(e)) => {
                *state = State::Done;
                Err(box_to_pyerr(py, e))
            }
            Err(panic) => {
                *state = State::Done;
                Err(panic)
            }
        }
    }

    fn __repr__(&self) -> String {
        let state = match peek(&self.state).as_deref() {
            Some(State::Active { .. }) => "",
            Some(State::Done) => " (exhausted)",
            Some(State::Moved) => " (moved)",
            None => " (running)",
        };
        format!("<mailpump Source {}{state}>", self.kind)
    }
}

/// Appends one chunk produced by Python code to `out`.
pub fn append_chunk(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, who: &str) -> PyResult<()> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        out.extend_from_slice(b.as_bytes());
    } else if let Ok(b) = obj.cast::<PyByteArray>() {
        out.extend_from_slice(&b.to_vec());
    } else if obj.is_none() {
        // LTN12 filters return nil once they are drained; treat it as "nothing".
    } else {
        let ty = obj.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "{who} must produce bytes, not {ty}"
        )));
    }
    Ok(())
}

/// A Python iterable of `bytes` as a core source (one Python call per chunk, with the GIL).
pub struct IterSource {
    iter: Option<Py<PyIterator>>,
}

impl Source for IterSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        let Some(iter) = self.iter.as_ref() else {
            return Ok(false);
        };
        let result = Python::attach(|py| -> PyResult<bool> {
            let mut it = iter.bind(py).clone();
            match it.next() {
                None => Ok(false),
                Some(item) => {
                    append_chunk(&item?, out, "a source")?;
                    Ok(true)
                }
            }
        });
        match result {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.iter = None;
                Ok(false)
            }
            Err(e) => {
                self.iter = None;
                Err(Box::new(PythonError(e)))
            }
        }
    }
}

/// A binary file object (anything with `read(n)`) as a core source, read `chunk` bytes at a time.
pub struct ReadSource {
    file: Option<Py<PyAny>>,
    chunk: usize,
    /// Close the file at its end, as LTN12's `source.file` does.
    close: bool,
}

impl Source for ReadSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        let Some(file) = self.file.as_ref() else {
            return Ok(false);
        };
        let result = Python::attach(|py| -> PyResult<bool> {
            let data = file.bind(py).call_method1("read", (self.chunk,))?;
            let start = out.len();
            append_chunk(&data, out, "read() of a source file")?;
            if out.len() > start {
                return Ok(true);
            }
            if self.close {
                file.bind(py).call_method0("close")?;
            }
            Ok(false)
        });
        match result {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.file = None;
                Ok(false)
            }
            Err(e) => {
                self.file = None;
                Err(Box::new(PythonError(e)))
            }
        }
    }
}

/// Converts anything the Python API takes as a source into a core source: a native source or message
/// (moved in), `bytes`, a binary file object, or any iterable of `bytes`.
pub fn extract_source(obj: &Bound<'_, PyAny>, chunk: usize) -> PyResult<Box<dyn Source>> {
    if let Ok(native) = obj.cast::<NativeSource>() {
        return native.get().take();
    }
    if let Ok(message) = obj.cast::<MessageSource>() {
        return Ok(Box::new(message.get().take_encoder()?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Box::new(BytesSource::with_chunk(b.as_bytes(), chunk)));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Box::new(BytesSource::with_chunk(b.to_vec(), chunk)));
    }
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(
            "a source must be bytes or an iterable of bytes, not str",
        ));
    }
    if obj.hasattr("read")? {
        return Ok(Box::new(ReadSource {
            file: Some(obj.clone().unbind()),
            chunk,
            close: false,
        }));
    }
    if let Ok(it) = obj.try_iter() {
        return Ok(Box::new(IterSource {
            iter: Some(it.unbind()),
        }));
    }
    let ty = obj.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "expected a source (an iterable of bytes), not {ty}"
    )))
}

/// Refuses what would nest sources and filters deeper than [`MAX_NESTING`]: pulling and dropping
/// recurse once per level.
pub fn check_nesting(levels: usize, what: &str) -> PyResult<()> {
    if levels > MAX_NESTING {
        return Err(PyValueError::new_err(format!(
            "{what} would nest sources and filters {levels} levels deep; at most {MAX_NESTING} are supported"
        )));
    }
    Ok(())
}

/// `ltn12.source.string(s)`.
#[pyfunction]
#[pyo3(signature = (s, chunk_size = 65536))]
pub fn source_string(s: &Bound<'_, PyAny>, chunk_size: usize) -> PyResult<NativeSource> {
    let chunk_size = crate::options::chunk_size(chunk_size)?;
    let data: Vec<u8> = if let Ok(text) = s.extract::<&str>() {
        text.as_bytes().to_vec()
    } else if let Ok(b) = s.cast::<PyBytes>() {
        b.as_bytes().to_vec()
    } else if let Ok(b) = s.cast::<PyByteArray>() {
        b.to_vec()
    } else {
        let ty = s.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "source.string() takes bytes or str, not {ty}"
        )));
    };
    Ok(NativeSource::new(
        Box::new(BytesSource::with_chunk(data, chunk_size)),
        "string",
    ))
}

/// `ltn12.source.file(path | file, mode="rb")`.
#[pyfunction]
#[pyo3(signature = (file, mode = "rb", chunk_size = 65536))]
pub fn source_file(
    py: Python<'_>,
    file: &Bound<'_, PyAny>,
    mode: &str,
    chunk_size: usize,
) -> PyResult<NativeSource> {
    let chunk_size = crate::options::chunk_size(chunk_size)?;
    if !matches!(mode, "rb" | "r") {
        return Err(PyValueError::new_err(format!(
            "source.file() reads; mode must be \"rb\", not {mode:?}"
        )));
    }
    if file.hasattr("read")? {
        let src = ReadSource {
            file: Some(file.clone().unbind()),
            chunk: chunk_size.max(1),
            close: true,
        };
        return Ok(NativeSource::new(Box::new(src), "file"));
    }
    let path: PathBuf = file.extract()?;
    let src = detach(py, || ReaderSource::open(&path))?
        .map_err(|e| crate::errors::os_error(py, e, &path))?
        .chunk(chunk_size);
    Ok(NativeSource::new(Box::new(src), "file"))
}

/// `ltn12.source.empty()`.
#[pyfunction]
pub fn source_empty() -> NativeSource {
    NativeSource::new(Box::new(EmptySource), "empty")
}

/// `ltn12.source.cat(*sources)`.
#[pyfunction]
#[pyo3(signature = (*sources))]
pub fn source_cat(sources: &Bound<'_, PyTuple>) -> PyResult<NativeSource> {
    let all = sources
        .iter()
        .map(|s| extract_source(&s, mailpump::source::DEFAULT_CHUNK))
        .collect::<PyResult<Vec<_>>>()?;
    let cat = CatSource::new(all);
    check_nesting(cat.nesting(), "source.cat()")?;
    Ok(NativeSource::new(Box::new(cat), "cat"))
}

/// `ltn12.source.chain(src, *filters)`.
#[pyfunction]
#[pyo3(signature = (src, *filters))]
pub fn source_chain(
    src: &Bound<'_, PyAny>,
    filters: &Bound<'_, PyTuple>,
) -> PyResult<NativeSource> {
    let inner = extract_source(src, mailpump::source::DEFAULT_CHUNK)?;
    let mut all = filters
        .iter()
        .map(|f| extract_filter(&f))
        .collect::<PyResult<Vec<_>>>()?;
    let filter = if all.len() == 1 {
        all.remove(0)
    } else {
        Box::new(Chain::new(all))
    };
    let chained = FilteredSource::new(inner, filter);
    check_nesting(chained.nesting(), "source.chain()")?;
    Ok(NativeSource::new(Box::new(chained), "chain"))
}

// The Python signatures spell the default chunk size as a literal (for `inspect` and stubtest).
const _: () = assert!(mailpump::source::DEFAULT_CHUNK == 65536);
