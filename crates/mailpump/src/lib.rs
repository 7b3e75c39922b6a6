//! mailpump: build e-mail messages as a stream and send them over SMTP.
//!
//! A re-creation of `LuaSocket`'s `socket.smtp`, `mime` and `ltn12` modules: messages are described
//! as a tree of parts, encoded lazily chunk by chunk (constant memory for any attachment size), and
//! sent by a blocking SMTP client that normalises and dot-stuffs the body on the fly.
//!
//! - [`mime`]: the message tree ([`Part`], [`Body`], [`Multipart`]) and its encoder
//!   ([`MessageEncoder`]), and the streaming filters behind it (base64, quoted-printable, line
//!   wrapping, line-ending normalisation), each byte-identical for every split of its input.
//! - [`smtp`]: the blocking [`Client`] and the protocol pieces it is made of (reply parser,
//!   commands, capabilities, authentication), which work without any I/O.
//! - [`source`] and [`filter`]: LTN12's sources and filters as Rust traits ([`Source`], [`Filter`]).
//!
//! # Building a message
//!
//! ```
//! use mailpump::{MessageEncoder, MessageOptions, Multipart, Part};
//! use std::io::Read;
//!
//! let message = Part::new()
//!     .header("From", "Zoë <zoe@example.com>")
//!     .header("To", "bob@example.org")
//!     .header("Subject", "The report")
//!     .body(Multipart::new(vec![
//!         Part::text("Hello Bob, the report is attached.\r\n", "plain"),
//!         Part::attachment(b"%PDF-1.7 ...".to_vec(), Some("report.pdf"), None)?,
//!     ]));
//! // Every header is checked here, before a byte is produced.
//! let mut encoder = MessageEncoder::new(message, MessageOptions::default())?;
//! let mut text = String::new();
//! encoder.read_to_string(&mut text)?;
//! assert!(text.contains("Subject: The report\r\n"));
//! assert!(text.contains("Content-Type: application/pdf\r\n"));
//! assert!(text.contains("Content-Transfer-Encoding: base64\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sending it
//!
//! [`MessageEncoder`] is a [`Source`]: the client pulls it chunk by chunk while it writes to the
//! socket, so an attachment read with [`Part::attachment_file`] is never held in memory whole.
//!
//! ```no_run
//! use mailpump::{Address, Client, ClientConfig, Credentials, Envelope, MessageEncoder, MessageOptions, Part};
//!
//! let message = Part::text("Hello!\r\n", "plain")
//!     .header("From", "me@example.com")
//!     .header("To", "you@example.org")
//!     .header("Subject", "Hi");
//! let mut encoder = MessageEncoder::new(message, MessageOptions::default())?;
//!
//! // Port 587 with STARTTLS whenever the server offers it (`TlsPolicy::Auto`).
//! let config = ClientConfig { server: "smtp.example.com".into(), port: 587, ..ClientConfig::default() };
//! let mut client = Client::connect(&config)?;
//! client.greet(None)?;
//! client.auth(&Credentials::new("me@example.com", "app password"), None)?;
//! let envelope = Envelope::new(Address::parse("me@example.com")?, vec![Address::parse("you@example.org")?]);
//! let result = client.send(&envelope, &mut encoder, None)?;
//! println!("accepted: {:?}, server said: {}", result.accepted, result.reply.text());
//! client.quit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `tls` (default): STARTTLS and implicit TLS through rustls, with the Mozilla root
//!   certificates. Without it the client speaks plain SMTP only: [`TlsPolicy::Auto`] stays in
//!   plaintext, and a policy that requires TLS ([`TlsPolicy::StartTls`], [`TlsPolicy::Implicit`],
//!   `Auto` on port 465) fails with [`SmtpError::Tls`] of kind
//!   [`smtp::error::TlsKind::NotBuilt`] before any message is sent.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod error;
pub mod filter;
pub mod mime;
pub mod smtp;
pub mod source;

pub use error::{BoxError, Error, MessageError};
pub use filter::{Chain, Filter};
#[doc(no_inline)]
pub use mime::message::{
    Body, HeaderValue, MessageEncoder, MessageOptions, Multipart, Part, TransferEncoding,
};
#[doc(no_inline)]
pub use smtp::address::Address;
#[doc(no_inline)]
pub use smtp::auth::{Credentials, Mechanism};
#[doc(no_inline)]
pub use smtp::client::{Client, ClientConfig, Envelope, SendResult, TlsPolicy};
#[doc(no_inline)]
pub use smtp::error::SmtpError;
#[doc(no_inline)]
pub use smtp::pool::{Job, Pool, PoolOptions};
#[doc(no_inline)]
pub use smtp::reply::Reply;
pub use source::Source;

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The crate's version, as written in the default `X-Mailer` header.
///
/// ```
/// assert!(mailpump::VERSION.starts_with(char::is_numeric));
/// ```
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
