//! SRS configuration for rsrs: the config language, a typed model with SRS's defaults,
//! environment overrides named as SRS names them, and validation whose errors say where.
//!
//! Load with [`Config::load_file`] (a file, as `-c`), [`Config::load_str`] (text) or
//! [`Config::from_env_only`] (`-e`, no file). Every loader takes the environment as a map so
//! that tests and reloads are deterministic.

pub mod access;
mod model;
pub mod parse;
mod schema;

pub use access::{Access, Action, HookEvent};
pub use model::*;
pub use parse::{Directive, Location};

/// A config problem, located at a file and line (or an environment variable) when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}{message}", where_.as_deref().map(|w| format!("{w}: ")).unwrap_or_default(), directive.as_deref().filter(|d| !d.is_empty()).map(|d| format!("directive `{d}`: ")).unwrap_or_default())]
pub struct ConfigError {
    /// `file:line` or `env SRS_X`.
    pub where_: Option<String>,
    pub directive: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn at(loc: &Location, directive: &str, message: impl Into<String>) -> Self {
        ConfigError { where_: Some(loc.to_string()), directive: Some(directive.to_string()), message: message.into() }
    }

    pub fn env(var: &str, message: impl Into<String>) -> Self {
        ConfigError { where_: Some(format!("environment variable {var}")), directive: None, message: message.into() }
    }

    pub fn plain(message: impl Into<String>) -> Self {
        ConfigError { where_: None, directive: None, message: message.into() }
    }
}

/// The built-in default config: what rsrs runs when started without `-c`. Equivalent to SRS's
/// docker default: RTMP 1935, HTTP API 1985, HTTP server 8080 on `./objs/nginx/html`, and
/// HTTP-FLV remux on the default vhost.
pub const DEFAULT_CONFIG: &str = "\
# rsrs built-in default config (rsrs -c FILE replaces it).
listen              1935;
max_connections     1000;
daemon              off;
srs_log_tank        console;
http_api {
    enabled         on;
    listen          1985;
}
http_server {
    enabled         on;
    listen          8080;
    dir             ./objs/nginx/html;
}
vhost __defaultVhost__ {
    http_remux {
        enabled     on;
        mount       [vhost]/[app]/[stream].flv;
    }
}
";
