//! SMTP commands (RFC 5321 §4.1) and their wire form.
//!
//! [`Command::write_to`] checks every argument before it writes a byte: no CR, LF, NUL, other C0
//! control or DEL can reach the wire inside an argument, so caller data cannot end a command early
//! and inject another (SMTP command injection; compare smtplib's bpo-43124 and aiosmtplib's
//! GHSA-v3q9-hj7j-63hq).
//!
//! ```
//! use mailpump::smtp::address::Address;
//! use mailpump::smtp::command::{Command, MailParams};
//!
//! let mut out = Vec::new();
//! let from = Address::parse("me@example.org").unwrap();
//! let params = MailParams { size: Some(1024), ..MailParams::default() };
//! Command::Mail { from, params }.write_to(&mut out).unwrap();
//! assert_eq!(out, b"MAIL FROM:<me@example.org> SIZE=1024\r\n");
//! assert!(Command::Ehlo("host\r\nQUIT".into()).write_to(&mut out).is_err());
//! assert_eq!(out.len(), 38, "nothing more was written");
//! ```

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::address::Address;
use super::auth::Mechanism;
pub use super::auth::Secret;
use super::dsn::{Dsn, RcptDsn, Ret};
use super::error::{ReplyKind, SmtpError};

/// The ESMTP parameters of MAIL FROM.
///
/// ```
/// use mailpump::Address;
/// use mailpump::smtp::command::{Command, MailParams};
///
/// let params = MailParams { size: Some(5000), body_8bitmime: true, ..MailParams::default() };
/// let mut out = Vec::new();
/// Command::Mail { from: Address::parse("a@example.com")?, params }.write_to(&mut out)?;
/// assert_eq!(out, b"MAIL FROM:<a@example.com> SIZE=5000 BODY=8BITMIME\r\n");
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870 §3): the message size, when known and the server offers SIZE.
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (RFC 6152 §3): the body has 8-bit data and the server offers 8BITMIME.
    pub body_8bitmime: bool,
    /// `BODY=BINARYMIME` (RFC 3030 §3): the body has binary parts, sent unchanged with `BDAT`.
    /// It takes the place of `BODY=8BITMIME`.
    pub body_binarymime: bool,
    /// `SMTPUTF8` (RFC 6531 §3.4): the envelope or headers have UTF-8 and the server offers it.
    pub smtputf8: bool,
    /// `RET=` (RFC 3461 §4.3), when the server offers DSN.
    pub ret: Option<Ret>,
    /// `ENVID=` (RFC 3461 §4.4), xtext-encoded on the wire, when the server offers DSN.
    pub envid: Option<String>,
}

impl MailParams {
    /// The parameters as written after the path, each with its leading space.
    fn to_wire(&self) -> String {
        let mut line = String::new();
        if let Some(size) = self.size {
            let _ = write!(line, " SIZE={size}");
        }
        if self.body_binarymime {
            line.push_str(" BODY=BINARYMIME");
        } else if self.body_8bitmime {
            line.push_str(" BODY=8BITMIME");
        }
        if self.smtputf8 {
            line.push_str(" SMTPUTF8");
        }
        Dsn {
            ret: self.ret,
            envid: self.envid.clone(),
            ..Dsn::default()
        }
        .write_mail_params(&mut line);
        line
    }
}

impl MailParams {
    /// The parameters of a MAIL sent before anything is known of the message (a transaction
    /// driven step by step): no size, `BODY=8BITMIME` declared because the body may hold 8-bit
    /// data and declaring it for a 7-bit body is harmless (RFC 6152 §3), and `SMTPUTF8` when the
    /// sender's address is not ASCII (RFC 6531 §3.4). The client keeps only what the server
    /// offers.
    ///
    /// ```
    /// use mailpump::Address;
    /// use mailpump::smtp::command::{Command, MailParams};
    ///
    /// let from = Address::parse("zoë@example.com")?;
    /// let params = MailParams::for_sender(&from);
    /// assert_eq!(params, MailParams { body_8bitmime: true, smtputf8: true, ..MailParams::default() });
    /// let mut out = Vec::new();
    /// Command::Mail { from, params }.write_to(&mut out)?;
    /// assert_eq!(out, "MAIL FROM:<zoë@example.com> BODY=8BITMIME SMTPUTF8\r\n".as_bytes());
    /// assert!(!MailParams::for_sender(&Address::parse("a@example.com")?).smtputf8);
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn for_sender(from: &Address) -> Self {
        Self {
            body_8bitmime: true,
            smtputf8: from.needs_smtputf8(),
            ..Self::default()
        }
    }
}

/// A command the client sends.
///
/// ```
/// use mailpump::smtp::command::Command;
/// use mailpump::smtp::error::ReplyKind;
///
/// let mut out = Vec::new();
/// Command::Ehlo("client.example.com".into()).write_to(&mut out)?;
/// assert_eq!(out, b"EHLO client.example.com\r\n");
/// assert_eq!(Command::Data.verb(), "DATA");
/// assert_eq!(Command::Data.reply_kind(), ReplyKind::Data);
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain` (RFC 5321 §4.1.1.1): the client's name, a domain or an address literal.
    Ehlo(String),
    /// `HELO domain`, for servers that do not know EHLO.
    Helo(String),
    /// `LHLO domain`: LMTP's greeting in place of EHLO (RFC 2033 §4.1).
    Lhlo(String),
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
    /// `RCPT TO:<path> [params]`.
    Rcpt {
        /// The forward-path; never the null path.
        to: Address,
        /// `NOTIFY=` and `ORCPT=` (RFC 3461 §4.1, §4.2), when the server offers DSN.
        dsn: RcptDsn,
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
    ///
    /// ```
    /// use mailpump::smtp::command::Command;
    ///
    /// assert_eq!(Command::Helo("h".into()).verb(), "HELO");
    /// ```
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Ehlo(_) => "EHLO",
            Self::Helo(_) => "HELO",
            Self::Lhlo(_) => "LHLO",
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
    ///
    /// ```
    /// use mailpump::smtp::command::Command;
    /// use mailpump::smtp::error::ReplyKind;
    ///
    /// assert_eq!(Command::Ehlo("h".into()).reply_kind(), ReplyKind::Ehlo);
    /// ```
    #[must_use]
    pub fn reply_kind(&self) -> ReplyKind {
        match self {
            Self::Ehlo(_) | Self::Helo(_) | Self::Lhlo(_) => ReplyKind::Ehlo,
            Self::Mail { .. } => ReplyKind::Sender,
            Self::Rcpt { .. } => ReplyKind::Recipient,
            Self::Data => ReplyKind::Data,
            _ => ReplyKind::Other,
        }
    }

    /// Checks every argument, then appends the command line with its CRLF to `out`. On error
    /// nothing is appended.
    ///
    /// ```
    /// use mailpump::Address;
    /// use mailpump::smtp::command::Command;
    ///
    /// let mut out = Vec::new();
    /// Command::Rcpt { to: Address::parse("b@example.org")?, dsn: Default::default() }.write_to(&mut out)?;
    /// assert_eq!(out, b"RCPT TO:<b@example.org>\r\n");
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), SmtpError> {
        self.validate()?;
        let start = out.len();
        match self {
            Self::Ehlo(domain) => push(out, &["EHLO ", domain]),
            Self::Helo(domain) => push(out, &["HELO ", domain]),
            Self::Lhlo(domain) => push(out, &["LHLO ", domain]),
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
                push(out, &["MAIL FROM:<", from.as_str(), ">", &params.to_wire()]);
            }
            Self::Rcpt { to, dsn } => {
                let mut params = String::new();
                dsn.write_params(&mut params);
                push(out, &["RCPT TO:<", to.as_str(), ">", &params]);
            }
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
    ///
    /// ```
    /// use mailpump::smtp::command::{Command, Secret};
    ///
    /// let continuation = Command::AuthContinuation(Secret::new("cGFzc3dvcmQ="));
    /// assert_eq!(continuation.redacted(), "<redacted>");
    /// assert_eq!(Command::Quit.redacted(), "QUIT");
    /// ```
    #[must_use]
    pub fn redacted(&self) -> String {
        match self {
            Self::Ehlo(domain) => format!("EHLO {}", escape(domain)),
            Self::Helo(domain) => format!("HELO {}", escape(domain)),
            Self::Lhlo(domain) => format!("LHLO {}", escape(domain)),
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
                format!("MAIL FROM:{}{}", from.as_path(), params.to_wire())
            }
            Self::Rcpt { to, dsn } => {
                let mut line = format!("RCPT TO:{}", to.as_path());
                dsn.write_params(&mut line);
                line
            }
            Self::StartTls | Self::Data | Self::Rset | Self::Noop | Self::Quit => {
                self.verb().to_owned()
            }
        }
    }

    fn validate(&self) -> Result<(), SmtpError> {
        match self {
            Self::Ehlo(domain) | Self::Helo(domain) | Self::Lhlo(domain) => {
                check_client_domain(self.verb(), domain)
            }
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
            Self::Rcpt { to, .. } if to.is_null() => Err(SmtpError::invalid_input(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::dsn::Notify;

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    fn wire(command: &Command) -> String {
        let mut out = Vec::new();
        command
            .write_to(&mut out)
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        String::from_utf8(out).unwrap()
    }

    /// Each command is written as expected, and its transcript line is the wire line except for
    /// AUTH payloads.
    fn check_wire(cases: &[(Command, &str)]) {
        for (command, expected) in cases {
            assert_eq!(wire(command), *expected);
            let secret = matches!(
                command,
                Command::Auth {
                    initial_response: Some(_),
                    ..
                } | Command::AuthContinuation(_)
            );
            if !secret {
                assert_eq!(format!("{}\r\n", command.redacted()), *expected);
            }
        }
    }

    #[test]
    fn wire_forms() {
        check_wire(&[
            (
                Command::Ehlo("client.example.org".into()),
                "EHLO client.example.org\r\n",
            ),
            (Command::Ehlo("localhost".into()), "EHLO localhost\r\n"),
            (Command::Ehlo("[192.0.2.1]".into()), "EHLO [192.0.2.1]\r\n"),
            (Command::Ehlo("[IPv6:::1]".into()), "EHLO [IPv6:::1]\r\n"),
            (Command::Helo("x-1.example".into()), "HELO x-1.example\r\n"),
            (Command::Lhlo("x-1.example".into()), "LHLO x-1.example\r\n"),
            (Command::StartTls, "STARTTLS\r\n"),
            (
                Command::Auth {
                    mechanism: Mechanism::Login,
                    initial_response: None,
                },
                "AUTH LOGIN\r\n",
            ),
            (
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial_response: Some("AHVAcA==".into()),
                },
                "AUTH PLAIN AHVAcA==\r\n",
            ),
            // RFC 4954 §4: an empty initial response is "=".
            (
                Command::Auth {
                    mechanism: Mechanism::XOAuth2,
                    initial_response: Some("".into()),
                },
                "AUTH XOAUTH2 =\r\n",
            ),
            (Command::AuthContinuation("dGlt".into()), "dGlt\r\n"),
            (Command::AuthContinuation(Secret::default()), "\r\n"),
            (
                Command::Rcpt {
                    to: addr("\"x y\"@example.org"),
                    dsn: RcptDsn::default(),
                },
                "RCPT TO:<\"x y\"@example.org>\r\n",
            ),
            (Command::Data, "DATA\r\n"),
            (Command::Rset, "RSET\r\n"),
            (Command::Noop, "NOOP\r\n"),
            (Command::Quit, "QUIT\r\n"),
        ]);
        // Appends after what is already there.
        let mut out = b"NOOP\r\n".to_vec();
        Command::Quit.write_to(&mut out).unwrap();
        assert_eq!(out, b"NOOP\r\nQUIT\r\n");
    }

    #[test]
    fn mail_parameters() {
        let mail = |from: &str, params| Command::Mail {
            from: addr(from),
            params,
        };
        let none = MailParams::default();
        let size0 = MailParams {
            size: Some(0),
            ..MailParams::default()
        };
        let utf8 = MailParams {
            smtputf8: true,
            ..MailParams::default()
        };
        let all = MailParams {
            size: Some(12345),
            body_8bitmime: true,
            smtputf8: true,
            ..MailParams::default()
        };
        let binary = MailParams {
            size: Some(7),
            body_8bitmime: true,
            body_binarymime: true,
            ..MailParams::default()
        };
        let dsn = MailParams {
            ret: Some(Ret::Hdrs),
            // xtext (RFC 3461 §4): no space, "+" or "=" of the caller's can add a parameter.
            envid: Some("id 1+1=2 SIZE=1".into()),
            ..MailParams::default()
        };
        check_wire(&[
            (
                mail("Me <me@example.org>", none.clone()),
                "MAIL FROM:<me@example.org>\r\n",
            ),
            (mail("<>", none), "MAIL FROM:<>\r\n"),
            (
                mail("a@b", dsn),
                "MAIL FROM:<a@b> RET=HDRS ENVID=id+201+2B1+3D2+20SIZE+3D1\r\n",
            ),
            (
                Command::Rcpt {
                    to: addr("b@c"),
                    dsn: RcptDsn {
                        notify: Some(Notify::on(true, true, false)),
                        orcpt: Some(addr("x=y@c")),
                    },
                },
                "RCPT TO:<b@c> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+3Dy@c\r\n",
            ),
            (
                mail("me@example.org", size0),
                "MAIL FROM:<me@example.org> SIZE=0\r\n",
            ),
            (mail("a@b", utf8), "MAIL FROM:<a@b> SMTPUTF8\r\n"),
            (
                mail("josé@exemplo.br", all),
                "MAIL FROM:<josé@exemplo.br> SIZE=12345 BODY=8BITMIME SMTPUTF8\r\n",
            ),
            (
                // RFC 3030 §3: BINARYMIME takes the place of 8BITMIME.
                mail("a@b", binary),
                "MAIL FROM:<a@b> SIZE=7 BODY=BINARYMIME\r\n",
            ),
        ]);
    }

    /// Every hostile string, applied to every argument that can carry one, is refused and leaves
    /// `out` as it was.
    #[test]
    fn injection_is_refused_before_any_byte() {
        let mut hostile: Vec<String> = [
            "\r",
            "\n",
            "\r\n",
            "\r\nRCPT TO:<evil@example.net>",
            "\r\n.\r\n",
            "\0",
        ]
        .iter()
        .map(|s| format!("ok{s}tail"))
        .collect();
        for c in (0u8..0x20).chain([0x7f]) {
            hostile.push(format!("ab{}cd", char::from(c)));
            hostile.push(format!("{}", char::from(c)));
        }
        let mut tried = 0;
        for h in &hostile {
            let commands = [
                Command::Ehlo(h.clone()),
                Command::Ehlo(format!("client.example{h}")),
                Command::Helo(h.clone()),
                Command::Auth {
                    mechanism: Mechanism::Plain,
                    initial_response: Some(h.as_str().into()),
                },
                Command::Auth {
                    mechanism: Mechanism::XOAuth2,
                    initial_response: Some(h.as_str().into()),
                },
                Command::AuthContinuation(h.as_str().into()),
            ];
            for command in &commands {
                let mut out = b"prior".to_vec();
                let result = command.write_to(&mut out);
                assert!(
                    matches!(result, Err(SmtpError::InvalidInput(_))),
                    "{command:?} was written"
                );
                assert_eq!(out, b"prior", "{command:?} wrote bytes");
                tried += 1;
            }
            // Addresses with it cannot even be made, so no MAIL or RCPT can carry it.
            for form in [
                format!("a{h}@b"),
                format!("a@b{h}"),
                format!("<a@b>{h}"),
                format!("N{h} <a@b>"),
            ] {
                assert!(Address::parse(&form).is_err(), "{form:?}");
            }
        }
        assert_eq!(tried, hostile.len() * 6);
    }

    #[test]
    fn client_names() {
        let good = [
            "localhost",
            "mail.example.com",
            "a",
            "x1-2.example",
            "123.example",
            "[127.0.0.1]",
            "[IPv6:2001:db8::1]",
            "[ipv6:::1]",
            "[x-tag:content]",
        ];
        let longest = ["a"; 128].join(".");
        let longest_label = "a".repeat(63);
        for name in good
            .iter()
            .copied()
            .chain([longest.as_str(), &longest_label])
        {
            assert!(
                Command::Ehlo(name.into()).write_to(&mut Vec::new()).is_ok(),
                "{name:?}"
            );
        }
        let long_label = "a".repeat(64);
        let long_name = ["a"; 129].join(".");
        let bad = [
            "",
            " ",
            "a b",
            "a..b",
            ".a",
            "a.",
            "-a",
            "a-",
            "a_b",
            "exämple.com",
            "[]",
            "[127.0.0.1",
            "[300.0.0.1]",
            "[IPv6:nonsense]",
            "[::1]",
            "[tag:]",
            "[tag:a b]",
            "a@b",
            &long_label,
            &long_name,
        ];
        for name in bad {
            let mut out = Vec::new();
            let error = Command::Helo(name.into()).write_to(&mut out).unwrap_err();
            assert!(
                error.to_string().contains("not a valid domain name"),
                "{name:?}: {error}"
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn mail_and_rcpt_rules() {
        // RFC 6531 §3.4: a UTF-8 sender needs SMTPUTF8.
        let mail = Command::Mail {
            from: addr("josé@exemplo.br"),
            params: MailParams::default(),
        };
        let mut out = Vec::new();
        assert!(
            mail.write_to(&mut out)
                .unwrap_err()
                .to_string()
                .contains("SMTPUTF8")
        );
        assert!(out.is_empty());
        // RFC 5321 §4.1.1.3: the null path is not a forward-path.
        let rcpt = Command::Rcpt {
            to: Address::null(),
            dsn: RcptDsn::default(),
        };
        assert!(
            rcpt.write_to(&mut out)
                .unwrap_err()
                .to_string()
                .contains("only valid as a sender")
        );
        assert!(out.is_empty());
    }

    #[test]
    fn secrets_never_show() {
        let secret = "dGltAHRpbQB0YW5zdGFhZnRhbnN0YWFm";
        let commands = [
            Command::Auth {
                mechanism: Mechanism::Plain,
                initial_response: Some(secret.into()),
            },
            Command::AuthContinuation(secret.into()),
            // Even a refused one: the error names the problem, not the value.
            Command::AuthContinuation(format!("{secret}\r\n").into()),
        ];
        for command in &commands {
            assert!(!command.redacted().contains(secret));
            assert!(command.redacted().contains("<redacted>"));
            assert!(!format!("{command:?}").contains(secret));
            if let Err(e) = command.write_to(&mut Vec::new()) {
                assert!(!e.to_string().contains(secret) && !format!("{e:?}").contains(secret));
            }
        }
        assert_eq!(commands[0].redacted(), "AUTH PLAIN <redacted>");
        assert_eq!(commands[1].redacted(), "<redacted>");
        // The transcript stays one line even for a refused argument.
        assert_eq!(Command::Ehlo("a\r\nb".into()).redacted(), "EHLO a\\r\\nb");
    }

    #[test]
    fn verbs_and_kinds() {
        let mail = Command::Mail {
            from: Address::null(),
            params: MailParams::default(),
        };
        let rcpt = Command::Rcpt {
            to: addr("a@b"),
            dsn: RcptDsn::default(),
        };
        let cases = [
            (Command::Ehlo("x".into()), "EHLO", ReplyKind::Ehlo),
            (Command::Helo("x".into()), "HELO", ReplyKind::Ehlo),
            (Command::Lhlo("x".into()), "LHLO", ReplyKind::Ehlo),
            (mail, "MAIL", ReplyKind::Sender),
            (rcpt, "RCPT", ReplyKind::Recipient),
            (Command::Data, "DATA", ReplyKind::Data),
            (Command::StartTls, "STARTTLS", ReplyKind::Other),
            (
                Command::AuthContinuation(Secret::default()),
                "AUTH",
                ReplyKind::Other,
            ),
            (Command::Quit, "QUIT", ReplyKind::Other),
        ];
        for (command, verb, kind) in cases {
            assert_eq!((command.verb(), command.reply_kind()), (verb, kind));
        }
    }

    proptest::proptest! {
        /// Any argument either gives exactly one line, ended by the only CRLF, or an error with
        /// nothing written.
        #[test]
        fn one_line_or_nothing(arg in "(\\PC|[ \r\n\t\0\x01\x7f.:\\[\\]-]){0,24}") {
            let commands = [
                Command::Ehlo(arg.clone()),
                Command::Helo(arg.clone()),
                Command::Auth { mechanism: Mechanism::Plain, initial_response: Some(arg.as_str().into()) },
                Command::AuthContinuation(arg.as_str().into()),
            ];
            for command in &commands {
                let mut out = b"x".to_vec();
                if command.write_to(&mut out).is_ok() {
                    let line = &out[1..];
                    proptest::prop_assert!(line.ends_with(b"\r\n"));
                    let body = &line[..line.len() - 2];
                    proptest::prop_assert!(!body.iter().any(|&b| is_forbidden(b)), "{:?}", out);
                } else {
                    proptest::prop_assert_eq!(&out, b"x");
                }
                proptest::prop_assert!(!command.redacted().contains(['\r', '\n']));
            }
        }
    }
}
