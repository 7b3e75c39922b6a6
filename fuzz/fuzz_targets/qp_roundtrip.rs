//! Quoted-printable (mime::qp, mime::wrap::QpWrap): the decoder inverts the encoder in text and
//! binary modes, with and without the 76-column soft-break wrap, for any data and any splits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpump::mime::qp::{QpDecoder, QpEncoder, QpMode};
use mailpump::mime::wrap::QpWrap;
use mailpump::{Chain, Filter};

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

fuzz_target!(|input: (Vec<u8>, Vec<u8>, Vec<u8>, bool)| {
    let (data, cuts_a, cuts_b, text) = input;
    let mode = if text { QpMode::Text } else { QpMode::Binary };
    let encoded = run(&mut QpEncoder::new(mode), &data, &cuts_a);
    assert_eq!(
        encoded,
        run(&mut QpEncoder::new(mode), &data, &[]),
        "encoder split"
    );
    assert!(
        encoded
            .iter()
            .all(|&b| b == b'\t' || b == b'\r' || b == b'\n' || (32..127).contains(&b))
    );
    assert_eq!(
        run(&mut QpDecoder::new(), &encoded, &cuts_b),
        data,
        "decode(encode(x)) != x"
    );

    let mut chain = Chain::new(vec![
        Box::new(QpEncoder::new(mode)) as Box<dyn Filter>,
        Box::new(QpWrap::new(76)),
    ]);
    let wrapped = run(&mut chain, &data, &cuts_b);
    for l in wrapped.split(|&b| b == b'\n') {
        assert!(l.len() <= 77, "a QP line is longer than 76 characters");
    }
    assert_eq!(
        run(&mut QpDecoder::new(), &wrapped, &cuts_a),
        data,
        "decode(wrap(encode(x))) != x"
    );

    // Arbitrary input: split-invariant decoding.
    let once = run(&mut QpDecoder::new(), &data, &[]);
    assert_eq!(
        run(&mut QpDecoder::new(), &data, &cuts_a),
        once,
        "decoder split"
    );
});
