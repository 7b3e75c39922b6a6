//! DKIM signing of a message source (RFC 6376; ed25519-sha256 from RFC 8463), in constant memory.
//!
//! The canonicalisation, hashing and signature come from mail-auth's streaming signer; this module
//! decides which bytes it sees. Those are the bytes the engine puts on the wire: every bare CR and
//! bare LF made CRLF and a final line break added ([`CrlfEncoder`], RFC 5321 §2.3.8), so that the
//! receiver hashes what was hashed here. A source that can be read again ([`Source::replay`]) is
//! read twice, once to hash and once to send; a one-shot source is spooled to an unnamed temporary
//! file while it is hashed, then sent from there. Only the header section is held in memory.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};

use mail_auth::common::crypto::{Ed25519Key, HashContext, HashImpl, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization as Canon, DkimSigner as Signer, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::BoxError;
use crate::Source;
use crate::smtp::chunking::CrlfEncoder;
use crate::source::{BytesSource, CatSource, ReaderSource};

/// The headers signed when the caller names none: RFC 6376 §5.4.1's recommended set, each once.
pub const DEFAULT_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// A signature algorithm (the `a=` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `rsa-sha256` (RFC 6376 §3.3.1).
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463).
    Ed25519Sha256,
}

/// A canonicalisation algorithm (the `c=` tag, RFC 6376 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canonicalization {
    /// `simple`: the bytes as they are, trailing empty lines of the body aside.
    Simple,
    /// `relaxed`: whitespace runs folded, header names lower-cased.
    Relaxed,
}

impl From<Canonicalization> for Canon {
    fn from(c: Canonicalization) -> Self {
        match c {
            Canonicalization::Simple => Canon::Simple,
            Canonicalization::Relaxed => Canon::Relaxed,
        }
    }
}

/// Why a signer could not be made or a signature computed.
#[derive(Debug)]
pub enum DkimError {
    /// The key is not a PEM RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8) private key.
    Key(String),
    /// The key's type is not the algorithm asked for.
    KeyMismatch {
        /// The algorithm asked for.
        algorithm: Algorithm,
    },
    /// The domain, selector or header list is empty.
    Config(&'static str),
    /// Signing failed (none of the headers to sign is in the message, or the key refused).
    Sign(String),
}

impl fmt::Display for DkimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(why) => write!(f, "DKIM key: {why}"),
            Self::KeyMismatch { algorithm } => {
                write!(f, "DKIM key does not fit the algorithm {algorithm:?}")
            }
            Self::Config(what) => write!(f, "DKIM: {what} must not be empty"),
            Self::Sign(why) => write!(f, "DKIM signing failed: {why}"),
        }
    }
}

impl std::error::Error for DkimError {}

enum Key {
    Rsa(Signer<RsaKey<Sha256>, Done>),
    Ed25519(Signer<Ed25519Key, Done>),
}

/// A DKIM signer: a key, its domain and selector, the headers to sign and the canonicalisations.
///
/// ```no_run
/// use mailpump::mime::dkim::{Canonicalization, DkimSigner};
/// use mailpump::source::{BytesSource, collect};
///
/// let pem = std::fs::read("dkim.pem")?;
/// let signer = DkimSigner::new("example.com", "mail", &pem, None, &["From", "Subject"],
///                              Canonicalization::Relaxed, Canonicalization::Relaxed)?;
/// let mut signed = signer.sign(Box::new(BytesSource::new("From: a@example.com\r\n\r\nHi\r\n")))?;
/// assert!(collect(&mut signed)?.starts_with(b"DKIM-Signature: "));
/// # Ok::<(), mailpump::BoxError>(())
/// ```
pub struct DkimSigner {
    key: Key,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// A signer for `domain` (`d=`) and `selector` (`s=`) with a PEM private key. `algorithm`
    /// `None` takes the key's own; `headers` empty signs [`DEFAULT_HEADERS`].
    pub fn new(
        domain: &str,
        selector: &str,
        pem: &[u8],
        algorithm: Option<Algorithm>,
        headers: &[&str],
        header_canon: Canonicalization,
        body_canon: Canonicalization,
    ) -> Result<Self, DkimError> {
        if domain.is_empty() {
            return Err(DkimError::Config("the domain"));
        }
        if selector.is_empty() {
            return Err(DkimError::Config("the selector"));
        }
        let headers: Vec<&str> = if headers.is_empty() {
            DEFAULT_HEADERS.to_vec()
        } else {
            headers.to_vec()
        };
        let der = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| DkimError::Key(format!("no PEM private key ({e:?})")))?;
        let ed25519 = match &der {
            PrivateKeyDer::Pkcs8(p) => {
                Ed25519Key::from_pkcs8_maybe_unchecked_der(p.secret_pkcs8_der()).ok()
            }
            _ => None,
        };
        let key = match (ed25519, algorithm) {
            (Some(k), None | Some(Algorithm::Ed25519Sha256)) => Key::Ed25519(
                Signer::from_key(k)
                    .domain(domain)
                    .selector(selector)
                    .headers(headers)
                    .header_canonicalization(header_canon.into())
                    .body_canonicalization(body_canon.into()),
            ),
            (Some(_), Some(algorithm)) => return Err(DkimError::KeyMismatch { algorithm }),
            (None, Some(Algorithm::Ed25519Sha256)) => {
                return Err(DkimError::KeyMismatch {
                    algorithm: Algorithm::Ed25519Sha256,
                });
            }
            (None, None | Some(Algorithm::RsaSha256)) => {
                let rsa = RsaKey::<Sha256>::from_key_der(der)
                    .map_err(|e| DkimError::Key(e.to_string()))?;
                Key::Rsa(
                    Signer::from_key(rsa)
                        .domain(domain)
                        .selector(selector)
                        .headers(headers)
                        .header_canonicalization(header_canon.into())
                        .body_canonicalization(body_canon.into()),
                )
            }
        };
        Ok(Self { key })
    }

    /// The signature algorithm of this signer's key.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self.key {
            Key::Rsa(_) => Algorithm::RsaSha256,
            Key::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// The `DKIM-Signature:` header field (ending in CRLF) for what `source` produces, after the
    /// wire's line-end rules; with `spool`, those bytes are also written there.
    pub fn header(
        &self,
        source: &mut dyn Source,
        spool: Option<&mut dyn Write>,
    ) -> Result<String, BoxError> {
        match &self.key {
            Key::Rsa(signer) => header(signer, source, spool),
            Key::Ed25519(signer) => header(signer, source, spool),
        }
    }

    /// `source` with a `DKIM-Signature:` header field before it. A source that can be read again
    /// is read here to hash and again when the result is pulled; a one-shot source is spooled to
    /// an unnamed temporary file. The result produces the wire's line ends (CRLF).
    pub fn sign(&self, mut source: Box<dyn Source>) -> Result<Box<dyn Source>, BoxError> {
        if let Some(again) = source.replay() {
            let head = self.header(&mut *source, None)?;
            return Ok(Box::new(CatSource::new(vec![
                Box::new(BytesSource::new(head)),
                again,
            ])));
        }
        let mut file = spool_file()?;
        let head = {
            let mut writer = io::BufWriter::with_capacity(1 << 16, &mut file);
            let head = self.header(&mut *source, Some(&mut writer))?;
            writer.flush()?;
            head
        };
        file.rewind()?;
        Ok(Box::new(CatSource::new(vec![
            Box::new(BytesSource::new(head)),
            Box::new(ReaderSource::new(file)),
        ])))
    }
}

fn header<T: SigningKey>(
    signer: &Signer<T, Done>,
    source: &mut dyn Source,
    mut spool: Option<&mut dyn Write>,
) -> Result<String, BoxError>
where
    <<T as SigningKey>::Hasher as HashImpl>::Context: HashContext,
{
    let mut stream = signer.sign_streaming();
    let mut crlf = CrlfEncoder::new();
    let mut chunk = Vec::with_capacity(1 << 16);
    let mut wire = Vec::with_capacity(1 << 16);
    loop {
        chunk.clear();
        let more = source.pull(&mut chunk)?;
        wire.clear();
        crlf.encode(&chunk, &mut wire);
        if !more {
            crlf.end(&mut wire);
        }
        stream.write(&wire);
        if let Some(out) = spool.as_mut() {
            out.write_all(&wire)?;
        }
        if !more {
            break;
        }
    }
    let signature = stream
        .finish()
        .map_err(|e| DkimError::Sign(e.to_string()))?;
    Ok(signature.to_header())
}

/// A new temporary file, already unlinked where the system allows it, so nothing is left behind.
fn spool_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(io::Error::other)?;
        let path = dir.join(format!("mailpump-dkim-{:016x}", u64::from_le_bytes(tag)));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                // Unix keeps an unlinked file while it is open; elsewhere the name stays.
                let _ = std::fs::remove_file(&path);
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "no free temporary file name for the DKIM spool",
    ))
}

#[cfg(test)]
mod tests;
