//! Sends many messages over one connection: one greeting (and TLS handshake and AUTH), then one
//! transaction per message, pipelined when the server offers PIPELINING.
//!
//! ```sh
//! cargo run --example reuse -- --count 100 --port 2525
//! ```

mod common;

use std::process::ExitCode;

use mailpump::mime::message::{MessageEncoder, MessageOptions, Part};
use mailpump::smtp::client::{Client, Envelope};

const USAGE: &str = "usage: reuse [--count N] [common options]";

fn main() -> ExitCode {
    let args = common::parse(USAGE, &["count"]);
    let count = match args.extra("count").map(str::parse::<u32>) {
        None => 10,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("reuse: --count needs a positive number\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reuse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &common::Args, count: u32) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::connect(&args.config)?;
    if args.verbose {
        client.set_transcript(Some(Box::new(|direction, line: &str| {
            eprintln!("{direction}: {line}");
        })));
    }
    client.greet(None)?;
    if let Some(credentials) = &args.credentials {
        client.auth(credentials, None)?;
    }
    let envelope = Envelope::new(args.from.clone(), args.to.clone());
    for n in 1..=count {
        let message = Part::text(format!("Message {n} of {count}.\r\n"), "plain")
            .header("From", args.from.as_str())
            .header("Subject", format!("Message {n}"));
        let mut encoder = MessageEncoder::new(message, MessageOptions::default())?;
        let result = client.send(&envelope, &mut encoder, None)?;
        println!("{n}: {}", result.reply);
    }
    client.quit()?;
    Ok(())
}
