//! Edge cluster (`cluster { mode remote; origin A B ...; }`).
//!
//! Play: the first player of a stream starts one upstream pull, shared by every later player of
//! that stream on this edge (they attach to the same local source). The pull holds the local
//! source across reconnects, so when an origin dies players are not told the stream ended: the
//! edge moves on to the next origin (names resolved again on every attempt, SRS's 302 redirect
//! followed) and media resumes. The pull stops a few seconds after the last player leaves, and
//! gives up, telling its players, when no origin has delivered anything for a bounded time.
//!
//! Publish: a publisher on an edge is served locally (edge players see it at once) and forwarded
//! to an origin over one upstream connection, which also fails over between origins.

pub mod state;

use crate::hub::{Consumer, ConsumerClock, PublisherKind, StreamKey};
use crate::rtmp::client::{check_status, command, ClientError, RtmpClient};
use crate::server::{source_settings, Server};
use rsrs_codec::rtmp::message as msg;
use rsrs_config::Vhost;
use rsrs_core::shared_framing::SharedFraming;
pub use state::{EdgeInfo, EdgeMode, EdgeRegistry, EdgeState};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// SRS's edge timeouts: TCP connect, handshake/connect I/O, media receive.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pull outlives its last player (a player that reconnects finds it still warm).
const LINGER: Duration = Duration::from_secs(3);
/// With no media from any origin for this long, the pull gives up and its players are told.
const GIVE_UP: Duration = Duration::from_secs(20);
/// Most redirects followed in a row.
const MAX_REDIRECTS: u32 = 3;

/// Where to connect for one attempt: the configured origins in order, then round-robin; a
/// redirect target once.
struct Origins {
    list: Vec<String>,
    next: usize,
    redirect: Option<String>,
}

impl Origins {
    fn new(list: &[String]) -> Origins {
        Origins { list: list.to_vec(), next: 0, redirect: None }
    }

    fn pick(&mut self) -> String {
        if let Some(r) = self.redirect.take() {
            return r;
        }
        let o = self.list[self.next % self.list.len()].clone();
        self.next += 1;
        o
    }
}

/// FNV-1a: a hash that is the same in every process and release.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// Resolves `host[:port]` (port 1935 by default) afresh: a Kubernetes Service name may point
/// elsewhere after a restart.
async fn resolve(origin: &str) -> Result<SocketAddr, String> {
    let with_port = if origin.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !origin.ends_with(']')
    {
        origin.to_string()
    } else {
        format!("{origin}:1935")
    };
    let mut addrs =
        tokio::net::lookup_host(&with_port).await.map_err(|e| format!("cannot resolve {with_port}: {e}"))?;
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter().find(|a| a.is_ipv4()).or(all.first()).copied().ok_or_else(|| format!("{with_port} resolves to nothing"))
}

/// `host:port` of an `rtmp://host:port/...` URL (a redirect target).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    Some(rest.split('/').next()?.to_string()).filter(|h| !h.is_empty())
}

/// The tcUrl presented upstream: the vhost's name, or the origin's address for the default vhost.
fn upstream_tc_url(vhost: &Vhost, addr: SocketAddr, app: &str) -> String {
    if vhost.name == rsrs_config::DEFAULT_VHOST {
        format!("rtmp://{addr}/{app}")
    } else {
        format!("rtmp://{}/{app}", vhost.name)
    }
}

fn upstream_stream(key: &StreamKey, param: &str) -> String {
    let mut s = format!("{}{}", key.stream, param);
    if key.vhost != rsrs_config::DEFAULT_VHOST {
        s.push(if s.contains('?') { '&' } else { '?' });
        s.push_str(&format!("vhost={}", key.vhost));
    }
    s
}

/// Called when a player attaches on an edge vhost: starts the shared pull if none runs and the
/// stream is not published on this edge.
pub fn ensure_pull(server: &Arc<Server>, key: &StreamKey, vhost: &Vhost, param: &str) {
    if !vhost.cluster.edge {
        return;
    }
    if server.hub.get(key).is_some_and(|s| s.publisher().is_some()) {
        return;
    }
    let Some(info) = server.edges.claim(key, EdgeMode::Pull) else { return };
    let (server, key, vhost, param) = (server.clone(), key.clone(), vhost.clone(), param.to_string());
    tokio::spawn(async move {
        pull(&server, &key, &vhost, &param, &info).await;
        server.edges.release(&key);
    });
}

async fn pull(server: &Arc<Server>, key: &StreamKey, vhost: &Vhost, param: &str, info: &EdgeInfo) {
    let id = format!("edge-pull-{}", crate::ids::client_id());
    let tc_url = format!("rtmp://{}/{}", vhost.name, key.app);
    let source = match server.hub.publish_as(key, &id, PublisherKind::EdgePull, &tc_url, source_settings(vhost)) {
        Ok(s) => s,
        Err(_) => return, // published here meanwhile: nothing to pull
    };
    let url = key.url();
    info!(stream = %url, "edge: pulling from origins {:?}", vhost.cluster.origins);
    let mut origins = Origins::new(&vhost.cluster.origins);
    let mut last_media = Instant::now();
    let mut idle_since: Option<Instant> = None;
    let mut redirects = 0;
    let mut failures = 0usize;
    let gave_up = loop {
        if source.consumers.load(Ordering::Acquire) == 0 {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= LINGER {
                break false;
            }
        } else {
            idle_since = None;
        }
        if last_media.elapsed() >= GIVE_UP {
            break true;
        }
        let origin = origins.pick();
        info.set(&origin, EdgeState::Connecting);
        match pull_once(&origin, key, vhost, param, &source, info, &mut last_media).await {
            Ok(PullEnd::Idle) => break false,
            Ok(PullEnd::Closed) => {
                warn!(stream = %url, origin = %origin, "edge: origin closed the stream; trying the next origin");
                redirects = 0;
            }
            Err(ClientError::Redirect(to)) if redirects < MAX_REDIRECTS => {
                redirects += 1;
                info!(stream = %url, origin = %origin, "edge: redirected to {to}");
                origins.redirect = url_host(&to);
                continue;
            }
            Err(e) => {
                info.failed();
                warn!(stream = %url, origin = %origin, "edge: upstream failed: {e}");
                redirects = 0;
                failures += 1;
                // A whole round failed: back off a little before the next (bounded at 3 s, as SRS).
                if failures.is_multiple_of(origins.list.len()) {
                    let backoff = Duration::from_millis((250u64 << (failures / origins.list.len()).min(4)).min(3000));
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    };
    if gave_up {
        let why = format!("no origin delivered the stream for {} s", GIVE_UP.as_secs());
        warn!(stream = %url, "edge: giving up: {why}");
        source.fail(&why);
    } else {
        info!(stream = %url, "edge: pull stopped: last player left");
    }
    server.hub.unpublish(&source, &id);
}

enum PullEnd {
    /// No players for LINGER.
    Idle,
    /// The upstream ended the stream or the connection.
    Closed,
}

async fn pull_once(
    origin: &str,
    key: &StreamKey,
    vhost: &Vhost,
    param: &str,
    source: &crate::hub::Source,
    info: &EdgeInfo,
    last_media: &mut Instant,
) -> Result<PullEnd, ClientError> {
    let addr = resolve(origin).await.map_err(ClientError::Refused)?;
    let mut c =
        RtmpClient::connect(addr, &upstream_tc_url(vhost, addr, &key.app), &key.app, CONNECT_TIMEOUT, IO_TIMEOUT)
            .await?;
    c.play(&upstream_stream(key, param)).await?;
    info.set(origin, EdgeState::Connected);
    let mut got_media = false;
    let mut idle_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            r = tokio::time::timeout(RECV_TIMEOUT, c.next()) => {
                let m = match r {
                    Ok(Ok(m)) => m,
                    Ok(Err(ClientError::Io(crate::rtmp::io::IoError::Closed))) => return Ok(PullEnd::Closed),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(ClientError::Timeout("waiting for media from the origin")),
                };
                match m.type_id {
                    msg::AUDIO | msg::VIDEO | msg::AMF0_DATA | msg::AMF3_DATA | msg::AGGREGATE => {
                        if !got_media {
                            // A new upstream starts a new cache: old GOP/headers must not mix in.
                            source.reset_cache();
                            got_media = true;
                            info!(stream = %key.url(), origin = %origin, "edge: receiving from origin");
                        }
                        *last_media = Instant::now();
                        // Metadata already carries the origin's identity; keep it as it came.
                        crate::rtmp::ingest::ingest(source, &m, None)
                            .map_err(|e| ClientError::Refused(format!("media from the origin refused: {e}")))?;
                    }
                    _ => {
                        if let Some(cmd) = command(&m) {
                            check_status(&cmd)?;
                            if matches!(crate::rtmp::client::status_code(&cmd), Some("NetStream.Play.UnpublishNotify" | "NetStream.Play.Stop")) {
                                return Ok(PullEnd::Closed);
                            }
                        }
                    }
                }
            }
            _ = tick.tick() => {
                if source.consumers.load(Ordering::Acquire) == 0 {
                    if idle_since.get_or_insert_with(Instant::now).elapsed() >= LINGER {
                        return Ok(PullEnd::Idle);
                    }
                } else {
                    idle_since = None;
                }
            }
        }
    }
}

/// `token_traverse on`: before serving an edge client, connect to the first reachable origin
/// (in config order) with the client's tcUrl and connect arguments; the client is admitted only
/// if that origin accepts the connection (so the origin's authentication applies at the edge).
pub async fn traverse_token(
    vhost: &Vhost,
    tc_url: &str,
    app: &str,
    args: &rsrs_codec::amf0::Amf0Value,
) -> Result<(), TraverseError> {
    for origin in &vhost.cluster.origins {
        let Ok(addr) = resolve(origin).await else { continue };
        // The first origin that accepts TCP decides; unreachable ones are skipped.
        match RtmpClient::connect_with(addr, tc_url, app, Some(args), Duration::from_secs(3), IO_TIMEOUT).await {
            Ok(_) => return Ok(()),
            Err(ClientError::Connect(..)) | Err(ClientError::Timeout("connecting")) => continue,
            Err(err) => return Err(TraverseError::Refused { origin: origin.clone(), err }),
        }
    }
    Err(TraverseError::NoOrigin)
}

/// Why `token_traverse` did not admit a client.
#[derive(Debug, thiserror::Error)]
pub enum TraverseError {
    #[error("origin {origin} refused the client's connect: {err}")]
    Refused { origin: String, err: ClientError },
    #[error("token_traverse: no origin reachable")]
    NoOrigin,
}

/// Called when a publisher starts on an edge vhost: forwards the stream to an origin.
pub fn start_forward(server: &Arc<Server>, key: &StreamKey, vhost: &Vhost, param: &str) {
    if !vhost.cluster.edge {
        return;
    }
    let Some(info) = server.edges.claim(key, EdgeMode::Forward) else { return };
    let (consumer, initial) = Consumer::attach(&server.hub, key, source_settings(vhost));
    let (server, key, vhost, param) = (server.clone(), key.clone(), vhost.clone(), param.to_string());
    tokio::spawn(async move {
        forward(&key, &vhost, &param, &info, consumer, initial).await;
        server.edges.release(&key);
    });
}

async fn forward(
    key: &StreamKey,
    vhost: &Vhost,
    param: &str,
    info: &EdgeInfo,
    mut consumer: Consumer,
    initial: Vec<Arc<crate::media::MediaPacket>>,
) {
    let url = key.url();
    let mut origins = Origins::new(&vhost.cluster.origins);
    // Spread publishers over the origins: each stream starts at its own place in the list
    // (deterministic, so a republish of the same stream goes to the same origin first).
    origins.next = stable_hash(&url) as usize % origins.list.len();
    let mut batch = initial;
    let mut failures = 0usize;
    loop {
        let origin = origins.pick();
        info.set(&origin, EdgeState::Connecting);
        let r = async {
            let addr = resolve(&origin).await.map_err(ClientError::Refused)?;
            let mut c = RtmpClient::connect(
                addr,
                &upstream_tc_url(vhost, addr, &key.app),
                &key.app,
                CONNECT_TIMEOUT,
                IO_TIMEOUT,
            )
            .await?;
            c.publish(&upstream_stream(key, param), IO_TIMEOUT).await?;
            info.set(&origin, EdgeState::Connected);
            info!(stream = %url, origin = %origin, "edge: forwarding to origin");
            let mut clock = ConsumerClock::default();
            let sid = c.stream_id;
            loop {
                if !batch.is_empty() {
                    c.writer.send_frames(&batch, &mut clock, &SharedFraming::default(), sid).await?;
                    batch.clear();
                }
                tokio::select! {
                    sig = consumer.recv(&mut batch, 256) => if sig.is_some() {
                        if !batch.is_empty() {
                            c.writer.send_frames(&batch, &mut clock, &SharedFraming::default(), sid).await?;
                        }
                        return Ok::<bool, ClientError>(true);
                    },
                    // Read (and answer) what the origin sends; an error status ends this upstream.
                    m = c.next() => {
                        if let Some(cmd) = command(&m?) {
                            check_status(&cmd)?;
                        }
                    }
                }
            }
        }
        .await;
        match r {
            Ok(_) => {
                info!(stream = %url, "edge: forwarding finished (publisher left)");
                return;
            }
            Err(e) => {
                info.failed();
                warn!(stream = %url, origin = %origin, "edge: forwarding failed: {e}; trying the next origin");
                failures += 1;
                if failures.is_multiple_of(origins.list.len()) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                if consumer.source().publisher().is_none() {
                    return;
                }
                // Resume on the next origin from a keyframe, headers first.
                batch.clear();
                consumer.resume(&mut batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_order_then_round_robin_and_redirect_once() {
        let mut o = Origins::new(&["a".into(), "b:1936".into()]);
        assert_eq!(o.pick(), "a");
        o.redirect = Some("c:1940".into());
        assert_eq!(o.pick(), "c:1940");
        assert_eq!(o.pick(), "b:1936");
        assert_eq!(o.pick(), "a");
    }

    #[tokio::test]
    async fn resolves_names_and_default_port() {
        assert_eq!(resolve("127.0.0.1").await.unwrap().to_string(), "127.0.0.1:1935");
        assert_eq!(resolve("localhost:1936").await.unwrap().port(), 1936);
        assert!(resolve("no-such-host.invalid").await.is_err());
    }

    #[test]
    fn publishers_spread_over_origins() {
        let starts: std::collections::HashSet<usize> =
            (0..30).map(|i| stable_hash(&format!("/live/s{i}")) as usize % 3).collect();
        assert_eq!(starts.len(), 3, "30 streams use all three origins");
        assert_eq!(stable_hash("/live/a"), stable_hash("/live/a"));
    }

    #[test]
    fn upstream_urls() {
        let k = StreamKey { vhost: "__defaultVhost__".into(), app: "live".into(), stream: "s".into() };
        assert_eq!(upstream_stream(&k, "?token=1"), "s?token=1");
        let k = StreamKey { vhost: "v.example".into(), app: "live".into(), stream: "s".into() };
        assert_eq!(upstream_stream(&k, ""), "s?vhost=v.example");
        assert_eq!(url_host("rtmp://10.1.1.1:1935/live/s").as_deref(), Some("10.1.1.1:1935"));
    }
}
