//! The mail transaction over the connection: the [`Engine`] decides, this module does its I/O
//! (writes its commands, streams each body, reads the replies), and the step-by-step commands
//! `mail`, `rcpt` and `data` of `LuaSocket`'s low-level API.

use super::Client;
use super::pipeline::One;
use crate::BoxError;
use crate::smtp::address::Address;
use crate::smtp::auth::{Credentials, Mechanism};
use crate::smtp::chunking::{CrlfEncoder, bdat};
use crate::smtp::command::{Command, MailParams};
use crate::smtp::dotstuff::WireEncoder;
use crate::smtp::dsn::{Dsn, RcptDsn};
use crate::smtp::engine::{self, Engine, Envelope, SendResult, TxId};
use crate::smtp::error::{ProtocolKind, SmtpError};
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

impl Client {
    /// MAIL FROM (RFC 5321 §4.1.1.2). `params` says what the message needs; the command
    /// carries what the server offers of it: `SIZE=` when the size is known and SIZE is offered
    /// (RFC 1870), `BODY=8BITMIME` when asked for and offered (RFC 6152), `SMTPUTF8` when an
    /// address needs it (RFC 6531). Checked before a byte is sent: the size against the server's
    /// limit ([`SmtpError::SizeExceeded`]), SMTPUTF8 support, and `RET=`/`ENVID=` (RFC 3461 §4.3,
    /// §4.4), which are refused when the server does not offer DSN ([`SmtpError::InvalidInput`]).
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
        self.ready_for_transaction()?;
        if params.body_binarymime {
            return Err(step_by_step_binary());
        }
        let offered = engine::Offered::from(&self.caps);
        let dsn = Dsn {
            ret: params.ret,
            envid: params.envid.clone(),
            ..Dsn::default()
        };
        dsn.validate(&[])?;
        offered.dsn(Some(&dsn))?;
        let command = offered.mail_command(from, params)?;
        self.simple(&command)
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
        self.rcpt_with_dsn(to, RcptDsn::default())
    }

    /// RCPT TO with the recipient's DSN parameters, `NOTIFY=` and `ORCPT=` (RFC 3461 §4.1,
    /// §4.2). They are checked, and refused when the server does not offer DSN, before a byte
    /// is sent.
    ///
    /// ```no_run
    /// use mailpump::smtp::command::MailParams;
    /// use mailpump::smtp::dsn::{Notify, RcptDsn};
    /// use mailpump::{Address, Client, ClientConfig};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// client.mail(&Address::parse("me@example.com")?, MailParams::default())?;
    /// let dsn = RcptDsn { notify: Some(Notify::on(false, true, true)), orcpt: None };
    /// client.rcpt_with_dsn(&Address::parse("you@example.org")?, dsn)?;
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn rcpt_with_dsn(&mut self, to: &Address, dsn: RcptDsn) -> Result<Reply, SmtpError> {
        self.ready_for_transaction()?;
        if !dsn.is_empty() {
            let asked = Dsn {
                recipients: vec![(to.clone(), dsn.clone())],
                ..Dsn::default()
            };
            asked.validate(std::slice::from_ref(to))?;
            engine::Offered::from(&self.caps).dsn(Some(&asked))?;
        }
        self.simple(&Command::Rcpt {
            to: to.clone(),
            dsn,
        })
    }

    /// DATA, then the body from `source` normalised to CRLF and dot-stuffed, then the
    /// end-of-data mark; returns the server's final reply.
    ///
    /// If `source` (or `progress`) fails, the connection is closed without the end-of-data mark
    /// so that the server discards the partial message, and [`SmtpError::Source`] is returned.
    /// Refused over LMTP ([`ClientConfig::lmtp`](crate::ClientConfig::lmtp)), before any byte:
    /// use [`Client::send`], which reads one verdict per recipient.
    /// A source that [needs BINARYMIME](Source::needs_binarymime) is refused before DATA
    /// ([`SmtpError::NotOffered`]): DATA would change its line ends. [`Client::send`] sends it.
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
        if self.config.lmtp {
            // RFC 2033 §4.2: one verdict per recipient accepted at RCPT, which this step on its
            // own cannot count or report.
            return Err(SmtpError::invalid_input(
                "over LMTP the server answers the data once per recipient: send the message \
                 with send() (Session.send in Python), which reads and reports every verdict",
            ));
        }
        self.ready_for_transaction()?;
        if source.needs_binarymime() {
            // DATA would normalise its line ends: refused before DATA rather than changed.
            return Err(step_by_step_binary());
        }
        // A binary source was refused above.
        let mut source = self.signed(source, false)?;
        let source: &mut dyn Source = &mut *source;
        let reply = self.command(&Command::Data)?;
        if reply.is_positive_completion() {
            // RFC 5321 §4.3.2: DATA is answered 354 or refused; a 2xx belongs to another command.
            return Err(self.fail(engine::out_of_step("DATA", &reply)));
        }
        if reply.code != 354 {
            return Err(SmtpError::refused(&Command::Data, reply));
        }
        self.stream_body(source, progress, &mut |_| {})?;
        let reply = self.read_reply().map_err(SmtpError::after_end_of_data)?;
        engine::verdict(reply)
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA and the body. With PIPELINING the
    /// three go out in one write and every reply is read, in order (RFC 2920 §3.1).
    ///
    /// Recipients the server refuses are reported in the result while the others get the
    /// message. When all are refused no body is sent ([`SmtpError::RecipientsRefused`]); should
    /// the server have answered DATA with 354 anyway, a lone `.` ends the empty message and RSET
    /// clears the transaction. Greets first if [`Client::greet`] has not been called.
    ///
    /// A binary message (a source that [needs BINARYMIME](Source::needs_binarymime), or
    /// [`Envelope::binary_mime`]) goes out unchanged in `BDAT` chunks after
    /// `BODY=BINARYMIME`, or is refused before any byte ([`SmtpError::NotOffered`]) when the
    /// server does not offer BINARYMIME and CHUNKING with PIPELINING (RFC 3030 §3).
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
        self.ready_for_transaction()?;
        let binary;
        let envelope = if source.needs_binarymime() && !envelope.binary_mime {
            binary = Envelope {
                binary_mime: true,
                ..envelope.clone()
            };
            &binary
        } else {
            envelope
        };
        // RFC 6376: signed before MAIL, so that a failure to sign sends nothing.
        let mut source = self.signed(source, envelope.binary_mime)?;
        let source: &mut dyn Source = &mut *source;
        let mut engine = Engine::new(&self.caps)
            .allow_chunking(self.config.chunking)
            .lmtp(self.config.lmtp);
        let id = engine.push(envelope, source.remaining_hint())?;
        let mut one = One {
            id,
            source,
            progress,
            outcome: None,
        };
        self.drive(&mut engine, &mut one);
        one.outcome.unwrap_or_else(|| Err(self.unusable()))
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

    /// `source`, signed by the connection's DKIM signer when it has one (RFC 6376), before any
    /// byte of it is sent; `binary_mime`: the envelope declares the body binary (refused). A
    /// source that fails while it is read to be hashed closes the connection, as it would
    /// mid-message.
    // Without the `dkim` feature there is nothing to sign, and this only passes `source` on.
    #[cfg_attr(
        not(feature = "dkim"),
        allow(clippy::unused_self, clippy::unnecessary_wraps)
    )]
    fn signed<'a>(
        &mut self,
        source: &'a mut dyn Source,
        binary_mime: bool,
    ) -> Result<Box<dyn Source + 'a>, SmtpError> {
        #[cfg(feature = "dkim")]
        if let Some(signer) = self.config.dkim.clone() {
            return match signer.sign_for_sending(Box::new(source), binary_mime) {
                Ok(signed) => Ok(Box::new(signed)),
                Err(e @ SmtpError::Source(_)) => Err(self.fail(e)),
                Err(other) => Err(other),
            };
        }
        let _ = binary_mime; // read by the signer alone
        Ok(Box::new(source))
    }

    /// Pulls, encodes and writes the body and the end-of-data mark. `after_mark` appends to the
    /// last write, after the mark, what belongs in the same write (the next transaction's
    /// commands). A failing source or progress callback closes the connection without the mark,
    /// so no truncated message is ever delivered.
    pub(super) fn stream_body(
        &mut self,
        source: &mut dyn Source,
        mut progress: Option<Progress<'_>>,
        after_mark: &mut dyn FnMut(&mut Vec<u8>),
    ) -> Result<(), SmtpError> {
        let total = source.remaining_hint();
        let mut input = std::mem::take(&mut self.body_in);
        let mut out = std::mem::take(&mut self.body_out);
        input.clear();
        out.clear();
        let result = self.encode_body(
            source,
            &mut progress,
            total,
            &mut input,
            &mut out,
            after_mark,
        );
        // Keep the buffers for the next message, unless one grew unusually large.
        if out.capacity() <= 2 * WRITE_BLOCK {
            self.body_out = out;
        }
        if input.capacity() <= 2 * WRITE_BLOCK {
            self.body_in = input;
        }
        result
    }

    /// The loop of [`Client::stream_body`].
    fn encode_body(
        &mut self,
        source: &mut dyn Source,
        progress: &mut Option<Progress<'_>>,
        total: Option<u64>,
        input: &mut Vec<u8>,
        out: &mut Vec<u8>,
        after_mark: &mut dyn FnMut(&mut Vec<u8>),
    ) -> Result<(), SmtpError> {
        // RFC 5321 §4.5.2 transparency and §2.3.8 line endings; `end` appends the end-of-data
        // mark so that the message ends with exactly one CRLF.CRLF.
        let mut encoder = WireEncoder::new();
        let mut sent: u64 = 0;
        // Before the first write the server has had nothing to answer (nothing came after its
        // 354, checked by the caller); before each later one it may have answered early.
        let mut sent_blocks = false;
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
                if sent_blocks {
                    self.ensure_no_early_reply()?;
                }
                after_mark(out);
                // The tail and the mark in one write.
                self.write_all(out, "sending the message")?;
                out.clear();
                return Ok(());
            }
            if out.len() >= WRITE_BLOCK {
                if sent_blocks {
                    self.ensure_no_early_reply()?;
                }
                let cut = out.len() - HELD_TAIL;
                self.write_all(&out[..cut], "sending the message")?;
                sent_blocks = true;
                out.drain(..cut);
                self.report(progress, sent, total)?;
            }
        }
    }

    /// Streams the body of `id` as `BDAT` chunks of about [`WRITE_BLOCK`] octets (RFC 3030),
    /// the first one in one write with the transaction's MAIL and RCPT, the last one (`BDAT n
    /// LAST`, the end-of-data mark) with whatever the engine queues after it. Between chunks the
    /// replies already waiting are read (the server answers each chunk, and one that is never
    /// read could fill its buffers); when they say, mid-body, that the message will not be
    /// delivered, or a source fails, the connection is closed before `LAST`, so no truncated
    /// message is delivered.
    pub(super) fn stream_chunks(
        &mut self,
        engine: &mut Engine,
        id: TxId,
        source: &mut dyn Source,
        mut progress: Option<Progress<'_>>,
    ) -> Result<(), SmtpError> {
        if !engine.replies_owed() {
            // As before any write with nothing due: a 421 waiting answers the first command.
            if let Some(notice) = self.check_unsolicited()? {
                engine.written();
                return engine.receive(notice);
            }
        }
        let total = source.remaining_hint();
        let mut input = std::mem::take(&mut self.body_in);
        let mut body = std::mem::take(&mut self.body_out);
        input.clear();
        body.clear();
        let mut frame = engine.output().to_vec();
        engine.written();
        // RFC 3030 §3: a binary body is sent as it is; any other gets CRLF line ends.
        let mut crlf = (!engine.is_binary(id)).then(CrlfEncoder::new);
        let mut sent: u64 = 0;
        let mut chunks: u64 = 0;
        let result = loop {
            input.clear();
            let more = match source.pull(&mut input) {
                Ok(more) => more,
                Err(e) => break Err(self.fail(SmtpError::Source(e))),
            };
            sent += input.len() as u64;
            match &mut crlf {
                Some(crlf) => crlf.encode(&input, &mut body),
                None => body.extend_from_slice(&input),
            }
            if more && body.len() < WRITE_BLOCK {
                continue;
            }
            if let (false, Some(crlf)) = (more, &mut crlf) {
                crlf.end(&mut body);
            }
            // Reported before the write of the last chunk: a callback that stops here still
            // leaves the message unfinished.
            if let Err(e) = self
                .report(&mut progress, sent, total)
                .and_then(|()| self.take_waiting_replies(engine, id, chunks > 0))
            {
                break Err(e);
            }
            bdat(body.len(), !more, &mut frame);
            self.log_commands(&frame);
            frame.extend_from_slice(&body);
            body.clear();
            chunks += 1;
            if more {
                engine.chunk_sent(id);
            } else {
                engine.body_sent(id);
                self.log_commands(engine.output());
                frame.extend_from_slice(engine.output());
                engine.written();
            }
            if let Err(e) = self.write_all(&frame, "sending the message") {
                break Err(e);
            }
            frame.clear();
            if !more {
                break Ok(());
            }
        };
        if body.capacity() <= 2 * WRITE_BLOCK {
            self.body_out = body;
        }
        if input.capacity() <= 2 * WRITE_BLOCK {
            self.body_in = input;
        }
        result
    }

    /// Reads the replies already waiting (without waiting for more) and gives them to `engine`;
    /// fails, closing the connection, when the server closed the session, or when `mid_body`
    /// and they say that `id` will not be delivered. Before its first chunk a refused message is
    /// sent all the same (at most one chunk, which the server discards): the session goes on.
    fn take_waiting_replies(
        &mut self,
        engine: &mut Engine,
        id: TxId,
        mid_body: bool,
    ) -> Result<(), SmtpError> {
        while engine.awaits_reply() {
            let Some(reply) = self.early_reply()? else {
                break;
            };
            engine.receive(reply).map_err(|e| self.fail(e))?;
        }
        if engine.is_closed() {
            return Err(self.fail(SmtpError::protocol(
                ProtocolKind::UnexpectedReply,
                "the server closed the session while a message was being sent",
            )));
        }
        match engine.refused_early(id).filter(|_| mid_body) {
            Some(refusal) => Err(self.fail(refusal)),
            None => Ok(()),
        }
    }

    /// Fails, without writing the end-of-data mark, when the server answered before the message
    /// was complete: a refusal is the message's ([`SmtpError::message_refused`]), anything else
    /// is out of step. Either way the connection is closed, since the server's idea of where
    /// the data ends is no longer ours.
    fn ensure_no_early_reply(&mut self) -> Result<(), SmtpError> {
        let Some(reply) = self.early_reply()? else {
            return Ok(());
        };
        let error = if reply.is_transient() || reply.is_permanent() {
            SmtpError::message_refused(reply)
        } else {
            SmtpError::protocol(
                ProtocolKind::UnaskedData,
                format!(
                    "the server answered before the end of the message ({reply}); the message \
                     was abandoned without its end-of-data mark"
                ),
            )
        };
        Err(self.fail(error))
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

/// The step-by-step commands send the message with DATA, which cannot carry a binary body
/// unchanged (RFC 3030 §3).
fn step_by_step_binary() -> SmtpError {
    SmtpError::NotOffered {
        extension: "BINARYMIME",
        reason: "the step-by-step commands (mail, rcpt, data) send the message with DATA, which \
                 would change a binary body: send it with send(), which uses BDAT"
            .to_owned(),
    }
}
