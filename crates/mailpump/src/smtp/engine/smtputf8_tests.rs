//! SMTPUTF8 (RFC 6531) and IDNA in the engine: one decision per transaction, from every address.

use super::*;

fn engine(smtputf8: bool) -> Engine {
    let mut lines = vec!["mx.example".to_owned(), "PIPELINING".to_owned()];
    if smtputf8 {
        lines.push("SMTPUTF8".into());
    }
    Engine::new(&Capabilities::from_ehlo(&Reply::new(250, lines)))
}

fn pushed(smtputf8: bool, from: &str, rcpt: &[&str]) -> Result<String, SmtpError> {
    let mut engine = engine(smtputf8);
    let envelope = Envelope::new(
        Address::parse(from).unwrap(),
        rcpt.iter().map(|r| Address::parse(r).unwrap()).collect(),
    );
    engine.push(&envelope, None)?;
    Ok(String::from_utf8(engine.output().to_vec()).unwrap())
}

#[test]
fn the_transaction_decides_once() {
    let table: [(bool, &str, &[&str], &str); 5] = [
        // Offered, and one recipient's local part needs it: every address as it is.
        (
            true,
            "a@bücher.example",
            &["zoë@example.org", "b@example.org"],
            "MAIL FROM:<a@bücher.example> SMTPUTF8\r\nRCPT TO:<zoë@example.org>\r\n\
             RCPT TO:<b@example.org>\r\nDATA\r\n",
        ),
        // Offered, only domains: SMTPUTF8 still, the U-labels as written.
        (
            true,
            "a@example.com",
            &["b@bücher.example"],
            "MAIL FROM:<a@example.com> SMTPUTF8\r\nRCPT TO:<b@bücher.example>\r\nDATA\r\n",
        ),
        // Not offered: A-labels for every domain, sender included.
        (
            false,
            "a@bücher.example",
            &["b@Bücher.example", "c@example.org"],
            "MAIL FROM:<a@xn--bcher-kva.example>\r\nRCPT TO:<b@xn--bcher-kva.example>\r\n\
             RCPT TO:<c@example.org>\r\nDATA\r\n",
        ),
        // All ASCII: no SMTPUTF8 even when offered.
        (
            true,
            "a@example.com",
            &["b@example.org"],
            "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
        ),
        (
            false,
            "a@example.com",
            &["b@xn--bcher-kva.example"],
            "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@xn--bcher-kva.example>\r\nDATA\r\n",
        ),
    ];
    for (offered, from, rcpt, expected) in table {
        assert_eq!(
            pushed(offered, from, rcpt).unwrap(),
            expected,
            "{from} {rcpt:?}"
        );
    }
}

#[test]
fn a_non_ascii_local_part_needs_the_extension() {
    for (from, rcpt) in [
        ("zoë@example.com", "b@example.org"),
        ("a@example.com", "zoë@bücher.example"),
    ] {
        let error = pushed(false, from, &[rcpt]).unwrap_err();
        assert_eq!(error.kind(), "invalid-input");
        assert!(error.to_string().contains("SMTPUTF8"), "{error}");
    }
}
