//! WHEP and WHIP over HTTP (`/rtc/v1/whep/`, `/rtc/v1/whip/`, on the API and HTTP ports as in
//! SRS): the offer in, admission by the stream manager, the answer out with SRS's 201 and a
//! `Location` carrying a token to DELETE the session. The sessions themselves are [`crate::rtc`]'s.

use super::{Request, Response};
use crate::hub::StreamKey;
use crate::rtc::{self, Way};
use crate::server::Server;
use crate::stats::{ClientDetails, ClientGuard, ClientType};
use crate::streams::{self, PlayDecision, PlayRefused, PublishRefused, StreamRequest};
use std::sync::Arc;
use tracing::{debug, warn};

fn query_get<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
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
    let offer = match std::str::from_utf8(&req.body)
        .map_err(|_| "it is not UTF-8".to_string())
        .and_then(|s| str0m::change::SdpOffer::from_sdp_string(&session_name_dash(s)).map_err(|e| e.to_string()))
    {
        Ok(offer) => offer,
        Err(why) => return Response::text(400, &format!("the body is not an SDP offer: {why}\n")),
    };
    // The session is a client of its own (it outlives this HTTP request), with a media
    // connection's share of `max_connections`, so a flood of offers is bounded like one of
    // RTMP connections.
    let Some(guard) = server.admit(std::net::SocketAddr::new(http.client.ip, 0), crate::server::ListenerKind::Rtc)
    else {
        return Response::text(503, "the server is at max_connections\n");
    };
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
    let (peer_rtc, answer, ufrag) = match rtc::answer(&port, offer, way) {
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
    server.rtc_sessions.add(&ufrag, &token, guard.client.kill.clone());
    match granted {
        Granted::Play(consumer, initial, admitted) => {
            rtc::start_play(server, &port, peer_rtc, &ufrag, key.clone(), consumer, initial, admitted, guard)
        }
        Granted::Publish(published) => {
            rtc::start_publish(server, &port, peer_rtc, &ufrag, key.clone(), published, guard)
        }
    }
    debug!(stream = %key.url(), "{} session {ufrag} answered", way.name());
    let path = if way == Way::Play { "whep" } else { "whip" };
    let location = format!("/rtc/v1/{path}/?action=delete&token={token}&app={app}&stream={stream}&session={ufrag}");
    let mut resp = Response::new(201, "application/sdp", answer.into_bytes());
    resp.headers.push(("Location", location));
    resp
}

/// SRS's older JSON signalling, which SRS's own players use: `POST /rtc/v1/play/` or
/// `/rtc/v1/publish/` with `{"sdp": ..., "streamurl": "webrtc://host/app/stream"}`, answered
/// `{"code": 0, "sdp": ..., "sessionid": ...}`. The session is the same as WHEP's or WHIP's.
pub async fn json_api(server: &Arc<Server>, req: &Request, http: &ClientGuard, way: Way) -> Response {
    let error = |status: u16, msg: &str| {
        let body = serde_json::json!({ "code": status, "server": server.server_id, "msg": msg });
        Response::new(status, "application/json", body.to_string().into_bytes())
    };
    if req.method != "POST" {
        return error(405, "POST a JSON offer");
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
        return error(400, "the body is not JSON");
    };
    let (Some(sdp), Some(url)) = (body["sdp"].as_str(), body["streamurl"].as_str()) else {
        return error(400, "the body needs sdp and streamurl");
    };
    // webrtc://host[:port]/app/stream[?query]
    let rest = url.strip_prefix("webrtc://").unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut parts = path.splitn(3, '/');
    let (Some(host), Some(app), Some(stream)) = (parts.next(), parts.next(), parts.next()) else {
        return error(400, "streamurl must be webrtc://host/app/stream");
    };
    let vhost = host.split(':').next().unwrap_or(host);
    let mut inner = req.clone();
    inner.query = format!("app={app}&stream={stream}&vhost={vhost}{}{query}", if query.is_empty() { "" } else { "&" });
    inner.body = bytes::Bytes::copy_from_slice(sdp.as_bytes());
    let resp = Box::pin(handle(server, &inner, http, way)).await;
    if resp.status != 201 {
        return error(resp.status, String::from_utf8_lossy(&resp.body).trim());
    }
    let session = resp
        .headers
        .iter()
        .find(|(k, _)| *k == "Location")
        .and_then(|(_, l)| query_get(l, "session").map(str::to_string))
        .unwrap_or_default();
    let body = serde_json::json!({
        "code": 0, "server": server.server_id, "service": server.service_id, "pid": std::process::id().to_string(),
        "sdp": String::from_utf8_lossy(&resp.body), "sessionid": session,
    });
    Response::new(200, "application/json", body.to_string().into_bytes())
}

/// `offer` with its session name as `s=-`. The name is informational (RFC 8866) and WebRTC
/// stacks send `-`, but ffmpeg's WHIP muxer sends `s=FFmpegPublishSession`, which the SDP parser
/// refuses.
fn session_name_dash(offer: &str) -> std::borrow::Cow<'_, str> {
    let session = offer.split("\nm=").next().unwrap_or(offer);
    match session.lines().find(|l| l.starts_with("s=")) {
        Some(line) if line.trim_end() != "s=-" => {
            let at = line.as_ptr() as usize - offer.as_ptr() as usize;
            let mut out = String::with_capacity(offer.len());
            out.push_str(&offer[..at]);
            out.push_str("s=-");
            out.push_str(&offer[at + line.trim_end_matches('\r').len()..]);
            std::borrow::Cow::Owned(out)
        }
        _ => std::borrow::Cow::Borrowed(offer),
    }
}

#[cfg(test)]
mod tests {
    use super::session_name_dash;

    #[test]
    fn a_session_name_becomes_a_dash() {
        assert_eq!(session_name_dash("v=0\r\ns=FFmpegPublishSession\r\nt=0 0\r\n"), "v=0\r\ns=-\r\nt=0 0\r\n");
        assert_eq!(session_name_dash("v=0\ns=x\nt=0 0\n"), "v=0\ns=-\nt=0 0\n");
        let dash = "v=0\r\ns=-\r\nt=0 0\r\nm=audio 9\r\ns=y\r\n";
        assert!(matches!(session_name_dash(dash), std::borrow::Cow::Borrowed(_)));
        // Only the session's: an s= after the first m= line is not touched.
        assert_eq!(session_name_dash("v=0\nt=0 0\nm=audio 9\ns=y\n"), "v=0\nt=0 0\nm=audio 9\ns=y\n");
    }
}
