//! The rules that decide, without asking anyone, whether a client may publish or play: SRS's
//! `security` allow/deny lists and `refer` page-URL check, and rsrs's signed URLs. The stream
//! manager runs them for every protocol before any hook is called; each refusal says why.
//!
//! Signed URLs carry either `?expires=UNIX&sign=HEX`, where `HEX` is the HMAC-SHA256 with the
//! vhost's secret of `ACTION:APP/STREAM:EXPIRES` (see [`sign`]), or `?token=JWT`, a JWT whose
//! claims are `exp`, `action` (`publish`, `play` or `*`) and `stream` (`APP/STREAM`, `APP/*` or
//! `*`), signed HS256 with the same secret or RS256/ES256 with one of the vhost's
//! [`PublicKey`]s (a PEM file or a JWKS).

use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsrs_config::access::{Refer, Security, Token};
use rsrs_config::Action;
use sha2::Sha256;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A public key RS256 or ES256 JWTs may be signed with.
pub struct PublicKey {
    /// The JWKS `kid`; a JWT naming a kid is checked against that key only.
    pub kid: Option<String>,
    pub alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({:?}, kid {:?})", self.alg, self.kid)
    }
}

/// A key file or key set that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not an RSA or EC (P-256) public key in PEM form")]
    Pem,
    #[error("not a JSON Web Key Set: {0}")]
    Jwks(String),
    #[error("the key set holds no RSA or EC key")]
    NoKeys,
}

/// Reads an RSA (RS256) or P-256 (ES256) public key from PEM (`BEGIN PUBLIC KEY`).
pub fn public_key_from_pem(pem: &[u8]) -> Result<PublicKey, KeyError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(PublicKey { kid: None, alg: Algorithm::RS256, key });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok(PublicKey { kid: None, alg: Algorithm::ES256, key });
    }
    Err(KeyError::Pem)
}

/// Reads the RSA and EC keys of a JSON Web Key Set.
pub fn public_keys_from_jwks(json: &[u8]) -> Result<Vec<PublicKey>, KeyError> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let alg = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => continue,
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.push(PublicKey { kid: jwk.common.key_id.clone(), alg, key });
        }
    }
    if keys.is_empty() {
        return Err(KeyError::NoKeys);
    }
    Ok(keys)
}

/// Why a client was refused before any hook was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{action} from {ip} denied by the security rule at {rule_at}", action = action.name())]
    Denied { action: Action, ip: IpAddr, rule_at: String },
    #[error("{action} from {ip} is not allowed by any security rule", action = action.name())]
    NotAllowed { action: Action, ip: IpAddr },
    #[error("{action} refused: page URL `{page_url}` is not on a domain `refer` allows", action = action.name())]
    Refer { action: Action, page_url: String },
    #[error("{action} refused: {problem}", action = action.name())]
    Token { action: Action, problem: TokenProblem },
}

/// What is wrong with a signed URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("the URL carries no token (expected ?expires=&sign= or ?token=)")]
    Missing,
    #[error("the token expired at {0} (unix time)")]
    Expired(u64),
    #[error("the signature does not match")]
    BadSignature,
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token is for {0}, not this action")]
    WrongAction(String),
    #[error("the token is for stream `{0}`, not this one")]
    WrongStream(String),
    #[error("no key for it: {0}")]
    NoKey(&'static str),
}

/// SRS's security check: a matching deny rule refuses; then a matching allow rule admits; if
/// there is any allow rule (for either action) or no rule at all, the client is refused;
/// deny rules alone admit whoever they do not match.
pub fn check_security(sec: &Security, action: Action, ip: IpAddr) -> Result<(), Refusal> {
    if !sec.enabled {
        return Ok(());
    }
    if let Some(rule) = sec.rules.iter().find(|r| !r.allow && r.action == action && r.target.contains(ip)) {
        return Err(Refusal::Denied { action, ip, rule_at: rule.at.clone() });
    }
    if sec.rules.iter().any(|r| r.allow && r.action == action && r.target.contains(ip)) {
        return Ok(());
    }
    let allow_rules = sec.rules.iter().filter(|r| r.allow).count();
    if allow_rules > 0 || sec.rules.is_empty() {
        return Err(Refusal::NotAllowed { action, ip });
    }
    Ok(())
}

/// SRS's refer check: the page URL's host must end with one of the domains listed under `all`
/// and, when listed, under the action's own list.
pub fn check_refer(refer: &Refer, action: Action, page_url: &str) -> Result<(), Refusal> {
    if !refer.enabled {
        return Ok(());
    }
    let own = match action {
        Action::Publish => &refer.publish,
        Action::Play => &refer.play,
    };
    let host = page_host(page_url);
    for list in [&refer.all, own] {
        if !list.is_empty() && !list.iter().any(|d| host.ends_with(d.as_str())) {
            return Err(Refusal::Refer { action, page_url: page_url.to_string() });
        }
    }
    Ok(())
}

/// The host of a page URL: scheme, user info, port and path stripped.
fn page_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    host.split(':').next().unwrap_or("")
}

/// The signature of a signed URL: hex HMAC-SHA256 of `ACTION:APP/STREAM:EXPIRES`.
pub fn sign(secret: &str, action: Action, app: &str, stream: &str, expires: u64) -> String {
    let mut mac = mac(secret);
    mac.update(signed_text(action, app, stream, expires).as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// The query a client appends to be let in: `expires=...&sign=...`.
pub fn signed_query(secret: &str, action: Action, app: &str, stream: &str, expires: u64) -> String {
    format!("expires={expires}&sign={}", sign(secret, action, app, stream, expires))
}

fn signed_text(action: Action, app: &str, stream: &str, expires: u64) -> String {
    format!("{}:{app}/{stream}:{expires}", action.name())
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The value of `name` in a query (`?a=b&c=d` or `a=b&c=d`), percent-decoded.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query.trim_start_matches('?').split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| String::from_utf8_lossy(&rsrs_codec::http::percent_decode_bytes(v)).into_owned())
    })
}

fn unix_now(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Checks the signed URL of a client that needs one; `query` is what the client sent after
/// the stream name (`?expires=...&sign=...` or `?token=...`).
pub fn check_token(
    token: &Token,
    keys: &[Arc<PublicKey>],
    action: Action,
    app: &str,
    stream: &str,
    query: &str,
    now: SystemTime,
) -> Result<(), Refusal> {
    if !token.required(action) {
        return Ok(());
    }
    let refuse = |problem| Refusal::Token { action, problem };
    if let Some(jwt) = query_value(query, "token") {
        return check_jwt(&token.secret, keys, action, app, stream, &jwt, now).map_err(refuse);
    }
    let (Some(expires), Some(signature)) = (query_value(query, "expires"), query_value(query, "sign")) else {
        return Err(refuse(TokenProblem::Missing));
    };
    if token.secret.is_empty() {
        return Err(refuse(TokenProblem::NoKey("signed URLs need the vhost's secret")));
    }
    let expires: u64 = expires.parse().map_err(|_| refuse(TokenProblem::Malformed("expires is not a number")))?;
    let signature = unhex(&signature).ok_or(refuse(TokenProblem::Malformed("sign is not hex")))?;
    let mut mac = mac(&token.secret);
    mac.update(signed_text(action, app, stream, expires).as_bytes());
    // Constant time: a mismatch tells nothing of where.
    mac.verify_slice(&signature).map_err(|_| refuse(TokenProblem::BadSignature))?;
    if unix_now(now) >= expires {
        return Err(refuse(TokenProblem::Expired(expires)));
    }
    Ok(())
}

fn check_jwt(
    secret: &str,
    keys: &[Arc<PublicKey>],
    action: Action,
    app: &str,
    stream: &str,
    jwt: &str,
    now: SystemTime,
) -> Result<(), TokenProblem> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenProblem::Malformed("a JWT has three dot-separated parts"));
    };
    let header: serde_json::Value = b64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenProblem::Malformed("the JWT header is not base64url JSON"))?;
    // HS256 with the secret, RS256/ES256 with a public key; "none" and anything else are
    // refused outright, and a key is only ever used with its own algorithm.
    match header.get("alg").and_then(|a| a.as_str()) {
        Some("HS256") => {
            if secret.is_empty() {
                return Err(TokenProblem::NoKey("HS256 JWTs need the vhost's secret"));
            }
            let signature = b64.decode(s).map_err(|_| TokenProblem::Malformed("the JWT signature is not base64url"))?;
            let mut mac = mac(secret);
            mac.update(&jwt.as_bytes()[..h.len() + 1 + p.len()]);
            mac.verify_slice(&signature).map_err(|_| TokenProblem::BadSignature)?;
        }
        Some(alg @ ("RS256" | "ES256")) => {
            let alg = if alg == "RS256" { Algorithm::RS256 } else { Algorithm::ES256 };
            let kid = header.get("kid").and_then(|k| k.as_str());
            let fits =
                |k: &&Arc<PublicKey>| k.alg == alg && (kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid);
            let candidates: Vec<&Arc<PublicKey>> = keys.iter().filter(fits).collect();
            if candidates.is_empty() {
                return Err(TokenProblem::NoKey("no public key of the vhost has the JWT's algorithm and kid"));
            }
            let mut validation = Validation::new(alg);
            // Expiry is checked below against the same clock as signed URLs, without leeway.
            validation.validate_exp = false;
            validation.validate_aud = false;
            validation.required_spec_claims.clear();
            if !candidates.iter().any(|k| jsonwebtoken::decode::<serde_json::Value>(jwt, &k.key, &validation).is_ok()) {
                return Err(TokenProblem::BadSignature);
            }
        }
        _ => return Err(TokenProblem::Malformed("only HS256, RS256 and ES256 JWTs are accepted")),
    }
    let claims: serde_json::Value = b64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenProblem::Malformed("the JWT claims are not base64url JSON"))?;
    let exp =
        claims.get("exp").and_then(|e| e.as_u64()).ok_or(TokenProblem::Malformed("the JWT has no numeric exp"))?;
    if unix_now(now) >= exp {
        return Err(TokenProblem::Expired(exp));
    }
    let claimed = claims.get("action").and_then(|a| a.as_str()).unwrap_or("");
    if claimed != "*" && claimed != action.name() {
        return Err(TokenProblem::WrongAction(claimed.to_string()));
    }
    let allowed = claims.get("stream").and_then(|a| a.as_str()).unwrap_or("");
    let path = format!("{app}/{stream}");
    let fits = allowed == "*" || allowed == path || allowed.strip_suffix("/*").is_some_and(|a| a == app);
    if !fits {
        return Err(TokenProblem::WrongStream(allowed.to_string()));
    }
    Ok(())
}

/// Makes an HS256 JWT for `action` on `stream` (`APP/STREAM`, `APP/*` or `*`), valid until
/// `expires` (unix seconds).
pub fn mint_jwt(secret: &str, action: &str, stream: &str, expires: u64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64.encode(serde_json::json!({ "exp": expires, "action": action, "stream": stream }).to_string());
    let mut mac = mac(secret);
    mac.update(format!("{header}.{claims}").as_bytes());
    format!("{header}.{claims}.{}", b64.encode(mac.finalize().into_bytes()))
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsrs_config::access::{IpMatch, SecurityRule};
    use std::time::Duration;

    fn rule(allow: bool, action: Action, target: &str) -> SecurityRule {
        SecurityRule { allow, action, target: IpMatch::parse(target).unwrap(), at: "srs.conf:9".into() }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn security_follows_srs() {
        let sec = |rules| Security { enabled: true, rules };
        // Deny first, then allow.
        let s = sec(vec![rule(false, Action::Publish, "127.0.0.9"), rule(true, Action::Publish, "127.0.0.0/8")]);
        assert!(check_security(&s, Action::Publish, ip("127.0.0.1")).is_ok());
        assert_eq!(
            check_security(&s, Action::Publish, ip("127.0.0.9")).unwrap_err().to_string(),
            "publish from 127.0.0.9 denied by the security rule at srs.conf:9"
        );
        assert!(matches!(check_security(&s, Action::Publish, ip("10.0.0.1")), Err(Refusal::NotAllowed { .. })));
        // An allow rule for play only: publishing is refused (SRS counts allow rules of both).
        let s = sec(vec![rule(true, Action::Play, "all")]);
        assert!(check_security(&s, Action::Play, ip("::1")).is_ok());
        assert!(check_security(&s, Action::Publish, ip("::1")).is_err());
        // Deny rules alone admit the rest; no rule at all refuses everyone.
        let s = sec(vec![rule(false, Action::Play, "::1/128")]);
        assert!(check_security(&s, Action::Play, ip("::1")).is_err());
        assert!(check_security(&s, Action::Play, ip("127.0.0.1")).is_ok());
        assert!(check_security(&sec(vec![]), Action::Play, ip("127.0.0.1")).is_err());
        assert!(check_security(&Security::default(), Action::Play, ip("127.0.0.1")).is_ok(), "off");
    }

    #[test]
    fn refer_matches_the_page_host_suffix() {
        let r = Refer {
            enabled: true,
            all: vec!["example.com".into()],
            publish: vec!["ops.example.com".into()],
            play: vec![],
        };
        assert!(check_refer(&r, Action::Play, "https://www.example.com:8443/live/page.html?x=1").is_ok());
        assert!(check_refer(&r, Action::Play, "http://user@example.com/").is_ok());
        assert!(check_refer(&r, Action::Play, "https://evil.org/?example.com").is_err());
        assert!(check_refer(&r, Action::Play, "").is_err());
        assert!(check_refer(&r, Action::Publish, "https://www.example.com/").is_err());
        assert!(check_refer(&r, Action::Publish, "https://ops.example.com/").is_ok());
    }

    #[test]
    fn signed_urls() {
        let t = Token {
            enabled: true,
            secret: "0123456789abcdef0123".into(),
            publish: true,
            play: false,
            ..Default::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let q = format!("?{}", signed_query(&t.secret, Action::Publish, "live", "cam", 1_000_060));
        assert!(check_token(&t, &[], Action::Publish, "live", "cam", &q, now).is_ok());
        // Another stream, another action, a changed expiry, a later time: refused.
        let refused = |stream, action, q: &str, now| check_token(&t, &[], action, "live", stream, q, now).unwrap_err();
        assert!(matches!(
            refused("cam2", Action::Publish, &q, now),
            Refusal::Token { problem: TokenProblem::BadSignature, .. }
        ));
        let tampered = q.replace("1000060", "1999999");
        assert!(matches!(
            refused("cam", Action::Publish, &tampered, now),
            Refusal::Token { problem: TokenProblem::BadSignature, .. }
        ));
        let later = now + Duration::from_secs(61);
        assert!(matches!(
            refused("cam", Action::Publish, &q, later),
            Refusal::Token { problem: TokenProblem::Expired(_), .. }
        ));
        assert!(matches!(
            refused("cam", Action::Publish, "?x=1", now),
            Refusal::Token { problem: TokenProblem::Missing, .. }
        ));
        // Play needs no token on this vhost.
        assert!(check_token(&t, &[], Action::Play, "live", "cam", "", now).is_ok());
        // The signature is exactly HMAC-SHA256 of the documented text (RFC 4231-style check).
        assert_eq!(sign("key", Action::Play, "a", "b", 1), {
            let mut m = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
            m.update(b"play:a/b:1");
            hex(&m.finalize().into_bytes())
        });
    }

    #[test]
    fn jwts() {
        let t = Token {
            enabled: true,
            secret: "0123456789abcdef0123".into(),
            publish: true,
            play: true,
            ..Default::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ok =
            |jwt: &str, action, stream| check_token(&t, &[], action, "live", stream, &format!("?token={jwt}"), now);
        let jwt = mint_jwt(&t.secret, "play", "live/*", 1_000_100);
        assert!(ok(&jwt, Action::Play, "any").is_ok());
        assert!(ok(&jwt, Action::Publish, "any").is_err(), "a play token does not publish");
        let jwt = mint_jwt(&t.secret, "*", "live/cam", 1_000_100);
        assert!(ok(&jwt, Action::Publish, "cam").is_ok());
        assert!(matches!(
            ok(&jwt, Action::Publish, "other"),
            Err(Refusal::Token { problem: TokenProblem::WrongStream(_), .. })
        ));
        assert!(ok(&mint_jwt(&t.secret, "*", "*", 999_999), Action::Play, "cam").is_err(), "expired");
        assert!(ok(&mint_jwt("another-secret-of-16+", "*", "*", 1_000_100), Action::Play, "cam").is_err());
        // alg none, and a token cut short, are refused.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none"}"#),
            b64.encode(br#"{"exp":2000000,"action":"*","stream":"*"}"#)
        );
        assert!(ok(&none, Action::Play, "cam").is_err());
        assert!(ok("abc.def", Action::Play, "cam").is_err());
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(query_value("?a=1&token=x%2Ey&b", "token").as_deref(), Some("x.y"));
        assert_eq!(query_value("a=1", "b"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
