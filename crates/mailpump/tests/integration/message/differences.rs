//! Every deliberate difference between mailpump's `message()` and LuaSocket's `smtp.message`, with
//! the reason. Each test names LuaSocket's behaviour (docs/luasocket.md §1) next to what we produce.
//! (The filters' differences are in `filters::differences`.)

use mailpump::mime::message::{MessageEncoder, MessageOptions, Multipart, Part};

use crate::support;

/// Reproducible options: fixed time, zone and randomness.
fn fixed() -> MessageOptions {
    support::fixed("+0200", 7)
}

fn encode(part: Part) -> String {
    String::from_utf8(support::read_message(part, fixed())).unwrap()
}

fn header_block(message: &str) -> &str {
    &message[..message.find("\r\n\r\n").unwrap() + 2]
}

/// LuaSocket writes headers in `pairs()` order, which changes from run to run under Lua 5.4, and
/// unknown names all in lower case. Order carries meaning for readers (and for DKIM), so we keep
/// the caller's; unknown names are written in the Train-Case every mail program uses.
#[test]
fn headers_keep_their_order_and_unknown_names_are_train_case() {
    let message = encode(
        Part::new()
            .header("subject", "s")
            .header("x-custom-header", "1")
            .header("from", "a@example.com")
            .body("x"),
    );
    let block = header_block(&message);
    let subject = block.find("Subject: s").unwrap();
    let custom = block.find("X-Custom-Header: 1").unwrap();
    let from = block.find("From: a@example.com").unwrap();
    assert!(subject < custom && custom < from, "{block}");
}

/// LuaSocket labels UTC wall-clock time with `ZONE` (`-0000` by default), so `zone = "+0200"`
/// gives a time two hours off. We convert the time to the zone we write (or use the real local
/// offset); and we add a `Message-ID`, which RFC 5322 §3.6.4 asks every message to have.
#[test]
fn the_date_is_in_the_zone_it_names_and_a_message_id_is_added() {
    let message = encode(Part::new().body("x"));
    // 1_700_000_000 is 22:13:20 UTC; LuaSocket would write "22:13:20 +0200".
    assert!(
        message.contains("Date: Wed, 15 Nov 2023 00:13:20 +0200\r\n"),
        "{message}"
    );
    assert!(message.contains("Message-ID: <"), "{message}");
}

/// LuaSocket replaces a caller's `MIME-Version` and always appends a new boundary to a multipart
/// Content-Type, even one that already has a boundary (giving two). We keep what the caller wrote.
#[test]
fn the_callers_mime_version_and_boundary_are_kept() {
    let message = encode(
        Part::new()
            .header("MIME-Version", "1.0 (produced by a test)")
            .header("Content-Type", "multipart/alternative; boundary=\"given\"")
            .body(Multipart::new(vec![Part::new().body("a")])),
    );
    assert!(message.contains("MIME-Version: 1.0 (produced by a test)\r\n"));
    assert_eq!(message.matches("boundary=").count(), 1, "{message}");
    assert!(message.contains("\r\n--given\r\n") && message.contains("\r\n--given--\r\n"));
}

/// LuaSocket's boundary is the local time, a 5-digit `math.random` (never seeded) and a counter:
/// guessable, so content can forge a delimiter. Ours carries 160 random bits.
#[test]
fn boundaries_are_random_not_clock_based() {
    let message = encode(Part::new().body(Multipart::new(vec![Part::new().body("a")])));
    let start = message.find("boundary=\"").unwrap() + "boundary=\"".len();
    let boundary = &message[start..start + message[start..].find('"').unwrap()];
    assert!(boundary.len() >= 32 && boundary.len() <= 70, "{boundary}");
}

/// LuaSocket writes an empty line after the preamble, `--b--\r\n\r\n` after the last part and
/// `\r\n` after the epilogue, so a parser reads back a preamble and an epilogue with extra line
/// breaks. Our layout (RFC 2046 §5.1.1) gives back exactly the text given.
#[test]
fn preamble_and_epilogue_come_back_unchanged() {
    let message = encode(
        Part::new()
            .header("Content-Type", "multipart/mixed; boundary=\"b\"")
            .body(
                Multipart::new(vec![Part::new().body("a")])
                    .preamble("pre")
                    .epilogue("post"),
            ),
    );
    let body = &message[message.find("\r\n\r\n").unwrap() + 4..];
    assert!(body.starts_with("pre\r\n--b\r\n"), "{body:?}");
    assert!(body.ends_with("\r\n--b--\r\npost"), "{body:?}");
}

/// LuaSocket ends the whole message at a part with no body (a nil yields end of data), losing the
/// later parts and the closing delimiter. We write an empty part and go on.
#[test]
fn a_part_without_body_does_not_end_the_message() {
    let message = encode(
        Part::new()
            .header("Content-Type", "multipart/mixed; boundary=\"b\"")
            .body(Multipart::new(vec![Part::new(), Part::new().body("after")])),
    );
    assert!(
        message.contains("after") && message.ends_with("--b--\r\n"),
        "{message:?}"
    );
}

/// LuaSocket writes header values verbatim: CR or LF in a value injects headers, and non-ASCII
/// text goes out raw; it also writes a `Bcc` header, which shows the blind copies to everyone.
/// We refuse controls (a `Bcc` is left out of what is sent), encode non-ASCII words (RFC 2047) and fold long lines
/// (RFC 5322 §2.2.3); and text defaults to `charset="utf-8"` where LuaSocket says iso-8859-1,
/// because Python and Rust strings are Unicode.
#[test]
fn header_values_are_checked_encoded_and_folded() {
    assert!(MessageEncoder::new(Part::new().header("Subject", "a\r\nBcc: x"), fixed()).is_err());
    let message = encode(
        Part::new()
            .header("Subject", "Relatório ".repeat(20))
            .body("x"),
    );
    let block = header_block(&message);
    assert!(block.contains("=?utf-8?"), "{block}");
    assert!(block.lines().all(|l| l.len() <= 78), "{block}");
    assert!(message.contains("Content-Type: text/plain; charset=\"utf-8\""));
}
