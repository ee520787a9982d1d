//! MPEG-TS in (as SRT carries it) to the elementary packets every other protocol uses.
//!
//! The demuxer ([`crate::ts_demux`]) gives PES; this turns them into what an RTMP publisher
//! would have sent: a decoder configuration when the in-band parameter sets (H.264 SPS/PPS,
//! HEVC VPS/SPS/PPS) or the ADTS header change, then access units as length-prefixed NAL units
//! (without delimiters or parameter sets) and raw AAC frames, timed in milliseconds. Frames
//! before their track's first configuration are dropped: no decoder could use them.

use crate::aac::AudioSpecificConfig;
use crate::media::{Codec, Content, Track};
use crate::ts_demux::{adts_frames, annexb_nal_units, Pes, StreamType, TsDemuxer, TsErrors};
use crate::{avc, hevc};

/// One packet for the core, in the form an FLV tag body would carry its codec data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsPacket {
    pub track: Track,
    pub codec: Codec,
    pub content: Content,
    pub dts_ms: u32,
    pub cts_ms: i32,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// What the input had that could not be used (beyond the demuxer's [`TsErrors`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestDrops {
    /// Video or audio frames before their track's configuration.
    pub before_config: u64,
    /// PES without a timestamp, or whose payload did not parse (no NAL units, no ADTS frame).
    pub unusable: u64,
}

/// 33-bit 90 kHz timestamps unwrapped onto one growing line, so a stream running past 26.5 h
/// keeps going forward.
#[derive(Debug, Default)]
struct Timeline {
    last: Option<u64>,
}

impl Timeline {
    const WRAP: u64 = 1 << 33;

    fn unwrap(&mut self, ts: u64) -> u64 {
        let ts = ts & (Self::WRAP - 1);
        let Some(last) = self.last else {
            self.last = Some(ts);
            return ts;
        };
        // The candidate nearest the furthest value so far, among ts + k * 2^33.
        let here = (last & !(Self::WRAP - 1)) + ts;
        let mut best = here;
        for cand in [here.checked_sub(Self::WRAP), here.checked_add(Self::WRAP)].into_iter().flatten() {
            if cand.abs_diff(last) < best.abs_diff(last) {
                best = cand;
            }
        }
        self.last = Some(best.max(last));
        best
    }
}

/// H.264 or HEVC access units in Annex B with their parameter sets in band (as TS and RTP
/// carry them) to the core's form: a configuration record whenever the sets change, then each
/// access unit as length-prefixed NAL units without delimiters or parameter sets.
#[derive(Debug, Default)]
pub struct InBandVideo {
    vps: Vec<Vec<u8>>,
    sps: Vec<Vec<u8>>,
    pps: Vec<Vec<u8>>,
    record: Option<Vec<u8>>,
}

/// What [`InBandVideo::push`] made of an access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoOutcome {
    /// A frame (maybe after a new configuration) went out.
    Sent,
    /// Only parameter sets (or delimiters): nothing but maybe a configuration.
    NoFrame,
    /// A frame before any configuration: dropped.
    BeforeConfig,
    /// No NAL units at all.
    Unusable,
}

impl InBandVideo {
    pub fn new() -> InBandVideo {
        InBandVideo::default()
    }

    /// Takes one Annex-B access unit decoded at `dts_ms` and shown at `pts_ms`.
    pub fn push(
        &mut self,
        annexb: &[u8],
        hevc: bool,
        dts_ms: u32,
        pts_ms: u32,
        out: &mut Vec<EsPacket>,
    ) -> VideoOutcome {
        let nals = annexb_nal_units(annexb);
        if nals.is_empty() {
            return VideoOutcome::Unusable;
        }
        let v = self;
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        let mut frame = Vec::with_capacity(annexb.len() + 4 * nals.len());
        let mut keyframe = false;
        for nal in nals {
            let (kind, set) = if hevc {
                let t = hevc::nal_type(nal);
                keyframe |= (hevc::NAL_IRAP_FIRST..=hevc::NAL_IRAP_LAST).contains(&t);
                let set = match t {
                    hevc::NAL_VPS => Some(&mut vps),
                    hevc::NAL_SPS => Some(&mut sps),
                    hevc::NAL_PPS => Some(&mut pps),
                    _ => None,
                };
                (if t == hevc::NAL_AUD { None } else { Some(()) }, set)
            } else {
                let t = nal[0] & 0x1f;
                keyframe |= t == 5;
                let set = match t {
                    7 => Some(&mut sps),
                    8 => Some(&mut pps),
                    _ => None,
                };
                (if t == 9 { None } else { Some(()) }, set)
            };
            match (kind, set) {
                (None, _) => {}
                (Some(()), Some(set)) => set.push(nal.to_vec()),
                (Some(()), None) => {
                    frame.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    frame.extend_from_slice(nal);
                }
            }
        }
        let codec = if hevc { Codec::H265 } else { Codec::H264 };
        // A new configuration when the parameter sets in the stream change (an encoder restart,
        // a resolution switch); the sets a record lacks are kept from before.
        if !sps.is_empty() || !pps.is_empty() || !vps.is_empty() {
            for (new, old) in [(vps, &mut v.vps), (sps, &mut v.sps), (pps, &mut v.pps)] {
                if !new.is_empty() {
                    *old = new;
                }
            }
            let record =
                if hevc { hevc::build_record(&v.vps, &v.sps, &v.pps) } else { avc::build_record(&v.sps, &v.pps) };
            if let Some(record) = record.filter(|r| v.record.as_ref() != Some(r)) {
                v.record = Some(record.clone());
                out.push(EsPacket {
                    track: Track::Video,
                    codec,
                    content: Content::Config,
                    dts_ms,
                    cts_ms: 0,
                    keyframe: false,
                    data: record,
                });
            }
        }
        if frame.is_empty() {
            return VideoOutcome::NoFrame;
        }
        if v.record.is_none() {
            return VideoOutcome::BeforeConfig;
        }
        out.push(EsPacket {
            track: Track::Video,
            codec,
            content: Content::Frame,
            dts_ms,
            cts_ms: (pts_ms as i64 - dts_ms as i64) as i32,
            keyframe,
            data: frame,
        });
        VideoOutcome::Sent
    }
}

/// TS bytes in, [`EsPacket`]s out. Sans-io; bounded by the demuxer's PES limit.
#[derive(Debug, Default)]
pub struct TsIngest {
    demux: TsDemuxer,
    pes: Vec<Pes>,
    clock: Timeline,
    video: InBandVideo,
    asc: Option<[u8; 2]>,
    /// The OpusHead last sent as the audio configuration.
    opus_head: Option<[u8; 19]>,
    /// Packets waiting for the other track to catch up, in decode order.
    queue: std::collections::VecDeque<EsPacket>,
    /// The latest decode time seen on video and on audio.
    latest: [Option<u32>; 2],
    pub drops: IngestDrops,
}

/// Most packets held for interleaving; beyond it (a track went quiet), the oldest go out.
const MAX_HELD: usize = 256;
/// Most media time held for interleaving, in milliseconds.
const MAX_HELD_MS: u32 = 1000;

impl TsIngest {
    pub fn new() -> TsIngest {
        TsIngest::default()
    }

    /// The demuxer's count of losses and garbage so far.
    pub fn ts_errors(&self) -> TsErrors {
        self.demux.errors
    }

    /// Takes TS bytes (any chunking) and appends the packets they complete to `out`.
    /// Packets come out in decode order across tracks (a TS completes a video PES only when the
    /// next starts, so audio would otherwise overtake it), held at most [`MAX_HELD_MS`].
    pub fn push(&mut self, data: &[u8], out: &mut Vec<EsPacket>) {
        let mut pes = std::mem::take(&mut self.pes);
        self.demux.push(data, &mut pes);
        let mut made = Vec::new();
        for p in pes.drain(..) {
            self.on_pes(p, &mut made);
        }
        self.pes = pes;
        self.interleave(made, out, false);
    }

    /// Ends the input: the PES still open are complete now, and nothing is held.
    pub fn flush(&mut self, out: &mut Vec<EsPacket>) {
        let mut pes = Vec::new();
        self.demux.flush(&mut pes);
        let mut made = Vec::new();
        for p in pes {
            self.on_pes(p, &mut made);
        }
        self.interleave(made, out, true);
    }

    fn interleave(&mut self, made: Vec<EsPacket>, out: &mut Vec<EsPacket>, all: bool) {
        for p in made {
            let slot = if p.track == Track::Video { 0 } else { 1 };
            self.latest[slot] = Some(self.latest[slot].map_or(p.dts_ms, |l| l.max(p.dts_ms)));
            // Insert after every packet not later than it: a track's own order is kept.
            let at = self.queue.iter().rposition(|q| q.dts_ms <= p.dts_ms).map_or(0, |i| i + 1);
            self.queue.insert(at, p);
        }
        // Safe to release: what no track can still come before.
        // A track the PMT announced that has sent nothing yet holds everything (within bounds).
        let has = |f: fn(StreamType) -> bool| self.demux.stream_types().any(|(_, t)| f(t));
        let want = [
            has(|t| matches!(t, StreamType::H264 | StreamType::Hevc)),
            has(|t| matches!(t, StreamType::Aac | StreamType::Mp3 | StreamType::Opus(_))),
        ];
        let horizon = (0..2)
            .filter(|&i| want[i] || self.latest[i].is_some())
            .map(|i| self.latest[i])
            .min()
            .flatten()
            .unwrap_or(0);
        while let Some(front) = self.queue.front() {
            let newest = self.queue.back().map_or(0, |b| b.dts_ms);
            let go = all
                || front.dts_ms <= horizon
                || self.queue.len() > MAX_HELD
                || newest.saturating_sub(front.dts_ms) > MAX_HELD_MS;
            if !go {
                break;
            }
            out.extend(self.queue.pop_front());
        }
    }

    fn on_pes(&mut self, p: Pes, out: &mut Vec<EsPacket>) {
        let Some(pts) = p.pts else {
            self.drops.unusable += 1;
            return;
        };
        let pts = self.clock.unwrap(pts);
        // DTS is never after PTS; a DTS further than 10 s before it is taken as broken.
        let dts = p.dts.map(|d| pts - (pts.wrapping_sub(d) & (Timeline::WRAP - 1)).min(900_000)).unwrap_or(pts);
        match p.stream_type {
            StreamType::H264 | StreamType::Hevc => self.on_video(&p, dts, pts, out),
            StreamType::Aac => self.on_aac(&p.data, pts, out),
            StreamType::Opus(channels) => self.on_opus(&p.data, channels, pts, out),
            StreamType::Mp3 => out.push(EsPacket {
                track: Track::Audio,
                codec: Codec::Mp3,
                content: Content::Frame,
                dts_ms: ms(pts),
                cts_ms: 0,
                keyframe: false,
                data: p.data,
            }),
            StreamType::Other(_) => {}
        }
    }

    fn on_video(&mut self, p: &Pes, dts: u64, pts: u64, out: &mut Vec<EsPacket>) {
        let hevc = p.stream_type == StreamType::Hevc;
        match self.video.push(&p.data, hevc, ms(dts), ms(pts), out) {
            VideoOutcome::Unusable => self.drops.unusable += 1,
            VideoOutcome::BeforeConfig => self.drops.before_config += 1,
            VideoOutcome::Sent | VideoOutcome::NoFrame => {}
        }
    }

    /// Opus access units, each behind its control header (0x7FE followed by flags, the size
    /// as a run of 255s, and optional trims): one packet each, timed by the samples before it.
    fn on_opus(&mut self, mut data: &[u8], channels: u8, pts: u64, out: &mut Vec<EsPacket>) {
        let head = opus_head(channels);
        if self.opus_head != Some(head) {
            self.opus_head = Some(head);
            out.push(EsPacket {
                track: Track::Audio,
                codec: Codec::Opus,
                content: Content::Config,
                dts_ms: ms(pts),
                cts_ms: 0,
                keyframe: false,
                data: head.to_vec(),
            });
        }
        let mut samples = 0u64;
        while data.len() >= 2 {
            let Some((payload, rest)) = opus_access_unit(data) else {
                self.drops.unusable += 1;
                return;
            };
            let at = pts + samples * 90_000 / 48_000;
            samples += opus_samples(payload) as u64;
            out.push(EsPacket {
                track: Track::Audio,
                codec: Codec::Opus,
                content: Content::Frame,
                dts_ms: ms(at),
                cts_ms: 0,
                keyframe: false,
                data: payload.to_vec(),
            });
            data = rest;
        }
    }

    fn on_aac(&mut self, data: &[u8], pts: u64, out: &mut Vec<EsPacket>) {
        let frames = adts_frames(data);
        if frames.is_empty() {
            self.drops.unusable += 1;
            return;
        }
        for (i, f) in frames.iter().enumerate() {
            let asc =
                AudioSpecificConfig { object_type: f.object_type, freq_index: f.freq_index, channels: f.channels };
            let Some(rate) = asc.sample_rate() else {
                self.drops.unusable += 1;
                continue;
            };
            // Frames after the first in one PES follow it by 1024 samples each.
            let at = pts + i as u64 * 1024 * 90_000 / rate as u64;
            let bytes = asc.to_bytes();
            if self.asc != Some(bytes) {
                self.asc = Some(bytes);
                out.push(EsPacket {
                    track: Track::Audio,
                    codec: Codec::Aac,
                    content: Content::Config,
                    dts_ms: ms(at),
                    cts_ms: 0,
                    keyframe: false,
                    data: bytes.to_vec(),
                });
            }
            out.push(EsPacket {
                track: Track::Audio,
                codec: Codec::Aac,
                content: Content::Frame,
                dts_ms: ms(at),
                cts_ms: 0,
                keyframe: false,
                data: f.raw.to_vec(),
            });
        }
    }
}

/// OpusHead (RFC 7845) for `channels` at 48 kHz, 312 samples of pre-skip, mapping family 0 (1 or
/// 2 channels; more are described as 2, which the header of family 0 cannot say otherwise).
pub fn opus_head(channels: u8) -> [u8; 19] {
    let mut h = *b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
    h[9] = channels.clamp(1, 2);
    h
}

/// One Opus access unit behind its TS control header: (payload, what follows).
fn opus_access_unit(data: &[u8]) -> Option<(&[u8], &[u8])> {
    if data[0] != 0x7f || data[1] & 0xe0 != 0xe0 {
        return None;
    }
    let flags = data[1];
    let mut i = 2;
    let mut size = 0usize;
    loop {
        let b = *data.get(i)?;
        i += 1;
        size += b as usize;
        if b != 0xff {
            break;
        }
    }
    if flags & 0x10 != 0 {
        i += 2; // start trim
    }
    if flags & 0x08 != 0 {
        i += 2; // end trim
    }
    if flags & 0x04 != 0 {
        i += 1 + *data.get(i)? as usize; // control extension
    }
    let payload = data.get(i..i + size)?;
    Some((payload, &data[i + size..]))
}

/// Samples (at 48 kHz) in an Opus packet, from its TOC byte (RFC 6716 3.1).
fn opus_samples(packet: &[u8]) -> u32 {
    let Some(&toc) = packet.first() else { return 0 };
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][(config % 4) as usize],
        12..=15 => [480, 960][(config % 2) as usize],
        _ => [120, 240, 480, 960][(config % 4) as usize],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(0, |b| (b & 0x3f) as u32),
    };
    frame * frames
}

/// 90 kHz to milliseconds, on a u32 line that wraps after 49 days as RTMP's does.
fn ms(t90k: u64) -> u32 {
    (t90k / 90) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::{AudioCodec, TsMuxer, VideoCodec};
    use bytes::BytesMut;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb];

    fn avcc(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter().flat_map(|n| [&(n.len() as u32).to_be_bytes()[..], n].concat()).collect()
    }

    /// What our muxer writes for HLS, read back: the same record, frames and times.
    #[test]
    fn h264_aac_round_trip_through_our_muxer() {
        let record = avc::build_record(&[SPS.to_vec()], &[PPS.to_vec()]).unwrap();
        let mut mux = TsMuxer::new(Some(VideoCodec::H264), Some(AudioCodec::Aac));
        mux.set_avc_config(&record).unwrap();
        mux.set_aac_config(&[0x12, 0x10]).unwrap();
        let mut ts = BytesMut::new();
        mux.tables(&mut ts);
        let idr = avcc(&[&[0x06, 5, 1, 2], &[0x65, 0x88, 0x84, 0x00]]);
        let p = avcc(&[&[0x41, 0x9a, 0x22]]);
        mux.video(&idr, 1000, 80, true, &mut ts).unwrap();
        mux.audio(&[0x21, 0x10, 0x05], 1010, &mut ts).unwrap();
        mux.video(&p, 1040, 40, false, &mut ts).unwrap();
        mux.video(&p, 1080, 0, false, &mut ts).unwrap();

        let mut ingest = TsIngest::new();
        let mut out = Vec::new();
        // One byte at a time: the chunking of SRT messages must not matter.
        for b in ts.chunks(1) {
            ingest.push(b, &mut out);
        }
        ingest.flush(&mut out);
        let summary: Vec<_> = out.iter().map(|p| (p.track, p.content, p.dts_ms, p.cts_ms, p.keyframe)).collect();
        assert_eq!(
            summary,
            vec![
                (Track::Video, Content::Config, 1000, 0, false),
                (Track::Video, Content::Frame, 1000, 80, true),
                (Track::Audio, Content::Config, 1010, 0, false),
                (Track::Audio, Content::Frame, 1010, 0, false),
                (Track::Video, Content::Frame, 1040, 40, false),
                (Track::Video, Content::Frame, 1080, 0, false),
            ]
        );
        assert_eq!(out[0].data, record, "the avcC rebuilt byte for byte");
        assert_eq!(out[1].data, idr, "SEI and slice kept; AUD and parameter sets taken out");
        assert_eq!((out[2].data.as_slice(), out[3].data.as_slice()), (&[0x12, 0x10][..], &[0x21, 0x10, 0x05][..]));
        assert_eq!(out[4].data, p);
        assert_eq!(ingest.drops, IngestDrops::default());
    }

    #[test]
    fn hevc_round_trip_and_frames_before_config_dropped() {
        let orig = crate::hevc::tests::hex(crate::hevc::tests::X265_HVCC);
        let c = crate::hevc::HevcConfig::parse(&orig).unwrap();
        let mut mux = TsMuxer::new(Some(VideoCodec::Hevc), None);
        mux.set_hevc_config(&orig).unwrap();
        let mut ts = BytesMut::new();
        mux.tables(&mut ts);
        // A trailing picture first: the TS muxer writes no parameter sets before it.
        let trail = avcc(&[&[0x02, 0x01, 0xd0]]);
        let idr = avcc(&[&[0x26, 0x01, 0xaf, 0x11]]);
        mux.video(&trail, 0, 0, false, &mut ts).unwrap();
        mux.video(&idr, 40, 0, true, &mut ts).unwrap();
        let mut ingest = TsIngest::new();
        let mut out = Vec::new();
        ingest.push(&ts, &mut out);
        ingest.flush(&mut out);
        assert_eq!(ingest.drops.before_config, 1);
        assert_eq!(out.len(), 2);
        let rebuilt = crate::hevc::HevcConfig::parse(&out[0].data).unwrap();
        assert_eq!(rebuilt.parameter_sets, c.parameter_sets);
        assert_eq!((rebuilt.profile_idc, rebuilt.level_idc), (c.profile_idc, c.level_idc));
        assert_eq!((out[1].codec, out[1].keyframe, out[1].dts_ms), (Codec::H265, true, 40));
        assert_eq!(out[1].data, idr);
    }

    #[test]
    fn opus_control_headers_and_durations() {
        // Two 20 ms CELT packets (config 31: 960 samples), the second with a 300-byte size run.
        let first = [0xf8u8, 1, 2, 3];
        let second: Vec<u8> = std::iter::once(0xf8).chain(std::iter::repeat_n(7, 299)).collect();
        let mut pes = vec![0x7f, 0xe0, 4];
        pes.extend_from_slice(&first);
        pes.extend_from_slice(&[0x7f, 0xe0, 0xff, 45]);
        pes.extend_from_slice(&second);
        let mut ingest = TsIngest::new();
        let mut out = Vec::new();
        ingest.on_opus(&pes, 2, 90_000, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!((out[0].content, out[0].data.as_slice()), (Content::Config, &opus_head(2)[..]));
        assert_eq!((out[1].dts_ms, out[1].data.as_slice()), (1000, &first[..]));
        assert_eq!((out[2].dts_ms, out[2].data.len()), (1020, 300));
        // Config 0 (SILK, 10 ms), code 3: the frame count (5) is in the second byte.
        assert_eq!(opus_samples(&[0x03, 0x05]), 5 * 480);
        // A broken header: counted, nothing after it taken.
        let mut out = Vec::new();
        ingest.on_opus(&[0x12, 0x34, 0x56], 2, 0, &mut out);
        assert!(out.is_empty() && ingest.drops.unusable == 1);
    }

    #[test]
    fn timeline_unwraps_33_bits() {
        let mut t = Timeline::default();
        let top = Timeline::WRAP - 90;
        assert_eq!(t.unwrap(top), top);
        assert_eq!(t.unwrap(0), Timeline::WRAP, "wrapped forward");
        assert_eq!(t.unwrap(Timeline::WRAP - 180), top - 90, "a late packet from before the wrap");
        assert_eq!(t.unwrap(90), Timeline::WRAP + 90);
    }

    #[test]
    fn garbage_is_bounded_and_never_panics() {
        let mut ingest = TsIngest::new();
        let mut out = Vec::new();
        let mut x: u32 = 12345;
        let junk: Vec<u8> = (0..200_000)
            .map(|i| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                if i % 188 == 0 {
                    0x47
                } else {
                    (x >> 16) as u8
                }
            })
            .collect();
        ingest.push(&junk, &mut out);
        ingest.flush(&mut out);
        assert!(out.iter().all(|p| p.data.len() <= crate::ts_demux::MAX_PES));
    }
}
