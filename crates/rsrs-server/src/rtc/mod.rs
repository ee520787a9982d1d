//! WebRTC (`rtc_server`): WHEP play at `/rtc/v1/whep/?app=&stream=` and WHIP publish at
//! `/rtc/v1/whip/?app=&stream=`, as SRS answers them (201, the answer SDP, a `Location` with a
//! token to DELETE). Each session is a task owning a sans-io [`str0m::Rtc`] (ICE-lite, DTLS,
//! SRTP, RTP with NACK and RTCP) on the one shared UDP port ([`state::RtcPort`]): a viewer reads
//! a core consumer ([`play`]), a publisher feeds the stream's source ([`publish`]). Admission
//! is the stream manager's, as for every protocol. Codecs: H.264 and Opus; AAC and Opus are not
//! transcoded into each other yet.

mod peer;
mod play;
mod publish;
pub mod state;

use crate::http::Request;
use crate::http::Response;
use crate::hub::StreamKey;
use crate::server::Server;
use crate::stats::{ClientDetails, ClientGuard, ClientType};
use crate::streams::{self, PlayDecision, PlayRefused, PublishRefused, StreamRequest};
use peer::Peer;
use state::RtcPort;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use str0m::{Candidate, Rtc, RtcConfig};
use tracing::{debug, warn, Instrument};

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

/// Which way a WebRTC session's media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// WHEP: the server sends.
    Play,
    /// WHIP: the browser or encoder sends.
    Publish,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Play => "WHEP",
            Way::Publish => "WHIP",
        }
    }
}

/// `POST /rtc/v1/whep/` or `/rtc/v1/whip/` `?app=&stream=` (an SDP offer), and `DELETE` of the
/// `Location` it answers.
pub async fn handle(server: &Arc<Server>, req: &Request, http: &ClientGuard, way: Way) -> Response {
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
        return Response::text(405, &format!("{} takes POST (an SDP offer) and DELETE\n", way.name()));
    }
    let cfg = server.config();
    let (Some(app), Some(stream)) = (query_get(&req.query, "app"), query_get(&req.query, "stream")) else {
        return Response::text(400, &format!("{} needs ?app=&stream=\n", way.name()));
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
    let tc_url = format!("webrtc://{host}/{app}");
    let page_url = req.header("referer").unwrap_or("").to_string();
    let sreq = StreamRequest {
        vhost,
        key: key.clone(),
        param: req.query.clone(),
        client_host: &host,
        client_id: &guard.client.id,
        tc_url: &tc_url,
        peer_ip: http.client.ip,
        reported_ip: req.client_ip(http.client.ip),
        page_url: &page_url,
        connection_hooks: false,
    };
    // Admission first: nothing of WebRTC is set up for a client the stream manager refuses.
    enum Granted {
        Play(crate::hub::Consumer, Vec<Arc<crate::media::MediaPacket>>, streams::Admitted),
        Publish(streams::Published),
    }
    let granted = match way {
        Way::Play => match Box::pin(streams::play(server, &sreq)).await {
            Ok(PlayDecision::Here(c, i, a)) => Granted::Play(c, i, a),
            Ok(PlayDecision::Redirect(found)) => {
                return Response::text(503, &format!("the stream is on origin {}; play it there\n", found.ip))
            }
            Err(e @ PlayRefused::Access(_)) => {
                warn!(stream = %key.url(), peer = %http.client.ip, "WHEP play refused: {e}");
                return Response::text(403, &format!("{e}\n"));
            }
            Err(e) => return Response::text(400, &format!("{e}\n")),
        },
        Way::Publish => match Box::pin(streams::publish(server, &sreq)).await {
            Ok(p) => Granted::Publish(p),
            Err(e @ PublishRefused::Access(_)) => {
                warn!(stream = %key.url(), peer = %http.client.ip, "WHIP publish refused: {e}");
                return Response::text(403, &format!("{e}\n"));
            }
            Err(e @ PublishRefused::Busy(_)) => return Response::text(409, &format!("{e}\n")),
            Err(e) => return Response::text(400, &format!("{e}\n")),
        },
    };
    let (rtc, answer, ufrag) = match answer(&port, offer) {
        Ok(x) => x,
        Err(why) => {
            if let Granted::Publish(p) = &granted {
                streams::unpublish(server, &p.source, &guard.client.id);
            }
            return Response::text(400, &format!("{why}\n"));
        }
    };
    let token: String = {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..16).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)])).collect()
    };
    let stream_id = match &granted {
        Granted::Play(c, _, _) => c.source().id.clone(),
        Granted::Publish(p) => p.source.id.clone(),
    };
    guard.client.set_details(ClientDetails {
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        stream: key.stream.clone(),
        stream_url: key.url(),
        stream_id,
        tc_url,
        page_url,
        swf_url: String::new(),
        kind: if way == Way::Play { ClientType::RtcPlay } else { ClientType::RtcPublish },
    });
    let rx = port.add(&ufrag);
    server.rtc_sessions.add(&ufrag, &token, guard.client.kill.clone());
    let peer = Peer::new(rtc, port.clone(), ufrag.clone());
    let span = tracing::info_span!("rtc", cid = %guard.client.id, stream = %key.url(), way = way.name());
    let srv = server.clone();
    match granted {
        Granted::Play(consumer, initial, admitted) => {
            let session = play::PlaySession { server: srv, peer, key: key.clone(), pending: initial };
            tokio::spawn(
                async move {
                    let _admitted = admitted;
                    session.run(rx, consumer, guard).await;
                }
                .instrument(span),
            );
        }
        Granted::Publish(published) => {
            let session = publish::PublishSession { server: srv, peer, source: published.source, stream: key.url() };
            let admitted = published.admitted;
            tokio::spawn(
                async move {
                    let _admitted = admitted;
                    session.run(rx, guard).await;
                }
                .instrument(span),
            );
        }
    }
    debug!(stream = %key.url(), "{} session {ufrag} answered", way.name());
    let path = if way == Way::Play { "whep" } else { "whip" };
    let location = format!("/rtc/v1/{path}/?action=delete&token={token}&app={app}&stream={stream}&session={ufrag}");
    let mut resp = Response::new(201, "application/sdp", answer.into_bytes());
    resp.headers.push(("Location", location));
    resp
}

/// An ICE-lite peer for H.264 and Opus on the shared port, answering `offer`: the peer, the
/// answer SDP, and the ICE ufrag datagrams are routed by.
fn answer(port: &RtcPort, offer: str0m::change::SdpOffer) -> Result<(Rtc, String, String), String> {
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs()
        .enable_h264(true)
        .enable_opus(true)
        .build(Instant::now());
    let candidate = Candidate::host(port.candidate, "udp").map_err(|e| format!("bad candidate address: {e}"))?;
    rtc.add_local_candidate(candidate);
    let answer =
        rtc.sdp_api().accept_offer(offer).map_err(|e| format!("cannot answer the offer: {e}"))?.to_sdp_string();
    let ufrag = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_string())
        .ok_or("the answer has no ICE ufrag")?;
    Ok((rtc, answer, ufrag))
}
