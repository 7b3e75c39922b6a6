//! The trusted roots: the system's CA certificates, found as OpenSSL finds them, or the bundled
//! Mozilla roots where the system has none.

use std::ffi::OsString;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::RootCertStore;

/// Where the trusted roots came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootSource {
    /// The files named by `SSL_CERT_FILE` and `SSL_CERT_DIR` (either or both was set).
    Environment,
    /// The platform's store: on Linux and the BSDs the CA bundle and directory OpenSSL uses
    /// (`/etc/ssl/certs` and the like), on macOS the keychain, on Windows the system store.
    System,
    /// The Mozilla roots built into mailpump (webpki-roots), because the above gave none.
    Bundled,
}

/// The roots every verifying connection trusts, before any `cafile`.
#[derive(Debug, Clone)]
pub struct TrustedRoots {
    /// The roots.
    pub store: Arc<RootCertStore>,
    /// Where they came from.
    pub source: RootSource,
}

/// The environment the roots were loaded under: a change loads them again, as a new OpenSSL
/// context would.
type EnvKey = (Option<OsString>, Option<OsString>);

/// The roots in use, loaded once per value of `SSL_CERT_FILE` and `SSL_CERT_DIR`.
///
/// When either variable is set, only the certificates they name are used (OpenSSL's rule for
/// its default paths); else the platform's store. When that yields no certificate at all (a
/// minimal container without `ca-certificates`), the bundled Mozilla roots are used instead.
///
/// ```
/// use mailpump::smtp::tls::{RootSource, trusted_roots};
///
/// let roots = trusted_roots();
/// assert!(!roots.store.is_empty());
/// println!("{} roots from {:?}", roots.store.len(), roots.source);
/// ```
#[must_use]
pub fn trusted_roots() -> TrustedRoots {
    static LOADED: Mutex<Option<(EnvKey, TrustedRoots)>> = Mutex::new(None);
    let key = (
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
    );
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, roots)) = loaded.as_ref().filter(|(k, _)| *k == key) {
        return roots.clone();
    }
    let roots = load(key.0.is_some() || key.1.is_some());
    *loaded = Some((key, roots.clone()));
    roots
}

fn load(from_environment: bool) -> TrustedRoots {
    let mut store = RootCertStore::empty();
    // A certificate the store cannot parse is skipped, as OpenSSL skips it; so are errors reading
    // part of the store, as long as something was read.
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = store.add_parsable_certificates(found.certs);
    if added > 0 {
        let source = if from_environment {
            RootSource::Environment
        } else {
            RootSource::System
        };
        return TrustedRoots {
            store: Arc::new(store),
            source,
        };
    }
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    TrustedRoots {
        store: Arc::new(store),
        source: RootSource::Bundled,
    }
}
