//! SMTP replies and their parser (RFC 5321 §4.2, RFC 3463 enhanced status codes).
//!
//! The parser does no I/O, in the style of `httparse`: give it the bytes received so far and it
//! answers [`Parsed::Complete`] with the reply and the number of bytes it used, or
//! [`Parsed::Partial`] when it needs more. Limits on the line length and the number of lines are
//! checked on every call, on the partial data too, so that a hostile server streaming an endless
//! line or an endless multi-line reply is caught as soon as it crosses a limit, with bounded memory.
//!
//! ```
//! use mailpump::smtp::reply::{Parsed, ReplyLimits, parse_reply};
//!
//! let limits = ReplyLimits::default();
//! assert_eq!(parse_reply(b"250-mx.example.org\r\n250-PIPE", &limits), Ok(Parsed::Partial));
//! let wire = b"550 5.1.1 <nobody@example.org>: Recipient address rejected\r\n";
//! let Ok(Parsed::Complete { reply, consumed }) = parse_reply(wire, &limits) else { panic!() };
//! assert_eq!(consumed, wire.len());
//! assert!(reply.is_permanent());
//! assert_eq!(reply.enhanced.unwrap().to_string(), "5.1.1");
//! assert_eq!(reply.text(), "<nobody@example.org>: Recipient address rejected");
//! ```

use std::fmt;

/// An enhanced mail system status code (RFC 3463 §2), such as `5.1.1`.
///
/// ```
/// use mailpump::Reply;
///
/// let reply = Reply::new(452, vec!["4.2.2 Mailbox full".into()]);
/// let code = reply.enhanced.unwrap();
/// assert_eq!((code.class, code.subject, code.detail), (4, 2, 2));
/// assert_eq!(code.to_string(), "4.2.2");
/// ```
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
///
/// ```
/// use mailpump::Reply;
///
/// let reply = Reply::new(250, vec!["2.0.0 Ok: queued as 4B7A1".into()]);
/// assert!(reply.is_positive_completion());
/// assert_eq!(reply.class(), 2);
/// assert_eq!(reply.text(), "Ok: queued as 4B7A1");
/// assert_eq!(reply.to_string(), "250 2.0.0 Ok: queued as 4B7A1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code, 200 to 599.
    pub code: u16,
    /// The enhanced status code found at the start of the first line's text, if any.
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line as received, after the code and its separator (the enhanced status
    /// code, when present, is still there; [`Reply::text`] strips it). The parser replaces bytes
    /// that are not UTF-8, control characters other than HT, U+2028, U+2029 and the
    /// bidirectional controls by U+FFFD.
    pub lines: Vec<String>,
}

impl Reply {
    /// A reply with `code` and `lines`; the enhanced status code is read from the first line, as
    /// the parser does. Meant for tests and for replies made up by the client.
    ///
    /// ```
    /// use mailpump::Reply;
    /// use mailpump::smtp::reply::EnhancedCode;
    ///
    /// let reply = Reply::new(550, vec!["5.7.1 Relaying denied".into()]);
    /// assert_eq!(reply.enhanced, Some(EnhancedCode { class: 5, subject: 7, detail: 1 }));
    /// assert!(reply.is_permanent());
    /// ```
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
    ///
    /// ```
    /// use mailpump::Reply;
    ///
    /// let reply = Reply::new(250, vec!["2.0.0 first".into(), "2.0.0 second".into()]);
    /// assert_eq!(reply.text(), "first\nsecond");
    /// ```
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
    ///
    /// ```
    /// use mailpump::Reply;
    ///
    /// let reply = Reply::new(354, vec!["go ahead".into()]);
    /// assert_eq!(reply.class(), 3);
    /// assert!(reply.is_positive_intermediate() && !reply.is_positive_completion());
    /// assert!(Reply::new(421, vec![]).is_transient());
    /// ```
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
///
/// ```
/// use mailpump::smtp::reply::{ReplyError, ReplyLimits, parse_reply};
///
/// let strict = ReplyLimits { max_line: 16, ..ReplyLimits::default() };
/// assert_eq!(parse_reply(b"250 a very long line indeed\r\n", &strict), Err(ReplyError::LineTooLong));
/// ```
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
///
/// ```
/// use mailpump::smtp::reply::{Parsed, ReplyParser};
///
/// let mut parser = ReplyParser::new();
/// assert_eq!(parser.parse(b"250-first\r\n250 la"), Ok(Parsed::Partial));
/// let Ok(Parsed::Complete { reply, consumed }) = parser.parse(b"250-first\r\n250 last\r\n") else {
///     panic!("a whole reply")
/// };
/// assert_eq!((reply.lines.len(), consumed), (2, 21));
/// ```
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
///
/// ```
/// use mailpump::smtp::reply::{ReplyError, ReplyParser};
///
/// assert_eq!(ReplyParser::new().parse(b"250-a\r\n550 b\r\n"), Err(ReplyError::MixedCodes));
/// assert_eq!(ReplyParser::new().parse(b"hello\r\n"), Err(ReplyError::Code));
/// ```
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
///
/// ```
/// use mailpump::smtp::reply::{Parsed, ReplyLimits, parse_reply};
///
/// let parsed = parse_reply(b"221 Bye\r\n", &ReplyLimits::default());
/// assert!(matches!(parsed, Ok(Parsed::Complete { ref reply, consumed: 9 }) if reply.code == 221));
/// ```
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
///
/// ```
/// use mailpump::smtp::reply::{Parsed, ReplyParser};
///
/// // Bytes arrive in pieces; the same growing buffer is passed each time.
/// let mut parser = ReplyParser::new();
/// let mut buf = Vec::new();
/// let mut replies = Vec::new();
/// for piece in [&b"220 mx ESMTP\r"[..], b"\n250 ok\r\n"] {
///     buf.extend_from_slice(piece);
///     while let Parsed::Complete { reply, consumed } = parser.parse(&buf)? {
///         buf.drain(..consumed);
///         replies.push(reply.code);
///     }
/// }
/// assert_eq!(replies, [220, 250]);
/// # Ok::<(), mailpump::smtp::reply::ReplyError>(())
/// ```
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
    ///
    /// ```
    /// use mailpump::smtp::reply::{Parsed, ReplyParser};
    ///
    /// let mut parser = ReplyParser::new();
    /// assert_eq!(parser.parse(b"250-a\r\n"), Ok(Parsed::Partial));
    /// parser.reset(); // the connection was replaced: forget the partial reply
    /// assert_eq!(parser.limits().max_line, 2048);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser with `limits`.
    ///
    /// ```
    /// use mailpump::smtp::reply::{ReplyLimits, ReplyParser};
    ///
    /// let parser = ReplyParser::with_limits(ReplyLimits { max_lines: 10, ..ReplyLimits::default() });
    /// assert_eq!(parser.limits().max_lines, 10);
    /// ```
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
    ///
    /// ```
    /// use mailpump::smtp::reply::{Parsed, ReplyParser};
    ///
    /// let mut parser = ReplyParser::new();
    /// let Ok(Parsed::Complete { reply, consumed }) = parser.parse(b"354 go ahead\r\nextra") else { panic!() };
    /// assert_eq!((reply.code, consumed), (354, 14));
    /// ```
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
            .map(|&(s, e)| decode_text(&buf[s..e]))
            .collect();
        Reply::new(code, lines)
    }
}

/// The text of a reply line as a string: invalid UTF-8 and the characters [`is_unsafe_in_text`]
/// names become U+FFFD.
fn decode_text(text: &[u8]) -> String {
    let mut decoded = String::from_utf8_lossy(text).into_owned();
    if decoded.contains(is_unsafe_in_text) {
        decoded = decoded
            .chars()
            .map(|c| {
                if is_unsafe_in_text(c) {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect();
    }
    decoded
}

/// Whether `c` may not reach a log or an error message as server text: control characters other
/// than HT (C0, DEL, C1), the Unicode line and paragraph separators, and the bidirectional
/// controls and marks.
///
/// RFC 5321 §4.2 allows only HT and printable characters in reply text (RFC 6531 adds UTF-8).
/// A control character (an ANSI escape sequence, a NUL) could rewrite a terminal; U+2028 and
/// U+2029 start a new line in some viewers, so a reply could forge a log line; a bidirectional
/// control reorders the text after it, so `"\u{202E}txt.exe"` reads `exe.txt`.
fn is_unsafe_in_text(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c,
            '\u{2028}' | '\u{2029}'
            // Embeddings and overrides (LRE, RLE, PDF, LRO, RLO), isolates (LRI, RLI, FSI, PDI).
            | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // The marks: LRM, RLM, ALM.
            | '\u{200E}' | '\u{200F}' | '\u{061C}')
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(input: &[u8]) -> Result<Parsed, ReplyError> {
        parse_reply(input, &ReplyLimits::default())
    }

    fn complete(input: &[u8]) -> (Reply, usize) {
        match parse(input) {
            Ok(Parsed::Complete { reply, consumed }) => (reply, consumed),
            other => panic!(
                "{:?}: expected a complete reply, got {other:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    fn esc(class: u8, subject: u16, detail: u16) -> EnhancedCode {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// (input, code, enhanced, lines, text); each reply spans its whole input.
    type Case = (
        &'static [u8],
        u16,
        Option<EnhancedCode>,
        &'static [&'static str],
        &'static str,
    );

    fn check_complete(cases: &[Case]) {
        for &(input, code, enhanced, lines, text) in cases {
            let (reply, used) = complete(input);
            let name = String::from_utf8_lossy(input);
            assert_eq!(reply.code, code, "{name:?}");
            assert_eq!(reply.enhanced, enhanced, "{name:?}");
            assert_eq!(reply.lines, lines, "{name:?}");
            assert_eq!(reply.text(), text, "{name:?}");
            assert_eq!(used, input.len(), "{name:?}");
        }
    }

    #[test]
    fn complete_replies() {
        let cases: &[Case] = &[
            (b"250 OK\r\n", 250, None, &["OK"], "OK"),
            (b"250 OK\n", 250, None, &["OK"], "OK"),
            (
                b"220 mx.example.org ESMTP Postfix\r\n",
                220,
                None,
                &["mx.example.org ESMTP Postfix"],
                "mx.example.org ESMTP Postfix",
            ),
            // RFC 5321 §4.2.1: the final line may be the bare code.
            (b"250\r\n", 250, None, &[""], ""),
            (b"250\n", 250, None, &[""], ""),
            // smtp-sink ends its EHLO reply with "250 " and nothing after the space.
            (
                b"250-smtp-sink\r\n250 \r\n",
                250,
                None,
                &["smtp-sink", ""],
                "smtp-sink\n",
            ),
            (
                b"250-a\r\n250-b\r\n250 c\r\n",
                250,
                None,
                &["a", "b", "c"],
                "a\nb\nc",
            ),
            (b"250-a\r\n250\r\n", 250, None, &["a", ""], "a\n"),
            (
                b"250-a\n250-b\r\n250 c\n",
                250,
                None,
                &["a", "b", "c"],
                "a\nb\nc",
            ),
            (b"250-\r\n250 x\r\n", 250, None, &["", "x"], "\nx"),
            (
                b"354 End data with <CR><LF>.<CR><LF>\r\n",
                354,
                None,
                &["End data with <CR><LF>.<CR><LF>"],
                "End data with <CR><LF>.<CR><LF>",
            ),
            (
                b"334 VXNlcm5hbWU6\r\n",
                334,
                None,
                &["VXNlcm5hbWU6"],
                "VXNlcm5hbWU6",
            ),
        ];
        check_complete(cases);
    }

    #[test]
    fn enhanced_status_codes() {
        // RFC 3463.
        let cases: &[Case] = &[
            (
                b"550 5.1.1 <x@y>: Recipient address rejected\r\n",
                550,
                Some(esc(5, 1, 1)),
                &["5.1.1 <x@y>: Recipient address rejected"],
                "<x@y>: Recipient address rejected",
            ),
            (
                b"250 2.0.0 Ok: queued as 4F1C21E0A\r\n",
                250,
                Some(esc(2, 0, 0)),
                &["2.0.0 Ok: queued as 4F1C21E0A"],
                "Ok: queued as 4F1C21E0A",
            ),
            (b"451 4.7.1 \r\n", 451, Some(esc(4, 7, 1)), &["4.7.1 "], ""),
            (b"250 2.0.0\r\n", 250, Some(esc(2, 0, 0)), &["2.0.0"], ""),
            (
                b"552 5.3.4 too big\r\n",
                552,
                Some(esc(5, 3, 4)),
                &["5.3.4 too big"],
                "too big",
            ),
            (
                b"550 5.123.456 x\r\n",
                550,
                Some(esc(5, 123, 456)),
                &["5.123.456 x"],
                "x",
            ),
            (
                b"550-5.7.1 line one\r\n550 5.7.1 line two\r\n",
                550,
                Some(esc(5, 7, 1)),
                &["5.7.1 line one", "5.7.1 line two"],
                "line one\nline two",
            ),
            // A continuation line without the code keeps its text.
            (
                b"550-5.7.1 one\r\n550 two\r\n",
                550,
                Some(esc(5, 7, 1)),
                &["5.7.1 one", "two"],
                "one\ntwo",
            ),
            // Not enhanced codes: wrong class for the reply, too many digits, no space after it.
            (b"250 5.0.0 odd\r\n", 250, None, &["5.0.0 odd"], "5.0.0 odd"),
            (
                b"550 5.1.1000 x\r\n",
                550,
                None,
                &["5.1.1000 x"],
                "5.1.1000 x",
            ),
            (b"550 5.1 x\r\n", 550, None, &["5.1 x"], "5.1 x"),
            (b"550 5.1.1: x\r\n", 550, None, &["5.1.1: x"], "5.1.1: x"),
            (b"550 3.1.1 x\r\n", 550, None, &["3.1.1 x"], "3.1.1 x"),
            // Control characters other than HT cannot reach a log or an error message.
            (
                b"250 a\x1b[2Jb\tc\0\x7f\r\n",
                250,
                None,
                &["a\u{fffd}[2Jb\tc\u{fffd}\u{fffd}"],
                "a\u{fffd}[2Jb\tc\u{fffd}\u{fffd}",
            ),
            // Text that is not UTF-8 is decoded lossily.
            (
                b"250 caf\xe9\r\n",
                250,
                None,
                &["caf\u{fffd}"],
                "caf\u{fffd}",
            ),
            (b"599 x\r\n", 599, None, &["x"], "x"),
            (b"200 x\r\n", 200, None, &["x"], "x"),
        ];
        check_complete(cases);
    }

    #[test]
    fn line_separators_and_bidi_controls_become_replacement_characters() {
        // Line and paragraph separators, every bidi control and mark, and NEL (a C1 control,
        // replaced before) for comparison: each one, inside a line and as a whole line.
        let hostile = [
            '\u{2028}', '\u{2029}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
            '\u{0085}',
        ];
        for c in hostile {
            let input = format!("550-5.1.1 a{c}b\r\n550 5.1.1 {c}\r\n");
            let (reply, _) = complete(input.as_bytes());
            assert_eq!(reply.lines, ["5.1.1 a\u{fffd}b", "5.1.1 \u{fffd}"], "{c:?}");
            assert_eq!(reply.text(), "a\u{fffd}b\n\u{fffd}", "{c:?}");
        }
        // Other format characters stay: ZWJ joins emoji, U+00AD is a soft hyphen.
        let (reply, _) =
            complete("250 caf\u{e9} \u{1f469}\u{200d}\u{1f4bb} co\u{ad}op\r\n".as_bytes());
        assert_eq!(
            reply.lines,
            ["caf\u{e9} \u{1f469}\u{200d}\u{1f4bb} co\u{ad}op"]
        );
    }

    #[test]
    fn only_the_reply_is_consumed() {
        assert_eq!(complete(b"250 OK\r\n221 bye\r\n").1, 8);
        assert_eq!(complete(b"250-a\n250 b\n\n").1, 12);
    }

    #[test]
    fn partial_replies() {
        let cases: &[&[u8]] = &[
            b"",
            b"2",
            b"25",
            b"250",
            b"250-",
            b"250 OK",
            b"250 OK\r",
            b"250-first\r\n",
            b"250-first\r\n250",
            b"250-first\r\n250 last",
            b"250-first\n250-second\r\n25",
            b"550 5.1",
        ];
        for &input in cases {
            assert_eq!(
                parse(input),
                Ok(Parsed::Partial),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn malformed_replies() {
        let cases: &[(&[u8], ReplyError)] = &[
            (b"hello\r\n", ReplyError::Code),
            (b"h", ReplyError::Code),
            (b"\r\n", ReplyError::Code),
            (b" 250 OK\r\n", ReplyError::Code),
            (b"2x0 OK\r\n", ReplyError::Code),
            (b"25\r\n", ReplyError::Code),
            (b"-250 OK\r\n", ReplyError::Code),
            (b"199 x\r\n", ReplyError::CodeRange),
            (b"1", ReplyError::CodeRange),
            (b"099 x\r\n", ReplyError::CodeRange),
            (b"600 x\r\n", ReplyError::CodeRange),
            (b"999 x\r\n", ReplyError::CodeRange),
            (b"250x\r\n", ReplyError::Separator),
            (b"2500 OK\r\n", ReplyError::Separator),
            (b"250\tOK\r\n", ReplyError::Separator),
            (b"250_", ReplyError::Separator),
            (b"250-a\r\n251 b\r\n", ReplyError::MixedCodes),
            (b"250-a\r\n550", ReplyError::MixedCodes),
            (b"250-a\r\n250-b\r\nxyz", ReplyError::Code),
            // A CR is a line end only before LF (RFC 5321 §2.3.8): the text after a bare CR must not
            // be taken for a new reply line.
            (b"250 a\rb\r\n", ReplyError::BareCr),
            (b"250 a\r250 b\r\n", ReplyError::BareCr),
            (b"250\r250 b\r\n", ReplyError::BareCr),
            (b"250-a\r\r\n", ReplyError::BareCr),
        ];
        for &(input, error) in cases {
            assert_eq!(
                parse(input),
                Err(error),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn an_endless_line_is_refused_before_it_ends() {
        let limits = ReplyLimits::default();
        let mut line = b"250 ".to_vec();
        line.resize(limits.max_line, b'a');
        // Exactly max_line octets of line: still acceptable, and complete with its CRLF.
        assert_eq!(parse(&line), Ok(Parsed::Partial));
        let mut crlf = line.clone();
        crlf.extend_from_slice(b"\r");
        assert_eq!(parse(&crlf), Ok(Parsed::Partial));
        crlf.extend_from_slice(b"\n");
        assert_eq!(complete(&crlf).1, limits.max_line + 2);
        let mut lf = line.clone();
        lf.push(b'\n');
        assert_eq!(complete(&lf).1, limits.max_line + 1);
        // One more octet of text, with no end of line in sight: refused at once.
        line.push(b'a');
        assert_eq!(parse(&line), Err(ReplyError::LineTooLong));
        // A CR after max_line octets, followed by anything but LF.
        let mut cr = line[..limits.max_line].to_vec();
        cr.extend_from_slice(b"\rX");
        assert_eq!(parse(&cr), Err(ReplyError::LineTooLong));
        // The same on a continuation line.
        let mut second = b"250-first\r\n250-".to_vec();
        second.resize(11 + limits.max_line + 1, b'b');
        assert_eq!(parse(&second), Err(ReplyError::LineTooLong));
        // A megabyte without a line end is refused after reading only the first max_line + 1.
        let endless = vec![b'2'; 1 << 20];
        assert_eq!(parse(&endless), Err(ReplyError::Separator));
        let mut endless = b"250 ".to_vec();
        endless.resize(1 << 20, b'z');
        assert_eq!(parse(&endless), Err(ReplyError::LineTooLong));
    }

    #[test]
    fn too_many_lines_are_refused_before_the_next_one_arrives() {
        let limits = ReplyLimits {
            max_line: 64,
            max_lines: 3,
        };
        let ok = b"250-a\r\n250-b\r\n250 c\r\n";
        assert!(matches!(
            parse_reply(ok, &limits),
            Ok(Parsed::Complete { consumed: 21, .. })
        ));
        assert_eq!(
            parse_reply(b"250-a\r\n250-b\r\n", &limits),
            Ok(Parsed::Partial)
        );
        // Three continuation lines promise a fourth: known to be too many already.
        assert_eq!(
            parse_reply(b"250-a\r\n250-b\r\n250-c\r\n", &limits),
            Err(ReplyError::TooManyLines)
        );
        assert_eq!(
            parse_reply(b"250-a\r\n250-b\r\n250-c\r\n250 d\r\n", &limits),
            Err(ReplyError::TooManyLines)
        );
        // The default bound is 128 lines.
        let mut many = Vec::new();
        for _ in 0..127 {
            many.extend_from_slice(b"250-x\r\n");
        }
        assert_eq!(parse(&many), Ok(Parsed::Partial));
        many.extend_from_slice(b"250-x\r\n");
        assert_eq!(parse(&many), Err(ReplyError::TooManyLines));
        many.truncate(127 * 7);
        many.extend_from_slice(b"250 x\r\n");
        assert_eq!(complete(&many).0.lines.len(), 128);
    }

    /// Every prefix of `input` parses to `Partial` or to exactly what the whole input gives, and a
    /// resumable parser fed one byte at a time agrees with a fresh parse of the whole.
    fn check_splits(input: &[u8], limits: &ReplyLimits) -> Result<(), TestCaseError> {
        let whole = parse_reply(input, limits);
        let mut parser = ReplyParser::with_limits(*limits);
        let mut resumed = Ok(Parsed::Partial);
        for end in 0..=input.len() {
            let prefix = parse_reply(&input[..end], limits);
            match (&prefix, &whole) {
                (Ok(Parsed::Partial), _) => {}
                (
                    Ok(Parsed::Complete { reply, consumed }),
                    Ok(Parsed::Complete {
                        reply: r,
                        consumed: c,
                    }),
                ) => {
                    prop_assert_eq!(reply, r);
                    prop_assert_eq!(consumed, c);
                }
                (a, b) => prop_assert_eq!(a, b, "prefix of {} bytes", end),
            }
            if matches!(resumed, Ok(Parsed::Partial)) {
                resumed = parser.parse(&input[..end]);
                prop_assert_eq!(&resumed, &prefix, "resumed at {} bytes", end);
            }
        }
        prop_assert_eq!(resumed, whole);
        Ok(())
    }

    #[test]
    fn every_split_gives_the_same_result() {
        let inputs: &[&[u8]] = &[
            b"250 OK\r\n",
            b"250\r\n",
            b"250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 \r\n",
            b"550-5.7.1 one\r\n550-5.7.1 two\r\n550 5.7.1 three\r\nleftover",
            b"250-a\n250-b\r\n250 c\n",
            b"250-a\r\n251 b\r\n",
            b"250 a\rb\r\n",
            b"250x",
            b"hello",
            b"250-a\r\n250-b\r\n250-c\r\n250-d\r\n",
            b"250 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            b"250 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\rX",
        ];
        for limits in [
            ReplyLimits::default(),
            ReplyLimits {
                max_line: 36,
                max_lines: 3,
            },
        ] {
            for &input in inputs {
                check_splits(input, &limits).unwrap();
            }
        }
    }

    /// STARTTLS response injection (docs/security.md §6): bytes after the 220 are left unconsumed, so the
    /// client can see them and refuse to go on.
    #[test]
    fn bytes_after_a_reply_are_left_for_the_caller() {
        for wire in [
            &b"220 go\r\n250-evil\r\n250 AUTH PLAIN\r\n"[..],
            b"220 go\r\n250-X",
        ] {
            let (reply, consumed) = complete(wire);
            assert_eq!((reply.code, consumed), (220, 8));
            assert!(consumed < wire.len());
        }
    }

    /// Unbounded replies (docs/security.md §11): a 10 MB line and 100,000 continuation lines, read 4 KiB at a
    /// time, are refused once the buffer holds little more than the limit.
    #[test]
    fn hostile_streams_are_refused_with_bounded_buffers() {
        let limits = ReplyLimits::default();
        let mut line = b"250 ".to_vec();
        line.resize(10_000_000, b'x');
        let mut many = Vec::new();
        for _ in 0..100_000 {
            many.extend_from_slice(b"250-continued\r\n");
        }
        for (stream, error, bound) in [
            (line, ReplyError::LineTooLong, limits.max_line + 4096),
            (many, ReplyError::TooManyLines, limits.max_lines * 15 + 4096),
        ] {
            let mut parser = ReplyParser::with_limits(limits);
            let mut buffered = 0;
            let result = loop {
                buffered = (buffered + 4096).min(stream.len());
                match parser.parse(&stream[..buffered]) {
                    Ok(Parsed::Partial) => assert!(buffered < stream.len()),
                    other => break other,
                }
            };
            assert_eq!(result, Err(error));
            assert!(buffered <= bound, "{buffered} bytes buffered");
        }
    }

    #[test]
    fn the_parser_starts_afresh_after_each_reply() {
        let mut parser = ReplyParser::new();
        let stream = b"250-a\r\n250 b\r\n354 go ahead\r\n";
        let Ok(Parsed::Complete { reply, consumed }) = parser.parse(stream) else {
            panic!()
        };
        assert_eq!((reply.code, consumed), (250, 14));
        let Ok(Parsed::Complete { reply, consumed }) = parser.parse(&stream[consumed..]) else {
            panic!()
        };
        assert_eq!(
            (reply.code, reply.text().as_str(), consumed),
            (354, "go ahead", 14)
        );
        // After an error too.
        assert_eq!(parser.parse(b"xyz"), Err(ReplyError::Code));
        assert!(matches!(
            parser.parse(b"221 bye\r\n"),
            Ok(Parsed::Complete { .. })
        ));
        // A shorter buffer than last time is taken as a new reply, not trusted against old offsets.
        assert_eq!(parser.parse(b"250-aaaaaaaa\r\n"), Ok(Parsed::Partial));
        assert!(matches!(
            parser.parse(b"221 x\r\n"),
            Ok(Parsed::Complete { consumed: 7, .. })
        ));
        assert_eq!(parser.limits(), ReplyLimits::default());
    }

    #[test]
    fn classes_and_display() {
        let cases = [
            (220, "220 ready", [true, false, false, false]),
            (354, "354 go", [false, true, false, false]),
            (451, "451 later", [false, false, true, false]),
            (550, "550 no", [false, false, false, true]),
        ];
        for (code, shown, classes) in cases {
            let reply = Reply::new(code, vec![shown[4..].to_owned()]);
            assert_eq!(
                [
                    reply.is_positive_completion(),
                    reply.is_positive_intermediate(),
                    reply.is_transient(),
                    reply.is_permanent()
                ],
                classes
            );
            assert_eq!(reply.to_string(), shown);
            assert_eq!(reply.class(), code / 100);
        }
        let (reply, _) = complete(b"550-5.1.1 no such user\r\n550 5.1.1 try again\r\n");
        assert_eq!(reply.to_string(), "550 5.1.1 no such user\ntry again");
        assert_eq!(complete(b"250\r\n").0.to_string(), "250");
        assert_eq!(complete(b"250 2.0.0\r\n").0.to_string(), "250 2.0.0");
        assert_eq!(
            EnhancedCode {
                class: 4,
                subject: 7,
                detail: 10
            }
            .to_string(),
            "4.7.10"
        );
        assert_eq!(
            ReplyError::LineTooLong.to_string(),
            "malformed SMTP reply: a reply line is longer than the limit"
        );
    }

    /// Bytes that look like replies often enough to reach the deep states.
    fn reply_like() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"250".to_vec()),
            Just(b"550".to_vec()),
            Just(b"-".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"5.1.1 ".to_vec()),
            Just(b"2.0.0".to_vec()),
            "[a-zA-Z0-9 .]{0,12}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..4),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn never_panics_and_never_overreads(input in proptest::collection::vec(any::<u8>(), 0..512),
                                            max_line in 4usize..64, max_lines in 1usize..8) {
            let limits = ReplyLimits { max_line, max_lines };
            if let Ok(Parsed::Complete { reply, consumed }) = parse_reply(&input, &limits) {
                prop_assert!(consumed <= input.len());
                prop_assert!(consumed > 0);
                prop_assert!((200..=599).contains(&reply.code));
                prop_assert!(reply.lines.len() <= max_lines);
            }
        }

        #[test]
        fn reply_like_input_is_split_invariant(input in reply_like(),
                                               max_line in 4usize..40, max_lines in 1usize..6) {
            let limits = ReplyLimits { max_line, max_lines };
            check_splits(&input, &limits)?;
            if let Ok(Parsed::Complete { reply, consumed }) = parse_reply(&input, &limits) {
                prop_assert!(consumed <= input.len());
                prop_assert!(reply.lines.iter().all(|l| l.chars().count() <= max_line));
                prop_assert!(reply.lines.len() <= max_lines);
            }
        }
    }
}
