//! Quoted-printable (RFC 2045 §6.7) as streaming filters, with LuaSocket's exact rules.
//!
//! The encoder does not limit line length (chain it with [`QpWrap`](super::wrap::QpWrap)); the
//! decoder keeps only what LuaSocket keeps. Both run a byte-at-a-time state machine that is a
//! transcription of LuaSocket's rules, and skip over runs of printable ASCII in bulk: the machine
//! would copy those bytes unchanged, so the fast path never decides anything by itself.

use crate::{BoxError, Filter};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The position of the first byte that is not printable ASCII or SPACE, or is `=`: the bytes
/// both machines must look at (`input.len()` if there is none). Scans 8 bytes at a time.
pub(crate) fn find_special(input: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = input.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // Bytes below 32, bytes of 127 and above, and `=` (the lowest flagged byte is exact:
        // a borrow can only flag bytes above a true hit).
        let below = x.wrapping_sub(ONES * 32) & !x;
        let above = ((x & !HIGH) + ONES) | x;
        let eq = x ^ (ONES * u64::from(b'='));
        let eq = eq.wrapping_sub(ONES) & !eq;
        let flags = (below | above | eq) & HIGH;
        if flags != 0 {
            return offset + (flags.trailing_zeros() / 8) as usize;
        }
        offset += 8;
    }
    let tail = words.remainder();
    offset
        + tail
            .iter()
            .position(|&c| !(32..=126).contains(&c) || c == b'=')
            .unwrap_or(tail.len())
}

/// Whether LuaSocket writes `c` literally in every position (class PLAIN: 33–60, 62–126).
fn plain(c: u8) -> bool {
    (33..=126).contains(&c) && c != b'='
}

/// Appends `=XX` with uppercase hex digits (RFC 2045 §6.7 rule 1).
fn quote(c: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[b'=', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
}

/// What the encoder writes for each byte that needs no look-ahead: the byte itself (PLAIN) or its
/// `=XX` (QUOTED), padded to 3 bytes, with the length to keep; 0 for TAB, SPACE and CR.
const DENSE: [([u8; 3], u8); 256] = {
    let mut table = [([0u8; 3], 0u8); 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = match b {
            b'\t' | b' ' | b'\r' => ([0; 3], 0),
            33..=60 | 62..=126 => ([b, 0, 0], 1),
            _ => ([b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]], 3),
        };
        c += 1;
    }
    table
};

/// Encodes the bytes of `input` that need no look-ahead, up to the first TAB, SPACE or CR or
/// 256 bytes, without a branch per byte; returns how many were consumed.
fn encode_dense(input: &[u8], out: &mut Vec<u8>) -> usize {
    let input = &input[..input.len().min(256)];
    let start = out.len();
    out.resize(start + input.len() * 3, 0);
    let buf = &mut out[start..];
    let (mut read, mut written) = (0, 0);
    for &c in input {
        let (bytes, len) = DENSE[usize::from(c)];
        if len == 0 {
            break;
        }
        buf[written..written + 3].copy_from_slice(&bytes);
        written += usize::from(len);
        read += 1;
    }
    out.truncate(start + written);
    read
}

/// How line breaks are encoded.
///
/// ```
/// use mailpump::Filter;
/// use mailpump::mime::qp::{QpEncoder, QpMode};
///
/// let mut text = QpEncoder::new(QpMode::Text);
/// let mut binary = QpEncoder::new(QpMode::Binary);
/// let (mut a, mut b) = (Vec::new(), Vec::new());
/// text.update(b"1\r\n2\r\n", &mut a)?;
/// text.finish(&mut a)?;
/// binary.update(b"1\r\n2\r\n", &mut b)?;
/// binary.finish(&mut b)?;
/// assert_eq!(a, b"1\r\n2\r\n");
/// assert_eq!(b, b"1=0D=0A2=0D=0A");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QpMode {
    /// CRLF is a line break and stays CRLF (`mime.encode("quoted-printable")`); the input should
    /// be normalised to CRLF first, since a bare CR or LF is quoted as `=0D` / `=0A`.
    Text,
    /// CRLF is data and becomes `=0D=0A` (`mime.encode("quoted-printable", "binary")`).
    Binary,
}

/// LuaSocket's quoted-printable encoder (`mime.encode("quoted-printable", mode)`, `mime.qp`).
///
/// Printable ASCII except `=` is written as is; SPACE and TAB too, unless a CRLF follows them
/// (RFC 2045 §6.7 rule 3); CRLF becomes the mode's marker; every other byte becomes `=XX`. At the
/// end the 1–2 bytes still held are written (PLAIN ones literally, others quoted) followed by a
/// soft break `=CRLF`, as LuaSocket's `qppad` does.
///
/// ```
/// use mailpump::{Chain, Filter};
/// use mailpump::mime::qp::{QpEncoder, QpMode};
/// use mailpump::mime::wrap::QpWrap;
///
/// // The encoder does not limit line length: chain it with `QpWrap`, as message bodies are.
/// let mut qp = Chain::new(vec![Box::new(QpEncoder::new(QpMode::Text)), Box::new(QpWrap::new(76))]);
/// let mut out = Vec::new();
/// qp.update("café = coffee \r\n".as_bytes(), &mut out)?;
/// qp.finish(&mut out)?;
/// assert_eq!(out, b"caf=C3=A9 =3D coffee=20\r\n");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct QpEncoder {
    marker: Vec<u8>,
    /// Bytes the machine is still looking at (LuaSocket's atom, at most 3).
    atom: [u8; 3],
    atom_len: usize,
}

impl QpEncoder {
    /// A new encoder in `mode`.
    ///
    /// ```
    /// use mailpump::mime::qp::{QpEncoder, QpMode};
    ///
    /// let encoder = QpEncoder::new(QpMode::Binary);
    /// # drop(encoder);
    /// ```
    #[must_use]
    pub fn new(mode: QpMode) -> Self {
        Self::with_marker(match mode {
            QpMode::Text => b"\r\n",
            QpMode::Binary => b"=0D=0A",
        })
    }

    /// An encoder writing `marker` for each CRLF (the third argument of LuaSocket's `mime.qp`).
    pub(crate) fn with_marker(marker: &[u8]) -> Self {
        Self {
            marker: marker.to_vec(),
            atom: [0; 3],
            atom_len: 0,
        }
    }

    /// The bytes held back: LuaSocket's second return value of `qp(C, D)`.
    pub(crate) fn held(&self) -> &[u8] {
        &self.atom[..self.atom_len]
    }

    /// LuaSocket's `qpencode` for one byte: the reference the fast path must agree with.
    fn push(&mut self, c: u8, out: &mut Vec<u8>) {
        self.atom[self.atom_len] = c;
        self.atom_len += 1;
        while self.atom_len > 0 {
            let first = self.atom[0];
            match first {
                b'\r' => {
                    if self.atom_len < 2 {
                        return;
                    }
                    if self.atom[1] == b'\n' {
                        out.extend_from_slice(&self.marker);
                        self.atom_len = 0;
                        return;
                    }
                    quote(first, out);
                }
                b'\t' | b' ' => {
                    if self.atom_len < 3 {
                        return;
                    }
                    if self.atom[1] == b'\r' && self.atom[2] == b'\n' {
                        quote(first, out);
                        out.extend_from_slice(&self.marker);
                        self.atom_len = 0;
                        return;
                    }
                    out.push(first);
                }
                c if plain(c) => out.push(c),
                c => quote(c, out),
            }
            self.atom.copy_within(1.., 0);
            self.atom_len -= 1;
        }
    }

    /// [`Filter::update`] without the `Result`.
    pub(crate) fn encode(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 8);
        while !input.is_empty() {
            if self.atom_len > 0 {
                self.push(input[0], out);
                input = &input[1..];
                continue;
            }
            // With nothing held, a run of PLAIN and SPACE is written as is, except a SPACE that
            // may precede a CRLF (the run's last byte) and the last two bytes of the input (the
            // machine holds them, and `held` must say so).
            let run = find_special(input);
            let mut copy = run;
            if run == input.len() {
                copy = run.saturating_sub(2);
            } else if run > 0 && input[run - 1] == b' ' {
                copy = run - 1;
            }
            let at_special = copy == run && run < input.len();
            out.extend_from_slice(&input[..copy]);
            input = &input[copy..];
            if at_special {
                // Binary-like data: PLAIN and QUOTED bytes need no look-ahead.
                input = &input[encode_dense(input, out)..];
            }
            if let Some((&c, rest)) = input.split_first() {
                self.push(c, out);
                input = rest;
            }
        }
    }

    /// [`Filter::finish`] without the `Result`: LuaSocket's `qppad`.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>) {
        for &c in self.held() {
            if plain(c) {
                out.push(c);
            } else {
                quote(c, out);
            }
        }
        if self.atom_len > 0 {
            out.extend_from_slice(b"=\r\n");
        }
        self.atom_len = 0;
    }
}

impl Filter for QpEncoder {
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::with_marker(&self.marker)))
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

/// The value of a hex digit, either case (LuaSocket's `qpunbase`), or 255.
fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        b'a'..=b'f' => c - b'a' + 10,
        _ => 255,
    }
}

/// Decodes `=XY` (LuaSocket's `qpdecode` for an atom that starts with `=`).
fn unescape(atom: [u8; 3], out: &mut Vec<u8>) {
    let [_, a, b] = atom;
    if a == b'\r' && b == b'\n' {
        return; // a soft line break
    }
    let (hi, lo) = (unhex(a), unhex(b));
    if hi > 15 || lo > 15 {
        out.extend_from_slice(&atom);
    } else {
        out.push((hi << 4) | lo);
    }
}

/// LuaSocket's quoted-printable decoder (`mime.decode("quoted-printable")`, `mime.unqp`).
///
/// `=CRLF` (a soft break) is removed; `=XX` with hex digits of either case becomes the byte; `=`
/// with any other two bytes is kept as those three bytes; CRLF is kept; a CR followed by anything
/// else is dropped together with that byte; TAB and 32–126 are kept; every other byte is dropped;
/// an incomplete escape at the end is dropped. Trailing whitespace is not removed.
///
/// ```
/// use mailpump::Filter;
/// use mailpump::mime::qp::QpDecoder;
///
/// let mut decoder = QpDecoder::new();
/// let mut out = Vec::new();
/// decoder.update(b"caf=C3=A9 is a lo=\r\nng word\r\n", &mut out)?;
/// decoder.finish(&mut out)?;
/// assert_eq!(out, "café is a long word\r\n".as_bytes());
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct QpDecoder {
    atom: [u8; 3],
    atom_len: usize,
}

impl QpDecoder {
    /// A new decoder.
    ///
    /// ```
    /// use mailpump::mime::qp::QpDecoder;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("a=3Db")), Box::new(QpDecoder::new()));
    /// assert_eq!(collect(&mut source)?, b"a=b");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes held back: LuaSocket's second return value of `unqp(C, D)`.
    pub(crate) fn held(&self) -> &[u8] {
        &self.atom[..self.atom_len]
    }

    /// LuaSocket's `qpdecode` for one byte.
    fn push(&mut self, c: u8, out: &mut Vec<u8>) {
        self.atom[self.atom_len] = c;
        self.atom_len += 1;
        match self.atom[0] {
            b'=' => {
                if self.atom_len < 3 {
                    return;
                }
                unescape(self.atom, out);
            }
            b'\r' => {
                if self.atom_len < 2 {
                    return;
                }
                if self.atom[1] == b'\n' {
                    out.extend_from_slice(b"\r\n");
                }
            }
            c => {
                if c == b'\t' || (32..127).contains(&c) {
                    out.push(c);
                }
            }
        }
        self.atom_len = 0;
    }

    /// [`Filter::update`] without the `Result`.
    pub(crate) fn decode(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        while !input.is_empty() {
            if self.atom_len == 0 {
                // Printable ASCII and SPACE other than `=` are kept as they are.
                let run = find_special(input);
                out.extend_from_slice(&input[..run]);
                input = &input[run..];
                if let [b'=', a, b, ..] = *input {
                    // A whole escape: what the machine does with nothing held.
                    unescape([b'=', a, b], out);
                    input = &input[3..];
                    continue;
                }
                if input.is_empty() {
                    break;
                }
            }
            self.push(input[0], out);
            input = &input[1..];
        }
    }

    /// [`Filter::finish`] without the `Result`: an incomplete escape is dropped.
    pub(crate) fn reset(&mut self) {
        self.atom_len = 0;
    }
}

impl Filter for QpDecoder {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes biased towards what the encoder decides with look-ahead (xorshift64, reproducible).
    fn texty(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match x % 8 {
                    0 => b' ',
                    1 => b'\r',
                    2 => b'\n',
                    3 => b'\t',
                    4 => b'a',
                    _ => (x >> 32) as u8,
                }
            })
            .collect()
    }

    #[test]
    fn bulk_paths_agree_with_the_machine_for_every_marker_and_split() {
        // The modes' markers and others (LuaSocket's low-level `qp` accepts any marker).
        let markers: [&[u8]; 6] = [b"\r\n", b"=0D=0A", b"\n", b"<EOL>!", b"<LINE-END>", b""];
        for marker in markers {
            for seed in 1..40 {
                let input = texty(1000, seed);
                let mut reference = QpEncoder::with_marker(marker);
                let mut expected = Vec::new();
                for &c in &input {
                    reference.push(c, &mut expected);
                }
                reference.flush(&mut expected);
                for piece in [1, 2, 3, 7, 255, 256, 257, 1000] {
                    let mut encoder = QpEncoder::with_marker(marker);
                    let mut got = Vec::new();
                    for chunk in input.chunks(piece) {
                        encoder.encode(chunk, &mut got);
                    }
                    encoder.flush(&mut got);
                    assert_eq!(
                        got, expected,
                        "marker {marker:?}, seed {seed}, pieces of {piece}"
                    );
                }
            }
        }
    }
}
