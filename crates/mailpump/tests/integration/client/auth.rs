//! AUTH exchanges against a scripted server, the plaintext rule and the redacted transcript.

use std::sync::{Arc, Mutex};

use crate::support::{Conn, Recording, Server, greeted};
use mailpump::smtp::auth::{Credentials, Mechanism};
use mailpump::smtp::client::Client;
use mailpump::smtp::error::SmtpError;
use mailpump::smtp::transcript::Direction;

type Lines = Arc<Mutex<Vec<(Direction, String)>>>;

/// Starts a server that runs `script`, connects a client whose transcript records every line,
/// and greets.
fn greeted_with_transcript(
    script: impl FnOnce(&mut Conn) + Send + 'static,
) -> (Server, Client, Lines) {
    let server = Server::start(script);
    let mut client = server.client();
    let lines: Lines = Arc::default();
    let sink = Arc::clone(&lines);
    client.set_transcript(Some(Box::new(move |d, line: &str| {
        sink.lock().unwrap().push((d, line.to_owned()));
    })));
    client.greet(None).expect("greet");
    (server, client, lines)
}

/// Asserts that no transcript line holds any of `secrets`.
fn assert_redacted(lines: &Lines, secrets: &[&str]) {
    let lines = lines.lock().unwrap();
    assert!(!lines.is_empty());
    for (_, line) in lines.iter() {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "transcript leaks {secret:?}: {line:?}"
            );
        }
    }
}

#[test]
fn auth_plain_sends_the_initial_response_and_redacts_it() {
    let (server, mut client, lines) = greeted_with_transcript(|c| {
        c.hello(&["AUTH PLAIN LOGIN"]);
        c.expect("AUTH PLAIN AHVzZXIAc2VjcmV0");
        c.send("235 2.7.0 Authentication successful\r\n");
    });
    let reply = client
        .auth(&Credentials::new("user", "secret"), None)
        .unwrap();
    assert_eq!(reply.code, 235);
    client.close();
    server.finish();
    assert_redacted(&lines, &["AHVzZXIAc2VjcmV0", "secret"]);
    let lines = lines.lock().unwrap();
    assert!(
        lines.contains(&(Direction::Client, "AUTH PLAIN <redacted>".to_owned())),
        "{lines:?}"
    );
    assert!(lines.contains(&(
        Direction::Server,
        "235 2.7.0 Authentication successful".to_owned()
    )));
    // A multi-line reply is one transcript entry, in the server's own layout.
    let ehlo = (
        Direction::Server,
        "250-test.example\n250 AUTH PLAIN LOGIN".to_owned(),
    );
    assert!(lines.contains(&ehlo), "{lines:?}");
}

#[test]
fn auth_login_answers_both_challenges_and_redacts_them() {
    let (server, mut client, lines) = greeted_with_transcript(|c| {
        c.hello(&["AUTH=LOGIN"]);
        c.expect("AUTH LOGIN");
        c.send("334 VXNlcm5hbWU6\r\n");
        c.expect("dXNlcg==");
        c.send("334 UGFzc3dvcmQ6\r\n");
        c.expect("c2VjcmV0");
        c.send("235 ok\r\n");
    });
    client
        .auth(&Credentials::new("user", "secret"), None)
        .unwrap();
    client.close();
    server.finish();
    assert_redacted(&lines, &["dXNlcg==", "c2VjcmV0", "secret"]);
    let client_lines: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(d, _)| *d == Direction::Client)
        .map(|(_, l)| l.clone())
        .collect();
    assert_eq!(
        client_lines,
        [
            "EHLO client.example",
            "AUTH LOGIN",
            "<redacted>",
            "<redacted>"
        ]
    );
}

#[test]
fn auth_cram_md5_is_preferred_and_answers_the_rfc_2195_example() {
    let (server, mut client, lines) = greeted_with_transcript(|c| {
        c.hello(&["AUTH LOGIN PLAIN CRAM-MD5"]);
        c.expect("AUTH CRAM-MD5");
        c.send("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n");
        c.expect("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
        c.send("235 ok\r\n");
    });
    client
        .auth(&Credentials::new("tim", "tanstaaftanstaaf"), None)
        .unwrap();
    client.close();
    server.finish();
    assert_redacted(&lines, &["dGltIGI5MTNh", "tanstaaf"]);
}

#[test]
fn auth_xoauth2_sends_the_token_once() {
    let (server, mut client, lines) = greeted_with_transcript(|c| {
        c.hello(&["AUTH XOAUTH2 PLAIN"]);
        c.expect("AUTH XOAUTH2 dXNlcj1tZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnRva2VuAQE=");
        c.send("235 2.7.0 Accepted\r\n");
    });
    client
        .auth(
            &Credentials::new("me@example.com", "ya29.token"),
            Some(Mechanism::XOAuth2),
        )
        .unwrap();
    client.close();
    server.finish();
    assert_redacted(&lines, &["ya29", "dXNlcj1tZUBl"]);
}

#[test]
fn auth_xoauth2_error_challenge_ends_in_an_auth_error() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["AUTH XOAUTH2"]);
        c.line();
        c.send("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n");
        c.expect("");
        c.send("535 5.7.8 Username and Password not accepted\r\n");
        c.expect("NOOP");
        c.send("250 ok\r\n");
    });
    let err = client
        .auth(
            &Credentials::new("me@example.com", "expired"),
            Some(Mechanism::XOAuth2),
        )
        .unwrap_err();
    match &err {
        SmtpError::Auth {
            reply: Some(reply), ..
        } => assert_eq!(reply.code, 535),
        other => panic!("expected Auth, got {other:?}"),
    }
    client.noop().unwrap();
    client.close();
    server.finish();
}

#[test]
fn wrong_password_is_an_auth_error_and_the_session_goes_on() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["AUTH PLAIN"]);
        c.line();
        c.send("535 5.7.8 Authentication credentials invalid\r\n");
        c.expect("AUTH PLAIN AHVzZXIAcmlnaHQ=");
        c.send("235 ok\r\n");
    });
    let err = client
        .auth(&Credentials::new("user", "wrong"), None)
        .unwrap_err();
    assert!(
        matches!(err, SmtpError::Auth { reply: Some(ref r), .. } if r.code == 535),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(!err.to_string().contains("wrong"));
    client
        .auth(&Credentials::new("user", "right"), None)
        .unwrap();
    client.close();
    server.finish();
}

#[test]
fn auth_over_plaintext_to_a_remote_peer_is_refused_before_any_byte() {
    let server = Server::start(|c| {
        c.hello(&["AUTH PLAIN LOGIN"]);
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let (mut client, _) = Recording::remote(&server).client(&server.config());
    client.greet(None).unwrap();
    let err = client
        .auth(&Credentials::new("user", "secret"), None)
        .unwrap_err();
    assert!(
        matches!(err, SmtpError::Auth { reply: None, .. }),
        "{err:?}"
    );
    assert!(client.is_usable());
    client.quit().unwrap();
    assert_eq!(server.finish_text(), "EHLO client.example\r\nQUIT\r\n");
}

#[test]
fn auth_over_plaintext_to_a_remote_peer_when_explicitly_allowed() {
    let server = Server::start(|c| {
        c.hello(&["AUTH PLAIN"]);
        c.expect("AUTH PLAIN AHVzZXIAc2VjcmV0");
        c.send("235 ok\r\n");
    });
    let mut config = server.config();
    config.allow_insecure_auth = true;
    let (mut client, _) = Recording::remote(&server).client(&config);
    client.greet(None).unwrap();
    client
        .auth(&Credentials::new("user", "secret"), None)
        .unwrap();
    client.close();
    server.finish();
}

#[test]
fn no_usable_mechanism_is_an_auth_error_before_any_byte() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["AUTH GSSAPI NTLM"]);
        assert_eq!(c.until_eof(), b"");
    });
    let err = client
        .auth(&Credentials::new("user", "secret"), None)
        .unwrap_err();
    assert!(
        matches!(err, SmtpError::Auth { reply: None, .. }),
        "{err:?}"
    );
    client.close();
    assert_eq!(server.finish_text(), "EHLO client.example\r\n");
}

#[test]
fn an_unexpected_extra_challenge_is_cancelled() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["AUTH PLAIN"]);
        c.line();
        c.send("334 \r\n");
        // A server that ignored the initial response gets the payload again...
        c.expect("AHVzZXIAc2VjcmV0");
        // ...but a second challenge has no answer: the client cancels.
        c.send("334 more?\r\n");
        c.expect("*");
        c.send("501 5.7.0 cancelled\r\n");
    });
    let err = client
        .auth(&Credentials::new("user", "secret"), None)
        .unwrap_err();
    assert!(matches!(err, SmtpError::Auth { .. }), "{err:?}");
    assert!(client.is_usable());
    client.close();
    server.finish();
}
