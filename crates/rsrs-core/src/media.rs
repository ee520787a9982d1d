//! Media packets, parsed once at ingest and shared by every consumer.
//!
//! A [`MediaPacket`] says what it is (track, codec, configuration or frame, keyframe, dts/cts)
//! and holds the codec's own bytes. Wire forms are made from it lazily, once per packet per
//! form, and shared by every player that needs the same form: the FLV tag body (also RTMP's
//! message payload), and forms a protocol caches under a [`WireForm`] (RTMP chunk bodies today).
//! A packet that arrived as FLV keeps its body, so relaying FLV or RTMP copies nothing.
//!
//! [`Tracks`] is what a stream's consumers must know before its frames make sense: metadata and
//! each track's codec and decoder configuration.

use bytes::Bytes;
pub use rsrs_codec::flv::tag::{TagError, UnwritableTag};
use rsrs_codec::flv::{self, tag};
pub use rsrs_codec::media::{Codec, Content, Track};
use std::sync::{Arc, OnceLock};

/// Forms a protocol derives from a packet and caches on it. Only the encoding lives in the
/// protocol; the packet keeps the result so it is made once, not once per player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireForm {
    /// The FLV body split into RTMP chunks (fmt-3 headers between them), for one chunk size.
    RtmpChunks,
    /// What WebRTC's packetizer takes: H.264 and H.265 access units in Annex B with the
    /// parameter sets first on keyframes, AV1 with its sequence header on keyframes; empty for a
    /// picture WebRTC does not carry (an H.264 B picture).
    WebRtc,
}

const WIRE_FORMS: usize = 2;

/// One audio frame, video access unit, configuration or metadata message.
#[derive(Debug)]
pub struct MediaPacket {
    pub track: Track,
    pub codec: Codec,
    pub content: Content,
    /// Decode time in milliseconds on the stream's (jitter-corrected) timeline.
    pub dts: u32,
    /// Composition offset in milliseconds: presentation time is `dts + cts`.
    pub cts: i32,
    /// A video frame a decoder can start from (never a configuration or an audio frame).
    pub keyframe: bool,
    /// The codec's bytes: AVCC NAL units, OBUs, a raw AAC frame, a configuration record, AMF0.
    data: Bytes,
    flv: OnceLock<Bytes>,
    /// Per wire form: the key it was made for (e.g. the chunk size) and the bytes.
    wire: [OnceLock<(u32, Bytes)>; WIRE_FORMS],
}

impl MediaPacket {
    /// A packet from an FLV tag body (an RTMP audio, video or data message's payload). The body
    /// is kept as the packet's FLV form; the codec data is a slice of it.
    pub fn from_flv(track: Track, dts: u32, body: Bytes) -> Result<MediaPacket, TagError> {
        let hdr = tag::parse(track, &body)?;
        let flv = OnceLock::new();
        let _ = flv.set(body.clone());
        Ok(MediaPacket {
            track,
            codec: hdr.codec,
            content: hdr.content,
            dts,
            cts: hdr.cts,
            keyframe: track == Track::Video && hdr.keyframe && hdr.content == Content::Frame,
            data: body.slice(hdr.data_offset..),
            flv,
            wire: Default::default(),
        })
    }

    /// A packet from elementary data that came without FLV framing (SRT's TS, WebRTC's RTP).
    /// Its FLV form is made on first use; the codec must have one (see [`flv::tag::write`]).
    pub fn from_elementary(
        track: Track,
        codec: Codec,
        content: Content,
        dts: u32,
        cts: i32,
        keyframe: bool,
        data: Bytes,
    ) -> Result<MediaPacket, UnwritableTag> {
        // Refuse at once what could never be relayed as FLV, rather than at the first player.
        tag::write(track, codec, content, keyframe, cts, &[])?;
        Ok(MediaPacket {
            track,
            codec,
            content,
            dts,
            cts,
            keyframe: track == Track::Video && keyframe && content == Content::Frame,
            data,
            flv: OnceLock::new(),
            wire: Default::default(),
        })
    }

    /// The codec's own bytes, without any container header.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The FLV tag body (RTMP message payload) of this packet, made once.
    pub fn flv_body(&self) -> &Bytes {
        self.flv.get_or_init(|| {
            // from_elementary checked that this codec and content have an FLV form.
            tag::write(self.track, self.codec, self.content, self.keyframe, self.cts, &self.data)
                .unwrap_or_else(|_| self.data.clone())
        })
    }

    /// Bytes a player sends for this packet in FLV or RTMP: its FLV body's length.
    pub fn flv_len(&self) -> usize {
        self.flv_body().len()
    }

    /// The packet's `form` for `key` (e.g. a chunk size), made by `make` the first time and then
    /// shared. A second key is made each time it is asked for (players rarely differ).
    pub fn wire(&self, form: WireForm, key: u32, make: impl FnOnce(&MediaPacket) -> Bytes) -> Bytes {
        let slot = &self.wire[form as usize];
        if let Some((k, bytes)) = slot.get() {
            if *k == key {
                return bytes.clone();
            }
            return make(self);
        }
        let bytes = make(self);
        let _ = slot.set((key, bytes.clone()));
        bytes
    }

    /// A decoder configuration (what FLV calls a sequence header).
    pub fn is_config(&self) -> bool {
        self.content == Content::Config
    }
}

/// A track's identity and decoder configuration.
#[derive(Debug, Clone)]
pub struct TrackInfo {
    pub codec: Codec,
    /// The configuration packet; `None` for codecs that have none (MP3, G.711).
    pub config: Option<Arc<MediaPacket>>,
}

/// What a stream's consumers need before its frames: metadata, and each track's codec and
/// configuration. Kept by the stream and by every sink, updated from the packets themselves.
#[derive(Debug, Clone, Default)]
pub struct Tracks {
    pub metadata: Option<Arc<MediaPacket>>,
    /// The video track's in-band metadata (Enhanced RTMP's colour and HDR information), sent
    /// to late joiners after the configuration.
    pub video_metadata: Option<Arc<MediaPacket>>,
    pub video: Option<TrackInfo>,
    pub audio: Option<TrackInfo>,
    /// What the API reports; read once per configuration, not per frame.
    pub video_info: Option<flv::VideoInfo>,
    pub audio_info: Option<flv::AudioInfo>,
}

impl Tracks {
    /// Takes in what `p` says about its track. Returns whether `p` was track information
    /// (metadata or a configuration) rather than a frame.
    pub fn update(&mut self, p: &Arc<MediaPacket>) -> bool {
        match (p.track, p.content) {
            (Track::Data, _) => {
                self.metadata = Some(p.clone());
                true
            }
            (Track::Video, Content::Metadata) => {
                self.video_metadata = Some(p.clone());
                true
            }
            (Track::Video, Content::Config) => {
                self.video_info = flv::video_info(p.flv_body());
                self.video = Some(TrackInfo { codec: p.codec, config: Some(p.clone()) });
                true
            }
            (Track::Audio, Content::Config) => {
                self.audio_info = flv::audio_info(p.flv_body());
                self.audio = Some(TrackInfo { codec: p.codec, config: Some(p.clone()) });
                true
            }
            (Track::Video, Content::Frame) if p.keyframe && p.codec == Codec::Vp9 => {
                // VP9's configuration has no picture size; its first keyframe does.
                if let Some(info) = self.video_info.as_mut().filter(|i| i.width == 0) {
                    if let Some((w, h)) = rsrs_codec::vp9::keyframe_dimensions(p.data()) {
                        (info.width, info.height) = (w, h);
                    }
                }
                false
            }
            (Track::Audio, Content::Frame) if self.audio.is_none() => {
                // A codec without configuration: the first frame tells what the track is.
                self.audio_info = flv::audio_info(p.flv_body());
                self.audio = Some(TrackInfo { codec: p.codec, config: None });
                false
            }
            _ => false,
        }
    }

    /// The packets a consumer sends before any frame: metadata, then the audio and video
    /// configurations, then the video's in-band metadata (colour, HDR).
    pub fn packets(&self) -> impl Iterator<Item = &Arc<MediaPacket>> {
        let configs = [&self.audio, &self.video].into_iter().flatten().filter_map(|t| t.config.as_ref());
        self.metadata.iter().chain(configs).chain(self.video_metadata.iter())
    }

    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_flv_packet_is_parsed_once_and_keeps_its_body() {
        let body = Bytes::from_static(&[0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65]);
        let p = MediaPacket::from_flv(Track::Video, 1000, body.clone()).unwrap();
        assert_eq!((p.codec, p.content, p.keyframe, p.dts, p.cts), (Codec::H264, Content::Frame, true, 1000, 40));
        assert_eq!(&p.data()[..], &[0, 0, 0, 1, 0x65]);
        // Same allocation, not a copy.
        assert_eq!(p.flv_body().as_ptr(), body.as_ptr());
        assert!(MediaPacket::from_flv(Track::Video, 0, Bytes::from_static(&[0x17, 1])).is_err());
        // Audio is never a keyframe, whatever its first byte's bits say.
        assert!(!MediaPacket::from_flv(Track::Audio, 0, Bytes::from_static(&[0x1f, 0])).unwrap().keyframe);
    }

    #[test]
    fn elementary_data_gets_its_flv_form_on_first_use() {
        let p = MediaPacket::from_elementary(
            Track::Video,
            Codec::H264,
            Content::Frame,
            0,
            -40,
            false,
            Bytes::from_static(&[0, 0, 0, 1, 0x41]),
        )
        .unwrap();
        assert_eq!(&p.flv_body()[..], &[0x27, 1, 0xff, 0xff, 0xd8, 0, 0, 0, 1, 0x41]);
        assert_eq!(p.flv_len(), 10);
        let refused =
            MediaPacket::from_elementary(Track::Audio, Codec::G711U, Content::Frame, 0, 0, false, Bytes::new());
        assert_eq!(refused.unwrap_err(), UnwritableTag { codec: Codec::G711U, content: Content::Frame });
    }

    #[test]
    fn a_wire_form_is_made_once_per_key() {
        let p = MediaPacket::from_flv(Track::Audio, 0, Bytes::from_static(&[0xaf, 1, 2])).unwrap();
        let made = std::cell::Cell::new(0);
        let make = |_: &MediaPacket| {
            made.set(made.get() + 1);
            Bytes::from_static(b"x")
        };
        for _ in 0..3 {
            p.wire(WireForm::RtmpChunks, 128, make);
        }
        assert_eq!(made.get(), 1);
        p.wire(WireForm::RtmpChunks, 4096, make);
        assert_eq!(made.get(), 2, "another key is made, not cached over the first");
    }

    #[test]
    fn hdr_metadata_is_kept_for_late_joiners_after_the_configuration() {
        let mut t = Tracks::default();
        // Enhanced RTMP: SequenceStart, then Metadata (colorInfo), for HEVC.
        let config = Arc::new(MediaPacket::from_flv(Track::Video, 0, Bytes::from_static(b"\x90hvc1\x01")).unwrap());
        let colour = Arc::new(
            MediaPacket::from_flv(Track::Video, 0, Bytes::from_static(b"\x94hvc1\x02\x00\x09colorInfo")).unwrap(),
        );
        assert_eq!(colour.content, Content::Metadata);
        assert!(t.update(&config));
        assert!(t.update(&colour), "track information, not a frame");
        let sent: Vec<Content> = t.packets().map(|p| p.content).collect();
        assert_eq!(sent, vec![Content::Config, Content::Metadata]);
    }

    #[test]
    fn tracks_follow_configs_and_codecs_without_one() {
        let mut t = Tracks::default();
        let pkt =
            |track, body: &'static [u8]| Arc::new(MediaPacket::from_flv(track, 0, Bytes::from_static(body)).unwrap());
        assert!(!t.update(&pkt(Track::Audio, &[0x2f, 0xff, 0xfb])));
        assert_eq!(t.audio.as_ref().map(|a| a.codec), Some(Codec::Mp3));
        assert!(t.update(&pkt(Track::Audio, &[0xaf, 0, 0x12, 0x10])));
        assert!(t.update(&pkt(Track::Video, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1e, 0xff, 0xe0, 0])));
        assert!(t.update(&pkt(Track::Data, &[2, 0, 0])));
        assert_eq!(t.audio_info.as_ref().map(|i| i.sample_rate), Some(44100));
        let order: Vec<Track> = t.packets().map(|p| p.track).collect();
        assert_eq!(order, [Track::Data, Track::Audio, Track::Video]);
        assert!(t.has_audio() && t.has_video());
    }
}
