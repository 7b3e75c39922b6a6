//! The I/O primitives every exchange goes through: writing commands, reading replies, and
//! giving up on a connection for good.

use std::io::{self, Read, Write};
use std::time::Instant;

use super::{Client, Closed, Link, MAX_BUFFERED_REPLY, READ_CHUNK, tls_failure};
use crate::smtp::command::Command;
use crate::smtp::error::{ConnectKind, ProtocolKind, SmtpError};
use crate::smtp::reply::{Parsed, Reply};
use crate::smtp::transport::is_timeout;

impl Client {
    /// Fails when the client is closed or broken.
    pub(super) fn ensure_usable(&self) -> Result<(), SmtpError> {
        match &self.link {
            Link::Open(_) => Ok(()),
            Link::Closed(_) => Err(self.unusable()),
        }
    }

    /// The error for any use after close or after an error.
    pub(super) fn unusable(&self) -> SmtpError {
        let why = match &self.link {
            Link::Closed(Closed::Broken(why)) => {
                format!("the connection was closed after an earlier error: {why}")
            }
            _ => "the session was closed by quit or close; open a new one".into(),
        };
        SmtpError::Connect {
            server: self.config.server.clone(),
            port: self.config.port,
            kind: ConnectKind::Closed,
            source: io::Error::new(io::ErrorKind::NotConnected, why),
        }
    }

    /// A [`SmtpError::Connect`] for a connection to this client's server that was lost.
    pub(super) fn connect_error(&self, source: io::Error) -> SmtpError {
        SmtpError::Connect {
            server: self.config.server.clone(),
            port: self.config.port,
            kind: ConnectKind::Lost,
            source,
        }
    }

    /// Shuts the connection down for good and returns `err` for the caller to raise.
    pub(super) fn fail(&mut self, err: SmtpError) -> SmtpError {
        self.shut(err.to_string());
        err
    }

    /// Replaces the reason kept for a connection an error closed (see [`Client::unusable`]).
    pub(super) fn set_closed_reason(&mut self, why: String) {
        if let Link::Closed(Closed::Broken(reason)) = &mut self.link {
            *reason = why;
        }
    }

    /// Shuts the connection down for good, for the reason `why` (kept for later calls).
    fn shut(&mut self, why: String) {
        if let Link::Open(t) = &mut self.link {
            t.shutdown();
            self.link = Link::Closed(Closed::Broken(why));
        }
        self.rbuf.clear();
        self.parser.reset();
    }

    /// Turns an I/O error into the client's error and closes the connection. `during` names
    /// what the client was doing or waiting for.
    pub(super) fn io_failure(&mut self, e: io::Error, during: &str) -> SmtpError {
        let err = if is_timeout(&e) {
            SmtpError::timeout(during)
        } else if let Some((kind, words)) = tls_failure(&e) {
            SmtpError::tls(kind, format!("{during}: {words}"))
        } else {
            self.connect_error(e)
        };
        self.fail(err)
    }

    /// Writes all of `bytes` and flushes.
    pub(super) fn write_all(&mut self, bytes: &[u8], during: &str) -> Result<(), SmtpError> {
        let Link::Open(t) = &mut self.link else {
            return Err(self.unusable());
        };
        match t.write_all(bytes).and_then(|()| t.flush()) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.io_failure(e, during)),
        }
    }

    /// Formats `command` into the write buffer (every argument is validated before a byte is
    /// written) and logs its redacted form; does not write.
    pub(super) fn queue(&mut self, command: &Command) -> Result<(), SmtpError> {
        command.write_to(&mut self.wbuf)?;
        if self.transcript.is_enabled() {
            self.transcript.client(&command.redacted());
        }
        Ok(())
    }

    /// Writes the queued commands in one write, once [`Client::check_unsolicited`] has found
    /// nothing waiting from the server. When what is waiting is the server's 421 closing notice,
    /// nothing is written and the notice is returned: it stands as the reply to the first queued
    /// command.
    pub(super) fn flush_queue(&mut self) -> Result<Option<Reply>, SmtpError> {
        match self.check_unsolicited() {
            Ok(None) => {}
            other => {
                self.wbuf.clear();
                return other;
            }
        }
        let buf = std::mem::take(&mut self.wbuf);
        let result = self.write_all(&buf, "sending a command");
        self.wbuf = buf;
        self.wbuf.clear();
        result.map(|()| None)
    }

    /// Sends one command and reads its reply, which must be the last thing the server sent.
    pub(super) fn command(&mut self, command: &Command) -> Result<Reply, SmtpError> {
        let reply = self.command_unchecked(command)?;
        self.ensure_nothing_pending()?;
        Ok(reply)
    }

    /// Sends one command and reads its reply, leaving any further buffered bytes alone.
    pub(super) fn command_unchecked(&mut self, command: &Command) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        self.read_greeting()?;
        self.wbuf.clear();
        self.queue(command)?;
        if let Some(notice) = self.flush_queue()? {
            return Ok(notice);
        }
        self.read_reply()
    }

    /// Called before the client writes a command or a pipelined batch: the server speaks only
    /// when spoken to (RFC 5321 §4.2; with PIPELINING, one reply per command, in order, RFC 2920
    /// §3.1), so anything it has sent since its last reply was sent unasked. Read as the reply
    /// to the next command, it would put every later reply one command out of step: the reply
    /// to RSET taken for MAIL's, a recipient accepted that was refused. The look is
    /// non-blocking and costs a few system calls per batch ([`Transport::has_pending_input`]).
    ///
    /// Unasked data fails the connection with [`SmtpError::Protocol`], with one exception: a
    /// complete 421 reply, which RFC 5321 §3.8 lets a server that is shutting down send
    /// "asynchronously from command receipt (on the assumption that the client will receive it
    /// after the next command is issued)". That notice is returned as the reply to the next
    /// command; the connection is closed all the same, as after any 421. The end of the stream
    /// fails as "the server closed the connection", as the read of the next reply would have.
    ///
    /// [`Transport::has_pending_input`]: crate::smtp::transport::Transport::has_pending_input
    pub(super) fn check_unsolicited(&mut self) -> Result<Option<Reply>, SmtpError> {
        self.ensure_usable()?;
        if !self.server_has_spoken()? {
            return Ok(None);
        }
        if self.rbuf.is_empty() {
            // Does not block: data or the end of the stream is waiting.
            self.fill()?;
        }
        // Only what is already here is looked at: the client waits for no more of it.
        if let Ok(Parsed::Complete { reply, .. }) = self.parser.parse(&self.rbuf) {
            self.transcript.server(&reply);
            if reply.code == 421 {
                self.closed_by_server(&reply);
                return Ok(Some(reply));
            }
        }
        let what = excerpt(&self.rbuf);
        Err(self.fail(SmtpError::protocol(
            ProtocolKind::UnaskedData,
            format!(
                "the server sent data that no command asked for (\"{what}\"); the dialogue is \
                 out of step and the connection was closed"
            ),
        )))
    }

    /// RFC 5321 §3.8: after a 421 the server closes the transmission channel; the caller still
    /// gets the reply, but nothing more can be sent.
    fn closed_by_server(&mut self, reply: &Reply) {
        self.shut(format!("the server closed the session: {reply}"));
    }

    /// Called before each write of a message body: the server speaks only after the end-of-data
    /// mark, so a reply waiting now was sent before the message was complete. It is returned
    /// (read whole, within the timeout) so that the caller can stop before the mark: a refusal
    /// mid-body (552, too big) is reported as such, and no early "250" is ever taken for the
    /// verdict.
    pub(super) fn early_reply(&mut self) -> Result<Option<Reply>, SmtpError> {
        if !self.server_has_spoken()? {
            return Ok(None);
        }
        self.read_reply().map(Some)
    }

    /// Whether the server has sent anything since its last reply was read: bytes already
    /// buffered, or waiting in the transport (found out without blocking, see
    /// [`Transport::has_pending_input`]).
    ///
    /// [`Transport::has_pending_input`]: crate::smtp::transport::Transport::has_pending_input
    fn server_has_spoken(&mut self) -> Result<bool, SmtpError> {
        if !self.rbuf.is_empty() {
            return Ok(true);
        }
        let Link::Open(t) = &mut self.link else {
            return Err(self.unusable());
        };
        match t.has_pending_input() {
            Ok(pending) => Ok(pending),
            Err(e) => Err(self.io_failure(e, "checking for unasked server data")),
        }
    }

    /// A reply with more bytes behind it that no command asked for means that the dialogue is
    /// out of step, or that someone is injecting replies: stop.
    pub(super) fn ensure_nothing_pending(&mut self) -> Result<(), SmtpError> {
        if self.rbuf.is_empty() {
            Ok(())
        } else {
            Err(self.fail(SmtpError::protocol(
                ProtocolKind::UnaskedData,
                "the server sent data that no command asked for",
            )))
        }
    }

    /// Reads one complete reply, refilling the buffer as needed. The parser bounds the length
    /// and number of lines, so a hostile server cannot make the buffer grow without limit.
    ///
    /// The timeout covers the whole reply, not each read: a server that trickles a byte at a
    /// time, each within the timeout, would otherwise hold the client for as long as it likes.
    /// Each read after the first is given only what is left of the timeout; the full timeout is
    /// set again once the reply is complete.
    pub(super) fn read_reply(&mut self) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        let timeout = self.config.timeout;
        let deadline = Instant::now().checked_add(timeout);
        let mut shortened = false;
        let reply = loop {
            match self.parser.parse(&self.rbuf) {
                Ok(Parsed::Complete { reply, consumed }) => {
                    self.rbuf.drain(..consumed);
                    break reply;
                }
                Ok(Parsed::Partial) => {}
                Err(e) => return Err(self.fail(SmtpError::malformed_reply(e))),
            }
            if self.rbuf.len() > MAX_BUFFERED_REPLY {
                return Err(self.fail(SmtpError::protocol(
                    ProtocolKind::MalformedReply,
                    "the server's reply is too long",
                )));
            }
            if !self.rbuf.is_empty() {
                // Part of the reply is here: the rest must come within what is left.
                let left =
                    deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
                if left.is_zero() {
                    return Err(self.fail(SmtpError::timeout("the rest of the server's reply")));
                }
                self.set_read_limit(left)?;
                shortened = true;
            }
            self.fill()?;
        };
        if shortened {
            self.set_read_limit(timeout)?;
        }
        self.transcript.server(&reply);
        if reply.code == 421 {
            self.closed_by_server(&reply);
        }
        Ok(reply)
    }

    /// Sets the transport's limit for each read and write (the configured timeout is unchanged).
    fn set_read_limit(&mut self, limit: std::time::Duration) -> Result<(), SmtpError> {
        let Link::Open(t) = &mut self.link else {
            return Err(self.unusable());
        };
        match t.set_timeout(Some(limit)) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.io_failure(e, "setting the timeout")),
        }
    }

    /// Reads whatever the transport has (at least one byte) into the reply buffer.
    fn fill(&mut self) -> Result<(), SmtpError> {
        let Link::Open(t) = &mut self.link else {
            return Err(self.unusable());
        };
        let start = self.rbuf.len();
        self.rbuf.resize(start + READ_CHUNK, 0);
        let result = loop {
            match t.read(&mut self.rbuf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match result {
            Ok(0) => {
                self.rbuf.truncate(start);
                let eof = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                );
                let err = self.connect_error(eof);
                Err(self.fail(err))
            }
            Ok(n) => {
                self.rbuf.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                self.rbuf.truncate(start);
                Err(self.io_failure(e, "the server's reply"))
            }
        }
    }
}

/// The start of unasked data, printable, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let mut text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)])
        .escape_debug()
        .collect();
    if bytes.len() > MAX {
        text.push('…');
    }
    text
}
