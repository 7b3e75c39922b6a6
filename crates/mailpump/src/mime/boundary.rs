//! Multipart boundaries (RFC 2046 §5.1.1) and the Content-Type parameters that carry them.
//!
//! A generated boundary is `=_` followed by 40 hexadecimal digits from 160 random bits. The `=_`
//! prefix can never occur in base64 output (whose alphabet has neither `_` nor `-`) nor in
//! quoted-printable output (where `=` is always followed by two hex digits or a line break), so
//! bodies encoded here cannot contain the delimiter by construction. Bodies written as given could in
//! principle contain it, but the boundary is drawn after the caller chose the content and
//! independently of it: the chance that a body holds a given 160-bit string is below `n / 2^160`
//! for `n` bytes of content, which is negligible for any message that fits on a disk.

use std::fmt::Write as _;

use crate::mime::headers::split_params;

/// The longest boundary RFC 2046 §5.1.1 allows.
pub const MAX_LEN: usize = 70;

/// A source of random bytes: the operating system's, or a fixed sequence for reproducible tests.
///
/// ```
/// use mailpump::mime::boundary::{Random, generate, is_valid};
///
/// let boundary = generate(&mut Random::os())?;
/// assert!(is_valid(&boundary) && boundary.starts_with("=_"));
/// assert_eq!(Random::seeded(7).hex(4)?, Random::seeded(7).hex(4)?);
/// # Ok::<(), getrandom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Random {
    /// `Some(state)`: a deterministic `SplitMix64` stream (tests only); `None`: `getrandom`.
    seeded: Option<u64>,
}

impl Random {
    /// Random bytes from the operating system.
    ///
    /// ```
    /// use mailpump::mime::boundary::Random;
    ///
    /// let mut bytes = [0u8; 16];
    /// Random::os().fill(&mut bytes)?;
    /// # Ok::<(), getrandom::Error>(())
    /// ```
    #[must_use]
    pub fn os() -> Self {
        Self { seeded: None }
    }

    /// A reproducible byte stream derived from `seed`. Not random: for tests and golden files only.
    ///
    /// ```
    /// use mailpump::mime::boundary::{Random, generate};
    ///
    /// assert_eq!(generate(&mut Random::seeded(1))?, generate(&mut Random::seeded(1))?);
    /// # Ok::<(), getrandom::Error>(())
    /// ```
    #[must_use]
    pub fn seeded(seed: u64) -> Self {
        Self { seeded: Some(seed) }
    }

    /// Fills `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<(), getrandom::Error> {
        let Some(state) = self.seeded.as_mut() else {
            return getrandom::fill(buf);
        };
        for chunk in buf.chunks_mut(8) {
            // SplitMix64 (Steele, Lea, Flood 2014): simple, and a well-mixed output per step.
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }

    /// `n` random bytes as lowercase hexadecimal.
    ///
    /// ```
    /// use mailpump::mime::boundary::Random;
    ///
    /// let hex = Random::os().hex(8)?;
    /// assert!(hex.len() == 16 && hex.bytes().all(|c| c.is_ascii_hexdigit()));
    /// # Ok::<(), getrandom::Error>(())
    /// ```
    pub fn hex(&mut self, n: usize) -> Result<String, getrandom::Error> {
        let mut bytes = vec![0; n];
        self.fill(&mut bytes)?;
        Ok(bytes.iter().fold(String::with_capacity(2 * n), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }))
    }
}

/// A fresh boundary: `=_` and 160 random bits in hex (42 characters, all RFC 2046 `bchars`).
pub fn generate(random: &mut Random) -> Result<String, getrandom::Error> {
    Ok(format!("=_{}", random.hex(20)?))
}

/// Whether `boundary` is one RFC 2046 §5.1.1 allows: 1 to 70 `bchars`, not ending in a space.
///
/// ```
/// use mailpump::mime::boundary::is_valid;
///
/// assert!(is_valid("simple boundary"));
/// assert!(!is_valid("ends with space ") && !is_valid("") && !is_valid(&"x".repeat(71)));
/// ```
#[must_use]
pub fn is_valid(boundary: &str) -> bool {
    let bchar = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b);
    !boundary.is_empty()
        && boundary.len() <= MAX_LEN
        && boundary.bytes().all(bchar)
        && !boundary.ends_with(' ')
}

/// The `boundary` parameter of a Content-Type value, unquoted, if there is one.
///
/// ```
/// use mailpump::mime::boundary::{find, media_type, parameter};
///
/// let value = "Multipart/Mixed; boundary=\"b 1\"; charset=utf-8";
/// assert_eq!(find(value).as_deref(), Some("b 1"));
/// assert_eq!(parameter(value, "CHARSET").as_deref(), Some("utf-8"));
/// assert_eq!(media_type(value), "multipart/mixed");
/// ```
#[must_use]
pub fn find(content_type: &str) -> Option<String> {
    parameter(content_type, "boundary")
}

/// The value of parameter `name` (case-insensitive) in a MIME header value, unquoted.
#[must_use]
pub fn parameter(value: &str, name: &str) -> Option<String> {
    split_params(value).into_iter().skip(1).find_map(|param| {
        let (key, val) = param.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let val = val.trim();
        if let Some(inner) = val.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or('\\')
                } else {
                    c
                });
            }
            Some(out)
        } else {
            Some(val.to_owned())
        }
    })
}

/// The media type of a Content-Type value (`type/subtype`), lowercased.
#[must_use]
pub fn media_type(content_type: &str) -> String {
    split_params(content_type)
        .first()
        .map_or("", |t| t.trim())
        .to_ascii_lowercase()
}

/// Whether `content` holds `--boundary` anywhere (a conservative test for caller-chosen boundaries).
///
/// ```
/// use mailpump::mime::boundary::occurs_in;
///
/// assert!(occurs_in(b"text\r\n--b1\r\n", "b1"));
/// assert!(!occurs_in(b"text b1", "b1"));
/// ```
#[must_use]
pub fn occurs_in(content: &[u8], boundary: &str) -> bool {
    let mut needle = Vec::with_capacity(boundary.len() + 2);
    needle.extend_from_slice(b"--");
    needle.extend_from_slice(boundary.as_bytes());
    memchr::memmem::find(content, &needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_boundaries_are_valid_fresh_and_long_enough() {
        let mut random = Random::os();
        let a = generate(&mut random).unwrap();
        let b = generate(&mut random).unwrap();
        assert_ne!(a, b);
        assert!(is_valid(&a) && a.len() <= MAX_LEN, "{a}");
        // 40 hex digits: 160 bits of randomness, more than the 128 required.
        assert_eq!(a.len() - 2, 40);
        assert!(a[2..].bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn seeded_randomness_is_reproducible() {
        let a = generate(&mut Random::seeded(7)).unwrap();
        let b = generate(&mut Random::seeded(7)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn validity_follows_rfc_2046() {
        assert!(is_valid("simple boundary"));
        assert!(is_valid("'()+_,-./:=?"));
        assert!(!is_valid(""));
        assert!(!is_valid("ends with space "));
        assert!(!is_valid(&"x".repeat(71)));
        assert!(!is_valid("semi;colon"));
        assert!(!is_valid("quote\"d"));
    }

    #[test]
    fn finds_boundary_parameters() {
        assert_eq!(
            find("multipart/mixed; boundary=\"a b\""),
            Some("a b".into())
        );
        assert_eq!(
            find("multipart/mixed;BOUNDARY=abc ; x=y"),
            Some("abc".into())
        );
        assert_eq!(find("multipart/mixed; charset=\"a;boundary=z\""), None);
        assert_eq!(find("multipart/mixed"), None);
        assert_eq!(
            media_type(" Multipart/Alternative ; boundary=x"),
            "multipart/alternative"
        );
    }
}
