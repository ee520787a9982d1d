//! WebRTC (`rtc_server`): WHEP play at `/rtc/v1/whep/?app=&stream=`, as SRS answers it (201,
//! the answer SDP, a `Location` to DELETE). Each session is a task owning a sans-io
//! [`str0m::Rtc`] (ICE-lite, DTLS, SRTP, RTP with NACK and RTCP) and a consumer of the stream, on
//! the one shared UDP port ([`state::RtcPort`]). Admission is the stream manager's, as for every
//! protocol. Video: H.264 from any publisher, parameter sets before each keyframe. Audio: Opus
//! from an Enhanced RTMP publisher; AAC is not transcoded yet, so AAC streams play video only.

pub mod state;

use crate::http::Request;
use crate::http::Response;
use crate::hub::{Consumer, Signal, StreamKey};
use crate::media::{Codec, MediaPacket, Track, Tracks};
use crate::server::Server;
use crate::stats::{ClientDetails, ClientGuard, ClientType};
use crate::streams::{self, PlayDecision, PlayRefused, StreamRequest};
use state::{Datagram, RtcPort};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::format::Codec as RtcCodec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

/// How long a session may take to connect (ICE and DTLS) before it is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most packets held for a session that has not connected yet (the GOP it starts with).
const MAX_PENDING: usize = 2048;

/// Reads the shared port until the listener is closed, handing each datagram to its session.
pub async fn receive_loop(port: Arc<RtcPort>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match port.socket.recv_from(&mut buf).await {
            Ok((n, from)) => port.route(from, &buf[..n]),
            // ICMP errors from a peer that went away surface here; the port goes on.
            Err(e) => debug!("WebRTC port: {e}"),
        }
    }
}

/// The candidate address for `rtc_server`: `candidate` (an IP, with the listen port), else the
/// listen address when it names one.
pub fn candidate_addr(cfg: &rsrs_config::RtcServer) -> Result<SocketAddr, String> {
    let listen = cfg.listen.0;
    match &cfg.candidate {
        Some(c) => c
            .parse::<std::net::IpAddr>()
            .map(|ip| SocketAddr::new(ip, listen.port()))
            .map_err(|_| format!("rtc_server candidate `{c}` is not an IP address")),
        None if !listen.ip().is_unspecified() => Ok(listen),
        None => Err("rtc_server listens on every address: set `candidate` to the address browsers reach".into()),
    }
}

fn query_get<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// `POST /rtc/v1/whep/?app=&stream=` (an SDP offer) and `DELETE` of the `Location` it answers.
pub async fn whep(server: &Arc<Server>, req: &Request, http: &ClientGuard) -> Response {
    let Some(port) = server.rtc.get() else {
        return Response::text(503, "WebRTC is off: rtc_server is not enabled\n");
    };
    if req.method == "DELETE" {
        let (Some(session), Some(token)) = (query_get(&req.query, "session"), query_get(&req.query, "token")) else {
            return Response::text(400, "DELETE needs the session and token of the Location\n");
        };
        return match server.rtc_sessions.end(session, token) {
            true => Response::text(200, ""),
            false => Response::text(404, "no such session\n"),
        };
    }
    if req.method != "POST" {
        return Response::text(405, "WHEP takes POST (an SDP offer) and DELETE\n");
    }
    let cfg = server.config();
    let (Some(app), Some(stream)) = (query_get(&req.query, "app"), query_get(&req.query, "stream")) else {
        return Response::text(400, "WHEP needs ?app=&stream=\n");
    };
    let host = query_get(&req.query, "vhost").map(str::to_string).unwrap_or_else(|| req.host());
    let Some(vhost) = cfg.vhost(&host) else {
        return Response::text(404, "no such vhost\n");
    };
    if !vhost.enabled || !vhost.rtc.enabled {
        return Response::text(403, &format!("vhost {} does not serve WebRTC (`rtc {{ enabled on; }}`)\n", vhost.name));
    }
    let Ok(offer) = std::str::from_utf8(&req.body)
        .map_err(|_| ())
        .and_then(|s| str0m::change::SdpOffer::from_sdp_string(s).map_err(|_| ()))
    else {
        return Response::text(400, "the body is not an SDP offer\n");
    };
    // The session is a client of its own: it outlives this HTTP request.
    let guard = server.clients.register(http.client.ip);
    let key = StreamKey { vhost: vhost.name.clone(), app: app.to_string(), stream: stream.to_string() };
    let tc_url = format!("webrtc://{}/{}", host, app);
    let sreq = StreamRequest {
        vhost,
        key: key.clone(),
        param: req.query.clone(),
        client_host: &host,
        client_id: &guard.client.id,
        tc_url: &tc_url,
        peer_ip: http.client.ip,
        reported_ip: req.client_ip(http.client.ip),
        page_url: req.header("referer").unwrap_or(""),
        connection_hooks: false,
    };
    let (consumer, initial, admitted) = match Box::pin(streams::play(server, &sreq)).await {
        Ok(PlayDecision::Here(c, i, a)) => (c, i, a),
        Ok(PlayDecision::Redirect(found)) => {
            return Response::text(503, &format!("the stream is on origin {}; play it there\n", found.ip))
        }
        Err(e @ PlayRefused::Access(_)) => {
            warn!(stream = %key.url(), peer = %http.client.ip, "WHEP play refused: {e}");
            return Response::text(403, &format!("{e}\n"));
        }
        Err(e) => return Response::text(400, &format!("{e}\n")),
    };
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .set_crypto_provider(Arc::new(str0m_crypto()))
        .clear_codecs()
        .enable_h264(true)
        .enable_opus(true)
        .build(Instant::now());
    let Ok(candidate) = Candidate::host(port.candidate, "udp") else {
        return Response::text(500, "bad candidate address\n");
    };
    rtc.add_local_candidate(candidate);
    let answer = match rtc.sdp_api().accept_offer(offer) {
        Ok(a) => a.to_sdp_string(),
        Err(e) => return Response::text(400, &format!("cannot answer the offer: {e}\n")),
    };
    let Some(ufrag) = answer.lines().find_map(|l| l.strip_prefix("a=ice-ufrag:")).map(|u| u.trim().to_string()) else {
        return Response::text(500, "the answer has no ICE ufrag\n");
    };
    let token: String = {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..16).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)])).collect()
    };
    guard.client.set_details(ClientDetails {
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        stream: key.stream.clone(),
        stream_url: key.url(),
        stream_id: consumer.source().id.clone(),
        tc_url,
        page_url: req.header("referer").unwrap_or("").to_string(),
        swf_url: String::new(),
        kind: ClientType::RtcPlay,
    });
    let rx = port.add(&ufrag);
    server.rtc_sessions.add(&ufrag, &token, guard.client.kill.clone());
    let session = Session {
        server: server.clone(),
        port: port.clone(),
        rtc,
        ufrag: ufrag.clone(),
        key: key.clone(),
        video: None,
        audio: None,
        tracks: Tracks::default(),
        connected: false,
        pending: initial,
        told: Vec::new(),
        told_bframes: false,
    };
    let span = tracing::info_span!("whep", cid = %guard.client.id, stream = %key.url());
    tokio::spawn(
        async move {
            let _admitted = admitted;
            session.run(rx, consumer, guard).await;
        }
        .instrument(span),
    );
    let location = format!("/rtc/v1/whep/?action=delete&token={token}&app={app}&stream={stream}&session={ufrag}");
    let mut resp = Response::new(201, "application/sdp", answer.into_bytes());
    resp.headers.push(("Location", location));
    resp
}

fn str0m_crypto() -> str0m::crypto::CryptoProvider {
    str0m::crypto::from_feature_flags()
}

struct Session {
    server: Arc<Server>,
    port: Arc<RtcPort>,
    rtc: Rtc,
    ufrag: String,
    key: StreamKey,
    video: Option<Mid>,
    audio: Option<Mid>,
    /// The stream's configurations as this player has seen them (for parameter sets).
    tracks: Tracks,
    connected: bool,
    /// Packets from before the connection, sent when it is up (the GOP a viewer starts with).
    pending: Vec<Arc<MediaPacket>>,
    /// Codecs already reported as not playable over WebRTC.
    told: Vec<Codec>,
    told_bframes: bool,
}

impl Session {
    async fn run(mut self, mut rx: mpsc::Receiver<Datagram>, mut consumer: Consumer, guard: ClientGuard) {
        let started = Instant::now();
        let mut batch = Vec::new();
        let why = loop {
            let timeout = match self.drain().await {
                Ok(t) => t,
                Err(why) => break why,
            };
            if !self.connected && started.elapsed() > CONNECT_TIMEOUT {
                break format!("not connected within {} s", CONNECT_TIMEOUT.as_secs());
            }
            let wait = timeout.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            tokio::select! {
                _ = guard.client.kill.cancelled() => break "ended (DELETE or kicked)".into(),
                d = rx.recv() => {
                    let Some(d) = d else { break "port closed".into() };
                    guard.client.counters.received(d.data.len());
                    let Ok(contents) = d.data.as_slice().try_into() else { continue };
                    let input = Input::Receive(d.at, Receive {
                        proto: Protocol::Udp,
                        source: d.from,
                        destination: self.port.candidate,
                        contents,
                    });
                    if let Err(e) = self.rtc.handle_input(input) {
                        break format!("bad input: {e}");
                    }
                }
                sig = consumer.recv(&mut batch, 64) => {
                    for p in batch.drain(..) {
                        self.send(p);
                    }
                    match sig {
                        Some(Signal::Closed) => break "stream closed".into(),
                        Some(Signal::Failed(why)) => break why.to_string(),
                        // The viewer waits for a republish, as an RTMP player does.
                        Some(Signal::Unpublished) | None => {}
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
                        break format!("timer: {e}");
                    }
                }
            }
        };
        self.rtc.disconnect();
        let _ = self.drain().await;
        self.port.remove(&self.ufrag);
        self.server.rtc_sessions.remove(&self.ufrag);
        info!("WHEP session ended: {why}");
    }

    /// Sends what the Rtc has to send and acts on its events; when it next wants a timer.
    async fn drain(&mut self) -> Result<Instant, String> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return Ok(t),
                Ok(Output::Transmit(t)) => {
                    let _ = self.port.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(e)) => match e {
                    Event::MediaAdded(m) => match m.kind {
                        MediaKind::Video => self.video = Some(m.mid),
                        MediaKind::Audio => self.audio = Some(m.mid),
                    },
                    Event::Connected => {
                        self.connected = true;
                        info!("WHEP session connected");
                        for p in std::mem::take(&mut self.pending) {
                            self.send(p);
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Err("the viewer went away (ICE disconnected)".into())
                    }
                    _ => {}
                },
                Err(e) => return Err(format!("WebRTC: {e}")),
            }
        }
    }

    /// Writes one packet to the viewer (H.264 video, Opus audio).
    fn send(&mut self, p: Arc<MediaPacket>) {
        if !self.connected {
            if p.keyframe {
                // A newer keyframe: what came before it is no longer needed to start.
                self.pending.retain(|q| q.is_config() || q.track == Track::Data);
            }
            if self.pending.len() < MAX_PENDING {
                self.pending.push(p);
            }
            return;
        }
        if self.tracks.update(&p) {
            return;
        }
        let now = Instant::now();
        let result = match (p.track, p.codec) {
            (Track::Video, Codec::H264) => {
                let Some(mid) = self.video else { return };
                let Some(config) = self.tracks.video.as_ref().and_then(|v| v.config.clone()) else { return };
                let Ok(c) = rsrs_codec::avc::DecoderConfig::parse(config.data()) else { return };
                // WebRTC receivers decode in arrival order: B pictures are left out, as SRS does
                // (its `keep_bframe off`).
                if rsrs_codec::avc::is_b_frame(p.data(), c.nal_length_size) {
                    if !self.told_bframes {
                        self.told_bframes = true;
                        warn!(
                            stream = %self.key.url(),
                            "the stream has H.264 B-frames, which WebRTC cannot carry: they are left out for WebRTC \
                             viewers (publish without B-frames, e.g. x264 -bf 0, for smooth WebRTC playback)"
                        );
                    }
                    return;
                }
                let sets: Vec<&[u8]> = if p.keyframe {
                    c.sps.iter().chain(c.pps.iter()).map(|v| v.as_slice()).collect()
                } else {
                    Vec::new()
                };
                let Some(au) = rsrs_codec::avc::to_annexb(p.data(), c.nal_length_size, &sets) else { return };
                let Some(w) = self.rtc.writer(mid) else { return };
                let Some(pt) = w
                    .payload_params()
                    .find(|pp| pp.spec().codec == RtcCodec::H264 && pp.spec().format.packetization_mode == Some(1))
                    .map(|pp| pp.pt())
                else {
                    return;
                };
                let pts = (p.dts as i64 + p.cts as i64).max(0) as u64;
                w.write(pt, now, MediaTime::new(pts * 90, Frequency::NINETY_KHZ), au)
            }
            (Track::Audio, Codec::Opus) => {
                let Some(mid) = self.audio else { return };
                let Some(w) = self.rtc.writer(mid) else { return };
                let Some(pt) = w.payload_params().find(|pp| pp.spec().codec == RtcCodec::Opus).map(|pp| pp.pt()) else {
                    return;
                };
                w.write(pt, now, MediaTime::new(p.dts as u64 * 48, Frequency::FORTY_EIGHT_KHZ), p.data().to_vec())
            }
            (Track::Data, _) => return,
            (_, codec) => {
                if !self.told.contains(&codec) {
                    self.told.push(codec);
                    warn!(stream = %self.key.url(), "{} is not sent over WebRTC yet; the viewer gets the other track", codec.name());
                }
                return;
            }
        };
        if let Err(e) = result {
            debug!("WebRTC write: {e}");
        }
    }
}
