//! LMTP (RFC 2033) against scripted servers, over TCP and over a Unix-domain socket: LHLO, one
//! verdict per accepted recipient, a lost connection between verdicts, the pool's retries of
//! deferred recipients alone.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use mailpump::smtp::client::{Client, ClientConfig, TlsPolicy};
use mailpump::smtp::error::SmtpError;
use mailpump::smtp::pool::{Pool, PoolOptions};
use mailpump::source::BytesSource;

use crate::support::{Conn, Script, Server, envelope};

/// The greeting and the reply to LHLO (which must come: LMTP has no EHLO).
fn lhlo(c: &mut Conn) {
    c.send("220 lmtp.example LMTP ready\r\n");
    assert_eq!(c.line(), "LHLO client.example");
    c.send("250-lmtp.example\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n");
}

fn lmtp_config(server: &Server) -> ClientConfig {
    ClientConfig {
        lmtp: true,
        ..server.config()
    }
}

fn body() -> BytesSource {
    BytesSource::new(&b"Subject: lmtp\r\n\r\nhello\r\n"[..])
}

#[test]
fn each_recipient_gets_its_own_verdict() {
    let server = Server::start(|c| {
        lhlo(c);
        c.expect("MAIL FROM:<me@example.com>");
        for to in ["a", "b", "c", "d"] {
            c.expect(&format!("RCPT TO:<{to}@example.org>"));
        }
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n");
        assert_eq!(c.data(), b"Subject: lmtp\r\n\r\nhello\r\n.\r\n");
        // One verdict per recipient accepted at RCPT (not c), in RCPT order.
        c.send("250 2.0.0 a delivered\r\n452 4.2.2 b over quota\r\n554 5.7.1 d refused\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let rcpt = [
        "a@example.org",
        "b@example.org",
        "c@example.org",
        "d@example.org",
    ];
    let result = Client::connect(&lmtp_config(&server))
        .unwrap()
        .deliver(None, None, &envelope(&rcpt), &mut body(), None)
        .unwrap();
    assert_eq!(result.accepted, ["a@example.org"]);
    assert_eq!(result.reply.text(), "a delivered");
    let verdicts: Vec<(&str, u16)> = result
        .verdicts
        .iter()
        .map(|(a, r)| (a.as_str(), r.code))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("a@example.org", 250),
            ("b@example.org", 452),
            ("d@example.org", 554)
        ]
    );
    let refused: Vec<&str> = result.refused.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(refused, ["c@example.org", "b@example.org", "d@example.org"]);
    assert_eq!(result.deferred().collect::<Vec<_>>(), ["b@example.org"]);
    server.finish();
}

#[test]
fn a_connection_lost_between_verdicts_leaves_the_rest_unknown() {
    let server = Server::start(|c| {
        lhlo(c);
        for _ in 0..4 {
            c.line();
        }
        c.send("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        c.data();
        c.send("250 2.0.0 a delivered\r\n");
        // Gone before b's verdict.
    });
    let mut client = Client::connect(&lmtp_config(&server)).unwrap();
    let error = client
        .send(
            &envelope(&["a@example.org", "b@example.org"]),
            &mut body(),
            None,
        )
        .unwrap_err();
    let SmtpError::RecipientsUnknown {
        verdicts, unknown, ..
    } = &error
    else {
        panic!("expected unknown recipients, got {error:?}")
    };
    assert_eq!(verdicts[0].0, "a@example.org");
    assert_eq!(unknown, &["b@example.org"]);
    assert!(error.is_outcome_unknown() && !error.is_transient());
    assert_eq!(error.kind(), "outcome-unknown");
    let text = error.to_string();
    assert!(
        text.contains("whether b@example.org received it is unknown"),
        "{text}"
    );
    server.finish();
}

#[test]
fn every_verdict_a_refusal_is_an_error_with_each_reason() {
    let server = Server::start(|c| {
        lhlo(c);
        for _ in 0..4 {
            c.line();
        }
        c.send("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        c.data();
        c.send("451 4.3.0 try later\r\n550 5.2.1 mailbox disabled\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let error = Client::connect(&lmtp_config(&server))
        .unwrap()
        .deliver(
            None,
            None,
            &envelope(&["a@example.org", "b@example.org"]),
            &mut body(),
            None,
        )
        .unwrap_err();
    assert_eq!(error.kind(), "message-refused");
    // One recipient may be sent it again later.
    assert!(error.is_transient() && !error.is_permanent());
    assert!(matches!(&error, SmtpError::Undelivered { verdicts, .. } if verdicts.len() == 2));
    server.finish();
}

#[test]
fn lmtp_has_no_helo_fallback_and_no_step_by_step_data() {
    let server = Server::start(|c| {
        c.send("220 lmtp.example\r\n");
        c.expect("LHLO client.example");
        c.send("500 5.5.1 unknown command\r\n");
        // No HELO follows: the client gives up.
        assert!(c.until_eof().is_empty());
    });
    let mut client = Client::connect(&lmtp_config(&server)).unwrap();
    let error = client.greet(None).unwrap_err();
    assert_eq!(error.kind(), "hello-refused");
    assert!(error.to_string().contains("LHLO client.example"), "{error}");
    server.finish();

    // `data` alone cannot read one verdict per recipient: refused before any byte.
    let config = ClientConfig {
        lmtp: true,
        ..ClientConfig::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = Client::connect(&ClientConfig {
        server: "127.0.0.1".into(),
        port,
        tls: TlsPolicy::None,
        ..config
    })
    .unwrap();
    let error = client.data(&mut body(), None).unwrap_err();
    assert_eq!(error.kind(), "invalid-input");
    assert!(error.to_string().contains("once per recipient"), "{error}");
}

/// A directory of its own for a test's socket, removed at the end.
struct SocketDir(std::path::PathBuf);

impl SocketDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mailpump-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn over_a_unix_domain_socket() {
    let dir = SocketDir::new("lmtp-unix");
    let path = dir.0.join("lmtp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut lines = Vec::new();
        let mut read = |lines: &mut Vec<String>| {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            lines.push(line.trim_end().to_owned());
        };
        writer.write_all(b"220 local LMTP\r\n").unwrap();
        read(&mut lines); // LHLO
        writer
            .write_all(b"250-local\r\n250 PIPELINING\r\n")
            .unwrap();
        for _ in 0..4 {
            read(&mut lines); // MAIL, RCPT, RCPT, DATA
        }
        writer
            .write_all(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
            .unwrap();
        loop {
            read(&mut lines);
            if lines.last().is_some_and(|l| l == ".") {
                break;
            }
        }
        writer
            .write_all(b"250 2.0.0 <a> saved\r\n250 2.0.0 <b> saved\r\n")
            .unwrap();
        read(&mut lines); // QUIT
        writer.write_all(b"221 bye\r\n").unwrap();
        lines
    });
    let config = ClientConfig {
        server: path.display().to_string(),
        lmtp: true,
        domain: "client.example".into(),
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    };
    let client = Client::connect(&config).unwrap();
    assert!(!client.is_encrypted());
    let result = client
        .deliver(
            None,
            None,
            &envelope(&["a@example.org", "b@example.org"]),
            &mut body(),
            None,
        )
        .unwrap();
    assert_eq!(result.accepted, ["a@example.org", "b@example.org"]);
    let lines = server.join().unwrap();
    assert_eq!(lines[0], "LHLO client.example");
    assert_eq!(lines.last().unwrap(), "QUIT");
}

#[test]
fn unix_socket_errors_say_what_to_check() {
    let dir = SocketDir::new("lmtp-missing");
    let missing = dir.0.join("none.sock");
    let config = ClientConfig {
        server: format!("unix:{}", missing.display()),
        lmtp: true,
        ..ClientConfig::default()
    };
    let error = Client::connect(&config).unwrap_err();
    assert_eq!(error.kind(), "connection-refused");
    let text = error.to_string();
    assert!(
        text.contains(&format!("the Unix socket {}", missing.display())) && text.contains("path"),
        "{text}"
    );
    // TLS over a local socket is refused before connecting.
    for tls in [TlsPolicy::StartTls, TlsPolicy::Implicit] {
        let error = Client::connect(&ClientConfig {
            tls,
            ..config.clone()
        })
        .unwrap_err();
        assert_eq!(error.kind(), "invalid-input");
        assert!(error.to_string().contains("Unix-domain socket"), "{error}");
    }
}

/// The pool sends a message again to the recipients a 4xx verdict deferred, alone, and reports
/// one outcome with every recipient's final verdict.
#[test]
fn the_pool_retries_deferred_recipients_alone() {
    let first: Script = Box::new(|c: &mut Conn| {
        lhlo(c);
        c.expect("MAIL FROM:<me@example.com>");
        c.expect("RCPT TO:<a@example.org>");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("RCPT TO:<c@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        c.data();
        c.send("250 2.0.0 a saved\r\n451 4.2.0 b locked\r\n550 5.1.1 c unknown\r\n");
        // The connection is lost: the retry opens another.
    });
    let second: Script = Box::new(|c: &mut Conn| {
        lhlo(c);
        c.expect("MAIL FROM:<me@example.com>");
        // b alone: a has the message, c refused it for good.
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        c.data();
        c.send("250 2.0.0 b saved\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let server = Server::start_each(vec![first, second]);
    let options = PoolOptions {
        connections: 1,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        ..PoolOptions::default()
    };
    let pool = Pool::new(lmtp_config(&server), None, options).unwrap();
    let result = pool
        .send(
            envelope(&["a@example.org", "b@example.org", "c@example.org"]),
            Box::new(body()),
        )
        .unwrap();
    pool.close(true);
    assert_eq!(result.accepted, ["a@example.org", "b@example.org"]);
    let refused: Vec<(&str, u16)> = result
        .refused
        .iter()
        .map(|(a, r)| (a.as_str(), r.code))
        .collect();
    assert_eq!(refused, [("c@example.org", 550)]);
    assert_eq!(result.reply.text(), "a saved");
    server.finish();
}
