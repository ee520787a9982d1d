//! HTTP/1.1 for the API port (1985) and the HTTP server port (8080): requests framed by the
//! sans-io reader in `rsrs_codec::http` (strict RFC 9112 framing, one normalised path), routing
//! to the API, HTTP-FLV streams and static files, and response writing.
//!
//! Written on httparse rather than a framework so that HTTP-FLV can write shared media buffers
//! straight to the socket with vectored writes, and so the headers of a live stream can be held
//! back until its first bytes, as SRS does.

pub mod api;
pub mod client;
pub mod files;
pub mod flv;
pub mod hls_play;
pub mod whip;

use crate::server::{HttpRole, Server};
use crate::stats::ClientGuard;
use crate::streams::{self, PlayDecision, PlayRefused, StreamRequest};
use bytes::{Bytes, BytesMut};
use rsrs_codec::http::{parse_head, BodyFraming, ChunkedDecoder, HttpParseError, Limits, RequestHead};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, Instrument};

/// How long an idle keep-alive connection may wait for its next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query, percent-decoded.
    pub path: String,
    /// Query without the leading `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub http10: bool,
    pub body: Bytes,
    /// Bytes the request took on the wire (head and body as sent): what the client is
    /// counted as having sent.
    pub wire_len: usize,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The client's address as SRS reports it to hooks: the first `X-Forwarded-For` entry,
    /// else `X-Real-IP`, else the socket's peer. Never used for access rules (a client can
    /// write these headers).
    pub fn client_ip(&self, peer: std::net::IpAddr) -> String {
        let forwarded = self.header("x-forwarded-for").and_then(|v| v.split(',').next()).map(str::trim);
        forwarded
            .filter(|v| !v.is_empty())
            .or_else(|| self.header("x-real-ip").map(str::trim).filter(|v| !v.is_empty()))
            .map(|v| rsrs_core::names::Escaped(v).to_string())
            .unwrap_or_else(|| peer.to_string())
    }

    /// Host header without the port.
    pub fn host(&self) -> String {
        let h = self.header("host").unwrap_or("");
        if let Some(rest) = h.strip_prefix('[') {
            return rest.split(']').next().unwrap_or("").to_string();
        }
        h.rsplit_once(':').map(|x| x.0).unwrap_or(h).to_string()
    }

    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| percent_decode(v))
        })
    }

    pub fn keep_alive(&self) -> bool {
        let conn = self.header("connection").map(|s| s.to_ascii_lowercase());
        match conn.as_deref() {
            Some(c) if c.contains("close") => false,
            Some(c) if c.contains("keep-alive") => true,
            _ => !self.http10,
        }
    }
}

/// A complete (non-streaming) response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response {
        Response { status, headers: vec![("Content-Type", content_type.to_string())], body: body.into() }
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", Bytes::copy_from_slice(body.as_bytes()))
    }

    pub fn json(value: &serde_json::Value) -> Response {
        Response::new(200, "application/json", serde_json::to_vec(value).unwrap_or_default())
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// CORS headers as SRS sends them (only when the request carries `Origin`).
pub fn cors_headers(req: &Request, crossdomain: bool) -> Vec<(&'static str, String)> {
    if !crossdomain || req.header("origin").is_none() {
        return Vec::new();
    }
    vec![
        ("Access-Control-Allow-Origin", "*".into()),
        ("Access-Control-Allow-Headers", "*".into()),
        ("Access-Control-Allow-Methods", "*".into()),
        ("Access-Control-Expose-Headers", "*".into()),
        ("Access-Control-Allow-Credentials", "false".into()),
        ("Access-Control-Request-Private-Network", "true".into()),
    ]
}

/// Serializes a response head.
pub fn head_bytes(
    status: u16,
    headers: &[(&'static str, String)],
    content_length: Option<usize>,
    keep_alive: bool,
) -> BytesMut {
    use std::fmt::Write;
    let mut s = String::with_capacity(256);
    let _ = write!(s, "HTTP/1.1 {status} {}\r\nServer: {}\r\n", reason(status), crate::version::signature());
    for (k, v) in headers {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    if let Some(n) = content_length {
        let _ = write!(s, "Content-Length: {n}\r\n");
    }
    s.push_str(if keep_alive { "Connection: Keep-Alive\r\n\r\n" } else { "Connection: Close\r\n\r\n" });
    BytesMut::from(s.as_bytes())
}

#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("refused: {0}")]
    Parse(#[from] HttpParseError),
    #[error("connection closed {0}")]
    Closed(&'static str),
}

/// Serves one HTTP connection (keep-alive: many requests) until it closes.
pub async fn serve(server: Arc<Server>, sock: TcpStream, peer: SocketAddr, guard: ClientGuard, role: HttpRole) {
    let span = tracing::debug_span!("http", cid = %guard.client.id, peer = %peer);
    async move {
        if let Err(e) = connection(&server, sock, &guard, role).await {
            // A request we could not read counts as a client error (SRS's
            // srs_clients_errs_total); a peer that went away does not.
            if matches!(e, HttpError::Parse(_)) {
                server.clients.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            debug!("closed: {e}");
        }
    }
    .instrument(span)
    .await
}

async fn connection(
    server: &Arc<Server>,
    mut sock: TcpStream,
    guard: &ClientGuard,
    role: HttpRole,
) -> Result<(), HttpError> {
    let mut buf = BytesMut::with_capacity(4096);
    let kill = guard.client.kill.clone();
    let mut served = 0u64;
    loop {
        let req = tokio::select! {
            _ = kill.cancelled() => return Ok(()),
            // Graceful quit: idle keep-alive connections close so the process can drain (a new
            // connection still gets its first request answered while listeners are open).
            _ = server.draining.cancelled(), if served > 0 => return Ok(()),
            r = tokio::time::timeout(IDLE_TIMEOUT, read_request(&mut sock, &mut buf)) => match r {
                Err(_) => return Ok(()),
                Ok(Ok(Some(req))) => req,
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(HttpError::Parse(why))) => {
                    let resp = Response::text(why.status(), &format!("{why}\n"));
                    write_response(&mut sock, &resp, false, false).await?;
                    linger(&mut sock).await;
                    return Err(HttpError::Parse(why));
                }
                Ok(Err(e)) => return Err(e),
            },
        };
        guard.client.counters.received(req.wire_len);
        served += 1;
        let cfg = server.config();
        let head_only = req.method == "HEAD";
        if role.files && (req.method == "GET" || head_only) && req.path.ends_with(".flv") {
            if let (Some((vhost, key)), false) = (flv::match_mount(&cfg, &req), head_only) {
                let param = if req.query.is_empty() { String::new() } else { format!("?{}", req.query) };
                let (host, tc_url) = (req.host(), format!("rtmp://{}/{}", vhost.name, key.app));
                let page_url = req.header("referer").unwrap_or("").to_string();
                let sreq = StreamRequest {
                    vhost,
                    key,
                    param,
                    client_host: &host,
                    client_id: &guard.client.id,
                    tc_url: &tc_url,
                    peer_ip: guard.client.ip,
                    reported_ip: req.client_ip(guard.client.ip),
                    page_url: &page_url,
                    connection_hooks: false,
                };
                let resp = match Box::pin(streams::play(server, &sreq)).await {
                    Ok(PlayDecision::Here(consumer, initial, _admitted)) => {
                        return flv::serve(server, sock, &req, &sreq, consumer, initial, guard)
                            .await
                            .map_err(HttpError::Io)
                    }
                    // On a cluster origin without the stream: the player goes where it is.
                    Ok(PlayDecision::Redirect(found)) => {
                        flv::redirect(&found, &req, &sreq.key, sock.local_addr().map(|a| a.port()).unwrap_or(8080))
                    }
                    Err(e @ PlayRefused::BadName(_)) => Response::text(400, &format!("{e}\n")),
                    Err(e @ PlayRefused::Access(_)) => {
                        tracing::warn!(stream = %sreq.key.url(), peer = %guard.client.ip, "HTTP-FLV play refused: {e}");
                        Response::text(403, &format!("{e}\n"))
                    }
                    Err(e @ PlayRefused::NotInCluster) => {
                        tracing::info!(stream = %sreq.key.url(), "HTTP-FLV play refused: {e}");
                        Response::text(404, &format!("{e}\n"))
                    }
                };
                write_response(&mut sock, &resp, false, false).await?;
                return Ok(());
            }
        }
        let crossdomain = cfg.http_server.crossdomain;
        let mut resp = if req.path == "/healthz" {
            // Liveness: the process serves requests.
            Response::text(200, "ok\n")
        } else if req.path == "/readyz" {
            // Readiness: false during a graceful quit and while a new config is applied.
            if server.ready() {
                Response::text(200, "ready\n")
            } else if server.draining.is_cancelled() {
                Response::text(503, "draining\n")
            } else {
                Response::text(503, "applying config\n")
            }
        } else if (role.api || role.files)
            && matches!(req.path.trim_end_matches('/'), "/rtc/v1/whep" | "/rtc/v1/whip-play")
            && req.method != "OPTIONS"
        {
            // WHEP (and SRS's older name for it, whip-play) and WHIP on the API port and the
            // HTTP port, as SRS.
            Box::pin(whip::handle(server, &req, guard, crate::rtc::Way::Play)).await
        } else if (role.api || role.files)
            && req.path.trim_end_matches('/') == "/rtc/v1/whip"
            && req.method != "OPTIONS"
        {
            Box::pin(whip::handle(server, &req, guard, crate::rtc::Way::Publish)).await
        } else if role.api
            && matches!(req.path.trim_end_matches('/'), "/rtc/v1/play" | "/rtc/v1/publish")
            && req.method != "OPTIONS"
        {
            // SRS's older JSON signalling, on the API port as in SRS.
            let way =
                if req.path.starts_with("/rtc/v1/play") { crate::rtc::Way::Play } else { crate::rtc::Way::Publish };
            Box::pin(whip::json_api(server, &req, guard, way)).await
        } else if req.method == "OPTIONS" {
            if crossdomain {
                Response::new(200, "text/plain", Bytes::new())
            } else {
                Response::text(405, "Method Not Allowed")
            }
        } else if req.path == "/metrics" && (role.metrics || (role.api && cfg.exporter.enabled)) {
            // The exporter's port, and the API's too while the exporter is on (as SRS).
            Response::new(200, crate::metrics::CONTENT_TYPE, crate::metrics::render(server))
        } else if role.metrics {
            Response::text(404, "Not Found: the exporter serves /metrics\n")
        } else if role.api && (req.path.starts_with("/api/") || req.path == "/api" || (!role.files)) {
            // Boxed: an API request is rare on a player's connection, and its future is large.
            Box::pin(api::handle(server, &req)).await
        } else if role.files {
            let hls = if [".m3u8", ".ts", ".m4s", ".mp4"].iter().any(|x| req.path.ends_with(x)) {
                Box::pin(hls_play::handle(server, &cfg, &req, guard)).await
            } else {
                hls_play::HlsReply::Files
            };
            let files = match hls {
                // A session's playlist, a viewer's master playlist, or a refusal.
                hls_play::HlsReply::Full(resp) => files::FileReply::Full(resp),
                hls_play::HlsReply::Files => files::serve(&cfg.http_server.dir, &req).await,
            };
            match files {
                files::FileReply::Full(r) => r,
                files::FileReply::Stream(head, file, len) => {
                    let keep = req.keep_alive();
                    let mut head = head;
                    head.headers.extend(cors_headers(&req, crossdomain));
                    let bytes = head_bytes(head.status, &head.headers, Some(len as usize), keep);
                    sock.write_all(&bytes).await?;
                    if !head_only {
                        let mut f = file.take(len);
                        let n = tokio::io::copy(&mut f, &mut sock).await?;
                        guard.client.counters.sent(n as usize);
                    }
                    if !keep {
                        return Ok(());
                    }
                    continue;
                }
            }
        } else {
            Response::text(404, "Not Found")
        };
        resp.headers.extend(cors_headers(&req, crossdomain));
        let keep = req.keep_alive() && !server.draining.is_cancelled();
        let n = write_response(&mut sock, &resp, keep, head_only).await?;
        guard.client.counters.sent(n);
        if !keep {
            return Ok(());
        }
    }
}

/// After refusing a request whose rest is still arriving: say we are done sending, then read
/// and drop what comes for a moment (bounded), so closing with unread data does not reset the
/// connection before the client has read our answer.
async fn linger(sock: &mut TcpStream) {
    let _ = sock.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    // On the heap: an array here would enlarge every HTTP connection's future for a rare path.
    let mut scratch = vec![0u8; 4096];
    let mut drained = 0usize;
    while drained < 256 * 1024 {
        match tokio::time::timeout_at(deadline, sock.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

async fn write_response(
    sock: &mut TcpStream,
    resp: &Response,
    keep_alive: bool,
    head_only: bool,
) -> std::io::Result<usize> {
    let mut out = head_bytes(resp.status, &resp.headers, Some(resp.body.len()), keep_alive);
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    sock.write_all(&out).await?;
    Ok(out.len())
}

/// Reads one request (head and body). `Ok(None)` when the peer closed cleanly between requests.
/// Framing errors (RFC 9112) come back as [`HttpError::Parse`] and are answered, then the
/// connection closes: after a request we cannot frame, nothing that follows can be trusted.
async fn read_request(sock: &mut TcpStream, buf: &mut BytesMut) -> Result<Option<Request>, HttpError> {
    let limits = Limits::default();
    loop {
        if !buf.is_empty() {
            if let Some(head) = parse_head(buf, &limits)? {
                bytes::Buf::advance(buf, head.head_len);
                let mut wire_len = head.head_len;
                let body = match head.framing {
                    BodyFraming::None => Bytes::new(),
                    BodyFraming::Length(n) => {
                        while buf.len() < n {
                            if sock.read_buf(buf).await? == 0 {
                                return Err(HttpError::Closed("inside the request body"));
                            }
                        }
                        wire_len += n;
                        buf.split_to(n).freeze()
                    }
                    BodyFraming::Chunked => {
                        let mut dec = ChunkedDecoder::new(limits.max_body);
                        loop {
                            let used = dec.feed(buf)?;
                            wire_len += used;
                            bytes::Buf::advance(buf, used);
                            if dec.is_done() {
                                break;
                            }
                            if sock.read_buf(buf).await? == 0 {
                                return Err(HttpError::Closed("inside the chunked request body"));
                            }
                        }
                        Bytes::from(dec.into_body())
                    }
                };
                let RequestHead { method, path, query, headers, http10, .. } = head;
                return Ok(Some(Request { method, path, query, headers, http10, body, wire_len }));
            }
        }
        // Read no further than the head limit allows before parsing again, so an oversized head
        // is refused at the limit rather than after whatever one read brought in.
        let room = (limits.max_head + 1).saturating_sub(buf.len()).max(1);
        let mut take = (&mut *sock).take(room as u64);
        if take.read_buf(buf).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(HttpError::Closed("inside the request head"));
        }
    }
}

/// Decodes `%XX` escapes (and leaves malformed ones as they are).
pub fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&rsrs_codec::http::percent_decode_bytes(s)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/%2e%2E"), "/a b/..");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41"), "A");
    }
}

#[cfg(test)]
mod future_size {
    /// Every HTTP-FLV player's task holds this future for its whole life, so its size is memory
    /// per player. Rare paths must not put large buffers in it (a 4 KiB array in the refusal
    /// path once cost every player 3 KiB of RSS).
    #[tokio::test]
    async fn http_connection_future_stays_small() {
        let server = crate::server::Server::new(rsrs_config::Config::builtin(&Default::default()).unwrap(), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (sock, peer) = listener.accept().await.unwrap();
        let guard = server.clients.register(peer.ip());
        let f = super::serve(
            server.clone(),
            sock,
            peer,
            guard,
            crate::server::HttpRole { api: false, files: true, metrics: false },
        );
        let size = std::mem::size_of_val(&f);
        eprintln!("HTTP connection future: {size} bytes");
        assert!(size <= 4096, "the HTTP connection future grew to {size} bytes; box what is large and rare");
    }
}
