//! What the examples share: a small command-line parser (std only) and the client set-up.

use std::env;
use std::path::PathBuf;
use std::process;
use std::time::Duration;

use mailpump::smtp::address::Address;
use mailpump::smtp::auth::Credentials;
use mailpump::smtp::client::{ClientConfig, TlsPolicy};

/// The environment variable the examples read a password from (never a command-line argument,
/// where other users of the machine could read it).
pub const PASSWORD_ENV: &str = "MAILPUMP_PASSWORD";

/// The options every example takes.
pub struct Args {
    /// Where to connect and how.
    pub config: ClientConfig,
    /// The envelope sender.
    pub from: Address,
    /// The envelope recipients.
    pub to: Vec<Address>,
    /// The user and password, when `--user` is given.
    pub credentials: Option<Credentials>,
    /// Print the SMTP dialogue on standard error.
    pub verbose: bool,
    /// The options only one example takes, as `(name, value)` in order.
    pub extra: Vec<(String, String)>,
}

impl Args {
    /// The value of an example's own option, if given.
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extra
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the command line; `extra` names the options this example adds (each takes a value).
/// Exits with status 2 and a usage message on an error.
pub fn parse(usage: &str, extra: &[&str]) -> Args {
    match try_parse(env::args().skip(1), extra) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}\n\n{usage}\n{COMMON}");
            process::exit(2);
        }
    }
}

const COMMON: &str = "\
common options:
  --server HOST     SMTP server (default 127.0.0.1)
  --port N          port (default 2525)
  --tls MODE        auto (default), starttls, implicit or none
  --cafile PATH     also trust this CA (PEM)
  --from ADDR       envelope sender (default sender@example.com)
  --to ADDR         recipient, repeatable (default rcpt@example.com)
  --user NAME       authenticate; the password is read from $MAILPUMP_PASSWORD
  --timeout SECS    per-operation timeout (default 30)
  --verbose         print the SMTP dialogue on standard error";

fn try_parse(mut argv: impl Iterator<Item = String>, extra: &[&str]) -> Result<Args, String> {
    let mut config = ClientConfig {
        server: "127.0.0.1".into(),
        port: 2525,
        timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    let mut from = "sender@example.com".to_owned();
    let mut to = Vec::new();
    let mut user = None;
    let mut verbose = false;
    let mut extras = Vec::new();
    while let Some(flag) = argv.next() {
        if flag == "--verbose" {
            verbose = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err("help requested".into());
        }
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--server" => config.server = value,
            "--port" => config.port = value.parse().map_err(|_| format!("bad port {value:?}"))?,
            "--tls" => config.tls = value.parse::<TlsPolicy>().map_err(|e| e.to_string())?,
            "--cafile" => config.cafile = Some(PathBuf::from(value)),
            "--from" => from = value,
            "--to" => to.push(value),
            "--user" => user = Some(value),
            "--timeout" => {
                let secs: f64 = value
                    .parse()
                    .map_err(|_| format!("bad timeout {value:?}"))?;
                config.timeout = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|t| !t.is_zero())
                    .ok_or_else(|| format!("bad timeout {value:?}"))?;
            }
            name if extra.contains(&name.trim_start_matches("--")) && name.starts_with("--") => {
                extras.push((name.trim_start_matches("--").to_owned(), value));
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if to.is_empty() {
        to.push("rcpt@example.com".to_owned());
    }
    let credentials = match user {
        Some(user) => {
            let password = env::var(PASSWORD_ENV)
                .map_err(|_| format!("--user needs the password in ${PASSWORD_ENV}"))?;
            Some(Credentials::new(user, password))
        }
        None => None,
    };
    Ok(Args {
        config,
        from: Address::parse(&from).map_err(|e| e.to_string())?,
        to: to
            .iter()
            .map(|a| Address::parse(a).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        credentials,
        verbose,
        extra: extras,
    })
}
