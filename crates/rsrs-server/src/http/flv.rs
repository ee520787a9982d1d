//! HTTP-FLV: a live stream as an endless FLV body (`http_remux`).
//!
//! The response head is held back until the first media bytes, as SRS does, so a player of a
//! stream that is not published yet simply waits. Each tag's payload is the publisher's shared
//! buffer; a player writes only its own 15 bytes of tag framing around it.

use super::{cors_headers, head_bytes, Request};
use crate::hub::{ConsumerClock, Frame, FrameKind, HubEvent, SkipAhead, StreamKey};
use crate::rtmp::io::write_all_vectored;
use crate::server::{source_settings, Server};
use crate::stats::{ClientDetails, ClientGuard, ClientType};
use bytes::{BufMut, Bytes, BytesMut};
use rsrs_codec::flv;
use rsrs_config::{Config, Vhost};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};

const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BATCH: usize = 256;

/// Matches a request path against the vhost's `http_remux` mount (vhost from `Host`, falling
/// back to the default vhost). The path must have as many segments as the mount template.
pub fn match_mount(cfg: &Config, req: &Request) -> Option<(Vhost, StreamKey)> {
    let vhost = cfg.vhost(&req.host())?;
    if !vhost.enabled || !vhost.http_remux.enabled {
        return None;
    }
    let template = vhost.http_remux.mount.trim_start_matches("[vhost]");
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let (mut app, mut stream) = (None, None);
    for (ts, ps) in t.iter().zip(p.iter()) {
        if let Some(suffix) = ts.strip_prefix("[stream]") {
            stream = Some(ps.strip_suffix(suffix)?.to_string());
        } else if *ts == "[app]" {
            app = Some(ps.to_string());
        } else if ts != ps {
            return None;
        }
    }
    let stream = stream.filter(|s| !s.is_empty())?;
    let app = app.unwrap_or_else(|| "__defaultApp__".into());
    if app.is_empty() {
        return None;
    }
    Some((vhost.clone(), StreamKey { vhost: vhost.name.clone(), app, stream }))
}

/// Streams `key` to the client until the publisher leaves, the client goes, or it is kicked.
pub async fn serve(
    server: &Arc<Server>,
    sock: TcpStream,
    req: &Request,
    vhost: &Vhost,
    key: StreamKey,
    guard: &ClientGuard,
) -> std::io::Result<()> {
    let consumer = server.hub.attach(&key, source_settings(vhost));
    let source = consumer.source.clone();
    guard.client.set_details(ClientDetails {
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        stream: key.stream.clone(),
        stream_url: key.url(),
        stream_id: source.id.clone(),
        tc_url: format!("rtmp://{}/{}", vhost.name, key.app),
        page_url: req.header("referer").unwrap_or("").to_string(),
        swf_url: String::new(),
        kind: ClientType::FlvPlay,
    });
    info!(stream = %key.url(), "HTTP-FLV play started");
    let chunked = !req.http10;
    let mut head_headers = vec![("Content-Type", "video/x-flv".to_string())];
    if chunked {
        head_headers.push(("Transfer-Encoding", "chunked".to_string()));
    }
    head_headers.push(("Cache-Control", "no-cache".to_string()));
    head_headers.extend(cors_headers(req, server.config().http_server.crossdomain));
    let mut head = Some(head_bytes(200, &head_headers, None, chunked).freeze());

    let (mut rd, wr) = sock.into_split();
    let sub = source.subscribe();
    let mut out = FlvOut {
        wr,
        chunked,
        has_audio: sub.has_audio,
        has_video: sub.has_video,
        parts: Vec::new(),
        framing: BytesMut::new(),
    };
    let mut rx = sub.rx;
    let mut has_video = sub.has_video;
    let mut batch: Vec<Arc<Frame>> = sub.initial;
    let mut clock = ConsumerClock::default();
    let mut skip = SkipAhead::default();
    let mw = vhost.play.mw_latency;
    let kill = guard.client.kill.clone();
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut scratch = [0u8; 512];

    let result: std::io::Result<()> = async {
        if !batch.is_empty() {
            out.write(&mut head, &mut batch, &mut clock, guard, &source).await?;
        }
        loop {
            let deadline = flush_at;
            tokio::select! {
                biased;
                _ = kill.cancelled() => return Ok(()),
                r = rd.read(&mut scratch) => {
                    // Players send nothing after the request; EOF means they left.
                    if r? == 0 {
                        return Ok(());
                    }
                }
                // While a merge window is open the ring is not polled (see the RTMP player).
                ev = rx.recv(), if flush_at.is_none() => {
                    let mut ended = false;
                    let mut take = |ev: HubEvent, batch: &mut Vec<Arc<Frame>>, skip: &mut SkipAhead, has_video: &mut bool| match ev {
                        HubEvent::Media(f) => {
                            if f.sequence_header && f.kind == FrameKind::Video {
                                *has_video = true;
                            }
                            if skip.admit(&f, *has_video) {
                                batch.push(f);
                            }
                        }
                        HubEvent::Unpublished => ended = true,
                    };
                    match ev {
                        Ok(ev) => {
                            take(ev, &mut batch, &mut skip, &mut has_video);
                            while batch.len() < MAX_BATCH {
                                match rx.try_recv() {
                                    Ok(ev) => take(ev, &mut batch, &mut skip, &mut has_video),
                                    Err(_) => break,
                                }
                            }
                        }
                        Err(RecvError::Lagged(n)) => {
                            debug!(missed = n, "HTTP-FLV player fell behind; skipping to the next keyframe");
                            skip.lagged();
                            batch.extend(source.headers());
                        }
                        Err(RecvError::Closed) => ended = true,
                    }
                    if ended {
                        // SRS ends the response when the publisher leaves.
                        if !batch.is_empty() {
                            out.write(&mut head, &mut batch, &mut clock, guard, &source).await?;
                        }
                        if head.is_none() {
                            out.finish().await?;
                        }
                        info!(stream = %key.url(), "HTTP-FLV play ended: stream unpublished");
                        return Ok(());
                    }
                    if batch.is_empty() {
                        continue;
                    }
                    if mw.is_zero() || batch.len() >= MAX_BATCH {
                        out.write(&mut head, &mut batch, &mut clock, guard, &source).await?;
                        flush_at = None;
                    } else if flush_at.is_none() {
                        flush_at = Some(tokio::time::Instant::now() + mw);
                    }
                }
                _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                    let mut ended = false;
                    loop {
                        match rx.try_recv() {
                            Ok(HubEvent::Media(f)) => {
                                if f.sequence_header && f.kind == FrameKind::Video {
                                    has_video = true;
                                }
                                if skip.admit(&f, has_video) {
                                    batch.push(f);
                                }
                                if batch.len() >= MAX_BATCH {
                                    out.write(&mut head, &mut batch, &mut clock, guard, &source).await?;
                                }
                            }
                            Ok(HubEvent::Unpublished) => {
                                ended = true;
                                break;
                            }
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                                debug!(missed = n, "HTTP-FLV player fell behind; skipping to the next keyframe");
                                skip.lagged();
                                batch.clear();
                                batch.extend(source.headers());
                            }
                            Err(_) => break,
                        }
                    }
                    if !batch.is_empty() {
                        out.write(&mut head, &mut batch, &mut clock, guard, &source).await?;
                    }
                    flush_at = None;
                    if ended {
                        if head.is_none() {
                            out.finish().await?;
                        }
                        info!(stream = %key.url(), "HTTP-FLV play ended: stream unpublished");
                        return Ok(());
                    }
                }
            }
        }
    }
    .await;
    info!(stream = %key.url(), "HTTP-FLV play stopped");
    result
}

struct FlvOut {
    wr: OwnedWriteHalf,
    chunked: bool,
    has_audio: bool,
    has_video: bool,
    parts: Vec<Bytes>,
    framing: BytesMut,
}

impl FlvOut {
    /// Writes a batch of tags (and, the first time, the HTTP head and FLV header).
    async fn write(
        &mut self,
        head: &mut Option<Bytes>,
        batch: &mut Vec<Arc<Frame>>,
        clock: &mut ConsumerClock,
        guard: &ClientGuard,
        source: &crate::hub::Source,
    ) -> std::io::Result<()> {
        self.parts.clear();
        self.framing.clear();
        let first = head.is_some();
        let mut body_len: usize = batch.iter().map(|f| flv::TAG_HEADER_LEN + f.payload.len() + 4).sum();
        if let Some(h) = head.take() {
            self.parts.push(h);
            // Declare the tracks the stream has; if not known yet, what this batch carries.
            let a = self.has_audio || batch.iter().any(|f| f.kind == FrameKind::Audio);
            let v = self.has_video || batch.iter().any(|f| f.kind == FrameKind::Video);
            let (a, v) = if a || v { (a, v) } else { (true, true) };
            body_len += flv::HEADER_LEN;
            self.framing.reserve(32 + batch.len() * 16);
            if self.chunked {
                self.framing.extend_from_slice(format!("{body_len:x}\r\n").as_bytes());
            }
            self.framing.extend_from_slice(&flv::header(a, v));
        } else {
            self.framing.reserve(32 + batch.len() * 16);
            if self.chunked {
                self.framing.extend_from_slice(format!("{body_len:x}\r\n").as_bytes());
            }
        }
        let _ = first;
        for f in batch.iter() {
            let ts = clock.stamp(f);
            flv::put_tag_header(&mut self.framing, f.flv_type(), ts, f.payload.len());
            self.parts.push(self.framing.split().freeze());
            self.parts.push(f.payload.clone());
            self.framing.put_u32((flv::TAG_HEADER_LEN + f.payload.len()) as u32);
        }
        if self.chunked {
            self.framing.extend_from_slice(b"\r\n");
        }
        self.parts.push(self.framing.split().freeze());
        let n = tokio::time::timeout(WRITE_TIMEOUT, write_all_vectored(&mut self.wr, &mut self.parts))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "HTTP-FLV player stopped reading"))??;
        guard.client.counters.sent(n);
        source.send_bytes.fetch_add(n as u64, Ordering::Relaxed);
        batch.clear();
        Ok(())
    }

    /// Ends a chunked body.
    async fn finish(&mut self) -> std::io::Result<()> {
        if self.chunked {
            let mut parts = [Bytes::from_static(b"0\r\n\r\n")];
            write_all_vectored(&mut self.wr, &mut parts).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: vec![("Host".into(), host.into())],
            http10: false,
            body: Bytes::new(),
        }
    }

    #[test]
    fn mount_matching() {
        let cfg = rsrs_config::Config::builtin(&Default::default()).unwrap();
        let (_, k) = match_mount(&cfg, &req("127.0.0.1:8080", "/live/livestream.flv")).unwrap();
        assert_eq!((k.app.as_str(), k.stream.as_str(), k.vhost.as_str()), ("live", "livestream", "__defaultVhost__"));
        assert!(match_mount(&cfg, &req("h", "/live/sub/x.flv")).is_none(), "segment count must match");
        assert!(match_mount(&cfg, &req("h", "/x.flv")).is_none());
        assert!(match_mount(&cfg, &req("h", "/live/.flv")).is_none());
        let cfg = rsrs_config::Config::load_str(
            "listen 1935;\nvhost __defaultVhost__ { http_remux { enabled on; mount [vhost]/tv/[app]/[stream].flv; } }\n",
            "t",
            &Default::default(),
        )
        .unwrap();
        let (_, k) = match_mount(&cfg, &req("h", "/tv/live/s1.flv")).unwrap();
        assert_eq!((k.app.as_str(), k.stream.as_str()), ("live", "s1"));
        assert!(match_mount(&cfg, &req("h", "/xx/live/s1.flv")).is_none());
    }
}
