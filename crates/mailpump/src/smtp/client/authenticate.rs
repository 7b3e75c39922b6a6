//! The AUTH exchange (RFC 4954): PLAIN, LOGIN, CRAM-MD5 and XOAUTH2.
//!
//! The payloads and the order of the steps come from [`crate::smtp::auth::Authenticator`]; this
//! module sends them and reads the replies. Every line that carries a credential goes through
//! the transcript as `<redacted>`.

use super::Client;
use crate::smtp::auth::{self, Authenticator, Credentials, Mechanism, Secret};
use crate::smtp::command::Command;
use crate::smtp::error::{AuthKind, ProtocolKind, SmtpError};
use crate::smtp::reply::Reply;

impl Client {
    /// Authenticates with `credentials` and returns the server's `235` reply.
    ///
    /// `mechanism` picks the mechanism; `None` takes the best the server offers for a password
    /// (CRAM-MD5, then PLAIN, then LOGIN). XOAUTH2 (`credentials.secret` holding the token) must
    /// be asked for explicitly.
    ///
    /// Refused before a byte is sent when the connection is unencrypted and the server is not on
    /// a loopback address, unless [`super::ClientConfig::allow_insecure_auth`] is set. A rejection
    /// (`535`, or any other negative reply) is an [`SmtpError::Auth`] carrying the reply; the
    /// session stays usable.
    ///
    /// ```no_run
    /// use mailpump::{Client, ClientConfig, Credentials, Mechanism, SmtpError};
    ///
    /// let config = ClientConfig { server: "smtp.example.com".into(), port: 587, ..ClientConfig::default() };
    /// let mut client = Client::connect(&config)?;
    /// client.greet(None)?; // STARTTLS first (TlsPolicy::Auto)
    /// match client.auth(&Credentials::new("me@example.com", "wrong"), Some(Mechanism::Plain)) {
    ///     Err(SmtpError::Auth { reply: Some(reply), .. }) => eprintln!("rejected: {}", reply.text()),
    ///     other => { other?; }
    /// }
    /// # Ok::<(), SmtpError>(())
    /// ```
    pub fn auth(
        &mut self,
        credentials: &Credentials,
        mechanism: Option<Mechanism>,
    ) -> Result<Reply, SmtpError> {
        // The mechanisms are known only after EHLO, and credentials wait for the TLS policy.
        self.ready_for_transaction()?;
        if !self.encrypted && !self.loopback && !self.config.allow_insecure_auth {
            return Err(SmtpError::auth(
                AuthKind::Insecure,
                format!(
                    "refusing to send credentials over an unencrypted connection to {}; use TLS, \
                     or allow insecure authentication explicitly",
                    self.config.server
                ),
            ));
        }
        let Some(mechanism) = mechanism.or_else(|| auth::choose(&self.caps.auth, false)) else {
            let offered: Vec<&str> = self.caps.auth.iter().map(|m| m.as_str()).collect();
            let reason = if offered.is_empty() {
                "the server does not offer AUTH on this connection (some servers offer it only \
                 after STARTTLS, or only on the submission port 587)"
                    .to_owned()
            } else {
                format!(
                    "the server offers no mechanism mailpump can use with a password (offered: \
                     {}); name one explicitly if it should work",
                    offered.join(" ")
                )
            };
            return Err(SmtpError::auth(AuthKind::NoMechanism, reason));
        };
        let mut exchange = Authenticator::new(mechanism, credentials.clone())?;
        let mut reply = self.command(&exchange.command()?)?;
        while reply.code == 334 {
            match exchange.respond(&reply) {
                Ok(response) => reply = self.command(&Command::AuthContinuation(response))?,
                Err(e) => {
                    self.cancel_auth()?;
                    return Err(e);
                }
            }
        }
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(SmtpError::Auth {
                kind: AuthKind::Refused,
                reason: format!("the server refused AUTH {mechanism}"),
                reply: Some(reply),
            })
        }
    }

    /// Cancels an exchange in progress (RFC 4954 §4: a lone `*`) and reads the server's
    /// (negative) answer.
    fn cancel_auth(&mut self) -> Result<(), SmtpError> {
        let reply = self.command(&Command::AuthContinuation(Secret::new("*")))?;
        if reply.code == 334 {
            return Err(self.fail(SmtpError::protocol(
                ProtocolKind::UnexpectedReply,
                "the server did not accept the cancellation of AUTH",
            )));
        }
        Ok(())
    }
}
