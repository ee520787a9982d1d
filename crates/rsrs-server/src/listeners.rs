//! The listeners: opened and closed to match the config (at start and on reload), their accept
//! loops, and what start-up does before serving.

use crate::server::{wanted_listeners, HttpRole, ListenerKind, Server};
use rsrs_config::Config;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tracing::{error, info, warn};

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

/// WebRTC's shared UDP port and the candidate address browsers are told.
async fn bind_rtc(addr: SocketAddr, cfg: &Config) -> Result<Arc<crate::rtc::state::RtcPort>, ListenError> {
    let err = |e: std::io::Error| ListenError { what: "WebRTC", addr, err: e };
    let candidate = crate::rtc::candidate_addr(&cfg.rtc_server).map_err(|e| err(std::io::Error::other(e)))?;
    let socket = tokio::net::UdpSocket::bind(addr).await.map_err(err)?;
    Ok(Arc::new(crate::rtc::state::RtcPort::new(socket, candidate)))
}

/// The SRT listener (UDP, through libsrt), with `srt_server`'s socket options.
fn bind_srt(addr: SocketAddr, cfg: &Config) -> Result<rsrs_srt::SrtListener, ListenError> {
    let err = |e: String| ListenError { what: "SRT", addr, err: std::io::Error::other(e) };
    let SocketAddr::V4(v4) = addr else {
        return Err(err("SRT listens on IPv4 addresses only".into()));
    };
    rsrs_srt::SrtListener::bind(v4, &crate::srt::options(&cfg.srt_server)).map_err(|e| err(e.to_string()))
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
            if key.0 == ListenerKind::Rtc {
                server.rtc.set(None);
            }
            info!("{} listener on {} closed", key.0.name(), key.1);
        }
        keep
    });
    for key in wanted {
        if current.contains_key(&key) {
            continue;
        }
        if key.0 == ListenerKind::Rtc {
            match bind_rtc(key.1, cfg).await {
                Ok(port) => {
                    info!("WebRTC listening on {} (UDP), candidate {}", key.1, port.candidate);
                    server.rtc.set(Some(port.clone()));
                    current.insert(key, tokio::spawn(crate::rtc::receive_loop(port)));
                }
                Err(e) => {
                    error!("{e}");
                    first_err.get_or_insert(e);
                }
            }
            continue;
        }
        if key.0 == ListenerKind::Srt {
            match bind_srt(key.1, cfg) {
                Ok(l) => {
                    info!("SRT listening on {} (UDP)", key.1);
                    current.insert(key, tokio::spawn(crate::srt::accept_loop(server.clone(), l)));
                }
                Err(e) => {
                    error!("{e}");
                    first_err.get_or_insert(e);
                }
            }
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
    // The TCP candidate answers carry: the UDP candidate's address with the TCP port.
    if let Some(port) = server.rtc.get() {
        let rtc = &cfg.rtc_server;
        port.set_tcp_candidate(
            (rtc.tcp_enabled && rtc.protocol.tcp())
                .then(|| SocketAddr::new(port.candidate.ip(), rtc.tcp_listen.0.port())),
            rtc.protocol.udp(),
        );
    }
    first_err.map_or(Ok(()), Err)
}

/// Closes every listener (graceful quit): new clients go elsewhere, current ones stay.
pub fn close_listeners(server: &Server) {
    server.rtc.set(None);
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
    tokio::spawn(sweep_hls_viewers(server.clone()));
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
        if kind == ListenerKind::RtcTcp {
            // A session's TCP leg: admitted with its session at signalling, not as a client of
            // its own; bounded in number, and by the deadline to name a live session.
            crate::rtc::tcp::accept(&server, sock, peer);
            continue;
        }
        let Some(guard) = server.admit(peer, kind) else {
            continue;
        };
        let srv = server.clone();
        match kind {
            ListenerKind::Rtmp => tokio::spawn(async move { crate::rtmp::conn::serve(srv, sock, peer, guard).await }),
            ListenerKind::Http { api, files } => tokio::spawn(async move {
                crate::http::serve(srv, sock, peer, guard, HttpRole { api, files, metrics: false }).await
            }),
            ListenerKind::Exporter => tokio::spawn(async move {
                crate::http::serve(srv, sock, peer, guard, HttpRole { api: false, files: false, metrics: true }).await
            }),
            ListenerKind::Srt | ListenerKind::Rtc | ListenerKind::RtcTcp => continue, // not served here
        };
    }
}

/// Ends HLS viewer sessions that stopped asking for their playlist (their `on_stop` goes out).
async fn sweep_hls_viewers(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        server.hls_viewers.sweep();
    }
}

/// Every 5 s: the byte rates of clients, streams and vhosts (SRS's 30 s kbps), and the
/// machine's figures from `/proc` for the API.
async fn sample_rates(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let now = Instant::now();
        server.clients.sample(now);
        let sources = server.hub.all();
        server.rates.sample_streams(
            now,
            sources
                .iter()
                .map(|s| (s.id.as_str(), s.recv_bytes.load(Ordering::Relaxed), s.send_bytes.load(Ordering::Relaxed))),
        );
        let cfg = server.config();
        let vhosts: Vec<_> =
            cfg.vhosts.iter().map(|v| (v.name.as_str(), server.clients.byte_totals(Some(&v.name)))).collect();
        server.rates.sample_vhosts(now, vhosts.iter().map(|(name, b)| (*name, b.recv, b.send)));
        // /proc reads are blocking file reads: off the async workers.
        let srv = server.clone();
        let disks = cfg.stats.disks.clone();
        let _ = tokio::task::spawn_blocking(move || srv.system.sample(&disks)).await;
    }
}
