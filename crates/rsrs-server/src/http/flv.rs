//! HTTP-FLV: a live stream as an endless FLV body (`http_remux`).
//!
//! The response head is held back until the first media bytes, as SRS does, so a player of a
//! stream that is not published yet simply waits. Each tag's payload is the publisher's shared
//! buffer; a player writes only its own 15 bytes of tag framing around it.

use super::{cors_headers, head_bytes, Request, Response};
use crate::cluster::Found;
use crate::hub::{Consumer, ConsumerClock, StreamKey};
use crate::media::{MediaPacket, Track};
use crate::rtmp::io::{write_all_vectored, Gather};
use crate::server::Server;
use crate::stats::{ClientDetails, ClientGuard, ClientType};
use crate::streams::StreamRequest;
use bytes::{BufMut, Bytes};
use rsrs_codec::flv;
use rsrs_config::{Config, Vhost};
use rsrs_core::player::{self, AfterUnpublish, ClientSays, PlayEnd, PlayerWire};
use rsrs_core::shared_framing::SharedFraming;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tracing::info;

const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a player may wait for a stream that has not started: then a 404. SRS waits for
/// ever, which lets idle waits for made-up names hold connection slots indefinitely.
pub const STREAM_WAIT: Duration = Duration::from_secs(30);

/// Matches a request path against the vhost's `http_remux` mount (vhost from `Host`, falling
/// back to the default vhost). The path must have as many segments as the mount template.
pub fn match_mount<'c>(cfg: &'c Config, req: &Request) -> Option<(&'c Vhost, StreamKey)> {
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
    Some((vhost, StreamKey { vhost: vhost.name.clone(), app, stream }))
}

/// The answer for a player whose stream lives on another origin of the cluster: a 302 to the
/// same URL there. Redirecting keeps an origin's work to its own streams, as SRS's RTMP 302 does;
/// the peer is assumed to serve HTTP on the port this request came to, as the guide's origins
/// share one config.
pub fn redirect(found: &Found, req: &Request, key: &StreamKey, http_port: u16) -> Response {
    let host = if found.ip.contains(':') { format!("[{}]", found.ip) } else { found.ip.clone() };
    let query = if req.query.is_empty() { String::new() } else { format!("?{}", req.query) };
    let location = format!("http://{host}:{http_port}{}{query}", req.path);
    info!(stream = %key.url(), "origin cluster: redirecting the HTTP-FLV player to {location}");
    Response::text(302, &format!("Redirect to {location}\n")).header("Location", location)
}

/// Streams `key` to the client until the publisher leaves, the client goes, or it is kicked.
pub async fn serve(
    server: &Arc<Server>,
    sock: TcpStream,
    req: &Request,
    sreq: &StreamRequest<'_>,
    mut consumer: Consumer,
    batch: Vec<Arc<MediaPacket>>,
    guard: &ClientGuard,
) -> std::io::Result<()> {
    let (key, vhost) = (&sreq.key, sreq.vhost);
    let source = consumer.source().clone();
    guard.client.set_details(ClientDetails {
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        stream: key.stream.clone(),
        stream_url: key.url(),
        stream_id: source.id.clone(),
        // The URL the player asked for (SRS shows an RTMP tcUrl here, which no HTTP player used).
        tc_url: format!(
            "http://{}{}{}{}",
            req.header("host").unwrap_or(""),
            req.path,
            if req.query.is_empty() { "" } else { "?" },
            req.query
        ),
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
    let head = head_bytes(200, &head_headers, None, chunked).freeze();

    let (rd, wr) = sock.into_split();
    let out = FlvOut {
        wr,
        chunked,
        head: Some(head),
        has_audio: consumer.has_audio,
        has_video: consumer.has_video(),
        gather: Gather::default(),
    };
    let mut wire = FlvPlayer {
        out,
        rd,
        scratch: [0u8; 512],
        guard,
        source: &source,
        give_up_at: tokio::time::Instant::now() + STREAM_WAIT,
    };
    let result: std::io::Result<()> = async {
        let end = player::run(&mut wire, &mut consumer, batch, vhost.play.mw_latency, &guard.client.kill).await?;
        let out = &mut wire.out;
        match end {
            PlayEnd::Failed(why) => {
                out.fail(503, &why).await?;
                info!(stream = %key.url(), "HTTP-FLV play failed: {why}");
            }
            PlayEnd::GaveUp => {
                let why = format!("no media within {} s", STREAM_WAIT.as_secs());
                out.fail(404, &why).await?;
                info!(stream = %key.url(), "HTTP-FLV play failed: {why}");
            }
            PlayEnd::Unpublished | PlayEnd::Closed => {
                // SRS ends the response when the publisher leaves.
                out.finish().await?;
                info!(stream = %key.url(), "HTTP-FLV play ended: stream unpublished");
            }
            PlayEnd::ClientStopped | PlayEnd::Kicked | PlayEnd::Done => {}
        }
        Ok(())
    }
    .await;
    info!(stream = %key.url(), "HTTP-FLV play stopped");
    result
}

/// An HTTP-FLV player's side of the shared player loop.
struct FlvPlayer<'a> {
    out: FlvOut,
    rd: OwnedReadHalf,
    scratch: [u8; 512],
    guard: &'a ClientGuard,
    source: &'a Arc<crate::hub::Source>,
    /// A stream that has not started by then gets a 404 (while nothing was sent).
    give_up_at: tokio::time::Instant,
}

impl PlayerWire for FlvPlayer<'_> {
    type Error = std::io::Error;
    type Input = usize;

    fn send(
        &mut self,
        batch: &[Arc<MediaPacket>],
        clock: &mut ConsumerClock,
        shared: &SharedFraming,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        self.out.write(batch, clock, shared, self.guard, self.source)
    }

    async fn input(&mut self) -> std::io::Result<usize> {
        self.rd.read(&mut self.scratch).await
    }

    /// Players send nothing after the request; EOF means they left.
    async fn handle(&mut self, n: usize) -> std::io::Result<ClientSays> {
        Ok(if n == 0 { ClientSays::Stop } else { ClientSays::Nothing })
    }

    fn after_unpublish(&mut self) -> AfterUnpublish {
        AfterUnpublish::End
    }

    fn give_up_at(&self) -> Option<tokio::time::Instant> {
        self.out.head.is_some().then_some(self.give_up_at)
    }
}

/// `batch`'s FLV tags framed for one player: its own tag headers (with its timestamps) and
/// previous-tag sizes around the packets' shared bodies.
fn own_tags(g: &mut Gather, batch: &[Arc<MediaPacket>], clock: &mut ConsumerClock) {
    for (i, f) in batch.iter().enumerate() {
        let ts = clock.stamp(f);
        let len = f.flv_len();
        flv::put_tag_header(&mut g.framing, flv::tag_type(f.track), ts, len);
        g.frame_body(i);
        g.framing.put_u32((flv::TAG_HEADER_LEN + len) as u32);
    }
}

/// The layouts [`flv_tags`] writes, for [`SharedFraming`] (plus one when chunked): what
/// [`own_tags`] writes, in one buffer.
const FLV_TAGS: u64 = 2;

/// FLV tags (header, body, previous tag size) of `batch` in one buffer, stamped by `clock`; as
/// one HTTP chunk when `chunked`.
fn flv_tags(batch: &[Arc<MediaPacket>], clock: &mut ConsumerClock, chunked: bool) -> Bytes {
    let len: usize = batch.iter().map(|f| flv::TAG_HEADER_LEN + f.flv_len() + 4).sum();
    let mut out = bytes::BytesMut::with_capacity(len + 12);
    if chunked {
        put_chunk_size(&mut out, len);
    }
    for f in batch {
        let len = f.flv_len();
        flv::put_tag_header(&mut out, flv::tag_type(f.track), clock.stamp(f), len);
        out.extend_from_slice(f.flv_body());
        out.put_u32((flv::TAG_HEADER_LEN + len) as u32);
    }
    if chunked {
        out.extend_from_slice(b"\r\n");
    }
    out.freeze()
}

/// An HTTP chunk's size line (`1a2b\r\n`), without the allocation `format!` would make per write.
fn put_chunk_size(out: &mut bytes::BytesMut, len: usize) {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in (0..digits).rev() {
        out.put_u8(b"0123456789abcdef"[(len >> (i * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

struct FlvOut {
    wr: OwnedWriteHalf,
    chunked: bool,
    /// The response head, held back until the first media bytes.
    head: Option<Bytes>,
    has_audio: bool,
    has_video: bool,
    gather: Gather,
}

impl FlvOut {
    /// Writes a batch of tags (and, the first time, the HTTP head and FLV header): each tag's
    /// header with this player's timestamp before the packet's shared body, or, when another
    /// player of the merge window on the same timeline was sent the same packets, the tags
    /// `shared` framed once for them all.
    async fn write(
        &mut self,
        batch: &[Arc<MediaPacket>],
        clock: &mut ConsumerClock,
        shared: &SharedFraming,
        guard: &ClientGuard,
        source: &crate::hub::Source,
    ) -> std::io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let g = &mut self.gather;
        g.clear();
        let chunked = self.chunked;
        let tags = match self.head {
            Some(_) => None,
            None => shared.framed(FLV_TAGS | u64::from(chunked), batch, clock, |b, c| flv_tags(b, c, chunked)),
        };
        match tags {
            Some(tags) => g.held_body(tags),
            None => self.frame(batch, clock),
        }
        let g = &mut self.gather;
        let n = tokio::time::timeout(WRITE_TIMEOUT, g.write(&mut self.wr, batch))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "HTTP-FLV player stopped reading"))??;
        // A shared framing is let go at once, not kept alive until this player's next write.
        g.clear();
        guard.client.counters.sent(n);
        source.send_bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }

    /// This player's own framing of `batch` around the packets' shared bodies.
    fn frame(&mut self, batch: &[Arc<MediaPacket>], clock: &mut ConsumerClock) {
        let g = &mut self.gather;
        g.framing.reserve(32 + batch.len() * 16);
        let mut body_len: usize = batch.iter().map(|f| flv::TAG_HEADER_LEN + f.flv_len() + 4).sum();
        let flv_header = self.head.take().map(|h| {
            g.held_body(h);
            // Declare the tracks the stream has; if not known yet, what this batch carries.
            let a = self.has_audio || batch.iter().any(|f| f.track == Track::Audio);
            let v = self.has_video || batch.iter().any(|f| f.track == Track::Video);
            body_len += flv::HEADER_LEN;
            if a || v {
                flv::header(a, v)
            } else {
                flv::header(true, true)
            }
        });
        if self.chunked {
            put_chunk_size(&mut g.framing, body_len);
        }
        if let Some(h) = flv_header {
            g.framing.extend_from_slice(&h);
        }
        own_tags(g, batch, clock);
        if self.chunked {
            g.framing.extend_from_slice(b"\r\n");
        }
    }

    /// The stream cannot be had: `status` if nothing was sent yet, else the body just ends.
    async fn fail(&mut self, status: u16, why: &str) -> std::io::Result<()> {
        if self.head.take().is_some() {
            let body = format!("stream unavailable: {why}\n");
            let mut head = head_bytes(status, &[("Content-Type", "text/plain".to_string())], Some(body.len()), false);
            head.extend_from_slice(body.as_bytes());
            let parts = [head.freeze()];
            write_all_vectored(&mut self.wr, &parts).await?;
            return Ok(());
        }
        self.finish().await
    }

    /// Ends a chunked body that was started (a player that never got bytes gets nothing).
    async fn finish(&mut self) -> std::io::Result<()> {
        if self.chunked && self.head.is_none() {
            let parts = [Bytes::from_static(b"0\r\n\r\n")];
            write_all_vectored(&mut self.wr, &parts).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample of what a batch carries: metadata, configurations, audio, key and inter frames.
    fn sample_batch() -> Vec<Arc<MediaPacket>> {
        let flv = |track, ts, body: &'static [u8]| {
            Arc::new(MediaPacket::from_flv(track, ts, Bytes::from_static(body)).unwrap())
        };
        vec![
            flv(Track::Data, 0, b"\x02\x00\x0aonMetaData\x03\x00\x00\x09"),
            flv(Track::Video, 1000, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0]),
            flv(Track::Audio, 1000, &[0xaf, 0, 0x12, 0x10]),
            flv(Track::Video, 1000, &[0x17, 1, 0, 0, 0x21, 0, 0, 0, 1, 0x65]),
            flv(Track::Audio, 1023, &[0xaf, 1, 0x21, 0x22, 0x23]),
            flv(Track::Video, 1033, &[0x27, 1, 0, 0, 0x42, 0, 0, 0, 1, 0x41]),
        ]
    }

    async fn gathered(g: &Gather, batch: &[Arc<MediaPacket>]) -> Vec<u8> {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        g.write(&mut a, batch).await.unwrap();
        drop(a);
        let mut got = vec![];
        b.read_to_end(&mut got).await.unwrap();
        got
    }

    /// Players sharing a framing get the very bytes they would have framed themselves, from a
    /// new timeline and from one well under way.
    #[tokio::test]
    async fn shared_tags_are_the_players_own_framing_byte_for_byte() {
        let batch = sample_batch();
        let mut under_way = ConsumerClock::default();
        under_way.stamp(&batch[3]);
        for clock in [ConsumerClock::default(), under_way] {
            let mut own = Gather::default();
            let mut c = clock.clone();
            own_tags(&mut own, &batch, &mut c);
            let own = gathered(&own, &batch).await;
            let shared = flv_tags(&batch, &mut clock.clone(), false);
            assert_eq!(&shared[..], &own[..]);
            let chunk = flv_tags(&batch, &mut clock.clone(), true);
            let size = format!("{:x}\r\n", own.len());
            assert_eq!(&chunk[..size.len()], size.as_bytes());
            assert_eq!(&chunk[size.len()..chunk.len() - 2], &own[..]);
            assert_eq!(&chunk[chunk.len() - 2..], b"\r\n");
            let mut reader = flv::FlvReader::new(1 << 20);
            reader.push(&flv::header(true, true));
            reader.push(&shared);
            let stamps: Vec<u32> = std::iter::from_fn(|| reader.next_tag().unwrap()).map(|t| t.timestamp).collect();
            assert_eq!(stamps, [0, 0, 0, 0, 23, 33], "every tag parses back, on the player's timeline");
        }
    }

    fn req(host: &str, path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: vec![("Host".into(), host.into())],
            http10: false,
            body: Bytes::new(),
            wire_len: 0,
        }
    }

    #[test]
    fn chunk_size_lines() {
        for len in [0usize, 1, 15, 16, 255, 0x1a2b, 70_000, usize::MAX] {
            let mut out = bytes::BytesMut::new();
            put_chunk_size(&mut out, len);
            assert_eq!(&out[..], format!("{len:x}\r\n").as_bytes());
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
