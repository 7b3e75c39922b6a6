//! What a failed handshake's first bytes tell, for a TLS implementation that does not say it
//! itself (a [`TlsConnector`](crate::smtp::connector::TlsConnector) over Python's OpenSSL).

use super::describe::PlainSmtpAnswer;

/// As many bytes as tell an SMTP reply line from a TLS record, and show it.
const FIRST_BYTES: usize = 80;

/// The most handshake bytes kept while a message is incomplete: the server's first flight
/// (its certificates included) fits; a longer one stops the watch.
const MAX_HANDSHAKE: usize = 256 * 1024;

/// The TLS record content types and handshake message type looked for (RFC 5246 §6.2.1, §7.4).
const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const CERTIFICATE_REQUEST: u8 = 13;

/// Watches the bytes the server sends during a handshake: whether they are a plain SMTP reply,
/// and whether a TLS 1.2 server asked for a client certificate (its handshake messages travel
/// in clear text until `ChangeCipherSpec`; a TLS 1.3 server says so with an alert of its own,
/// RFC 8446 §6.2). A TLS 1.2 server that wanted a certificate and got none ends the handshake
/// with only "handshake failure" (RFC 5246 §7.4.6); its request tells why.
///
/// Bytes are fed as they arrive, split anywhere.
///
/// ```
/// use mailpump::smtp::tls::HandshakeWatch;
///
/// let mut watch = HandshakeWatch::default();
/// // A record holding a ServerHello (type 2) and a CertificateRequest (type 13), fed in pieces.
/// let record = [22, 3, 3, 0, 8, 2, 0, 0, 0, 13, 0, 0, 0];
/// watch.feed(&record[..3]);
/// assert!(!watch.asked_for_certificate());
/// watch.feed(&record[3..]);
/// assert!(watch.asked_for_certificate());
///
/// let mut plain = HandshakeWatch::default();
/// plain.feed(b"220 mail.example.com ESMTP\r\n");
/// assert_eq!(plain.plain_smtp_answer().unwrap().line, "220 mail.example.com ESMTP");
/// ```
#[derive(Debug, Default, Clone)]
pub struct HandshakeWatch {
    first: Vec<u8>,
    /// The record being read: its header, then how much of its body is left.
    header: Vec<u8>,
    left: usize,
    body_is_handshake: bool,
    /// Handshake message bytes not yet complete.
    messages: Vec<u8>,
    asked: bool,
    /// Encrypted from here on (or not TLS at all): nothing more to see.
    done: bool,
}

impl HandshakeWatch {
    /// Takes in the next bytes from the server.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        let room = FIRST_BYTES
            .saturating_sub(self.first.len())
            .min(bytes.len());
        self.first.extend_from_slice(&bytes[..room]);
        while !self.done && !bytes.is_empty() {
            if self.left == 0 {
                let take = (5 - self.header.len()).min(bytes.len());
                self.header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.header.len() == 5 {
                    let kind = self.header[0];
                    self.left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                    self.body_is_handshake = kind == HANDSHAKE;
                    self.done = kind == CHANGE_CIPHER_SPEC || !(20..=24).contains(&kind);
                    self.header.clear();
                }
                continue;
            }
            let take = self.left.min(bytes.len());
            if self.body_is_handshake {
                self.messages.extend_from_slice(&bytes[..take]);
                self.scan();
            }
            self.left -= take;
            bytes = &bytes[take..];
        }
    }

    /// Reads the complete handshake messages gathered so far (RFC 5246 §7.4: a type byte and a
    /// 24-bit length).
    fn scan(&mut self) {
        let mut at = 0;
        while self.messages.len() - at >= 4 {
            let m = &self.messages[at..];
            let len = usize::from(m[1]) << 16 | usize::from(m[2]) << 8 | usize::from(m[3]);
            if m[0] == CERTIFICATE_REQUEST {
                self.asked = true;
            }
            if m.len() < 4 + len {
                break;
            }
            at += 4 + len;
        }
        self.messages.drain(..at);
        if self.messages.len() > MAX_HANDSHAKE {
            self.done = true;
        }
    }

    /// Whether the server asked for a client certificate (as far as the clear text shows).
    #[must_use]
    pub fn asked_for_certificate(&self) -> bool {
        self.asked
    }

    /// The server's first line, if it answered in plain SMTP rather than TLS.
    #[must_use]
    pub fn plain_smtp_answer(&self) -> Option<PlainSmtpAnswer> {
        PlainSmtpAnswer::detect(&self.first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS 1.2 server's first flight (`ServerHello`, `Certificate`, `CertificateRequest`,
    /// `ServerHelloDone`) over several records, then a `ChangeCipherSpec`.
    fn flight(request: bool) -> Vec<u8> {
        let message = |kind: u8, body: &[u8]| {
            let len = u32::try_from(body.len()).unwrap().to_be_bytes();
            [&[kind], &len[1..], body].concat()
        };
        let record = |kind: u8, body: &[u8]| {
            let len = u16::try_from(body.len()).unwrap().to_be_bytes();
            [&[kind, 3, 3], &len[..], body].concat()
        };
        let hello = message(2, &[7; 70]);
        let certificate = message(11, &[9; 3000]);
        let mut messages = [hello, certificate].concat();
        if request {
            messages.extend(message(CERTIFICATE_REQUEST, &[1, 1, 0, 0]));
        }
        messages.extend(message(14, &[]));
        // Split across records in the middle of messages.
        let (a, b) = messages.split_at(1000);
        [
            record(HANDSHAKE, a),
            record(HANDSHAKE, b),
            record(CHANGE_CIPHER_SPEC, &[1]),
        ]
        .concat()
    }

    #[test]
    fn the_request_is_found_however_the_bytes_are_split() {
        for request in [true, false] {
            let bytes = flight(request);
            for size in [1, 2, 3, 5, 76, 4096] {
                let mut watch = HandshakeWatch::default();
                for chunk in bytes.chunks(size) {
                    watch.feed(chunk);
                }
                assert_eq!(watch.asked_for_certificate(), request, "chunks of {size}");
                assert!(watch.plain_smtp_answer().is_none());
            }
        }
    }

    #[test]
    fn nothing_is_read_after_change_cipher_spec() {
        let mut watch = HandshakeWatch::default();
        watch.feed(&flight(false));
        // Encrypted bytes that happen to look like a CertificateRequest.
        watch.feed(&[HANDSHAKE, 3, 3, 0, 4, CERTIFICATE_REQUEST, 0, 0, 0]);
        assert!(!watch.asked_for_certificate());
    }

    #[test]
    fn a_plain_greeting_is_not_tls() {
        let mut watch = HandshakeWatch::default();
        watch.feed(b"220 mx ESMTP");
        watch.feed(b" ready\r\n");
        assert_eq!(
            watch.plain_smtp_answer().unwrap().line,
            "220 mx ESMTP ready"
        );
        assert!(!watch.asked_for_certificate());
    }
}
