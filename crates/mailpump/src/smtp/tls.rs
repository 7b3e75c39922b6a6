//! TLS for the SMTP client, through rustls with the *ring* provider.
//!
//! Certificates are verified against the webpki roots (plus any CA the caller adds from a PEM
//! file) and the server's name, sent with SNI. Turning verification off is an explicit opt-out
//! ([`TlsSettings::verify`] set to `false`); smtplib's unverified default is the bug this avoids.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
};

use super::error::TlsKind;
use super::transport::Transport;

/// How the client checks the server's certificate.
///
/// ```
/// use mailpump::smtp::tls::TlsSettings;
///
/// let settings = TlsSettings::default();
/// assert!(settings.verify && settings.cafile.is_none());
/// let config = settings.client_config()?; // shared, with rustls' session cache
/// # drop(config);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// A PEM file of extra certificate authorities to trust, besides the webpki roots.
    pub cafile: Option<PathBuf>,
    /// `false` accepts any certificate for any name: an explicit, dangerous opt-out.
    pub verify: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cafile: None,
            verify: true,
        }
    }
}

impl TlsSettings {
    /// The rustls configuration. Fails when the CA file cannot be read or holds no usable
    /// certificate (an empty trust addition is a mistake, not a no-op).
    ///
    /// Without a CA file the configuration is built once per process and shared, which also
    /// shares rustls' session cache: later connections to the same server resume their TLS
    /// session instead of running a full handshake.
    ///
    /// ```
    /// use mailpump::smtp::tls::TlsSettings;
    ///
    /// let settings = TlsSettings { cafile: Some("/no/such/ca.pem".into()), ..TlsSettings::default() };
    /// assert!(settings.client_config().is_err());
    /// ```
    pub fn client_config(&self) -> io::Result<Arc<ClientConfig>> {
        static VERIFYING: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        static UNVERIFIED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        if self.cafile.is_some() {
            return self.build();
        }
        let cell = if self.verify { &VERIFYING } else { &UNVERIFIED };
        if let Some(config) = cell.get() {
            return Ok(Arc::clone(config));
        }
        let config = self.build()?;
        Ok(Arc::clone(cell.get_or_init(|| config)))
    }

    /// Builds a fresh rustls configuration.
    fn build(&self) -> io::Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?;
        let config = if self.verify {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = &self.cafile {
                add_pem_file(&mut roots, path)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        };
        Ok(Arc::new(config))
    }
}

/// Adds every certificate of the PEM file at `path` to `roots`.
fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> io::Result<()> {
    let invalid = |e: &dyn fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cafile {}: {e}", path.display()),
        )
    };
    let mut added = 0usize;
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| invalid(&e))? {
        let cert = cert.map_err(|e| invalid(&e))?;
        roots.add(cert).map_err(|e| invalid(&e))?;
        added += 1;
    }
    if added == 0 {
        return Err(invalid(&"no PEM certificate found"));
    }
    Ok(())
}

/// The verifier behind `verify=false`: any certificate, any name. Handshake signatures are still
/// checked, so the peer must at least hold the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS session over any [`Transport`]; itself a [`Transport`].
///
/// ```no_run
/// use mailpump::smtp::tls::{TlsSettings, TlsTransport};
/// use mailpump::smtp::transport::TcpTransport;
/// use std::time::Duration;
///
/// // Implicit TLS by hand (the client does this itself for port 465 or `TlsPolicy::Implicit`).
/// let tcp = TcpTransport::connect("smtp.example.com", 465, Duration::from_secs(30))?;
/// let config = TlsSettings::default().client_config()?;
/// let tls = TlsTransport::handshake(Box::new(tcp), config, "smtp.example.com")?;
/// println!("{:?}", tls.protocol_version());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TlsTransport {
    stream: StreamOwned<ClientConnection, Box<dyn Transport>>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport")
            .field("protocol", &self.stream.conn.protocol_version())
            .finish_non_exhaustive()
    }
}

impl TlsTransport {
    /// Runs the TLS handshake over `inner` for `server_name` (a host name, sent with SNI and
    /// matched against the certificate, or an IP address matched against its IP SANs). Each I/O
    /// step is bounded by the transport's timeout. A failed handshake returns an error of kind
    /// [`io::ErrorKind::InvalidData`] carrying the rustls error, or the transport's own error.
    ///
    /// ```no_run
    /// use mailpump::smtp::tls::{TlsSettings, TlsTransport};
    /// use mailpump::smtp::transport::TcpTransport;
    /// use std::time::Duration;
    ///
    /// let tcp = TcpTransport::connect("192.0.2.1", 465, Duration::from_secs(30))?;
    /// let config = TlsSettings::default().client_config()?;
    /// // An IP address is matched against the certificate's IP SANs.
    /// let tls = TlsTransport::handshake(Box::new(tcp), config, "192.0.2.1")?;
    /// assert!(tls.protocol_version().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handshake(
        mut inner: Box<dyn Transport>,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<Self> {
        let host = server_name
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(server_name);
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid TLS server name {host:?}: {e}"),
            )
        })?;
        let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut inner)?;
        }
        Ok(Self {
            stream: StreamOwned::new(conn, inner),
        })
    }

    /// The negotiated protocol version, e.g. `TLSv1_3`.
    #[must_use]
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.stream.conn.protocol_version()
    }
}

impl Read for TlsTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for TlsTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Transport for TlsTransport {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.sock.set_timeout(timeout)
    }

    fn shutdown(&mut self) {
        // RFC 8446 §6.1: announce the end of the session, best effort, then close the socket.
        self.stream.conn.send_close_notify();
        while self.stream.conn.wants_write() {
            if matches!(
                self.stream.conn.write_tls(&mut self.stream.sock),
                Ok(0) | Err(_)
            ) {
                break;
            }
        }
        self.stream.sock.shutdown();
    }

    fn peer_is_loopback(&self) -> bool {
        self.stream.sock.peer_is_loopback()
    }

    /// Decrypted application data counts; TLS records that carry none do not. A TLS 1.3 server
    /// may send `NewSessionTicket` messages after the handshake, when the client is already
    /// writing EHLO, and a `KeyUpdate` at any time (RFC 8446 §4.6.1, §4.6.3): rustls consumes
    /// them here, and their arrival is no reason to distrust the SMTP dialogue. A `close_notify`
    /// or the end of the inner stream counts as pending: the next read reports it.
    fn has_pending_input(&mut self) -> io::Result<bool> {
        let StreamOwned { conn, sock } = &mut self.stream;
        // Each round consumes what the inner transport holds, so a peer that keeps sending
        // non-application records cannot hold the client here: after a few rounds the
        // records left are processed by the next read.
        for _ in 0..MAX_PENDING_ROUNDS {
            let state = conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
                return Ok(true);
            }
            if !sock.has_pending_input()? {
                return Ok(false);
            }
            // The inner transport has bytes, so this read does not block.
            match conn.read_tls(sock) {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// How many reads of TLS records [`TlsTransport::has_pending_input`] makes at most.
const MAX_PENDING_ROUNDS: usize = 16;

/// The rustls error inside an I/O error from a handshake or a read, if there is one.
///
/// ```
/// use mailpump::smtp::tls::rustls_error;
/// use std::io;
///
/// let error = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
/// assert_eq!(rustls_error(&error), Some(&rustls::Error::DecryptError));
/// ```
#[must_use]
pub fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
}

/// The kind of a failed handshake and a sentence about it in plain words, from the rustls error
/// inside `error` (an I/O error that carries none is a failure of the connection itself, `None`).
///
/// ```
/// use mailpump::smtp::error::TlsKind;
/// use mailpump::smtp::tls::describe_handshake_error;
/// use rustls::{CertificateError, Error};
///
/// let expired = std::io::Error::other(Error::InvalidCertificate(CertificateError::Expired));
/// let (kind, words) = describe_handshake_error(&expired).unwrap();
/// assert_eq!(kind, TlsKind::Expired);
/// assert!(words.contains("expired"));
/// assert!(describe_handshake_error(&std::io::ErrorKind::ConnectionReset.into()).is_none());
/// ```
#[must_use]
pub fn describe_handshake_error(error: &io::Error) -> Option<(TlsKind, String)> {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error};
    let described = match rustls_error(error)? {
        Error::InvalidCertificate(cert) => match cert {
            Cert::UnknownIssuer => (
                TlsKind::UnknownIssuer,
                "the server's certificate was issued by an authority this client does not trust \
                 (give its CA certificate as cafile, or check the server name)"
                    .to_owned(),
            ),
            Cert::Expired | Cert::ExpiredContext { .. } => (
                TlsKind::Expired,
                "the server's certificate has expired (the server must renew it)".to_owned(),
            ),
            Cert::NotValidYet | Cert::NotValidYetContext { .. } => (
                TlsKind::Expired,
                "the server's certificate is not valid yet (check this machine's clock)".to_owned(),
            ),
            Cert::NotValidForName | Cert::NotValidForNameContext { .. } => (
                TlsKind::NameMismatch,
                "the server's certificate is not valid for this server name (connect by the name \
                 the certificate was issued for)"
                    .to_owned(),
            ),
            Cert::Revoked => (
                TlsKind::Revoked,
                "the server's certificate has been revoked".to_owned(),
            ),
            Cert::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => (
                TlsKind::SelfSigned,
                "the server presents a self-signed CA certificate as its own, which this client \
                 does not accept as a server certificate"
                    .to_owned(),
            ),
            _ => (
                TlsKind::BadCertificate,
                "the server's certificate is invalid (a bad signature or an unsupported kind of \
                 certificate)"
                    .to_owned(),
            ),
        },
        Error::PeerIncompatible(_)
        | Error::AlertReceived(
            Alert::HandshakeFailure | Alert::ProtocolVersion | Alert::InsufficientSecurity,
        ) => (
            TlsKind::NoCommonProtocol,
            "the server and this client share no TLS version or cipher suite".to_owned(),
        ),
        Error::AlertReceived(Alert::CertificateRequired) => (
            TlsKind::ClientCertificateRequired,
            "the server requires a client certificate".to_owned(),
        ),
        Error::AlertReceived(alert) => (
            TlsKind::ServerFailed,
            format!(
                "the server ended the handshake with an error of its own (TLS alert \"{}\")",
                alert_words(*alert)
            ),
        ),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => (
            TlsKind::Handshake,
            "the server's answer is not TLS (on a STARTTLS port use tls=\"starttls\", not \
             \"implicit\")"
                .to_owned(),
        ),
        _ => (TlsKind::Handshake, "the TLS handshake failed".to_owned()),
    };
    Some(described)
}

/// An alert's name in words, as RFC 8446 §6 spells it: `DecryptError` is "decrypt error".
fn alert_words(alert: rustls::AlertDescription) -> String {
    let name = format!("{alert:?}");
    let mut words = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_read_as_words() {
        assert_eq!(
            alert_words(rustls::AlertDescription::DecryptError),
            "decrypt error"
        );
        assert_eq!(
            alert_words(rustls::AlertDescription::InternalError),
            "internal error"
        );
        let error = io::Error::other(rustls::Error::AlertReceived(
            rustls::AlertDescription::InternalError,
        ));
        let (kind, words) = describe_handshake_error(&error).unwrap();
        assert_eq!(kind, TlsKind::ServerFailed);
        assert!(words.contains("\"internal error\""), "{words}");
    }
}
