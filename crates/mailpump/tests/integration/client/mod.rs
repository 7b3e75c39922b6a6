//! The SMTP client against a scripted server on 127.0.0.1.

mod auth;
#[cfg(unix)]
mod lmtp;
mod many;
mod session;
#[cfg(feature = "tls")]
mod tls;
mod unsolicited;
#[cfg(not(feature = "tls"))]
mod without_tls;
