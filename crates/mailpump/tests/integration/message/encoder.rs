//! The message encoder: golden outputs, streaming behaviour and defaults.

use std::io::Read;
use std::sync::{Arc, Mutex};

use mailpump::mime::message::{
    Body, MessageEncoder, MessageOptions, Multipart, Part, TransferEncoding,
};
use mailpump::source::Source;
use mailpump::{BoxError, Error};

use crate::support::{self, read_message as encode};

/// Options that make the output reproducible: fixed time, zone and randomness.
fn fixed() -> MessageOptions {
    support::fixed("+0000", 42)
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn mailer() -> String {
    format!("X-Mailer: mailpump {}\r\n", env!("CARGO_PKG_VERSION"))
}

#[test]
fn golden_simple_message() {
    let part = Part::new()
        .header("from", "Alice <alice@example.com>")
        .header("TO", "bob@example.org")
        .header("subject", "Hello")
        .body("Hi Bob,\r\nbye.\r\n");
    let out = encode(part, fixed());
    let expected = format!(
        "From: Alice <alice@example.com>\r\n\
         To: bob@example.org\r\n\
         Subject: Hello\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
         Message-ID: <MSGID@example.com>\r\n\
         MIME-Version: 1.0\r\n\
         {}\
         Content-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n\
         Hi Bob,\r\nbye.\r\n",
        mailer()
    );
    assert_eq!(
        text(&out),
        expected.replace("MSGID", "956eeb2f2632d7bd03f166b233e3ef28")
    );
}

/// The nested multipart of docs/luasocket.md §1.7, in mailpump's layout.
fn nested() -> Part {
    let inner = Multipart::new(vec![
        Part::new()
            .header("Content-Type", "text/plain")
            .body("nested 1"),
        Part::new().body(b"nested 2\r\n".to_vec()),
    ])
    .epilogue("nested epilogue");
    Part::new()
        .header("Subject", "multipart test")
        .header(
            "Content-Type",
            "multipart/alternative; boundary=\"outer-boundary\"",
        )
        .body(
            Multipart::new(vec![
                Part::new().body(Body::Bytes(b"plain part".to_vec())),
                Part::new()
                    .header("Content-Type", "text/html")
                    .header("Content-Transfer-Encoding", "8bit")
                    .body(Body::Source(Box::new(ChunkedSource::new(vec![
                        b"<p>chunk1 ".to_vec(),
                        b"chunk2</p>".to_vec(),
                    ])))),
                Part::new().body(inner),
                Part::text("Grüße", "plain"),
                Part::attachment(b"\x00\x01\x02\xff".to_vec(), Some("data.bin"), None).unwrap(),
            ])
            .preamble("This is the preamble.")
            .epilogue("This is the epilogue.\r\n"),
        )
}

#[test]
fn golden_nested_multipart() {
    let out = encode(nested(), fixed());
    let expected = "Subject: multipart test\r\n\
        Content-Type: multipart/alternative; boundary=\"outer-boundary\"\r\n\
        Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
        Message-ID: <MSGID@localhost>\r\n\
        MIME-Version: 1.0\r\n\
        MAILER\
        \r\n\
        This is the preamble.\r\n\
        --outer-boundary\r\n\
        Content-Type: text/plain; charset=\"utf-8\"\r\n\
        \r\n\
        plain part\r\n\
        --outer-boundary\r\n\
        Content-Type: text/html\r\n\
        Content-Transfer-Encoding: 8bit\r\n\
        \r\n\
        <p>chunk1 chunk2</p>\r\n\
        --outer-boundary\r\n\
        Content-Type: multipart/mixed;\r\n boundary=\"INNER\"\r\n\
        \r\n\
        --INNER\r\n\
        Content-Type: text/plain\r\n\
        Content-Transfer-Encoding: 7bit\r\n\
        \r\n\
        nested 1\r\n\
        --INNER\r\n\
        Content-Type: text/plain; charset=\"utf-8\"\r\n\
        \r\n\
        nested 2\r\n\r\n\
        --INNER--\r\n\
        nested epilogue\r\n\
        --outer-boundary\r\n\
        Content-Type: text/plain; charset=\"utf-8\"\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        Gr=C3=BC=C3=9Fe=\r\n\
        \r\n\
        --outer-boundary\r\n\
        Content-Type: application/octet-stream\r\n\
        Content-Disposition: attachment; filename=\"data.bin\"\r\n\
        Content-Transfer-Encoding: base64\r\n\
        \r\n\
        AAEC/w==\r\n\
        \r\n\
        --outer-boundary--\r\n\
        This is the epilogue.\r\n"
        .replace("MAILER", &mailer())
        .replace("MSGID", "956eeb2f2632d7bd03f166b233e3ef28")
        .replace("INNER", "=_529f0f135767524794e34a0effe11c58f2234824");
    assert_eq!(text(&out), expected);
}

/// A source handing out the given chunks, one per pull.
struct ChunkedSource {
    chunks: std::vec::IntoIter<Vec<u8>>,
}

impl ChunkedSource {
    fn new(chunks: Vec<Vec<u8>>) -> Self {
        Self {
            chunks: chunks.into_iter(),
        }
    }
}

impl Source for ChunkedSource {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        match self.chunks.next() {
            Some(chunk) => {
                out.extend_from_slice(&chunk);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Zeros copied from a static block: `Vec::resize` writes byte by byte in debug builds.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A source of `total` zero bytes in `chunk`-byte pulls that counts its pulls.
struct Zeros {
    left: u64,
    chunk: usize,
    pulls: Arc<Mutex<usize>>,
}

impl Source for Zeros {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        *self.pulls.lock().unwrap() += 1;
        if self.left == 0 {
            return Ok(false);
        }
        let n = self.left.min(self.chunk as u64) as usize;
        out.extend_from_slice(&ZEROS[..n]);
        self.left -= n as u64;
        Ok(true)
    }
}

#[test]
fn a_gigabyte_body_streams_in_bounded_chunks() {
    const GIB: u64 = 1 << 30;
    let pulls = Arc::new(Mutex::new(0));
    let source = Zeros {
        left: GIB,
        chunk: 64 * 1024,
        pulls: Arc::clone(&pulls),
    };
    let part = Part::new()
        .body(Body::Source(Box::new(source)))
        .encoding(TransferEncoding::Binary);
    let mut encoder = MessageEncoder::new(part, MessageOptions::default()).unwrap();
    let (mut total, mut largest, mut chunks) = (0u64, 0usize, 0u64);
    while let Some(chunk) = encoder.next_chunk().unwrap() {
        total += chunk.len() as u64;
        largest = largest.max(chunk.len());
        chunks += 1;
    }
    assert!(total > GIB && total < GIB + 4096, "{total}");
    // Chunks never exceed the chunk size, and the source is pulled once per chunk of output:
    // the body streams, memory does not grow with it.
    assert_eq!(largest, 64 * 1024);
    assert!(chunks > GIB / (64 * 1024));
    assert_eq!(*pulls.lock().unwrap(), 16 * 1024 + 1);
}

#[test]
fn sources_are_pulled_only_as_output_is_needed() {
    let pulls = Arc::new(Mutex::new(0));
    let source = Zeros {
        left: 1 << 24,
        chunk: 1024,
        pulls: Arc::clone(&pulls),
    };
    let part = Part::new()
        .body(Body::Source(Box::new(source)))
        .encoding(TransferEncoding::Base64);
    let options = MessageOptions {
        chunk_size: 4096,
        ..MessageOptions::default()
    };
    let mut encoder = MessageEncoder::new(part, options).unwrap();
    assert_eq!(
        *pulls.lock().unwrap(),
        0,
        "nothing is read before the first chunk is asked for"
    );
    let first = encoder.next_chunk().unwrap().unwrap().len();
    assert_eq!(first, 4096);
    // 4 KiB of output is about 3 KiB of input: a handful of pulls, not the 16 MiB body.
    assert!(*pulls.lock().unwrap() <= 4, "{}", *pulls.lock().unwrap());
}

/// A source that fails after its first chunk.
struct Failing(bool);

impl Source for Failing {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.0 {
            return Err("disk on fire".into());
        }
        self.0 = true;
        out.extend_from_slice(b"partial");
        Ok(true)
    }
}

#[test]
fn a_failing_source_stops_the_message_for_good() {
    let part = Part::new().body(Body::Source(Box::new(Failing(false))));
    let mut encoder = MessageEncoder::new(
        part,
        MessageOptions {
            chunk_size: 1 << 20,
            ..MessageOptions::default()
        },
    )
    .unwrap();
    match encoder.next_chunk() {
        Err(Error::Source(e)) => assert_eq!(e.to_string(), "disk on fire"),
        other => panic!("expected the source's error, got {other:?}"),
    }
    assert!(
        matches!(encoder.next_chunk(), Err(Error::Source(_))),
        "no truncated end of message after an error"
    );
    let mut reader = MessageEncoder::new(
        Part::new().body(Body::Source(Box::new(Failing(false)))),
        fixed(),
    )
    .unwrap();
    let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

#[test]
fn read_next_chunk_and_pull_give_the_same_bytes() {
    let reference = encode(nested(), fixed());
    let mut encoder = MessageEncoder::new(
        nested(),
        MessageOptions {
            chunk_size: 7,
            ..fixed()
        },
    )
    .unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = encoder.next_chunk().unwrap() {
        assert!(!chunk.is_empty());
        chunks.extend_from_slice(chunk);
    }
    assert_eq!(chunks, reference);
    let mut source = MessageEncoder::new(
        nested(),
        MessageOptions {
            chunk_size: 13,
            ..fixed()
        },
    )
    .unwrap();
    assert_eq!(mailpump::source::collect(&mut source).unwrap(), reference);
    // Mixed: a few small reads, then whole chunks.
    let mut mixed = MessageEncoder::new(
        nested(),
        MessageOptions {
            chunk_size: 64,
            ..fixed()
        },
    )
    .unwrap();
    let mut out = vec![0; 5];
    mixed.read_exact(&mut out).unwrap();
    while let Some(chunk) = mixed.next_chunk().unwrap() {
        out.extend_from_slice(chunk);
    }
    assert_eq!(out, reference);
}

#[test]
fn nesting_depth_is_unlimited() {
    let depth = 100_000;
    let mut part = Part::text("leaf", "plain");
    for _ in 0..depth {
        part = Part::new().body(Multipart::new(vec![part]));
    }
    let out = encode(part, fixed());
    let opens = out.windows(4).filter(|w| w == b"\r\n--").count();
    assert!(opens >= 2 * depth, "{opens}");
    assert!(text(&out).contains("\r\n\r\nleaf\r\n--=_"));
}

#[test]
fn defaults_are_added_once_and_callers_values_kept() {
    let out = encode(
        Part::new()
            .header("From", "Me <me@Mail.Example.NET>")
            .body("x"),
        fixed(),
    );
    let head = text(&out).split("\r\n\r\n").next().unwrap().to_owned();
    for name in [
        "Date: ",
        "Message-ID: <",
        "MIME-Version: 1.0",
        "X-Mailer: mailpump ",
        "Content-Type: text/plain",
    ] {
        assert_eq!(head.matches(name).count(), 1, "{name} in {head}");
    }
    assert!(
        head.contains("@mail.example.net>"),
        "Message-ID takes the From domain: {head}"
    );
    let id = head
        .split("Message-ID: <")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert!(
        id.len() >= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "128+ random bits: {id}"
    );

    let part = Part::new()
        .header("date", "Mon, 1 Jan 2024 00:00:00 +0000")
        .header("MESSAGE-ID", "<mine@example.com>")
        .header("mime-version", "1.0 (kept)")
        .header("x-mailer", "my mailer")
        .header("content-type", "text/plain; charset=us-ascii")
        .body("x");
    let out = encode(part, fixed());
    let expected = "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
        Message-ID: <mine@example.com>\r\n\
        MIME-Version: 1.0 (kept)\r\n\
        X-Mailer: my mailer\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\
        Content-Transfer-Encoding: 7bit\r\n\r\nx";
    assert_eq!(text(&out), expected);
}

#[test]
fn parts_get_only_content_type_defaults() {
    let out = encode(
        Part::new().body(Multipart::new(vec![Part::new().body(b"x".to_vec())])),
        fixed(),
    );
    let s = text(&out);
    assert_eq!(s.matches("Date: ").count(), 1);
    assert_eq!(s.matches("MIME-Version: ").count(), 1);
    assert_eq!(s.matches("X-Mailer: ").count(), 1);
    assert_eq!(s.matches("Message-ID: ").count(), 1);
    assert!(
        s.contains("\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\nx\r\n--=_"),
        "{s}"
    );
    assert!(
        s.contains("Content-Type: multipart/mixed;\r\n boundary=\"=_"),
        "folded at 78: {s}"
    );
}

#[test]
fn date_is_converted_to_the_chosen_zone() {
    let date = |zone: Option<&str>| {
        let options = MessageOptions {
            zone: zone.map(str::to_owned),
            ..fixed()
        };
        let out = encode(Part::new(), options);
        text(&out)
            .lines()
            .find(|l| l.starts_with("Date: "))
            .unwrap()
            .trim_end()
            .to_owned()
    };
    assert_eq!(date(Some("+0200")), "Date: Wed, 15 Nov 2023 00:13:20 +0200");
    assert_eq!(date(Some("-0000")), "Date: Tue, 14 Nov 2023 22:13:20 -0000");
    let local = date(None);
    assert!(
        local.len() == "Date: Tue, 14 Nov 2023 22:13:20 +0000".len(),
        "{local}"
    );
    let err = MessageEncoder::new(
        Part::new(),
        MessageOptions {
            zone: Some("CEST".into()),
            ..fixed()
        },
    )
    .unwrap_err();
    assert_eq!(err.header.as_deref(), Some("Date"));
}

#[test]
fn text_bodies_get_7bit_or_quoted_printable() {
    let cte = |body: &str| {
        let out = encode(Part::text(body, "plain"), fixed());
        let s = text(&out).to_owned();
        let cte = s
            .split("Content-Transfer-Encoding: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap()
            .to_owned();
        (cte, s.split("\r\n\r\n").nth(1).unwrap().to_owned())
    };
    assert_eq!(
        cte("plain\r\nascii"),
        ("7bit".into(), "plain\r\nascii".into())
    );
    assert_eq!(
        cte("bare\nline feeds\n"),
        ("quoted-printable".into(), "bare\r\nline feeds\r\n".into())
    );
    assert_eq!(
        cte("caf\u{e9}"),
        ("quoted-printable".into(), "caf=C3=A9=\r\n".into())
    );
    let (encoding, body) = cte(&"x".repeat(1000));
    assert_eq!(encoding, "quoted-printable");
    assert!(body.split("\r\n").all(|l| l.len() <= 76));
    assert_eq!(cte(&"x".repeat(998)).0, "7bit");
}

#[test]
fn encodings_transform_and_label_bodies() {
    let body = |part: Part| {
        let out = encode(part, fixed());
        let s = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), body.to_owned())
    };
    let (head, b) = body(
        Part::new()
            .body(b"a\r\nb=\xff".to_vec())
            .encoding(TransferEncoding::QuotedPrintable),
    );
    assert!(
        head.ends_with("Content-Transfer-Encoding: quoted-printable"),
        "{head}"
    );
    assert_eq!(
        b, "a=0D=0Ab=3D=FF=\r\n",
        "binary mode keeps every byte, line ends included"
    );
    let (head, b) = body(
        Part::new()
            .body(vec![0xab; 100])
            .encoding(TransferEncoding::Base64),
    );
    assert!(
        head.ends_with("Content-Transfer-Encoding: base64"),
        "{head}"
    );
    let lines: Vec<&str> = b.split("\r\n").collect();
    assert_eq!(
        lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
        [76, 60, 0]
    );
    let (head, b) = body(Part::text("line\r\n", "plain").encoding(TransferEncoding::Base64));
    assert!(
        head.ends_with("Content-Transfer-Encoding: base64"),
        "{head}"
    );
    assert_eq!(b, "bGluZQ0K\r\n");
    let (head, b) = body(Part::text("ünï", "plain").encoding(TransferEncoding::EightBit));
    assert!(head.ends_with("Content-Transfer-Encoding: 8bit"), "{head}");
    assert_eq!(b, "ünï");
    // A caller's own header means the body is already encoded: written as given, header kept.
    let (head, b) = body(
        Part::new()
            .header("content-transfer-encoding", "BASE64")
            .body("QUJD\r\n"),
    );
    assert!(
        head.starts_with("Content-Transfer-Encoding: BASE64\r\n"),
        "{head}"
    );
    assert_eq!(b, "QUJD\r\n");
    let (head, _) = body(
        Part::new()
            .header("Content-Transfer-Encoding", "base64")
            .body(vec![1])
            .encoding(TransferEncoding::Base64),
    );
    assert_eq!(head.matches("Content-Transfer-Encoding").count(), 1);
    assert_eq!(
        "Quoted-Printable".parse::<TransferEncoding>().unwrap(),
        TransferEncoding::QuotedPrintable
    );
    assert!("uuencode".parse::<TransferEncoding>().is_err());
}

#[test]
fn attachments_from_files_open_at_once_and_stream() {
    let missing = Part::attachment_file("/nonexistent/mailpump/file.png", None, None);
    let Err(Error::Source(err)) = missing else {
        panic!("a missing file is an error at once")
    };
    let io = err.downcast_ref::<std::io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(
        io.to_string().contains("/nonexistent/mailpump/file.png"),
        "{io}"
    );
    let dir = std::env::temp_dir().join(format!("mailpump-b-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("picture.png");
    std::fs::write(&path, b"\x89PNG\r\n").unwrap();
    let part = Part::attachment_file(&path, None, None).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let out = encode(part, fixed());
    let s = text(&out);
    assert!(s.contains("Content-Type: image/png\r\n"), "{s}");
    assert!(
        s.contains("Content-Disposition: attachment; filename=\"picture.png\"\r\n"),
        "{s}"
    );
    assert!(s.ends_with("\r\n\r\niVBORw0K\r\n"), "{s}");
}

/// A message knows it is binary MIME (RFC 3030 §3) when any part is `binary`: given as the
/// part's encoding, in the caller's own header, deep in a multipart, or in an enclosed message.
#[test]
fn a_binary_part_makes_the_message_binary_mime() {
    let binary = || {
        Part::new()
            .body(b"\x00\r\x0a".to_vec())
            .encoding(TransferEncoding::Binary)
    };
    let declared = Part::new()
        .header("Content-Transfer-Encoding", "Binary")
        .body(b"\x00".to_vec());
    let enclosed = MessageEncoder::new(binary(), fixed()).unwrap();
    let cases: Vec<(Part, bool)> = vec![
        (binary(), true),
        (declared, true),
        (
            Part::new().body(Multipart::new(vec![
                Part::text("hi\r\n", "plain"),
                Part::new().body(Multipart::new(vec![binary()])),
            ])),
            true,
        ),
        (
            Part::new()
                .header("Content-Type", "message/rfc822")
                .body(Box::new(enclosed) as Box<dyn Source>),
            true,
        ),
        (
            Part::new()
                .body(b"\x00".to_vec())
                .encoding(TransferEncoding::Base64),
            false,
        ),
        (Part::text("caf\u{e9}\r\n", "plain"), false),
    ];
    for (i, (part, expected)) in cases.into_iter().enumerate() {
        let encoder = MessageEncoder::new(part, fixed()).unwrap();
        assert_eq!(encoder.needs_binarymime(), expected, "case {i}");
        assert_eq!(
            encoder.again().unwrap().needs_binarymime(),
            expected,
            "case {i} again"
        );
    }
}
