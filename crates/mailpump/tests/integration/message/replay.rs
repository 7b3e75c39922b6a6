//! Messages read again (`Source::replay`): the same bytes from the start, whatever was read
//! before, without keeping encoded output; a one-shot body makes a message one-shot.

use std::io::{self, Cursor};
use std::path::PathBuf;

use mailpump::mime::base64::Base64LineEncoder;
use mailpump::mime::eol::Normalize;
use mailpump::mime::message::{MessageEncoder, MessageOptions, Multipart, Part, TransferEncoding};
use mailpump::mime::qp::{QpEncoder, QpMode};
use mailpump::source::{BytesSource, CatSource, FilteredSource, ReaderSource, collect};
use mailpump::{BoxError, Chain, Filter, Source};

/// A file under the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, data: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("mailpump-replay-{}-{name}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Bytes that are not all the same, so that a misplaced chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// A one-shot source, as a Python iterator is: it cannot be read again.
struct Once(Option<Vec<u8>>);

impl Source for Once {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        match self.0.take() {
            Some(data) => {
                out.extend_from_slice(&data);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// A filter that cannot make a fresh copy of itself, as one written in Python cannot.
struct Opaque;
impl Filter for Opaque {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        out.extend_from_slice(input);
        Ok(())
    }
    fn finish(&mut self, _: &mut Vec<u8>) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Default options (a real clock and random boundaries and Message-ID), so that only the laid-out
/// header blocks can make a replay agree; small chunks, so that bodies take many pulls.
fn options() -> MessageOptions {
    MessageOptions {
        chunk_size: 100,
        ..MessageOptions::default()
    }
}

/// Reads `encoder` to its end, then replays it twice (once from the replay): every reading
/// is the same, and is returned.
fn same_every_time(mut encoder: MessageEncoder) -> Vec<u8> {
    let again = encoder.replay().expect("replayable");
    let first = collect(&mut encoder).unwrap();
    let mut again = again;
    assert_eq!(collect(&mut again).unwrap(), first);
    let mut third = again.replay().expect("a replay replays");
    assert_eq!(collect(&mut third).unwrap(), first);
    let mut after_the_end = encoder.replay().expect("still replayable at the end");
    assert_eq!(collect(&mut after_the_end).unwrap(), first);
    first
}

fn header<'a>(message: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(message).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

#[test]
fn a_text_message_replays_with_its_date_and_message_id() {
    let part = Part::new()
        .header("From", "a@example.com")
        .body("Grüße\r\n".repeat(100));
    let bytes = same_every_time(MessageEncoder::new(part, options()).unwrap());
    assert!(header(&bytes, "Message-ID").is_some_and(|id| id.ends_with("@example.com>")));
    assert!(header(&bytes, "Date").is_some());
    assert_eq!(
        header(&bytes, "Content-Transfer-Encoding"),
        Some("quoted-printable")
    );
}

#[test]
fn bytes_qp_and_base64_parts_replay() {
    let message = Part::new().body(Multipart::new(vec![
        Part::new().body(pattern(5000)),
        Part::new()
            .body(pattern(3000))
            .encoding(TransferEncoding::QuotedPrintable),
        Part::new()
            .body("a long line ".repeat(50))
            .encoding(TransferEncoding::QuotedPrintable),
        Part::new()
            .body(pattern(4097))
            .encoding(TransferEncoding::Base64),
        Part::attachment(pattern(10_000), Some("data.bin"), None).unwrap(),
    ]));
    let bytes = same_every_time(MessageEncoder::new(message, options()).unwrap());
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("Content-Transfer-Encoding: base64\r\n"));
    assert!(text.contains("Content-Transfer-Encoding: quoted-printable\r\n"));
}

#[test]
fn file_attachments_and_file_sources_replay() {
    let file = TempFile::new("attachment.bin", &pattern(300_000));
    let inline = TempFile::new("inline.txt", b"line one\r\nline two\r\n");
    let message = Part::new().body(Multipart::new(vec![
        Part::text("See the attachment.\r\n", "plain"),
        Part::attachment_file(&file.0, None, None).unwrap(),
        Part::new().body(Box::new(ReaderSource::open(&inline.0).unwrap()) as Box<dyn Source>),
    ]));
    let bytes = same_every_time(MessageEncoder::new(message, options()).unwrap());
    assert!(
        String::from_utf8_lossy(&bytes).contains("line one\r\nline two\r\n"),
        "the file written as given"
    );
}

#[test]
fn nested_multiparts_replay() {
    let file = TempFile::new("nested.csv", b"a,b\r\n1,2\r\n");
    let alternative = Part::new()
        .header("Content-Type", "multipart/alternative")
        .body(Multipart::new(vec![
            Part::text("*hi*\r\n", "plain"),
            Part::text("<b>hi</b>\r\n", "html"),
        ]));
    let inner = Part::new().body(
        Multipart::new(vec![
            alternative,
            Part::attachment_file(&file.0, None, None).unwrap(),
        ])
        .preamble("preamble")
        .epilogue("epilogue"),
    );
    let message = Part::new()
        .header("Subject", "nested")
        .body(Multipart::new(vec![inner, Part::text("end\r\n", "plain")]));
    let bytes = same_every_time(MessageEncoder::new(message, options()).unwrap());
    let boundaries = String::from_utf8_lossy(&bytes).matches("boundary=").count();
    assert_eq!(boundaries, 3);
}

#[test]
fn a_message_inside_a_message_replays_through_its_own_replay() {
    let inner = MessageEncoder::new(Part::text("inner\r\n", "plain"), options()).unwrap();
    let message = Part::new()
        .header("Content-Type", "message/rfc822")
        .body(Box::new(inner) as Box<dyn Source>);
    same_every_time(MessageEncoder::new(message, options()).unwrap());
}

#[test]
fn a_replay_after_a_partial_read_starts_from_the_beginning() {
    let file = TempFile::new("partial.bin", &pattern(50_000));
    let make = || {
        Part::new().body(Multipart::new(vec![
            Part::text("first\r\n", "plain"),
            Part::attachment_file(&file.0, None, None).unwrap(),
        ]))
    };
    let mut encoder = MessageEncoder::new(make(), options()).unwrap();
    let whole = collect(&mut encoder.replay().unwrap()).unwrap();
    // Into the middle of the attachment.
    let mut read = 0;
    while read < 30_000 {
        read += encoder.next_chunk().unwrap().unwrap().len();
    }
    let mut again = encoder.replay().unwrap();
    assert_eq!(collect(&mut again).unwrap(), whole);
    // The first one goes on where it was.
    let rest = collect(&mut encoder).unwrap();
    assert_eq!(rest, whole[read..]);
}

#[test]
fn a_one_shot_body_anywhere_makes_the_message_one_shot() {
    let deep = Part::new().body(Multipart::new(vec![
        Part::text("fine\r\n", "plain"),
        Part::new().body(Multipart::new(vec![
            Part::new().body(Box::new(Once(Some(b"once\r\n".to_vec()))) as Box<dyn Source>),
        ])),
    ]));
    let mut encoder = MessageEncoder::new(deep, options()).unwrap();
    assert!(encoder.replay().is_none());
    assert!(collect(&mut encoder).is_ok(), "it still sends once");

    let reader = Part::new()
        .body(Box::new(ReaderSource::new(Cursor::new(b"x".to_vec()))) as Box<dyn Source>);
    assert!(
        MessageEncoder::new(reader, options())
            .unwrap()
            .replay()
            .is_none(),
        "any io::Read is read once"
    );
}

#[test]
fn a_file_gone_before_a_replay_fails_when_pulled() {
    let file = TempFile::new("gone.bin", b"here");
    let mut source = ReaderSource::open(&file.0).unwrap();
    let mut again = source.replay().expect("a file opened by path");
    assert_eq!(collect(&mut source).unwrap(), b"here");
    std::fs::remove_file(&file.0).unwrap();
    let error = collect(&mut again).unwrap_err();
    let io = error.downcast_ref::<io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), io::ErrorKind::NotFound);
    assert!(io.to_string().contains("gone.bin"), "{io}");
}

#[cfg(unix)]
#[test]
fn a_device_opened_by_path_is_not_replayable() {
    assert!(ReaderSource::open("/dev/null").unwrap().replay().is_none());
}

#[test]
fn chains_and_cats_replay_when_every_piece_can() {
    let chain = |inner: Box<dyn Source>| {
        FilteredSource::new(
            inner,
            Box::new(Chain::new(vec![
                Box::new(Normalize::crlf()),
                Box::new(QpEncoder::new(QpMode::Text)),
            ])),
        )
    };
    let mut filtered = chain(Box::new(BytesSource::with_chunk("é\n".repeat(100), 7)));
    let mut cat = CatSource::new(vec![
        Box::new(BytesSource::with_chunk(b"head ".to_vec(), 2)),
        Box::new(FilteredSource::new(
            Box::new(BytesSource::with_chunk(pattern(1000), 3)),
            Box::new(Base64LineEncoder::new(76)),
        )),
    ]);
    for source in [&mut filtered as &mut dyn Source, &mut cat] {
        let whole = collect(&mut source.replay().unwrap()).unwrap();
        let mut some = Vec::new();
        for _ in 0..5 {
            source.pull(&mut some).unwrap();
        }
        assert!(!some.is_empty() && some.len() < whole.len());
        assert_eq!(collect(&mut source.replay().unwrap()).unwrap(), whole);
        some.extend(collect(source).unwrap());
        assert_eq!(some, whole);
    }
    // A one-shot inner source, or a filter without `fresh`, cannot.
    assert!(chain(Box::new(Once(None))).replay().is_none());
    let opaque = FilteredSource::new(Box::new(BytesSource::new("x")), Box::new(Opaque));
    assert!(opaque.replay().is_none());
    let cat = CatSource::new(vec![Box::new(BytesSource::new("x")), Box::new(Once(None))]);
    assert!(cat.replay().is_none());
}
