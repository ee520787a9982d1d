//! The public keys RS256/ES256 JWTs are checked with (`token { jwt_key FILE; jwks_url URL; }`).
//!
//! Key files are read at start and at every reload; a file that cannot be read or parsed stops
//! the start, or the reload (which keeps the running config). A key set URL is fetched in the
//! background at once and every [`JWKS_REFRESH`]; until a first fetch succeeds, the JWTs it
//! would check are refused (fail closed), and a failed refresh keeps the keys last fetched.

use crate::access::{self, KeyError, PublicKey};
use rsrs_config::access::Token;
use rsrs_config::Config;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::info;

/// How often a key set is fetched again.
pub const JWKS_REFRESH: Duration = Duration::from_secs(300);
/// How soon a failed fetch is tried again.
pub const JWKS_RETRY: Duration = Duration::from_secs(10);
/// Most bytes of a key set.
const MAX_JWKS: usize = 1024 * 1024;

type Keys = Arc<Vec<Arc<PublicKey>>>;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error("cannot read the JWT public key file {path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("the JWT public key file {path}: {err}")]
    Key { path: String, err: KeyError },
}

/// The keys of every vhost's `token` block: read from files (by path), fetched (by URL).
#[derive(Default)]
pub struct TokenKeys {
    files: Mutex<HashMap<String, Keys>>,
    fetched: Mutex<HashMap<String, Keys>>,
    fetching: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TokenKeys {
    /// The public keys a vhost's JWTs may be signed with now.
    pub fn for_token(&self, t: &Token) -> Vec<Arc<PublicKey>> {
        let mut keys: Vec<Arc<PublicKey>> = lock(&self.files).get(&t.jwt_key).map(|k| k.to_vec()).unwrap_or_default();
        keys.extend(lock(&self.fetched).get(&t.jwks_url).map(|k| k.to_vec()).unwrap_or_default());
        keys
    }

    /// Reads every key file `cfg` names; nothing changes unless all of them can be used.
    pub fn load_files(&self, cfg: &Config) -> Result<(), TokenKeyError> {
        let mut loaded = HashMap::new();
        for v in cfg.vhosts.iter().filter(|v| v.access.token.enabled && !v.access.token.jwt_key.is_empty()) {
            let path = v.access.token.jwt_key.clone();
            let pem = std::fs::read(&path).map_err(|err| TokenKeyError::Read { path: path.clone(), err })?;
            let key =
                access::public_key_from_pem(&pem).map_err(|err| TokenKeyError::Key { path: path.clone(), err })?;
            info!(vhost = %v.name, "token: {:?} public key from {path}", key.alg);
            loaded.insert(path, Arc::new(vec![Arc::new(key)]));
        }
        *lock(&self.files) = loaded;
        Ok(())
    }

    /// Marks `url` as having a fetcher; false if it already has one.
    pub fn claim_fetcher(&self, url: &str) -> bool {
        lock(&self.fetching).insert(url.to_string())
    }

    /// Keeps a key set just fetched.
    pub fn fetched(&self, url: &str, keys: Vec<PublicKey>) {
        lock(&self.fetched).insert(url.to_string(), Arc::new(keys.into_iter().map(Arc::new).collect()));
    }

    /// Forgets a key set no vhost names any more, and its fetcher.
    pub fn forget(&self, url: &str) {
        lock(&self.fetched).remove(url);
        lock(&self.fetching).remove(url);
    }
}

/// Fetches and reads a key set.
pub async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<PublicKey>, String> {
    let resp = client.get(url).timeout(Duration::from_secs(10)).send().await.map_err(|e| crate::hooks::describe(&e))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    match crate::hooks::read_body(resp, MAX_JWKS).await.map_err(|e| crate::hooks::describe(&e))? {
        (_, true) => Err(format!("larger than {MAX_JWKS} bytes")),
        (body, false) => access::public_keys_from_jwks(&body).map_err(|e| e.to_string()),
    }
}
