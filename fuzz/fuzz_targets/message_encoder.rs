//! The message encoder (mime::message) driven by an arbitrary message tree: either
//! `MessageEncoder::new` refuses the tree with a `MessageError`, or every header block of the
//! output parses back to the intended fields (RFC 5322 unfolding, RFC 2047 decoding): the caller's
//! fields in order, then only the encoder's defaults; unstructured text decodes to exactly the
//! value given; no header line is over 998 octets, holds a bare CR or LF, or starts a field nobody
//! asked for (CVE-2024-6923, CVE-2026-1299, gh-143935, mail-builder's Bcc injection); and no header
//! value decodes, through an RFC 2047 encoded-word anywhere in it or an RFC 2231 `name*=`
//! parameter, to CR, LF or NUL.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mailpump::Filter;
use mailpump::mime::base64::Base64Decoder;
use mailpump::mime::eol::Normalize;
use mailpump::mime::message::{
    Body, HeaderValue, MessageEncoder, MessageOptions, Multipart, Part, TransferEncoding,
};
use mailpump::mime::qp::QpDecoder;

#[derive(Arbitrary, Debug)]
enum FName {
    Subject,
    Comments,
    Custom(u8),
    From,
    To,
    Bcc,
    /// Any name: the encoder must refuse the bad ones (CR, LF, NUL, ':' ...).
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum FValue {
    Text(String),
    Raw(Vec<u8>),
    Addresses(Vec<String>),
}

#[derive(Arbitrary, Debug)]
enum FBody {
    None,
    Text(String),
    Bytes(Vec<u8>),
    Multi {
        preamble: Option<String>,
        parts: Vec<FPart>,
        epilogue: Option<String>,
    },
}

#[derive(Arbitrary, Debug)]
struct FPart {
    headers: Vec<(FName, FValue)>,
    body: FBody,
    encoding: Option<u8>,
}

/// What the test expects of one part: the caller's fields and the body's children.
struct Expect {
    /// (lower-case name, the value to compare after decoding, if it is unstructured text).
    fields: Vec<(String, Option<String>)>,
    children: Option<Vec<Expect>>,
    /// A leaf's body as given, and whether it was text.
    leaf: Option<(Vec<u8>, bool)>,
}

const DEFAULTS: &[&str] = &[
    "date",
    "message-id",
    "mime-version",
    "x-mailer",
    "content-type",
    "content-transfer-encoding",
];

fn name_of(name: FName) -> String {
    match name {
        FName::Subject => "Subject".into(),
        FName::Comments => "comments".into(),
        FName::Custom(n) => format!("X-Fuzz-{}", n % 4),
        FName::From => "From".into(),
        FName::To => "To".into(),
        FName::Bcc => "Bcc".into(),
        FName::Any(s) => {
            // Headers that steer the encoder's own layout are left to the unit tests: a caller's
            // boundary may legitimately collide with a body.
            let lower = s.to_ascii_lowercase();
            if lower.starts_with("content-") || lower == "mime-version" {
                format!("X-{s}")
            } else {
                s
            }
        }
    }
}

/// Builds the mailpump tree and the expectations; `bodies` collects all literal body text.
fn build(p: FPart, depth: usize, bodies: &mut Vec<u8>) -> (Part, Expect) {
    let mut part = Part::new();
    let mut fields = Vec::new();
    for (name, value) in p.headers.into_iter().take(8) {
        let name = name_of(name);
        let lower = name.to_ascii_lowercase();
        let value = match value {
            FValue::Text(t) => HeaderValue::Text(t),
            FValue::Raw(b) => HeaderValue::Raw(b),
            FValue::Addresses(a) => HeaderValue::Addresses(a),
        };
        let unstructured =
            matches!(lower.as_str(), "subject" | "comments") || lower.starts_with("x-fuzz-");
        let check = match (&value, unstructured) {
            (HeaderValue::Text(t), true) => Some(t.clone()),
            (HeaderValue::Addresses(a), true) => Some(a.join(", ")),
            _ => None,
        };
        // An empty Bcc is dropped; a non-empty one is refused.
        if !(lower == "bcc" && value.is_empty()) {
            fields.push((lower, check));
        }
        part.headers.push((name, value));
    }
    part.encoding = p.encoding.and_then(|e| match e % 6 {
        0 => Some(TransferEncoding::Base64),
        1 => Some(TransferEncoding::QuotedPrintable),
        2 => Some(TransferEncoding::SevenBit),
        3 => Some(TransferEncoding::EightBit),
        4 => Some(TransferEncoding::Binary),
        _ => None,
    });
    let mut children = None;
    let mut leaf = None;
    part.body = match p.body {
        FBody::None => {
            leaf = Some((Vec::new(), false));
            Body::None
        }
        FBody::Text(t) => {
            bodies.extend_from_slice(t.as_bytes());
            leaf = Some((t.as_bytes().to_vec(), true));
            Body::Text(t)
        }
        FBody::Bytes(b) => {
            bodies.extend_from_slice(&b);
            leaf = Some((b.clone(), false));
            Body::Bytes(b)
        }
        FBody::Multi { .. } if depth >= 4 => {
            leaf = Some((Vec::new(), false));
            Body::None
        }
        FBody::Multi {
            preamble,
            parts,
            epilogue,
        } => {
            let mut kids = Vec::new();
            let mut expects = Vec::new();
            for child in parts.into_iter().take(6) {
                let (k, e) = build(child, depth + 1, bodies);
                kids.push(k);
                expects.push(e);
            }
            for t in preamble.iter().chain(&epilogue) {
                bodies.extend_from_slice(t.as_bytes());
            }
            children = Some(expects);
            Body::Multipart(Multipart {
                preamble,
                parts: kids,
                epilogue,
            })
        }
    };
    (
        part,
        Expect {
            fields,
            children,
            leaf,
        },
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a header block into (name, unfolded value) fields, checking each line.
fn parse_block(block: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    // UTF-8 only where RFC 6532 allows it (internationalised addresses); checked per field below.
    let text = std::str::from_utf8(block).expect("a header block is UTF-8");
    let body = text.strip_suffix("\r\n").expect("a block ends with CRLF");
    for line in body.split("\r\n") {
        assert!(line.len() <= 998, "a header line of {} octets", line.len());
        assert!(
            !line.contains(['\r', '\n', '\0']),
            "bare CR, LF or NUL in {line:?}"
        );
        if line.starts_with([' ', '\t']) {
            // RFC 5322 §2.2.3: unfolding removes the CRLF only.
            let last = fields
                .last_mut()
                .expect("a continuation line before any field");
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("a field line has a colon");
            fields.push((name.to_owned(), value.to_owned()));
        }
    }
    fields
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn b64(s: &str) -> Option<Vec<u8>> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = ALPHA.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Decodes one RFC 2047 encoded-word, or `None` if `w` is not one.
fn decode_word(w: &str) -> Option<Vec<u8>> {
    let inner = w.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut it = inner.splitn(3, '?');
    let (_charset, enc, text) = (it.next()?, it.next()?, it.next()?);
    if text.contains('?') || text.contains(' ') {
        return None;
    }
    match enc {
        "Q" | "q" => {
            let b = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' => {
                        out.push(hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            Some(out)
        }
        "B" | "b" => b64(text),
        _ => None,
    }
}

/// Whether some encoded-word anywhere in `value` (not only between spaces: readers also decode
/// them next to `<`, `"` or `(`) decodes to CR, LF or NUL.
fn hides_control_in_word(value: &str) -> bool {
    let mut from = 0;
    while let Some(start) = value[from..].find("=?").map(|i| from + i) {
        from = start + 2;
        let mut search = start + 2;
        while let Some(end) = value[search..].find("?=").map(|i| search + i + 2) {
            let candidate = &value[start..end];
            if candidate.contains([' ', '\t']) {
                break;
            }
            if let Some(bytes) = decode_word(candidate) {
                if bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                    return true;
                }
                break;
            }
            search = end - 1;
        }
    }
    false
}

/// Whether an RFC 2231 extended parameter (`name*=` or `name*0*=`) percent-encodes CR, LF or NUL.
fn hides_control_in_param(value: &str) -> bool {
    value.split(';').any(|param| {
        let Some((name, v)) = param.split_once('=') else {
            return false;
        };
        name.trim_end().ends_with('*')
            && v.as_bytes().windows(3).any(|w| {
                w[0] == b'%'
                    && hex(w[1]) == Some(0)
                    && matches!(hex(w[2]), Some(0 | 0xa | 0xd))
            })
    })
}

/// RFC 2047 §6.1/§6.2 decoding of an unstructured value (leading whitespace already removed).
fn decode_unstructured(value: &str) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut pending_ws = "";
    let mut prev_encoded = false;
    let mut rest = value;
    while !rest.is_empty() {
        let ws_end = rest.find(|c| c != ' ' && c != '\t').unwrap_or(rest.len());
        let ws = &rest[..ws_end];
        rest = &rest[ws_end..];
        if rest.is_empty() {
            pending_ws = ws;
            break;
        }
        let word_end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let word = &rest[..word_end];
        rest = &rest[word_end..];
        match decode_word(word) {
            Some(bytes) => {
                if !prev_encoded {
                    out.extend_from_slice(ws.as_bytes());
                }
                out.extend_from_slice(&bytes);
                prev_encoded = true;
            }
            None => {
                out.extend_from_slice(ws.as_bytes());
                out.extend_from_slice(word.as_bytes());
                prev_encoded = false;
            }
        }
    }
    out.extend_from_slice(pending_ws.as_bytes());
    String::from_utf8(out).expect("encoded-words hold whole UTF-8 characters")
}

fn boundary_of(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    let at = lower.find("boundary=")? + "boundary=".len();
    let rest = &content_type[at..];
    Some(if let Some(q) = rest.strip_prefix('"') {
        q[..q.find('"')?].to_owned()
    } else {
        rest.split([';', ' ', '\t']).next()?.to_owned()
    })
}

/// Checks one part (its header block at the start of `bytes`) against `expect`.
fn check(bytes: &[u8], expect: &Expect, top: bool, bodies: &[u8]) -> bool {
    let end = if bytes.starts_with(b"\r\n") {
        0
    } else {
        find(bytes, b"\r\n\r\n").expect("a header block ends with an empty line") + 2
    };
    let fields = parse_block(&bytes[..end]);
    for (name, value) in &fields {
        assert!(
            !hides_control_in_word(value) && !hides_control_in_param(value),
            "field {name} decodes to CR, LF or NUL: {value:?}"
        );
    }
    let body = &bytes[end + 2..];
    let names: Vec<String> = fields.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    assert!(
        names.len() >= expect.fields.len(),
        "fields {names:?}, expected {:?}",
        expect.fields
    );
    for ((name, value), (want, check)) in fields.iter().zip(&expect.fields) {
        assert_eq!(&name.to_ascii_lowercase(), want, "fields {names:?}");
        let address = matches!(want.as_str(), "from" | "to" | "cc" | "bcc");
        assert!(
            address || value.is_ascii(),
            "non-ASCII in field {name}: {value:?}"
        );
        if let Some(check) = check {
            let value = value.trim_start_matches([' ', '\t']);
            assert_eq!(
                &decode_unstructured(value),
                check,
                "field {name}: {value:?}"
            );
        }
    }
    let extra = &names[expect.fields.len()..];
    for (i, n) in extra.iter().enumerate() {
        assert!(
            DEFAULTS.contains(&n.as_str()),
            "field {n:?} that nobody asked for: {names:?}"
        );
        assert!(!extra[..i].contains(n), "default {n:?} twice");
        if !top {
            assert!(
                n.starts_with("content-"),
                "top-level default {n:?} in a part"
            );
        }
    }
    if let Some((given, text)) = &expect.leaf {
        check_body(&fields, body, given, *text);
    }
    let Some(children) = &expect.children else {
        return true;
    };
    let content_type = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .expect("a multipart has a Content-Type");
    let boundary = boundary_of(&content_type).expect("a multipart has a boundary");
    if find(bodies, boundary.as_bytes()).is_some() {
        // The fuzzer guessed the (seeded) boundary; with real random boundaries it cannot.
        return false;
    }
    let delim = format!("--{boundary}");
    let mut starts = Vec::new();
    let mut pos = 0;
    while let Some(i) = find(&body[pos..], delim.as_bytes()) {
        let at = pos + i;
        if at == 0 || body[..at].ends_with(b"\r\n") {
            starts.push(at);
        }
        pos = at + 1;
    }
    assert_eq!(starts.len(), children.len() + 1, "delimiters of {boundary}");
    let close = *starts.last().unwrap();
    assert!(
        body[close + delim.len()..].starts_with(b"--"),
        "close delimiter"
    );
    for (k, child) in children.iter().enumerate() {
        let from = starts[k] + delim.len();
        assert!(body[from..].starts_with(b"\r\n"), "delimiter line");
        let to = starts[k + 1] - 2;
        if !check(&body[from + 2..to.max(from + 2)], child, false, bodies) {
            return false;
        }
    }
    true
}

/// Runs a whole input through `filter`.
fn filtered(filter: &mut dyn Filter, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    filter.update(input, &mut out).expect("update");
    filter.finish(&mut out).expect("finish");
    out
}

/// A leaf body decoded by its Content-Transfer-Encoding is the body given (text in QP is
/// CRLF-normalised first, by the encoder's own `Normalize`, which the eol tests pin down).
fn check_body(fields: &[(String, String)], body: &[u8], given: &[u8], text: bool) {
    let cte = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-transfer-encoding"))
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    match cte.as_deref() {
        Some("base64") => {
            for line in body.split(|&b| b == b'\n') {
                assert!(line.len() <= 77, "a base64 line of {} octets", line.len());
            }
            assert_eq!(
                filtered(&mut Base64Decoder::new(), body),
                given,
                "base64 body"
            );
        }
        Some("quoted-printable") => {
            for line in body.split(|&b| b == b'\n') {
                assert!(line.len() <= 77, "a QP line of {} octets", line.len());
            }
            let want = if text {
                filtered(&mut Normalize::crlf(), given)
            } else {
                given.to_vec()
            };
            assert_eq!(filtered(&mut QpDecoder::new(), body), want, "QP body");
        }
        _ => assert_eq!(body, given, "a body written as given"),
    }
}

fuzz_target!(|root: FPart| {
    let mut bodies = Vec::new();
    let (part, expect) = build(root, 0, &mut bodies);
    let options = MessageOptions {
        seed: Some(7),
        timestamp: Some(1_700_000_000),
        zone: Some("+0000".into()),
        ..MessageOptions::default()
    };
    let Ok(mut encoder) = MessageEncoder::new(part, options) else {
        return;
    };
    let mut out = Vec::new();
    while let Some(chunk) = encoder.next_chunk().expect("a validated tree encodes") {
        out.extend_from_slice(chunk);
    }
    check(&out, &expect, true, &bodies);
});
