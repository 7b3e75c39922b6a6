//! End-of-line normalisation: LuaSocket's `mime.normalize(marker)` (`eol`).
//!
//! RFC 2045 §2.10 and RFC 5322 §2.3 want CRLF line breaks in canonical text; this filter turns CR,
//! LF, CRLF and LFCR into a chosen marker (CRLF by default), with LuaSocket's exact rules, quirks
//! included: a CR or LF is one break, a CRLF or LFCR pair is one break, and a repeated CR or LF is
//! a second break, so `"\r\r\n"` gives three markers and `"\n\n\r"` three too (LuaSocket's manual
//! admits that blank-line counts in mixed input are not guaranteed).

use crate::{BoxError, Filter};

/// Whether `c` is a line-break candidate (LuaSocket's `eolcandidate`).
fn candidate(c: u8) -> bool {
    c == b'\r' || c == b'\n'
}

/// LuaSocket's `mime.normalize(marker)`: every line break becomes `marker`.
///
/// ```
/// use mailpump::Filter;
/// use mailpump::mime::eol::Normalize;
///
/// let mut crlf = Normalize::crlf();
/// let mut out = Vec::new();
/// crlf.update(b"unix\nmac\rdos\r\n", &mut out)?;
/// crlf.finish(&mut out)?;
/// assert_eq!(out, b"unix\r\nmac\r\ndos\r\n");
///
/// let mut lf = Normalize::new(b"\n");
/// out.clear();
/// lf.update(b"a\r\nb\r", &mut out)?;
/// lf.finish(&mut out)?;
/// assert_eq!(out, b"a\nb\n");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Normalize {
    marker: Vec<u8>,
    /// The previous byte if it is a break candidate still waiting for its pair, else 0.
    last: u8,
}

impl Normalize {
    /// A normaliser writing `marker` for each line break.
    ///
    /// ```
    /// use mailpump::mime::eol::Normalize;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("a\r\nb\n")), Box::new(Normalize::new(b"\n")));
    /// assert_eq!(collect(&mut source)?, b"a\nb\n");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn new(marker: &[u8]) -> Self {
        Self::with_state(0, marker)
    }

    /// A normaliser to CRLF, the canonical form of RFC 5322 §2.3.
    ///
    /// ```
    /// use mailpump::mime::eol::Normalize;
    /// use mailpump::source::{BytesSource, FilteredSource, collect};
    ///
    /// let mut source = FilteredSource::new(Box::new(BytesSource::new("a\nb\r")), Box::new(Normalize::crlf()));
    /// assert_eq!(collect(&mut source)?, b"a\r\nb\r\n");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn crlf() -> Self {
        Self::new(b"\r\n")
    }

    /// A normaliser in LuaSocket's state `ctx` (the unpaired candidate, or anything else for none).
    pub(crate) fn with_state(ctx: u8, marker: &[u8]) -> Self {
        Self {
            marker: marker.to_vec(),
            last: ctx,
        }
    }

    /// The state LuaSocket returns as the second value of `eol`.
    pub(crate) fn ctx(&self) -> u8 {
        if candidate(self.last) { self.last } else { 0 }
    }

    /// LuaSocket's `eolprocess` for one candidate byte.
    fn push_candidate(&mut self, c: u8, out: &mut Vec<u8>) {
        if candidate(self.last) {
            if c == self.last {
                out.extend_from_slice(&self.marker);
            }
            self.last = 0;
        } else {
            out.extend_from_slice(&self.marker);
            self.last = c;
        }
    }

    /// [`Filter::update`] without the `Result`.
    pub(crate) fn normalize(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while let Some(i) = memchr::memchr2(b'\r', b'\n', input) {
            if i > 0 {
                out.extend_from_slice(&input[..i]);
                self.last = 0;
            }
            self.push_candidate(input[i], out);
            input = &input[i + 1..];
        }
        if !input.is_empty() {
            out.extend_from_slice(input);
            self.last = 0;
        }
    }
}

impl Filter for Normalize {
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(Self::new(&self.marker)))
    }

    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.normalize(input, out);
        Ok(())
    }

    /// Nothing is held back: a pending candidate has already produced its marker.
    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), BoxError> {
        self.last = 0;
        Ok(())
    }
}
