//! The envelope from the headers, as `smtplib.send_message` takes it, and blind copies kept off
//! the wire.
//!
//! [`HeaderSource`] wraps a message's source: it reads the header section (at most
//! [`MAX_HEADER`] bytes; the body is never held) and then hands out the message with every `Bcc`
//! and `Resent-Bcc` field left out, streaming the body from the source as it comes. Its
//! [`envelope`](HeaderSource::envelope) is the reverse-path and the recipients the header names:
//!
//! - RFC 5322 §3.6.6: when the message carries `Resent-*` fields, the newest block of them (the
//!   topmost, since each resend prepends its block) says who sends it and to whom:
//!   `Resent-Sender` or else `Resent-From`, and `Resent-To`, `Resent-Cc`, `Resent-Bcc`;
//! - otherwise (RFC 5322 §3.6.2, §3.6.3) `Sender` or else the first mailbox of `From`, and every
//!   address of `To`, `Cc` and `Bcc`.
//!
//! Blind copies are delivered to and never transmitted (RFC 5322 §3.6.3): the fields are dropped
//! from what is sent whatever envelope the caller gives.
//!
//! ```
//! use mailpump::Source;
//! use mailpump::smtp::header_envelope::HeaderSource;
//! use mailpump::source::{BytesSource, collect};
//!
//! let raw = "From: A <a@example.com>\r\nTo: b@example.com\r\nBcc: c@example.com\r\n\r\nHi\r\n";
//! let mut source = HeaderSource::new(Box::new(BytesSource::new(raw)));
//! let envelope = source.envelope()?;
//! assert_eq!(envelope.reverse_path.unwrap().as_str(), "a@example.com");
//! let rcpt: Vec<&str> = envelope.recipients.iter().map(|a| a.as_str()).collect();
//! assert_eq!(rcpt, ["b@example.com", "c@example.com"]);
//! assert_eq!(collect(&mut source)?, b"From: A <a@example.com>\r\nTo: b@example.com\r\n\r\nHi\r\n");
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use crate::mime::address_header::{parse_mailbox, split_addresses};
use crate::mime::headers::is_blind_copy;
use crate::smtp::address::Address;
use crate::source::Source;
use crate::{BoxError, Error, MessageError};

/// The longest header section read to find the envelope; a longer one is refused.
pub const MAX_HEADER: usize = 1024 * 1024;

/// The envelope a message's header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEnvelope {
    /// `Sender` or the first `From` mailbox (their `Resent-` forms when those apply); `None` when
    /// the header has neither.
    pub reverse_path: Option<Address>,
    /// Every address of `To`, `Cc` and `Bcc` (or their `Resent-` forms), in order, each once.
    pub recipients: Vec<Address>,
}

/// One header field: its name and the byte range of the whole field (continuation lines and
/// line end included) in the header section.
struct Field {
    lower: String,
    start: usize,
    end: usize,
}

/// A message source whose header section has been read: the envelope it names, and the message
/// without its blind-copy fields (see the module documentation).
pub struct HeaderSource {
    inner: Box<dyn Source>,
    /// The header section and whatever was read past it; `None` until it is read.
    head: Option<Head>,
    exhausted: bool,
}

struct Head {
    bytes: Vec<u8>,
    /// Where the header section ends (the empty line included) in `bytes`.
    header_end: usize,
    fields: Vec<Field>,
    /// The next byte of `bytes` to hand out, and whether any is left.
    pos: usize,
    field: usize,
}

impl HeaderSource {
    /// Wraps a message source; nothing is read until [`envelope`](Self::envelope) or the first
    /// pull.
    #[must_use]
    pub fn new(inner: Box<dyn Source>) -> Self {
        Self {
            inner,
            head: None,
            exhausted: false,
        }
    }

    /// Reads the header section: up to the first empty line, or the end of the message.
    fn read_head(&mut self) -> Result<&mut Head, Error> {
        if self.head.is_none() {
            let mut bytes = Vec::new();
            let header_end = loop {
                if let Some(end) = header_end(&bytes) {
                    break end;
                }
                if bytes.len() > MAX_HEADER {
                    return Err(MessageError::in_part(
                        "message",
                        format!("the header section is longer than {MAX_HEADER} bytes"),
                    )
                    .into());
                }
                if !self.inner.pull(&mut bytes).map_err(Error::Source)? {
                    self.exhausted = true;
                    break bytes.len();
                }
            };
            let fields = fields(&bytes[..header_end]);
            self.head = Some(Head {
                bytes,
                header_end,
                fields,
                pos: 0,
                field: 0,
            });
        }
        Ok(self.head.as_mut().expect("read above"))
    }

    /// The envelope the header names. Every address must parse as an envelope address.
    ///
    /// # Errors
    ///
    /// The source failed, the header section is too long, or an address field does not parse.
    pub fn envelope(&mut self) -> Result<HeaderEnvelope, Error> {
        let head = self.read_head()?;
        let header = &head.bytes[..head.header_end];
        let value = |f: &Field| -> Result<String, MessageError> {
            let raw = &header[f.start..f.end];
            let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
            let text = std::str::from_utf8(&raw[(colon + 1).min(raw.len())..]).map_err(|_| {
                MessageError::in_header("message", canonical(&f.lower), "the field is not UTF-8")
            })?;
            // Unfolding (RFC 5322 §2.2.3): a line break before whitespace is removed.
            Ok(text.replace("\r\n", "").replace('\n', ""))
        };
        // RFC 5322 §3.6.6: the topmost run of Resent- fields is the newest resend.
        let resent: Vec<&Field> = head
            .fields
            .iter()
            .skip_while(|f| !f.lower.starts_with("resent-"))
            .take_while(|f| f.lower.starts_with("resent-"))
            .collect();
        let (block, prefix): (Vec<&Field>, &str) = if resent.is_empty() {
            (head.fields.iter().collect(), "")
        } else {
            (resent, "resent-")
        };
        let named = |name: &str| {
            let full = format!("{prefix}{name}");
            block.iter().filter(move |f| f.lower == full).copied()
        };
        let mut reverse_path = None;
        for name in ["sender", "from"] {
            if let Some(field) = named(name).next() {
                let text = value(field)?;
                let first = mailboxes(&text).into_iter().next().ok_or_else(|| {
                    MessageError::in_header("message", canonical(&field.lower), "no address")
                })?;
                reverse_path = Some(address(&field.lower, first)?);
                break;
            }
        }
        let mut recipients: Vec<Address> = Vec::new();
        for name in ["to", "cc", "bcc"] {
            for field in named(name) {
                for item in mailboxes(&value(field)?) {
                    let a = address(&field.lower, item)?;
                    if !recipients
                        .iter()
                        .any(|r| r.as_str().eq_ignore_ascii_case(a.as_str()))
                    {
                        recipients.push(a);
                    }
                }
            }
        }
        Ok(HeaderEnvelope {
            reverse_path,
            recipients,
        })
    }
}

/// The canonical spelling of a field name, for error messages.
fn canonical(lower: &str) -> String {
    crate::mime::headers::canonical_name(lower)
}

/// Parses one address of field `lower` as an envelope address.
fn address(lower: &str, item: &str) -> Result<Address, MessageError> {
    Address::parse(item)
        .map_err(|e| MessageError::in_header("message", canonical(lower), e.to_string()))
}

/// The addr-specs of an address list: groups (`name: a, b;`) are opened, comments and display
/// names dropped.
fn mailboxes(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for item in split_addresses(value) {
        let mut item = item.trim();
        // A group's display name (RFC 5322 §3.4): `team: a@x.org` opens it, `b@x.org;` closes it.
        if let Some(colon) = group_colon(item) {
            item = item[colon + 1..].trim();
        }
        item = item.trim_end_matches(';').trim();
        if item.is_empty() {
            continue;
        }
        let item = strip_comments(item);
        match parse_mailbox(item) {
            Some(m) => out.push(m.addr),
            None => out.push(item),
        }
    }
    out
}

/// The colon that ends a group's display name, outside quotes and angle brackets.
fn group_colon(item: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in item.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => return None,
            ':' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// An item without a trailing comment, `a@x.org (Name)` giving `a@x.org`.
fn strip_comments(item: &str) -> &str {
    match item.find('(') {
        Some(open) if !item[..open].contains('"') => item[..open].trim(),
        _ => item,
    }
}

/// Where the header section ends: after the first empty line (CRLF or LF line ends), or at 0
/// when the message starts with one.
fn header_end(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"\r\n") {
        return Some(2);
    }
    if bytes.starts_with(b"\n") {
        return Some(1);
    }
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The fields of a header section, each with its continuation lines.
fn fields(header: &[u8]) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut start = 0;
    while start < header.len() {
        let end = header[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |i| start + i + 1);
        let line = &header[start..end];
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(last) = out.last_mut() {
                last.end = end;
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            out.push(Field {
                lower: String::from_utf8_lossy(&line[..colon])
                    .trim()
                    .to_ascii_lowercase(),
                start,
                end,
            });
        }
        start = end;
    }
    out
}

impl Source for HeaderSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        self.read_head().map_err(|e| match e {
            Error::Source(inner) => inner,
            Error::Message(m) => Box::new(m) as BoxError,
        })?;
        let exhausted = self.exhausted;
        let head = self.head.as_mut().expect("read above");
        if head.pos < head.bytes.len() {
            // The header, less its blind-copy fields, then what was read past it.
            let before = out.len();
            while head.pos < head.bytes.len() {
                let next = head.fields.get(head.field);
                match next {
                    Some(f) if f.start <= head.pos => {
                        if !is_blind_copy(&f.lower) {
                            out.extend_from_slice(&head.bytes[f.start..f.end]);
                        }
                        head.pos = f.end;
                        head.field += 1;
                    }
                    Some(f) => {
                        out.extend_from_slice(&head.bytes[head.pos..f.start]);
                        head.pos = f.start;
                    }
                    None => {
                        out.extend_from_slice(&head.bytes[head.pos..]);
                        head.pos = head.bytes.len();
                    }
                }
            }
            // The header's bytes are handed out once; the buffer is not kept.
            head.bytes = Vec::new();
            head.pos = 0;
            head.fields.clear();
            if out.len() > before {
                return Ok(true);
            }
        }
        if exhausted {
            return Ok(false);
        }
        self.inner.pull(out)
    }

    fn remaining_hint(&self) -> Option<u64> {
        let inner = self.inner.remaining_hint()?;
        match &self.head {
            None => Some(inner),
            Some(head) => {
                let blind: usize = head
                    .fields
                    .iter()
                    .filter(|f| is_blind_copy(&f.lower))
                    .map(|f| f.end - f.start)
                    .sum();
                let left = head.bytes.len().saturating_sub(head.pos + blind);
                Some(inner + left as u64)
            }
        }
    }

    fn replay(&self) -> Option<Box<dyn Source>> {
        self.inner
            .replay()
            .map(|s| Box::new(HeaderSource::new(s)) as Box<dyn Source>)
    }

    fn needs_binarymime(&self) -> bool {
        self.inner.needs_binarymime()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{BytesSource, collect};

    fn read(raw: &str) -> (Result<HeaderEnvelope, Error>, Vec<u8>) {
        let mut s = HeaderSource::new(Box::new(BytesSource::with_chunk(raw.as_bytes(), 3)));
        let env = s.envelope();
        let bytes = collect(&mut s).unwrap();
        (env, bytes)
    }

    fn strs(env: &HeaderEnvelope) -> (Option<&str>, Vec<&str>) {
        (
            env.reverse_path.as_ref().map(Address::as_str),
            env.recipients.iter().map(Address::as_str).collect(),
        )
    }

    #[test]
    fn plain_fields() {
        let (env, bytes) = read(
            "From: \"Doe, J.\" <j@x.org>\r\nTo: a@x.org, B <b@x.org>\r\nCc: c@x.org (Cee)\r\n\
             Bcc: d@x.org,\r\n e@x.org\r\nSubject: s\r\n\r\nbody\r\nBcc: not a header\r\n",
        );
        let env = env.unwrap();
        assert_eq!(
            strs(&env),
            (
                Some("j@x.org"),
                vec!["a@x.org", "b@x.org", "c@x.org", "d@x.org", "e@x.org"]
            )
        );
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "From: \"Doe, J.\" <j@x.org>\r\nTo: a@x.org, B <b@x.org>\r\nCc: c@x.org (Cee)\r\n\
             Subject: s\r\n\r\nbody\r\nBcc: not a header\r\n"
        );
    }

    #[test]
    fn sender_wins_and_groups_open_and_duplicates_go() {
        let (env, _) = read(
            "From: a@x.org, b@x.org\nSender: s@x.org\nTo: team: a@x.org, b@x.org;, A@X.org\n\
             Cc: undisclosed-recipients:;\n\nhi\n",
        );
        assert_eq!(
            strs(&env.unwrap()),
            (Some("s@x.org"), vec!["a@x.org", "b@x.org"])
        );
    }

    #[test]
    fn resent_block_wins() {
        let raw = "Resent-From: r@x.org\r\nResent-To: t@x.org\r\nResent-Bcc: hidden@x.org\r\n\
                   Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: a@x.org\r\nTo: b@x.org\r\n\
                   Bcc: old@x.org\r\n\r\nhi\r\n";
        let (env, bytes) = read(raw);
        assert_eq!(
            strs(&env.unwrap()),
            (Some("r@x.org"), vec!["t@x.org", "hidden@x.org"])
        );
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("hidden@x.org") && !text.contains("old@x.org"));
        assert!(text.ends_with("To: b@x.org\r\n\r\nhi\r\n"));
    }

    #[test]
    fn no_header_fields_and_no_body() {
        let (env, bytes) = read("\r\njust a body\r\n");
        assert_eq!(strs(&env.unwrap()), (None, vec![]));
        assert_eq!(bytes, b"\r\njust a body\r\n");
        let (env, bytes) = read("To: a@x.org\r\nBcc: b@x.org\r\n");
        assert_eq!(strs(&env.unwrap()).1, ["a@x.org", "b@x.org"]);
        assert_eq!(bytes, b"To: a@x.org\r\n");
    }

    #[test]
    fn bad_address_is_a_header_error() {
        let (env, _) = read("From: a@x.org\r\nTo: not an address\r\n\r\nhi\r\n");
        match env {
            Err(Error::Message(m)) => assert_eq!(m.header.as_deref(), Some("To")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn output_is_the_same_for_every_chunk_size() {
        let raw = "From: a@x.org\r\nBcc: b@x.org\r\nTo: c@x.org\r\n\r\nline\r\n".repeat(3);
        let mut expected = None;
        for chunk in [1, 2, 3, 7, 76, 4096] {
            let mut s = HeaderSource::new(Box::new(BytesSource::with_chunk(raw.clone(), chunk)));
            let hint = {
                s.envelope().unwrap();
                s.remaining_hint()
            };
            let bytes = collect(&mut s).unwrap();
            assert_eq!(hint, Some(bytes.len() as u64));
            assert_eq!(expected.get_or_insert_with(|| bytes.clone()), &bytes);
        }
    }
}
