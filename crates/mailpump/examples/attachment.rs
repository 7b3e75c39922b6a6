//! Streams a large file as an attachment: the file is read and base64-encoded chunk by chunk
//! while it is sent, so memory stays flat whatever its size. A progress line shows the bytes
//! sent.
//!
//! ```sh
//! head -c 100M /dev/urandom > big.bin
//! cargo run --release --example attachment -- --file big.bin --port 2525
//! ```

mod common;

use std::io::Write;
use std::process::ExitCode;

use mailpump::BoxError;
use mailpump::mime::message::{MessageEncoder, MessageOptions, Multipart, Part};
use mailpump::smtp::client::{Client, Envelope};

const USAGE: &str = "usage: attachment --file PATH [common options]";

fn main() -> ExitCode {
    let args = common::parse(USAGE, &["file"]);
    let Some(path) = args.extra("file") else {
        eprintln!("attachment: --file PATH is required\n{USAGE}");
        return ExitCode::from(2);
    };
    match run(&args, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("attachment: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &common::Args, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let size = std::fs::metadata(path)?.len();
    // Opened now (a missing file fails here), read lazily while the message is encoded.
    let attachment = Part::attachment_file(path, None, None)?;
    let message = Part::new()
        .header("From", args.from.as_str())
        .header("Subject", format!("{path} ({size} bytes)"))
        .body(Multipart::new(vec![
            Part::text("The file is attached.\r\n", "plain"),
            attachment,
        ]));
    let mut encoder = MessageEncoder::new(message, MessageOptions::default())?;
    let envelope = Envelope::new(args.from.clone(), args.to.clone());

    let mut client = Client::connect(&args.config)?;
    if args.verbose {
        client.set_transcript(Some(Box::new(|direction, line: &str| {
            eprintln!("{direction}: {line}");
        })));
    }
    // The encoded message is about 4/3 of the file: the total is not known in advance, so the
    // callback gets `None` and shows the bytes sent so far.
    let mut reports = 0_u64;
    let mut progress = |sent: u64, _total: Option<u64>| -> Result<(), BoxError> {
        reports += 1;
        // MiB with one decimal, in integers.
        eprint!(
            "\rsent {}.{} MiB",
            sent >> 20,
            ((sent & 0xF_FFFF) * 10) >> 20
        );
        std::io::stderr().flush()?;
        Ok(())
    };
    let credentials = args.credentials.as_ref().map(|c| (c, None));
    let result = client.deliver(
        None,
        credentials,
        &envelope,
        &mut encoder,
        Some(&mut progress),
    )?;
    eprintln!();
    println!("progress reports: {reports}");
    println!("reply: {}", result.reply);
    Ok(())
}
