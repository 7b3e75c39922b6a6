//! Makers and readers of mail: envelopes, a reproducible encoder, a reader of generated header
//! blocks (RFC 5322 unfolding, RFC 2047 decoding), a strict RFC 5321 reader of DATA, and a source
//! that hands out chunks of chosen sizes.

use std::io::Read;

use mailpump::BoxError;
use mailpump::mime::message::{MessageEncoder, MessageOptions, Part};
use mailpump::smtp::address::Address;
use mailpump::smtp::client::Envelope;
use mailpump::source::Source;

/// `s` parsed as an address; it must be valid.
#[must_use]
pub fn addr(s: &str) -> Address {
    Address::parse(s).expect("address")
}

/// `me@example.com` to each of `rcpt`.
#[must_use]
pub fn envelope(rcpt: &[&str]) -> Envelope {
    Envelope::new(
        addr("me@example.com"),
        rcpt.iter().map(|r| addr(r)).collect(),
    )
}

/// Options that make the output reproducible: a fixed time (2023-11-14 22:13:20 UTC), the
/// `zone` to write it in, and the `seed` of the boundaries and Message-ID.
#[must_use]
pub fn fixed(zone: &str, seed: u64) -> MessageOptions {
    MessageOptions {
        timestamp: Some(1_700_000_000),
        zone: Some(zone.into()),
        seed: Some(seed),
        ..MessageOptions::default()
    }
}

/// `root` encoded with `options`, read through the encoder's `io::Read` side; the tree must be
/// valid.
#[must_use]
pub fn read_message(root: Part, options: MessageOptions) -> Vec<u8> {
    let mut out = Vec::new();
    MessageEncoder::new(root, options)
        .expect("a valid message")
        .read_to_end(&mut out)
        .expect("read");
    out
}

/// `root` encoded with reproducible options, chunk by chunk; the encoder's error if it refuses
/// the tree.
pub fn encode(root: Part) -> Result<Vec<u8>, mailpump::MessageError> {
    let mut encoder = MessageEncoder::new(root, fixed("+0000", 1))?;
    let mut out = Vec::new();
    while let Some(chunk) = encoder.next_chunk().expect("a validated message encodes") {
        out.extend_from_slice(chunk);
    }
    Ok(out)
}

/// The first header block of `message` (up to the empty line), as fields of (name, unfolded
/// value without the leading whitespace). Checks each line on the way: at most 998 octets, no
/// bare CR, LF or NUL, and every line either continues a field (starts with WSP) or starts one.
#[must_use]
pub fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block ends with an empty line");
    let block = std::str::from_utf8(&message[..end]).expect("UTF-8 header block");
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in block.split("\r\n") {
        assert!(line.len() <= 998, "a header line of {} octets", line.len());
        assert!(
            !line.contains(['\r', '\n', '\0']),
            "bare CR, LF or NUL in header line {line:?}"
        );
        if line.starts_with([' ', '\t']) {
            fields
                .last_mut()
                .expect("a continuation line before any field")
                .1
                .push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("a field line has a colon");
            fields.push((name.to_owned(), value.to_owned()));
        }
    }
    for field in &mut fields {
        field.1 = field.1.trim_start_matches([' ', '\t']).to_owned();
    }
    fields
}

/// The lower-case names of `fields`.
#[must_use]
pub fn names(fields: &[(String, String)]) -> Vec<String> {
    fields.iter().map(|(n, _)| n.to_ascii_lowercase()).collect()
}

/// The value of the field `name` (case-insensitive).
#[must_use]
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The value of one base64 character, or `None` outside the alphabet.
#[must_use]
pub fn base64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Standard base64 decoded (padding optional), or `None` at a character outside the alphabet.
fn unbase64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        acc = (acc << 6) | base64_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The `Q` encoding of RFC 2047 §4.2 decoded, or `None` at a malformed `=XX`.
fn unq(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' => {
                out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// One UTF-8 encoded-word decoded, or `None` if `word` is not one. Checks what RFC 2047 asks of
/// the writer: at most 75 characters (§2), and whole characters in each word (§5).
fn decode_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut it = inner.splitn(3, '?');
    let (charset, scheme, text) = (it.next()?, it.next()?, it.next()?);
    if !charset.eq_ignore_ascii_case("utf-8") || text.contains('?') {
        return None;
    }
    let bytes = match scheme {
        "Q" | "q" => unq(text)?,
        "B" | "b" => unbase64(text)?,
        _ => return None,
    };
    assert!(word.len() <= 75, "encoded-word longer than 75: {word}");
    Some(String::from_utf8(bytes).expect("each encoded-word holds whole characters"))
}

/// An unstructured value as a reader decodes it: leading whitespace dropped, encoded-words
/// decoded, the whitespace between two adjacent encoded-words dropped (RFC 2047 §6.2) and kept
/// everywhere else.
#[must_use]
pub fn decode_2047(value: &str) -> String {
    let mut out = String::new();
    let mut prev_encoded = false;
    let mut rest = value.trim_start_matches([' ', '\t']);
    while !rest.is_empty() {
        let ws_end = rest.find(|c| c != ' ' && c != '\t').unwrap_or(rest.len());
        let ws = &rest[..ws_end];
        rest = &rest[ws_end..];
        if rest.is_empty() {
            out.push_str(ws);
            break;
        }
        let word_end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let word = &rest[..word_end];
        rest = &rest[word_end..];
        let decoded = decode_word(word);
        if decoded.is_none() || !prev_encoded {
            out.push_str(ws);
        }
        prev_encoded = decoded.is_some();
        out.push_str(decoded.as_deref().unwrap_or(word));
    }
    out
}

/// `body` with CRLF, bare CR and bare LF each written as CRLF (the wire encoder's reading).
#[must_use]
pub fn crlf_normalise(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// What a strict RFC 5321 server makes of the bytes after its `354`: the lines up to the first
/// line that is exactly `.` (§4.1.1.4), each un-stuffed (§4.5.2), and the bytes after that line.
/// `None` if there is no end-of-data line.
#[must_use]
pub fn strict_data(wire: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut content = Vec::new();
    let mut pos = 0;
    loop {
        let len = wire[pos..].windows(2).position(|w| w == b"\r\n")?;
        let line = &wire[pos..pos + len];
        pos += len + 2;
        if line == b"." {
            return Some((content, &wire[pos..]));
        }
        content.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        content.extend_from_slice(b"\r\n");
    }
}

/// A source that hands out `data` in chunks of the given sizes (cycled; 0 counts as 1).
pub struct ChunkedSource {
    data: Vec<u8>,
    sizes: Vec<usize>,
    pos: usize,
    turn: usize,
}

impl ChunkedSource {
    #[must_use]
    pub fn new(data: Vec<u8>, sizes: Vec<usize>) -> Self {
        let sizes = if sizes.is_empty() { vec![1] } else { sizes };
        Self {
            data,
            sizes,
            pos: 0,
            turn: 0,
        }
    }
}

impl Source for ChunkedSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.pos >= self.data.len() {
            return Ok(false);
        }
        let n = self.sizes[self.turn % self.sizes.len()].max(1);
        self.turn += 1;
        let end = (self.pos + n).min(self.data.len());
        out.extend_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(true)
    }

    fn remaining_hint(&self) -> Option<u64> {
        None
    }
}
