//! SRT (`srt_server`): MPEG-TS in and out over libsrt, through the same stream manager and
//! core as RTMP. The stream id says which stream and which way ([`rsrs_codec::srt_streamid`]); a
//! publisher's TS is demuxed into the core's packets ([`rsrs_codec::ts_ingest`]), so it plays
//! over RTMP, HTTP-FLV, HLS and SRT alike; a player gets any stream muxed as TS ([`play`]).

mod play;
pub mod state;

use crate::hub::{Elementary, StreamKey};
use crate::server::Server;
use crate::stats::{ClientDetails, ClientGuard, ClientType};
use crate::streams::{self, PlayDecision, StreamRequest};
use rsrs_codec::srt_streamid::{self as streamid, SrtMode};
use rsrs_codec::ts_ingest::TsIngest;
use rsrs_config::{SrtServer, DEFAULT_VHOST};
use rsrs_srt::{SrtListener, SrtOptions, SrtSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn, Instrument};

/// The socket options of `srt_server`, SRS's defaults included.
pub fn options(c: &SrtServer) -> SrtOptions {
    SrtOptions {
        latency_ms: Some(c.latency_ms),
        rcv_latency_ms: Some(c.recv_latency_ms),
        peer_latency_ms: Some(c.peer_latency_ms),
        maxbw: Some(c.maxbw),
        mss: Some(c.mss),
        connect_timeout_ms: Some(c.connect_timeout_ms),
        peer_idle_timeout_ms: Some(c.peer_idle_timeout_ms),
        sendbuf: Some(c.sendbuf),
        recvbuf: Some(c.recvbuf),
        payload_size: Some(c.payload_size),
        tsbpd: Some(c.tsbpd),
        tlpktdrop: Some(c.tlpktdrop),
        passphrase: (!c.passphrase.is_empty()).then(|| c.passphrase.clone()),
        pbkeylen: c.pbkeylen,
    }
}

/// Accepts SRT callers until aborted (the listener closes with the task).
pub async fn accept_loop(server: Arc<Server>, listener: SrtListener) {
    loop {
        let sock = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("SRT accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = sock.peer();
        let Some(guard) = server.admit(peer, crate::server::ListenerKind::Srt) else {
            continue; // dropped: libsrt closes it
        };
        tokio::spawn(serve(server.clone(), sock, guard));
    }
}

/// Why an SRT session ended other than by the peer leaving.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    StreamId(#[from] streamid::StreamIdError),
    #[error("vhost {0} does not take SRT (`srt {{ enabled on; }}` is not set)")]
    Disabled(String),
    #[error("publish refused: {0}")]
    Publish(#[from] streams::PublishRefused),
    #[error("play refused: {0}")]
    Play(#[from] streams::PlayRefused),
    #[error("the stream is on origin {0}:{1}; SRT has no redirect, play it there")]
    Elsewhere(String, u16),
    #[error("{0}")]
    Srt(#[from] rsrs_srt::SrtError),
    #[error("no media for {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Ingest(#[from] crate::hub::IngestError),
    #[error("kicked")]
    Kicked,
}

async fn serve(server: Arc<Server>, sock: SrtSocket, guard: ClientGuard) {
    let sock = Arc::new(sock);
    let cid = guard.client.id.clone();
    let span = tracing::info_span!("srt", cid = %cid, peer = %sock.peer());
    async move {
        server.srt.lock().insert(cid.clone(), sock.clone());
        let result = session(&server, &sock, &guard).await;
        server.srt.lock().remove(&cid);
        sock.close();
        match result {
            Ok(()) => info!("closed"),
            Err(SessionError::Kicked) => info!("kicked by the API"),
            Err(SessionError::Srt(rsrs_srt::SrtError::Broken { reason, .. })) => info!("closed by peer: {reason}"),
            Err(e @ (SessionError::Publish(_) | SessionError::Play(_) | SessionError::Disabled(_))) => {
                warn!("refused: {e}")
            }
            Err(e) => {
                server.clients.errors.fetch_add(1, Ordering::Relaxed);
                warn!("closed: {e}")
            }
        }
    }
    .instrument(span)
    .await
}

async fn session(server: &Arc<Server>, sock: &Arc<SrtSocket>, guard: &ClientGuard) -> Result<(), SessionError> {
    let cfg = server.config();
    let raw = match sock.stream_id() {
        "" => {
            warn!("the caller sent no stream id; taking SRS's default {}", streamid::DEFAULT_STREAM_ID);
            streamid::DEFAULT_STREAM_ID
        }
        id => id,
    };
    let id = streamid::parse(raw, &cfg.srt_server.default_app)?;
    let asked = id.vhost.clone().unwrap_or_else(|| DEFAULT_VHOST.to_string());
    let Some(vhost) = cfg.vhost_shared(&asked).cloned() else {
        return Err(SessionError::Disabled(asked));
    };
    if !vhost.enabled || !vhost.srt.enabled {
        return Err(SessionError::Disabled(vhost.name.clone()));
    }
    debug!(stream_id = raw, "SRT caller");
    let key = StreamKey { vhost: vhost.name.clone(), app: id.app.clone(), stream: id.stream.clone() };
    let tc_url = format!("srt://{}/{}", asked, id.app);
    let peer_ip = sock.peer().ip();
    let req = StreamRequest {
        vhost: &vhost,
        key,
        param: id.param.clone(),
        client_host: &asked,
        client_id: &guard.client.id,
        tc_url: &tc_url,
        peer_ip,
        reported_ip: peer_ip.to_string(),
        page_url: "",
        connection_hooks: true,
    };
    match id.mode {
        SrtMode::Publish => publish(server, sock, guard, &req).await,
        SrtMode::Play => play::play(server, sock, guard, &req).await,
    }
}

fn details(req: &StreamRequest<'_>, stream_id: &str, kind: ClientType) -> ClientDetails {
    ClientDetails {
        vhost: req.key.vhost.clone(),
        app: req.key.app.clone(),
        stream: req.key.stream.clone(),
        stream_url: req.key.url(),
        stream_id: stream_id.to_string(),
        tc_url: req.tc_url.to_string(),
        page_url: String::new(),
        swf_url: String::new(),
        kind,
    }
}

async fn publish(
    server: &Arc<Server>,
    sock: &SrtSocket,
    guard: &ClientGuard,
    req: &StreamRequest<'_>,
) -> Result<(), SessionError> {
    let streams::Published { source, admitted: _admitted } = Box::pin(streams::publish(server, req)).await?;
    guard.client.set_details(details(req, &source.id, ClientType::SrtPublish));
    info!(stream = %req.key.url(), "SRT publish started");
    let result = ingest(sock, &source, req, guard).await;
    streams::unpublish(server, &source, &guard.client.id);
    info!(stream = %req.key.url(), "SRT publish stopped");
    result
}

/// Reads TS from the caller into the stream until it leaves, goes quiet, or is kicked.
async fn ingest(
    sock: &SrtSocket,
    source: &crate::hub::Source,
    req: &StreamRequest<'_>,
    guard: &ClientGuard,
) -> Result<(), SessionError> {
    let mut ts = TsIngest::new();
    let mut buf = vec![0u8; 1500];
    let mut out = Vec::new();
    let mut reported_errors = 0;
    // One kick future and one idle timer for the whole publish (as RTMP's publisher loop): a
    // caller sends hundreds of packets a second.
    let killed = rsrs_core::kick::Kick::new(&guard.client.kill);
    tokio::pin!(killed);
    let mut idle = rsrs_core::idle::IdleTimer::new(req.vhost.publish.firstpkt_timeout);
    loop {
        let n = tokio::select! {
            biased;
            _ = &mut killed => return Err(SessionError::Kicked),
            n = sock.recv(&mut buf) => n?,
            _ = idle.expired() => return Err(SessionError::Timeout(idle.timeout())),
        };
        idle.touch();
        guard.client.counters.received(n);
        ts.push(&buf[..n], &mut out);
        if !out.is_empty() {
            idle.set_timeout(req.vhost.publish.normal_timeout);
        }
        for p in out.drain(..) {
            source.push_elementary(Elementary::from(p))?;
        }
        let e = ts.ts_errors();
        let errors = e.continuity + e.resyncs + e.dropped_pes + e.transport;
        if errors > reported_errors {
            // The first damage is told at once; after that one line per 100 more errors, so a
            // lossy link does not flood the log.
            warn!(
                stream = %req.key.url(),
                "TS from the caller is damaged: {} continuity breaks, {} resyncs, {} PES dropped, {} transport errors so far",
                e.continuity, e.resyncs, e.dropped_pes, e.transport
            );
            reported_errors = errors + 100;
        }
    }
}

/// The consumer of a play decided here; a stream on another origin of the cluster is refused
/// with where it is (SRT has no redirect).
fn elsewhere(
    d: PlayDecision,
) -> Result<(crate::hub::Consumer, Vec<Arc<crate::media::MediaPacket>>, streams::Admitted), SessionError> {
    match d {
        PlayDecision::Here(c, initial, admitted) => Ok((c, initial, admitted)),
        PlayDecision::Redirect(found) => Err(SessionError::Elsewhere(found.ip, found.port)),
    }
}
