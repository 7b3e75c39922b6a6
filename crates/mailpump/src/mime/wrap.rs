//! Line wrapping filters: LuaSocket's `wrp` (text and base64) and `qpwrp` (quoted-printable).
//!
//! RFC 2045 limits encoded lines to 76 characters (§6.7 rule 5 for quoted-printable with its soft
//! line breaks, §6.8 for base64). Both wrappers drop CR and turn LF into CRLF, so their input's line
//! breaks must be LF or CRLF; they count the room left on the line like LuaSocket does (an `i64`,
//! because the low-level functions accept any `left` and `length`, even zero or negative).

use crate::{BoxError, Filter};

/// Copies a run of ordinary bytes into lines, inserting `brk` whenever the machine would: a byte
/// is written after a break when `left <= limit`, and each byte uses one unit of `left`.
fn put_run(mut run: &[u8], left: &mut i64, length: i64, limit: i64, brk: &[u8], out: &mut Vec<u8>) {
    while !run.is_empty() {
        if *left <= limit {
            out.extend_from_slice(brk);
            *left = length;
            // After a break the byte is written even when the line has no room (length <= limit).
            if *left <= limit {
                out.push(run[0]);
                *left -= 1;
                run = &run[1..];
                continue;
            }
        }
        // Bytes that fit before the next break: those written while `left > limit`.
        let room = usize::try_from(*left - limit).unwrap_or(usize::MAX);
        let take = room.min(run.len());
        out.extend_from_slice(&run[..take]);
        *left -= i64::try_from(take).unwrap_or(i64::MAX);
        run = &run[take..];
    }
}

/// The position of the first CR, LF or `=` in `input` (its length if none). Encoded binary has an
/// `=` every third byte, so the first bytes are looked at one by one before calling `memchr3`.
fn find_qp_break(input: &[u8]) -> usize {
    let special = |c: &u8| matches!(c, b'\r' | b'\n' | b'=');
    let head = input.len().min(16);
    match input[..head].iter().position(special) {
        Some(i) => i,
        None => {
            head + memchr::memchr3(b'\r', b'\n', b'=', &input[head..]).unwrap_or(input.len() - head)
        }
    }
}

/// LuaSocket's `mime.wrap("text" | "base64", length)` (`wrp`): lines of at most `length` bytes.
///
/// CR is dropped, LF becomes CRLF and starts a new line; any other byte that would make the line
/// longer than `length` is preceded by CRLF. At the end, CRLF is added unless the output already
/// ends a line, so a wrapped base64 body always ends with CRLF.
#[derive(Debug, Clone)]
pub struct LineWrap {
    left: i64,
    length: i64,
}

impl LineWrap {
    /// A new wrapper for lines of `length` bytes (76 for base64 bodies).
    #[must_use]
    pub fn new(length: usize) -> Self {
        let length = i64::try_from(length).unwrap_or(i64::MAX);
        Self::with_state(length, length)
    }

    /// A wrapper in LuaSocket's state: `left` bytes of room on the current line.
    pub(crate) fn with_state(left: i64, length: i64) -> Self {
        Self { left, length }
    }

    /// The room left on the current line (LuaSocket's second return value of `wrp`).
    pub(crate) fn left(&self) -> i64 {
        self.left
    }

    /// [`Filter::update`] without the `Result`.
    pub(crate) fn wrap(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            let end = memchr::memchr2(b'\r', b'\n', input).unwrap_or(input.len());
            put_run(&input[..end], &mut self.left, self.length, 0, b"\r\n", out);
            if end == input.len() {
                break;
            }
            if input[end] == b'\n' {
                out.extend_from_slice(b"\r\n");
                self.left = self.length;
            }
            input = &input[end + 1..];
        }
    }

    /// [`Filter::finish`] without the `Result`: ends an unterminated last line.
    pub(crate) fn end(&mut self, out: &mut Vec<u8>) {
        if self.left < self.length {
            out.extend_from_slice(b"\r\n");
        }
        self.left = self.length;
    }
}

impl Filter for LineWrap {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.wrap(input, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.end(out);
        Ok(())
    }
}

/// LuaSocket's `mime.wrap("quoted-printable")` (`qpwrp`): soft line breaks for quoted-printable.
///
/// Lines are at most `length` characters including the soft break's `=` (RFC 2045 §6.7 rule 5).
/// CR is dropped, LF becomes CRLF (a hard break); a soft break `=CRLF` is inserted before an `=`
/// when fewer than 4 characters are left, so an `=XX` escape is never split, and before any other
/// byte when fewer than 2 are left. At the end `=CRLF` is added unless the output ends a line.
#[derive(Debug, Clone)]
pub struct QpWrap {
    left: i64,
    length: i64,
}

impl QpWrap {
    /// A new wrapper for lines of `length` characters (76 in MIME).
    #[must_use]
    pub fn new(length: usize) -> Self {
        let length = i64::try_from(length).unwrap_or(i64::MAX);
        Self::with_state(length, length)
    }

    /// A wrapper in LuaSocket's state: `left` characters of room on the current line.
    pub(crate) fn with_state(left: i64, length: i64) -> Self {
        Self { left, length }
    }

    /// The room left on the current line (LuaSocket's second return value of `qpwrp`).
    pub(crate) fn left(&self) -> i64 {
        self.left
    }

    /// [`Filter::update`] without the `Result`.
    pub(crate) fn wrap(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            let end = find_qp_break(input);
            put_run(&input[..end], &mut self.left, self.length, 1, b"=\r\n", out);
            if end == input.len() {
                break;
            }
            match input[end] {
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.left = self.length;
                }
                b'=' => {
                    if self.left <= 3 {
                        out.extend_from_slice(b"=\r\n");
                        self.left = self.length;
                    }
                    // An escape `=XY` followed by two ordinary bytes goes out whole: with room
                    // for the `=` and lines of 4 or more, the machine breaks before neither X
                    // nor Y.
                    if let [_, x, y, ..] = input[end..]
                        && self.length >= 4
                        && !matches!(x, b'\r' | b'\n' | b'=')
                        && !matches!(y, b'\r' | b'\n' | b'=')
                    {
                        out.extend_from_slice(&input[end..end + 3]);
                        self.left -= 3;
                        input = &input[end + 3..];
                        continue;
                    }
                    out.push(b'=');
                    self.left -= 1;
                }
                _ => {} // CR
            }
            input = &input[end + 1..];
        }
    }

    /// [`Filter::finish`] without the `Result`: a soft break ends an unterminated last line.
    pub(crate) fn end(&mut self, out: &mut Vec<u8>) {
        if self.left < self.length {
            out.extend_from_slice(b"=\r\n");
        }
        self.left = self.length;
    }
}

impl Filter for QpWrap {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.wrap(input, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.end(out);
        Ok(())
    }
}
