//! Errors raised while describing or encoding a message.

use std::fmt;

/// Any error a foreign piece (a Python source or filter, an I/O device) may report through a chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A message description that cannot be encoded safely; raised before any byte is produced.
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
    pub fn in_part(part: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            part: part.into(),
            header: None,
            reason: reason.into(),
        }
    }

    /// An error in header `header` of `part`.
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
