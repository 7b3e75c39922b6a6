//! Chunk-split invariance: the encoder's output is the same for every chunk size, every way the
//! body sources split their data, and every way the output is read.

use std::io::Read;

use mailpump::BoxError;
use mailpump::mime::message::{
    Body, MessageEncoder, MessageOptions, Multipart, Part, TransferEncoding,
};
use mailpump::source::Source;
use proptest::prelude::*;

/// A source handing out `data` cut at the given lengths (cycled), one piece per pull.
struct Split {
    data: Vec<u8>,
    pos: usize,
    cuts: Vec<usize>,
    turn: usize,
}

impl Source for Split {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.pos >= self.data.len() {
            return Ok(false);
        }
        let len = self.cuts[self.turn % self.cuts.len()];
        self.turn += 1;
        let end = (self.pos + len).min(self.data.len());
        out.extend_from_slice(&self.data[self.pos..end]);
        self.pos = end;
        Ok(true)
    }
}

/// One leaf of a generated message: its bytes, its encoding (index into `ENCODINGS`, or none),
/// and whether it is text.
#[derive(Debug, Clone)]
struct Leaf {
    data: Vec<u8>,
    encoding: Option<usize>,
    text: bool,
}

const ENCODINGS: [TransferEncoding; 5] = [
    TransferEncoding::Base64,
    TransferEncoding::QuotedPrintable,
    TransferEncoding::SevenBit,
    TransferEncoding::EightBit,
    TransferEncoding::Binary,
];

fn leaf() -> impl Strategy<Value = Leaf> {
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        "[a-z \\r\\n.=é]{0,400}".prop_map(String::into_bytes),
    ];
    (
        bytes,
        proptest::option::of(0..ENCODINGS.len()),
        any::<bool>(),
    )
        .prop_map(|(data, encoding, text)| {
            // Only valid UTF-8 can be a text body; 7bit is refused for non-ASCII text.
            let text = text
                && std::str::from_utf8(&data).is_ok()
                && (encoding != Some(2) || data.is_ascii());
            Leaf {
                data,
                encoding,
                text,
            }
        })
}

/// Builds a two-level message from `leaves`; bodies are sources split at `cuts` when given.
fn build(leaves: &[Leaf], cuts: Option<&[usize]>) -> Part {
    let part = |leaf: &Leaf| {
        let body = match (leaf.text, cuts) {
            (true, _) => Body::Text(String::from_utf8(leaf.data.clone()).unwrap()),
            (false, None) => Body::Bytes(leaf.data.clone()),
            (false, Some(cuts)) => Body::Source(Box::new(Split {
                data: leaf.data.clone(),
                pos: 0,
                cuts: cuts.to_vec(),
                turn: 0,
            })),
        };
        let mut part = Part::new().header("Subject", "leaf é").body(body);
        part.encoding = leaf.encoding.map(|i| ENCODINGS[i]);
        part
    };
    let half = leaves.len() / 2;
    let inner = Multipart::new(leaves[..half].iter().map(part).collect())
        .preamble("inner")
        .epilogue("end");
    let mut outer: Vec<Part> = leaves[half..].iter().map(part).collect();
    outer.insert(0, Part::new().body(inner));
    Part::new()
        .header("To", "Zoë <z@example.com>")
        .body(Multipart::new(outer).preamble("pre").epilogue("post"))
}

fn options(chunk_size: usize) -> MessageOptions {
    MessageOptions {
        chunk_size,
        timestamp: Some(0),
        zone: Some("+0100".into()),
        seed: Some(3),
    }
}

fn by_chunks(part: Part, chunk_size: usize) -> Vec<u8> {
    let mut encoder = MessageEncoder::new(part, options(chunk_size)).unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = encoder.next_chunk().unwrap() {
        assert!(
            !chunk.is_empty() && chunk.len() <= chunk_size,
            "a chunk of {} bytes",
            chunk.len()
        );
        out.extend_from_slice(chunk);
    }
    out
}

proptest! {
    #![proptest_config(crate::support::proptest_config(128))]

    #[test]
    fn output_does_not_depend_on_chunking(
        leaves in proptest::collection::vec(leaf(), 1..6),
        cuts in proptest::collection::vec(1usize..200, 1..8),
        chunk_size in prop_oneof![Just(1usize), Just(2), Just(3), Just(76), Just(4096), 1usize..3000],
        read_size in 1usize..500,
    ) {
        let reference = by_chunks(build(&leaves, None), 1 << 20);
        prop_assert_eq!(&by_chunks(build(&leaves, Some(&cuts)), chunk_size), &reference);
        let mut reader = MessageEncoder::new(build(&leaves, Some(&cuts)), options(chunk_size)).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0; read_size];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        prop_assert_eq!(&out, &reference);
        for line in reference.split(|&b| b == b'\n') {
            prop_assert!(line.len() <= 999, "a line over 998 octets (CR included in the count here)");
        }
    }
}

#[test]
fn the_same_tree_with_every_small_chunk_size() {
    let leaves = vec![
        Leaf {
            data: "héllo\nwörld ".repeat(20).into_bytes(),
            encoding: None,
            text: true,
        },
        Leaf {
            data: (0..=255).collect(),
            encoding: Some(0),
            text: false,
        },
        Leaf {
            data: b"a=b\r\n.c ".repeat(30),
            encoding: Some(1),
            text: false,
        },
    ];
    let reference = by_chunks(build(&leaves, None), 1 << 20);
    for chunk_size in 1..200 {
        assert_eq!(
            by_chunks(build(&leaves, Some(&[1, 5, 64])), chunk_size),
            reference,
            "chunk size {chunk_size}"
        );
    }
}
