//! The transaction engine (smtp::engine), with DATA or BDAT, over SMTP or LMTP, under any
//! sequence of server answers: it never panics, every transaction pushed ends exactly once and
//! in order, and only a transaction whose end-of-data mark was written can end as "outcome
//! unknown". Over LMTP (RFC 2033) each recipient has exactly one fate: refused at RCPT, a
//! verdict (2xx, 4xx or 5xx) after the data, or outcome unknown; `accepted` holds exactly the
//! 2xx verdicts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpump::smtp::capability::Capabilities;
use mailpump::smtp::engine::{Action, Engine, Envelope, SendResult, TxId};
use mailpump::smtp::error::{ConnectKind, SmtpError};
use mailpump::{Address, Reply};

const RECIPIENTS: [&str; 3] = ["b@example.org", "c@example.org", "d@example.org"];

/// Each recipient once across `fates`, and nothing else.
fn each_recipient_once<'a>(fates: impl Iterator<Item = &'a str>) {
    let mut seen: Vec<&str> = fates.collect();
    seen.sort_unstable();
    let mut all = RECIPIENTS.to_vec();
    all.sort_unstable();
    assert_eq!(seen, all, "each recipient has exactly one fate");
}

fn is_verdict(reply: &Reply) -> bool {
    reply.is_positive_completion() || reply.is_transient() || reply.is_permanent()
}

/// The LMTP invariants of one outcome.
fn check_lmtp(outcome: &Result<SendResult, SmtpError>) {
    match outcome {
        Ok(result) => {
            assert!(result.verdicts.iter().all(|(_, r)| is_verdict(r)));
            let delivered: Vec<&str> = result
                .verdicts
                .iter()
                .filter(|(_, r)| r.is_positive_completion())
                .map(|(a, _)| a.as_str())
                .collect();
            assert!(!delivered.is_empty(), "a delivery has a 2xx verdict");
            assert_eq!(result.accepted, delivered);
            let after_data = |a: &str| result.verdicts.iter().any(|(v, _)| v == a);
            each_recipient_once(
                result
                    .verdicts
                    .iter()
                    .map(|(a, _)| a.as_str())
                    .chain(result.refused.iter().map(|(a, _)| a.as_str()).filter(|a| !after_data(a))),
            );
        }
        Err(SmtpError::Undelivered { verdicts, refused }) => {
            assert!(verdicts
                .iter()
                .all(|(_, r)| r.is_transient() || r.is_permanent()));
            each_recipient_once(verdicts.iter().chain(refused).map(|(a, _)| a.as_str()));
        }
        Err(SmtpError::RecipientsUnknown {
            verdicts, unknown, ..
        }) => {
            assert!(!unknown.is_empty(), "an unknown outcome leaves someone unknown");
            assert!(verdicts.iter().all(|(_, r)| is_verdict(r)));
            let mut fates: Vec<&str> = verdicts.iter().map(|(a, _)| a.as_str()).collect();
            fates.extend(unknown.iter().map(String::as_str));
            let count = fates.len();
            fates.sort_unstable();
            fates.dedup();
            assert_eq!(fates.len(), count, "a recipient with two fates");
            assert!(fates.iter().all(|a| RECIPIENTS.contains(a)));
        }
        Err(_) => {}
    }
}

fuzz_target!(|input: (bool, bool, bool, u8, Vec<(u16, u8)>)| {
    let (pipelining, chunking, lmtp, transactions, answers) = input;
    let mut lines = vec!["mx.example".to_owned()];
    if pipelining {
        lines.push("PIPELINING".into());
    }
    if chunking {
        // With PIPELINING, BDAT chunks (RFC 3030): `transactions`' high bits say how many
        // chunks come before each `BDAT LAST`. LMTP never uses them.
        lines.push("CHUNKING".into());
    }
    let mut engine = Engine::new(&Capabilities::from_ehlo(&Reply::new(250, lines))).lmtp(lmtp);
    assert!(!(lmtp && engine.uses_chunking()));
    let envelope = Envelope::new(
        Address::parse("a@example.com").unwrap(),
        RECIPIENTS.iter().map(|r| Address::parse(r).unwrap()).collect(),
    );
    let count = u64::from(transactions % 5) + 1;
    for _ in 0..count {
        engine.push(&envelope, None).unwrap();
    }
    let mut answers = answers.into_iter();
    let mut ended: Vec<TxId> = Vec::new();
    let mut marked: Vec<TxId> = Vec::new();
    let mut check = |id: TxId, outcome: &Result<_, SmtpError>, marked: &[TxId]| {
        assert!(!ended.contains(&id), "{id:?} ended twice");
        if let Some(last) = ended.last() {
            assert!(*last < id, "outcomes out of order");
        }
        if matches!(
            outcome,
            Err(SmtpError::OutcomeUnknown { .. } | SmtpError::RecipientsUnknown { .. })
        ) {
            assert!(marked.contains(&id), "{id:?} unknown without its mark");
        }
        if lmtp {
            check_lmtp(outcome);
        } else {
            assert!(matches!(outcome, Ok(r) if r.verdicts.is_empty()) || outcome.is_err());
            assert!(!matches!(
                outcome,
                Err(SmtpError::Undelivered { .. } | SmtpError::RecipientsUnknown { .. })
            ));
        }
        ended.push(id);
    };
    // Bounded: each step consumes an answer or ends a transaction.
    for _ in 0..10_000 {
        match engine.poll() {
            Action::Write => engine.written(),
            Action::SendBody(id) => {
                engine.written();
                if engine.uses_chunking() {
                    for _ in 0..(transactions >> 5) {
                        engine.chunk_sent(id);
                    }
                }
                marked.push(id);
                engine.body_sent(id);
            }
            Action::Done(id, outcome) => check(id, &outcome, &marked),
            Action::Idle => break,
            Action::Read => {
                let Some((code, text)) = answers.next() else {
                    // The connection drops: whatever is open ends now.
                    let lost = || SmtpError::Connect {
                        server: "mx".into(),
                        port: 25,
                        kind: ConnectKind::Lost,
                        source: std::io::ErrorKind::ConnectionReset.into(),
                    };
                    for (id, outcome) in engine.fail_all(lost(), lost) {
                        check(id, &outcome, &marked);
                    }
                    break;
                };
                let reply = Reply::new(100 + code % 500, vec![format!("text {text}")]);
                if let Err(e) = engine.receive(reply) {
                    for (id, outcome) in engine.fail_all(e, || SmtpError::invalid_input("gone")) {
                        check(id, &outcome, &marked);
                    }
                    break;
                }
            }
        }
    }
    assert_eq!(ended.len() as u64, count, "every transaction ends exactly once");
});
