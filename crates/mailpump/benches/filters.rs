//! Throughput of the streaming filters, in MiB/s of input.
//!
//! `cargo bench -p mailpump --bench filters` (size: `MAILPUMP_BENCH_MIB`, default 128). Each filter
//! gets the whole input in 64 KiB chunks, its output buffer cleared after each chunk as a sender
//! would; the best of 3 runs is printed. Figures are noisy: compare them within one run.

use mailpump::Chain;
use mailpump::Filter;
use mailpump::mime::base64::{Base64Decoder, Base64Encoder, Base64LineEncoder};
use mailpump::mime::eol::Normalize;
use mailpump::mime::qp::{QpDecoder, QpEncoder, QpMode};
use mailpump::mime::wrap::{LineWrap, QpWrap};
use mailpump::smtp::dotstuff::{DotStuff, WireEncoder};
use std::hint::black_box;
use std::time::Instant;

const CHUNK: usize = 64 * 1024;

/// Pseudo-random bytes (xorshift64).
fn binary(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// English-like ASCII text: words of 1–10 letters, CRLF lines of about 70 characters, some lines
/// starting with a dot, some punctuation.
fn text(len: usize) -> Vec<u8> {
    let noise = binary(len / 2 + 64);
    let mut out = Vec::with_capacity(len + 128);
    let mut line = 0;
    let mut i = 0;
    while out.len() < len {
        let r = noise[i % noise.len()];
        i += 1;
        let word = 1 + usize::from(r % 10);
        if line == 0 && r % 31 == 0 {
            out.push(b'.');
        }
        for k in 0..word {
            out.push(b'a' + (noise[(i + k) % noise.len()] % 26));
        }
        line += word;
        if r % 17 == 0 {
            out.push(b',');
        }
        if line > 64 {
            out.extend_from_slice(b"\r\n");
            line = 0;
        } else {
            out.push(b' ');
            line += 1;
        }
    }
    out.truncate(len);
    out
}

fn measure(name: &str, input: &[u8], make: &dyn Fn() -> Box<dyn Filter>) {
    let mut best = f64::INFINITY;
    let mut produced = 0;
    for _ in 0..3 {
        let mut filter = make();
        let mut out = Vec::with_capacity(CHUNK * 3);
        produced = 0;
        let start = Instant::now();
        for chunk in input.chunks(CHUNK) {
            filter.update(chunk, &mut out).unwrap();
            produced += out.len();
            black_box(&out);
            out.clear();
        }
        filter.finish(&mut out).unwrap();
        produced += out.len();
        best = best.min(start.elapsed().as_secs_f64());
    }
    #[allow(clippy::cast_precision_loss)]
    let mib = input.len() as f64 / (1024.0 * 1024.0);
    println!(
        "{name:<34} {:>9.0} MiB/s   ({produced} bytes out)",
        mib / best
    );
}

fn main() {
    let mib: usize = std::env::var("MAILPUMP_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let size = mib * 1024 * 1024;
    let bin = binary(size);
    let txt = text(size);
    let mut b64 = Vec::new();
    let mut encoder = Base64LineEncoder::new(76);
    encoder.update(&bin, &mut b64).unwrap();
    encoder.finish(&mut b64).unwrap();
    let mut qp_txt = Chain::new(vec![
        Box::new(QpEncoder::new(QpMode::Text)),
        Box::new(QpWrap::new(76)),
    ]);
    let mut qp = Vec::new();
    qp_txt.update(&txt, &mut qp).unwrap();
    qp_txt.finish(&mut qp).unwrap();
    println!("inputs: {mib} MiB binary, {mib} MiB text; 64 KiB chunks; best of 3");

    measure("base64 encode", &bin, &|| Box::new(Base64Encoder::new()));
    measure("base64 encode + wrap 76 (fused)", &bin, &|| {
        Box::new(Base64LineEncoder::new(76))
    });
    measure("base64 encode, then LineWrap 76", &bin, &|| {
        Box::new(Chain::new(vec![
            Box::new(Base64Encoder::new()),
            Box::new(LineWrap::new(76)),
        ]))
    });
    measure("base64 decode (wrapped input)", &b64, &|| {
        Box::new(Base64Decoder::new())
    });
    measure("qp encode text", &txt, &|| {
        Box::new(QpEncoder::new(QpMode::Text))
    });
    measure("qp encode text + QpWrap 76", &txt, &|| {
        Box::new(Chain::new(vec![
            Box::new(QpEncoder::new(QpMode::Text)),
            Box::new(QpWrap::new(76)),
        ]))
    });
    measure(
        "qp encode binary + QpWrap 76",
        &bin[..bin.len() / 4],
        &|| {
            Box::new(Chain::new(vec![
                Box::new(QpEncoder::new(QpMode::Binary)),
                Box::new(QpWrap::new(76)),
            ]))
        },
    );
    measure("qp decode (encoded text)", &qp, &|| {
        Box::new(QpDecoder::new())
    });
    let mut qp_bin = Chain::new(vec![
        Box::new(QpEncoder::new(QpMode::Binary)),
        Box::new(QpWrap::new(76)),
    ]);
    let mut qpb = Vec::new();
    qp_bin.update(&bin[..bin.len() / 4], &mut qpb).unwrap();
    qp_bin.finish(&mut qpb).unwrap();
    measure("qp decode (encoded binary)", &qpb, &|| {
        Box::new(QpDecoder::new())
    });
    measure("qp encode binary", &bin[..bin.len() / 4], &|| {
        Box::new(QpEncoder::new(QpMode::Binary))
    });
    measure("QpWrap 76 (encoded binary)", &qpb, &|| {
        Box::new(QpWrap::new(76))
    });
    measure("normalize CRLF (text)", &txt, &|| {
        Box::new(Normalize::crlf())
    });
    measure("dot-stuff (text)", &txt, &|| Box::new(DotStuff::new()));
    measure(
        "wire encoder (text)",
        &txt,
        &|| Box::new(WireEncoder::new()),
    );
}
