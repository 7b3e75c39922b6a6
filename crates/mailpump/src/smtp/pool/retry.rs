//! Which failures a pool tries again: only those after which the server cannot hold the message
//! (the delivery guarantee of `docs/errors.md`).

use std::time::Duration;

use crate::smtp::error::{ConnectKind, ReplyKind, SmtpError};
use crate::smtp::reply::Reply;

/// Why `error` may be retried without any risk of a second delivery, or `None` when it may not.
///
/// - The connection was refused, unreachable, timed out or lost before the message's
///   end-of-data mark, or a read or write timed out before it: the server has no complete message.
/// - A 421 at any stage: the server is closing the session (RFC 5321 §3.8) and has not taken the
///   message; at the end of data it is a transient verdict.
/// - A 4xx to MAIL or to DATA: the transaction never got as far as the content.
/// - A 4xx verdict on the end of data (RFC 5321 §4.2.5): a definite "not taken, try later".
///
/// Never: a 5xx, a refusal of recipients (a 4xx to some is reported in the result), an outcome
/// unknown (the end-of-data mark went out and no verdict came), a failing source, a TLS or
/// authentication failure other than 421, a protocol violation.
///
/// ```
/// use mailpump::smtp::pool::retry_reason;
/// use mailpump::smtp::error::ReplyKind;
/// use mailpump::{Reply, SmtpError};
///
/// let busy = SmtpError::Reply { command: "DATA".into(), reply: Reply::new(451, vec!["busy".into()]), kind: ReplyKind::Data };
/// assert!(retry_reason(&busy).is_some());
/// let unknown = SmtpError::OutcomeUnknown { reason: "no verdict".into(), source: None };
/// assert!(retry_reason(&unknown).is_none());
/// ```
#[must_use]
pub fn retry_reason(error: &SmtpError) -> Option<String> {
    match error {
        SmtpError::Connect { kind, .. } => match kind {
            ConnectKind::Refused
            | ConnectKind::Unreachable
            | ConnectKind::TimedOut
            | ConnectKind::Lost => Some(format!("{} before the end of data", kind.as_str())),
            _ => None,
        },
        SmtpError::Timeout { during } => Some(format!("timed out waiting for {during}")),
        SmtpError::Reply { reply, kind, .. } if reply.code == 421 => {
            Some(format!("421 to {}: {}", step(*kind), reply.text()))
        }
        SmtpError::Auth {
            reply: Some(reply), ..
        } if reply.code == 421 => Some(format!("421 to AUTH: {}", reply.text())),
        SmtpError::RecipientsRefused { refused } => refused
            .iter()
            .find(|(_, r)| r.code == 421)
            .map(|(_, r)| format!("421 to RCPT: {}", r.text())),
        SmtpError::Reply { reply, kind, .. }
            if reply.is_transient()
                && matches!(
                    kind,
                    ReplyKind::Sender | ReplyKind::Data | ReplyKind::Message
                ) =>
        {
            Some(format!(
                "{} to {}: {}",
                reply.code,
                step(*kind),
                reply.text()
            ))
        }
        _ => None,
    }
}

/// The step a reply answered, in words for the log.
fn step(kind: ReplyKind) -> &'static str {
    match kind {
        ReplyKind::Greeting => "the greeting",
        ReplyKind::Ehlo => "EHLO",
        ReplyKind::Sender => "MAIL",
        ReplyKind::Recipient => "RCPT",
        ReplyKind::Data => "DATA",
        ReplyKind::Message => "the end of data",
        ReplyKind::Other => "a command",
    }
}

/// Whether `error` came with the server closing the session (a 421 anywhere).
pub(super) fn is_closing(error: &SmtpError) -> bool {
    match error {
        SmtpError::RecipientsRefused { refused } => refused.iter().any(|(_, r)| r.code == 421),
        other => other.reply().is_some_and(|r| r.code == 421),
    }
}

/// The wait before retry number `attempt` (1 for the first retry): `base * 2^(attempt - 1)`,
/// at most `cap`.
///
/// ```
/// use mailpump::smtp::pool::backoff;
/// use std::time::Duration;
///
/// let s = Duration::from_secs;
/// assert_eq!(backoff(s(1), 1, s(60)), s(1));
/// assert_eq!(backoff(s(1), 3, s(60)), s(4));
/// assert_eq!(backoff(s(1), 40, s(60)), s(60));
/// ```
#[must_use]
pub fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(cap, |d| d.min(cap))
}

/// The server's queue id in its reply to the end of data, when the text says it the usual ways
/// (`queued as 4F2A1B`, `Ok: queued as ...`, `id=...`); otherwise `None`.
///
/// ```
/// use mailpump::smtp::pool::queue_id;
/// use mailpump::Reply;
///
/// let reply = Reply::new(250, vec!["2.0.0 Ok: queued as 4Xk2Zt0d3Bz9".into()]);
/// assert_eq!(queue_id(&reply).as_deref(), Some("4Xk2Zt0d3Bz9"));
/// ```
#[must_use]
pub fn queue_id(reply: &Reply) -> Option<String> {
    let text = reply.text();
    let lower = text.to_ascii_lowercase();
    let start = if let Some(at) = lower.find("queued as ") {
        at + "queued as ".len()
    } else {
        lower.find("id=").map(|at| at + "id=".len())?
    };
    let id: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        .collect();
    let id = id.trim_end_matches('.');
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn reply_error(code: u16, kind: ReplyKind) -> SmtpError {
        SmtpError::Reply {
            command: "X".into(),
            reply: Reply::new(code, vec!["text".into()]),
            kind,
        }
    }

    fn connect(kind: ConnectKind) -> SmtpError {
        SmtpError::Connect {
            server: "h".into(),
            port: 25,
            kind,
            source: io::ErrorKind::Other.into(),
        }
    }

    #[test]
    fn what_is_retried() {
        let table: Vec<(SmtpError, bool)> = vec![
            (connect(ConnectKind::Refused), true),
            (connect(ConnectKind::Unreachable), true),
            (connect(ConnectKind::TimedOut), true),
            (connect(ConnectKind::Lost), true),
            (connect(ConnectKind::NameNotResolved), false),
            (connect(ConnectKind::Closed), false),
            (SmtpError::timeout("the reply to DATA"), true),
            (reply_error(421, ReplyKind::Greeting), true),
            (reply_error(421, ReplyKind::Ehlo), true),
            (reply_error(421, ReplyKind::Recipient), true),
            (reply_error(451, ReplyKind::Sender), true),
            (reply_error(452, ReplyKind::Data), true),
            (reply_error(451, ReplyKind::Message), true),
            (reply_error(450, ReplyKind::Ehlo), false),
            (reply_error(550, ReplyKind::Sender), false),
            (reply_error(554, ReplyKind::Message), false),
            (reply_error(554, ReplyKind::Data), false),
            (
                SmtpError::RecipientsRefused {
                    refused: vec![("a@b".into(), Reply::new(450, vec![]))],
                },
                false,
            ),
            (
                SmtpError::RecipientsRefused {
                    refused: vec![("a@b".into(), Reply::new(421, vec![]))],
                },
                true,
            ),
            (
                SmtpError::OutcomeUnknown {
                    reason: "lost".into(),
                    source: None,
                },
                false,
            ),
            (SmtpError::Source("broken".into()), false),
            (SmtpError::invalid_input("x"), false),
        ];
        for (error, retried) in table {
            assert_eq!(retry_reason(&error).is_some(), retried, "{error:?}");
        }
    }

    #[test]
    fn backoff_doubles_and_stops_at_the_cap() {
        let ms = Duration::from_millis;
        let waits: Vec<_> = (1..=6).map(|a| backoff(ms(100), a, ms(1000))).collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(backoff(ms(100), u32::MAX, ms(1000)), ms(1000));
    }

    #[test]
    fn queue_ids() {
        let id = |text: &str| queue_id(&Reply::new(250, vec![text.into()]));
        assert_eq!(
            id("2.0.0 Ok: queued as 3F2C1B0A2").as_deref(),
            Some("3F2C1B0A2")
        );
        assert_eq!(
            id("OK id=1abc-0002Xy-7Q").as_deref(),
            Some("1abc-0002Xy-7Q")
        );
        assert_eq!(id("Message accepted for delivery"), None);
    }
}
