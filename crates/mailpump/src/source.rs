//! Sources: pull-based producers of byte chunks (LTN12's sources).
//!
//! A [`Source`] hands out its data a chunk at a time, so that a message body (an attachment on disk,
//! a Python iterator, another message) is never held whole in memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use crate::BoxError;
use crate::filter::{Chain, Filter};

/// The chunk size sources read at a time when nobody says otherwise.
pub const DEFAULT_CHUNK: usize = 64 * 1024;

/// A producer of byte chunks.
///
/// ```
/// use mailpump::{BoxError, Source};
/// use mailpump::source::collect;
///
/// /// Counts from 0 to 9, one line per chunk.
/// struct Counter(u8);
///
/// impl Source for Counter {
///     fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
///         if self.0 == 10 {
///             return Ok(false);
///         }
///         out.extend_from_slice(format!("{}\r\n", self.0).as_bytes());
///         self.0 += 1;
///         Ok(true)
///     }
/// }
///
/// assert_eq!(collect(&mut Counter(8))?, b"8\r\n9\r\n");
/// # Ok::<(), BoxError>(())
/// ```
pub trait Source: Send {
    /// Appends the next chunk to `out`. Returns `Ok(false)` once the source is exhausted, and keeps
    /// returning it. A call that returns `Ok(true)` may append nothing (a filter holding bytes back).
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError>;

    /// The number of bytes still to come, when the source knows it.
    fn remaining_hint(&self) -> Option<u64> {
        None
    }

    /// A fresh source that produces the same bytes from the start, when this one can be read
    /// again: bytes in memory, a file by its path, a message whose bodies can all be read again.
    /// A retry sends the message again from it. A one-shot source (an iterator, a pipe) returns
    /// `None`, the default, and is sent at most once.
    ///
    /// ```
    /// use mailpump::Source;
    /// use mailpump::source::{BytesSource, collect};
    ///
    /// let mut first = BytesSource::new("the same bytes");
    /// collect(&mut first)?;
    /// let mut again = first.replay().expect("bytes can be read again");
    /// assert_eq!(collect(&mut again)?, b"the same bytes");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    fn replay(&self) -> Option<Box<dyn Source>> {
        None
    }

    /// How many levels of sources and filters this one is made of, itself included: 1 for a
    /// source that wraps no other. Pulling (and dropping) recurses once per level, so a binding
    /// that builds sources from a caller's description refuses more than [`MAX_NESTING`].
    ///
    /// ```
    /// use mailpump::Source;
    /// use mailpump::source::{BytesSource, CatSource};
    ///
    /// let inner = CatSource::new(vec![Box::new(BytesSource::new("a"))]);
    /// assert_eq!(CatSource::new(vec![Box::new(inner)]).nesting(), 3);
    /// ```
    fn nesting(&self) -> usize {
        1
    }

    /// Whether the bytes are binary MIME (a part with `Content-Transfer-Encoding: binary`, RFC
    /// 3030 §3): lines of any length, bare CR and LF, NUL. Such a message is sent unchanged with
    /// `BDAT` and `BODY=BINARYMIME`, never over DATA, whose CRLF normalisation would change it.
    /// False, the default, for a source that does not know; a message built with a binary part
    /// ([`crate::MessageEncoder`]) knows.
    ///
    /// ```
    /// use mailpump::{MessageEncoder, MessageOptions, Part, Source, TransferEncoding};
    ///
    /// let part = Part::new().body(b"\x00\r\x01".to_vec()).encoding(TransferEncoding::Binary);
    /// assert!(MessageEncoder::new(part, MessageOptions::default())?.needs_binarymime());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn needs_binarymime(&self) -> bool {
        false
    }
}

/// The most levels of sources, filters and message parts a binding accepts (see
/// [`Source::nesting`]): Postfix's `mime_nesting_limit` default, far beyond any real message, and
/// shallow enough to be walked on a 2 MiB thread stack.
pub const MAX_NESTING: usize = 100;

impl<S: Source + ?Sized> Source for Box<S> {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        (**self).pull(out)
    }
    fn remaining_hint(&self) -> Option<u64> {
        (**self).remaining_hint()
    }
    fn replay(&self) -> Option<Box<dyn Source>> {
        (**self).replay()
    }
    fn nesting(&self) -> usize {
        (**self).nesting()
    }
    fn needs_binarymime(&self) -> bool {
        (**self).needs_binarymime()
    }
}

/// A borrowed source, so that a wrapper that takes a `Box<dyn Source + 'a>` can take one a caller
/// lends.
impl<S: Source + ?Sized> Source for &mut S {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        (**self).pull(out)
    }
    fn remaining_hint(&self) -> Option<u64> {
        (**self).remaining_hint()
    }
    fn replay(&self) -> Option<Box<dyn Source>> {
        (**self).replay()
    }
    fn nesting(&self) -> usize {
        (**self).nesting()
    }
    fn needs_binarymime(&self) -> bool {
        (**self).needs_binarymime()
    }
}

/// A source over bytes held in memory, handed out in slices of at most `chunk` bytes.
///
/// ```
/// use mailpump::Source;
/// use mailpump::source::BytesSource;
///
/// let mut source = BytesSource::with_chunk(b"abcde".to_vec(), 2);
/// assert_eq!(source.remaining_hint(), Some(5));
/// let mut chunk = Vec::new();
/// assert!(source.pull(&mut chunk)?);
/// assert_eq!(chunk, b"ab");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
pub struct BytesSource {
    /// Shared, so that a replay costs no copy.
    data: Arc<[u8]>,
    pos: usize,
    chunk: usize,
}

impl BytesSource {
    /// A source over `data`, in chunks of [`DEFAULT_CHUNK`].
    ///
    /// ```
    /// use mailpump::source::{BytesSource, collect};
    ///
    /// assert_eq!(collect(&mut BytesSource::new("hi"))?, b"hi");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        Self::with_chunk(data, DEFAULT_CHUNK)
    }

    /// A source over `data`, in chunks of at most `chunk` bytes (at least 1).
    ///
    /// ```
    /// use mailpump::Source;
    /// use mailpump::source::BytesSource;
    ///
    /// let mut source = BytesSource::with_chunk(vec![0u8; 10], 4);
    /// let mut out = Vec::new();
    /// source.pull(&mut out)?;
    /// assert_eq!(out.len(), 4);
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn with_chunk(data: impl Into<Vec<u8>>, chunk: usize) -> Self {
        Self {
            data: data.into().into(),
            pos: 0,
            chunk: chunk.max(1),
        }
    }
}

impl Source for BytesSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.pos >= self.data.len() {
            return Ok(false);
        }
        let end = self.data.len().min(self.pos + self.chunk);
        out.extend_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(true)
    }

    fn remaining_hint(&self) -> Option<u64> {
        Some((self.data.len() - self.pos) as u64)
    }

    fn replay(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(Self {
            data: Arc::clone(&self.data),
            pos: 0,
            chunk: self.chunk,
        }))
    }
}

/// A source that reads from any [`Read`] (a file, a pipe) `chunk` bytes at a time.
///
/// ```no_run
/// use mailpump::source::{ReaderSource, collect};
///
/// // A file, read lazily in 64 KiB chunks (`open` fails at once if the file is missing).
/// let mut file = ReaderSource::open("/var/log/report.csv")?;
/// // Any `Read`, in chunks of the size asked for.
/// let mut stdin = ReaderSource::new(std::io::stdin()).chunk(4096);
/// # let _ = (collect(&mut file), collect(&mut stdin));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReaderSource<R> {
    reader: Option<R>,
    chunk: usize,
    remaining: Option<u64>,
    /// The regular file it was opened from, so that it can be read again (see [`Source::replay`]).
    path: Option<Arc<Path>>,
}

impl<R: Read + Send> ReaderSource<R> {
    /// A source over `reader`, read [`DEFAULT_CHUNK`] bytes at a time.
    ///
    /// ```
    /// use mailpump::source::{ReaderSource, collect};
    ///
    /// let mut source = ReaderSource::new(&b"any io::Read"[..]);
    /// assert_eq!(collect(&mut source)?, b"any io::Read");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    pub fn new(reader: R) -> Self {
        Self {
            reader: Some(reader),
            chunk: DEFAULT_CHUNK,
            remaining: None,
            path: None,
        }
    }

    /// Sets how many bytes each pull reads at most (at least 1).
    ///
    /// ```
    /// use mailpump::Source;
    /// use mailpump::source::ReaderSource;
    ///
    /// let mut source = ReaderSource::new(&b"abcdef"[..]).chunk(2);
    /// let mut out = Vec::new();
    /// source.pull(&mut out)?;
    /// assert_eq!(out, b"ab");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }
}

impl ReaderSource<File> {
    /// Opens the file at `path`; it is read lazily, while the source is pulled, and closed at its end.
    ///
    /// A regular file can be read again: [`Source::replay`] gives a source that opens the path
    /// anew when first pulled (an error opening it then is that pull's error), so the bytes are the
    /// same as long as the file is not changed in between. A pipe or a device cannot.
    ///
    /// ```
    /// use mailpump::Source;
    /// use mailpump::source::{ReaderSource, collect};
    ///
    /// let path = std::env::temp_dir().join("mailpump-doc-open.txt");
    /// std::fs::write(&path, "hello")?;
    /// let mut source = ReaderSource::open(&path)?;
    /// assert_eq!(source.remaining_hint(), Some(5));
    /// assert_eq!(collect(&mut source)?, b"hello");
    /// assert!(ReaderSource::open("/no/such/file").is_err());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let file = File::open(path)?;
        let remaining = file
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len());
        Ok(Self {
            reader: Some(file),
            chunk: DEFAULT_CHUNK,
            remaining,
            path: remaining.map(|_| Arc::from(path)),
        })
    }
}

/// A regular file read again from its path: opened when first pulled ([`ReaderSource::replay`]).
struct Reopened {
    path: Arc<Path>,
    chunk: usize,
    state: Reopen,
}

enum Reopen {
    NotYet,
    Open(ReaderSource<File>),
    /// Ended, or failed to open.
    Ended,
}

impl Source for Reopened {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if matches!(self.state, Reopen::NotYet) {
            self.state = match ReaderSource::open(&self.path) {
                Ok(file) => Reopen::Open(file.chunk(self.chunk)),
                Err(e) => {
                    self.state = Reopen::Ended;
                    // The same kind, so that a binding can still tell a missing file.
                    let why = format!("cannot open {} again: {e}", self.path.display());
                    return Err(Box::new(io::Error::new(e.kind(), why)));
                }
            };
        }
        match &mut self.state {
            Reopen::Open(file) => {
                let more = file.pull(out)?;
                if !more {
                    self.state = Reopen::Ended;
                }
                Ok(more)
            }
            Reopen::NotYet | Reopen::Ended => Ok(false),
        }
    }

    fn remaining_hint(&self) -> Option<u64> {
        match &self.state {
            Reopen::NotYet => std::fs::metadata(&self.path)
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len()),
            Reopen::Open(file) => file.remaining_hint(),
            Reopen::Ended => Some(0),
        }
    }

    fn replay(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(Self {
            path: Arc::clone(&self.path),
            chunk: self.chunk,
            state: Reopen::NotYet,
        }))
    }
}

impl<R: Read + Send> Source for ReaderSource<R> {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(false);
        };
        let start = out.len();
        out.resize(start + self.chunk, 0);
        let n = loop {
            match reader.read(&mut out[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.truncate(start);
                    self.reader = None;
                    return Err(e.into());
                }
            }
        };
        out.truncate(start + n);
        if n == 0 {
            // Close the file as soon as it is exhausted, as LTN12's source.file does.
            self.reader = None;
            return Ok(false);
        }
        if let Some(r) = self.remaining.as_mut() {
            *r = r.saturating_sub(n as u64);
        }
        Ok(true)
    }

    fn remaining_hint(&self) -> Option<u64> {
        if self.reader.is_none() {
            Some(0)
        } else {
            self.remaining
        }
    }

    /// A file opened by [`ReaderSource::open`] is opened again from its path; any other reader
    /// cannot be read again.
    fn replay(&self) -> Option<Box<dyn Source>> {
        let path = self.path.as_ref()?;
        Some(Box::new(Reopened {
            path: Arc::clone(path),
            chunk: self.chunk,
            state: Reopen::NotYet,
        }))
    }
}

/// A source that yields nothing.
///
/// ```
/// use mailpump::source::{EmptySource, collect};
///
/// assert!(collect(&mut EmptySource)?.is_empty());
/// # Ok::<(), mailpump::BoxError>(())
/// ```
pub struct EmptySource;

impl Source for EmptySource {
    fn pull(&mut self, _out: &mut Vec<u8>) -> Result<bool, BoxError> {
        Ok(false)
    }
    fn remaining_hint(&self) -> Option<u64> {
        Some(0)
    }
    fn replay(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(Self))
    }
}

/// Several sources, one after the other (LTN12's `source.cat`).
///
/// ```
/// use mailpump::source::{BytesSource, CatSource, collect};
///
/// let mut source = CatSource::new(vec![
///     Box::new(BytesSource::new(b"head ".to_vec())),
///     Box::new(BytesSource::new(b"tail".to_vec())),
/// ]);
/// assert_eq!(collect(&mut source)?, b"head tail");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
pub struct CatSource {
    /// Every source, the exhausted ones too, so that the whole can be read again.
    sources: Vec<Box<dyn Source>>,
    /// The one being pulled.
    current: usize,
}

impl CatSource {
    /// The concatenation of `sources`.
    ///
    /// ```
    /// use mailpump::Source;
    /// use mailpump::source::{BytesSource, CatSource};
    ///
    /// let cat = CatSource::new(vec![Box::new(BytesSource::new("ab")), Box::new(BytesSource::new("cde"))]);
    /// assert_eq!(cat.remaining_hint(), Some(5));
    /// ```
    #[must_use]
    pub fn new(sources: Vec<Box<dyn Source>>) -> Self {
        Self {
            sources,
            current: 0,
        }
    }
}

impl Source for CatSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        while let Some(source) = self.sources.get_mut(self.current) {
            if source.pull(out)? {
                return Ok(true);
            }
            self.current += 1;
        }
        Ok(false)
    }

    fn remaining_hint(&self) -> Option<u64> {
        self.sources[self.current.min(self.sources.len())..]
            .iter()
            .map(Source::remaining_hint)
            .sum()
    }

    /// Every source read again, if each can be.
    fn replay(&self) -> Option<Box<dyn Source>> {
        let sources = self
            .sources
            .iter()
            .map(|s| Source::replay(s))
            .collect::<Option<Vec<_>>>()?;
        Some(Box::new(Self::new(sources)))
    }

    fn nesting(&self) -> usize {
        1 + self.sources.iter().map(Source::nesting).max().unwrap_or(0)
    }
}

/// A source whose chunks pass through a filter (LTN12's `source.chain`).
///
/// ```
/// use mailpump::mime::base64::Base64LineEncoder;
/// use mailpump::source::{BytesSource, FilteredSource, collect};
///
/// let raw = Box::new(BytesSource::new(b"hello".to_vec()));
/// let mut encoded = FilteredSource::new(raw, Box::new(Base64LineEncoder::new(76)));
/// assert_eq!(collect(&mut encoded)?, b"aGVsbG8=\r\n");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
pub struct FilteredSource {
    inner: Box<dyn Source>,
    filter: Chain,
    input: Vec<u8>,
    finished: bool,
}

impl FilteredSource {
    /// `inner`'s data passed through `filter`.
    ///
    /// ```
    /// use mailpump::mime::eol::Normalize;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("a\nb")), Box::new(Normalize::crlf()));
    /// assert_eq!(collect(&mut source)?, b"a\r\nb");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new(inner: Box<dyn Source>, filter: Box<dyn Filter>) -> Self {
        Self {
            inner,
            filter: Chain::new(vec![filter]),
            input: Vec::new(),
            finished: false,
        }
    }
}

impl Source for FilteredSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.finished {
            return Ok(false);
        }
        let start = out.len();
        // Pull until the filter lets something through, so a caller never spins on empty chunks.
        while out.len() == start {
            self.input.clear();
            if self.inner.pull(&mut self.input)? {
                self.filter.update(&self.input, out)?;
            } else {
                self.finished = true;
                self.filter.finish(out)?;
                return Ok(out.len() > start);
            }
        }
        Ok(true)
    }

    /// The inner source read again through fresh filters, if both can be had.
    fn replay(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(Self {
            inner: self.inner.replay()?,
            filter: self.filter.fresh_chain()?,
            input: Vec::new(),
            finished: false,
        }))
    }

    fn nesting(&self) -> usize {
        1 + self.inner.nesting().max(self.filter.nesting())
    }
}

/// Pulls `source` to the end, collecting everything (for tests and small data only).
///
/// ```
/// use mailpump::source::{BytesSource, collect};
///
/// assert_eq!(collect(&mut BytesSource::with_chunk(b"abc".to_vec(), 1))?, b"abc");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
pub fn collect(source: &mut dyn Source) -> Result<Vec<u8>, BoxError> {
    let mut out = Vec::new();
    while source.pull(&mut out)? {}
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_source_hands_out_bounded_chunks() {
        let mut src = BytesSource::with_chunk(b"abcdefg".to_vec(), 3);
        let mut chunks = Vec::new();
        loop {
            let mut c = Vec::new();
            if !src.pull(&mut c).unwrap() {
                break;
            }
            chunks.push(c);
        }
        assert_eq!(chunks, [b"abc".to_vec(), b"def".to_vec(), b"g".to_vec()]);
        assert!(!src.pull(&mut Vec::new()).unwrap(), "stays exhausted");
    }

    #[test]
    fn cat_joins_sources_in_order() {
        let mut src = CatSource::new(vec![
            Box::new(BytesSource::new(b"ab".to_vec())),
            Box::new(EmptySource),
            Box::new(ReaderSource::new(&b"cd"[..]).chunk(1)),
        ]);
        assert_eq!(collect(&mut src).unwrap(), b"abcd");
    }
}
