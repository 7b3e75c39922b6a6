//! One test per section of docs/security.md (§1–§11): the security bugs of other SMTP clients and
//! MIME builders, each test named after the bug it guards against. Those about the wire go
//! through the real client against a scripted server on 127.0.0.1 and check what the server
//! received; those about headers go through `MessageEncoder`.
//!
//! Skipped: CVE-2016-10033 / CVE-2016-10045 (`PHPMailer`'s sender address reaching a
//! `sendmail -f` command line). mailpump never shells out: it has no sendmail transport and
//! starts no process, so there is no command line for an address to reach.
//!
//! Not applicable parts of sections: mailpump has no VRFY/EXPN and no free-form ESMTP parameters
//! (MAIL and RCPT parameters are typed: SIZE, BODY, SMTPUTF8, and DSN's, xtext-encoded), so that
//! half of the bpo-43124 section has nothing to test. BDAT counts bytes, so no end of data can be
//! smuggled into a chunk: `tests/test_smuggling.py` checks that hostile bodies arrive whole.

// The tests that need TLS on both sides are gated on the `tls` feature one by one; the
// others also run in the build without it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(feature = "tls")]
use crate::support::TestTls;
use crate::support::{
    ChunkedSource, crlf_normalise, decode_2047, encode, envelope, field, greet_fails,
    header_fields, names, strict_data,
};
use crate::support::{Recording, Server, greeted};
use mailpump::mime::message::{Body, HeaderValue, Part};
use mailpump::smtp::address::Address;
use mailpump::smtp::auth::{Credentials, Mechanism};
#[cfg(feature = "tls")]
use mailpump::smtp::client::ClientConfig;
use mailpump::smtp::client::{Client, Envelope, TlsPolicy};
use mailpump::smtp::command::Command;
use mailpump::smtp::error::SmtpError;
use mailpump::smtp::transcript::Direction;
use mailpump::source::BytesSource;

/// Every C0 control character and DEL.
fn controls() -> impl Iterator<Item = char> {
    (0u8..0x20).chain([0x7f]).map(char::from)
}

/// Whether the bytes hold any of the commands that must never cross in plaintext.
fn holds_sensitive_command(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes).to_ascii_uppercase();
    ["AUTH", "MAIL FROM", "RCPT TO", "DATA"]
        .iter()
        .any(|c| text.contains(c))
}

/// After a failed greet, the client refuses AUTH and send without touching the wire.
fn assert_dead(client: &mut Client) {
    assert!(!client.is_usable());
    let err = client
        .auth(&Credentials::new("user", "hunter2"), Some(Mechanism::Plain))
        .unwrap_err();
    assert!(matches!(err, SmtpError::Connect { .. }), "{err:?}");
    let err = client
        .send(
            &envelope(&["you@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap_err();
    assert!(matches!(err, SmtpError::Connect { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// CVE-2016-0772: STARTTLS stripping.

#[test]
fn cve_2016_0772_starttls_stripping_missing_offer_aborts_before_any_command() {
    let server = Server::start(|c| {
        c.hello(&["AUTH PLAIN", "PIPELINING"]); // STARTTLS stripped by the attacker
        assert!(c.until_eof().is_empty(), "nothing may follow EHLO");
    });
    let mut config = server.config();
    config.tls = TlsPolicy::StartTls;
    let mut client = Client::connect(&config).unwrap();
    let err = client.greet(None).unwrap_err();
    assert!(matches!(err, SmtpError::Tls { .. }), "{err:?}");
    assert_dead(&mut client);
    let received = server.finish();
    assert!(!holds_sensitive_command(&received), "{received:?}");
}

#[cfg(feature = "tls")]
#[test]
fn cve_2016_0772_starttls_stripping_refused_starttls_aborts_454_and_500() {
    for (reply, policy) in [
        ("454 4.7.0 TLS not available\r\n", TlsPolicy::StartTls),
        ("500 5.5.1 unknown command\r\n", TlsPolicy::StartTls),
        // Opportunistic too: once offered, a refused STARTTLS never falls back to plaintext.
        ("454 4.7.0 TLS not available\r\n", TlsPolicy::Auto),
    ] {
        let server = Server::start(move |c| {
            c.hello(&["STARTTLS", "AUTH PLAIN"]);
            c.expect("STARTTLS");
            c.send(reply);
            assert!(
                c.until_eof().is_empty(),
                "nothing may follow a refused STARTTLS"
            );
        });
        let mut config = server.config();
        config.tls = policy;
        let mut client = Client::connect(&config).unwrap();
        let err = client.greet(None).unwrap_err();
        assert!(matches!(err, SmtpError::Tls { .. }), "{reply}: {err:?}");
        assert_dead(&mut client);
        assert!(!holds_sensitive_command(&server.finish()));
    }
}

#[cfg(feature = "tls")]
#[test]
fn cve_2016_0772_starttls_stripping_failed_handshake_aborts() {
    let tls = TestTls::new();
    let server_tls = tls.server.clone();
    let server = Server::start(move |c| {
        c.hello(&["STARTTLS"]);
        c.expect("STARTTLS");
        c.send("220 go ahead\r\n");
        assert!(c.tls_fails(&server_tls));
    });
    // The client does not trust the server's CA: the handshake fails.
    let mut config = tls.config(&server, TlsPolicy::StartTls);
    config.cafile = None;
    let mut client = Client::connect(&config).unwrap();
    let err = client.greet(None).unwrap_err();
    assert!(matches!(err, SmtpError::Tls { .. }), "{err:?}");
    assert_dead(&mut client);
    assert!(!holds_sensitive_command(&server.finish()));
}

#[test]
fn cve_2016_0772_starttls_stripping_opportunistic_never_sends_auth_in_clear_to_remote_peer() {
    // No STARTTLS on offer (stripped) and a peer that is not on loopback: AUTH is refused before
    // a byte is written (Go PlainAuth's rule), unless the caller allows it explicitly.
    let server = Server::start(|c| {
        c.hello(&["AUTH PLAIN LOGIN"]);
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let mut config = server.config();
    config.tls = TlsPolicy::Auto;
    let (mut client, _) = Recording::remote(&server).client(&config);
    client.greet(None).unwrap();
    assert!(!client.is_encrypted());
    let err = client
        .auth(&Credentials::new("user", "hunter2"), None)
        .unwrap_err();
    assert!(
        matches!(err, SmtpError::Auth { reply: None, .. }),
        "{err:?}"
    );
    client.quit().unwrap();
    let received = server.finish_text();
    assert!(!received.contains("AUTH"), "{received}");
}

// ---------------------------------------------------------------------------------------------
// bpo-43124 (cpython#87290): CRLF injection through command arguments.

#[test]
fn bpo_43124_crlf_in_command_arguments_refused_before_any_byte() {
    let injections = [
        "a@b.c\r\nRSET",
        "a@b.c\nRSET",
        "a@b.c\rRSET",
        "a@b.c\0",
        "<a@b.c>\r\nMAIL FROM:<evil@x>",
    ];
    for bad in injections {
        assert!(Address::parse(bad).is_err(), "{bad:?} parsed as an address");
    }
    // EHLO name: through the client, the greeting is read and then nothing is written.
    for bad in ["client.example\r\nMAIL FROM:<evil@x>", "client\nx", "c\0"] {
        let server = Server::start(|c| {
            c.send("220 ready\r\n");
            assert!(c.until_eof().is_empty());
        });
        let mut client = server.client();
        let err = client.greet(Some(bad)).unwrap_err();
        assert!(
            matches!(err, SmtpError::InvalidInput(_)),
            "{bad:?}: {err:?}"
        );
        client.close();
        assert!(server.finish().is_empty(), "{bad:?} reached the wire");
    }
    // Every command that takes a free argument refuses it while formatting, leaving the
    // buffer untouched.
    for bad in ["x\r\nQUIT", "x\ny", "x\ry"] {
        for command in [Command::Ehlo(bad.into()), Command::Helo(bad.into())] {
            let mut out = Vec::new();
            assert!(command.write_to(&mut out).is_err(), "{command:?}");
            assert!(out.is_empty());
        }
    }
    // AUTH payloads are base64, so CR/LF in a user or password cannot reach the wire raw; a NUL
    // would shift PLAIN's fields and is refused.
    let creds = Credentials::new("user\r\nMAIL FROM:<x>", "pw\r\nDATA");
    let plain = creds.plain_response().unwrap();
    assert!(!plain.expose().contains(['\r', '\n']));
    assert!(Credentials::new("us\0er", "pw").plain_response().is_err());
}

// ---------------------------------------------------------------------------------------------
// CVE-2015-9096 (Ruby Net::SMTP), golang/go#21159, mikel/mail OSVDB-131677.

#[test]
fn cve_2015_9096_recipient_smuggles_commands() {
    let payload = "victim@x>\r\nDATA\r\nFrom: forged\r\n\r\nspoofed\r\n.\r\nQUIT";
    assert!(Address::parse(payload).is_err());
    // The display-name form of a header value, as a caller might take it from a To: field.
    assert!(Address::parse(&format!("Victim <{payload}>")).is_err());
    assert!(Address::parse("\"Victim\r\nRCPT TO:<evil@x>\" <v@x>").is_err());
    // Through the high-level path: the good recipients' session sends nothing smuggled.
    let server = Server::start(|c| {
        c.hello(&[]);
        c.expect("MAIL FROM:<me@example.com>");
        c.send("250 ok\r\n");
        c.expect("RCPT TO:<victim@x>");
        c.send("250 ok\r\n");
        c.expect("DATA");
        c.send("354 go\r\n");
        assert_eq!(c.data(), b"hi\r\n.\r\n");
        c.send("250 queued\r\n");
        assert!(c.until_eof().is_empty());
    });
    let mut client = server.client();
    // The caller's code: parse each recipient; a smuggling one is an error, not a command.
    let rcpts: Vec<Result<Address, SmtpError>> = ["victim@x", payload]
        .iter()
        .map(|r| Address::parse(r))
        .collect();
    assert!(rcpts[1].is_err());
    let env = Envelope::new(
        Address::parse("me@example.com").unwrap(),
        rcpts.into_iter().filter_map(Result::ok).collect(),
    );
    client
        .send(&env, &mut BytesSource::new(&b"hi"[..]), None)
        .unwrap();
    client.close();
    let received = server.finish_text();
    assert_eq!(received.matches("DATA").count(), 1, "{received}");
    assert!(!received.contains("QUIT"));
}

// ---------------------------------------------------------------------------------------------
// aiosmtplib GHSA-v3q9-hj7j-63hq: every C0 control and DEL.

#[test]
fn ghsa_v3q9_hj7j_63hq_control_characters_in_every_argument() {
    for c in controls() {
        for addr in [
            format!("a{c}b@example.com"),
            format!("ab@exa{c}mple.com"),
            format!("Name{c} <ab@example.com>"),
            format!("<ab@example.com{c}>"),
        ] {
            // A TAB inside a display name is whitespace and may be accepted; the path must not
            // carry it.
            match Address::parse(&addr) {
                Err(_) => {}
                Ok(a) => {
                    assert!(c == '\t', "{addr:?} accepted");
                    assert!(!a.as_path().contains(c), "{addr:?} gave {:?}", a.as_path());
                }
            }
        }
        for command in [
            Command::Ehlo(format!("client{c}.example")),
            Command::Helo(format!("client{c}.example")),
        ] {
            let mut out = Vec::new();
            assert!(command.write_to(&mut out).is_err(), "{command:?} written");
            assert!(out.is_empty());
        }
    }
    // Through the client: a DEL in the EHLO name stops before EHLO.
    let server = Server::start(|c| {
        c.send("220 ready\r\n");
        assert!(c.until_eof().is_empty());
    });
    let mut client = server.client();
    assert!(client.greet(Some("client\u{7f}.example")).is_err());
    client.close();
    assert!(server.finish().is_empty());
}

// ---------------------------------------------------------------------------------------------
// CVE-2024-6923 (cpython#121650), CVE-2026-1299 (cpython#144125), gh-143935, cpython#100612,
// bpo-39073: header injection in the MIME encoder.

const NEWLINE_PAYLOADS: &[&str] = &[
    "x\r\nBcc: y@evil.example",
    "x\nBcc: y@evil.example",
    "x\rBcc: y@evil.example",
    "x\n",
    "x\u{2028}Bcc: y@evil.example",
    "x\u{85}Bcc: y@evil.example",
    "x\u{2029}y",
    "x\0y",
];

/// Either the encoder refuses `part`, or its header block is exactly `want` followed by defaults.
fn refused_or_clean(part: Part, want: &[&str]) {
    let Ok(message) = encode(part) else { return };
    let fields = header_fields(&message);
    let got = names(&fields);
    assert_eq!(&got[..want.len()], want, "{got:?}");
    assert!(!got.contains(&"bcc".to_owned()), "{got:?}");
}

#[test]
fn cve_2024_6923_header_newlines_in_values_refused() {
    for payload in NEWLINE_PAYLOADS {
        for (name, value) in [
            ("Subject", HeaderValue::Text((*payload).into())),
            ("X-Custom", HeaderValue::Text((*payload).into())),
            ("Subject", HeaderValue::Raw(payload.as_bytes().to_vec())),
            ("Message-ID", HeaderValue::Text(format!("<{payload}@x>"))),
            (
                "To",
                HeaderValue::Addresses(vec![format!("{payload} <to@example.org>")]),
            ),
            ("To", HeaderValue::Text(format!("to@example.org{payload}"))),
        ] {
            let part = Part::new().header(name, value).body("hi");
            assert!(encode(part).is_err(), "{name}: {payload:?} accepted");
        }
    }
}

#[test]
fn cve_2026_1299_unquoted_newlines_in_parameters_and_names_refused() {
    for payload in NEWLINE_PAYLOADS {
        // Parameter values of structured MIME headers.
        let part = Part::new()
            .header(
                "Content-Type",
                format!("text/plain; charset=\"utf-8\"; name=\"{payload}\""),
            )
            .body("hi");
        assert!(encode(part).is_err(), "{payload:?} in a parameter");
        // Header names.
        let name = format!("X-{payload}");
        let part = Part::new().header(name.as_str(), "v").body("hi");
        assert!(encode(part).is_err(), "{payload:?} in a header name");
    }
    for name in ["X-A\r\nBcc", "X-A\nB", "X-A\0", "Bad Name", "X:Y", ""] {
        assert!(encode(Part::new().header(name, "v")).is_err(), "{name:?}");
    }
}

#[test]
fn cve_2026_1299_encoded_words_that_decode_to_newlines_stay_one_field() {
    // A caller's literal text that looks like encoded-words decoding to CRLF: it is encoded
    // again, so a reader decodes it back to the literal text, never to a line break.
    for literal in [
        "=?utf-8?q?x=0D=0ABcc:_y@evil.example?=",
        "=?utf-8?b?eA0KQmNjOiB5QGV2aWwuZXhhbXBsZQ==?=",
    ] {
        let message = encode(Part::new().header("Subject", literal).body("hi")).unwrap();
        let fields = header_fields(&message);
        assert!(!names(&fields).contains(&"bcc".to_owned()));
        assert_eq!(decode_2047(field(&fields, "Subject").unwrap()), literal);
    }
}

#[test]
fn gh_143935_folding_never_starts_a_new_field() {
    // Long values with and without spaces, comments and quoted strings: every folded line
    // starts with whitespace, no line exceeds 998 octets, and the values decode back.
    let token = "a".repeat(2000);
    let colons = "Bcc:evil@x.example ".repeat(60);
    let comment = format!("({}) Bcc: y", "c ".repeat(300));
    for value in [token.as_str(), colons.as_str(), comment.as_str()] {
        let message = encode(
            Part::new()
                .header("Subject", value)
                .header("X-Note", value)
                .body("hi"),
        )
        .unwrap();
        let fields = header_fields(&message);
        let got = names(&fields);
        assert_eq!(&got[..2], ["subject", "x-note"], "{got:?}");
        assert!(!got.contains(&"bcc".to_owned()));
        assert_eq!(decode_2047(field(&fields, "Subject").unwrap()), value);
        assert_eq!(decode_2047(field(&fields, "X-Note").unwrap()), value);
    }
    // A 2000-octet token in a structured header cannot be folded: refused, or kept in bounds.
    refused_or_clean(
        Part::new()
            .header("Message-ID", format!("<{token}@x>"))
            .body("hi"),
        &["message-id"],
    );
}

#[test]
fn cpython_100612_filename_newlines_refused_or_encoded() {
    for payload in NEWLINE_PAYLOADS {
        let name = format!("report{payload}.pdf");
        match Part::attachment(Body::Bytes(b"%PDF".to_vec()), Some(&name), None) {
            Err(_) => {}
            Ok(part) => refused_or_clean(part, &["content-type", "content-disposition"]),
        }
    }
}

#[test]
fn bpo_39073_address_parts_with_newlines_refused() {
    for payload in NEWLINE_PAYLOADS {
        for item in [
            format!("{payload} <a@example.org>"),
            format!("\"{payload}\" <a@example.org>"),
            format!("Name <a{payload}@example.org>"),
        ] {
            let part = Part::new()
                .header("From", HeaderValue::Addresses(vec![item.clone()]))
                .body("hi");
            assert!(encode(part).is_err(), "{item:?}");
        }
    }
    // Plain display names with specials are quoted, and parse back as one field.
    let message = encode(
        Part::new()
            .header("From", "\"Doe, John: Bcc\" <j@example.org>")
            .body("hi"),
    )
    .unwrap();
    let fields = header_fields(&message);
    assert_eq!(names(&fields)[0], "from");
    assert!(!names(&fields).contains(&"bcc".to_owned()));
}

// ---------------------------------------------------------------------------------------------
// mail-builder 0.5.0 header injection, and its Bcc header written into the message.

#[test]
fn mail_builder_bcc_header_never_in_generated_message() {
    assert!(
        encode(
            Part::new()
                .header("Subject", "Hello\r\nBcc: evil3@x.com")
                .body("hi")
        )
        .is_err()
    );
    assert!(
        encode(
            Part::new()
                .header("To", "bob@example.com\r\nBcc: evil2@x.com")
                .body("hi")
        )
        .is_err()
    );
    // A Bcc header is written for the sending path, which leaves it out of what is transmitted
    // (smtp::header_envelope); an empty one is dropped.
    let message = encode(Part::new().header("Bcc", "").body("hi")).unwrap();
    assert!(!names(&header_fields(&message)).contains(&"bcc".to_owned()));
    // A text body with bare LFs does not go out raw: it is encoded with CRLF line ends.
    let message = encode(Part::new().body("line one\nline two\n.\nthree")).unwrap();
    for (i, &b) in message.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(message[i - 1], b'\r', "bare LF at {i}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// STARTTLS response injection (aiosmtplib GHSA-vxj7-4xrp-5vr4, nodemailer PR#1835, CVE-2011-0411).

#[cfg(feature = "tls")]
#[test]
fn starttls_response_injection_ghsa_vxj7_4xrp_5vr4_injected_replies_fail() {
    for injected in [
        "220 go\r\n250-evil\r\n250 AUTH PLAIN\r\n",
        "220 go\r\n235 2.7.0 fake auth ok\r\n",
        "220 go\r\n250-X",
    ] {
        let server = Server::start(move |c| {
            c.hello(&["STARTTLS"]);
            c.expect("STARTTLS");
            c.send(injected); // one write: one segment on loopback
            let rest = c.until_eof();
            assert!(!holds_sensitive_command(&rest));
        });
        let mut config = server.config();
        config.tls = TlsPolicy::StartTls;
        let (mut client, writes) = Recording::remote(&server).client(&config);
        let err = client.greet(None).unwrap_err();
        // Detected as injection (Protocol); should a read ever split the segment, the plaintext
        // would reach the TLS layer instead and fail the handshake (Tls). Never a success.
        assert!(
            matches!(err, SmtpError::Protocol { .. } | SmtpError::Tls { .. }),
            "{injected:?}: {err:?}"
        );
        assert_dead(&mut client);
        server.finish();
        let sent: Vec<u8> = writes.lock().unwrap().concat();
        assert!(!holds_sensitive_command(&sent));
    }
}

#[cfg(feature = "tls")]
#[test]
fn starttls_response_injection_ghsa_vxj7_4xrp_5vr4_capabilities_come_from_tls_side() {
    let tls = TestTls::new();
    let server_tls = tls.server.clone();
    let server = Server::start(move |c| {
        c.hello(&["STARTTLS", "AUTH PLAIN", "SIZE 10", "PIPELINING"]);
        c.expect("STARTTLS");
        c.send("220 go\r\n");
        c.accept_tls(&server_tls);
        c.expect("EHLO client.example");
        c.ehlo_reply(&["SIZE 5000", "8BITMIME"]);
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let mut client = Client::connect(&tls.config(&server, TlsPolicy::StartTls)).unwrap();
    let caps = client.greet(None).unwrap().clone();
    assert!(client.is_encrypted());
    assert_eq!(caps.size_limit(), Some(5000));
    assert!(caps.eight_bit_mime && !caps.pipelining && caps.auth.is_empty() && !caps.starttls);
    client.quit().unwrap();
    server.finish();
}

// ---------------------------------------------------------------------------------------------
// Unsolicited data desync (aiosmtplib HEAD 320180e, 5.1.2).

#[test]
fn unsolicited_reply_desync_extra_reply_after_ehlo_is_a_protocol_error() {
    let (server, mut client, err) = greet_fails(|c| {
        c.send("220 ready\r\n");
        c.expect("EHLO client.example");
        c.send("250 hello\r\n250 unsolicited\r\n");
        assert!(c.until_eof().is_empty());
    });
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    assert_dead(&mut client);
    server.finish();
}

#[test]
fn unsolicited_reply_desync_extra_reply_between_commands_is_never_paired() {
    // The server answers NOOP, then (once the client has read that answer) sends a reply nobody
    // asked for. The client must not take it for the reply to its next command.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let (server, mut client) = greeted(move |c| {
        c.hello(&[]);
        c.expect("NOOP");
        c.send("250 2.0.0 noop ok\r\n");
        go_rx.recv().unwrap();
        c.send("250 2.0.0 unsolicited\r\n");
        sent_tx.send(()).unwrap();
        if let Some(line) = c.try_line() {
            assert_eq!(line, "RSET");
            c.send_lossy(b"250 2.0.0 rset ok\r\n");
        }
        c.until_eof();
    });
    assert_eq!(client.noop().unwrap().text(), "noop ok");
    go_tx.send(()).unwrap();
    sent_rx.recv().unwrap();
    // The unsolicited reply is in the client's socket before RSET is written.
    match client.rset() {
        Err(e) => {
            assert!(matches!(e, SmtpError::Protocol { .. }), "{e:?}");
            assert!(!client.is_usable());
        }
        Ok(reply) => assert_eq!(
            reply.text(),
            "rset ok",
            "the unsolicited reply was taken for the reply to RSET"
        ),
    }
    client.close();
    server.finish();
}

#[test]
fn unsolicited_reply_desync_late_reply_after_timeout_closes_the_session() {
    let (late_tx, late_rx) = mpsc::channel::<()>();
    let (server, mut client) = greeted(move |c| {
        c.hello(&[]);
        c.expect("NOOP");
        // No answer until the client has given up.
        late_rx.recv().unwrap();
        c.send_lossy(b"250 2.0.0 late\r\n");
        c.until_eof();
    });
    client.set_timeout(Duration::from_millis(200)).unwrap();
    let err = client.noop().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    late_tx.send(()).unwrap();
    // Closed after the timeout: the late reply can never be paired with a later command.
    assert!(!client.is_usable());
    assert!(matches!(client.noop(), Err(SmtpError::Connect { .. })));
    server.finish();
}

// ---------------------------------------------------------------------------------------------
// SMTP smuggling: CVE-2023-51764 (Postfix), CVE-2023-51765 (Sendmail), CVE-2023-51766 (Exim),
// CERT VU#302671.

/// A body in the spirit of mail-send's SMUGGLER fixture: every end-of-data look-alike, each
/// followed by the commands of a second, spoofed message.
fn smuggler() -> Vec<u8> {
    let second = "MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n\
                  From: admin@bank.example\r\n\r\nspoofed\r\n";
    let mut body = b"Subject: hello\r\n\r\nfirst line\r\n".to_vec();
    for sep in [
        "\n.\n",
        "\n.\r\n",
        "\r\n.\n",
        "\r.\r",
        "\r\n.\r",
        "\r\r\n.\r\r\n",
        "\r.\r\n",
        "\r\n.\r\n",
        "\n..\n",
        ".\r\n",
    ] {
        body.extend_from_slice(sep.as_bytes());
        body.extend_from_slice(second.as_bytes());
    }
    body.extend_from_slice(b"\x00\xff\xfe 8-bit tail.");
    body
}

#[test]
fn smtp_smuggling_cve_2023_51764_end_of_data_lookalikes_every_split() {
    let body = smuggler();
    let want = {
        let mut w = crlf_normalise(&body);
        w.extend_from_slice(b"\r\n");
        w
    };
    // Every chunk size up to 7 moves every chunk boundary across every separator.
    for size in 1..=7usize {
        let expected = want.clone();
        let server = Server::start(move |c| {
            c.hello(&["PIPELINING"]);
            c.expect("MAIL FROM:<me@example.com>");
            c.expect("RCPT TO:<you@example.org>");
            c.expect("DATA");
            c.send("250 ok\r\n250 ok\r\n354 go\r\n");
            let wire = c.data();
            c.send("250 queued\r\n");
            let after = c.until_eof();
            // Strict reading: the only end-of-data line is the last one; nothing follows it.
            let (content, rest) = strict_data(&wire).expect("an end-of-data mark");
            assert!(rest.is_empty() && after.is_empty());
            assert_eq!(content, expected, "chunk size {size}");
            for (i, &b) in wire.iter().enumerate() {
                match b {
                    b'\r' => assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
                    b'\n' => assert_eq!(wire[i - 1], b'\r', "bare LF at {i}"),
                    _ => {}
                }
            }
        });
        let mut client = server.client();
        let mut source = ChunkedSource::new(body.clone(), vec![size]);
        client
            .send(&envelope(&["you@example.org"]), &mut source, None)
            .unwrap();
        client.close();
        let received = String::from_utf8_lossy(&server.finish()).into_owned();
        assert_eq!(received.matches("MAIL FROM:").count(), 1 + 10);
        // The only MAIL command is the first line after EHLO; the others sit inside the data.
        assert!(received.contains("\r\nMAIL FROM:<me@example.com>\r\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// Certificate verification off by default (CPython smtplib's unverified context).

#[cfg(feature = "tls")]
#[test]
fn unverified_certificate_self_signed_and_wrong_host_fail_by_default() {
    let tls = TestTls::new();
    // (cafile, name the client expects): an untrusted CA, then a trusted one but the wrong name.
    for (trust, name) in [(false, "localhost"), (true, "mail.wrong.example")] {
        let server_tls = tls.server.clone();
        let server = Server::start(move |c| {
            c.hello(&["STARTTLS", "AUTH PLAIN"]);
            c.expect("STARTTLS");
            c.send("220 go\r\n");
            assert!(c.tls_fails(&server_tls));
        });
        let mut config = tls.config(&server, TlsPolicy::StartTls);
        config.server = name.into();
        if !trust {
            config.cafile = None;
        }
        let (mut client, _) = Recording::connect(&server).client(&config);
        let err = client.greet(None).unwrap_err();
        assert!(matches!(err, SmtpError::Tls { .. }), "{name}: {err:?}");
        assert_dead(&mut client);
        assert!(!holds_sensitive_command(&server.finish()));
    }
}

#[cfg(feature = "tls")]
#[test]
fn unverified_certificate_sni_is_sent_and_opt_out_is_explicit() {
    use std::io::{BufRead, BufReader, Write};
    let tls = TestTls::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server_tls = tls.server.clone();
    let sni = Arc::new(Mutex::new(None::<String>));
    let seen = sni.clone();
    let handle = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tcp.write_all(b"220 ready\r\n").unwrap();
        let mut reader = BufReader::new(tcp.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        tcp.write_all(b"250-x\r\n250 STARTTLS\r\n").unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "STARTTLS\r\n");
        tcp.write_all(b"220 go\r\n").unwrap();
        let mut conn = rustls::ServerConnection::new(server_tls).unwrap();
        while conn.is_handshaking() {
            if conn.complete_io(&mut tcp).is_err() {
                break;
            }
        }
        *seen.lock().unwrap() = conn.server_name().map(str::to_owned);
    });
    // The caller opts out of verification explicitly (no cafile): the handshake succeeds, and the
    // name is still sent as SNI.
    let config = ClientConfig {
        server: "localhost".into(),
        port,
        tls: TlsPolicy::StartTls,
        timeout: Duration::from_secs(10),
        verify: false,
        ..ClientConfig::default()
    };
    let mut client = Client::connect(&config).unwrap();
    // The server stops after the handshake, so the EHLO after TLS fails; the handshake is what
    // is checked here.
    let _ = client.greet(None);
    handle.join().unwrap();
    assert_eq!(sni.lock().unwrap().as_deref(), Some("localhost"));
    // And the default configuration verifies.
    assert!(ClientConfig::default().verify);
}

// ---------------------------------------------------------------------------------------------
// Credential leakage in logs (lettre's tracing, smtplib's debug output).

#[test]
fn credential_leak_in_transcript_and_errors() {
    use base64_forms as b64;
    let user = "alice@example.com";
    let password = "correct horse battery staple";
    let token = "ya29.SECRET-OAUTH-TOKEN";
    let secrets = [
        password.to_owned(),
        token.to_owned(),
        b64(password.as_bytes()),
        b64(format!("\0{user}\0{password}").as_bytes()),
        b64(user.as_bytes()),
        b64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes()),
    ];
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut errors = Vec::new();
    for mechanism in [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::XOAuth2,
    ] {
        let server = Server::start(move |c| {
            c.hello(&["AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2"]);
            let first = c.line();
            assert!(first.starts_with("AUTH "), "{first}");
            match mechanism {
                Mechanism::Login => {
                    c.send("334 VXNlcm5hbWU6\r\n");
                    c.line();
                    c.send("334 UGFzc3dvcmQ6\r\n");
                    c.line();
                }
                Mechanism::CramMd5 => {
                    c.send("334 PDEyMzQ1QGV4YW1wbGUuY29tPg==\r\n");
                    c.line();
                }
                _ => {}
            }
            // Refused: the error path must not leak either.
            c.send("535 5.7.8 authentication credentials invalid\r\n");
            c.until_eof();
        });
        let mut client = server.client();
        let sink = lines.clone();
        client.set_transcript(Some(Box::new(move |d: Direction, l: &str| {
            sink.lock().unwrap().push(format!("{d} {l}"));
        })));
        client.greet(None).unwrap();
        let secret = if mechanism == Mechanism::XOAuth2 {
            token
        } else {
            password
        };
        let err = client
            .auth(&Credentials::new(user, secret), Some(mechanism))
            .unwrap_err();
        errors.push(format!("{err} {err:?}"));
        client.close();
        let wire = server.finish_text();
        assert!(wire.contains("AUTH"), "{wire}");
    }
    let transcript = lines.lock().unwrap().join("\n");
    assert!(transcript.contains("AUTH"), "{transcript}");
    for s in &secrets {
        assert!(
            !transcript.contains(s.as_str()),
            "transcript leaks {s:?}:\n{transcript}"
        );
        for e in &errors {
            assert!(!e.contains(s.as_str()), "error leaks {s:?}: {e}");
        }
    }
    let debug = format!("{:?}", Credentials::new(user, password));
    assert!(!debug.contains(password), "{debug}");
}

/// Standard base64, for searching logs for encoded secrets.
fn base64_forms(data: &[u8]) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHA[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Unbounded replies (aiosmtplib MAX_RESPONSE_LENGTH, smtplib _MAXLINE).

#[test]
fn unbounded_reply_ten_megabyte_line_is_a_bounded_error() {
    let (server, client, err) = greet_fails(|c| {
        let mut line = b"220 ".to_vec();
        line.resize(10 * 1024 * 1024, b'a');
        line.extend_from_slice(b"\r\n");
        // The client hangs up long before the end; the write then fails, which is fine.
        c.send_lossy(&line);
    });
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn unbounded_reply_hundred_thousand_continuation_lines_is_a_bounded_error() {
    let (server, client, err) = greet_fails(|c| {
        c.send("220 ready\r\n");
        c.line();
        let mut reply = Vec::with_capacity(100_000 * 12);
        for i in 0..100_000 {
            reply.extend_from_slice(format!("250-X{i}\r\n").as_bytes());
        }
        reply.extend_from_slice(b"250 end\r\n");
        c.send_lossy(&reply);
    });
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}
