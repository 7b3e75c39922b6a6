//! MIME: the streaming content-transfer encodings and the message encoder.

pub mod address_header;
pub mod base64;
pub mod boundary;
pub mod date;
#[cfg(feature = "dkim")]
pub mod dkim;
pub mod encoded_word;
pub mod eol;
pub mod header_block;
pub mod headers;
mod layout;
pub mod lowlevel;
pub mod message;
mod part;
pub mod qp;
pub mod wrap;
