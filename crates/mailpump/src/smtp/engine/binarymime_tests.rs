//! BINARYMIME (RFC 3030 §3): which servers take a binary message, what MAIL declares, and that a
//! refusal comes before any byte and leaves the engine as it was.

use super::*;

fn caps(keywords: &[&str]) -> Capabilities {
    let lines = std::iter::once("mx.example")
        .chain(keywords.iter().copied())
        .map(str::to_owned)
        .collect();
    Capabilities::from_ehlo(&Reply::new(250, lines))
}

fn envelope(binary_mime: bool) -> Envelope {
    let mut envelope = Envelope::new(
        Address::parse("a@example.com").unwrap(),
        vec![Address::parse("b@example.org").unwrap()],
    );
    envelope.binary_mime = binary_mime;
    envelope
}

const ALL: &[&str] = &["PIPELINING", "8BITMIME", "CHUNKING", "BINARYMIME"];

/// What MAIL says for a binary message, or why the message is refused, for each server.
#[test]
fn a_binary_message_needs_binarymime_chunking_and_pipelining() {
    let cases: [(&[&str], bool, Result<&str, &str>); 7] = [
        (
            ALL,
            true,
            Ok("MAIL FROM:<a@example.com> BODY=BINARYMIME\r\n"),
        ),
        (
            &["PIPELINING", "CHUNKING", "BINARYMIME"],
            true,
            Ok("MAIL FROM:<a@example.com> BODY=BINARYMIME\r\n"),
        ),
        (ALL, false, Err("chunking=False")),
        (
            &["PIPELINING", "8BITMIME", "CHUNKING"],
            true,
            Err("does not offer BINARYMIME"),
        ),
        (
            &["PIPELINING", "8BITMIME"],
            true,
            Err("does not offer BINARYMIME"),
        ),
        (&["PIPELINING", "BINARYMIME"], true, Err("without CHUNKING")),
        (
            &["8BITMIME", "CHUNKING", "BINARYMIME"],
            true,
            Err("without CHUNKING and PIPELINING"),
        ),
    ];
    for (keywords, chunking, expected) in cases {
        let mut engine = Engine::new(&caps(keywords)).allow_chunking(chunking);
        let pushed = engine.push(&envelope(true), Some(10));
        match expected {
            Ok(mail) => {
                let id = pushed.unwrap();
                assert!(engine.is_binary(id));
                let output = String::from_utf8(engine.output().to_vec()).unwrap();
                assert_eq!(
                    output,
                    format!("{mail}RCPT TO:<b@example.org>\r\n"),
                    "{keywords:?}"
                );
                assert!(matches!(engine.poll(), Action::SendBody(body) if body == id));
            }
            Err(why) => {
                let error = pushed.unwrap_err();
                assert_eq!(error.kind(), "extension-not-offered", "{keywords:?}");
                assert!(error.is_permanent());
                assert!(error.to_string().contains(why), "{keywords:?}: {error}");
                // Before any byte: nothing to write, nothing open.
                assert!(engine.output().is_empty());
                assert!(matches!(engine.poll(), Action::Idle));
            }
        }
    }
}

/// A message without binary parts declares 8BITMIME as before, and its body is normalised.
#[test]
fn other_messages_keep_8bitmime() {
    let mut engine = Engine::new(&caps(ALL));
    let id = engine.push(&envelope(false), None).unwrap();
    assert!(!engine.is_binary(id));
    assert_eq!(
        engine.output(),
        b"MAIL FROM:<a@example.com> BODY=8BITMIME\r\nRCPT TO:<b@example.org>\r\n"
    );
    let mut seven_bit = envelope(false);
    seven_bit.eight_bit = false;
    let mut engine = Engine::new(&caps(ALL));
    engine.push(&seven_bit, None).unwrap();
    assert!(
        engine
            .output()
            .starts_with(b"MAIL FROM:<a@example.com>\r\n")
    );
}

/// A binary message refused between two others leaves them on their way, in one window.
#[test]
fn a_refused_binary_message_does_not_disturb_the_others() {
    let mut engine = Engine::new(&caps(&["PIPELINING", "CHUNKING"]));
    let first = engine.push(&envelope(false), None).unwrap();
    assert!(engine.push(&envelope(true), None).is_err());
    let second = engine.push(&envelope(false), None).unwrap();
    assert_eq!(second.0, first.0 + 1);
    for id in [first, second] {
        assert!(matches!(engine.poll(), Action::SendBody(body) if body == id));
        engine.written();
        engine.body_sent(id);
    }
    for _ in 0..6 {
        engine.receive(Reply::new(250, vec!["ok".into()])).unwrap();
    }
    let done: Vec<bool> = std::iter::from_fn(|| match engine.poll() {
        Action::Done(_, outcome) => Some(outcome.is_ok()),
        _ => None,
    })
    .collect();
    assert_eq!(done, [true, true]);
}
