//! TLS for the SMTP client, through rustls with the *ring* provider.
//!
//! # Which certificates are trusted
//!
//! By default the server's chain must lead to a root of the system's trust store, found as
//! OpenSSL-based clients find it ([`trusted_roots`]): the files named by `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when either is set, else the platform's store (on Linux the CA bundle and
//! directory OpenSSL uses). Where that holds no certificate at all, the Mozilla roots built into
//! mailpump are used instead. The certificate must be valid for the server's name, sent with SNI.
//!
//! [`TlsSettings`] changes that per connection:
//!
//! - `cafile`: its certificates are trusted as well. A CA in it vouches for the chains it
//!   issued; a certificate in it that the server presents as its own is trusted as itself
//!   (whether or not it says `CA:TRUE`, as OpenSSL treats a self-signed certificate in its trust
//!   store), its dates and names still checked.
//! - `fingerprints`: the server's certificate is accepted by its SHA-256 digest alone, and no
//!   other is (Postfix's `fingerprint` security level).
//! - `verify` set to `false` accepts any certificate for any name: an explicit, dangerous
//!   opt-out (smtplib's unverified default is the bug this avoids).
//!
//! `certfile` and `keyfile` give a client certificate for servers that ask for one.

mod describe;
mod trust;
mod verify;
mod watch;

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub use super::fingerprint::Fingerprint;
pub use describe::{
    ClientCertificateWanted, PlainSmtpAnswer, describe_handshake_error, rustls_error,
};
pub use trust::{RootSource, TrustedRoots, trusted_roots};
pub use verify::CertificateProblem;
pub use watch::HandshakeWatch;

use super::connector::TlsConnector;
use super::transport::Transport;
use verify::{AcceptAnyCertificate, Verifier};

/// How the client checks the server's certificate, and the certificate it shows itself.
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
    /// A PEM file of certificates to trust besides the system's: CAs, and server certificates
    /// trusted as themselves.
    pub cafile: Option<PathBuf>,
    /// `false` accepts any certificate for any name: an explicit, dangerous opt-out.
    pub verify: bool,
    /// A PEM file with the client's certificate, then its chain; and its private key unless
    /// `keyfile` is given (`SSLContext.load_cert_chain`'s convention).
    pub certfile: Option<PathBuf>,
    /// A PEM file with the client certificate's private key.
    pub keyfile: Option<PathBuf>,
    /// Pinned SHA-256 fingerprints of the server's certificate; when there are any, they alone
    /// decide.
    pub fingerprints: Vec<Fingerprint>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cafile: None,
            verify: true,
            certfile: None,
            keyfile: None,
            fingerprints: Vec::new(),
        }
    }
}

impl TlsSettings {
    /// The rustls configuration. Fails when a file cannot be read or holds nothing usable (an
    /// empty trust addition is a mistake, not a no-op), or when a key is given without its
    /// certificate.
    ///
    /// Without a file or a fingerprint the configuration is shared by every connection of the
    /// process (built again when `SSL_CERT_FILE` or `SSL_CERT_DIR` change), which also shares
    /// rustls' session cache: later connections to the same server resume their TLS session
    /// instead of running a full handshake.
    ///
    /// ```
    /// use mailpump::smtp::tls::TlsSettings;
    ///
    /// let settings = TlsSettings { cafile: Some("/no/such/ca.pem".into()), ..TlsSettings::default() };
    /// assert!(settings.client_config().is_err());
    /// ```
    pub fn client_config(&self) -> io::Result<Arc<ClientConfig>> {
        static VERIFYING: Mutex<Option<(usize, Arc<ClientConfig>)>> = Mutex::new(None);
        static UNVERIFIED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        let per_connection = self.cafile.is_some()
            || self.certfile.is_some()
            || self.keyfile.is_some()
            || !self.fingerprints.is_empty();
        if per_connection {
            return self.build();
        }
        if !self.verify {
            if let Some(config) = UNVERIFIED.get() {
                return Ok(Arc::clone(config));
            }
            let config = self.build()?;
            return Ok(Arc::clone(UNVERIFIED.get_or_init(|| config)));
        }
        // The roots are loaded again when the environment changes; the shared configuration
        // follows them.
        let roots = trusted_roots();
        let id = Arc::as_ptr(&roots.store) as usize;
        let mut cached = VERIFYING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, config)) = cached.as_ref().filter(|(i, _)| *i == id) {
            return Ok(Arc::clone(config));
        }
        let config = self.build_with(&roots)?;
        *cached = Some((id, Arc::clone(&config)));
        Ok(config)
    }

    /// Builds a fresh rustls configuration.
    fn build(&self) -> io::Result<Arc<ClientConfig>> {
        self.build_with(&trusted_roots())
    }

    fn build_with(&self, roots: &TrustedRoots) -> io::Result<Arc<ClientConfig>> {
        // rustls 0.23.48 deprecates the ring provider for lacking post-quantum key exchange
        // (0.24 moves it to its own crate); ring stays the choice for building without a C
        // toolchain, and the deprecation is no bug to fix here.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .dangerous();
        let builder = if self.verify {
            let mut store: RootCertStore = (*roots.store).clone();
            let mut as_itself = Vec::new();
            if let Some(path) = &self.cafile {
                as_itself = pem_certificates(path, "cafile")?;
                for cert in &as_itself {
                    store.add(cert.clone()).map_err(|e| {
                        invalid(
                            path,
                            "cafile",
                            &format!("a certificate cannot be used: {e}"),
                        )
                    })?;
                }
            }
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider))
                    .build()
                    .map_err(io::Error::other)?;
            builder.with_custom_certificate_verifier(Arc::new(Verifier {
                webpki,
                as_itself,
                pins: self.fingerprints.clone(),
                algorithms,
            }))
        } else {
            builder.with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { algorithms }))
        };
        let config = match (&self.certfile, &self.keyfile) {
            (None, None) => builder.with_client_cert_resolver(Arc::new(NoClientCertificate)),
            (None, Some(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "keyfile was given without certfile",
                ));
            }
            (Some(certfile), keyfile) => {
                let chain = pem_certificates(certfile, "certfile")?;
                let key_path = keyfile.as_ref().unwrap_or(certfile);
                let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
                    let what = if keyfile.is_some() {
                        "keyfile"
                    } else {
                        "certfile"
                    };
                    invalid(key_path, what, &format!("no usable PEM private key ({e})"))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid(key_path, "keyfile", &e))?
            }
        };
        Ok(Arc::new(config))
    }
}

/// An error about the file `path` given as `option`.
fn invalid(path: &Path, option: &str, why: &dyn fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{option} {}: {why}", path.display()),
    )
}

/// Every certificate of the PEM file at `path`, at least one.
fn pem_certificates(path: &Path, option: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(path, option, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, option, &e))?;
    if certs.is_empty() {
        return Err(invalid(path, option, &"no PEM certificate found"));
    }
    Ok(certs)
}

/// The built-in TLS as a [`TlsConnector`]: rustls with a configuration from
/// [`TlsSettings::client_config`]. The client uses it unless another connector is configured.
///
/// ```
/// use mailpump::smtp::tls::{RustlsConnector, TlsSettings};
///
/// let connector = RustlsConnector(TlsSettings::default().client_config()?);
/// # drop(connector);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RustlsConnector(pub Arc<ClientConfig>);

impl TlsConnector for RustlsConnector {
    fn handshake(
        &self,
        inner: Box<dyn Transport>,
        server_name: &str,
    ) -> io::Result<Box<dyn Transport>> {
        let tls = TlsTransport::handshake(inner, Arc::clone(&self.0), server_name)?;
        Ok(Box::new(tls))
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
        ASKED_FOR_CERTIFICATE.with(|asked| asked.set(false));
        let mut watched = FirstBytes {
            inner: &mut inner,
            seen: Vec::new(),
        };
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut watched) {
                // A server that speaks plain SMTP here sent its greeting (or an error reply to
                // the ClientHello): say so rather than report a corrupt TLS record.
                if let Some(answer) = PlainSmtpAnswer::detect(&watched.seen) {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, answer));
                }
                // A TLS 1.2 server that wants a client certificate and got none hangs up or
                // says only "handshake failure" (RFC 5246 §7.4.6); its request tells why.
                let unexplained = !matches!(
                    rustls_error(&e),
                    Some(rustls::Error::InvalidCertificate(_) | rustls::Error::AlertReceived(_))
                ) || matches!(
                    rustls_error(&e),
                    Some(rustls::Error::AlertReceived(
                        rustls::AlertDescription::HandshakeFailure
                    ))
                );
                if unexplained && !super::transport::is_timeout(&e) && ASKED_FOR_CERTIFICATE.get() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        ClientCertificateWanted,
                    ));
                }
                return Err(e);
            }
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

/// The transport during the handshake, keeping the first bytes the server sent.
struct FirstBytes<'a> {
    inner: &'a mut Box<dyn Transport>,
    seen: Vec<u8>,
}

/// As many bytes as tell an SMTP reply line from a TLS record, and show it.
const FIRST_BYTES: usize = 80;

impl Read for FirstBytes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = FIRST_BYTES.saturating_sub(self.seen.len()).min(n);
        self.seen.extend_from_slice(&buf[..room]);
        Ok(n)
    }
}

impl Write for FirstBytes<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

thread_local! {
    /// Whether the server asked for a client certificate during the handshake running on this
    /// thread (a handshake runs on one thread from start to end).
    static ASKED_FOR_CERTIFICATE: Cell<bool> = const { Cell::new(false) };
}

/// The client certificate resolver when none was given: offers none, and notes that the server
/// asked, so that a failed handshake can say so.
#[derive(Debug)]
struct NoClientCertificate;

impl rustls::client::ResolvesClientCert for NoClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        ASKED_FOR_CERTIFICATE.with(|asked| asked.set(true));
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}
