//! The AUTH exchanges (RFC 4954): PLAIN, LOGIN, CRAM-MD5 and XOAUTH2.
//!
//! The payloads come from [`crate::smtp::auth`]; this module only sends them and reads the
//! replies. Every client line that carries a credential is logged as `<redacted>`.

use super::Client;
use crate::smtp::auth::{self, Credentials, Mechanism};
use crate::smtp::command::Command;
use crate::smtp::error::SmtpError;
use crate::smtp::reply::Reply;

impl Client {
    /// Authenticates with `credentials`, using `mechanism` or else the best one the server
    /// offers for them. Returns the server's `235` reply.
    ///
    /// Refused without a byte sent when the connection is unencrypted and the peer is not on
    /// loopback, unless [`super::ClientConfig::allow_insecure_auth`] is set. A rejection (`535`
    /// and any other negative reply) is an [`SmtpError::Auth`]; the session stays usable.
    pub fn auth(
        &mut self,
        credentials: &Credentials,
        mechanism: Option<Mechanism>,
    ) -> Result<Reply, SmtpError> {
        self.ensure_usable()?;
        if !self.encrypted && !self.loopback && !self.config.allow_insecure_auth {
            return Err(SmtpError::Auth(format!(
                "refusing to send credentials over an unencrypted connection to {}; use TLS, or allow insecure AUTH explicitly",
                self.config.server
            )));
        }
        let mechanism = match mechanism {
            Some(m) => m,
            None => credentials.choose(&self.caps.auth).ok_or_else(|| {
                SmtpError::Auth(format!(
                    "the server offers no authentication mechanism these credentials can use (offered: {})",
                    self.caps.auth.iter().map(|m| m.name()).collect::<Vec<_>>().join(" ")
                ))
            })?,
        };
        match (mechanism, credentials) {
            (Mechanism::Plain, Credentials::Password { user, password }) => {
                // RFC 4616 with the initial response on the AUTH line (RFC 4954 §4).
                let initial = auth::plain_payload(user, password);
                let reply = self.command(&Command::Auth {
                    mechanism,
                    initial: Some(initial.clone()),
                })?;
                if reply.code == 334 {
                    // A server that ignores initial responses asks again with an empty challenge.
                    let reply = self.command(&Command::AuthResponse(initial))?;
                    return self.auth_outcome(reply, mechanism);
                }
                self.auth_outcome(reply, mechanism)
            }
            (Mechanism::Login, Credentials::Password { user, password }) => {
                let reply = self.command(&Command::Auth {
                    mechanism,
                    initial: None,
                })?;
                if reply.code != 334 {
                    return self.auth_outcome(reply, mechanism);
                }
                let reply = self.command(&Command::AuthResponse(auth::login_user(user)))?;
                if reply.code != 334 {
                    return self.auth_outcome(reply, mechanism);
                }
                let reply = self.command(&Command::AuthResponse(auth::login_password(password)))?;
                self.auth_outcome(reply, mechanism)
            }
            (Mechanism::CramMd5, Credentials::Password { user, password }) => {
                // RFC 2195: the challenge comes base64-encoded in the 334 reply.
                let reply = self.command(&Command::Auth {
                    mechanism,
                    initial: None,
                })?;
                if reply.code != 334 {
                    return self.auth_outcome(reply, mechanism);
                }
                let Some(response) = auth::cram_md5_response(user, password, &reply.text()) else {
                    self.cancel_auth()?;
                    return Err(SmtpError::Auth(
                        "the server's CRAM-MD5 challenge is not valid base64".into(),
                    ));
                };
                let reply = self.command(&Command::AuthResponse(response))?;
                self.auth_outcome(reply, mechanism)
            }
            (Mechanism::XOAuth2, Credentials::OAuth2 { user, token }) => {
                let initial = auth::xoauth2_payload(user, token);
                let reply = self.command(&Command::Auth {
                    mechanism,
                    initial: Some(initial),
                })?;
                if reply.code == 334 {
                    // Google's XOAUTH2: a 334 carries a base64 JSON error; an empty response
                    // makes the server send the final failure reply.
                    let error = reply.text();
                    let reply = self.command(&Command::AuthResponse(String::new()))?;
                    return match self.auth_outcome(reply, mechanism) {
                        Ok(r) => Ok(r),
                        Err(_) => Err(SmtpError::Auth(format!("XOAUTH2 refused: {error}"))),
                    };
                }
                self.auth_outcome(reply, mechanism)
            }
            (m, Credentials::Password { .. }) => Err(SmtpError::InvalidInput(format!(
                "{} needs an OAuth2 token, not a password",
                m.name()
            ))),
            (m, Credentials::OAuth2 { .. }) => Err(SmtpError::InvalidInput(format!(
                "{} needs a password, not an OAuth2 token",
                m.name()
            ))),
        }
    }

    /// The end of an exchange: 235 succeeds; a challenge where none belongs is cancelled
    /// (RFC 4954 §4, `*`); anything else is a rejection.
    fn auth_outcome(&mut self, reply: Reply, mechanism: Mechanism) -> Result<Reply, SmtpError> {
        if reply.is_positive_completion() {
            return Ok(reply);
        }
        if reply.code == 334 {
            self.cancel_auth()?;
            return Err(SmtpError::Auth(format!(
                "the server asked for more than {} provides: {}",
                mechanism.name(),
                reply.text()
            )));
        }
        Err(SmtpError::Auth(format!("{} {}", reply.code, reply.text())))
    }

    /// Cancels an exchange in progress and reads the server's (negative) answer.
    fn cancel_auth(&mut self) -> Result<(), SmtpError> {
        let reply = self.command(&Command::AuthResponse("*".into()))?;
        if reply.code == 334 {
            return Err(self.fail(SmtpError::Protocol(
                "the server did not accept the AUTH cancellation".into(),
            )));
        }
        Ok(())
    }
}
