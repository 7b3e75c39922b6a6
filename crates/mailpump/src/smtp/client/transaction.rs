//! The mail transaction: MAIL, RCPT, DATA and the body (RFC 5321 §3.3), alone or pipelined
//! (RFC 2920).

use super::Client;
use crate::BoxError;
use crate::smtp::address::Address;
use crate::smtp::auth::{Credentials, Mechanism};
use crate::smtp::command::{Command, MailParams};
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
///
/// ```no_run
/// use mailpump::source::ReaderSource;
/// use mailpump::{Address, Client, ClientConfig, Envelope};
///
/// let mut client = Client::connect(&ClientConfig::default())?;
/// let envelope = Envelope::new(Address::parse("me@example.com")?, vec![Address::parse("you@example.org")?]);
/// let mut body = ReaderSource::open("message.eml")?;
/// let mut report = |sent: u64, total: Option<u64>| {
///     eprintln!("{sent} of {total:?} bytes");
///     Ok(()) // an error here aborts the message cleanly
/// };
/// client.send(&envelope, &mut body, Some(&mut report))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>) -> Result<(), BoxError>;

/// Who a message is from and to, on the SMTP level (RFC 5321 §3.3). Headers play no part.
///
/// ```
/// use mailpump::{Address, Envelope};
///
/// let mut envelope = Envelope::new(
///     Address::parse("Newsletter <news@example.com>")?,
///     vec![Address::parse("a@example.org")?, Address::parse("b@example.net")?],
/// );
/// envelope.eight_bit = false; // the body is 7-bit: do not declare BODY=8BITMIME
/// assert_eq!(envelope.rcpt.len(), 2);
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
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
    ///
    /// ```
    /// use mailpump::{Address, Envelope};
    ///
    /// let bounce = Envelope::new(Address::null(), vec![Address::parse("postmaster@example.org")?]);
    /// assert!(bounce.from.is_null() && bounce.eight_bit);
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn new(from: Address, rcpt: Vec<Address>) -> Self {
        Self {
            from,
            rcpt,
            eight_bit: true,
        }
    }

    /// Checks what can be checked before connecting: at least one recipient (RFC 5321 §3.3). The
    /// addresses themselves were checked when they were parsed.
    ///
    /// ```
    /// use mailpump::{Address, Envelope};
    ///
    /// let nobody = Envelope::new(Address::parse("me@example.com")?, vec![]);
    /// assert!(nobody.validate().is_err());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn validate(&self) -> Result<(), SmtpError> {
        if self.rcpt.is_empty() {
            return Err(SmtpError::invalid_input(
                "a message needs at least one recipient",
            ));
        }
        Ok(())
    }
}

/// What became of a message.
///
/// ```no_run
/// use mailpump::source::BytesSource;
/// use mailpump::{Address, Client, ClientConfig, Envelope};
///
/// let mut client = Client::connect(&ClientConfig::default())?;
/// let rcpt = vec![Address::parse("ok@example.org")?, Address::parse("gone@example.org")?];
/// let envelope = Envelope::new(Address::parse("me@example.com")?, rcpt);
/// let result = client.send(&envelope, &mut BytesSource::new(&b"Subject: x\r\n\r\nhi\r\n"[..]), None)?;
/// for (address, reply) in &result.refused {
///     eprintln!("{address} refused: {} {}", reply.code, reply.text());
/// }
/// println!("queued for {:?}: {}", result.accepted, result.reply.text());
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
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
    /// MAIL FROM (RFC 5321 §4.1.1.2). `params` says what the message needs; the command
    /// carries what the server offers of it: `SIZE=` when the size is known and SIZE is offered
    /// (RFC 1870), `BODY=8BITMIME` when asked for and offered (RFC 6152), `SMTPUTF8` when an
    /// address needs it (RFC 6531). Checked before a byte is sent: the size against the server's
    /// limit ([`SmtpError::SizeExceeded`]) and SMTPUTF8 support ([`SmtpError::InvalidInput`]).
    /// A refusal is [`SmtpError::Reply`] with kind `Sender`; the session stays usable.
    ///
    /// ```no_run
    /// use mailpump::source::BytesSource;
    /// use mailpump::smtp::command::MailParams;
    /// use mailpump::{Address, Client, ClientConfig};
    ///
    /// // The transaction step by step, as LuaSocket's low-level API does it.
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// client.mail(&Address::parse("me@example.com")?, MailParams::default())?;
    /// client.rcpt(&Address::parse("you@example.org")?)?;
    /// let reply = client.data(&mut BytesSource::new(&b"Subject: hi\r\n\r\nhello\r\n"[..]), None)?;
    /// println!("{}", reply.text());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn mail(&mut self, from: &Address, params: MailParams) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        let command = self.mail_command(from, params)?;
        let reply = self.command(&command)?;
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(SmtpError::refused(&command, reply))
        }
    }

    /// RCPT TO (RFC 5321 §4.1.1.3). A refusal is [`SmtpError::Reply`] with kind `Recipient`.
    ///
    /// ```no_run
    /// use mailpump::smtp::command::MailParams;
    /// use mailpump::{Address, Client, ClientConfig, SmtpError};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// client.mail(&Address::parse("me@example.com")?, MailParams::default())?;
    /// match client.rcpt(&Address::parse("nobody@example.org")?) {
    ///     Ok(_) => {}
    ///     Err(SmtpError::Reply { reply, .. }) => eprintln!("refused: {}", reply.text()),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), SmtpError>(())
    /// ```
    pub fn rcpt(&mut self, to: &Address) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        let command = Command::Rcpt { to: to.clone() };
        let reply = self.command(&command)?;
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(SmtpError::refused(&command, reply))
        }
    }

    /// DATA, then the body from `source` normalised to CRLF and dot-stuffed, then the
    /// end-of-data mark; returns the server's final reply.
    ///
    /// If `source` (or `progress`) fails, the connection is closed without the end-of-data mark
    /// so that the server discards the partial message, and [`SmtpError::Source`] is returned.
    ///
    /// ```no_run
    /// use mailpump::smtp::command::MailParams;
    /// use mailpump::{Address, Client, ClientConfig, MessageEncoder, MessageOptions, Part};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// client.mail(&Address::parse("me@example.com")?, MailParams::default())?;
    /// client.rcpt(&Address::parse("you@example.org")?)?;
    /// // The body is dot-stuffed and ended with CRLF.CRLF by the client.
    /// let mut message = MessageEncoder::new(Part::text(".leading dot\r\n", "plain"), MessageOptions::default())?;
    /// client.data(&mut message, None)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn data(
        &mut self,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        let reply = self.command(&Command::Data)?;
        self.ensure_data_reply_in_step(&reply)?;
        if reply.code != 354 {
            return Err(SmtpError::refused(&Command::Data, reply));
        }
        self.body(source, progress)
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA and the body. With PIPELINING the
    /// three go out in one write and every reply is read, in order (RFC 2920 §3.1).
    ///
    /// Recipients the server refuses are reported in the result while the others get the
    /// message. When all are refused no body is sent ([`SmtpError::RecipientsRefused`]); should
    /// the server have answered DATA with 354 anyway, a lone `.` ends the empty message and RSET
    /// clears the transaction. Greets first if [`Client::greet`] has not been called.
    ///
    /// ```no_run
    /// use mailpump::{Address, Client, ClientConfig, Envelope, MessageEncoder, MessageOptions, Part};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// let message = Part::attachment_file("big.iso", None, None)?; // read while it is sent
    /// let mut encoder = MessageEncoder::new(message.header("Subject", "The image"), MessageOptions::default())?;
    /// let envelope = Envelope::new(Address::parse("me@example.com")?, vec![Address::parse("you@example.org")?]);
    /// let result = client.send(&envelope, &mut encoder, None)?; // greets first if needed
    /// println!("{}", result.reply.text());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(
        &mut self,
        envelope: &Envelope,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<SendResult, SmtpError> {
        self.ensure_usable()?;
        envelope.validate()?;
        if self.greeting.is_none() {
            self.greet(None)?;
        }
        let params = MailParams {
            size: source.remaining_hint(),
            body_8bitmime: envelope.eight_bit,
            smtputf8: envelope.rcpt.iter().any(Address::needs_smtputf8),
        };
        let mail = self.mail_command(&envelope.from, params)?;
        let rcpts: Vec<Command> = envelope
            .rcpt
            .iter()
            .map(|to| Command::Rcpt { to: to.clone() })
            .collect();
        // Every command is formatted, and so validated, before the first byte is written.
        self.wbuf.clear();
        for command in std::iter::once(&mail).chain(&rcpts) {
            command.write_to(&mut self.wbuf)?;
        }
        self.wbuf.clear();
        if self.caps.pipelining {
            for command in std::iter::once(&mail).chain(&rcpts).chain([&Command::Data]) {
                self.queue(command)?;
            }
            if let Some(notice) = self.flush_queue()? {
                // RFC 5321 §3.8: the server's asynchronous 421 answers the batch's first command.
                return Err(SmtpError::refused(&mail, notice));
            }
            self.pipelined_replies(envelope, &mail, source, progress)
        } else {
            self.stepwise(envelope, &mail, &rcpts, source, progress)
        }
    }

    /// `LuaSocket`'s `smtp.send` on a fresh client: greet (with `domain`, else the configured
    /// one), authenticate when `credentials` are given, send one message, QUIT, close.
    ///
    /// A QUIT that fails after the server accepted the message does not fail the delivery:
    /// the message is queued, and that is what the result reports. After an error the client
    /// still says QUIT when the dialogue is in step, then closes.
    ///
    /// ```no_run
    /// use mailpump::source::BytesSource;
    /// use mailpump::{Address, Client, ClientConfig, Credentials, Envelope};
    ///
    /// let config = ClientConfig { server: "smtp.example.com".into(), port: 587, ..ClientConfig::default() };
    /// let credentials = Credentials::new("me@example.com", "app password");
    /// let envelope = Envelope::new(Address::parse("me@example.com")?, vec![Address::parse("you@example.org")?]);
    /// let mut body = BytesSource::new(&b"Subject: hi\r\n\r\nhello\r\n"[..]);
    /// // Connect, greet, authenticate, send, QUIT: LuaSocket's `smtp.send` in one call.
    /// let result = Client::connect(&config)?.deliver(None, Some((&credentials, None)), &envelope, &mut body, None)?;
    /// println!("{}", result.reply.text());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn deliver(
        mut self,
        domain: Option<&str>,
        credentials: Option<(&Credentials, Option<Mechanism>)>,
        envelope: &Envelope,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<SendResult, SmtpError> {
        let result = self.greet(domain).map(|_| ()).and_then(|()| {
            if let Some((credentials, mechanism)) = credentials {
                self.auth(credentials, mechanism)?;
            }
            self.send(envelope, source, progress)
        });
        if self.is_usable() {
            // Best effort: the outcome of the transaction is already known.
            let _ = self.quit();
        }
        self.close();
        result
    }

    /// The replies to a pipelined MAIL, RCPT… and DATA, then the body if all is well.
    fn pipelined_replies(
        &mut self,
        envelope: &Envelope,
        mail: &Command,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<SendResult, SmtpError> {
        let mail_reply = self.read_reply()?;
        if mail_reply.code == 421 {
            return Err(SmtpError::refused(mail, mail_reply));
        }
        let mut accepted = Vec::new();
        let mut refused_rcpts = Vec::new();
        for to in &envelope.rcpt {
            let reply = self.read_reply()?;
            if reply.code == 421 {
                return Err(SmtpError::refused(&Command::Rcpt { to: to.clone() }, reply));
            }
            if reply.is_positive_completion() {
                accepted.push(mailbox(to));
            } else {
                refused_rcpts.push((mailbox(to), reply));
            }
        }
        let data_reply = self.read_reply()?;
        if data_reply.code == 421 {
            return Err(SmtpError::refused(&Command::Data, data_reply));
        }
        self.ensure_nothing_pending()?;
        self.ensure_data_reply_in_step(&data_reply)?;
        let data_open = data_reply.code == 354;
        if !mail_reply.is_positive_completion() {
            self.abandon(data_open)?;
            return Err(SmtpError::refused(mail, mail_reply));
        }
        if accepted.is_empty() {
            self.abandon(data_open)?;
            return Err(SmtpError::RecipientsRefused {
                refused: refused_rcpts,
            });
        }
        if !data_open {
            self.abandon(false)?;
            return Err(SmtpError::refused(&Command::Data, data_reply));
        }
        let reply = self.body(source, progress)?;
        Ok(SendResult {
            accepted,
            refused: refused_rcpts,
            reply,
        })
    }

    /// The same transaction, one command at a time.
    fn stepwise(
        &mut self,
        envelope: &Envelope,
        mail: &Command,
        rcpts: &[Command],
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<SendResult, SmtpError> {
        let reply = self.command(mail)?;
        if !reply.is_positive_completion() {
            return Err(SmtpError::refused(mail, reply));
        }
        let mut accepted = Vec::new();
        let mut refused_rcpts = Vec::new();
        for (to, command) in envelope.rcpt.iter().zip(rcpts) {
            let reply = self.command(command)?;
            if reply.code == 421 {
                return Err(SmtpError::refused(command, reply));
            }
            if reply.is_positive_completion() {
                accepted.push(mailbox(to));
            } else {
                refused_rcpts.push((mailbox(to), reply));
            }
        }
        if accepted.is_empty() {
            self.abandon(false)?;
            return Err(SmtpError::RecipientsRefused {
                refused: refused_rcpts,
            });
        }
        let reply = self.command(&Command::Data)?;
        self.ensure_data_reply_in_step(&reply)?;
        if reply.code != 354 {
            self.abandon(false)?;
            return Err(SmtpError::refused(&Command::Data, reply));
        }
        let reply = self.body(source, progress)?;
        Ok(SendResult {
            accepted,
            refused: refused_rcpts,
            reply,
        })
    }

    /// Ends a transaction that must not carry a message: a lone `.` if the server opened the
    /// data phase (an empty message, which it must refuse for want of recipients), then RSET.
    /// Negative replies to either are tolerated; I/O and protocol errors are not.
    fn abandon(&mut self, data_open: bool) -> Result<(), SmtpError> {
        if !self.is_usable() {
            // The server closed the session (421): there is nothing left to reset.
            return Ok(());
        }
        if data_open {
            // The lone `.` is a command like any other: nothing may be waiting before it.
            if self.check_unsolicited()?.is_some() {
                return Ok(());
            }
            self.transcript.client(".");
            self.write_all(b".\r\n", "sending the end of data")?;
            self.read_reply()?;
            self.ensure_nothing_pending()?;
        }
        let reply = self.command(&Command::Rset)?;
        if reply.is_positive_intermediate() {
            // RSET is only ever answered 250 (RFC 5321 §4.3.2); a 3xx (typically the 354 of a
            // DATA whose reply we took for another's) means that replies and commands are out
            // of step, and the server may be reading our commands as message data.
            return Err(self.fail(SmtpError::Protocol(format!(
                "the server answered RSET with {}: its replies are out of step with the commands",
                reply.code
            ))));
        }
        Ok(())
    }

    /// DATA is answered 354, or refused with 4xx/5xx (RFC 5321 §4.3.2); a 2xx means that the
    /// reply belongs to an earlier command (an unsolicited reply shifted a pipelined dialogue,
    /// RFC 2920 §3.1), and that the real answer to DATA, perhaps a 354, is still to come.
    fn ensure_data_reply_in_step(&mut self, reply: &Reply) -> Result<(), SmtpError> {
        if reply.is_positive_completion() {
            return Err(self.fail(SmtpError::Protocol(format!(
                "the server answered DATA with {}: its replies are out of step with the commands",
                reply.code
            ))));
        }
        Ok(())
    }

    /// MAIL FROM with the parameters the server offers, after the checks that need no byte on
    /// the wire.
    fn mail_command(&self, from: &Address, wanted: MailParams) -> Result<Command, SmtpError> {
        if let (Some(size), Some(limit)) = (wanted.size, self.caps.size_limit()) {
            // RFC 1870 §6.1: do not send a message the server has said it will not take.
            if size > limit {
                return Err(SmtpError::SizeExceeded { size, limit });
            }
        }
        let smtputf8 = wanted.smtputf8 || from.needs_smtputf8();
        // RFC 6531 §3.4: internationalised addresses only to a server that takes them.
        if smtputf8 && !self.caps.smtputf8 {
            return Err(SmtpError::invalid_input(
                "an address needs SMTPUTF8 (RFC 6531), which the server does not offer",
            ));
        }
        let params = MailParams {
            size: wanted.size.filter(|_| self.caps.size.is_some()),
            body_8bitmime: wanted.body_8bitmime && self.caps.eight_bit_mime,
            smtputf8,
        };
        Ok(Command::Mail {
            from: from.clone(),
            params,
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
            Err(SmtpError::Reply {
                command: "end of data".to_owned(),
                kind: ReplyKind::Data,
                reply,
            })
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
        // RFC 5321 §4.5.2 transparency and §2.3.8 line endings; `end` appends the end-of-data
        // mark so that the message ends with exactly one CRLF.CRLF.
        let mut encoder = WireEncoder::new();
        let mut sent: u64 = 0;
        loop {
            input.clear();
            let more = match source.pull(input) {
                Ok(more) => more,
                Err(e) => return Err(self.fail(SmtpError::Source(e))),
            };
            sent += input.len() as u64;
            encoder.encode(input, out);
            if !more {
                encoder.end(out);
                // Reported before the last write: a callback that stops here still leaves the
                // message unfinished.
                self.report(progress, sent, total)?;
                // The tail and the mark in one write.
                self.write_all(out, "sending the message")?;
                out.clear();
                return Ok(());
            }
            if out.len() >= WRITE_BLOCK {
                let cut = out.len() - HELD_TAIL;
                self.write_all(&out[..cut], "sending the message")?;
                out.drain(..cut);
                self.report(progress, sent, total)?;
            }
        }
    }

    /// Calls the progress callback; its error aborts the message like a source error.
    fn report(
        &mut self,
        progress: &mut Option<Progress<'_>>,
        sent: u64,
        total: Option<u64>,
    ) -> Result<(), SmtpError> {
        match progress.as_mut().map(|p| p(sent, total)) {
            Some(Err(e)) => Err(self.fail(SmtpError::Source(e))),
            _ => Ok(()),
        }
    }
}

/// The address as a result lists it: `a@b` (empty for the null path).
fn mailbox(address: &Address) -> String {
    address.as_str().to_owned()
}
