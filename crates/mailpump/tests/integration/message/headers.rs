//! Header safety and shape: injection attempts, folding, encoded-words, boundaries.

use std::io::Read;

use mailpump::MessageError;
use mailpump::mime::message::{
    Body, HeaderValue, MessageEncoder, MessageOptions, Multipart, Part, TransferEncoding,
};
use proptest::prelude::*;

use crate::support::{self, decode_2047};

fn fixed() -> MessageOptions {
    support::fixed("+0000", 7)
}

fn encode(part: Part) -> String {
    String::from_utf8(support::read_message(part, fixed())).unwrap()
}

fn error(part: Part) -> MessageError {
    MessageEncoder::new(part, fixed()).expect_err("the message must be refused")
}

/// The header block of an encoded message.
fn head(message: &str) -> &str {
    message.split("\r\n\r\n").next().unwrap()
}

/// The unfolded value of the first header `name` (RFC 5322 §2.2.3: remove each CRLF before WSP).
fn unfolded(message: &str, name: &str) -> String {
    let block = head(message).replace("\r\n ", " ").replace("\r\n\t", "\t");
    let prefix = format!("{name}:");
    let line = block
        .split("\r\n")
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {block}"));
    line[prefix.len()..].to_owned()
}

/// Every line of the header block: at most 998 octets, and at most 78 unless it is one word.
fn assert_line_lengths(message: &str) {
    for line in head(message).split("\r\n") {
        assert!(line.len() <= 998, "line of {} octets", line.len());
        let words = line.split_whitespace().count();
        assert!(
            line.len() <= 78 || words <= 2,
            "foldable line of {} octets: {line}",
            line.len()
        );
    }
}

#[test]
fn injection_attempts_are_refused_before_any_output() {
    let values = [
        "x\r",
        "x\n",
        "x\r\nBcc: victim@example.com",
        "x\nBcc: victim@example.com",
        "x\rBcc: victim@example.com",
        "trailing line feed\n",
        "nul\0byte",
        "line\u{2028}separator",
        "paragraph\u{2029}separator",
        "next\u{85}line",
        "del\u{7f}",
        "escape\u{1b}[0m",
    ];
    for value in values {
        for name in ["Subject", "X-Custom", "To", "Content-Type", "Message-ID"] {
            let err = error(Part::new().header(name, value).body("x"));
            assert_eq!(
                (err.part.as_str(), err.header.as_deref()),
                ("message", Some(name)),
                "{value:?} in {name}"
            );
        }
        let err = error(Part::new().header(
            "Reply-To",
            vec!["ok@example.com".to_owned(), value.to_owned()],
        ));
        assert_eq!(err.header.as_deref(), Some("Reply-To"), "{value:?}");
        if value.is_ascii() {
            let err = error(Part::new().header("X-Raw", value.as_bytes().to_vec()));
            assert_eq!(err.header.as_deref(), Some("X-Raw"), "{value:?}");
        }
    }
    for name in ["Bad Name", "Bad:Name", "Bäd", "X\r\nBcc", "", "Tab\tName"] {
        let err = error(Part::new().header(name, "value"));
        assert_eq!(err.header.as_deref(), Some(name), "{name:?}");
    }
}

#[test]
fn errors_name_the_part_at_fault() {
    let tree = Part::new().body(Multipart::new(vec![
        Part::text("a", "plain"),
        Part::new().body(Multipart::new(vec![
            Part::new().header("Subject", "x\r\nBcc: y"),
            Part::new(),
        ])),
    ]));
    let err = error(tree);
    assert_eq!(err.part, "message.parts[1].parts[0]");
    assert_eq!(err.header.as_deref(), Some("Subject"));
    assert!(
        err.to_string()
            .starts_with("message.parts[1].parts[0], header \"Subject\": "),
        "{err}"
    );
}

#[test]
fn bcc_is_written_unless_empty() {
    // Written for the sending path to read; smtp::header_envelope leaves it out of what is sent.
    let out = encode(Part::new().header("BCC", "hidden@example.com").body("x"));
    assert!(out.contains("Bcc: hidden@example.com\r\n"), "{out}");
    for empty in [
        HeaderValue::Text(String::new()),
        HeaderValue::Text("  ".into()),
        HeaderValue::Addresses(vec![]),
    ] {
        let out = encode(Part::new().header("bcc", empty).body("x"));
        assert!(
            !out.to_ascii_lowercase().contains("bcc"),
            "an empty Bcc is dropped: {out}"
        );
    }
}

#[test]
fn names_are_canonical_and_case_duplicates_refused() {
    let out = encode(
        Part::new()
            .header("x-custom-header", "a")
            .header("content-id", "<c@x>")
            .header("SUBJECT", "s"),
    );
    let h = head(&out);
    assert!(
        h.starts_with("X-Custom-Header: a\r\nContent-ID: <c@x>\r\nSubject: s\r\n"),
        "{h}"
    );
    let err = error(Part::new().header("Subject", "a").header("subject", "b"));
    assert_eq!(err.header.as_deref(), Some("subject"));
    assert!(
        err.reason.contains("\"Subject\""),
        "the error names the other spelling: {err}"
    );
    let err = error(Part::new().header("Subject", "a").header("Subject", "b"));
    assert_eq!(err.header.as_deref(), Some("Subject"));
    let out = encode(
        Part::new()
            .header("Received", "from a")
            .header("Received", "from b"),
    );
    assert_eq!(
        out.matches("Received: from").count(),
        2,
        "repeatable headers may repeat"
    );
}

#[test]
fn transfer_encoding_conflicts_are_refused() {
    let err = error(
        Part::new()
            .header("Content-Transfer-Encoding", "7bit")
            .body(vec![1])
            .encoding(TransferEncoding::Base64),
    );
    assert_eq!(err.header.as_deref(), Some("Content-Transfer-Encoding"));
    let err = error(
        Part::new()
            .header("content-transfer-encoding", "x-uuencode")
            .body(vec![1])
            .encoding(TransferEncoding::Base64),
    );
    assert_eq!(err.header.as_deref(), Some("content-transfer-encoding"));
    assert!(err.reason.contains("x-uuencode"), "{err}");
    let err = error(
        Part::new()
            .body(Multipart::new(vec![]))
            .encoding(TransferEncoding::Base64),
    );
    assert_eq!(err.header, None);
    let err = error(Part::text("ü", "plain").encoding(TransferEncoding::SevenBit));
    assert_eq!(err.part, "message");
}

#[test]
fn attachment_names_with_line_breaks_are_refused() {
    assert!(Part::attachment(vec![1], Some("evil\r\nBcc: x.txt"), None).is_err());
    let part = Part::attachment(
        vec![1],
        Some("Rapport annuel — 2024, version définitive.pdf"),
        None,
    )
    .unwrap();
    let out = encode(part);
    assert_line_lengths(&out);
    assert!(out.contains("Content-Type: application/pdf\r\n"), "{out}");
    assert!(
        out.contains("filename*0*=utf-8''Rapport%20annuel%20%E2%80%94"),
        "{out}"
    );
}

#[test]
fn an_unbreakable_5000_character_token_is_folded_as_encoded_words() {
    let token = "x".repeat(5000);
    for name in ["Subject", "X-Token"] {
        let out = encode(Part::new().header(name, format!("see {token} end")));
        assert_line_lengths(&out);
        assert!(head(&out).split("\r\n").all(|l| l.len() <= 78), "{out}");
        assert_eq!(
            decode_2047(&unfolded(&out, name)),
            format!("see {token} end")
        );
    }
    // A header without room for encoded-words cannot carry it: an error, not a 5,000-octet line.
    let err = error(Part::new().header("Message-ID", format!("<{token}@example.com>")));
    assert_eq!(err.header.as_deref(), Some("Message-ID"));
    let err = error(Part::new().header("X-Raw", token.into_bytes()));
    assert_eq!(err.header.as_deref(), Some("X-Raw"));
}

#[test]
fn long_non_ascii_subjects_fold_and_decode() {
    for subject in [
        "Grüße aus Köln, München und Zürich — ".repeat(8),
        "日本語のとても長い件名です。".repeat(10),
        "emoji 😀 mixed with ascii words and 🎉 more emoji ".repeat(6),
    ] {
        let out = encode(Part::new().header("Subject", subject.as_str()));
        assert!(head(&out).split("\r\n").all(|l| l.len() <= 78), "{out}");
        assert_eq!(decode_2047(&unfolded(&out, "Subject")), subject);
    }
}

#[test]
fn long_address_lists_fold_between_addresses() {
    let items: Vec<String> = (0..40)
        .map(|i| format!("Zoë Ünïcode {i} <user{i}@example.com>"))
        .collect();
    let out = encode(
        Part::new()
            .header("To", items.clone())
            .header("Cc", items.join(", ")),
    );
    assert!(head(&out).split("\r\n").all(|l| l.len() <= 78), "{out}");
    let to = unfolded(&out, "To");
    assert_eq!(to, unfolded(&out, "Cc"));
    assert_eq!(to.matches("@example.com>").count(), 40);
    assert!(
        !to.contains('"'),
        "non-ASCII display names are encoded-words, never inside quotes: {to}"
    );
    let first = to.split(',').next().unwrap();
    let (name, addr) = first.trim().split_once(" <").unwrap();
    assert_eq!(decode_2047(name), "Zoë Ünïcode 0");
    assert_eq!(addr, "user0@example.com>");
}

#[test]
fn quoted_non_ascii_display_names_are_encoded_not_quoted() {
    let out = encode(Part::new().header("From", "\"Müller, Jörg\" <j@example.com>"));
    let from = unfolded(&out, "From");
    assert!(from.starts_with(" =?utf-8?"), "{from}");
    let name = from.trim().rsplit_once(" <").unwrap().0;
    assert_eq!(decode_2047(name), "Müller, Jörg");
    let out = encode(Part::new().header("From", vec!["J. Smith <j@example.com>".to_owned()]));
    assert!(
        head(&out).contains("From: \"J. Smith\" <j@example.com>"),
        "{out}"
    );
}

#[test]
fn literal_encoded_word_text_is_kept_literal() {
    let out = encode(Part::new().header("Subject", "=?utf-8?Q?not_decoded?= please"));
    assert_eq!(
        decode_2047(&unfolded(&out, "Subject")),
        "=?utf-8?Q?not_decoded?= please"
    );
}

#[test]
fn boundaries_are_fresh_valid_and_callers_kept() {
    let tree = || {
        Part::new().body(Multipart::new(vec![
            Part::new().body(Multipart::new(vec![Part::text("a", "plain")])),
            Part::new().body(Multipart::new(vec![Part::text("b", "plain")])),
        ]))
    };
    let mut out = Vec::new();
    MessageEncoder::new(tree(), MessageOptions::default())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    let boundaries: Vec<&str> = out
        .split("boundary=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(boundaries.len(), 3);
    for (i, b) in boundaries.iter().enumerate() {
        assert!(b.len() <= 70 && b.len() >= 34, "{b}");
        let bchars = |c: u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&c);
        assert!(b.bytes().all(bchars), "{b}");
        assert!(
            boundaries[i + 1..].iter().all(|o| o != b),
            "fresh per multipart"
        );
        assert_eq!(out.matches(&format!("--{b}--")).count(), 1);
    }
    let mut again = Vec::new();
    MessageEncoder::new(tree(), MessageOptions::default())
        .unwrap()
        .read_to_end(&mut again)
        .unwrap();
    assert!(
        !String::from_utf8(again).unwrap().contains(boundaries[0]),
        "fresh per message"
    );

    let kept = encode(
        Part::new()
            .header("Content-Type", "multipart/related; boundary=mine")
            .body(Multipart::new(vec![])),
    );
    assert!(
        kept.contains("Content-Type: multipart/related; boundary=mine\r\n"),
        "{kept}"
    );
    assert!(kept.contains("\r\n--mine--\r\n"), "{kept}");
    let added = encode(
        Part::new()
            .header("Content-Type", "multipart/alternative")
            .body(Multipart::new(vec![])),
    );
    assert!(
        unfolded(&added, "Content-Type").starts_with(" multipart/alternative; boundary=\"=_"),
        "{added}"
    );

    let bad = error(
        Part::new()
            .header("Content-Type", "multipart/mixed; boundary=\"a;b\"")
            .body(Multipart::new(vec![])),
    );
    assert_eq!(bad.header.as_deref(), Some("Content-Type"));
    let bad = error(
        Part::new()
            .header("Content-Type", "text/plain")
            .body(Multipart::new(vec![])),
    );
    assert_eq!(bad.header.as_deref(), Some("Content-Type"));
    let clash = Multipart::new(vec![]).preamble("text\r\n--mine\r\n");
    let bad = error(
        Part::new()
            .header("Content-Type", "multipart/mixed; boundary=mine")
            .body(clash),
    );
    assert!(bad.reason.contains("boundary"), "{bad}");
}

#[test]
fn a_body_less_part_is_an_empty_part() {
    let out = encode(Part::new().body(Multipart::new(vec![
        Part::new(),
        Part::new().body(Body::None),
    ])));
    assert_eq!(out.matches("\r\n\r\n\r\n--=_").count(), 2, "{out}");
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    /// Any text without line breaks round-trips through an unstructured header, folded at 78.
    #[test]
    fn unstructured_values_round_trip(value in "[ \\ta-zA-Z0-9=?_éü日😀\\-]{0,300}") {
        let out = encode(Part::new().header("Subject", value.as_str()));
        assert_line_lengths(&out);
        let decoded = decode_2047(&unfolded(&out, "Subject"));
        prop_assert_eq!(decoded, value);
    }

    /// Every line of a header block with random values starts a field or continues one.
    #[test]
    fn no_line_starts_a_field_we_did_not_write(value in "[ a-zA-Z:;=\"\\\\é日\t]{0,200}") {
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
        let attachment = Part::attachment(vec![1], Some(&value.replace('\t', " ")), None).unwrap();
        let out = encode(
            Part::new()
                .header("X-Value", value.as_str())
                .header("Subject", value.as_str())
                .header("To", format!("\"{quoted}\" <a@b.c>"))
                .body(Multipart::new(vec![attachment])),
        );
        let fields: Vec<&str> = out
            .split("\r\n")
            .take_while(|l| !l.starts_with("--"))
            .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        prop_assert_eq!(
            fields,
            ["X-Value", "Subject", "To", "Date", "Message-ID", "MIME-Version", "X-Mailer", "Content-Type"]
        );
        let part_head = out.split("\r\n--").nth(1).unwrap();
        let fields: Vec<&str> = part_head
            .split("\r\n")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter(|l| !l.starts_with([' ', '\t']))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        prop_assert_eq!(fields, ["Content-Type", "Content-Disposition", "Content-Transfer-Encoding"]);
        prop_assert!(out.split("\r\n").all(|l| l.len() <= 998));
    }
}

#[test]
fn caller_boundaries_must_not_occur_in_content() {
    let outer = |parts: Vec<Part>| {
        Part::new()
            .header("Content-Type", "multipart/mixed; boundary=\"b1\"")
            .body(Multipart::new(parts))
    };
    let err = error(outer(vec![
        Part::text("ok", "plain"),
        Part::text("a\r\n--b1\r\nfake part", "plain"),
    ]));
    assert_eq!(err.part, "message.parts[1]");
    assert!(err.reason.contains("\"b1\""), "{err}");
    let nested = Part::new().body(Multipart::new(vec![Part::new().body(b"--b1--".to_vec())]));
    assert_eq!(error(outer(vec![nested])).part, "message.parts[0].parts[0]");
    let nested = Part::new().body(Multipart::new(vec![]).epilogue("\r\n--b1\r\n"));
    assert_eq!(error(outer(vec![nested])).part, "message.parts[0]");
    // Base64 output cannot contain a delimiter, and generated boundaries are not checked against
    // content (they are random): both encode.
    encode(outer(vec![
        Part::new()
            .body(b"--b1".to_vec())
            .encoding(TransferEncoding::Base64),
    ]));
    encode(Part::new().body(Multipart::new(vec![Part::text("--b1", "plain")])));
}

#[test]
fn non_ascii_text_gets_a_charset() {
    let out = encode(
        Part::new()
            .header("Content-Type", "text/html")
            .body("<p>é</p>"),
    );
    assert!(
        out.contains("Content-Type: text/html; charset=\"utf-8\"\r\n"),
        "{out}"
    );
    let out = encode(
        Part::new()
            .header("Content-Type", "text/html; charset=UTF-8")
            .body("<p>é</p>"),
    );
    assert!(
        out.contains("Content-Type: text/html; charset=UTF-8\r\n"),
        "the caller's charset is kept: {out}"
    );
    let err = error(
        Part::new()
            .header("Content-Type", "text/html; charset=latin-1")
            .body("<p>é</p>"),
    );
    assert!(
        err.reason.contains("latin-1"),
        "a str body cannot be declared in another charset: {err}"
    );
    let out = encode(
        Part::new()
            .header("Content-Type", "text/html; charset=latin-1")
            .body("<p>e</p>"),
    );
    assert!(
        out.contains("charset=latin-1"),
        "ASCII reads the same in any such charset: {out}"
    );
    let out = encode(
        Part::new()
            .header("Content-Type", "text/html")
            .body("<p>e</p>"),
    );
    assert!(out.contains("Content-Type: text/html\r\n"), "{out}");
}

#[test]
fn identifier_lists_are_space_separated() {
    let ids = vec!["<a@example.com>".to_owned(), "<b@example.com>".to_owned()];
    let out = encode(
        Part::new()
            .header("References", ids.clone())
            .header("X-List", ids),
    );
    assert!(
        out.contains("References: <a@example.com> <b@example.com>\r\n"),
        "{out}"
    );
    assert!(
        out.contains("X-List: <a@example.com>, <b@example.com>\r\n"),
        "{out}"
    );
}

#[test]
fn encoders_can_move_between_threads() {
    fn send<T: Send>(_: &T) {}
    let encoder = MessageEncoder::new(Part::new(), fixed()).unwrap();
    send(&encoder);
    let handle = std::thread::spawn(move || {
        let mut encoder = encoder;
        let mut out = Vec::new();
        encoder.read_to_end(&mut out).unwrap();
        out.len()
    });
    assert!(handle.join().unwrap() > 0);
}

#[test]
fn the_first_word_never_moves_to_a_continuation_line() {
    // Python keeps whitespace folded in before the first word as part of the value.
    let name = format!("X-N{}", "n".repeat(59));
    let out = encode(Part::new().header(name.as_str(), "ünïcode words that follow"));
    let first = head(&out).lines().next().unwrap().to_owned();
    assert!(first.starts_with(&format!("{name}: =?utf-8?")), "{first}");
    assert_eq!(
        decode_2047(&unfolded(&out, &name)),
        "ünïcode words that follow"
    );
}

#[test]
fn display_names_keep_ascii_words_readable() {
    let out = encode(Part::new().header("From", "Jörg Smith <j@example.com>"));
    assert!(
        head(&out).contains("From: =?utf-8?B?SsO2cmc=?= Smith <j@example.com>"),
        "{out}"
    );
}

#[test]
fn ascii_display_names_are_atoms_or_quoted_strings() {
    let cases = [
        ("Ann Smith", "Ann Smith <a@x.org>"),
        ("Smith, Ann", "\"Smith, Ann\" <a@x.org>"),
        ("two  spaces", "\"two  spaces\" <a@x.org>"),
        (" edge ", "\" edge \" <a@x.org>"),
        ("say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\" <a@x.org>"),
        ("a =? b", "a =? b <a@x.org>"),
    ];
    for (name, expected) in cases {
        let out = encode(Part::new().header(
            "To",
            vec![format!(
                "\"{}\" <a@x.org>",
                name.replace('\\', "\\\\").replace('"', "\\\"")
            )],
        ));
        assert_eq!(unfolded(&out, "To"), format!(" {expected}"), "{name:?}");
    }
    // Text that a reader would decode, even inside quotes, is encoded instead.
    let out = encode(Part::new().header("To", "\"=?utf-8?Q?x?=\" <a@x.org>"));
    let to = unfolded(&out, "To");
    assert_eq!(
        decode_2047(to.trim().rsplit_once(" <").unwrap().0),
        "=?utf-8?Q?x?="
    );
}
