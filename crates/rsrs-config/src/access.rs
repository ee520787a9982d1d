//! Who may publish and play on a vhost: SRS's `http_hooks`, `security` and `refer` blocks, and
//! rsrs's `token` block (signed URLs). Everything here restricts access, so anything malformed
//! is an error at load and at reload, never a warning: a config that closes a door must not
//! open it by a typo.

use crate::model::{Getter, Val};
use crate::parse::Directive;
use crate::ConfigError;
use std::net::IpAddr;

/// The events SRS calls hooks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    Connect,
    Close,
    Publish,
    Unpublish,
    Play,
    Stop,
    Dvr,
    Hls,
    HlsNotify,
}

impl HookEvent {
    pub const ALL: [HookEvent; 9] = [
        HookEvent::Connect,
        HookEvent::Close,
        HookEvent::Publish,
        HookEvent::Unpublish,
        HookEvent::Play,
        HookEvent::Stop,
        HookEvent::Dvr,
        HookEvent::Hls,
        HookEvent::HlsNotify,
    ];

    /// The directive, and SRS's `action` in the request body.
    pub fn name(self) -> &'static str {
        match self {
            HookEvent::Connect => "on_connect",
            HookEvent::Close => "on_close",
            HookEvent::Publish => "on_publish",
            HookEvent::Unpublish => "on_unpublish",
            HookEvent::Play => "on_play",
            HookEvent::Stop => "on_stop",
            HookEvent::Dvr => "on_dvr",
            HookEvent::Hls => "on_hls",
            HookEvent::HlsNotify => "on_hls_notify",
        }
    }

    /// Whether the hook decides (a refusal or a failure keeps the client out) rather than
    /// notifies.
    pub fn decides(self) -> bool {
        matches!(self, HookEvent::Connect | HookEvent::Publish | HookEvent::Play)
    }
}

/// `http_hooks { enabled on; on_publish URL...; ... }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpHooks {
    pub enabled: bool,
    /// URLs per event, in [`HookEvent::ALL`] order; each is called in turn.
    urls: [Vec<String>; 9],
}

impl HttpHooks {
    /// The URLs to call for `event` (none when hooks are off).
    pub fn urls(&self, event: HookEvent) -> &[String] {
        if !self.enabled {
            return &[];
        }
        let i = HookEvent::ALL.iter().position(|e| *e == event).unwrap_or(0);
        &self.urls[i]
    }
}

/// What a client asks to do with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

/// An address range: `all`, one address, or a CIDR (IPv4 or IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpMatch {
    All,
    Net { addr: IpAddr, prefix: u8 },
}

impl IpMatch {
    pub fn parse(s: &str) -> Option<IpMatch> {
        if s == "all" {
            return Some(IpMatch::All);
        }
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr: IpAddr = ip.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        Some(IpMatch::Net { addr, prefix })
    }

    /// Whether `ip` is in the range. An IPv4 client seen as an IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`, from a dual-stack listener) matches IPv4 rules.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let IpMatch::Net { addr, prefix } = *self else {
            return true;
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - prefix as u32).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// One `allow|deny publish|play <all|ip|cidr>` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityRule {
    pub allow: bool,
    pub action: Action,
    pub target: IpMatch,
    /// `file:line` of the rule, for the log of a refusal.
    pub at: String,
}

/// `security { enabled on; allow|deny ...; }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Security {
    pub enabled: bool,
    pub rules: Vec<SecurityRule>,
}

/// `refer { enabled on; all DOMAIN...; publish DOMAIN...; play DOMAIN...; }`: the page URL's
/// host must end with one of the domains.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Refer {
    pub enabled: bool,
    pub all: Vec<String>,
    pub publish: Vec<String>,
    pub play: Vec<String>,
}

/// rsrs's signed URLs: `token { enabled on; secret KEY; jwt_key FILE; jwks_url URL; publish on;
/// play on; }`. A client must carry `?expires=&sign=` (HMAC-SHA256 with the secret) or
/// `?token=` (a JWT: HS256 with the secret, or RS256/ES256 with the public key in `jwt_key` or
/// one of the keys `jwks_url` serves).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Token {
    pub enabled: bool,
    /// The shared secret for signed URLs and HS256 JWTs; empty when only public keys are used.
    pub secret: String,
    /// A PEM file holding an RSA or P-256 public key, for RS256/ES256 JWTs.
    pub jwt_key: String,
    /// A JSON Web Key Set to fetch the RS256/ES256 keys from (refreshed every few minutes).
    pub jwks_url: String,
    /// Whether publishers need a token.
    pub publish: bool,
    /// Whether players need a token.
    pub play: bool,
}

impl Token {
    /// Whether `action` needs a token on this vhost.
    pub fn required(&self, action: Action) -> bool {
        self.enabled
            && match action {
                Action::Publish => self.publish,
                Action::Play => self.play,
            }
    }
}

/// Everything that decides who may publish and play on a vhost.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Access {
    pub hooks: HttpHooks,
    pub security: Security,
    pub refer: Refer,
    pub token: Token,
}

impl Access {
    /// Whether anything decides who may do `action` here (then nothing may bypass the checks).
    pub fn restricts(&self, action: Action) -> bool {
        let hook = match action {
            Action::Publish => HookEvent::Publish,
            Action::Play => HookEvent::Play,
        };
        self.security.enabled || self.refer.enabled || self.token.required(action) || !self.hooks.urls(hook).is_empty()
    }
}

/// Shortest secret accepted for signing: 16 bytes.
pub const MIN_SECRET_LEN: usize = 16;

pub(crate) fn access_from(
    g: &Getter,
    d: &Directive,
    vhost: &str,
    warnings: &mut Vec<String>,
) -> Result<Access, ConfigError> {
    let on =
        |p: &[&str]| -> Result<bool, ConfigError> { Ok(g.vhost(d, p).map(|v| v.bool()).transpose()?.unwrap_or(false)) };
    let mut hooks = HttpHooks { enabled: on(&["http_hooks", "enabled"])?, ..Default::default() };
    for (i, event) in HookEvent::ALL.iter().enumerate() {
        let Some(v) = g.vhost(d, &["http_hooks", event.name()]) else { continue };
        for url in &v.args {
            check_hook_url(&v, url)?;
        }
        hooks.urls[i] = v.args.clone();
    }
    let security = Security { enabled: on(&["security", "enabled"])?, rules: security_rules(d)? };
    if security.enabled && security.rules.is_empty() {
        // SRS refuses everyone then, and so does rsrs; rarely meant, so said at load.
        let loc = d.get("security").map(|s| s.loc.to_string()).unwrap_or_default();
        warnings.push(format!(
            "{loc}: vhost {vhost}: security is enabled with no allow or deny rule: every publish and play is refused"
        ));
    }
    let list = |p: &[&str]| -> Vec<String> { g.vhost(d, p).map(|v| v.args).unwrap_or_default() };
    let refer = Refer {
        enabled: on(&["refer", "enabled"])?,
        all: list(&["refer", "all"]),
        publish: list(&["refer", "publish"]),
        play: list(&["refer", "play"]),
    };
    let token = Token {
        enabled: on(&["token", "enabled"])?,
        secret: g.vhost(d, &["token", "secret"]).map(|v| v.secret()).transpose()?.unwrap_or_default(),
        publish: g.vhost(d, &["token", "publish"]).map(|v| v.bool()).transpose()?.unwrap_or(true),
        play: g.vhost(d, &["token", "play"]).map(|v| v.bool()).transpose()?.unwrap_or(true),
        jwt_key: g.vhost(d, &["token", "jwt_key"]).map(|v| v.string()).transpose()?.unwrap_or_default(),
        jwks_url: g.vhost(d, &["token", "jwks_url"]).map(|v| v.string()).transpose()?.unwrap_or_default(),
    };
    let public_keys = !token.jwt_key.is_empty() || !token.jwks_url.is_empty();
    if token.enabled && (token.secret.len() < MIN_SECRET_LEN) && (!token.secret.is_empty() || !public_keys) {
        let at = g.vhost(d, &["token", "secret"]).or_else(|| g.vhost(d, &["token", "enabled"]));
        let msg = format!(
            "vhost {vhost}: token is enabled but its secret is {} bytes; at least {MIN_SECRET_LEN} are needed \
             (set `secret`, or SRS_VHOST_TOKEN_SECRET), or give only `jwt_key`/`jwks_url` for public keys",
            token.secret.len()
        );
        return Err(at.map(|v| v.err(msg.clone())).unwrap_or_else(|| ConfigError::plain(msg)));
    }
    if let Some(v) = g.vhost(d, &["token", "jwks_url"]) {
        check_hook_url(&v, &token.jwks_url)?;
    }
    if let Some(v) = g.vhost(d, &["token", "jwt_key"]).filter(|_| token.enabled) {
        if let Err(e) = std::fs::metadata(&token.jwt_key) {
            return Err(v.err(format!("cannot read the JWT public key file `{}`: {e}", token.jwt_key)));
        }
    }
    Ok(Access { hooks, security, refer, token })
}

fn check_hook_url(v: &Val, url: &str) -> Result<(), ConfigError> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(v.err(format!("URL `{url}` must be http://HOST[:PORT]/PATH or https://..."))),
    }
}

fn security_rules(d: &Directive) -> Result<Vec<SecurityRule>, ConfigError> {
    let Some(sec) = d.get("security") else { return Ok(Vec::new()) };
    let mut rules = Vec::new();
    for r in sec.children() {
        let allow = match r.name.as_str() {
            "allow" => true,
            "deny" => false,
            _ => continue,
        };
        let path = format!("vhost.security.{}", r.name);
        let err = |m: String| ConfigError::at(&r.loc, &path, m);
        let [action, target] = r.args.as_slice() else {
            return Err(err(format!("takes `publish|play <all|IP|CIDR>`, not {} values", r.args.len())));
        };
        let action = match action.as_str() {
            "publish" => Action::Publish,
            "play" => Action::Play,
            other => return Err(err(format!("`{other}` is not publish or play"))),
        };
        let target = IpMatch::parse(target)
            .ok_or_else(|| err(format!("`{target}` is not all, an IP address or a CIDR (a.b.c.d/n, x::y/n)")))?;
        rules.push(SecurityRule { allow, action, target, at: r.loc.to_string() });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let m = |s| IpMatch::parse(s).unwrap();
        assert!(m("all").contains("::1".parse().unwrap()));
        assert!(m("127.0.0.0/8").contains("127.9.9.9".parse().unwrap()));
        assert!(!m("127.0.0.0/8").contains("128.0.0.1".parse().unwrap()));
        assert!(m("127.0.0.0/8").contains("::ffff:127.0.0.5".parse().unwrap()), "IPv4-mapped");
        assert!(m("10.1.2.3").contains("10.1.2.3".parse().unwrap()));
        assert!(!m("10.1.2.3").contains("10.1.2.4".parse().unwrap()));
        assert!(m("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
        assert!(m("fd00::/8").contains("fd12::1".parse().unwrap()));
        assert!(!m("fd00::/8").contains("fe80::1".parse().unwrap()));
        assert!(!m("::1").contains("127.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0", "x", "10.0.0.0/", ""] {
            assert_eq!(IpMatch::parse(bad), None, "{bad}");
        }
    }
}
