//! Known bugs of SMTP clients and MIME builders, each turned into a test: the fault table, the
//! security bugs of peers, and SMTP smuggling end to end.

#[cfg(feature = "tls")]
mod faults;
mod peers;
mod smuggling;
