//! Streaming filters: resumable transformations of a byte stream.
//!
//! A [`Filter`] is LTN12's filter made into a state machine: it may be fed its input in any number of
//! pieces of any size and produces byte-identical output for every split. [`Chain`] composes filters
//! so that each one's output feeds the next without a copy per chunk on the caller's side.

use crate::BoxError;

/// A resumable byte-stream transformation.
///
/// Native filters never fail; the `Result` exists so that filters written in another language (a
/// Python callable, say) can report their errors through the same chain.
///
/// ```
/// use mailpump::{BoxError, Chain, Filter};
/// use mailpump::mime::eol::Normalize;
///
/// /// Upper-cases ASCII; holds nothing back.
/// struct Upper;
///
/// impl Filter for Upper {
///     fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
///         out.extend(input.iter().map(u8::to_ascii_uppercase));
///         Ok(())
///     }
///     fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), BoxError> {
///         Ok(())
///     }
/// }
///
/// let mut chain = Chain::new(vec![Box::new(Normalize::crlf()), Box::new(Upper)]);
/// let mut out = Vec::new();
/// chain.update(b"a\nb", &mut out)?;
/// chain.finish(&mut out)?;
/// assert_eq!(out, b"A\r\nB");
/// # Ok::<(), BoxError>(())
/// ```
pub trait Filter: Send {
    /// Transforms `input`, appending what is ready to `out`. Bytes the filter must see more input
    /// to decide on are held back until the next call or [`Filter::finish`].
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError>;

    /// Ends the input: appends everything still held back, then returns the filter to its initial
    /// state so it can be reused for a new stream.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError>;

    /// A new filter of the same kind and settings in its initial state, whatever this one has
    /// seen, so that a stream can be encoded again from its start (see
    /// [`Source::replay`](crate::Source::replay)). `None`, the default, when the filter cannot
    /// make one (a filter written in another language, whose state mailpump cannot see).
    ///
    /// ```
    /// use mailpump::Filter;
    /// use mailpump::mime::base64::Base64Encoder;
    ///
    /// let mut used = Base64Encoder::new();
    /// used.update(b"a", &mut Vec::new())?; // one byte held back
    /// let mut fresh = used.fresh().expect("a native filter");
    /// let mut out = Vec::new();
    /// fresh.update(b"hi", &mut out)?;
    /// fresh.finish(&mut out)?;
    /// assert_eq!(out, b"aGk=");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        None
    }

    /// How many levels of filters this one is made of, itself included (see
    /// [`Source::nesting`](crate::Source::nesting)): 1 for a filter that wraps no other.
    fn nesting(&self) -> usize {
        1
    }
}

impl<F: Filter + ?Sized> Filter for Box<F> {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        (**self).update(input, out)
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        (**self).finish(out)
    }
    fn fresh(&self) -> Option<Box<dyn Filter>> {
        (**self).fresh()
    }
    fn nesting(&self) -> usize {
        (**self).nesting()
    }
}

/// Filters applied one after the other (LTN12's `filter.chain`).
///
/// ```
/// use mailpump::{Chain, Filter};
/// use mailpump::mime::base64::Base64Encoder;
/// use mailpump::mime::wrap::LineWrap;
///
/// let mut chain = Chain::new(vec![Box::new(Base64Encoder::new())]);
/// chain.push(Box::new(LineWrap::new(76)));
/// assert_eq!(chain.len(), 2);
/// let mut out = Vec::new();
/// chain.update(b"hi", &mut out)?;
/// chain.finish(&mut out)?;
/// assert_eq!(out, b"aGk=\r\n");
/// # Ok::<(), mailpump::BoxError>(())
/// ```
#[derive(Default)]
pub struct Chain {
    filters: Vec<Box<dyn Filter>>,
    /// One scratch buffer per link between two filters, reused for every chunk.
    links: Vec<Vec<u8>>,
}

impl Chain {
    /// A chain of `filters`, applied first to last.
    ///
    /// ```
    /// use mailpump::Chain;
    /// use mailpump::mime::eol::Normalize;
    /// use mailpump::smtp::dotstuff::DotStuff;
    ///
    /// let chain = Chain::new(vec![Box::new(Normalize::crlf()), Box::new(DotStuff::new())]);
    /// assert_eq!(chain.len(), 2);
    /// ```
    #[must_use]
    pub fn new(filters: Vec<Box<dyn Filter>>) -> Self {
        let links = vec![Vec::new(); filters.len().saturating_sub(1)];
        Self { filters, links }
    }

    /// Appends `filter` at the end of the chain.
    ///
    /// ```
    /// use mailpump::Chain;
    /// use mailpump::mime::eol::Normalize;
    ///
    /// let mut chain = Chain::default();
    /// assert!(chain.is_empty());
    /// chain.push(Box::new(Normalize::crlf()));
    /// assert_eq!(chain.len(), 1);
    /// ```
    pub fn push(&mut self, filter: Box<dyn Filter>) {
        if !self.filters.is_empty() {
            self.links.push(Vec::new());
        }
        self.filters.push(filter);
    }

    /// The number of filters in the chain.
    ///
    /// ```
    /// use mailpump::Chain;
    /// use mailpump::mime::qp::QpDecoder;
    ///
    /// assert_eq!(Chain::new(vec![Box::new(QpDecoder::new())]).len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether the chain has no filter (it then copies its input).
    ///
    /// ```
    /// use mailpump::{Chain, Filter};
    ///
    /// // An empty chain passes its input through.
    /// let mut chain = Chain::new(Vec::new());
    /// assert!(chain.is_empty());
    /// let mut out = Vec::new();
    /// chain.update(b"as is", &mut out)?;
    /// assert_eq!(out, b"as is");
    /// # Ok::<(), mailpump::BoxError>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// A chain of fresh copies of these filters (see [`Filter::fresh`]), if every one can make one.
    pub(crate) fn fresh_chain(&self) -> Option<Self> {
        let filters = self
            .filters
            .iter()
            .map(|f| Filter::fresh(f))
            .collect::<Option<Vec<_>>>()?;
        Some(Self::new(filters))
    }

    /// Runs `input` (or the end of input, when `None`) through every filter, appending to `out`.
    /// A loop, not one call per filter, so that a chain of any length fits on the stack.
    fn run(&mut self, input: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), BoxError> {
        let finishing = input.is_none();
        let last = self.filters.len() - 1;
        for i in 0..=last {
            let (before, after) = self.links.split_at_mut(i);
            let fed = if i == 0 {
                input
            } else {
                Some(before[i - 1].as_slice())
            };
            let dst = if i == last {
                &mut *out
            } else {
                let link = &mut after[0];
                link.clear();
                link
            };
            let filter = &mut self.filters[i];
            match fed {
                // Nothing came through the previous filter: the rest has nothing to do.
                Some([]) if i > 0 && !finishing => return Ok(()),
                Some([]) if i > 0 => {}
                Some(bytes) => filter.update(bytes, dst)?,
                None => {}
            }
            if finishing {
                filter.finish(dst)?;
            }
        }
        Ok(())
    }
}

impl Filter for Chain {
    fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        if self.filters.is_empty() {
            out.extend_from_slice(input);
            return Ok(());
        }
        self.run(Some(input), out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
        if self.filters.is_empty() {
            return Ok(());
        }
        self.run(None, out)
    }

    fn fresh(&self) -> Option<Box<dyn Filter>> {
        Some(Box::new(self.fresh_chain()?))
    }

    fn nesting(&self) -> usize {
        1 + self.filters.iter().map(Filter::nesting).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles every byte; holds nothing back.
    struct Double;
    impl Filter for Double {
        fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
            for &b in input {
                out.extend_from_slice(&[b, b]);
            }
            Ok(())
        }
        fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), BoxError> {
            Ok(())
        }
    }

    /// Holds everything back until the end.
    #[derive(Default)]
    struct Hold(Vec<u8>);
    impl Filter for Hold {
        fn update(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<(), BoxError> {
            self.0.extend_from_slice(input);
            Ok(())
        }
        fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BoxError> {
            out.append(&mut self.0);
            Ok(())
        }
    }

    #[test]
    fn chain_feeds_each_filter_and_flushes_in_order() {
        let mut chain = Chain::new(vec![
            Box::new(Double),
            Box::new(Hold::default()),
            Box::new(Double),
        ]);
        let mut out = Vec::new();
        chain.update(b"ab", &mut out).unwrap();
        assert!(out.is_empty(), "the middle filter holds everything back");
        chain.finish(&mut out).unwrap();
        assert_eq!(out, b"aaaabbbb");
    }

    #[test]
    fn empty_chain_is_identity() {
        let mut chain = Chain::default();
        let mut out = Vec::new();
        chain.update(b"xyz", &mut out).unwrap();
        chain.finish(&mut out).unwrap();
        assert_eq!(out, b"xyz");
    }
}
