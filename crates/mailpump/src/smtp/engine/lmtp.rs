//! LMTP's verdicts (RFC 2033 §4.2): after the end of data the server answers once per recipient
//! it accepted at RCPT, in RCPT order, and each recipient's outcome is its own.

use super::{Engine, SendResult, Tx, TxId, out_of_step};
use crate::smtp::error::SmtpError;
use crate::smtp::reply::Reply;

impl Engine {
    /// One recipient's verdict. The transaction ends with the last one; until then the next
    /// reply due is still this transaction's. A reply that is no verdict (RFC 5321 §4.2.1: only
    /// 2xx, 4xx and 5xx can be) leaves this recipient and the rest without one: their outcome
    /// is unknown, and the dialogue is out of step.
    pub(super) fn on_recipient_verdict(&mut self, id: TxId, reply: Reply) -> Result<(), SmtpError> {
        if !(reply.is_positive_completion() || reply.is_transient() || reply.is_permanent()) {
            let tx = self.finish(id);
            let error = tx.verdicts_cut_short(SmtpError::OutcomeUnknown {
                reason: format!("the server answered with {reply}, which is not a verdict"),
                source: None,
            });
            self.done.push_back((id, Err(error)));
            return Err(out_of_step("the end of data", &reply));
        }
        let tx = self.tx(id);
        // RFC 2033 §4.2: one reply per accepted recipient, in the order of the RCPTs.
        let address = tx.accepted[tx.verdicts.len()].clone();
        tx.verdicts.push((address, reply));
        if tx.verdicts.len() < tx.accepted.len() {
            self.due.push_front(super::Due::Verdict(id));
            return Ok(());
        }
        let tx = self.finish(id);
        self.done.push_back((id, tx.lmtp_outcome()));
        self.start_next();
        Ok(())
    }
}

impl Tx {
    /// The outcome once every accepted recipient has its verdict (see [`outcome`]).
    pub(super) fn lmtp_outcome(self) -> Result<SendResult, SmtpError> {
        outcome(None, self.verdicts, self.refused)
    }

    /// The outcome when the verdicts stopped before the last one (the connection failed, or
    /// the server said something else): the verdicts read stand, the other recipients'
    /// outcome is unknown ([`SmtpError::RecipientsUnknown`]). `cause` is the failure, already
    /// judged as one after the end-of-data mark.
    pub(super) fn verdicts_cut_short(mut self, cause: SmtpError) -> SmtpError {
        let unknown = self.accepted.split_off(self.verdicts.len());
        let (reason, source) = match cause {
            SmtpError::OutcomeUnknown { reason, source } => (reason, source),
            other => (other.to_string(), None),
        };
        SmtpError::RecipientsUnknown {
            verdicts: self.verdicts,
            unknown,
            reason,
            source,
        }
    }
}

/// The outcome of an LMTP message from its verdicts and its RCPT refusals: delivered to the
/// recipients with a 2xx verdict (`reply` is the first delivery's, unless given), the others
/// with the RCPT refusals in `refused`; [`SmtpError::Undelivered`] when none has a 2xx.
pub(crate) fn outcome(
    reply: Option<Reply>,
    verdicts: Vec<(String, Reply)>,
    refused_at_rcpt: Vec<(String, Reply)>,
) -> Result<SendResult, SmtpError> {
    let Some((_, first_delivery)) = verdicts.iter().find(|(_, r)| r.is_positive_completion())
    else {
        return Err(SmtpError::Undelivered {
            verdicts,
            refused: refused_at_rcpt,
        });
    };
    let reply = reply.unwrap_or_else(|| first_delivery.clone());
    let accepted = verdicts
        .iter()
        .filter(|(_, r)| r.is_positive_completion())
        .map(|(a, _)| a.clone())
        .collect();
    let mut refused = refused_at_rcpt;
    refused.extend(
        verdicts
            .iter()
            .filter(|(_, r)| !r.is_positive_completion())
            .cloned(),
    );
    Ok(SendResult {
        accepted,
        refused,
        reply,
        verdicts,
    })
}
