//! The capability parser (smtp::capability): any EHLO reply the reply parser accepts gives a
//! consistent capability set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpump::smtp::capability::Capabilities;
use mailpump::smtp::reply::{Parsed, Reply, ReplyParser};

fuzz_target!(|input: (Vec<u8>, Vec<String>)| {
    let (buf, lines) = input;
    // Through the wire parser, as the client reads it.
    if let Ok(Parsed::Complete { reply, .. }) = ReplyParser::new().parse(&buf) {
        check(&reply);
    }
    // And straight from arbitrary lines.
    if !lines.is_empty() {
        check(&Reply::new(250, lines));
    }
});

fn check(reply: &Reply) {
    let caps = Capabilities::from_ehlo(reply);
    for k in caps.keywords() {
        assert!(caps.has(k), "keyword {k:?} listed but not found");
        assert!(
            caps.has(&k.to_ascii_lowercase()),
            "keywords are case-insensitive"
        );
        assert!(caps.params(k).is_some());
    }
    assert_eq!(caps.pipelining, caps.has("PIPELINING"));
    assert_eq!(caps.starttls, caps.has("STARTTLS"));
    assert_eq!(caps.size.is_some(), caps.has("SIZE"));
    assert_eq!(caps.size_limit(), caps.size.flatten());
    // Deterministic.
    assert_eq!(caps, Capabilities::from_ehlo(reply));
}
