//! The engine fed byte strings and replies, no sockets: every stage × every kind of answer, one
//! transaction and several in flight, with and without PIPELINING.

use super::*;
use crate::smtp::error::ConnectKind;
use crate::smtp::reply::ReplyError;

/// One answer of the scripted server.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Code(u16),
    /// A reply the parser refused (the driver fails every transaction with its error).
    Malformed,
    /// The connection was lost while the reply was awaited.
    Lost,
}
use Answer::{Code, Lost, Malformed};

/// What a run wrote (one entry per write) and how each transaction ended (`"ok"` or the error's
/// kind), in order.
#[derive(Debug, Default)]
struct Run {
    writes: Vec<String>,
    outcomes: Vec<(u64, String)>,
}

fn reply(code: u16) -> Reply {
    Reply::new(code, vec![format!("answer {code}")])
}

fn lost_connection() -> SmtpError {
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

fn caps(pipelining: bool) -> Capabilities {
    let mut lines = vec!["mx.example".to_owned(), "SIZE 1000".to_owned()];
    if pipelining {
        lines.push("PIPELINING".into());
    }
    Capabilities::from_ehlo(&Reply::new(250, lines))
}

fn envelope(rcpt: &[&str]) -> Envelope {
    Envelope::new(
        Address::parse("a@example.com").unwrap(),
        rcpt.iter().map(|r| Address::parse(r).unwrap()).collect(),
    )
}

/// Drives `engine` as the blocking client does: writes are recorded, a body is `BODY n` and the
/// end-of-data mark written together with whatever the engine queued after it, and each reply
/// comes from `script`. Panics if the engine waits for a reply the script lacks, or if the
/// script has answers left over.
fn drive(engine: &mut Engine, script: &[Answer]) -> Run {
    let mut run = Run::default();
    let mut answers = script.iter();
    loop {
        match engine.poll() {
            Action::Write => {
                run.writes
                    .push(String::from_utf8(engine.output().to_vec()).unwrap());
                engine.written();
            }
            Action::SendBody(id) => {
                engine.body_sent(id);
                let mut write = format!("BODY {}\r\n.\r\n", id.0);
                write.push_str(std::str::from_utf8(engine.output()).unwrap());
                engine.written();
                run.writes.push(write);
            }
            Action::Read => {
                let answer = answers.next().expect("the engine waits for a reply");
                let failure = match *answer {
                    Code(code) => engine.receive(reply(code)).err(),
                    Malformed => Some(SmtpError::malformed_reply(ReplyError::Code)),
                    Lost => Some(lost_connection()),
                };
                if let Some(error) = failure {
                    let outcomes = engine.fail_all(error, lost_connection);
                    // A failure on a reply that belongs to no transaction (RSET's) is the
                    // connection's alone.
                    if outcomes.is_empty() {
                        run.outcomes.push((u64::MAX, "connection failed".into()));
                    }
                    for (id, outcome) in outcomes {
                        run.outcomes.push((id.0, describe(&outcome)));
                    }
                }
            }
            Action::Done(id, outcome) => run.outcomes.push((id.0, describe(&outcome))),
            Action::Idle => break,
        }
    }
    assert!(answers.next().is_none(), "answers left over: {script:?}");
    run
}

/// One transaction per row of `cases`: (answers, writes, outcome).
fn check_one_transaction(pipelining: bool, cases: &[(&[Answer], &[&str], &str)]) {
    for (answers, writes, outcome) in cases {
        let mut engine = Engine::new(&caps(pipelining));
        engine.push(&envelope(&["b@example.org"]), None).unwrap();
        let run = drive(&mut engine, answers);
        assert_eq!(run.writes, *writes, "{answers:?}");
        assert_eq!(run.outcomes, [(0, (*outcome).to_owned())], "{answers:?}");
    }
}

const MAIL: &str = "MAIL FROM:<a@example.com>\r\n";
const RCPT: &str = "RCPT TO:<b@example.org>\r\n";
const RCPT2: &str = "RCPT TO:<c@example.org>\r\n";
const DATA: &str = "DATA\r\n";
const RSET: &str = "RSET\r\n";

/// One transaction to b@example.org, pipelined, at every stage × every answer.
#[test]
#[allow(clippy::too_many_lines)] // A table with one row per case.
fn pipelined_stages() {
    let batch = format!("{MAIL}{RCPT}{DATA}");
    let body = "BODY 0\r\n.\r\n";
    // (answers, writes, outcome)
    let cases: &[(&[Answer], &[&str], &str)] = &[
        // MAIL
        (
            &[Code(250), Code(250), Code(354), Code(250)],
            &[&batch, body],
            "ok 1+0",
        ),
        (&[Code(354)], &[&batch], "unexpected-reply"),
        (
            &[Code(451), Code(503), Code(503), Code(250)],
            &[&batch, RSET],
            "sender-refused",
        ),
        (
            &[Code(550), Code(503), Code(503), Code(250)],
            &[&batch, RSET],
            "sender-refused",
        ),
        (&[Malformed], &[&batch], "malformed-reply"),
        (&[Lost], &[&batch], "connection-lost"),
        // RCPT
        (&[Code(250), Code(354)], &[&batch], "unexpected-reply"),
        (
            &[Code(250), Code(450), Code(554), Code(250)],
            &[&batch, RSET],
            "recipients-refused",
        ),
        (
            &[Code(250), Code(550), Code(554), Code(250)],
            &[&batch, RSET],
            "recipients-refused",
        ),
        // A server that opens the data phase with no recipient gets an empty message.
        (
            &[Code(250), Code(550), Code(354), Code(554), Code(250)],
            &[&batch, ".\r\nRSET\r\n"],
            "recipients-refused",
        ),
        (&[Code(250), Malformed], &[&batch], "malformed-reply"),
        (&[Code(250), Lost], &[&batch], "connection-lost"),
        // DATA
        (
            &[Code(250), Code(250), Code(250)],
            &[&batch],
            "unexpected-reply",
        ),
        (
            &[Code(250), Code(250), Code(451), Code(250)],
            &[&batch, RSET],
            "data-refused",
        ),
        (
            &[Code(250), Code(250), Code(554), Code(250)],
            &[&batch, RSET],
            "data-refused",
        ),
        (
            &[Code(250), Code(250), Malformed],
            &[&batch],
            "malformed-reply",
        ),
        (&[Code(250), Code(250), Lost], &[&batch], "connection-lost"),
        // The verdict on the end-of-data mark.
        (
            &[Code(250), Code(250), Code(354), Code(354)],
            &[&batch, body],
            "outcome-unknown",
        ),
        (
            &[Code(250), Code(250), Code(354), Code(451)],
            &[&batch, body],
            "message-refused",
        ),
        (
            &[Code(250), Code(250), Code(354), Code(554)],
            &[&batch, body],
            "message-refused",
        ),
        (
            &[Code(250), Code(250), Code(354), Malformed],
            &[&batch, body],
            "outcome-unknown",
        ),
        (
            &[Code(250), Code(250), Code(354), Lost],
            &[&batch, body],
            "outcome-unknown",
        ),
        // 421 at each stage: the server is closing; the transaction ends with its notice.
        (&[Code(421)], &[&batch], "sender-refused"),
        (&[Code(250), Code(421)], &[&batch], "recipient-refused"),
        (
            &[Code(250), Code(250), Code(421)],
            &[&batch],
            "data-refused",
        ),
        (
            &[Code(250), Code(250), Code(354), Code(421)],
            &[&batch, body],
            "message-refused",
        ),
    ];
    check_one_transaction(true, cases);
}

/// The same transaction one command at a time (no PIPELINING).
#[test]
fn stepwise_stages() {
    let body = "BODY 0\r\n.\r\n";
    let cases: &[(&[Answer], &[&str], &str)] = &[
        (
            &[Code(250), Code(250), Code(354), Code(250)],
            &[MAIL, RCPT, DATA, body],
            "ok 1+0",
        ),
        // MAIL: a refusal opens no transaction, so nothing is reset.
        (&[Code(354)], &[MAIL], "unexpected-reply"),
        (&[Code(451)], &[MAIL], "sender-refused"),
        (&[Code(550)], &[MAIL], "sender-refused"),
        (&[Malformed], &[MAIL], "malformed-reply"),
        (&[Lost], &[MAIL], "connection-lost"),
        // RCPT
        (&[Code(250), Code(354)], &[MAIL, RCPT], "unexpected-reply"),
        (
            &[Code(250), Code(450), Code(250)],
            &[MAIL, RCPT, RSET],
            "recipients-refused",
        ),
        (
            &[Code(250), Code(550), Code(250)],
            &[MAIL, RCPT, RSET],
            "recipients-refused",
        ),
        (&[Code(250), Malformed], &[MAIL, RCPT], "malformed-reply"),
        (&[Code(250), Lost], &[MAIL, RCPT], "connection-lost"),
        // DATA
        (
            &[Code(250), Code(250), Code(250)],
            &[MAIL, RCPT, DATA],
            "unexpected-reply",
        ),
        (
            &[Code(250), Code(250), Code(451), Code(250)],
            &[MAIL, RCPT, DATA, RSET],
            "data-refused",
        ),
        (
            &[Code(250), Code(250), Code(554), Code(250)],
            &[MAIL, RCPT, DATA, RSET],
            "data-refused",
        ),
        (
            &[Code(250), Code(250), Malformed],
            &[MAIL, RCPT, DATA],
            "malformed-reply",
        ),
        (
            &[Code(250), Code(250), Lost],
            &[MAIL, RCPT, DATA],
            "connection-lost",
        ),
        // The verdict.
        (
            &[Code(250), Code(250), Code(354), Code(354)],
            &[MAIL, RCPT, DATA, body],
            "outcome-unknown",
        ),
        (
            &[Code(250), Code(250), Code(354), Code(452)],
            &[MAIL, RCPT, DATA, body],
            "message-refused",
        ),
        (
            &[Code(250), Code(250), Code(354), Code(552)],
            &[MAIL, RCPT, DATA, body],
            "message-refused",
        ),
        (
            &[Code(250), Code(250), Code(354), Malformed],
            &[MAIL, RCPT, DATA, body],
            "outcome-unknown",
        ),
        (
            &[Code(250), Code(250), Code(354), Lost],
            &[MAIL, RCPT, DATA, body],
            "outcome-unknown",
        ),
    ];
    check_one_transaction(false, cases);
}

/// The RSET after a refusal, at every answer: negative replies are tolerated, a 3xx or a broken
/// connection is the connection's failure, and the transaction's outcome stands.
#[test]
fn the_reset_after_a_refusal() {
    let batch = format!("{MAIL}{RCPT}{DATA}");
    for (rset, failed) in [
        (Code(250), false),
        (Code(500), false),
        (Code(421), false),
        (Code(354), true),
        (Malformed, true),
        (Lost, true),
    ] {
        let mut engine = Engine::new(&caps(true));
        engine.push(&envelope(&["b@example.org"]), None).unwrap();
        let run = drive(&mut engine, &[Code(250), Code(550), Code(554), rset]);
        assert_eq!(run.writes, [batch.as_str(), RSET], "{rset:?}");
        let mut expected = vec![(0, "recipients-refused".to_owned())];
        if failed {
            expected.push((u64::MAX, "connection failed".into()));
        }
        assert_eq!(run.outcomes, expected, "{rset:?}");
    }
}

/// Some recipients refused, others accepted: the message goes to the accepted ones.
#[test]
fn partly_refused_recipients() {
    for pipelining in [true, false] {
        let mut engine = Engine::new(&caps(pipelining));
        engine
            .push(&envelope(&["b@example.org", "c@example.org"]), None)
            .unwrap();
        let run = drive(
            &mut engine,
            &[Code(250), Code(550), Code(250), Code(354), Code(250)],
        );
        assert_eq!(run.outcomes, [(0, "ok 1+1".to_owned())]);
        let sent = run.writes.concat();
        assert!(
            sent.starts_with(&format!("{MAIL}{RCPT}{RCPT2}{DATA}")),
            "{sent}"
        );
    }
}

/// With PIPELINING the end-of-data mark of one message and the next message's MAIL, RCPT and
/// DATA go out in one write (RFC 2920 §3.1), and each reply is matched to its transaction.
#[test]
fn two_transactions_in_flight() {
    let batch = format!("{MAIL}{RCPT}{DATA}");
    let mut engine = Engine::new(&caps(true));
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    let run = drive(
        &mut engine,
        &[
            Code(250),
            Code(250),
            Code(354),
            // The verdict on the first message, then the second's replies.
            Code(250),
            Code(250),
            Code(250),
            Code(354),
            Code(250),
        ],
    );
    assert_eq!(
        run.writes,
        [
            batch.clone(),
            format!("BODY 0\r\n.\r\n{batch}"),
            "BODY 1\r\n.\r\n".to_owned()
        ]
    );
    assert_eq!(run.outcomes, [(0, "ok 1+0".into()), (1, "ok 1+0".into())]);
}

/// Failures with two transactions in flight: the one whose mark was written and the one whose
/// commands follow it end differently.
#[test]
fn failures_with_two_in_flight() {
    let in_flight = [Code(250), Code(250), Code(354)];
    let cases: &[(&[Answer], [&str; 2])] = &[
        // The connection drops while the first verdict is awaited: it may have been delivered;
        // the second never got its data mark, so it can be retried.
        (&[Lost], ["outcome-unknown", "connection-lost"]),
        (&[Malformed], ["outcome-unknown", "connection-lost"]),
        // The first is refused; the second goes on.
        (
            &[Code(554), Code(250), Code(250), Code(354), Code(250)],
            ["message-refused", "ok 1+0"],
        ),
        // The first is accepted, the second's sender refused, then RSET.
        (
            &[Code(250), Code(550), Code(503), Code(503), Code(250)],
            ["ok 1+0", "sender-refused"],
        ),
        // A 421 as the first verdict closes the session for both.
        (&[Code(421)], ["message-refused", "command-refused"]),
        // A 421 after the first was accepted ends the second only.
        (&[Code(250), Code(421)], ["ok 1+0", "sender-refused"]),
        // The second's data is lost after its mark.
        (
            &[Code(250), Code(250), Code(250), Code(354), Lost],
            ["ok 1+0", "outcome-unknown"],
        ),
    ];
    for (rest, expected) in cases {
        let mut engine = Engine::new(&caps(true));
        engine.push(&envelope(&["b@example.org"]), None).unwrap();
        engine.push(&envelope(&["b@example.org"]), None).unwrap();
        let script: Vec<Answer> = in_flight.iter().chain(rest.iter()).copied().collect();
        let run = drive(&mut engine, &script);
        let got: Vec<&str> = run.outcomes.iter().map(|(_, o)| o.as_str()).collect();
        assert_eq!(got, expected, "{rest:?}");
    }
}

/// A refused transaction's RSET goes out before the next transaction's commands, and without
/// PIPELINING the next transaction waits for the previous one's verdict.
#[test]
fn transactions_follow_each_other() {
    let mut engine = Engine::new(&caps(true));
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    let run = drive(
        &mut engine,
        &[
            Code(550),
            Code(503),
            Code(503),
            Code(250), // RSET
            Code(250),
            Code(250),
            Code(354),
            Code(250),
        ],
    );
    let batch = format!("{MAIL}{RCPT}{DATA}");
    assert_eq!(
        run.writes,
        [
            batch.clone(),
            RSET.to_owned(),
            batch,
            "BODY 1\r\n.\r\n".to_owned()
        ]
    );
    assert_eq!(
        run.outcomes,
        [(0, "sender-refused".into()), (1, "ok 1+0".into())]
    );

    let mut engine = Engine::new(&caps(false));
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    let ok = [Code(250), Code(250), Code(354), Code(250)];
    let script: Vec<Answer> = ok.iter().chain(ok.iter()).copied().collect();
    let run = drive(&mut engine, &script);
    assert_eq!(
        run.writes,
        [
            MAIL,
            RCPT,
            DATA,
            "BODY 0\r\n.\r\n",
            MAIL,
            RCPT,
            DATA,
            "BODY 1\r\n.\r\n"
        ]
    );
    assert_eq!(run.outcomes, [(0, "ok 1+0".into()), (1, "ok 1+0".into())]);
}

/// What can be refused before a byte is written is refused by `push`.
#[test]
fn push_checks_before_writing() {
    let mut engine = Engine::new(&caps(true));
    let nobody = engine.push(&envelope(&[]), None).unwrap_err();
    assert_eq!(nobody.kind(), "invalid-input");
    let too_big = engine
        .push(&envelope(&["b@example.org"]), Some(5000))
        .unwrap_err();
    assert!(matches!(
        too_big,
        SmtpError::SizeExceeded {
            size: 5000,
            limit: 1000
        }
    ));
    let utf8 = engine
        .push(&envelope(&["josé@example.org"]), None)
        .unwrap_err();
    assert!(utf8.to_string().contains("SMTPUTF8"), "{utf8}");
    assert!(engine.output().is_empty());
    assert!(matches!(engine.poll(), Action::Idle));
}

/// A reply when none is due is unasked data.
#[test]
fn a_reply_nobody_asked_for() {
    let mut engine = Engine::new(&caps(true));
    let error = engine.receive(reply(250)).unwrap_err();
    assert_eq!(error.kind(), "unasked-data");
}

/// A transaction pushed while the previous verdict is on its way starts at once with
/// PIPELINING; the replies already owed are what the driver reads next, not unasked data.
#[test]
fn a_late_transaction_starts_while_a_verdict_is_due() {
    let mut engine = Engine::new(&caps(true));
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    assert!(matches!(engine.poll(), Action::Write));
    assert!(
        !engine.replies_owed(),
        "nothing written yet: waiting data would be unasked"
    );
    engine.written();
    for code in [250, 250, 354] {
        engine.receive(reply(code)).unwrap();
    }
    let Action::SendBody(first) = engine.poll() else {
        panic!("the body is due")
    };
    engine.body_sent(first);
    assert!(engine.output().is_empty(), "no second message yet");
    // The second message arrives while the first verdict is due.
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    assert!(matches!(engine.poll(), Action::Write));
    assert!(engine.replies_owed(), "the first verdict is owed");
    engine.written();
    let mut outcomes = Vec::new();
    for code in [250, 250, 250, 354] {
        engine.receive(reply(code)).unwrap();
        if let Action::Done(id, outcome) = engine.poll() {
            outcomes.push((id.0, describe(&outcome)));
        }
    }
    assert_eq!(outcomes, [(0, "ok 1+0".to_owned())]);
    assert!(matches!(engine.poll(), Action::SendBody(TxId(1))));
}

/// Once the session is over, nothing more can be queued, and saying so beats silence.
#[test]
fn no_transaction_starts_on_a_closed_session() {
    let mut engine = Engine::new(&caps(true));
    engine.push(&envelope(&["b@example.org"]), None).unwrap();
    engine.written();
    engine.receive(reply(421)).unwrap();
    assert!(engine.is_closed());
    let error = engine
        .push(&envelope(&["b@example.org"]), None)
        .unwrap_err();
    assert!(
        error.to_string().contains("open a new connection"),
        "{error}"
    );
}
