//! Base64 (mime::base64): the decoder inverts both encoders for any data and any splits of the
//! encoder's and the decoder's input, and decoding arbitrary text is split-invariant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpump::Filter;
use mailpump::mime::base64::{Base64Decoder, Base64Encoder, Base64LineEncoder};

/// Runs `filter` over `data` cut at `cuts`, then `finish`.
fn run(filter: &mut dyn Filter, data: &[u8], cuts: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    for &c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = usize::from(c).min(rest.len());
        filter.update(&rest[..n], &mut out).expect("update");
        rest = &rest[n..];
    }
    filter.update(rest, &mut out).expect("update");
    filter.finish(&mut out).expect("finish");
    out
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>, Vec<u8>, u8)| {
    let (data, cuts_a, cuts_b, line) = input;
    let plain = run(&mut Base64Encoder::new(), &data, &cuts_a);
    assert_eq!(plain.len(), data.len().div_ceil(3) * 4);
    assert_eq!(run(&mut Base64Decoder::new(), &plain, &cuts_b), data);

    // The fused line encoder, as MessageEncoder uses it (76), and other lengths.
    let line_len = if line < 4 { 76 } else { usize::from(line) };
    let wrapped = run(&mut Base64LineEncoder::new(line_len), &data, &cuts_b);
    for l in wrapped.split(|&b| b == b'\n') {
        assert!(l.len() <= line_len + 1, "line longer than {line_len}");
    }
    assert_eq!(run(&mut Base64Decoder::new(), &wrapped, &cuts_a), data);

    // Arbitrary input: no panic, same result for every split; the filter resets after finish.
    let mut decoder = Base64Decoder::new();
    let once = run(&mut decoder, &data, &[]);
    assert_eq!(run(&mut decoder, &data, &cuts_a), once);
});
