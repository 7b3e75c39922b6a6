//! SMTP commands (RFC 5321 §4.1) and their wire form.
//!
//! [`Command::write_to`] checks every argument before it writes a byte: no CR, LF, NUL, other C0
//! control or DEL can reach the wire inside an argument, so caller data cannot end a command early
//! and inject another (SMTP command injection; compare smtplib's bpo-43124 and aiosmtplib's
//! GHSA-v3q9-hj7j-63hq).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::address::Address;
use super::auth::Mechanism;
pub use super::auth::Secret;
use super::error::{ReplyKind, SmtpError};

/// The ESMTP parameters of MAIL FROM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870 §3): the message size, when known and the server offers SIZE.
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (RFC 6152 §3): the body has 8-bit data and the server offers 8BITMIME.
    pub body_8bitmime: bool,
    /// `SMTPUTF8` (RFC 6531 §3.4): the envelope or headers have UTF-8 and the server offers it.
    pub smtputf8: bool,
}

/// A command the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain` (RFC 5321 §4.1.1.1): the client's name, a domain or an address literal.
    Ehlo(String),
    /// `HELO domain`, for servers that do not know EHLO.
    Helo(String),
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    Auth {
        /// The mechanism.
        mechanism: Mechanism,
        /// The base64 initial response; an empty one is written `=`.
        initial_response: Option<Secret>,
    },
    /// A base64 answer to a `334` challenge during AUTH.
    AuthContinuation(Secret),
    /// `MAIL FROM:<path> [params]`.
    Mail {
        /// The reverse-path; may be the null path.
        from: Address,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path>`.
    Rcpt {
        /// The forward-path; never the null path.
        to: Address,
    },
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
}

impl Command {
    /// The command's verb as written on the wire (`AUTH` for a continuation, which has none).
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Ehlo(_) => "EHLO",
            Self::Helo(_) => "HELO",
            Self::StartTls => "STARTTLS",
            Self::Auth { .. } | Self::AuthContinuation(_) => "AUTH",
            Self::Mail { .. } => "MAIL",
            Self::Rcpt { .. } => "RCPT",
            Self::Data => "DATA",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
        }
    }

    /// The [`ReplyKind`] of an error reply to this command.
    #[must_use]
    pub fn reply_kind(&self) -> ReplyKind {
        match self {
            Self::Ehlo(_) | Self::Helo(_) => ReplyKind::Ehlo,
            Self::Mail { .. } => ReplyKind::Sender,
            Self::Rcpt { .. } => ReplyKind::Recipient,
            Self::Data => ReplyKind::Data,
            _ => ReplyKind::Other,
        }
    }

    /// Checks every argument, then appends the command line with its CRLF to `out`. On error
    /// nothing is appended.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), SmtpError> {
        self.validate()?;
        let start = out.len();
        match self {
            Self::Ehlo(domain) => push(out, &["EHLO ", domain]),
            Self::Helo(domain) => push(out, &["HELO ", domain]),
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                push(out, &["AUTH ", mechanism.as_str()]);
                if let Some(response) = initial_response {
                    // RFC 4954 §4: a zero-length initial response is sent as a single "=".
                    let response = if response.is_empty() {
                        "="
                    } else {
                        response.expose()
                    };
                    push(out, &[" ", response]);
                }
            }
            Self::AuthContinuation(response) => push(out, &[response.expose()]),
            Self::Mail { from, params } => {
                push(out, &["MAIL FROM:<", from.as_str(), ">"]);
                if let Some(size) = params.size {
                    push(out, &[" SIZE=", &size.to_string()]);
                }
                if params.body_8bitmime {
                    push(out, &[" BODY=8BITMIME"]);
                }
                if params.smtputf8 {
                    push(out, &[" SMTPUTF8"]);
                }
            }
            Self::Rcpt { to } => push(out, &["RCPT TO:<", to.as_str(), ">"]),
            Self::StartTls | Self::Data | Self::Rset | Self::Noop | Self::Quit => {
                push(out, &[self.verb()]);
            }
        }
        // Defence in depth: whatever the checks above missed, a line with a control character in
        // it never leaves this function.
        if out[start..].iter().any(|&b| is_forbidden(b)) {
            out.truncate(start);
            return Err(SmtpError::invalid_input(format!(
                "the {} command contains a control character",
                self.verb()
            )));
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// The command line as a transcript shows it, without CRLF: AUTH payloads are `<redacted>`,
    /// and any control character in an argument is escaped so the line stays one line.
    #[must_use]
    pub fn redacted(&self) -> String {
        match self {
            Self::Ehlo(domain) => format!("EHLO {}", escape(domain)),
            Self::Helo(domain) => format!("HELO {}", escape(domain)),
            Self::Auth {
                mechanism,
                initial_response: Some(_),
            } => format!("AUTH {mechanism} <redacted>"),
            Self::Auth {
                mechanism,
                initial_response: None,
            } => format!("AUTH {mechanism}"),
            Self::AuthContinuation(_) => "<redacted>".to_owned(),
            Self::Mail { from, params } => {
                let mut line = format!("MAIL FROM:{}", from.as_path());
                if let Some(size) = params.size {
                    let _ = write!(line, " SIZE={size}");
                }
                if params.body_8bitmime {
                    line.push_str(" BODY=8BITMIME");
                }
                if params.smtputf8 {
                    line.push_str(" SMTPUTF8");
                }
                line
            }
            Self::Rcpt { to } => format!("RCPT TO:{}", to.as_path()),
            Self::StartTls | Self::Data | Self::Rset | Self::Noop | Self::Quit => {
                self.verb().to_owned()
            }
        }
    }

    fn validate(&self) -> Result<(), SmtpError> {
        match self {
            Self::Ehlo(domain) | Self::Helo(domain) => check_client_domain(self.verb(), domain),
            Self::Auth {
                initial_response: Some(secret),
                ..
            }
            | Self::AuthContinuation(secret) => {
                // The message names the problem, never the value.
                if secret
                    .expose()
                    .bytes()
                    .any(|b| is_forbidden(b) || b == b' ')
                {
                    Err(SmtpError::invalid_input(
                        "an AUTH response contains a space or a control character",
                    ))
                } else {
                    Ok(())
                }
            }
            Self::Mail { from, params } => {
                // RFC 6531 §3.4: a UTF-8 address needs the SMTPUTF8 parameter.
                if from.needs_smtputf8() && !params.smtputf8 {
                    return Err(SmtpError::invalid_input(format!(
                        "the sender {from} has non-ASCII characters, which need SMTPUTF8"
                    )));
                }
                Ok(())
            }
            Self::Rcpt { to } if to.is_null() => Err(SmtpError::invalid_input(
                "the null path <> is only valid as a sender (MAIL FROM), not as a recipient",
            )),
            _ => Ok(()),
        }
    }
}

fn push(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

/// CR, LF, NUL and the other C0 controls (TAB included), and DEL.
fn is_forbidden(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// The EHLO/HELO argument: a domain name (RFC 5321 §4.1.2 `Domain`, ASCII letters, digits and
/// hyphens in labels of at most 63 octets, at most 255 in all) or an address literal (§4.1.3:
/// `[192.0.2.1]`, `[IPv6:2001:db8::1]`, or `[tag:content]`). The name is sent before any extension
/// is negotiated, so it must be ASCII.
fn check_client_domain(verb: &str, domain: &str) -> Result<(), SmtpError> {
    let valid = if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        is_address_literal(literal)
    } else {
        is_domain_name(domain)
    };
    if valid {
        Ok(())
    } else {
        Err(SmtpError::invalid_input(format!(
            "the {verb} name {domain:?} is not a valid domain name or address literal \
             (use the host's fully qualified name, or an address like [192.0.2.1])"
        )))
    }
}

fn is_address_literal(literal: &str) -> bool {
    if literal.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let Some((tag, content)) = literal.split_once(':') else {
        return false;
    };
    if tag.eq_ignore_ascii_case("IPv6") {
        return content.parse::<Ipv6Addr>().is_ok();
    }
    // General-address-literal: Standardized-tag ":" 1*dcontent (printable ASCII except [ \ ]).
    is_domain_label(tag)
        && !content.is_empty()
        && content
            .bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'[' | b'\\' | b']'))
}

fn is_domain_name(domain: &str) -> bool {
    !domain.is_empty() && domain.len() <= 255 && domain.split('.').all(is_domain_label)
}

/// `Let-dig [Ldh-str]`, at most 63 octets (RFC 1035 §2.3.4).
fn is_domain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}
