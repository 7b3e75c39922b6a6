//! Errors raised while describing or encoding a message.

use std::fmt;

/// Any error a foreign piece (a Python source or filter, an I/O device) may report through a chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A message description that cannot be encoded safely; raised before any byte is produced.
///
/// ```
/// use mailpump::{MessageEncoder, MessageOptions, Multipart, Part};
///
/// let message = Part::new().body(Multipart::new(vec![
///     Part::text("ok\r\n", "plain"),
///     Part::text("ok\r\n", "plain").header("Bad Name", "x"),
/// ]));
/// let error = MessageEncoder::new(message, MessageOptions::default()).unwrap_err();
/// assert_eq!(error.part, "message.parts[1]");
/// assert_eq!(error.header.as_deref(), Some("Bad Name"));
/// println!("{error}"); // message.parts[1], header "Bad Name": ...
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    /// Where in the message tree: `message`, `message.parts[1]`, `message.parts[1].parts[0]`.
    pub part: String,
    /// The header at fault, as the caller spelled it, if the fault is in a header.
    pub header: Option<String>,
    /// What is wrong, and what to do about it.
    pub reason: String,
}

impl MessageError {
    /// An error in `part`, outside any header.
    ///
    /// ```
    /// use mailpump::MessageError;
    ///
    /// let error = MessageError::in_part("message", "the body source is closed");
    /// assert_eq!(error.to_string(), "message: the body source is closed");
    /// ```
    pub fn in_part(part: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            part: part.into(),
            header: None,
            reason: reason.into(),
        }
    }

    /// An error in header `header` of `part`.
    ///
    /// ```
    /// use mailpump::MessageError;
    ///
    /// let error = MessageError::in_header("message", "Subject", "too long");
    /// assert_eq!(error.to_string(), "message, header \"Subject\": too long");
    /// ```
    pub fn in_header(
        part: impl Into<String>,
        header: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            part: part.into(),
            header: Some(header.into()),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.header {
            Some(h) => write!(f, "{}, header {h:?}: {}", self.part, self.reason),
            None => write!(f, "{}: {}", self.part, self.reason),
        }
    }
}

impl std::error::Error for MessageError {}

/// An error while producing a message's bytes.
///
/// ```
/// use mailpump::{Body, Error, MessageEncoder, MessageOptions, Part, Source};
/// use mailpump::source::ReaderSource;
/// use std::io;
///
/// /// A reader that fails, like a disk with a bad sector.
/// struct Broken;
/// impl io::Read for Broken {
///     fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
///         Err(io::Error::other("bad sector"))
///     }
/// }
///
/// let body: Box<dyn Source> = Box::new(ReaderSource::new(Broken));
/// let mut encoder = MessageEncoder::new(Part::new().body(Body::Source(body)), MessageOptions::default())?;
/// let error = loop {
///     match encoder.next_chunk() {
///         Ok(Some(_)) => continue,
///         Ok(None) => panic!("the source fails"),
///         Err(e) => break e,
///     }
/// };
/// assert!(matches!(error, Error::Source(_)));
/// # Ok::<(), mailpump::MessageError>(())
/// ```
#[derive(Debug)]
pub enum Error {
    /// The message description is invalid.
    Message(MessageError),
    /// A body source failed; the message is incomplete and must not be sent.
    Source(BoxError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(e) => e.fmt(f),
            Self::Source(e) => write!(f, "message source failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Message(e) => Some(e),
            Self::Source(e) => Some(e.as_ref()),
        }
    }
}

impl From<MessageError> for Error {
    fn from(e: MessageError) -> Self {
        Self::Message(e)
    }
}
