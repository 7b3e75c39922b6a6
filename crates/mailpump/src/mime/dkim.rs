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
use std::sync::Arc;
use std::time::Duration;

use mail_auth::common::crypto::{Ed25519Key, HashContext, HashImpl, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization as Canon, DkimSigner as Signer, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::BoxError;
use crate::Source;
use crate::smtp::chunking::CrlfEncoder;
use crate::smtp::error::SmtpError;
use crate::smtp::header_envelope::MAX_HEADER;
use crate::source::ReaderSource;

/// The headers signed when the caller names none: RFC 6376 §5.4.1's recommended set. `From`
/// comes twice: the second names an instance the message does not have, so a `From` added on
/// the way breaks the signature (oversigning, RFC 6376 §5.4 and §8.15). Every listed field the
/// message lacks is signed as absent the same way.
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
    "From",
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

impl std::str::FromStr for Algorithm {
    type Err = DkimError;

    /// `rsa-sha256` or `ed25519-sha256`, as the `a=` tag writes them (RFC 6376 §3.5).
    fn from_str(s: &str) -> Result<Self, DkimError> {
        match s.to_ascii_lowercase().as_str() {
            "rsa-sha256" => Ok(Self::RsaSha256),
            "ed25519-sha256" => Ok(Self::Ed25519Sha256),
            _ => Err(DkimError::Value(format!(
                "the algorithm must be 'rsa-sha256' or 'ed25519-sha256', not {s:?}"
            ))),
        }
    }
}

impl Canonicalization {
    /// The `c=` tag's value: `header/body`, or `header` alone, the body then `simple`
    /// (RFC 6376 §3.5).
    ///
    /// ```
    /// use mailpump::mime::dkim::Canonicalization::{Relaxed, Simple};
    /// use mailpump::mime::dkim::Canonicalization;
    ///
    /// assert_eq!(Canonicalization::parse_pair("relaxed/relaxed")?, (Relaxed, Relaxed));
    /// assert_eq!(Canonicalization::parse_pair("relaxed")?, (Relaxed, Simple));
    /// assert!(Canonicalization::parse_pair("loose").is_err());
    /// # Ok::<(), mailpump::mime::dkim::DkimError>(())
    /// ```
    pub fn parse_pair(s: &str) -> Result<(Self, Self), DkimError> {
        let one = |t: &str| match t.to_ascii_lowercase().as_str() {
            "simple" => Ok(Self::Simple),
            "relaxed" => Ok(Self::Relaxed),
            _ => Err(DkimError::Value(format!(
                "the canonicalization must be 'simple' or 'relaxed', or two of them as \
                 'header/body', not {s:?}"
            ))),
        };
        match s.split_once('/') {
            Some((header, body)) => Ok((one(header)?, one(body)?)),
            None => Ok((one(s)?, Self::Simple)),
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
    /// The domain or selector is empty.
    Config(&'static str),
    /// A domain, selector or header name that cannot go in the signature's tags.
    Value(String),
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
            Self::Value(why) => write!(f, "DKIM: {why}"),
            Self::Sign(why) => write!(f, "DKIM signing failed: {why}"),
        }
    }
}

impl std::error::Error for DkimError {}

enum Key {
    Rsa(Signer<RsaKey<Sha256>, Done>),
    Ed25519(Signer<Ed25519Key, Done>),
}

/// How a [`DkimSigner`] signs, beyond its domain, selector and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimOptions {
    /// The algorithm; `None` takes the key's own (RSA: `rsa-sha256`, Ed25519: `ed25519-sha256`).
    pub algorithm: Option<Algorithm>,
    /// The header fields to sign (`h=`), in order; empty signs [`DEFAULT_HEADERS`]. A name given
    /// twice oversigns it.
    pub headers: Vec<String>,
    /// The header canonicalisation (`c=`, before the slash).
    pub header_canonicalization: Canonicalization,
    /// The body canonicalisation (`c=`, after the slash).
    pub body_canonicalization: Canonicalization,
    /// How long after signing the signature expires (`x=`, RFC 6376 §3.5); `None`: never.
    pub expiration: Option<Duration>,
}

impl Default for DkimOptions {
    /// The key's algorithm, [`DEFAULT_HEADERS`], `relaxed/relaxed` (what survives the
    /// re-folding relays do), no expiration.
    fn default() -> Self {
        Self {
            algorithm: None,
            headers: Vec::new(),
            header_canonicalization: Canonicalization::Relaxed,
            body_canonicalization: Canonicalization::Relaxed,
            expiration: None,
        }
    }
}

/// A DKIM signer: a key, its domain and selector, the headers to sign and the canonicalisations.
/// The key is parsed once; clones share it, so one signer serves every connection of a pool.
///
/// ```no_run
/// use mailpump::mime::dkim::{DkimOptions, DkimSigner};
/// use mailpump::source::{BytesSource, collect};
///
/// let pem = std::fs::read("dkim.pem")?;
/// let signer = DkimSigner::new("example.com", "mail", &pem, &DkimOptions::default())?;
/// let mut signed = signer.sign(Box::new(BytesSource::new("From: a@example.com\r\n\r\nHi\r\n")))?;
/// assert!(collect(&mut signed)?.starts_with(b"DKIM-Signature: "));
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Clone)]
pub struct DkimSigner {
    key: Arc<Key>,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("DkimSigner")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// The same signer (the same parsed key), as connection settings compare.
impl PartialEq for DkimSigner {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.key, &other.key)
    }
}

impl Eq for DkimSigner {}

impl DkimSigner {
    /// A signer for `domain` (`d=`) and `selector` (`s=`) with a PEM private key: RSA (PKCS#1,
    /// `openssl genrsa`, or PKCS#8) or Ed25519 (PKCS#8, `openssl genpkey -algorithm ed25519`).
    /// Errors never quote the key.
    pub fn new(
        domain: &str,
        selector: &str,
        pem: &[u8],
        options: &DkimOptions,
    ) -> Result<Self, DkimError> {
        if domain.is_empty() {
            return Err(DkimError::Config("the domain"));
        }
        if selector.is_empty() {
            return Err(DkimError::Config("the selector"));
        }
        if let Some(bad) = [domain, selector]
            .into_iter()
            .chain(options.headers.iter().map(String::as_str))
            .find(|t| {
                t.bytes()
                    .any(|b| !b.is_ascii_graphic() || b == b';' || b == b':')
            })
        {
            // RFC 6376 §3.2: tag values are printable ASCII without `;`; a header name
            // (RFC 5322 §2.2) has no `:` either.
            return Err(DkimError::Value(format!(
                "{bad:?} cannot go in a DKIM-Signature field (printable ASCII without ';' or ':')"
            )));
        }
        let headers: Vec<String> = if options.headers.is_empty() {
            DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect()
        } else {
            options.headers.clone()
        };
        let expiration = options.expiration.map_or(0, |d| d.as_secs().max(1));
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
            DkimError::Key(
                "no PEM private key (expected -----BEGIN PRIVATE KEY----- or -----BEGIN RSA \
                 PRIVATE KEY-----)"
                    .to_owned(),
            )
        })?;
        let ed25519 = match &der {
            PrivateKeyDer::Pkcs8(p) => {
                Ed25519Key::from_pkcs8_maybe_unchecked_der(p.secret_pkcs8_der()).ok()
            }
            _ => None,
        };
        macro_rules! configured {
            ($key:expr) => {
                Signer::from_key($key)
                    .domain(domain)
                    .selector(selector)
                    .headers(headers)
                    .expiration(expiration)
                    .header_canonicalization(options.header_canonicalization.into())
                    .body_canonicalization(options.body_canonicalization.into())
            };
        }
        let key = match (ed25519, options.algorithm) {
            (Some(k), None | Some(Algorithm::Ed25519Sha256)) => Key::Ed25519(configured!(k)),
            (Some(_), Some(algorithm)) => return Err(DkimError::KeyMismatch { algorithm }),
            (None, Some(Algorithm::Ed25519Sha256)) => {
                return Err(DkimError::KeyMismatch {
                    algorithm: Algorithm::Ed25519Sha256,
                });
            }
            (None, None | Some(Algorithm::RsaSha256)) => {
                // The rsa crate's message names the DER structure, never its content.
                let rsa = RsaKey::<Sha256>::from_key_der(der).map_err(|e| {
                    DkimError::Key(format!("not an RSA or Ed25519 private key ({e})"))
                })?;
                Key::Rsa(configured!(rsa))
            }
        };
        Ok(Self { key: Arc::new(key) })
    }

    /// The signature algorithm of this signer's key.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match *self.key {
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
        match &*self.key {
            Key::Rsa(signer) => header(signer, source, spool),
            Key::Ed25519(signer) => header(signer, source, spool),
        }
    }

    /// `source` with a `DKIM-Signature:` header field before it, computed before this returns,
    /// so that a failure (the source's, or a message with none of the headers to sign) comes
    /// before anything is sent. A source that can be read again is hashed from a fresh copy and
    /// then sent itself; a one-shot source is spooled to an unnamed temporary file while it is
    /// hashed, then sent from there. The result produces the wire's line ends (CRLF) once the
    /// engine has made them so, and can be read again, the same signature with it, when the
    /// source can.
    /// A binary MIME message is refused ([`DkimError::Sign`]): no signature over its lines
    /// could match the bytes BINARYMIME sends.
    pub fn sign<'a>(&self, mut source: Box<dyn Source + 'a>) -> Result<SignedSource<'a>, BoxError> {
        if source.needs_binarymime() {
            return Err(Box::new(binary_refused()));
        }
        if let Some(mut fresh) = source.replay() {
            let head = self.header(&mut *fresh, None)?;
            return Ok(SignedSource::new(head.into_bytes(), source));
        }
        let mut file = spool_file()?;
        let head = {
            let mut writer = io::BufWriter::with_capacity(1 << 16, &mut file);
            let head = self.header(&mut *source, Some(&mut writer))?;
            writer.flush()?;
            head
        };
        file.rewind()?;
        Ok(SignedSource::new(
            head.into_bytes(),
            Box::new(ReaderSource::new(file)),
        ))
    }
}

/// The refusal of a binary MIME body: it goes out unchanged, bare CR and LF included, while the
/// hash is over CRLF lines (RFC 6376 §3.4), so no signature could match the bytes sent.
fn binary_refused() -> DkimError {
    DkimError::Sign(
        "a message with a binary part (sent as BINARYMIME, its bytes unchanged) cannot be \
         signed, since DKIM hashes lines (RFC 6376 §3.4): encode that part as base64"
            .into(),
    )
}

impl DkimSigner {
    /// [`DkimSigner::sign`] for the client, its errors as the client's: the signer's own
    /// ([`DkimError`]: nothing was sent) as [`SmtpError::InvalidInput`], the source's as
    /// [`SmtpError::Source`].
    /// `binary_mime`: the envelope declares the body binary, whatever the source says.
    pub(crate) fn sign_for_sending<'a>(
        &self,
        source: Box<dyn Source + 'a>,
        binary_mime: bool,
    ) -> Result<SignedSource<'a>, SmtpError> {
        if binary_mime {
            return Err(SmtpError::InvalidInput(binary_refused().to_string()));
        }
        self.sign(source)
            .map_err(|e| match e.downcast::<DkimError>() {
                Ok(dkim) => SmtpError::InvalidInput(dkim.to_string()),
                Err(other) => SmtpError::Source(other),
            })
    }
}

/// A message with its `DKIM-Signature:` field in front: what [`DkimSigner::sign`] returns.
pub struct SignedSource<'a> {
    /// The field, shared by every replay so a retry sends the same signature.
    head: Arc<[u8]>,
    /// How much of `head` has been handed out.
    pos: usize,
    body: Box<dyn Source + 'a>,
}

impl<'a> SignedSource<'a> {
    fn new(head: impl Into<Arc<[u8]>>, body: Box<dyn Source + 'a>) -> Self {
        Self {
            head: head.into(),
            pos: 0,
            body,
        }
    }

    /// The `DKIM-Signature:` header field put in front of the message (ending in CRLF).
    #[must_use]
    pub fn signature_field(&self) -> &[u8] {
        &self.head
    }
}

impl Source for SignedSource<'_> {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.pos < self.head.len() {
            out.extend_from_slice(&self.head[self.pos..]);
            self.pos = self.head.len();
            return Ok(true);
        }
        self.body.pull(out)
    }

    fn remaining_hint(&self) -> Option<u64> {
        let head = (self.head.len() - self.pos) as u64;
        self.body.remaining_hint().map(|body| body + head)
    }

    fn replay(&self) -> Option<Box<dyn Source>> {
        let body = self.body.replay()?;
        Some(Box::new(SignedSource {
            head: Arc::clone(&self.head),
            pos: 0,
            body,
        }))
    }

    fn nesting(&self) -> usize {
        self.body.nesting() + 1
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
    let mut header_end = HeaderEnd::default();
    loop {
        chunk.clear();
        let more = source.pull(&mut chunk)?;
        wire.clear();
        crlf.encode(&chunk, &mut wire);
        if !more {
            crlf.end(&mut wire);
        }
        header_end.scan(&wire)?;
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

/// Watches for the empty line that ends the header section (RFC 5322 §2.1): the signer holds the
/// header section in memory until it comes, so a message without one must not be read whole.
#[derive(Default)]
struct HeaderEnd {
    /// Bytes of the header section seen so far.
    seen: usize,
    /// The end was found: nothing more to watch.
    found: bool,
    /// The last three bytes seen, for an end split across chunks.
    tail: Vec<u8>,
}

impl HeaderEnd {
    fn scan(&mut self, wire: &[u8]) -> Result<(), DkimError> {
        if self.found || wire.is_empty() {
            return Ok(());
        }
        let before = self.seen;
        self.seen += wire.len();
        // The tail and the first bytes of this chunk, for an end split across the two.
        let mut joint = std::mem::take(&mut self.tail);
        joint.extend_from_slice(&wire[..wire.len().min(3)]);
        self.found = memchr::memmem::find(&joint, b"\r\n\r\n").is_some()
            || memchr::memmem::find(wire, b"\r\n\r\n").is_some()
            // No header section at all: the message starts with the empty line.
            || (before == 0 && wire.starts_with(b"\r\n"));
        if self.found {
            return Ok(());
        }
        if self.seen > MAX_HEADER {
            return Err(DkimError::Sign(format!(
                "the message has no end of its header section (an empty line) in its first \
                 {MAX_HEADER} bytes"
            )));
        }
        // The last three bytes of the stream: of this chunk, or with the old tail when the
        // chunk is shorter (then `joint` is the old tail and the whole chunk).
        self.tail = if wire.len() >= 3 {
            wire[wire.len() - 3..].to_vec()
        } else {
            joint.split_off(joint.len().saturating_sub(3))
        };
        Ok(())
    }
}

/// A new temporary file, already unlinked where the system allows it, so nothing is left behind.
fn spool_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|e| io::Error::other(e.to_string()))?;
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
