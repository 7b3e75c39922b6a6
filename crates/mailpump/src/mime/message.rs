//! The streaming message encoder: a tree of parts turned into a pull-based stream of bytes.
//!
//! [`MessageEncoder::new`] checks and prepares the whole tree before a byte is produced: every
//! header is validated and rendered, every boundary chosen, every encoding set up. What is left
//! for encoding time is copying prepared bytes and pulling body sources through their filters,
//! chunk by chunk, so memory stays constant whatever the size of the bodies.
//!
//! The layout follows `LuaSocket`'s `smtp.message` (LUASOCKET.md §1) where that parses the same, with
//! the differences listed on [`MessageEncoder`].

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::str::FromStr;

use crate::error::{Error, MessageError};
use crate::filter::{Chain, Filter};
use crate::mime::base64::Base64LineEncoder;
use crate::mime::eol::Normalize;
use crate::mime::headers::{self, Kind};
use crate::mime::qp::{QpEncoder, QpMode};
use crate::mime::wrap::QpWrap;
use crate::mime::{boundary, date};
use crate::source::{BytesSource, DEFAULT_CHUNK, Source};
use crate::{BoxError, VERSION};

pub use crate::mime::part::{Body, HeaderValue, Multipart, Part};

/// A Content-Transfer-Encoding (RFC 2045 §6.1) that the encoder applies to a body on the fly.
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
    fn transforms(self) -> bool {
        matches!(self, Self::Base64 | Self::QuotedPrintable)
    }
}

impl std::fmt::Display for TransferEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown transfer encoding name.
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
#[derive(Debug, Clone)]
pub struct MessageOptions {
    /// The size of the chunks produced, roughly (a body source's chunk may make one larger).
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

/// One piece of the output, prepared by [`MessageEncoder::new`].
enum Segment {
    /// Bytes ready to be copied: header blocks, delimiters, preambles, bodies written as given.
    Bytes { data: Vec<u8>, pos: usize },
    /// A body pulled chunk by chunk, through a filter when it is encoded.
    Body {
        source: Box<dyn Source>,
        filter: Option<Box<dyn Filter>>,
    },
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
/// Differences from `LuaSocket`'s `smtp.message` (LUASOCKET.md §1), each so that Python's `email`
/// parser returns exactly the preamble, epilogue and part bodies given:
/// - a preamble is followed only by the CRLF that belongs to the first delimiter (RFC 2046 §5.1.1),
///   not by an extra empty line; without a preamble the first delimiter follows the header block;
/// - the close delimiter is followed by CRLF and the epilogue as given, not by an empty line;
/// - a part without a body is an empty part, rather than the end of the whole message;
/// - header order is the caller's (`LuaSocket`'s is hash order) and `MIME-Version` supplied by the
///   caller is kept.
pub struct MessageEncoder {
    segments: VecDeque<Segment>,
    chunk_size: usize,
    /// The chunk handed out by `next_chunk`, reused.
    chunk: Vec<u8>,
    /// How much of `chunk` `Read::read` has already handed out.
    read_pos: usize,
    /// Scratch for a filtered body's raw input, reused.
    input: Vec<u8>,
    state: State,
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

/// A multipart being laid out: the parts still to write and how to close it.
struct Frame {
    parts: std::vec::IntoIter<Part>,
    /// How many parts have been started; the last one started is `parts[next_index - 1]`.
    next_index: usize,
    boundary: String,
    epilogue: Option<String>,
}

/// Builds the segments of a message while its tree is walked.
struct Builder {
    segments: VecDeque<Segment>,
    /// Bytes not yet made into a segment, so that small pieces are merged.
    pending: Vec<u8>,
    random: boundary::Random,
}

impl Builder {
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.segments.push_back(Segment::Bytes {
                data: std::mem::take(&mut self.pending),
                pos: 0,
            });
        }
    }

    /// Adds bytes written as given, without copying large ones.
    fn bytes(&mut self, data: Vec<u8>) {
        if data.len() <= 4096 {
            self.pending.extend_from_slice(&data);
        } else {
            self.flush();
            self.segments.push_back(Segment::Bytes { data, pos: 0 });
        }
    }

    fn body(&mut self, source: Box<dyn Source>, filter: Option<Box<dyn Filter>>) {
        self.flush();
        self.segments.push_back(Segment::Body { source, filter });
    }
}

/// The headers of one part after validation, in output order.
struct Rendered {
    block: String,
    content_type: Option<String>,
}

impl MessageEncoder {
    /// Validates `root` and prepares its encoding. Nothing is read from body sources yet.
    ///
    /// The tree is walked with an explicit stack, so any nesting depth works.
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
        let mut builder = Builder {
            segments: VecDeque::new(),
            pending: Vec::new(),
            random,
        };
        let mut stack: Vec<Frame> = Vec::new();
        let top = TopLevel { zone, timestamp };
        if let Some(frame) =
            lay_out_part(&mut builder, root, Some(&top)).map_err(|e| at_path(e, &stack))?
        {
            stack.push(frame);
        }
        while let Some(frame) = stack.last_mut() {
            if let Some(part) = frame.parts.next() {
                frame.next_index += 1;
                let _ = write!(Pending(&mut builder.pending), "--{}\r\n", frame.boundary);
                match lay_out_part(&mut builder, part, None).map_err(|e| at_path(e, &stack))? {
                    Some(child) => stack.push(child),
                    // The CRLF before the next delimiter belongs to it (RFC 2046 §5.1.1).
                    None => builder.pending.extend_from_slice(b"\r\n"),
                }
                continue;
            }
            let frame = stack.pop().expect("the loop saw a frame");
            let _ = write!(Pending(&mut builder.pending), "--{}--", frame.boundary);
            match frame.epilogue {
                Some(epilogue) => {
                    builder.pending.extend_from_slice(b"\r\n");
                    builder.bytes(epilogue.into_bytes());
                    if !stack.is_empty() {
                        builder.pending.extend_from_slice(b"\r\n");
                    }
                }
                // Nested: the CRLF before the parent's next delimiter; top level: end the last line.
                None => builder.pending.extend_from_slice(b"\r\n"),
            }
        }
        builder.flush();
        Ok(Self {
            segments: builder.segments,
            chunk_size: chunk_size.max(1),
            chunk: Vec::new(),
            read_pos: 0,
            input: Vec::new(),
            state: State::Running,
        })
    }

    /// The next chunk of the message, or `None` at its end. After an error, every call fails.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, Error> {
        if self.read_pos < self.chunk.len() && self.read_pos > 0 {
            // `Read::read` left part of the last chunk: hand out the rest first.
            self.chunk.drain(..self.read_pos);
            self.read_pos = 0;
            return Ok(Some(&self.chunk));
        }
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.clear();
        let result = self.fill(&mut chunk);
        self.chunk = chunk;
        self.read_pos = 0;
        result?;
        Ok(if self.chunk.is_empty() {
            None
        } else {
            Some(&self.chunk)
        })
    }

    /// Appends about `chunk_size` bytes of the message to `out`.
    fn fill(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
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
        let limit = self.chunk_size;
        let result = (|| -> Result<(), BoxError> {
            while out.len() - start < limit {
                let Some(segment) = self.segments.front_mut() else {
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
                    self.segments.pop_front();
                }
            }
            Ok(())
        })();
        result.map_err(|e| {
            self.state = State::Failed;
            self.segments.clear();
            Error::Source(e)
        })
    }
}

impl io::Read for MessageEncoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read_pos >= self.chunk.len() {
            self.chunk.clear();
            self.read_pos = 0;
            let mut chunk = std::mem::take(&mut self.chunk);
            let result = self.fill(&mut chunk);
            self.chunk = chunk;
            result.map_err(io::Error::other)?;
        }
        let n = buf.len().min(self.chunk.len() - self.read_pos);
        buf[..n].copy_from_slice(&self.chunk[self.read_pos..self.read_pos + n]);
        self.read_pos += n;
        Ok(n)
    }
}

impl Source for MessageEncoder {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.read_pos < self.chunk.len() {
            out.extend_from_slice(&self.chunk[self.read_pos..]);
            self.read_pos = self.chunk.len();
            return Ok(true);
        }
        let start = out.len();
        self.fill(out)?;
        Ok(out.len() > start)
    }
}

/// `fmt::Write` into a byte buffer.
struct Pending<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Pending<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The placeholder part path of errors made while the path is not at hand.
const HERE: &str = "";

/// Puts the path of the part being laid out into `error`: `message`, then `.parts[i]` per level.
/// Built only on error, so deep trees cost no path strings.
fn at_path(mut error: MessageError, stack: &[Frame]) -> MessageError {
    let mut path = "message".to_owned();
    for frame in stack {
        let _ = write!(path, ".parts[{}]", frame.next_index - 1);
    }
    error.part = path;
    error
}

/// What only the top-level part gets.
struct TopLevel {
    zone: Option<date::Zone>,
    timestamp: Option<i64>,
}

/// The Content-Transfer-Encoding a text body gets when the caller chose none: `7bit` if it is
/// ASCII in CRLF lines of at most 998 octets (RFC 5322 §2.1.1, RFC 2045 §2.7), else quoted-printable.
fn text_encoding(text: &str) -> TransferEncoding {
    let bytes = text.as_bytes();
    if !text.is_ascii() || bytes.contains(&0) {
        return TransferEncoding::QuotedPrintable;
    }
    let mut line_start = 0;
    for i in memchr::memchr2_iter(b'\r', b'\n', bytes) {
        let crlf = bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n');
        let lf_of_crlf = bytes[i] == b'\n' && i > 0 && bytes[i - 1] == b'\r';
        if !crlf && !lf_of_crlf {
            return TransferEncoding::QuotedPrintable;
        }
        if crlf {
            if i - line_start > headers::MAX_LINE {
                return TransferEncoding::QuotedPrintable;
            }
            line_start = i + 2;
        }
    }
    if bytes.len() - line_start > headers::MAX_LINE {
        return TransferEncoding::QuotedPrintable;
    }
    TransferEncoding::SevenBit
}

/// The filter that applies `encoding` to a body; `text` says whether it is text (QP text mode,
/// after line ends are made CRLF) or bytes (QP binary mode, so every byte round-trips).
fn encoder_for(encoding: TransferEncoding, text: bool) -> Option<Box<dyn Filter>> {
    match encoding {
        TransferEncoding::Base64 => Some(Box::new(Base64LineEncoder::new(76))),
        TransferEncoding::QuotedPrintable if text => Some(Box::new(Chain::new(vec![
            Box::new(Normalize::crlf()),
            Box::new(QpEncoder::new(QpMode::Text)),
            Box::new(QpWrap::new(76)),
        ]))),
        TransferEncoding::QuotedPrintable => Some(Box::new(Chain::new(vec![
            Box::new(QpEncoder::new(QpMode::Binary)),
            Box::new(QpWrap::new(76)),
        ]))),
        TransferEncoding::SevenBit | TransferEncoding::EightBit | TransferEncoding::Binary => None,
    }
}

/// Validates and writes one part's header block and body (or, for a multipart, its header block and
/// preamble, returning the frame that lays out its parts).
///
/// Errors name no part (`HERE`); the caller, which knows the path, fills it in.
fn lay_out_part(
    builder: &mut Builder,
    mut part: Part,
    top: Option<&TopLevel>,
) -> Result<Option<Frame>, MessageError> {
    let path = HERE;
    let body = std::mem::take(&mut part.body);
    let is_multipart = matches!(body, Body::Multipart(_));
    // The encoding: the part's own, else one the caller wrote as a header, else the text default.
    let declared = declared_encoding(&part, path)?;
    if let (Some(own), Some((name, Ok(header)))) = (part.encoding, &declared) {
        if own != *header {
            return Err(MessageError::in_header(
                path,
                name.clone(),
                format!(
                    "the part's encoding is {own}, but this header says {header}; set one or make them agree"
                ),
            ));
        }
    }
    let encoding = match (part.encoding, &declared) {
        (Some(own), _) => Some(own),
        (None, Some(_)) => None,
        (None, None) => match &body {
            Body::Text(text) => Some(text_encoding(text)),
            _ => None,
        },
    };
    if is_multipart {
        let opaque = encoding.is_some_and(TransferEncoding::transforms)
            || matches!(&declared, Some((_, Ok(e))) if e.transforms());
        if opaque {
            return Err(MessageError::in_part(
                path,
                "a multipart body cannot be base64 or quoted-printable encoded (RFC 2045 §6.4); \
                 encode its parts instead",
            ));
        }
    }
    if let (Some(TransferEncoding::SevenBit), Body::Text(text)) = (encoding, &body) {
        if !text.is_ascii() {
            return Err(MessageError::in_part(
                path,
                "the body is not ASCII, so it cannot be declared 7bit",
            ));
        }
    }
    let write_cte = encoding.filter(|_| declared.is_none());
    let rendered = render_headers(builder, &part, path, top, &body, write_cte)?;
    builder.pending.extend_from_slice(rendered.block.as_bytes());
    builder.pending.extend_from_slice(b"\r\n");
    match body {
        Body::None => Ok(None),
        Body::Text(text) => {
            match encoding.and_then(|e| encoder_for(e, true)) {
                Some(filter) => {
                    builder.body(Box::new(BytesSource::new(text.into_bytes())), Some(filter))
                }
                None => builder.bytes(text.into_bytes()),
            }
            Ok(None)
        }
        Body::Bytes(bytes) => {
            match encoding.and_then(|e| encoder_for(e, false)) {
                Some(filter) => builder.body(Box::new(BytesSource::new(bytes)), Some(filter)),
                None => builder.bytes(bytes),
            }
            Ok(None)
        }
        Body::Source(source) => {
            builder.body(source, encoding.and_then(|e| encoder_for(e, false)));
            Ok(None)
        }
        Body::Multipart(mut multipart) => {
            let content_type = rendered.content_type.unwrap_or_default();
            let boundary = boundary::find(&content_type).unwrap_or_default();
            let preamble = multipart.preamble.take();
            let epilogue = multipart.epilogue.take();
            for (what, text) in [("preamble", &preamble), ("epilogue", &epilogue)] {
                if text
                    .as_deref()
                    .is_some_and(|t| boundary::occurs_in(t.as_bytes(), &boundary))
                {
                    return Err(MessageError::in_part(
                        path,
                        format!(
                            "the {what} contains the boundary {boundary:?}; choose another boundary"
                        ),
                    ));
                }
            }
            if let Some(preamble) = preamble {
                builder.bytes(preamble.into_bytes());
                builder.pending.extend_from_slice(b"\r\n");
            }
            let parts = std::mem::take(&mut multipart.parts);
            Ok(Some(Frame {
                parts: parts.into_iter(),
                next_index: 0,
                boundary,
                epilogue,
            }))
        }
    }
}

/// A Content-Transfer-Encoding header the caller wrote: its name as spelled, and its value.
type Declared = (String, Result<TransferEncoding, UnknownEncoding>);

/// The caller's Content-Transfer-Encoding header, if any: its name and parsed value.
fn declared_encoding(part: &Part, path: &str) -> Result<Option<Declared>, MessageError> {
    let Some((name, value)) = part
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-transfer-encoding"))
    else {
        return Ok(None);
    };
    let text = value
        .as_text()
        .map_err(|reason| MessageError::in_header(path, name.clone(), reason))?;
    Ok(Some((name.clone(), text.parse())))
}

/// Validates a part's headers and renders its header block, defaults included.
fn render_headers(
    builder: &mut Builder,
    part: &Part,
    path: &str,
    top: Option<&TopLevel>,
    body: &Body,
    cte: Option<TransferEncoding>,
) -> Result<Rendered, MessageError> {
    let mut block = String::new();
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut content_type = None;
    let is_multipart = matches!(body, Body::Multipart(_));
    for (name, value) in &part.headers {
        let err = |reason: String| MessageError::in_header(path, name.clone(), reason);
        headers::check_name(name).map_err(err)?;
        let lower = name.to_ascii_lowercase();
        if let Some((_, first)) = seen.iter().find(|(l, _)| *l == lower) {
            if *first != name.as_str() {
                return Err(err(format!(
                    "header {first:?} is given again as {name:?}; names are case-insensitive, give it once"
                )));
            }
            if is_single(&lower) {
                return Err(err(format!(
                    "header {name:?} may appear only once (RFC 5322 §3.6)"
                )));
            }
        }
        seen.push((lower.clone(), name.as_str()));
        let canonical = headers::canonical_name(&lower);
        if lower == "bcc" || lower == "resent-bcc" {
            if value.is_empty() {
                continue;
            }
            return Err(err(
                "a Bcc header would show the blind-copy addresses to every recipient; put those addresses \
                 in the envelope (rcpt) only and leave Bcc out of the message"
                    .into(),
            ));
        }
        if lower == "content-type" {
            let mut text = value.as_text().map_err(err)?.into_owned();
            let media = boundary::media_type(&text);
            if is_multipart {
                if !media.starts_with("multipart/") {
                    return Err(err(format!(
                        "the body is a multipart, but the content type is {media:?}"
                    )));
                }
                match boundary::find(&text) {
                    Some(given) if !boundary::is_valid(&given) => {
                        return Err(err(format!(
                            "boundary {given:?} is not valid: 1 to 70 letters, digits or '()+_,-./:=? \
                             (RFC 2046 §5.1.1)"
                        )));
                    }
                    Some(_) => {}
                    None => {
                        let fresh = boundary::generate(&mut builder.random)
                            .map_err(|e| err(e.to_string()))?;
                        let _ = write!(text, "; boundary=\"{fresh}\"");
                    }
                }
            }
            headers::check_text(&text).map_err(err)?;
            headers::write_structured(&mut block, &canonical, &text).map_err(err)?;
            content_type = Some(text);
            continue;
        }
        write_value(&mut block, &lower, &canonical, value).map_err(err)?;
    }
    let has = |name: &str| seen.iter().any(|(l, _)| l == name);
    let missing = |block: &mut String, lower: &str, value: &str| {
        if !has(lower) {
            let _ = write!(block, "{}: {value}\r\n", headers::canonical_name(lower));
        }
    };
    if let Some(top) = top {
        if !has("date") {
            let when = top.timestamp.unwrap_or_else(date::now);
            missing(&mut block, "date", &date::format(when, top.zone));
        }
        if !has("message-id") {
            let domain = part
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("from"))
                .and_then(|(_, v)| v.first_domain())
                .unwrap_or_else(|| "localhost".to_owned());
            // 128 random bits make the identifier unique (RFC 5322 §3.6.4).
            let id = builder
                .random
                .hex(16)
                .map_err(|e| MessageError::in_part(path, e.to_string()))?;
            missing(&mut block, "message-id", &format!("<{id}@{domain}>"));
        }
        missing(&mut block, "mime-version", "1.0");
        missing(&mut block, "x-mailer", &format!("mailpump {VERSION}"));
    }
    if content_type.is_none() {
        let value = if is_multipart {
            let fresh = boundary::generate(&mut builder.random)
                .map_err(|e| MessageError::in_part(path, e.to_string()))?;
            format!("multipart/mixed; boundary=\"{fresh}\"")
        } else {
            "text/plain; charset=\"utf-8\"".to_owned()
        };
        missing(&mut block, "content-type", &value);
        content_type = Some(value);
    }
    if let Some(cte) = cte {
        missing(&mut block, "content-transfer-encoding", cte.as_str());
    }
    Ok(Rendered {
        block,
        content_type,
    })
}

/// Headers RFC 5322 §3.6 (and RFC 2045) allow at most once.
fn is_single(lower: &str) -> bool {
    matches!(
        lower,
        "date"
            | "from"
            | "sender"
            | "reply-to"
            | "to"
            | "cc"
            | "message-id"
            | "in-reply-to"
            | "references"
            | "subject"
            | "mime-version"
            | "content-type"
            | "content-transfer-encoding"
            | "content-disposition"
            | "content-id"
    )
}

/// Validates and writes one caller header.
fn write_value(
    block: &mut String,
    lower: &str,
    canonical: &str,
    value: &HeaderValue,
) -> Result<(), String> {
    match value {
        HeaderValue::Raw(bytes) => {
            let text = headers::check_raw(bytes)?;
            headers::write_raw(block, canonical, text)
        }
        HeaderValue::Text(text) => {
            headers::check_text(text)?;
            match headers::kind(lower) {
                Kind::Addresses => {
                    headers::write_addresses(block, canonical, headers::split_addresses(text))
                }
                Kind::Structured => headers::write_structured(block, canonical, text),
                Kind::Unstructured => {
                    headers::write_unstructured(block, canonical, text);
                    Ok(())
                }
            }
        }
        HeaderValue::Addresses(items) => {
            for item in items {
                headers::check_text(item)?;
            }
            match headers::kind(lower) {
                Kind::Addresses => {
                    headers::write_addresses(block, canonical, items.iter().map(String::as_str))
                }
                Kind::Structured => headers::write_structured(block, canonical, &items.join(", ")),
                Kind::Unstructured => {
                    headers::write_unstructured(block, canonical, &items.join(", "));
                    Ok(())
                }
            }
        }
    }
}
