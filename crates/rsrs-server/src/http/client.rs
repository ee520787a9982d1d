//! Asking peers' APIs (origin-cluster discovery, the cluster API) with the same HTTP client
//! crate as the hooks (`reqwest`): one address at a time (every pod behind a headless Service
//! is asked), bounded in time and in the size of the answer.

use std::net::SocketAddr;
use std::time::Duration;

/// Largest response accepted from a peer.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// Why a peer's API could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("{0}: {1}")]
    Http(SocketAddr, String),
    #[error("response from {0} exceeds {MAX_RESPONSE} bytes")]
    TooLarge(SocketAddr),
    #[error("{0} did not answer within {1} ms")]
    Timeout(SocketAddr, u128),
}

/// Sends `method path` to `addr`, naming `host` in the Host header, and returns (status, body).
pub async fn request(
    client: &reqwest::Client,
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), PeerError> {
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            PeerError::Timeout(addr, timeout.as_millis())
        } else {
            PeerError::Http(addr, crate::hooks::describe(&e))
        }
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let resp = client
        .request(method, format!("http://{addr}{path}"))
        .header(reqwest::header::HOST, host)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout)
        .send()
        .await
        .map_err(failed)?;
    let status = resp.status().as_u16();
    match crate::hooks::read_body(resp, MAX_RESPONSE).await.map_err(failed)? {
        (_, true) => Err(PeerError::TooLarge(addr)),
        (body, false) => Ok((status, body)),
    }
}

/// Resolves `host:port` to every address it names (a headless Service has one per pod).
pub async fn resolve_all(hostport: &str) -> Result<Vec<SocketAddr>, PeerError> {
    let mut v: Vec<SocketAddr> =
        tokio::net::lookup_host(hostport).await.map_err(|e| PeerError::Resolve(hostport.to_string(), e))?.collect();
    v.sort();
    v.dedup();
    Ok(v)
}
