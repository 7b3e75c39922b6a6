//! The mail transaction: MAIL, RCPT, DATA and the body (RFC 5321 §3.3), alone or pipelined
//! (RFC 2920).

use super::Client;
use crate::BoxError;
use crate::filter::Filter;
use crate::smtp::address::Address;
use crate::smtp::command::Command;
use crate::smtp::dotstuff::WireEncoder;
use crate::smtp::error::{ReplyKind, SmtpError};
use crate::smtp::reply::Reply;
use crate::source::Source;

/// Body bytes are written in blocks of about this size: few system calls, bounded memory.
const WRITE_BLOCK: usize = 256 * 1024;

/// Bytes held back from each block write, so that the last write always carries the body's tail
/// together with the end-of-data mark (one segment, no wait on a delayed ACK).
const HELD_TAIL: usize = 1024;

/// A progress callback: `(source bytes sent so far, the source's size if known)`. An error
/// aborts the message like a source error (connection closed, no end-of-data mark).
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>) -> Result<(), BoxError>;

/// Who a message is from and to, on the SMTP level (RFC 5321 §3.3). Headers play no part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path (`MAIL FROM`); a null address for bounces.
    pub from: Address,
    /// The forward-paths (`RCPT TO`), in order. Must not be empty.
    pub rcpt: Vec<Address>,
    /// Whether the body may hold 8-bit bytes: then `BODY=8BITMIME` is declared when the server
    /// offers it (RFC 6152). Declaring it for a 7-bit body is harmless, so the default is `true`.
    pub eight_bit: bool,
}

impl Envelope {
    /// An envelope from `from` to `rcpt`, with `eight_bit` set.
    #[must_use]
    pub fn new(from: Address, rcpt: Vec<Address>) -> Self {
        Self {
            from,
            rcpt,
            eight_bit: true,
        }
    }
}

/// The optional parameters of MAIL FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailParams {
    /// The message size in bytes if known: sent as `SIZE=` when offered (RFC 1870) and checked
    /// against the server's limit first.
    pub size: Option<u64>,
    /// Declare `BODY=8BITMIME` when offered.
    pub eight_bit: bool,
    /// Some recipient needs SMTPUTF8 (RFC 6531); the sender's own address is checked anyway.
    pub smtputf8: bool,
}

/// Refused recipients with the server's reply to each.
type Refused = Vec<(String, Reply)>;

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// The recipients the server accepted, as they were given (`a@b`).
    pub accepted: Vec<String>,
    /// The recipients it refused, with its reply to each.
    pub refused: Vec<(String, Reply)>,
    /// The reply to the end of data (it usually carries the queue id).
    pub reply: Reply,
}

impl Client {
    /// MAIL FROM (RFC 5321 §4.1.1.2) with the ESMTP parameters `params` calls for and the server
    /// offers. Checked before a byte is sent: the size against the server's SIZE limit, and
    /// SMTPUTF8 support when an address needs it. A refusal is [`SmtpError::Reply`] with kind
    /// `Sender`; the session stays usable.
    pub fn mail(&mut self, from: &Address, params: MailParams) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        let command = self.mail_command(from, params)?;
        let reply = self.command(&command)?;
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(SmtpError::reply(&reply, "MAIL FROM", ReplyKind::Sender))
        }
    }

    /// RCPT TO (RFC 5321 §4.1.1.3). A refusal is [`SmtpError::Reply`] with kind `Recipients`.
    pub fn rcpt(&mut self, to: &Address) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        let reply = self.command(&Command::Rcpt {
            to: to.clone(),
            params: Vec::new(),
        })?;
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(SmtpError::reply(&reply, "RCPT TO", ReplyKind::Recipients))
        }
    }

    /// DATA, then the body from `source` normalised to CRLF and dot-stuffed, then the
    /// end-of-data mark; returns the server's final reply.
    ///
    /// If `source` (or `progress`) fails, the connection is closed without the end-of-data mark
    /// so the server discards the partial message, and [`SmtpError::Source`] is returned.
    pub fn data(
        &mut self,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        let reply = self.command(&Command::Data)?;
        if reply.code != 354 {
            return Err(SmtpError::reply(&reply, "DATA", ReplyKind::Data));
        }
        self.body(source, progress)
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA and the body. With PIPELINING the
    /// three commands go out in one write and every reply is read in order (RFC 2920 §3.1).
    ///
    /// Recipients the server refuses are reported in the result while the others get the
    /// message. When all are refused no body is sent ([`SmtpError::RecipientsRefused`]); should
    /// the server have answered DATA with 354 anyway, a lone `.` ends the empty message and
    /// RSET clears the transaction. Greets first if [`Client::greet`] has not been called.
    pub fn send(
        &mut self,
        envelope: &Envelope,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<SendResult, SmtpError> {
        self.ensure_usable()?;
        if envelope.rcpt.is_empty() {
            return Err(SmtpError::InvalidInput(
                "a message needs at least one recipient".into(),
            ));
        }
        if self.greeting.is_none() {
            self.greet(None)?;
        }
        let params = MailParams {
            size: source.remaining_hint(),
            eight_bit: envelope.eight_bit,
            smtputf8: envelope.rcpt.iter().any(Address::needs_smtputf8),
        };
        // Every command is formatted (and so validated) before the first byte is written.
        let mail = self.mail_command(&envelope.from, params)?;
        self.wbuf.clear();
        if self.caps.pipelining {
            self.queue(&mail)?;
            for to in &envelope.rcpt {
                self.queue(&Command::Rcpt {
                    to: to.clone(),
                    params: Vec::new(),
                })?;
            }
            self.queue(&Command::Data)?;
            self.flush_queue()?;
            self.pipelined_replies(envelope, source, progress)
        } else {
            for to in &envelope.rcpt {
                Command::Rcpt {
                    to: to.clone(),
                    params: Vec::new(),
                }
                .write_to(&mut self.wbuf)?;
            }
            self.wbuf.clear();
            self.stepwise(envelope, &mail, source, progress)
        }
    }

    /// The replies to a pipelined MAIL, RCPT… and DATA, then the body if all is well.
    fn pipelined_replies(
        &mut self,
        envelope: &Envelope,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<SendResult, SmtpError> {
        let mail_reply = self.read_reply()?;
        let (accepted, refused) = self.read_rcpt_replies(envelope)?;
        let data_reply = self.read_reply()?;
        self.ensure_nothing_pending()?;
        let data_open = data_reply.code == 354;
        if !mail_reply.is_positive_completion() {
            self.abandon(data_open)?;
            return Err(SmtpError::reply(
                &mail_reply,
                "MAIL FROM",
                ReplyKind::Sender,
            ));
        }
        if accepted.is_empty() {
            self.abandon(data_open)?;
            return Err(SmtpError::RecipientsRefused(refused));
        }
        if !data_open {
            self.abandon(false)?;
            return Err(SmtpError::reply(&data_reply, "DATA", ReplyKind::Data));
        }
        let reply = self.body(source, progress)?;
        Ok(SendResult {
            accepted,
            refused,
            reply,
        })
    }

    /// The same transaction one command at a time.
    fn stepwise(
        &mut self,
        envelope: &Envelope,
        mail: &Command,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<SendResult, SmtpError> {
        let reply = self.command(mail)?;
        if !reply.is_positive_completion() {
            return Err(SmtpError::reply(&reply, "MAIL FROM", ReplyKind::Sender));
        }
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for to in &envelope.rcpt {
            let reply = self.command(&Command::Rcpt {
                to: to.clone(),
                params: Vec::new(),
            })?;
            if reply.is_positive_completion() {
                accepted.push(mailbox(to));
            } else {
                refused.push((mailbox(to), reply));
            }
        }
        if accepted.is_empty() {
            self.abandon(false)?;
            return Err(SmtpError::RecipientsRefused(refused));
        }
        let reply = self.command(&Command::Data)?;
        if reply.code != 354 {
            self.abandon(false)?;
            return Err(SmtpError::reply(&reply, "DATA", ReplyKind::Data));
        }
        let reply = self.body(source, progress)?;
        Ok(SendResult {
            accepted,
            refused,
            reply,
        })
    }

    /// Reads one reply per recipient, sorting the recipients by it.
    fn read_rcpt_replies(
        &mut self,
        envelope: &Envelope,
    ) -> Result<(Vec<String>, Refused), SmtpError> {
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for to in &envelope.rcpt {
            let reply = self.read_reply()?;
            if reply.is_positive_completion() {
                accepted.push(mailbox(to));
            } else {
                refused.push((mailbox(to), reply));
            }
        }
        Ok((accepted, refused))
    }

    /// Ends a transaction that must not carry a message: a lone `.` if the server opened the
    /// data phase (an empty message, which it should refuse as it has no recipients), then
    /// RSET. A negative reply to either is tolerated; an I/O error is not.
    fn abandon(&mut self, data_open: bool) -> Result<(), SmtpError> {
        if data_open {
            self.transcript.client(".");
            self.write_all(b".\r\n", "ending the data")?;
            self.read_reply()?;
            self.ensure_nothing_pending()?;
        }
        self.command(&Command::Rset)?;
        Ok(())
    }

    /// MAIL FROM with its parameters, after the checks that need no byte on the wire.
    fn mail_command(&self, from: &Address, params: MailParams) -> Result<Command, SmtpError> {
        let mut esmtp = Vec::new();
        if let (Some(size), Some(limit)) = (params.size, self.caps.size.flatten()) {
            // RFC 1870 §6.1: do not send a message the server has said it will not take.
            if size > limit {
                return Err(SmtpError::InvalidInput(format!(
                    "the message ({size} bytes) exceeds the server's size limit of {limit} bytes"
                )));
            }
        }
        if let (Some(size), Some(_)) = (params.size, self.caps.size) {
            esmtp.push(("SIZE".to_owned(), Some(size.to_string())));
        }
        if params.eight_bit && self.caps.eight_bit_mime {
            esmtp.push(("BODY".to_owned(), Some("8BITMIME".to_owned())));
        }
        if params.smtputf8 || from.needs_smtputf8() {
            // RFC 6531 §3.4: internationalised addresses only to a server that takes them.
            if !self.caps.smtputf8 {
                return Err(SmtpError::InvalidInput(
                    "an address needs SMTPUTF8, which the server does not offer".into(),
                ));
            }
            esmtp.push(("SMTPUTF8".to_owned(), None));
        }
        Ok(Command::Mail {
            from: from.clone(),
            params: esmtp,
        })
    }

    /// Streams the body after a 354 and reads the final reply.
    fn body(
        &mut self,
        source: &mut dyn Source,
        mut progress: Option<Progress<'_>>,
    ) -> Result<Reply, SmtpError> {
        let total = source.remaining_hint();
        let mut input = std::mem::take(&mut self.body_in);
        let mut out = std::mem::take(&mut self.body_out);
        input.clear();
        out.clear();
        let result = self.stream_body(source, &mut progress, total, &mut input, &mut out);
        // Keep the buffers for the next message, unless one grew unusually large.
        if out.capacity() <= 2 * WRITE_BLOCK {
            self.body_out = out;
        }
        if input.capacity() <= 2 * WRITE_BLOCK {
            self.body_in = input;
        }
        result?;
        let reply = self.read_reply()?;
        self.ensure_nothing_pending()?;
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(SmtpError::reply(&reply, "end of data", ReplyKind::Data))
        }
    }

    /// Pulls, encodes and writes the body and the end-of-data mark.
    fn stream_body(
        &mut self,
        source: &mut dyn Source,
        progress: &mut Option<Progress<'_>>,
        total: Option<u64>,
        input: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), SmtpError> {
        // RFC 5321 §4.5.2 transparency and §2.3.8 line endings; the encoder also appends the
        // end-of-data mark so that the message ends with exactly one CRLF.CRLF.
        let mut encoder = WireEncoder::new();
        let mut sent: u64 = 0;
        loop {
            input.clear();
            let more = match source.pull(input) {
                Ok(more) => more,
                Err(e) => return Err(self.fail(SmtpError::Source(e))),
            };
            sent += input.len() as u64;
            if let Err(e) = encoder.update(input, out) {
                return Err(self.fail(SmtpError::Source(e)));
            }
            if !more {
                if let Err(e) = encoder.finish(out) {
                    return Err(self.fail(SmtpError::Source(e)));
                }
                self.write_all(out, "sending the message")?;
                out.clear();
                if let Some(p) = progress.as_mut() {
                    if let Err(e) = p(sent, total) {
                        return Err(self.fail(SmtpError::Source(e)));
                    }
                }
                return Ok(());
            }
            if out.len() >= WRITE_BLOCK {
                let cut = out.len() - HELD_TAIL;
                self.write_all(&out[..cut], "sending the message")?;
                out.drain(..cut);
                if let Some(p) = progress.as_mut() {
                    if let Err(e) = p(sent, total) {
                        return Err(self.fail(SmtpError::Source(e)));
                    }
                }
            }
        }
    }
}

/// The address as a result lists it: `a@b` (empty for the null path).
fn mailbox(address: &Address) -> String {
    address.as_str().to_owned()
}
