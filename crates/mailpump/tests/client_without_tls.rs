//! The client built without the `tls` feature: plain SMTP where the policy allows it, and a
//! refusal before any mail command where the policy requires TLS (it never falls back to
//! plaintext). Run with `cargo test -p mailpump --no-default-features`.

#![cfg(not(feature = "tls"))]

mod client_support;

use client_support::Server;
use mailpump::smtp::client::{Client, TlsPolicy};
use mailpump::smtp::error::SmtpError;
use mailpump::smtp::transport::TcpTransport;

fn connect(server: &Server, policy: TlsPolicy) -> Result<Client, SmtpError> {
    let config = mailpump::ClientConfig {
        tls: policy,
        ..server.config()
    };
    let tcp = TcpTransport::connect("127.0.0.1", server.port, config.timeout).expect("connect");
    Client::from_transport(Box::new(tcp), &config)
}

#[test]
fn auto_stays_in_plaintext_even_when_starttls_is_offered() {
    let server = Server::start(|c| {
        c.hello(&["STARTTLS", "PIPELINING"]);
        c.expect("NOOP");
        c.send("250 ok\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let mut client = connect(&server, TlsPolicy::Auto).expect("connect");
    assert!(client.greet(None).expect("greet").starttls);
    assert!(!client.is_encrypted());
    client.noop().expect("noop");
    client.quit().expect("quit");
    let sent = server.finish_text();
    assert!(!sent.contains("STARTTLS"), "{sent}");
}

#[test]
fn required_starttls_fails_closed_before_any_mail_command() {
    let server = Server::start(|c| {
        c.hello(&["STARTTLS"]);
        // Whatever the client says next, it must not be a mail command.
        if let Some(line) = c.try_line() {
            assert_eq!(line, "STARTTLS");
            c.send_lossy(b"220 go ahead\r\n");
        }
        c.until_eof();
    });
    let mut client = connect(&server, TlsPolicy::StartTls).expect("connect");
    let error = client.greet(None).expect_err("no TLS to start");
    assert!(matches!(error, SmtpError::Tls(_)), "{error:?}");
    assert!(!client.is_usable());
    let sent = server.finish_text();
    assert!(!sent.contains("MAIL"), "{sent}");
}

#[test]
fn implicit_tls_is_refused_before_a_byte_is_exchanged() {
    let server = Server::start(|c| {
        assert!(c.until_eof().is_empty());
    });
    let error = connect(&server, TlsPolicy::Implicit).expect_err("no TLS");
    assert!(matches!(error, SmtpError::Tls(_)), "{error:?}");
    assert!(server.finish().is_empty());
}
