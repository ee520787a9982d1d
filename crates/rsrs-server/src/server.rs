//! The running server's shared state: config, streams, clients, registries, connection slots.
//! The listeners and their accept loops are in `listeners.rs`.

use crate::hub::{Hub, SourceSettings};
use crate::slots::{ConnClass, Slots};
use crate::stats::{ClientGuard, Clients};
use crate::version::{signature, VERSION};
use rsrs_codec::rtmp::message::ServerIdentity;
use rsrs_config::{Config, Vhost};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};
use tokio_util::sync::CancellationToken;
use tracing::warn;

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
    pub hls: crate::hls::state::HlsRegistry,
    pub edges: crate::edge::state::EdgeRegistry,
    pub(crate) listeners: Mutex<HashMap<(ListenerKind, SocketAddr), tokio::task::JoinHandle<()>>>,
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
    /// The HTTP callbacks' client (`http_hooks`).
    pub hooks: crate::hooks::Hooks,
    /// Public keys for RS256/ES256 JWTs (`token { jwt_key; jwks_url; }`).
    pub token_keys: crate::tokens::TokenKeys,
    /// CPU time at the last scrape of `/metrics`.
    pub cpu: crate::metrics::cpu::CpuSampler,
    /// HLS viewer sessions (`hls_ctx`).
    pub hls_viewers: crate::hls::viewers::HlsViewers,
    /// What the server did (reloads, segments, redirects, refusals), for the exporter.
    pub events: crate::metrics::events::Events,
    /// The last sample of `/proc` for the API's system figures.
    pub system: crate::metrics::system::SystemSampler,
    /// 30 s byte rates of streams, vhosts and the server.
    pub rates: crate::metrics::rates::Rates,
    /// SRT connections, for libsrt's statistics.
    pub srt: crate::srt::state::SrtConnections,
    /// WebRTC's UDP port while `rtc_server` is on, and its live WHEP sessions.
    pub rtc: crate::rtc::state::RtcSlot,
    pub rtc_sessions: crate::rtc::state::RtcSessions,
    pub rtc_totals: Arc<crate::rtc::state::RtcTotals>,
    /// Opus for WebRTC players of streams with AAC (one transcoder per stream, while played).
    pub opus_feeds: crate::transcode::OpusFeeds,
}

impl Server {
    pub fn new(config: Config, config_path: Option<std::path::PathBuf>) -> Arc<Server> {
        let server_id = config.server_id.clone().unwrap_or_else(|| crate::ids::random_id("vid-", 7));
        let cpu = crate::metrics::cpu::CpuSampler::default();
        // Primed at start, so the first scrape reports the CPU used since start, not 0.
        cpu.percent();
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
            hooks: crate::hooks::Hooks::new(),
            hls_viewers: Default::default(),
            cpu,
            token_keys: Default::default(),
            events: Default::default(),
            system: Default::default(),
            rates: Default::default(),
            srt: Default::default(),
            rtc: Default::default(),
            rtc_sessions: Default::default(),
            rtc_totals: Default::default(),
            opus_feeds: Default::default(),
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

    /// Disconnects the client publishing `key` here, if any, saying why (a sink that cannot go on
    /// with it: `hls_on_error disconnect`, DVR refusing a publisher far faster than real time).
    pub fn disconnect_publisher(&self, key: &crate::hub::StreamKey, why: &str) {
        let publisher = self.hub.get(key).and_then(|s| s.publisher());
        if let Some(c) = publisher.and_then(|p| self.clients.get(&p)) {
            warn!(stream = %key.url(), "closing the publisher: {why}");
            c.kill.cancel();
        }
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
    /// The exporter's listener: `/metrics` only.
    pub metrics: bool,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    Rtmp,
    Http {
        api: bool,
        files: bool,
    },
    Exporter,
    /// SRT over UDP (`srt_server`).
    Srt,
    /// WebRTC over UDP (`rtc_server`).
    Rtc,
    /// WebRTC over TCP (`rtc_server { tcp { } }`, ICE-TCP).
    RtcTcp,
}

impl ListenerKind {
    /// Whose share of the connection slots a connection on this listener uses.
    pub fn class(self) -> ConnClass {
        match self {
            // An SRT caller publishes or plays media, as an RTMP client does.
            ListenerKind::Rtmp | ListenerKind::Srt | ListenerKind::Rtc | ListenerKind::RtcTcp => ConnClass::Rtmp,
            ListenerKind::Http { files: true, .. } => ConnClass::Http,
            ListenerKind::Http { .. } | ListenerKind::Exporter => ConnClass::Api,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Rtmp => "RTMP",
            ListenerKind::Http { api: true, files: true } => "HTTP API+server",
            ListenerKind::Http { api: true, files: false } => "HTTP API",
            ListenerKind::Http { .. } => "HTTP server",
            ListenerKind::Exporter => "Prometheus exporter",
            ListenerKind::Srt => "SRT",
            ListenerKind::Rtc => "WebRTC",
            ListenerKind::RtcTcp => "WebRTC (TCP)",
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
    if cfg.exporter.enabled {
        v.push((ListenerKind::Exporter, cfg.exporter.listen.0));
    }
    if cfg.srt_server.enabled {
        v.push((ListenerKind::Srt, cfg.srt_server.listen.0));
    }
    if cfg.rtc_server.enabled {
        v.push((ListenerKind::Rtc, cfg.rtc_server.listen.0));
        if cfg.rtc_server.tcp_enabled {
            v.push((ListenerKind::RtcTcp, cfg.rtc_server.tcp_listen.0));
        }
    }
    v
}
