//! A scripted SMTP server on 127.0.0.1 for the client tests, and a recording transport.
//!
//! Each test starts a server thread that runs a closure over one accepted connection: the
//! closure sends replies and reads the client's lines, and everything the client sent is
//! recorded. Reads on the server side wait for the client's bytes (no sleeps); a generous read
//! timeout only keeps a broken test from hanging forever.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mailpump::smtp::client::{Client, ClientConfig, TlsPolicy};
use mailpump::smtp::transport::{TcpTransport, Transport};

/// How long the server waits for the client before declaring the test broken.
const SERVER_PATIENCE: Duration = Duration::from_secs(20);

/// The server's side of one connection.
pub struct Conn {
    plain: Option<TcpStream>,
    /// The TLS stream once `accept_tls` has run.
    tls: Option<Box<dyn ReadWrite + Send>>,
    /// Bytes read and not yet consumed by `line` / `data`.
    pending: Vec<u8>,
    /// Everything the client sent, in order (after TLS decryption).
    pub received: Vec<u8>,
}

impl Conn {
    fn stream(&mut self) -> &mut dyn ReadWrite {
        if let Some(t) = self.tls.as_mut() {
            t
        } else {
            self.plain.as_mut().expect("connection")
        }
    }

    /// Writes `s` as is (the script spells out its CRLFs).
    pub fn send(&mut self, s: &str) {
        self.send_bytes(s.as_bytes());
    }

    /// Writes raw bytes.
    pub fn send_bytes(&mut self, b: &[u8]) {
        let s = self.stream();
        s.write_all(b).expect("server write");
        s.flush().expect("server flush");
    }

    /// Writes, ignoring errors (the client may already have hung up).
    pub fn send_lossy(&mut self, b: &[u8]) {
        let s = self.stream();
        let _ = s.write_all(b).and_then(|()| s.flush());
    }

    /// Reads more bytes; `false` at end of stream.
    fn more(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match self.stream().read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                self.received.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("server read: {e}"),
        }
    }

    /// Reads one line and returns it without its CRLF; `None` at end of stream.
    pub fn try_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..i]).into_owned();
                self.pending.drain(..i + 2);
                return Some(line);
            }
            if !self.more() {
                return None;
            }
        }
    }

    /// Reads one line; the client must send one.
    pub fn line(&mut self) -> String {
        self.try_line()
            .expect("the client closed the connection before sending a line")
    }

    /// Reads one line and checks it.
    pub fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }

    /// Reads a message body up to and including the end-of-data mark.
    pub fn data(&mut self) -> Vec<u8> {
        loop {
            let end = if self.pending.starts_with(b".\r\n") {
                Some(3)
            } else {
                self.pending
                    .windows(5)
                    .position(|w| w == b"\r\n.\r\n")
                    .map(|i| i + 5)
            };
            if let Some(end) = end {
                return self.pending.drain(..end).collect();
            }
            assert!(
                self.more(),
                "the client closed the connection inside the message"
            );
        }
    }

    /// Reads until the client closes the connection; returns what came after the last consumed
    /// byte.
    pub fn until_eof(&mut self) -> Vec<u8> {
        while self.more() {}
        std::mem::take(&mut self.pending)
    }

    /// Answers the usual greeting and EHLO with `caps` (e.g. `["PIPELINING", "SIZE 1000"]`).
    pub fn hello(&mut self, caps: &[&str]) {
        self.send("220 test.example ESMTP ready\r\n");
        let ehlo = self.line();
        assert!(ehlo.starts_with("EHLO "), "expected EHLO, got {ehlo:?}");
        self.ehlo_reply(caps);
    }

    /// The reply to EHLO advertising `caps`.
    pub fn ehlo_reply(&mut self, caps: &[&str]) {
        let mut reply = String::from("250");
        if caps.is_empty() {
            reply.push_str(" test.example\r\n");
        } else {
            reply.push_str("-test.example\r\n");
            for (i, c) in caps.iter().enumerate() {
                let sep = if i + 1 == caps.len() { ' ' } else { '-' };
                let _ = write!(reply, "250{sep}{c}\r\n");
            }
        }
        self.send(&reply);
    }

    /// Runs the server side of a TLS handshake on this connection.
    #[cfg(feature = "tls")]
    pub fn accept_tls(&mut self, tls: &Arc<rustls::ServerConfig>) {
        assert!(
            self.pending.is_empty(),
            "the client sent plaintext before the TLS handshake"
        );
        let mut tcp = self.plain.take().expect("plain connection");
        let mut conn = rustls::ServerConnection::new(Arc::clone(tls)).expect("server connection");
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).expect("server handshake");
        }
        self.tls = Some(Box::new(rustls::StreamOwned::new(conn, tcp)));
    }

    /// Tries a TLS handshake that the client is expected to abort; returns whether it failed.
    #[cfg(feature = "tls")]
    pub fn tls_fails(&mut self, tls: &Arc<rustls::ServerConfig>) -> bool {
        let mut tcp = self.plain.take().expect("plain connection");
        let mut conn = rustls::ServerConnection::new(Arc::clone(tls)).expect("server connection");
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                return true;
            }
        }
        false
    }
}

/// `Read + Write` as one object type.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The script of one connection.
pub type Script = Box<dyn FnOnce(&mut Conn) + Send>;

/// A running scripted server.
pub struct Server {
    pub port: u16,
    handle: JoinHandle<Vec<u8>>,
}

impl Server {
    /// Starts a server that runs `script` on the first connection.
    pub fn start(script: impl FnOnce(&mut Conn) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            // Each scripted write goes out at once: with Nagle's algorithm a second small write
            // (an unasked reply, say) would wait for the client's delayed ACK of the first.
            stream.set_nodelay(true).expect("nodelay");
            stream
                .set_read_timeout(Some(SERVER_PATIENCE))
                .expect("timeout");
            stream
                .set_write_timeout(Some(SERVER_PATIENCE))
                .expect("timeout");
            let mut conn = Conn {
                plain: Some(stream),
                tls: None,
                pending: Vec::new(),
                received: Vec::new(),
            };
            script(&mut conn);
            conn.received
        });
        Self { port, handle }
    }

    /// Starts a server that runs `scripts[i]` on its `i`-th connection, one connection at a
    /// time (for a pool that reconnects); every byte of every connection is recorded in turn.
    pub fn start_each(scripts: Vec<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handle = std::thread::spawn(move || {
            let mut received = Vec::new();
            for script in scripts {
                let (stream, _) = listener.accept().expect("accept");
                stream.set_nodelay(true).expect("nodelay");
                stream
                    .set_read_timeout(Some(SERVER_PATIENCE))
                    .expect("timeout");
                stream
                    .set_write_timeout(Some(SERVER_PATIENCE))
                    .expect("timeout");
                let mut conn = Conn {
                    plain: Some(stream),
                    tls: None,
                    pending: Vec::new(),
                    received: Vec::new(),
                };
                script(&mut conn);
                received.append(&mut conn.received);
            }
            received
        });
        Self { port, handle }
    }

    /// A client configuration for this server: plaintext unless a test says otherwise, a timeout
    /// long enough never to fire in a passing test.
    #[must_use]
    pub fn config(&self) -> ClientConfig {
        ClientConfig {
            server: "127.0.0.1".into(),
            port: self.port,
            tls: TlsPolicy::None,
            timeout: Duration::from_secs(10),
            domain: "client.example".into(),
            ..ClientConfig::default()
        }
    }

    /// Waits for the script to end; returns every byte the client sent. A panic in the script
    /// (a failed `expect`) fails the test here.
    pub fn finish(self) -> Vec<u8> {
        self.handle.join().expect("the server script panicked")
    }

    /// [`Server::finish`] as text.
    pub fn finish_text(self) -> String {
        String::from_utf8(self.finish()).expect("utf-8")
    }

    /// A client connected to this server with [`Server::config`], not yet greeted.
    #[must_use]
    pub fn client(&self) -> Client {
        Client::connect(&self.config()).expect("connect")
    }

    /// A client connected through a [`Recording`] transport, not yet greeted, and the record of
    /// its writes.
    #[must_use]
    pub fn recorded_client(&self) -> (Client, Writes) {
        Recording::connect(self).client(&self.config())
    }
}

/// Starts a server that runs `script`, connects a client and greets it: the opening of most
/// session tests. The script begins with the greeting and the EHLO reply ([`Conn::hello`]).
pub fn greeted(script: impl FnOnce(&mut Conn) + Send + 'static) -> (Server, Client) {
    let server = Server::start(script);
    let mut client = server.client();
    client.greet(None).expect("greet");
    (server, client)
}

/// Starts a server that runs `script`, connects a client and greets it, where the greeting must
/// fail: the server, the client and the error.
pub fn greet_fails(
    script: impl FnOnce(&mut Conn) + Send + 'static,
) -> (Server, Client, mailpump::smtp::error::SmtpError) {
    let server = Server::start(script);
    let mut client = server.client();
    let err = client.greet(None).expect_err("the greeting must fail");
    (server, client, err)
}

/// [`greeted`] through a [`Recording`] transport: also the record of the client's writes.
pub fn greeted_recorded(
    script: impl FnOnce(&mut Conn) + Send + 'static,
) -> (Server, Client, Writes) {
    let server = Server::start(script);
    let (mut client, writes) = server.recorded_client();
    client.greet(None).expect("greet");
    (server, client, writes)
}

/// Every `write` call a [`Recording`] transport passed on, in order.
pub type Writes = Arc<Mutex<Vec<Vec<u8>>>>;

/// A transport that records each `write` call and can pretend its peer is remote.
pub struct Recording {
    inner: TcpTransport,
    pub writes: Writes,
    pub loopback: bool,
}

impl Recording {
    /// Connects to the server.
    #[must_use]
    pub fn connect(server: &Server) -> Self {
        let inner = TcpTransport::connect("127.0.0.1", server.port, Duration::from_secs(10))
            .expect("connect");
        Self {
            inner,
            writes: Arc::default(),
            loopback: true,
        }
    }

    /// A client over this transport with `config`, not yet greeted, and the record of its writes.
    #[must_use]
    pub fn client(self, config: &ClientConfig) -> (Client, Writes) {
        let writes = Arc::clone(&self.writes);
        let client = Client::from_transport(Box::new(self), config).expect("client");
        (client, writes)
    }

    /// Connects to the server, posing as a peer that is not on loopback (where AUTH in
    /// plaintext is refused).
    #[must_use]
    pub fn remote(server: &Server) -> Self {
        Self {
            loopback: false,
            ..Self::connect(server)
        }
    }
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.writes.lock().unwrap().push(buf[..n].to_vec());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for Recording {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_timeout(timeout)
    }

    fn shutdown(&mut self) {
        self.inner.shutdown();
    }

    fn peer_is_loopback(&self) -> bool {
        self.loopback
    }
}

/// A CA, a server certificate for `localhost` and 127.0.0.1 signed by it, the CA written to a
/// PEM file (the client's `cafile`), and the server's rustls configuration.
#[cfg(feature = "tls")]
pub struct TestTls {
    pub cafile: std::path::PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

#[cfg(feature = "tls")]
impl TestTls {
    /// Generates fresh keys and certificates.
    #[must_use]
    pub fn new() -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };

        let mut ca_params = CertificateParams::new(Vec::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mailpump test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("ca key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("cert");

        let dir = std::env::temp_dir().join(format!(
            "mailpump-client-tests-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cafile = dir.join("ca.pem");
        std::fs::write(&cafile, ca_cert.pem()).expect("write cafile");

        // The client's provider (see `smtp/tls`), deprecated since rustls 0.23.48.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
            )
            .expect("server config");
        Self {
            cafile,
            server: Arc::new(server),
        }
    }
}

#[cfg(feature = "tls")]
impl TestTls {
    /// A client configuration for `server` under `policy` that trusts this CA and expects the
    /// name `localhost`.
    #[must_use]
    pub fn config(&self, server: &Server, policy: TlsPolicy) -> ClientConfig {
        ClientConfig {
            server: "localhost".into(),
            tls: policy,
            cafile: Some(self.cafile.clone()),
            ..server.config()
        }
    }
}

#[cfg(feature = "tls")]
impl Drop for TestTls {
    fn drop(&mut self) {
        if let Some(dir) = self.cafile.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
