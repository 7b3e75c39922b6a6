//! Many messages over one connection with `Client::send_many`: pipelined across transactions
//! when the server offers PIPELINING, every reply matched to its message.

use crate::support::{Server, envelope, greeted, greeted_recorded};
use mailpump::smtp::client::{Envelope, SendResult};
use mailpump::smtp::error::SmtpError;
use mailpump::source::{BytesSource, Source};

/// `n` messages to b@example.org, each body `message i`.
fn messages(n: usize) -> impl Iterator<Item = (Envelope, Box<dyn Source>)> {
    (0..n).map(|i| {
        let body: Box<dyn Source> = Box::new(BytesSource::new(format!("message {i}\r\n")));
        (envelope(&["b@example.org"]), body)
    })
}

/// Every outcome, in the order the callback saw them: `(index, "ok" or the error's kind)`.
fn outcomes(
    client: &mut mailpump::Client,
    batch: impl Iterator<Item = (Envelope, Box<dyn Source>)>,
) -> (usize, Vec<(usize, String)>) {
    let mut seen = Vec::new();
    let taken = client
        .send_many(batch, |i, outcome: Result<SendResult, SmtpError>| {
            let what = match outcome {
                Ok(result) => format!("ok {}", result.reply.text()),
                Err(e) => e.kind().to_owned(),
            };
            seen.push((i, what));
        })
        .unwrap();
    (taken, seen)
}

#[test]
fn the_mark_and_the_next_commands_go_out_in_one_write() {
    let (server, mut client, writes) = greeted_recorded(|c| {
        c.hello(&["PIPELINING"]);
        for i in 0..3 {
            c.expect("MAIL FROM:<me@example.com>");
            c.expect("RCPT TO:<b@example.org>");
            c.expect("DATA");
            // The verdict on the previous message comes first, then this one's replies.
            let verdict = if i > 0 {
                format!("250 queued {}\r\n", i - 1)
            } else {
                String::new()
            };
            c.send(&format!("{verdict}250 ok\r\n250 ok\r\n354 go\r\n"));
            assert_eq!(c.data(), format!("message {i}\r\n.\r\n").as_bytes());
        }
        c.send("250 queued 2\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let before = writes.lock().unwrap().len();
    let (taken, seen) = outcomes(&mut client, messages(3));
    assert_eq!(taken, 3);
    assert_eq!(
        seen,
        [
            (0, "ok queued 0".into()),
            (1, "ok queued 1".into()),
            (2, "ok queued 2".into())
        ]
    );
    let writes: Vec<String> = writes.lock().unwrap()[before..]
        .iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let batch = "MAIL FROM:<me@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";
    // One round trip per message: the commands, then each body with its mark and the next
    // message's commands in one write.
    assert_eq!(
        writes,
        [
            batch.to_owned(),
            format!("message 0\r\n.\r\n{batch}"),
            format!("message 1\r\n.\r\n{batch}"),
            "message 2\r\n.\r\n".to_owned(),
        ]
    );
    client.quit().unwrap();
    server.finish();
}

#[test]
fn refusals_do_not_stop_the_others() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["PIPELINING", "SIZE 1000"]);
        // Message 0: the recipient refused, then RSET.
        c.expect("MAIL FROM:<me@example.com> SIZE=11");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n550 5.1.1 no such user\r\n554 no valid recipients\r\n");
        c.expect("RSET");
        c.send("250 reset\r\n");
        // Message 1 (message 2 is too big for SIZE and never reaches the server): refused at
        // the end of data.
        c.expect("MAIL FROM:<me@example.com> SIZE=11");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(c.data(), b"message 1\r\n.\r\n");
        c.send("554 5.7.1 spam\r\n");
        // Message 3: accepted.
        c.expect("MAIL FROM:<me@example.com> SIZE=11");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(c.data(), b"message 3\r\n.\r\n");
        c.send("250 queued\r\n");
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let batch = messages(4).enumerate().map(|(i, (env, body))| {
        if i == 2 {
            let big: Box<dyn Source> = Box::new(BytesSource::new(vec![b'x'; 5000]));
            (env, big)
        } else {
            (env, body)
        }
    });
    let (taken, mut seen) = outcomes(&mut client, batch);
    assert_eq!(taken, 4);
    seen.sort();
    assert_eq!(
        seen,
        [
            (0, "recipients-refused".into()),
            (1, "message-refused".into()),
            (2, "size-exceeded".into()),
            (3, "ok queued".into()),
        ]
    );
    assert!(client.is_usable());
    client.quit().unwrap();
    server.finish();
}

#[test]
fn a_lost_connection_ends_what_was_started_and_leaves_the_rest() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["PIPELINING"]);
        c.expect("MAIL FROM:<me@example.com>");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        // The first message arrives whole, with the second's commands behind its mark; the
        // server hangs up without a verdict.
        assert_eq!(c.data(), b"message 0\r\n.\r\n");
        c.expect("MAIL FROM:<me@example.com>");
    });
    let mut untouched = 0;
    let batch = messages(5).inspect(|_| untouched += 1);
    let (taken, seen) = outcomes(&mut client, batch);
    // The first may have been delivered; the second never got its data; the rest were not taken.
    assert_eq!(
        seen,
        [(0, "outcome-unknown".into()), (1, "connection-lost".into())]
    );
    assert_eq!((taken, untouched), (2, 2));
    assert!(!client.is_usable());
    server.finish();
}

#[test]
fn without_pipelining_one_command_at_a_time() {
    let server = Server::start(|c| {
        c.hello(&[]);
        for i in 0..2 {
            c.expect("MAIL FROM:<me@example.com>");
            c.send("250 ok\r\n");
            c.expect("RCPT TO:<b@example.org>");
            c.send("250 ok\r\n");
            c.expect("DATA");
            c.send("354 go\r\n");
            assert_eq!(c.data(), format!("message {i}\r\n.\r\n").as_bytes());
            c.send(&format!("250 queued {i}\r\n"));
        }
        c.expect("QUIT");
        c.send("221 bye\r\n");
    });
    let mut client = server.client();
    // send_many greets first when nobody has.
    let (taken, seen) = outcomes(&mut client, messages(2));
    assert_eq!(taken, 2);
    assert_eq!(seen, [(0, "ok queued 0".into()), (1, "ok queued 1".into())]);
    client.quit().unwrap();
    server.finish();
}

#[test]
fn a_closing_notice_ends_the_batch_without_taking_more() {
    let (server, mut client) = greeted(|c| {
        c.hello(&["PIPELINING"]);
        c.expect("MAIL FROM:<me@example.com>");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        c.send("250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(c.data(), b"message 0\r\n.\r\n");
        c.expect("MAIL FROM:<me@example.com>");
        c.expect("RCPT TO:<b@example.org>");
        c.expect("DATA");
        // Accepted, then the server shuts down before the next transaction.
        c.send("250 queued 0\r\n421 4.3.2 shutting down\r\n");
        c.until_eof();
    });
    let mut pulled = 0;
    let batch = messages(5).inspect(|_| pulled += 1);
    let (taken, seen) = outcomes(&mut client, batch);
    // The second ends with the notice, the third (queued behind it, never started) with the
    // session's end, both transient; the rest were never taken.
    assert_eq!(
        seen,
        [
            (0, "ok queued 0".into()),
            (1, "sender-refused".into()),
            (2, "command-refused".into())
        ]
    );
    assert_eq!((taken, pulled), (3, 3));
    assert!(!client.is_usable());
    server.finish();
}
