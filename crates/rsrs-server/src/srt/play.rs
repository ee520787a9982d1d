//! Any stream, whatever its source, to an SRT caller as MPEG-TS: the shared player loop
//! ([`rsrs_core::player`]) with a wire that muxes each batch into TS and sends it in live-mode
//! messages of up to 7 TS packets.

use super::{details, elsewhere, SessionError};
use crate::hub::ConsumerClock;
use crate::media::{Codec, MediaPacket, Track, Tracks};
use crate::server::Server;
use crate::stats::{ClientGuard, ClientType};
use crate::streams::{self, StreamRequest};
use bytes::BytesMut;
use rsrs_codec::ts::{AudioCodec, TsMuxer, VideoCodec, PACKET};
use rsrs_core::player::{self, AfterUnpublish, ClientSays, PlayEnd, PlayerWire};
use rsrs_core::shared_framing::SharedFraming;
use rsrs_srt::{SrtSocket, LIVE_PAYLOAD};
use std::sync::Arc;
use tracing::{info, warn};

pub(super) async fn play(
    server: &Arc<Server>,
    sock: &Arc<SrtSocket>,
    guard: &ClientGuard,
    req: &StreamRequest<'_>,
) -> Result<(), SessionError> {
    let (mut consumer, initial, _admitted) = elsewhere(Box::pin(streams::play(server, req)).await?)?;
    let source = consumer.source().clone();
    guard.client.set_details(details(req, &source.id, ClientType::SrtPlay));
    info!(stream = %req.key.url(), "SRT play started");
    let mut wire = SrtPlayer {
        sock: sock.clone(),
        out: TsOut::default(),
        guard,
        source: &source,
        key: req.key.url(),
        gone: false,
    };
    let end = player::run(&mut wire, &mut consumer, initial, req.vhost.play.mw_latency, &guard.client.kill).await;
    info!(stream = %req.key.url(), "SRT play stopped");
    match end? {
        PlayEnd::Kicked => Err(SessionError::Kicked),
        _ => Ok(()),
    }
}

/// The codecs a TS muxer was made for (they shape its PMT).
type TsShape = (Option<VideoCodec>, Option<AudioCodec>);

/// Muxes packets into TS: the tables before every keyframe (an SRT player may join a relay
/// mid-stream) and a new muxer when the stream's codecs change.
#[derive(Default)]
struct TsOut {
    tracks: Tracks,
    muxer: Option<(TsMuxer, TsShape)>,
    /// Codecs TS cannot carry that were already reported.
    told: Vec<Codec>,
}

impl TsOut {
    fn shape(&self) -> TsShape {
        let video = self.tracks.video.as_ref().and_then(|v| match v.codec {
            Codec::H264 => Some(VideoCodec::H264),
            Codec::H265 => Some(VideoCodec::Hevc),
            _ => None,
        });
        let audio = self.tracks.audio.as_ref().and_then(|a| match a.codec {
            Codec::Aac => Some(AudioCodec::Aac),
            Codec::Mp3 => Some(AudioCodec::Mp3),
            _ => None,
        });
        (video, audio)
    }

    /// Appends `p`'s TS packets (stamped `ts` on the player's clock) to `out`.
    fn mux(&mut self, p: &Arc<MediaPacket>, ts: u32, out: &mut BytesMut, stream: &str) {
        if self.tracks.update(p) {
            if p.is_config() {
                // New codec parameters: the muxer is rebuilt at the next frame with them.
                self.muxer = None;
            }
            return;
        }
        let carried = matches!(p.codec, Codec::H264 | Codec::H265 | Codec::Aac | Codec::Mp3);
        if !carried {
            if p.track != Track::Data && !self.told.contains(&p.codec) {
                self.told.push(p.codec);
                warn!(stream, "{} cannot be carried in MPEG-TS over SRT; its frames are left out", p.codec.name());
            }
            return;
        }
        let shape = self.shape();
        if self.muxer.as_ref().map(|m| m.1) != Some(shape) {
            let mut m = TsMuxer::new(shape.0, shape.1);
            for c in self.tracks.packets().filter(|c| c.is_config()) {
                let _ = match c.codec {
                    Codec::H264 => m.set_avc_config(c.data()),
                    Codec::H265 => m.set_hevc_config(c.data()),
                    Codec::Aac => m.set_aac_config(c.data()),
                    _ => Ok(()),
                };
            }
            m.tables(out);
            self.muxer = Some((m, shape));
        }
        let Some((m, _)) = self.muxer.as_mut() else { return };
        let result = match p.track {
            Track::Video => {
                if p.keyframe {
                    m.tables(out);
                }
                m.video(p.data(), ts, p.cts, p.keyframe, out)
            }
            Track::Audio => m.audio(p.data(), ts, out),
            Track::Data => Ok(()),
        };
        if let Err(e) = result {
            // A frame before its configuration, or a malformed one: skipped, the stream goes on.
            tracing::debug!(stream, "frame not muxed into TS: {e}");
        }
    }
}

struct SrtPlayer<'a> {
    sock: Arc<SrtSocket>,
    out: TsOut,
    guard: &'a ClientGuard,
    source: &'a Arc<crate::hub::Source>,
    key: String,
    /// The caller left (its connection broke).
    gone: bool,
}

impl PlayerWire for SrtPlayer<'_> {
    type Error = SessionError;
    type Input = ();

    /// MPEG-TS carries each player's timestamps in every packet's headers: nothing to share.
    async fn send(
        &mut self,
        batch: &[Arc<MediaPacket>],
        clock: &mut ConsumerClock,
        _shared: &SharedFraming,
    ) -> Result<(), SessionError> {
        let mut ts = BytesMut::with_capacity(batch.iter().map(|p| p.data().len() + 64).sum::<usize>() * 21 / 20);
        for p in batch {
            let at = clock.stamp(p);
            self.out.mux(p, at, &mut ts, &self.key);
        }
        let chunk = LIVE_PAYLOAD / PACKET * PACKET;
        for msg in ts.chunks(chunk) {
            self.sock.send(msg).await?;
        }
        self.guard.client.counters.sent(ts.len());
        self.source.send_bytes.fetch_add(ts.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// An SRT player sends no media: a read returns only when it leaves (or sends something,
    /// which is ignored).
    async fn input(&mut self) -> Result<(), SessionError> {
        let mut scratch = [0u8; 1500];
        match self.sock.recv(&mut scratch).await {
            Ok(_) => Ok(()),
            Err(_) => {
                self.gone = true;
                Ok(())
            }
        }
    }

    async fn handle(&mut self, _: ()) -> Result<ClientSays, SessionError> {
        Ok(if self.gone { ClientSays::Stop } else { ClientSays::Nothing })
    }

    /// SRS keeps an SRT player connected across a republish, as RTMP's.
    fn after_unpublish(&mut self) -> AfterUnpublish {
        AfterUnpublish::Wait
    }
}
