//! Sends one message: a text part and a small attachment made in memory.
//!
//! ```sh
//! cargo run --example send -- --server 127.0.0.1 --port 2525 --to you@example.com
//! ```
//!
//! Any local SMTP server will do, for example `python -m aiosmtpd -n -l 127.0.0.1:2525`.

mod common;

use std::process::ExitCode;

use mailpump::mime::message::{MessageEncoder, MessageOptions, Multipart, Part};
use mailpump::smtp::client::{Client, Envelope};

const USAGE: &str = "usage: send [--subject TEXT] [common options]";

fn main() -> ExitCode {
    let args = common::parse(USAGE, &["subject"]);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("send: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &common::Args) -> Result<(), Box<dyn std::error::Error>> {
    let subject = args.extra("subject").unwrap_or("Hello from mailpump");
    // A multipart/mixed message: the text, then a CSV attachment (base64 on the fly).
    let message = Part::new()
        .header("From", args.from.as_str())
        .header(
            "To",
            args.to
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .header("Subject", subject)
        .body(Multipart::new(vec![
            Part::text("The figures are attached.\r\n", "plain"),
            Part::attachment(
                b"month,total\r\njan,12\r\n".to_vec(),
                Some("figures.csv"),
                None,
            )?,
        ]));
    // Validated here, before anything is sent: a bad header fails now, not halfway.
    let mut encoder = MessageEncoder::new(message, MessageOptions::default())?;
    let envelope = Envelope::new(args.from.clone(), args.to.clone());

    let mut client = Client::connect(&args.config)?;
    if args.verbose {
        client.set_transcript(Some(Box::new(|direction, line: &str| {
            eprintln!("{direction}: {line}");
        })));
    }
    let credentials = args.credentials.as_ref().map(|c| (c, None));
    // greet, AUTH when asked, MAIL/RCPT/DATA (pipelined when offered), the body, QUIT.
    let result = client.deliver(None, credentials, &envelope, &mut encoder, None)?;
    println!("accepted: {}", result.accepted.join(", "));
    for (address, reply) in &result.refused {
        println!("refused: {address}: {reply}");
    }
    println!("reply: {}", result.reply);
    Ok(())
}
