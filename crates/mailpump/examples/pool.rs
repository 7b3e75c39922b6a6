//! Sends many messages through a connection pool: a few connections, pipelined, retried only
//! where the server cannot have taken a message.
//!
//! ```sh
//! cargo run --example pool -- --count 1000 --port 2525
//! ```

mod common;

use std::process::ExitCode;
use std::sync::mpsc;

use mailpump::Envelope;
use mailpump::smtp::pool::{Event, Job, Pool, PoolOptions, queue_id};
use mailpump::source::BytesSource;

const USAGE: &str = "usage: pool [--count N] [common options]";

fn main() -> ExitCode {
    let args = common::parse(USAGE, &["count"]);
    let count = match args.extra("count").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("pool: --count needs a positive number\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let verbose = args.verbose;
    let options = PoolOptions {
        connections: 4,
        events: Some(std::sync::Arc::new(move |event: &Event<'_>| match event {
            Event::Retry { reason, .. } => eprintln!("retry: {reason}"),
            Event::Sent { conn, result, .. } if verbose => {
                eprintln!("#{conn}: {:?}", queue_id(&result.reply));
            }
            _ => {}
        })),
        ..PoolOptions::default()
    };
    let credentials = args.credentials.clone().map(|c| (c, None));
    let pool = match Pool::new(args.config.clone(), credentials, options) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("pool: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = mpsc::channel();
    for n in 0..count {
        let body = format!(
            "From: {}\r\nSubject: message {n} of {count}\r\n\r\nHello.\r\n",
            args.from.as_str()
        );
        let tx = tx.clone();
        let job = Job {
            envelope: Envelope::new(args.from.clone(), args.to.clone()),
            source: Box::new(BytesSource::new(body)),
            on_done: Box::new(move |outcome| {
                let _ = tx.send(outcome.map_err(|e| e.to_string()));
            }),
            cancel: None,
        };
        if let Err(e) = pool.submit(job) {
            eprintln!("pool: {e}");
            return ExitCode::FAILURE;
        }
    }
    drop(tx);
    let failed = rx.iter().filter(Result::is_err).count();
    pool.close(true);
    let stats = pool.stats();
    println!(
        "sent {}, refused {}, failed {}, retried {}, connections {}",
        stats.sent, stats.refused, stats.failed, stats.retried, stats.connections_opened
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
