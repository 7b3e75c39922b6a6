//! The message tree: parts, bodies, header values, and the builders of common parts.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::error::{Error, MessageError};
use crate::mime::message::TransferEncoding;
use crate::mime::{address_header, headers};
use crate::source::{ReaderSource, Source};

/// A header value.
///
/// ```
/// use mailpump::{HeaderValue, MessageEncoder, MessageOptions, Part};
/// use std::io::Read;
///
/// let part = Part::new()
///     .header("To", vec!["a@example.com".to_owned(), "b@example.com".to_owned()]) // Addresses
///     .header("Subject", "Grüße") // Text
///     .header("X-Trace", b"id=42".to_vec()) // Raw
///     .body("hi\r\n");
/// assert_eq!(part.headers[0].1, HeaderValue::Addresses(vec!["a@example.com".into(), "b@example.com".into()]));
/// let mut text = String::new();
/// MessageEncoder::new(part, MessageOptions::default())?.read_to_string(&mut text)?;
/// assert!(text.contains("To: a@example.com, b@example.com\r\n"));
/// assert!(text.contains("Subject: =?utf-8?"));
/// assert!(text.contains("X-Trace: id=42\r\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Text: non-ASCII words become RFC 2047 encoded-words, long values are folded. In address
    /// headers (`From`, `To`, `Cc`, `Reply-To`, `Sender`, `Resent-*`) it is read as a list of
    /// `Name <addr>` items separated by commas, and only display names are encoded.
    Text(String),
    /// A list of addresses (or of values, for other headers), joined with `, `.
    Addresses(Vec<String>),
    /// Bytes written as given: ASCII, no line breaks, one line of at most 998 octets.
    Raw(Vec<u8>),
}

impl HeaderValue {
    /// Whether the value is empty or only whitespace (an empty `Bcc` is dropped).
    ///
    /// ```
    /// use mailpump::HeaderValue;
    ///
    /// assert!(HeaderValue::from("  ").is_empty());
    /// assert!(!HeaderValue::from(vec!["a@example.com".to_owned()]).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Text(t) => t.trim().is_empty(),
            Self::Addresses(items) => items.iter().all(|i| i.trim().is_empty()),
            Self::Raw(b) => b.iter().all(u8::is_ascii_whitespace),
        }
    }

    /// The value as one string: addresses joined with `, `, raw bytes checked to be valid ASCII.
    ///
    /// ```
    /// use mailpump::HeaderValue;
    ///
    /// let to = HeaderValue::from(vec!["a@example.com".to_owned(), "b@example.com".to_owned()]);
    /// assert_eq!(to.as_text().unwrap(), "a@example.com, b@example.com");
    /// assert!(HeaderValue::Raw(vec![0xff]).as_text().is_err());
    /// ```
    pub fn as_text(&self) -> Result<Cow<'_, str>, String> {
        match self {
            Self::Text(t) => Ok(Cow::Borrowed(t)),
            Self::Addresses(items) => Ok(Cow::Owned(items.join(", "))),
            Self::Raw(b) => headers::check_raw(b).map(Cow::Borrowed),
        }
    }

    /// The domain of the first address, for the default `Message-ID`.
    pub(crate) fn first_domain(&self) -> Option<String> {
        address_header::first_domain(&self.as_text().ok()?)
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<Vec<String>> for HeaderValue {
    fn from(items: Vec<String>) -> Self {
        Self::Addresses(items)
    }
}

impl From<Vec<u8>> for HeaderValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Raw(bytes)
    }
}

/// A part's body.
///
/// ```
/// use mailpump::source::ReaderSource;
/// use mailpump::{Body, Multipart, Part, Source};
///
/// let text = Body::from("Hello\r\n");
/// let bytes = Body::from(vec![0u8, 1, 2]);
/// let stream: Box<dyn Source> = Box::new(ReaderSource::new(std::io::Cursor::new(vec![7u8; 1 << 20])));
/// let multipart = Body::from(Multipart::new(vec![
///     Part::new().body(text),
///     Part::new().body(bytes),
///     Part::new().body(stream),
/// ]));
/// assert!(matches!(multipart, Body::Multipart(ref m) if m.parts.len() == 3));
/// ```
#[derive(Default)]
pub enum Body {
    /// No body: the part is its header block and an empty body.
    #[default]
    None,
    /// Text, written as UTF-8; unless an encoding is chosen it gets `7bit` when it can, else
    /// quoted-printable.
    Text(String),
    /// Bytes, written as given unless the part has an encoding.
    Bytes(Vec<u8>),
    /// A source pulled chunk by chunk while the message is encoded, never collected.
    Source(Box<dyn Source>),
    /// Parts of a multipart (RFC 2046 §5.1).
    Multipart(Multipart),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Self::Bytes(b) => f.debug_tuple("Bytes").field(&b.len()).finish(),
            Self::Source(_) => f.write_str("Source(..)"),
            Self::Multipart(m) => f.debug_tuple("Multipart").field(m).finish(),
        }
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for Body {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b)
    }
}

impl From<Box<dyn Source>> for Body {
    fn from(s: Box<dyn Source>) -> Self {
        Self::Source(s)
    }
}

impl From<Multipart> for Body {
    fn from(m: Multipart) -> Self {
        Self::Multipart(m)
    }
}

/// The body of a multipart: optional preamble and epilogue around the parts (RFC 2046 §5.1.1).
///
/// ```
/// use mailpump::{MessageEncoder, MessageOptions, Multipart, Part};
/// use std::io::Read;
///
/// let alternative = Part::new()
///     .header("Content-Type", "multipart/alternative")
///     .body(Multipart::new(vec![
///         Part::text("*Hello*\r\n", "plain"),
///         Part::text("<b>Hello</b>\r\n", "html"),
///     ]));
/// let options = MessageOptions { seed: Some(1), ..MessageOptions::default() };
/// let mut text = String::new();
/// MessageEncoder::new(alternative, options)?.read_to_string(&mut text)?;
/// assert!(text.contains("Content-Type: multipart/alternative;"));
/// assert!(text.contains("boundary="));
/// assert!(text.contains("Content-Type: text/html; charset=\"utf-8\"\r\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Multipart {
    /// Text before the first part, which MIME readers ignore.
    pub preamble: Option<String>,
    /// The parts, in order.
    pub parts: Vec<Part>,
    /// Text after the last part, which MIME readers ignore.
    pub epilogue: Option<String>,
}

impl Multipart {
    /// A multipart of `parts`, without preamble or epilogue.
    ///
    /// ```
    /// use mailpump::{Multipart, Part};
    ///
    /// let multipart = Multipart::new(vec![Part::text("one\r\n", "plain"), Part::text("two\r\n", "plain")]);
    /// assert_eq!(multipart.parts.len(), 2);
    /// assert!(multipart.preamble.is_none() && multipart.epilogue.is_none());
    /// ```
    #[must_use]
    pub fn new(parts: Vec<Part>) -> Self {
        Self {
            preamble: None,
            parts,
            epilogue: None,
        }
    }

    /// Sets the preamble.
    ///
    /// ```
    /// use mailpump::{Multipart, Part};
    ///
    /// let multipart = Multipart::new(vec![Part::text("hi\r\n", "plain")])
    ///     .preamble("This is a MIME message.");
    /// assert_eq!(multipart.preamble.as_deref(), Some("This is a MIME message."));
    /// ```
    #[must_use]
    pub fn preamble(mut self, text: impl Into<String>) -> Self {
        self.preamble = Some(text.into());
        self
    }

    /// Sets the epilogue.
    ///
    /// ```
    /// use mailpump::{Multipart, Part};
    ///
    /// let multipart = Multipart::new(vec![Part::text("hi\r\n", "plain")]).epilogue("bye");
    /// assert_eq!(multipart.epilogue.as_deref(), Some("bye"));
    /// ```
    #[must_use]
    pub fn epilogue(mut self, text: impl Into<String>) -> Self {
        self.epilogue = Some(text.into());
        self
    }
}

impl Drop for Multipart {
    /// Takes deep trees apart with a loop, so that dropping one cannot overflow the stack.
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.parts);
        while let Some(mut part) = pending.pop() {
            if let Body::Multipart(inner) = &mut part.body {
                pending.append(&mut inner.parts);
            }
        }
    }
}

/// A message or one of its parts: headers, a body, and how to encode the body.
///
/// ```
/// use mailpump::{Part, TransferEncoding};
///
/// // Built step by step, or with the public fields directly.
/// let part = Part::new()
///     .header("Content-Type", "application/json")
///     .body(br#"{"ok": true}"#.to_vec())
///     .encoding(TransferEncoding::QuotedPrintable);
/// assert_eq!(part.headers.len(), 1);
/// assert_eq!(part.encoding, Some(TransferEncoding::QuotedPrintable));
/// ```
#[derive(Debug, Default)]
pub struct Part {
    /// Header fields in the order they are written; names are case-insensitive.
    pub headers: Vec<(String, HeaderValue)>,
    /// The body.
    pub body: Body,
    /// Encode the body on the fly with this Content-Transfer-Encoding and write the header.
    pub encoding: Option<TransferEncoding>,
}

impl Part {
    /// An empty part.
    ///
    /// ```
    /// use mailpump::{Body, Part};
    ///
    /// let part = Part::new();
    /// assert!(part.headers.is_empty() && matches!(part.body, Body::None) && part.encoding.is_none());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header.
    ///
    /// ```
    /// use mailpump::{HeaderValue, Part};
    ///
    /// let part = Part::new().header("Reply-To", "Help Desk <help@example.com>");
    /// assert_eq!(part.headers, [("Reply-To".to_owned(), HeaderValue::Text("Help Desk <help@example.com>".into()))]);
    /// ```
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<HeaderValue>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// use mailpump::{Body, Part};
    ///
    /// let part = Part::new().body("Hello\r\n");
    /// assert!(matches!(part.body, Body::Text(ref t) if t == "Hello\r\n"));
    /// ```
    #[must_use]
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the transfer encoding applied to the body.
    ///
    /// ```
    /// use mailpump::{MessageEncoder, MessageOptions, Part, TransferEncoding};
    /// use std::io::Read;
    ///
    /// let part = Part::new().body(vec![0u8, 255]).encoding(TransferEncoding::Base64);
    /// let mut text = String::new();
    /// MessageEncoder::new(part, MessageOptions::default())?.read_to_string(&mut text)?;
    /// assert!(text.contains("Content-Transfer-Encoding: base64\r\n"));
    /// assert!(text.ends_with("\r\n\r\nAP8=\r\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn encoding(mut self, encoding: TransferEncoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    /// A text part: `text/<subtype>; charset="utf-8"`, 7bit or quoted-printable as the text needs.
    ///
    /// ```
    /// use mailpump::{HeaderValue, Part};
    ///
    /// let html = Part::text("<p>Grüße</p>\r\n", "html");
    /// assert_eq!(html.headers[0].1, HeaderValue::Text("text/html; charset=\"utf-8\"".into()));
    /// ```
    #[must_use]
    pub fn text(text: impl Into<String>, subtype: &str) -> Self {
        Self::new()
            .header("Content-Type", format!("text/{subtype}; charset=\"utf-8\""))
            .body(Body::Text(text.into()))
    }

    /// An attachment: base64-encoded `body` with `Content-Disposition: attachment` and the file name
    /// (RFC 2231 for non-ASCII or long names). The content type is `content_type`, else guessed
    /// from the file name, else `application/octet-stream`.
    ///
    /// ```
    /// use mailpump::Part;
    ///
    /// let pdf = Part::attachment(b"%PDF-1.7".to_vec(), Some("Bericht für März.pdf"), None)?;
    /// let (name, value) = &pdf.headers[0];
    /// assert_eq!((name.as_str(), value.as_text()?.as_ref()), ("Content-Type", "application/pdf"));
    /// assert!(Part::attachment(Vec::new(), Some("bad\r\nname"), None).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attachment(
        body: impl Into<Body>,
        filename: Option<&str>,
        content_type: Option<&str>,
    ) -> Result<Self, MessageError> {
        let disposition = match filename {
            Some(name) => format!("attachment; {}", filename_param(name)?),
            None => "attachment".to_owned(),
        };
        let content_type = content_type.map_or_else(
            || {
                filename
                    .and_then(|n| mime_guess::from_path(n).first_raw())
                    .unwrap_or("application/octet-stream")
                    .to_owned()
            },
            str::to_owned,
        );
        Ok(Self::new()
            .header("Content-Type", content_type)
            .header("Content-Disposition", disposition)
            .body(body)
            .encoding(TransferEncoding::Base64))
    }

    /// The same part shown inline and named by `content_id`, for an HTML body in the same
    /// `multipart/related` to reference as `cid:<content_id>` (RFC 2392): `Content-ID:
    /// <content_id>` is added and the disposition becomes `inline`.
    ///
    /// ```
    /// use mailpump::Part;
    ///
    /// let logo = Part::attachment(b"\x89PNG".to_vec(), Some("logo.png"), None)?.inline("logo@news")?;
    /// assert!(Part::attachment("x", None, None)?.inline("a b").is_err());
    /// # drop(logo);
    /// # Ok::<(), mailpump::MessageError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `content_id` is empty or holds a character a `msg-id` cannot (RFC 5322 §3.6.4): space,
    /// control, `<`, `>`, `"`, `(`, `)`, `,`, `;`, `:`, `\\`, `[`, `]`, or non-ASCII.
    pub fn inline(mut self, content_id: &str) -> Result<Self, MessageError> {
        if content_id.is_empty()
            || content_id
                .chars()
                .any(|c| !c.is_ascii_graphic() || "<>\"(),;:\\[]".contains(c))
        {
            return Err(MessageError::in_header(
                "part",
                "Content-ID",
                format!(
                    "{content_id:?} is not a valid Content-ID: use letters, digits and .-_@ (RFC 2392)"
                ),
            ));
        }
        for (name, value) in &mut self.headers {
            if name.eq_ignore_ascii_case("content-disposition") {
                if let HeaderValue::Text(text) = value {
                    if let Some(rest) = text.strip_prefix("attachment") {
                        *text = format!("inline{rest}");
                    }
                }
            }
        }
        Ok(self.header("Content-ID", format!("<{content_id}>")))
    }

    /// An attachment read from the file at `path`: opened now (so a missing file fails here), read
    /// chunk by chunk while the message is encoded. The file name defaults to the path's last part.
    ///
    /// ```
    /// use mailpump::{Multipart, Part};
    ///
    /// let path = std::env::temp_dir().join("mailpump-doc-attachment.csv");
    /// std::fs::write(&path, "a,b\r\n1,2\r\n")?;
    /// let message = Part::new()
    ///     .header("Subject", "Numbers")
    ///     .body(Multipart::new(vec![
    ///         Part::text("See the attachment.\r\n", "plain"),
    ///         Part::attachment_file(&path, None, None)?, // named mailpump-doc-attachment.csv
    ///     ]));
    /// assert!(Part::attachment_file("/no/such/file", None, None).is_err());
    /// # drop(message);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attachment_file(
        path: impl AsRef<Path>,
        filename: Option<&str>,
        content_type: Option<&str>,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        // The error stays an `io::Error` of the same kind (a binding maps NotFound to its own
        // exception by downcasting), with the path in its message.
        let source = ReaderSource::open(path).map_err(|e| {
            let context = io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()));
            Error::Source(Box::new(context))
        })?;
        let default_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = filename.or(default_name.as_deref());
        Ok(Self::attachment(
            Body::Source(Box::new(source)),
            name,
            content_type,
        )?)
    }
}

/// The `filename` parameter of a Content-Disposition (RFC 2183 §2.3): quoted when the name is plain
/// ASCII and short, else RFC 2231 `filename*=utf-8''...` with continuations when long.
fn filename_param(name: &str) -> Result<String, MessageError> {
    /// The longest parameter value piece, so that each fits a folded 78-octet line.
    const PIECE: usize = 60;
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(MessageError::in_header(
            "attachment",
            "Content-Disposition",
            format!("the file name holds the control character {c:?}"),
        ));
    }
    if name.is_ascii() {
        // Quoted-string pieces (RFC 2045 §5.1), each at most PIECE octets once escaped.
        let mut pieces = vec![String::new()];
        for c in name.chars() {
            let escaped = matches!(c, '"' | '\\');
            let last = pieces.last_mut().expect("never empty");
            if last.len() + 1 + usize::from(escaped) > PIECE {
                pieces.push(String::new());
            }
            let last = pieces.last_mut().expect("never empty");
            if escaped {
                last.push('\\');
            }
            last.push(c);
        }
        if let [only] = pieces.as_slice() {
            return Ok(format!("filename=\"{only}\""));
        }
        // RFC 2231 §3: a long name in numbered quoted pieces, still readable.
        let pieces: Vec<String> = pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| format!("filename*{i}=\"{piece}\""))
            .collect();
        return Ok(pieces.join("; "));
    }
    // RFC 2231 §4: percent-encode every octet outside attribute-char; one unit per character so
    // that a continuation never splits a UTF-8 sequence.
    let units: Vec<String> = name
        .chars()
        .map(|c| {
            let mut buf = [0; 4];
            c.encode_utf8(&mut buf)
                .bytes()
                .fold(String::new(), |mut unit, b| {
                    if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                        unit.push(char::from(b));
                    } else {
                        let _ = write!(unit, "%{b:02X}");
                    }
                    unit
                })
        })
        .collect();
    let total: usize = units.iter().map(String::len).sum();
    if total + "utf-8''".len() <= PIECE {
        return Ok(format!("filename*=utf-8''{}", units.concat()));
    }
    // RFC 2231 §3: numbered continuations, the charset only in the first.
    let mut pieces: Vec<String> = Vec::new();
    let mut current = "utf-8''".to_owned();
    for unit in units {
        if current.len() + unit.len() > PIECE {
            pieces.push(format!("filename*{}*={current}", pieces.len()));
            current.clear();
        }
        current.push_str(&unit);
    }
    pieces.push(format!("filename*{}*={current}", pieces.len()));
    Ok(pieces.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_plain_names_are_continued_in_quoted_pieces() {
        let name = format!("{}\"{}", "a".repeat(59), "b".repeat(70));
        let param = filename_param(&name).unwrap();
        assert_eq!(
            param,
            format!(
                "filename*0=\"{}\"; filename*1=\"\\\"{}\"; filename*2=\"{}\"",
                "a".repeat(59),
                "b".repeat(58),
                "b".repeat(12)
            )
        );
    }

    #[test]
    fn plain_names_are_quoted() {
        assert_eq!(
            filename_param("report.pdf").unwrap(),
            "filename=\"report.pdf\""
        );
        assert_eq!(
            filename_param("a \"b\\c\".txt").unwrap(),
            "filename=\"a \\\"b\\\\c\\\".txt\""
        );
    }

    #[test]
    fn non_ascii_names_use_rfc_2231() {
        assert_eq!(
            filename_param("résumé.pdf").unwrap(),
            "filename*=utf-8''r%C3%A9sum%C3%A9.pdf"
        );
        let long = filename_param(&"ü".repeat(30)).unwrap();
        assert!(long.starts_with("filename*0*=utf-8''%C3%BC"), "{long}");
        assert!(long.contains("; filename*1*=%C3%BC"), "{long}");
        for piece in long.split("; ") {
            let value = piece.split_once('=').unwrap().1;
            assert!(value.ends_with("%C3%BC"), "no character is split: {piece}");
        }
    }

    #[test]
    fn control_characters_in_names_are_errors() {
        for bad in ["a\r\nb", "a\nb", "a\0b", "a\u{2028}"] {
            assert!(filename_param(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deep_trees_drop_without_recursion() {
        let mut part = Part::new();
        for _ in 0..200_000 {
            part = Part::new().body(Multipart::new(vec![part]));
        }
        drop(part);
    }
}
