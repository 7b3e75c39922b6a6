//! The engine with CHUNKING and PIPELINING (RFC 3030): the same tables as for DATA, fed replies,
//! no sockets. A body is written as `chunks` chunks of one octet and `BDAT 1 LAST`.

use super::*;
use crate::smtp::error::ConnectKind;

#[derive(Debug, Clone, Copy)]
enum Answer {
    Code(u16),
    Lost,
}
use Answer::{Code, Lost};

const MAIL: &str = "MAIL FROM:<a@example.com>\r\n";
const RCPT: &str = "RCPT TO:<b@example.org>\r\n";

fn caps(chunking: bool) -> Capabilities {
    let mut lines = vec!["mx.example".to_owned(), "PIPELINING".to_owned()];
    if chunking {
        lines.push("CHUNKING".into());
    }
    Capabilities::from_ehlo(&Reply::new(250, lines))
}

fn envelope() -> Envelope {
    Envelope::new(
        Address::parse("a@example.com").unwrap(),
        vec![Address::parse("b@example.org").unwrap()],
    )
}

fn lost() -> SmtpError {
    SmtpError::Connect {
        server: "mx".into(),
        port: 25,
        kind: ConnectKind::Lost,
        source: std::io::ErrorKind::ConnectionReset.into(),
    }
}

fn describe(outcome: &Result<SendResult, SmtpError>) -> String {
    match outcome {
        Ok(result) => format!("ok {}+{}", result.accepted.len(), result.refused.len()),
        Err(e) => e.kind().to_owned(),
    }
}

/// Drives `engine` as the blocking client does with CHUNKING: the commands waiting go out with
/// the first chunk, the last chunk with whatever the engine queued after it. Returns the writes
/// and the outcomes in order; panics when the script is short or has answers left over.
fn drive(engine: &mut Engine, chunks: usize, script: &[Answer]) -> (Vec<String>, Vec<String>) {
    let (mut writes, mut outcomes) = (Vec::new(), Vec::new());
    let mut answers = script.iter();
    loop {
        match engine.poll() {
            Action::Write => {
                writes.push(String::from_utf8(engine.output().to_vec()).unwrap());
                engine.written();
            }
            Action::SendBody(id) => {
                let mut write = String::from_utf8(engine.output().to_vec()).unwrap();
                engine.written();
                for _ in 0..chunks {
                    write.push_str("BDAT 1\r\nx");
                    engine.chunk_sent(id);
                    writes.push(std::mem::take(&mut write));
                }
                if engine.uses_chunking() {
                    write.push_str("BDAT 1 LAST\r\n");
                    write.push_str(&id.0.to_string());
                } else {
                    write.push_str(&["BODY ", &id.0.to_string(), "\r\n.\r\n"].concat());
                }
                engine.body_sent(id);
                write.push_str(std::str::from_utf8(engine.output()).unwrap());
                engine.written();
                writes.push(write);
            }
            Action::Read => {
                let failure = match *answers.next().expect("the engine waits for a reply") {
                    Code(code) => engine
                        .receive(Reply::new(code, vec![format!("answer {code}")]))
                        .err(),
                    Lost => Some(lost()),
                };
                if let Some(error) = failure {
                    for (_, outcome) in engine.fail_all(error, lost) {
                        outcomes.push(describe(&outcome));
                    }
                }
            }
            Action::Done(_, outcome) => outcomes.push(describe(&outcome)),
            Action::Idle => break,
        }
    }
    assert!(answers.next().is_none(), "answers left over: {script:?}");
    (writes, outcomes)
}

#[test]
fn one_message_in_one_write() {
    let mut engine = Engine::new(&caps(true));
    engine.push(&envelope(), None).unwrap();
    let (writes, outcomes) = drive(&mut engine, 0, &[Code(250), Code(250), Code(250)]);
    assert_eq!(writes, [format!("{MAIL}{RCPT}BDAT 1 LAST\r\n0")]);
    assert_eq!(outcomes, ["ok 1+0"]);
}

/// One transaction of two chunks (`BDAT 1`, `BDAT 1 LAST`): every stage × every answer.
#[test]
fn chunked_stages() {
    // (answers to MAIL, RCPT, BDAT, BDAT LAST; outcome)
    let cases: &[(&[Answer], &str)] = &[
        (&[Code(250), Code(250), Code(250), Code(250)], "ok 1+0"),
        // A refused MAIL makes the server refuse the chunks (RFC 3030 §4.2).
        (
            &[Code(550), Code(503), Code(503), Code(503)],
            "sender-refused",
        ),
        (
            &[Code(451), Code(503), Code(503), Code(503)],
            "sender-refused",
        ),
        (
            &[Code(250), Code(550), Code(554), Code(554)],
            "recipients-refused",
        ),
        (
            &[Code(250), Code(250), Code(552), Code(552)],
            "message-refused",
        ),
        (
            &[Code(250), Code(250), Code(250), Code(554)],
            "message-refused",
        ),
        (
            &[Code(250), Code(250), Code(250), Code(451)],
            "message-refused",
        ),
        // After the mark, no verdict: the outcome is unknown...
        (&[Code(250), Code(250), Code(250), Lost], "outcome-unknown"),
        (&[Code(250), Code(250), Lost], "outcome-unknown"),
        (
            &[Code(250), Code(250), Code(250), Code(354)],
            "outcome-unknown",
        ),
        // ...unless the replies already said no.
        (&[Code(550), Lost], "sender-refused"),
        (&[Code(250), Code(550), Lost], "recipients-refused"),
        (&[Code(250), Code(250), Code(552), Lost], "message-refused"),
        // A chunk is never answered 3xx: out of step, after the mark.
        (&[Code(250), Code(250), Code(354)], "outcome-unknown"),
        // A 421 ends the transaction with it.
        (&[Code(421)], "sender-refused"),
        (&[Code(250), Code(250), Code(421)], "message-refused"),
        // Accepted after a refusal: the dialogue is out of step and the outcome unknown.
        (
            &[Code(550), Code(503), Code(503), Code(250)],
            "outcome-unknown",
        ),
        (
            &[Code(250), Code(250), Code(552), Code(250)],
            "outcome-unknown",
        ),
    ];
    for (answers, outcome) in cases {
        let mut engine = Engine::new(&caps(true));
        engine.push(&envelope(), None).unwrap();
        let (writes, outcomes) = drive(&mut engine, 1, answers);
        assert_eq!(
            writes,
            [
                format!("{MAIL}{RCPT}BDAT 1\r\nx"),
                "BDAT 1 LAST\r\n0".into()
            ],
            "{answers:?}"
        );
        assert_eq!(outcomes, [*outcome], "{answers:?}");
    }
}

/// Three messages written before any reply is read, each last chunk carrying the next MAIL and
/// RCPT; a refused MAIL in the middle of the window ends that message alone.
#[test]
fn a_window_of_messages() {
    let ok = [Code(250), Code(250), Code(250)];
    let refused = [Code(550), Code(503), Code(503)];
    let cases: &[(&[Answer], [&str; 3])] = &[
        (&[ok, ok, ok].concat(), ["ok 1+0", "ok 1+0", "ok 1+0"]),
        (
            &[ok, refused, ok].concat(),
            ["ok 1+0", "sender-refused", "ok 1+0"],
        ),
        // The connection lost mid-window: each message whose mark went out and whose verdict
        // did not come is unknown, none is lost.
        (
            &[&ok[..], &[Code(250), Lost]].concat(),
            ["ok 1+0", "outcome-unknown", "outcome-unknown"],
        ),
        (
            &[&ok[..], &refused[..], &[Lost]].concat(),
            ["ok 1+0", "sender-refused", "outcome-unknown"],
        ),
        // A 421 in the middle: the messages behind it may have been taken before it.
        (
            &[&ok[..], &[Code(421)]].concat(),
            ["ok 1+0", "sender-refused", "outcome-unknown"],
        ),
    ];
    for (answers, expected) in cases {
        let mut engine = Engine::new(&caps(true));
        for _ in 0..3 {
            engine.push(&envelope(), None).unwrap();
        }
        let (writes, outcomes) = drive(&mut engine, 0, answers);
        assert_eq!(
            writes,
            [
                format!("{MAIL}{RCPT}BDAT 1 LAST\r\n0{MAIL}{RCPT}"),
                format!("BDAT 1 LAST\r\n1{MAIL}{RCPT}"),
                "BDAT 1 LAST\r\n2".into(),
            ],
            "{answers:?}"
        );
        assert_eq!(outcomes, expected, "{answers:?}");
    }
}

#[test]
fn data_when_chunking_is_not_to_be_used() {
    let data = [Code(250), Code(250), Code(354), Code(250)];
    for engine in [
        Engine::new(&caps(true)).allow_chunking(false),
        Engine::new(&caps(false)),
        // Without PIPELINING each chunk would cost a round trip.
        Engine::new(&Capabilities::from_ehlo(&Reply::new(
            250,
            vec!["mx".into(), "CHUNKING".into()],
        ))),
    ] {
        let mut engine = engine;
        assert!(!engine.uses_chunking());
        engine.push(&envelope(), None).unwrap();
        let script: &[Answer] = if engine.offered.pipelining {
            &data
        } else {
            &[Code(250), Code(250), Code(354), Code(250)]
        };
        let (writes, outcomes) = drive(&mut engine, 0, script);
        assert!(writes.iter().any(|w| w.contains("DATA\r\n")), "{writes:?}");
        assert!(writes.iter().all(|w| !w.contains("BDAT")), "{writes:?}");
        assert_eq!(outcomes, ["ok 1+0"]);
    }
}

#[test]
fn an_early_refusal_is_known_before_the_last_chunk() {
    let mut engine = Engine::new(&caps(true));
    let id = engine.push(&envelope(), None).unwrap();
    assert!(matches!(engine.poll(), Action::SendBody(body) if body == id));
    engine.written();
    engine.chunk_sent(id);
    assert!(engine.refused_early(id).is_none());
    engine.receive(Reply::new(250, vec!["ok".into()])).unwrap();
    assert!(engine.refused_early(id).is_none());
    engine
        .receive(Reply::new(550, vec!["no such user".into()]))
        .unwrap();
    let refusal = engine.refused_early(id).expect("every recipient refused");
    assert_eq!(refusal.kind(), "recipients-refused");
}
