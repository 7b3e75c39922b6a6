//! LMTP (RFC 2033) in the engine: one verdict per accepted recipient after the data, each
//! recipient's outcome its own, a failure between verdicts leaving the rest unknown.

use super::*;
use crate::smtp::error::ConnectKind;
use crate::smtp::reply::ReplyError;

/// One answer of the scripted server.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Code(u16),
    /// A reply the parser refused.
    Malformed,
    /// The connection was lost while the reply was awaited.
    Lost,
}
use Answer::{Code, Lost, Malformed};

fn lost_connection() -> SmtpError {
    SmtpError::Connect {
        server: "lmtp".into(),
        port: 24,
        kind: ConnectKind::Lost,
        source: std::io::ErrorKind::ConnectionReset.into(),
    }
}

/// Each recipient's fate, as a user reads it from the outcome: `delivered`, `deferred 452`,
/// `refused 550` (after the data), `rcpt 550` (refused at RCPT), `unknown`; then the kind of
/// the error, or `ok`.
fn describe(outcome: &Result<SendResult, SmtpError>) -> String {
    let mut fates = Vec::new();
    let mut verdict = |address: &str, reply: &Reply| {
        let fate = if reply.is_positive_completion() {
            "delivered".to_owned()
        } else if reply.is_transient() {
            format!("deferred {}", reply.code)
        } else {
            format!("refused {}", reply.code)
        };
        fates.push(format!("{address} {fate}"));
    };
    let kind = match outcome {
        Ok(result) => {
            for (address, reply) in &result.verdicts {
                verdict(address, reply);
            }
            let after_data: Vec<&str> = result.verdicts.iter().map(|v| v.0.as_str()).collect();
            for (address, reply) in &result.refused {
                if !after_data.contains(&address.as_str()) {
                    fates.push(format!("{address} rcpt {}", reply.code));
                }
            }
            // `accepted` holds exactly the 2xx verdicts.
            let delivered: Vec<&str> = result
                .verdicts
                .iter()
                .filter(|v| v.1.is_positive_completion())
                .map(|v| v.0.as_str())
                .collect();
            assert_eq!(result.accepted, delivered);
            "ok"
        }
        Err(SmtpError::Undelivered { verdicts, refused }) => {
            for (address, reply) in verdicts {
                verdict(address, reply);
            }
            for (address, reply) in refused {
                fates.push(format!("{address} rcpt {}", reply.code));
            }
            "message-refused"
        }
        Err(
            e @ SmtpError::RecipientsUnknown {
                verdicts, unknown, ..
            },
        ) => {
            for (address, reply) in verdicts {
                verdict(address, reply);
            }
            for address in unknown {
                fates.push(format!("{address} unknown"));
            }
            assert!(e.is_outcome_unknown() && !e.is_transient());
            e.kind()
        }
        Err(e) => e.kind(),
    };
    fates.push(kind.to_owned());
    fates.join(", ")
}

fn caps(pipelining: bool) -> Capabilities {
    let mut lines = vec!["lmtp.example".to_owned()];
    if pipelining {
        lines.push("PIPELINING".into());
    }
    // Offered, and not used in LMTP: the verdicts' count must be known when the mark goes out.
    lines.push("CHUNKING".into());
    Capabilities::from_ehlo(&Reply::new(250, lines))
}

fn envelope(rcpt: &[&str]) -> Envelope {
    Envelope::new(
        Address::parse("a@example.com").unwrap(),
        rcpt.iter().map(|r| Address::parse(r).unwrap()).collect(),
    )
}

/// Drives `engine` as the client does (a body is `BODY n` and the mark) with `script`'s
/// replies; returns the writes and each transaction's described outcome.
fn drive(engine: &mut Engine, script: &[Answer]) -> (Vec<String>, Vec<String>) {
    let (mut writes, mut outcomes) = (Vec::new(), Vec::new());
    let mut answers = script.iter();
    loop {
        match engine.poll() {
            Action::Write => {
                writes.push(String::from_utf8(engine.output().to_vec()).unwrap());
                engine.written();
            }
            Action::SendBody(id) => {
                engine.body_sent(id);
                let mut write = format!("BODY {}\r\n.\r\n", id.0);
                write.push_str(std::str::from_utf8(engine.output()).unwrap());
                engine.written();
                writes.push(write);
            }
            Action::Read => {
                let answer = answers.next().expect("the engine waits for a reply");
                let failure = match *answer {
                    Code(code) => engine
                        .receive(Reply::new(code, vec![format!("answer {code}")]))
                        .err(),
                    Malformed => Some(SmtpError::malformed_reply(ReplyError::Code)),
                    Lost => Some(lost_connection()),
                };
                if let Some(error) = failure {
                    for (id, outcome) in engine.fail_all(error, lost_connection) {
                        outcomes.push(format!("{}: {}", id.0, describe(&outcome)));
                    }
                }
            }
            Action::Done(id, outcome) => outcomes.push(format!("{}: {}", id.0, describe(&outcome))),
            Action::Idle => break,
        }
    }
    assert!(answers.next().is_none(), "answers left over: {script:?}");
    (writes, outcomes)
}

const THREE: [&str; 3] = ["b@example.org", "c@example.org", "d@example.org"];

/// Three recipients, pipelined: the answers to MAIL, the RCPTs, DATA, then the verdicts.
#[test]
#[allow(clippy::too_many_lines)] // A table with one row per case.
fn verdicts_per_recipient() {
    let cases: &[(&[Answer], &str)] = &[
        // All accepted, all delivered.
        (
            &[
                Code(250),
                Code(250),
                Code(250),
                Code(250),
                Code(354),
                Code(250),
                Code(250),
                Code(250),
            ],
            "0: b@example.org delivered, c@example.org delivered, d@example.org delivered, ok",
        ),
        // Mixed: one delivered, one deferred, one refused after the data.
        (
            &[
                Code(250),
                Code(250),
                Code(250),
                Code(250),
                Code(354),
                Code(250),
                Code(452),
                Code(550),
            ],
            "0: b@example.org delivered, c@example.org deferred 452, d@example.org refused 550, ok",
        ),
        // A refused RCPT gets no verdict: two follow the data, not three.
        (
            &[
                Code(250),
                Code(250),
                Code(550),
                Code(250),
                Code(354),
                Code(250),
                Code(451),
            ],
            "0: b@example.org delivered, d@example.org deferred 451, c@example.org rcpt 550, ok",
        ),
        // No recipient delivered: the message was refused, each with its own reason.
        (
            &[
                Code(250),
                Code(250),
                Code(550),
                Code(250),
                Code(354),
                Code(452),
                Code(554),
            ],
            "0: b@example.org deferred 452, d@example.org refused 554, c@example.org rcpt 550, \
             message-refused",
        ),
        // The connection lost between two verdicts: the first stands, the rest are unknown.
        (
            &[
                Code(250),
                Code(250),
                Code(250),
                Code(250),
                Code(354),
                Code(250),
                Lost,
            ],
            "0: b@example.org delivered, c@example.org unknown, d@example.org unknown, \
             outcome-unknown",
        ),
        // Lost before the first verdict: every recipient unknown.
        (
            &[Code(250), Code(250), Code(250), Code(250), Code(354), Lost],
            "0: b@example.org unknown, c@example.org unknown, d@example.org unknown, \
             outcome-unknown",
        ),
        // A reply that is no verdict (354) or cannot be parsed: the rest are unknown.
        (
            &[
                Code(250),
                Code(250),
                Code(250),
                Code(250),
                Code(354),
                Code(452),
                Code(354),
            ],
            "0: b@example.org deferred 452, c@example.org unknown, d@example.org unknown, \
             outcome-unknown",
        ),
        (
            &[
                Code(250),
                Code(250),
                Code(250),
                Code(250),
                Code(354),
                Code(250),
                Code(250),
                Malformed,
            ],
            "0: b@example.org delivered, c@example.org delivered, d@example.org unknown, \
             outcome-unknown",
        ),
        // A 421 as a verdict defers that recipient; the session is over, the rest unknown.
        (
            &[
                Code(250),
                Code(250),
                Code(250),
                Code(250),
                Code(354),
                Code(250),
                Code(421),
            ],
            "0: b@example.org delivered, c@example.org deferred 421, d@example.org unknown, \
             outcome-unknown",
        ),
    ];
    for (answers, outcome) in cases {
        let mut engine = Engine::new(&caps(true)).lmtp(true);
        assert!(!engine.uses_chunking());
        engine.push(&envelope(&THREE), None).unwrap();
        let (writes, outcomes) = drive(&mut engine, answers);
        assert_eq!(
            writes[0],
            "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n\
             RCPT TO:<d@example.org>\r\nDATA\r\n"
        );
        assert_eq!(outcomes, [*outcome], "{answers:?}");
    }
}

/// Without PIPELINING, one command at a time, and the verdicts the same.
#[test]
fn verdicts_without_pipelining() {
    let mut engine = Engine::new(&caps(false)).lmtp(true);
    engine.push(&envelope(&THREE[..2]), None).unwrap();
    let (writes, outcomes) = drive(
        &mut engine,
        &[
            Code(250),
            Code(250),
            Code(250),
            Code(354),
            Code(250),
            Code(550),
        ],
    );
    assert_eq!(
        writes,
        [
            "MAIL FROM:<a@example.com>\r\n",
            "RCPT TO:<b@example.org>\r\n",
            "RCPT TO:<c@example.org>\r\n",
            "DATA\r\n",
            "BODY 0\r\n.\r\n",
        ]
    );
    assert_eq!(
        outcomes,
        ["0: b@example.org delivered, c@example.org refused 550, ok"]
    );
}

/// Every recipient refused at RCPT: no data, no verdict, RSET as over SMTP.
#[test]
fn no_verdict_without_an_accepted_recipient() {
    let mut engine = Engine::new(&caps(true)).lmtp(true);
    engine.push(&envelope(&THREE[..1]), None).unwrap();
    let (writes, outcomes) = drive(&mut engine, &[Code(250), Code(550), Code(503), Code(250)]);
    assert_eq!(writes[1], "RSET\r\n");
    assert_eq!(outcomes, ["0: recipients-refused"]);
}

/// Two transactions pipelined: the second's commands go out with the first's mark, and each
/// verdict is matched to its own transaction and recipient.
#[test]
fn two_transactions_in_flight() {
    let mut engine = Engine::new(&caps(true)).lmtp(true);
    engine.push(&envelope(&THREE[..2]), None).unwrap();
    engine.push(&envelope(&THREE[2..]), None).unwrap();
    let script = [
        Code(250),
        Code(250),
        Code(250),
        Code(354),
        // The first message's two verdicts, then the second's MAIL, RCPT, DATA and verdict.
        Code(250),
        Code(452),
        Code(250),
        Code(250),
        Code(354),
        Code(550),
    ];
    let (writes, outcomes) = drive(&mut engine, &script);
    assert_eq!(
        writes[1],
        "BODY 0\r\n.\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<d@example.org>\r\nDATA\r\n"
    );
    assert_eq!(
        outcomes,
        [
            "0: b@example.org delivered, c@example.org deferred 452, ok",
            "1: d@example.org refused 550, message-refused",
        ]
    );
}

/// A connection lost with two transactions' verdicts due: each answered recipient keeps its
/// verdict, the others are unknown, in both transactions.
#[test]
fn lost_with_two_in_flight() {
    let mut engine = Engine::new(&caps(true)).lmtp(true);
    engine.push(&envelope(&THREE[..2]), None).unwrap();
    engine.push(&envelope(&THREE[2..]), None).unwrap();
    let script = [Code(250), Code(250), Code(250), Code(354), Code(250), Lost];
    let (_, outcomes) = drive(&mut engine, &script);
    assert_eq!(
        outcomes,
        [
            "0: b@example.org delivered, c@example.org unknown, outcome-unknown",
            // Its commands went out with the first's mark; nothing of it was delivered.
            "1: connection-lost",
        ]
    );
}

/// Results name each recipient as the caller gave it, not as its IDNA A-label form on the
/// wire, over LMTP as over SMTP.
#[test]
fn results_keep_the_given_address() {
    for lmtp in [false, true] {
        let mut engine = Engine::new(&caps(true)).allow_chunking(false).lmtp(lmtp);
        engine
            .push(&envelope(&["anna@bücher.example", "x@example.org"]), None)
            .unwrap();
        engine.written();
        for code in [250, 250, 550, 354] {
            engine
                .receive(Reply::new(code, vec!["answer".into()]))
                .unwrap();
        }
        let Action::SendBody(id) = engine.poll() else {
            panic!("the body is due")
        };
        engine.body_sent(id);
        engine.receive(Reply::new(250, vec!["ok".into()])).unwrap();
        let Action::Done(_, Ok(result)) = engine.poll() else {
            panic!("delivered")
        };
        assert_eq!(result.accepted, ["anna@bücher.example"]);
        assert_eq!(result.refused[0].0, "x@example.org");
        if lmtp {
            assert_eq!(result.verdicts[0].0, "anna@bücher.example");
        }
    }
}
