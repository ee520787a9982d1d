//! One simulated player and what it observed.

use crate::client::{ClientError, FlvClient, RtmpClient, Url};
use crate::DelayBook;
use rsrs_codec::flv;
use rsrs_codec::media::Content;
use rsrs_codec::rtmp::message as msg;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// A gap in media arrival longer than this is a stall.
pub const STALL: Duration = Duration::from_secs(1);
/// Delay is sampled only after this long from the first frame (past any GOP-cache burst).
pub const LIVE_AFTER: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Proto {
    Rtmp,
    Flv,
    /// Raw bytes (the fan-out baseline): counts bytes only.
    Raw,
}

/// What one player saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlayerStats {
    pub error: Option<String>,
    /// The server closed the stream before the run ended.
    pub disconnected: bool,
    pub connect_ms: Option<f64>,
    /// Time to first media frame (any track), from the start of the connection attempt.
    pub ttff_ms: Option<f64>,
    /// Time to first video keyframe.
    pub ttfk_ms: Option<f64>,
    pub bytes: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub first_video_is_key: Option<bool>,
    /// Media duration received (largest track span), seconds.
    pub media_secs: f64,
    /// Wall time from first frame to the end of the run, seconds.
    pub wall_secs: f64,
    pub stalls: u32,
    pub kept_up: bool,
    /// Sampled publish-to-arrival delays in ms (when the bench's own publisher feeds the stream).
    #[serde(skip)]
    pub delays_ms: Vec<f64>,
    #[serde(skip)]
    pub timestamps_monotonic: bool,
}

#[derive(Default)]
struct Track {
    first: Option<u32>,
    last: u32,
}

impl Track {
    fn see(&mut self, ts: u32) {
        if self.first.is_none() {
            self.first = Some(ts);
        }
        self.last = ts;
    }
    fn span(&self) -> f64 {
        self.first.map(|f| self.last.saturating_sub(f) as f64 / 1000.0).unwrap_or(0.0)
    }
}

struct Observer<'a> {
    start: Instant,
    stats: PlayerStats,
    last_arrival: Option<Instant>,
    first_media: Option<Instant>,
    video: Track,
    audio: Track,
    last_ts: [Option<u32>; 2],
    delays: Option<&'a DelayBook>,
    total: &'a AtomicU64,
    counted: u64,
    raw: bool,
}

impl<'a> Observer<'a> {
    fn new(total: &'a AtomicU64, delays: Option<&'a DelayBook>, raw: bool) -> Self {
        Observer {
            start: Instant::now(),
            stats: PlayerStats { timestamps_monotonic: true, ..Default::default() },
            last_arrival: None,
            first_media: None,
            video: Track::default(),
            audio: Track::default(),
            last_ts: [None, None],
            delays,
            total,
            counted: 0,
            raw,
        }
    }

    /// Accounts bytes read so far; returns the time of this read.
    fn bytes(&mut self, received: u64) -> Instant {
        self.total.fetch_add(received - self.counted, Ordering::Relaxed);
        self.counted = received;
        self.stats.bytes = received;
        Instant::now()
    }

    /// Media arrived at `now`: stall and first-frame bookkeeping.
    fn arrival(&mut self, now: Instant) {
        if let Some(prev) = self.last_arrival {
            if now.duration_since(prev) > STALL {
                self.stats.stalls += 1;
            }
        }
        self.last_arrival = Some(now);
        if self.first_media.is_none() {
            self.first_media = Some(now);
            self.stats.ttff_ms = Some(ms(now - self.start));
        }
    }

    fn media(&mut self, tag_type: u8, ts: u32, payload: &[u8], received: u64) {
        let now = self.bytes(received);
        if tag_type != flv::TAG_AUDIO && tag_type != flv::TAG_VIDEO {
            return;
        }
        self.arrival(now);
        let idx = (tag_type == flv::TAG_VIDEO) as usize;
        if let Some(prev) = self.last_ts[idx] {
            if ts < prev {
                self.stats.timestamps_monotonic = false;
            }
        }
        self.last_ts[idx] = Some(ts);
        let content =
            if tag_type == flv::TAG_VIDEO { flv::tag::parse_video(payload) } else { flv::tag::parse_audio(payload) };
        let Ok(hdr) = content else { return };
        if tag_type == flv::TAG_VIDEO {
            if hdr.content == Content::Frame {
                let key = hdr.keyframe;
                self.stats.first_video_is_key.get_or_insert(key);
                if key && self.stats.ttfk_ms.is_none() {
                    self.stats.ttfk_ms = Some(ms(now - self.start));
                }
                self.stats.video_frames += 1;
                self.video.see(ts);
                // The first seconds are the server's GOP cache (old frames, by design): only
                // frames that arrive once the player is live measure delivery delay.
                let live = self.first_media.is_some_and(|f| now.duration_since(f) > LIVE_AFTER);
                if let (Some(book), true) = (self.delays, live) {
                    if self.stats.video_frames.is_multiple_of(5) {
                        if let Some(sent) = book.lookup(payload) {
                            self.stats.delays_ms.push(ms(now.saturating_duration_since(sent)));
                        }
                    }
                }
            }
        } else if hdr.content == Content::Frame {
            self.stats.audio_frames += 1;
            self.audio.see(ts);
        }
    }

    fn finish(mut self, end: Instant) -> PlayerStats {
        self.stats.media_secs = self.video.span().max(self.audio.span());
        if let Some(f) = self.first_media {
            self.stats.wall_secs = end.saturating_duration_since(f).as_secs_f64();
            // A gap at the very end also counts.
            if let Some(l) = self.last_arrival {
                if end.saturating_duration_since(l) > STALL {
                    self.stats.stalls += 1;
                }
            }
        }
        let in_time = if self.raw {
            // Raw bytes carry no media time: keeping up means data never stopped for a second.
            self.stats.stalls == 0
        } else {
            self.stats.media_secs + 1.5 >= self.stats.wall_secs
        };
        self.stats.kept_up =
            self.stats.error.is_none() && !self.stats.disconnected && self.first_media.is_some() && in_time;
        self.stats
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Plays `url` until `end`, returning what it observed. Never panics on server behaviour.
pub async fn run(
    proto: Proto,
    url: Url,
    end: Instant,
    total: Arc<AtomicU64>,
    delays: Option<Arc<DelayBook>>,
) -> PlayerStats {
    let mut obs = Observer::new(&total, delays.as_deref(), proto == Proto::Raw);
    let start = obs.start;
    let deadline = tokio::time::Instant::from_std(end);
    let r = tokio::time::timeout_at(deadline, play(proto, &url, &mut obs)).await;
    match r {
        Err(_) => {} // ran until the end: the normal case
        Ok(Ok(())) => obs.stats.disconnected = true,
        Ok(Err(ClientError::Closed)) => obs.stats.disconnected = true,
        Ok(Err(e)) => obs.stats.error = Some(e.to_string()),
    }
    obs.finish(Instant::now().min(end).max(start))
}

async fn play(proto: Proto, url: &Url, obs: &mut Observer<'_>) -> Result<(), ClientError> {
    match proto {
        Proto::Rtmp => {
            let mut c = RtmpClient::connect(url).await?;
            c.play(&url.stream).await?;
            obs.stats.connect_ms = Some(ms(obs.start.elapsed()));
            loop {
                let m = c.next().await?;
                let tag_type = match m.type_id {
                    msg::AUDIO => flv::TAG_AUDIO,
                    msg::VIDEO => flv::TAG_VIDEO,
                    _ => 0,
                };
                obs.media(tag_type, m.timestamp, &m.payload, c.received());
            }
        }
        Proto::Flv => {
            let mut c = FlvClient::connect(url).await?;
            obs.stats.connect_ms = Some(ms(obs.start.elapsed()));
            loop {
                let t = c.next().await?;
                obs.media(t.tag_type, t.timestamp, &t.data, c.received());
            }
        }
        Proto::Raw => {
            let mut s = tokio::net::TcpStream::connect(url.addr()).await.map_err(ClientError::Connect)?;
            if url.scheme == "http" {
                // A server's HTTP-FLV read like the floor's bytes: the same reads on the
                // player's side, so the two servers' CPU compares the servers alone.
                let req = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", url.path, url.addr());
                tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes()).await?;
            }
            obs.stats.connect_ms = Some(ms(obs.start.elapsed()));
            let mut buf = vec![0u8; 65536];
            let mut received = 0u64;
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Err(ClientError::Closed);
                }
                received += n as u64;
                // Raw bytes carry no frames: every read counts as an arrival, so stall and
                // first-byte timing still mean something.
                let now = obs.bytes(received);
                obs.arrival(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observer_counts_stalls_keyframes_and_keeping_up() {
        let total = AtomicU64::new(0);
        let mut o = Observer::new(&total, None, false);
        o.media(flv::TAG_VIDEO, 0, &[0x17, 0, 0, 0, 0], 10); // sequence header: not a frame
        o.media(flv::TAG_VIDEO, 0, &[0x17, 1, 0, 0, 0], 20);
        o.media(flv::TAG_AUDIO, 10, &[0xAF, 1], 30);
        o.media(flv::TAG_VIDEO, 40, &[0x27, 1, 0, 0, 0], 40);
        // A 1.2 s gap in arrival is a stall.
        o.last_arrival = Some(Instant::now() - Duration::from_millis(1200));
        o.media(flv::TAG_VIDEO, 80, &[0x27, 1, 0, 0, 0], 50);
        o.media(flv::TAG_VIDEO, 60, &[0x27, 1, 0, 0, 0], 60);
        let s = o.finish(Instant::now());
        assert_eq!(s.video_frames, 4);
        assert_eq!(s.audio_frames, 1);
        assert_eq!(s.first_video_is_key, Some(true));
        assert!(s.ttfk_ms.is_some());
        assert_eq!(s.stalls, 1);
        assert!(!s.timestamps_monotonic);
        assert_eq!(s.bytes, 60);
        assert_eq!(total.load(Ordering::Relaxed), 60);
        assert!(s.kept_up, "0.08 s of media in ~0 s of wall time keeps up");
    }
}
