//! The service extensions a server announces in its EHLO reply (RFC 5321 §4.1.1.1).

use super::auth::Mechanism;
use super::reply::Reply;

/// What the server supports, read from its EHLO reply. A HELO session has none
/// ([`Capabilities::default`]).
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
