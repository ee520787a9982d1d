//! A WHIP publisher: the peer's depacketized frames into the stream's source, as an RTMP
//! publisher's would go.
//! - H.264 arrives in Annex B with its parameter sets in band (made into an avcC when they
//!   change, as for SRT).
//! - Opus is transcoded to AAC for the stream (RTMP, HTTP-FLV, HLS and DVR players take AAC), on
//!   a thread of its own, and offered untouched, on the stream's timeline, to WebRTC and Enhanced
//!   RTMP players as the stream's Opus feed. Without libopus, Opus goes into the stream as Opus.
//! - Each track's times come from its RTP clock, anchored at its first packet's arrival so audio
//!   and video line up.
//! - A browser sends keyframes only when asked: one is asked for every few seconds (SRS's
//!   `pli_for_rtmp`) for the GOP cache and late joiners, and when a WebRTC player needs one.

use super::peer::Peer;
use super::state::Datagram;
use crate::hub::{Elementary, Source};
use crate::media::MediaPacket;
use crate::media::{Codec, Content, Track};
use crate::server::Server;
use crate::stats::ClientGuard;
use crate::transcode::{OpusFeed, OpusToAacPush};
use bytes::Bytes;
use rsrs_codec::ts_ingest::{EsPacket, InBandVideo};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::format::Codec as RtcCodec;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid};
use str0m::{Event, Rtc};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// How often a keyframe is asked of the publisher (SRS's `pli_for_rtmp` default).
const PLI_EVERY: Duration = Duration::from_secs(6);
/// Players' keyframe requests are passed on at most this often: an encoder asked more often
/// sends keyframes back to back, and a lossy viewer would cost every viewer bandwidth.
const PLI_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// OpusHead (RFC 7845): version 1, stereo, 312 samples of pre-skip, 48 kHz, no gain, family 0.
const OPUS_HEAD: [u8; 19] = *b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";

pub struct PublishSession {
    pub server: Arc<Server>,
    pub peer: Peer,
    pub source: Arc<Source>,
    pub stream: String,
}

struct In {
    video_mid: Option<Mid>,
    video: InBandVideo,
    /// Per track: (first RTP time, its clock rate, when it arrived in ms since the session began).
    anchors: HashMap<Mid, (u64, u64, u64)>,
    started: Instant,
    opus_config_sent: bool,
    /// Where the publisher's Opus goes as it came: the stream's WebRTC players.
    feed: Arc<OpusFeed>,
    /// The Opus to AAC transcoder, when this rsrs has libopus.
    to_aac: Option<OpusToAacPush>,
    /// Opus bytes handed to the feed and transcoder since the last count.
    opus_bytes: usize,
    told: Vec<String>,
    out: Vec<EsPacket>,
    /// Packets for the source, with an error that ends the session.
    ready: Vec<Elementary>,
}

impl PublishSession {
    pub async fn run(self, mut rx: mpsc::Receiver<Datagram>, guard: ClientGuard) {
        let PublishSession { server, mut peer, source, stream } = self;
        let to_aac = match OpusToAacPush::start(source.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                warn!("the publisher's Opus goes into the stream as Opus (players without Opus hear nothing): {e}");
                None
            }
        };
        let mut inp = In {
            feed: server.opus_feeds.offer(&source.key),
            to_aac,
            opus_bytes: 0,
            video_mid: None,
            video: InBandVideo::new(),
            anchors: HashMap::new(),
            started: Instant::now(),
            opus_config_sent: false,
            told: Vec::new(),
            out: Vec::new(),
            ready: Vec::new(),
        };
        let mut next_pli = Instant::now() + PLI_EVERY;
        let mut last_player_pli: Option<Instant> = None;
        let mut player_plis = 0u64;
        let why = 'session: loop {
            let timeout = match peer.drain(|rtc, e| inp.on_event(rtc, e, &stream, &source)).await {
                Ok(t) => t,
                Err(why) => break why,
            };
            guard.client.counters.received(std::mem::take(&mut inp.opus_bytes));
            for p in inp.ready.drain(..) {
                guard.client.counters.received(p.data.len());
                if let Err(e) = source.push_elementary(p) {
                    break 'session format!("media refused: {e}");
                }
            }
            if peer.connected && Instant::now() >= next_pli {
                next_pli = Instant::now() + PLI_EVERY;
                if let Some(mid) = inp.video_mid {
                    ask_keyframe(&mut peer.rtc, mid);
                }
            }
            tokio::select! {
                _ = guard.client.kill.cancelled() => break "ended (DELETE or kicked)".to_string(),
                _ = source.keyframe_wanted.notified() => {
                    if let (true, Some(mid)) = (peer.connected, inp.video_mid) {
                        if last_player_pli.is_none_or(|t| t.elapsed() >= PLI_AT_MOST_EVERY) {
                            last_player_pli = Some(Instant::now());
                            next_pli = Instant::now() + PLI_EVERY;
                            player_plis += 1;
                            // Told once; after that it is routine (lossy viewers ask often).
                            if player_plis == 1 {
                                info!("a WebRTC player needs a keyframe: asking the publisher");
                            } else {
                                debug!(player_plis, "a WebRTC player needs a keyframe: asking the publisher");
                            }
                            ask_keyframe(&mut peer.rtc, mid);
                        }
                    }
                }
                d = rx.recv() => {
                    let Some(d) = d else { break "port closed".into() };
                    if let Err(why) = peer.input(&d) {
                        break why;
                    }
                }
                _ = tokio::time::sleep_until(timeout.min(next_pli).into()) => {
                    if let Err(why) = peer.tick() {
                        break why;
                    }
                }
            }
        };
        inp.feed.end();
        crate::streams::unpublish(&server, &source, &guard.client.id);
        peer.close(&server.rtc_sessions).await;
        info!("WHIP session ended: {why}");
    }
}

/// Sends the publisher a PLI for `mid`'s stream.
fn ask_keyframe(rtc: &mut Rtc, mid: Mid) {
    let mut api = rtc.direct_api();
    if let Some(rx) = api.stream_rx_by_mid(mid, None) {
        rx.request_keyframe(KeyframeRequestKind::Pli);
    }
}

impl In {
    fn on_event(&mut self, rtc: &mut Rtc, e: Event, stream: &str, source: &Source) {
        match e {
            Event::MediaAdded(m) if m.kind == MediaKind::Video => self.video_mid = Some(m.mid),
            Event::Connected => {
                info!("WHIP session connected");
                // Ask for a keyframe at once: the stream starts on one.
                if let Some(mid) = self.video_mid {
                    ask_keyframe(rtc, mid);
                }
            }
            Event::MediaData(d) => self.on_media(d, stream, source),
            _ => {}
        }
    }

    /// Milliseconds on the stream's line for a track's RTP time.
    fn ms(&mut self, d: &MediaData) -> u32 {
        let (numer, rate) = (d.time.numer(), d.time.denom().max(1) as u64);
        let arrived = d.network_time.saturating_duration_since(self.started).as_millis() as u64;
        let (rtp0, rate0, at0) = *self.anchors.entry(d.mid).or_insert((numer, rate, arrived));
        let since = numer.saturating_sub(rtp0) * 1000 / rate0.max(1);
        (at0 + since) as u32
    }

    fn on_media(&mut self, d: MediaData, stream: &str, source: &Source) {
        let ms = self.ms(&d);
        match d.params.spec().codec {
            RtcCodec::H264 => {
                self.video.push(&d.data, false, ms, ms, &mut self.out);
                self.ready.extend(self.out.drain(..).map(Elementary::from));
            }
            RtcCodec::Opus if self.to_aac.is_some() => {
                self.opus_bytes += d.data.len();
                let data = Bytes::from(d.data);
                let opus = |dts| {
                    MediaPacket::from_elementary(Track::Audio, Codec::Opus, Content::Frame, dts, 0, false, data.clone())
                };
                // The transcoder takes the publisher's times (its AAC is pushed and corrected
                // with the video); the feed's players get the stream's.
                if let (Ok(raw), Ok(on_stream), Some(to_aac)) =
                    (opus(ms), opus(source.retime(Track::Audio, ms)), &self.to_aac)
                {
                    if self.feed.config().is_none() {
                        if let Ok(head) = MediaPacket::from_elementary(
                            Track::Audio,
                            Codec::Opus,
                            Content::Config,
                            on_stream.dts,
                            0,
                            false,
                            Bytes::from_static(&OPUS_HEAD),
                        ) {
                            self.feed.set_config(Arc::new(head));
                        }
                    }
                    self.feed.send(Arc::new(on_stream));
                    to_aac.push(Arc::new(raw));
                }
            }
            RtcCodec::Opus => {
                if !self.opus_config_sent {
                    self.opus_config_sent = true;
                    self.ready.push(Elementary {
                        track: Track::Audio,
                        codec: Codec::Opus,
                        content: Content::Config,
                        dts: ms,
                        cts: 0,
                        keyframe: false,
                        data: Bytes::from_static(&OPUS_HEAD),
                    });
                }
                self.ready.push(Elementary {
                    track: Track::Audio,
                    codec: Codec::Opus,
                    content: Content::Frame,
                    dts: ms,
                    cts: 0,
                    keyframe: false,
                    data: Bytes::from(d.data),
                });
            }
            other => {
                let name = format!("{other:?}");
                if !self.told.contains(&name) {
                    warn!(
                        stream,
                        "the WHIP publisher sends {name}, which rsrs does not take yet; that track is left out"
                    );
                    self.told.push(name);
                }
            }
        }
    }
}
