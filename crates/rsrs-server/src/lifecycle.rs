//! Process lifecycle, as SRS: signals, graceful quit, reload, and auto reload when Kubernetes
//! swaps a mounted ConfigMap.
//!
//! - SIGQUIT: graceful quit. Readiness turns false at once; after `grace_start_wait` every
//!   listener closes (new clients go to other pods); current clients are served until they
//!   leave; recordings are finished; after `grace_final_wait` the process exits 0.
//! - SIGTERM: fast quit, or graceful with `force_grace_quit on`. SIGINT: fast quit. Fast quit
//!   still finishes DVR files. A second quit signal during grace never loses data: SIGQUIT is
//!   ignored, a fast-quit signal cuts the wait short and finishes recordings.
//! - SIGHUP: reload. SIGUSR1: reopen the log file (log rotation).
//! - inotify (`inotify_auto_reload on`, or in a container unless `auto_reload_for_docker off`):
//!   the config's directory is watched; the config file being written or replaced, or the
//!   `..data` symlink being swapped, triggers a reload after a short debounce.

use crate::listeners;
use crate::metrics::events::Events;
use crate::server::Server;
use rsrs_config::{process_env, Config};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Listen(#[from] listeners::ListenError),
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    TokenKeys(#[from] crate::tokens::TokenKeyError),
}

/// Runs the server until it has quit; returns when the process should exit 0.
pub async fn run(srv: Arc<Server>) -> Result<(), LifecycleError> {
    let mut sigs = Signals::new()?;
    srv.token_keys.load_files(&srv.config())?;
    start_jwks_fetchers(&srv, &srv.config());
    let run = tokio::spawn(listeners::run(srv.clone()));
    // Started listeners first: a bind error ends start-up before anything else.
    let mut run = run;
    if let Some(path) = srv.config_path.clone() {
        if auto_reload_enabled(&srv.config()) {
            tokio::spawn(watch_config(srv.clone(), path));
        }
    }
    loop {
        tokio::select! {
            r = &mut run => return Ok(r??),
            s = sigs.next() => match s {
                Sig::Hup => {
                    let srv = srv.clone();
                    tokio::spawn(async move { reload(&srv, "SIGHUP").await });
                }
                Sig::Usr1 => crate::logging::reopen(),
                Sig::Quit => return graceful(&srv, &mut sigs, "SIGQUIT").await,
                Sig::Term if srv.config().force_grace_quit => return graceful(&srv, &mut sigs, "SIGTERM (force_grace_quit)").await,
                Sig::Term => return fast(&srv, "SIGTERM").await,
                Sig::Int => return fast(&srv, "SIGINT").await,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    Hup,
    Usr1,
    Quit,
    Term,
    Int,
}

struct Signals {
    hup: Signal,
    usr1: Signal,
    quit: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> Result<Signals, LifecycleError> {
        let s = |k: SignalKind| signal(k).map_err(LifecycleError::Signals);
        Ok(Signals {
            hup: s(SignalKind::hangup())?,
            usr1: s(SignalKind::user_defined1())?,
            quit: s(SignalKind::quit())?,
            term: s(SignalKind::terminate())?,
            int: s(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.hup.recv() => Sig::Hup,
            _ = self.usr1.recv() => Sig::Usr1,
            _ = self.quit.recv() => Sig::Quit,
            _ = self.term.recv() => Sig::Term,
            _ = self.int.recv() => Sig::Int,
        }
    }
}

/// Stops at once; recordings are still finished (bounded).
async fn fast(srv: &Arc<Server>, why: &str) -> Result<(), LifecycleError> {
    info!("{why}: quitting now");
    srv.draining.cancel();
    finish(srv).await;
    Ok(())
}

async fn finish(srv: &Arc<Server>) {
    srv.shutdown.cancel();
    srv.tasks.close();
    if tokio::time::timeout(Duration::from_secs(10), srv.tasks.wait()).await.is_err() {
        warn!("some DVR files did not finish within 10 s");
    }
    // The hooks of what just ended (on_stop, on_unpublish, on_close, on_dvr) go out before exit.
    if !srv.hooks.drained(Duration::from_secs(5)).await {
        warn!("{} hook notifications were still pending after 5 s; not sent", srv.hooks.pending());
    }
}

async fn graceful(srv: &Arc<Server>, sigs: &mut Signals, why: &str) -> Result<(), LifecycleError> {
    let cfg = srv.config();
    srv.draining.cancel();
    info!("{why}: graceful quit; readiness is now false; closing listeners in {} ms", cfg.grace_start_wait.as_millis());
    // A fast-quit signal cuts any wait short; another SIGQUIT changes nothing.
    let force = cfg.force_grace_quit;
    macro_rules! wait_or_cut {
        ($fut:expr) => {{
            let fut = $fut;
            tokio::pin!(fut);
            loop {
                tokio::select! {
                    _ = &mut fut => break false,
                    s = sigs.next() => match s {
                        Sig::Int => break true,
                        Sig::Term if !force => break true,
                        Sig::Usr1 => crate::logging::reopen(),
                        other => info!("graceful quit already under way; {other:?} ignored"),
                    },
                }
            }
        }};
    }
    if wait_or_cut!(tokio::time::sleep(cfg.grace_start_wait)) {
        return fast(srv, "quit signal during grace").await;
    }
    listeners::close_listeners(srv);
    let drained = async {
        let mut step = 1u64;
        loop {
            let n = srv.clients.count();
            if n == 0 {
                return;
            }
            info!("graceful quit: waiting for {n} connections to leave");
            // Poll quickly at first, then every few seconds (SRS logs on a growing step).
            let until = Instant::now() + Duration::from_secs(step.min(5));
            while Instant::now() < until {
                if srv.clients.count() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            step = step.saturating_mul(2);
        }
    };
    if wait_or_cut!(drained) {
        return fast(srv, "quit signal during grace").await;
    }
    info!("graceful quit: all clients left; finishing files");
    finish(srv).await;
    info!("graceful quit: waiting grace_final_wait {} ms", cfg.grace_final_wait.as_millis());
    tokio::time::sleep(cfg.grace_final_wait).await;
    info!("graceful quit done");
    Ok(())
}

fn auto_reload_enabled(cfg: &Config) -> bool {
    cfg.inotify_auto_reload || (cfg.auto_reload_for_docker && in_container())
}

/// SRS does not daemonize inside containers and turns auto reload on there.
pub fn in_container() -> bool {
    Path::new("/.dockerenv").exists()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || std::fs::read_to_string("/proc/1/cgroup")
            .map(|s| s.contains("docker") || s.contains("kubepods"))
            .unwrap_or(false)
}

/// Re-reads the config file and applies it. An invalid config changes nothing (the error says
/// where); a valid one replaces the running config and opens/closes listeners as needed.
pub async fn reload(srv: &Arc<Server>, why: &str) {
    let Some(path) = srv.config_path.clone() else {
        warn!("reload ({why}): running on the built-in or env-only config; nothing to reload");
        return;
    };
    let started = Instant::now();
    srv.applying.store(true, Ordering::Release);
    let new = match Config::load_file(&path, &process_env()) {
        Ok(c) => c,
        Err(e) => {
            srv.applying.store(false, Ordering::Release);
            Events::bump(&srv.events.reload_failures);
            error!("reload ({why}) failed; keeping the running config: {e}");
            return;
        }
    };
    if let Err(e) = srv.token_keys.load_files(&new) {
        srv.applying.store(false, Ordering::Release);
        Events::bump(&srv.events.reload_failures);
        error!("reload ({why}) failed; keeping the running config: {e}");
        return;
    }
    start_jwks_fetchers(srv, &new);
    let old = srv.config();
    let changes = describe_changes(&old, &new);
    for w in &new.warnings {
        warn!("config: {w}");
    }
    srv.set_config(new.clone());
    let listen_result = listeners::apply_listeners(srv, &new).await;
    srv.applying.store(false, Ordering::Release);
    for c in &changes {
        info!("reload: {c}");
    }
    Events::bump(&srv.events.reloads);
    match listen_result {
        Ok(()) => info!("reload ({why}) applied in {} ms: {} changes", started.elapsed().as_millis(), changes.len()),
        Err(e) => error!("reload ({why}) applied, but a listener could not be opened: {e}"),
    }
}

/// Starts a fetcher for every key set URL (`token { jwks_url }`) that has none yet. Each fetches
/// at once, then every [`crate::tokens::JWKS_REFRESH`] (sooner after a failure), until no vhost
/// names its URL any more.
fn start_jwks_fetchers(srv: &Arc<Server>, cfg: &Config) {
    for v in cfg.vhosts.iter().filter(|v| v.access.token.enabled && !v.access.token.jwks_url.is_empty()) {
        let url = v.access.token.jwks_url.clone();
        if !srv.token_keys.claim_fetcher(&url) {
            continue;
        }
        let srv = srv.clone();
        tokio::spawn(async move {
            loop {
                let wait = match crate::tokens::fetch(srv.hooks.http(), &url).await {
                    Ok(keys) => {
                        info!(url, "token: {} public keys fetched", keys.len());
                        srv.token_keys.fetched(&url, keys);
                        crate::tokens::JWKS_REFRESH
                    }
                    Err(e) => {
                        warn!(url, "token: cannot fetch the key set, keeping the keys last fetched: {e}");
                        crate::tokens::JWKS_RETRY
                    }
                };
                tokio::select! {
                    _ = srv.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                let used = srv.config().vhosts.iter().any(|v| v.access.token.enabled && v.access.token.jwks_url == url);
                if !used {
                    srv.token_keys.forget(&url);
                    return;
                }
            }
        });
    }
}

/// One line per change, for the log.
pub fn describe_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let onoff = |b: bool| if b { "on" } else { "off" };
    if old.listen != new.listen {
        let f = |c: &Config| c.listen.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(" ");
        out.push(format!("listen {} => {}", f(old), f(new)));
    }
    let endpoints = [
        ("http_api", (old.http_api.enabled, old.http_api.listen), (new.http_api.enabled, new.http_api.listen)),
        (
            "http_server",
            (old.http_server.enabled, old.http_server.listen),
            (new.http_server.enabled, new.http_server.listen),
        ),
    ];
    for (name, (was_on, was_at), (is_on, is_at)) in endpoints {
        if (was_on, was_at) != (is_on, is_at) {
            out.push(format!("{name} {} {was_at} => {} {is_at}", onoff(was_on), onoff(is_on)));
        }
    }
    if old.max_connections != new.max_connections {
        out.push(format!("max_connections {} => {}", old.max_connections, new.max_connections));
    }
    for v in &new.vhosts {
        match old.vhosts.iter().find(|o| o.name == v.name) {
            None => out.push(format!("vhost {} added", v.name)),
            Some(o) => {
                if o.hls.enabled != v.hls.enabled {
                    out.push(format!("vhost {} hls {} => {}", v.name, onoff(o.hls.enabled), onoff(v.hls.enabled)));
                }
                if o.dvr.enabled != v.dvr.enabled {
                    out.push(format!("vhost {} dvr {} => {}", v.name, onoff(o.dvr.enabled), onoff(v.dvr.enabled)));
                }
                if o.http_remux != v.http_remux {
                    out.push(format!("vhost {} http_remux changed", v.name));
                }
                if o.cluster != v.cluster {
                    out.push(format!("vhost {} cluster changed (applies to new plays and publishes)", v.name));
                }
                if o != v && o.hls == v.hls && o.dvr == v.dvr && o.http_remux == v.http_remux && o.cluster == v.cluster
                {
                    out.push(format!("vhost {} settings changed (apply to new plays and publishes)", v.name));
                }
            }
        }
    }
    for o in &old.vhosts {
        if !new.vhosts.iter().any(|v| v.name == o.name) {
            out.push(format!("vhost {} removed (its current clients stay connected)", o.name));
        }
    }
    out
}

/// Watches the config's directory with inotify and reloads on a change to the config file or
/// on Kubernetes' `..data` symlink swap. Bursts within 100 ms make one reload.
async fn watch_config(srv: Arc<Server>, path: PathBuf) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let mut w = match crate::inotify::Watcher::new(&dir) {
        Ok(w) => w,
        Err(e) => {
            warn!("auto reload disabled: cannot watch {}: {e}", dir.display());
            return;
        }
    };
    info!("auto reload: watching {} for changes to {name} or ..data", dir.display());
    loop {
        let Ok(events) = w.next().await else { return };
        let hit = events.iter().find(|e| e.name == name || e.name == "..data");
        let Some(first) = hit else { continue };
        let seen = Instant::now();
        info!("auto reload: {} changed ({})", first.name, first.what);
        // Debounce: editors and the kubelet make several changes in a row.
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(100), w.next()).await {}
        reload(&srv, "inotify").await;
        info!("auto reload: {} ms from the change to the new config being live", seen.elapsed().as_millis());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_described() {
        let env = Default::default();
        let a = Config::load_str(
            "listen 1935;\nhttp_api { enabled on; }\nhttp_server { enabled on; }\nvhost __defaultVhost__ { hls { enabled on; } }\nvhost b {}\n",
            "a",
            &env,
        )
        .unwrap();
        let b = Config::load_str("listen 1935 1936;\nvhost __defaultVhost__ {}\nvhost c {}\n", "b", &env).unwrap();
        let d = describe_changes(&a, &b);
        assert_eq!(
            d,
            vec![
                "listen 0.0.0.0:1935 => 0.0.0.0:1935 0.0.0.0:1936",
                "http_api on 0.0.0.0:1985 => off 0.0.0.0:1985",
                "http_server on 0.0.0.0:8080 => off 0.0.0.0:8080",
                "vhost __defaultVhost__ hls on => off",
                "vhost c added",
                "vhost b removed (its current clients stay connected)",
            ]
        );
        assert!(describe_changes(&a, &a).is_empty());
    }
}
