//! `rsrs token`: mints the query of a signed URL for a vhost with `token { enabled on; ... }`.
//!
//! ```text
//! rsrs token --secret-file /etc/rsrs/secret --stream live/cam --action publish --expires 1h
//! expires=1767225600&sign=3f1c...
//! ```

use crate::access;
use crate::cleanup::parse_age;
use rsrs_config::Action;
use std::time::{SystemTime, UNIX_EPOCH};

pub const USAGE: &str = "Usage: rsrs token --stream APP/STREAM --action publish|play --expires AGE
                  (--secret SECRET | --secret-file FILE | env RSRS_TOKEN_SECRET) [--jwt] [--url URL]
  Prints the query a client appends to its URL: expires=...&sign=... (or token=JWT with --jwt).
  AGE is a number with a unit: 45s, 30m, 12h, 3d, 1w. With --url, prints the whole URL.
  With --jwt, --stream may also be APP/* or *, and --action *.";

/// Why `rsrs token` cannot mint.
#[derive(Debug, thiserror::Error)]
pub enum TokenCmdError {
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    #[error("{0} is required\n{USAGE}")]
    Required(&'static str),
    #[error("unknown token option `{0}`\n{USAGE}")]
    UnknownOption(String),
    #[error("--action must be publish or play{}, not `{given}`", if *jwt { " (or * with --jwt)" } else { "" })]
    BadAction { given: String, jwt: bool },
    #[error("--stream must be APP/STREAM, not `{0}`")]
    BadStream(String),
    #[error("{0}")]
    BadAge(#[from] crate::cleanup::CleanupError),
    #[error("cannot read the secret file {path}: {err}")]
    SecretFile { path: String, err: std::io::Error },
    #[error("the secret is {0} bytes; at least {min} are needed", min = rsrs_config::access::MIN_SECRET_LEN)]
    ShortSecret(usize),
    #[error("{USAGE}")]
    Help,
}

/// Builds the query (or URL) from the arguments.
pub fn mint(args: &[String], env_secret: Option<String>, now: SystemTime) -> Result<String, TokenCmdError> {
    let (mut secret, mut stream, mut action, mut expires, mut jwt, mut url) =
        (env_secret, None, None, None, false, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name| it.next().cloned().ok_or(TokenCmdError::MissingValue(name));
        match a.as_str() {
            "--secret" => secret = Some(value("--secret")?),
            "--secret-file" => {
                let path = value("--secret-file")?;
                let text = std::fs::read_to_string(&path).map_err(|err| TokenCmdError::SecretFile { path, err })?;
                secret = Some(text.trim_end_matches(['\n', '\r']).to_string());
            }
            "--stream" => stream = Some(value("--stream")?),
            "--action" => action = Some(value("--action")?),
            "--expires" => expires = Some(parse_age(&value("--expires")?)?),
            "--url" => url = Some(value("--url")?),
            "--jwt" => jwt = true,
            "-h" | "--help" => return Err(TokenCmdError::Help),
            other => return Err(TokenCmdError::UnknownOption(other.to_string())),
        }
    }
    let secret = secret.ok_or(TokenCmdError::Required("--secret, --secret-file or RSRS_TOKEN_SECRET"))?;
    if secret.len() < rsrs_config::access::MIN_SECRET_LEN {
        return Err(TokenCmdError::ShortSecret(secret.len()));
    }
    let stream = stream.ok_or(TokenCmdError::Required("--stream"))?;
    let action = action.ok_or(TokenCmdError::Required("--action"))?;
    let expires = expires.ok_or(TokenCmdError::Required("--expires"))?;
    let at = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).saturating_add(expires.as_secs());
    let query = if jwt {
        if !matches!(action.as_str(), "publish" | "play" | "*") {
            return Err(TokenCmdError::BadAction { given: action, jwt: true });
        }
        format!("token={}", access::mint_jwt(&secret, &action, &stream, at))
    } else {
        let action = match action.as_str() {
            "publish" => Action::Publish,
            "play" => Action::Play,
            _ => return Err(TokenCmdError::BadAction { given: action, jwt: false }),
        };
        let (app, name) = stream
            .split_once('/')
            .filter(|(a, s)| !a.is_empty() && !s.is_empty() && !s.contains('*'))
            .ok_or_else(|| TokenCmdError::BadStream(stream.clone()))?;
        access::signed_query(&secret, action, app, name, at)
    };
    Ok(match url {
        Some(u) => format!("{u}{}{query}", if u.contains('?') { '&' } else { '?' }),
        None => query,
    })
}

/// The `rsrs token` command: prints the query; exit status 2 on a usage error.
pub fn main(args: &[String]) -> i32 {
    match mint(args, std::env::var("RSRS_TOKEN_SECRET").ok(), SystemTime::now()) {
        Ok(q) => {
            println!("{q}");
            0
        }
        Err(TokenCmdError::Help) => {
            println!("{USAGE}");
            0
        }
        Err(e) => {
            eprintln!("rsrs token: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mints_what_the_server_checks() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let secret = "0123456789abcdef0123".to_string();
        let q =
            mint(&args(&["--stream", "live/cam", "--action", "publish", "--expires", "1h"]), Some(secret.clone()), now)
                .unwrap();
        assert_eq!(q, access::signed_query(&secret, Action::Publish, "live", "cam", 4600));
        let t = rsrs_config::access::Token {
            enabled: true,
            secret: secret.clone(),
            publish: true,
            play: true,
            ..Default::default()
        };
        assert!(access::check_token(&t, &[], Action::Publish, "live", "cam", &format!("?{q}"), now).is_ok());
        let url = mint(
            &args(&[
                "--stream",
                "live/*",
                "--action",
                "play",
                "--expires",
                "60s",
                "--jwt",
                "--url",
                "http://h/live/x.flv",
            ]),
            Some(secret.clone()),
            now,
        )
        .unwrap();
        let (_, query) = url.split_once('?').unwrap();
        assert!(access::check_token(&t, &[], Action::Play, "live", "x", &format!("?{query}"), now).is_ok());
        assert!(matches!(
            mint(&args(&["--stream", "live/cam"]), Some(secret.clone()), now),
            Err(TokenCmdError::Required(_))
        ));
        assert!(matches!(
            mint(&args(&["--stream", "x", "--action", "play", "--expires", "1h"]), Some(secret), now),
            Err(TokenCmdError::BadStream(_))
        ));
        assert!(matches!(mint(&args(&[]), Some("short".into()), now), Err(TokenCmdError::ShortSecret(5))));
    }
}
