//! Envelope addresses (RFC 5321 §4.1.2 paths), parsed and checked once, so that every address that
//! reaches the wire is safe to write.
//!
//! ```
//! use mailpump::smtp::address::Address;
//!
//! let from = Address::parse("\"Fulano, da Silva\" <fulano@example.com>").unwrap();
//! assert_eq!(from.as_path(), "<fulano@example.com>");
//! assert_eq!(from.display_name(), Some("Fulano, da Silva"));
//! assert!(Address::parse("").unwrap().is_null());
//! assert!(Address::parse("victim@example.com>\r\nDATA").is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use super::error::SmtpError;

/// The longest path, angle brackets included (RFC 5321 §4.5.3.1.3).
pub const MAX_PATH: usize = 256;

/// An envelope address: a mailbox `local@domain`, or the null reverse-path `<>` (RFC 5321 §4.5.5,
/// for bounces; valid in MAIL FROM only).
///
/// ```
/// use mailpump::Address;
///
/// let to: Address = "Bob <bob@example.org>".parse()?;
/// assert_eq!((to.local_part(), to.domain()), ("bob", "example.org"));
/// assert_eq!(to.to_string(), "<bob@example.org>");
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// `local@domain` without brackets; empty for the null path.
    mailbox: String,
    /// Where the domain starts in `mailbox`.
    at: usize,
    /// The display name the caller wrote, if any (not sent in the envelope).
    name: Option<String>,
}

impl Address {
    /// Parses `a@b`, `<a@b>`, `Name <a@b>` or `"Quoted Name" <a@b>`; `""` and `"<>"` give the null
    /// reverse-path. Surrounding spaces are ignored.
    ///
    /// Refused, before anything is sent: CR, LF, NUL, any other control character (C0 or C1) or
    /// DEL anywhere (these would let a caller's data inject SMTP commands), U+2028 and U+2029;
    /// spaces in the address outside a quoted local part; unbalanced angle brackets or quotes; `<`
    /// or `>` inside a quoted local part or an address literal (a server that ends the path at the
    /// first `>` would read what follows as parameters); a missing `@`, local part or domain; a
    /// path longer than 256 octets.
    ///
    /// ```
    /// use mailpump::Address;
    ///
    /// assert_eq!(Address::parse(" <a@example.com> ")?.as_str(), "a@example.com");
    /// assert!(Address::parse("<>")?.is_null());
    /// assert!(Address::parse("a@example.com>\r\nRCPT TO:<b@example.com").is_err());
    /// assert!(Address::parse("no at sign").is_err());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, SmtpError> {
        // C1 controls (U+0080..U+009F, NEL among them) and the Unicode line and paragraph
        // separators are refused too: RFC 5198 §2 keeps them out of Net-Unicode, and a next hop
        // that splits lines the way Unicode does (U+0085, U+2028, U+2029) would see a line break.
        if let Some(c) = input.chars().find(|&c| c.is_control()) {
            return Err(invalid(
                input,
                &format!("it contains the control character {c:?}"),
            ));
        }
        if let Some(c) = input
            .chars()
            .find(|&c| matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(invalid(
                input,
                &format!("it contains the Unicode line separator {c:?}"),
            ));
        }
        let trimmed = input.trim_matches(' ');
        let (name, spec) = split_name(trimmed).map_err(|reason| invalid(input, reason))?;
        if spec.is_empty() {
            return Ok(Self {
                mailbox: String::new(),
                at: 0,
                name,
            });
        }
        let at = check_mailbox(spec).map_err(|reason| invalid(input, reason))?;
        if spec.len() + 2 > MAX_PATH {
            return Err(invalid(
                input,
                "it is longer than 254 octets (RFC 5321 §4.5.3.1.3)",
            ));
        }
        Ok(Self {
            mailbox: spec.to_owned(),
            at,
            name,
        })
    }

    /// The null reverse-path `<>`.
    ///
    /// ```
    /// use mailpump::Address;
    ///
    /// let bounce = Address::null();
    /// assert!(bounce.is_null());
    /// assert_eq!(bounce.as_path(), "<>");
    /// ```
    #[must_use]
    pub fn null() -> Self {
        Self {
            mailbox: String::new(),
            at: 0,
            name: None,
        }
    }

    /// Whether this is the null reverse-path.
    #[must_use]
    pub fn is_null(&self) -> bool {
        self.mailbox.is_empty()
    }

    /// `local@domain`, without brackets; empty for the null path.
    ///
    /// ```
    /// use mailpump::Address;
    ///
    /// let address = Address::parse("<\"john smith\"@example.com>")?;
    /// assert_eq!(address.as_str(), "\"john smith\"@example.com");
    /// assert_eq!(address.local_part(), "\"john smith\"");
    /// assert_eq!(address.domain(), "example.com");
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.mailbox
    }

    /// The local part, quotes included when it is quoted; empty for the null path.
    #[must_use]
    pub fn local_part(&self) -> &str {
        self.mailbox.get(..self.at.saturating_sub(1)).unwrap_or("")
    }

    /// The domain (or address literal); empty for the null path.
    #[must_use]
    pub fn domain(&self) -> &str {
        &self.mailbox[self.at..]
    }

    /// The display name given with the address, if any.
    ///
    /// ```
    /// use mailpump::Address;
    ///
    /// assert_eq!(Address::parse("\"Doe, J.\" <j@example.com>")?.display_name(), Some("Doe, J."));
    /// assert_eq!(Address::parse("j@example.com")?.display_name(), None);
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The path as written in MAIL FROM and RCPT TO: `<local@domain>`, or `<>`.
    ///
    /// ```
    /// use mailpump::Address;
    ///
    /// assert_eq!(Address::parse("Zoë <zoe@example.com>")?.as_path(), "<zoe@example.com>");
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn as_path(&self) -> String {
        format!("<{}>", self.mailbox)
    }

    /// Whether the address has non-ASCII characters, which may only be sent with the SMTPUTF8
    /// extension (RFC 6531 §3.2).
    ///
    /// ```
    /// use mailpump::Address;
    ///
    /// assert!(Address::parse("zoë@example.com")?.needs_smtputf8());
    /// assert!(!Address::parse("Zoë <zoe@example.com>")?.needs_smtputf8()); // names are not sent
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn needs_smtputf8(&self) -> bool {
        !self.mailbox.is_ascii()
    }

    /// The address with its domain as IDNA A-labels (UTS 46 through the `idna` crate), for a
    /// transaction that does not use SMTPUTF8. A non-ASCII local part has no ASCII form: it needs
    /// SMTPUTF8 (RFC 6531 §3.2), and is refused here, as is a domain UTS 46 refuses.
    ///
    /// ```
    /// use mailpump::Address;
    ///
    /// assert_eq!(Address::parse("zoe@bücher.example")?.to_ascii()?.as_str(), "zoe@xn--bcher-kva.example");
    /// assert!(Address::parse("zoë@example.com")?.to_ascii().is_err());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn to_ascii(&self) -> Result<Self, SmtpError> {
        if self.mailbox.is_ascii() {
            return Ok(self.clone());
        }
        if !self.local_part().is_ascii() {
            return Err(SmtpError::invalid_input(format!(
                "the local part of {} is not ASCII: it needs SMTPUTF8 (RFC 6531), which the \
                 server does not offer",
                self.mailbox
            )));
        }
        let domain = idna::domain_to_ascii(self.domain()).map_err(|_| {
            SmtpError::invalid_input(format!(
                "the domain of {} is not a valid internationalised domain name (UTS 46)",
                self.mailbox
            ))
        })?;
        Ok(Self {
            mailbox: format!("{}@{domain}", self.local_part()),
            at: self.at,
            name: self.name.clone(),
        })
    }
}

impl fmt::Display for Address {
    /// The path form, `<local@domain>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.mailbox)
    }
}

impl FromStr for Address {
    type Err = SmtpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Address {
    type Error = SmtpError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

fn invalid(input: &str, reason: &str) -> SmtpError {
    // `{:?}` escapes whatever the input holds, so the message is one safe line.
    SmtpError::invalid_input(format!("the address {input:?} is not valid: {reason}"))
}

/// Splits `Name <spec>` into the name and the spec; a bare spec has no name.
fn split_name(input: &str) -> Result<(Option<String>, &str), &'static str> {
    if input.is_empty() || input == "<>" {
        return Ok((None, ""));
    }
    // The first '<' outside a quoted string opens the path.
    let mut open = None;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => {
                open = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(open) = open else {
        if quoted {
            return Err("a quote is not closed");
        }
        // No brackets: the whole input is the mailbox.
        return Ok((None, input));
    };
    let rest = &input[open + 1..];
    let Some(inner) = rest.strip_suffix('>') else {
        return Err(if rest.contains('>') {
            "there is text after the closing '>'"
        } else {
            "'<' has no matching '>'"
        });
    };
    let name = input[..open].trim_matches(' ');
    if name.contains('>') && !name.starts_with('"') {
        return Err("'>' appears before '<'");
    }
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) if name.len() >= 2 => unescape(quoted),
        _ => name.to_owned(),
    };
    Ok(((!name.is_empty()).then_some(name), inner))
}

/// Removes the backslashes of quoted pairs.
fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut escaped = false;
    for c in quoted.chars() {
        if c == '\\' && !escaped {
            escaped = true;
        } else {
            out.push(c);
            escaped = false;
        }
    }
    out
}

/// Checks `local@domain` (RFC 5321 §4.1.2, with UTF-8 allowed as RFC 6531 does) and returns where
/// the domain starts.
fn check_mailbox(spec: &str) -> Result<usize, &'static str> {
    let at = if spec.starts_with('"') {
        check_quoted_local(spec)?
    } else {
        let at = spec.find('@').ok_or("it has no '@'")?;
        check_dot_string(&spec[..at])?;
        at
    };
    let domain = &spec[at + 1..];
    check_domain(domain)?;
    Ok(at + 1)
}

/// A quoted local part: `"` ... `"` with `\` escapes, then `@`; returns the position of the `@`.
fn check_quoted_local(spec: &str) -> Result<usize, &'static str> {
    let mut escaped = false;
    for (i, c) in spec.char_indices().skip(1) {
        match c {
            // RFC 5321 §4.1.2 allows them quoted, but servers that take the path to end at the
            // first '>' exist; escaped or not, the byte on the wire is the same.
            '<' | '>' => {
                return Err(
                    "a quoted local part cannot contain '<' or '>'; a server that ends the path \
                     at the first '>' would read the rest as command parameters",
                );
            }
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                return match spec[i + 1..].chars().next() {
                    Some('@') => Ok(i + 1),
                    Some(_) => Err("a quoted local part must be followed by '@'"),
                    None => Err("it has no '@'"),
                };
            }
            _ => {}
        }
    }
    Err("a quote is not closed")
}

/// An unquoted local part: atoms separated by dots; spaces and specials are refused.
fn check_dot_string(local: &str) -> Result<(), &'static str> {
    if local.is_empty() {
        return Err("the local part before '@' is empty");
    }
    match local
        .chars()
        .find(|&c| c == ' ' || "\"(),:;<>@[\\]".contains(c))
    {
        Some(' ') => Err("it contains a space outside a quoted local part"),
        Some('<' | '>') => Err("it has unbalanced angle brackets"),
        Some(_) => Err("the local part contains a character that must be quoted"),
        None => Ok(()),
    }
}

/// A domain name (letters, digits, hyphens, underscores, non-ASCII, in dot-separated labels) or an
/// address literal in brackets (RFC 5321 §4.1.3).
fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("the domain after '@' is empty");
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let Some(inner) = literal.strip_suffix(']') else {
            return Err("an address literal must end with ']'");
        };
        // RFC 5321 §4.1.3: an IPv4 address or a tagged literal (IPv6 is the only tag registered).
        return if inner.contains(['<', '>']) {
            Err(
                "an address literal holds an IP address, never '<' or '>'; a server that ends \
                 the path at the first '>' would read the rest as command parameters",
            )
        } else if inner.is_empty() || inner.contains(['[', ']', '\\', ' ']) {
            Err("the address literal is malformed")
        } else {
            Ok(())
        };
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("the domain has an empty label");
        }
        if let Some(c) = label
            .chars()
            .find(|&c| c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(match c {
                ' ' => "it contains a space outside a quoted local part",
                '<' | '>' => "it has unbalanced angle brackets",
                '@' => "it has more than one '@'",
                _ => "the domain contains a character that is not allowed",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        // (input, path, display name, needs SMTPUTF8)
        let cases: &[(&str, &str, Option<&str>, bool)] = &[
            ("a@b", "<a@b>", None, false),
            ("<a@b>", "<a@b>", None, false),
            ("  a@b  ", "<a@b>", None, false),
            (
                "user.name+tag@example.org",
                "<user.name+tag@example.org>",
                None,
                false,
            ),
            (
                "Fulano da Silva <fulano@example.com>",
                "<fulano@example.com>",
                Some("Fulano da Silva"),
                false,
            ),
            ("Name<a@b>", "<a@b>", Some("Name"), false),
            ("\"quoted name\" <a@b>", "<a@b>", Some("quoted name"), false),
            (
                "\"Doe, John <jd>\" <jd@example.com>",
                "<jd@example.com>",
                Some("Doe, John <jd>"),
                false,
            ),
            (
                "\"say \\\"hi\\\"\" <a@b>",
                "<a@b>",
                Some("say \"hi\""),
                false,
            ),
            (
                "\"john doe\"@example.com",
                "<\"john doe\"@example.com>",
                None,
                false,
            ),
            (
                "<\"a@b\"@example.com>",
                "<\"a@b\"@example.com>",
                None,
                false,
            ),
            (
                "postmaster@[192.0.2.1]",
                "<postmaster@[192.0.2.1]>",
                None,
                false,
            ),
            (
                "x@[IPv6:2001:db8::1]",
                "<x@[IPv6:2001:db8::1]>",
                None,
                false,
            ),
            ("root@localhost", "<root@localhost>", None, false),
            (
                "a_b@mail_host.example",
                "<a_b@mail_host.example>",
                None,
                false,
            ),
            ("josé@exemplo.com.br", "<josé@exemplo.com.br>", None, true),
            ("用户@例子.广告", "<用户@例子.广告>", None, true),
            ("Ünïcode <a@b>", "<a@b>", Some("Ünïcode"), false),
        ];
        for &(input, path, name, utf8) in cases {
            let address = Address::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(address.as_path(), path, "{input:?}");
            assert_eq!(address.to_string(), path, "{input:?}");
            assert_eq!(address.display_name(), name, "{input:?}");
            assert_eq!(address.needs_smtputf8(), utf8, "{input:?}");
            assert!(!address.is_null());
            assert_eq!(
                format!("{}@{}", address.local_part(), address.domain()),
                address.as_str()
            );
        }
    }

    #[test]
    fn null_reverse_path() {
        for input in ["", "<>", "  <>  ", " "] {
            let address = Address::parse(input).unwrap();
            assert!(address.is_null(), "{input:?}");
            assert_eq!(address.as_path(), "<>");
            assert_eq!(
                (address.as_str(), address.local_part(), address.domain()),
                ("", "", "")
            );
        }
        assert_eq!(Address::null(), Address::parse("<>").unwrap());
    }

    #[test]
    fn refused_forms() {
        let mut cases: Vec<(String, &str)> = [
            ("a@b\r\nRCPT TO:<evil@x>", "control character"),
            // CVE-2015-9096 and friends: a recipient that closes the path and starts a new message.
            (
                "victim@x>\r\nDATA\r\nSubject: spoof\r\n\r\nhi\r\n.\r\nQUIT",
                "control character",
            ),
            ("a@b\nDATA", "control character"),
            ("a@b\r", "control character"),
            ("a\0@b", "control character"),
            ("a@b\x7f", "control character"),
            ("Name\r\n <a@b>", "control character"),
            ("\"tab\there\"@b", "control character"),
            ("a b@c", "space"),
            ("a@b c", "space"),
            ("<a@b c>", "space"),
            ("Name <a b@c>", "space"),
            ("a@b (comment)", "space"),
            ("<a@b", "no matching '>'"),
            ("Name <a@b", "no matching '>'"),
            ("a@b>", "angle brackets"),
            ("<<a@b>>", "angle brackets"),
            ("Name <a@b> trailing", "text after the closing '>'"),
            ("ab", "no '@'"),
            ("<ab>", "no '@'"),
            ("@b", "local part"),
            ("a@", "domain"),
            ("a@b@c", "more than one '@'"),
            ("a@.b", "empty label"),
            ("a@b..c", "empty label"),
            ("a@b.", "empty label"),
            ("\"unclosed@b", "not closed"),
            ("\"unclosed <a@b>", "not closed"),
            ("\"q\"x@b", "followed by '@'"),
            ("\"q\"", "no '@'"),
            ("a(b)@c", "must be quoted"),
            ("a\\b@c", "must be quoted"),
            ("a@[192.0.2.1", "must end with ']'"),
            ("a@[]", "literal is malformed"),
            ("a@b/c", "not allowed"),
        ]
        .iter()
        .map(|&(i, r)| (i.to_owned(), r))
        .collect();
        // Every C0 control and DEL, anywhere.
        for c in (0u8..0x20).chain([0x7f]) {
            let c = char::from(c);
            cases.push((format!("a{c}b@example.com"), "control character"));
            cases.push((format!("a@exam{c}ple.com"), "control character"));
            cases.push((format!("Na{c}me <a@b>"), "control character"));
        }
        // RFC 5321 §4.5.3.1.3: 256 octets for the path, brackets included.
        let longest = format!("{}@{}", "a".repeat(64), "b".repeat(254 - 65));
        assert_eq!(Address::parse(&longest).unwrap().as_path().len(), 256);
        cases.push((
            format!("{}@{}", "a".repeat(64), "b".repeat(254 - 64)),
            "longer than",
        ));
        for (input, reason) in &cases {
            let Err(SmtpError::InvalidInput(message)) = Address::parse(input) else {
                panic!("{input:?} was accepted");
            };
            assert!(message.contains(reason), "{input:?}: {message}");
            // The message escapes what it quotes, so it stays on one line.
            assert!(!message.contains(['\r', '\n', '\0']), "{message:?}");
        }
    }

    #[test]
    fn angle_brackets_cannot_end_the_path_early() {
        // Written as is, `RCPT TO:<"x> NOTIFY=NEVER"@b.c>` reads as a path and a parameter to a
        // server that ends the path at the first '>'.
        let cases = [
            ("\"x> NOTIFY=NEVER\"@b.c", "quoted local part"),
            ("<\"x> NOTIFY=NEVER\"@b.c>", "quoted local part"),
            ("Name <\"x>\"@b.c>", "quoted local part"),
            ("\"a<b\"@c", "quoted local part"),
            ("\"a\\>b\"@c", "quoted local part"),
            ("a@[1.2.3.4>]", "address literal"),
            ("<a@[1.2.3.4>]>", "address literal"),
            ("<a@[IPv6:<::1]>", "address literal"),
        ];
        for (input, place) in cases {
            let Err(SmtpError::InvalidInput(message)) = Address::parse(input) else {
                panic!("{input:?} was accepted");
            };
            assert!(message.contains(place), "{input:?}: {message}");
            assert!(message.contains("'>'"), "{input:?}: {message}");
        }
        // Angle brackets in a display name are not sent, and other quoted text is fine.
        for (input, path) in [
            ("\"Doe <jd>\" <jd@example.com>", "<jd@example.com>"),
            ("\"john doe\"@example.com", "<\"john doe\"@example.com>"),
            ("\"a@b,c\"@example.com", "<\"a@b,c\"@example.com>"),
            ("user@[192.0.2.1]", "<user@[192.0.2.1]>"),
            ("<user@[IPv6:2001:db8::1]>", "<user@[IPv6:2001:db8::1]>"),
        ] {
            assert_eq!(Address::parse(input).unwrap().as_path(), path, "{input:?}");
        }
    }

    #[test]
    fn conversions() {
        let parsed: Address = "Name <a@b>".parse().unwrap();
        assert_eq!(parsed, Address::try_from("Name <a@b>").unwrap());
        assert!("a b@c".parse::<Address>().is_err());
    }

    proptest::proptest! {
        /// Whatever the input, parsing does not panic, and an accepted address has a path that is
        /// safe on the wire and parses back to itself.
        #[test]
        fn accepted_paths_are_safe_and_round_trip(input in proptest::prop_oneof![
            "(\\PC|[ <>\"@.\\\\\r\n\t\0]){0,40}",
            "(Name |\"Q <N>\" )?<?[a-z.\"\\\\ é+\r]{1,10}@[a-zé0-9.\\[\\]:_-]{1,12}>?",
        ]) {
            if let Ok(address) = Address::parse(&input) {
                let path = address.as_path();
                proptest::prop_assert!(!path.bytes().any(|b| b < 0x20 || b == 0x7f), "{:?}", path);
                proptest::prop_assert!(path.len() <= MAX_PATH);
                let again = Address::parse(&path).unwrap();
                proptest::prop_assert_eq!(again.as_str(), address.as_str());
            }
        }
    }
}
