//! The body of a message sent with `BDAT` (CHUNKING, RFC 3030): no dot-stuffing and no
//! end-of-data scan, since each chunk says how many octets it holds, but the same line ends as
//! with DATA (every bare CR and bare LF made CRLF, RFC 5321 §2.3.8), so that the server stores the
//! same bytes whichever command carried them.

/// The line-end normaliser of a `BDAT` body: [`crate::smtp::dotstuff::WireEncoder`] without the
/// dot-stuffing and with no end-of-data mark. A body that does not end with a line break gets
/// one, as with DATA.
///
/// ```
/// use mailpump::smtp::chunking::CrlfEncoder;
///
/// let mut crlf = CrlfEncoder::new();
/// let mut out = Vec::new();
/// crlf.encode(b"Subject: x\n\n.kept\r\nbare\rend", &mut out);
/// crlf.end(&mut out);
/// assert_eq!(out, b"Subject: x\r\n\r\n.kept\r\nbare\r\nend\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct CrlfEncoder {
    /// The last byte was a CR, already written as CRLF: an LF right after it is skipped.
    after_cr: bool,
    /// The output is empty or ends with CRLF.
    line_start: bool,
}

impl Default for CrlfEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl CrlfEncoder {
    /// A new encoder, at the start of a message.
    #[must_use]
    pub fn new() -> Self {
        Self {
            after_cr: false,
            line_start: true,
        }
    }

    /// Encodes `input`, appending to `out`. The output does not depend on how the input is split.
    pub fn encode(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 16);
        while !input.is_empty() {
            let end = memchr::memchr2(b'\r', b'\n', input).unwrap_or(input.len());
            if end > 0 {
                out.extend_from_slice(&input[..end]);
                self.line_start = false;
                self.after_cr = false;
                if end == input.len() {
                    break;
                }
            }
            let c = input[end];
            input = &input[end + 1..];
            if c == b'\n' && self.after_cr {
                self.after_cr = false;
                continue;
            }
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
            self.after_cr = c == b'\r';
        }
    }

    /// Ends the message: a final CRLF when the last line has none. Returns to the start.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        *self = Self::new();
    }
}

/// Appends the command of a chunk of `size` octets (RFC 3030 §2): `BDAT size`, with ` LAST` for
/// the last chunk.
///
/// ```
/// let mut out = Vec::new();
/// mailpump::smtp::chunking::bdat(12, true, &mut out);
/// assert_eq!(out, b"BDAT 12 LAST\r\n");
/// ```
pub fn bdat(size: usize, last: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"BDAT ");
    out.extend_from_slice(size.to_string().as_bytes());
    if last {
        out.extend_from_slice(b" LAST");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::CrlfEncoder;
    use crate::smtp::dotstuff::WireEncoder;

    fn whole(input: &[u8]) -> Vec<u8> {
        let mut crlf = CrlfEncoder::new();
        let mut out = Vec::new();
        crlf.encode(input, &mut out);
        crlf.end(&mut out);
        out
    }

    #[test]
    fn the_same_bytes_for_every_split() {
        let input = b"a\r\n\r\n.\r\nb\rc\n\rd\n\ne\r\r\n.x\r".repeat(37);
        let expected = whole(&input);
        for size in [1, 2, 3, 76, 4096] {
            let mut crlf = CrlfEncoder::new();
            let mut out = Vec::new();
            for piece in input.chunks(size) {
                crlf.encode(piece, &mut out);
            }
            crlf.end(&mut out);
            assert_eq!(out, expected, "split into {size}");
        }
    }

    #[test]
    fn the_bytes_data_delivers() {
        // What a server stores from DATA is the wire form without the stuffing and the mark.
        for input in [
            &b""[..],
            b"x",
            b"a\nb",
            b".\r\n..\n.",
            b"\r\r\n\n",
            b"end\r\n",
        ] {
            let mut wire = WireEncoder::new();
            let mut sent = Vec::new();
            wire.encode(input, &mut sent);
            wire.end(&mut sent);
            let body = &sent[..sent.len() - 3];
            let unstuffed: Vec<u8> = String::from_utf8_lossy(body)
                .split("\r\n")
                .map(|line| line.strip_prefix('.').unwrap_or(line).to_owned())
                .collect::<Vec<_>>()
                .join("\r\n")
                .into_bytes();
            assert_eq!(whole(input), unstuffed, "{input:?}");
        }
    }
}
