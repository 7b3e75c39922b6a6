//! Base64 (RFC 2045 §6.8) as streaming filters, with LuaSocket's exact semantics.
//!
//! [`Base64Encoder`] is LuaSocket's `mime.encode("base64")`: the standard alphabet, `=` padding at
//! the end, no line breaks. [`Base64LineEncoder`] fuses it with the CRLF wrap
//! (`chain(encode("base64"), wrap("base64", n))`), which is the hot path of attachments: the input is
//! encoded in large blocks by `base64-simd` and the lines are cut out of the encoded block.
//! [`Base64Decoder`] is `mime.decode("base64")`: it skips every byte outside the alphabet (RFC 2045
//! §6.8 asks decoders to ignore them), treats `=` as the value 0 and decides from the padding how
//! many bytes a group of four yields.

use crate::{BoxError, Filter};
use base64_simd::STANDARD;

/// Raw bytes encoded per block: a multiple of 3 (whole groups) and of 57 (whole 76-column lines),
/// small enough for the encoded block to stay in the L2 cache.
const BLOCK: usize = 57 * 3 * 96;

/// The value of each byte in a base64 string: 0..=63 for the alphabet, 0 for `=` (LuaSocket's
/// `b64unbase`), 255 for bytes the decoder skips.
const UNBASE: [u8; 256] = {
    let mut table = [255u8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table[b'=' as usize] = 0;
    table
};

/// Encodes the last 1 or 2 bytes of a stream as a padded group (LuaSocket's `b64pad`).
fn encode_tail(tail: &[u8], out: &mut Vec<u8>) {
    if !tail.is_empty() {
        STANDARD.encode_append(tail, out);
    }
}

/// Base64 encoder without line breaks (LuaSocket `mime.encode("base64")`, `mime.b64`).
///
/// ```
/// use mailpump::Filter;
/// use mailpump::mime::base64::Base64Encoder;
///
/// let mut encoder = Base64Encoder::new();
/// let mut out = Vec::new();
/// encoder.update(b"hel", &mut out)?;
/// encoder.update(b"lo", &mut out)?; // any split gives the same bytes
/// encoder.finish(&mut out)?;
/// assert_eq!(out, b"aGVsbG8=");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Base64Encoder {
    /// Input bytes that do not yet make a group of three (0, 1 or 2 of them).
    held: [u8; 3],
    held_len: usize,
}

impl Base64Encoder {
    /// A new encoder.
    ///
    /// ```
    /// use mailpump::mime::base64::Base64Encoder;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("hi")), Box::new(Base64Encoder::new()));
    /// assert_eq!(collect(&mut source)?, b"aGk=");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The input bytes held back until a group of three is complete: LuaSocket's second return
    /// value of `b64(C, D)`.
    pub(crate) fn held(&self) -> &[u8] {
        &self.held[..self.held_len]
    }

    /// Completes the held group from `input`; returns the rest of `input` and the completed group
    /// (when there is one).
    fn complete_group<'a>(&mut self, input: &'a [u8]) -> (&'a [u8], Option<[u8; 3]>) {
        if self.held_len == 0 {
            return (input, None);
        }
        let take = (3 - self.held_len).min(input.len());
        self.held[self.held_len..self.held_len + take].copy_from_slice(&input[..take]);
        self.held_len += take;
        if self.held_len < 3 {
            return (&input[take..], None);
        }
        self.held_len = 0;
        (&input[take..], Some(self.held))
    }

    /// Splits `input` into its whole groups of three and keeps the rest for later.
    fn hold_rest<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        let whole = input.len() - input.len() % 3;
        let rest = &input[whole..];
        self.held[..rest.len()].copy_from_slice(rest);
        self.held_len = rest.len();
        &input[..whole]
    }

    /// [`Filter::update`] without the `Result`: base64 encoding cannot fail.
    pub(crate) fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let (input, group) = self.complete_group(input);
        if let Some(group) = group {
            STANDARD.encode_append(group, out);
        }
        if self.held_len > 0 {
            return; // the input did not even complete the held group
        }
        let whole = self.hold_rest(input);
        if !whole.is_empty() {
            STANDARD.encode_append(whole, out);
        }
    }

    /// [`Filter::finish`] without the `Result`.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) {
        encode_tail(self.held(), out);
        self.held_len = 0;
    }
}

impl Filter for Base64Encoder {
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::new()))
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.encode(input, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.flush(out);
        Ok(())
    }
}

/// Base64 encoder with CRLF line breaks every `line_len` characters, the body encoding of
/// attachments (RFC 2045 §6.8: lines of at most 76 characters).
///
/// Byte-identical to [`Base64Encoder`] followed by [`LineWrap::new(line_len)`](super::wrap::LineWrap):
/// every line, the last one included, ends with CRLF, and an empty input gives an empty output.
///
/// ```
/// use mailpump::Filter;
/// use mailpump::mime::base64::Base64LineEncoder;
///
/// let mut encoder = Base64LineEncoder::new(8);
/// let mut out = Vec::new();
/// encoder.update(b"hello world", &mut out)?;
/// encoder.finish(&mut out)?;
/// assert_eq!(out, b"aGVsbG8g\r\nd29ybGQ=\r\n");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Base64LineEncoder {
    encoder: Base64Encoder,
    line_len: usize,
    /// Characters already written on the current line (always below `line_len`: a full line gets
    /// its CRLF at once, which `LineWrap` would write before the next byte or at the end anyway).
    column: usize,
    /// The encoded block being cut into lines, reused from call to call.
    scratch: Vec<u8>,
    /// `LineWrap` itself for `line_len == 0`, whose output (a CRLF before every character) has no
    /// use worth a fast path.
    degenerate: Option<super::wrap::LineWrap>,
}

impl Base64LineEncoder {
    /// A new encoder writing lines of `line_len` characters (76 for MIME bodies).
    ///
    /// ```
    /// use mailpump::mime::base64::Base64LineEncoder;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new(vec![0u8; 60])), Box::new(Base64LineEncoder::new(76)));
    /// let encoded = collect(&mut source)?;
    /// assert!(encoded.split(|&b| b == b'\n').all(|line| line.len() <= 77)); // 76 and the CR
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new(line_len: usize) -> Self {
        Self {
            encoder: Base64Encoder::new(),
            line_len,
            column: 0,
            scratch: Vec::new(),
            degenerate: (line_len == 0).then(|| super::wrap::LineWrap::new(0)),
        }
    }

    /// Writes encoded characters (never CR or LF) into lines.
    fn put_lines(&mut self, mut chars: &[u8], out: &mut Vec<u8>) {
        if let Some(wrap) = &mut self.degenerate {
            wrap.wrap(chars, out);
            return;
        }
        let len = self.line_len;
        out.reserve(chars.len() + (chars.len() / len + 1) * 2);
        if self.column > 0 {
            let take = (len - self.column).min(chars.len());
            out.extend_from_slice(&chars[..take]);
            chars = &chars[take..];
            self.column += take;
            if self.column < len {
                return;
            }
            out.extend_from_slice(b"\r\n");
            self.column = 0;
        }
        let mut lines = chars.chunks_exact(len);
        for line in &mut lines {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        let rest = lines.remainder();
        out.extend_from_slice(rest);
        self.column = rest.len();
    }
}

impl Filter for Base64LineEncoder {
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::new(self.line_len)))
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let (input, group) = self.encoder.complete_group(input);
        if let Some(group) = group {
            scratch.clear();
            STANDARD.encode_append(group, &mut scratch);
            self.put_lines(&scratch, out);
        }
        if self.encoder.held_len == 0 {
            let whole = self.encoder.hold_rest(input);
            for block in whole.chunks(BLOCK) {
                scratch.clear();
                STANDARD.encode_append(block, &mut scratch);
                self.put_lines(&scratch, out);
            }
        }
        self.scratch = scratch;
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        self.encoder.flush(&mut scratch);
        self.put_lines(&scratch, out);
        self.scratch = scratch;
        if let Some(wrap) = &mut self.degenerate {
            wrap.end(out);
        } else if self.column > 0 {
            out.extend_from_slice(b"\r\n");
        }
        self.column = 0;
        Ok(())
    }
}

/// Base64 decoder with LuaSocket's leniency (`mime.decode("base64")`, `mime.unb64`).
///
/// Bytes outside the alphabet are skipped; `=` counts as 0; a group of four yields one byte if its
/// third character is `=`, two if its fourth is, three otherwise; decoding goes on after padding
/// (`"YQ==YWI="` gives `"aab"`); an incomplete group at the end is dropped.
///
/// ```
/// use mailpump::Filter;
/// use mailpump::mime::base64::Base64Decoder;
///
/// let mut decoder = Base64Decoder::new();
/// let mut out = Vec::new();
/// decoder.update(b"aGVs\r\nbG8=\r\n", &mut out)?; // line breaks are skipped
/// decoder.finish(&mut out)?;
/// assert_eq!(out, b"hello");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Base64Decoder {
    /// Accepted characters (alphabet or `=`) of the incomplete group.
    group: [u8; 4],
    group_len: usize,
    /// The input without line breaks, reused from call to call.
    scratch: Vec<u8>,
}

impl Base64Decoder {
    /// A new decoder.
    ///
    /// ```
    /// use mailpump::mime::base64::Base64Decoder;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("aGk=")), Box::new(Base64Decoder::new()));
    /// assert_eq!(collect(&mut source)?, b"hi");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The accepted characters of the incomplete group: LuaSocket's second return value of
    /// `unb64(C, D)`.
    pub(crate) fn held(&self) -> &[u8] {
        &self.group[..self.group_len]
    }

    /// LuaSocket's `b64decode`, one byte at a time: the reference the fast path must agree with.
    fn push(&mut self, c: u8, out: &mut Vec<u8>) {
        if UNBASE[usize::from(c)] > 64 {
            return;
        }
        self.group[self.group_len] = c;
        self.group_len += 1;
        if self.group_len < 4 {
            return;
        }
        self.group_len = 0;
        let g = self.group.map(|c| u32::from(UNBASE[usize::from(c)]));
        let value = (g[0] << 18) | (g[1] << 12) | (g[2] << 6) | g[3];
        let bytes = value.to_be_bytes();
        let valid = if self.group[2] == b'=' {
            1
        } else if self.group[3] == b'=' {
            2
        } else {
            3
        };
        out.extend_from_slice(&bytes[1..=valid]);
    }

    /// [`Filter::update`] without the `Result`.
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        // Line breaks are the only bytes ordinary input holds outside the alphabet: drop them in
        // bulk, then hand every whole group before the first `=` to the SIMD decoder.
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(self.held());
        self.group_len = 0;
        let mut rest = input;
        while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
            scratch.extend_from_slice(&rest[..i]);
            rest = &rest[i + 1..];
        }
        scratch.extend_from_slice(rest);
        let clean = memchr::memchr(b'=', &scratch).unwrap_or(scratch.len());
        let clean = clean - clean % 4;
        // On an error (a byte outside the alphabet) nothing was appended: take the slow path.
        let start = if clean > 0 && STANDARD.decode_append(&scratch[..clean], out).is_ok() {
            clean
        } else {
            0
        };
        for &c in &scratch[start..] {
            self.push(c, out);
        }
        self.scratch = scratch;
    }

    /// [`Filter::finish`] without the `Result`: an incomplete group is dropped, as LuaSocket does.
    pub(crate) fn reset(&mut self) {
        self.group_len = 0;
    }
}

impl Filter for Base64Decoder {
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::new()))
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.decode(input, out);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.reset();
        Ok(())
    }
}
