//! The blocking SMTP client.
//!
//! [`Client`] drives the protocol pieces ([`Command`], the reply parser, [`Capabilities`]) over a
//! [`Transport`]: plain TCP, TLS (implicit or after STARTTLS) or a stream the caller supplies.
//! The session methods mirror `LuaSocket`'s low-level API (`greet`, `auth`, `mail`, `rcpt`, `data`,
//! `quit`, `close`), and [`Client::send`] runs a whole transaction through the I/O-free
//! [`crate::smtp::engine::Engine`], pipelined when the server offers PIPELINING (RFC 2920).
//!
//! Every command waits for the server's greeting; `auth`, `mail`, `rcpt`, `data` and `send` say
//! EHLO and apply the TLS policy first when [`Client::greet`] has not been called, so nothing
//! that carries a credential, an address or content goes out before the policy holds.
//!
//! Every I/O call is bounded by [`ClientConfig::timeout`]. After a timeout, an I/O error or a
//! protocol violation the connection is shut down and every later call fails with
//! [`SmtpError::Connect`] of kind [`ConnectKind::Closed`]: a dialogue that may be out of step is
//! never continued. A failure after a message's end-of-data mark was written, before its verdict,
//! is [`SmtpError::OutcomeUnknown`]: the server may have accepted the message. Before each
//! command (or pipelined batch) the client also checks, without blocking, that the server has
//! sent nothing unasked since its last reply; data that is waiting is a protocol error, since it
//! would otherwise be taken for the reply to the next command (see
//! [`super::transport::Transport::has_pending_input`]).
//!
//! ```no_run
//! use mailpump::smtp::address::Address;
//! use mailpump::smtp::client::{Client, ClientConfig, Envelope};
//! use mailpump::source::BytesSource;
//!
//! let config = ClientConfig { server: "mail.example.com".into(), port: 587, ..ClientConfig::default() };
//! let mut client = Client::connect(&config)?;
//! client.greet(None)?;
//! let envelope = Envelope::new(Address::parse("me@example.com")?, vec![Address::parse("you@example.org")?]);
//! let mut body = BytesSource::new(&b"Subject: hi\r\n\r\nhello\r\n"[..]);
//! let result = client.send(&envelope, &mut body, None)?;
//! println!("queued: {}", result.reply.text());
//! client.quit()?;
//! # Ok::<(), mailpump::smtp::error::SmtpError>(())
//! ```

mod authenticate;
mod pipeline;
mod transaction;
mod wire;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use super::command::MailParams;
pub use super::engine::{Envelope, SendResult};
pub use transaction::Progress;

use super::capability::Capabilities;
use super::command::Command;
use super::connector::{Connector, HandshakeFailure, TlsConnector};
use super::error::{ConnectKind, ProtocolKind, SmtpError, TlsKind};
use super::fingerprint::Fingerprint;
use super::reply::{Reply, ReplyParser};
use super::transcript::{Transcript, TranscriptFn};
use super::transport::{TcpTransport, Transport};

/// The port on which the server expects TLS from the first byte (RFC 8314 §3.3).
pub const IMPLICIT_TLS_PORT: u16 = 465;

/// An upper bound on buffered reply bytes, beside the parser's own line limits.
const MAX_BUFFERED_REPLY: usize = 1 << 20;

/// How much the client reads from the transport at a time while waiting for a reply.
const READ_CHUNK: usize = 8 * 1024;

/// When and how the connection is encrypted.
///
/// ```
/// use mailpump::{ClientConfig, TlsPolicy};
///
/// let policy: TlsPolicy = "STARTTLS".parse()?;
/// assert_eq!(policy, TlsPolicy::StartTls);
/// let submission = ClientConfig { port: 465, ..ClientConfig::default() };
/// assert!(submission.implicit_tls()); // `Auto` on port 465
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// Implicit TLS on port 465; elsewhere STARTTLS whenever the server offers it.
    #[default]
    Auto,
    /// STARTTLS is required: the session fails closed when it is missing, refused or fails.
    StartTls,
    /// TLS from the first byte (RFC 8314), on any port.
    Implicit,
    /// Never encrypt.
    None,
}

impl FromStr for TlsPolicy {
    type Err = SmtpError;

    /// Parses `auto`, `starttls`, `implicit` or `none`, in any case.
    fn from_str(s: &str) -> Result<Self, SmtpError> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "starttls" => Ok(Self::StartTls),
            "implicit" => Ok(Self::Implicit),
            "none" => Ok(Self::None),
            _ => Err(SmtpError::invalid_input(format!(
                "unknown TLS policy {s:?} (expected auto, starttls, implicit or none)"
            ))),
        }
    }
}

/// Where to connect and how to behave.
///
/// ```
/// use mailpump::{ClientConfig, TlsPolicy};
/// use std::time::Duration;
///
/// let config = ClientConfig {
///     server: "smtp.example.com".into(),
///     port: 587,
///     tls: TlsPolicy::StartTls, // fail closed if the server does not offer STARTTLS
///     timeout: Duration::from_secs(30),
///     domain: "client.example.com".into(),
///     ..ClientConfig::default()
/// };
/// assert!(!config.implicit_tls() && config.verify);
/// ```
// Independent yes/no options, each a user's switch: no state machine hides in them.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The server's host name or IP address; also the name TLS verifies.
    pub server: String,
    /// The server's port.
    pub port: u16,
    /// The TLS policy.
    pub tls: TlsPolicy,
    /// The limit for connecting and for every single read or write (not a total deadline).
    pub timeout: Duration,
    /// A PEM file of certificates to trust besides the system's: CAs, and server certificates
    /// trusted as themselves (see [`crate::smtp::tls`]).
    pub cafile: Option<PathBuf>,
    /// `false` turns certificate verification off (explicit, dangerous opt-out).
    pub verify: bool,
    /// A PEM file with a client certificate and its chain (and its key, unless `keyfile`), for
    /// servers that ask for one.
    pub certfile: Option<PathBuf>,
    /// A PEM file with the client certificate's private key.
    pub keyfile: Option<PathBuf>,
    /// Pinned SHA-256 fingerprints: the server's certificate is accepted by its digest alone.
    pub fingerprints: Vec<Fingerprint>,
    /// TLS through another implementation than rustls (see [`crate::smtp::connector`]); it
    /// excludes `cafile`, `verify`, `certfile`, `keyfile` and `fingerprints`.
    pub tls_connector: Option<Connector>,
    /// The name the client gives in EHLO / HELO.
    pub domain: String,
    /// Whether to fall back to HELO when the server does not know EHLO (500 or 502).
    pub helo_fallback: bool,
    /// Whether credentials may cross an unencrypted connection to a non-loopback server.
    pub allow_insecure_auth: bool,
    /// Whether messages go out as `BDAT` chunks when the server offers CHUNKING with
    /// PIPELINING (RFC 3030); `false` forces DATA.
    pub chunking: bool,
    /// Speak LMTP (RFC 2033) instead of SMTP: `LHLO` (no HELO fallback), and after the data one
    /// verdict per recipient, each in [`SendResult::verdicts`]. Messages go out after DATA,
    /// never as `BDAT` chunks.
    pub lmtp: bool,
    /// Signs every message sent on the connection (RFC 6376): [`Client::send`] and
    /// [`Client::send_many`] sign each before its MAIL command, [`Client::data`] before DATA, so
    /// a failure to sign sends no byte of the message. A [`crate::smtp::pool::Pool`] signs each
    /// message once, so that a retry sends the same bytes.
    #[cfg(feature = "dkim")]
    pub dkim: Option<crate::mime::dkim::DkimSigner>,
}

impl Default for ClientConfig {
    /// `LuaSocket`'s defaults (`localhost:25`, 60 s, domain `localhost`) with TLS `auto`.
    fn default() -> Self {
        Self {
            server: "localhost".into(),
            port: 25,
            tls: TlsPolicy::Auto,
            timeout: Duration::from_secs(60),
            cafile: None,
            verify: true,
            certfile: None,
            keyfile: None,
            fingerprints: Vec::new(),
            tls_connector: None,
            domain: "localhost".into(),
            helo_fallback: true,
            allow_insecure_auth: false,
            chunking: true,
            lmtp: false,
            #[cfg(feature = "dkim")]
            dkim: None,
        }
    }
}

impl ClientConfig {
    /// Whether TLS starts with the connection rather than after STARTTLS.
    ///
    /// ```
    /// use mailpump::{ClientConfig, TlsPolicy};
    ///
    /// assert!(ClientConfig { tls: TlsPolicy::Implicit, port: 2465, ..ClientConfig::default() }.implicit_tls());
    /// assert!(!ClientConfig { tls: TlsPolicy::StartTls, port: 465, ..ClientConfig::default() }.implicit_tls());
    /// ```
    #[must_use]
    pub fn implicit_tls(&self) -> bool {
        self.tls == TlsPolicy::Implicit
            || (self.tls == TlsPolicy::Auto
                && self.port == IMPLICIT_TLS_PORT
                && self.unix_socket().is_none())
    }

    /// The path of the Unix-domain socket [`ClientConfig::server`] names, if it names one: it
    /// starts with `unix:` or contains a `/` (see [`super::transport::unix_socket_path`]).
    ///
    /// ```
    /// use mailpump::ClientConfig;
    ///
    /// let dovecot = ClientConfig { server: "/var/run/dovecot/lmtp".into(), lmtp: true, ..ClientConfig::default() };
    /// assert!(dovecot.unix_socket().is_some());
    /// assert!(ClientConfig::default().unix_socket().is_none());
    /// ```
    #[must_use]
    pub fn unix_socket(&self) -> Option<&std::path::Path> {
        super::transport::unix_socket_path(&self.server)
    }

    /// Checks what can be checked before connecting: a positive timeout and an EHLO name that
    /// can go on the wire (RFC 5321 §4.1.1.1), so a bad setting costs no connection.
    /// [`Client::connect`] and [`Client::from_transport`] call it; a caller that opens its own
    /// transport calls it first.
    ///
    /// ```
    /// use mailpump::ClientConfig;
    ///
    /// assert!(ClientConfig::default().validate().is_ok());
    /// let bad = ClientConfig { domain: "host\r\nRSET".into(), ..ClientConfig::default() };
    /// assert!(bad.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), SmtpError> {
        if self.timeout.is_zero() {
            return Err(SmtpError::InvalidInput(
                "the timeout must be greater than zero".into(),
            ));
        }
        if self.unix_socket().is_some() {
            if !cfg!(unix) {
                return Err(SmtpError::invalid_input(format!(
                    "the server {:?} is a Unix-domain socket path (it starts with unix: or \
                     contains /), and this platform has no Unix-domain sockets",
                    self.server
                )));
            }
            if matches!(self.tls, TlsPolicy::StartTls | TlsPolicy::Implicit) {
                return Err(SmtpError::invalid_input(format!(
                    "TLS is not used over a Unix-domain socket ({}): the connection never leaves \
                     this machine and the socket's permissions say who may connect; use \
                     tls='auto' or 'none'",
                    self.server
                )));
            }
        }
        if self.keyfile.is_some() && self.certfile.is_none() {
            return Err(SmtpError::invalid_input(
                "keyfile was given without certfile (the client certificate it belongs to)",
            ));
        }
        if !self.verify && !self.fingerprints.is_empty() {
            return Err(SmtpError::invalid_input(
                "verify=False would ignore the pinned fingerprint: give one or the other",
            ));
        }
        if self.tls_connector.is_some() {
            let rustls_only = [
                ("cafile", self.cafile.is_some()),
                ("verify", !self.verify),
                ("certfile", self.certfile.is_some()),
                ("keyfile", self.keyfile.is_some()),
                ("fingerprint", !self.fingerprints.is_empty()),
            ];
            let given: Vec<&str> = rustls_only.iter().filter(|o| o.1).map(|o| o.0).collect();
            if !given.is_empty() {
                return Err(SmtpError::invalid_input(format!(
                    "ssl_context= brings its own certificate checks and client certificate, so \
                     {} cannot be given with it: load them into the context instead \
                     (load_verify_locations, load_cert_chain, verify_mode)",
                    given.join(", ")
                )));
            }
        }
        Command::Ehlo(self.domain.clone()).write_to(&mut Vec::new())
    }
}

/// A connection to the Unix-domain socket at `path`.
#[cfg(unix)]
fn connect_unix(path: &std::path::Path, timeout: Duration) -> io::Result<Box<dyn Transport>> {
    let transport = super::transport::UnixTransport::connect(path, timeout)?;
    Ok(Box::new(transport))
}

/// No Unix-domain sockets here ([`ClientConfig::validate`] says so before this is reached).
#[cfg(not(unix))]
fn connect_unix(_path: &std::path::Path, _timeout: Duration) -> io::Result<Box<dyn Transport>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this platform has no Unix-domain sockets",
    ))
}

/// The kind and words of a failed rustls handshake (see [`crate::smtp::tls`]).
#[cfg(feature = "tls")]
fn describe_handshake(error: &io::Error) -> Option<(TlsKind, String)> {
    super::tls::describe_handshake_error(error)
}

/// Without rustls, no handshake error of its own.
#[cfg(not(feature = "tls"))]
fn describe_handshake(_error: &io::Error) -> Option<(TlsKind, String)> {
    None
}

/// Why the client refuses further use.
#[derive(Debug, Clone)]
enum Closed {
    /// `quit` or `close` was called.
    ByCaller,
    /// An error made the dialogue untrustworthy; the text says which.
    Broken(String),
}

/// The connection: open over its transport, or closed and why. One value, so that a closed
/// client with a transport (or an open one without) cannot be written.
enum Link {
    Open(Box<dyn Transport>),
    Closed(Closed),
}

/// A blocking SMTP session over one connection.
///
/// ```no_run
/// use mailpump::{Address, Client, ClientConfig, Credentials, Envelope, MessageEncoder, MessageOptions, Part};
///
/// // One connection, many messages.
/// let config = ClientConfig { server: "smtp.example.com".into(), port: 587, ..ClientConfig::default() };
/// let mut client = Client::connect(&config)?;
/// client.greet(None)?;
/// client.auth(&Credentials::new("me@example.com", "app password"), None)?;
/// for to in ["a@example.org", "b@example.org"] {
///     let message = Part::text("Your report is ready.\r\n", "plain")
///         .header("From", "me@example.com")
///         .header("To", to)
///         .header("Subject", "Report");
///     let mut encoder = MessageEncoder::new(message, MessageOptions::default())?;
///     let envelope = Envelope::new(Address::parse("me@example.com")?, vec![Address::parse(to)?]);
///     match client.send(&envelope, &mut encoder, None) {
///         Ok(result) => println!("{to}: {}", result.reply.text()),
///         // A refused message leaves the session usable; a broken connection does not.
///         Err(e) if client.is_usable() => eprintln!("{to}: {e}"),
///         Err(e) => return Err(e.into()),
///     }
/// }
/// client.quit()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Client {
    link: Link,
    config: ClientConfig,
    /// Bytes read but not yet parsed as a reply.
    rbuf: Vec<u8>,
    /// The reply parser, resumable so that a long reply is scanned once.
    parser: ReplyParser,
    /// Commands being formatted; reused.
    wbuf: Vec<u8>,
    /// Body blocks being encoded and the source's chunks; reused from message to message.
    body_out: Vec<u8>,
    body_in: Vec<u8>,
    greeting: Option<Reply>,
    ehlo: Option<Reply>,
    caps: Capabilities,
    /// The domain given at the last EHLO/HELO, repeated after STARTTLS.
    domain: Option<String>,
    encrypted: bool,
    loopback: bool,
    transcript: Transcript,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.config.server)
            .field("port", &self.config.port)
            .field("encrypted", &self.encrypted)
            .field("usable", &self.is_usable())
            .field("capabilities", &self.caps)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens a TCP connection to `config.server:config.port` (each resolved address in turn, each
    /// attempt bounded by the timeout) and, for implicit TLS, runs the handshake. Reads nothing:
    /// [`Client::greet`] reads the greeting.
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig, SmtpError};
    ///
    /// let config = ClientConfig { server: "smtp.example.com".into(), port: 465, ..ClientConfig::default() };
    /// match Client::connect(&config) {
    ///     Ok(client) => assert!(client.is_encrypted()), // implicit TLS on 465
    ///     Err(e @ SmtpError::Connect { .. }) => eprintln!("cannot connect: {e}"),
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// ```
    pub fn connect(config: &ClientConfig) -> Result<Self, SmtpError> {
        Self::connect_with(config, |transport| transport)
    }

    /// [`Client::connect`], with the connection (TCP, or a Unix-domain socket when
    /// [`ClientConfig::unix_socket`] names one) passed through `wrap` before the session starts:
    /// for a caller that layers its own behaviour on the socket (the Python binding makes its
    /// waits interruptible by Ctrl-C this way).
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    ///
    /// let client = Client::connect_with(&ClientConfig::default(), |tcp| Box::new(tcp))?;
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn connect_with(
        config: &ClientConfig,
        wrap: impl FnOnce(Box<dyn Transport>) -> Box<dyn Transport>,
    ) -> Result<Self, SmtpError> {
        config.validate()?;
        let connected = match config.unix_socket() {
            Some(path) => connect_unix(path, config.timeout),
            None => TcpTransport::connect(&config.server, config.port, config.timeout)
                .map(|tcp| Box::new(tcp) as Box<dyn Transport>),
        };
        let transport = connected.map_err(|source| SmtpError::Connect {
            server: config.server.clone(),
            port: config.port,
            kind: match source.kind() {
                // A missing socket file is a server not running, as a refused port is.
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                    if config.unix_socket().is_some() =>
                {
                    ConnectKind::Refused
                }
                _ => ConnectKind::of_connect_error(&source),
            },
            source,
        })?;
        Self::from_transport(wrap(transport), config)
    }

    /// Starts a session over a connected `transport` (a caller's own stream, or one made by
    /// [`TcpTransport`]). Sets its timeout and, for implicit TLS, runs the handshake.
    ///
    /// ```no_run
    /// use mailpump::smtp::transport::TcpTransport;
    /// use mailpump::{Client, ClientConfig};
    /// use std::time::Duration;
    ///
    /// let config = ClientConfig::default();
    /// let tcp = TcpTransport::connect(&config.server, config.port, Duration::from_secs(10))?;
    /// let mut client = Client::from_transport(Box::new(tcp), &config)?;
    /// client.greet(None)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_transport(
        mut transport: Box<dyn Transport>,
        config: &ClientConfig,
    ) -> Result<Self, SmtpError> {
        config.validate()?;
        transport
            .set_timeout(Some(config.timeout))
            .map_err(|source| SmtpError::Connect {
                server: config.server.clone(),
                port: config.port,
                kind: ConnectKind::of_connect_error(&source),
                source,
            })?;
        let loopback = transport.peer_is_loopback();
        let mut client = Self {
            link: Link::Open(transport),
            config: config.clone(),
            rbuf: Vec::with_capacity(READ_CHUNK),
            parser: ReplyParser::new(),
            wbuf: Vec::with_capacity(1024),
            body_out: Vec::new(),
            body_in: Vec::new(),
            greeting: None,
            ehlo: None,
            caps: Capabilities::default(),
            domain: None,
            encrypted: false,
            loopback,
            transcript: Transcript::default(),
        };
        if config.implicit_tls() {
            client.start_tls_layer()?;
        }
        Ok(client)
    }

    /// Changes the limit for every later read and write (it must be greater than zero).
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    /// use std::time::Duration;
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.set_timeout(Duration::from_secs(600))?; // a slow server's final reply to a big message
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), SmtpError> {
        self.ensure_usable()?;
        if timeout.is_zero() {
            return Err(SmtpError::invalid_input(
                "the timeout must be greater than zero",
            ));
        }
        let Link::Open(t) = &mut self.link else {
            return Err(self.unusable());
        };
        if let Err(e) = t.set_timeout(Some(timeout)) {
            return Err(self.io_failure(e, "setting the timeout"));
        }
        self.config.timeout = timeout;
        Ok(())
    }

    /// Sets (or with `None` removes) the transcript callback: one call per command (redacted) and
    /// per reply, never the message body.
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.set_transcript(Some(Box::new(|direction, line| eprintln!("{direction}: {line}"))));
    /// client.greet(None)?;
    /// client.set_transcript(None);
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn set_transcript(&mut self, sink: Option<TranscriptFn>) {
        self.transcript.set(sink);
    }

    /// The configuration the client was made with.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The server's capabilities from the last EHLO (empty before it, or after HELO).
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// println!("{:?}", client.greeting().map(|r| r.text()));
    /// println!("{:?}", client.ehlo_reply().map(|r| r.lines.len()));
    /// println!("{} over {}", client.capabilities().pipelining, client.config().server);
    /// println!("encrypted: {}, usable: {}", client.is_encrypted(), client.is_usable());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The server's greeting, once [`Client::greet`] has read it.
    #[must_use]
    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    /// The reply to the last successful EHLO (`None` before it or when HELO was used).
    #[must_use]
    pub fn ehlo_reply(&self) -> Option<&Reply> {
        self.ehlo.as_ref()
    }

    /// Whether the connection is encrypted.
    #[must_use]
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Whether the client can still be used (not closed, not broken by an error).
    #[must_use]
    pub fn is_usable(&self) -> bool {
        matches!(self.link, Link::Open(_))
    }

    /// Why the client can no longer be used: the error every further call returns (with the
    /// error that broke the connection in its text), or `None` while it is usable.
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// assert!(client.closed_error().is_none());
    /// client.close();
    /// assert!(client.closed_error().is_some());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn closed_error(&self) -> Option<SmtpError> {
        self.ensure_usable().err()
    }

    /// Reads the greeting (first call only), says EHLO (HELO when the server does not know EHLO
    /// and [`ClientConfig::helo_fallback`] allows it), then applies the TLS policy: STARTTLS and
    /// EHLO again when it asks for it. `domain` defaults to [`ClientConfig::domain`].
    ///
    /// A greeting or EHLO that is not positive closes the connection and is returned as
    /// [`SmtpError::Reply`]. Under [`TlsPolicy::StartTls`] a server without STARTTLS is an
    /// [`SmtpError::Tls`] and the connection is closed before any other command is sent; so is
    /// a build without the `tls` feature, before STARTTLS is sent.
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// let caps = client.greet(Some("client.example.com"))?;
    /// println!("pipelining: {}, size limit: {:?}", caps.pipelining, caps.size_limit());
    /// println!("greeting: {}", client.greeting().map(|r| r.text()).unwrap_or_default());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn greet(&mut self, domain: Option<&str>) -> Result<&Capabilities, SmtpError> {
        self.ensure_usable()?;
        self.read_greeting()?;
        let domain = domain.unwrap_or(&self.config.domain).to_owned();
        self.hello(&domain)?;
        if !self.encrypted {
            match self.config.tls {
                TlsPolicy::StartTls => {
                    if !self.caps.starttls {
                        return Err(self.fail(SmtpError::tls(
                            TlsKind::NotOffered,
                            "the server does not offer STARTTLS, which the TLS policy requires",
                        )));
                    }
                    self.starttls()?;
                }
                // Opportunistic: once offered, a STARTTLS that fails is an error, never a silent
                // fall back to plaintext an attacker could provoke.
                // Not over a Unix-domain socket: the bytes never leave the machine.
                TlsPolicy::Auto
                    if self.caps.starttls
                        && self.config.unix_socket().is_none()
                        && (cfg!(feature = "tls") || self.config.tls_connector.is_some()) =>
                {
                    self.starttls()?;
                }
                _ => {}
            }
        }
        Ok(&self.caps)
    }

    /// Reads the server's greeting, once: every command waits for it (RFC 5321 §3.1), so that
    /// the greeting is never taken for the reply to a command.
    fn read_greeting(&mut self) -> Result<(), SmtpError> {
        if self.greeting.is_some() {
            return Ok(());
        }
        let reply = match self.read_reply() {
            // A port that speaks TLS from the first byte waits for a ClientHello and says
            // nothing. Only the timeout tells: a client that spoke first to find out would be
            // punished by servers that pause before greeting (the client waits, RFC 5321
            // §4.5.3.2.1).
            Err(SmtpError::Timeout { .. }) if !self.encrypted => {
                return Err(SmtpError::Connect {
                    server: self.config.server.clone(),
                    port: self.config.port,
                    kind: ConnectKind::NoGreeting,
                    source: io::Error::new(io::ErrorKind::TimedOut, "no greeting"),
                });
            }
            other => other?,
        };
        self.ensure_nothing_pending()?;
        if !reply.is_positive_completion() {
            // RFC 5321 §3.1: a 554 greeting means no service; nothing else may follow.
            return Err(self.fail(SmtpError::greeting_refused(reply)));
        }
        self.greeting = Some(reply);
        Ok(())
    }

    /// Greets first if nobody has (EHLO and the TLS policy), then enforces the policy: every
    /// command that carries an address, a credential or message content goes out encrypted
    /// when the policy asks for encryption.
    pub(super) fn ready_for_transaction(&mut self) -> Result<(), SmtpError> {
        self.ensure_usable()?;
        if self.domain.is_none() {
            self.greet(None)?;
        }
        let required = matches!(self.config.tls, TlsPolicy::StartTls | TlsPolicy::Implicit);
        if required && !self.encrypted {
            return Err(self.fail(SmtpError::tls(
                TlsKind::NotOffered,
                "the TLS policy requires an encrypted connection and this one is not encrypted",
            )));
        }
        Ok(())
    }

    /// Says EHLO `domain`, falling back to HELO on 500/502 when allowed (RFC 5321 §4.1.1.1);
    /// in LMTP, LHLO and no fallback (RFC 2033 §4.1: LMTP has no HELO).
    fn hello(&mut self, domain: &str) -> Result<(), SmtpError> {
        let greeting = if self.config.lmtp {
            Command::Lhlo(domain.to_owned())
        } else {
            Command::Ehlo(domain.to_owned())
        };
        let reply = self.command(&greeting)?;
        if reply.is_positive_completion() {
            self.caps = Capabilities::from_ehlo(&reply);
            self.ehlo = Some(reply);
        } else if !self.config.lmtp && self.config.helo_fallback && matches!(reply.code, 500 | 502)
        {
            let helo = Command::Helo(domain.to_owned());
            let reply = self.command(&helo)?;
            if !reply.is_positive_completion() {
                return Err(self.fail(SmtpError::refused(&helo, reply)));
            }
            self.caps = Capabilities::default();
            self.ehlo = None;
        } else {
            return Err(self.fail(SmtpError::refused(&greeting, reply)));
        }
        self.domain = Some(domain.to_owned());
        Ok(())
    }

    /// Sends STARTTLS (RFC 3207), runs the TLS handshake and says EHLO again, since the
    /// capabilities learnt in plaintext cannot be trusted (RFC 3207 §4.2).
    ///
    /// A refusal, any byte the server sent after its `220` (response injection), or a failed
    /// handshake closes the connection. Built without the `tls` feature, it fails with
    /// [`SmtpError::Tls`] and closes the connection before STARTTLS is sent.
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig, TlsPolicy};
    ///
    /// // With `TlsPolicy::None`, `greet` leaves encryption to the caller.
    /// let config = ClientConfig { tls: TlsPolicy::None, ..ClientConfig::default() };
    /// let mut client = Client::connect(&config)?;
    /// if client.greet(None)?.starttls {
    ///     client.starttls()?; // says EHLO again
    ///     assert!(client.is_encrypted());
    /// }
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn starttls(&mut self) -> Result<&Capabilities, SmtpError> {
        self.ensure_usable()?;
        if self.encrypted {
            return Err(SmtpError::invalid_input(
                "the connection is already encrypted",
            ));
        }
        if !cfg!(feature = "tls") && self.config.tls_connector.is_none() {
            // Once the server has said 220 it expects a TLS handshake (RFC 3207 §4); a build that
            // cannot start one must not ask, and the policy that wanted TLS fails closed.
            return Err(self.fail(SmtpError::tls(
                TlsKind::NotBuilt,
                "mailpump was built without the tls feature, so STARTTLS cannot be used",
            )));
        }
        let reply = self.command_unchecked(&Command::StartTls)?;
        if reply.code != 220 {
            return Err(self.fail(SmtpError::tls(
                TlsKind::Refused,
                format!("the server refused STARTTLS: {}", reply_line(&reply)),
            )));
        }
        if !self.rbuf.is_empty() {
            // Bytes sent before the handshake would be read as if they came over TLS.
            return Err(self.fail(SmtpError::protocol(
                ProtocolKind::UnaskedData,
                "the server sent data after its STARTTLS reply (response injection)",
            )));
        }
        self.start_tls_layer()?;
        self.caps = Capabilities::default();
        self.ehlo = None;
        let domain = self
            .domain
            .clone()
            .unwrap_or_else(|| self.config.domain.clone());
        self.hello(&domain)?;
        Ok(&self.caps)
    }

    /// Wraps the transport in TLS: through the configured connector, else rustls.
    fn start_tls_layer(&mut self) -> Result<(), SmtpError> {
        let connector = match &self.config.tls_connector {
            Some(connector) => Arc::clone(&connector.0),
            None => self.rustls_connector()?,
        };
        let handshaking = Link::Closed(Closed::Broken("the TLS handshake failed".into()));
        let Link::Open(inner) = std::mem::replace(&mut self.link, handshaking) else {
            return Err(self.unusable());
        };
        let server = &self.config.server;
        let host = server
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(server);
        match connector.handshake(inner, host) {
            Ok(tls) => {
                self.link = Link::Open(tls);
                self.encrypted = true;
                Ok(())
            }
            Err(e) => {
                let err = if let Some(failure) = HandshakeFailure::of(&e) {
                    SmtpError::tls(failure.kind, format!("TLS with {server}: {failure}"))
                } else if super::transport::is_timeout(&e) {
                    SmtpError::timeout("the TLS handshake")
                } else if let Some((kind, words)) = describe_handshake(&e) {
                    SmtpError::tls(kind, format!("TLS with {server}: {words}"))
                } else if e.kind() == io::ErrorKind::InvalidInput {
                    SmtpError::tls(TlsKind::Config, e.to_string())
                } else {
                    // A server that hangs up mid-handshake often wants what the client lacks (a
                    // client certificate, a protocol version) or does not speak TLS there.
                    SmtpError::tls(
                        TlsKind::Handshake,
                        format!(
                            "the connection to {server} ended during the TLS handshake ({e}): \
                             the server may want a client certificate (certfile=, keyfile=), or \
                             not speak TLS on this port; check the port and the TLS setting"
                        ),
                    )
                };
                Err(self.fail(err))
            }
        }
    }

    /// The built-in TLS: rustls with the configuration's certificate settings.
    #[cfg(feature = "tls")]
    fn rustls_connector(&mut self) -> Result<Arc<dyn TlsConnector>, SmtpError> {
        use super::tls::{RustlsConnector, TlsSettings};
        let settings = TlsSettings {
            cafile: self.config.cafile.clone(),
            verify: self.config.verify,
            certfile: self.config.certfile.clone(),
            keyfile: self.config.keyfile.clone(),
            fingerprints: self.config.fingerprints.clone(),
        };
        match settings.client_config() {
            Ok(config) => Ok(Arc::new(RustlsConnector(config))),
            Err(e) => Err(self.fail(SmtpError::tls(TlsKind::Config, e.to_string()))),
        }
    }

    /// Without the `tls` feature, only a configured connector can start TLS.
    #[cfg(not(feature = "tls"))]
    fn rustls_connector(&mut self) -> Result<Arc<dyn TlsConnector>, SmtpError> {
        Err(self.fail(SmtpError::tls(
            TlsKind::NotBuilt,
            "mailpump was built without the tls feature",
        )))
    }

    /// RSET: abandons the current transaction (RFC 5321 §4.1.1.5).
    ///
    /// ```no_run
    /// use mailpump::{Address, Client, ClientConfig};
    /// use mailpump::smtp::command::MailParams;
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// client.mail(&Address::parse("me@example.com")?, MailParams::default())?;
    /// client.rset()?; // changed our mind: the transaction is abandoned
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn rset(&mut self) -> Result<Reply, SmtpError> {
        self.simple(&Command::Rset)
    }

    /// NOOP: checks that the server is still there (RFC 5321 §4.1.1.9).
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// if client.noop().is_err() {
    ///     // The server went away while the connection was idle: connect again.
    /// }
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn noop(&mut self) -> Result<Reply, SmtpError> {
        self.simple(&Command::Noop)
    }

    /// QUIT, then closes the connection whatever the reply. A caller that has had its message
    /// accepted should not treat an error here as a failed delivery.
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.greet(None)?;
    /// let _ = client.quit(); // after a delivery, a failed QUIT changes nothing
    /// assert!(!client.is_usable());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn quit(&mut self) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        let result = self.command(&Command::Quit);
        self.close();
        let reply = result?;
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(SmtpError::refused(&Command::Quit, reply))
        }
    }

    /// Closes the connection without QUIT. Idempotent; later calls fail.
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig};
    ///
    /// let mut client = Client::connect(&ClientConfig::default())?;
    /// client.close();
    /// client.close(); // idempotent
    /// assert!(client.noop().is_err());
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn close(&mut self) {
        if let Link::Open(t) = &mut self.link {
            t.shutdown();
            self.link = Link::Closed(Closed::ByCaller);
        }
    }

    /// Sends a one-line command that expects 2xx. A 1xx or 3xx cannot answer it (RFC 5321
    /// §4.3.2): the reply belongs to another command, so the dialogue is out of step.
    fn simple(&mut self, command: &Command) -> Result<Reply, SmtpError> {
        let reply = self.command(command)?;
        if reply.is_positive_completion() {
            Ok(reply)
        } else if reply.is_transient() || reply.is_permanent() {
            Err(SmtpError::refused(command, reply))
        } else {
            Err(self.fail(super::engine::out_of_step(command.verb(), &reply)))
        }
    }
}

/// The TLS kind and words for an I/O error that comes from the TLS layer (a bad record, an
/// alert), or `None`.
fn tls_failure(e: &io::Error) -> Option<(TlsKind, String)> {
    #[cfg(feature = "tls")]
    {
        super::tls::describe_handshake_error(e)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = e;
        None
    }
}

/// A reply on one line for error messages: `454 TLS not available`.
fn reply_line(reply: &Reply) -> String {
    format!("{} {}", reply.code, reply.text().replace('\n', " "))
}

/// The client's state must be movable to another thread (a Python session is used from many).
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Client>();
};
