//! DSN (RFC 3461) in the engine: the parameters on MAIL and each RCPT when the server offers the
//! extension, and the choice before any byte when it does not.

use super::*;
use crate::smtp::dsn::{Notify, Ret};

fn caps(extra: &[&str]) -> Capabilities {
    let mut lines = vec!["mx.example".to_owned(), "PIPELINING".to_owned()];
    lines.extend(extra.iter().map(|s| (*s).to_owned()));
    Capabilities::from_ehlo(&Reply::new(250, lines))
}

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

fn envelope(dsn: Dsn) -> Envelope {
    let mut envelope = Envelope::new(
        address("a@example.com"),
        vec![address("b@example.org"), address("c@example.org")],
    );
    envelope.dsn = Some(dsn);
    envelope
}

fn asked() -> Dsn {
    Dsn {
        ret: Some(Ret::Full),
        envid: Some("batch 7".into()),
        notify: Some(Notify::on(false, true, true)),
        recipients: vec![(
            address("c@example.org"),
            RcptDsn {
                notify: Some(Notify::Never),
                orcpt: Some(address("list+c@example.net")),
            },
        )],
        optional: false,
    }
}

#[test]
fn parameters_on_mail_and_each_rcpt() {
    let mut engine = Engine::new(&caps(&["DSN"]));
    engine.push(&envelope(asked()), None).unwrap();
    assert_eq!(
        String::from_utf8(engine.output().to_vec()).unwrap(),
        "MAIL FROM:<a@example.com> RET=FULL ENVID=batch+207\r\n\
         RCPT TO:<b@example.org> NOTIFY=FAILURE,DELAY\r\n\
         RCPT TO:<c@example.org> NOTIFY=NEVER ORCPT=rfc822;list+2Bc@example.net\r\n\
         DATA\r\n"
    );
}

#[test]
fn not_offered_refuses_before_any_byte_unless_optional() {
    let mut engine = Engine::new(&caps(&[]));
    let error = engine.push(&envelope(asked()), None).unwrap_err();
    assert_eq!(error.kind(), "invalid-input");
    assert!(error.to_string().contains("DSN"), "{error}");
    assert!(engine.output().is_empty());
    assert!(matches!(engine.poll(), Action::Idle));

    let dsn = Dsn {
        optional: true,
        ..asked()
    };
    engine.push(&envelope(dsn), None).unwrap();
    assert_eq!(
        String::from_utf8(engine.output().to_vec()).unwrap(),
        "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"
    );
}

#[test]
fn an_empty_request_needs_no_extension() {
    let mut engine = Engine::new(&caps(&[]));
    engine.push(&envelope(Dsn::default()), None).unwrap();
    assert!(
        engine
            .output()
            .starts_with(b"MAIL FROM:<a@example.com>\r\n")
    );
}

#[test]
fn bad_parameters_are_refused_before_any_byte() {
    let mut engine = Engine::new(&caps(&["DSN"]));
    let bad = [
        Dsn {
            notify: Some(Notify::on(false, false, false)),
            ..Dsn::default()
        },
        Dsn {
            envid: Some("a\r\nRSET".into()),
            ..Dsn::default()
        },
        Dsn {
            recipients: vec![(address("stranger@example.org"), RcptDsn::default())],
            ..Dsn::default()
        },
    ];
    for dsn in bad {
        assert_eq!(
            engine
                .push(&envelope(dsn.clone()), None)
                .unwrap_err()
                .kind(),
            "invalid-input",
            "{dsn:?}"
        );
        assert!(engine.output().is_empty());
    }
}
