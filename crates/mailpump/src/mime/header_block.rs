//! A header section given field by field (an `email.message.EmailMessage`'s, say) checked with
//! the rules `message()` applies to the fields it writes, before any byte is sent.

use super::headers::{check_name, check_text};
use crate::MessageError;

/// Checks the fields of one part's header section, each as `(name, value)` with the value as
/// stored (folded or not): a valid name, and a value whose only line breaks are folds.
///
/// - RFC 5322 §2.2: a name is printable ASCII other than `:`; a space (`Bcc :`, an obsolete
///   spelling readers still take for `Bcc`) is refused with the rest.
/// - RFC 5322 §2.2.3: a line break inside a value is CR LF or LF followed by SP or HTAB (a
///   fold); any other CR or LF would start a new field (header injection) and is refused, as are
///   the characters [`check_text`] refuses.
///
/// ```
/// use mailpump::mime::header_block::check_fields;
///
/// assert!(check_fields("message", [("Subject", "folded\r\n value")]).is_ok());
/// assert!(check_fields("message", [("Subject", "hi\r\nBcc: victim@example.com")]).is_err());
/// assert!(check_fields("message", [("Bcc ", "victim@example.com")]).is_err());
/// ```
///
/// # Errors
///
/// The first field that breaks a rule, as a [`MessageError`] naming `part` and the field.
pub fn check_fields<'a>(
    part: &str,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), MessageError> {
    for (name, value) in fields {
        let fail = |reason: String| MessageError::in_header(part, name, reason);
        check_name(name).map_err(fail)?;
        check_text(&unfold(value).map_err(fail)?).map_err(fail)?;
    }
    Ok(())
}

/// `value` without its folds (CR LF or LF before SP or HTAB); an error for any other CR or LF.
fn unfold(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let eol = match bytes[i..] {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] => 1,
            [b'\r', ..] => {
                return Err(format!(
                    "the value holds a carriage return (CR) at byte {i} that is not part of a line end"
                ));
            }
            _ => 0,
        };
        if eol == 0 {
            let c = value[i..].chars().next().expect("i is a char boundary");
            out.push(c);
            i += c.len_utf8();
        } else if matches!(bytes.get(i + eol), Some(b' ' | b'\t')) {
            i += eol;
        } else {
            return Err(format!(
                "the value holds a line break at byte {i} that is not followed by a space or tab, \
                 so it would start a new header field (header injection)"
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, value: &str) -> Result<(), String> {
        check_fields("message", [("From", "a@example.com"), (name, value)]).map_err(|e| {
            assert_eq!(e.header.as_deref(), Some(name));
            e.reason
        })
    }

    #[test]
    fn folds_pass_and_other_line_breaks_do_not() {
        for ok in [
            "plain",
            "folded\r\n value",
            "folded\n\tvalue",
            "Grüße",
            "a\r\n b\n c",
        ] {
            assert_eq!(check("Subject", ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "hello\r\nBcc: victim@x",
            "hello\nBcc: victim@x",
            "hello\rBcc: victim@x",
            "hello\r\n",
            "hello\n\n body",
            "a\r\n\r\n b",
            "nul\0",
            "line\u{2028}separator",
        ] {
            assert!(check("Subject", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_follow_rfc_5322() {
        for bad in ["Bcc ", " Bcc", "X\r\nBcc", "", "Subj:ect", "Zoë"] {
            assert!(check(bad, "v").is_err(), "{bad:?}");
        }
        assert_eq!(check("X-Mailer", "v"), Ok(()));
    }
}
