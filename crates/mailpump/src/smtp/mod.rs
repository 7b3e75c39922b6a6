//! SMTP: the wire encoding of message bodies and the client.

pub mod address;
pub mod auth;
pub mod capability;
pub mod chunking;
pub mod client;
pub mod command;
pub mod connector;
pub mod dotstuff;
pub mod dsn;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod header_envelope;
pub mod pool;
pub mod reply;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod transcript;
pub mod transport;
