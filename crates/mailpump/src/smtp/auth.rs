//! SMTP authentication (RFC 4954) without I/O: mechanisms, credentials and the payloads each
//! mechanism sends.
//!
//! [`Authenticator`] drives one exchange: send [`Authenticator::command`], then answer every `334`
//! challenge with [`Authenticator::respond`] (sent as [`Command::AuthContinuation`]) until the server
//! answers `235` (success) or an error.
//!
//! ```
//! use mailpump::smtp::auth::{Authenticator, Credentials, Mechanism, choose};
//! use mailpump::smtp::reply::Reply;
//!
//! let offered = [Mechanism::Login, Mechanism::Plain];
//! let mechanism = choose(&offered, false).unwrap();
//! assert_eq!(mechanism, Mechanism::Plain);
//! let mut login = Authenticator::new(Mechanism::Login, Credentials::new("tim", "secret")).unwrap();
//! assert_eq!(login.command().unwrap().redacted(), "AUTH LOGIN");
//! let prompt = Reply::new(334, vec!["VXNlcm5hbWU6".into()]);
//! let answer = login.respond(&prompt).unwrap();
//! assert_eq!(answer.expose(), "dGlt");
//! assert_eq!(answer.to_string(), "<redacted>");
//! ```

use std::fmt;
use std::str::FromStr;

use hmac::{KeyInit, Mac};

use super::command::Command;
use super::error::{AuthKind, SmtpError};
use super::reply::Reply;

/// A password, token or AUTH payload. Its `Debug` and `Display` print `<redacted>`, so it cannot
/// leak into a log or an error message by accident; [`Secret::expose`] gives the value.
///
/// ```
/// use mailpump::smtp::auth::Secret;
///
/// let password = Secret::new("hunter2");
/// assert_eq!(format!("{password} {password:?}"), "<redacted> <redacted>");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    ///
    /// ```
    /// use mailpump::smtp::auth::Secret;
    ///
    /// let token = Secret::new(String::from("ya29.token"));
    /// assert!(!token.is_empty());
    /// assert_eq!(token.expose(), "ya29.token");
    /// ```
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Only the wire encoding should call this.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    /// Overwrites the value before its memory is freed, so it does not linger in freed heap.
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        // Keep the writes from being optimised away as dead stores.
        std::hint::black_box(&bytes);
    }
}

/// An SASL mechanism for SMTP AUTH.
///
/// ```
/// use mailpump::Mechanism;
///
/// let mechanism: Mechanism = "cram-md5".parse()?;
/// assert_eq!(mechanism, Mechanism::CramMd5);
/// assert_eq!(mechanism.as_str(), "CRAM-MD5");
/// # Ok::<(), mailpump::smtp::auth::UnknownMechanism>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// PLAIN (RFC 4616): user and password in one base64 payload.
    Plain,
    /// LOGIN (draft-murchison-sasl-login): user, then password, each base64.
    Login,
    /// CRAM-MD5 (RFC 2195): an HMAC-MD5 of the server's challenge; the password never travels.
    CramMd5,
    /// XOAUTH2 (Google, Microsoft): an OAuth 2.0 bearer token.
    XOAuth2,
}

impl Mechanism {
    /// The name as written in EHLO and AUTH.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::CramMd5 => "CRAM-MD5",
            Self::XOAuth2 => "XOAUTH2",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Mechanism::from_str`]: a mechanism mailpump does not implement.
///
/// ```
/// use mailpump::Mechanism;
///
/// let error = "GSSAPI".parse::<Mechanism>().unwrap_err();
/// assert_eq!(error.0, "GSSAPI");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMechanism(pub String);

impl fmt::Display for UnknownMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown AUTH mechanism {:?}: use PLAIN, LOGIN, CRAM-MD5 or XOAUTH2",
            self.0
        )
    }
}

impl std::error::Error for UnknownMechanism {}

impl FromStr for Mechanism {
    type Err = UnknownMechanism;

    /// Parses a mechanism name, ignoring case (SASL names are case-insensitive in EHLO, RFC 4954 §3).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Plain, Self::Login, Self::CramMd5, Self::XOAuth2]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMechanism(s.to_owned()))
    }
}

/// Picks the mechanism to use among those the server offered: for an OAuth token, XOAUTH2; for a
/// password, CRAM-MD5, then PLAIN, then LOGIN. `None` when nothing suitable is offered.
///
/// ```
/// use mailpump::Mechanism;
/// use mailpump::smtp::auth::choose;
///
/// assert_eq!(choose(&[Mechanism::Login, Mechanism::CramMd5], false), Some(Mechanism::CramMd5));
/// assert_eq!(choose(&[Mechanism::XOAuth2], false), None);
/// ```
#[must_use]
pub fn choose(offered: &[Mechanism], has_token: bool) -> Option<Mechanism> {
    let preference: &[Mechanism] = if has_token {
        &[Mechanism::XOAuth2]
    } else {
        &[Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login]
    };
    preference.iter().copied().find(|m| offered.contains(m))
}

/// A user name with its password, or with its OAuth 2.0 token for XOAUTH2.
///
/// ```
/// use mailpump::Credentials;
///
/// let credentials = Credentials::new("tim", "tanstaaftanstaaf");
/// assert_eq!(credentials.plain_response()?.expose(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
/// // RFC 2195's example exchange.
/// let challenge = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
/// assert_eq!(
///     credentials.cram_md5_response(challenge)?.expose(),
///     "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
/// );
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user (authentication identity).
    pub user: String,
    /// The password or the token.
    pub secret: Secret,
}

impl Credentials {
    /// Credentials for `user` with `secret`.
    ///
    /// ```
    /// use mailpump::Credentials;
    ///
    /// let credentials = Credentials::new("me@example.com", std::env::var("SMTP_PASSWORD").unwrap_or_default());
    /// assert_eq!(credentials.user, "me@example.com");
    /// ```
    pub fn new(user: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self {
            user: user.into(),
            secret: secret.into(),
        }
    }

    /// The PLAIN initial response (RFC 4616 §2): base64 of `NUL user NUL password`, with an empty
    /// authorisation identity. A NUL in the user or password would shift the fields, so it is
    /// refused.
    pub fn plain_response(&self) -> Result<Secret, SmtpError> {
        if self.user.contains('\0') || self.secret.expose().contains('\0') {
            return Err(SmtpError::invalid_input(
                "AUTH PLAIN cannot carry a user name or password containing NUL",
            ));
        }
        let mut payload = Vec::with_capacity(self.user.len() + self.secret.expose().len() + 2);
        payload.push(0);
        payload.extend_from_slice(self.user.as_bytes());
        payload.push(0);
        payload.extend_from_slice(self.secret.expose().as_bytes());
        Ok(encode_and_wipe(payload))
    }

    /// The first LOGIN response: the user name in base64.
    ///
    /// ```
    /// use mailpump::Credentials;
    ///
    /// let credentials = Credentials::new("tim", "secret");
    /// assert_eq!(credentials.login_user().expose(), "dGlt");
    /// assert_eq!(credentials.login_password().expose(), "c2VjcmV0");
    /// ```
    #[must_use]
    pub fn login_user(&self) -> Secret {
        Secret(base64_simd::STANDARD.encode_to_string(self.user.as_bytes()))
    }

    /// The second LOGIN response: the password in base64.
    #[must_use]
    pub fn login_password(&self) -> Secret {
        Secret(base64_simd::STANDARD.encode_to_string(self.secret.expose().as_bytes()))
    }

    /// The CRAM-MD5 response (RFC 2195 §2) to `challenge`, the base64 text of the server's `334`
    /// reply: base64 of `user SP hex(HMAC-MD5(password, decoded challenge))`.
    pub fn cram_md5_response(&self, challenge: &str) -> Result<Secret, SmtpError> {
        let challenge = base64_simd::STANDARD
            .decode_to_vec(challenge.trim().as_bytes())
            .map_err(|_| {
                SmtpError::auth(
                    AuthKind::Exchange,
                    "the server's CRAM-MD5 challenge is not valid base64",
                )
            })?;
        let mut mac = hmac::Hmac::<md5::Md5>::new_from_slice(self.secret.expose().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(&challenge);
        let digest = mac.finalize().into_bytes();
        let mut payload = Vec::with_capacity(self.user.len() + 1 + 2 * digest.len());
        payload.extend_from_slice(self.user.as_bytes());
        payload.push(b' ');
        for byte in digest {
            payload.push(HEX[usize::from(byte >> 4)]);
            payload.push(HEX[usize::from(byte & 0xf)]);
        }
        Ok(encode_and_wipe(payload))
    }

    /// The XOAUTH2 initial response: base64 of `user=USER ^A auth=Bearer TOKEN ^A ^A`. A `^A`
    /// (0x01) in the user or token would shift the fields, so it is refused.
    ///
    /// ```
    /// use mailpump::Credentials;
    ///
    /// let credentials = Credentials::new("me@example.com", "ya29.token");
    /// assert!(credentials.xoauth2_response()?.expose().starts_with("dXNlcj1tZUBleGFtcGxlLmNvbQFhdXRo"));
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn xoauth2_response(&self) -> Result<Secret, SmtpError> {
        if self.user.contains('\x01') || self.secret.expose().contains('\x01') {
            return Err(SmtpError::invalid_input(
                "AUTH XOAUTH2 cannot carry a user name or token containing the byte 0x01",
            ));
        }
        let payload = format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            self.user,
            self.secret.expose()
        );
        Ok(encode_and_wipe(payload.into_bytes()))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Base64-encodes `payload` into a [`Secret`], then overwrites the plaintext.
fn encode_and_wipe(mut payload: Vec<u8>) -> Secret {
    let encoded = Secret(base64_simd::STANDARD.encode_to_string(&payload));
    payload.fill(0);
    std::hint::black_box(&payload);
    encoded
}

/// How many challenges an exchange may take before the client gives up: LOGIN needs two; more
/// means a confused or hostile server (smtplib's `_MAXCHALLENGE` is 5 for the same reason).
const MAX_CHALLENGES: usize = 5;

/// One AUTH exchange, without I/O.
///
/// ```
/// use mailpump::smtp::auth::Authenticator;
/// use mailpump::{Credentials, Mechanism};
///
/// let mut plain = Authenticator::new(Mechanism::Plain, Credentials::new("tim", "secret"))?;
/// // PLAIN sends everything as the initial response: the command line carries it, redacted.
/// assert_eq!(plain.command()?.redacted(), "AUTH PLAIN <redacted>");
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Debug)]
pub struct Authenticator {
    mechanism: Mechanism,
    credentials: Credentials,
    /// How many challenges have been answered.
    step: usize,
}

impl Authenticator {
    /// An exchange for `mechanism` with `credentials`. Credentials that the mechanism cannot carry
    /// (a NUL for PLAIN, 0x01 for XOAUTH2, a control character in a CRAM-MD5 user name) are refused
    /// here, before anything is sent.
    ///
    /// ```
    /// use mailpump::smtp::auth::Authenticator;
    /// use mailpump::{Credentials, Mechanism};
    ///
    /// assert!(Authenticator::new(Mechanism::Plain, Credentials::new("a\0b", "x")).is_err());
    /// ```
    pub fn new(mechanism: Mechanism, credentials: Credentials) -> Result<Self, SmtpError> {
        match mechanism {
            Mechanism::Plain => {
                credentials.plain_response()?;
            }
            Mechanism::XOAuth2 => {
                credentials.xoauth2_response()?;
            }
            Mechanism::CramMd5 if credentials.user.chars().any(char::is_control) => {
                return Err(SmtpError::invalid_input(
                    "AUTH CRAM-MD5 cannot carry a user name containing control characters",
                ));
            }
            Mechanism::CramMd5 | Mechanism::Login => {}
        }
        Ok(Self {
            mechanism,
            credentials,
            step: 0,
        })
    }

    /// The mechanism in use.
    ///
    /// ```
    /// use mailpump::smtp::auth::Authenticator;
    /// use mailpump::{Credentials, Mechanism};
    ///
    /// let exchange = Authenticator::new(Mechanism::CramMd5, Credentials::new("tim", "secret"))?;
    /// assert_eq!(exchange.mechanism(), Mechanism::CramMd5);
    /// assert_eq!(exchange.command()?.redacted(), "AUTH CRAM-MD5");
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    #[must_use]
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The AUTH command that starts the exchange. PLAIN and XOAUTH2 send their payload as an
    /// initial response (RFC 4954 §4), which saves a round trip; LOGIN and CRAM-MD5 wait for the
    /// server's challenge.
    pub fn command(&self) -> Result<Command, SmtpError> {
        let initial_response = match self.mechanism {
            Mechanism::Plain => Some(self.credentials.plain_response()?),
            Mechanism::XOAuth2 => Some(self.credentials.xoauth2_response()?),
            Mechanism::Login | Mechanism::CramMd5 => None,
        };
        Ok(Command::Auth {
            mechanism: self.mechanism,
            initial_response,
        })
    }

    /// The answer to a `334` challenge, to send as [`Command::AuthContinuation`].
    ///
    /// LOGIN answers the user name, then the password, whatever the challenge text says (servers
    /// word it differently). PLAIN answers its payload again, for a server that ignored the initial
    /// response. XOAUTH2's second `334` carries an error description; the answer is an empty line,
    /// after which the server sends its final error reply.
    ///
    /// ```
    /// use mailpump::smtp::auth::Authenticator;
    /// use mailpump::{Credentials, Mechanism, Reply};
    ///
    /// let mut login = Authenticator::new(Mechanism::Login, Credentials::new("tim", "secret"))?;
    /// let user = login.respond(&Reply::new(334, vec!["VXNlcm5hbWU6".into()]))?;
    /// let password = login.respond(&Reply::new(334, vec!["UGFzc3dvcmQ6".into()]))?;
    /// assert_eq!((user.expose(), password.expose()), ("dGlt", "c2VjcmV0"));
    /// # Ok::<(), mailpump::SmtpError>(())
    /// ```
    pub fn respond(&mut self, challenge: &Reply) -> Result<Secret, SmtpError> {
        if challenge.code != 334 {
            return Err(SmtpError::Auth {
                kind: AuthKind::Refused,
                reply: Some(challenge.clone()),
                reason: format!(
                    "the server answered AUTH {} with an unexpected reply",
                    self.mechanism
                ),
            });
        }
        if self.step >= MAX_CHALLENGES {
            return Err(SmtpError::Auth {
                kind: AuthKind::Exchange,
                reply: Some(challenge.clone()),
                reason: format!("the server sent more than {MAX_CHALLENGES} challenges"),
            });
        }
        self.step += 1;
        match (self.mechanism, self.step) {
            (Mechanism::Login, 1) => Ok(self.credentials.login_user()),
            (Mechanism::Login, 2) => Ok(self.credentials.login_password()),
            (Mechanism::CramMd5, 1) => self
                .credentials
                .cram_md5_response(challenge.lines.first().map_or("", String::as_str)),
            (Mechanism::Plain, 1) => self.credentials.plain_response(),
            (Mechanism::XOAuth2, _) => Ok(Secret::default()),
            _ => Err(SmtpError::Auth {
                kind: AuthKind::Exchange,
                reply: Some(challenge.clone()),
                reason: format!(
                    "the server sent an unexpected extra challenge for AUTH {}",
                    self.mechanism
                ),
            }),
        }
    }
}

/// Pairs a caller's secret with a mechanism: a password (any mechanism but XOAUTH2, the client
/// choosing when `mechanism` is `None`) or an OAuth token (XOAUTH2 only), never both. With none of
/// user, secret and mechanism, AUTH is skipped (`Ok(None)`), as LuaSocket does.
///
/// A credential given in part (a user name without a secret, a secret without a user name, a
/// mechanism with neither) is refused: skipping AUTH then would send the message
/// unauthenticated and hide the mistake until the server refuses it.
///
/// ```
/// use mailpump::smtp::auth::{Mechanism, login};
///
/// let (_, m) = login(Some("u".into()), None, Some("tok".into()), None)?.unwrap();
/// assert_eq!(m, Some(Mechanism::XOAuth2));
/// assert!(login(Some("u".into()), None, Some("tok".into()), Some(Mechanism::Plain)).is_err());
/// assert!(login(None, None, None, None)?.is_none());
/// assert!(login(None, Some("p".into()), None, None).is_err());
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
pub fn login(
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    mechanism: Option<Mechanism>,
) -> Result<Option<(Credentials, Option<Mechanism>)>, SmtpError> {
    pair(user, password, token, mechanism).map_err(SmtpError::invalid_input)
}

/// [`login`]'s rules; the error is the reason, for [`SmtpError::InvalidInput`].
fn pair(
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    mechanism: Option<Mechanism>,
) -> Result<Option<(Credentials, Option<Mechanism>)>, String> {
    let (secret, mechanism) = match (password, token) {
        (Some(_), Some(_)) => return Err("give a password or an OAuth token, not both".into()),
        (Some(_), None) if mechanism == Some(Mechanism::XOAuth2) => {
            return Err(
                "XOAUTH2 authenticates with an OAuth token (oauth_token), not a password".into(),
            );
        }
        (None, Some(_)) if mechanism.is_some_and(|m| m != Mechanism::XOAuth2) => {
            return Err(
                "an OAuth token is sent with XOAUTH2 only; leave the mechanism unset or XOAUTH2"
                    .into(),
            );
        }
        (Some(password), None) => (Some((["a password", "the password"], password)), mechanism),
        (None, Some(token)) => (
            Some((["an OAuth token", "the token"], token)),
            Some(Mechanism::XOAuth2),
        ),
        (None, None) => (None, mechanism),
    };
    match (user, secret, mechanism) {
        (Some(user), Some((_, secret)), _) => Ok(Some((Credentials::new(user, secret), mechanism))),
        (None, None, None) => Ok(None),
        (Some(_), None, _) => Err(
            "a user name was given without a password or an OAuth token, and AUTH needs one \
             of them: give the password too (or the OAuth token, for XOAUTH2)"
                .into(),
        ),
        (None, Some(([given, it], _)), _) => Err(format!(
            "{given} was given without a user name, and AUTH needs both: give the user name \
             (user) too, or leave out {it} to send without authenticating"
        )),
        (None, None, Some(mechanism)) => Err(format!(
            "AUTH {mechanism} was asked for without credentials: give the user name (user) \
             and the password (or the OAuth token, for XOAUTH2), or leave out the mechanism to \
             send without authenticating"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tim() -> Credentials {
        Credentials::new("tim", "tanstaaftanstaaf")
    }

    fn challenge(text: &str) -> Reply {
        Reply::new(334, vec![text.to_owned()])
    }

    #[test]
    fn rfc_vectors() {
        // RFC 4616 §4, the PLAIN example without an authorisation identity.
        assert_eq!(
            tim().plain_response().unwrap().expose(),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
        // RFC 2195 §2, the CRAM-MD5 example.
        let challenge = "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
        let response = tim().cram_md5_response(challenge).unwrap();
        let decoded = base64_simd::STANDARD
            .decode_to_vec(response.expose())
            .unwrap();
        assert_eq!(decoded, b"tim b913a602c7eda7a495b4e6e7334d3890");
        // Google's XOAUTH2 documentation example.
        let oauth = Credentials::new(
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        );
        assert_eq!(
            oauth.xoauth2_response().unwrap().expose(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        assert_eq!(tim().login_user().expose(), "dGlt");
        assert_eq!(tim().login_password().expose(), "dGFuc3RhYWZ0YW5zdGFhZg==");
        // UTF-8 passes through as its bytes.
        let utf8 = Credentials::new("ü", "ß");
        assert_eq!(utf8.plain_response().unwrap().expose(), "AMO8AMOf");
    }

    #[test]
    fn payloads_that_would_shift_fields_are_refused() {
        for (user, password) in [("t\0m", "x"), ("tim", "pa\0ss"), ("\0", "")] {
            let e = Credentials::new(user, password)
                .plain_response()
                .unwrap_err();
            assert!(e.to_string().contains("NUL"), "{e}");
            assert!(
                Authenticator::new(Mechanism::Plain, Credentials::new(user, password)).is_err()
            );
        }
        for (user, token) in [("u\x01", "t"), ("u", "t\x01ok")] {
            assert!(Credentials::new(user, token).xoauth2_response().is_err());
            assert!(Authenticator::new(Mechanism::XOAuth2, Credentials::new(user, token)).is_err());
        }
        assert!(Authenticator::new(Mechanism::CramMd5, Credentials::new("t\nm", "x")).is_err());
        // LOGIN and CRAM-MD5 base64 the password, so any byte is safe there.
        assert!(Authenticator::new(Mechanism::Login, Credentials::new("tim", "pa\0ss")).is_ok());
        assert!(Authenticator::new(Mechanism::CramMd5, Credentials::new("tim", "pa\0ss")).is_ok());
        let e = tim().cram_md5_response("not base64!").unwrap_err();
        assert!(matches!(e, SmtpError::Auth { reply: None, .. }), "{e}");
    }

    #[test]
    fn half_given_credentials_are_refused() {
        let refused =
            |user: Option<&str>, password: Option<&str>, token: Option<&str>, mechanism| {
                let owned = |s: Option<&str>| s.map(str::to_owned);
                match login(owned(user), owned(password), owned(token), mechanism) {
                    Err(SmtpError::InvalidInput(message)) => message,
                    other => panic!("{user:?} {password:?} {token:?} {mechanism:?}: {other:?}"),
                }
            };
        let without_secret = "a user name was given without a password or an OAuth token";
        assert!(refused(Some("u"), None, None, None).contains(without_secret));
        let forced = refused(Some("u"), None, None, Some(Mechanism::Login));
        assert!(forced.contains(without_secret), "{forced}");
        for mechanism in [None, Some(Mechanism::Plain)] {
            let message = refused(None, Some("p"), None, mechanism);
            assert!(message.starts_with("a password was given without a user name"));
            assert!(message.contains("leave out the password"), "{message}");
        }
        for mechanism in [None, Some(Mechanism::XOAuth2)] {
            let message = refused(None, None, Some("t"), mechanism);
            assert!(message.starts_with("an OAuth token was given without a user name"));
        }
        let message = refused(None, None, None, Some(Mechanism::CramMd5));
        assert!(message.starts_with("AUTH CRAM-MD5 was asked for without credentials"));

        // Nothing given: no AUTH, as before; a whole credential passes.
        assert_eq!(login(None, None, None, None).unwrap(), None);
        let user = || Some("u".to_owned());
        let (credentials, mechanism) = login(user(), Some("p".into()), None, None)
            .unwrap()
            .unwrap();
        assert_eq!((credentials, mechanism), (Credentials::new("u", "p"), None));
        let (credentials, mechanism) = login(user(), None, Some("t".into()), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (credentials, mechanism),
            (Credentials::new("u", "t"), Some(Mechanism::XOAuth2))
        );
    }

    #[test]
    fn mechanism_names() {
        for (name, mechanism) in [
            ("PLAIN", Mechanism::Plain),
            ("plain", Mechanism::Plain),
            ("Login", Mechanism::Login),
            ("cram-md5", Mechanism::CramMd5),
            ("XOAUTH2", Mechanism::XOAuth2),
            ("xoauth2", Mechanism::XOAuth2),
        ] {
            assert_eq!(name.parse::<Mechanism>(), Ok(mechanism));
            assert_eq!(mechanism.to_string(), name.to_ascii_uppercase());
        }
        for name in ["", "CRAM", "SCRAM-SHA-256", "PLAIN ", "OAUTHBEARER"] {
            let e = name.parse::<Mechanism>().unwrap_err();
            assert!(e.to_string().contains("unknown AUTH mechanism"));
        }
    }

    #[test]
    fn choice() {
        use Mechanism::{CramMd5, Login, Plain, XOAuth2};
        let cases: &[(&[Mechanism], bool, Option<Mechanism>)] = &[
            (&[Login, Plain, CramMd5], false, Some(CramMd5)),
            (&[Login, Plain], false, Some(Plain)),
            (&[Login], false, Some(Login)),
            (&[XOAuth2], false, None),
            (&[], false, None),
            (&[Login, Plain, XOAuth2], true, Some(XOAuth2)),
            (&[Login, Plain], true, None),
            (&[], true, None),
        ];
        for &(offered, token, expected) in cases {
            assert_eq!(
                choose(offered, token),
                expected,
                "{offered:?} token={token}"
            );
        }
    }

    #[test]
    fn exchanges() {
        // PLAIN: the payload goes with the command; a server that asks anyway gets it again.
        let mut plain = Authenticator::new(Mechanism::Plain, tim()).unwrap();
        let Command::Auth {
            mechanism: Mechanism::Plain,
            initial_response: Some(ir),
        } = plain.command().unwrap()
        else {
            panic!()
        };
        assert_eq!(ir.expose(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        assert_eq!(plain.respond(&challenge("")).unwrap(), ir);
        assert!(plain.respond(&challenge("")).is_err());

        // LOGIN: user then password, whatever the prompts say; a third challenge is refused.
        let mut login = Authenticator::new(Mechanism::Login, tim()).unwrap();
        assert_eq!(
            login.command().unwrap(),
            Command::Auth {
                mechanism: Mechanism::Login,
                initial_response: None
            }
        );
        assert_eq!(
            login.respond(&challenge("UGFzc3dvcmQ6")).unwrap().expose(),
            "dGlt"
        );
        assert_eq!(
            login.respond(&challenge("whatever")).unwrap().expose(),
            "dGFuc3RhYWZ0YW5zdGFhZg=="
        );
        let e = login.respond(&challenge("VXNlcm5hbWU6")).unwrap_err();
        assert!(e.to_string().contains("unexpected extra challenge"), "{e}");

        // CRAM-MD5 answers the challenge in the reply text.
        let mut cram = Authenticator::new(Mechanism::CramMd5, tim()).unwrap();
        assert_eq!(cram.mechanism(), Mechanism::CramMd5);
        assert_eq!(cram.command().unwrap().redacted(), "AUTH CRAM-MD5");
        let answer = cram
            .respond(&challenge(
                "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
            ))
            .unwrap();
        assert_eq!(
            answer.expose(),
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
        );

        // XOAUTH2: an error arrives as a 334 with a JSON description; the answer is empty.
        let mut oauth =
            Authenticator::new(Mechanism::XOAuth2, Credentials::new("u@example.com", "tok"))
                .unwrap();
        assert!(matches!(
            oauth.command().unwrap(),
            Command::Auth {
                initial_response: Some(_),
                ..
            }
        ));
        assert!(
            oauth
                .respond(&challenge("eyJzdGF0dXMiOiI0MDEifQ=="))
                .unwrap()
                .is_empty()
        );

        // Anything but 334 is not a challenge.
        let mut login = Authenticator::new(Mechanism::Login, tim()).unwrap();
        let refused = Reply::new(535, vec!["5.7.8 Authentication credentials invalid".into()]);
        let SmtpError::Auth {
            reply: Some(reply), ..
        } = login.respond(&refused).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(reply.code, 535);
    }

    #[test]
    fn a_server_that_never_stops_challenging_is_cut_off() {
        let mut oauth = Authenticator::new(Mechanism::XOAuth2, Credentials::new("u", "t")).unwrap();
        for _ in 0..MAX_CHALLENGES {
            oauth.respond(&challenge("")).unwrap();
        }
        let e = oauth.respond(&challenge("")).unwrap_err();
        assert!(e.to_string().contains("more than 5 challenges"), "{e}");
    }

    #[test]
    fn secrets_are_redacted_everywhere() {
        let password = "tanstaaftanstaaf";
        let creds = tim();
        let mut auth = Authenticator::new(Mechanism::Login, creds.clone()).unwrap();
        let answer = auth.respond(&challenge("x")).unwrap();
        let shown = [
            format!("{:?}", creds.secret),
            creds.secret.to_string(),
            format!("{creds:?}"),
            format!("{auth:?}"),
            format!("{answer:?}"),
            answer.to_string(),
            format!("{:?}", creds.plain_response().unwrap()),
        ];
        for text in &shown {
            assert!(!text.contains(password), "{text}");
            assert!(!text.contains("dGFuc3RhYWZ0YW5zdGFhZg"), "{text}");
            assert!(!text.contains("AHRpbQB0YW5zdGFhZnRhbnN0YWFm"), "{text}");
        }
        assert_eq!(creds.secret.to_string(), "<redacted>");
        assert_eq!(format!("{:?}", Secret::new("x")), "<redacted>");
        assert_eq!(Secret::from(String::from("abc")).expose(), "abc");
    }
}
