//! Dot-stuffing: the transparency procedure of SMTP DATA (RFC 5321 §4.5.2).
//!
//! [`DotStuff`] is LuaSocket's `mime.stuff()`, kept for compatibility: it doubles a `.` that starts
//! a line and changes nothing else, and only CRLF starts a line. [`WireEncoder`] is what mailpump
//! sends: it also turns every bare CR and bare LF into CRLF and appends the end-of-data mark, so no
//! body, however hostile, can hold an end of data that a lenient next hop would honour (SMTP
//! smuggling: CVE-2023-51764, CVE-2023-51765, CVE-2023-51766, CERT VU#302671).

use crate::{BoxError, Filter};
use memchr::memmem;

/// Where LuaSocket's `dot` machine stands (its numeric states 0, 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dot {
    /// Inside a line (state 0).
    Inside,
    /// Just after a CR (state 1).
    Cr,
    /// At the start of a line, after a CRLF or at the start of the body (state 2).
    LineStart,
}

/// LuaSocket's `mime.stuff()` (`mime.dot`): a `.` at the start of a line becomes `..`.
///
/// Only CRLF starts a line: `"\n.\n"` passes unchanged. The start of the input counts as the start
/// of a line (the CRLF that ends the DATA command). Nothing is held back and nothing is added at the
/// end; the caller writes the end-of-data mark.
///
/// ```
/// use mailpump::Filter;
/// use mailpump::smtp::dotstuff::DotStuff;
///
/// let mut stuff = DotStuff::new();
/// let mut out = Vec::new();
/// stuff.update(b".start\r\n.\r\nlone\n.dot", &mut out)?;
/// stuff.finish(&mut out)?;
/// assert_eq!(out, b"..start\r\n..\r\nlone\n.dot");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DotStuff {
    state: Dot,
    finder: memmem::Finder<'static>,
}

impl Default for DotStuff {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuff {
    /// A new stuffer, at the start of a line.
    ///
    /// ```
    /// use mailpump::smtp::dotstuff::DotStuff;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new(".\r\n")), Box::new(DotStuff::new()));
    /// assert_eq!(collect(&mut source)?, b"..\r\n");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_state(2)
    }

    /// A stuffer in LuaSocket's numeric state (1: after CR, 2: at a line start, else inside).
    pub(crate) fn with_state(state: i64) -> Self {
        let state = match state {
            1 => Dot::Cr,
            2 => Dot::LineStart,
            _ => Dot::Inside,
        };
        Self {
            state,
            finder: memmem::Finder::new(b"\r\n.").into_owned(),
        }
    }

    /// LuaSocket's numeric state, its second return value of `dot`.
    pub(crate) fn state(&self) -> i64 {
        match self.state {
            Dot::Inside => 0,
            Dot::Cr => 1,
            Dot::LineStart => 2,
        }
    }

    /// [`Filter::update`] without the `Result`.
    pub(crate) fn stuff(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = input.last() else {
            return;
        };
        out.reserve(input.len() + 8);
        // A line start carried over from the previous chunk.
        let mut start = 0;
        let carried = match self.state {
            Dot::LineStart => input.first() == Some(&b'.'),
            Dot::Cr => input.starts_with(b"\n."),
            Dot::Inside => false,
        };
        if carried {
            let dot = usize::from(self.state == Dot::Cr);
            out.extend_from_slice(&input[..=dot]);
            out.push(b'.');
            start = dot + 1;
        }
        let base = start;
        for i in self.finder.find_iter(&input[base..]) {
            let dot = base + i + 2;
            out.extend_from_slice(&input[start..=dot]);
            out.push(b'.');
            start = dot + 1;
        }
        out.extend_from_slice(&input[start..]);
        self.state = match last {
            b'\r' => Dot::Cr,
            b'\n' => {
                let after_cr = match input.len() {
                    1 => self.state == Dot::Cr,
                    n => input[n - 2] == b'\r',
                };
                if after_cr {
                    Dot::LineStart
                } else {
                    Dot::Inside
                }
            }
            _ => Dot::Inside,
        };
    }
}

impl Filter for DotStuff {
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::new()))
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.stuff(input, out);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.state = Dot::LineStart;
        Ok(())
    }
}

/// The SMTP DATA encoder: CRLF normalisation, dot-stuffing and the end-of-data mark in one pass.
///
/// - Line breaks (RFC 5321 §2.3.8: only CRLF ends a line on the wire): CRLF stays CRLF, and every
///   bare CR and every bare LF becomes CRLF. Each of CRLF, CR and LF is one line break, so
///   `"\r\r\n"` (a CR, then a CRLF) gives two line breaks, `"\r\n\r\n"`, and `"\n\r"` gives two
///   as well. This differs from [`Normalize`](crate::mime::eol::Normalize) on purpose: LuaSocket's
///   rules give three breaks for `"\r\r\n"` and one for `"\n\r"`, which is of no consequence for
///   transparency, but the wire encoder follows the reading of the receiving servers (Postfix's
///   `smtpd_forbid_bare_newline = normalize` also counts a bare LF as a line end).
/// - Transparency (RFC 5321 §4.5.2): a line that starts with `.` gets a second `.`; the first line
///   of the body counts as a line start.
/// - End of data (RFC 5321 §4.1.1.4): [`finish`](Filter::finish) appends `.\r\n` if nothing was
///   written or the output ends with CRLF, else `\r\n.\r\n`, so the output ends with exactly one
///   `CRLF.CRLF` (counting the CRLF that ends the DATA command) and holds none before it.
///
/// `bytes_in()` and `bytes_out()` count the current message: they keep their values after `finish`
/// (`bytes_out()` then includes the end-of-data mark) and restart from zero with the next message.
///
/// ```
/// use mailpump::smtp::dotstuff::WireEncoder;
///
/// let mut wire = WireEncoder::new();
/// let mut out = Vec::new();
/// wire.encode(b"Subject: x\n\n.hidden\r\n.\r\nend", &mut out);
/// wire.end(&mut out);
/// assert_eq!(out, b"Subject: x\r\n\r\n..hidden\r\n..\r\nend\r\n.\r\n");
/// assert_eq!((wire.bytes_in(), wire.bytes_out()), (27, out.len() as u64));
/// ```
#[derive(Debug, Clone)]
pub struct WireEncoder {
    /// The last byte was a CR, already written as CRLF: an LF right after it is part of that
    /// CRLF and is skipped.
    after_cr: bool,
    /// The output is empty or ends with CRLF.
    line_start: bool,
    /// `finish` ended the previous message: the counters restart with the next input.
    finished: bool,
    bytes_in: u64,
    bytes_out: u64,
}

impl Default for WireEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl WireEncoder {
    /// A new encoder, at the start of a message.
    ///
    /// ```
    /// use mailpump::smtp::dotstuff::WireEncoder;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("hi")), Box::new(WireEncoder::new()));
    /// assert_eq!(collect(&mut source)?, b"hi\r\n.\r\n");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            after_cr: false,
            line_start: true,
            finished: false,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Bytes of message read so far (the body as given).
    ///
    /// ```
    /// use mailpump::smtp::dotstuff::WireEncoder;
    ///
    /// let mut wire = WireEncoder::new();
    /// wire.encode(b"a\n", &mut Vec::new());
    /// assert_eq!((wire.bytes_in(), wire.bytes_out()), (2, 3));
    /// ```
    #[must_use]
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Bytes written so far (normalised, stuffed, and after `finish` the end-of-data mark).
    #[must_use]
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// Encodes `input`, appending the wire bytes to `out`.
    ///
    /// ```
    /// use mailpump::smtp::dotstuff::WireEncoder;
    ///
    /// let mut wire = WireEncoder::new();
    /// let mut out = Vec::new();
    /// wire.encode(b"a\r", &mut out);
    /// wire.encode(b"\n.", &mut out); // the CRLF split across calls stays one line break
    /// assert_eq!(out, b"a\r\n..");
    /// ```
    pub fn encode(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if self.finished {
            self.finished = false;
            self.bytes_in = 0;
            self.bytes_out = 0;
        }
        let before = out.len();
        self.bytes_in += input.len() as u64;
        out.reserve(input.len() + 16);
        while !input.is_empty() {
            let end = memchr::memchr2(b'\r', b'\n', input).unwrap_or(input.len());
            if end > 0 {
                if self.line_start && input[0] == b'.' {
                    out.push(b'.');
                }
                out.extend_from_slice(&input[..end]);
                self.line_start = false;
                self.after_cr = false;
                if end == input.len() {
                    break;
                }
            }
            let c = input[end];
            input = &input[end + 1..];
            if c == b'\n' && self.after_cr {
                self.after_cr = false; // the LF of a CRLF already written
                continue;
            }
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
            self.after_cr = c == b'\r';
        }
        self.bytes_out += (out.len() - before) as u64;
    }

    /// Appends the end-of-data mark and returns to the start of a message.
    ///
    /// ```
    /// use mailpump::smtp::dotstuff::WireEncoder;
    ///
    /// let mut wire = WireEncoder::new();
    /// let mut out = Vec::new();
    /// wire.end(&mut out);
    /// assert_eq!(out, b".\r\n"); // an empty message
    /// ```
    pub fn end(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            // A second finish in a row is a new, empty message.
            self.bytes_in = 0;
            self.bytes_out = 0;
        }
        let mark: &[u8] = if self.line_start {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        };
        out.extend_from_slice(mark);
        self.bytes_out += mark.len() as u64;
        self.after_cr = false;
        self.line_start = true;
        self.finished = true;
    }
}

impl Filter for WireEncoder {
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::new()))
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.encode(input, out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.end(out);
        Ok(())
    }
}
