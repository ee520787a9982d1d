//! A tiny HTTP/1.1 client for talking to peers' APIs (origin-cluster discovery, the cluster
//! API): one request per connection, bounded in time and size, JSON bodies.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response accepted from a peer.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// Why a peer's API could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("{0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("response from {0} exceeds {MAX_RESPONSE} bytes")]
    TooLarge(SocketAddr),
    #[error("bad HTTP response from {0}: {1}")]
    Malformed(SocketAddr, &'static str),
    #[error("{0} did not answer within {1} ms")]
    Timeout(SocketAddr, u128),
}

/// Sends `method path` to `addr` and returns (status, body). `host` goes in the Host header.
pub async fn request(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), PeerError> {
    let work = async {
        let io = |e| PeerError::Io(addr, e);
        let mut s = TcpStream::connect(addr).await.map_err(io)?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            crate::version::signature()
        );
        s.write_all(req.as_bytes()).await.map_err(io)?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let n = s.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE {
                return Err(PeerError::TooLarge(addr));
            }
        }
        let split =
            buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or(PeerError::Malformed(addr, "no end of head"))?;
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(PeerError::Malformed(addr, "bad status line"))?;
        let mut body = buf[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body).ok_or(PeerError::Malformed(addr, "bad chunked body"))?;
        }
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| PeerError::Timeout(addr, timeout.as_millis()))?
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).ok()?.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert!(dechunk(b"zz\r\n").is_none());
    }
}
