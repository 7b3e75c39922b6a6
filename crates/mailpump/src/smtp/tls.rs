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
}

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
