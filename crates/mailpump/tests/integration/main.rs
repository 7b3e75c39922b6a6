//! The integration tests of the `mailpump` crate, as one test binary: the client against a
//! scripted server, the streaming filters, the message encoder, and the hardening suites. Shared
//! pieces (the scripted server, readers of generated mail) are in `support`.
//!
//! `cargo test -p mailpump` runs them with TLS; `cargo test -p mailpump --no-default-features`
//! runs them without (the TLS-only modules and tests are gated on the `tls` feature, and
//! `client::without_tls` runs only then).

mod client;
#[cfg(feature = "dkim")]
mod dkim;
mod filters;
mod hardening;
mod message;
mod pool;
mod support;
