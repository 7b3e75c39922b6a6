//! The streaming message encoder: a tree of parts turned into a pull-based stream of bytes.
//!
//! [`MessageEncoder::new`] checks and prepares the whole tree before a byte is produced: every
//! header is validated and rendered, every boundary chosen, every encoding set up. What is left
//! for encoding time is copying prepared bytes and pulling body sources through their filters,
//! chunk by chunk, so memory stays constant whatever the size of the bodies.
//!
//! The layout follows `LuaSocket`'s `smtp.message` (docs/luasocket.md §1) where that parses the
//! same, with the differences listed on [`MessageEncoder`].

use std::io;
use std::str::FromStr;

use crate::BoxError;
use crate::error::{Error, MessageError};
use crate::mime::layout::{self, Segment};
use crate::mime::{boundary, date};
use crate::source::{DEFAULT_CHUNK, MAX_NESTING, Source};

pub use crate::mime::part::{Body, HeaderValue, Multipart, Part};

/// A Content-Transfer-Encoding (RFC 2045 §6.1) that the encoder applies to a body on the fly.
///
/// ```
/// use mailpump::TransferEncoding;
///
/// let encoding: TransferEncoding = "Quoted-Printable".parse()?;
/// assert_eq!(encoding, TransferEncoding::QuotedPrintable);
/// assert!("uuencode".parse::<TransferEncoding>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferEncoding {
    /// `base64`, in 76-column CRLF lines (RFC 2045 §6.8).
    Base64,
    /// `quoted-printable` (RFC 2045 §6.7): text mode for text bodies, binary mode for bytes.
    QuotedPrintable,
    /// `7bit`: the body is written as given and declared to be 7-bit lines.
    SevenBit,
    /// `8bit`: the body is written as given and declared to be 8-bit lines.
    EightBit,
    /// `binary`: the body is written as given, without any line structure.
    Binary,
}

impl TransferEncoding {
    /// The header value, as RFC 2045 §6.1 spells it.
    ///
    /// ```
    /// use mailpump::TransferEncoding;
    ///
    /// assert_eq!(TransferEncoding::SevenBit.as_str(), "7bit");
    /// assert_eq!(TransferEncoding::Base64.to_string(), "base64");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Base64 => "base64",
            Self::QuotedPrintable => "quoted-printable",
            Self::SevenBit => "7bit",
            Self::EightBit => "8bit",
            Self::Binary => "binary",
        }
    }

    /// Whether the body is transformed (as opposed to only being labelled).
    pub(crate) fn transforms(self) -> bool {
        matches!(self, Self::Base64 | Self::QuotedPrintable)
    }
}

impl std::fmt::Display for TransferEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown transfer encoding name.
///
/// ```
/// use mailpump::TransferEncoding;
///
/// let error = "x-uue".parse::<TransferEncoding>().unwrap_err();
/// assert_eq!(error.0, "x-uue");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEncoding(pub String);

impl std::fmt::Display for UnknownEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown transfer encoding {:?} (expected base64, quoted-printable, 7bit, 8bit or binary)",
            self.0
        )
    }
}

impl std::error::Error for UnknownEncoding {}

impl FromStr for TransferEncoding {
    type Err = UnknownEncoding;

    /// Parses an RFC 2045 name, case-insensitively, ignoring surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = [
            Self::Base64,
            Self::QuotedPrintable,
            Self::SevenBit,
            Self::EightBit,
            Self::Binary,
        ];
        all.into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownEncoding(s.to_owned()))
    }
}

/// Options of [`MessageEncoder`].
///
/// ```
/// use mailpump::{MessageEncoder, MessageOptions, Part};
///
/// let options = MessageOptions {
///     chunk_size: 16 * 1024,
///     zone: Some("+0100".into()),
///     ..MessageOptions::default()
/// };
/// let mut encoder = MessageEncoder::new(Part::text("hi\r\n", "plain"), options)?;
/// assert!(encoder.next_chunk()?.is_some_and(|chunk| chunk.len() <= 16 * 1024));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageOptions {
    /// The largest chunk produced; every chunk but the last has exactly this size.
    pub chunk_size: usize,
    /// The zone of the default `Date` header, `+hhmm` or `-hhmm` (`LuaSocket`'s `ZONE`); the time is
    /// converted to it. `None`: the machine's local zone.
    pub zone: Option<String>,
    /// The time of the default `Date` header, in seconds since the Unix epoch; `None`: now.
    pub timestamp: Option<i64>,
    /// Makes boundaries and the default `Message-ID` reproducible from this seed. For tests and
    /// golden files only: the values are then predictable, not random.
    pub seed: Option<u64>,
}

impl Default for MessageOptions {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK,
            zone: None,
            timestamp: None,
            seed: None,
        }
    }
}

/// Where the encoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Done,
    Failed,
}

/// A message being encoded: [`next_chunk`](Self::next_chunk), [`std::io::Read`] and [`Source`].
///
/// Differences from `LuaSocket`'s `smtp.message` (docs/luasocket.md §6), each so that Python's
/// `email` parser returns exactly the preamble, epilogue and part bodies given:
/// - a preamble is followed only by the CRLF that belongs to the first delimiter (RFC 2046 §5.1.1),
///   not by an extra empty line; without a preamble the first delimiter follows the header block;
/// - the close delimiter is followed by CRLF and the epilogue as given, not by an empty line;
/// - a part without a body is an empty part, rather than the end of the whole message;
/// - header order is the caller's (`LuaSocket`'s is hash order) and `MIME-Version` supplied by the
///   caller is kept.
///
/// ```
/// use std::io::Read;
/// use mailpump::mime::message::{MessageEncoder, MessageOptions, Multipart, Part};
///
/// let message = Part::new()
///     .header("From", "Zoë <zoe@example.com>")
///     .header("To", vec!["bob@example.org".to_owned()])
///     .header("Subject", "Grüße")
///     .body(Multipart::new(vec![
///         Part::text("Hello, Bob!\r\n", "plain"),
///         Part::attachment(b"%PDF-1.7".to_vec(), Some("report.pdf"), None)?,
///     ]));
/// let mut encoder = MessageEncoder::new(message, MessageOptions::default())?;
/// let mut text = String::new();
/// encoder.read_to_string(&mut text)?;
/// assert!(text.starts_with("From: =?utf-8?Q?Zo=C3=AB?= <zoe@example.com>\r\n"));
/// assert!(text.contains("Content-Disposition: attachment; filename=\"report.pdf\"\r\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MessageEncoder {
    /// Every segment, those already written too, so that [`Source::replay`] can start again.
    segments: Vec<Segment>,
    /// The segment being written.
    current: usize,
    chunk_size: usize,
    /// Encoded bytes not yet handed out, from `pos` on. A body's filter may produce more than a
    /// chunk at once; the rest waits here, so that no chunk is larger than `chunk_size`.
    buf: Vec<u8>,
    pos: usize,
    /// Scratch for a filtered body's raw input, reused.
    input: Vec<u8>,
    state: State,
    /// A part is binary: see [`Source::needs_binarymime`].
    binary: bool,
}

impl std::fmt::Debug for MessageEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageEncoder")
            .field("segments", &self.segments.len())
            .field("chunk_size", &self.chunk_size)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl MessageEncoder {
    /// Validates `root` and prepares its encoding. Nothing is read from body sources yet.
    ///
    /// The tree is walked with an explicit stack, so any nesting depth works.
    ///
    /// ```
    /// use mailpump::{MessageEncoder, MessageOptions, Part};
    ///
    /// // A line break in a value is refused before any byte is produced: no header injection.
    /// let bad = Part::text("hi\r\n", "plain").header("Subject", "hi\r\nBcc: victim@example.com");
    /// let error = MessageEncoder::new(bad, MessageOptions::default()).unwrap_err();
    /// assert_eq!(error.header.as_deref(), Some("Subject"));
    /// ```
    pub fn new(root: Part, options: MessageOptions) -> Result<Self, MessageError> {
        let MessageOptions {
            chunk_size,
            zone,
            timestamp,
            seed,
        } = options;
        let zone = match zone.as_deref() {
            None => None,
            Some(text) => Some(date::Zone::parse(text).ok_or_else(|| {
                MessageError::in_header(
                    "message",
                    "Date",
                    format!("invalid zone {text:?}: expected +hhmm or -hhmm"),
                )
            })?),
        };
        let random = seed.map_or_else(boundary::Random::os, boundary::Random::seeded);
        let laid_out = layout::lay_out(root, &layout::TopLevel { zone, timestamp }, random)?;
        let encoder = Self {
            segments: laid_out.segments,
            binary: laid_out.binary,
            current: 0,
            chunk_size: chunk_size.max(1),
            buf: Vec::new(),
            pos: 0,
            input: Vec::new(),
            state: State::Running,
        };
        let levels = encoder.nesting();
        if levels > MAX_NESTING {
            return Err(MessageError::in_part(
                "message",
                format!(
                    "its body sources nest {levels} levels deep (messages in messages, chains in chains); at most {MAX_NESTING} are supported"
                ),
            ));
        }
        Ok(encoder)
    }

    /// The next chunk of the message, at most `chunk_size` bytes, or `None` at its end. After an
    /// error, every call fails.
    ///
    /// ```
    /// use mailpump::{MessageEncoder, MessageOptions, Part};
    ///
    /// let options = MessageOptions { chunk_size: 100, ..MessageOptions::default() };
    /// let mut encoder = MessageEncoder::new(Part::text("line\r\n".repeat(200), "plain"), options)?;
    /// let mut total = Vec::new();
    /// while let Some(chunk) = encoder.next_chunk()? {
    ///     assert!(chunk.len() <= 100);
    ///     total.extend_from_slice(chunk);
    /// }
    /// assert!(total.ends_with(b"line\r\nline\r\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, Error> {
        self.ensure(self.chunk_size)?;
        let n = (self.buf.len() - self.pos).min(self.chunk_size);
        if n == 0 {
            return Ok(None);
        }
        let start = self.pos;
        self.pos += n;
        Ok(Some(&self.buf[start..start + n]))
    }

    /// The message encoded again from its start, as a `MessageEncoder` (see [`Source::replay`]).
    ///
    /// ```
    /// use mailpump::{MessageEncoder, MessageOptions, Part};
    /// use mailpump::source::ReaderSource;
    ///
    /// let text = MessageEncoder::new(Part::text("Hi\r\n", "plain"), MessageOptions::default())?;
    /// assert!(text.again().is_some());
    /// let piped = Part::new().body(Box::new(ReaderSource::new(std::io::empty())) as Box<dyn mailpump::Source>);
    /// assert!(MessageEncoder::new(piped, MessageOptions::default())?.again().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn again(&self) -> Option<Self> {
        let segments = self
            .segments
            .iter()
            .map(Segment::replay)
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            segments,
            current: 0,
            chunk_size: self.chunk_size,
            buf: Vec::new(),
            pos: 0,
            input: Vec::new(),
            state: State::Running,
            binary: self.binary,
        })
    }

    /// Encodes until `want` bytes wait in `buf` or the message ends.
    fn ensure(&mut self, want: usize) -> Result<(), Error> {
        let waiting = self.buf.len() - self.pos;
        if waiting >= want {
            return Ok(());
        }
        // Move the few bytes left over to the front; the buffer is reused, never grown past
        // `chunk_size` plus one pull of a body.
        self.buf.drain(..self.pos);
        self.pos = 0;
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.fill(&mut buf, want - waiting);
        self.buf = buf;
        result
    }

    /// Appends at least `limit` bytes of the message to `out` (fewer at its end; more when a body
    /// hands out a larger piece).
    fn fill(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
        match self.state {
            State::Done => return Ok(()),
            State::Failed => {
                return Err(Error::Source(
                    "the message stopped at an earlier error and cannot go on".into(),
                ));
            }
            State::Running => {}
        }
        let start = out.len();
        let result = (|| -> Result<(), BoxError> {
            while out.len() - start < limit {
                let Some(segment) = self.segments.get_mut(self.current) else {
                    self.state = State::Done;
                    break;
                };
                let finished = match segment {
                    Segment::Bytes { data, pos } => {
                        let n = (data.len() - *pos).min(limit - (out.len() - start));
                        out.extend_from_slice(&data[*pos..*pos + n]);
                        *pos += n;
                        *pos == data.len()
                    }
                    Segment::Body {
                        source,
                        filter: None,
                    } => !source.pull(out)?,
                    Segment::Body {
                        source,
                        filter: Some(filter),
                    } => {
                        self.input.clear();
                        if source.pull(&mut self.input)? {
                            filter.update(&self.input, out)?;
                            false
                        } else {
                            filter.finish(out)?;
                            true
                        }
                    }
                };
                if finished {
                    self.current += 1;
                }
            }
            Ok(())
        })();
        result.map_err(|e| {
            // The segments stay: a replay may still read the message again from its start.
            self.state = State::Failed;
            Error::Source(e)
        })
    }
}

impl io::Read for MessageEncoder {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.ensure(self.chunk_size).map_err(io::Error::other)?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Source for MessageEncoder {
    /// Appends the next chunk (at most `chunk_size` bytes).
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        match self.next_chunk()? {
            Some(chunk) => {
                out.extend_from_slice(chunk);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The message encoded again from its start, byte for byte the same: the header blocks
    /// (boundaries, `Date`, `Message-ID`) as laid out, each body read again through a fresh
    /// encoder. Nothing encoded is kept, so this costs no memory per body byte. `None` when a
    /// body cannot be read again (a one-shot source, such as an iterator).
    ///
    /// ```
    /// use mailpump::source::collect;
    /// use mailpump::{MessageEncoder, MessageOptions, Part, Source};
    ///
    /// let mut first = MessageEncoder::new(Part::text("Hello\r\n", "plain"), MessageOptions::default())?;
    /// let mut again = first.replay().expect("a text body can be read again");
    /// assert_eq!(collect(&mut first)?, collect(&mut again)?); // the same Date and Message-ID
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    fn replay(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(self.again()?))
    }

    /// True when a part's transfer encoding is `binary` (given as the part's encoding or in its
    /// own Content-Transfer-Encoding header), or a body holds such a message.
    fn needs_binarymime(&self) -> bool {
        self.binary
    }

    fn nesting(&self) -> usize {
        1 + self
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Bytes { .. } => 0,
                Segment::Body { source, filter } => source
                    .nesting()
                    .max(filter.as_ref().map_or(0, |f| f.nesting())),
            })
            .max()
            .unwrap_or(0)
    }
}
