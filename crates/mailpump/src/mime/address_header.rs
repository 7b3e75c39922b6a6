//! Address fields (`From`, `To`, `Cc`, `Reply-To`, ...): address lists, mailboxes and their
//! display names (RFC 5322 §3.4), encoded with RFC 2047 §5(3) when they are not ASCII.

use super::headers::{
    Folder, LONG_WORD, check_lines, split_outside_quotes, structured_tokens, write_words,
};

/// Splits an address list at commas outside quoted strings, angle brackets and comments.
///
/// ```
/// use mailpump::mime::address_header::split_addresses;
///
/// assert_eq!(split_addresses("\"Doe, J.\" <j@x.org>, b@y.org,"), ["\"Doe, J.\" <j@x.org>", "b@y.org"]);
/// ```
#[must_use]
pub fn split_addresses(value: &str) -> Vec<&str> {
    split_outside_quotes(value, b',')
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A mailbox split into its display name (unquoted, if any) and its address.
///
/// ```
/// use mailpump::mime::address_header::{Mailbox, parse_mailbox};
///
/// assert_eq!(
///     parse_mailbox("\"Doe, J.\" <j@x.org>"),
///     Some(Mailbox { name: "Doe, J.".into(), addr: "j@x.org" })
/// );
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Mailbox<'a> {
    /// The display name, without quotes or escapes; empty when there is none.
    pub name: String,
    /// The `addr-spec`, between the angle brackets if there were any.
    pub addr: &'a str,
}

/// Parses `Name <addr>`, `"Quoted, Name" <addr>`, `<addr>` or a bare `addr`; `None` for anything
/// else (groups, comments), which is then written as it is.
///
/// ```
/// use mailpump::mime::address_header::parse_mailbox;
///
/// assert_eq!(parse_mailbox("Zoë <zoe@example.com>").map(|m| m.addr), Some("zoe@example.com"));
/// assert_eq!(parse_mailbox("team: a@x.org, b@x.org;"), None); // a group is written as it is
/// ```
#[must_use]
pub fn parse_mailbox(item: &str) -> Option<Mailbox<'_>> {
    let item = item.trim();
    let addr_ok = |a: &str| {
        !a.is_empty() && !a.contains(|c: char| c.is_whitespace() || "<>,;\"()".contains(c))
    };
    if let Some(inner) = item.strip_suffix('>') {
        let lt = inner.rfind('<')?;
        let addr = inner[lt + 1..].trim();
        let display = inner[..lt].trim();
        if !addr_ok(addr) {
            return None;
        }
        let name = if let Some(q) = display.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
            let mut out = String::new();
            let mut chars = q.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next()? } else { c });
            }
            out
        } else if display.contains(['"', '<', '>', '(', ')', ',', ';', ':', '\\']) {
            return None;
        } else {
            display.to_owned()
        };
        return Some(Mailbox { name, addr });
    }
    addr_ok(item).then(|| Mailbox {
        name: String::new(),
        addr: item,
    })
}

/// The domain of the first mailbox in an address header value, if it is a plain ASCII domain.
///
/// ```
/// use mailpump::mime::address_header::first_domain;
///
/// assert_eq!(first_domain("Me <me@Example.COM>, you@example.org"), Some("example.com".into()));
/// ```
#[must_use]
pub fn first_domain(value: &str) -> Option<String> {
    let first = split_addresses(value).into_iter().next()?;
    let mailbox = parse_mailbox(first)?;
    let domain = mailbox.addr.rsplit_once('@')?.1;
    let ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    ok.then(|| domain.to_ascii_lowercase())
}

/// Writes an address field: each mailbox's display name is kept readable when it is plain ASCII,
/// quoted when it holds specials, and encoded (RFC 2047 §5(3)) when it is not ASCII; items are
/// joined with `, `.
///
/// ```
/// use mailpump::mime::address_header::write_addresses;
///
/// let mut out = String::new();
/// write_addresses(&mut out, "To", ["Zoë <zoe@example.com>", "J. Doe <j@x.org>"])?;
/// assert_eq!(out, "To: =?utf-8?Q?Zo=C3=AB?= <zoe@example.com>, \"J. Doe\" <j@x.org>\r\n");
/// # Ok::<(), String>(())
/// ```
pub fn write_addresses<'v>(
    out: &mut String,
    name: &str,
    items: impl IntoIterator<Item = &'v str>,
) -> Result<(), String> {
    let items: Vec<&str> = items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let start = out.len();
    let mut folder = Folder::new(out, name);
    let count = items.len();
    for (n, item) in items.into_iter().enumerate() {
        let comma = if n + 1 < count { "," } else { "" };
        let Some(mailbox) = parse_mailbox(item) else {
            // Groups and other forms: written as given, which must be ASCII.
            if !item.is_ascii() {
                return Err(format!(
                    "cannot read {item:?} as an address (`Name <user@example.com>` or `user@example.com`), \
                     so its non-ASCII text cannot be encoded"
                ));
            }
            let tokens = structured_tokens(item);
            let len = tokens.len();
            for (k, (ws, token)) in tokens.into_iter().enumerate() {
                let ws = if k == 0 || ws.is_empty() { " " } else { ws };
                if k + 1 == len {
                    folder.push(ws, &format!("{token}{comma}"));
                } else {
                    folder.push(ws, token);
                }
            }
            continue;
        };
        let name = mailbox.name.as_str();
        if name.is_empty() {
            folder.push(" ", &format!("{}{comma}", mailbox.addr));
            continue;
        }
        // Readers decode encoded-words even inside quoted strings, so a name that could hold
        // one is encoded; other ASCII names are atoms or a quoted string, which keeps every space.
        let may_decode = name
            .find("=?")
            .is_some_and(|i| name[i + 2..].contains("?="));
        if !name.is_ascii() || may_decode || name.len() > LONG_WORD {
            // RFC 2047 §5(3): encoded-words replace whole words of the phrase; atoms stay
            // readable, which also keeps the encoded runs (and Python's misreading of split
            // runs, see `push_encoded`) short.
            write_words(&mut folder, name, true, |word| {
                word.bytes().all(is_atext) && !word.contains("=?")
            });
        } else if name
            .split(' ')
            .all(|w| !w.is_empty() && w.bytes().all(is_atext))
        {
            for word in name.split(' ') {
                folder.push(" ", word);
            }
        } else {
            let mut quoted = String::with_capacity(name.len() + 2);
            quoted.push('"');
            for c in name.chars() {
                if c == '"' || c == '\\' {
                    quoted.push('\\');
                }
                quoted.push(c);
            }
            quoted.push('"');
            folder.push(" ", &quoted);
        }
        folder.push(" ", &format!("<{}>{comma}", mailbox.addr));
    }
    folder.finish();
    check_lines(&out[start..])
}

/// RFC 5322 §3.2.3 atext.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_encode_only_display_names() {
        let mut out = String::new();
        let items = split_addresses(
            "\"Jörg Müller\" <j@example.com>, plain@example.com, \"Smith, J.\" <s@x.org>",
        );
        write_addresses(&mut out, "To", items).unwrap();
        assert_eq!(
            out,
            "To: =?utf-8?B?SsO2cmcgTcO8bGxlcg==?= <j@example.com>, plain@example.com,\r\n \"Smith, J.\" <s@x.org>\r\n"
        );
    }

    #[test]
    fn mailbox_parsing() {
        assert_eq!(
            parse_mailbox("A B <a@b>"),
            Some(Mailbox {
                name: "A B".into(),
                addr: "a@b"
            })
        );
        assert_eq!(
            parse_mailbox("\"A \\\"q\\\"\" <a@b>"),
            Some(Mailbox {
                name: "A \"q\"".into(),
                addr: "a@b"
            })
        );
        assert_eq!(
            parse_mailbox("a@b"),
            Some(Mailbox {
                name: String::new(),
                addr: "a@b"
            })
        );
        assert_eq!(parse_mailbox("undisclosed-recipients:;"), None);
        assert_eq!(
            first_domain("Name <me@Example.COM>, x@y"),
            Some("example.com".into())
        );
    }
}
