//! LMTP retries (RFC 2033 §4.2): a message some recipients deferred (4xx verdicts) is sent again
//! to those recipients alone, never to one that has it (2xx) or refused it for good (5xx); the
//! caller gets one outcome that gathers every attempt's verdicts.

use crate::smtp::client::{Envelope, SendResult};
use crate::smtp::engine::lmtp::outcome;
use crate::smtp::error::SmtpError;
use crate::smtp::reply::Reply;

/// What the earlier attempts of a message settled over LMTP.
#[derive(Debug, Clone, Default)]
pub(super) struct Settled {
    /// The reply to the first delivery, if any recipient has the message.
    reply: Option<Reply>,
    /// The final verdicts (2xx and 5xx), in the order they came.
    verdicts: Vec<(String, Reply)>,
    /// The recipients refused at RCPT.
    refused_at_rcpt: Vec<(String, Reply)>,
    /// The 4xx verdicts of the recipients the next attempt is for.
    deferred: Vec<(String, Reply)>,
}

/// Another attempt for the deferred recipients of a message.
pub(super) struct DeferredRetry {
    /// What is settled, and the verdicts the attempt is for.
    pub(super) settled: Settled,
    /// The message's envelope with the deferred recipients alone.
    pub(super) envelope: Envelope,
    /// Why, for the log.
    pub(super) reason: String,
}

impl Settled {
    /// `later` (the outcome of the attempt to the deferred recipients) with what was settled
    /// before: the verdicts of every attempt side by side, delivered when any recipient has the
    /// message. A failure of `later` without verdicts leaves the deferred recipients deferred,
    /// as their 4xx verdicts said.
    pub(super) fn merge(
        self,
        later: Result<SendResult, SmtpError>,
    ) -> Result<SendResult, SmtpError> {
        let deferred = self.deferred;
        let (mut verdicts, mut refused_at_rcpt, reply) =
            (self.verdicts, self.refused_at_rcpt, self.reply);
        let later_reply = match later {
            Ok(result) => {
                refused_at_rcpt.extend(refused_at_rcpt_of(&result).cloned());
                verdicts.extend(result.verdicts);
                Some(result.reply)
            }
            Err(SmtpError::Undelivered {
                verdicts: now,
                refused,
            }) => {
                verdicts.extend(now);
                refused_at_rcpt.extend(refused);
                None
            }
            Err(SmtpError::RecipientsUnknown {
                verdicts: now,
                unknown,
                reason,
                source,
            }) => {
                verdicts.extend(now);
                return Err(SmtpError::RecipientsUnknown {
                    verdicts,
                    unknown,
                    reason,
                    source,
                });
            }
            // The mark went out and nothing says which deferred recipient has the message.
            Err(SmtpError::OutcomeUnknown { reason, source }) => {
                return Err(SmtpError::RecipientsUnknown {
                    verdicts,
                    unknown: deferred.into_iter().map(|(address, _)| address).collect(),
                    reason,
                    source,
                });
            }
            Err(SmtpError::RecipientsRefused { refused }) => {
                refused_at_rcpt.extend(refused);
                None
            }
            // No recipient of this attempt got it: they stay as deferred as they were.
            Err(_) => {
                verdicts.extend(deferred);
                None
            }
        };
        outcome(reply.or(later_reply), verdicts, refused_at_rcpt)
    }
}

/// The recipients of an LMTP `result` refused at RCPT: those in `refused` without a verdict.
fn refused_at_rcpt_of(result: &SendResult) -> impl Iterator<Item = &(String, Reply)> {
    result
        .refused
        .iter()
        .filter(|(a, _)| !result.verdicts.iter().any(|(v, _)| v == a))
}

/// The attempt for the recipients `result` (an LMTP outcome) deferred, or `None` when it
/// deferred none, or is not one of LMTP's verdicts.
pub(super) fn deferred_retry(
    result: &Result<SendResult, SmtpError>,
    envelope: &Envelope,
) -> Option<DeferredRetry> {
    let (reply, verdicts, refused_at_rcpt) = match result {
        Ok(r) if !r.verdicts.is_empty() => (
            Some(r.reply.clone()),
            &r.verdicts,
            refused_at_rcpt_of(r).cloned().collect(),
        ),
        Err(SmtpError::Undelivered { verdicts, refused }) => (None, verdicts, refused.clone()),
        _ => return None,
    };
    let (deferred, settled): (Vec<_>, Vec<_>) = verdicts
        .iter()
        .cloned()
        .partition(|(_, r)| r.is_transient());
    if deferred.is_empty() {
        return None;
    }
    let mut again = envelope.clone();
    again
        .rcpt
        .retain(|a| deferred.iter().any(|(d, _)| d == a.as_str()));
    if again.rcpt.is_empty() {
        return None;
    }
    let reason = format!(
        "{} recipient(s) deferred at the end of data (LMTP): {}",
        deferred.len(),
        deferred
            .iter()
            .map(|(a, r)| format!("{a} {}", r.code))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let settled = Settled {
        reply,
        verdicts: settled,
        refused_at_rcpt,
        deferred,
    };
    Some(DeferredRetry {
        settled,
        envelope: again,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::address::Address;

    fn reply(code: u16) -> Reply {
        Reply::new(code, vec![format!("answer {code}")])
    }

    fn verdicts(list: &[(&str, u16)]) -> Vec<(String, Reply)> {
        list.iter()
            .map(|(a, c)| ((*a).to_owned(), reply(*c)))
            .collect()
    }

    fn envelope() -> Envelope {
        let rcpt = ["a@x.org", "b@x.org", "c@x.org"].map(|a| Address::parse(a).unwrap());
        Envelope::new(Address::parse("me@x.org").unwrap(), rcpt.to_vec())
    }

    #[test]
    fn only_the_deferred_are_sent_again_and_every_verdict_is_reported() {
        let first = outcome(
            None,
            verdicts(&[("a@x.org", 250), ("b@x.org", 451), ("c@x.org", 550)]),
            vec![],
        );
        let retry = deferred_retry(&first, &envelope()).unwrap();
        assert_eq!(retry.envelope.rcpt, [Address::parse("b@x.org").unwrap()]);
        // The retry delivers: one outcome with the three final verdicts.
        let later = outcome(None, verdicts(&[("b@x.org", 250)]), vec![]);
        let merged = retry.settled.clone().merge(later).unwrap();
        assert_eq!(merged.accepted, ["a@x.org", "b@x.org"]);
        assert_eq!(merged.refused, verdicts(&[("c@x.org", 550)]));
        assert_eq!(merged.reply.code, 250);
        // The retry fails without verdicts: b is still deferred, a still delivered.
        let lost = Err(SmtpError::timeout("the greeting"));
        let merged = retry.settled.merge(lost).unwrap();
        assert_eq!(merged.accepted, ["a@x.org"]);
        assert_eq!(merged.deferred().collect::<Vec<_>>(), ["b@x.org"]);
    }

    #[test]
    fn nothing_is_retried_without_a_deferral() {
        let final_ = outcome(
            None,
            verdicts(&[("a@x.org", 250), ("c@x.org", 550)]),
            vec![],
        );
        assert!(deferred_retry(&final_, &envelope()).is_none());
        let refused = outcome(None, verdicts(&[("a@x.org", 554)]), vec![]);
        assert!(matches!(refused, Err(SmtpError::Undelivered { .. })));
        assert!(deferred_retry(&refused, &envelope()).is_none());
    }

    #[test]
    fn an_unknown_outcome_keeps_the_settled_verdicts() {
        let first = outcome(
            None,
            verdicts(&[("a@x.org", 250), ("b@x.org", 452)]),
            vec![],
        );
        let retry = deferred_retry(&first, &envelope()).unwrap();
        let later = Err(SmtpError::RecipientsUnknown {
            verdicts: vec![],
            unknown: vec!["b@x.org".into()],
            reason: "lost".into(),
            source: None,
        });
        let Err(SmtpError::RecipientsUnknown {
            verdicts: all,
            unknown,
            ..
        }) = retry.settled.merge(later)
        else {
            panic!("still unknown")
        };
        assert_eq!(all, verdicts(&[("a@x.org", 250)]));
        assert_eq!(unknown, ["b@x.org"]);
    }

    #[test]
    fn an_unknown_outcome_without_verdicts_never_reads_as_deferred() {
        let first = outcome(
            None,
            verdicts(&[("a@x.org", 250), ("b@x.org", 452)]),
            vec![],
        );
        let retry = deferred_retry(&first, &envelope()).unwrap();
        let later = Err(SmtpError::OutcomeUnknown {
            reason: "lost".into(),
            source: None,
        });
        let merged = retry.settled.merge(later);
        // Not retried again: b may have the message.
        assert!(deferred_retry(&merged, &envelope()).is_none());
        let Err(SmtpError::RecipientsUnknown { unknown, .. }) = merged else {
            panic!("unknown")
        };
        assert_eq!(unknown, ["b@x.org"]);
    }
}
