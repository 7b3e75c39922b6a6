//! `create`: a Python socket-like object (`settimeout`, `connect`, `sendall`, `recv`, `close`) as
//! the core's [`Transport`], so that the client (TLS included) talks through it.

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Duration;

use mailpump::smtp::transport::Transport;
use pyo3::exceptions::{PyBrokenPipeError, PyConnectionError, PyException, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::PythonError;

/// A Python exception raised by the socket object, as the `io::Error` the client understands:
/// timeouts and lost connections keep their kind, anything else carries the exception itself.
fn to_io(py: Python<'_>, e: PyErr) -> io::Error {
    if !e.is_instance_of::<PyException>(py) {
        // Ctrl-C (or SystemExit) inside the socket's method: re-raised as itself after the call.
        crate::interrupt::set_pending(py, &e);
    }
    let kind = if e.is_instance_of::<PyTimeoutError>(py) {
        io::ErrorKind::TimedOut
    } else if e.is_instance_of::<PyBrokenPipeError>(py) {
        io::ErrorKind::BrokenPipe
    } else if e.is_instance_of::<PyConnectionError>(py) {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, PythonError(e))
}

/// A socket made by the caller's `create()`.
pub struct PyTransport {
    sock: Py<PyAny>,
    loopback: bool,
    /// Bytes a `recv()` returned beyond what was asked for: handed out before the next call.
    surplus: Vec<u8>,
}

impl PyTransport {
    /// Calls `create()`, sets the timeout and connects to `(server, port)`, LuaSocket's order
    /// (`tp.connect`). The peer counts as loopback only if `getpeername()` says so.
    pub fn connect(
        py: Python<'_>,
        create: &Bound<'_, PyAny>,
        server: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Self, io::Error> {
        let sock = create.call0().map_err(|e| to_io(py, e))?;
        sock.call_method1("settimeout", (timeout.as_secs_f64(),))
            .map_err(|e| to_io(py, e))?;
        sock.call_method1("connect", ((server, port),))
            .map_err(|e| to_io(py, e))?;
        let loopback = sock
            .call_method0("getpeername")
            .ok()
            .and_then(|peer| peer.get_item(0).ok())
            .and_then(|host| host.extract::<String>().ok())
            .and_then(|host| host.parse::<IpAddr>().ok())
            .is_some_and(|ip| ip.is_loopback());
        Ok(Self {
            sock: sock.unbind(),
            loopback,
            surplus: Vec::new(),
        })
    }
}

impl Read for PyTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.surplus.is_empty() {
            let n = self.surplus.len().min(buf.len());
            buf[..n].copy_from_slice(&self.surplus[..n]);
            self.surplus.drain(..n);
            return Ok(n);
        }
        Python::attach(|py| {
            let data = self
                .sock
                .bind(py)
                .call_method1("recv", (buf.len(),))
                .map_err(|e| to_io(py, e))?;
            let bytes = data.cast::<PyBytes>().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "recv() must return bytes")
            })?;
            let bytes = bytes.as_bytes();
            // A socket should not return more than it was asked for; if one does, the rest is
            // kept for the next read rather than lost.
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            self.surplus.extend_from_slice(&bytes[n..]);
            Ok(n)
        })
    }
}

impl Write for PyTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Python::attach(|py| {
            self.sock
                .bind(py)
                .call_method1("sendall", (PyBytes::new(py, buf),))
                .map_err(|e| to_io(py, e))?;
            Ok(buf.len())
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for PyTransport {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        Python::attach(|py| {
            self.sock
                .bind(py)
                .call_method1("settimeout", (timeout.map(|t| t.as_secs_f64()),))
                .map(drop)
                .map_err(|e| to_io(py, e))
        })
    }

    fn shutdown(&mut self) {
        Python::attach(|py| {
            // The client is giving the connection up; a failing close changes nothing.
            let _ = self.sock.bind(py).call_method0("close");
        });
    }

    fn peer_is_loopback(&self) -> bool {
        self.loopback
    }

    fn has_pending_input(&mut self) -> io::Result<bool> {
        // Only the kept surplus can be seen without blocking (see the trait's docs).
        Ok(!self.surplus.is_empty())
    }
}
