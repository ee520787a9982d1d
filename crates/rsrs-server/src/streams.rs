//! The stream manager: the one place that decides a publish or a play, whatever the protocol.
//!
//! A protocol handler turns its wire into a [`StreamRequest`] and gets back a typed decision:
//! a publish is granted (with the stream's source, its HLS/DVR writers or edge forwarder
//! started) or refused with a reason; a play is served here (with its consumer, an edge pull
//! started if needed), redirected to the origin that has the stream, or refused. The name rule,
//! origin-cluster uniqueness and redirects, edge pulls and forwards, and the start of HLS and DVR
//! are decided here once, so RTMP, HTTP-FLV and the protocols to come behave alike.
//!
//! Access is decided here too, in this order: the `security` rules, `refer`, the signed URL,
//! then the deciding hooks (`on_connect` for a connection's first request, then `on_publish`
//! or `on_play`). A granted request carries [`Notice`]s that send `on_unpublish`/`on_stop` and
//! `on_close` when the protocol drops them.

use crate::access::{self, Refusal};
use crate::cluster::{self, Found, PlayAt};
pub use crate::hooks::Admitted;
use crate::hooks::{HookRefusal, Notice, Publisher};
use crate::hub::{Consumer, Source, StreamBusy, StreamKey};
use crate::media::MediaPacket;
use crate::metrics::events::{Events, RefusalReason};
use crate::names::{self, NameError};
use crate::server::{source_settings, Server};
use rsrs_config::{Action, HookEvent, Vhost};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// A publish or a play, as any protocol states it.
#[derive(Debug, Clone)]
pub struct StreamRequest<'a> {
    pub vhost: &'a Vhost,
    pub key: StreamKey,
    /// The query the client gave (`?token=...`), passed on to edges' upstreams.
    pub param: String,
    /// The host the client asked for (tcUrl host, HTTP Host): SRS's `ip` in cluster discovery.
    pub client_host: &'a str,
    /// The client's id in the registry.
    pub client_id: &'a str,
    /// The tcUrl the client used (or its equivalent), shown by the API.
    pub tc_url: &'a str,
    /// The client's address as its socket shows it: what `security` rules match.
    pub peer_ip: IpAddr,
    /// The address hooks are told (for HTTP, `X-Forwarded-For` or `X-Real-IP` first, as SRS).
    pub reported_ip: String,
    /// The page the player was embedded in (RTMP pageUrl, HTTP Referer): what `refer` checks.
    pub page_url: &'a str,
    /// Whether this is the first request of a connection that has `on_connect`/`on_close`
    /// (RTMP; HTTP requests have neither, as in SRS).
    pub connection_hooks: bool,
}

impl StreamRequest<'_> {
    /// The JSON body SRS sends to hooks about this client and stream.
    fn hook_body(&self, server: &Server, event: HookEvent) -> Value {
        let stream_id = server.hub.get(&self.key).map(|s| s.id.clone()).unwrap_or_default();
        let ids = (server.server_id.as_str(), server.service_id.as_str());
        let mut body = self.publisher().hook_body(ids, event, &self.key, &stream_id);
        body["pageUrl"] = json!(self.page_url);
        body
    }

    /// The client as the writers' hooks (`on_dvr`, `on_hls`) name it.
    fn publisher(&self) -> Publisher {
        Publisher {
            client_id: self.client_id.to_string(),
            ip: self.reported_ip.clone(),
            tc_url: self.tc_url.to_string(),
            param: self.param.clone(),
        }
    }
}

/// Why a client was kept out.
#[derive(Debug, thiserror::Error)]
pub enum AccessRefused {
    #[error("{0}")]
    Rule(#[from] Refusal),
    #[error("{0}")]
    Hook(#[from] HookRefusal),
}

/// The access checks, then the deciding hooks, for `action`; a refusal is counted by reason.
async fn admit(server: &Arc<Server>, req: &StreamRequest<'_>, action: Action) -> Result<Admitted, AccessRefused> {
    let result = check_access(server, req, action).await;
    if let Err(e) = &result {
        let reason = match e {
            AccessRefused::Rule(Refusal::Denied { .. } | Refusal::NotAllowed { .. }) => RefusalReason::Security,
            AccessRefused::Rule(Refusal::Refer { .. }) => RefusalReason::Refer,
            AccessRefused::Rule(Refusal::Token { .. }) => RefusalReason::Token,
            AccessRefused::Hook(_) => RefusalReason::Hook,
        };
        server.events.refused(action == Action::Publish, reason);
    }
    result
}

async fn check_access(
    server: &Arc<Server>,
    req: &StreamRequest<'_>,
    action: Action,
) -> Result<Admitted, AccessRefused> {
    let a = &req.vhost.access;
    access::check_security(&a.security, action, req.peer_ip)?;
    access::check_refer(&a.refer, action, req.page_url)?;
    if a.token.required(action) {
        let keys = server.token_keys.for_token(&a.token);
        access::check_token(&a.token, &keys, action, &req.key.app, &req.key.stream, &req.param, SystemTime::now())?;
    }
    let mut close = Notice::none();
    if req.connection_hooks {
        let urls = a.hooks.urls(HookEvent::Connect);
        if !urls.is_empty() {
            server.hooks.decide(HookEvent::Connect, urls, &req.hook_body(server, HookEvent::Connect)).await?;
        }
        let mut body = req.hook_body(server, HookEvent::Close);
        let client = server.clients.get(req.client_id);
        close = Notice::new(&server.hooks, a.hooks.urls(HookEvent::Close), HookEvent::Close, move || {
            if let Some(c) = client {
                body["send_bytes"] = json!(c.counters.send_bytes.load(std::sync::atomic::Ordering::Relaxed));
                body["recv_bytes"] = json!(c.counters.recv_bytes.load(std::sync::atomic::Ordering::Relaxed));
            }
            body
        });
    }
    let (decide, end) = match action {
        Action::Publish => (HookEvent::Publish, HookEvent::Unpublish),
        Action::Play => (HookEvent::Play, HookEvent::Stop),
    };
    let urls = a.hooks.urls(decide);
    if !urls.is_empty() {
        server.hooks.decide(decide, urls, &req.hook_body(server, decide)).await?;
    }
    let body = req.hook_body(server, end);
    Ok(Admitted { end: Notice::new(&server.hooks, a.hooks.urls(end), end, move || body), close })
}

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishRefused {
    #[error("{0}")]
    BadName(#[from] NameError),
    #[error("stream {stream} is already published on origin {origin}")]
    OnAnotherOrigin { stream: String, origin: String },
    #[error("{0}")]
    Busy(#[from] StreamBusy),
    #[error("{0}")]
    Access(#[from] AccessRefused),
}

/// A granted publish: the stream's source, and the notices of its end.
pub struct Published {
    pub source: Arc<Source>,
    pub admitted: Admitted,
}

/// What a play gets.
pub enum PlayDecision {
    /// Served here: the consumer, the packets to send first (metadata, configurations, the
    /// cached GOP), and the notices of the play's end.
    Here(Consumer, Vec<Arc<MediaPacket>>, Admitted),
    /// Another origin of the cluster has the stream.
    Redirect(Found),
}

/// Why a play was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlayRefused {
    #[error("{0}")]
    BadName(#[from] NameError),
    #[error("no origin of the cluster has the stream")]
    NotInCluster,
    #[error("{0}")]
    Access(#[from] AccessRefused),
}

fn check(req: &StreamRequest<'_>) -> Result<(), NameError> {
    names::check_stream_request(&req.key.app, &req.key.stream, &req.param)
}

/// Decides a publish. When granted, the stream is claimed and everything that follows a
/// publisher (HLS, DVR, or an edge's forward) is started before its first media.
pub async fn publish(server: &Arc<Server>, req: &StreamRequest<'_>) -> Result<Published, PublishRefused> {
    check(req)?;
    let mut admitted = admit(server, req, Action::Publish).await?;
    let vhost = req.vhost;
    let in_cluster = vhost.cluster.origin_cluster && !vhost.cluster.edge;
    let source = match claim(server, req, in_cluster).await {
        Ok(source) => source,
        Err(refused) => {
            // Nothing was published, so nothing is unpublished (SRS: on_unpublish only for a
            // publish it acquired); on_close still goes out with the connection.
            admitted.end.cancel();
            return Err(refused);
        }
    };
    admitted.end.set("stream_id", json!(source.id));
    if in_cluster {
        cluster::settle_publish_race(server, vhost, &req.key, req.client_id);
    }
    if vhost.cluster.edge {
        // An edge serves its publisher locally and forwards it to an origin (no HLS/DVR here).
        crate::edge::start_forward(server, &req.key, vhost, &req.param);
    } else {
        // Writers attach before the first media so they miss nothing.
        let publisher = req.publisher();
        crate::hls::start(server, &req.key, vhost, &publisher);
        crate::dvr::start(server, &req.key, vhost, &publisher);
    }
    Ok(Published { source, admitted })
}

/// Claims the stream for an admitted publisher: unique in the origin cluster, free here.
async fn claim(server: &Arc<Server>, req: &StreamRequest<'_>, in_cluster: bool) -> Result<Arc<Source>, PublishRefused> {
    if in_cluster {
        // A stream is live on one origin of the cluster at a time. Boxed: large and rare.
        if let Some(other) = Box::pin(cluster::discover(server, req.vhost, &req.key, req.client_host)).await {
            return Err(PublishRefused::OnAnotherOrigin { stream: req.key.url(), origin: other.api });
        }
    }
    Ok(server.hub.publish(&req.key, req.client_id, req.tc_url, source_settings(req.vhost))?)
}

/// Ends a publish that [`publish`] granted.
pub fn unpublish(server: &Server, source: &Source, client_id: &str) {
    server.hub.unpublish(source, client_id);
}

/// Admits an HLS viewer: the play checks and `on_play`. HLS is served from files, so there is
/// no consumer; the notices end with the viewer's session.
pub async fn admit_hls(server: &Arc<Server>, req: &StreamRequest<'_>) -> Result<Admitted, PlayRefused> {
    check(req)?;
    Ok(admit(server, req, Action::Play).await?)
}

/// Decides a play: here (attached, with an edge pull started where the vhost is an edge),
/// elsewhere in the origin cluster, or refused.
pub async fn play(server: &Arc<Server>, req: &StreamRequest<'_>) -> Result<PlayDecision, PlayRefused> {
    check(req)?;
    let admitted = admit(server, req, Action::Play).await?;
    match Box::pin(cluster::locate_play(server, req.vhost, &req.key, req.client_host)).await {
        PlayAt::Here => {}
        PlayAt::Peer(found) => {
            Events::bump(&server.events.cluster_redirects);
            return Ok(PlayDecision::Redirect(found));
        }
        PlayAt::Nowhere => return Err(PlayRefused::NotInCluster),
    }
    let (consumer, initial) = Consumer::attach(&server.hub, &req.key, source_settings(req.vhost));
    crate::edge::ensure_pull(server, &req.key, req.vhost, &req.param);
    Ok(PlayDecision::Here(consumer, initial, admitted))
}
