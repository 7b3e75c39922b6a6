//! Every deliberate difference between mailpump's filters and LuaSocket, with the reason.
//! Each test shows LuaSocket's result (docs/luasocket.md, or `mime.c`) next to ours.

use mailpump::mime::eol::Normalize;
use mailpump::mime::lowlevel::{eol, qp, unqp};
use mailpump::smtp::dotstuff::{DotStuff, WireEncoder};

use crate::support::run;

/// `smtp.send` sends `mime.stuff()` output, which leaves bare CR and LF alone: a body holding
/// `\n.\n` reaches the server as is, and a lenient next hop may take it for the end of data (SMTP
/// smuggling, CVE-2023-51764/5/6). The wire encoder makes every bare CR or LF a CRLF, and stuffs
/// the dot that then starts a line.
#[test]
fn wire_encoder_normalises_bare_line_breaks() {
    let body = b"a\n.\nb\r.\rc";
    assert_eq!(
        run(&mut DotStuff::new(), body),
        body,
        "LuaSocket: unchanged"
    );
    assert_eq!(
        run(&mut WireEncoder::new(), body),
        b"a\r\n..\r\nb\r\n..\r\nc\r\n.\r\n"
    );
}

/// `smtp.send` always writes `"\r\n.\r\n"` after the body, so a body that ends with CRLF (every
/// message `smtp.message` builds) gets an extra empty line before the terminator, and a body that
/// ends with a bare line break gets one that a strict server rejects. The wire encoder writes just
/// enough for the output to end with exactly one CRLF.CRLF.
#[test]
fn wire_encoder_adds_no_empty_line_before_the_terminator() {
    assert_eq!(
        run(&mut WireEncoder::new(), b"Subject: x\r\n\r\nbody\r\n"),
        b"Subject: x\r\n\r\nbody\r\n.\r\n"
    );
    assert_eq!(run(&mut WireEncoder::new(), b"body"), b"body\r\n.\r\n");
    assert_eq!(run(&mut WireEncoder::new(), b"body\n"), b"body\r\n.\r\n");
    assert_eq!(
        run(&mut WireEncoder::new(), b""),
        b".\r\n",
        "the DATA command's CRLF precedes it"
    );
}

/// LuaSocket's `eol` counts `"\r\r\n"` as three line breaks and `"\n\r"` as one (its manual admits
/// the counts are not guaranteed). On the wire, mailpump reads each CRLF, bare CR and bare LF as one
/// line break, as receiving servers do: `"\r\r\n"` is a CR then a CRLF, two breaks, and `"\n\r"` two
/// as well. `Normalize` itself keeps LuaSocket's rules.
#[test]
fn wire_encoder_counts_cr_crlf_as_two_breaks() {
    assert_eq!(
        run(&mut Normalize::crlf(), b"a\r\r\nb"),
        b"a\r\n\r\n\r\nb",
        "LuaSocket: three"
    );
    assert_eq!(
        run(&mut WireEncoder::new(), b"a\r\r\nb"),
        b"a\r\n\r\nb\r\n.\r\n"
    );
    assert_eq!(
        run(&mut Normalize::crlf(), b"a\n\rb"),
        b"a\r\nb",
        "LuaSocket: one"
    );
    assert_eq!(
        run(&mut WireEncoder::new(), b"a\n\rb"),
        b"a\r\n\r\nb\r\n.\r\n"
    );
}

/// `mime.unqp` tests the first byte of its result instead of its length (`mime.c`:
/// `if (!(*lua_tostring(L, -1))) lua_pushnil(L)`), so a decoded text starting with NUL comes back
/// as nil and is lost; the same bug was fixed in `unb64` (LuaSocket's CHANGELOG). mailpump returns
/// nil only for an empty result.
#[test]
fn unqp_keeps_a_result_that_starts_with_nul() {
    assert_eq!(unqp(Some(b"=00abc"), None).0, Some(b"\0abc".to_vec()));
    assert_eq!(
        unqp(Some(b"=\r\n"), None).0,
        None,
        "an empty result is still nil"
    );
}

/// LuaSocket reads the `marker` argument of `qp` and `eol` as a C string, so a marker holding NUL
/// is cut there. mailpump uses every byte of the marker.
#[test]
fn markers_may_hold_nul() {
    assert_eq!(eol(0, Some(b"a\nb"), b"<\0>").0, Some(b"a<\0>b".to_vec()));
    assert_eq!(
        qp(Some(b"a\r\nb"), None, b"<\0>").0,
        Some(b"a<\0>b".to_vec())
    );
}
