//! The stream manager: the one place that decides a publish or a play, whatever the protocol.
//!
//! A protocol handler turns its wire into a [`StreamRequest`] and gets back a typed decision:
//! a publish is granted (with the stream's source, its HLS/DVR writers or edge forwarder
//! started) or refused with a reason; a play is served here (with its consumer, an edge pull
//! started if needed), redirected to the origin that has the stream, or refused. The name rule,
//! origin-cluster uniqueness and redirects, edge pulls and forwards, and the start of HLS and DVR
//! are decided here once, so RTMP, HTTP-FLV and the protocols to come behave alike.

use crate::cluster::{self, Found, PlayAt};
use crate::hub::{Consumer, Source, StreamBusy, StreamKey};
use crate::media::MediaPacket;
use crate::names::{self, NameError};
use crate::server::{source_settings, Server};
use rsrs_config::Vhost;
use std::sync::Arc;

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
}

/// What a play gets.
pub enum PlayDecision {
    /// Served here: the consumer, and the frames to send first (metadata, sequence headers, the
    /// cached GOP).
    Here(Consumer, Vec<Arc<MediaPacket>>),
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
}

fn check(req: &StreamRequest<'_>) -> Result<(), NameError> {
    names::check_stream_request(&req.key.app, &req.key.stream, &req.param)
}

/// Decides a publish. When granted, the stream is claimed and everything that follows a
/// publisher (HLS, DVR, or an edge's forward) is started before its first media.
pub async fn publish(server: &Arc<Server>, req: &StreamRequest<'_>) -> Result<Arc<Source>, PublishRefused> {
    check(req)?;
    let vhost = req.vhost;
    let in_cluster = vhost.cluster.origin_cluster && !vhost.cluster.edge;
    if in_cluster {
        // A stream is live on one origin of the cluster at a time. Boxed: large and rare.
        if let Some(other) = Box::pin(cluster::discover(server, vhost, &req.key, req.client_host)).await {
            return Err(PublishRefused::OnAnotherOrigin { stream: req.key.url(), origin: other.api });
        }
    }
    let source = server.hub.publish(&req.key, req.client_id, req.tc_url, source_settings(vhost))?;
    if in_cluster {
        cluster::settle_publish_race(server, vhost, &req.key, req.client_id);
    }
    if vhost.cluster.edge {
        // An edge serves its publisher locally and forwards it to an origin (no HLS/DVR here).
        crate::edge::start_forward(server, &req.key, vhost, &req.param);
    } else {
        // Writers attach before the first media so they miss nothing.
        crate::hls::start(server, &req.key, vhost);
        crate::dvr::start(server, &req.key, vhost);
    }
    Ok(source)
}

/// Ends a publish that [`publish`] granted.
pub fn unpublish(server: &Server, source: &Source, client_id: &str) {
    server.hub.unpublish(source, client_id);
}

/// Decides a play: here (attached, with an edge pull started where the vhost is an edge),
/// elsewhere in the origin cluster, or refused.
pub async fn play(server: &Arc<Server>, req: &StreamRequest<'_>) -> Result<PlayDecision, PlayRefused> {
    check(req)?;
    match Box::pin(cluster::locate_play(server, req.vhost, &req.key, req.client_host)).await {
        PlayAt::Here => {}
        PlayAt::Peer(found) => return Ok(PlayDecision::Redirect(found)),
        PlayAt::Nowhere => return Err(PlayRefused::NotInCluster),
    }
    let (consumer, initial) = Consumer::attach(&server.hub, &req.key, source_settings(req.vhost));
    crate::edge::ensure_pull(server, &req.key, req.vhost, &req.param);
    Ok(PlayDecision::Here(consumer, initial))
}
