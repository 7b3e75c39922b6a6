//! The transaction engine (smtp::engine), with DATA or BDAT, under any sequence of server answers: it never panics,
//! every transaction pushed ends exactly once and in order, and only a transaction whose
//! end-of-data mark was written can end as "outcome unknown".
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpump::smtp::capability::Capabilities;
use mailpump::smtp::engine::{Action, Engine, Envelope, TxId};
use mailpump::smtp::error::{ConnectKind, SmtpError};
use mailpump::{Address, Reply};

fuzz_target!(|input: (bool, bool, u8, Vec<(u16, u8)>)| {
    let (pipelining, chunking, transactions, answers) = input;
    let mut lines = vec!["mx.example".to_owned()];
    if pipelining {
        lines.push("PIPELINING".into());
    }
    if chunking {
        // With PIPELINING, BDAT chunks (RFC 3030): `transactions`' high bits say how many
        // chunks come before each `BDAT LAST`.
        lines.push("CHUNKING".into());
    }
    let mut engine = Engine::new(&Capabilities::from_ehlo(&Reply::new(250, lines)));
    let envelope = Envelope::new(
        Address::parse("a@example.com").unwrap(),
        vec![
            Address::parse("b@example.org").unwrap(),
            Address::parse("c@example.org").unwrap(),
        ],
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
        if matches!(outcome, Err(SmtpError::OutcomeUnknown { .. })) {
            assert!(marked.contains(&id), "{id:?} unknown without its mark");
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
