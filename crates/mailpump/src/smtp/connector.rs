//! TLS through another implementation than the built-in rustls one.
//!
//! A [`TlsConnector`] in [`ClientConfig::tls_connector`](crate::ClientConfig::tls_connector)
//! takes over the handshake, for implicit TLS and after STARTTLS alike: it wraps the
//! connection's [`Transport`] and returns the encrypted one, and the client talks SMTP over it as
//! over rustls. The Python bindings use it to run TLS through Python's `ssl` module (an
//! `ssl.SSLContext` the caller made), for servers rustls cannot speak to; the core knows nothing
//! of Python. The connector brings its own trust and client certificate, so the rustls settings
//! (`cafile`, `verify`, `certfile`, `keyfile`, `fingerprints`) cannot be given with it.

use std::fmt;
use std::io;
use std::sync::Arc;

use super::error::TlsKind;
use super::transport::Transport;

/// A TLS implementation the client runs its TLS through instead of rustls.
///
/// ```
/// use mailpump::smtp::connector::{Connector, TlsConnector};
/// use mailpump::smtp::transport::Transport;
/// use mailpump::{ClientConfig, TlsPolicy};
///
/// /// A connector that leaves the bytes as they are (for illustration only).
/// struct Clear;
///
/// impl TlsConnector for Clear {
///     fn handshake(
///         &self,
///         inner: Box<dyn Transport>,
///         _server_name: &str,
///     ) -> std::io::Result<Box<dyn Transport>> {
///         Ok(inner)
///     }
/// }
///
/// let config = ClientConfig {
///     tls: TlsPolicy::Implicit,
///     tls_connector: Some(Connector::new(Clear)),
///     ..ClientConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
pub trait TlsConnector: Send + Sync {
    /// Runs the handshake over `inner` for `server_name` (a host name or an IP address, as the
    /// configuration gives it, brackets removed) and returns the encrypted transport, whose
    /// [`Transport::has_pending_input`] counts decrypted application data only.
    ///
    /// A failure the connector can explain is an error carrying a [`HandshakeFailure`] (or the
    /// core's own [`PlainSmtpAnswer`](crate::smtp::tls::PlainSmtpAnswer) for a 220 line where a
    /// handshake was expected); a timed-out read keeps its kind; any other error reads as a
    /// connection that ended during the handshake.
    ///
    /// # Errors
    ///
    /// The handshake failed or `inner` did.
    fn handshake(
        &self,
        inner: Box<dyn Transport>,
        server_name: &str,
    ) -> io::Result<Box<dyn Transport>>;
}

/// A shared [`TlsConnector`], as [`ClientConfig`](crate::ClientConfig) holds it: configurations
/// compare equal when they share the same connector.
///
/// ```
/// use mailpump::smtp::connector::{Connector, TlsConnector};
/// use mailpump::smtp::transport::Transport;
///
/// struct Clear;
/// impl TlsConnector for Clear {
///     fn handshake(&self, inner: Box<dyn Transport>, _: &str) -> std::io::Result<Box<dyn Transport>> {
///         Ok(inner)
///     }
/// }
///
/// let one = Connector::new(Clear);
/// assert_eq!(one, one.clone());
/// assert_ne!(one, Connector::new(Clear));
/// ```
#[derive(Clone)]
pub struct Connector(pub Arc<dyn TlsConnector>);

impl Connector {
    /// Shares `connector`.
    pub fn new(connector: impl TlsConnector + 'static) -> Self {
        Self(Arc::new(connector))
    }
}

impl PartialEq for Connector {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Connector {}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connector(..)")
    }
}

/// A failed handshake explained by the connector: the kind and a sentence that says what to do.
/// Carried inside the [`io::Error`] of [`TlsConnector::handshake`].
///
/// ```
/// use mailpump::smtp::connector::HandshakeFailure;
/// use mailpump::smtp::error::TlsKind;
///
/// let error = HandshakeFailure::io(TlsKind::Expired, "the certificate expired on 2020-01-01");
/// let failure = HandshakeFailure::of(&error).unwrap();
/// assert_eq!(failure.kind, TlsKind::Expired);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeFailure {
    /// What failed.
    pub kind: TlsKind,
    /// The details and the advice, in words.
    pub reason: String,
}

impl HandshakeFailure {
    /// The failure as the [`io::Error`] a connector returns.
    pub fn io(kind: TlsKind, reason: impl Into<String>) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            Self {
                kind,
                reason: reason.into(),
            },
        )
    }

    /// The failure inside `error`, if it carries one.
    #[must_use]
    pub fn of(error: &io::Error) -> Option<&Self> {
        error.get_ref().and_then(|e| e.downcast_ref::<Self>())
    }
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for HandshakeFailure {}
