//! `ssl_context=`: TLS through Python's `ssl` module (OpenSSL) instead of rustls.
//!
//! The context wraps a pair of `ssl.MemoryBIO`s (`SSLContext.wrap_bio`), and the `SSLObject` it
//! returns is driven over the connection's transport, which stays the core's (with
//! [`crate::interrupt::Interruptible`] beneath, so Ctrl-C still works). The GIL is held only
//! while Python encrypts or decrypts; reads and writes on the network run without it. Decrypted
//! bytes are buffered here, so that [`Transport::has_pending_input`] counts application data
//! only: TLS 1.3 session tickets, which OpenSSL consumes, are not data the server sent unasked.

use std::io::{self, Read, Write};
use std::time::Duration;

use mailpump::smtp::connector::{HandshakeFailure, TlsConnector};
use mailpump::smtp::error::TlsKind;
use mailpump::smtp::tls::HandshakeWatch;
use mailpump::smtp::transport::Transport;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyType};

use crate::errors::PythonError;

/// The most plaintext a TLS record carries (RFC 8446 §5.1): one `SSLObject.read` returns at most
/// this much.
const RECORD: usize = 16 * 1024;

/// The most plaintext given to `SSLObject.write` at once, which bounds the ciphertext held.
const WRITE_CHUNK: usize = 256 * 1024;

/// How many ciphertext reads [`Transport::has_pending_input`] makes at most, so that a peer that
/// keeps sending records without data cannot hold the client there.
const MAX_PENDING_ROUNDS: usize = 16;

/// An `ssl.SSLContext` as the core's [`TlsConnector`].
pub struct SslContextConnector {
    context: Py<PyAny>,
}

impl SslContextConnector {
    /// Wraps `context`, an `ssl.SSLContext` (the caller has checked its type).
    pub fn new(context: Py<PyAny>) -> Self {
        Self { context }
    }
}

impl TlsConnector for SslContextConnector {
    fn handshake(
        &self,
        inner: Box<dyn Transport>,
        server_name: &str,
    ) -> io::Result<Box<dyn Transport>> {
        let session = Python::attach(|py| Session::new(py, self.context.bind(py), server_name))?;
        let mut tls = PyTls {
            inner,
            session,
            plain: Vec::new(),
            pos: 0,
            ended: false,
            net: Vec::new(),
        };
        tls.handshake()?;
        Ok(Box::new(tls))
    }
}

/// The Python side of one TLS session: the `SSLObject`, its two BIOs, and the exception classes
/// that tell how a call went.
struct Session {
    ssl: Py<PyAny>,
    incoming: Py<PyAny>,
    outgoing: Py<PyAny>,
    want_read: Py<PyType>,
    zero_return: Py<PyType>,
    eof: Py<PyType>,
    verification: Py<PyType>,
    ssl_error: Py<PyType>,
}

/// How a call on the `SSLObject` went, when it did not fail.
enum Outcome<T> {
    Done(T),
    /// It needs more ciphertext from the server.
    WantRead,
    /// The server ended the TLS session (`close_notify`).
    Closed,
}

impl Session {
    fn new(py: Python<'_>, context: &Bound<'_, PyAny>, server_name: &str) -> io::Result<Self> {
        let made = (|| -> PyResult<Self> {
            let ssl = py.import("ssl")?;
            let class = |name: &str| -> PyResult<Py<PyType>> {
                Ok(ssl.getattr(name)?.cast_into::<PyType>()?.unbind())
            };
            let incoming = ssl.getattr("MemoryBIO")?.call0()?;
            let outgoing = ssl.getattr("MemoryBIO")?.call0()?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("server_side", false)?;
            kwargs.set_item("server_hostname", server_name)?;
            let object = context.call_method("wrap_bio", (&incoming, &outgoing), Some(&kwargs))?;
            Ok(Self {
                ssl: object.unbind(),
                incoming: incoming.unbind(),
                outgoing: outgoing.unbind(),
                want_read: class("SSLWantReadError")?,
                zero_return: class("SSLZeroReturnError")?,
                eof: class("SSLEOFError")?,
                verification: class("SSLCertVerificationError")?,
                ssl_error: class("SSLError")?,
            })
        })();
        // A server-side context, a bad server name, ...: the context cannot be used here.
        made.map_err(|e| {
            HandshakeFailure::io(
                TlsKind::Config,
                format!(
                    "ssl_context cannot start a client session: {}",
                    text(py, &e)
                ),
            )
        })
    }

    /// Calls `f` on the `SSLObject`, then moves the ciphertext it produced into `net`.
    fn call<T>(
        &self,
        py: Python<'_>,
        net: &mut Vec<u8>,
        f: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
    ) -> io::Result<Outcome<T>> {
        let outcome = match f(self.ssl.bind(py)) {
            Ok(value) => Outcome::Done(value),
            Err(e) if e.is_instance(py, self.want_read.bind(py)) => Outcome::WantRead,
            Err(e) if e.is_instance(py, self.zero_return.bind(py)) => Outcome::Closed,
            Err(e) => {
                // What OpenSSL wants to send goes out even on failure: the alert that tells the
                // server why.
                let _ = self.drain(py, net);
                return Err(self.failure(py, e));
            }
        };
        self.drain(py, net).map_err(|e| self.failure(py, e))?;
        Ok(outcome)
    }

    /// Appends the ciphertext waiting in the outgoing BIO to `net`.
    fn drain(&self, py: Python<'_>, net: &mut Vec<u8>) -> PyResult<()> {
        let outgoing = self.outgoing.bind(py);
        let pending: usize = outgoing.getattr("pending")?.extract()?;
        if pending > 0 {
            let data = outgoing.call_method0("read")?;
            net.extend_from_slice(data.cast::<PyBytes>()?.as_bytes());
        }
        Ok(())
    }

    /// `e` as the `io::Error` the core understands: the certificate and handshake failures as
    /// their TLS kinds with advice for a context, Ctrl-C kept to be raised as itself.
    fn failure(&self, py: Python<'_>, e: PyErr) -> io::Error {
        if !e.is_instance_of::<PyException>(py) {
            crate::interrupt::set_pending(py, &e);
            return io::Error::other(PythonError(e));
        }
        if e.is_instance(py, self.verification.bind(py)) {
            let value = e.value(py);
            let code: i64 = value
                .getattr("verify_code")
                .and_then(|c| c.extract())
                .unwrap_or(0);
            let message: String = value
                .getattr("verify_message")
                .and_then(|m| m.extract())
                .unwrap_or_default();
            let (kind, advice) = certificate_advice(code);
            return HandshakeFailure::io(
                kind,
                format!("OpenSSL could not verify the server's certificate ({message}): {advice}"),
            );
        }
        if e.is_instance(py, self.eof.bind(py)) {
            return io::Error::new(io::ErrorKind::UnexpectedEof, text(py, &e));
        }
        if e.is_instance(py, self.ssl_error.bind(py)) {
            let reason: String = e
                .value(py)
                .getattr("reason")
                .and_then(|r| r.extract())
                .unwrap_or_default();
            let (kind, advice) = handshake_advice(&reason);
            return HandshakeFailure::io(kind, format!("{} ({advice})", text(py, &e)));
        }
        io::Error::other(PythonError(e))
    }
}

/// The kind of a failed certificate check and what to do, from OpenSSL's verify code
/// (`X509_V_ERR_*`).
fn certificate_advice(code: i64) -> (TlsKind, &'static str) {
    match code {
        // DEPTH_ZERO_SELF_SIGNED_CERT
        18 => (
            TlsKind::SelfSigned,
            "the server's certificate is self-signed: trust it with \
             context.load_verify_locations(cafile=...)",
        ),
        // UNABLE_TO_GET_ISSUER_CERT, SELF_SIGNED_CERT_IN_CHAIN, UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        // UNABLE_TO_VERIFY_LEAF_SIGNATURE
        2 | 19 | 20 | 21 => (
            TlsKind::UnknownIssuer,
            "the context does not trust its issuer: load the CA with \
             context.load_verify_locations(cafile=...), or install it in the system store that \
             ssl.create_default_context() reads",
        ),
        // CERT_NOT_YET_VALID, CERT_HAS_EXPIRED
        9 | 10 => (
            TlsKind::Expired,
            "the certificate is outside its validity dates: the server must renew it (or this \
             machine's clock is wrong)",
        ),
        // HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
        62 | 64 => (
            TlsKind::NameMismatch,
            "the certificate is not valid for the name connected to: connect by a name it is \
             valid for",
        ),
        // CERT_REVOKED
        23 => (
            TlsKind::Revoked,
            "the certificate was revoked: the server must replace it",
        ),
        _ => (
            TlsKind::BadCertificate,
            "the server must present a certificate the context accepts",
        ),
    }
}

/// The kind of a failed handshake and what to do, from OpenSSL's reason (`ssl.SSLError.reason`).
fn handshake_advice(reason: &str) -> (TlsKind, &'static str) {
    match reason {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED" | "PEER_DID_NOT_RETURN_A_CERTIFICATE" => (
            TlsKind::ClientCertificateRequired,
            "the server requires a client certificate: load one with \
             context.load_cert_chain(certfile, keyfile)",
        ),
        "SSLV3_ALERT_BAD_CERTIFICATE"
        | "SSLV3_ALERT_CERTIFICATE_UNKNOWN"
        | "TLSV1_ALERT_UNKNOWN_CA"
        | "TLSV1_ALERT_ACCESS_DENIED" => (
            TlsKind::ClientCertificateRequired,
            "the server did not accept the client certificate, or wanted one: load one it \
             trusts with context.load_cert_chain(certfile, keyfile)",
        ),
        "SSLV3_ALERT_HANDSHAKE_FAILURE" => (
            TlsKind::NoCommonProtocol,
            "the server refused the handshake: it shares no TLS version or cipher suite with the \
             context (see context.minimum_version and context.set_ciphers), or it requires a \
             client certificate (context.load_cert_chain)",
        ),
        "NO_PROTOCOLS_AVAILABLE"
        | "UNSUPPORTED_PROTOCOL"
        | "TLSV1_ALERT_PROTOCOL_VERSION"
        | "NO_SHARED_CIPHER"
        | "NO_CIPHERS_AVAILABLE"
        | "NO_SUITABLE_SIGNATURE_ALGORITHM"
        | "TLSV1_ALERT_INSUFFICIENT_SECURITY"
        | "DH_KEY_TOO_SMALL" => (
            TlsKind::NoCommonProtocol,
            "the server and the context share no TLS version or cipher suite: see \
             context.minimum_version and context.set_ciphers",
        ),
        "TLSV1_ALERT_INTERNAL_ERROR" | "TLSV1_ALERT_DECODE_ERROR" => (
            TlsKind::ServerFailed,
            "the server's own TLS failed: the fault is on the server's side",
        ),
        _ => (
            TlsKind::Handshake,
            "the server may not speak TLS on this port: check the port and the TLS setting",
        ),
    }
}

/// A failed handshake in the words the server's first bytes allow: a plain SMTP greeting where
/// TLS was expected, or a TLS 1.2 server that asked for a client certificate and then ended the
/// handshake without a reason of its own.
fn explain(watch: &HandshakeWatch, e: io::Error) -> io::Error {
    if let Some(answer) = watch.plain_smtp_answer() {
        return io::Error::new(io::ErrorKind::InvalidData, answer);
    }
    let unexplained = match HandshakeFailure::of(&e) {
        Some(failure) => matches!(
            failure.kind,
            TlsKind::NoCommonProtocol | TlsKind::Handshake | TlsKind::ClientCertificateRequired
        ),
        None => e.kind() == io::ErrorKind::UnexpectedEof,
    };
    if unexplained && watch.asked_for_certificate() {
        return HandshakeFailure::io(
            TlsKind::ClientCertificateRequired,
            format!(
                "the server asked for a client certificate and ended the handshake without \
                 one ({e}): load one it trusts with context.load_cert_chain(certfile, keyfile)"
            ),
        );
    }
    e
}

/// The text of an exception, for a message.
fn text(py: Python<'_>, e: &PyErr) -> String {
    e.value(py)
        .str()
        .map_or_else(|_| "an exception".to_owned(), |s| s.to_string())
}

/// A TLS session run by Python's `ssl` over the core's transport.
struct PyTls {
    inner: Box<dyn Transport>,
    session: Session,
    /// Decrypted bytes not read yet, from `pos`.
    plain: Vec<u8>,
    pos: usize,
    /// The server ended the TLS session or the stream: reads return 0.
    ended: bool,
    /// Ciphertext on its way to or from the network; reused.
    net: Vec<u8>,
}

impl PyTls {
    fn handshake(&mut self) -> io::Result<()> {
        let mut watch = HandshakeWatch::default();
        loop {
            let step = Python::attach(|py| {
                self.session.call(py, &mut self.net, |ssl| {
                    ssl.call_method0("do_handshake").map(drop)
                })
            });
            let step = match step {
                Ok(step) => step,
                Err(e) => {
                    // The alert that tells the server why goes out, best effort.
                    let _ = self.send_net();
                    return Err(explain(&watch, e));
                }
            };
            self.send_net()?;
            match step {
                Outcome::Done(()) => return Ok(()),
                Outcome::WantRead => {
                    if !self.receive(Some(&mut watch))? {
                        let eof = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection",
                        );
                        return Err(explain(&watch, eof));
                    }
                }
                Outcome::Closed => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server ended the TLS session",
                    ));
                }
            }
        }
    }

    /// Writes the ciphertext in `net` to the network (without the GIL).
    fn send_net(&mut self) -> io::Result<()> {
        if self.net.is_empty() {
            return Ok(());
        }
        let result = self.inner.write_all(&self.net);
        self.net.clear();
        result?;
        self.inner.flush()
    }

    /// Reads ciphertext from the network (without the GIL) into the incoming BIO; `false` at
    /// the end of the stream. During the handshake the first bytes are kept in `first`.
    fn receive(&mut self, watch: Option<&mut HandshakeWatch>) -> io::Result<bool> {
        self.net.clear();
        self.net.resize(RECORD + 512, 0);
        let n = loop {
            match self.inner.read(&mut self.net) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.net.clear();
                return Err(e);
            }
        };
        if let Some(watch) = watch {
            watch.feed(&self.net[..n]);
        }
        let incoming = &self.session.incoming;
        let data = &self.net[..n];
        let fed = Python::attach(|py| {
            let bio = incoming.bind(py);
            if n == 0 {
                bio.call_method0("write_eof").map(drop)
            } else {
                bio.call_method1("write", (PyBytes::new(py, data),))
                    .map(drop)
            }
        });
        self.net.clear();
        fed.map_err(|e| io::Error::other(PythonError(e)))?;
        Ok(n > 0)
    }

    /// Decrypts one record's worth into `plain` (empty): `true` when that gave data or ended
    /// the session, `false` when more ciphertext is needed.
    fn decrypt(&mut self) -> io::Result<bool> {
        self.plain.clear();
        self.pos = 0;
        let Self {
            session,
            net,
            plain,
            ..
        } = self;
        let step = Python::attach(|py| {
            session.call(py, net, |ssl| {
                let data = ssl.call_method1("read", (RECORD,))?;
                plain.extend_from_slice(data.cast::<PyBytes>()?.as_bytes());
                Ok(())
            })
        });
        let step = step.map_err(Self::after_handshake)?;
        // Reading may answer the server (a TLS 1.3 key update).
        self.send_net()?;
        match step {
            Outcome::Done(()) => Ok(true),
            Outcome::WantRead => Ok(false),
            Outcome::Closed => {
                self.ended = true;
                Ok(true)
            }
        }
    }

    /// An error once the session is up: the same error, its kind kept, its words describing a
    /// broken connection rather than a handshake.
    fn after_handshake(e: io::Error) -> io::Error {
        match HandshakeFailure::of(&e) {
            Some(failure) => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TLS error: {}", failure.reason),
            ),
            None => e,
        }
    }
}

impl Read for PyTls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.pos);
                buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            if !self.decrypt()? && !self.receive(None)? {
                // The stream ended without close_notify: the reply parser reports a lost
                // connection.
                self.ended = true;
            }
        }
    }
}

impl Write for PyTls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(WRITE_CHUNK);
        let Self { session, net, .. } = self;
        let step = Python::attach(|py| {
            session.call(py, net, |ssl| {
                ssl.call_method1("write", (PyBytes::new(py, &buf[..n]),))
                    .map(drop)
            })
        });
        let step = step.map_err(Self::after_handshake)?;
        self.send_net()?;
        match step {
            Outcome::Done(()) => Ok(n),
            Outcome::WantRead | Outcome::Closed => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the server ended the TLS session",
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for PyTls {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_timeout(timeout)
    }

    fn shutdown(&mut self) {
        // RFC 8446 §6.1: announce the end of the session, best effort, then close the socket.
        let Self { session, net, .. } = self;
        let _ =
            Python::attach(|py| session.call(py, net, |ssl| ssl.call_method0("unwrap").map(drop)));
        let _ = self.send_net();
        self.inner.shutdown();
    }

    fn peer_is_loopback(&self) -> bool {
        self.inner.peer_is_loopback()
    }

    /// Decrypted application data counts; records that carry none (TLS 1.3 session tickets, key
    /// updates), which OpenSSL consumes, do not. The end of the session counts.
    fn has_pending_input(&mut self) -> io::Result<bool> {
        for _ in 0..MAX_PENDING_ROUNDS {
            if self.pos < self.plain.len() || self.ended {
                return Ok(true);
            }
            if self.decrypt()? {
                continue;
            }
            if !self.inner.has_pending_input()? {
                return Ok(false);
            }
            // The inner transport has bytes, so this read does not block.
            if !self.receive(None)? {
                self.ended = true;
            }
        }
        Ok(false)
    }
}
