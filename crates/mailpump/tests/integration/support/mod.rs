//! What the tests share: a scripted SMTP server and the helpers that open a session on it
//! (`server`), readers and makers of mail (`mail`), and runners of streaming filters (`filter`).

#![allow(dead_code, clippy::missing_panics_doc)]

mod filter;
mod mail;
mod server;

pub use filter::*;
pub use mail::*;
pub use server::*;

use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

/// A proptest configuration of `cases` cases that keeps its regression seeds next to the test's
/// source file, as `<file>.proptest-regressions`. (proptest's default looks for a `main.rs` or
/// `lib.rs` above the source, finds this binary's `main.rs`, and would keep them in a
/// `proptest-regressions/` tree beside it instead.)
#[must_use]
pub fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}
