//! A WHEP viewer: the stream's packets, from a core consumer, written to the peer.
//! - H.264 and H.265 go as Annex B with the parameter sets before each keyframe (H.264 B
//!   pictures are left out: WebRTC receivers decode in arrival order); AV1 with its sequence
//!   header on keyframes; VP9 as it came; each where the browser offered the codec.
//! - Opus goes as it came; AAC goes as Opus from the stream's shared transcoder
//!   ([`crate::transcode::OpusFeeds`]), or a WHIP publisher's own Opus.
//! - What WebRTC cannot carry is left out, once told.

use super::peer::Peer;
use super::state::Datagram;
use crate::hub::{Consumer, Signal, StreamKey};
use crate::media::{Codec, MediaPacket, Track, Tracks, WireForm};
use crate::server::Server;
use crate::stats::ClientGuard;
use crate::transcode::OpusFeed;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use str0m::format::Codec as RtcCodec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid};
use str0m::{Event, Rtc};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

/// Most packets held for a session that has not connected yet (the GOP it starts with).
const MAX_PENDING: usize = 2048;

pub struct PlaySession {
    pub server: Arc<Server>,
    pub peer: Peer,
    pub key: StreamKey,
    pub pending: Vec<Arc<MediaPacket>>,
}

/// The media side of a viewer, apart from the peer so events can reach it while it drains.
struct Out {
    key: StreamKey,
    video: Option<Mid>,
    audio: Option<Mid>,
    /// The stream's configurations as this viewer has seen them.
    tracks: Tracks,
    /// The video configuration now in force (what goes before keyframes).
    video_setup: Option<VideoSetup>,
    connected: bool,
    /// Packets from before the connection, sent when it is up (the GOP a viewer starts with).
    pending: Vec<Arc<MediaPacket>>,
    /// Codecs already reported as not playable over WebRTC.
    told: Vec<Codec>,
    told_bframes: bool,
    /// The stream's audio is AAC (again): take Opus from its feed.
    wants_opus_feed: bool,
    /// The viewer needs a keyframe (it joined, or asked with a PLI or FIR).
    wants_keyframe: bool,
}

impl PlaySession {
    pub async fn run(self, mut rx: mpsc::Receiver<Datagram>, mut consumer: Consumer, guard: ClientGuard) {
        let PlaySession { server, mut peer, key, pending } = self;
        let mut out = Out {
            key,
            video: None,
            audio: None,
            tracks: Tracks::default(),
            video_setup: None,
            connected: false,
            pending,
            told: Vec::new(),
            told_bframes: false,
            wants_opus_feed: false,
            wants_keyframe: false,
        };
        let mut batch = Vec::new();
        // The Opus feed of a stream whose audio is AAC, held while this viewer plays.
        let mut feed: Option<(Arc<OpusFeed>, broadcast::Receiver<Arc<MediaPacket>>)> = None;
        let why = loop {
            let timeout = match peer.drain(|rtc, e| out.on_event(rtc, e)).await {
                Ok(t) => t,
                Err(why) => break why,
            };
            if std::mem::take(&mut out.wants_keyframe) {
                // Passed to a publisher that can be asked (WHIP); the GOP cache serves the rest.
                consumer.source().keyframe_wanted.notify_one();
            }
            if std::mem::take(&mut out.wants_opus_feed) {
                // Subscribed before the old feed is let go, so a transcoder still in use is kept.
                let f = server.opus_feeds.subscribe(&server.hub, consumer.source());
                // Its audio is Opus from the feed, not the ring's AAC.
                consumer.ignore_ring_audio();
                if let Some(why) = f.failed.lock().unwrap_or_else(|e| e.into_inner()).as_deref() {
                    warn!("this viewer gets no audio: {why}");
                }
                let rx = f.subscribe();
                feed = Some((f, rx));
            }
            tokio::select! {
                p = next_opus(&mut feed) => {
                    if let Some(n) = out.write_opus(&mut peer.rtc, &p) {
                        guard.client.counters.sent(n);
                    }
                }
                _ = guard.client.kill.cancelled() => break "ended (DELETE or kicked)".to_string(),
                d = rx.recv() => {
                    let Some(d) = d else { break "port closed".into() };
                    guard.client.counters.received(d.data.len());
                    if let Err(why) = peer.input(&d) {
                        break why;
                    }
                }
                sig = consumer.recv(&mut batch, 64) => {
                    for p in batch.drain(..) {
                        if let Some(n) = out.send(&mut peer.rtc, p) {
                            guard.client.counters.sent(n);
                        }
                    }
                    match sig {
                        Some(Signal::Closed) => break "stream closed".into(),
                        Some(Signal::Failed(why)) => break why.to_string(),
                        // The viewer waits for a republish, as an RTMP player does.
                        Some(Signal::Unpublished) | None => {}
                    }
                }
                _ = tokio::time::sleep_until(timeout.into()) => {
                    if let Err(why) = peer.tick() {
                        break why;
                    }
                }
            }
        };
        peer.close(&server.rtc_sessions).await;
        info!("WHEP session ended: {why}");
    }
}

impl Out {
    fn on_event(&mut self, rtc: &mut Rtc, e: Event) {
        match e {
            Event::MediaAdded(m) => match m.kind {
                MediaKind::Video => self.video = Some(m.mid),
                MediaKind::Audio => self.audio = Some(m.mid),
            },
            Event::KeyframeRequest(_) => self.wants_keyframe = true,
            Event::Connected => {
                self.connected = true;
                self.wants_keyframe = true;
                info!("WHEP session connected");
                for p in std::mem::take(&mut self.pending) {
                    self.send(rtc, p);
                }
            }
            _ => {}
        }
    }

    /// Writes one packet to the viewer; the bytes written, if any.
    fn send(&mut self, rtc: &mut Rtc, p: Arc<MediaPacket>) -> Option<usize> {
        if p.track == Track::Audio && p.codec == Codec::Aac && p.is_config() {
            self.wants_opus_feed = true;
        }
        if !self.connected {
            if p.keyframe {
                // A newer keyframe: what came before it is no longer needed to start.
                self.pending.retain(|q| q.is_config() || q.track == Track::Data);
            }
            if self.pending.len() < MAX_PENDING {
                self.pending.push(p);
            }
            return None;
        }
        if self.tracks.update(&p) {
            if p.track == Track::Video && p.is_config() {
                // Parsed once per configuration, not once per frame.
                self.video_setup = VideoSetup::parse(&p);
            }
            return None;
        }
        let now = Instant::now();
        let (len, result) = match (p.track, p.codec) {
            (Track::Video, Codec::H264 | Codec::H265 | Codec::Av1 | Codec::Vp9) => {
                let setup = self.video_setup.as_ref()?;
                // Made once per packet and shared by every WebRTC viewer of the stream.
                let au = p.wire(WireForm::WebRtc, 0, |p| setup.for_webrtc(p));
                if au.is_empty() {
                    // WebRTC receivers decode in arrival order: B pictures are left out, as SRS
                    // does (its `keep_bframe off`).
                    if let VideoSetup::H264(c) = setup {
                        if !self.told_bframes && rsrs_codec::avc::is_b_frame(p.data(), c.nal_length_size) {
                            self.told_bframes = true;
                            warn!(
                                stream = %self.key.url(),
                                "the stream has H.264 B-frames, which WebRTC cannot carry: they are left out for \
                                 WebRTC viewers (publish without B-frames, e.g. x264 -bf 0, for smooth WebRTC playback)"
                            );
                        }
                    }
                    return None;
                }
                let w = rtc.writer(self.video?)?;
                let want = rtc_codec(p.codec)?;
                let Some(pt) = w
                    .payload_params()
                    .find(|pp| {
                        pp.spec().codec == want
                            && (want != RtcCodec::H264 || pp.spec().format.packetization_mode == Some(1))
                    })
                    .map(|pp| pp.pt())
                else {
                    if !self.told.contains(&p.codec) {
                        self.told.push(p.codec);
                        warn!(
                            stream = %self.key.url(),
                            "the stream's video is {}, which this viewer's browser did not offer; it gets the audio only",
                            p.codec.name()
                        );
                    }
                    return None;
                };
                let au = au.to_vec();
                let pts = (p.dts as i64 + p.cts as i64).max(0) as u64;
                (au.len(), w.write(pt, now, MediaTime::new(pts * 90, Frequency::NINETY_KHZ), au))
            }
            (Track::Audio, Codec::Opus) => return self.write_opus(rtc, &p),
            // Played as Opus from the stream's feed.
            (Track::Audio, Codec::Aac) => return None,
            (Track::Data, _) => return None,
            (_, codec) => {
                if !self.told.contains(&codec) {
                    self.told.push(codec);
                    warn!(stream = %self.key.url(), "{} is not sent over WebRTC yet; the viewer gets the other track", codec.name());
                }
                return None;
            }
        };
        match result {
            Ok(()) => Some(len),
            Err(e) => {
                debug!("WebRTC write: {e}");
                None
            }
        }
    }
}

impl Out {
    /// Writes one Opus packet (the stream's own, or from its feed); the bytes written.
    fn write_opus(&mut self, rtc: &mut Rtc, p: &MediaPacket) -> Option<usize> {
        if !self.connected {
            return None;
        }
        let w = rtc.writer(self.audio?)?;
        let pt = w.payload_params().find(|pp| pp.spec().codec == RtcCodec::Opus).map(|pp| pp.pt())?;
        let data = p.data().to_vec();
        let len = data.len();
        match w.write(pt, Instant::now(), MediaTime::new(p.dts as u64 * 48, Frequency::FORTY_EIGHT_KHZ), data) {
            Ok(()) => Some(len),
            Err(e) => {
                debug!("WebRTC write: {e}");
                None
            }
        }
    }
}

/// The next packet of the viewer's Opus feed; never, while it has none. A viewer too far
/// behind skips what it missed.
async fn next_opus(feed: &mut Option<(Arc<OpusFeed>, broadcast::Receiver<Arc<MediaPacket>>)>) -> Arc<MediaPacket> {
    let Some((_, rx)) = feed else { return std::future::pending().await };
    loop {
        match rx.recv().await {
            Ok(p) => return p,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// WebRTC's name for a video codec.
fn rtc_codec(c: Codec) -> Option<RtcCodec> {
    Some(match c {
        Codec::H264 => RtcCodec::H264,
        Codec::H265 => RtcCodec::H265,
        Codec::Av1 => RtcCodec::Av1,
        Codec::Vp9 => RtcCodec::Vp9,
        _ => return None,
    })
}

/// A stream's video configuration, as WebRTC needs it in band.
enum VideoSetup {
    H264(rsrs_codec::avc::DecoderConfig),
    /// NAL length size and the parameter sets (VPS, SPS, PPS as the hvcC orders them).
    H265(usize, Vec<Vec<u8>>),
    /// The av1C's configuration OBUs (the sequence header).
    Av1(Vec<u8>),
    Vp9,
}

impl VideoSetup {
    fn parse(config: &MediaPacket) -> Option<VideoSetup> {
        let rec = config.data();
        Some(match config.codec {
            Codec::H264 => VideoSetup::H264(rsrs_codec::avc::DecoderConfig::parse(rec).ok()?),
            Codec::H265 => {
                let c = rsrs_codec::hevc::HevcConfig::parse(rec).ok()?;
                VideoSetup::H265(c.nal_length_size, c.parameter_sets)
            }
            Codec::Av1 => VideoSetup::Av1(rsrs_codec::av1::Av1Config::parse(rec).ok()?.config_obus),
            Codec::Vp9 => VideoSetup::Vp9,
            _ => return None,
        })
    }

    /// `p` as WebRTC's packetizer takes it; empty for a B picture or a malformed access unit.
    fn for_webrtc(&self, p: &MediaPacket) -> Bytes {
        let annexb = |nal_length_size: usize, sets: Vec<&[u8]>| {
            rsrs_codec::avc::to_annexb(p.data(), nal_length_size, &sets).map(Bytes::from).unwrap_or_default()
        };
        match self {
            VideoSetup::H264(c) => {
                if rsrs_codec::avc::is_b_frame(p.data(), c.nal_length_size) {
                    return Bytes::new();
                }
                let sets = if p.keyframe {
                    c.sps.iter().chain(c.pps.iter()).map(|v| v.as_slice()).collect()
                } else {
                    Vec::new()
                };
                annexb(c.nal_length_size, sets)
            }
            VideoSetup::H265(n, sets) => {
                annexb(*n, if p.keyframe { sets.iter().map(|v| v.as_slice()).collect() } else { Vec::new() })
            }
            VideoSetup::Av1(seq) => {
                // A keyframe without its sequence header cannot start a decoder.
                if p.keyframe && !seq.is_empty() && !has_sequence_header(p.data()) {
                    let mut v = Vec::with_capacity(seq.len() + p.data().len());
                    v.extend_from_slice(seq);
                    v.extend_from_slice(p.data());
                    return Bytes::from(v);
                }
                p.data().clone()
            }
            VideoSetup::Vp9 => p.data().clone(),
        }
    }
}

/// Whether an AV1 temporal unit carries a sequence header OBU.
fn has_sequence_header(mut data: &[u8]) -> bool {
    while let Some((kind, _, rest)) = rsrs_codec::av1::next_obu(data) {
        if kind == 1 {
            return true;
        }
        if rest.is_empty() {
            break;
        }
        data = rest;
    }
    false
}
