//! Pinned certificate fingerprints (`fingerprint=`): a server certificate accepted by its
//! SHA-256 digest alone, as Postfix's `fingerprint` security level does.

use std::fmt;
use std::str::FromStr;

use super::error::SmtpError;

/// The SHA-256 digest of a certificate (its DER bytes), as `fingerprint=` pins it.
///
/// Parsed from `sha256:` followed by 64 hex digits, with or without colons between the bytes
/// (`openssl x509 -noout -fingerprint -sha256` prints one); the prefix may be left out.
///
/// ```
/// use mailpump::smtp::fingerprint::Fingerprint;
///
/// let pin: Fingerprint = "sha256:9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08".parse()?;
/// assert_eq!(pin.to_string(), "sha256:9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08");
/// assert!("sha1:00".parse::<Fingerprint>().is_err());
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The digest of `der`, a certificate's DER bytes.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }
}

impl fmt::Display for Fingerprint {
    /// `sha256:` and the bytes in upper-case hex separated by colons, as OpenSSL prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = SmtpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            SmtpError::invalid_input(format!(
                "fingerprint {s:?}: {why} (expected sha256: and 64 hex digits, as `openssl x509 \
                 -noout -fingerprint -sha256` prints them)"
            ))
        };
        let trimmed = s.trim();
        let hex = match trimmed.split_once(':') {
            Some((algorithm, rest)) if algorithm.eq_ignore_ascii_case("sha256") => rest,
            Some((algorithm, _)) if !algorithm.is_empty() && algorithm.len() != 2 => {
                return Err(bad("only SHA-256 fingerprints are supported"));
            }
            _ => trimmed,
        };
        let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return Err(bad("a SHA-256 digest has 32 bytes"));
        }
        let mut bytes = [0; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| bad("not hex"))?;
            bytes[i] = u8::from_str_radix(text, 16).map_err(|_| bad("not hex"))?;
        }
        Ok(Self(bytes))
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_openssl_and_bare_forms() {
        let pin = Fingerprint::of(b"x");
        let printed = pin.to_string();
        assert!(printed.starts_with("sha256:") && printed.len() == 7 + 95);
        assert_eq!(printed.parse::<Fingerprint>().unwrap(), pin);
        let bare: String = printed[7..].replace(':', "").to_lowercase();
        assert_eq!(bare.parse::<Fingerprint>().unwrap(), pin);
        assert_eq!(
            format!("SHA256:{bare}").parse::<Fingerprint>().unwrap(),
            pin
        );
        for bad in [
            "",
            "sha256:",
            "sha1:ab",
            "md5:00",
            &bare[2..],
            &format!("{bare}zz"),
        ] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
    }
}
