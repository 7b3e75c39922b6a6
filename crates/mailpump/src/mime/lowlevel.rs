//! LuaSocket's low-level `mime` primitives with their exact two-value results.
//!
//! Each function is one call of the C function of the same name in LuaSocket's `mime.c`, built on
//! the same state machines as the streaming filters: the first result is the output, the second the
//! context to pass to the next call (held bytes, room on the line, the `eol` candidate, the `dot`
//! state). Lua's `nil` is `None`. These are the building blocks of Python's `mailpump.mime.b64`
//! and friends; Rust code should prefer the [`Filter`](crate::Filter)s.

use super::base64::{Base64Decoder, Base64Encoder};
use super::eol::Normalize;
use super::qp::{QpDecoder, QpEncoder};
use super::wrap::{LineWrap, QpWrap};
use crate::smtp::dotstuff::DotStuff;

/// Two results, each possibly `nil`.
pub type Pair = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The machines behind `b64`, `unb64`, `qp` and `unqp`.
trait TwoPart {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>);
    fn held_bytes(&self) -> Vec<u8>;
    /// Ends the input (LuaSocket pads when encoding and drops the rest when decoding).
    fn end(&mut self, out: &mut Vec<u8>);
}

impl TwoPart for Base64Encoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.encode(input, out);
    }
    fn held_bytes(&self) -> Vec<u8> {
        self.held().to_vec()
    }
    fn end(&mut self, out: &mut Vec<u8>) {
        self.flush(out);
    }
}

impl TwoPart for Base64Decoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.decode(input, out);
    }
    fn held_bytes(&self) -> Vec<u8> {
        self.held().to_vec()
    }
    fn end(&mut self, _out: &mut Vec<u8>) {
        self.reset();
    }
}

impl TwoPart for QpEncoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.encode(input, out);
    }
    fn held_bytes(&self) -> Vec<u8> {
        self.held().to_vec()
    }
    fn end(&mut self, out: &mut Vec<u8>) {
        self.flush(out);
    }
}

impl TwoPart for QpDecoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.decode(input, out);
    }
    fn held_bytes(&self) -> Vec<u8> {
        self.held().to_vec()
    }
    fn end(&mut self, _out: &mut Vec<u8>) {
        self.reset();
    }
}

/// The common shape of `b64`, `unb64`, `qp` and `unqp`: process `c` then `d`; with `d` given,
/// return the output and the held bytes; without it, end the input and return the output (`nil`
/// when empty) and `nil`. A nil `c` is the end-of-input blackhole: `(nil, nil)`.
fn two_part(mut machine: impl TwoPart, c: Option<&[u8]>, d: Option<&[u8]>) -> Pair {
    let Some(c) = c else {
        return (None, None);
    };
    let mut out = Vec::new();
    machine.feed(c, &mut out);
    if let Some(d) = d {
        machine.feed(d, &mut out);
        return (Some(out), Some(machine.held_bytes()));
    }
    machine.end(&mut out);
    ((!out.is_empty()).then_some(out), None)
}

/// `mime.b64(C [, D])`: base64 of the longest prefix of `C..D` whose length is a multiple of 3,
/// and the 0–2 bytes left over; with `D` nil the rest is padded and the second result is nil.
/// `b64("")` is `(nil, nil)` while `b64("", "")` is `("", "")`.
///
/// ```
/// use mailpump::mime::lowlevel::b64;
///
/// assert_eq!(b64(Some(b"hell"), Some(b"o")), (Some(b"aGVs".to_vec()), Some(b"lo".to_vec())));
/// assert_eq!(b64(Some(b"lo"), None), (Some(b"bG8=".to_vec()), None));
/// ```
#[must_use]
pub fn b64(c: Option<&[u8]>, d: Option<&[u8]>) -> Pair {
    two_part(Base64Encoder::new(), c, d)
}

/// `mime.unb64(C [, D])`: decodes `C..D`, skipping bytes outside the alphabet; the second result is
/// the 0–3 characters of an incomplete group, or nil (and the group is dropped) when `D` is nil.
///
/// ```
/// use mailpump::mime::lowlevel::unb64;
///
/// assert_eq!(unb64(Some(b"aGVs"), Some(b"bG")), (Some(b"hel".to_vec()), Some(b"bG".to_vec())));
/// ```
#[must_use]
pub fn unb64(c: Option<&[u8]>, d: Option<&[u8]>) -> Pair {
    two_part(Base64Decoder::new(), c, d)
}

/// `mime.qp(C [, D [, marker]])`: quoted-printable of `C..D`, CRLF written as `marker` (CRLF in
/// text mode, `=0D=0A` in binary mode); the second result is the 0–2 bytes still held, or nil when
/// `D` is nil (the held bytes are then written, followed by a soft break).
///
/// ```
/// use mailpump::mime::lowlevel::qp;
///
/// // A SPACE is held back: a CRLF after it would make it `=20` (RFC 2045 §6.7 rule 3).
/// let (encoded, held) = qp(Some("é\r\nok ".as_bytes()), Some(b""), b"\r\n");
/// assert_eq!(encoded.unwrap(), b"=C3=A9\r\nok");
/// assert_eq!(held.unwrap(), b" ");
/// ```
#[must_use]
pub fn qp(c: Option<&[u8]>, d: Option<&[u8]>, marker: &[u8]) -> Pair {
    two_part(QpEncoder::with_marker(marker), c, d)
}

/// `mime.unqp(C [, D])`: decodes quoted-printable `C..D`; the second result is the 0–2 bytes of an
/// incomplete escape, or nil (and they are dropped) when `D` is nil.
///
/// ```
/// use mailpump::mime::lowlevel::unqp;
///
/// assert_eq!(unqp(Some(b"caf=C3=A9"), None), (Some("café".as_bytes().to_vec()), None));
/// ```
#[must_use]
pub fn unqp(c: Option<&[u8]>, d: Option<&[u8]>) -> Pair {
    two_part(QpDecoder::new(), c, d)
}

/// `mime.wrp(left, S [, length])`: breaks `S` into lines of at most `length` bytes, `left` being
/// the room on the current line; returns the output and the new `left`. With `S` nil: `"\r\n"` if
/// the line is unterminated (`left < length`, else nil) and `length`.
///
/// ```
/// use mailpump::mime::lowlevel::wrp;
///
/// assert_eq!(wrp(4, Some(b"abcdef"), 4), (Some(b"abcd\r\nef".to_vec()), 2));
/// assert_eq!(wrp(2, None, 4), (Some(b"\r\n".to_vec()), 4));
/// ```
#[must_use]
pub fn wrp(left: i64, s: Option<&[u8]>, length: i64) -> (Option<Vec<u8>>, i64) {
    let mut wrap = LineWrap::with_state(sane(left), sane(length));
    let mut out = Vec::new();
    if let Some(s) = s {
        wrap.wrap(s, &mut out);
        return (Some(out), wrap.left());
    }
    wrap.end(&mut out);
    ((!out.is_empty()).then_some(out), length)
}

/// `mime.qpwrp(left, S [, length])`: inserts quoted-printable soft breaks so that lines hold at
/// most `length` characters; returns the output and the new `left`. With `S` nil: `"=\r\n"` if the
/// line is unterminated (else nil) and `length`.
///
/// ```
/// use mailpump::mime::lowlevel::qpwrp;
///
/// assert_eq!(qpwrp(6, Some(b"ab=C3cd"), 6), (Some(b"ab=C3=\r\ncd".to_vec()), 4));
/// ```
#[must_use]
pub fn qpwrp(left: i64, s: Option<&[u8]>, length: i64) -> (Option<Vec<u8>>, i64) {
    let mut wrap = QpWrap::with_state(sane(left), sane(length));
    let mut out = Vec::new();
    if let Some(s) = s {
        wrap.wrap(s, &mut out);
        return (Some(out), wrap.left());
    }
    wrap.end(&mut out);
    ((!out.is_empty()).then_some(out), length)
}

/// `mime.eol(ctx, S [, marker])`: normalises the line breaks of `S` to `marker`; `ctx` is the
/// previous chunk's unpaired CR or LF (13 or 10), else 0. Returns the output and the new `ctx`;
/// with `S` nil, `(nil, 0)`.
///
/// ```
/// use mailpump::mime::lowlevel::eol;
///
/// assert_eq!(eol(0, Some(b"a\r"), b"\r\n"), (Some(b"a\r\n".to_vec()), b'\r'));
/// assert_eq!(eol(b'\r', Some(b"\nb"), b"\r\n"), (Some(b"b".to_vec()), 0));
/// ```
#[must_use]
pub fn eol(ctx: u8, s: Option<&[u8]>, marker: &[u8]) -> (Option<Vec<u8>>, u8) {
    let Some(s) = s else {
        return (None, 0);
    };
    let mut norm = Normalize::with_state(ctx, marker);
    let mut out = Vec::new();
    norm.normalize(s, &mut out);
    (Some(out), norm.ctx())
}

/// `mime.dot(state, S)`: dot-stuffs `S`; `state` is 2 at a line start (the initial state), 1 after
/// a CR, 0 inside a line. Returns the output and the new state; with `S` nil, `(nil, 2)`.
///
/// ```
/// use mailpump::mime::lowlevel::dot;
///
/// assert_eq!(dot(2, Some(b".a\r\n")), (Some(b"..a\r\n".to_vec()), 2));
/// ```
#[must_use]
pub fn dot(state: i64, s: Option<&[u8]>) -> (Option<Vec<u8>>, i64) {
    let Some(s) = s else {
        return (None, 2);
    };
    let mut stuff = DotStuff::with_state(state);
    let mut out = Vec::new();
    stuff.stuff(s, &mut out);
    (Some(out), stuff.state())
}

/// Bounds a line counter from the caller: LuaSocket's are C integers; values beyond 2^48 mean
/// nothing for a line and would let the counter arithmetic overflow.
fn sane(count: i64) -> i64 {
    count.clamp(-(1 << 48), 1 << 48)
}
