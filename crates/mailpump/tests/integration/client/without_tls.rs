//! The client built without the `tls` feature: plain SMTP where the policy allows it, and a
//! refusal before STARTTLS (or any mail command) is sent where the policy requires TLS (it never
//! falls back to plaintext). Run with `cargo test -p mailpump --no-default-features`.

use crate::support::Server;
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
fn required_starttls_fails_closed_before_starttls_is_sent() {
    let server = Server::start(|c| {
        c.hello(&["STARTTLS"]);
        // A 220 to STARTTLS would commit the server to a handshake this build cannot run: the
        // client must hang up without asking.
        assert_eq!(c.try_line(), None);
    });
    let mut client = connect(&server, TlsPolicy::StartTls).expect("connect");
    let error = client.greet(None).expect_err("no TLS to start");
    assert!(
        matches!(&error, SmtpError::Tls { reason: why, .. } if why.contains("tls feature")),
        "{error:?}"
    );
    assert!(!client.is_usable());
    let sent = server.finish_text();
    assert!(!sent.contains("STARTTLS"), "{sent}");
    assert!(!sent.contains("MAIL"), "{sent}");
}

#[test]
fn explicit_starttls_fails_before_it_is_sent() {
    let server = Server::start(|c| {
        c.hello(&["STARTTLS"]);
        assert_eq!(c.try_line(), None);
    });
    let mut client = connect(&server, TlsPolicy::None).expect("connect");
    assert!(client.greet(None).expect("greet").starttls);
    let error = client.starttls().expect_err("no TLS to start");
    assert!(matches!(error, SmtpError::Tls { .. }), "{error:?}");
    assert!(!client.is_usable());
    assert!(!server.finish_text().contains("STARTTLS"));
}

#[test]
fn implicit_tls_is_refused_before_a_byte_is_exchanged() {
    let server = Server::start(|c| {
        assert!(c.until_eof().is_empty());
    });
    let error = connect(&server, TlsPolicy::Implicit).expect_err("no TLS");
    assert!(matches!(error, SmtpError::Tls { .. }), "{error:?}");
    assert!(server.finish().is_empty());
}
