//! SMTP: the wire encoding of message bodies and the client.

pub mod dotstuff;
