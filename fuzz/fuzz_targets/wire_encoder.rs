//! The SMTP DATA wire pipeline (smtp::dotstuff::WireEncoder): for any body and any split of it,
//! the output has no bare CR or LF, exactly one end-of-data mark at the very end, and un-stuffing
//! it as a strict RFC 5321 server does gives back the CRLF-normalised body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpump::smtp::dotstuff::WireEncoder;

/// The body with every CRLF, bare CR and bare LF written as CRLF (the encoder's reading).
fn normalise(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn encode(body: &[u8], cuts: &[u8]) -> Vec<u8> {
    let mut encoder = WireEncoder::new();
    let mut out = Vec::new();
    let mut rest = body;
    for &c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = usize::from(c).min(rest.len());
        encoder.encode(&rest[..n], &mut out);
        rest = &rest[n..];
    }
    encoder.encode(rest, &mut out);
    encoder.end(&mut out);
    assert_eq!(encoder.bytes_in(), body.len() as u64);
    assert_eq!(encoder.bytes_out(), out.len() as u64);
    out
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (body, cuts) = input;
    let wire = encode(&body, &cuts);
    // Split invariance: the same bytes as one call.
    assert_eq!(wire, encode(&body, &[]));
    // No bare CR or LF.
    for (i, &b) in wire.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(wire.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => assert!(i > 0 && wire[i - 1] == b'\r', "bare LF at {i}"),
            _ => {}
        }
    }
    // A strict server: lines after the DATA command's CRLF; the first line that is "." ends the data.
    let mut content = Vec::new();
    let mut pos = 0;
    let mut ended_at = None;
    while pos < wire.len() {
        let len = wire[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("every line ends with CRLF");
        let line = &wire[pos..pos + len];
        pos += len + 2;
        if line == b"." {
            ended_at = Some(pos);
            break;
        }
        // RFC 5321 §4.5.2: a leading dot is removed.
        content.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        content.extend_from_slice(b"\r\n");
    }
    assert_eq!(
        ended_at,
        Some(wire.len()),
        "the end-of-data mark is not (only) at the end"
    );
    let mut want = normalise(&body);
    if !want.is_empty() && !want.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    assert_eq!(
        content, want,
        "un-stuffed content differs from the normalised body"
    );
});
