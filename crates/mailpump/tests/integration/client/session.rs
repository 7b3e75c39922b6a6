//! The client against a scripted server: whole transactions, pipelining, refusals at every
//! stage, disconnects, stalls, malformed replies and failing sources.

use std::time::Duration;

use crate::support::{Conn, Server, addr, envelope, greet_fails, greeted, greeted_recorded};
use mailpump::BoxError;
use mailpump::smtp::client::{Client, MailParams};
use mailpump::smtp::error::{ReplyKind, SmtpError};
use mailpump::source::{BytesSource, Source};

/// The code and kind of a refusal.
fn refusal(err: &SmtpError) -> Option<(u16, ReplyKind)> {
    match err {
        SmtpError::Reply { reply, kind, .. } => Some((reply.code, *kind)),
        _ => None,
    }
}

/// A body with every hazard: bare LF, bare CR, lines starting with a dot, a lone dot line and
/// no final line break.
const HOSTILE_BODY: &[u8] = b"Subject: x\n\n.hidden\r\nline\rbare\n.\n\r\n.\r\nend";
/// What the wire must carry for it: CRLF everywhere, dots stuffed, exactly one CRLF.CRLF.
const HOSTILE_WIRE: &str =
    "Subject: x\r\n\r\n..hidden\r\nline\r\nbare\r\n..\r\n\r\n..\r\nend\r\n.\r\n";

#[test]
fn whole_transaction_without_pipelining() {
    let size = HOSTILE_BODY.len();
    let server = Server::start(move |c| {
        c.hello(&["8BITMIME", "SIZE 100000"]);
        c.expect(&format!(
            "MAIL FROM:<me@example.com> SIZE={size} BODY=8BITMIME"
        ));
        c.send("250 2.1.0 ok\r\n");
        c.expect("RCPT TO:<you@example.org>");
        c.send("250 2.1.5 ok\r\n");
        c.expect("RCPT TO:<other@example.org>");
        c.send("250 2.1.5 ok\r\n");
        c.expect("DATA");
        c.send("354 go ahead\r\n");
        assert_eq!(c.data(), HOSTILE_WIRE.as_bytes());
        c.send("250 2.0.0 Ok: queued as ABC123\r\n");
        c.expect("QUIT");
        c.send("221 2.0.0 bye\r\n");
    });
    let (mut client, writes) = server.recorded_client();
    let caps = client.greet(None).expect("greet");
    assert_eq!(caps.size, Some(Some(100_000)));
    let mut body = BytesSource::new(HOSTILE_BODY);
    let result = client
        .send(
            &envelope(&["you@example.org", "<other@example.org>"]),
            &mut body,
            None,
        )
        .expect("send");
    assert_eq!(
        result.accepted,
        vec!["you@example.org", "other@example.org"]
    );
    assert!(result.refused.is_empty());
    assert_eq!(result.reply.code, 250);
    assert!(result.reply.text().contains("ABC123"));
    client.quit().expect("quit");
    assert!(!client.is_usable());

    let received = server.finish_text();
    assert_eq!(
        received,
        format!(
            "EHLO client.example\r\nMAIL FROM:<me@example.com> SIZE={size} BODY=8BITMIME\r\n\
             RCPT TO:<you@example.org>\r\nRCPT TO:<other@example.org>\r\nDATA\r\n{HOSTILE_WIRE}QUIT\r\n"
        )
    );
    // The body, its tail and the end-of-data mark left in a single write.
    let writes = writes.lock().unwrap();
    assert!(
        writes.iter().any(|w| w == HOSTILE_WIRE.as_bytes()),
        "writes: {writes:?}"
    );
}

#[test]
fn pipelined_transaction_is_one_write_and_reads_every_reply() {
    let (server, mut client, writes) = greeted_recorded(|c| {
        c.hello(&["PIPELINING", "8BITMIME"]);
        c.expect("MAIL FROM:<me@example.com> BODY=8BITMIME");
        c.expect("RCPT TO:<a@example.org>");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("RCPT TO:<c@example.org>");
        c.expect("DATA");
        c.send(
            "250 ok\r\n250 ok\r\n550 5.1.1 <b@example.org>: no such user\r\n250 ok\r\n354 go\r\n",
        );
        assert_eq!(c.data(), b"hello\r\n.\r\n");
        c.send("250 queued\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let mut body = BytesSource::new(&b"hello\n"[..]);
    let result = client
        .send(
            &envelope(&["a@example.org", "b@example.org", "c@example.org"]),
            &mut body,
            None,
        )
        .unwrap();
    assert_eq!(result.accepted, vec!["a@example.org", "c@example.org"]);
    assert_eq!(result.refused.len(), 1);
    assert_eq!(result.refused[0].0, "b@example.org");
    assert_eq!(result.refused[0].1.code, 550);
    client.quit().unwrap();
    server.finish();
    let writes = writes.lock().unwrap();
    let batch = b"MAIL FROM:<me@example.com> BODY=8BITMIME\r\nRCPT TO:<a@example.org>\r\n\
                  RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n";
    assert!(
        writes.iter().any(|w| w == batch),
        "MAIL/RCPT/DATA not in one write: {writes:?}"
    );
}

#[test]
fn all_recipients_refused_with_pipelining_ends_an_opened_data_phase_and_resets() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["PIPELINING"]);
        c.expect("MAIL FROM:<me@example.com>");
        c.expect("RCPT TO:<a@example.org>");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        // A server that opens the data phase although no recipient was accepted.
        c.send("250 ok\r\n550 no\r\n450 4.2.1 try later\r\n354 go\r\n");
        assert_eq!(c.data(), b".\r\n");
        c.send("554 no valid recipients\r\n");
        c.expect("RSET");
        c.send("250 reset\r\n");
        c.expect("NOOP");
        c.send("250 ok\r\n");
    });
    let mut body = BytesSource::new(&b"secret body\r\n"[..]);
    let err = client
        .send(
            &envelope(&["a@example.org", "b@example.org"]),
            &mut body,
            None,
        )
        .unwrap_err();
    match err {
        SmtpError::RecipientsRefused { refused } => {
            assert_eq!(refused.len(), 2);
            assert_eq!(refused[1].1.code, 450);
        }
        other => panic!("expected RecipientsRefused, got {other:?}"),
    }
    // The session is still in step.
    client.noop().unwrap();
    let received = server.finish_text();
    assert!(
        !received.contains("secret"),
        "the body was sent: {received}"
    );
}

#[test]
fn all_recipients_refused_without_pipelining_sends_no_data() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("MAIL FROM:<me@example.com>");
        c.send("250 ok\r\n");
        c.expect("RCPT TO:<a@example.org>");
        c.send("550 5.1.1 unknown\r\n");
        c.expect("RSET");
        c.send("250 ok\r\n");
        assert_eq!(c.until_eof(), b"");
    });
    let err = client
        .send(
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(err, SmtpError::RecipientsRefused { ref refused } if refused.len() == 1),
        "{err:?}"
    );
    client.close();
    let received = server.finish_text();
    assert!(!received.contains("DATA"));
}

#[test]
fn greeting_refused_closes_the_connection() {
    for (code, transient) in [(554, false), (421, true)] {
        let (server, mut client, err) = greet_fails(move |c| {
            c.send(&format!("{code} no service\r\n"));
            assert_eq!(c.until_eof(), b"");
        });
        assert!(
            refusal(&err) == Some((code, ReplyKind::Greeting)),
            "{err:?}"
        );
        assert_eq!(err.is_transient(), transient);
        assert!(!client.is_usable());
        assert!(matches!(client.noop(), Err(SmtpError::Connect { .. })));
        assert_eq!(server.finish(), b"");
    }
}

#[test]
fn ehlo_unknown_falls_back_to_helo() {
    let server = Server::start(|c| {
        c.send("220 old server\r\n");
        c.expect("EHLO client.example");
        c.send("502 command not implemented\r\n");
        c.expect("HELO client.example");
        c.send("250 old.example\r\n");
        c.expect("MAIL FROM:<me@example.com>");
        c.send("250 ok\r\n");
    });
    let mut client = server.client();
    let caps = client.greet(None).unwrap();
    assert!(!caps.pipelining);
    client
        .mail(
            &addr("me@example.com"),
            MailParams {
                body_8bitmime: true,
                ..MailParams::default()
            },
        )
        .unwrap();
    client.close();
    server.finish();
}

#[test]
fn ehlo_refused_without_fallback_is_an_error() {
    let server = Server::start(|c| {
        c.send("220 ready\r\n");
        c.expect("EHLO client.example");
        c.send("500 what\r\n");
        assert_eq!(c.until_eof(), b"");
    });
    let mut config = server.config();
    config.helo_fallback = false;
    let mut client = Client::connect(&config).unwrap();
    let err = client.greet(None).unwrap_err();
    assert!(refusal(&err) == Some((500, ReplyKind::Ehlo)), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn ehlo_temporary_failure_is_an_error_even_with_fallback() {
    let (server, _client, err) = greet_fails(|c| {
        c.send("220 ready\r\n");
        c.expect("EHLO client.example");
        c.send("421 4.3.2 shutting down\r\n");
        assert_eq!(c.until_eof(), b"");
    });
    assert!(refusal(&err) == Some((421, ReplyKind::Ehlo)), "{err:?}");
    assert!(err.is_transient());
    server.finish();
}

#[test]
fn sender_refused_leaves_the_session_usable() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("MAIL FROM:<me@example.com>");
        c.send("550 5.7.1 sender rejected\r\n");
        c.expect("MAIL FROM:<>");
        c.send("250 ok\r\n");
    });
    let err = client
        .send(
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap_err();
    assert!(refusal(&err) == Some((550, ReplyKind::Sender)), "{err:?}");
    assert!(err.is_permanent());
    client.mail(&addr("<>"), MailParams::default()).unwrap();
    client.close();
    let received = server.finish_text();
    assert!(!received.contains("RCPT"));
}

#[test]
fn data_refused_is_a_data_error_and_resets() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("MAIL FROM:<me@example.com>");
        c.send("250 ok\r\n");
        c.expect("RCPT TO:<a@example.org>");
        c.send("250 ok\r\n");
        c.expect("DATA");
        c.send("554 5.5.1 no data for you\r\n");
        c.expect("RSET");
        c.send("250 ok\r\n");
    });
    let err = client
        .send(
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap_err();
    assert!(refusal(&err) == Some((554, ReplyKind::Data)), "{err:?}");
    client.close();
    server.finish();
}

#[test]
fn end_of_data_refused_is_a_data_error() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("MAIL FROM:<me@example.com>");
        c.send("250 ok\r\n");
        c.expect("RCPT TO:<a@example.org>");
        c.send("250 ok\r\n");
        c.expect("DATA");
        c.send("354 go\r\n");
        c.data();
        c.send("552-5.3.4 message too big\r\n552 5.3.4 for this mailbox\r\n");
        c.expect("NOOP");
        c.send("250 ok\r\n");
    });
    let err = client
        .send(
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap_err();
    match &err {
        SmtpError::Reply {
            reply,
            kind: ReplyKind::Message,
            ..
        } => {
            assert_eq!(reply.code, 552);
            assert!(reply.text().contains("for this mailbox"));
        }
        other => panic!("unexpected {other:?}"),
    }
    client.noop().unwrap();
    client.close();
    server.finish();
}

/// The stages at which the scripted server hangs up.
#[derive(Clone, Copy, Debug)]
enum Stage {
    Greeting,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    EndOfData,
}

#[test]
fn disconnect_at_every_stage_is_a_connect_error() {
    for stage in [
        Stage::Greeting,
        Stage::Ehlo,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::EndOfData,
    ] {
        let server = Server::start(move |c: &mut Conn| {
            if matches!(stage, Stage::Greeting) {
                c.send("220-partial greeting\r\n");
                return;
            }
            c.send("220 ready\r\n");
            c.line();
            if matches!(stage, Stage::Ehlo) {
                return;
            }
            c.ehlo_reply(&[]);
            c.line();
            if matches!(stage, Stage::Mail) {
                return;
            }
            c.send("250 ok\r\n");
            c.line();
            if matches!(stage, Stage::Rcpt) {
                return;
            }
            c.send("250 ok\r\n");
            c.line();
            if matches!(stage, Stage::Data) {
                return;
            }
            c.send("354 go\r\n");
            c.data();
        });
        let mut client = server.client();
        let err = client
            .greet(None)
            .map(|_| ())
            .and_then(|()| {
                client
                    .send(
                        &envelope(&["a@example.org"]),
                        &mut BytesSource::new(&b"x"[..]),
                        None,
                    )
                    .map(|_| ())
            })
            .unwrap_err();
        // Lost after the end-of-data mark, the message may have been delivered.
        if matches!(stage, Stage::EndOfData) {
            assert!(err.is_outcome_unknown(), "{stage:?}: {err:?}");
        } else {
            assert!(
                matches!(err, SmtpError::Connect { .. }),
                "{stage:?}: {err:?}"
            );
        }
        assert!(!client.is_usable(), "{stage:?}");
        server.finish();
    }
}

#[test]
fn stall_is_a_timeout_and_the_client_is_closed() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("NOOP");
        // No reply: the client must give up on its own, then hang up.
        assert_eq!(c.until_eof(), b"");
    });
    // Short only for the stalled command, so that a loaded machine cannot fail the greeting.
    client.set_timeout(Duration::from_millis(200)).unwrap();
    let err = client.noop().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(matches!(err, SmtpError::Timeout { .. }));
    assert!(!client.is_usable());
    let again = client.noop().unwrap_err();
    assert!(matches!(again, SmtpError::Connect { .. }), "{again:?}");
    server.finish();
}

#[test]
fn trickled_reply_is_bounded_by_the_timeout_as_a_whole() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("NOOP");
        // One byte at a time, each well within the timeout, for three times the timeout in all;
        // the pauses are the fault under test. Stops when the client hangs up.
        c.send("250 ");
        for _ in 0..150 {
            std::thread::sleep(Duration::from_millis(20));
            c.send_lossy(b"a");
        }
        c.send_lossy(b"\r\n");
        c.until_eof();
    });
    client.set_timeout(Duration::from_secs(1)).unwrap();
    let err = client.noop().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn garbage_reply_is_a_protocol_error() {
    let (server, client, err) = greet_fails(|c| {
        c.send("HTTP/1.1 400 Bad Request\r\n\r\n");
        c.until_eof();
    });
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn endless_reply_line_is_a_protocol_error_with_bounded_memory() {
    let (server, _client, err) = greet_fails(|c| {
        c.send("220-");
        let block = vec![b'a'; 64 * 1024];
        // Far more than any limit; the client hangs up long before the end.
        for _ in 0..256 {
            c.send_lossy(&block);
        }
    });
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    server.finish();
}

#[test]
fn endless_continuation_lines_are_a_protocol_error() {
    let (server, _client, err) = greet_fails(|c| {
        c.send("220 ready\r\n");
        c.line();
        let block = "250-AUTH PLAIN\r\n".repeat(4096);
        for _ in 0..256 {
            c.send_lossy(block.as_bytes());
        }
    });
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    server.finish();
}

#[test]
fn unsolicited_reply_is_a_protocol_error() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("NOOP");
        c.send("250 ok\r\n250 2.0.0 and a spare one\r\n");
        c.until_eof();
    });
    let err = client.noop().unwrap_err();
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    assert!(!client.is_usable());
    server.finish();
}

/// A source that hands out `good` and then fails.
struct FailingSource {
    good: Option<Vec<u8>>,
}

impl Source for FailingSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        match self.good.take() {
            Some(data) => {
                out.extend_from_slice(&data);
                Ok(true)
            }
            None => Err("disk read failed".into()),
        }
    }
}

#[test]
fn source_failing_mid_data_closes_without_the_end_of_data_mark() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["PIPELINING"]);
        for _ in 0..3 {
            c.line();
        }
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        // Whatever arrives before the hang-up must not end the message.
        let rest = c.until_eof();
        assert!(
            !rest.windows(5).any(|w| w == b"\r\n.\r\n"),
            "end-of-data mark sent"
        );
        assert!(!rest.ends_with(b".\r\n"));
    });
    // Large enough to be written in part before the failure.
    let mut good = b"Subject: big\r\n\r\n".to_vec();
    good.extend(std::iter::repeat_n(b"0123456789abcdef\r\n".as_slice(), 40_000).flatten());
    let mut source = FailingSource { good: Some(good) };
    let err = client
        .send(&envelope(&["a@example.org"]), &mut source, None)
        .unwrap_err();
    match &err {
        SmtpError::Source(e) => assert_eq!(e.to_string(), "disk read failed"),
        other => panic!("expected Source, got {other:?}"),
    }
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn large_body_in_blocks_with_progress() {
    // Dots at the start of many lines, some lines split over block boundaries.
    let mut body = Vec::new();
    for i in 0..60_000 {
        body.extend_from_slice(format!(".line {i}\n").as_bytes());
    }
    let mut wire = Vec::new();
    for i in 0..60_000 {
        wire.extend_from_slice(format!("..line {i}\r\n").as_bytes());
    }
    wire.extend_from_slice(b".\r\n");
    let expected = wire.clone();
    let (server, mut client, writes) = greeted_recorded(move |c| {
        c.hello(&[]);
        for reply in ["250 ok\r\n", "250 ok\r\n", "354 go\r\n"] {
            c.line();
            c.send(reply);
        }
        assert_eq!(c.data(), expected);
        c.send("250 ok\r\n");
    });
    let total = body.len() as u64;
    let mut calls = Vec::new();
    let mut progress = |sent: u64, hint: Option<u64>| -> Result<(), BoxError> {
        calls.push((sent, hint));
        Ok(())
    };
    let mut source = BytesSource::with_chunk(body, 10_000);
    client
        .send(
            &envelope(&["a@example.org"]),
            &mut source,
            Some(&mut progress),
        )
        .unwrap();
    client.close();
    server.finish();
    assert!(calls.len() > 1, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(calls.last(), Some(&(total, Some(total))));
    let writes = writes.lock().unwrap();
    let body_writes: Vec<&Vec<u8>> = writes.iter().filter(|w| w.len() > 1000).collect();
    assert!(body_writes.len() > 1, "expected several block writes");
    let last = body_writes.last().unwrap();
    assert!(
        last.ends_with(b"\r\n.\r\n") && last.len() > 5,
        "the mark was not written with the tail"
    );
    let sent: Vec<u8> = body_writes.iter().flat_map(|w| w.iter().copied()).collect();
    assert_eq!(sent, wire);
}

#[test]
fn progress_error_aborts_like_a_source_error() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        for reply in ["250 ok\r\n", "250 ok\r\n", "354 go\r\n"] {
            c.line();
            c.send(reply);
        }
        let rest = c.until_eof();
        assert!(!rest.windows(5).any(|w| w == b"\r\n.\r\n"));
    });
    let mut progress = |_: u64, _: Option<u64>| -> Result<(), BoxError> { Err("stop".into()) };
    let err = client
        .send(
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"short\r\n"[..]),
            Some(&mut progress),
        )
        .unwrap_err();
    assert!(matches!(err, SmtpError::Source(_)), "{err:?}");
    server.finish();
}

#[test]
fn size_limit_is_checked_before_mail() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["SIZE 10"]);
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let err = client
        .send(
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"far more than ten bytes"[..]),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            SmtpError::SizeExceeded {
                size: 23,
                limit: 10
            }
        ),
        "{err:?}"
    );
    assert!(client.is_usable());
    client.quit().unwrap();
    server.finish();
}

#[test]
fn smtputf8_needed_but_not_offered_sends_nothing() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["8BITMIME"]);
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let err = client
        .send(
            &envelope(&["jörg@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap_err();
    assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
    client.quit().unwrap();
    server.finish();
}

#[test]
fn smtputf8_declared_when_needed_and_offered() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["SMTPUTF8"]);
        c.expect("MAIL FROM:<me@example.com> SMTPUTF8");
        c.send("250 ok\r\n");
        c.expect("RCPT TO:<jörg@example.org>");
        c.send("250 ok\r\n");
        c.expect("DATA");
        c.send("354 go\r\n");
        c.data();
        c.send("250 ok\r\n");
    });
    client
        .send(
            &envelope(&["jörg@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap();
    client.close();
    server.finish();
}

#[test]
fn session_commands_one_by_one_and_many_messages() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        for i in 0..3 {
            c.expect("MAIL FROM:<me@example.com>");
            c.send("250 ok\r\n");
            c.expect("RCPT TO:<a@example.org>");
            c.send("250 ok\r\n");
            c.expect("DATA");
            c.send("354 go\r\n");
            assert_eq!(c.data(), format!("message {i}\r\n.\r\n").as_bytes());
            c.send(&format!("250 queued as Q{i}\r\n"));
        }
        c.expect("RSET");
        c.send("250 ok\r\n");
        c.expect("QUIT");
        // A failing QUIT after accepted messages.
        c.send("500 what\r\n");
    });
    for i in 0..3 {
        client
            .mail(&addr("me@example.com"), MailParams::default())
            .unwrap();
        client.rcpt(&addr("a@example.org")).unwrap();
        let reply = client
            .data(&mut BytesSource::new(format!("message {i}")), None)
            .unwrap();
        assert!(reply.text().contains(&format!("Q{i}")));
    }
    client.rset().unwrap();
    assert!(client.quit().is_err());
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn rcpt_refused_in_a_session_is_a_recipients_error() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("RCPT TO:<a@example.org>");
        c.send("550 5.1.1 no\r\n");
    });
    let err = client.rcpt(&addr("a@example.org")).unwrap_err();
    assert!(
        refusal(&err) == Some((550, ReplyKind::Recipient)),
        "{err:?}"
    );
    assert!(client.is_usable());
    client.close();
    server.finish();
}

#[test]
fn empty_recipient_list_is_refused_before_any_byte() {
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        assert_eq!(c.until_eof(), b"");
    });
    let err = client
        .send(&envelope(&[]), &mut BytesSource::new(&b"x"[..]), None)
        .unwrap_err();
    assert!(matches!(err, SmtpError::InvalidInput(_)), "{err:?}");
    client.close();
    assert_eq!(server.finish(), b"EHLO client.example\r\n");
}

#[test]
fn pipelined_sender_refusal_reads_every_reply_and_resets() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["PIPELINING"]);
        for _ in 0..3 {
            c.line();
        }
        c.send("550 5.7.1 sender refused\r\n554 5.5.1 no valid sender\r\n503 5.5.1 no valid recipients\r\n");
        c.expect("RSET");
        c.send("250 ok\r\n");
        c.expect("NOOP");
        c.send("250 ok\r\n");
    });
    let err = client
        .send(
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap_err();
    assert!(refusal(&err) == Some((550, ReplyKind::Sender)), "{err:?}");
    // Every pipelined reply was consumed: the next command gets its own reply.
    client.noop().unwrap();
    client.close();
    server.finish();
}

#[test]
fn deliver_ignores_a_failed_quit_after_the_message_was_accepted() {
    let server = Server::start(|c| {
        c.send("220 ready\r\n");
        c.expect("EHLO sender.example");
        c.ehlo_reply(&["PIPELINING"]);
        for _ in 0..3 {
            c.line();
        }
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        c.data();
        c.send("250 2.0.0 queued as XYZ\r\n");
        c.expect("QUIT");
        // The server vanishes instead of saying goodbye.
    });
    let client = server.client();
    let result = client
        .deliver(
            Some("sender.example"),
            None,
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"hi"[..]),
            None,
        )
        .unwrap();
    assert!(result.reply.text().contains("XYZ"));
    server.finish();
}

#[test]
fn deliver_reports_a_refusal_and_still_says_quit() {
    let server = Server::start(|c| {
        c.hello(&[]);
        c.line();
        c.send("550 5.7.1 no\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
        assert_eq!(c.until_eof(), b"");
    });
    let client = server.client();
    let err = client
        .deliver(
            None,
            None,
            &envelope(&["a@example.org"]),
            &mut BytesSource::new(&b"hi"[..]),
            None,
        )
        .unwrap_err();
    assert!(refusal(&err) == Some((550, ReplyKind::Sender)), "{err:?}");
    server.finish();
}

#[test]
fn client_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Client>();
    // And it can really move to another thread mid-session.
    let (server, mut client) = greeted(|c| {
        c.hello(&[]);
        c.expect("NOOP");
        c.send("250 ok\r\n");
    });
    let client = std::thread::spawn(move || {
        client.noop().unwrap();
        client
    })
    .join()
    .unwrap();
    assert!(client.is_usable());
    server.finish();
}

#[test]
fn service_closing_mid_pipeline_is_a_transient_refusal_and_closes() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["PIPELINING"]);
        for _ in 0..4 {
            c.line();
        }
        c.send("250 ok\r\n421 4.3.2 shutting down\r\n");
    });
    let err = client
        .send(
            &envelope(&["a@example.org", "b@example.org"]),
            &mut BytesSource::new(&b"x"[..]),
            None,
        )
        .unwrap_err();
    assert!(
        refusal(&err) == Some((421, ReplyKind::Recipient)),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = mailpump::smtp::client::ClientConfig {
        server: "127.0.0.1".into(),
        port,
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let err = Client::connect(&config).unwrap_err();
    assert!(
        matches!(err, SmtpError::Connect { port: p, .. } if p == port),
        "{err:?}"
    );
}
