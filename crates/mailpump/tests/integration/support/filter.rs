//! Running a streaming filter over a whole input.

use mailpump::Filter;

/// Runs `input` through `filter` in one piece and ends it.
pub fn run(filter: &mut dyn Filter, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    filter.update(input, &mut out).unwrap();
    filter.finish(&mut out).unwrap();
    out
}

/// Runs `input` through `filter` in pieces of the given sizes (cycled; a 0 feeds an empty
/// piece), then ends it.
pub fn run_split(filter: &mut dyn Filter, input: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = input;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        filter.update(piece, &mut out).unwrap();
        rest = tail;
    }
    filter.finish(&mut out).unwrap();
    out
}
