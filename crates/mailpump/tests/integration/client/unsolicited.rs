//! Data the server sends unasked between two commands (docs/security.md §8, unsolicited-data
//! desync; aiosmtplib 5.1.2): the client looks, without blocking, before every command or pipelined
//! batch (RFC 5321 §4.2, RFC 2920 §3.1), and never takes such data for the next reply. A 421
//! closing notice, which RFC 5321 §3.8 lets a server send asynchronously, answers the next
//! command instead. Over TLS, only decrypted application data counts: TLS 1.3 session tickets
//! and key updates do not.
//!
//! Each server script signals once its unasked bytes are written; the client's look then
//! acknowledges what it has read (so the server's Nagle algorithm releases them) and sees them.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use crate::support::{Server, envelope, greeted};
use mailpump::smtp::client::Client;
use mailpump::smtp::error::SmtpError;
use mailpump::source::BytesSource;

/// A server that answers the greeting, EHLO (with `caps`) and one NOOP, then, once the client
/// has read that answer, sends `unasked`; and the client, greeted and past its NOOP, once the
/// server says the bytes are written. Whatever the client sends afterwards is returned by
/// `finish_text`.
fn unasked_after_noop(caps: &'static [&'static str], unasked: &'static str) -> (Server, Client) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let (server, mut client) = greeted(move |c| {
        c.hello(caps);
        c.expect("NOOP");
        c.send("250 2.0.0 noop ok\r\n");
        go_rx.recv().unwrap();
        c.send(unasked);
        sent_tx.send(()).unwrap();
        // The client must hang up without writing the command it was about to send.
        assert_eq!(c.try_line(), None);
    });
    assert_eq!(client.noop().unwrap().text(), "noop ok");
    go_tx.send(()).unwrap();
    sent_rx.recv().unwrap();
    (server, client)
}

#[test]
fn an_unasked_reply_fails_the_next_command_before_it_is_sent() {
    let (server, mut client) = unasked_after_noop(&[], "250 2.0.0 unsolicited\r\n");
    let err = client.rset().unwrap_err();
    let SmtpError::Protocol { reason: why, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(why.contains("no command asked for"), "{why}");
    assert!(why.contains("250 2.0.0 unsolicited"), "{why}");
    assert!(!client.is_usable());
    assert!(matches!(client.noop(), Err(SmtpError::Connect { .. })));
    let sent = server.finish_text();
    assert!(!sent.contains("RSET"), "{sent}");
}

#[test]
fn a_partial_unasked_line_is_enough() {
    let (server, mut client) = unasked_after_noop(&[], "2");
    let err = client.noop().unwrap_err();
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn an_unasked_reply_stops_a_pipelined_batch_before_it_is_sent() {
    let (server, mut client) = unasked_after_noop(&["PIPELINING"], "354 go ahead\r\n");
    let err = client
        .send(
            &envelope(&["b@example.org"]),
            &mut BytesSource::new(&b"hi\r\n"[..]),
            None,
        )
        .unwrap_err();
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    let sent = server.finish_text();
    assert!(!sent.contains("MAIL"), "{sent}");
}

#[test]
fn an_asynchronous_421_answers_the_next_command() {
    // RFC 5321 §3.8: a server shutting down may send 421 "asynchronously from command receipt
    // (on the assumption that the client will receive it after the next command is issued)".
    let (server, mut client) = unasked_after_noop(&[], "421 4.4.2 idle for too long\r\n");
    let err = client.rset().unwrap_err();
    match &err {
        SmtpError::Reply { reply, .. } => assert_eq!(reply.code, 421),
        other => panic!("{other:?}"),
    }
    assert!(err.is_transient());
    assert!(!client.is_usable());
    let sent = server.finish_text();
    assert!(!sent.contains("RSET"), "{sent}");
}

#[test]
fn an_asynchronous_421_answers_a_pipelined_batch() {
    let (server, mut client) = unasked_after_noop(&["PIPELINING"], "421 4.3.2 shutting down\r\n");
    let err = client
        .send(
            &envelope(&["b@example.org"]),
            &mut BytesSource::new(&b"hi\r\n"[..]),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(&err, SmtpError::Reply { reply, .. } if reply.code == 421),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(!server.finish_text().contains("MAIL"));
}

#[test]
fn a_server_that_hung_up_while_idle_is_a_connection_error() {
    // The end of the stream is not unasked data: it fails as the read of the reply would have.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        stream.write_all(b"220 ready\r\n").unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("EHLO "), "{line:?}");
        stream.write_all(b"250 hello\r\n").unwrap();
        go_rx.recv().unwrap();
        drop(reader);
        drop(stream);
        closed_tx.send(()).unwrap();
    });
    let config = mailpump::ClientConfig {
        server: "127.0.0.1".into(),
        port,
        tls: mailpump::TlsPolicy::None,
        ..mailpump::ClientConfig::default()
    };
    let mut client = Client::connect(&config).unwrap();
    client.greet(None).unwrap();
    go_tx.send(()).unwrap();
    closed_rx.recv().unwrap();
    let err = client.noop().unwrap_err();
    assert!(matches!(err, SmtpError::Connect { .. }), "{err:?}");
    assert!(!client.is_usable());
    handle.join().unwrap();
}

#[cfg(feature = "tls")]
mod tls {
    //! `TlsTransport::has_pending_input` against a rustls server that sends TLS 1.3 session
    //! tickets (at the end of the handshake) and a key update, then application data, then
    //! `close_notify`.

    use std::io::{self, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::support::TestTls;
    use mailpump::smtp::tls::{TlsSettings, TlsTransport};
    use mailpump::smtp::transport::{TcpTransport, Transport};

    /// A TCP transport that counts how often the TLS layer found bytes waiting under it.
    struct Probe {
        tcp: TcpTransport,
        saw_bytes: Arc<AtomicUsize>,
    }

    impl Read for Probe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.tcp.read(buf)
        }
    }

    impl Write for Probe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.tcp.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.tcp.flush()
        }
    }

    impl Transport for Probe {
        fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
            self.tcp.set_timeout(timeout)
        }

        fn shutdown(&mut self) {
            self.tcp.shutdown();
        }

        fn peer_is_loopback(&self) -> bool {
            true
        }

        fn has_pending_input(&mut self) -> io::Result<bool> {
            let pending = self.tcp.has_pending_input()?;
            if pending {
                self.saw_bytes.fetch_add(1, Ordering::SeqCst);
            }
            Ok(pending)
        }
    }

    /// Looks until the records written by the server have been seen under the TLS layer,
    /// asserting every time that the TLS layer reports no application data. No sleep: the
    /// bytes are on their way and each look is a non-blocking system call.
    fn assert_quiet_until_records_seen(tls: &mut TlsTransport, saw_bytes: &AtomicUsize) {
        let before = saw_bytes.load(Ordering::SeqCst);
        for _ in 0..10_000_000 {
            assert!(
                !tls.has_pending_input().unwrap(),
                "TLS records taken for data"
            );
            if saw_bytes.load(Ordering::SeqCst) > before {
                return;
            }
            std::thread::yield_now();
        }
        panic!("the server's TLS records never arrived");
    }

    fn wait_for_pending(tls: &mut TlsTransport) {
        for _ in 0..10_000_000 {
            if tls.has_pending_input().unwrap() {
                return;
            }
            std::thread::yield_now();
        }
        panic!("the server's data never arrived");
    }

    #[test]
    fn tickets_and_key_updates_are_not_data_but_application_bytes_and_close_notify_are() {
        let certs = TestTls::new();
        let server_config = Arc::clone(&certs.server);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (step_tx, step_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            // Every record goes out at once, not held for an ACK.
            tcp.set_nodelay(true).unwrap();
            let mut conn = rustls::ServerConnection::new(server_config).unwrap();
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp).unwrap();
            }
            // The session tickets follow the handshake (RFC 8446 §4.6.1).
            let flush = |conn: &mut rustls::ServerConnection, tcp: &mut TcpStream| {
                while conn.wants_write() {
                    conn.write_tls(tcp).unwrap();
                }
            };
            flush(&mut conn, &mut tcp);
            assert_eq!(
                conn.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_3)
            );
            done_tx.send(()).unwrap();
            step_rx.recv().unwrap();
            conn.refresh_traffic_keys().unwrap(); // RFC 8446 §4.6.3
            flush(&mut conn, &mut tcp);
            done_tx.send(()).unwrap();
            step_rx.recv().unwrap();
            conn.writer().write_all(b"250 unasked\r\n").unwrap();
            flush(&mut conn, &mut tcp);
            done_tx.send(()).unwrap();
            step_rx.recv().unwrap();
            conn.send_close_notify();
            flush(&mut conn, &mut tcp);
            done_tx.send(()).unwrap();
        });

        let saw_bytes = Arc::new(AtomicUsize::new(0));
        let probe = Probe {
            tcp: TcpTransport::connect("127.0.0.1", addr.port(), Duration::from_secs(20)).unwrap(),
            saw_bytes: Arc::clone(&saw_bytes),
        };
        let settings = TlsSettings {
            cafile: Some(certs.cafile.clone()),
            ..TlsSettings::default()
        };
        let mut tls = TlsTransport::handshake(
            Box::new(probe),
            settings.client_config().unwrap(),
            "localhost",
        )
        .unwrap();

        done_rx.recv().unwrap();
        assert_quiet_until_records_seen(&mut tls, &saw_bytes); // the tickets
        step_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        assert_quiet_until_records_seen(&mut tls, &saw_bytes); // the key update
        step_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        wait_for_pending(&mut tls);
        let mut line = [0u8; 13];
        tls.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"250 unasked\r\n");
        assert!(!tls.has_pending_input().unwrap());
        step_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        wait_for_pending(&mut tls);
        assert_eq!(tls.read(&mut line).unwrap(), 0);
        server.join().unwrap();
    }
}
