//! The mail transaction as an I/O-free state machine (RFC 5321 §3.3, RFC 2920).
//!
//! An [`Engine`] is given the server's capabilities and a queue of transactions. It says what to
//! write next and consumes the server's replies in order, deciding from each what follows: a
//! recipient accepted or refused, the 354 that opens the data, the verdict on the end-of-data
//! mark, the lone `.` and RSET that close a transaction whose recipients were all refused. It
//! never touches a socket: a driver (the blocking [`crate::smtp::client::Client`]) writes its
//! output, streams each message body when asked, and feeds it each reply. Its tests feed it
//! replies and read its bytes.
//!
//! With PIPELINING, MAIL, every RCPT and DATA go out in one write, and the end-of-data mark of
//! one message goes out in the same write as the next message's MAIL, RCPT and DATA (RFC 2920
//! §3.1: message content may open a group), so several transactions are in flight at once.
//! Without it, one command is written at a time.
//!
//! With CHUNKING as well (RFC 3030), a message needs no 354: its MAIL and RCPT go out with its
//! body as `BDAT` chunks, the last one `BDAT n LAST`, all without waiting, and the next message
//! follows in the same way, so a driver keeps a window of messages in flight and every reply is
//! matched to its transaction in order. `BDAT n LAST` is the end-of-data mark: nothing is
//! delivered before it, and after it no verdict means the outcome is unknown. A server that
//! refuses MAIL (or every recipient) refuses that transaction's chunks too, and discards their
//! data (RFC 3030 §4.2); the transaction ends with the first reason. CHUNKING is used only with
//! PIPELINING: without it each chunk would cost a round trip, and DATA is no slower.
//!
//! In LMTP mode ([`Engine::lmtp`], RFC 2033) the end of data is answered once per recipient
//! accepted at RCPT, in RCPT order: each recipient's outcome is its own
//! ([`SendResult::verdicts`]), and a failure between two verdicts leaves the rest unknown
//! ([`SmtpError::RecipientsUnknown`]).
//!
//! ```
//! use mailpump::smtp::capability::Capabilities;
//! use mailpump::smtp::engine::{Action, Engine};
//! use mailpump::{Address, Envelope, Reply};
//!
//! let caps = Capabilities::from_ehlo(&Reply::new(250, vec!["mx".into(), "PIPELINING".into()]));
//! let mut engine = Engine::new(&caps);
//! let envelope = Envelope::new(Address::parse("a@example.com")?, vec![Address::parse("b@example.org")?]);
//! let id = engine.push(&envelope, None)?;
//! assert_eq!(engine.output(), b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
//! engine.written();
//! for (code, text) in [(250, "ok"), (250, "ok"), (354, "go ahead")] {
//!     engine.receive(Reply::new(code, vec![text.into()]))?;
//! }
//! assert!(matches!(engine.poll(), Action::SendBody(body) if body == id));
//! engine.body_sent(id); // the driver wrote the body and the end-of-data mark
//! engine.receive(Reply::new(250, vec!["queued as 42".into()]))?;
//! let Action::Done(done, Ok(result)) = engine.poll() else { panic!() };
//! assert_eq!((done, result.accepted), (id, vec!["b@example.org".to_owned()]));
//! assert!(matches!(engine.poll(), Action::Idle));
//! # Ok::<(), mailpump::SmtpError>(())
//! ```

use std::collections::VecDeque;

use super::address::Address;
use super::capability::Capabilities;
use super::command::{Command, MailParams};
use super::dsn::{Dsn, RcptDsn};
use super::error::{ProtocolKind, ReplyKind, SmtpError};
use super::reply::Reply;

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
    /// Delivery status notifications asked for (RFC 3461). When the server does not offer DSN
    /// the message is refused before any byte, unless [`Dsn::optional`].
    pub dsn: Option<Dsn>,
    /// Whether the body is binary MIME (RFC 3030 §3): declared `BODY=BINARYMIME` and sent
    /// unchanged in `BDAT` chunks, without CRLF normalisation. Refused before any byte
    /// ([`SmtpError::NotOffered`]) unless the server offers BINARYMIME and CHUNKING with
    /// PIPELINING and chunking is allowed. The client sets it by itself for a source that
    /// [needs it](crate::Source::needs_binarymime).
    pub binary_mime: bool,
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
            dsn: None,
            binary_mime: false,
        }
    }

    /// Checks what can be checked before connecting: at least one recipient (RFC 5321 §3.3), and
    /// the DSN parameters ([`Dsn::validate`]). The addresses themselves were checked when they
    /// were parsed.
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
        if let Some(dsn) = &self.dsn {
            dsn.validate(&self.rcpt)?;
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
    /// The recipients that got the message, as the caller gave them (`a@b`, a domain in
    /// Unicode even when it went out as IDNA A-labels). Over LMTP, those whose own verdict was a
    /// 2xx.
    pub accepted: Vec<String>,
    /// The recipients that did not, with the server's reply to each: refused at RCPT, then (LMTP)
    /// those whose verdict after the data was a 4xx or 5xx.
    pub refused: Vec<(String, Reply)>,
    /// The reply to the end of data (it usually carries the queue id). Over LMTP, the first 2xx
    /// verdict.
    pub reply: Reply,
    /// LMTP only (RFC 2033 §4.2): the verdict on each recipient accepted at RCPT, in RCPT order:
    /// 2xx delivered, 4xx deferred (try again later), 5xx refused. Empty over SMTP, where one
    /// verdict (`reply`) covers every accepted recipient.
    pub verdicts: Vec<(String, Reply)>,
}

impl SendResult {
    /// LMTP: the recipients whose verdict was a 4xx, which may be sent the message again later
    /// without a second copy reaching the others. Empty over SMTP.
    ///
    /// ```
    /// use mailpump::{Reply, SendResult};
    ///
    /// let result = SendResult {
    ///     accepted: vec!["a@example.org".into()],
    ///     refused: vec![("b@example.org".into(), Reply::new(452, vec!["mailbox full".into()]))],
    ///     reply: Reply::new(250, vec!["ok".into()]),
    ///     verdicts: vec![
    ///         ("a@example.org".into(), Reply::new(250, vec!["ok".into()])),
    ///         ("b@example.org".into(), Reply::new(452, vec!["mailbox full".into()])),
    ///     ],
    /// };
    /// assert_eq!(result.deferred().collect::<Vec<_>>(), ["b@example.org"]);
    /// ```
    pub fn deferred(&self) -> impl Iterator<Item = &str> {
        self.verdicts
            .iter()
            .filter(|(_, reply)| reply.is_transient())
            .map(|(address, _)| address.as_str())
    }
}

/// A transaction's number within its engine, in the order they were pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// What the driver does next.
#[derive(Debug)]
pub enum Action {
    /// Write [`Engine::output`], then call [`Engine::written`].
    Write,
    /// Read one reply and give it to [`Engine::receive`].
    Read,
    /// The server is ready for this transaction's message: stream the body, dot-stuffed, and the
    /// end-of-data mark, then call [`Engine::body_sent`]. Whatever [`Engine::output`] holds after
    /// that call belongs in the same write as the mark.
    SendBody(TxId),
    /// A transaction is over: delivered (to the accepted recipients) or not.
    Done(TxId, Result<SendResult, SmtpError>),
    /// Nothing is due: every transaction pushed so far is over.
    Idle,
}

/// The reply the engine waits for next, and what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Mail(TxId),
    Rcpt(TxId, usize),
    Data(TxId),
    /// The reply to a `BDAT` chunk that is not the last (RFC 3030 §2).
    Chunk(TxId),
    /// The verdict on a message whose end-of-data mark was written.
    Verdict(TxId),
    /// The reply to the lone `.` that ends an empty message the server opened by mistake.
    EmptyMessage,
    Rset,
}

/// One transaction's state.
#[derive(Debug, Clone)]
struct Tx {
    id: TxId,
    mail: Command,
    /// The recipients as they go on the wire (IDNA A-labels unless SMTPUTF8 is used).
    rcpt: Vec<Address>,
    /// The recipients as the caller gave them: what results report.
    given: Vec<String>,
    /// The DSN parameters of each RCPT, in the order of `rcpt`.
    rcpt_dsn: Vec<RcptDsn>,
    mail_reply: Option<Reply>,
    accepted: Vec<String>,
    refused: Vec<(String, Reply)>,
    /// The first refusal of a `BDAT` chunk: the transaction failed (RFC 3030 §2).
    chunk_refusal: Option<Reply>,
    /// LMTP: the verdicts read so far, one per recipient in `accepted`, in order.
    verdicts: Vec<(String, Reply)>,
    /// The body is binary MIME: its chunks carry it unchanged (RFC 3030 §3).
    binary: bool,
}

impl Tx {
    /// RCPT for the recipient at `index`.
    fn rcpt_command(&self, index: usize) -> Command {
        Command::Rcpt {
            to: self.rcpt[index].clone(),
            dsn: self.rcpt_dsn[index].clone(),
        }
    }

    /// Whether the server refused MAIL.
    fn mail_refused(&self) -> bool {
        self.mail_reply
            .as_ref()
            .is_some_and(|r| !r.is_positive_completion())
    }

    /// The refusal the replies read so far already amount to, if any (see
    /// [`Tx::known_refused`]), in the order of [`Tx::refusal`], a refused chunk last.
    fn early_refusal(&self) -> Option<SmtpError> {
        if !self.known_refused() {
            return None;
        }
        let mut copy = self.clone();
        Some(match &self.chunk_refusal {
            Some(reply) if !self.mail_refused() && !self.accepted.is_empty() => {
                SmtpError::message_refused(reply.clone())
            }
            _ => copy.refusal(None),
        })
    }

    /// Whether the server's replies so far already say that this message is not delivered: the
    /// sender refused, every recipient refused, or a chunk refused.
    fn known_refused(&self) -> bool {
        self.mail_refused()
            || (self.accepted.is_empty() && self.refused.len() == self.rcpt.len())
            || self.chunk_refusal.is_some()
    }

    /// The outcome when the server did not take the message at DATA: the first reason wins
    /// (the sender refused, then every recipient refused, then DATA itself).
    fn refusal(&mut self, data_reply: Option<Reply>) -> SmtpError {
        if let Some(reply) = self
            .mail_reply
            .take()
            .filter(|r| !r.is_positive_completion())
        {
            return SmtpError::refused(&self.mail, reply);
        }
        if self.accepted.is_empty() {
            return SmtpError::RecipientsRefused {
                refused: std::mem::take(&mut self.refused),
            };
        }
        match data_reply {
            Some(reply) => SmtpError::refused(&Command::Data, reply),
            None => SmtpError::protocol(
                ProtocolKind::UnexpectedReply,
                "the transaction ended before DATA",
            ),
        }
    }
}

/// The transaction machine of one connection. See the [module documentation](self).
#[derive(Debug)]
pub struct Engine {
    offered: Offered,
    next_id: u64,
    /// Transactions whose commands are not written yet.
    queued: VecDeque<Tx>,
    /// Transactions whose commands were written, oldest first.
    active: VecDeque<Tx>,
    /// The replies due, in the order the commands were written (RFC 2920 §3.1).
    due: VecDeque<Due>,
    /// Bytes to write.
    out: Vec<u8>,
    /// How many of the replies due answer commands still in `out`, not yet written.
    unwritten: usize,
    /// A transaction whose body the server waits for.
    body: Option<TxId>,
    /// Finished transactions, in order.
    done: VecDeque<(TxId, Result<SendResult, SmtpError>)>,
    /// The server closed the session (421); nothing more may be written.
    closed: bool,
    /// LMTP (RFC 2033): one verdict per accepted recipient after the data.
    lmtp: bool,
}

impl Engine {
    /// An engine for a server with `caps` (the reply to the last EHLO). CHUNKING is used when
    /// the server offers it with PIPELINING, unless [`Engine::allow_chunking`] says otherwise.
    #[must_use]
    pub fn new(caps: &Capabilities) -> Self {
        Self {
            offered: Offered::from(caps),
            next_id: 0,
            queued: VecDeque::new(),
            active: VecDeque::new(),
            due: VecDeque::new(),
            out: Vec::new(),
            unwritten: 0,
            body: None,
            done: VecDeque::new(),
            closed: false,
            lmtp: false,
        }
    }

    /// Queues a transaction for `envelope`, whose message is `size` octets when known (declared
    /// with SIZE when offered, RFC 1870). Refused once the session is over
    /// ([`Engine::is_closed`]). Checked before a byte is written: at least one
    /// recipient, the size against the server's limit ([`SmtpError::SizeExceeded`]), SMTPUTF8
    /// support for internationalised addresses (RFC 6531 §3.4), and every command's arguments.
    pub fn push(&mut self, envelope: &Envelope, size: Option<u64>) -> Result<TxId, SmtpError> {
        if self.closed {
            // Nothing would ever write it: say so instead of leaving it without an outcome.
            return Err(SmtpError::invalid_input(
                "the session is over (the server closed it, or the connection failed): no \
                 transaction can start on it; open a new connection",
            ));
        }
        envelope.validate()?;
        let dsn = self.offered.dsn(envelope.dsn.as_ref())?;
        // RFC 6531 §3.4: one decision for the whole transaction, from every address in it.
        // SMTPUTF8 when an address is not ASCII and the server offers it; otherwise every
        // domain as A-labels, and a non-ASCII local part refused.
        let international = std::iter::once(&envelope.from)
            .chain(&envelope.rcpt)
            .any(Address::needs_smtputf8);
        let smtputf8 = international && self.offered.smtputf8;
        let ascii = |a: &Address| {
            if smtputf8 {
                Ok(a.clone())
            } else {
                a.to_ascii()
            }
        };
        let from = ascii(&envelope.from)?;
        let rcpt = envelope
            .rcpt
            .iter()
            .map(ascii)
            .collect::<Result<Vec<_>, _>>()?;
        let params = MailParams {
            size,
            body_8bitmime: envelope.eight_bit,
            body_binarymime: envelope.binary_mime,
            smtputf8,
            ret: dsn.and_then(|d| d.ret),
            envid: dsn.and_then(|d| d.envid.clone()),
        };
        let mail = self.offered.mail_command(&from, params)?;
        let rcpt_dsn: Vec<RcptDsn> = envelope
            .rcpt
            .iter()
            .map(|to| dsn.map(|d| d.for_recipient(to)).unwrap_or_default())
            .collect();
        let id = TxId(self.next_id);
        let tx = Tx {
            id,
            mail,
            rcpt,
            given: envelope
                .rcpt
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            rcpt_dsn,
            mail_reply: None,
            accepted: Vec::new(),
            refused: Vec::new(),
            chunk_refusal: None,
            verdicts: Vec::new(),
            binary: envelope.binary_mime,
        };
        let mut scratch = Vec::new();
        tx.mail.write_to(&mut scratch)?;
        for index in 0..tx.rcpt.len() {
            tx.rcpt_command(index).write_to(&mut scratch)?;
        }
        self.next_id += 1;
        self.queued.push_back(tx);
        self.start_next();
        Ok(id)
    }

    /// `false` sends every message with DATA even when the server offers CHUNKING. Set before
    /// the first [`Engine::push`].
    ///
    /// ```
    /// use mailpump::smtp::capability::Capabilities;
    /// use mailpump::smtp::engine::Engine;
    /// use mailpump::Reply;
    ///
    /// let caps = Capabilities::from_ehlo(&Reply::new(250, vec!["mx".into(), "PIPELINING".into(), "CHUNKING".into()]));
    /// assert!(Engine::new(&caps).uses_chunking());
    /// assert!(!Engine::new(&caps).allow_chunking(false).uses_chunking());
    /// ```
    #[must_use]
    pub fn allow_chunking(mut self, allowed: bool) -> Self {
        debug_assert!(self.next_id == 0, "set before the first transaction");
        self.offered.chunking &= allowed;
        self
    }

    /// `true` speaks LMTP (RFC 2033): after the end of data the server answers once per
    /// recipient it accepted at RCPT, and each recipient's outcome is its own
    /// ([`SendResult::verdicts`]). Messages then go out after DATA, never as `BDAT` chunks: with
    /// CHUNKING the last chunk may be written before the RCPT replies say how many verdicts will
    /// follow it. Set before the first [`Engine::push`].
    ///
    /// ```
    /// use mailpump::smtp::capability::Capabilities;
    /// use mailpump::smtp::engine::{Action, Engine};
    /// use mailpump::{Address, Envelope, Reply};
    ///
    /// let caps = Capabilities::from_ehlo(&Reply::new(250, vec!["lmtp".into(), "PIPELINING".into()]));
    /// let mut engine = Engine::new(&caps).lmtp(true);
    /// let rcpt = ["a@example.org", "b@example.org"].map(|r| Address::parse(r).unwrap()).to_vec();
    /// let id = engine.push(&Envelope::new(Address::parse("me@example.com")?, rcpt), None)?;
    /// engine.written();
    /// for code in [250, 250, 250, 354] {
    ///     engine.receive(Reply::new(code, vec!["ok".into()]))?;
    /// }
    /// assert!(matches!(engine.poll(), Action::SendBody(_)));
    /// engine.body_sent(id);
    /// engine.receive(Reply::new(250, vec!["delivered".into()]))?;
    /// engine.receive(Reply::new(452, vec!["mailbox full".into()]))?;
    /// let Action::Done(_, Ok(result)) = engine.poll() else { panic!() };
    /// assert_eq!(result.accepted, ["a@example.org"]);
    /// assert_eq!(result.deferred().collect::<Vec<_>>(), ["b@example.org"]);
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn lmtp(mut self, lmtp: bool) -> Self {
        debug_assert!(self.next_id == 0, "set before the first transaction");
        self.lmtp = lmtp;
        self.offered.chunking &= !lmtp;
        self
    }

    /// Whether messages go out as `BDAT` chunks (RFC 3030) rather than after DATA.
    #[must_use]
    pub fn uses_chunking(&self) -> bool {
        self.offered.chunking
    }

    /// Whether the body of `id` is binary MIME, to be sent unchanged: no CRLF normalisation,
    /// no line end added at its end (RFC 3030 §3).
    #[must_use]
    pub fn is_binary(&self, id: TxId) -> bool {
        self.active.iter().any(|t| t.id == id && t.binary)
    }

    /// What the driver does next. [`Action::Done`] is returned once per finished transaction.
    pub fn poll(&mut self) -> Action {
        if let Some((id, outcome)) = self.done.pop_front() {
            return Action::Done(id, outcome);
        }
        if let Some(id) = self.body.filter(|_| self.offered.chunking) {
            // The transaction's MAIL and RCPT in `out` go first in the body's first write.
            return Action::SendBody(id);
        }
        if !self.out.is_empty() {
            return Action::Write;
        }
        if let Some(id) = self.body {
            return Action::SendBody(id);
        }
        if !self.due.is_empty() {
            return Action::Read;
        }
        Action::Idle
    }

    /// The bytes to write (commands, each validated when it was queued).
    #[must_use]
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The driver wrote [`Engine::output`].
    pub fn written(&mut self) {
        self.out.clear();
        self.unwritten = 0;
    }

    /// Whether replies are still due to commands already written. Before writing
    /// [`Engine::output`], a driver that finds data waiting from the server can take it for
    /// unasked data (RFC 5321 §4.2) only when none are: with PIPELINING, the next transaction's
    /// commands may go out while the previous verdict is still on its way.
    #[must_use]
    pub fn replies_owed(&self) -> bool {
        self.due.len() > self.unwritten
    }

    /// How many transactions were pushed and have not ended yet.
    #[must_use]
    pub fn open_transactions(&self) -> usize {
        self.queued.len() + self.active.len()
    }

    /// Whether a reply is due.
    #[must_use]
    pub fn awaits_reply(&self) -> bool {
        !self.due.is_empty()
    }

    /// Whether `id`'s end-of-data mark was written and its verdict has not come: if the
    /// connection fails now, the server may have accepted the message.
    #[must_use]
    pub fn verdict_pending(&self, id: TxId) -> bool {
        self.due.contains(&Due::Verdict(id))
    }

    /// The driver wrote a `BDAT` chunk of `id` that is not the last one (RFC 3030 §2): its
    /// reply is due next after those already due.
    pub fn chunk_sent(&mut self, id: TxId) {
        debug_assert_eq!(self.body, Some(id));
        debug_assert!(self.offered.chunking);
        self.due.push_back(Due::Chunk(id));
    }

    /// Whether the replies read so far already say that `id` will not be delivered (its
    /// sender, every recipient or a chunk refused): a driver streaming its body in chunks may
    /// stop before `BDAT LAST` and close the connection rather than send data the server
    /// discards. Returns that refusal.
    #[must_use]
    pub fn refused_early(&self, id: TxId) -> Option<SmtpError> {
        self.active
            .iter()
            .find(|t| t.id == id)
            .and_then(Tx::early_refusal)
    }

    /// The driver sent `id`'s body and end-of-data mark (or is about to, in one write with
    /// whatever [`Engine::output`] now holds: with PIPELINING, the next transaction's commands).
    /// With CHUNKING the mark is the `BDAT n LAST` chunk.
    pub fn body_sent(&mut self, id: TxId) {
        debug_assert_eq!(self.body, Some(id));
        self.body = None;
        self.due.push_back(Due::Verdict(id));
        self.start_next();
    }

    /// Consumes the next reply. Decisions about a transaction end in an [`Action::Done`] from
    /// [`Engine::poll`]. An error here means that the dialogue is out of step and the connection
    /// must be closed (the engine then fails every transaction still open, see
    /// [`Engine::fail_all`]).
    pub fn receive(&mut self, reply: Reply) -> Result<(), SmtpError> {
        let Some(due) = self.due.pop_front() else {
            return Err(SmtpError::protocol(
                ProtocolKind::UnaskedData,
                format!("the server sent a reply no command asked for ({reply})"),
            ));
        };
        if reply.code == 421 {
            // RFC 5321 §3.8: the server is closing the session; this reply answers the command
            // it was given for, and nothing more will come.
            self.closing(due, &reply);
            return Ok(());
        }
        match due {
            Due::Mail(id) => self.on_mail(id, reply),
            Due::Rcpt(id, index) => self.on_rcpt(id, index, reply),
            Due::Data(id) => self.on_data(id, reply),
            Due::Chunk(id) => {
                if reply.is_positive_intermediate() {
                    return Err(out_of_step("BDAT", &reply));
                }
                let tx = self.tx(id);
                if !reply.is_positive_completion() && tx.chunk_refusal.is_none() {
                    tx.chunk_refusal = Some(reply);
                }
                Ok(())
            }
            Due::Verdict(id) if self.lmtp => self.on_recipient_verdict(id, reply),
            Due::Verdict(id) if self.offered.chunking => self.on_last_chunk(id, reply),
            Due::Verdict(id) => {
                self.on_verdict(id, reply);
                Ok(())
            }
            Due::EmptyMessage => {
                // Any verdict on the empty message will do (it should be a refusal for want of
                // recipients), as long as it is one.
                if reply.is_positive_intermediate() {
                    return Err(out_of_step("the end of an empty message", &reply));
                }
                Ok(())
            }
            Due::Rset => {
                // RFC 5321 §4.3.2: RSET is answered 250. A 3xx (typically the 354 of a DATA whose
                // reply was taken for another's) means that the server may be reading our
                // commands as message data.
                if reply.is_positive_intermediate() {
                    return Err(out_of_step("RSET", &reply));
                }
                self.start_next();
                Ok(())
            }
        }
    }

    /// The connection failed with `error`: every open transaction ends, and the engine with
    /// them. The first in flight gets `error`, each other one `others()`; a transaction whose
    /// end-of-data mark was written gets [`SmtpError::OutcomeUnknown`] instead when the failure
    /// is a lost connection or a timeout. Returns the outcomes in order, with any that
    /// [`Engine::poll`] had not given yet first.
    pub fn fail_all(
        &mut self,
        error: SmtpError,
        mut others: impl FnMut() -> SmtpError,
    ) -> Vec<(TxId, Result<SendResult, SmtpError>)> {
        let mut outcomes: Vec<_> = self.done.drain(..).collect();
        let mut error = Some(error);
        for tx in self.active.drain(..).chain(self.queued.drain(..)) {
            let id = tx.id;
            let own = error.take().unwrap_or_else(&mut others);
            // A message whose refusal is already known (with CHUNKING its mark may be out) was
            // not delivered: it ends with that refusal.
            let own = if !self.due.contains(&Due::Verdict(tx.id)) {
                own
            } else if let Some(refusal) = tx.early_refusal() {
                refusal
            } else if self.lmtp {
                tx.verdicts_cut_short(own.after_end_of_data())
            } else {
                own.after_end_of_data()
            };
            outcomes.push((id, Err(own)));
        }
        self.due.clear();
        self.out.clear();
        self.unwritten = 0;
        self.body = None;
        self.closed = true;
        outcomes
    }

    /// Whether the server has closed the session (421).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Writes the next queued transaction's commands when the dialogue allows. With PIPELINING,
    /// when every reply due is a verdict: DATA ends a group (RFC 2920 §3.1), so a transaction
    /// starts only once the one before it has sent its end-of-data mark, in the same write.
    /// Without it, when nothing is due at all.
    fn start_next(&mut self) {
        if self.closed || self.body.is_some() {
            return;
        }
        // BDAT does not end a group (RFC 3030 §4.2): the next MAIL may follow any chunk.
        let ready = if self.offered.chunking {
            true
        } else if self.offered.pipelining {
            self.due.iter().all(|d| matches!(d, Due::Verdict(_)))
        } else {
            self.due.is_empty()
        };
        if !ready {
            return;
        }
        let Some(tx) = self.queued.pop_front() else {
            return;
        };
        let id = tx.id;
        self.emit(&tx.mail);
        self.expect(Due::Mail(id));
        if self.offered.pipelining {
            for index in 0..tx.rcpt.len() {
                self.emit(&tx.rcpt_command(index));
                self.expect(Due::Rcpt(id, index));
            }
            if self.offered.chunking {
                // The chunks go out without waiting for these replies.
                self.body = Some(id);
            } else {
                self.emit(&Command::Data);
                self.expect(Due::Data(id));
            }
        }
        self.active.push_back(tx);
    }

    /// Expects the reply to a command just appended to `out`.
    fn expect(&mut self, due: Due) {
        self.due.push_back(due);
        self.unwritten += 1;
    }

    /// Appends a command that was validated when its transaction was pushed.
    fn emit(&mut self, command: &Command) {
        command
            .write_to(&mut self.out)
            .expect("validated when the transaction was pushed");
    }

    fn tx(&mut self, id: TxId) -> &mut Tx {
        self.active
            .iter_mut()
            .find(|t| t.id == id)
            .expect("a due reply belongs to an active transaction")
    }

    fn on_mail(&mut self, id: TxId, reply: Reply) -> Result<(), SmtpError> {
        if reply.is_positive_intermediate() {
            return Err(out_of_step("MAIL", &reply));
        }
        let accepted = reply.is_positive_completion();
        self.tx(id).mail_reply = Some(reply);
        if self.offered.pipelining {
            // The RCPT and DATA replies follow; the decision waits for DATA's.
            return Ok(());
        }
        if accepted {
            self.send_rcpt(id, 0);
        } else {
            // No transaction was opened (RFC 5321 §4.1.1.2): nothing to reset.
            self.refuse(id, None);
            self.start_next();
        }
        Ok(())
    }

    fn on_rcpt(&mut self, id: TxId, index: usize, reply: Reply) -> Result<(), SmtpError> {
        if reply.is_positive_intermediate() {
            return Err(out_of_step("RCPT", &reply));
        }
        let tx = self.tx(id);
        let address = tx.given[index].clone();
        if reply.is_positive_completion() {
            tx.accepted.push(address);
        } else {
            tx.refused.push((address, reply));
        }
        let (next, any_accepted) = (index + 1, !tx.accepted.is_empty());
        if self.offered.pipelining {
            return Ok(());
        }
        if next < self.tx(id).rcpt.len() {
            self.send_rcpt(id, next);
        } else if any_accepted {
            self.emit(&Command::Data);
            self.expect(Due::Data(id));
        } else {
            self.refuse(id, None);
            self.reset();
        }
        Ok(())
    }

    fn on_data(&mut self, id: TxId, reply: Reply) -> Result<(), SmtpError> {
        if reply.is_positive_completion() {
            // DATA is answered 354 or refused (RFC 5321 §4.3.2); a 2xx belongs to an earlier
            // command, and the real answer, perhaps a 354, is still to come.
            return Err(out_of_step("DATA", &reply));
        }
        let tx = self.tx(id);
        let ready = tx
            .mail_reply
            .as_ref()
            .is_some_and(Reply::is_positive_completion)
            && !tx.accepted.is_empty();
        if reply.code == 354 && ready {
            self.body = Some(id);
            return Ok(());
        }
        let data_open = reply.code == 354;
        self.refuse(id, (!data_open).then_some(reply));
        if data_open {
            // The server opened the data phase of a transaction that has no recipient: a lone
            // `.` ends the empty message (which it must refuse), then RSET clears the rest.
            self.out.extend_from_slice(b".\r\n");
            self.expect(Due::EmptyMessage);
        }
        self.reset();
        Ok(())
    }

    fn on_verdict(&mut self, id: TxId, reply: Reply) {
        let mut tx = self.finish(id);
        let outcome = verdict(reply).map(|reply| SendResult {
            accepted: std::mem::take(&mut tx.accepted),
            refused: std::mem::take(&mut tx.refused),
            reply,
            verdicts: Vec::new(),
        });
        self.done.push_back((id, outcome));
        self.start_next();
    }

    /// The reply to `BDAT n LAST`: the first reason wins, as at DATA (the sender refused,
    /// every recipient refused, a chunk refused), then the verdict itself. The server has
    /// discarded a refused transaction's chunks (RFC 3030 §4.2), so a 2xx here for one is out of
    /// step: its outcome is then unknown.
    fn on_last_chunk(&mut self, id: TxId, reply: Reply) -> Result<(), SmtpError> {
        let mut tx = self.finish(id);
        let positive = reply.is_positive_completion();
        let outcome = if tx.mail_refused() || tx.accepted.is_empty() {
            if positive {
                self.done.push_back((
                    id,
                    Err(SmtpError::OutcomeUnknown {
                        reason: format!(
                            "the server accepted the message ({reply}) after refusing its                              transaction"
                        ),
                        source: None,
                    }),
                ));
                return Err(out_of_step("BDAT LAST", &reply));
            }
            Err(tx.refusal(None))
        } else if let Some(refusal) = tx.chunk_refusal.take() {
            if positive {
                self.done.push_back((
                    id,
                    Err(SmtpError::OutcomeUnknown {
                        reason: format!(
                            "the server accepted the message ({reply}) after refusing one of                              its chunks"
                        ),
                        source: None,
                    }),
                ));
                return Err(out_of_step("BDAT LAST", &reply));
            }
            Err(SmtpError::message_refused(refusal))
        } else {
            verdict(reply).map(|reply| SendResult {
                accepted: std::mem::take(&mut tx.accepted),
                refused: std::mem::take(&mut tx.refused),
                reply,
                verdicts: Vec::new(),
            })
        };
        self.done.push_back((id, outcome));
        self.start_next();
        Ok(())
    }

    /// Ends `id` without a message: see [`Tx::refusal`].
    fn refuse(&mut self, id: TxId, data_reply: Option<Reply>) {
        let error = self.finish(id).refusal(data_reply);
        self.done.push_back((id, Err(error)));
    }

    /// RCPT for the recipient at `index`, alone (no PIPELINING).
    fn send_rcpt(&mut self, id: TxId, index: usize) {
        let command = self.tx(id).rcpt_command(index);
        self.emit(&command);
        self.expect(Due::Rcpt(id, index));
    }

    /// RSET after a transaction that did not end with a message (RFC 5321 §4.1.1.5).
    fn reset(&mut self) {
        self.emit(&Command::Rset);
        self.expect(Due::Rset);
    }

    /// Removes `id` from the active transactions, with the replies still due for it: a decision
    /// made early (MAIL refused without PIPELINING) leaves none, a pipelined one none either
    /// since DATA's reply comes last.
    fn finish(&mut self, id: TxId) -> Tx {
        let position = self
            .active
            .iter()
            .position(|t| t.id == id)
            .expect("an active transaction");
        self.active.remove(position).expect("present")
    }

    /// A 421 answered `due`: its transaction ends with that reply, every other open one with
    /// the same notice, except one whose end-of-data mark was written: its outcome is unknown.
    fn closing(&mut self, due: Due, reply: &Reply) {
        let first = match due {
            Due::Mail(id)
            | Due::Rcpt(id, _)
            | Due::Data(id)
            | Due::Chunk(id)
            | Due::Verdict(id) => Some(id),
            Due::EmptyMessage | Due::Rset => None,
        };
        let mut outcomes = Vec::new();
        if let (Some(id), Due::Verdict(_), true) = (first, due, self.lmtp) {
            // The 421 is this recipient's verdict (deferred); the rest have none.
            let mut tx = self.finish(id);
            let address = tx.accepted[tx.verdicts.len()].clone();
            tx.verdicts.push((address, reply.clone()));
            let outcome = if tx.verdicts.len() == tx.accepted.len() {
                tx.lmtp_outcome()
            } else {
                Err(tx.verdicts_cut_short(SmtpError::OutcomeUnknown {
                    reason: format!("the server closed the session ({reply})"),
                    source: None,
                }))
            };
            outcomes.push((id, outcome));
        } else if let Some(id) = first {
            let tx = self.finish(id);
            let error = match due {
                Due::Mail(_) => SmtpError::refused(&tx.mail, reply.clone()),
                Due::Rcpt(_, index) => SmtpError::refused(&tx.rcpt_command(index), reply.clone()),
                Due::Data(_) => SmtpError::refused(&Command::Data, reply.clone()),
                _ => SmtpError::message_refused(reply.clone()),
            };
            outcomes.push((id, Err(error)));
        }
        let pending: Vec<TxId> = self
            .due
            .iter()
            .filter_map(|d| match d {
                Due::Verdict(id) => Some(*id),
                _ => None,
            })
            .collect();
        for tx in self.active.drain(..).chain(self.queued.drain(..)) {
            let id = tx.id;
            let error = if pending.contains(&id) {
                let unknown = SmtpError::OutcomeUnknown {
                    reason: format!("the server closed the session before its verdict ({reply})"),
                    source: None,
                };
                if self.lmtp {
                    tx.verdicts_cut_short(unknown)
                } else {
                    unknown
                }
            } else {
                session_closed(reply)
            };
            outcomes.push((id, Err(error)));
        }
        self.due.clear();
        self.out.clear();
        self.unwritten = 0;
        self.body = None;
        self.closed = true;
        self.done.extend(outcomes);
    }
}

/// The verdict on a message, from the reply to its end-of-data mark: 2xx accepted, 4xx or 5xx
/// refused ([`SmtpError::message_refused`]). RFC 5321 §4.3.2 allows nothing else there; any
/// other reply says neither, so the message may or may not have been accepted
/// ([`SmtpError::OutcomeUnknown`]).
///
/// ```
/// use mailpump::Reply;
/// use mailpump::smtp::engine::verdict;
///
/// assert!(verdict(Reply::new(250, vec!["queued".into()])).is_ok());
/// assert_eq!(verdict(Reply::new(554, vec!["spam".into()])).unwrap_err().kind(), "message-refused");
/// assert_eq!(verdict(Reply::new(354, vec!["go on".into()])).unwrap_err().kind(), "outcome-unknown");
/// ```
pub fn verdict(reply: Reply) -> Result<Reply, SmtpError> {
    if reply.is_positive_completion() {
        Ok(reply)
    } else if reply.is_transient() || reply.is_permanent() {
        Err(SmtpError::message_refused(reply))
    } else {
        Err(SmtpError::OutcomeUnknown {
            reason: format!(
                "the server answered the end of data with {reply}, which is not a verdict"
            ),
            source: None,
        })
    }
}

/// The extensions a transaction uses, copied from the capabilities (which also hold every
/// keyword's text: too much to copy per message).
// One flag per extension, as in `Capabilities`.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offered {
    pipelining: bool,
    /// SIZE offered (RFC 1870), and the limit it gave, if any.
    size: bool,
    size_limit: Option<u64>,
    eight_bit_mime: bool,
    smtputf8: bool,
    /// CHUNKING offered with PIPELINING (RFC 3030), and not turned off.
    chunking: bool,
    /// CHUNKING offered with PIPELINING, whether turned off or not: to say why BINARYMIME
    /// cannot be used.
    chunking_possible: bool,
    /// BINARYMIME (RFC 3030 §3).
    binary_mime: bool,
    /// DSN (RFC 3461).
    dsn: bool,
}

impl From<&Capabilities> for Offered {
    fn from(caps: &Capabilities) -> Self {
        Self {
            pipelining: caps.pipelining,
            chunking: caps.chunking && caps.pipelining,
            chunking_possible: caps.chunking && caps.pipelining,
            binary_mime: caps.binary_mime,
            size: caps.size.is_some(),
            size_limit: caps.size_limit(),
            eight_bit_mime: caps.eight_bit_mime,
            smtputf8: caps.smtputf8,
            dsn: caps.dsn,
        }
    }
}

impl Offered {
    /// The DSN parameters to send: `None` when none were asked for, or when the server does not
    /// offer DSN and the caller said they may be dropped; refused, before any byte, when it does
    /// not and they may not (RFC 3461 §4: without the extension the parameters are errors).
    pub(crate) fn dsn(self, asked: Option<&Dsn>) -> Result<Option<&Dsn>, SmtpError> {
        match asked {
            Some(dsn) if !dsn.is_empty() => {
                if self.dsn {
                    Ok(Some(dsn))
                } else if dsn.optional {
                    Ok(None)
                } else {
                    Err(SmtpError::invalid_input(
                        "the message asks for delivery status notifications (DSN, RFC 3461), \
                         which the server does not offer; allow dropping the request \
                         (optional) to send it without them",
                    ))
                }
            }
            _ => Ok(None),
        }
    }

    /// MAIL FROM with the parameters the server offers, after the checks that need no byte on
    /// the wire. `wanted` says what the message needs; the command carries what the server
    /// offers of it: `SIZE=` (RFC 1870), `BODY=8BITMIME` (RFC 6152), `SMTPUTF8` when an address
    /// needs it (RFC 6531).
    pub(crate) fn mail_command(
        self,
        from: &Address,
        wanted: MailParams,
    ) -> Result<Command, SmtpError> {
        if let (Some(size), Some(limit)) = (wanted.size, self.size_limit) {
            // RFC 1870 §6.1: do not send a message the server has said it will not take.
            if size > limit {
                return Err(SmtpError::SizeExceeded { size, limit });
            }
        }
        if wanted.body_binarymime {
            self.binary_mime_usable()?;
        }
        let smtputf8 = wanted.smtputf8 || from.needs_smtputf8();
        // RFC 6531 §3.4: internationalised addresses only to a server that takes them.
        if smtputf8 && !self.smtputf8 {
            return Err(SmtpError::invalid_input(
                "an address needs SMTPUTF8 (RFC 6531), which the server does not offer",
            ));
        }
        let params = MailParams {
            size: wanted.size.filter(|_| self.size),
            body_8bitmime: wanted.body_8bitmime && self.eight_bit_mime,
            body_binarymime: wanted.body_binarymime,
            smtputf8,
            ret: wanted.ret.filter(|_| self.dsn),
            envid: wanted.envid.filter(|_| self.dsn),
        };
        Ok(Command::Mail {
            from: from.clone(),
            params,
        })
    }
}

impl Offered {
    /// RFC 3030 §3: a binary body goes only to a server that offers BINARYMIME, and only in
    /// `BDAT` chunks (DATA's CRLF normalisation and dot-stuffing would change it). Refused
    /// otherwise, saying which of the two is missing.
    fn binary_mime_usable(self) -> Result<(), SmtpError> {
        let reason = if !self.binary_mime {
            "the server does not offer BINARYMIME (RFC 3030 §3), and a binary part cannot \
             cross DATA unchanged: encode the part base64 instead"
        } else if !self.chunking_possible {
            "the server offers BINARYMIME without CHUNKING and PIPELINING, and binary data \
             goes only in BDAT chunks: encode the part base64 instead"
        } else if !self.chunking {
            "chunking is turned off (chunking=False, or LMTP, which goes after DATA), and \
             binary data goes only in BDAT chunks: allow chunking, or encode the part base64"
        } else {
            return Ok(());
        };
        Err(SmtpError::NotOffered {
            extension: "BINARYMIME",
            reason: reason.to_owned(),
        })
    }
}

/// The error for a reply that cannot answer `command`: the dialogue is out of step.
pub(crate) fn out_of_step(command: &str, reply: &Reply) -> SmtpError {
    SmtpError::protocol(
        ProtocolKind::UnexpectedReply,
        format!(
            "the server answered {command} with {}: its replies are out of step with the commands",
            reply.code
        ),
    )
}

/// The error of a transaction that never reached its turn because the server closed the session
/// with `reply` (RFC 5321 §3.8).
fn session_closed(reply: &Reply) -> SmtpError {
    SmtpError::Reply {
        command: "the session".to_owned(),
        reply: reply.clone(),
        kind: ReplyKind::Other,
    }
}

pub(crate) mod lmtp;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod lmtp_tests;

#[cfg(test)]
mod chunking_tests;

#[cfg(test)]
mod dsn_tests;

#[cfg(test)]
mod smtputf8_tests;

#[cfg(test)]
mod binarymime_tests;
