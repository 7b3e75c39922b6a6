//! RFC 2047 encoded-words: non-ASCII header text as `=?utf-8?Q?...?=` or `=?utf-8?B?...?=`.
//!
//! Text is cut into as many encoded-words as needed, each at most [`MAX_WORD`] characters long
//! (RFC 2047 §2) and each holding whole UTF-8 sequences (§5: a multi-octet character must not be
//! split between words). Decoders join adjacent encoded-words without the whitespace between them
//! (§6.2), so the caller may separate the words with folding whitespace freely.

use std::fmt::Write as _;

/// The longest encoded-word RFC 2047 §2 allows.
pub const MAX_WORD: usize = 75;

/// The shortest limit [`EncodedWords::next_word`] accepts: room for one character of any encoding.
pub const MIN_WORD: usize = PREFIX_LEN + SUFFIX.len() + 12;

const PREFIX_LEN: usize = "=?utf-8?Q?".len();
const SUFFIX: &str = "?=";

/// How the encoded text is written.
///
/// ```
/// use mailpump::mime::encoded_word::{EncodedWords, Scheme};
///
/// assert_eq!(EncodedWords::new("Hello wörld").scheme(), Scheme::Q);
/// assert_eq!(EncodedWords::new("日本語").scheme(), Scheme::B);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Q`: readable for mostly-ASCII text (RFC 2047 §4.2).
    Q,
    /// `B`: base64, shorter for mostly non-ASCII text (RFC 2047 §4.1).
    B,
}

/// Whether `b` may stand for itself in Q encoding. The set is the one RFC 2047 §5(3) allows in a
/// phrase, the strictest context, so the same words are valid in every header.
fn q_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'!' | b'*' | b'+' | b'-' | b'/')
}

fn q_cost(b: u8) -> usize {
    if q_literal(b) || b == b' ' { 1 } else { 3 }
}

fn b_cost(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// A text being cut into encoded-words, one word per call.
///
/// ```
/// use mailpump::mime::encoded_word::{EncodedWords, Scheme};
///
/// let mut words = EncodedWords::new("café");
/// assert_eq!(words.scheme(), Scheme::B); // shorter than Q here
/// let mut out = String::new();
/// assert!(words.next_word(75, &mut out));
/// assert_eq!(out, "=?utf-8?B?Y2Fmw6k=?=");
/// assert!(words.is_done() && !words.next_word(75, &mut out));
/// ```
#[derive(Debug)]
pub struct EncodedWords<'a> {
    rest: &'a str,
    scheme: Scheme,
}

impl<'a> EncodedWords<'a> {
    /// Prepares `text`, choosing the shorter of Q and B for it as a whole (Q on a tie).
    ///
    /// ```
    /// use mailpump::mime::encoded_word::EncodedWords;
    ///
    /// let words = EncodedWords::new("ü");
    /// assert_eq!(words.single_len(), "=?utf-8?B?w7w=?=".len());
    /// ```
    #[must_use]
    pub fn new(text: &'a str) -> Self {
        let q: usize = text.bytes().map(q_cost).sum();
        let scheme = if q <= b_cost(text.len()) {
            Scheme::Q
        } else {
            Scheme::B
        };
        Self { rest: text, scheme }
    }

    /// The length of the remaining text as a single encoded-word (which may exceed [`MAX_WORD`]).
    #[must_use]
    pub fn single_len(&self) -> usize {
        let data = match self.scheme {
            Scheme::Q => self.rest.bytes().map(q_cost).sum(),
            Scheme::B => b_cost(self.rest.len()),
        };
        PREFIX_LEN + data + SUFFIX.len()
    }

    /// The scheme chosen.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether all the text has been written.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.rest.is_empty()
    }

    /// Appends the next encoded-word, at most `max_len` characters long (clamped to
    /// [`MIN_WORD`]..=[`MAX_WORD`]) and holding at least one character. Returns `false`, appending
    /// nothing, when the text is exhausted.
    ///
    /// ```
    /// use mailpump::mime::encoded_word::EncodedWords;
    ///
    /// let text = "ß".repeat(40);
    /// let mut words = EncodedWords::new(&text);
    /// let mut lines = Vec::new();
    /// let mut word = String::new();
    /// while words.next_word(40, &mut word) {
    ///     assert!(word.len() <= 40);
    ///     lines.push(std::mem::take(&mut word));
    /// }
    /// assert!(lines.len() > 2);
    /// ```
    pub fn next_word(&mut self, max_len: usize, out: &mut String) -> bool {
        if self.rest.is_empty() {
            return false;
        }
        let budget = max_len.clamp(MIN_WORD, MAX_WORD) - PREFIX_LEN - SUFFIX.len();
        // Take whole characters while they fit.
        let mut take = 0;
        let mut cost = 0;
        for (i, c) in self.rest.char_indices() {
            let end = i + c.len_utf8();
            let next = match self.scheme {
                Scheme::Q => cost + self.rest[i..end].bytes().map(q_cost).sum::<usize>(),
                Scheme::B => b_cost(end),
            };
            if next > budget && take > 0 {
                break;
            }
            take = end;
            cost = next;
        }
        let (word, rest) = self.rest.split_at(take);
        self.rest = rest;
        match self.scheme {
            Scheme::Q => {
                out.push_str("=?utf-8?Q?");
                for b in word.bytes() {
                    if q_literal(b) {
                        out.push(char::from(b));
                    } else if b == b' ' {
                        // RFC 2047 §4.2 (2): "_" stands for SPACE.
                        out.push('_');
                    } else {
                        let _ = write!(out, "={b:02X}");
                    }
                }
            }
            Scheme::B => {
                out.push_str("=?utf-8?B?");
                out.push_str(&base64_simd::STANDARD.encode_to_string(word.as_bytes()));
            }
        }
        out.push_str(SUFFIX);
        true
    }
}

/// `text` as encoded-words of at most [`MAX_WORD`] characters each (for tests and short texts).
///
/// ```
/// use mailpump::mime::encoded_word::{MAX_WORD, encode_all};
///
/// let words = encode_all(&"ü".repeat(100));
/// assert!(words.len() > 1 && words.iter().all(|w| w.len() <= MAX_WORD));
/// ```
#[must_use]
pub fn encode_all(text: &str) -> Vec<String> {
    let mut words = EncodedWords::new(text);
    let mut out = Vec::new();
    loop {
        let mut word = String::new();
        if !words.next_word(MAX_WORD, &mut word) {
            return out;
        }
        out.push(word);
    }
}

/// The bytes an encoded-word's text stands for (RFC 2047 §4), decoded leniently as readers do:
/// `Q` maps `_` to a space and `=XX` to its octet; `B` skips what is not base64.
fn decode(scheme: u8, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    if scheme.eq_ignore_ascii_case(&b'q') {
        let mut i = 0;
        while i < text.len() {
            let hex = |b: u8| char::from(b).to_digit(16);
            match text[i] {
                b'_' => out.push(b' '),
                b'=' if i + 2 < text.len() => {
                    if let (Some(h), Some(l)) = (hex(text[i + 1]), hex(text[i + 2])) {
                        out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                        i += 3;
                        continue;
                    }
                    out.push(b'=');
                }
                b => out.push(b),
            }
            i += 1;
        }
    } else {
        let (mut acc, mut bits) = (0u32, 0u32);
        for &c in text {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => continue,
            };
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
            }
        }
    }
    out
}

/// Whether `value` holds an encoded-word (`=?charset?Q|B?text?=`) whose text decodes to CR, LF
/// or NUL. A reader that decodes it would see a line break, or a second field, inside the value.
///
/// ```
/// use mailpump::mime::encoded_word::decodes_to_control;
///
/// assert!(decodes_to_control("<a@b> =?utf-8?q?x=0D=0ABcc:_v@e.test?="));
/// assert!(decodes_to_control("=?utf-8?B?eA0K?="));
/// assert!(!decodes_to_control("=?utf-8?Q?caf=C3=A9?= =?x?q?=?="));
/// ```
#[must_use]
pub fn decodes_to_control(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut from = 0;
    while let Some(at) = value[from..].find("=?").map(|i| from + i) {
        from = at + 2;
        // charset (with an optional RFC 2231 language), encoding, text: no whitespace inside.
        let rest = &bytes[at + 2..];
        let Some(q1) = rest.iter().position(|&b| b == b'?') else {
            break;
        };
        let (Some(&scheme), Some(&b'?')) = (rest.get(q1 + 1), rest.get(q1 + 2)) else {
            continue;
        };
        if !matches!(scheme, b'q' | b'Q' | b'b' | b'B')
            || rest[..q1].iter().any(u8::is_ascii_whitespace)
        {
            continue;
        }
        let text = &rest[q1 + 3..];
        let Some(end) = text.windows(2).position(|w| w == b"?=") else {
            continue;
        };
        let text = &text[..end];
        if text.iter().any(u8::is_ascii_whitespace) {
            continue;
        }
        if decode(scheme, text)
            .iter()
            .any(|b| matches!(b, b'\r' | b'\n' | 0))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_q_for_mostly_ascii_and_b_for_the_rest() {
        assert_eq!(
            encode_all("café au lait"),
            ["=?utf-8?Q?caf=C3=A9_au_lait?="]
        );
        assert_eq!(encode_all("日本語"), ["=?utf-8?B?5pel5pys6Kqe?="]);
    }

    #[test]
    fn words_stay_within_75_and_never_split_a_character() {
        for text in [
            "é".repeat(200),
            "日本".repeat(100),
            "a€".repeat(120),
            "x".repeat(500),
            "😀".repeat(60),
        ] {
            let words = encode_all(&text);
            assert!(words.len() > 1);
            let mut decoded = Vec::new();
            for w in &words {
                assert!(w.len() <= MAX_WORD, "{w}");
                let body = &w[10..w.len() - 2];
                let bytes = if w.as_bytes()[8] == b'B' {
                    base64_simd::STANDARD.decode_to_vec(body).unwrap()
                } else {
                    q_decode(body)
                };
                assert!(
                    std::str::from_utf8(&bytes).is_ok(),
                    "word {w} splits a character"
                );
                decoded.extend(bytes);
            }
            assert_eq!(decoded, text.as_bytes());
        }
    }

    #[test]
    fn short_limits_still_make_progress() {
        let mut words = EncodedWords::new("😀😀😀😀");
        let mut out = String::new();
        assert!(words.next_word(0, &mut out));
        assert!(out.len() <= MIN_WORD);
        assert!(!words.is_done());
    }

    fn q_decode(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'_' => out.push(b' '),
                b'=' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        out
    }
}
