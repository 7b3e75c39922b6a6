//! The service extensions a server announces in its EHLO reply (RFC 5321 §4.1.1.1).
//!
//! ```
//! use mailpump::smtp::auth::Mechanism;
//! use mailpump::smtp::capability::Capabilities;
//! use mailpump::smtp::reply::Reply;
//!
//! let lines = ["mx.example.org", "PIPELINING", "SIZE 10240000", "AUTH=PLAIN LOGIN", "STARTTLS"];
//! let ehlo = Reply::new(250, lines.iter().map(|l| l.to_string()).collect());
//! let caps = Capabilities::from_ehlo(&ehlo);
//! assert!(caps.pipelining && caps.starttls);
//! assert_eq!(caps.size_limit(), Some(10_240_000));
//! assert_eq!(caps.auth, [Mechanism::Plain, Mechanism::Login]);
//! ```

use super::auth::Mechanism;
use super::reply::Reply;

/// What the server supports, read from its EHLO reply. A HELO session has none
/// ([`Capabilities::default`]).
///
/// ```
/// use mailpump::Reply;
/// use mailpump::smtp::capability::Capabilities;
///
/// let ehlo = Reply::new(250, vec!["mx.example.org".into(), "8BITMIME".into(), "X-CUSTOM a b".into()]);
/// let caps = Capabilities::from_ehlo(&ehlo);
/// assert!(caps.eight_bit_mime && !caps.pipelining);
/// assert!(caps.has("x-custom"));
/// assert_eq!(caps.params("X-CUSTOM"), Some(&["a".to_owned(), "b".to_owned()][..]));
/// assert_eq!(caps.keywords().collect::<Vec<_>>(), ["8BITMIME", "X-CUSTOM"]);
/// ```
// One flag per extension, named as the RFCs name them: a plain, documented shape for callers.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// SIZE (RFC 1870): `None` when not offered; `Some(None)` when offered without a limit (no
    /// argument, `0`, or an unreadable one); `Some(Some(n))` with the largest message accepted, in
    /// octets.
    pub size: Option<Option<u64>>,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// The AUTH mechanisms offered that mailpump implements, in the server's order, from both
    /// `AUTH` and the old `AUTH=` form.
    pub auth: Vec<Mechanism>,
    /// CHUNKING (RFC 3030).
    pub chunking: bool,
    /// BINARYMIME (RFC 3030 §3): bodies with binary parts, sent with `BDAT` only.
    pub binary_mime: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// DSN (RFC 3461).
    pub dsn: bool,
    /// Every keyword, upper-cased, with its parameters as the server wrote them.
    keywords: Vec<(String, Vec<String>)>,
}

impl Capabilities {
    /// Reads the EHLO reply: every line after the first (which holds the server's name and
    /// greeting) is a keyword followed by parameters separated by spaces. Keywords are
    /// case-insensitive; lines that are not keywords are ignored.
    ///
    /// ```
    /// use mailpump::Reply;
    /// use mailpump::smtp::capability::Capabilities;
    ///
    /// let caps = Capabilities::from_ehlo(&Reply::new(250, vec!["mx".into(), "SMTPUTF8".into(), "SIZE".into()]));
    /// assert!(caps.smtputf8);
    /// assert_eq!((caps.size, caps.size_limit()), (Some(None), None)); // SIZE without a limit
    /// ```
    #[must_use]
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Self::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(first) = words.next() else { continue };
            let mut params: Vec<String> = words.map(str::to_owned).collect();
            // Old servers (and Postfix, for old clients) write `AUTH=LOGIN PLAIN`.
            let keyword = match first.split_once('=') {
                Some((keyword, mechanism)) if keyword.eq_ignore_ascii_case("AUTH") => {
                    if !mechanism.is_empty() {
                        params.insert(0, mechanism.to_owned());
                    }
                    "AUTH".to_owned()
                }
                _ => first.to_ascii_uppercase(),
            };
            // RFC 5321 §4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
            let valid = keyword
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
                && keyword
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                continue;
            }
            caps.apply(&keyword, &params);
            match caps.keywords.iter_mut().find(|(k, _)| *k == keyword) {
                Some((_, existing)) => {
                    for param in params {
                        if !existing.contains(&param) {
                            existing.push(param);
                        }
                    }
                }
                None => caps.keywords.push((keyword, params)),
            }
        }
        caps
    }

    fn apply(&mut self, keyword: &str, params: &[String]) {
        match keyword {
            "SIZE" => {
                let limit = params
                    .first()
                    .and_then(|p| p.parse::<u64>().ok())
                    .filter(|&n| n > 0);
                self.size = Some(limit);
            }
            "PIPELINING" => self.pipelining = true,
            "8BITMIME" => self.eight_bit_mime = true,
            "SMTPUTF8" => self.smtputf8 = true,
            "STARTTLS" => self.starttls = true,
            "CHUNKING" => self.chunking = true,
            "BINARYMIME" => self.binary_mime = true,
            "ENHANCEDSTATUSCODES" => self.enhanced_status_codes = true,
            "DSN" => self.dsn = true,
            "AUTH" => {
                for mechanism in params.iter().filter_map(|p| p.parse::<Mechanism>().ok()) {
                    if !self.auth.contains(&mechanism) {
                        self.auth.push(mechanism);
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether the server announced `keyword` (case-insensitive), known to this type or not.
    ///
    /// ```
    /// use mailpump::Reply;
    /// use mailpump::smtp::capability::Capabilities;
    ///
    /// let caps = Capabilities::from_ehlo(&Reply::new(250, vec!["mx".into(), "VRFY".into(), "SIZE 1000".into()]));
    /// assert!(caps.has("vrfy") && !caps.has("ETRN"));
    /// assert_eq!(caps.params("size"), Some(&["1000".to_owned()][..]));
    /// assert_eq!(caps.size_limit(), Some(1000));
    /// assert_eq!(caps.keywords().collect::<Vec<_>>(), ["VRFY", "SIZE"]);
    /// ```
    #[must_use]
    pub fn has(&self, keyword: &str) -> bool {
        self.params(keyword).is_some()
    }

    /// The parameters of `keyword` (case-insensitive) as the server wrote them, if announced.
    #[must_use]
    pub fn params(&self, keyword: &str) -> Option<&[String]> {
        self.keywords
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, p)| p.as_slice())
    }

    /// The server's message size limit in octets, when it announced one.
    #[must_use]
    pub fn size_limit(&self) -> Option<u64> {
        self.size.flatten()
    }

    /// Every keyword announced, upper-cased, in the server's order.
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.keywords.iter().map(|(k, _)| k.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::{Parsed, ReplyLimits, parse_reply};

    fn ehlo(wire: &str) -> Capabilities {
        let Ok(Parsed::Complete { reply, consumed }) =
            parse_reply(wire.as_bytes(), &ReplyLimits::default())
        else {
            panic!("not a complete reply: {wire:?}");
        };
        assert_eq!(consumed, wire.len());
        Capabilities::from_ehlo(&reply)
    }

    #[test]
    fn postfix() {
        // Postfix smtpd with SASL and TLS configured, as `postconf` defaults announce them.
        let caps = ehlo(
            "250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n\
             250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n\
             250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
        );
        assert_eq!(caps.size, Some(Some(10_240_000)));
        assert_eq!(caps.size_limit(), Some(10_240_000));
        assert!(caps.pipelining && caps.starttls && caps.enhanced_status_codes);
        assert!(caps.eight_bit_mime && caps.dsn && caps.smtputf8 && caps.chunking);
        assert_eq!(caps.auth, [Mechanism::Plain, Mechanism::Login]);
        assert!(caps.has("VRFY") && caps.has("etrn") && !caps.has("XCLIENT"));
        // The old form merges into the same keyword, without duplicates.
        assert_eq!(caps.params("auth").unwrap(), ["PLAIN", "LOGIN"]);
        assert_eq!(
            caps.keywords().collect::<Vec<_>>(),
            [
                "PIPELINING",
                "SIZE",
                "VRFY",
                "ETRN",
                "STARTTLS",
                "AUTH",
                "ENHANCEDSTATUSCODES",
                "8BITMIME",
                "DSN",
                "SMTPUTF8",
                "CHUNKING"
            ]
        );
        // The first line is the server's name, not a keyword.
        assert!(!caps.has("mail.example.com"));
    }

    #[test]
    fn binarymime() {
        // Microsoft Exchange offers BINARYMIME with CHUNKING (RFC 3030 §3); Postfix offers
        // CHUNKING alone.
        let caps = ehlo(
            "250-mx.example.com\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-BINARYMIME\r\n\
             250 CHUNKING\r\n",
        );
        assert!(caps.binary_mime && caps.chunking && caps.pipelining);
        assert!(!ehlo("250-mx\r\n250 CHUNKING\r\n").binary_mime);
    }

    #[test]
    fn postfix_smtp_sink() {
        // Recorded from `smtp-sink -u nobody 127.0.0.1:port 10` (Postfix 3.x): note the final
        // "250 " with nothing after the space.
        let caps = ehlo(
            "250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n\
             250-XCLIENT NAME HELO\r\n250-XFORWARD NAME ADDR PROTO HELO\r\n250-ENHANCEDSTATUSCODES\r\n\
             250-DSN\r\n250 \r\n",
        );
        assert!(caps.pipelining && caps.eight_bit_mime && caps.enhanced_status_codes && caps.dsn);
        assert!(!caps.starttls && !caps.smtputf8 && !caps.chunking);
        assert_eq!(caps.size, None);
        assert_eq!(caps.auth, [Mechanism::Plain, Mechanism::Login]);
        assert_eq!(
            caps.params("XFORWARD").unwrap(),
            ["NAME", "ADDR", "PROTO", "HELO"]
        );
    }

    #[test]
    fn aiosmtpd() {
        // aiosmtpd 1.4 with a TLS context and an authenticator (SIZE is its 32 MiB default).
        let caps = ehlo(
            "250-testhost\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n\
             250-AUTH LOGIN PLAIN\r\n250 HELP\r\n",
        );
        assert_eq!(caps.size_limit(), Some(33_554_432));
        assert!(caps.eight_bit_mime && caps.smtputf8 && caps.starttls && caps.has("help"));
        assert!(!caps.pipelining && !caps.chunking && !caps.enhanced_status_codes && !caps.dsn);
        // The server's order is kept.
        assert_eq!(caps.auth, [Mechanism::Login, Mechanism::Plain]);
    }

    #[test]
    fn keywords_and_parameters() {
        type Case = (&'static str, Option<Option<u64>>, &'static [Mechanism]);
        let cases: &[Case] = &[
            ("250-x\r\n250 SIZE\r\n", Some(None), &[]),
            // RFC 1870 §4: zero means no fixed limit.
            ("250-x\r\n250 SIZE 0\r\n", Some(None), &[]),
            ("250-x\r\n250 size 1000\r\n", Some(Some(1000)), &[]),
            ("250-x\r\n250 SIZE lots\r\n", Some(None), &[]),
            (
                "250-x\r\n250 SIZE 99999999999999999999999\r\n",
                Some(None),
                &[],
            ),
            (
                "250-x\r\n250 auth cram-md5 xoauth2 SCRAM-SHA-256\r\n",
                None,
                &[Mechanism::CramMd5, Mechanism::XOAuth2],
            ),
            ("250-x\r\n250 AUTH=LOGIN\r\n", None, &[Mechanism::Login]),
            (
                "250-x\r\n250 auth=login plain\r\n",
                None,
                &[Mechanism::Login, Mechanism::Plain],
            ),
            (
                "250-x\r\n250-AUTH LOGIN\r\n250 AUTH PLAIN LOGIN\r\n",
                None,
                &[Mechanism::Login, Mechanism::Plain],
            ),
            ("250-x\r\n250 AUTH\r\n", None, &[]),
            ("250-x\r\n250 AUTH=\r\n", None, &[]),
        ];
        for &(wire, size, auth) in cases {
            let caps = ehlo(wire);
            assert_eq!(caps.size, size, "{wire:?}");
            assert_eq!(caps.auth, auth, "{wire:?}");
        }
        let caps =
            ehlo("250-x\r\n250-  pipelining  \r\n250-Smtputf8\r\n250-\r\n250-=x\r\n250 -bad\r\n");
        assert!(caps.pipelining && caps.smtputf8);
        assert_eq!(
            caps.keywords().collect::<Vec<_>>(),
            ["PIPELINING", "SMTPUTF8"]
        );
    }

    #[test]
    fn helo_and_single_line_ehlo_have_no_extensions() {
        assert_eq!(
            ehlo("250 mail.example.com Hello\r\n"),
            Capabilities::default()
        );
        let none = Capabilities::default();
        assert!(none.size.is_none() && none.auth.is_empty() && !none.starttls && !none.has("SIZE"));
    }
}
