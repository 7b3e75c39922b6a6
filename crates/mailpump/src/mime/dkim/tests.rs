use super::*;
use crate::source::{BytesSource, collect};

// A throwaway Ed25519 key (PKCS#8, as `openssl genpkey -algorithm ed25519` writes it).
const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJglQxbgY81nAAgaf2G1KoTN/a80Pj9ENM497npCC7Iz
-----END PRIVATE KEY-----
";

/// A one-shot source: the same bytes as `BytesSource`, but no `replay`.
struct Once(BytesSource);

impl Source for Once {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        self.0.pull(out)
    }
}

fn signer(c: Canonicalization) -> DkimSigner {
    let options = DkimOptions {
        header_canonicalization: c,
        body_canonicalization: c,
        ..DkimOptions::default()
    };
    DkimSigner::new("example.com", "sel", ED25519_PEM.as_bytes(), &options).unwrap()
}

fn tag<'a>(header: &'a str, name: &str) -> &'a str {
    let unfolded = header;
    let start = unfolded
        .find(&format!(" {name}="))
        .or_else(|| unfolded.find(&format!(";{name}=")))
        .unwrap();
    let rest = &unfolded[start + name.len() + 2..];
    &rest[..rest.find(';').unwrap_or(rest.len())]
}

#[test]
fn replayed_and_spooled_sources_sign_and_send_the_same_bytes() {
    let message = "From: a@example.com\nSubject: x\n\n.dot\nbare\rcr\nno final break";
    for c in [Canonicalization::Simple, Canonicalization::Relaxed] {
        let signer = signer(c);
        assert_eq!(signer.algorithm(), Algorithm::Ed25519Sha256);
        let replayed = collect(
            &mut signer
                .sign(Box::new(BytesSource::with_chunk(message, 3)))
                .unwrap(),
        )
        .unwrap();
        let spooled = collect(
            &mut signer
                .sign(Box::new(Once(BytesSource::with_chunk(message, 7))))
                .unwrap(),
        )
        .unwrap();
        let split = |m: &[u8]| {
            let at = m.windows(13).position(|w| w == b"\r\nFrom: a@exa").unwrap() + 2;
            (
                String::from_utf8(m[..at].to_vec()).unwrap(),
                m[at..].to_vec(),
            )
        };
        let (h1, rest1) = split(&replayed);
        let (h2, rest2) = split(&spooled);
        // The replayed body is the raw source (the engine makes its line ends CRLF); the spool
        // holds the wire form.
        assert_eq!(
            rest2,
            b"From: a@example.com\r\nSubject: x\r\n\r\n.dot\r\nbare\r\ncr\r\nno final break\r\n"
        );
        let mut wire = Vec::new();
        let mut crlf = CrlfEncoder::new();
        crlf.encode(&rest1, &mut wire);
        crlf.end(&mut wire);
        assert_eq!(wire, rest2);
        assert!(h1.starts_with("DKIM-Signature: "), "{h1}");
        assert_eq!(tag(&h1, "bh"), tag(&h2, "bh"));
        assert_eq!(tag(&h1, "a"), "ed25519-sha256");
    }
}

#[test]
fn a_key_that_does_not_fit_the_algorithm_is_refused() {
    let rsa = DkimOptions {
        algorithm: Some(Algorithm::RsaSha256),
        ..DkimOptions::default()
    };
    let e = DkimSigner::new("example.com", "sel", ED25519_PEM.as_bytes(), &rsa).unwrap_err();
    assert!(
        matches!(
            e,
            DkimError::KeyMismatch {
                algorithm: Algorithm::RsaSha256
            }
        ),
        "{e}"
    );
    let e =
        DkimSigner::new("example.com", "sel", b"not a key", &DkimOptions::default()).unwrap_err();
    assert!(matches!(e, DkimError::Key(_)), "{e}");
    // A key in the wrong place must not be echoed back.
    let e = DkimSigner::new(
        "example.com",
        "sel",
        b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleSBtYXRlcmlhbA==\n-----END PRIVATE KEY-----\n",
        &DkimOptions::default(),
    )
    .unwrap_err();
    assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
    let bad = DkimOptions {
        headers: vec!["From:".into()],
        ..DkimOptions::default()
    };
    let e = DkimSigner::new("example.com", "sel", ED25519_PEM.as_bytes(), &bad).unwrap_err();
    assert!(matches!(e, DkimError::Value(_)), "{e}");
}

#[test]
fn a_replay_carries_the_same_signature() {
    let dkim = signer(Canonicalization::Relaxed);
    let signed = dkim
        .sign(Box::new(BytesSource::new(
            "From: a@example.com\r\n\r\nHi\r\n",
        )))
        .unwrap();
    let first = collect(&mut signed.replay().unwrap()).unwrap();
    let second = collect(&mut signed.replay().unwrap()).unwrap();
    assert_eq!(first, second);
    assert!(first.starts_with(signed.signature_field()));
    assert_eq!(signed.remaining_hint(), Some(first.len() as u64));
    // A spooled one-shot source is sent once.
    let once = dkim
        .sign(Box::new(Once(BytesSource::new(
            "From: a@example.com\r\n\r\nHi\r\n",
        ))))
        .unwrap();
    assert!(once.replay().is_none());
}

#[test]
fn from_is_oversigned_by_default() {
    let dkim = signer(Canonicalization::Relaxed);
    let signed = dkim
        .sign(Box::new(BytesSource::new(
            "From: a@example.com\r\nSubject: s\r\n\r\nHi\r\n",
        )))
        .unwrap();
    let field = String::from_utf8(signed.signature_field().to_vec()).unwrap();
    let unfolded: String = field.split_whitespace().collect::<Vec<_>>().join(" ");
    let h: String = tag(&unfolded, "h").split_whitespace().collect();
    let names: Vec<&str> = h.split(':').collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.eq_ignore_ascii_case("from"))
            .count(),
        2,
        "{h}"
    );
    assert!(
        names.iter().any(|n| n.eq_ignore_ascii_case("subject")),
        "{field}"
    );
}

/// A source of `n` header lines and no empty line, counting what was pulled.
struct EndlessHeader {
    left: usize,
    pulled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Source for EndlessHeader {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.left == 0 {
            return Ok(false);
        }
        self.left -= 1;
        let line = b"X-Filler: a header line that never ends the section\r\n";
        out.extend_from_slice(line);
        self.pulled
            .fetch_add(line.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }
}

#[test]
fn a_header_section_without_its_end_is_not_read_whole() {
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let source = EndlessHeader {
        left: 1 << 20,
        pulled: std::sync::Arc::clone(&pulled),
    };
    let e = signer(Canonicalization::Relaxed)
        .sign(Box::new(source))
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("no end of its header section"),
        "{e}"
    );
    let read = pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read < 2 * MAX_HEADER, "{read}");
    // An end split across chunks is found.
    let mut end = HeaderEnd::default();
    for piece in [&b"From: a\r\n\r"[..], b"\n", b"body"] {
        end.scan(piece).unwrap();
    }
    assert!(end.found);
    // Also across chunks shorter than the end itself.
    let mut end = HeaderEnd::default();
    for piece in [&b"From: a\r\n"[..], b"\r", b"\n", b"body"] {
        end.scan(piece).unwrap();
    }
    assert!(end.found);
}
