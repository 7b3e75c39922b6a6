//! Checking the server's certificate: a pinned fingerprint, a certificate given in `cafile` and
//! trusted as itself, else the full chain check of webpki against the trusted roots.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::smtp::fingerprint::Fingerprint;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

/// The handshake-signature half of a [`ServerCertVerifier`] whose `algorithms` field holds the
/// provider's algorithms: every verifier here checks signatures the same way (only what it
/// accepts as the server's certificate differs).
macro_rules! handshake_signatures_by_algorithms {
    () => {
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
    };
}

/// Why the client refused the server's certificate, with what the advice needs. It travels
/// inside `rustls::CertificateError::Other`; [`super::describe_handshake_error`] turns it into
/// a kind and words.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// The chain ends at an authority nobody trusts here.
    UnknownIssuer {
        /// The distinguished name of the authority the chain needs.
        issuer: String,
    },
    /// A self-signed certificate that is not in `cafile`.
    SelfSigned {
        /// Its subject.
        subject: String,
        /// Its fingerprint, for `fingerprint=` or for checking it out of band.
        fingerprint: Fingerprint,
    },
    /// The certificate is not valid for the name the client connected to.
    NameMismatch {
        /// The name the client connected to.
        expected: String,
        /// The names in its subjectAltName extension.
        names: Vec<String>,
        /// Its subject's common name, which TLS clients no longer read (RFC 6125 §6.4.4).
        common_name: Option<String>,
    },
    /// No pinned fingerprint matches the certificate.
    FingerprintMismatch {
        /// The certificate's own fingerprint.
        presented: Fingerprint,
    },
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownIssuer { issuer } => write!(f, "unknown issuer {issuer}"),
            Self::SelfSigned { subject, .. } => write!(f, "self-signed certificate {subject}"),
            Self::NameMismatch { expected, .. } => write!(f, "not valid for {expected}"),
            Self::FingerprintMismatch { presented } => write!(f, "unpinned {presented}"),
        }
    }
}

impl std::error::Error for CertificateProblem {}

impl From<CertificateProblem> for rustls::Error {
    fn from(problem: CertificateProblem) -> Self {
        Self::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(problem))))
    }
}

/// The verifier behind `verify=true`.
#[derive(Debug)]
pub(super) struct Verifier {
    /// The chain check against the trusted roots (the system's, or the bundled ones, and
    /// `cafile`'s).
    pub(super) webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of `cafile`: one the server presents is trusted as itself.
    pub(super) as_itself: Vec<CertificateDer<'static>>,
    /// Pinned fingerprints: when there are any, they alone decide.
    pub(super) pins: Vec<Fingerprint>,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.pins.is_empty() {
            // Postfix's "fingerprint" level: the digest is the certificate's identity, so no
            // authority, date or name is consulted.
            let presented = Fingerprint::of(end_entity);
            return if self.pins.contains(&presented) {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(CertificateProblem::FingerprintMismatch { presented }.into())
            };
        }
        if self
            .as_itself
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            // What OpenSSL does with a certificate found in its trust store: the certificate is
            // its own anchor, whether or not it says CA:TRUE; its dates and names still count.
            check_dates(end_entity, now)?;
            check_name(end_entity, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| explain(e, end_entity, intermediates, server_name))
    }

    handshake_signatures_by_algorithms!();
}

/// The validity period of a certificate trusted as itself (RFC 5280 §4.1.2.5).
fn check_dates(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let validity = cert.validity();
    let at = |t: i64| UnixTime::since_unix_epoch(Duration::from_secs(t.max(0).unsigned_abs()));
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now_secs > validity.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: now,
                not_after: at(validity.not_after.timestamp()),
            },
        ));
    }
    if now_secs < validity.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: at(validity.not_before.timestamp()),
            },
        ));
    }
    Ok(())
}

/// The server name against the certificate's subjectAltName, by webpki's own rules.
fn check_name(der: &CertificateDer<'_>, server_name: &ServerName<'_>) -> Result<(), rustls::Error> {
    let cert = webpki::EndEntityCert::try_from(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    cert.verify_is_valid_for_subject_name(server_name)
        .map_err(|_| name_mismatch(der, server_name).into())
}

/// A webpki error, with the data the advice needs where it has too little.
fn explain(
    error: rustls::Error,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
) -> rustls::Error {
    let rustls::Error::InvalidCertificate(cert_error) = &error else {
        return error;
    };
    let Ok((_, leaf)) = x509_parser::parse_x509_certificate(end_entity) else {
        return error;
    };
    let self_signed = leaf.subject() == leaf.issuer() && intermediates.is_empty();
    match cert_error {
        CertificateError::UnknownIssuer if self_signed => CertificateProblem::SelfSigned {
            subject: leaf.subject().to_string(),
            fingerprint: Fingerprint::of(end_entity),
        }
        .into(),
        // A self-signed certificate saying CA:TRUE (OpenSSL 3's default) is refused as an end
        // entity before its issuer is looked for.
        CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
            CertificateProblem::SelfSigned {
                subject: leaf.subject().to_string(),
                fingerprint: Fingerprint::of(end_entity),
            }
            .into()
        }
        CertificateError::UnknownIssuer => {
            // The top of the chain the server sent names the authority that is missing.
            let top = intermediates
                .last()
                .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
                .map_or_else(
                    || leaf.issuer().to_string(),
                    |(_, c)| c.issuer().to_string(),
                );
            CertificateProblem::UnknownIssuer { issuer: top }.into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            name_mismatch(end_entity, server_name).into()
        }
        _ => error,
    }
}

/// The names a certificate is valid for, as a [`CertificateProblem::NameMismatch`].
fn name_mismatch(der: &CertificateDer<'_>, server_name: &ServerName<'_>) -> CertificateProblem {
    use x509_parser::extensions::GeneralName;
    let mut names = Vec::new();
    let mut common_name = None;
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                    GeneralName::IPAddress(ip) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                            names.push(std::net::Ipv4Addr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                            names.push(std::net::Ipv6Addr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
    }
    CertificateProblem::NameMismatch {
        expected: server_name.to_str().into_owned(),
        names,
        common_name,
    }
}

/// The verifier behind `verify=false`: any certificate, any name. Handshake signatures are still
/// checked, so the peer must at least hold the key of the certificate it shows.
#[derive(Debug)]
pub(super) struct AcceptAnyCertificate {
    pub(super) algorithms: WebPkiSupportedAlgorithms,
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

    handshake_signatures_by_algorithms!();
}
