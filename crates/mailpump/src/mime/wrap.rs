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

/// LuaSocket's `mime.wrap("text" | "base64", length)` (`wrp`): lines of at most `length` bytes.
///
/// CR is dropped, LF becomes CRLF and starts a new line; any other byte that would make the line
/// longer than `length` is preceded by CRLF. At the end, CRLF is added unless the output already
/// ends a line, so a wrapped base64 body always ends with CRLF.
///
/// ```
/// use mailpump::Filter;
/// use mailpump::mime::wrap::LineWrap;
///
/// let mut wrap = LineWrap::new(4);
/// let mut out = Vec::new();
/// wrap.update(b"abcdefg\nhi", &mut out)?;
/// wrap.finish(&mut out)?;
/// assert_eq!(out, b"abcd\r\nefg\r\nhi\r\n");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LineWrap {
    left: i64,
    length: i64,
}

impl LineWrap {
    /// A new wrapper for lines of `length` bytes (76 for base64 bodies).
    ///
    /// ```
    /// use mailpump::mime::wrap::LineWrap;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("abcdef")), Box::new(LineWrap::new(3)));
    /// assert_eq!(collect(&mut source)?, b"abc\r\ndef\r\n");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
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
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::with_state(self.length, self.length)))
    }

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
///
/// ```
/// use mailpump::Filter;
/// use mailpump::mime::wrap::QpWrap;
///
/// let mut wrap = QpWrap::new(8);
/// let mut out = Vec::new();
/// wrap.update(b"abcd=C3=A9xyz", &mut out)?;
/// wrap.finish(&mut out)?;
/// // Lines of at most 8 characters with the soft break's `=`; escapes are never split.
/// assert_eq!(out, b"abcd=C3=\r\n=A9xyz=\r\n");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct QpWrap {
    left: i64,
    length: i64,
}

impl QpWrap {
    /// A new wrapper for lines of `length` characters (76 in MIME).
    ///
    /// ```
    /// use mailpump::mime::wrap::QpWrap;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("=C3=A9t=C3=A9")), Box::new(QpWrap::new(6)));
    /// assert_eq!(collect(&mut source)?, b"=C3=\r\n=A9t=\r\n=C3=\r\n=A9=\r\n");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
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
        // Each line of output costs at most 3 bytes of soft break beyond its input.
        out.reserve(input.len() + input.len() / 24 + 3);
        while !input.is_empty() {
            let end = memchr::memchr2(b'\r', b'\n', input).unwrap_or(input.len());
            self.put_line_bytes(&input[..end], out);
            if end == input.len() {
                break;
            }
            if input[end] == b'\n' {
                out.extend_from_slice(b"\r\n");
                self.left = self.length;
            }
            // A CR is dropped.
            input = &input[end + 1..];
        }
    }

    /// Writes a run without CR or LF, inserting soft breaks where LuaSocket's machine does: before
    /// an `=` when `left <= 3` (an `=XX` escape is never split), before any other byte when
    /// `left <= 1`. While `left > 3` neither can happen, so the bytes up to that point are copied
    /// whole: one copy and a few single steps per line, whatever mix of escapes the run holds.
    fn put_line_bytes(&mut self, mut run: &[u8], out: &mut Vec<u8>) {
        while let Some(&c) = run.first() {
            if self.left > 3 {
                let free = usize::try_from(self.left - 3).unwrap_or(usize::MAX);
                let take = free.min(run.len());
                out.extend_from_slice(&run[..take]);
                self.left -= i64::try_from(take).unwrap_or(i64::MAX);
                run = &run[take..];
                continue;
            }
            let limit = if c == b'=' { 3 } else { 1 };
            if self.left <= limit {
                out.extend_from_slice(b"=\r\n");
                self.left = self.length;
            }
            out.push(c);
            self.left -= 1;
            run = &run[1..];
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
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::with_state(self.length, self.length)))
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.wrap(input, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.end(out);
        Ok(())
    }
}
