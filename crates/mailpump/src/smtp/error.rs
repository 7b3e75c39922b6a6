//! The SMTP client's error type.
//!
//! [`SmtpError`] says what went wrong in terms a caller can act on, and carries the data (the
//! reply, the command in its redacted form, the recipients refused) for programs that decide by
//! themselves. No message ever contains a password, a token or an AUTH payload: commands are kept
//! in their redacted form, and credentials are only held in [`crate::smtp::auth::Secret`]s.

use std::fmt;
use std::io;

use super::command::Command;
use super::reply::{Reply, ReplyError};
use crate::{BoxError, MessageError};

/// Which step of the dialogue a refused reply answered.
///
/// ```
/// use mailpump::SmtpError;
/// use mailpump::smtp::error::ReplyKind;
///
/// fn describe(error: &SmtpError) -> &'static str {
///     match error {
///         SmtpError::Reply { kind: ReplyKind::Sender, .. } => "the sender was refused",
///         SmtpError::Reply { kind: ReplyKind::Recipient, .. } => "a recipient was refused",
///         SmtpError::Reply { .. } => "the server refused",
///         _ => "something else",
///     }
/// }
/// # let _ = describe;
/// ```
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
    /// The DATA command, before any of the message was sent.
    Data,
    /// The end-of-data mark: the server refused the message it received.
    Message,
    /// Anything else (STARTTLS, RSET, NOOP, QUIT).
    Other,
}

impl ReplyKind {
    /// The kind's stable name (`"sender-refused"`, ...), as [`SmtpError::kind`] gives it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Greeting => "greeting-refused",
            Self::Ehlo => "hello-refused",
            Self::Sender => "sender-refused",
            Self::Recipient => "recipient-refused",
            Self::Data => "data-refused",
            Self::Message => "message-refused",
            Self::Other => "command-refused",
        }
    }
}

/// Why a connection could not be made, or why it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectKind {
    /// The server's name did not resolve to an address.
    NameNotResolved,
    /// The server's host answered that nothing listens on the port.
    Refused,
    /// No route to the host or its network.
    Unreachable,
    /// Connecting took longer than the timeout.
    TimedOut,
    /// The connection was closed or reset after it was made, before a message's end-of-data mark
    /// (so no message was left half-delivered).
    Lost,
    /// The session was used after `quit`, `close` or an error that closed it.
    Closed,
    /// The connection was made but no greeting came within the timeout: what a port that
    /// speaks TLS from the first byte does to a client waiting in plain text.
    NoGreeting,
}

impl ConnectKind {
    /// The kind's stable name, as [`SmtpError::kind`] gives it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NameNotResolved => "name-not-resolved",
            Self::Refused => "connection-refused",
            Self::Unreachable => "unreachable",
            Self::TimedOut => "connect-timeout",
            Self::Lost => "connection-lost",
            Self::Closed => "closed",
            Self::NoGreeting => "no-greeting",
        }
    }

    /// The kind of a failed connection attempt, from the I/O error it gave.
    #[must_use]
    pub fn of_connect_error(error: &io::Error) -> Self {
        if super::transport::is_unresolved(error) {
            return Self::NameNotResolved;
        }
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Self::Refused,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Self::TimedOut,
            io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => Self::Unreachable,
            _ => Self::Lost,
        }
    }
}

/// What went wrong with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsKind {
    /// The policy requires STARTTLS and the server does not offer it.
    NotOffered,
    /// The server answered STARTTLS with a refusal.
    Refused,
    /// The certificate was issued by an authority the client does not trust.
    UnknownIssuer,
    /// The certificate has expired or is not valid yet.
    Expired,
    /// The certificate is not valid for the server's name.
    NameMismatch,
    /// The server presented a self-signed certificate that is not in `cafile`.
    SelfSigned,
    /// No pinned fingerprint matches the server's certificate.
    FingerprintMismatch,
    /// The certificate was revoked.
    Revoked,
    /// The certificate is invalid in another way (a bad signature, an unsupported key, ...).
    BadCertificate,
    /// Client and server share no protocol version or cipher suite.
    NoCommonProtocol,
    /// The server asks for a client certificate.
    ClientCertificateRequired,
    /// The server aborted the handshake with an alert of its own.
    ServerFailed,
    /// The server answered the TLS handshake with a plain SMTP reply: the port speaks plain
    /// SMTP (use STARTTLS there), not TLS from the first byte.
    PlainSmtpPort,
    /// The handshake failed otherwise (a corrupt record, a server that does not speak TLS, ...).
    Handshake,
    /// A certificate, key or CA file could not be read or used.
    Config,
    /// mailpump was built without the `tls` feature.
    NotBuilt,
}

impl TlsKind {
    /// The kind's stable name, as [`SmtpError::kind`] gives it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotOffered => "tls-not-offered",
            Self::Refused => "tls-refused",
            Self::UnknownIssuer => "certificate-unknown-issuer",
            Self::Expired => "certificate-expired",
            Self::NameMismatch => "certificate-name-mismatch",
            Self::SelfSigned => "certificate-self-signed",
            Self::FingerprintMismatch => "certificate-fingerprint-mismatch",
            Self::Revoked => "certificate-revoked",
            Self::BadCertificate => "certificate-invalid",
            Self::NoCommonProtocol => "tls-no-common-protocol",
            Self::ClientCertificateRequired => "tls-client-certificate-required",
            Self::ServerFailed => "tls-server-failed",
            Self::PlainSmtpPort => "tls-plain-port",
            Self::Handshake => "tls-handshake",
            Self::Config => "tls-config",
            Self::NotBuilt => "tls-not-built",
        }
    }
}

/// Why authentication failed or was not attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthKind {
    /// The server offers no mechanism the client can use with these credentials.
    NoMechanism,
    /// The server refused the credentials (or AUTH itself).
    Refused,
    /// The credentials would cross an unencrypted connection to a remote server.
    Insecure,
    /// The server's challenges cannot be answered (not base64, too many, unexpected).
    Exchange,
}

impl AuthKind {
    /// The kind's stable name, as [`SmtpError::kind`] gives it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoMechanism => "auth-no-mechanism",
            Self::Refused => "auth-refused",
            Self::Insecure => "auth-insecure",
            Self::Exchange => "auth-exchange",
        }
    }
}

/// How the server broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolKind {
    /// A reply that cannot be parsed, or one too long.
    MalformedReply,
    /// A well-formed reply that cannot answer the command it follows (a 250 to DATA, a 354 to
    /// RSET): the dialogue is out of step.
    UnexpectedReply,
    /// Data the server sent when no reply was due (RFC 5321 §4.2), including plaintext after
    /// its STARTTLS reply (response injection).
    UnaskedData,
}

impl ProtocolKind {
    /// The kind's stable name, as [`SmtpError::kind`] gives it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedReply => "malformed-reply",
            Self::UnexpectedReply => "unexpected-reply",
            Self::UnaskedData => "unasked-data",
        }
    }
}

/// Everything that can go wrong while talking SMTP.
///
/// Each variant carries a kind a program can branch on ([`SmtpError::kind`] names it), and the
/// data behind it; `Display` turns them into a sentence that says what happened and what to do.
///
/// ```
/// use mailpump::{Reply, SmtpError};
/// use mailpump::smtp::command::Command;
///
/// let busy = SmtpError::refused(&Command::Data, Reply::new(451, vec!["4.3.0 Try again later".into()]));
/// assert!(busy.is_transient() && !busy.is_permanent());
/// assert_eq!(busy.reply().map(|r| r.code), Some(451));
/// assert_eq!(busy.kind(), "data-refused");
/// assert!(SmtpError::timeout("the greeting").is_timeout());
/// assert!(SmtpError::invalid_input("bad domain").is_permanent());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SmtpError {
    /// The connection could not be made, or it was lost before a message's end-of-data mark.
    Connect {
        /// The host name or address the client was talking to.
        server: String,
        /// The port.
        port: u16,
        /// What happened.
        kind: ConnectKind,
        /// The underlying error.
        source: io::Error,
    },
    /// A read or write did not finish within the timeout, before any message's end-of-data mark;
    /// the connection has been given up.
    Timeout {
        /// What the client was waiting for ("the greeting", "the reply to DATA", ...).
        during: String,
    },
    /// The end-of-data mark was written but no verdict came (the connection was lost, the wait
    /// timed out, or the answer was no verdict): the server may have accepted the message.
    /// Retrying may deliver it twice.
    OutcomeUnknown {
        /// What happened after the mark.
        reason: String,
        /// The I/O error behind it, if any.
        source: Option<io::Error>,
    },
    /// TLS could not be used as the policy requires.
    Tls {
        /// What failed.
        kind: TlsKind,
        /// The details, in words.
        reason: String,
    },
    /// Authentication failed or could not be attempted.
    Auth {
        /// What failed.
        kind: AuthKind,
        /// The server's reply, when the server refused.
        reply: Option<Reply>,
        /// What happened, without any credential.
        reason: String,
    },
    /// The server broke the protocol.
    Protocol {
        /// How.
        kind: ProtocolKind,
        /// The details, in words.
        reason: String,
    },
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
    /// LMTP (RFC 2033 §4.2): the server took the data but gave no recipient a 2xx verdict; the
    /// message was delivered to nobody. Kind `message-refused`.
    Undelivered {
        /// Each recipient accepted at RCPT with its verdict (a 4xx or 5xx), in RCPT order.
        verdicts: Vec<(String, Reply)>,
        /// The recipients refused at RCPT, with the server's reply to each.
        refused: Vec<(String, Reply)>,
    },
    /// LMTP (RFC 2033 §4.2): the end-of-data mark was written and the per-recipient verdicts
    /// stopped before the last one (the connection was lost, the wait timed out, or the server
    /// said something that is no verdict). The verdicts read are final; the recipients in
    /// `unknown` may or may not have the message. Kind `outcome-unknown`: never retried.
    RecipientsUnknown {
        /// The verdicts read, in RCPT order (2xx delivered, 4xx deferred, 5xx refused).
        verdicts: Vec<(String, Reply)>,
        /// The recipients accepted at RCPT that got no verdict.
        unknown: Vec<String>,
        /// What happened after the mark.
        reason: String,
        /// The I/O error behind it, if any.
        source: Option<io::Error>,
    },
    /// The message is larger than the limit the server announced with SIZE (RFC 1870).
    SizeExceeded {
        /// The message size, in octets.
        size: u64,
        /// The server's limit, in octets.
        limit: u64,
    },
    /// The message needs an SMTP extension that the server does not offer (or that the client
    /// was told not to use); nothing of the transaction was written.
    NotOffered {
        /// The extension, as the server would announce it (`BINARYMIME`).
        extension: &'static str,
        /// What is missing and what to do, in words.
        reason: String,
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
    ///
    /// ```
    /// use mailpump::SmtpError;
    ///
    /// let error = SmtpError::timeout("the reply to DATA");
    /// assert!(error.is_timeout() && error.is_transient());
    /// ```
    pub fn timeout(during: impl Into<String>) -> Self {
        Self::Timeout {
            during: during.into(),
        }
    }

    /// An [`SmtpError::InvalidInput`] saying `reason`.
    ///
    /// ```
    /// use mailpump::SmtpError;
    ///
    /// assert!(matches!(SmtpError::invalid_input("no recipients"), SmtpError::InvalidInput(r) if r == "no recipients"));
    /// ```
    pub fn invalid_input(reason: impl Into<String>) -> Self {
        Self::InvalidInput(reason.into())
    }

    /// An [`SmtpError::Tls`] of `kind`.
    ///
    /// ```
    /// use mailpump::SmtpError;
    /// use mailpump::smtp::error::TlsKind;
    ///
    /// let error = SmtpError::tls(TlsKind::NotOffered, "the server does not offer STARTTLS");
    /// assert_eq!(error.kind(), "tls-not-offered");
    /// ```
    pub fn tls(kind: TlsKind, reason: impl Into<String>) -> Self {
        Self::Tls {
            kind,
            reason: reason.into(),
        }
    }

    /// An [`SmtpError::Protocol`] of `kind`.
    ///
    /// ```
    /// use mailpump::SmtpError;
    /// use mailpump::smtp::error::ProtocolKind;
    ///
    /// let error = SmtpError::protocol(ProtocolKind::UnaskedData, "a reply nobody asked for");
    /// assert_eq!(error.kind(), "unasked-data");
    /// ```
    pub fn protocol(kind: ProtocolKind, reason: impl Into<String>) -> Self {
        Self::Protocol {
            kind,
            reason: reason.into(),
        }
    }

    /// An [`SmtpError::Auth`] of `kind`, without a reply.
    ///
    /// ```
    /// use mailpump::SmtpError;
    /// use mailpump::smtp::error::AuthKind;
    ///
    /// assert_eq!(SmtpError::auth(AuthKind::Insecure, "no TLS").kind(), "auth-insecure");
    /// ```
    pub fn auth(kind: AuthKind, reason: impl Into<String>) -> Self {
        Self::Auth {
            kind,
            reply: None,
            reason: reason.into(),
        }
    }

    /// An [`SmtpError::Reply`] for `reply` to `command`, with the command in its redacted form and
    /// the kind it implies.
    ///
    /// ```
    /// use mailpump::smtp::command::Command;
    /// use mailpump::smtp::error::ReplyKind;
    /// use mailpump::{Address, Reply, SmtpError};
    ///
    /// let rcpt = Command::Rcpt { to: Address::parse("x@example.org")?, dsn: Default::default() };
    /// let error = SmtpError::refused(&rcpt, Reply::new(550, vec!["no such user".into()]));
    /// assert!(matches!(error, SmtpError::Reply { kind: ReplyKind::Recipient, ref command, .. } if command == "RCPT TO:<x@example.org>"));
    /// assert!(error.is_permanent());
    /// # Ok::<(), SmtpError>(())
    /// ```
    #[must_use]
    pub fn refused(command: &Command, reply: Reply) -> Self {
        Self::Reply {
            command: command.redacted(),
            reply,
            kind: command.reply_kind(),
        }
    }

    /// An [`SmtpError::Reply`] for a greeting other than 220 (RFC 5321 §4.3.1: typically 554).
    ///
    /// ```
    /// use mailpump::smtp::error::ReplyKind;
    /// use mailpump::{Reply, SmtpError};
    ///
    /// let error = SmtpError::greeting_refused(Reply::new(554, vec!["no service".into()]));
    /// assert!(matches!(error, SmtpError::Reply { kind: ReplyKind::Greeting, .. }));
    /// ```
    #[must_use]
    pub fn greeting_refused(reply: Reply) -> Self {
        Self::Reply {
            command: String::new(),
            reply,
            kind: ReplyKind::Greeting,
        }
    }

    /// An [`SmtpError::Reply`] for a negative verdict on a message (the reply to its end-of-data
    /// mark).
    ///
    /// ```
    /// use mailpump::{Reply, SmtpError};
    ///
    /// let error = SmtpError::message_refused(Reply::new(554, vec!["5.7.1 spam".into()]));
    /// assert_eq!(error.kind(), "message-refused");
    /// ```
    #[must_use]
    pub fn message_refused(reply: Reply) -> Self {
        Self::Reply {
            command: "end of data".to_owned(),
            reply,
            kind: ReplyKind::Message,
        }
    }

    /// An [`SmtpError::Protocol`] for an unparseable reply.
    ///
    /// ```
    /// use mailpump::SmtpError;
    /// use mailpump::smtp::reply::ReplyError;
    ///
    /// assert_eq!(SmtpError::malformed_reply(ReplyError::BareCr).kind(), "malformed-reply");
    /// ```
    #[must_use]
    pub fn malformed_reply(error: ReplyError) -> Self {
        Self::protocol(ProtocolKind::MalformedReply, error.to_string())
    }

    /// The kind of failure as a stable, hyphenated name: `"connection-refused"`,
    /// `"certificate-expired"`, `"outcome-unknown"`, `"recipient-refused"`, ... A program
    /// decides by it (the Python exceptions carry it as `kind`); the message is for people.
    ///
    /// ```
    /// use mailpump::SmtpError;
    ///
    /// assert_eq!(SmtpError::invalid_input("x").kind(), "invalid-input");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect { kind, .. } => kind.as_str(),
            Self::Timeout { .. } => "timeout",
            Self::OutcomeUnknown { .. } | Self::RecipientsUnknown { .. } => "outcome-unknown",
            Self::Undelivered { .. } => "message-refused",
            Self::Tls { kind, .. } => kind.as_str(),
            Self::Auth { kind, .. } => kind.as_str(),
            Self::Protocol { kind, .. } => kind.as_str(),
            Self::Reply { kind, .. } => kind.as_str(),
            Self::RecipientsRefused { .. } => "recipients-refused",
            Self::SizeExceeded { .. } => "size-exceeded",
            Self::NotOffered { .. } => "extension-not-offered",
            Self::InvalidInput(_) => "invalid-input",
            Self::Source(_) => "source-failed",
            Self::Message(_) => "invalid-message",
            Self::Io(_) => "io",
        }
    }

    /// True when trying the same thing again later may succeed, and cannot deliver a message
    /// twice: a 4xx reply (RFC 5321 §4.2.1, "transient negative completion"), some recipient
    /// refused with 4xx, a connection refused, unreachable, lost or timed out before a message's
    /// end-of-data mark. Never true for [`SmtpError::OutcomeUnknown`].
    ///
    /// ```
    /// use mailpump::{Reply, SmtpError};
    ///
    /// let greylisted = SmtpError::RecipientsRefused { refused: vec![("a@x.org".into(), Reply::new(450, vec!["later".into()]))] };
    /// assert!(greylisted.is_transient() && !greylisted.is_permanent());
    /// ```
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Reply { reply, .. }
            | Self::Auth {
                reply: Some(reply), ..
            } => reply.is_transient(),
            Self::RecipientsRefused { refused } => refused.iter().any(|(_, r)| r.is_transient()),
            Self::Undelivered { verdicts, .. } => verdicts.iter().any(|(_, r)| r.is_transient()),
            Self::Connect { kind, .. } => {
                !matches!(kind, ConnectKind::NameNotResolved | ConnectKind::Closed)
            }
            Self::Timeout { .. } | Self::Io(_) => true,
            _ => false,
        }
    }

    /// True when trying again unchanged will fail again: a 5xx reply, every recipient refused with
    /// 5xx, a message over the server's size limit, or an argument refused before sending.
    ///
    /// ```
    /// use mailpump::SmtpError;
    ///
    /// assert!(SmtpError::SizeExceeded { size: 30_000_000, limit: 25_000_000 }.is_permanent());
    /// ```
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
            Self::Undelivered { verdicts, .. } => {
                !verdicts.is_empty() && verdicts.iter().all(|(_, r)| r.is_permanent())
            }
            Self::SizeExceeded { .. }
            | Self::NotOffered { .. }
            | Self::InvalidInput(_)
            | Self::Message(_) => true,
            _ => false,
        }
    }

    /// True when an operation ran out of time (connecting, or waiting for a reply, before or
    /// after a message's end-of-data mark).
    ///
    /// ```
    /// use mailpump::SmtpError;
    ///
    /// assert!(SmtpError::Io(std::io::ErrorKind::TimedOut.into()).is_timeout());
    /// ```
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Connect { kind, .. } => {
                matches!(kind, ConnectKind::TimedOut | ConnectKind::NoGreeting)
            }
            Self::OutcomeUnknown {
                source: Some(e), ..
            }
            | Self::RecipientsUnknown {
                source: Some(e), ..
            }
            | Self::Io(e) => is_timeout_kind(e.kind()),
            _ => false,
        }
    }

    /// True when a message's end-of-data mark was written and no verdict came: the message may
    /// have been delivered, so it must not be sent again without checking.
    ///
    /// ```
    /// use mailpump::SmtpError;
    ///
    /// let error = SmtpError::OutcomeUnknown { reason: "no verdict".into(), source: None };
    /// assert!(error.is_outcome_unknown() && !error.is_transient());
    /// ```
    #[must_use]
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::OutcomeUnknown { .. } | Self::RecipientsUnknown { .. }
        )
    }

    /// The server's reply behind the error, if there is one (the first refused recipient's for
    /// [`SmtpError::RecipientsRefused`]).
    ///
    /// ```
    /// use mailpump::{Reply, SmtpError};
    /// use mailpump::smtp::error::AuthKind;
    ///
    /// let reply = Reply::new(535, vec!["5.7.8 bad credentials".into()]);
    /// let error = SmtpError::Auth { kind: AuthKind::Refused, reply: Some(reply), reason: "refused".into() };
    /// assert_eq!(error.reply().and_then(|r| r.enhanced).map(|e| e.to_string()), Some("5.7.8".into()));
    /// ```
    #[must_use]
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Reply { reply, .. }
            | Self::Auth {
                reply: Some(reply), ..
            } => Some(reply),
            Self::RecipientsRefused { refused } => refused.first().map(|(_, r)| r),
            Self::Undelivered { verdicts, .. } => verdicts.first().map(|(_, r)| r),
            _ => None,
        }
    }

    /// This error, reclassified for a failure after a message's end-of-data mark was written: a
    /// lost connection, a timeout, an I/O error or an answer that cannot be understood there
    /// leaves the outcome unknown.
    #[must_use]
    pub(crate) fn after_end_of_data(self) -> Self {
        match self {
            Self::Connect {
                kind: ConnectKind::Lost,
                source,
                ..
            }
            | Self::Io(source) => Self::OutcomeUnknown {
                reason: format!("the connection was lost while waiting for the verdict ({source})"),
                source: Some(source),
            },
            Self::Timeout { during } => Self::OutcomeUnknown {
                reason: format!("timed out waiting for {during}"),
                source: Some(io::ErrorKind::TimedOut.into()),
            },
            Self::Protocol { reason, .. } => Self::OutcomeUnknown {
                reason: format!("the server's answer could not be understood ({reason})"),
                source: None,
            },
            other => other,
        }
    }
}

fn is_timeout_kind(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect {
                server,
                port,
                kind,
                source,
            } => fmt_connect(f, server, *port, *kind, source),
            Self::Timeout { during } => write!(
                f,
                "timed out waiting for {during}; the connection was closed and no message was \
                 left half-sent (the server may be overloaded: try again later or raise the \
                 timeout)"
            ),
            Self::OutcomeUnknown { reason, .. } => write!(
                f,
                "the whole message was sent but no verdict came: {reason}. The server may have \
                 accepted it: check before sending it again, or it may be delivered twice"
            ),
            Self::Tls { reason, .. } => write!(f, "TLS failed: {reason}"),
            Self::Auth {
                reply: Some(reply),
                reason,
                ..
            } => {
                write!(
                    f,
                    "authentication failed: {reason}; the server said: {reply}"
                )
            }
            Self::Auth {
                reply: None,
                reason,
                ..
            } => write!(f, "authentication failed: {reason}"),
            Self::Protocol { reason, .. } => write!(
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
                    ReplyKind::Data => "the server refused to take the message data".to_owned(),
                    ReplyKind::Message => "the server refused the message".to_owned(),
                    ReplyKind::Other => format!("the server refused {command}"),
                };
                // RFC 5321 §4.2.1: the first digit says whether to try again.
                let advice = if reply.is_transient() {
                    "a temporary failure: try again later"
                } else if reply.is_permanent() {
                    "a permanent failure: do not retry unchanged"
                } else {
                    "a reply that is neither success nor failure at this step"
                };
                write!(f, "{what}: {reply} ({advice})")
            }
            Self::RecipientsRefused { refused } => {
                write!(
                    f,
                    "the server refused every recipient, so nothing was sent:"
                )?;
                fmt_each_reply(f, refused.iter())
            }
            Self::Undelivered { .. } | Self::RecipientsUnknown { .. } => fmt_lmtp(f, self),
            Self::SizeExceeded { size, limit } => write!(
                f,
                "the message is {size} octets but the server accepts at most {limit} \
                 (RFC 1870 SIZE); nothing was sent: make the message smaller"
            ),
            Self::NotOffered { extension, reason } => write!(
                f,
                "the message needs {extension}, which cannot be used here: {reason}; nothing \
                 was sent"
            ),
            Self::InvalidInput(reason) => write!(f, "invalid argument, nothing was sent: {reason}"),
            Self::Source(e) => write!(
                f,
                "the message source failed, so the message was abandoned before its end of \
                 data and nothing of it is delivered: {e}"
            ),
            Self::Message(e) => write!(f, "the message cannot be encoded: {e}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

/// The sentences for LMTP's per-recipient outcomes ([`SmtpError::Undelivered`],
/// [`SmtpError::RecipientsUnknown`]).
fn fmt_lmtp(f: &mut fmt::Formatter<'_>, error: &SmtpError) -> fmt::Result {
    match error {
        SmtpError::Undelivered { verdicts, refused } => {
            write!(
                f,
                "the server took the message but delivered it to no recipient:"
            )?;
            fmt_each_reply(f, verdicts.iter().chain(refused))?;
            let advice = if error.is_transient() {
                "those refused with 4xx may be sent it again later"
            } else {
                "every refusal is permanent: do not retry unchanged"
            };
            write!(f, " ({advice})")
        }
        SmtpError::RecipientsUnknown {
            verdicts,
            unknown,
            reason,
            ..
        } => {
            write!(
                f,
                "the whole message was sent, and the server gave its verdict for {} of {} \
                 recipients, then no more ({reason}); whether {} received it is unknown: check \
                 before sending it to them again, or they may get it twice",
                verdicts.len(),
                verdicts.len() + unknown.len(),
                unknown.join(", ")
            )?;
            if !verdicts.is_empty() {
                f.write_str(". Verdicts given:")?;
                fmt_each_reply(f, verdicts.iter())?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// ` a@b: 250 ok; c@d: 550 no such user`: each address with its reply.
fn fmt_each_reply<'a>(
    f: &mut fmt::Formatter<'_>,
    replies: impl Iterator<Item = &'a (String, Reply)>,
) -> fmt::Result {
    for (i, (address, reply)) in replies.enumerate() {
        let sep = if i == 0 { " " } else { "; " };
        write!(f, "{sep}{address}: {reply}")?;
    }
    Ok(())
}

/// The sentence for [`SmtpError::Connect`].
fn fmt_connect(
    f: &mut fmt::Formatter<'_>,
    server: &str,
    port: u16,
    kind: ConnectKind,
    source: &io::Error,
) -> fmt::Result {
    if let Some(path) = super::transport::unix_socket_path(server) {
        let path = path.display();
        return match kind {
            ConnectKind::Refused => write!(
                f,
                "could not connect to the Unix socket {path}: {source} (check the path, its \
                 permissions, and that the server is running)"
            ),
            ConnectKind::Lost => write!(
                f,
                "the connection to the Unix socket {path} was lost: {source}; no message was \
                 left half-sent (try again later)"
            ),
            ConnectKind::Closed => write!(f, "{source}"),
            ConnectKind::NoGreeting => write!(
                f,
                "no greeting from the Unix socket {path} within the timeout: the server is slow \
                 to greet (try again later or raise the timeout), or does not speak SMTP or LMTP"
            ),
            _ => write!(f, "the Unix socket {path}: {source}"),
        };
    }
    // An IPv6 address needs brackets before its port.
    let host = if server.contains(':') {
        format!("[{server}]:{port}")
    } else {
        format!("{server}:{port}")
    };
    match kind {
        ConnectKind::NameNotResolved => write!(
            f,
            "could not connect to {host}: the name {server:?} could not be resolved \
             to an address ({source}); check the server name"
        ),
        ConnectKind::Refused => write!(
            f,
            "could not connect to {host}: the connection was refused (check the port \
             and that the server is running)"
        ),
        ConnectKind::Unreachable => write!(
            f,
            "could not connect to {host}: the host is unreachable ({source}); check \
             the address and the network"
        ),
        ConnectKind::TimedOut => write!(
            f,
            "could not connect to {host}: no answer within the timeout (a firewall may \
             drop the packets, or the server is down)"
        ),
        ConnectKind::Lost => write!(
            f,
            "the connection to {host} was lost (reset or closed by the server): \
             {source}; no message was left half-sent (try again later)"
        ),
        ConnectKind::Closed => write!(f, "{source}"),
        ConnectKind::NoGreeting => write!(
            f,
            "no greeting from {host} within the timeout: if this port speaks TLS from the \
             first byte (SMTPS, usually 465), use tls='implicit'; otherwise the server is slow \
             to greet (try again later or raise the timeout)"
        ),
    }
}

impl std::error::Error for SmtpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { source, .. }
            | Self::OutcomeUnknown {
                source: Some(source),
                ..
            }
            | Self::RecipientsUnknown {
                source: Some(source),
                ..
            } => Some(source),
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::smtp::auth::Mechanism;

    fn reply(code: u16, text: &str) -> Reply {
        Reply::new(code, vec![text.to_owned()])
    }

    fn refused(kind: ReplyKind, code: u16) -> SmtpError {
        SmtpError::Reply {
            command: "RCPT TO:<a@b>".into(),
            reply: reply(code, "x"),
            kind,
        }
    }

    #[test]
    #[allow(clippy::too_many_lines)] // A table with one row per case.
    fn predicates() {
        let io = |kind| io::Error::new(kind, "boom");
        let connect = |kind| {
            let source = io(kind);
            SmtpError::Connect {
                server: "mx".into(),
                port: 25,
                kind: ConnectKind::of_connect_error(&source),
                source,
            }
        };
        let rcpts = |codes: &[u16]| SmtpError::RecipientsRefused {
            refused: codes
                .iter()
                .map(|&c| (format!("r{c}@x"), reply(c, "no")))
                .collect(),
        };
        // (error, transient, permanent, timeout, has a reply)
        let cases = [
            (refused(ReplyKind::Recipient, 450), true, false, false, true),
            (refused(ReplyKind::Sender, 550), false, true, false, true),
            (refused(ReplyKind::Greeting, 421), true, false, false, true),
            (
                SmtpError::Auth {
                    kind: AuthKind::Refused,
                    reply: Some(reply(454, "4.7.0 later")),
                    reason: "r".into(),
                },
                true,
                false,
                false,
                true,
            ),
            (
                SmtpError::Auth {
                    kind: AuthKind::Refused,
                    reply: Some(reply(535, "5.7.8 bad")),
                    reason: "r".into(),
                },
                false,
                true,
                false,
                true,
            ),
            (
                SmtpError::auth(AuthKind::NoMechanism, "no mechanism"),
                false,
                false,
                false,
                false,
            ),
            (rcpts(&[550, 553]), false, true, false, true),
            (rcpts(&[550, 451]), true, false, false, true),
            (rcpts(&[]), false, false, false, false),
            (
                connect(io::ErrorKind::ConnectionRefused),
                true,
                false,
                false,
                false,
            ),
            (connect(io::ErrorKind::TimedOut), true, false, true, false),
            (SmtpError::timeout("the greeting"), true, false, true, false),
            (
                SmtpError::Io(io(io::ErrorKind::WouldBlock)),
                true,
                false,
                true,
                false,
            ),
            (
                SmtpError::Io(io(io::ErrorKind::UnexpectedEof)),
                true,
                false,
                false,
                false,
            ),
            (
                SmtpError::tls(TlsKind::UnknownIssuer, "untrusted certificate"),
                false,
                false,
                false,
                false,
            ),
            (
                SmtpError::protocol(ProtocolKind::MalformedReply, "garbage"),
                false,
                false,
                false,
                false,
            ),
            (
                SmtpError::SizeExceeded { size: 10, limit: 5 },
                false,
                true,
                false,
                false,
            ),
            (
                SmtpError::NotOffered {
                    extension: "BINARYMIME",
                    reason: "not offered".into(),
                },
                false,
                true,
                false,
                false,
            ),
            (SmtpError::invalid_input("bad"), false, true, false, false),
            (
                SmtpError::Message(MessageError::in_part("message", "bad")),
                false,
                true,
                false,
                false,
            ),
            (SmtpError::Source("disk".into()), false, false, false, false),
            (
                SmtpError::OutcomeUnknown {
                    reason: "lost".into(),
                    source: Some(io(io::ErrorKind::TimedOut)),
                },
                false,
                false,
                true,
                false,
            ),
            (
                connect(io::ErrorKind::NotConnected),
                true,
                false,
                false,
                false,
            ),
        ];
        for (error, transient, permanent, timeout, has_reply) in &cases {
            let got = (
                error.is_transient(),
                error.is_permanent(),
                error.is_timeout(),
                error.reply().is_some(),
            );
            assert_eq!(
                got,
                (*transient, *permanent, *timeout, *has_reply),
                "{error:?}"
            );
        }
        assert_eq!(rcpts(&[550, 451]).reply().unwrap().code, 550);
    }

    #[test]
    #[allow(clippy::too_many_lines)] // A table with one row per case.
    fn messages_say_what_happened_and_what_to_do() {
        let cases = [
            (
                refused(ReplyKind::Recipient, 550),
                "the server refused the recipient (RCPT TO:<a@b>): 550 x",
            ),
            (refused(ReplyKind::Recipient, 451), "try again later"),
            (
                refused(ReplyKind::Sender, 553),
                "the server refused the sender",
            ),
            (
                refused(ReplyKind::Greeting, 554),
                "the server refused the connection: 554 x",
            ),
            (
                refused(ReplyKind::Data, 552),
                "the server refused to take the message data",
            ),
            (refused(ReplyKind::Ehlo, 501), "refused the greeting RCPT"),
            (refused(ReplyKind::Other, 502), "do not retry unchanged"),
            (
                SmtpError::Connect {
                    server: "mx.example".into(),
                    port: 587,
                    kind: ConnectKind::Refused,
                    source: io::ErrorKind::ConnectionRefused.into(),
                },
                "could not connect to mx.example:587: the connection was refused",
            ),
            (
                SmtpError::Connect {
                    server: "::1".into(),
                    port: 25,
                    kind: ConnectKind::Lost,
                    source: io::ErrorKind::UnexpectedEof.into(),
                },
                "the connection to [::1]:25 was lost (reset or closed by the server)",
            ),
            (
                SmtpError::timeout("the reply to DATA"),
                "timed out waiting for the reply to DATA",
            ),
            (
                SmtpError::SizeExceeded {
                    size: 2000,
                    limit: 1000,
                },
                "the message is 2000 octets but the server accepts at most 1000",
            ),
            (
                SmtpError::NotOffered {
                    extension: "BINARYMIME",
                    reason: "the server does not offer it".into(),
                },
                "the message needs BINARYMIME, which cannot be used here: the server does not \
                 offer it; nothing was sent",
            ),
            (
                SmtpError::RecipientsRefused {
                    refused: vec![
                        ("a@x".into(), reply(550, "no")),
                        ("b@x".into(), reply(551, "gone")),
                    ],
                },
                "every recipient, so nothing was sent: a@x: 550 no; b@x: 551 gone",
            ),
            (
                SmtpError::malformed_reply(ReplyError::LineTooLong),
                "SMTP protocol error: malformed SMTP reply",
            ),
            (
                SmtpError::Source("disk on fire".into()),
                "nothing of it is delivered: disk on fire",
            ),
            (
                SmtpError::invalid_input("bad address"),
                "nothing was sent: bad address",
            ),
            (
                SmtpError::tls(TlsKind::UnknownIssuer, "certificate not trusted"),
                "TLS failed: certificate not trusted",
            ),
            (
                SmtpError::Reply {
                    command: "end of data".into(),
                    reply: reply(354, "go ahead"),
                    kind: ReplyKind::Message,
                },
                "neither success nor failure",
            ),
            (
                SmtpError::Connect {
                    server: "no-such-host.invalid".into(),
                    port: 25,
                    kind: ConnectKind::NameNotResolved,
                    source: io::ErrorKind::NotFound.into(),
                },
                "the name \"no-such-host.invalid\" could not be resolved",
            ),
            (
                SmtpError::Timeout {
                    during: "the reply to DATA".into(),
                }
                .after_end_of_data(),
                "no verdict came: timed out waiting for the reply to DATA",
            ),
        ];
        for (error, expected) in &cases {
            let shown = error.to_string();
            assert!(shown.contains(expected), "{shown:?} lacks {expected:?}");
        }
    }

    #[test]
    fn no_credential_reaches_a_message() {
        let payload = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";
        let command = Command::Auth {
            mechanism: Mechanism::Plain,
            initial_response: Some(payload.into()),
        };
        let error = SmtpError::refused(
            &command,
            reply(535, "5.7.8 Authentication credentials invalid"),
        );
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(payload), "{shown}");
            assert!(shown.contains("AUTH PLAIN <redacted>"), "{shown}");
        }
    }

    #[test]
    fn constructors() {
        let rcpt = Command::Rcpt {
            to: "a@b".parse().unwrap(),
            dsn: crate::smtp::dsn::RcptDsn::default(),
        };
        let SmtpError::Reply {
            command,
            reply: r,
            kind,
        } = SmtpError::refused(&rcpt, reply(550, "no"))
        else {
            panic!()
        };
        assert_eq!(
            (command.as_str(), r.code, kind),
            ("RCPT TO:<a@b>", 550, ReplyKind::Recipient)
        );
        let greeting = SmtpError::greeting_refused(reply(554, "go away"));
        assert_eq!(
            greeting.to_string(),
            "the server refused the connection: 554 go away (a permanent failure: do not retry unchanged)"
        );
    }

    #[test]
    fn sources_are_chained() {
        let error = SmtpError::from(crate::Error::Source("the file vanished".into()));
        assert!(matches!(error, SmtpError::Source(_)));
        assert_eq!(error.source().unwrap().to_string(), "the file vanished");
        let message = MessageError::in_header("message", "Subject", "contains CR");
        let error = SmtpError::from(crate::Error::Message(message.clone()));
        assert_eq!(error.source().unwrap().to_string(), message.to_string());
        assert!(matches!(SmtpError::from(message), SmtpError::Message(_)));
        let error = SmtpError::Connect {
            server: "h".into(),
            port: 25,
            kind: ConnectKind::Lost,
            source: io::ErrorKind::ConnectionReset.into(),
        };
        let io = error.source().unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        assert!(SmtpError::from(ReplyError::Code).source().is_none());
        assert!(matches!(
            SmtpError::from(ReplyError::BareCr),
            SmtpError::Protocol {
                kind: ProtocolKind::MalformedReply,
                ..
            }
        ));
    }

    #[test]
    fn errors_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<SmtpError>();
    }
}
