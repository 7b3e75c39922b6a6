//! Shared pieces of the hardening tests: a reader of generated header blocks (RFC 5322
//! unfolding, RFC 2047 decoding), a strict RFC 5321 reader of DATA, a source that hands out
//! chunks of chosen sizes, and envelope helpers.

use mailpump::BoxError;
use mailpump::mime::message::{MessageEncoder, MessageOptions, Part};
use mailpump::smtp::address::Address;
use mailpump::smtp::client::Envelope;
use mailpump::source::Source;

/// `me@example.com` to each of `rcpt`.
#[must_use]
pub fn envelope(rcpt: &[&str]) -> Envelope {
    Envelope::new(
        Address::parse("me@example.com").unwrap(),
        rcpt.iter().map(|r| Address::parse(r).unwrap()).collect(),
    )
}

/// Encodes `root` with reproducible options; the encoder's error if it refuses the tree.
pub fn encode(root: Part) -> Result<Vec<u8>, mailpump::MessageError> {
    let options = MessageOptions {
        seed: Some(1),
        timestamp: Some(1_700_000_000),
        zone: Some("+0000".into()),
        ..MessageOptions::default()
    };
    let mut encoder = MessageEncoder::new(root, options)?;
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

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        let v = u32::try_from(ALPHA.iter().position(|&a| a == c)?).ok()?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// One RFC 2047 encoded-word decoded, or `None` if `word` is not one.
fn decode_word(word: &str) -> Option<Vec<u8>> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut it = inner.splitn(3, '?');
    let (_charset, scheme, text) = (it.next()?, it.next()?, it.next()?);
    if text.contains('?') {
        return None;
    }
    match scheme {
        "Q" | "q" => {
            let b = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' => {
                        out.push(hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            Some(out)
        }
        "B" | "b" => unbase64(text),
        _ => None,
    }
}

/// An unstructured value with its encoded-words decoded (RFC 2047 §6.2: the whitespace between
/// two adjacent encoded-words is dropped).
#[must_use]
pub fn decode_2047(value: &str) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut prev_encoded = false;
    let mut rest = value;
    while !rest.is_empty() {
        let ws_end = rest.find(|c| c != ' ' && c != '\t').unwrap_or(rest.len());
        let ws = &rest[..ws_end];
        rest = &rest[ws_end..];
        if rest.is_empty() {
            out.extend_from_slice(ws.as_bytes());
            break;
        }
        let word_end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let word = &rest[..word_end];
        rest = &rest[word_end..];
        if let Some(bytes) = decode_word(word) {
            if !prev_encoded {
                out.extend_from_slice(ws.as_bytes());
            }
            out.extend_from_slice(&bytes);
            prev_encoded = true;
        } else {
            out.extend_from_slice(ws.as_bytes());
            out.extend_from_slice(word.as_bytes());
            prev_encoded = false;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
