//! The reply parser (smtp::reply): a resumable parse over any split of the input gives the same
//! outcome as one parse of the whole, and a complete reply never spans more than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpump::smtp::reply::{Parsed, ReplyLimits, ReplyParser, parse_reply};

fuzz_target!(|input: (Vec<u8>, Vec<u8>, bool)| {
    let (buf, cuts, small) = input;
    // Small limits reach LineTooLong and TooManyLines with short inputs.
    let limits = if small {
        ReplyLimits {
            max_line: 16,
            max_lines: 4,
        }
    } else {
        ReplyLimits::default()
    };
    let whole = parse_reply(&buf, &limits);
    if let Ok(Parsed::Complete { reply, consumed }) = &whole {
        assert!(*consumed <= buf.len(), "consumed more than it was given");
        assert!(*consumed >= 4, "a reply is at least a code and a line end");
        assert!((200..=599).contains(&reply.code));
        // A line ends with CRLF, or a bare LF (accepted from lenient servers, as in the parser's
        // own table), never with a bare CR.
        assert_eq!(buf[consumed - 1], b'\n', "a reply ends with a line end");
        assert!(!reply.lines.is_empty() && reply.lines.len() <= limits.max_lines);
        // The reply alone parses to the same reply.
        let again = parse_reply(&buf[..*consumed], &limits);
        assert_eq!(again.as_ref(), whole.as_ref().map_err(|e| e));
    }
    // Resumable parsing, fed growing prefixes at the cut points, ends where the whole parse does.
    let mut parser = ReplyParser::with_limits(limits);
    let mut end = 0;
    let mut outcome = None;
    for &c in &cuts {
        end = (end + usize::from(c) + 1).min(buf.len());
        match parser.parse(&buf[..end]) {
            Ok(Parsed::Partial) => {}
            other => {
                outcome = Some((end, other));
                break;
            }
        }
        if end == buf.len() {
            break;
        }
    }
    match outcome {
        Some((_, Ok(Parsed::Complete { reply, consumed }))) => {
            // A reply complete within a prefix is the whole input's reply too.
            assert_eq!(
                whole,
                Ok(Parsed::Complete { reply, consumed }),
                "split parse differs"
            );
        }
        Some((end, Err(e))) => {
            // An error in a prefix is an error of the whole input (bytes cannot repair it), and
            // a fresh parse of the same prefix agrees.
            assert_eq!(parse_reply(&buf[..end], &limits), Err(e));
            assert!(
                whole.is_err(),
                "prefix failed with {e:?}, whole gave {whole:?}"
            );
        }
        Some((_, Ok(Parsed::Partial))) => unreachable!(),
        None => {
            let last = parser.parse(&buf);
            assert_eq!(last, whole, "resumed parse of the whole differs");
        }
    }
});
