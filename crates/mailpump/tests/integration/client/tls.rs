//! STARTTLS and implicit TLS with rustls on both sides (a CA and a server certificate made at
//! test time with rcgen), the TLS policies, and response injection after STARTTLS.

use crate::support::{Recording, Server, TestTls, envelope};
use mailpump::smtp::auth::Credentials;
use mailpump::smtp::client::{Client, ClientConfig, TlsPolicy};
use mailpump::smtp::error::SmtpError;
use mailpump::source::BytesSource;

#[test]
fn starttls_then_ehlo_again_auth_and_send_over_tls() {
    let tls = TestTls::new();
    let server_tls = tls.server.clone();
    let server = Server::start(move |c| {
        c.hello(&["PIPELINING", "STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 2.0.0 ready to start TLS\r\n");
        c.accept_tls(&server_tls);
        c.expect("EHLO client.example");
        c.ehlo_reply(&["AUTH PLAIN", "SIZE 5000"]);
        c.expect("AUTH PLAIN AHVzZXIAc2VjcmV0");
        c.send("235 ok\r\n");
        c.expect("MAIL FROM:<me@example.com> SIZE=6");
        c.send("250 ok\r\n");
        c.expect("RCPT TO:<you@example.org>");
        c.send("250 ok\r\n");
        c.expect("DATA");
        c.send("354 go\r\n");
        assert_eq!(c.data(), b"hello\r\n.\r\n");
        c.send("250 queued\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    // The peer looks remote: AUTH must still go through, because the connection is encrypted.
    let (mut client, writes) =
        Recording::remote(&server).client(&tls.config(&server, TlsPolicy::StartTls));
    let caps = client.greet(None).unwrap();
    // The capabilities are the ones announced over TLS, not the plaintext ones.
    assert!(!caps.pipelining && !caps.starttls);
    assert_eq!(caps.size_limit(), Some(5000));
    assert!(client.is_encrypted());
    client
        .auth(&Credentials::new("user", "secret"), None)
        .unwrap();
    let envelope = envelope(&["you@example.org"]);
    client
        .send(&envelope, &mut BytesSource::new(&b"hello\n"[..]), None)
        .unwrap();
    client.quit().unwrap();
    server.finish();
    // Nothing but EHLO and STARTTLS crossed the wire in plaintext.
    let writes = writes.lock().unwrap();
    assert_eq!(writes[0], b"EHLO client.example\r\n");
    assert_eq!(writes[1], b"STARTTLS\r\n");
    let plain: Vec<u8> = writes[2..].concat();
    assert!(!plain.windows(4).any(|w| w == b"MAIL" || w == b"AUTH"));
}

#[test]
fn implicit_tls_from_the_first_byte() {
    let tls = TestTls::new();
    let server_config = tls.server.clone();
    let server = Server::start(move |c| {
        c.accept_tls(&server_config);
        c.hello(&["AUTH PLAIN"]);
        c.expect("NOOP");
        c.send("250 ok\r\n");
    });
    let mut config = tls.config(&server, TlsPolicy::Implicit);
    config.server = "127.0.0.1".into(); // verified against the certificate's IP address
    let mut client = Client::connect(&config).unwrap();
    assert!(client.is_encrypted());
    client.greet(None).unwrap();
    client.noop().unwrap();
    client.close();
    server.finish();
}

#[test]
fn untrusted_certificate_is_a_tls_error() {
    let tls = TestTls::new();
    let server_config = tls.server.clone();
    let server = Server::start(move |c| {
        c.hello(&["STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 go\r\n");
        assert!(c.tls_fails(&server_config));
    });
    let mut config = tls.config(&server, TlsPolicy::StartTls);
    config.cafile = None;
    let mut client = Client::connect(&config).unwrap();
    let err = client.greet(None).unwrap_err();
    assert!(matches!(err, SmtpError::Tls { .. }), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn wrong_host_name_is_a_tls_error() {
    let tls = TestTls::new();
    let server_config = tls.server.clone();
    let server = Server::start(move |c| {
        c.hello(&["STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 go\r\n");
        assert!(c.tls_fails(&server_config));
    });
    let mut config = tls.config(&server, TlsPolicy::StartTls);
    config.server = "mail.example.com".into();
    let (mut client, _) = Recording::connect(&server).client(&config);
    let err = client.greet(None).unwrap_err();
    assert!(matches!(err, SmtpError::Tls { .. }), "{err:?}");
    server.finish();
}

#[test]
fn verify_false_accepts_an_untrusted_certificate() {
    let tls = TestTls::new();
    let server_config = tls.server.clone();
    let server = Server::start(move |c| {
        c.hello(&["STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 go\r\n");
        c.accept_tls(&server_config);
        c.expect("EHLO client.example");
        c.ehlo_reply(&[]);
    });
    let mut config = tls.config(&server, TlsPolicy::StartTls);
    config.cafile = None;
    config.verify = false;
    let mut client = Client::connect(&config).unwrap();
    client.greet(None).unwrap();
    assert!(client.is_encrypted());
    client.close();
    server.finish();
}

#[test]
fn starttls_required_but_not_offered_fails_closed() {
    let tls = TestTls::new();
    let server = Server::start(|c| {
        c.hello(&["PIPELINING", "AUTH PLAIN LOGIN"]);
        assert_eq!(c.until_eof(), b"");
    });
    let mut client = Client::connect(&tls.config(&server, TlsPolicy::StartTls)).unwrap();
    let err = client.greet(None).unwrap_err();
    assert!(matches!(err, SmtpError::Tls { .. }), "{err:?}");
    // Nothing more can be sent: no AUTH, no MAIL.
    let auth = client
        .auth(&Credentials::new("user", "secret"), None)
        .unwrap_err();
    assert!(matches!(auth, SmtpError::Connect { .. }), "{auth:?}");
    let envelope = envelope(&["you@example.org"]);
    let send = client
        .send(&envelope, &mut BytesSource::new(&b"x"[..]), None)
        .unwrap_err();
    assert!(matches!(send, SmtpError::Connect { .. }), "{send:?}");
    assert_eq!(server.finish_text(), "EHLO client.example\r\n");
}

#[test]
fn starttls_refused_fails_closed_under_both_policies() {
    for policy in [TlsPolicy::StartTls, TlsPolicy::Auto] {
        let tls = TestTls::new();
        let server = Server::start(|c| {
            c.hello(&["STARTTLS", "AUTH PLAIN"]);
            c.expect("STARTTLS");
            c.send("454 4.7.0 TLS not available due to temporary reason\r\n");
            assert_eq!(c.until_eof(), b"");
        });
        let mut client = Client::connect(&tls.config(&server, policy)).unwrap();
        let err = client.greet(None).unwrap_err();
        assert!(matches!(err, SmtpError::Tls { .. }), "{policy:?}: {err:?}");
        assert!(!client.is_usable());
        assert_eq!(server.finish_text(), "EHLO client.example\r\nSTARTTLS\r\n");
    }
}

#[test]
fn plaintext_injected_after_the_starttls_reply_is_a_protocol_error() {
    for injected in [
        "220 go\r\n250-evil\r\n250 AUTH PLAIN\r\n",
        "220 go\r\n250-X",
    ] {
        let tls = TestTls::new();
        let server = Server::start(move |c| {
            c.hello(&["STARTTLS"]);
            c.expect("STARTTLS");
            // The reply and the injected bytes in one write, as a man in the middle would.
            c.send(injected);
            // The client must hang up without starting TLS.
            assert_eq!(c.until_eof(), b"");
        });
        let mut client = Client::connect(&tls.config(&server, TlsPolicy::StartTls)).unwrap();
        let err = client.greet(None).unwrap_err();
        assert!(
            matches!(err, SmtpError::Protocol { .. }),
            "{injected:?}: {err:?}"
        );
        assert!(!client.is_usable());
        assert_eq!(server.finish_text(), "EHLO client.example\r\nSTARTTLS\r\n");
    }
}

#[test]
fn auto_upgrades_when_offered_and_stays_plain_when_not() {
    let tls = TestTls::new();
    let server_config = tls.server.clone();
    let server = Server::start(move |c| {
        c.hello(&["STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 go\r\n");
        c.accept_tls(&server_config);
        c.expect("EHLO client.example");
        c.ehlo_reply(&[]);
    });
    let mut client = Client::connect(&tls.config(&server, TlsPolicy::Auto)).unwrap();
    client.greet(None).unwrap();
    assert!(client.is_encrypted());
    client.close();
    server.finish();

    let server = Server::start(|c| {
        c.hello(&["PIPELINING"]);
        c.expect("NOOP");
        c.send("250 ok\r\n");
    });
    let mut client = Client::connect(&tls.config(&server, TlsPolicy::Auto)).unwrap();
    client.greet(None).unwrap();
    assert!(!client.is_encrypted());
    client.noop().unwrap();
    client.close();
    server.finish();
}

#[test]
fn tls_policy_names_and_port_465() {
    assert_eq!(
        "STARTTLS".parse::<TlsPolicy>().unwrap(),
        TlsPolicy::StartTls
    );
    assert_eq!("auto".parse::<TlsPolicy>().unwrap(), TlsPolicy::Auto);
    assert_eq!(
        "Implicit".parse::<TlsPolicy>().unwrap(),
        TlsPolicy::Implicit
    );
    assert_eq!("none".parse::<TlsPolicy>().unwrap(), TlsPolicy::None);
    assert!("required".parse::<TlsPolicy>().is_err());
    let config = ClientConfig {
        port: 465,
        ..ClientConfig::default()
    };
    assert!(config.implicit_tls());
    let config = ClientConfig {
        port: 587,
        ..ClientConfig::default()
    };
    assert!(!config.implicit_tls());
    let config = ClientConfig {
        port: 465,
        tls: TlsPolicy::None,
        ..ClientConfig::default()
    };
    assert!(!config.implicit_tls());
}

#[test]
fn unreadable_cafile_is_a_tls_error() {
    let server = Server::start(|c| {
        c.hello(&["STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 go\r\n");
        c.until_eof();
    });
    let mut config = server.config();
    config.tls = TlsPolicy::StartTls;
    config.cafile = Some(std::env::temp_dir().join("mailpump-no-such-dir/ca.pem"));
    let mut client = Client::connect(&config).unwrap();
    let err = client.greet(None).unwrap_err();
    assert!(
        matches!(err, SmtpError::Tls { reason: ref m, .. } if m.contains("cafile")),
        "{err:?}"
    );
    server.finish();
}

#[test]
fn stalled_tls_handshake_is_a_timeout() {
    let tls = TestTls::new();
    let server = Server::start(|c| {
        c.hello(&["STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 go\r\n");
        // Never answer the ClientHello; wait for the client to give up.
        c.until_eof();
    });
    // Greet in plaintext, then STARTTLS by hand with a short timeout for the handshake only.
    let mut client = Client::connect(&tls.config(&server, TlsPolicy::None)).unwrap();
    assert!(client.greet(None).unwrap().starttls);
    client
        .set_timeout(std::time::Duration::from_millis(200))
        .unwrap();
    let err = client.starttls().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}

/// A connector that counts its handshakes and runs them through rustls (or fails as told).
struct Counting {
    settings: mailpump::smtp::tls::TlsSettings,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    fail: Option<mailpump::smtp::error::TlsKind>,
}

impl mailpump::smtp::connector::TlsConnector for Counting {
    fn handshake(
        &self,
        inner: Box<dyn mailpump::smtp::transport::Transport>,
        server_name: &str,
    ) -> std::io::Result<Box<dyn mailpump::smtp::transport::Transport>> {
        use mailpump::smtp::connector::HandshakeFailure;
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(kind) = self.fail {
            return Err(HandshakeFailure::io(kind, "the connector says why"));
        }
        let config = self.settings.client_config()?;
        mailpump::smtp::tls::RustlsConnector(config).handshake(inner, server_name)
    }
}

/// A configuration whose TLS goes through a [`Counting`] connector trusting `tls`'s CA.
fn through_connector(
    tls: &TestTls,
    server: &Server,
    policy: TlsPolicy,
    fail: Option<mailpump::smtp::error::TlsKind>,
) -> (ClientConfig, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let calls = std::sync::Arc::default();
    let connector = Counting {
        settings: mailpump::smtp::tls::TlsSettings {
            cafile: Some(tls.cafile.clone()),
            ..Default::default()
        },
        calls: std::sync::Arc::clone(&calls),
        fail,
    };
    let config = ClientConfig {
        cafile: None,
        tls_connector: Some(mailpump::smtp::connector::Connector::new(connector)),
        ..tls.config(server, policy)
    };
    (config, calls)
}

#[test]
fn a_configured_connector_runs_the_starttls_and_the_implicit_handshakes() {
    for policy in [TlsPolicy::StartTls, TlsPolicy::Implicit] {
        let tls = TestTls::new();
        let server_tls = tls.server.clone();
        let server = Server::start(move |c| {
            if policy == TlsPolicy::StartTls {
                c.hello(&["STARTTLS"]);
                c.expect("STARTTLS");
                c.send("220 go\r\n");
            }
            c.accept_tls(&server_tls);
            if policy == TlsPolicy::StartTls {
                assert!(c.line().starts_with("EHLO "));
                c.ehlo_reply(&[]);
            } else {
                c.hello(&[]);
            }
            c.expect("NOOP");
            c.send("250 ok\r\n");
        });
        let (config, calls) = through_connector(&tls, &server, policy, None);
        let mut client = Client::connect(&config).unwrap();
        client.greet(None).unwrap();
        assert!(client.is_encrypted());
        client.noop().unwrap();
        client.close();
        server.finish();
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{policy:?}"
        );
    }
}

#[test]
fn a_connector_failure_keeps_its_kind_and_words() {
    use mailpump::smtp::error::TlsKind;
    let tls = TestTls::new();
    let server = Server::start(|c| {
        c.hello(&["STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 go\r\n");
    });
    let (config, _) = through_connector(&tls, &server, TlsPolicy::StartTls, Some(TlsKind::Expired));
    let mut client = Client::connect(&config).unwrap();
    let err = client.greet(None).unwrap_err();
    assert_eq!(err.kind(), TlsKind::Expired.as_str(), "{err}");
    assert!(err.to_string().contains("the connector says why"), "{err}");
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn a_connector_excludes_the_rustls_settings() {
    let tls = TestTls::new();
    let server = Server::start(|_| {});
    let (config, _) = through_connector(&tls, &server, TlsPolicy::Implicit, None);
    let with_cafile = ClientConfig {
        cafile: Some(tls.cafile.clone()),
        verify: false,
        ..config.clone()
    };
    let err = with_cafile.validate().unwrap_err();
    assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("cafile, verify"), "{err}");
    assert!(config.validate().is_ok());
    drop(Client::connect(&config));
    server.finish();
}
