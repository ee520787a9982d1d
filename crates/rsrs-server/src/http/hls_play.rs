//! HLS viewers as SRS counts them (`hls_ctx`): a viewer's first playlist request is admitted
//! like any play (security, refer, signed URL, `on_play`) and answered with a one-line master
//! playlist pointing at `?hls_ctx=ID`; the requests that carry the id are that viewer's, with
//! no further checks or hooks. A session that fetches no playlist for twice the HLS window
//! ends, and `on_stop` is sent. One `on_play` per viewer, not one per segment.
//!
//! Where the vhost restricts who may play, no segment is served without a live session: the
//! restriction holds for HLS as for RTMP and HTTP-FLV. (`hls_ctx off` with such restrictions
//! is a config error, since plain files could not keep anyone out.)

use super::{Request, Response};
use crate::hls::state::lock;
use crate::hls::viewers::{Seen, Session, MAX_SESSIONS};
use crate::hub::StreamKey;
use crate::server::Server;
use crate::stats::ClientGuard;
use crate::stats::{ClientDetails, ClientType};
use crate::streams::{self, StreamRequest};
use rsrs_config::{Config, Vhost};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Largest playlist rewritten for a session.
const MAX_PLAYLIST: u64 = 1024 * 1024;

/// The HLS vhost and stream a request's path names: `/APP.../STREAM.m3u8` or a segment beside
/// it, on the vhost the Host header names.
fn stream_of<'c>(cfg: &'c Config, req: &Request) -> Option<(&'c Vhost, StreamKey)> {
    let vhost = cfg.vhost(&req.host())?;
    if !vhost.hls.enabled {
        return None;
    }
    let path = req.path.trim_start_matches('/');
    let (app, file) = path.rsplit_once('/')?;
    let stem = file.strip_suffix(".m3u8")?;
    if app.is_empty() || stem.is_empty() {
        return None;
    }
    let key = StreamKey { vhost: vhost.name.clone(), app: app.to_string(), stream: stem.to_string() };
    Some((vhost, key))
}

/// What to do with an HLS request.
pub enum HlsReply {
    /// Not a managed HLS request: serve the file as usual.
    Files,
    /// Answered here (a master playlist, a refusal, or a rewritten playlist).
    Full(Response),
}

/// Handles `.m3u8` and `.ts` requests on HLS vhosts (see the module docs).
pub async fn handle(server: &Arc<Server>, cfg: &Config, req: &Request, guard: &ClientGuard) -> HlsReply {
    if req.method != "GET" && req.method != "HEAD" {
        return HlsReply::Files;
    }
    // Media segments (TS or fMP4), low-latency parts and fMP4 init segments.
    if req.path.ends_with(".ts") || req.path.ends_with(".m4s") || req.path.ends_with(".mp4") {
        if let Some(vhost) = cfg.vhost(&req.host()).filter(|v| v.hls.enabled && v.hls.low_latency) {
            if req.path.ends_with(".m4s") {
                wait_for_hinted_part(server, cfg, vhost, req).await;
            }
        }
        return segment(server, cfg, req, guard).await;
    }
    let Some((vhost, key)) = stream_of(cfg, req) else { return HlsReply::Files };
    if !vhost.hls.ctx {
        // Plain files, as SRS; the config refuses this where play is restricted.
        if vhost.hls.low_latency {
            if let Some(resp) = low_latency_playlist(server, vhost, &key, req).await {
                return HlsReply::Full(resp);
            }
        }
        return HlsReply::Files;
    }
    let Some(file) = super::files::resolve(&cfg.http_server.dir, &req.path) else { return HlsReply::Files };
    if !tokio::fs::try_exists(&file).await.unwrap_or(false) {
        return HlsReply::Files; // 404 as any missing file
    }
    let ctx = req.query_param("hls_ctx").unwrap_or_default();
    if !ctx.is_empty() {
        match server.hls_viewers.touch(&ctx, &key) {
            Seen::Live => {
                let live = match vhost.hls.low_latency {
                    true => low_latency_playlist(server, vhost, &key, req).await,
                    false => None,
                };
                let resp = match live {
                    Some(mut r) if r.status == 200 && vhost.hls.ts_ctx => {
                        r.body = with_ctx(&String::from_utf8_lossy(&r.body), &ctx).into_bytes().into();
                        r
                    }
                    Some(r) => r,
                    None => session_playlist(&file, &ctx, vhost.hls.ts_ctx).await,
                };
                if let Some(s) = server.hls_viewers.map().get(&ctx) {
                    s.sent(resp.body.len() as u64);
                }
                return HlsReply::Full(resp);
            }
            Seen::Kicked => return HlsReply::Full(Response::text(404, "Not Found: the HLS session was ended\n")),
            Seen::Unknown => {}
        }
    }
    // A new viewer (or one whose session ended): admitted like any play. It appears in the
    // API's clients as `hls-play`, its id the session's.
    let viewer = server.clients.register(guard.client.ip);
    let id = viewer.client.id.clone();
    let page_url = req.header("referer").unwrap_or("").to_string();
    let host = req.host();
    let query = strip_ctx(&req.query);
    // The URL the viewer asked for (without the session), as HTTP-FLV players show theirs.
    let tc_url = format!(
        "http://{}{}{}{}",
        req.header("host").unwrap_or(""),
        req.path,
        if query.is_empty() { "" } else { "?" },
        query
    );
    let sreq = StreamRequest {
        vhost,
        key: key.clone(),
        param: if query.is_empty() { String::new() } else { format!("?{query}") },
        client_host: &host,
        client_id: &id,
        tc_url: &tc_url,
        peer_ip: guard.client.ip,
        reported_ip: req.client_ip(guard.client.ip),
        page_url: &page_url,
        connection_hooks: false,
    };
    let admitted = match Box::pin(streams::admit_hls(server, &sreq)).await {
        Ok(a) => a,
        Err(e) => {
            warn!(stream = %key.url(), peer = %guard.client.ip, "HLS play refused: {e}");
            return HlsReply::Full(Response::text(403, &format!("{e}\n")));
        }
    };
    {
        let mut map = server.hls_viewers.map();
        if map.len() >= MAX_SESSIONS {
            warn!(stream = %key.url(), "HLS viewer refused: {MAX_SESSIONS} sessions already");
            return HlsReply::Full(Response::text(503, "too many HLS viewers\n"));
        }
        let ttl = Duration::from_secs_f64((2.0 * vhost.hls.window).max(10.0));
        viewer.client.set_details(ClientDetails {
            vhost: key.vhost.clone(),
            app: key.app.clone(),
            stream: key.stream.clone(),
            stream_url: key.url(),
            stream_id: server.hub.get(&key).map(|s| s.id.clone()).unwrap_or_default(),
            tc_url,
            page_url,
            swf_url: String::new(),
            kind: ClientType::HlsPlay,
        });
        map.insert(id.clone(), Session::new(key.clone(), ttl, admitted, viewer));
    }
    info!(stream = %key.url(), hls_ctx = %id, peer = %guard.client.ip, "HLS viewer session started");
    let mut target = format!("{}?hls_ctx={id}", req.path);
    if !query.is_empty() {
        target.push('&');
        target.push_str(&query);
    }
    let tracks = server.hub.get(&key).map(|s| s.tracks()).unwrap_or_default();
    let body = format!("#EXTM3U\n#EXT-X-STREAM-INF:{}\n{target}\n", stream_inf(&tracks));
    HlsReply::Full(
        Response::new(200, "application/vnd.apple.mpegurl", body.into_bytes()).header("Cache-Control", "no-cache"),
    )
}

/// A segment: with a live session it is that viewer's; without one, refused where the vhost
/// restricts play.
async fn segment(server: &Arc<Server>, cfg: &Config, req: &Request, guard: &ClientGuard) -> HlsReply {
    let Some(vhost) = cfg.vhost(&req.host()).filter(|v| v.hls.enabled) else { return HlsReply::Files };
    if !vhost.access.restricts(rsrs_config::Action::Play) || !vhost.hls.ctx {
        return HlsReply::Files;
    }
    let ctx = req.query_param("hls_ctx").unwrap_or_default();
    let known = !ctx.is_empty() && {
        let map = server.hls_viewers.map();
        // The segment must be the session's stream's: a session for one stream does not open
        // another's segments.
        map.get(&ctx).is_some_and(|s| !s.kicked() && segment_of(&req.path, s.key(), &vhost.hls.ts_file))
    };
    if known {
        // Accounted to the viewer (its bytes in the API), as SRS does.
        let len = match super::files::resolve(&cfg.http_server.dir, &req.path) {
            Some(p) => tokio::fs::metadata(p).await.map(|m| m.len()).unwrap_or(0),
            None => 0,
        };
        if let Some(s) = server.hls_viewers.map().get(&ctx) {
            s.sent(len);
        }
        return HlsReply::Files;
    }
    warn!(path = %crate::names::Escaped(&req.path), peer = %guard.client.ip, "HLS segment refused: no viewer session");
    HlsReply::Full(Response::text(403, "no HLS viewer session: request the playlist first\n"))
}

/// Whether a segment path is one of the session's stream: in its app's directory and, when the
/// segment template names files after the stream (`[stream]-[seq].ts`, the default), so named;
/// or in the stream's own directory (`[app]/[stream]/init.mp4`, fMP4's default init segment).
fn segment_of(path: &str, key: &StreamKey, ts_template: &str) -> bool {
    let path = path.trim_start_matches('/');
    let Some((dir, file)) = path.rsplit_once('/') else { return false };
    if dir == format!("{}/{}", key.app, key.stream) {
        return true;
    }
    let named_after_stream = ts_template.rsplit('/').next().is_some_and(|f| f.starts_with("[stream]"));
    dir == key.app
        && (!named_after_stream
            || file.starts_with(&format!("{}-", key.stream))
            || file.starts_with(&format!("{}.", key.stream)))
}

/// The master playlist's attributes for the stream: SRS's placeholder bandwidth, and the
/// codecs (RFC 6381) and resolution players use to choose before fetching anything.
fn stream_inf(tracks: &crate::media::Tracks) -> String {
    use crate::media::Codec;
    let mut codecs = Vec::new();
    if let Some(config) = tracks.video.as_ref().and_then(|v| v.config.as_ref()) {
        let d = config.data();
        let c = match config.codec {
            Codec::H264 if d.len() >= 4 => Some(format!("avc1.{:02x}{:02x}{:02x}", d[1], d[2], d[3])),
            Codec::H265 => rsrs_codec::hevc::HevcConfig::parse(d).ok().map(|c| c.codec_string("hvc1")),
            Codec::Av1 => rsrs_codec::av1::Av1Config::parse(d).ok().map(|c| c.codec_string()),
            Codec::Vp9 => rsrs_codec::vp9::Vp9Config::parse(d).ok().map(|c| c.codec_string()),
            _ => None,
        };
        codecs.extend(c);
    }
    if let Some(audio) = tracks.audio.as_ref() {
        let c = match audio.codec {
            Codec::Aac => audio.config.as_ref().and_then(|c| c.data().first().map(|b| format!("mp4a.40.{}", b >> 3))),
            Codec::Mp3 => Some("mp4a.40.34".to_string()),
            Codec::Opus => Some("opus".to_string()),
            _ => None,
        };
        codecs.extend(c);
    }
    let mut inf = "BANDWIDTH=1,AVERAGE-BANDWIDTH=1".to_string();
    if !codecs.is_empty() {
        inf.push_str(&format!(",CODECS=\"{}\"", codecs.join(",")));
    }
    if let Some(v) = tracks.video_info.as_ref().filter(|v| v.width > 0) {
        inf.push_str(&format!(",RESOLUTION={}x{}", v.width, v.height));
    }
    inf
}

/// The query without `hls_ctx`.
fn strip_ctx(query: &str) -> String {
    query.split('&').filter(|kv| !kv.is_empty() && !kv.starts_with("hls_ctx=")).collect::<Vec<_>>().join("&")
}

/// The real playlist for a session, its segment URIs carrying the session id.
async fn session_playlist(file: &std::path::Path, ctx: &str, ts_ctx: bool) -> Response {
    let text = match tokio::fs::metadata(file).await {
        Ok(m) if m.len() <= MAX_PLAYLIST => tokio::fs::read_to_string(file).await.unwrap_or_default(),
        _ => String::new(),
    };
    if text.is_empty() {
        return Response::text(404, "Not Found");
    }
    let body = if ts_ctx { with_ctx(&text, ctx) } else { text };
    Response::new(200, "application/vnd.apple.mpegurl", body.into_bytes()).header("Cache-Control", "no-cache")
}

/// Appends `hls_ctx=ID` to every URI of a playlist: the URI lines, and the `URI="..."`
/// attributes of tags (fMP4's init segment, low-latency parts and preload hints).
fn with_ctx(playlist: &str, ctx: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64);
    let add = |out: &mut String, uri: &str| {
        out.push_str(uri);
        out.push(if uri.contains('?') { '&' } else { '?' });
        out.push_str("hls_ctx=");
        out.push_str(ctx);
    };
    for line in playlist.lines() {
        if line.starts_with('#') {
            match line.split_once("URI=\"").and_then(|(head, rest)| Some((head, rest.split_once('"')?))) {
                Some((head, (uri, tail))) => {
                    out.push_str(head);
                    out.push_str("URI=\"");
                    add(&mut out, uri);
                    out.push('"');
                    out.push_str(tail);
                }
                None => out.push_str(line),
            }
        } else if !line.is_empty() {
            add(&mut out, line);
        }
        out.push('\n');
    }
    out
}

/// How long a blocking playlist request or a preload-hinted part request may wait, at most
/// (RFC 8216bis: three target durations, then 503).
fn block_limit(hls: &rsrs_config::Hls) -> Duration {
    Duration::from_secs_f64((3.0 * hls.fragment * hls.td_ratio).clamp(1.0, 60.0))
}

/// A low-latency playlist from the stream's live state: for `_HLS_msn`/`_HLS_part`, held until
/// that segment or part is listed (blocking reload); `_HLS_skip=YES` asks for a delta update.
/// `None` when this process has no state for the stream (the file on disk then answers).
async fn low_latency_playlist(server: &Server, vhost: &Vhost, key: &StreamKey, req: &Request) -> Option<Response> {
    let state = server.hls.get(key)?;
    let number = |k: &str| req.query_param(k).map(|v| v.parse::<u64>().map_err(|_| v));
    let (msn, part) = match (number("_HLS_msn"), number("_HLS_part")) {
        (Some(Ok(m)), Some(Ok(p))) => (Some(m), Some(p as usize)),
        (Some(Ok(m)), None) => (Some(m), None),
        (None, None) => (None, None),
        _ => return Some(Response::text(400, "_HLS_msn must be a number, and _HLS_part needs it\n")),
    };
    let skip = matches!(req.query_param("_HLS_skip").as_deref(), Some("YES" | "v2"));
    if let Some(m) = msn {
        let last = lock(&state).last_msn();
        if m > last + 2 {
            return Some(Response::text(400, &format!("_HLS_msn {m} is too far ahead of {last}\n")));
        }
        // Subscribed before looking, so a change in between is not missed.
        let mut changed = server.hls.watch();
        let deadline = tokio::time::Instant::now() + block_limit(&vhost.hls);
        while !lock(&state).has(m, part) {
            if !matches!(tokio::time::timeout_at(deadline, changed.changed()).await, Ok(Ok(()))) {
                return Some(Response::text(503, "the asked segment or part did not come in time\n"));
            }
        }
    }
    let text = lock(&state).low_latency_playlist(skip)?;
    // A blocking request names one version of the playlist: it may be cached; a plain one not.
    let cache = if msn.is_some() {
        format!("public, max-age={}", (6.0 * vhost.hls.fragment).ceil())
    } else {
        "no-cache".into()
    };
    Some(Response::new(200, "application/vnd.apple.mpegurl", text.into_bytes()).header("Cache-Control", cache))
}

/// A request for the part a low-latency stream writes next (its preload hint) is held until
/// the part is there, as RFC 8216bis asks; anything else is answered at once.
async fn wait_for_hinted_part(server: &Server, cfg: &Config, vhost: &Vhost, req: &Request) {
    let Some(file) = super::files::resolve(&cfg.http_server.dir, &req.path) else { return };
    if tokio::fs::try_exists(&file).await.unwrap_or(false) || !server.hls.is_hinted(&file) {
        return;
    }
    let mut changed = server.hls.watch();
    let deadline = tokio::time::Instant::now() + block_limit(&vhost.hls);
    while !tokio::fs::try_exists(&file).await.unwrap_or(false) {
        if !matches!(tokio::time::timeout_at(deadline, changed.changed()).await, Ok(Ok(()))) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_uris_carry_the_session() {
        let p = "#EXTM3U\n#EXTINF:2.000, no desc\nlive-1.ts\n#EXTINF:2.000, no desc\nhttp://cdn/x.ts?a=1\n";
        assert_eq!(
            with_ctx(p, "abc"),
            "#EXTM3U\n#EXTINF:2.000, no desc\nlive-1.ts?hls_ctx=abc\n#EXTINF:2.000, no desc\nhttp://cdn/x.ts?a=1&hls_ctx=abc\n"
        );
        assert_eq!(strip_ctx("hls_ctx=x&token=y"), "token=y");
        assert_eq!(
            with_ctx("#EXT-X-MAP:URI=\"s/init.mp4\"\n#EXTINF:2.000, no desc\ns-1.m4s\n", "abc"),
            "#EXT-X-MAP:URI=\"s/init.mp4?hls_ctx=abc\"\n#EXTINF:2.000, no desc\ns-1.m4s?hls_ctx=abc\n"
        );
        assert_eq!(
            with_ctx("#EXT-X-PART:DURATION=0.330,URI=\"s-2.0.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s-2.1.m4s\"\n", "abc"),
            "#EXT-X-PART:DURATION=0.330,URI=\"s-2.0.m4s?hls_ctx=abc\",INDEPENDENT=YES\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s-2.1.m4s?hls_ctx=abc\"\n"
        );
        let key = StreamKey { vhost: "v".into(), app: "live".into(), stream: "s".into() };
        let t = "[app]/[stream]-[seq].ts";
        assert!(segment_of("/live/s-3.ts", &key, t));
        assert!(!segment_of("/other/s-3.ts", &key, t));
        assert!(!segment_of("/live/another-3.ts", &key, t), "another stream's segment");
        assert!(!segment_of("/live/sx-3.ts", &key, t));
        assert!(segment_of("/live/seg-3.ts", &key, "[app]/seg-[seq].ts"), "a template not named after the stream");
        assert!(segment_of("/live/s/init.mp4", &key, t), "the stream's init segment");
        assert!(!segment_of("/live/other/init.mp4", &key, t), "another stream's init segment");
    }
}
