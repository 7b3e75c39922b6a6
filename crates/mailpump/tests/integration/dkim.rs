//! DKIM signing on the send path (the `dkim` feature): what the server receives is the
//! `DKIM-Signature:` field and then the message; a message that cannot be signed sends nothing;
//! a pool's retry sends the very bytes of the first attempt. That the signatures verify is
//! proved by an independent verifier in the Python tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailpump::mime::dkim::{DkimOptions, DkimSigner};
use mailpump::smtp::client::{ClientConfig, Envelope, SendResult};
use mailpump::smtp::error::SmtpError;
use mailpump::smtp::pool::{Pool, PoolOptions};
use mailpump::source::{BytesSource, Source};

use crate::support::{Conn, Script, Server, envelope};

// A throwaway Ed25519 key (PKCS#8, as `openssl genpkey -algorithm ed25519` writes it).
const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJglQxbgY81nAAgaf2G1KoTN/a80Pj9ENM497npCC7Iz
-----END PRIVATE KEY-----
";

const MESSAGE: &str = "From: a@example.com\nTo: b@example.org\nSubject: hi\n\n.dot line\nbody\n";
const WIRE: &str =
    "From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\n..dot line\r\nbody\r\n.\r\n";

fn signer() -> DkimSigner {
    DkimSigner::new(
        "example.com",
        "sel",
        ED25519_PEM.as_bytes(),
        &DkimOptions::default(),
    )
    .expect("key")
}

fn signing(server: &Server) -> ClientConfig {
    ClientConfig {
        dkim: Some(signer()),
        ..server.config()
    }
}

/// One transaction's commands answered, its data returned (end-of-data mark included).
fn transaction(c: &mut Conn, verdict: &str) -> Vec<u8> {
    c.expect("MAIL FROM:<me@example.com>");
    c.send("250 ok\r\n");
    c.expect("RCPT TO:<b@example.org>");
    c.send("250 ok\r\n");
    c.expect("DATA");
    c.send("354 go\r\n");
    let data = c.data();
    c.send(&format!("{verdict}\r\n"));
    data
}

/// The data of a signed message split into its signature field and the rest.
fn split(data: &[u8]) -> (String, String) {
    let text = String::from_utf8(data.to_vec()).expect("utf-8");
    assert!(text.starts_with("DKIM-Signature: "), "{text}");
    let at = text
        .find("\r\nFrom: ")
        .expect("the message after the field")
        + 2;
    (text[..at].to_owned(), text[at..].to_owned())
}

#[test]
fn send_puts_the_signature_before_the_message_it_streams() {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&got);
    let server = Server::start(move |c| {
        c.hello(&["PIPELINING"]);
        *keep.lock().unwrap() = transaction(c, "250 queued");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let client = mailpump::Client::connect(&signing(&server)).expect("connect");
    let mut one_shot = OneShot(BytesSource::new(MESSAGE));
    client
        .deliver(
            None,
            None,
            &envelope(&["b@example.org"]),
            &mut one_shot,
            None,
        )
        .expect("sent");
    server.finish();
    let (field, rest) = split(&got.lock().unwrap());
    assert_eq!(rest, WIRE);
    assert!(field.contains("a=ed25519-sha256;"), "{field}");
    assert!(field.contains("d=example.com;"), "{field}");
    // The body hash is the wire body's (dot-stuffing undone, CRLF): a replayable source of the
    // same bytes hashes to the same value.
    let again = signer()
        .sign(Box::new(BytesSource::new(MESSAGE)))
        .expect("signed");
    let bh = |f: &str| {
        let start = f.find("bh=").expect("bh") + 3;
        f[start..start + f[start..].find(';').expect(";")].to_owned()
    };
    let again = String::from_utf8(again.signature_field().to_vec()).unwrap();
    assert_eq!(bh(&field), bh(&again));
}

#[test]
fn a_message_that_cannot_be_signed_sends_nothing_of_itself() {
    let server = Server::start(|c| {
        c.hello(&["PIPELINING"]);
        // Only the good message's transaction: the unsignable one never reached the wire.
        transaction(c, "250 queued");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let mut client = mailpump::Client::connect(&signing(&server)).expect("connect");
    client.greet(None).expect("greet");
    // None of the headers to sign: no signature can be made.
    let mut unsignable = BytesSource::new("X-Note: nothing to sign\r\n\r\nbody\r\n");
    let error = client
        .send(&envelope(&["b@example.org"]), &mut unsignable, None)
        .expect_err("unsignable");
    assert!(matches!(error, SmtpError::InvalidInput(_)), "{error}");
    assert!(error.to_string().contains("DKIM"), "{error}");
    // send_many reports it and goes on with the next message.
    let messages: Vec<(Envelope, Box<dyn Source>)> = vec![
        (
            envelope(&["b@example.org"]),
            Box::new(BytesSource::new("X-Note: no\r\n\r\nbody\r\n")),
        ),
        (
            envelope(&["b@example.org"]),
            Box::new(BytesSource::new(MESSAGE)),
        ),
    ];
    let mut seen = Vec::new();
    client
        .send_many(messages, |i, outcome: Result<SendResult, SmtpError>| {
            seen.push((i, outcome.map(|_| ()).map_err(|e| e.kind().to_owned())));
        })
        .expect("send_many");
    assert_eq!(seen, [(0, Err("invalid-input".to_owned())), (1, Ok(()))]);
    client.quit().expect("quit");
    let wire = server.finish_text();
    assert_eq!(wire.matches("MAIL FROM").count(), 1, "{wire}");
}

#[test]
fn a_pool_retry_sends_the_bytes_of_the_first_attempt() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&bodies);
    let script: Script = Box::new(move |c: &mut Conn| {
        c.hello(&[]);
        let first = transaction(c, "451 4.3.0 try later");
        let second = transaction(c, "250 2.0.0 Ok: queued as A1");
        keep.lock().unwrap().extend([first, second]);
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let server = Server::start_each(vec![script]);
    let options = PoolOptions {
        connections: 1,
        // Past the next second: a signature made again would carry another `t=`.
        backoff: Duration::from_millis(1100),
        max_backoff: Duration::from_millis(1100),
        ..PoolOptions::default()
    };
    let pool = Pool::new(signing(&server), None, options).expect("pool");
    pool.send(
        envelope(&["b@example.org"]),
        Box::new(BytesSource::new(MESSAGE)),
    )
    .expect("the second attempt is taken");
    pool.close(true);
    server.finish();
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies[0], bodies[1]);
    let (_, rest) = split(&bodies[0]);
    assert_eq!(rest, WIRE);
    assert_eq!(pool.stats().retried, 1);
}

/// A one-shot source: the bytes of a `BytesSource`, but no `replay`.
struct OneShot(BytesSource);

impl Source for OneShot {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, mailpump::BoxError> {
        self.0.pull(out)
    }
}
