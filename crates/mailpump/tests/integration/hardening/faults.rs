//! The fault table (docs/security.md §12): every protocol stage × every fault that applies to it,
//! through the real client against a scripted server on 127.0.0.1.
//!
//! The session: connect, greeting, EHLO, STARTTLS, TLS handshake, EHLO again, AUTH LOGIN (three
//! steps), MAIL, RCPT ×2, DATA, body, end of data, QUIT. The faults: a 4xx reply, a 5xx reply,
//! the server hanging up, the server stalling, garbage instead of a reply, an oversized reply,
//! and plaintext injected after the STARTTLS reply. Table size: 85 cases (asserted below):
//! connect (refused) 1; STARTTLS 7; TLS handshake 3 (hang-up, stall, garbage); body 2 (hang-up,
//! stall); every other stage 6 × 12 stages.
//!
//! Each case checks the documented error variant (with the reply's code where there is one),
//! and what becomes of the client: a refusal the design calls clean leaves it usable (a NOOP then
//! works), anything that leaves the dialogue untrustworthy closes it (`is_usable()` false, and the
//! next call fails with `SmtpError::Connect`). Stalls use a 200 ms client timeout set just
//! before the stalled call and assert the Timeout kind only; the server waits on a channel, not
//! a clock.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::TestTls;
use mailpump::Source;
use mailpump::smtp::address::Address;
use mailpump::smtp::auth::{Credentials, Mechanism};
use mailpump::smtp::client::{Client, ClientConfig, Envelope, TlsPolicy};
use mailpump::smtp::error::{ReplyKind, SmtpError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    Handshake,
    EhloAfterTls,
    AuthStart,
    AuthUser,
    AuthPassword,
    Mail,
    Rcpt1,
    Rcpt2,
    Data,
    Body,
    EndOfData,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Refused,
    Transient,
    Permanent,
    Disconnect,
    Stall,
    Garbage,
    Oversized,
    Injection,
}

const STAGES: &[Stage] = &[
    Stage::Connect,
    Stage::Greeting,
    Stage::Ehlo,
    Stage::StartTls,
    Stage::Handshake,
    Stage::EhloAfterTls,
    Stage::AuthStart,
    Stage::AuthUser,
    Stage::AuthPassword,
    Stage::Mail,
    Stage::Rcpt1,
    Stage::Rcpt2,
    Stage::Data,
    Stage::Body,
    Stage::EndOfData,
    Stage::Quit,
];

/// The faults that apply to `stage`.
fn faults(stage: Stage) -> &'static [Fault] {
    use Fault::{Disconnect, Garbage, Injection, Oversized, Permanent, Refused, Stall, Transient};
    match stage {
        Stage::Connect => &[Refused],
        Stage::StartTls => &[
            Transient, Permanent, Disconnect, Stall, Garbage, Oversized, Injection,
        ],
        Stage::Handshake => &[Disconnect, Stall, Garbage],
        Stage::Body => &[Disconnect, Stall],
        _ => &[Transient, Permanent, Disconnect, Stall, Garbage, Oversized],
    }
}

/// What the client must report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// `SmtpError::Reply` of this kind with the fault's code.
    Reply(ReplyKind),
    /// `SmtpError::Auth` carrying the reply.
    Auth,
    /// `SmtpError::Tls` naming the code.
    TlsRefused,
    /// `SmtpError::Tls`.
    Tls,
    /// `SmtpError::Connect` (refused, reset or closed).
    Connect,
    /// A timeout.
    Timeout,
    /// `SmtpError::OutcomeUnknown`: the mark went out and no verdict came.
    OutcomeUnknown,
    /// `SmtpError::Protocol`.
    Protocol,
    /// The send succeeds with this recipient refused with the fault's code.
    RecipientRefused(&'static str),
}

fn code(fault: Fault) -> u16 {
    match fault {
        Fault::Transient => 451,
        _ => 554,
    }
}

/// The documented outcome of `fault` at `stage`, and whether the client stays usable.
fn expected(stage: Stage, fault: Fault) -> (Want, bool) {
    match fault {
        // After the end-of-data mark, no verdict means the message may have been delivered.
        Fault::Disconnect | Fault::Stall | Fault::Garbage | Fault::Oversized
            if stage == Stage::EndOfData =>
        {
            (Want::OutcomeUnknown, false)
        }
        Fault::Refused | Fault::Disconnect => match stage {
            // A TLS peer that vanishes mid-handshake may surface as either.
            Stage::Handshake => (Want::Tls, false),
            _ => (Want::Connect, false),
        },
        Fault::Stall => (Want::Timeout, false),
        Fault::Garbage if stage == Stage::Handshake => (Want::Tls, false),
        Fault::Garbage | Fault::Oversized | Fault::Injection => (Want::Protocol, false),
        Fault::Transient | Fault::Permanent => match stage {
            // RFC 5321 §3.1 / §4.1.1.1: no service, or no EHLO: the session cannot go on.
            Stage::Greeting => (Want::Reply(ReplyKind::Greeting), false),
            Stage::Ehlo | Stage::EhloAfterTls => (Want::Reply(ReplyKind::Ehlo), false),
            // RFC 3207 §4: a refused STARTTLS never falls back to plaintext.
            Stage::StartTls => (Want::TlsRefused, false),
            // RFC 4954 §4: a failed AUTH leaves the session where it was.
            Stage::AuthStart | Stage::AuthUser | Stage::AuthPassword => (Want::Auth, true),
            Stage::Mail => (Want::Reply(ReplyKind::Sender), true),
            Stage::Rcpt1 => (Want::RecipientRefused("one@example.org"), true),
            Stage::Rcpt2 => (Want::RecipientRefused("two@example.org"), true),
            Stage::Data => (Want::Reply(ReplyKind::Data), true),
            Stage::EndOfData => (Want::Reply(ReplyKind::Message), true),
            // QUIT closes whatever the reply.
            Stage::Quit => (Want::Reply(ReplyKind::Other), false),
            Stage::Connect | Stage::Handshake | Stage::Body => unreachable!(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The server side: plain TCP, then TLS; every I/O error counts as the end of the stream.

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Conn {
    stream: Box<dyn Stream>,
    tcp: TcpStream,
    pending: Vec<u8>,
}

impl Conn {
    fn send(&mut self, s: &str) {
        let _ = self
            .stream
            .write_all(s.as_bytes())
            .and_then(|()| self.stream.flush());
    }

    fn more(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..i]).into_owned();
                self.pending.drain(..i + 2);
                return Some(line);
            }
            if !self.more() {
                return None;
            }
        }
    }

    fn data(&mut self) -> Option<()> {
        loop {
            if let Some(i) = self.pending.windows(5).position(|w| w == b"\r\n.\r\n") {
                self.pending.drain(..i + 5);
                return Some(());
            }
            if !self.more() {
                return None;
            }
        }
    }

    /// Reads until the client hangs up.
    fn drain(&mut self) {
        while self.more() {}
    }

    fn accept_tls(&mut self, tls: &Arc<rustls::ServerConfig>) -> Option<()> {
        let mut conn = rustls::ServerConnection::new(Arc::clone(tls)).ok()?;
        let mut tcp = self.tcp.try_clone().ok()?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).ok()?;
        }
        self.stream = Box::new(rustls::StreamOwned::new(conn, tcp));
        Some(())
    }
}

/// How the scripted dialogue goes on after a stage.
enum Flow {
    Go,
    /// The fault was a refusal; answer whatever follows (RSET, NOOP, QUIT) politely.
    Polite,
    Stop,
}

struct Script {
    stage: Stage,
    fault: Fault,
    release: mpsc::Receiver<()>,
}

impl Script {
    /// At `at`, answers `normal` unless this is the faulty stage.
    fn reply(&self, c: &mut Conn, at: Stage, normal: &str) -> Flow {
        if at != self.stage {
            c.send(normal);
            return Flow::Go;
        }
        match self.fault {
            Fault::Transient => c.send("451 4.3.0 try again later\r\n"),
            Fault::Permanent => c.send("554 5.7.1 no\r\n"),
            Fault::Refused => unreachable!(),
            Fault::Disconnect => return Flow::Stop,
            Fault::Stall => {
                // Until the client has given up (the test says so), then until it hangs up.
                let _ = self.release.recv();
                c.drain();
                return Flow::Stop;
            }
            Fault::Garbage => {
                c.send("hello there, this is no SMTP reply\r\n");
                c.drain();
                return Flow::Stop;
            }
            Fault::Oversized => {
                let mut line = String::from("250 ");
                line.push_str(&"x".repeat(64 * 1024));
                line.push_str("\r\n");
                c.send(&line);
                c.drain();
                return Flow::Stop;
            }
            Fault::Injection => {
                c.send("220 2.0.0 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n");
                c.drain();
                return Flow::Stop;
            }
        }
        Flow::Polite
    }

    /// Reads the client's next line (it must start with `prefix`), then answers as `reply` does.
    fn step(&self, c: &mut Conn, at: Stage, prefix: &str, normal: &str) -> Flow {
        let Some(line) = c.line() else {
            panic!(
                "{:?}/{:?}: the client hung up before {prefix}",
                self.stage, self.fault
            );
        };
        assert!(
            line.starts_with(prefix),
            "{:?}/{:?}: expected {prefix}, got {line:?}",
            self.stage,
            self.fault
        );
        self.reply(c, at, normal)
    }

    fn run(&self, c: &mut Conn, tls: &Arc<rustls::ServerConfig>) {
        macro_rules! go {
            ($flow:expr) => {
                match $flow {
                    Flow::Go => {}
                    Flow::Polite => return polite(c),
                    Flow::Stop => return,
                }
            };
        }
        go!(self.reply(c, Stage::Greeting, "220 test.example ESMTP\r\n"));
        go!(self.step(
            c,
            Stage::Ehlo,
            "EHLO ",
            "250-test.example\r\n250 STARTTLS\r\n"
        ));
        go!(self.step(c, Stage::StartTls, "STARTTLS", "220 2.0.0 go ahead\r\n"));
        if self.stage == Stage::Handshake {
            // The client's ClientHello arrives; the fault replaces the ServerHello.
            if !c.more() {
                return;
            }
            match self.fault {
                Fault::Garbage => c.send("this is not a TLS record\r\n"),
                Fault::Stall => {
                    let _ = self.release.recv();
                }
                _ => {}
            }
            return;
        }
        if c.accept_tls(tls).is_none() {
            return;
        }
        go!(self.step(
            c,
            Stage::EhloAfterTls,
            "EHLO ",
            "250-test.example\r\n250 AUTH LOGIN\r\n"
        ));
        go!(self.step(c, Stage::AuthStart, "AUTH LOGIN", "334 VXNlcm5hbWU6\r\n"));
        go!(self.step(c, Stage::AuthUser, "", "334 UGFzc3dvcmQ6\r\n"));
        go!(self.step(c, Stage::AuthPassword, "", "235 2.7.0 ok\r\n"));
        go!(self.step(c, Stage::Mail, "MAIL FROM:", "250 ok\r\n"));
        // A refused recipient is part of a normal dialogue: the message goes to the other one.
        let rcpt1 = self.step(c, Stage::Rcpt1, "RCPT TO:<one@", "250 ok\r\n");
        if matches!(rcpt1, Flow::Stop) {
            return;
        }
        let rcpt2 = self.step(c, Stage::Rcpt2, "RCPT TO:<two@", "250 ok\r\n");
        if matches!(rcpt2, Flow::Stop) {
            return;
        }
        go!(self.step(c, Stage::Data, "DATA", "354 go\r\n"));
        if self.stage == Stage::Body {
            if self.fault == Fault::Stall {
                // Stop reading: the client's writes fill the socket buffers and time out.
                let _ = self.release.recv();
                c.drain();
            }
            // Disconnect: hang up with the body half read.
            return;
        }
        if c.data().is_none() {
            return;
        }
        go!(self.reply(c, Stage::EndOfData, "250 2.0.0 queued\r\n"));
        if matches!(self.stage, Stage::Rcpt1 | Stage::Rcpt2) {
            return polite(c);
        }
        go!(self.step(c, Stage::Quit, "QUIT", "221 bye\r\n"));
    }
}

/// After a clean refusal: answer RSET, NOOP and an AUTH cancellation; stop at QUIT.
fn polite(c: &mut Conn) {
    while let Some(line) = c.line() {
        match line.as_str() {
            "RSET" | "NOOP" => c.send("250 ok\r\n"),
            "*" => c.send("501 cancelled\r\n"),
            "QUIT" => {
                c.send("221 bye\r\n");
                return;
            }
            other => panic!("unexpected command after a refusal: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client side.

/// A body of `len` bytes produced on the fly.
struct Filler {
    left: usize,
}

impl Source for Filler {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, mailpump::BoxError> {
        if self.left == 0 {
            return Ok(false);
        }
        let n = self.left.min(64 * 1024);
        out.extend(std::iter::repeat_n(b'a', n - 2));
        out.extend_from_slice(b"\r\n");
        self.left -= n;
        Ok(true)
    }

    fn remaining_hint(&self) -> Option<u64> {
        None
    }
}

/// Runs the session; returns the first error (or the send's refused recipients) and the client.
fn run_client(
    config: &ClientConfig,
    stage: Stage,
    fault: Fault,
) -> (Result<Vec<String>, SmtpError>, Option<Client>) {
    let mut client = match Client::connect(config) {
        Ok(c) => c,
        Err(e) => return (Err(e), None),
    };
    let stall_in = |s: &[Stage]| fault == Fault::Stall && s.contains(&stage);
    let short = Duration::from_millis(200);
    let result = (|| {
        if stall_in(&[Stage::Greeting, Stage::Ehlo]) {
            client.set_timeout(short)?;
        }
        client.greet(None)?;
        if stall_in(&[Stage::StartTls, Stage::Handshake, Stage::EhloAfterTls]) {
            client.set_timeout(short)?;
        }
        client.starttls()?;
        if stall_in(&[Stage::AuthStart, Stage::AuthUser, Stage::AuthPassword]) {
            client.set_timeout(short)?;
        }
        client.auth(&Credentials::new("user", "secret"), Some(Mechanism::Login))?;
        if stall_in(&[
            Stage::Mail,
            Stage::Rcpt1,
            Stage::Rcpt2,
            Stage::Data,
            Stage::Body,
            Stage::EndOfData,
        ]) {
            client.set_timeout(short)?;
        }
        let envelope = Envelope::new(
            Address::parse("me@example.com")?,
            vec![
                Address::parse("one@example.org")?,
                Address::parse("two@example.org")?,
            ],
        );
        // A large body where the server stops reading, so the writes must block.
        let big = stage == Stage::Body;
        let mut body = Filler {
            left: if big { 64 << 20 } else { 1000 },
        };
        let sent = client.send(&envelope, &mut body, None)?;
        let refused: Vec<String> = sent.refused.iter().map(|(r, _)| r.clone()).collect();
        if !refused.is_empty() {
            // Delivered to the other recipient; the session goes on (checked by the caller).
            return Ok(refused);
        }
        if stall_in(&[Stage::Quit]) {
            client.set_timeout(short)?;
        }
        client.quit()?;
        Ok(refused)
    })();
    (result, Some(client))
}

fn check(stage: Stage, fault: Fault, result: &Result<Vec<String>, SmtpError>) {
    let case = format!("{stage:?} × {fault:?}");
    let (want, _) = expected(stage, fault);
    match (want, result) {
        (Want::RecipientRefused(who), Ok(refused)) => {
            assert_eq!(refused, &[who.to_owned()], "{case}");
        }
        (_, Ok(_)) => panic!("{case}: the session succeeded"),
        (Want::Reply(kind), Err(SmtpError::Reply { reply, kind: k, .. })) => {
            assert_eq!((*k, reply.code), (kind, code(fault)), "{case}");
        }
        (Want::Auth, Err(SmtpError::Auth { reply: Some(r), .. })) => {
            assert_eq!(r.code, code(fault), "{case}");
        }
        (Want::TlsRefused, Err(SmtpError::Tls { reason: text, .. })) => {
            assert!(text.contains(&code(fault).to_string()), "{case}: {text}");
        }
        (Want::Tls, Err(SmtpError::Tls { .. } | SmtpError::Connect { .. }))
            if stage == Stage::Handshake && fault == Fault::Disconnect => {}
        (Want::Tls, Err(SmtpError::Tls { .. }))
        | (Want::Connect, Err(SmtpError::Connect { .. }))
        | (Want::Protocol, Err(SmtpError::Protocol { .. })) => {}
        (Want::Timeout, Err(e)) if e.is_timeout() => {}
        (Want::OutcomeUnknown, Err(e)) if e.is_outcome_unknown() => {}
        (want, Err(e)) => panic!("{case}: expected {want:?}, got {e:?}"),
    }
}

#[test]
fn fault_table_85_cases_every_stage_times_every_fault() {
    let tls = TestTls::new();
    let mut cases = 0;
    for &stage in STAGES {
        for &fault in faults(stage) {
            cases += 1;
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let config = ClientConfig {
                server: "localhost".into(),
                port,
                tls: TlsPolicy::None, // STARTTLS is called explicitly, so each step is visible
                timeout: Duration::from_secs(10),
                cafile: Some(tls.cafile.clone()),
                domain: "client.example".into(),
                ..ClientConfig::default()
            };
            let (release_tx, release_rx) = mpsc::channel();
            let server = if stage == Stage::Connect {
                drop(listener); // nothing listens: connection refused
                None
            } else {
                let server_tls = tls.server.clone();
                Some(std::thread::spawn(move || {
                    let (tcp, _) = listener.accept().unwrap();
                    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    tcp.set_write_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    let mut conn = Conn {
                        stream: Box::new(tcp.try_clone().unwrap()),
                        tcp,
                        pending: Vec::new(),
                    };
                    let script = Script {
                        stage,
                        fault,
                        release: release_rx,
                    };
                    script.run(&mut conn, &server_tls);
                }))
            };
            let (result, client) = run_client(&config, stage, fault);
            let _ = release_tx.send(());
            check(stage, fault, &result);
            let (_, usable) = expected(stage, fault);
            if let Some(mut client) = client {
                assert_eq!(client.is_usable(), usable, "{stage:?} × {fault:?}: usable");
                if usable {
                    client.noop().unwrap();
                    client.quit().unwrap();
                } else {
                    let err = client.noop().unwrap_err();
                    assert!(
                        matches!(err, SmtpError::Connect { .. }),
                        "{stage:?} × {fault:?}: {err:?}"
                    );
                }
            }
            if let Some(server) = server {
                server.join().expect("the server script panicked");
            }
        }
    }
    assert_eq!(cases, 85);
}
