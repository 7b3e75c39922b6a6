//! A failed handshake in words that say what to do, from the rustls error and what arrived.

use std::fmt;
use std::io;

use rustls::pki_types::UnixTime;

use super::verify::CertificateProblem;
use crate::smtp::error::TlsKind;

/// What a server that speaks plain SMTP sent where the TLS handshake was expected: its first
/// line (`220 mail.example.com ESMTP`). Carried inside the handshake's I/O error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainSmtpAnswer {
    /// The line, without its CRLF, cut to a readable length.
    pub line: String,
}

impl PlainSmtpAnswer {
    /// The answer, if `bytes` (the first bytes of the server's answer) start like an SMTP reply:
    /// three digits and a space, a hyphen or the end of the line (RFC 5321 §4.2). No TLS record
    /// starts so: its first byte is a content type, 20 to 24 (RFC 8446 §5.1).
    #[must_use]
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        let reply_like = bytes.len() >= 4
            && bytes[..3].iter().all(u8::is_ascii_digit)
            && matches!(bytes[3], b' ' | b'-' | b'\r' | b'\n');
        if !reply_like {
            return None;
        }
        let end = bytes
            .iter()
            .position(|b| *b == b'\r' || *b == b'\n')
            .unwrap_or(bytes.len())
            .min(80);
        let line = String::from_utf8_lossy(&bytes[..end])
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        Some(Self { line })
    }
}

impl fmt::Display for PlainSmtpAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server answered in plain text: {:?}", self.line)
    }
}

impl std::error::Error for PlainSmtpAnswer {}

/// The server asked for a client certificate, none was given, and the handshake then failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificateWanted;

impl fmt::Display for ClientCertificateWanted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server asked for a client certificate and ended the handshake without one")
    }
}

impl std::error::Error for ClientCertificateWanted {}

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

/// The kind of a failed handshake and a sentence about it in plain words that says what to do,
/// from the error inside `error` (an I/O error that carries no TLS error is a failure of the
/// connection itself, `None`).
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
    if let Some(plain) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<PlainSmtpAnswer>())
    {
        return Some((
            TlsKind::PlainSmtpPort,
            format!(
                "{plain} where a TLS handshake was expected: this port speaks plain SMTP: use \
                 tls='starttls' (or tls='auto'); implicit TLS is for port 465"
            ),
        ));
    }
    if let Some(wanted) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<ClientCertificateWanted>())
    {
        return Some((
            TlsKind::ClientCertificateRequired,
            format!(
                "{wanted}: give one it trusts with certfile= (and keyfile= when the key is in a \
                 file of its own)"
            ),
        ));
    }
    Some(describe_rustls(rustls_error(error)?))
}

fn describe_rustls(error: &rustls::Error) -> (TlsKind, String) {
    use rustls::{AlertDescription as Alert, Error};
    match error {
        Error::InvalidCertificate(cert) => describe_certificate(cert),
        Error::PeerIncompatible(_)
        | Error::AlertReceived(Alert::ProtocolVersion | Alert::InsufficientSecurity) => (
            TlsKind::NoCommonProtocol,
            format!(
                "the server and this client share no TLS version or cipher suite; {RUSTLS_SPEAKS}"
            ),
        ),
        // TLS 1.2 servers also answer a missing client certificate with this alert.
        Error::AlertReceived(Alert::HandshakeFailure) => (
            TlsKind::NoCommonProtocol,
            format!(
                "the server refused the handshake (TLS alert \"handshake failure\"): it shares \
                 no TLS version or cipher suite with this client, or it requires a client \
                 certificate (give one with certfile= and keyfile=); {RUSTLS_SPEAKS}"
            ),
        ),
        Error::AlertReceived(Alert::CertificateRequired) => (
            TlsKind::ClientCertificateRequired,
            "the server requires a client certificate: give it with certfile= (and keyfile= \
             when the key is in a file of its own)"
                .to_owned(),
        ),
        Error::AlertReceived(
            alert @ (Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateUnknown
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::UnknownCA
            | Alert::AccessDenied),
        ) => (
            TlsKind::ClientCertificateRequired,
            format!(
                "the server did not accept this client's certificate (TLS alert \"{}\"): give \
                 one it trusts with certfile= and keyfile=",
                alert_words(*alert)
            ),
        ),
        Error::AlertReceived(alert) => (
            TlsKind::ServerFailed,
            format!(
                "the server's own TLS failed: it ended the handshake with TLS alert \"{}\"; the \
                 problem is on the server's side (its log says more)",
                alert_words(*alert)
            ),
        ),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => (
            TlsKind::Handshake,
            "the server's answer is not TLS (on a port that starts in plain text use \
             tls='starttls', not 'implicit')"
                .to_owned(),
        ),
        _ => (TlsKind::Handshake, "the TLS handshake failed".to_owned()),
    }
}

/// A certificate the client refused.
fn describe_certificate(cert: &rustls::CertificateError) -> (TlsKind, String) {
    use rustls::CertificateError as Cert;
    match cert {
        Cert::Other(other) => match other.0.downcast_ref::<CertificateProblem>() {
            Some(problem) => describe_problem(problem),
            None => bad_certificate(),
        },
        Cert::UnknownIssuer => (
            TlsKind::UnknownIssuer,
            "the server's certificate was issued by an authority this client does not trust: \
             pass that CA's certificate with cafile=, or install it in the system's trust \
             store"
                .to_owned(),
        ),
        Cert::ExpiredContext { not_after, .. } => (
            TlsKind::Expired,
            format!(
                "the server's certificate expired on {} (the server must renew it; check \
                 this machine's clock too)",
                iso(*not_after)
            ),
        ),
        Cert::Expired => (
            TlsKind::Expired,
            "the server's certificate has expired (the server must renew it)".to_owned(),
        ),
        Cert::NotValidYetContext { not_before, .. } => (
            TlsKind::Expired,
            format!(
                "the server's certificate is not valid before {} (check this machine's \
                 clock)",
                iso(*not_before)
            ),
        ),
        Cert::NotValidYet => (
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
        _ => bad_certificate(),
    }
}

/// What rustls cannot speak, and the way around it.
const RUSTLS_SPEAKS: &str = "mailpump's TLS (rustls) speaks TLS 1.2 and 1.3 with ECDHE key \
    exchange and AEAD ciphers only; for a server that offers only older suites (CBC, DHE, TLS \
    1.0) pass ssl_context=, an ssl.SSLContext, to go through Python's OpenSSL";

fn bad_certificate() -> (TlsKind, String) {
    (
        TlsKind::BadCertificate,
        "the server's certificate is invalid (a bad signature or an unsupported kind of \
         certificate)"
            .to_owned(),
    )
}

fn describe_problem(problem: &CertificateProblem) -> (TlsKind, String) {
    match problem {
        CertificateProblem::UnknownIssuer { issuer } => (
            TlsKind::UnknownIssuer,
            format!(
                "the server's certificate was issued by \"{issuer}\", an authority this client \
                 does not trust: pass that CA's certificate with cafile=, or install it in the \
                 system's trust store (or SSL_CERT_FILE)"
            ),
        ),
        CertificateProblem::SelfSigned {
            subject,
            fingerprint,
        } => (
            TlsKind::SelfSigned,
            format!(
                "the server's certificate \"{subject}\" is self-signed: if it is the right one, \
                 pass this certificate as cafile= (or pin it with fingerprint=\"{fingerprint}\")"
            ),
        ),
        CertificateProblem::NameMismatch {
            expected,
            names,
            common_name,
        } => {
            let words = if names.is_empty() {
                let cn = common_name
                    .as_ref()
                    .map(|cn| format!(" (only its subject's CN={cn}, which TLS no longer reads)"))
                    .unwrap_or_default();
                format!(
                    "the server's certificate names no host in subjectAltName{cn}, so it is valid \
                     for no name: it must be reissued with subjectAltName={}",
                    if expected.parse::<std::net::IpAddr>().is_ok() {
                        format!("IP:{expected}")
                    } else {
                        format!("DNS:{expected}")
                    }
                )
            } else {
                format!(
                    "the server's certificate is valid for {}, not for {expected}: connect by one \
                     of those names",
                    names.join(", ")
                )
            };
            (TlsKind::NameMismatch, words)
        }
        CertificateProblem::FingerprintMismatch { presented } => (
            TlsKind::FingerprintMismatch,
            format!(
                "the server's certificate ({presented}) matches no pinned fingerprint: the \
                 server's certificate changed, or this is not the server you pinned"
            ),
        ),
    }
}

/// A time as ISO 8601 in UTC: `2024-05-01T12:00:00Z`.
fn iso(time: UnixTime) -> String {
    i64::try_from(time.as_secs())
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(
            || "an unknown date".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
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
        let error = io::Error::other(rustls::Error::AlertReceived(
            rustls::AlertDescription::InternalError,
        ));
        let (kind, words) = describe_handshake_error(&error).unwrap();
        assert_eq!(kind, TlsKind::ServerFailed);
        assert!(words.contains("\"internal error\""), "{words}");
        assert!(words.contains("server's side"), "{words}");
    }

    #[test]
    fn smtp_replies_are_told_from_tls_records() {
        let table: [(&[u8], Option<&str>); 6] = [
            (b"220 mx.example ESMTP\r\n", Some("220 mx.example ESMTP")),
            (b"220-first\r\n220 second\r\n", Some("220-first")),
            (b"554\r\n", Some("554")),
            (b"\x16\x03\x03\x00\x31", None),
            (b"\x15\x03\x03\x00\x02\x02\x28", None),
            (b"22", None),
        ];
        for (bytes, line) in table {
            assert_eq!(
                PlainSmtpAnswer::detect(bytes).map(|a| a.line),
                line.map(str::to_owned),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn expiry_is_an_iso_date() {
        let error = io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ExpiredContext {
                time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000)),
                not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    1_600_000_000,
                )),
            },
        ));
        let (kind, words) = describe_handshake_error(&error).unwrap();
        assert_eq!(kind, TlsKind::Expired);
        assert!(words.contains("2020-09-13T12:26:40Z"), "{words}");
    }
}
