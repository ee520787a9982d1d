//! The running server: shared state, listeners and the accept loops.

use crate::hub::{Hub, SourceSettings};
use crate::slots::{ConnClass, Slots};
use crate::stats::{ClientGuard, Clients};
use rsrs_codec::rtmp::message::ServerIdentity;
use rsrs_config::{Config, Vhost};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
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
    listeners: Mutex<HashMap<(ListenerKind, SocketAddr), tokio::task::JoinHandle<()>>>,
    /// Set when a graceful quit starts: readiness turns false, idle HTTP connections close.
    pub draining: CancellationToken,
    /// Set while a new config is being applied (readiness is false meanwhile).
    pub applying: std::sync::atomic::AtomicBool,
    /// The config file to re-read on reload (none for the built-in or env-only config).
    pub config_path: Option<std::path::PathBuf>,
    /// Background work that must finish before exit (DVR files).
    pub tasks: tokio_util::task::TaskTracker,
    /// Connection slots by kind of listener.
    pub slots: Arc<Slots>,
}

impl Server {
    pub fn new(config: Config, config_path: Option<std::path::PathBuf>) -> Arc<Server> {
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
            listeners: Mutex::new(HashMap::new()),
            draining: CancellationToken::new(),
            applying: std::sync::atomic::AtomicBool::new(false),
            config_path,
            tasks: tokio_util::task::TaskTracker::new(),
            slots: Arc::new(Slots::default()),
        })
    }

    /// The current config (a cheap snapshot; reload swaps it).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the config (reload). Connections read it when they start a play or publish.
    pub fn set_config(&self, cfg: Config) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
    }

    /// Ready for new clients: not quitting and not in the middle of applying a config.
    pub fn ready(&self) -> bool {
        !self.draining.is_cancelled() && !self.applying.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The API id of a vhost (`vid-xxxxxxx`), stable for the life of the process.
    pub fn vhost_id(&self, name: &str) -> String {
        let mut ids = self.vhost_ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.entry(name.to_string()).or_insert_with(|| crate::ids::random_id("vid-", 7)).clone()
    }

    /// Registers an accepted connection, or refuses it when its kind's share of
    /// `max_connections` is used up (see [`crate::slots`]).
    pub fn admit(&self, peer: SocketAddr, kind: ListenerKind) -> Option<ClientGuard> {
        let cfg = self.config();
        let class = kind.class();
        let open: Vec<ConnClass> = wanted_listeners(&cfg).iter().map(|(k, _)| k.class()).collect();
        match self.slots.admit(class, cfg.max_connections as usize, &open) {
            Ok(slot) => {
                let mut guard = self.clients.register(peer.ip());
                guard.slot = Some(slot);
                Some(guard)
            }
            Err(why) => {
                // One line a second under a flood, with the counts, rather than one per socket.
                if let Some([rtmp, http, api]) = self.slots.refusals_to_log() {
                    warn!(peer = %peer, "refusing connections (RTMP {rtmp}, HTTP {http}, API {api} since the last report): {why}");
                }
                None
            }
        }
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

/// A listener that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {what} on {addr}: {err}")]
pub struct ListenError {
    pub what: &'static str,
    pub addr: SocketAddr,
    pub err: std::io::Error,
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ListenError> {
    let err = |err| ListenError { what, addr, err };
    let sock =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }.map_err(err)?;
    let _ = sock.set_reuseaddr(true);
    sock.bind(addr).map_err(err)?;
    sock.listen(1024).map_err(err)
}

/// Binds every configured listener and serves until shutdown. Errors binding are returned
/// before anything is served, so a port clash is a clear start-up failure.
/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    Rtmp,
    Http { api: bool, files: bool },
}

impl ListenerKind {
    /// Whose share of the connection slots a connection on this listener uses.
    pub fn class(self) -> ConnClass {
        match self {
            ListenerKind::Rtmp => ConnClass::Rtmp,
            ListenerKind::Http { files: true, .. } => ConnClass::Http,
            ListenerKind::Http { .. } => ConnClass::Api,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ListenerKind::Rtmp => "RTMP",
            ListenerKind::Http { api: true, files: true } => "HTTP API+server",
            ListenerKind::Http { api: true, files: false } => "HTTP API",
            ListenerKind::Http { .. } => "HTTP server",
        }
    }
}

/// The listeners a config asks for.
pub fn wanted_listeners(cfg: &Config) -> Vec<(ListenerKind, SocketAddr)> {
    let mut v: Vec<(ListenerKind, SocketAddr)> = cfg.listen.iter().map(|e| (ListenerKind::Rtmp, e.0)).collect();
    let api = cfg.http_api.enabled.then_some(cfg.http_api.listen.0);
    let files = cfg.http_server.enabled.then_some(cfg.http_server.listen.0);
    match (api, files) {
        // Same endpoint: one listener serves both, as in SRS.
        (Some(a), Some(f)) if a == f => v.push((ListenerKind::Http { api: true, files: true }, a)),
        _ => {
            v.extend(api.map(|a| (ListenerKind::Http { api: true, files: false }, a)));
            v.extend(files.map(|f| (ListenerKind::Http { api: false, files: true }, f)));
        }
    }
    v
}

/// Opens and closes listeners to match `cfg`. Existing listeners that stay are untouched (their
/// clients are never affected). Returns the first bind error, after trying everything.
pub async fn apply_listeners(server: &Arc<Server>, cfg: &Config) -> Result<(), ListenError> {
    let wanted = wanted_listeners(cfg);
    let mut first_err = None;
    let mut current = std::mem::take(&mut *server.listeners.lock().unwrap_or_else(|e| e.into_inner()));
    current.retain(|key, task| {
        let keep = wanted.contains(key);
        if !keep {
            task.abort(); // drops the socket: the port closes at once
            info!("{} listener on {} closed", key.0.name(), key.1);
        }
        keep
    });
    for key in wanted {
        if current.contains_key(&key) {
            continue;
        }
        match bind(key.1, key.0.name()).await {
            Ok(l) => {
                info!("{} listening on {}", key.0.name(), key.1);
                let task = tokio::spawn(accept_loop(server.clone(), l, key.0));
                current.insert(key, task);
            }
            Err(e) => {
                error!("{e}");
                first_err.get_or_insert(e);
            }
        }
    }
    *server.listeners.lock().unwrap_or_else(|e| e.into_inner()) = current;
    first_err.map_or(Ok(()), Err)
}

/// Closes every listener (graceful quit): new clients go elsewhere, current ones stay.
pub fn close_listeners(server: &Server) {
    for ((kind, addr), task) in server.listeners.lock().unwrap_or_else(|e| e.into_inner()).drain() {
        task.abort();
        info!("{} listener on {addr} closed", kind.name());
    }
}

/// Binds every configured listener and serves until shutdown. A bind error is returned before
/// anything is served, so a port clash is a clear start-up failure.
pub async fn run(server: Arc<Server>) -> Result<(), ListenError> {
    let cfg = server.config();
    recover_files(&cfg);
    warn_open_api(&cfg);
    if let Err(e) = apply_listeners(&server, &cfg).await {
        close_listeners(&server);
        return Err(e);
    }
    tokio::spawn(sample_rates(server.clone()));
    tokio::spawn(crate::alloc::trim_after_churn());
    server.shutdown.cancelled().await;
    close_listeners(&server);
    Ok(())
}

/// An API without a password on a non-loopback address lets anyone on the network list and kick
/// clients; SRS's defaults do that, so it is allowed, but said at start-up.
pub fn warn_open_api(cfg: &Config) {
    let api = cfg.http_api.listen.0;
    if cfg.http_api.enabled && cfg.http_api.auth.is_none() && !api.ip().is_loopback() {
        warn!(
            "the HTTP API on {api} has no auth and listens beyond loopback: anyone who reaches it can list \
             and kick clients. Set `http_api {{ listen 127.0.0.1:{}; }}` or `http_api {{ auth {{ enabled on; \
             username ...; password ...; }} }}`",
            api.port()
        );
    }
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
            let base = crate::paths::template_root(&v.dvr.path);
            if seen.insert(("dvr", base.display().to_string())) {
                crate::dvr::recover_stale(&base);
            }
        }
    }
}

/// Accepts connections until aborted, admits them against `max_connections`, and serves each
/// on its own task with the protocol of the listener.
async fn accept_loop(server: Arc<Server>, l: TcpListener, kind: ListenerKind) {
    loop {
        let (sock, peer) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                error!("{} accept failed: {e}", kind.name());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(guard) = server.admit(peer, kind) else {
            continue;
        };
        let srv = server.clone();
        match kind {
            ListenerKind::Rtmp => tokio::spawn(async move { crate::rtmp::conn::serve(srv, sock, peer, guard).await }),
            ListenerKind::Http { api, files } => {
                tokio::spawn(async move { crate::http::serve(srv, sock, peer, guard, HttpRole { api, files }).await })
            }
        };
    }
}

async fn sample_rates(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        server.clients.sample(Instant::now());
    }
}
