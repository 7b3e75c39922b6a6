//! Header fields: names, validation, RFC 2047 encoding and RFC 5322 folding.
//!
//! Address fields (`From`, `To`, display names) are written by
//! [`address_header`](super::address_header) with the folding machinery defined here.
//!
//! Every function here either writes a complete, safe header line or says why it cannot: a value
//! can never carry a line break into the output, so header injection is impossible by construction.

use std::fmt::Write as _;

use crate::mime::encoded_word::{EncodedWords, MAX_WORD, MIN_WORD};

/// The address-field functions lived here before they got their own module; their old paths stay.
#[doc(no_inline)]
pub use super::address_header::{
    Mailbox, first_domain, parse_mailbox, split_addresses, write_addresses,
};

/// Lines are folded to at most this many octets where whitespace allows (RFC 5322 §2.1.1).
pub const FOLD_AT: usize = 78;
/// No line may ever be longer than this many octets (RFC 5322 §2.1.1).
pub const MAX_LINE: usize = 998;
/// The longest header name accepted: `Name: ` must leave room for a value on a 78-octet line.
pub const MAX_NAME: usize = 76;
/// A word this long (with the whitespace before it) is written as encoded-words so that its line
/// stays under [`MAX_LINE`] whatever the header name.
pub(super) const LONG_WORD: usize = MAX_LINE - MAX_NAME - 4;

/// Names whose canonical spelling is not Train-Case (`LuaSocket`'s `headers.canonic`,
/// docs/luasocket.md §1.5).
const SPECIAL_NAMES: &[&str] = &[
    "Content-ID",
    "Content-MD5",
    "DSN-Gateway",
    "ETag",
    "Final-Log-ID",
    "MIME-Version",
    "Message-ID",
    "Original-Envelope-ID",
    "Received-From-MTA",
    "Remote-MTA",
    "Reporting-MTA",
    "Resent-Message-ID",
    "SMTP-Remote-Recipient",
    "TE",
    "WWW-Authenticate",
];

/// How a header's value is written.
///
/// ```
/// use mailpump::mime::headers::{Kind, kind};
///
/// assert_eq!(kind("reply-to"), Kind::Addresses);
/// assert_eq!(kind("content-type"), Kind::Structured);
/// assert_eq!(kind("subject"), Kind::Unstructured);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A list of mailboxes: only display names are encoded (RFC 2047 §5(3)).
    Addresses,
    /// MIME and identification headers whose grammar has no room for encoded-words: ASCII only,
    /// folded at whitespace outside quoted strings.
    Structured,
    /// Free text (`Subject`, `Comments`, `X-*`): non-ASCII words become encoded-words (RFC 2047 §5(1)).
    Unstructured,
}

/// The kind of the header named `lower` (lowercase).
#[must_use]
pub fn kind(lower: &str) -> Kind {
    match lower {
        "from" | "to" | "cc" | "bcc" | "reply-to" | "sender" | "resent-from" | "resent-to"
        | "resent-cc" | "resent-bcc" | "resent-sender" | "resent-reply-to" => Kind::Addresses,
        "content-type"
        | "content-disposition"
        | "content-transfer-encoding"
        | "content-id"
        | "content-md5"
        | "content-location"
        | "content-language"
        | "message-id"
        | "resent-message-id"
        | "in-reply-to"
        | "references"
        | "date"
        | "resent-date"
        | "mime-version"
        | "received"
        | "return-path" => Kind::Structured,
        _ => Kind::Unstructured,
    }
}

/// The canonical spelling of a header name: `LuaSocket`'s special cases, Train-Case otherwise
/// (`x-custom-header` becomes `X-Custom-Header`).
///
/// ```
/// use mailpump::mime::headers::canonical_name;
///
/// assert_eq!(canonical_name("message-id"), "Message-ID");
/// assert_eq!(canonical_name("x-mailer"), "X-Mailer");
/// ```
#[must_use]
pub fn canonical_name(name: &str) -> String {
    if let Some(special) = SPECIAL_NAMES.iter().find(|s| s.eq_ignore_ascii_case(name)) {
        return (*special).to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut start = true;
    for c in name.chars() {
        out.push(if start {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        start = c == '-';
    }
    out
}

/// Whether `lower` names a blind-copy field (`Bcc`, `Resent-Bcc`): delivered to, never transmitted
/// (RFC 5322 §3.6.3; `smtp::header_envelope` leaves them out of what is sent).
#[must_use]
pub fn is_blind_copy(lower: &str) -> bool {
    lower == "bcc" || lower == "resent-bcc"
}

/// Checks a header name: 1 to [`MAX_NAME`] printable ASCII characters other than `:` (RFC 5322 §2.2 ftext).
///
/// ```
/// use mailpump::mime::headers::check_name;
///
/// assert!(check_name("X-Priority").is_ok());
/// assert!(check_name("X-Priority: 1\r\nBcc").is_err());
/// ```
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the header name is empty".into());
    }
    if let Some(c) = name.chars().find(|&c| !matches!(c, '!'..='9' | ';'..='~')) {
        let what = match c {
            ':' => "a colon".to_owned(),
            ' ' => "a space".to_owned(),
            '\r' | '\n' => "a line break".to_owned(),
            c if c.is_ascii() => format!("the control character {c:?}"),
            c => format!("the non-ASCII character {c:?}"),
        };
        return Err(format!(
            "a header name may hold only printable ASCII characters other than ':' (RFC 5322 §2.2), not {what}"
        ));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "the header name is {} characters long; at most {MAX_NAME} are allowed",
            name.len()
        ));
    }
    Ok(())
}

/// Describes a character a header value must not hold, or `None` if it may.
fn forbidden(c: char) -> Option<&'static str> {
    Some(match c {
        '\r' => "a carriage return (CR)",
        '\n' => "a line feed (LF)",
        '\0' => "a NUL character",
        '\u{7f}' => "a DEL character",
        '\u{85}' => "a NEXT LINE character (U+0085)",
        '\u{2028}' => "a LINE SEPARATOR (U+2028)",
        '\u{2029}' => "a PARAGRAPH SEPARATOR (U+2029)",
        '\t' => return None,
        c if c.is_ascii_control() => "a control character",
        _ => return None,
    })
}

/// Checks a text value: no line breaks of any kind and no control characters other than TAB.
///
/// ```
/// use mailpump::mime::headers::check_text;
///
/// assert!(check_text("Grüße\tfrom Köln").is_ok());
/// assert!(check_text("hi\r\nBcc: victim@example.com").is_err());
/// ```
pub fn check_text(value: &str) -> Result<(), String> {
    match value
        .char_indices()
        .find_map(|(i, c)| forbidden(c).map(|what| (i, what)))
    {
        None => Ok(()),
        Some((i, what)) => Err(format!(
            "the value holds {what} at byte {i}; header values cannot contain line breaks or control \
             characters (they could start a new header: header injection)"
        )),
    }
}

/// Checks a raw value, written as given: ASCII, and the same characters as [`check_text`].
///
/// ```
/// use mailpump::mime::headers::check_raw;
///
/// assert_eq!(check_raw(b"<id@example.com>"), Ok("<id@example.com>"));
/// assert!(check_raw("é".as_bytes()).is_err());
/// ```
pub fn check_raw(value: &[u8]) -> Result<&str, String> {
    if let Some(i) = value.iter().position(|b| !b.is_ascii()) {
        return Err(format!(
            "a raw (bytes) value must be ASCII; byte {i} is 0x{:02X}",
            value[i]
        ));
    }
    let text = std::str::from_utf8(value).map_err(|e| e.to_string())?;
    check_text(text)?;
    Ok(text)
}

/// Splits `value` at `;` outside quoted strings (MIME parameters, RFC 2045 §5.1).
///
/// ```
/// use mailpump::mime::headers::split_params;
///
/// assert_eq!(split_params("text/plain; name=\"a;b\"; x=1"), ["text/plain", " name=\"a;b\"", " x=1"]);
/// ```
#[must_use]
pub fn split_params(value: &str) -> Vec<&str> {
    split_outside_quotes(value, b';')
}

/// Splits `value` at `sep` outside quoted strings and comments (and, for `,`, angle brackets).
pub(super) fn split_outside_quotes(value: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut escaped, mut angle, mut comment) = (false, false, false, 0u32);
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted || comment > 0 => escaped = true,
            b'"' if comment == 0 => quoted = !quoted,
            b'(' if !quoted => comment += 1,
            b')' if !quoted => comment = comment.saturating_sub(1),
            b'<' if !quoted && comment == 0 && sep == b',' => angle = true,
            b'>' if !quoted && comment == 0 => angle = false,
            _ if b == sep && !quoted && !angle && comment == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// Writes one header field, folding its value's tokens at whitespace.
pub(super) struct Folder<'a> {
    out: &'a mut String,
    line_start: usize,
    has_word: bool,
}

impl<'a> Folder<'a> {
    /// Starts the field `name:` at the end of `out`.
    pub(super) fn new(out: &'a mut String, name: &str) -> Self {
        let line_start = out.len();
        out.push_str(name);
        out.push(':');
        Self {
            out,
            line_start,
            has_word: false,
        }
    }

    fn column(&self) -> usize {
        self.out.len() - self.line_start
    }

    /// Starts a continuation line (RFC 5322 §2.2.3: the CRLF goes before whitespace, which the
    /// caller writes next).
    fn fold(&mut self) {
        self.out.push_str("\r\n");
        self.line_start = self.out.len();
    }

    /// Appends whitespace `ws` (a fold point) and `token`, folding first if the line would pass 78.
    pub(super) fn push(&mut self, ws: &str, token: &str) {
        if self.has_word && !ws.is_empty() && self.column() + ws.len() + token.len() > FOLD_AT {
            self.fold();
        }
        self.out.push_str(ws);
        self.out.push_str(token);
        self.has_word = true;
    }

    /// Appends `text` as encoded-words, the first after `ws`, the others after a space; each word
    /// fills what is left of its line, and a line with too little room is folded first.
    fn push_encoded(&mut self, ws: &str, text: &str) {
        let mut words = EncodedWords::new(text);
        let mut sep = ws;
        let mut word = String::new();
        // Text that fits one encoded-word is never split: Python's address parser before the fix of
        // cpython gh-128110 keeps the whitespace between adjacent encoded-words in a display name,
        // against RFC 2047 §6.2, so a single word is the one form every reader decodes alike.
        let single = words.single_len();
        while !words.is_done() {
            let mut room = FOLD_AT.saturating_sub(self.column() + sep.len());
            let too_small = room < MIN_WORD || (single <= MAX_WORD && room < single);
            // Never before the first word: Python keeps whitespace folded in there as part of the value.
            if too_small && self.has_word {
                self.fold();
                room = FOLD_AT.saturating_sub(sep.len());
            }
            word.clear();
            words.next_word(room.min(MAX_WORD), &mut word);
            self.out.push_str(sep);
            self.out.push_str(&word);
            self.has_word = true;
            sep = " ";
        }
    }

    /// Ends the field with CRLF.
    pub(super) fn finish(self) {
        self.out.push_str("\r\n");
    }
}

/// Whether a word of unstructured text must be written as encoded-words.
fn needs_encoding(word: &str) -> bool {
    // A word that looks like an encoded-word would be decoded by the reader (RFC 2047 §6.1), so
    // it is encoded to keep its literal text.
    !word.is_ascii() || word.contains("=?")
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Writes an unstructured field (RFC 5322 §3.2.5 `unstructured`): ASCII words stay readable,
/// other words become encoded-words; adjacent encoded words share one run, the whitespace between
/// them encoded inside, since decoders drop whitespace between encoded-words (RFC 2047 §6.2).
///
/// ```
/// use mailpump::mime::headers::write_unstructured;
///
/// let mut out = String::new();
/// write_unstructured(&mut out, "Subject", "Grüße aus Köln");
/// assert_eq!(out, "Subject: =?utf-8?B?R3LDvMOfZQ==?= aus =?utf-8?B?S8O2bG4=?=\r\n");
/// ```
pub fn write_unstructured(out: &mut String, name: &str, value: &str) {
    let mut folder = Folder::new(out, name);
    write_words(&mut folder, value, false, |word| !needs_encoding(word));
    folder.finish();
}

/// Writes `value` word by word after a space: words `plain` accepts as they are, runs of other
/// words as encoded-words (the whitespace inside a run encoded with it). In a `phrase`, readers
/// collapse whitespace between words to one space, so other whitespace goes inside a run.
pub(super) fn write_words(
    folder: &mut Folder<'_>,
    value: &str,
    phrase: bool,
    plain: impl Fn(&str) -> bool,
) {
    // Tokens: (whitespace before, word).
    let mut tokens: Vec<(&str, &str)> = Vec::new();
    let mut rest = value;
    loop {
        let word_start = rest.find(|c| !is_wsp(c)).unwrap_or(rest.len());
        if word_start == rest.len() {
            break;
        }
        let (ws, tail) = rest.split_at(word_start);
        let word_end = tail.find(is_wsp).unwrap_or(tail.len());
        tokens.push((ws, &tail[..word_end]));
        rest = &tail[word_end..];
    }
    let trailing = rest;
    if tokens.is_empty() {
        if !trailing.is_empty() {
            // Readers strip the whitespace after the colon; only an encoded-word keeps it.
            folder.push_encoded(" ", trailing);
        }
        return;
    }
    let mut flags: Vec<bool> = tokens
        .iter()
        .map(|(ws, word)| !plain(word) || ws.len() + word.len() > LONG_WORD)
        .collect();
    // Leading whitespace would be stripped by readers, so it goes inside an encoded-word.
    flags[0] |= !tokens[0].0.is_empty();
    for i in 1..tokens.len() {
        if tokens[i].0.len() > LONG_WORD || (phrase && tokens[i].0 != " ") {
            // Whitespace too long for a line goes inside the encoded text, between its two words.
            flags[i - 1] = true;
            flags[i] = true;
        }
    }
    let last = tokens.len() - 1;
    // Trailing whitespace goes inside the last encoded-word: written bare, it could push the last
    // line past 78 octets with nothing after it to fold before.
    let absorb_trailing = !trailing.is_empty();
    flags[last] |= absorb_trailing;
    let mut i = 0;
    while i < tokens.len() {
        let (ws, word) = tokens[i];
        if !flags[i] {
            folder.push(if i == 0 { " " } else { ws }, word);
            i += 1;
            continue;
        }
        // A run of tokens to encode together: from word i (with leading whitespace if i == 0)
        // through the last flagged token after it.
        let mut j = i;
        while j < last && flags[j + 1] {
            j += 1;
        }
        let start = if i == 0 {
            0
        } else {
            offset(value, ws) + ws.len()
        };
        let (ws_j, word_j) = tokens[j];
        let mut end = offset(value, ws_j) + ws_j.len() + word_j.len();
        if j == last && absorb_trailing {
            end = value.len();
        }
        folder.push_encoded(if i == 0 { " " } else { ws }, &value[start..end]);
        i = j + 1;
    }
    if !absorb_trailing {
        folder.out.push_str(trailing);
    }
}

/// The byte offset of `part` inside `whole` (`part` must be a subslice of `whole`).
pub(super) fn offset(whole: &str, part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// Writes a structured field: ASCII only, folded at whitespace outside quoted strings and comments.
///
/// ```
/// use mailpump::mime::headers::write_structured;
///
/// let mut out = String::new();
/// write_structured(&mut out, "Content-Type", "text/plain; charset=\"utf-8\"")?;
/// assert_eq!(out, "Content-Type: text/plain; charset=\"utf-8\"\r\n");
/// assert!(write_structured(&mut out, "Content-Type", "text/plain; name=\"é\"").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn write_structured(out: &mut String, name: &str, value: &str) -> Result<(), String> {
    if let Some(c) = value.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "non-ASCII character {c:?} in a header whose syntax has no place for encoded-words; \
             for a file name use Part::attachment, which writes RFC 2231 parameters"
        ));
    }
    let start = out.len();
    let mut folder = Folder::new(out, name);
    for (ws, token) in structured_tokens(value.trim()) {
        folder.push(if ws.is_empty() { " " } else { ws }, token);
    }
    folder.finish();
    check_lines(&out[start..])
}

/// Splits at whitespace outside quoted strings and comments: (whitespace before, token) pairs.
pub(super) fn structured_tokens(value: &str) -> Vec<(&str, &str)> {
    let mut tokens = Vec::new();
    let (mut quoted, mut escaped, mut comment) = (false, false, 0u32);
    let mut ws_start = 0;
    let mut tok_start = 0;
    let mut in_ws = true;
    for (i, c) in value.char_indices() {
        let boundary = is_wsp(c) && !quoted && comment == 0 && !escaped;
        if escaped {
            escaped = false;
        } else {
            match c {
                '\\' if quoted || comment > 0 => escaped = true,
                '"' if comment == 0 => quoted = !quoted,
                '(' if !quoted => comment += 1,
                ')' if !quoted => comment = comment.saturating_sub(1),
                _ => {}
            }
        }
        if boundary && !in_ws {
            tokens.push((&value[ws_start..tok_start], &value[tok_start..i]));
            ws_start = i;
            in_ws = true;
        } else if !boundary && in_ws {
            tok_start = i;
            in_ws = false;
        }
    }
    if !in_ws {
        tokens.push((&value[ws_start..tok_start], &value[tok_start..]));
    }
    tokens
}

/// Checks that a written value (`structured`: one with parameters) does not decode, for a reader,
/// to CR, LF or NUL: neither through an RFC 2047 encoded-word (RFC 2047 §5 puts them in display
/// names, comments and free text, and readers decode them in other places too) nor through an
/// RFC 2231 `name*=` parameter's `%XX` octets. Such a value would be a second field, or a cut
/// one, once decoded: `References: =?utf-8?q?x=0D=0ABcc:_v@e.test?=`.
///
/// ```
/// use mailpump::mime::headers::check_decoded;
///
/// assert!(check_decoded("attachment; filename*=utf-8''a%0D%0Ab", true).is_err());
/// assert!(check_decoded("attachment; filename*=utf-8''caf%C3%A9", true).is_ok());
/// ```
pub fn check_decoded(value: &str, structured: bool) -> Result<(), String> {
    if crate::mime::encoded_word::decodes_to_control(value) {
        return Err(
            "the value holds an encoded-word (=?...?=) that decodes to CR, LF or NUL; \
             a reader would see a line break or another field there"
                .to_owned(),
        );
    }
    if structured {
        for param in split_params(value) {
            let Some((name, encoded)) = param.split_once('=') else {
                continue;
            };
            if !name.trim_end().ends_with('*') {
                continue;
            }
            let bytes = encoded.as_bytes();
            let hides = bytes.windows(3).any(|w| {
                w[0] == b'%'
                    && w[1] == b'0'
                    && matches!(w[2].to_ascii_lowercase(), b'0' | b'a' | b'd')
            });
            if hides {
                return Err(format!(
                    "parameter {:?} is percent-encoded (RFC 2231) to CR, LF or NUL; \
                     a reader would see a line break there",
                    name.trim()
                ));
            }
        }
    }
    Ok(())
}

/// Checks that no line of a written field passes [`MAX_LINE`] octets.
pub(super) fn check_lines(field: &str) -> Result<(), String> {
    match field.split("\r\n").map(str::len).max() {
        Some(n) if n > MAX_LINE => Err(format!(
            "the value holds a word that cannot be folded to fit a line of {MAX_LINE} octets (RFC 5322 §2.1.1); \
             its line would be {n} octets"
        )),
        _ => Ok(()),
    }
}

/// Writes a raw field as given; its single line must fit in [`MAX_LINE`] octets.
///
/// ```
/// use mailpump::mime::headers::write_raw;
///
/// let mut out = String::new();
/// write_raw(&mut out, "X-Raw", "as  given")?;
/// assert_eq!(out, "X-Raw: as  given\r\n");
/// # Ok::<(), String>(())
/// ```
pub fn write_raw(out: &mut String, name: &str, value: &str) -> Result<(), String> {
    let line = name.len() + 2 + value.len();
    if line > MAX_LINE {
        return Err(format!(
            "a raw (bytes) value is written as given, and this one makes a line of {line} octets; \
             at most {MAX_LINE} are allowed (RFC 5322 §2.1.1)"
        ));
    }
    let _ = write!(out, "{name}: {value}\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unstructured(value: &str) -> String {
        let mut out = String::new();
        write_unstructured(&mut out, "Subject", value);
        out
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("content-type"), "Content-Type");
        assert_eq!(canonical_name("MIME-version"), "MIME-Version");
        assert_eq!(canonical_name("message-id"), "Message-ID");
        assert_eq!(canonical_name("CONTENT-MD5"), "Content-MD5");
        assert_eq!(canonical_name("x-custom-header"), "X-Custom-Header");
        assert_eq!(canonical_name("x--odd-"), "X--Odd-");
    }

    #[test]
    fn names_must_be_ftext() {
        assert!(check_name("X-Fine_Name!").is_ok());
        for bad in ["", "a b", "a:b", "é", "a\r\nb", "a\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_reject_every_line_break() {
        assert!(check_text("tab\tis fine, ünïcode too").is_ok());
        for bad in [
            "a\rb",
            "a\nb",
            "a\r\nBcc: x",
            "a\0",
            "a\u{2028}",
            "a\u{2029}",
            "a\u{85}",
            "a\u{7f}",
            "a\u{1b}",
        ] {
            assert!(check_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ascii_stays_readable_and_folds_at_78() {
        assert_eq!(unstructured("Hello  world"), "Subject: Hello  world\r\n");
        let long = "word ".repeat(40);
        let out = unstructured(long.trim_end());
        assert!(out.split("\r\n").all(|l| l.len() <= FOLD_AT), "{out}");
        assert_eq!(
            out.replace("\r\n", ""),
            format!("Subject: {}\r\n", long.trim_end()).replace("\r\n", "")
        );
    }

    #[test]
    fn adjacent_non_ascii_words_share_encoded_text() {
        // B is shorter than Q for these words (RFC 2047 lets the writer choose).
        assert_eq!(
            unstructured("Grüße aus Köln"),
            "Subject: =?utf-8?B?R3LDvMOfZQ==?= aus =?utf-8?B?S8O2bG4=?=\r\n"
        );
        assert_eq!(
            unstructured("Grüße Köln"),
            "Subject: =?utf-8?B?R3LDvMOfZSBLw7Zsbg==?=\r\n"
        );
    }

    #[test]
    fn long_tokens_become_folded_encoded_words() {
        let out = unstructured(&"x".repeat(5000));
        assert!(out.split("\r\n").all(|l| l.len() <= FOLD_AT), "{out}");
    }

    #[test]
    fn structured_values_fold_outside_quotes() {
        let mut out = String::new();
        let value = format!(
            "attachment; filename=\"{} {}\"; size=1",
            "a".repeat(50),
            "b".repeat(50)
        );
        write_structured(&mut out, "Content-Disposition", &value).unwrap();
        assert_eq!(out.matches("\r\n").count(), 3, "{out}");
        assert!(
            write_structured(&mut String::new(), "Content-Type", "text/plain; name=\"é\"").is_err()
        );
        assert!(write_structured(&mut String::new(), "Message-ID", &"x".repeat(1000)).is_err());
    }
}
