//! The SMTP transcript: an optional callback that sees the dialogue, one call per command and
//! per reply, with secrets redacted and never the message body.
//!
//! The Python bindings turn each call into a DEBUG record of the `mailpump` logger.

use std::fmt::{self, Write as _};

use super::reply::Reply;

/// Who sent a transcript line.
///
/// ```no_run
/// use mailpump::{Client, ClientConfig};
/// use mailpump::smtp::transcript::Direction;
///
/// let mut client = Client::connect(&ClientConfig::default())?;
/// client.set_transcript(Some(Box::new(|direction: Direction, line: &str| {
///     eprintln!("{direction}: {line}"); // "C: EHLO localhost", "S: 250-mx.example.org\n250 8BITMIME"
/// })));
/// client.greet(None)?;
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A command the client sent, in its redacted form (AUTH payloads read `<redacted>`).
    Client,
    /// A reply from the server, all its lines joined with `\n`, each as `250-text` / `250 text`.
    Server,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "C",
            Self::Server => "S",
        })
    }
}

/// The callback type: `(direction, line)`.
///
/// ```
/// use mailpump::smtp::transcript::{Direction, TranscriptFn};
/// use std::sync::{Arc, Mutex};
///
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&lines);
/// let transcript: TranscriptFn = Box::new(move |direction: Direction, line: &str| {
///     sink.lock().unwrap().push(format!("{direction}: {line}"));
/// });
/// # drop(transcript);
/// ```
pub type TranscriptFn = Box<dyn FnMut(Direction, &str) + Send>;

/// Holds the callback, if any, and formats what it is given.
///
/// ```
/// use mailpump::Reply;
/// use mailpump::smtp::transcript::Transcript;
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let mut transcript = Transcript::default();
/// assert!(!transcript.is_enabled());
/// transcript.set(Some(Box::new(move |d, line| sink.lock().unwrap().push(format!("{d}: {line}")))));
/// transcript.client("EHLO localhost");
/// transcript.server(&Reply::new(250, vec!["mx".into(), "8BITMIME".into()]));
/// assert_eq!(*seen.lock().unwrap(), ["C: EHLO localhost", "S: 250-mx\n250 8BITMIME"]);
/// ```
#[derive(Default)]
pub struct Transcript {
    sink: Option<TranscriptFn>,
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcript")
            .field("enabled", &self.sink.is_some())
            .finish()
    }
}

impl Transcript {
    /// Replaces the callback (`None` turns the transcript off).
    pub fn set(&mut self, sink: Option<TranscriptFn>) {
        self.sink = sink;
    }

    /// Whether a callback is set (so callers can skip formatting when nobody listens).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Records a client line that is already redacted.
    pub fn client(&mut self, line: &str) {
        if let Some(sink) = &mut self.sink {
            sink(Direction::Client, line);
        }
    }

    /// Records a server reply. Its text is as the reply parser left it, with control characters,
    /// line separators and bidirectional controls replaced, so one reply is one record that reads
    /// as it is stored.
    pub fn server(&mut self, reply: &Reply) {
        if let Some(sink) = &mut self.sink {
            sink(Direction::Server, &format_reply(reply));
        }
    }
}

/// A reply as the server wrote it, without the CRLFs: `250-first\n250 last`.
///
/// ```
/// use mailpump::Reply;
/// use mailpump::smtp::transcript::format_reply;
///
/// let reply = Reply::new(250, vec!["mx.example.org".into(), "PIPELINING".into()]);
/// assert_eq!(format_reply(&reply), "250-mx.example.org\n250 PIPELINING");
/// ```
#[must_use]
pub fn format_reply(reply: &Reply) -> String {
    let last = reply.lines.len().saturating_sub(1);
    let mut out = String::new();
    for (i, line) in reply.lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let sep = if i == last { ' ' } else { '-' };
        if line.is_empty() && i == last {
            out.push_str(&reply.code.to_string());
        } else {
            let _ = write!(out, "{}{sep}{line}", reply.code);
        }
    }
    if reply.lines.is_empty() {
        out.push_str(&reply.code.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_the_servers_layout() {
        let one = Reply::new(250, vec!["2.0.0 ok".into()]);
        assert_eq!(format_reply(&one), "250 2.0.0 ok");
        let many = Reply::new(
            250,
            vec!["mx.example".into(), "PIPELINING".into(), "SIZE 10".into()],
        );
        assert_eq!(
            format_reply(&many),
            "250-mx.example\n250-PIPELINING\n250 SIZE 10"
        );
        // RFC 5321 §4.2: a last line may be the bare code.
        let bare = Reply::new(250, vec!["first".into(), String::new()]);
        assert_eq!(format_reply(&bare), "250-first\n250");
    }

    #[test]
    fn the_callback_sees_each_line_once() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&seen);
        let mut transcript = Transcript::default();
        assert!(!transcript.is_enabled());
        transcript.client("ignored while off");
        transcript.set(Some(Box::new(move |d, l: &str| {
            sink.lock().unwrap().push(format!("{d} {l}"));
        })));
        assert!(transcript.is_enabled());
        transcript.client("NOOP");
        transcript.server(&Reply::new(250, vec!["ok".into()]));
        assert_eq!(*seen.lock().unwrap(), ["C NOOP", "S 250 ok"]);
    }
}
