//! Property tests for the streaming filters: every split of the input gives the same bytes as a
//! byte-at-a-time transcription of LuaSocket's C code (the oracles below), decoders invert
//! encoders, wrappers respect their limits, and the wire encoder is transparent.

use mailpump::Filter;
use mailpump::mime::base64::{Base64Decoder, Base64Encoder, Base64LineEncoder};
use mailpump::mime::eol::Normalize;
use mailpump::mime::lowlevel;
use mailpump::mime::qp::{QpDecoder, QpEncoder, QpMode};
use mailpump::mime::wrap::{LineWrap, QpWrap};
use mailpump::smtp::dotstuff::{DotStuff, WireEncoder};
use proptest::prelude::*;

use crate::support::{base64_value, run_split};

// ---- Oracles: LuaSocket's `mime.c`, one byte at a time, written as plainly as possible. ----

fn oracle_b64(input: &[u8]) -> Vec<u8> {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for group in input.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = [18, 12, 6, 0].map(|shift| ABC[((v >> shift) & 63) as usize]);
        let keep = group.len() + 1;
        out.extend_from_slice(&chars[..keep]);
        out.extend(std::iter::repeat_n(b'=', 4 - keep));
    }
    out
}

/// A base64 character's value; `mime.c` counts `=` as 0.
fn unbase(c: u8) -> Option<u32> {
    if c == b'=' { Some(0) } else { base64_value(c) }
}

/// Returns the output and the held characters.
fn oracle_unb64(input: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    let mut atom = Vec::new();
    for &c in input {
        if unbase(c).is_none() {
            continue;
        }
        atom.push(c);
        if atom.len() == 4 {
            let v = atom.iter().fold(0, |v, &c| (v << 6) | unbase(c).unwrap());
            let valid = if atom[2] == b'=' {
                1
            } else if atom[3] == b'=' {
                2
            } else {
                3
            };
            out.extend_from_slice(&v.to_be_bytes()[1..=valid]);
            atom.clear();
        }
    }
    (out, atom)
}

fn is_plain(c: u8) -> bool {
    (33..=60).contains(&c) || (62..=126).contains(&c)
}

fn q(c: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("={c:02X}").as_bytes());
}

/// Returns the output and the held bytes (before padding).
fn oracle_qp(input: &[u8], marker: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    let mut atom: Vec<u8> = Vec::new();
    for &c in input {
        atom.push(c);
        while !atom.is_empty() {
            match atom[0] {
                b'\r' => {
                    if atom.len() < 2 {
                        break;
                    }
                    if atom[1] == b'\n' {
                        out.extend_from_slice(marker);
                        atom.clear();
                        break;
                    }
                    q(b'\r', &mut out);
                }
                b'\t' | b' ' => {
                    if atom.len() < 3 {
                        break;
                    }
                    if atom[1] == b'\r' && atom[2] == b'\n' {
                        q(atom[0], &mut out);
                        out.extend_from_slice(marker);
                        atom.clear();
                        break;
                    }
                    out.push(atom[0]);
                }
                c if is_plain(c) => out.push(c),
                c => q(c, &mut out),
            }
            atom.remove(0);
        }
    }
    (out, atom)
}

fn oracle_qp_padded(input: &[u8], marker: &[u8]) -> Vec<u8> {
    let (mut out, atom) = oracle_qp(input, marker);
    for &c in &atom {
        if is_plain(c) {
            out.push(c);
        } else {
            q(c, &mut out);
        }
    }
    if !atom.is_empty() {
        out.extend_from_slice(b"=\r\n");
    }
    out
}

fn oracle_unqp(input: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::new();
    let mut atom: Vec<u8> = Vec::new();
    for &c in input {
        atom.push(c);
        match atom[0] {
            b'=' => {
                if atom.len() < 3 {
                    continue;
                }
                if atom[1..] != *b"\r\n" {
                    match (hex(atom[1]), hex(atom[2])) {
                        (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                        _ => out.extend_from_slice(&atom),
                    }
                }
            }
            b'\r' => {
                if atom.len() < 2 {
                    continue;
                }
                if atom[1] == b'\n' {
                    out.extend_from_slice(b"\r\n");
                }
            }
            c => {
                if c == b'\t' || (32..127).contains(&c) {
                    out.push(c);
                }
            }
        }
        atom.clear();
    }
    (out, atom)
}

fn oracle_wrp(input: &[u8], length: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = length;
    for &c in input {
        match c {
            b'\r' => {}
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                left = length;
            }
            _ => {
                if left <= 0 {
                    out.extend_from_slice(b"\r\n");
                    left = length;
                }
                out.push(c);
                left -= 1;
            }
        }
    }
    if left < length {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn oracle_qpwrp(input: &[u8], length: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = length;
    for &c in input {
        match c {
            b'\r' => {}
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                left = length;
            }
            _ => {
                if left <= if c == b'=' { 3 } else { 1 } {
                    out.extend_from_slice(b"=\r\n");
                    left = length;
                }
                out.push(c);
                left -= 1;
            }
        }
    }
    if left < length {
        out.extend_from_slice(b"=\r\n");
    }
    out
}

fn oracle_eol(input: &[u8], marker: &[u8]) -> (Vec<u8>, u8) {
    let cand = |c: u8| c == b'\r' || c == b'\n';
    let mut out = Vec::new();
    let mut last = 0;
    for &c in input {
        if cand(c) {
            if cand(last) {
                if c == last {
                    out.extend_from_slice(marker);
                }
                last = 0;
            } else {
                out.extend_from_slice(marker);
                last = c;
            }
        } else {
            out.push(c);
            last = 0;
        }
    }
    (out, last)
}

fn oracle_dot(input: &[u8]) -> (Vec<u8>, i64) {
    let mut out = Vec::new();
    let mut state = 2;
    for &c in input {
        out.push(c);
        state = match c {
            b'\r' => 1,
            b'\n' if state == 1 => 2,
            b'.' => {
                if state == 2 {
                    out.push(b'.');
                }
                0
            }
            _ => 0,
        };
    }
    (out, state)
}

/// The wire encoding as specified: split into lines at CRLF, CR or LF; stuff; terminate.
fn oracle_wire(input: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = vec![Vec::new()];
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => {
                lines.push(Vec::new());
                i += 1;
            }
            b'\r' | b'\n' => lines.push(Vec::new()),
            c => lines.last_mut().unwrap().push(c),
        }
        i += 1;
    }
    let mut out = Vec::new();
    let last = lines.len() - 1;
    for (n, line) in lines.iter().enumerate() {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        if n < last {
            out.extend_from_slice(b"\r\n");
        }
    }
    if out.is_empty() || out.ends_with(b"\r\n") {
        out.extend_from_slice(b".\r\n");
    } else {
        out.extend_from_slice(b"\r\n.\r\n");
    }
    out
}

// ---- Helpers ----

/// Feeds `input` cut at the given points (sorted, clamped), then finishes.
fn run_cuts(filter: &mut dyn Filter, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        filter.update(&input[start..c], &mut out).unwrap();
        start = c;
    }
    filter.update(&input[start..], &mut out).unwrap();
    filter.finish(&mut out).unwrap();
    out
}

const SIZES: [&[usize]; 6] = [&[1], &[2], &[3], &[76], &[4096], &[0, 5, 1, 64, 2]];

/// Checks that `make()` gives `expected` for every split of `input`, and that one filter reused
/// after `finish` gives it again.
fn check_splits(make: &dyn Fn() -> Box<dyn Filter>, input: &[u8], cuts: &[usize], expected: &[u8]) {
    let mut reused = make();
    for sizes in SIZES {
        let fresh = run_split(&mut *make(), input, sizes);
        prop_assert_eq_bytes(&fresh, expected, &format!("sizes {sizes:?}"));
        let again = run_split(&mut *reused, input, sizes);
        prop_assert_eq_bytes(&again, expected, &format!("reused, sizes {sizes:?}"));
    }
    prop_assert_eq_bytes(
        &run_cuts(&mut *make(), input, cuts),
        expected,
        "random cuts",
    );
}

fn prop_assert_eq_bytes(got: &[u8], expected: &[u8], what: &str) {
    assert!(
        got == expected,
        "{what}:\n  got      {:?}\n  expected {:?}",
        String::from_utf8_lossy(got),
        String::from_utf8_lossy(expected)
    );
}

/// Bytes biased towards what the filters treat specially.
fn texty() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => prop::sample::select(b"abcXYZ019+/".to_vec()),
        2 => Just(b' '),
        1 => Just(b'\t'),
        2 => Just(b'\r'),
        2 => Just(b'\n'),
        2 => Just(b'.'),
        2 => Just(b'='),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..600)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![texty(), prop::collection::vec(any::<u8>(), 0..600)]
}

/// Piece sizes for `run_split`; the final 1 makes sure the input is consumed.
fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..200, 0..8).prop_map(|mut v| {
        v.push(1);
        v
    })
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..12)
}

/// The CRLF-normalised form of `input` (each of CRLF, CR, LF is one break).
fn crlf_lines(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(crate::support::proptest_config(256))]

    #[test]
    fn base64_encoder(input in bytes(), cuts in cuts()) {
        check_splits(&|| Box::new(Base64Encoder::new()), &input, &cuts, &oracle_b64(&input));
    }

    #[test]
    fn base64_line_encoder_is_encoder_then_wrap(input in bytes(), cuts in cuts(), len in prop_oneof![Just(76usize), 0usize..100]) {
        let expected = oracle_wrp(&oracle_b64(&input), i64::try_from(len).unwrap());
        check_splits(&|| Box::new(Base64LineEncoder::new(len)), &input, &cuts, &expected);
    }

    #[test]
    fn base64_decoder(input in prop_oneof![texty(), bytes().prop_map(|b| oracle_wrp(&oracle_b64(&b), 76))], cuts in cuts()) {
        check_splits(&|| Box::new(Base64Decoder::new()), &input, &cuts, &oracle_unb64(&input).0);
    }

    #[test]
    fn base64_round_trip(input in prop::collection::vec(any::<u8>(), 0..3000), len in 1usize..100, sizes in sizes()) {
        let encoded = run_split(&mut Base64LineEncoder::new(len), &input, &sizes);
        prop_assert!(encoded.split(|&c| c == b'\n').all(|l| l.len() <= len + 1));
        prop_assert_eq!(run_split(&mut Base64Decoder::new(), &encoded, &sizes), input);
    }

    #[test]
    fn qp_encoder(input in bytes(), cuts in cuts()) {
        check_splits(&|| Box::new(QpEncoder::new(QpMode::Text)), &input, &cuts, &oracle_qp_padded(&input, b"\r\n"));
        check_splits(&|| Box::new(QpEncoder::new(QpMode::Binary)), &input, &cuts, &oracle_qp_padded(&input, b"=0D=0A"));
    }

    #[test]
    fn qp_decoder(input in bytes(), cuts in cuts()) {
        check_splits(&|| Box::new(QpDecoder::new()), &input, &cuts, &oracle_unqp(&input).0);
    }

    #[test]
    fn qp_round_trips(input in bytes(), sizes in sizes()) {
        // Binary mode: any bytes.
        let mut chain = mailpump::Chain::new(vec![Box::new(QpEncoder::new(QpMode::Binary)), Box::new(QpWrap::new(76))]);
        let encoded = run_split(&mut chain, &input, &sizes);
        prop_assert_eq!(run_split(&mut QpDecoder::new(), &encoded, &sizes), input.clone());
        // Text mode: CRLF-normalised text (LuaSocket's rules make any bytes round-trip, too).
        let text = crlf_lines(&input);
        let mut chain = mailpump::Chain::new(vec![Box::new(QpEncoder::new(QpMode::Text)), Box::new(QpWrap::new(76))]);
        let encoded = run_split(&mut chain, &text, &sizes);
        prop_assert_eq!(run_split(&mut QpDecoder::new(), &encoded, &sizes), text);
    }

    #[test]
    fn line_wrap(input in bytes(), cuts in cuts(), len in prop_oneof![Just(76usize), 0usize..100]) {
        let expected = oracle_wrp(&input, i64::try_from(len).unwrap());
        check_splits(&|| Box::new(LineWrap::new(len)), &input, &cuts, &expected);
        if len > 0 {
            prop_assert!(expected.split(|&c| c == b'\n').all(|l| l.len() <= len + 1));
        }
    }

    #[test]
    fn qp_wrap(input in bytes(), cuts in cuts(), len in prop_oneof![Just(76usize), 0usize..100]) {
        let expected = oracle_qpwrp(&input, i64::try_from(len).unwrap());
        check_splits(&|| Box::new(QpWrap::new(len)), &input, &cuts, &expected);
    }

    #[test]
    fn qp_wrap_limits_lines_and_keeps_escapes(input in bytes(), len in 4usize..100, sizes in sizes()) {
        let mut chain = mailpump::Chain::new(vec![Box::new(QpEncoder::new(QpMode::Text)), Box::new(QpWrap::new(len))]);
        let encoded = run_split(&mut chain, &input, &sizes);
        for line in encoded.split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            prop_assert!(line.len() <= len, "line of {} > {}", line.len(), len);
            // A soft break is a lone `=` at the end; an escape is never cut by it.
            let body = line.strip_suffix(b"=").unwrap_or(line);
            let mut i = 0;
            while i < body.len() {
                if body[i] == b'=' {
                    prop_assert!(body.len() >= i + 3, "escape cut in {:?}", String::from_utf8_lossy(line));
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
    }

    #[test]
    fn normalize(input in bytes(), cuts in cuts(), marker in prop::sample::select(vec![&b"\r\n"[..], b"\n", b"<EOL>"])) {
        check_splits(&|| Box::new(Normalize::new(marker)), &input, &cuts, &oracle_eol(&input, marker).0);
    }

    #[test]
    fn dot_stuff(input in bytes(), cuts in cuts()) {
        check_splits(&|| Box::new(DotStuff::new()), &input, &cuts, &oracle_dot(&input).0);
    }

    #[test]
    fn wire_encoder(input in bytes(), cuts in cuts()) {
        let expected = oracle_wire(&input);
        check_splits(&|| Box::new(WireEncoder::new()), &input, &cuts, &expected);
        // As the server sees it, after the CRLF that ends the DATA command.
        let mut wire = b"\r\n".to_vec();
        wire.extend_from_slice(&expected);
        for (i, &c) in wire.iter().enumerate() {
            prop_assert!(c != b'\r' || wire.get(i + 1) == Some(&b'\n'), "bare CR at {}", i);
            prop_assert!(c != b'\n' || (i > 0 && wire[i - 1] == b'\r'), "bare LF at {}", i);
        }
        let ends: Vec<usize> = wire.windows(5).enumerate().filter(|(_, w)| *w == b"\r\n.\r\n").map(|(i, _)| i).collect();
        prop_assert_eq!(ends, vec![wire.len() - 5]);
        // Un-stuffing gives back the CRLF-normalised input (plus the final line break).
        let body = &wire[2..wire.len() - 3];
        let mut unstuffed = Vec::new();
        for line in body.split_inclusive(|&c| c == b'\n') {
            unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        let mut normal = crlf_lines(&input);
        if !normal.is_empty() && !normal.ends_with(b"\r\n") {
            normal.extend_from_slice(b"\r\n");
        }
        prop_assert_eq!(unstuffed, normal);
    }

    #[test]
    fn wire_encoder_counts(input in bytes(), sizes in sizes()) {
        let mut wire = WireEncoder::new();
        for _ in 0..2 {
            let out = run_split(&mut wire, &input, &sizes);
            prop_assert_eq!(wire.bytes_in(), input.len() as u64);
            prop_assert_eq!(wire.bytes_out(), out.len() as u64);
        }
    }

    #[test]
    fn lowlevel_held_bytes_match_luasocket(a in bytes(), b in bytes()) {
        let mut ab = a.clone();
        ab.extend_from_slice(&b);
        let (out, held) = lowlevel::qp(Some(&a), Some(&b), b"\r\n");
        let (o, h) = oracle_qp(&ab, b"\r\n");
        prop_assert_eq!((out.unwrap(), held.unwrap()), (o, h));
        let (out, held) = lowlevel::unqp(Some(&a), Some(&b));
        prop_assert_eq!((out.unwrap(), held.unwrap()), oracle_unqp(&ab));
        let (out, held) = lowlevel::unb64(Some(&a), Some(&b));
        prop_assert_eq!((out.unwrap(), held.unwrap()), oracle_unb64(&ab));
        let whole = ab.len() - ab.len() % 3;
        let (out, held) = lowlevel::b64(Some(&a), Some(&b));
        prop_assert_eq!((out.unwrap(), held.unwrap()), (oracle_b64(&ab[..whole]), ab[whole..].to_vec()));
        let (out, state) = lowlevel::dot(2, Some(&ab));
        prop_assert_eq!((out.unwrap(), state), oracle_dot(&ab));
        let (out, ctx) = lowlevel::eol(0, Some(&ab), b"\r\n");
        prop_assert_eq!((out.unwrap(), ctx), oracle_eol(&ab, b"\r\n"));
    }
}
