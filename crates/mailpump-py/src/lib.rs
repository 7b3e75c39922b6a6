//! Python bindings for mailpump: conversions and error mapping only.
//!
//! Every rule about SMTP and MIME lives in the `mailpump` crate; this crate turns Python values
//! into core values and core errors into the exceptions of `mailpump.errors`.

// pyo3 extracts `#[pyfunction]` arguments by value; taking them by reference is not an option.
#![allow(clippy::needless_pass_by_value)]

mod dkim;
mod dsn;
mod errors;
mod filter;
mod interrupt;
mod message;
mod mime;
mod options;
mod pool;
mod pytls;
mod sink;
mod smtp;
mod source;
mod transport;

use pyo3::prelude::*;

#[pymodule]
mod _mailpump {
    #[pymodule_export]
    #[allow(non_upper_case_globals)]
    const __version__: &str = mailpump::VERSION;

    #[pymodule_export]
    use crate::dkim::PyDkim;
    #[cfg(feature = "test-hooks")]
    #[pymodule_export]
    use crate::errors::_panic_for_tests;
    #[pymodule_export]
    use crate::filter::{NativeFilter, filter_chain};
    #[pymodule_export]
    use crate::message::{MessageSource, NativePart, attachment, message, text};
    #[pymodule_export]
    use crate::mime::{
        b64, decode, dot, encode, eol, normalize, qp, qpwrp, stuff, unb64, unqp, wrap, wrp,
    };
    #[pymodule_export]
    use crate::pool::{PyPool, Ticket};
    #[pymodule_export]
    use crate::sink::{NativeSink, pump_native, sink_file, sink_list, sink_null};
    #[pymodule_export]
    use crate::smtp::{PyReply, PySendResult, Session, send};
    #[pymodule_export]
    use crate::source::{
        NativeSource, source_cat, source_chain, source_empty, source_file, source_string,
    };
}
