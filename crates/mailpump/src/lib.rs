//! mailpump: build e-mail messages as a stream and send them over SMTP.
//!
//! A re-creation of LuaSocket's `socket.smtp`, `mime` and `ltn12` modules: messages are described
//! as a tree of parts, encoded lazily chunk by chunk (constant memory for any attachment size), and
//! sent by a blocking SMTP client that normalises and dot-stuffs the body on the fly.

pub mod error;
pub mod filter;
pub mod mime;
pub mod smtp;
pub mod source;

pub use error::{BoxError, Error, MessageError};
pub use filter::{Chain, Filter};
pub use source::Source;

/// The crate's version, as written in the default `X-Mailer` header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
