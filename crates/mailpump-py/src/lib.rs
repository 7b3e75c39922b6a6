//! Python bindings for mailpump: conversions and error mapping only.

use pyo3::prelude::*;

#[pymodule]
mod _mailpump {
    #[pymodule_export]
    #[allow(non_upper_case_globals)]
    const __version__: &str = mailpump::VERSION;
}
