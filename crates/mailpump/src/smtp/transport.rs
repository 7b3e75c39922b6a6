//! Transports: the byte streams an SMTP client talks over.
//!
//! The client never touches a socket directly: it drives a [`Transport`], so the same dialogue runs
//! over plain TCP ([`TcpTransport`]), over a Unix-domain socket (`UnixTransport`, for local LMTP
//! servers such as Dovecot's), over TLS wrapped around any transport
//! ([`crate::smtp::tls::TlsTransport`]), or over a stream the caller supplies (the Python bindings
//! adapt a `create()` socket factory to this trait).
//!
//! A server name is a Unix-domain socket's path when it starts with `unix:` (the rest is the
//! path) or contains a `/` (no host name or address does): see [`unix_socket_path`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// The path of the Unix-domain socket `server` names, or `None` for a host name or address:
/// `unix:PATH`, or any name with a `/` in it (`/var/run/dovecot/lmtp`, `./lmtp.sock`).
///
/// ```
/// use mailpump::smtp::transport::unix_socket_path;
/// use std::path::Path;
///
/// assert_eq!(unix_socket_path("/var/run/dovecot/lmtp"), Some(Path::new("/var/run/dovecot/lmtp")));
/// assert_eq!(unix_socket_path("unix:lmtp.sock"), Some(Path::new("lmtp.sock")));
/// assert_eq!(unix_socket_path("mail.example.com"), None);
/// assert_eq!(unix_socket_path("[::1]"), None);
/// ```
#[must_use]
pub fn unix_socket_path(server: &str) -> Option<&Path> {
    match server.strip_prefix("unix:") {
        Some(path) => Some(Path::new(path)),
        None if server.contains('/') => Some(Path::new(server)),
        None => None,
    }
}

/// A bidirectional byte stream with per-operation timeouts.
///
/// Every read and write must give up with an [`io::ErrorKind::TimedOut`] or
/// [`io::ErrorKind::WouldBlock`] error once the timeout set by [`Transport::set_timeout`] has
/// passed without progress (`LuaSocket`'s blocking `'b'` timeout mode: a limit per I/O call).
///
/// ```no_run
/// use mailpump::smtp::transport::TcpTransport;
/// use mailpump::{Client, ClientConfig};
/// use std::time::Duration;
///
/// // Any `Transport` can carry a session; here a TCP connection made by the caller.
/// let config = ClientConfig { server: "127.0.0.1".into(), port: 2525, ..ClientConfig::default() };
/// let tcp = TcpTransport::connect("127.0.0.1", 2525, Duration::from_secs(10))?;
/// let mut client = Client::from_transport(Box::new(tcp), &config)?;
/// client.greet(None)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Transport: Read + Write + Send {
    /// Sets the limit for each later read and write; `None` blocks without limit.
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Closes the stream in both directions, ignoring errors: the client calls it when it gives up
    /// on a connection it can no longer trust.
    fn shutdown(&mut self);

    /// Whether the peer is on this machine. Credentials may cross an unencrypted connection only
    /// to a loopback peer (unless the caller explicitly allows it).
    fn peer_is_loopback(&self) -> bool;

    /// Whether the peer has sent something that a read would return at once, found out without
    /// blocking and without consuming it. The client asks before it writes a command (or a
    /// pipelined batch of commands): the server speaks only when spoken to (RFC 5321 §4.2,
    /// RFC 2920 §3.1), so anything already waiting was sent unasked and would otherwise be taken
    /// for the reply to the next command.
    ///
    /// The end of the stream counts as pending (the next read reports it). Only data the client
    /// would read counts: bytes of a lower layer that carry none (a TLS session ticket or key
    /// update) do not.
    ///
    /// The default returns `Ok(false)`, "cannot tell", for transports with no non-blocking way
    /// to look. Over such a transport (the Python bindings' `create()` socket adapter is one) the
    /// client still catches extra bytes that arrive together with a reply, but not a reply sent
    /// unasked between two commands.
    ///
    /// ```
    /// use mailpump::smtp::transport::{TcpTransport, Transport};
    /// use std::io::{Read, Write};
    /// use std::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpTransport::from_stream(TcpStream::connect(listener.local_addr()?)?)?;
    /// let (mut server, _) = listener.accept()?;
    /// assert!(!client.has_pending_input()?); // nothing sent: no wait, no data
    /// server.write_all(b"250 unasked\r\n")?;
    /// let mut first = [0; 1];
    /// client.read_exact(&mut first)?; // waits for the segment...
    /// assert!(client.has_pending_input()?); // ...whose other bytes are still there
    /// client.read_exact(&mut [0; 12])?;
    /// assert!(!client.has_pending_input()?);
    /// drop(server);
    /// assert_eq!(client.read(&mut first)?, 0); // the end of the stream...
    /// assert!(client.has_pending_input()?); // ...counts as pending
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn has_pending_input(&mut self) -> io::Result<bool> {
        Ok(false)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_timeout(timeout)
    }

    fn shutdown(&mut self) {
        (**self).shutdown();
    }

    fn peer_is_loopback(&self) -> bool {
        (**self).peer_is_loopback()
    }

    fn has_pending_input(&mut self) -> io::Result<bool> {
        (**self).has_pending_input()
    }
}

/// The error inside the [`io::Error`] of [`TcpTransport::connect`] when the host name did not
/// resolve to any address (the resolver's own error is its source): "no such host" reads
/// differently from "nothing listens there".
#[derive(Debug)]
pub struct Unresolved {
    /// The name that did not resolve.
    pub host: String,
    source: io::Error,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.source)
    }
}

impl std::error::Error for Unresolved {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Whether `error` says that a host name did not resolve (see [`Unresolved`]).
///
/// ```
/// use mailpump::smtp::transport::{TcpTransport, is_unresolved};
/// use std::time::Duration;
///
/// let error = TcpTransport::connect("no-such-host.invalid", 25, Duration::from_secs(5)).unwrap_err();
/// assert!(is_unresolved(&error));
/// ```
#[must_use]
pub fn is_unresolved(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(<dyn std::error::Error + Send + Sync>::is::<Unresolved>)
}

/// A TCP connection with Nagle's algorithm off and read and write timeouts.
///
/// ```no_run
/// use mailpump::smtp::transport::{TcpTransport, Transport};
/// use std::time::Duration;
///
/// let mut tcp = TcpTransport::connect("localhost", 25, Duration::from_secs(30))?;
/// println!("connected to {}", tcp.peer_addr());
/// tcp.set_timeout(Some(Duration::from_secs(5)))?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
    peer: SocketAddr,
}

impl TcpTransport {
    /// Connects to `host:port`, trying every address the name resolves to in turn, each attempt
    /// bounded by `timeout`, which also becomes the read and write timeout. Returns the last
    /// attempt's error when none succeeds.
    ///
    /// Name resolution itself uses the system resolver, which has its own limits.
    ///
    /// ```no_run
    /// use mailpump::smtp::transport::TcpTransport;
    /// use std::time::Duration;
    ///
    /// let tcp = TcpTransport::connect("[::1]", 25, Duration::from_secs(5))?;
    /// # drop(tcp);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<Self> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the timeout must be greater than zero",
            ));
        }
        // A bracketed IPv6 literal ("[::1]") is accepted as written in URLs.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addrs = (host, port).to_socket_addrs().map_err(|e| {
            io::Error::new(
                e.kind(),
                Unresolved {
                    host: host.to_owned(),
                    source: e,
                },
            )
        })?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    let mut transport = Self::from_stream(stream)?;
                    transport.set_timeout(Some(timeout))?;
                    return Ok(transport);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address");
            io::Error::new(
                io::ErrorKind::NotFound,
                Unresolved {
                    host: host.to_owned(),
                    source: none,
                },
            )
        }))
    }

    /// Wraps a connected stream (turning Nagle's algorithm off: the client writes whole commands
    /// and large body blocks, and must not wait 40 ms for an ACK before the end-of-data mark).
    ///
    /// ```no_run
    /// use mailpump::smtp::transport::TcpTransport;
    ///
    /// let stream = std::net::TcpStream::connect(("127.0.0.1", 25))?;
    /// let transport = TcpTransport::from_stream(stream)?;
    /// # drop(transport);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_stream(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        Ok(Self { stream, peer })
    }

    /// The address of the peer.
    ///
    /// ```
    /// use mailpump::smtp::transport::{TcpTransport, Transport};
    /// use std::net::{TcpListener, TcpStream};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let transport = TcpTransport::from_stream(TcpStream::connect(listener.local_addr()?)?)?;
    /// assert_eq!(transport.peer_addr(), listener.local_addr()?);
    /// assert!(transport.peer_is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl Read for TcpTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for TcpTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.stream.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Transport for TcpTransport {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // std refuses a zero duration; the smallest positive one is the closest meaning.
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        self.stream.set_read_timeout(timeout)?;
        self.stream.set_write_timeout(timeout)
    }

    fn shutdown(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn peer_is_loopback(&self) -> bool {
        match self.peer {
            SocketAddr::V4(a) => a.ip().is_loopback(),
            SocketAddr::V6(a) => {
                a.ip().is_loopback() || a.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }

    /// A one-byte `MSG_PEEK`, non-blocking for this call only (`MSG_DONTWAIT` where there is
    /// one, else the socket is switched to non-blocking around the peek). The read timeout is
    /// untouched. One system call per command batch.
    fn has_pending_input(&mut self) -> io::Result<bool> {
        pending_input(|| peek_now(&self.stream))
    }
}

/// [`Transport::has_pending_input`] from `peek` (one [`peek_now`]), retried when a signal
/// interrupts it.
fn pending_input(mut peek: impl FnMut() -> io::Result<usize>) -> io::Result<bool> {
    loop {
        match peek() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Data, or 0 for the end of the stream, which the next read reports.
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Peeks at one byte without waiting: `WouldBlock` when there is none.
#[cfg(unix)]
fn peek_now<S: std::os::fd::AsFd>(stream: &S) -> io::Result<usize> {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
    socket2::SockRef::from(stream).recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
}

/// Peeks at one byte without waiting: `WouldBlock` when there is none.
#[cfg(not(unix))]
fn peek_now(stream: &TcpStream) -> io::Result<usize> {
    stream.set_nonblocking(true)?;
    let peeked = stream.peek(&mut [0u8; 1]);
    // Restored before the result is used: every other call relies on blocking reads bounded
    // by the timeout.
    stream.set_nonblocking(false)?;
    peeked
}

/// A connection to a Unix-domain socket: a local server (an LMTP server such as Dovecot's or
/// Cyrus's), reached through the file system, with the same read and write timeouts as TCP.
/// TLS is not used over it: the socket's file permissions say who may connect, and the bytes
/// never leave the machine.
///
/// ```
/// use mailpump::smtp::transport::{Transport, UnixTransport};
/// use std::os::unix::net::UnixListener;
/// use std::time::Duration;
///
/// let dir = std::env::temp_dir().join(format!("mailpump-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("lmtp.sock");
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path)?;
/// let transport = UnixTransport::connect(&path, Duration::from_secs(5))?;
/// assert!(transport.peer_is_loopback()); // the peer is on this machine
/// # drop(listener);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixTransport {
    stream: std::os::unix::net::UnixStream,
}

#[cfg(unix)]
impl UnixTransport {
    /// Connects to the socket at `path`; `timeout` becomes the read and write timeout. A local
    /// connect does not wait on a network: it succeeds or fails at once (no such file:
    /// `NotFound`; nothing listening: `ConnectionRefused`).
    pub fn connect(path: &Path, timeout: Duration) -> io::Result<Self> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the timeout must be greater than zero",
            ));
        }
        let mut transport = Self {
            stream: std::os::unix::net::UnixStream::connect(path)?,
        };
        transport.set_timeout(Some(timeout))?;
        Ok(transport)
    }
}

#[cfg(unix)]
impl Read for UnixTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

#[cfg(unix)]
impl Write for UnixTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.stream.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(unix)]
impl Transport for UnixTransport {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        self.stream.set_read_timeout(timeout)?;
        self.stream.set_write_timeout(timeout)
    }

    fn shutdown(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Always: the socket is on this machine.
    fn peer_is_loopback(&self) -> bool {
        true
    }

    fn has_pending_input(&mut self) -> io::Result<bool> {
        pending_input(|| peek_now(&self.stream))
    }
}

/// Whether an I/O error means that a timeout expired (the two kinds platforms use for it).
///
/// ```
/// use mailpump::smtp::transport::is_timeout;
/// use std::io;
///
/// assert!(is_timeout(&io::Error::from(io::ErrorKind::WouldBlock)));
/// assert!(!is_timeout(&io::Error::from(io::ErrorKind::ConnectionReset)));
/// ```
#[must_use]
pub fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}
