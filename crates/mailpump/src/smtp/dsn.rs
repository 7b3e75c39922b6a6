//! Delivery status notifications (RFC 3461): what a sender asks the servers on the way to report.
//!
//! `RET` and `ENVID` go on MAIL, `NOTIFY` and `ORCPT` on each RCPT. Values that come from the caller
//! are xtext-encoded (§4), so no byte of them can end the command or add a parameter. Everything is
//! checked before a byte is written ([`Dsn::validate`]).
//!
//! ```
//! use mailpump::smtp::dsn::{Dsn, Notify, Ret};
//! use mailpump::{Address, Envelope};
//!
//! let mut envelope = Envelope::new(Address::parse("me@example.com")?, vec![Address::parse("you@example.org")?]);
//! envelope.dsn = Some(Dsn {
//!     ret: Some(Ret::Hdrs),
//!     envid: Some("order 42".into()),
//!     notify: Some(Notify::on(false, true, true)),
//!     ..Dsn::default()
//! });
//! envelope.validate()?;
//! # Ok::<(), mailpump::SmtpError>(())
//! ```

use std::fmt::Write as _;

use super::address::Address;
use super::error::SmtpError;

/// `RET` (RFC 3461 §4.3): how much of the message a failure report returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// The whole message.
    Full,
    /// Its header only.
    Hdrs,
}

impl Ret {
    /// The keyword as written on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Hdrs => "HDRS",
        }
    }
}

/// `NOTIFY` (RFC 3461 §4.1): when to report on a recipient. `NEVER` stands alone; otherwise any of
/// SUCCESS, FAILURE and DELAY, at least one.
///
/// ```
/// use mailpump::smtp::dsn::Notify;
///
/// assert_eq!(Notify::Never.to_string(), "NEVER");
/// assert_eq!(Notify::on(true, false, true).to_string(), "SUCCESS,DELAY");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// No report at all.
    Never,
    /// A report on each event asked for. All three `false` is refused by [`Dsn::validate`].
    On {
        /// On delivery.
        success: bool,
        /// On failure.
        failure: bool,
        /// On delay.
        delay: bool,
    },
}

impl Notify {
    /// A report on each of the events that is `true`.
    #[must_use]
    pub fn on(success: bool, failure: bool, delay: bool) -> Self {
        Self::On {
            success,
            failure,
            delay,
        }
    }

    fn validate(self) -> Result<(), SmtpError> {
        if let Self::On {
            success: false,
            failure: false,
            delay: false,
        } = self
        {
            return Err(SmtpError::invalid_input(
                "DSN notify needs NEVER or at least one of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1)",
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Never => f.write_str("NEVER"),
            Self::On {
                success,
                failure,
                delay,
            } => {
                let words = [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")];
                let on: Vec<&str> = words.iter().filter(|(b, _)| *b).map(|(_, w)| *w).collect();
                f.write_str(&on.join(","))
            }
        }
    }
}

impl std::str::FromStr for Ret {
    type Err = SmtpError;

    /// `FULL` or `HDRS`, in any case.
    fn from_str(text: &str) -> Result<Self, SmtpError> {
        if text.eq_ignore_ascii_case("FULL") {
            Ok(Self::Full)
        } else if text.eq_ignore_ascii_case("HDRS") {
            Ok(Self::Hdrs)
        } else {
            Err(SmtpError::invalid_input(format!(
                "DSN ret is FULL or HDRS (RFC 3461 §4.3), not {text:?}"
            )))
        }
    }
}

impl std::str::FromStr for Notify {
    type Err = SmtpError;

    /// `NEVER`, or SUCCESS, FAILURE and DELAY separated by commas, in any case. NEVER with another
    /// word, an unknown word, or none at all is refused (RFC 3461 §4.1).
    ///
    /// ```
    /// use mailpump::smtp::dsn::Notify;
    ///
    /// assert_eq!("failure,Delay".parse::<Notify>()?, Notify::on(false, true, true));
    /// assert!("never,success".parse::<Notify>().is_err());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    fn from_str(text: &str) -> Result<Self, SmtpError> {
        let (mut never, mut success, mut failure, mut delay) = (false, false, false, false);
        for word in text.split(',').map(str::trim) {
            let flag = match word.to_ascii_uppercase().as_str() {
                "NEVER" => &mut never,
                "SUCCESS" => &mut success,
                "FAILURE" => &mut failure,
                "DELAY" => &mut delay,
                _ => {
                    return Err(SmtpError::invalid_input(format!(
                        "DSN notify is NEVER or any of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1), \
                         not {word:?}"
                    )));
                }
            };
            *flag = true;
        }
        if never && (success || failure || delay) {
            return Err(SmtpError::invalid_input(
                "DSN notify NEVER stands alone (RFC 3461 §4.1)",
            ));
        }
        let notify = if never {
            Self::Never
        } else {
            Self::on(success, failure, delay)
        };
        notify.validate()?;
        Ok(notify)
    }
}

/// The DSN parameters of one recipient's RCPT (RFC 3461 §4.1, §4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptDsn {
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`: the recipient's original address, when it was rewritten (a forward, an alias).
    pub orcpt: Option<Address>,
}

impl RcptDsn {
    /// Whether there is nothing to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.notify.is_none() && self.orcpt.is_none()
    }

    /// Appends ` NOTIFY=... ORCPT=...` to `out`.
    pub(crate) fn write_params(&self, out: &mut String) {
        if let Some(notify) = self.notify {
            let _ = write!(out, " NOTIFY={notify}");
        }
        if let Some(orcpt) = &self.orcpt {
            out.push_str(" ORCPT=");
            write_orcpt(orcpt, out);
        }
    }
}

/// What a message asks of delivery status notifications: `RET` and `ENVID` for the message,
/// `NOTIFY` and `ORCPT` for its recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `RET=` on MAIL.
    pub ret: Option<Ret>,
    /// `ENVID=` on MAIL (RFC 3461 §4.4): an identifier of the sender's choice, up to 100
    /// characters of printable ASCII, returned in every report.
    pub envid: Option<String>,
    /// `NOTIFY=` for every recipient that has no entry in [`Dsn::recipients`].
    pub notify: Option<Notify>,
    /// Parameters for single recipients, by address; each must be one of the envelope's.
    pub recipients: Vec<(Address, RcptDsn)>,
    /// `true` sends the message without these parameters when the server does not offer DSN;
    /// `false` (the default) refuses to send it, before any byte.
    pub optional: bool,
}

/// RFC 3461 §4.4: ENVID is at most 100 characters.
const ENVID_MAX: usize = 100;

impl Dsn {
    /// The parameters of the RCPT for `to`.
    #[must_use]
    pub fn for_recipient(&self, to: &Address) -> RcptDsn {
        match self
            .recipients
            .iter()
            .find(|(a, _)| a.as_str() == to.as_str())
        {
            Some((_, own)) => RcptDsn {
                notify: own.notify.or(self.notify),
                orcpt: own.orcpt.clone(),
            },
            None => RcptDsn {
                notify: self.notify,
                orcpt: None,
            },
        }
    }

    /// Checks the parameters against the envelope's recipients `rcpt`: `ENVID` printable ASCII
    /// of at most 100 characters, `NOTIFY` not empty, every address in
    /// [`Dsn::recipients`] one of `rcpt`, no `ORCPT` null.
    pub fn validate(&self, rcpt: &[Address]) -> Result<(), SmtpError> {
        if let Some(envid) = &self.envid {
            // RFC 3461 §4.4: printable ASCII (xtext encodes the rest of the xchar range).
            if envid.is_empty()
                || envid.chars().count() > ENVID_MAX
                || !envid.bytes().all(|b| (b' '..=b'~').contains(&b))
            {
                return Err(SmtpError::invalid_input(format!(
                    "DSN envid must be 1 to {ENVID_MAX} printable ASCII characters (RFC 3461 §4.4)"
                )));
            }
        }
        if let Some(notify) = self.notify {
            notify.validate()?;
        }
        for (address, own) in &self.recipients {
            if !rcpt.iter().any(|r| r.as_str() == address.as_str()) {
                return Err(SmtpError::invalid_input(format!(
                    "DSN parameters given for {address}, which is not a recipient of the message"
                )));
            }
            if let Some(notify) = own.notify {
                notify.validate()?;
            }
            if own.orcpt.as_ref().is_some_and(Address::is_null) {
                return Err(SmtpError::invalid_input(format!(
                    "the DSN original recipient of {address} is empty"
                )));
            }
        }
        Ok(())
    }

    /// Appends ` RET=... ENVID=...` to `out`.
    pub(crate) fn write_mail_params(&self, out: &mut String) {
        if let Some(ret) = self.ret {
            let _ = write!(out, " RET={}", ret.as_str());
        }
        if let Some(envid) = &self.envid {
            out.push_str(" ENVID=");
            xtext(envid, out);
        }
    }

    /// Whether the message asks for anything at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ret.is_none()
            && self.envid.is_none()
            && self.notify.is_none()
            && self.recipients.iter().all(|(_, r)| r.is_empty())
    }
}

/// xtext (RFC 3461 §4): `!` to `~` stand for themselves, except `+` and `=`; every other octet is
/// `+` and two upper-case hex digits.
///
/// ```
/// let mut out = String::new();
/// mailpump::smtp::dsn::xtext("a+b=c d\u{e9}", &mut out);
/// assert_eq!(out, "a+2Bb+3Dc+20d+C3+A9");
/// ```
pub fn xtext(text: &str, out: &mut String) {
    for b in text.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "+{b:02X}");
        }
    }
}

/// `ORCPT=addr-type;xtext` (RFC 3461 §4.2): `rfc822` for an ASCII address; `utf-8` with
/// utf-8-addr-xtext for an internationalised one (RFC 6533 §3), which is ASCII on the wire and
/// so valid with or without SMTPUTF8.
fn write_orcpt(address: &Address, out: &mut String) {
    let text = address.as_str();
    if text.is_ascii() {
        out.push_str("rfc822;");
        xtext(text, out);
        return;
    }
    out.push_str("utf-8;");
    for c in text.chars() {
        // RFC 6533 §3: QCHAR is xchar but "+", "=" and "\"; the rest is EmbeddedUnicodeChar.
        if c.is_ascii_graphic() && !matches!(c, '+' | '=' | '\\') {
            out.push(c);
        } else {
            let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    #[test]
    fn xtext_encodes_what_is_not_a_plain_xchar() {
        let table = [
            ("abc", "abc"),
            ("", ""),
            ("a b", "a+20b"),
            ("1+1=2", "1+2B1+3D2"),
            ("\r\nRCPT", "+0D+0ARCPT"),
            ("~!", "~!"),
        ];
        for (input, expected) in table {
            let mut out = String::new();
            xtext(input, &mut out);
            assert_eq!(out, expected, "{input:?}");
        }
    }

    #[test]
    fn orcpt_forms() {
        let mut out = String::new();
        write_orcpt(&addr("a+tag@example.org"), &mut out);
        assert_eq!(out, "rfc822;a+2Btag@example.org");
        out.clear();
        write_orcpt(&addr("zoë@example.org"), &mut out);
        assert_eq!(out, "utf-8;zo\\x{EB}@example.org");
    }

    #[test]
    fn validation() {
        let rcpt = [addr("a@example.org")];
        let ok = Dsn {
            envid: Some("x".repeat(100)),
            notify: Some(Notify::Never),
            ..Dsn::default()
        };
        assert!(ok.validate(&rcpt).is_ok());
        let bad = [
            Dsn {
                envid: Some("x".repeat(101)),
                ..Dsn::default()
            },
            Dsn {
                envid: Some("é".into()),
                ..Dsn::default()
            },
            Dsn {
                envid: Some("a\r\nb".into()),
                ..Dsn::default()
            },
            Dsn {
                notify: Some(Notify::on(false, false, false)),
                ..Dsn::default()
            },
            Dsn {
                recipients: vec![(addr("other@example.org"), RcptDsn::default())],
                ..Dsn::default()
            },
            Dsn {
                recipients: vec![(
                    addr("a@example.org"),
                    RcptDsn {
                        orcpt: Some(Address::null()),
                        notify: None,
                    },
                )],
                ..Dsn::default()
            },
        ];
        for dsn in bad {
            let error = dsn.validate(&rcpt).unwrap_err();
            assert_eq!(error.kind(), "invalid-input", "{dsn:?}");
        }
    }

    #[test]
    fn per_recipient_overrides_the_default() {
        let dsn = Dsn {
            notify: Some(Notify::on(false, true, false)),
            recipients: vec![(
                addr("b@example.org"),
                RcptDsn {
                    notify: Some(Notify::Never),
                    orcpt: Some(addr("old@example.org")),
                },
            )],
            ..Dsn::default()
        };
        assert_eq!(
            dsn.for_recipient(&addr("a@example.org")).notify,
            Some(Notify::on(false, true, false))
        );
        let own = dsn.for_recipient(&addr("b@example.org"));
        let mut out = String::new();
        own.write_params(&mut out);
        assert_eq!(out, " NOTIFY=NEVER ORCPT=rfc822;old@example.org");
    }
}
