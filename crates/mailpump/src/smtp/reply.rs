//! SMTP replies and their parser (RFC 5321 §4.2, RFC 3463 enhanced status codes).
//!
//! The parser does no I/O, in the style of `httparse`: give it the bytes received so far and it
//! answers [`Parsed::Complete`] with the reply and the number of bytes it used, or
//! [`Parsed::Partial`] when it needs more. Limits on the line length and the number of lines are
//! checked on every call, on the partial data too, so that a hostile server streaming an endless
//! line or an endless multi-line reply is caught as soon as it crosses a limit, with bounded memory.

use std::fmt;

/// An enhanced mail system status code (RFC 3463 §2), such as `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// The class: 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject (0 to 999): 1 addressing, 2 mailbox, 3 mail system, 4 network, ...
    pub subject: u16,
    /// The detail (0 to 999), whose meaning depends on the subject.
    pub detail: u16,
}

impl EnhancedCode {
    /// Parses `class.subject.detail` at the start of `text`, followed by a space or the end of the
    /// text (RFC 3463 §2: class is 2, 4 or 5, subject and detail have 1 to 3 digits). Returns the
    /// code and the number of bytes it spans.
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
        let class = match text.first()? {
            b'2' => 2,
            b'4' => 4,
            b'5' => 5,
            _ => return None,
        };
        if text.get(1) != Some(&b'.') {
            return None;
        }
        let (subject, n) = digits(&text[2..])?;
        let at = 2 + n;
        if text.get(at) != Some(&b'.') {
            return None;
        }
        let (detail, n) = digits(&text[at + 1..])?;
        let end = at + 1 + n;
        match text.get(end) {
            None | Some(b' ') => Some((
                Self {
                    class,
                    subject,
                    detail,
                },
                end,
            )),
            Some(_) => None,
        }
    }
}

/// One to three ASCII digits at the start of `text`, and how many there were.
fn digits(text: &[u8]) -> Option<(u16, usize)> {
    let n = text
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || text.get(n).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let value = text[..n]
        .iter()
        .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    Some((value, n))
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete SMTP reply: a code and one or more lines of text (RFC 5321 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code, 200 to 599.
    pub code: u16,
    /// The enhanced status code found at the start of the first line's text, if any.
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line as received, after the code and its separator (the enhanced status
    /// code, when present, is still there; [`Reply::text`] strips it). Bytes that are not UTF-8 are
    /// replaced by U+FFFD.
    pub lines: Vec<String>,
}

impl Reply {
    /// A reply with `code` and `lines`; the enhanced status code is read from the first line, as
    /// the parser does. Meant for tests and for replies made up by the client.
    #[must_use]
    pub fn new(code: u16, lines: Vec<String>) -> Self {
        let enhanced = lines.first().and_then(|l| enhanced_for(code, l.as_bytes()));
        Self {
            code,
            enhanced,
            lines,
        }
    }

    /// The text of the reply: the lines joined by `\n`, each without its enhanced status code.
    #[must_use]
    pub fn text(&self) -> String {
        let mut text = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(self.line_text(line));
        }
        text
    }

    /// `line` without the reply's enhanced status code and the space after it, when it starts with
    /// that code (RFC 3463 codes are repeated on every line of a multi-line reply, by convention).
    fn line_text<'a>(&self, line: &'a str) -> &'a str {
        match (self.enhanced, EnhancedCode::parse_prefix(line.as_bytes())) {
            (Some(ours), Some((code, end))) if ours == code => {
                line[end..].strip_prefix(' ').unwrap_or(&line[end..])
            }
            _ => line,
        }
    }

    /// The first digit of the code: 2, 3, 4 or 5.
    #[must_use]
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// 2xx: the requested action was completed (RFC 5321 §4.2.1).
    #[must_use]
    pub fn is_positive_completion(&self) -> bool {
        self.class() == 2
    }

    /// 3xx: the command was accepted and the server waits for more (`354` after DATA, `334` during
    /// AUTH).
    #[must_use]
    pub fn is_positive_intermediate(&self) -> bool {
        self.class() == 3
    }

    /// 4xx: a transient failure; the same command may succeed later.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.class() == 4
    }

    /// 5xx: a permanent failure; the same command will fail again.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        self.class() == 5
    }
}

/// The enhanced status code at the start of `text`, kept only when its class agrees with the reply
/// code's (RFC 3463 §2: "the class ... must match the reply code"), so that a 250 reply whose text
/// happens to start with `5.0.0` is not misread.
fn enhanced_for(code: u16, text: &[u8]) -> Option<EnhancedCode> {
    let (enhanced, _) = EnhancedCode::parse_prefix(text)?;
    (u16::from(enhanced.class) == code / 100).then_some(enhanced)
}

impl fmt::Display for Reply {
    /// `550 5.1.1 text`, with the lines of a multi-line text separated by `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enhanced) = self.enhanced {
            write!(f, " {enhanced}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// Bounds on what the parser accepts, so a hostile server cannot exhaust memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// The longest line, in octets, without its line ending. RFC 5321 §4.5.3.1.5 allows 512
    /// including CRLF; real servers exceed it slightly, hence a generous default of 2,048.
    pub max_line: usize,
    /// The most lines in one reply (default 128; an EHLO reply has a few dozen at most).
    pub max_lines: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        Self {
            max_line: 2048,
            max_lines: 128,
        }
    }
}

/// The outcome of a successful parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole reply, which used the first `consumed` bytes of the input.
    Complete {
        /// The reply.
        reply: Reply,
        /// How many bytes of the input it spans, line endings included.
        consumed: usize,
    },
    /// The input holds the beginning of a valid reply; read more and parse again.
    Partial,
}

/// Why the input is not an SMTP reply. Any of these means the connection can no longer be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyError {
    /// A line does not start with three digits.
    Code,
    /// The reply code is outside 200..=599.
    CodeRange,
    /// The code is followed by something other than a space, `-` or the end of the line.
    Separator,
    /// A continuation line carries a different code from the first line.
    MixedCodes,
    /// A carriage return not followed by a line feed (RFC 5321 §2.3.8).
    BareCr,
    /// A line is longer than [`ReplyLimits::max_line`].
    LineTooLong,
    /// The reply has more than [`ReplyLimits::max_lines`] lines.
    TooManyLines,
}

impl ReplyError {
    fn description(self) -> &'static str {
        match self {
            Self::Code => "a reply line does not start with a three-digit code",
            Self::CodeRange => "the reply code is outside 200 to 599",
            Self::Separator => {
                "the reply code is followed by something other than a space, '-' or the end of the line"
            }
            Self::MixedCodes => "the lines of a multi-line reply carry different codes",
            Self::BareCr => "a reply line contains a carriage return that is not part of CRLF",
            Self::LineTooLong => "a reply line is longer than the limit",
            Self::TooManyLines => "a multi-line reply has more lines than the limit",
        }
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed SMTP reply: {}", self.description())
    }
}

impl std::error::Error for ReplyError {}

/// Parses one reply at the start of `buf` with fresh state. See [`ReplyParser`] for a parser that
/// does not rescan complete lines when it is called again with more data.
pub fn parse_reply(buf: &[u8], limits: &ReplyLimits) -> Result<Parsed, ReplyError> {
    ReplyParser::with_limits(*limits).parse(buf)
}

/// A resumable reply parser.
///
/// Call [`ReplyParser::parse`] with everything received since the start of the reply; while it
/// answers `Partial`, append what you read next and call it again with the longer buffer (the same
/// bytes at the front). It remembers the lines it has already checked, so each call only scans the
/// unfinished line. After `Complete` or an error it starts afresh: drop the `consumed` bytes and
/// call it with the rest for the next reply.
#[derive(Debug, Clone, Default)]
pub struct ReplyParser {
    limits: ReplyLimits,
    /// The code of the first line, once known.
    code: Option<u16>,
    /// Byte ranges of the text of each complete line.
    lines: Vec<(usize, usize)>,
    /// Where the first unfinished line starts.
    checked: usize,
}

impl ReplyParser {
    /// A parser with the default [`ReplyLimits`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser with `limits`.
    #[must_use]
    pub fn with_limits(limits: ReplyLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> ReplyLimits {
        self.limits
    }

    /// Forgets any partial reply.
    pub fn reset(&mut self) {
        self.code = None;
        self.lines.clear();
        self.checked = 0;
    }

    /// Parses the reply at the start of `buf`; see the type's documentation for the protocol.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Parsed, ReplyError> {
        if buf.len() < self.checked {
            // Not the same buffer as last time: start over rather than trust stale offsets.
            self.reset();
        }
        let result = self.parse_from(buf);
        if !matches!(result, Ok(Parsed::Partial)) {
            self.reset();
        }
        result
    }

    fn parse_from(&mut self, buf: &[u8]) -> Result<Parsed, ReplyError> {
        loop {
            let start = self.checked;
            let line = match scan_line(&buf[start..], self.code, &self.limits)? {
                Line::Partial => return Ok(Parsed::Partial),
                Line::Complete(line) => line,
            };
            let code = *self.code.get_or_insert(line.code);
            self.lines.push((start + line.text.0, start + line.text.1));
            self.checked = start + line.len;
            if line.last {
                return Ok(Parsed::Complete {
                    reply: self.build(buf, code),
                    consumed: self.checked,
                });
            }
            // RFC 5321 §4.2.1 puts no limit on the number of lines; we must, to bound memory. Fail
            // as soon as the next line is known to be one too many, before any of it arrives.
            if self.lines.len() >= self.limits.max_lines {
                return Err(ReplyError::TooManyLines);
            }
        }
    }

    fn build(&self, buf: &[u8], code: u16) -> Reply {
        let lines = self
            .lines
            .iter()
            .map(|&(s, e)| String::from_utf8_lossy(&buf[s..e]).into_owned())
            .collect();
        Reply::new(code, lines)
    }
}

/// A line whose end has been seen.
struct CompleteLine {
    code: u16,
    /// The text's range within the line.
    text: (usize, usize),
    /// The line's length, line ending included.
    len: usize,
    /// Whether this is the reply's final line (space or nothing after the code).
    last: bool,
}

enum Line {
    Partial,
    Complete(CompleteLine),
}

/// Checks the line at the start of `buf` as far as it goes.
///
/// The checks run in the order of the bytes, and each error is raised at the first byte that
/// proves it, so a prefix of the input either fails with the same error as the whole input or is
/// reported partial: the result does not depend on how the input was split.
fn scan_line(
    buf: &[u8],
    first_code: Option<u16>,
    limits: &ReplyLimits,
) -> Result<Line, ReplyError> {
    // The code: three digits, checked one by one so garbage is refused on its first byte.
    for (i, b) in buf.iter().take(3).enumerate() {
        if !b.is_ascii_digit() {
            return Err(ReplyError::Code);
        }
        if i == 0 && !(b'2'..=b'5').contains(b) {
            return Err(ReplyError::CodeRange);
        }
    }
    if buf.len() < 3 {
        return Ok(Line::Partial);
    }
    let code = buf[..3]
        .iter()
        .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    if first_code.is_some_and(|first| first != code) {
        return Err(ReplyError::MixedCodes);
    }
    let (last, text_start) = match buf.get(3) {
        None => return Ok(Line::Partial),
        Some(b'-') => (false, 4),
        Some(b' ') => (true, 4),
        // A bare code on the final line: "250\r\n".
        Some(b'\r' | b'\n') => (true, 3),
        Some(_) => return Err(ReplyError::Separator),
    };
    // The rest of the line, up to the limit; RFC 5321 §2.3.8 allows CR only as part of CRLF.
    // Offsets up to `max_line` may hold text or the line ending; one more text byte is too many.
    let window =
        &buf[text_start.min(buf.len())..buf.len().min(limits.max_line + 1).max(text_start)];
    let Some(at) = memchr::memchr2(b'\r', b'\n', window) else {
        return if buf.len() > limits.max_line.max(text_start) {
            Err(ReplyError::LineTooLong)
        } else {
            Ok(Line::Partial)
        };
    };
    let end = text_start + at;
    let len = match (buf[end], buf.get(end + 1)) {
        (b'\n', _) => end + 1,
        (_, None) => return Ok(Line::Partial),
        (_, Some(b'\n')) => end + 2,
        (_, Some(_)) if end >= limits.max_line => return Err(ReplyError::LineTooLong),
        (_, Some(_)) => return Err(ReplyError::BareCr),
    };
    Ok(Line::Complete(CompleteLine {
        code,
        text: (text_start, end),
        len,
        last,
    }))
}
