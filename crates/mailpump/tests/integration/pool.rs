//! The connection pool against scripted servers: delivery once, retries only where the server
//! cannot hold the message, cancellation, closing both ways.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailpump::BoxError;
use mailpump::smtp::client::{Envelope, SendResult};
use mailpump::smtp::error::SmtpError;
use mailpump::smtp::pool::{Event, Job, Pool, PoolOptions, is_cancelled};
use mailpump::source::{BytesSource, Source};

use crate::support::{ChunkedSource, Conn, Script, Server, envelope};

/// Answers every command like a server that accepts everything, until QUIT or the end of the
/// connection; returns the bodies received (without their end-of-data marks).
fn accept_all(c: &mut Conn) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let mut queued = 0;
    while let Some(line) = c.try_line() {
        match line.get(..4).unwrap_or("") {
            "MAIL" | "RCPT" | "RSET" | "NOOP" => c.send("250 ok\r\n"),
            "DATA" => {
                c.send("354 go\r\n");
                let mut body = c.data();
                body.truncate(body.len() - 3);
                bodies.push(body);
                queued += 1;
                c.send(&format!("250 2.0.0 Ok: queued as Q{queued}\r\n"));
            }
            "QUIT" => {
                c.send_lossy(b"221 bye\r\n");
                break;
            }
            other => panic!("unexpected command {other:?}"),
        }
    }
    bodies
}

/// A script: the greeting, then [`accept_all`], the bodies sent to `bodies`.
fn accepting(bodies: &Arc<Mutex<Vec<Vec<u8>>>>) -> Script {
    let bodies = Arc::clone(bodies);
    Box::new(move |c: &mut Conn| {
        c.hello(&["PIPELINING"]);
        let got = accept_all(c);
        bodies.lock().unwrap().extend(got);
    })
}

fn options(connections: usize) -> PoolOptions {
    PoolOptions {
        connections,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        ..PoolOptions::default()
    }
}

fn pool(server: &Server, options: PoolOptions) -> Pool {
    Pool::new(server.config(), None, options).expect("pool")
}

fn message(i: usize) -> (Envelope, Box<dyn Source>) {
    let body = format!("Message-ID: <{i}@test>\r\n\r\nbody {i}\r\n");
    (
        envelope(&["b@example.org"]),
        Box::new(BytesSource::new(body)),
    )
}

/// Submits a job and returns the receiver of its outcome.
fn submit(
    pool: &Pool,
    envelope: Envelope,
    source: Box<dyn Source>,
    cancel: Option<Arc<AtomicBool>>,
) -> mpsc::Receiver<Result<SendResult, SmtpError>> {
    let (tx, rx) = mpsc::channel();
    pool.submit(Job {
        envelope,
        source,
        on_done: Box::new(move |outcome| {
            let _ = tx.send(outcome);
        }),
        cancel,
    })
    .expect("submit");
    rx
}

#[test]
fn every_message_is_delivered_once_over_one_connection() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let server = Server::start_each(vec![accepting(&bodies)]);
    let pool = pool(&server, options(1));
    let outcomes: Vec<_> = (0..20)
        .map(|i| {
            let (e, s) = message(i);
            submit(&pool, e, s, None)
        })
        .collect();
    for rx in outcomes {
        let result = rx.recv().unwrap().expect("sent");
        assert!(result.reply.text().contains("queued as Q"));
    }
    pool.close(true);
    let wire = server.finish_text();
    assert!(wire.ends_with("QUIT\r\n"), "{wire}");
    let mut bodies = bodies.lock().unwrap().clone();
    bodies.sort();
    let mut want: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("Message-ID: <{i}@test>\r\n\r\nbody {i}\r\n").into_bytes())
        .collect();
    want.sort();
    assert_eq!(bodies, want);
    let stats = pool.stats();
    assert_eq!((stats.sent, stats.retried, stats.in_flight), (20, 0, 0));
    assert_eq!(stats.connections_opened, 1);
}

#[test]
fn a_connection_dropped_before_the_mark_is_retried_on_a_new_one() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let drop_at_mail: Script = Box::new(|c: &mut Conn| {
        c.hello(&["PIPELINING"]);
        assert!(c.line().starts_with("MAIL FROM:"));
        // Gone before any reply: the server holds nothing.
    });
    let server = Server::start_each(vec![drop_at_mail, accepting(&bodies)]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&events);
    let pool = pool(
        &server,
        PoolOptions {
            events: Some(Arc::new(move |e: &Event<'_>| {
                if let Event::Retry {
                    reason, attempt, ..
                } = e
                {
                    heard.lock().unwrap().push(format!("{attempt}: {reason}"));
                }
            })),
            ..options(1)
        },
    );
    let (e, s) = message(1);
    let result = pool.send(e, s).expect("delivered on the second connection");
    assert!(result.reply.text().contains("Q1"));
    pool.close(true);
    server.finish();
    assert_eq!(bodies.lock().unwrap().len(), 1);
    let stats = pool.stats();
    assert_eq!(
        (stats.sent, stats.retried, stats.connections_opened),
        (1, 1, 2)
    );
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("2: connection-lost"), "{events:?}");
}

#[test]
fn a_connection_dropped_after_the_mark_is_an_unknown_outcome_never_retried() {
    let delivered = Arc::new(Mutex::new(0));
    let count = Arc::clone(&delivered);
    let drop_after_mark: Script = Box::new(move |c: &mut Conn| {
        c.hello(&["PIPELINING"]);
        c.expect("MAIL FROM:<me@example.com>");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        c.data();
        *count.lock().unwrap() += 1;
        // No verdict: the client cannot know whether the message was taken.
    });
    let server = Server::start_each(vec![drop_after_mark]);
    let pool = pool(&server, options(1));
    let (e, s) = message(1);
    let error = pool.send(e, s).expect_err("no verdict");
    assert!(error.is_outcome_unknown(), "{error:?}");
    pool.close(true);
    server.finish();
    assert_eq!(*delivered.lock().unwrap(), 1);
    let stats = pool.stats();
    assert_eq!(
        (stats.retried, stats.failed, stats.connections_opened),
        (0, 1, 1)
    );
}

#[test]
fn a_one_shot_source_is_not_retried() {
    let drop_at_mail: Script = Box::new(|c: &mut Conn| {
        c.hello(&["PIPELINING"]);
        assert!(c.line().starts_with("MAIL FROM:"));
    });
    let server = Server::start_each(vec![drop_at_mail]);
    let pool = pool(&server, options(1));
    // ChunkedSource cannot be read again.
    let source = ChunkedSource::new(b"one shot\r\n".to_vec(), vec![3]);
    let error = pool
        .send(envelope(&["b@example.org"]), Box::new(source))
        .expect_err("not retried");
    assert_eq!(error.kind(), "connection-lost");
    pool.close(true);
    server.finish();
    assert_eq!(pool.stats().retried, 0);
}

#[test]
fn a_transient_verdict_is_retried_and_a_permanent_one_is_not() {
    let script: Script = Box::new(|c: &mut Conn| {
        c.hello(&[]);
        for verdict in [
            "451 4.3.0 try later",
            "250 2.0.0 Ok: queued as A1",
            "554 5.7.1 no",
        ] {
            c.expect("MAIL FROM:<me@example.com>");
            c.send("250 ok\r\n");
            c.expect("RCPT TO:<b@example.org>");
            c.send("250 ok\r\n");
            c.expect("DATA");
            c.send("354 go\r\n");
            c.data();
            c.send(&format!("{verdict}\r\n"));
        }
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let server = Server::start_each(vec![script]);
    let pool = pool(&server, options(1));
    let (e, s) = message(1);
    let result = pool.send(e, s).expect("the second attempt is taken");
    assert_eq!(
        mailpump::smtp::pool::queue_id(&result.reply).as_deref(),
        Some("A1")
    );
    let (e, s) = message(2);
    let error = pool.send(e, s).expect_err("554 is final");
    assert_eq!(error.reply().map(|r| r.code), Some(554));
    pool.close(true);
    server.finish();
    let stats = pool.stats();
    assert_eq!((stats.sent, stats.refused, stats.retried), (1, 1, 1));
}

#[test]
fn a_421_closes_the_connection_and_the_queue_goes_on_over_a_new_one() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let closing: Script = Box::new(|c: &mut Conn| {
        c.hello(&[]);
        c.expect("MAIL FROM:<me@example.com>");
        c.send("421 4.3.2 shutting down\r\n");
        c.until_eof();
    });
    let server = Server::start_each(vec![closing, accepting(&bodies)]);
    let pool = pool(&server, options(1));
    let (e, s) = message(1);
    pool.send(e, s).expect("delivered after the 421");
    pool.close(true);
    server.finish();
    assert_eq!(bodies.lock().unwrap().len(), 1);
    assert_eq!(pool.stats().connections_opened, 2);
}

/// A source that sets its own cancel flag after its first chunk, then would go on.
struct CancelsItself {
    flag: Arc<AtomicBool>,
    pulls: usize,
}

impl Source for CancelsItself {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        self.pulls += 1;
        if self.pulls == 1 {
            out.extend_from_slice(b"Subject: first chunk\r\n\r\n");
            self.flag.store(true, Ordering::Release);
            return Ok(true);
        }
        out.extend_from_slice(b"more\r\n");
        Ok(self.pulls < 1000)
    }
}

#[test]
fn a_message_cancelled_mid_body_never_gets_its_mark() {
    let script: Script = Box::new(|c: &mut Conn| {
        c.hello(&["PIPELINING"]);
        c.expect("MAIL FROM:<me@example.com>");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        let rest = c.until_eof();
        assert!(
            !rest.windows(5).any(|w| w == b"\r\n.\r\n"),
            "the mark went out"
        );
    });
    let server = Server::start_each(vec![script]);
    let pool = pool(&server, options(1));
    let flag = Arc::new(AtomicBool::new(false));
    let source = CancelsItself {
        flag: Arc::clone(&flag),
        pulls: 0,
    };
    let rx = submit(
        &pool,
        envelope(&["b@example.org"]),
        Box::new(source),
        Some(flag),
    );
    let error = rx.recv().unwrap().expect_err("cancelled");
    assert!(is_cancelled(&error), "{error:?}");
    pool.close(true);
    server.finish();
    assert_eq!(pool.stats().retried, 0);
}

#[test]
fn a_message_cancelled_before_it_starts_is_never_sent() {
    // Nothing listens behind this address: a connection attempt would fail the test.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = mailpump::ClientConfig {
        server: "127.0.0.1".into(),
        port: listener.local_addr().unwrap().port(),
        tls: mailpump::TlsPolicy::None,
        ..mailpump::ClientConfig::default()
    };
    let pool = Pool::new(config, None, options(1)).unwrap();
    let flag = Arc::new(AtomicBool::new(true));
    let (e, s) = message(1);
    let rx = submit(&pool, e, s, Some(flag));
    assert!(is_cancelled(&rx.recv().unwrap().unwrap_err()));
    pool.close(true);
    assert_eq!(pool.stats().connections_opened, 0);
}

/// A source that says it started, then waits for a go-ahead.
struct Gate {
    started: mpsc::Sender<()>,
    go: Arc<Mutex<mpsc::Receiver<()>>>,
    done: bool,
}

impl Source for Gate {
    fn pull(&mut self, out: &mut Vec<u8>) -> Result<bool, BoxError> {
        if self.done {
            return Ok(false);
        }
        let _ = self.started.send(());
        self.go.lock().unwrap().recv()?;
        out.extend_from_slice(b"Subject: gated\r\n\r\nbody\r\n");
        self.done = true;
        Ok(true)
    }
}

#[test]
fn close_without_waiting_cancels_what_has_not_started() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let server = Server::start_each(vec![accepting(&bodies)]);
    let pool = Arc::new(pool(&server, options(1)));
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let gate = Gate {
        started: started_tx,
        go: Arc::new(Mutex::new(go_rx)),
        done: false,
    };
    let first = submit(&pool, envelope(&["b@example.org"]), Box::new(gate), None);
    started.recv().unwrap();
    let waiting: Vec<_> = (0..3)
        .map(|i| {
            let (e, s) = message(i);
            submit(&pool, e, s, None)
        })
        .collect();
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.close(false))
    };
    for rx in waiting {
        assert!(is_cancelled(&rx.recv().unwrap().unwrap_err()));
    }
    let (e, s) = message(9);
    assert_eq!(
        pool.submit(Job {
            envelope: e,
            source: s,
            on_done: Box::new(|_| {}),
            cancel: None,
        })
        .unwrap_err()
        .kind(),
        "closed"
    );
    go.send(()).unwrap();
    first.recv().unwrap().expect("the started message finishes");
    closer.join().unwrap();
    server.finish();
    assert_eq!(bodies.lock().unwrap().len(), 1);
    let stats = pool.stats();
    assert_eq!((stats.sent, stats.failed, stats.in_flight), (1, 3, 0));
}

#[test]
fn close_with_waiting_drains_the_queue() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let server = Server::start_each(vec![accepting(&bodies), accepting(&bodies)]);
    let pool = pool(
        &server,
        PoolOptions {
            max_messages: Some(5),
            ..options(1)
        },
    );
    let outcomes: Vec<_> = (0..8)
        .map(|i| {
            let (e, s) = message(i);
            submit(&pool, e, s, None)
        })
        .collect();
    pool.close(true);
    for rx in outcomes {
        // Already there: close returned after the queue was drained.
        rx.try_recv()
            .expect("done before close returned")
            .expect("sent");
    }
    server.finish();
    assert_eq!(bodies.lock().unwrap().len(), 8);
    assert_eq!(pool.stats().connections_opened, 2);
}

#[test]
fn a_panicking_callback_does_not_stop_the_worker() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let server = Server::start_each(vec![accepting(&bodies)]);
    let pool = pool(&server, options(1));
    let (e, s) = message(1);
    pool.submit(Job {
        envelope: e,
        source: s,
        on_done: Box::new(|_| panic!("a careless callback")),
        cancel: None,
    })
    .unwrap();
    let (e, s) = message(2);
    pool.send(e, s).expect("the worker goes on");
    pool.close(true);
    server.finish();
    assert_eq!(pool.stats().sent, 2);
}
