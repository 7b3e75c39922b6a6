//! Transactions driven through the [`Engine`]: one ([`Client::send`]) or many in a row
//! ([`Client::send_many`]), pipelined across messages when the server offers PIPELINING.

use std::collections::VecDeque;
use std::io;

use super::Client;
use super::transaction::Progress;
use crate::smtp::engine::{Action, Engine, Envelope, SendResult, TxId};
use crate::smtp::error::SmtpError;
use crate::source::Source;

/// How many transactions the driver keeps open in the engine: the one whose body or verdict is
/// due, and the next, whose commands go out with the first one's end-of-data mark.
const WINDOW: usize = 2;

/// With CHUNKING no 354 holds a message back: this many are written ahead of their verdicts,
/// so a round trip carries about this many messages (RFC 3030 §4.2). Each open message holds
/// its source, so the window bounds memory too.
const CHUNKING_WINDOW: usize = 16;

/// The messages a drive sends: the next one on demand, each body, each outcome.
pub(super) trait Batch {
    /// Queues the next message in `engine` (or reports at once why it cannot be sent). False
    /// when there is none left.
    fn push_next(&mut self, engine: &mut Engine) -> bool;

    /// The source (and progress callback) of the transaction `id`.
    fn body(&mut self, id: TxId) -> (&mut dyn Source, Option<Progress<'_>>);

    /// The outcome of the transaction `id`.
    fn done(&mut self, id: TxId, outcome: Result<SendResult, SmtpError>);
}

/// One message already queued in the engine: [`Client::send`].
pub(super) struct One<'a, 'p> {
    pub(super) id: TxId,
    pub(super) source: &'a mut dyn Source,
    pub(super) progress: Option<Progress<'p>>,
    pub(super) outcome: Option<Result<SendResult, SmtpError>>,
}

impl Batch for One<'_, '_> {
    fn push_next(&mut self, _: &mut Engine) -> bool {
        false
    }

    fn body(&mut self, id: TxId) -> (&mut dyn Source, Option<Progress<'_>>) {
        debug_assert_eq!(id, self.id);
        let progress: Option<Progress<'_>> = match &mut self.progress {
            Some(p) => Some(&mut **p),
            None => None,
        };
        (&mut *self.source, progress)
    }

    fn done(&mut self, _: TxId, outcome: Result<SendResult, SmtpError>) {
        self.outcome = Some(outcome);
    }
}

/// The messages of [`Client::send_many`], taken from their iterator as the window allows.
struct Many<'a, I, F> {
    messages: I,
    taken: usize,
    /// The open transactions: their number in the iterator and their source.
    open: VecDeque<(TxId, usize, Box<dyn Source + 'a>)>,
    on_result: F,
    /// Signs each message before it is queued (RFC 6376).
    #[cfg(feature = "dkim")]
    signer: Option<crate::mime::dkim::DkimSigner>,
}

impl<'a, I, F> Batch for Many<'a, I, F>
where
    I: Iterator<Item = (Envelope, Box<dyn Source + 'a>)>,
    F: FnMut(usize, Result<SendResult, SmtpError>),
{
    fn push_next(&mut self, engine: &mut Engine) -> bool {
        let Some((mut envelope, source)) = self.messages.next() else {
            return false;
        };
        envelope.binary_mime |= source.needs_binarymime();
        let index = self.taken;
        self.taken += 1;
        #[cfg(feature = "dkim")]
        let source: Box<dyn Source + 'a> = match &self.signer {
            Some(dkim) => match dkim.sign_for_sending(source, envelope.binary_mime) {
                Ok(signed) => Box::new(signed),
                // Nothing of it was sent: reported at once, and the next message goes on.
                Err(error) => {
                    (self.on_result)(index, Err(error));
                    return true;
                }
            },
            None => source,
        };
        match engine.push(&envelope, source.remaining_hint()) {
            Ok(id) => self.open.push_back((id, index, source)),
            // Refused before a byte: reported at once, and the next message goes on.
            Err(error) => (self.on_result)(index, Err(error)),
        }
        true
    }

    fn body(&mut self, id: TxId) -> (&mut dyn Source, Option<Progress<'_>>) {
        let (_, _, source) = self
            .open
            .iter_mut()
            .find(|(open, _, _)| *open == id)
            .expect("the engine asks for the body of an open transaction");
        (&mut **source, None)
    }

    fn done(&mut self, id: TxId, outcome: Result<SendResult, SmtpError>) {
        let position = self
            .open
            .iter()
            .position(|(open, _, _)| *open == id)
            .expect("the engine ends an open transaction");
        let (_, index, _) = self.open.remove(position).expect("present");
        (self.on_result)(index, outcome);
    }
}

impl Client {
    /// Sends `messages` over this connection, one transaction each, in order, and calls
    /// `on_result(index, outcome)` for each as its verdict comes (`index` counts from 0 in the
    /// order the iterator gave them). With PIPELINING the end-of-data mark of one message goes
    /// out in the same write as the next message's MAIL, RCPT and DATA (RFC 2920 §3.1), so a
    /// message costs one round trip instead of two; every reply is still read and matched to
    /// its transaction.
    ///
    /// A message refused (a sender, every recipient, the data) does not stop the others. A
    /// message that cannot be sent (no recipient, over the SIZE limit, binary to a server without
    /// BINARYMIME) is reported at once. When the connection fails, every message already started
    /// gets its outcome (unknown for one whose end-of-data mark went out), the rest of the
    /// iterator is left untouched, and the client is no longer usable. Returns how many messages
    /// were taken from the iterator.
    /// Greets first if [`Client::greet`] has not been called; an error there is returned.
    ///
    /// ```no_run
    /// use mailpump::source::BytesSource;
    /// use mailpump::{Address, Client, ClientConfig, Envelope, Source};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// let from = Address::parse("news@example.com")?;
    /// let messages = ["a@example.org", "b@example.org"].into_iter().map(|to| {
    ///     let envelope = Envelope::new(from.clone(), vec![Address::parse(to).unwrap()]);
    ///     let body: Box<dyn Source> = Box::new(BytesSource::new(format!("To: {to}\r\n\r\nHi!\r\n")));
    ///     (envelope, body)
    /// });
    /// let taken = client.send_many(messages, |i, outcome| match outcome {
    ///     Ok(result) => println!("{i}: {}", result.reply.text()),
    ///     Err(e) => eprintln!("{i}: {e}"),
    /// })?;
    /// assert_eq!(taken, 2);
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn send_many<'a, I, F>(&mut self, messages: I, on_result: F) -> Result<usize, SmtpError>
    where
        I: IntoIterator<Item = (Envelope, Box<dyn Source + 'a>)>,
        F: FnMut(usize, Result<SendResult, SmtpError>),
    {
        self.ensure_usable()?;
        self.ready_for_transaction()?;
        let mut engine = Engine::new(&self.caps)
            .allow_chunking(self.config.chunking)
            .lmtp(self.config.lmtp);
        let mut many = Many {
            messages: messages.into_iter(),
            taken: 0,
            open: VecDeque::new(),
            on_result,
            #[cfg(feature = "dkim")]
            signer: self.config.dkim.clone(),
        };
        self.drive(&mut engine, &mut many);
        Ok(many.taken)
    }

    /// Runs `engine` over the connection until every message of `batch` has its outcome, or
    /// the connection fails (then the engine says what became of each open message).
    pub(super) fn drive(&mut self, engine: &mut Engine, batch: &mut dyn Batch) {
        let window = if engine.uses_chunking() {
            CHUNKING_WINDOW
        } else {
            WINDOW
        };
        loop {
            // A session the server closed (421) takes no new message: the rest stay untouched.
            while !engine.is_closed()
                && engine.open_transactions() < window
                && batch.push_next(engine)
            {}
            let step = match engine.poll() {
                Action::Write => self.write_batch(engine),
                Action::Read => match self.read_reply() {
                    Ok(reply) => engine.receive(reply),
                    Err(e) => Err(e),
                },
                Action::SendBody(id) => {
                    let (source, progress) = batch.body(id);
                    self.send_body(engine, id, source, progress)
                }
                Action::Done(id, outcome) => {
                    batch.done(id, outcome);
                    Ok(())
                }
                Action::Idle => return,
            };
            if let Err(error) = step {
                // The connection is no longer trusted; the engine says what became of each
                // open message (unknown for one whose end-of-data mark went out).
                let error = self.fail(error);
                let why = error.to_string();
                // The others were cut off before their own end-of-data marks.
                let lost = || {
                    self.connect_error(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("the connection failed during an earlier message: {why}"),
                    ))
                };
                let outcomes = engine.fail_all(error, lost);
                // Later calls say why the connection closed: "no message was left half-sent"
                // would be wrong if one of these may have been delivered.
                if let Some((_, Err(unknown))) = outcomes
                    .iter()
                    .find(|(_, outcome)| matches!(outcome, Err(e) if e.is_outcome_unknown()))
                {
                    self.set_closed_reason(unknown.to_string());
                }
                for (id, outcome) in outcomes {
                    batch.done(id, outcome);
                }
                return;
            }
        }
    }

    /// Writes the engine's commands in one write, once nothing unasked is waiting from the
    /// server. A 421 closing notice found waiting answers the batch's first command.
    fn write_batch(&mut self, engine: &mut Engine) -> Result<(), SmtpError> {
        // While replies to written commands are due (a verdict on its way as the next message
        // starts), what is waiting is those replies, read in turn: only when none are due is
        // waiting data unasked.
        if !engine.replies_owed() {
            if let Some(notice) = self.check_unsolicited()? {
                engine.written();
                return engine.receive(notice);
            }
        }
        self.log_commands(engine.output());
        let result = self.write_all(engine.output(), "sending a command");
        engine.written();
        result
    }

    /// Records the commands in `bytes` in the transcript. The engine writes MAIL, RCPT, DATA,
    /// BDAT, RSET and `.`: nothing to redact.
    pub(super) fn log_commands(&mut self, bytes: &[u8]) {
        if self.transcript.is_enabled() {
            for line in bytes.split(|&b| b == b'\n') {
                if let Some(line) = line.strip_suffix(b"\r") {
                    self.transcript.client(&String::from_utf8_lossy(line));
                }
            }
        }
    }

    /// Streams the body of `id` after its 354; the end-of-data mark goes out in one write with
    /// the tail of the body and whatever the engine queues after it.
    fn send_body(
        &mut self,
        engine: &mut Engine,
        id: TxId,
        source: &mut dyn Source,
        progress: Option<Progress<'_>>,
    ) -> Result<(), SmtpError> {
        if engine.uses_chunking() {
            return self.stream_chunks(engine, id, source, progress);
        }
        // Nothing may have come since the 354: it would be taken for the verdict.
        self.ensure_nothing_pending()?;
        self.stream_body(source, progress, &mut |out| {
            engine.body_sent(id);
            out.extend_from_slice(engine.output());
            engine.written();
        })
    }
}
