//! Laying out a message: the tree of parts walked once, validated, and turned into segments.
//!
//! Every header is validated and rendered here, every boundary chosen and every encoding set up,
//! so that [`MessageEncoder`](crate::mime::message::MessageEncoder) has only prepared bytes to
//! copy and body sources to pull.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::VERSION;
use crate::error::MessageError;
use crate::filter::{Chain, Filter};
use crate::mime::base64::Base64LineEncoder;
use crate::mime::eol::Normalize;
use crate::mime::headers::{self, Kind};
use crate::mime::message::{TransferEncoding, UnknownEncoding};
use crate::mime::part::{Body, HeaderValue, Part};
use crate::mime::qp::{QpEncoder, QpMode};
use crate::mime::wrap::QpWrap;
use crate::mime::{address_header, boundary, date};
use crate::source::{BytesSource, Source};

/// One piece of the output.
pub(crate) enum Segment {
    /// Bytes ready to be copied: header blocks, delimiters, preambles, bodies written as given.
    /// Shared with every replay of the message, which copies none of them.
    Bytes { data: Arc<Vec<u8>>, pos: usize },
    /// A body pulled chunk by chunk, through a filter when it is encoded.
    Body {
        source: Box<dyn Source>,
        filter: Option<Box<dyn Filter>>,
    },
}

/// A multipart being laid out: the parts still to write and how to close it.
struct Frame {
    parts: std::vec::IntoIter<Part>,
    /// How many parts have been started; the last one started is `parts[next_index - 1]`.
    next_index: usize,
    boundary: String,
    /// Whether the caller chose the boundary (and it is on [`Builder::chosen`]).
    chosen: bool,
    epilogue: Option<String>,
}

/// Builds the segments of a message while its tree is walked.
struct Builder {
    segments: Vec<Segment>,
    /// Bytes not yet made into a segment, so that small pieces are merged.
    pending: Vec<u8>,
    random: boundary::Random,
    /// The caller-chosen boundaries of the multiparts being laid out. Unlike generated ones (see
    /// `boundary`'s module comment), these may well occur in content, which is checked.
    chosen: Vec<String>,
    /// A part is binary (RFC 3030 §3), or a body source says it holds one.
    binary: bool,
}

impl Builder {
    /// A caller-chosen boundary of an enclosing multipart that `content` contains, if any.
    fn clash(&self, content: &[u8]) -> Option<&str> {
        self.chosen
            .iter()
            .map(String::as_str)
            .find(|b| boundary::occurs_in(content, b))
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.segments.push(Segment::Bytes {
                data: Arc::new(std::mem::take(&mut self.pending)),
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
            self.segments.push(Segment::Bytes {
                data: Arc::new(data),
                pos: 0,
            });
        }
    }

    fn body(&mut self, source: Box<dyn Source>, filter: Option<Box<dyn Filter>>) {
        self.flush();
        self.segments.push(Segment::Body { source, filter });
    }
}

/// The headers of one part after validation, in output order.
struct Rendered {
    block: String,
    content_type: Option<String>,
    /// Whether a multipart's boundary came from the caller's Content-Type.
    chosen_boundary: bool,
}

impl Segment {
    /// The segment again from its start: the same bytes, or the body read again through a fresh
    /// filter; `None` when the body cannot be read again.
    pub(crate) fn replay(&self) -> Option<Self> {
        Some(match self {
            Self::Bytes { data, .. } => Self::Bytes {
                data: Arc::clone(data),
                pos: 0,
            },
            Self::Body { source, filter } => Self::Body {
                source: source.replay()?,
                filter: match filter {
                    Some(filter) => Some(filter.fresh()?),
                    None => None,
                },
            },
        })
    }
}

/// Walks `root` with an explicit stack (any nesting depth works) and returns its segments.
pub(crate) fn lay_out(
    root: Part,
    top: &TopLevel,
    random: boundary::Random,
) -> Result<LaidOut, MessageError> {
    let mut builder = Builder {
        segments: Vec::new(),
        pending: Vec::new(),
        random,
        chosen: Vec::new(),
        binary: false,
    };
    let mut stack: Vec<Frame> = Vec::new();
    if let Some(frame) =
        lay_out_part(&mut builder, root, Some(top)).map_err(|e| at_path(e, &stack))?
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
        if frame.chosen {
            builder.chosen.pop();
        }
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
    Ok(LaidOut {
        segments: builder.segments,
        binary: builder.binary,
    })
}

/// A message laid out: its segments, and whether it is binary MIME.
pub(crate) struct LaidOut {
    pub(crate) segments: Vec<Segment>,
    /// Some part is `binary` (RFC 3030 §3): see [`Source::needs_binarymime`].
    pub(crate) binary: bool,
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
pub(crate) struct TopLevel {
    pub(crate) zone: Option<date::Zone>,
    pub(crate) timestamp: Option<i64>,
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
    let declared = declared_encoding(&part, path)?;
    let encoding = choose_encoding(&part, &body, declared.as_ref(), path)?;
    // Base64 output cannot hold a delimiter (its alphabet has no '-'); anything else is checked.
    let in_memory = match &body {
        Body::Text(text) => Some(text.as_bytes()),
        Body::Bytes(bytes) => Some(bytes.as_slice()),
        _ => None,
    };
    if let Some(found) = in_memory
        .filter(|_| encoding != Some(TransferEncoding::Base64))
        .and_then(|c| builder.clash(c))
    {
        return Err(MessageError::in_part(
            path,
            format!(
                "the body contains the boundary {found:?} of an enclosing multipart; choose another boundary"
            ),
        ));
    }
    builder.binary |= encoding == Some(TransferEncoding::Binary)
        || matches!(&declared, Some((_, Ok(TransferEncoding::Binary))))
        || matches!(&body, Body::Source(source) if source.needs_binarymime());
    let write_cte = encoding.filter(|_| declared.is_none());
    let rendered = render_headers(builder, &part, path, top, &body, write_cte)?;
    builder.pending.extend_from_slice(rendered.block.as_bytes());
    builder.pending.extend_from_slice(b"\r\n");
    match body {
        Body::None => Ok(None),
        Body::Text(text) => {
            match encoding.and_then(|e| encoder_for(e, true)) {
                Some(filter) => {
                    builder.body(Box::new(BytesSource::new(text.into_bytes())), Some(filter));
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
                let Some(text) = text.as_deref() else {
                    continue;
                };
                let found = if boundary::occurs_in(text.as_bytes(), &boundary) {
                    Some(boundary.as_str())
                } else {
                    builder.clash(text.as_bytes())
                };
                if let Some(found) = found {
                    return Err(MessageError::in_part(
                        path,
                        format!(
                            "the {what} contains the boundary {found:?}; choose another boundary"
                        ),
                    ));
                }
            }
            let chosen = rendered.chosen_boundary;
            if chosen {
                builder.chosen.push(boundary.clone());
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
                chosen,
                epilogue,
            }))
        }
    }
}

/// The encoding applied to a part's body: the part's own, else none if the caller wrote the header
/// (the body is then already encoded), else the default for text. Refuses contradictions.
fn choose_encoding(
    part: &Part,
    body: &Body,
    declared: Option<&Declared>,
    path: &str,
) -> Result<Option<TransferEncoding>, MessageError> {
    // The encoding: the part's own, else one the caller wrote as a header, else the text default.
    if let (Some(own), Some((name, header))) = (part.encoding, declared) {
        let says = match header {
            Ok(header) if *header == own => None,
            Ok(header) => Some(header.to_string()),
            Err(unknown) => Some(format!("{:?}", unknown.0.trim())),
        };
        if let Some(says) = says {
            return Err(MessageError::in_header(
                path,
                name.clone(),
                format!(
                    "the part's encoding is {own}, but this header says {says}; set one or make them agree"
                ),
            ));
        }
    }
    let encoding = match (part.encoding, declared) {
        (Some(own), _) => Some(own),
        (None, Some(_)) => None,
        (None, None) => match body {
            Body::Text(text) => Some(text_encoding(text)),
            _ => None,
        },
    };
    if matches!(body, Body::Multipart(_)) {
        let opaque = encoding.is_some_and(TransferEncoding::transforms)
            || matches!(declared, Some((_, Ok(e))) if e.transforms());
        if opaque {
            return Err(MessageError::in_part(
                path,
                "a multipart body cannot be base64 or quoted-printable encoded (RFC 2045 §6.4); \
                 encode its parts instead",
            ));
        }
    }
    if let (Some(TransferEncoding::SevenBit), Body::Text(text)) = (encoding, body) {
        if !text.is_ascii() {
            return Err(MessageError::in_part(
                path,
                "the body is not ASCII, so it cannot be declared 7bit",
            ));
        }
    }
    Ok(encoding)
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
    let mut chosen_boundary = false;
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
        // An empty Bcc is dropped; a non-empty one is written, and sending leaves it out
        // (smtp::header_envelope, RFC 5322 §3.6.3).
        if headers::is_blind_copy(&lower) && value.is_empty() {
            continue;
        }
        if lower == "content-type" {
            let (text, chosen) = content_type_value(builder, value, body).map_err(err)?;
            chosen_boundary = chosen;
            headers::check_text(&text).map_err(err)?;
            headers::check_decoded(&text, true).map_err(err)?;
            headers::write_structured(&mut block, &canonical, &text).map_err(err)?;
            content_type = Some(text);
            continue;
        }
        let start = block.len() + canonical.len() + 1;
        write_value(&mut block, &lower, &canonical, value).map_err(err)?;
        // What was written, as a reader decodes it: mailpump's own encoded-words never hold a
        // line break (check_text refused those), so only a caller's can.
        let structured = matches!(headers::kind(&lower), Kind::Structured);
        headers::check_decoded(&block[start..], structured).map_err(err)?;
    }
    let has = |name: &str| seen.iter().any(|(l, _)| l == name);
    let missing = |block: &mut String, lower: &str, value: &str| {
        if !has(lower) {
            // Generated values are short ASCII tokens: folding them cannot fail.
            let _ = headers::write_structured(block, &headers::canonical_name(lower), value);
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
        chosen_boundary,
    })
}

/// The caller's Content-Type value, completed: a multipart gets a boundary if it has none, non-ASCII
/// text gets `charset="utf-8"` if it has no charset. Also says whether the boundary is the caller's.
fn content_type_value(
    builder: &mut Builder,
    value: &HeaderValue,
    body: &Body,
) -> Result<(String, bool), String> {
    let mut text = value.as_text()?.into_owned();
    let media = boundary::media_type(&text);
    let mut chosen = false;
    if matches!(body, Body::Multipart(_)) {
        if !media.starts_with("multipart/") {
            return Err(format!(
                "the body is a multipart, but the content type is {media:?}"
            ));
        }
        match boundary::find(&text) {
            Some(given) if !boundary::is_valid(&given) => {
                return Err(format!(
                    "boundary {given:?} is not valid: 1 to 70 letters, digits or '()+_,-./:=? (RFC 2046 §5.1.1)"
                ));
            }
            Some(_) => chosen = true,
            None => {
                let fresh = boundary::generate(&mut builder.random).map_err(|e| e.to_string())?;
                let _ = write!(text, "; boundary=\"{fresh}\"");
            }
        }
    }
    // A text body is written as UTF-8: a text type without a charset would be read as US-ASCII
    // (RFC 2045 §5.2), so non-ASCII text gets the charset it is written in.
    if let Body::Text(body) = body {
        if !body.is_ascii() && media.starts_with("text/") {
            match boundary::parameter(&text, "charset") {
                None => text.push_str("; charset=\"utf-8\""),
                Some(charset)
                    if !matches!(charset.to_ascii_lowercase().as_str(), "utf-8" | "utf8") =>
                {
                    return Err(format!(
                        "a text body is written as UTF-8, but this header says charset {charset:?}; \
                         give the body as bytes in that charset, or say utf-8"
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok((text, chosen))
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
                Kind::Addresses => address_header::write_addresses(
                    block,
                    canonical,
                    address_header::split_addresses(text),
                ),
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
                Kind::Addresses => address_header::write_addresses(
                    block,
                    canonical,
                    items.iter().map(String::as_str),
                ),
                Kind::Structured => {
                    // Message identifiers are separated by whitespace (RFC 5322 §3.6.4), not commas.
                    let sep = if matches!(lower, "references" | "in-reply-to") {
                        " "
                    } else {
                        ", "
                    };
                    headers::write_structured(block, canonical, &items.join(sep))
                }
                Kind::Unstructured => {
                    headers::write_unstructured(block, canonical, &items.join(", "));
                    Ok(())
                }
            }
        }
    }
}
