//! The SMTP client's error type.
//!
//! [`SmtpError`] says what went wrong in terms a caller can act on, and carries the data (the
//! reply, the command in its redacted form, the recipients refused) for programs that decide by
//! themselves. No message ever contains a password, a token or an AUTH payload: commands are kept
//! in their redacted form, and credentials are only held in [`crate::smtp::auth::Secret`]s.

use std::fmt;
use std::io;

use super::reply::{Reply, ReplyError};
use crate::{BoxError, MessageError};

/// Which step of the dialogue a refused reply answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// The server's greeting after connecting (RFC 5321 §4.3.1).
    Greeting,
    /// EHLO or HELO.
    Ehlo,
    /// MAIL FROM: the sender was refused.
    Sender,
    /// RCPT TO: a recipient was refused.
    Recipient,
    /// DATA, or the end of the message data.
    Data,
    /// Anything else (STARTTLS, RSET, NOOP, QUIT).
    Other,
}

/// Everything that can go wrong while talking SMTP.
#[derive(Debug)]
#[non_exhaustive]
pub enum SmtpError {
    /// The connection could not be made, or the peer refused, reset or closed it.
    Connect {
        /// The host name or address the client was talking to.
        server: String,
        /// The port.
        port: u16,
        /// The underlying error.
        source: io::Error,
    },
    /// An operation did not finish within the timeout; the connection has been given up.
    Timeout {
        /// What the client was waiting for ("the greeting", "the reply to DATA", ...).
        during: String,
    },
    /// The TLS handshake or the TLS policy failed (untrusted certificate, STARTTLS required but not
    /// offered or refused, ...).
    Tls(String),
    /// Authentication failed or could not be attempted.
    Auth {
        /// The server's reply, when the server refused.
        reply: Option<Reply>,
        /// What happened, without any credential.
        reason: String,
    },
    /// The server broke the protocol: an unparseable reply, data where none belongs, plaintext
    /// injected after STARTTLS.
    Protocol(String),
    /// The server answered a command with an error reply.
    Reply {
        /// The command, in its redacted form (see [`crate::smtp::command::Command::redacted`]).
        command: String,
        /// The reply.
        reply: Reply,
        /// Which step it was.
        kind: ReplyKind,
    },
    /// The server refused every recipient; no message data was sent.
    RecipientsRefused {
        /// Each refused address with the server's reply.
        refused: Vec<(String, Reply)>,
    },
    /// The message is larger than the limit the server announced with SIZE (RFC 1870).
    SizeExceeded {
        /// The message size, in octets.
        size: u64,
        /// The server's limit, in octets.
        limit: u64,
    },
    /// An argument was refused before any byte was written (a control character in an address, an
    /// invalid EHLO domain, ...).
    InvalidInput(String),
    /// The message source failed; the message was not completed.
    Source(BoxError),
    /// The message could not be encoded.
    Message(MessageError),
    /// Another I/O error.
    Io(io::Error),
}

impl SmtpError {
    /// An [`SmtpError::Timeout`] while waiting for `during`.
    pub fn timeout(during: impl Into<String>) -> Self {
        Self::Timeout {
            during: during.into(),
        }
    }

    /// An [`SmtpError::InvalidInput`] saying `reason`.
    pub fn invalid_input(reason: impl Into<String>) -> Self {
        Self::InvalidInput(reason.into())
    }

    /// An [`SmtpError::Protocol`] for an unparseable reply.
    #[must_use]
    pub fn malformed_reply(error: ReplyError) -> Self {
        Self::Protocol(error.to_string())
    }

    /// True when trying again later may succeed: a 4xx reply (RFC 5321 §4.2.1, "transient negative
    /// completion"), some recipient refused with 4xx, or a connection that failed or timed out.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Reply { reply, .. }
            | Self::Auth {
                reply: Some(reply), ..
            } => reply.is_transient(),
            Self::RecipientsRefused { refused } => refused.iter().any(|(_, r)| r.is_transient()),
            Self::Connect { .. } | Self::Timeout { .. } | Self::Io(_) => true,
            _ => false,
        }
    }

    /// True when trying again unchanged will fail again: a 5xx reply, every recipient refused with
    /// 5xx, a message over the server's size limit, or an argument refused before sending.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Reply { reply, .. }
            | Self::Auth {
                reply: Some(reply), ..
            } => reply.is_permanent(),
            Self::RecipientsRefused { refused } => {
                !refused.is_empty() && refused.iter().all(|(_, r)| r.is_permanent())
            }
            Self::SizeExceeded { .. } | Self::InvalidInput(_) | Self::Message(_) => true,
            _ => false,
        }
    }

    /// True when an operation ran out of time.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Connect { source: e, .. } | Self::Io(e) => {
                matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                )
            }
            _ => false,
        }
    }

    /// The server's reply behind the error, if there is one (the first refused recipient's for
    /// [`SmtpError::RecipientsRefused`]).
    #[must_use]
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Reply { reply, .. }
            | Self::Auth {
                reply: Some(reply), ..
            } => Some(reply),
            Self::RecipientsRefused { refused } => refused.first().map(|(_, r)| r),
            _ => None,
        }
    }
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect {
                server,
                port,
                source,
            } => write!(
                f,
                "connection to {server}:{port} failed or was closed by the server: {source} \
                 (check the server name, the port and that the server is running)"
            ),
            Self::Timeout { during } => write!(
                f,
                "timed out waiting for {during}; the connection was closed \
                 (the server may be overloaded: try again later or raise the timeout)"
            ),
            Self::Tls(reason) => write!(f, "TLS failed: {reason}"),
            Self::Auth {
                reply: Some(reply),
                reason,
            } => {
                write!(
                    f,
                    "authentication failed: {reason}; the server said: {reply}"
                )
            }
            Self::Auth {
                reply: None,
                reason,
            } => write!(f, "authentication failed: {reason}"),
            Self::Protocol(reason) => write!(
                f,
                "SMTP protocol error: {reason}; the connection was closed because it can no longer \
                 be trusted"
            ),
            Self::Reply {
                command,
                reply,
                kind,
            } => {
                let what = match kind {
                    ReplyKind::Greeting => "the server refused the connection".to_owned(),
                    ReplyKind::Ehlo => format!("the server refused the greeting {command}"),
                    ReplyKind::Sender => format!("the server refused the sender ({command})"),
                    ReplyKind::Recipient => format!("the server refused the recipient ({command})"),
                    ReplyKind::Data => "the server refused the message data".to_owned(),
                    ReplyKind::Other => format!("the server refused {command}"),
                };
                let advice = if reply.is_transient() {
                    "a temporary failure: try again later"
                } else {
                    "a permanent failure: do not retry unchanged"
                };
                write!(f, "{what}: {reply} ({advice})")
            }
            Self::RecipientsRefused { refused } => {
                write!(
                    f,
                    "the server refused every recipient, so nothing was sent:"
                )?;
                for (i, (address, reply)) in refused.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{address}: {reply}")?;
                }
                Ok(())
            }
            Self::SizeExceeded { size, limit } => write!(
                f,
                "the message is {size} octets but the server accepts at most {limit} \
                 (RFC 1870 SIZE); nothing was sent: make the message smaller"
            ),
            Self::InvalidInput(reason) => write!(f, "invalid argument, nothing was sent: {reason}"),
            Self::Source(e) => write!(
                f,
                "the message source failed, so the message was abandoned and the connection \
                 closed without ending the data: {e}"
            ),
            Self::Message(e) => write!(f, "the message cannot be encoded: {e}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for SmtpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { source, .. } => Some(source),
            Self::Source(e) => Some(e.as_ref()),
            Self::Message(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MessageError> for SmtpError {
    fn from(e: MessageError) -> Self {
        Self::Message(e)
    }
}

impl From<crate::Error> for SmtpError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Message(e) => Self::Message(e),
            crate::Error::Source(e) => Self::Source(e),
        }
    }
}

impl From<ReplyError> for SmtpError {
    fn from(e: ReplyError) -> Self {
        Self::malformed_reply(e)
    }
}
