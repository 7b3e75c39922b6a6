//! SMTP smuggling end to end (CVE-2023-51764 Postfix, CVE-2023-51765 Sendmail, CVE-2023-51766
//! Exim, CERT VU#302671): bodies full of end-of-data look-alikes, NULs and 8-bit bytes, fed in
//! random chunkings through `Client::send` to a scripted server that reads DATA as a strict
//! RFC 5321 server does (end of data only at CRLF.CRLF, §4.1.1.4; leading dot removed, §4.5.2).
//!
//! Properties, per send: the server sees exactly one message; its content is the CRLF-normalised
//! body (plus the CRLF that ends the last line); no command spelt out in the body is ever read
//! as a command.

use std::sync::mpsc;

use crate::support::Server;
use crate::support::{ChunkedSource, crlf_normalise, envelope, strict_data};
use proptest::prelude::*;

/// The pieces bodies are made of: every end-of-data look-alike of the smuggling papers, lone dots
/// and line ends, NULs, 8-bit bytes, and the commands of a second message.
const PIECES: &[&[u8]] = &[
    b"\n.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
    b"\r\r\n.\r\r\n",
    b"\r\n.\r\n",
    b".",
    b"..",
    b"\r",
    b"\n",
    b"\r\n",
    b"\0",
    b"\x80\xff\xc3\xa9",
    b"text ",
    b"\r\n.\r\nMAIL FROM:<evil@x>\r\n",
    b"RCPT TO:<victim@x>\r\n",
    b"DATA\r\n",
    b"QUIT\r\n",
    b"RSET\n",
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0..PIECES.len(), 0..40)
        .prop_map(|ix| ix.into_iter().flat_map(|i| PIECES[i].to_vec()).collect())
}

/// What the server saw: every line it read as a command, and every message.
struct Seen {
    commands: Vec<String>,
    messages: Vec<Vec<u8>>,
}

/// A server that reads commands until QUIT or the end of the stream, answering as a strict
/// server would; DATA is read up to the first CRLF.CRLF only.
fn strict_server(pipelining: bool, report: mpsc::Sender<Seen>) -> Server {
    Server::start(move |c| {
        c.hello(if pipelining { &["PIPELINING"] } else { &[] });
        let mut seen = Seen {
            commands: Vec::new(),
            messages: Vec::new(),
        };
        while let Some(line) = c.try_line() {
            seen.commands.push(line.clone());
            let verb = line
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match verb.as_str() {
                "MAIL" | "RCPT" | "RSET" | "NOOP" => c.send("250 ok\r\n"),
                "DATA" => {
                    c.send("354 go\r\n");
                    seen.messages.push(c.data());
                    c.send("250 queued\r\n");
                }
                "QUIT" => {
                    c.send("221 bye\r\n");
                    break;
                }
                _ => c.send("500 5.5.2 what?\r\n"),
            }
        }
        report.send(seen).unwrap();
    })
}

proptest! {
    #![proptest_config(crate::support::proptest_config(64))]

    #[test]
    fn smtp_smuggling_cve_2023_51764_one_message_per_send_and_no_smuggled_command(
        body in body(),
        sizes in prop::collection::vec(1usize..48, 1..8),
        pipelining in any::<bool>(),
    ) {
        let (tx, rx) = mpsc::channel();
        let server = strict_server(pipelining, tx);
        let mut client = server.client();
        let mut source = ChunkedSource::new(body.clone(), sizes);
        client.send(&envelope(&["you@example.org"]), &mut source, None).unwrap();
        client.quit().unwrap();
        server.finish();
        let seen = rx.recv().unwrap();

        prop_assert_eq!(seen.messages.len(), 1);
        prop_assert_eq!(
            &seen.commands,
            &["MAIL FROM:<me@example.com>", "RCPT TO:<you@example.org>", "DATA", "QUIT"]
        );
        let wire = &seen.messages[0];
        let (content, rest) = strict_data(wire).expect("an end-of-data line");
        prop_assert!(rest.is_empty());
        let mut want = crlf_normalise(&body);
        if !want.is_empty() && !want.ends_with(b"\r\n") {
            want.extend_from_slice(b"\r\n");
        }
        prop_assert_eq!(content, want);
        // No bare CR or LF crossed the wire.
        for (i, &b) in wire.iter().enumerate() {
            match b {
                b'\r' => prop_assert_eq!(wire.get(i + 1), Some(&b'\n')),
                b'\n' => prop_assert!(i > 0 && wire[i - 1] == b'\r'),
                _ => {}
            }
        }
    }
}
