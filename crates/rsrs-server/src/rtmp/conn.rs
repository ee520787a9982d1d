//! One RTMP connection on the server side: handshake, `connect`, identification (publish or
//! play, the FMLE/flash/Haivision command sequences), then the publish or play loop.

use super::ingest;
use super::io::{IoError, RtmpReader, RtmpWriter};
use crate::hub::{ConsumerClock, IngestError, StreamKey};
use crate::media::{Codec, MediaPacket};
use crate::names;
use crate::server::Server;
use crate::stats::{ClientDetails, ClientGuard, ClientType};
use crate::streams::{self, PlayDecision};
use rsrs_codec::amf0::Amf0Value;
use rsrs_codec::rtmp::handshake;
use rsrs_codec::rtmp::message::{self as msg, Command, DEFAULT_STREAM_ID};
use rsrs_codec::rtmp::Message;
use rsrs_config::Vhost;
use rsrs_core::player::{self, AfterUnpublish, ClientSays, PlayEnd, PlayerWire};
use rsrs_core::shared_framing::SharedFraming;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn, Instrument};

/// Time allowed for the handshake and for a client to say what it wants (SRS: 30 s).
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a connection may idle between play/publish sessions (SRS: 3 min).
const REIDENTIFY_TIMEOUT: Duration = Duration::from_secs(180);
/// A player whose socket accepts nothing for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Io(#[from] IoError),
    #[error("socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("handshake: {0}")]
    Handshake(#[from] handshake::HandshakeError),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Protocol(String),
    #[error("kicked by the API")]
    Kicked,
    /// The publisher broke a bound of its stream (frozen timestamps, oversized buffering).
    #[error("publisher dropped: {0}")]
    Ingest(#[from] IngestError),
    /// The play's requested duration (ms) was sent; a normal end.
    #[error("played the requested {0} ms")]
    DurationReached(u32),
    /// The player was sent elsewhere (origin cluster); a normal end.
    #[error("redirected to {0} (RTMP 302)")]
    Redirected(String),
}

impl From<tokio::time::error::Elapsed> for SessionError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        SessionError::Timeout("waiting for the peer")
    }
}

/// Serves one accepted RTMP connection until it ends. Logs why it ended.
pub async fn serve(server: Arc<Server>, sock: TcpStream, peer: SocketAddr, guard: ClientGuard) {
    let cid = guard.client.id.clone();
    let span = tracing::info_span!("rtmp", cid = %cid, peer = %peer);
    async move {
        debug!("accepted");
        match session(&server, sock, peer, &guard).await {
            Ok(()) | Err(SessionError::Io(IoError::Closed)) => info!("closed"),
            Err(SessionError::Kicked) => info!("kicked by the API"),
            Err(e @ (SessionError::Redirected(_) | SessionError::DurationReached(_))) => info!("closed: {e}"),
            Err(SessionError::Socket(e) | SessionError::Io(IoError::Io(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                info!("closed by peer: {e}")
            }
            Err(e) => {
                server.clients.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                warn!("closed: {e}")
            }
        }
    }
    .instrument(span)
    .await
}

/// What the client sent in `connect`.
struct ConnectInfo {
    tc_url: String,
    app: String,
    /// Query carried on the app or tcUrl (`?token=...`), applied to the stream.
    param: String,
    vhost: Arc<Vhost>,
    page_url: String,
    swf_url: String,
    /// An Enhanced RTMP client that said it takes Opus (`fourCcList` or `audioFourCcInfoMap`
    /// naming `Opus` or `*`).
    plays_opus: bool,
}

/// Whether a `connect` object announces Opus (Enhanced RTMP v1's list or v2's audio map).
fn announces_opus(obj: &Amf0Value) -> bool {
    let named = |v: &str| v == "Opus" || v == "*";
    let in_list = matches!(
        obj.get("fourCcList"),
        Some(Amf0Value::StrictArray(l)) if l.iter().any(|x| x.as_str().is_some_and(named))
    );
    let in_map = obj.get("audioFourCcInfoMap").is_some_and(|m| m.get("Opus").is_some() || m.get("*").is_some());
    in_list || in_map
}

async fn session(
    server: &Arc<Server>,
    mut sock: TcpStream,
    peer: SocketAddr,
    guard: &ClientGuard,
) -> Result<(), SessionError> {
    let kill = guard.client.kill.clone();
    let counters = guard.client.counters.clone();
    let local = sock.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let _ = sock.set_nodelay(true);

    // Handshake: C0C1 -> S0S1S2 -> C2.
    let mut c0c1 = vec![0u8; handshake::C0C1_LEN];
    tokio::time::timeout(IDENTIFY_TIMEOUT, sock.read_exact(&mut c0c1))
        .await
        .map_err(|_| SessionError::Timeout("in handshake"))??;
    let epoch =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0);
    let (s0s1s2, kind) = handshake::server_response(&c0c1, epoch, &mut rand::thread_rng())?;
    sock.write_all(&s0s1s2).await?;
    let mut c2 = vec![0u8; handshake::PACKET_LEN];
    tokio::time::timeout(IDENTIFY_TIMEOUT, sock.read_exact(&mut c2))
        .await
        .map_err(|_| SessionError::Timeout("in handshake"))??;
    counters.received(c0c1.len() + c2.len());
    counters.sent(s0s1s2.len());
    debug!(?kind, "handshake done");

    let (rd, wr) = sock.into_split();
    let mut reader = RtmpReader::new(rd, &[], counters.clone());
    let mut writer = RtmpWriter::new(wr, counters);

    // connect
    let connect = loop {
        let m = read_timed(&mut reader, &kill, IDENTIFY_TIMEOUT, "waiting for connect").await?;
        if let Some(cmd) = parse_command(&m) {
            if cmd.name == "connect" {
                break cmd;
            }
            debug!(command = %names::Escaped(&cmd.name), "ignored before connect");
        }
    };
    let info = match parse_connect(server, &connect) {
        Ok(info) => info,
        Err(e) => {
            // Tell the client why (ffmpeg prints it), then close.
            let _ = writer.send(&[msg::connect_rejected(connect.transaction_id, &e.to_string())]).await;
            return Err(e);
        }
    };
    let v = &info.vhost;
    if v.cluster.edge && v.cluster.token_traverse {
        let obj = connect.object().cloned().unwrap_or(Amf0Value::Null);
        // Boxed, as the cluster lookups below: these futures are large and rarely run, and inline
        // they would enlarge every RTMP session's task (47 -> 31 KiB per player at 1000 players).
        Box::pin(crate::edge::traverse_token(v, &info.tc_url, &info.app, &obj))
            .await
            .map_err(|why| SessionError::Protocol(format!("connect refused: {why}")))?;
    }
    let mut out = Vec::new();
    if v.out_ack_size > 0 {
        out.push(msg::window_ack_size(v.out_ack_size));
    }
    if v.in_ack_size > 0 {
        reader.set_ack_window(v.in_ack_size);
    }
    out.push(msg::set_peer_bandwidth(2_500_000, 2));
    out.push(msg::set_chunk_size(v.chunk_size));
    let oe = connect.object().and_then(|o| o.get("objectEncoding")).and_then(|x| x.as_number()).unwrap_or(0.0);
    let mut result = msg::connect_result(&server.identity, connect.transaction_id, oe, &local, &guard.client.id);
    let enhanced = ["fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap"];
    if enhanced.iter().any(|k| connect.object().and_then(|o| o.get(k)).is_some()) {
        // An Enhanced RTMP client: say which codecs it may send and receive here.
        result = msg::with_enhanced_rtmp_caps(result);
    }
    out.push(result);
    out.push(msg::on_bw_done());
    writer.send(&out).await?;
    info!(tc_url = %info.tc_url, vhost = %v.name, app = %info.app, "connected");

    // Identify, then publish or play; a client may do several in turn on one connection.
    let mut timeout = IDENTIFY_TIMEOUT;
    let mut fmle = false;
    loop {
        let m = read_timed(&mut reader, &kill, timeout, "waiting for play or publish").await?;
        flush_owed(&mut reader, &mut writer).await?;
        let Some(cmd) = parse_command(&m) else {
            continue;
        };
        let tid = cmd.transaction_id;
        match cmd.name.as_str() {
            "releaseStream" | "FCPublish" => {
                fmle = true;
                writer.send(&[msg::result(tid, Amf0Value::Undefined)]).await?;
            }
            "createStream" => writer.send(&[msg::result(tid, Amf0Value::Number(DEFAULT_STREAM_ID as f64))]).await?,
            "publish" => {
                let kind = if fmle { ClientType::FmlePublish } else { ClientType::FlashPublish };
                publish(server, &info, &cmd, kind, guard, &mut reader, &mut writer, peer).await?;
                timeout = REIDENTIFY_TIMEOUT;
                fmle = false;
            }
            "play" => {
                play(server, &info, &cmd, guard, &mut reader, &mut writer).await?;
                timeout = REIDENTIFY_TIMEOUT;
            }
            "FCUnpublish" | "deleteStream" | "closeStream" => {}
            // ffmpeg asks before playing; a live stream has no length.
            "getStreamLength" => writer.send(&[msg::result(tid, Amf0Value::Number(0.0))]).await?,
            _ => {
                if tid > 0.0 {
                    writer.send(&[msg::result(tid, Amf0Value::Null)]).await?;
                }
            }
        }
    }
}

async fn read_timed(
    reader: &mut RtmpReader,
    kill: &tokio_util::sync::CancellationToken,
    timeout: Duration,
    what: &'static str,
) -> Result<Message, SessionError> {
    tokio::select! {
        _ = kill.cancelled() => Err(SessionError::Kicked),
        r = tokio::time::timeout(timeout, reader.next()) => match r {
            Ok(m) => Ok(m?),
            Err(_) => Err(SessionError::Timeout(what)),
        },
    }
}

async fn flush_owed(reader: &mut RtmpReader, writer: &mut RtmpWriter) -> Result<(), SessionError> {
    if !reader.owed.is_empty() {
        let owed = std::mem::take(&mut reader.owed);
        writer.send(&owed).await?;
    }
    Ok(())
}

fn parse_command(m: &Message) -> Option<Command> {
    if m.type_id != msg::AMF0_COMMAND && m.type_id != msg::AMF3_COMMAND {
        return None;
    }
    match Command::parse(m.type_id, &m.payload) {
        Ok(c) => Some(c),
        Err(e) => {
            debug!("undecodable command ignored: {e}");
            None
        }
    }
}

/// Splits `rtmp://host[:port]/app[?query]` into (host, app, query-with-`?`).
pub fn split_tc_url(tc_url: &str) -> (String, String, String) {
    let rest = tc_url.split_once("://").map(|x| x.1).unwrap_or(tc_url);
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = if let Some(h) = hostport.strip_prefix('[') {
        h.split_once(']').map(|x| x.0).unwrap_or(h).to_string()
    } else {
        hostport.rsplit_once(':').map(|x| x.0).unwrap_or(hostport).to_string()
    };
    let (app, query) = match path.split_once('?') {
        Some((a, q)) => (a.to_string(), format!("?{q}")),
        None => (path.to_string(), String::new()),
    };
    (host, app.trim_end_matches('/').to_string(), query)
}

/// Looks up `vhost=` or `domain=` in a query string.
fn query_vhost(query: &str) -> Option<String> {
    query.trim_start_matches('?').split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "vhost" || k == "domain").then(|| v.to_string()).filter(|v| !v.is_empty())
    })
}

/// A client's name or text refused by [`crate::names`], for the reply and the log.
fn refused(context: &str, e: names::NameError) -> SessionError {
    SessionError::Protocol(format!("{context} refused: {e}"))
}

fn parse_connect(server: &Server, cmd: &Command) -> Result<ConnectInfo, SessionError> {
    let obj = cmd.object().ok_or_else(|| SessionError::Protocol("connect without a command object".into()))?;
    let s = |k: &str| obj.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let tc_url = s("tcUrl");
    if tc_url.is_empty() {
        return Err(SessionError::Protocol("connect has no tcUrl".into()));
    }
    // Checked before anything is logged or looked up: these are the client's words.
    for (what, text) in [("tcUrl", &tc_url), ("pageUrl", &s("pageUrl")), ("swfUrl", &s("swfUrl")), ("app", &s("app"))] {
        names::check_text(what, text).map_err(|e| refused("connect", e))?;
    }
    let (host, url_app, url_query) = split_tc_url(&tc_url);
    let mut app = s("app");
    if app.is_empty() {
        app = url_app;
    }
    let mut param = url_query;
    if let Some((a, q)) = app.clone().split_once('?') {
        app = a.to_string();
        param = format!("?{q}");
    }
    let app = app.trim_end_matches('/').replace("/_definst_", "");
    let app = if app.is_empty() { "__defaultApp__".to_string() } else { app };
    names::check_app(&app).map_err(|e| refused("connect", e))?;
    let vhost_name = query_vhost(&param).unwrap_or(host);
    if !vhost_name.is_empty() {
        // (An empty host falls back to the default vhost, as before.)
        names::check_vhost(&vhost_name).map_err(|e| refused("connect", e))?;
    }
    let cfg = server.config();
    let vhost = cfg
        .vhost_shared(&vhost_name)
        .ok_or_else(|| SessionError::Protocol(format!("no vhost `{vhost_name}` and no __defaultVhost__ configured")))?;
    if !vhost.enabled {
        return Err(SessionError::Protocol(format!("vhost `{}` is disabled", vhost.name)));
    }
    Ok(ConnectInfo {
        tc_url,
        app,
        param,
        vhost: vhost.clone(),
        page_url: s("pageUrl"),
        swf_url: s("swfUrl"),
        plays_opus: announces_opus(obj),
    })
}

/// Normalizes a play/publish stream name: strips the query and any extension, as SRS does.
pub fn parse_stream_name(raw: &str) -> (String, String) {
    let (name, query) = match raw.split_once('?') {
        Some((n, q)) => (n, format!("?{q}")),
        None => (raw, String::new()),
    };
    let name = name.trim_matches('/');
    let name = match name.rsplit_once('.') {
        Some((base, ext)) if !base.is_empty() && !ext.is_empty() && !ext.contains('/') => base,
        _ => name,
    };
    (name.to_string(), query)
}

/// What a `publish` or `play` asks for, for the stream manager (which checks the names).
fn stream_request<'a>(
    info: &'a ConnectInfo,
    cmd: &Command,
    client_id: &'a str,
    client_host: &'a str,
    peer_ip: std::net::IpAddr,
) -> streams::StreamRequest<'a> {
    let raw = cmd.arg(0).and_then(|v| v.as_str()).unwrap_or("");
    let (stream, query) = parse_stream_name(raw);
    let param = if query.is_empty() { info.param.clone() } else { query };
    streams::StreamRequest {
        vhost: &info.vhost,
        key: StreamKey { vhost: info.vhost.name.clone(), app: info.app.clone(), stream },
        param,
        client_host,
        client_id,
        tc_url: &info.tc_url,
        peer_ip,
        reported_ip: peer_ip.to_string(),
        page_url: &info.page_url,
        // One publish or play per RTMP connection: its on_connect and on_close go with it.
        connection_hooks: true,
    }
}

/// Refuses a `publish` or `play` with an error status (`code`) saying why, then ends the session.
/// The stream's name is shown escaped: it may be what was refused.
async fn refuse(writer: &mut RtmpWriter, cmd: &Command, code: &str, why: impl std::fmt::Display) -> SessionError {
    let raw = cmd.arg(0).and_then(|v| v.as_str()).unwrap_or("");
    let why = format!("{why}: {}", names::Escaped(raw));
    let _ = writer.send(&[msg::on_status(DEFAULT_STREAM_ID, "error", code, &why, vec![])]).await;
    SessionError::Protocol(format!("{} refused: {why}", cmd.name))
}

fn details(info: &ConnectInfo, key: &StreamKey, stream_id: &str, kind: ClientType) -> ClientDetails {
    ClientDetails {
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        stream: key.stream.clone(),
        stream_url: key.url(),
        stream_id: stream_id.to_string(),
        tc_url: info.tc_url.clone(),
        page_url: info.page_url.clone(),
        swf_url: info.swf_url.clone(),
        kind,
    }
}

#[allow(clippy::too_many_arguments)]
async fn publish(
    server: &Arc<Server>,
    info: &ConnectInfo,
    cmd: &Command,
    kind: ClientType,
    guard: &ClientGuard,
    reader: &mut RtmpReader,
    writer: &mut RtmpWriter,
    peer: SocketAddr,
) -> Result<(), SessionError> {
    let cid = &guard.client.id;
    let host = split_tc_url(&info.tc_url).0;
    let req = stream_request(info, cmd, cid, &host, guard.client.ip);
    // SRS closes silently on a refusal; a status first tells the encoder why.
    let streams::Published { source, admitted: _admitted } = match Box::pin(streams::publish(server, &req)).await {
        Ok(p) => p,
        Err(why @ streams::PublishRefused::Access(_)) => {
            warn!(stream = %req.key.url(), peer = %peer, "publish refused: {why}");
            return Err(refuse(writer, cmd, "NetStream.Publish.Rejected", why).await);
        }
        Err(why) => return Err(refuse(writer, cmd, "NetStream.Publish.BadName", why).await),
    };
    let key = req.key;
    guard.client.set_details(details(info, &key, &source.id, kind));
    let mut replies = Vec::new();
    if kind == ClientType::FmlePublish {
        replies.push(msg::on_fc("onFCPublish", "NetStream.Publish.Start", "Started publishing stream."));
    }
    replies.push(msg::stream_status("NetStream.Publish.Start", "Started publishing stream.", &key.stream));
    let result = async {
        writer.send(&replies).await?;
        info!(stream = %key.url(), peer = %peer, "publish started");
        publish_loop(server.identity.clone(), &source, &info.vhost, kind, guard, reader, writer).await
    }
    .await;
    streams::unpublish(server, &source, cid);
    info!(stream = %key.url(), "publish stopped");
    result
}

async fn publish_loop(
    server_identity: msg::ServerIdentity,
    source: &crate::hub::Source,
    vhost: &Vhost,
    kind: ClientType,
    guard: &ClientGuard,
    reader: &mut RtmpReader,
    writer: &mut RtmpWriter,
) -> Result<(), SessionError> {
    // One kick future and one timer for the whole publish, not one of each per message: a
    // publisher sends dozens of messages a second, on each of possibly thousands of streams. The
    // kick is polled first, so a publisher that never lets its socket run dry is still kicked,
    // and costs two atomics a poll (see `Kick`).
    let killed = rsrs_core::kick::Kick::new(&guard.client.kill);
    tokio::pin!(killed);
    let idle = rsrs_core::idle::IdleTimer::new(vhost.publish.firstpkt_timeout);
    let mut p = Publisher { id: &server_identity, source, vhost, kind, idle, reader, writer };
    p.reader.merge_reads(vhost.publish.merged_read);
    // Paced reads (rsrs_core::paced_reads) only where SRS's merged reads are not configured.
    let mut pacing = Pacing::new(vhost.publish.merged_read.is_none());
    loop {
        if let Some(fallback) = pacing.due(source, p.reader.received()) {
            let paced = source.pacer.pace();
            // Best effort: without it the pacing still works, only with a reactor wake-up per message.
            let _ = p.reader.set_read_low_water(PACED_LOW_WATER);
            let result = p.paced_reads(&mut killed, &paced, &mut pacing, fallback).await;
            let _ = p.reader.set_read_low_water(1);
            match result? {
                Publishing::Ended => return Ok(()),
                Publishing::Continues => continue,
            }
        }
        let m = tokio::select! {
            biased;
            _ = &mut killed => return Err(SessionError::Kicked),
            m = p.reader.next() => m?,
            _ = p.idle.expired() => return Err(SessionError::Timeout("waiting for the publisher's media")),
        };
        p.idle.touch();
        flush_owed(p.reader, p.writer).await?;
        if p.message(m).await? == Publishing::Ended {
            return Ok(());
        }
    }
}

/// What a publisher's messages need while it publishes.
struct Publisher<'a> {
    id: &'a msg::ServerIdentity,
    source: &'a crate::hub::Source,
    vhost: &'a Vhost,
    kind: ClientType,
    /// Kicks a publisher that stops sending.
    idle: rsrs_core::idle::IdleTimer,
    reader: &'a mut RtmpReader,
    writer: &'a mut RtmpWriter,
}

impl Publisher<'_> {
    /// Its reads while it is paced: at each close's pull (or the fallback), what the socket
    /// holds. Returns when the publishing ends, or `Continues` when pacing no longer applies.
    async fn paced_reads(
        &mut self,
        killed: &mut std::pin::Pin<&mut rsrs_core::kick::Kick>,
        paced: &rsrs_core::paced_reads::PacedPublisher<'_>,
        pacing: &mut Pacing,
        fallback: Duration,
    ) -> Result<Publishing, SessionError> {
        loop {
            tokio::select! {
                biased;
                _ = killed.as_mut() => return Err(SessionError::Kicked),
                _ = paced.pulled() => {}
                // A window's timer rests while no message comes: read now and then anyway.
                _ = tokio::time::sleep(fallback) => {}
                _ = self.idle.expired() => return Err(SessionError::Timeout("waiting for the publisher's media")),
            }
            let n = self.reader.read_available(pacing.expect, PACED_READ_MOST)?;
            while let Some(m) = self.reader.next_buffered()? {
                self.idle.touch();
                if self.message(m).await? == Publishing::Ended {
                    return Ok(Publishing::Ended);
                }
            }
            // Before the acks owed go out: a publisher slow to take them must not hold the close.
            paced.read_done();
            flush_owed(self.reader, self.writer).await?;
            if !pacing.paced_read(n, self.source) {
                return Ok(Publishing::Continues);
            }
        }
    }

    /// One message: media into the source, commands answered.
    async fn message(&mut self, m: Message) -> Result<Publishing, SessionError> {
        match m.type_id {
            msg::AUDIO | msg::VIDEO | msg::AMF0_DATA | msg::AMF3_DATA | msg::AGGREGATE => {
                self.idle.set_timeout(self.vhost.publish.normal_timeout);
                ingest::ingest(self.source, &m, Some(self.id))?;
            }
            msg::AMF0_COMMAND | msg::AMF3_COMMAND => {
                let Some(cmd) = parse_command(&m) else {
                    return Ok(Publishing::Continues);
                };
                match cmd.name.as_str() {
                    "FCUnpublish" | "deleteStream" | "closeStream" => {
                        if self.kind == ClientType::FmlePublish && cmd.name == "FCUnpublish" {
                            let mut out = vec![msg::on_fc(
                                "onFCUnpublish",
                                "NetStream.Unpublish.Success",
                                "Stop publishing stream.",
                            )];
                            if cmd.transaction_id > 0.0 {
                                out.push(msg::result(cmd.transaction_id, Amf0Value::Undefined));
                            }
                            out.push(msg::stream_status(
                                "NetStream.Unpublish.Success",
                                "Stream is now unpublished",
                                "",
                            ));
                            self.writer.send(&out).await?;
                        }
                        return Ok(Publishing::Ended);
                    }
                    _ => {
                        if cmd.transaction_id > 0.0 {
                            self.writer.send(&[msg::result(cmd.transaction_id, Amf0Value::Null)]).await?;
                        }
                    }
                }
            }
            other => debug!(type_id = other, "ignored message while publishing"),
        }
        Ok(Publishing::Continues)
    }
}

/// Most a paced publisher reads at one close; more means a stream too fast to pace.
const PACED_READ_MOST: usize = 256 * 1024;
/// A paced read above this ends the pacing: a fast stream would need its socket to hold a whole
/// window's worth, and its big messages gain little from fewer reads.
const PACED_READ_LIMIT: usize = 64 * 1024;
/// A paced publisher's socket wakes nobody until this much is unread (see
/// `RtmpReader::set_read_low_water`): well above what a paced stream gathers between closes.
const PACED_LOW_WATER: usize = 4 * PACED_READ_LIMIT;
/// Messages between two looks at whether the stream may be paced (a look takes the source lock).
const PACING_LOOK_EVERY: u32 = 64;

/// Whether an RTMP publisher reads paced (see `rsrs_core::paced_reads`), and how much it expects
/// at a close.
struct Pacing {
    allowed: bool,
    until_look: u32,
    /// When the last look was, and the bytes read by then: the stream's rate since.
    last_look: Option<(tokio::time::Instant, u64)>,
    /// Room for the next paced read: the last one's bytes and a quarter again.
    expect: usize,
}

impl Pacing {
    fn new(allowed: bool) -> Pacing {
        Pacing { allowed, until_look: 0, last_look: None, expect: 0 }
    }

    /// Whether to pace now (looked at every [`PACING_LOOK_EVERY`] messages, with `received` the
    /// bytes read so far); then the fallback interval of its reads. A stream whose rate since the
    /// last look would gather more than half of [`PACED_READ_LIMIT`] between closes is not paced:
    /// its socket would have to hold too much, and pacing would end at the first close anyway.
    fn due(&mut self, source: &crate::hub::Source, received: u64) -> Option<Duration> {
        if !self.allowed {
            return None;
        }
        if self.until_look > 0 {
            self.until_look -= 1;
            return None;
        }
        self.until_look = PACING_LOOK_EVERY;
        let now = tokio::time::Instant::now();
        let last = self.last_look.replace((now, received));
        let pacing = source.read_pacing()?;
        let (then, before) = last?;
        let per_close = (received - before) as f64 * pacing.pull_every.as_secs_f64()
            / now.duration_since(then).as_secs_f64().max(1e-3);
        (per_close <= (PACED_READ_LIMIT / 2) as f64).then_some(pacing.longest * 2)
    }

    /// A paced read of `n` bytes is done: whether to stay paced.
    fn paced_read(&mut self, n: usize, source: &crate::hub::Source) -> bool {
        if n > PACED_READ_LIMIT {
            // For good: its rate is what it is.
            self.allowed = false;
            return false;
        }
        self.expect = n + n / 4;
        source.read_pacing().is_some()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Publishing {
    Continues,
    Ended,
}

async fn play(
    server: &Arc<Server>,
    info: &ConnectInfo,
    cmd: &Command,
    guard: &ClientGuard,
    reader: &mut RtmpReader,
    writer: &mut RtmpWriter,
) -> Result<(), SessionError> {
    let host = split_tc_url(&info.tc_url).0;
    let req = stream_request(info, cmd, &guard.client.id, &host, guard.client.ip);
    let (mut consumer, mut initial, _admitted) = match Box::pin(streams::play(server, &req)).await {
        Ok(PlayDecision::Here(consumer, initial, admitted)) => (consumer, initial, admitted),
        // Not here on a cluster origin: the coworker that has it gets the player (SRS's RTMP 302).
        Ok(PlayDecision::Redirect(found)) => {
            info!(stream = %req.key.url(), "origin cluster: redirecting the player to {}:{}", found.ip, found.port);
            writer.send(&[crate::cluster::redirect_message(&found, &req.key, &req.param)]).await?;
            // Give the client a moment to read it before the connection closes.
            let _ = tokio::time::timeout(Duration::from_secs(1), reader.next()).await;
            return Err(SessionError::Redirected(format!("{}:{}", found.ip, found.port)));
        }
        Err(why @ streams::PlayRefused::Access(_)) => {
            warn!(stream = %req.key.url(), peer = %guard.client.ip, "play refused: {why}");
            return Err(refuse(writer, cmd, "NetStream.Play.Rejected", why).await);
        }
        Err(why) => return Err(refuse(writer, cmd, "NetStream.Play.StreamNotFound", why).await),
    };
    let key = req.key;
    let source = consumer.source().clone();
    guard.client.set_details(details(info, &key, &source.id, ClientType::RtmpPlay));
    if info.plays_opus {
        // A WHIP publisher's stream carries its Opus as AAC; this player takes the Opus itself.
        if let Some(feed) = server.opus_feeds.passthrough(&key) {
            consumer.substitute_audio(Codec::Aac, feed.config(), feed.subscribe(), feed.ended(), &mut initial);
            info!(stream = %key.url(), "an Enhanced RTMP player: the WHIP publisher's own Opus instead of AAC");
        }
    }
    writer
        .send(&[
            msg::user_control(msg::UC_STREAM_BEGIN, DEFAULT_STREAM_ID),
            msg::stream_status("NetStream.Play.Reset", "Playing and resetting stream.", &key.stream),
            msg::stream_status("NetStream.Play.Start", "Started playing stream.", &key.stream),
            msg::sample_access(),
        ])
        .await?;
    info!(stream = %key.url(), "play started");
    // `play(name, start, duration)`: a duration in milliseconds ends the play once that much of
    // the stream was sent (`rtmpdump --stop`), as SRS does.
    let stop_after = cmd.arg(2).and_then(|d| d.as_number()).filter(|d| *d > 0.0).map(|d| d.min(u32::MAX as f64) as u32);
    let mut wire = RtmpPlayer { reader, writer, key: &key, source: &source, stop_after };
    let end = player::run(&mut wire, &mut consumer, initial, info.vhost.play.mw_latency, &guard.client.kill).await?;
    match end {
        PlayEnd::ClientStopped | PlayEnd::Closed | PlayEnd::Unpublished | PlayEnd::GaveUp => Ok(()),
        PlayEnd::Kicked => Err(SessionError::Kicked),
        PlayEnd::Failed(why) => Err(play_failed(writer, &key.stream, &why).await),
        PlayEnd::Done => {
            writer.send(&[msg::stream_status("NetStream.Play.Stop", "Stopped playing stream.", &key.stream)]).await?;
            Err(SessionError::DurationReached(stop_after.unwrap_or(0)))
        }
    }
}

/// An RTMP player's side of the shared player loop.
struct RtmpPlayer<'a> {
    reader: &'a mut RtmpReader,
    writer: &'a mut RtmpWriter,
    key: &'a StreamKey,
    source: &'a Arc<crate::hub::Source>,
    stop_after: Option<u32>,
}

impl PlayerWire for RtmpPlayer<'_> {
    type Error = SessionError;
    type Input = Message;

    fn send(
        &mut self,
        batch: &[Arc<MediaPacket>],
        clock: &mut ConsumerClock,
        shared: &SharedFraming,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        write_batch(self.writer, batch, clock, shared, self.source)
    }

    async fn input(&mut self) -> Result<Message, SessionError> {
        Ok(self.reader.next().await?)
    }

    async fn handle(&mut self, m: Message) -> Result<ClientSays, SessionError> {
        flush_owed(self.reader, self.writer).await?;
        let Some(cmd) = parse_command(&m) else { return Ok(ClientSays::Nothing) };
        let stream = &self.key.stream;
        match cmd.name.as_str() {
            "closeStream" | "deleteStream" => {
                info!(stream = %self.key.url(), "play stopped by client");
                Ok(ClientSays::Stop)
            }
            "pause" => {
                let (code, description, event, says) = if matches!(cmd.arg(0), Some(Amf0Value::Boolean(true))) {
                    ("NetStream.Pause.Notify", "Paused stream.", msg::UC_STREAM_EOF, ClientSays::Pause)
                } else {
                    ("NetStream.Unpause.Notify", "Unpaused stream.", msg::UC_STREAM_BEGIN, ClientSays::Resume)
                };
                let out = [msg::stream_status(code, description, stream), msg::user_control(event, DEFAULT_STREAM_ID)];
                self.writer.send(&out).await?;
                Ok(says)
            }
            _ => {
                if cmd.transaction_id > 0.0 {
                    self.writer.send(&[msg::result(cmd.transaction_id, Amf0Value::Null)]).await?;
                }
                Ok(ClientSays::Nothing)
            }
        }
    }

    /// The player stays and waits for a republish, as with SRS: no UnpublishNotify, on which
    /// ffmpeg and librtmp players would stop.
    fn after_unpublish(&mut self) -> AfterUnpublish {
        info!(stream = %self.key.url(), "publisher left; the player waits for a republish");
        AfterUnpublish::Wait
    }

    fn done(&self, clock: &ConsumerClock) -> bool {
        self.stop_after.is_some_and(|limit| clock.position() >= limit)
    }
}

/// Tells a player its stream cannot be had, and why; the session then ends.
async fn play_failed(writer: &mut RtmpWriter, stream: &str, why: &str) -> SessionError {
    let m = msg::on_status(
        DEFAULT_STREAM_ID,
        "error",
        "NetStream.Play.StreamNotFound",
        &format!("{stream}: {why}"),
        vec![],
    );
    let _ = writer.send(&[m]).await;
    SessionError::Protocol(format!("play failed: {why}"))
}

async fn write_batch(
    writer: &mut RtmpWriter,
    batch: &[Arc<MediaPacket>],
    clock: &mut ConsumerClock,
    shared: &SharedFraming,
    source: &crate::hub::Source,
) -> Result<(), SessionError> {
    if batch.is_empty() {
        return Ok(());
    }
    let n = tokio::time::timeout(WRITE_TIMEOUT, writer.send_frames(batch, clock, shared, DEFAULT_STREAM_ID))
        .await
        .map_err(|_| SessionError::Timeout("writing to a player that stopped reading"))??;
    source.send_bytes.fetch_add(n as u64, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tc_url_parts() {
        assert_eq!(split_tc_url("rtmp://127.0.0.1:1935/live"), ("127.0.0.1".into(), "live".into(), "".into()));
        assert_eq!(
            split_tc_url("rtmp://example.com/live/sub?vhost=v1&token=x"),
            ("example.com".into(), "live/sub".into(), "?vhost=v1&token=x".into())
        );
        assert_eq!(split_tc_url("rtmp://[::1]:1935/app/"), ("::1".into(), "app".into(), "".into()));
        assert_eq!(query_vhost("?token=1&vhost=v1"), Some("v1".into()));
        assert_eq!(query_vhost("?domain=d"), Some("d".into()));
        assert_eq!(query_vhost("?x=1"), None);
    }

    /// Every RTMP connection's task holds this future for its whole life, so its size is memory per
    /// player. Large futures that run rarely (cluster lookups) are boxed to keep it small.
    #[tokio::test]
    async fn session_future_stays_small() {
        let server = Server::new(rsrs_config::Config::builtin(&Default::default()).unwrap(), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (sock, peer) = listener.accept().await.unwrap();
        let guard = server.clients.register(peer.ip());
        let session = serve(server.clone(), sock, peer, guard);
        let size = std::mem::size_of_val(&session);
        eprintln!("RTMP session future: {size} bytes");
        assert!(size <= 8 * 1024, "the RTMP session future grew to {size} bytes; box what is large and rare");
    }

    #[test]
    fn stream_names() {
        assert_eq!(parse_stream_name("livestream"), ("livestream".into(), "".into()));
        assert_eq!(parse_stream_name("livestream.flv?token=1"), ("livestream".into(), "?token=1".into()));
        assert_eq!(parse_stream_name("?x"), ("".into(), "?x".into()));
    }
}
