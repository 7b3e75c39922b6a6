//! Address fields (`From`, `To`, `Cc`, `Reply-To`, ...): address lists, mailboxes and their
//! display names (RFC 5322 §3.4), encoded with RFC 2047 §5(3) when they are not ASCII.

use super::headers::{
    Folder, LONG_WORD, check_lines, offset, split_outside_quotes, structured_tokens, write_words,
};

/// Splits an address list at commas outside quoted strings, angle brackets and comments.
///
/// A run of bare words without `@` followed by `Name <addr>` is one mailbox whose display name
/// holds the commas (`Doe, John <john@example.com>`): a word without a domain is no address
/// (RFC 5322 §3.4.1), and readers given it bare would see two mailboxes.
///
/// ```
/// use mailpump::mime::address_header::split_addresses;
///
/// assert_eq!(split_addresses("\"Doe, J.\" <j@x.org>, b@y.org,"), ["\"Doe, J.\" <j@x.org>", "b@y.org"]);
/// assert_eq!(split_addresses("Doe, John <j@x.org>, b@y.org"), ["Doe, John <j@x.org>", "b@y.org"]);
/// ```
#[must_use]
pub fn split_addresses(value: &str) -> Vec<&str> {
    let items: Vec<&str> = split_outside_quotes(value, b',')
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut out = Vec::with_capacity(items.len());
    let mut run: Option<usize> = None; // index of the first bare word run item waiting for a name
    for (n, item) in items.iter().enumerate() {
        if is_bare_phrase(item) {
            run.get_or_insert(n);
            continue;
        }
        if let Some(first) = run.take() {
            if angle_display(item).is_some_and(is_bare_phrase) {
                let start = offset(value, items[first]);
                out.push(&value[start..offset(value, item) + item.len()]);
                continue;
            }
            out.extend_from_slice(&items[first..n]);
        }
        out.push(item);
    }
    if let Some(first) = run {
        out.extend_from_slice(&items[first..]);
    }
    out
}

/// Words of a display name that may stand unquoted beside commas: atext, dots, spaces and
/// non-ASCII text, with no `@` (which would make it an address).
fn is_bare_phrase(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| matches!(c, ' ' | '\t' | '.') || !c.is_ascii() || is_atext(c as u8))
}

/// The text before `<` in `text <addr>`, trimmed.
fn angle_display(item: &str) -> Option<&str> {
    let inner = item.strip_suffix('>')?;
    Some(inner[..inner.rfind('<')?].trim())
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
        } else if display.contains(['"', '<', '>', '(', ')', ':', '\\']) {
            // Quotes, comments and a group's colon are the caller's syntax, written as given;
            // other specials (`,`, `;`, `@`, ...) are quoted by `write_addresses`.
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

    fn written(value: &str) -> String {
        let mut out = String::new();
        write_addresses(&mut out, "To", split_addresses(value)).unwrap();
        out
    }

    #[test]
    fn display_names_with_specials_are_quoted() {
        // RFC 5322 §3.4: a display name that is not a phrase of atoms is a quoted-string.
        assert_eq!(
            written("Doe, John <john@example.com>"),
            "To: \"Doe, John\" <john@example.com>\r\n"
        );
        assert_eq!(
            written("a@b.c, Doe, Jr., John <j@x.org>, x@y.z"),
            "To: a@b.c, \"Doe, Jr., John\" <j@x.org>, x@y.z\r\n"
        );
        assert_eq!(
            written("Acme; Sales <s@x.org>, ops@x.org <o@x.org>"),
            "To: \"Acme; Sales\" <s@x.org>, \"ops@x.org\" <o@x.org>\r\n"
        );
        // Already quoted: escapes kept; groups and comments: as given.
        assert_eq!(
            written("\"Doe, \\\"J\\\"\" <j@x.org>, team: a@x.org, b@x.org;"),
            "To: \"Doe, \\\"J\\\"\" <j@x.org>, team: a@x.org, b@x.org;\r\n"
        );
        // Non-ASCII names become encoded-words, commas included (RFC 2047 §5(3)).
        assert_eq!(
            written("Müller, Jörg <j@x.org>"),
            "To: =?utf-8?B?TcO8bGxlciwgSsO2cmc=?= <j@x.org>\r\n"
        );
        // Bare words with no mailbox after them stay separate items.
        assert_eq!(split_addresses("a, b, c@d"), ["a", "b", "c@d"]);
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
