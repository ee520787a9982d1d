//! The running server: shared state, listeners and the accept loops.

use crate::hub::{Hub, SourceSettings};
use crate::stats::{ClientGuard, Clients};
use rsrs_codec::rtmp::message::ServerIdentity;
use rsrs_config::{Config, Vhost};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `rsrs/<version>`: what `srs_server` and the metadata's `server` field carry.
pub fn signature() -> String {
    format!("rsrs/{VERSION}")
}

/// State every connection can reach.
pub struct Server {
    config: RwLock<Arc<Config>>,
    pub hub: Arc<Hub>,
    pub clients: Arc<Clients>,
    pub identity: ServerIdentity,
    /// Stable per process (SRS: `server` in API envelopes).
    pub server_id: String,
    /// Random per process start (SRS: `service`).
    pub service_id: String,
    pub started: Instant,
    pub started_at: SystemTime,
    vhost_ids: Mutex<HashMap<String, String>>,
    pub shutdown: CancellationToken,
    pub hls: crate::hls::HlsRegistry,
    pub edges: crate::edge::EdgeRegistry,
    /// Background work that must finish before exit (DVR files).
    pub tasks: tokio_util::task::TaskTracker,
}

impl Server {
    pub fn new(config: Config) -> Arc<Server> {
        let server_id = config.server_id.clone().unwrap_or_else(|| crate::ids::random_id("vid-", 7));
        Arc::new(Server {
            config: RwLock::new(Arc::new(config)),
            hub: Arc::new(Hub::default()),
            clients: Arc::new(Clients::default()),
            identity: ServerIdentity { server: signature(), version: VERSION.to_string(), pid: std::process::id() },
            server_id,
            service_id: crate::ids::random_id("", 8),
            started: Instant::now(),
            started_at: SystemTime::now(),
            vhost_ids: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            hls: Default::default(),
            edges: Default::default(),
            tasks: tokio_util::task::TaskTracker::new(),
        })
    }

    /// The current config (a cheap snapshot; reload swaps it).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The API id of a vhost (`vid-xxxxxxx`), stable for the life of the process.
    pub fn vhost_id(&self, name: &str) -> String {
        let mut ids = self.vhost_ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.entry(name.to_string()).or_insert_with(|| crate::ids::random_id("vid-", 7)).clone()
    }

    /// Registers an accepted connection, or refuses it when `max_connections` is reached.
    pub fn admit(&self, peer: SocketAddr, what: &str) -> Option<ClientGuard> {
        let max = self.config().max_connections as usize;
        let now = self.clients.count();
        if now >= max {
            warn!(peer = %peer, listener = what, "refusing connection: {now} connections reached max_connections {max}");
            return None;
        }
        Some(self.clients.register(peer.ip()))
    }
}

pub fn source_settings(v: &Vhost) -> SourceSettings {
    SourceSettings {
        gop_cache: v.play.gop_cache,
        gop_cache_max_frames: v.play.gop_cache_max_frames,
        time_jitter: v.play.time_jitter,
    }
}

/// What an HTTP listener serves.
#[derive(Debug, Clone, Copy)]
pub struct HttpRole {
    pub api: bool,
    pub files: bool,
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    let sock = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
        .map_err(|e| format!("cannot create a socket for {what} {addr}: {e}"))?;
    let _ = sock.set_reuseaddr(true);
    sock.bind(addr).map_err(|e| format!("cannot listen for {what} on {addr}: {e}"))?;
    sock.listen(1024).map_err(|e| format!("cannot listen for {what} on {addr}: {e}"))
}

/// Binds every configured listener and serves until shutdown. Errors binding are returned
/// before anything is served, so a port clash is a clear start-up failure.
pub async fn run(server: Arc<Server>) -> Result<(), String> {
    let cfg = server.config();
    recover_files(&cfg);
    let mut tasks = Vec::new();
    for ep in &cfg.listen {
        let l = bind(ep.0, "RTMP").await?;
        info!("RTMP listening on {}", ep);
        tasks.push(tokio::spawn(accept_rtmp(server.clone(), l)));
    }
    let api = cfg.http_api.enabled.then_some(cfg.http_api.listen);
    let files = cfg.http_server.enabled.then_some(cfg.http_server.listen);
    let mut http = Vec::new();
    match (api, files) {
        (Some(a), Some(f)) if a == f => http.push((a, HttpRole { api: true, files: true })),
        _ => {
            if let Some(a) = api {
                http.push((a, HttpRole { api: true, files: false }));
            }
            if let Some(f) = files {
                http.push((f, HttpRole { api: false, files: true }));
            }
        }
    }
    for (ep, role) in http {
        let what = match (role.api, role.files) {
            (true, true) => "HTTP API+server",
            (true, false) => "HTTP API",
            _ => "HTTP server",
        };
        let l = bind(ep.0, what).await?;
        info!("{what} listening on {ep}");
        tasks.push(tokio::spawn(accept_http(server.clone(), l, role)));
    }
    tokio::spawn(sample_rates(server.clone()));
    server.shutdown.cancelled().await;
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// Cleans up after an earlier run that did not stop cleanly: HLS temp files are removed,
/// unfinished DVR recordings are kept and given their final names.
fn recover_files(cfg: &Config) {
    let mut seen = std::collections::HashSet::new();
    for v in &cfg.vhosts {
        if v.hls.enabled && seen.insert(("hls", v.hls.path.clone())) {
            let n = crate::hls::remove_stale_temps(std::path::Path::new(&v.hls.path));
            if n > 0 {
                info!("HLS: removed {n} temp files left in {} by an earlier run", v.hls.path);
            }
        }
        if v.dvr.enabled {
            // The fixed part of dvr_path, before its first variable.
            let fixed = v.dvr.path.split('[').next().unwrap_or("");
            let base = std::path::Path::new(fixed).parent().map(|p| p.to_path_buf()).unwrap_or_default();
            let base = if base.as_os_str().is_empty() { std::path::PathBuf::from(".") } else { base };
            if seen.insert(("dvr", base.display().to_string())) {
                crate::dvr::recover_stale(&base);
            }
        }
    }
}

async fn accept_rtmp(server: Arc<Server>, l: TcpListener) {
    loop {
        let (sock, peer) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                error!("RTMP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(guard) = server.admit(peer, "RTMP") else {
            continue;
        };
        let srv = server.clone();
        tokio::spawn(async move { crate::rtmp::conn::serve(srv, sock, peer, guard).await });
    }
}

async fn accept_http(server: Arc<Server>, l: TcpListener, role: HttpRole) {
    loop {
        let (sock, peer): (TcpStream, SocketAddr) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                error!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(guard) = server.admit(peer, "HTTP") else {
            continue;
        };
        let srv = server.clone();
        tokio::spawn(async move { crate::http::serve(srv, sock, peer, guard, role).await });
    }
}

async fn sample_rates(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        server.clients.sample(Instant::now());
    }
}
