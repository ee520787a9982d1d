//! fMP4 (CMAF) for HLS segments and MP4 recordings: the stream's tracks as MP4 sample entries,
//! and a fragment's samples gathered per track until it is cut, then written as one `moof` +
//! `mdat` by the codec crate's [`fmp4`] writer.

use crate::media::{Codec, MediaPacket, Track, Tracks};
use rsrs_codec::av1;
use rsrs_codec::fmp4::{self, OpusHead, Run, Sample, SampleEntry};
use rsrs_codec::{avc, hevc};

/// Track ids in the init segment.
const VIDEO_ID: u32 = 1;
const AUDIO_ID: u32 = 2;

/// Why a stream's tracks cannot be written as fMP4.
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("fMP4 carries H.264, HEVC, AV1, VP9, AAC and Opus; this stream's {track:?} is {codec}", codec = codec.name())]
    Unsupported { track: Track, codec: Codec },
    #[error("the {codec} configuration cannot be read", codec = codec.name())]
    BadConfig { codec: Codec },
    #[error("{0}")]
    Fragment(#[from] fmp4::FragmentError),
}

/// Whether fMP4 can carry a track of `codec`.
pub fn carries(track: Track, codec: Codec) -> bool {
    match track {
        Track::Video => matches!(codec, Codec::H264 | Codec::H265 | Codec::Av1 | Codec::Vp9),
        Track::Audio => matches!(codec, Codec::Aac | Codec::Opus),
        Track::Data => true,
    }
}

/// Whether MPEG-TS can carry a track of `codec` (what the TS muxer takes).
pub fn ts_carries(track: Track, codec: Codec) -> bool {
    match track {
        Track::Video => matches!(codec, Codec::H264 | Codec::H265),
        Track::Audio => matches!(codec, Codec::Aac | Codec::Mp3),
        Track::Data => true,
    }
}

/// The sample entry for a track's configuration packet. VP9's picture size is not in its
/// configuration: `size` gives it (from the first keyframe).
fn entry(track: Track, config: &MediaPacket, size: Option<(u32, u32)>) -> Result<SampleEntry, Fmp4Error> {
    let bad = || Fmp4Error::BadConfig { codec: config.codec };
    let data = config.data();
    let clamp = |(w, h): (u32, u32)| (w.min(u16::MAX as u32) as u16, h.min(u16::MAX as u32) as u16);
    Ok(match (track, config.codec) {
        (Track::Video, Codec::H264) => {
            let c = avc::DecoderConfig::parse(data).map_err(|_| bad())?;
            let (width, height) = clamp(c.sps.first().and_then(|s| avc::sps_dimensions(s)).unwrap_or((0, 0)));
            SampleEntry::Avc { avcc: data.to_vec(), width, height }
        }
        (Track::Video, Codec::H265) => {
            let c = hevc::HevcConfig::parse(data).map_err(|_| bad())?;
            let (width, height) = clamp(c.sps().and_then(hevc::sps_dimensions).unwrap_or((0, 0)));
            SampleEntry::Hevc { hvcc: data.to_vec(), width, height }
        }
        (Track::Video, Codec::Av1) => {
            let c = av1::Av1Config::parse(data).map_err(|_| bad())?;
            let (width, height) = clamp(c.max_dimensions().unwrap_or((0, 0)));
            SampleEntry::Av1 { av1c: data.to_vec(), width, height }
        }
        (Track::Video, Codec::Vp9) => {
            rsrs_codec::vp9::Vp9Config::parse(data).map_err(|_| bad())?;
            let (width, height) = clamp(size.unwrap_or((0, 0)));
            SampleEntry::Vp9 { vpcc: rsrs_codec::vp9::record_body(data).to_vec(), width, height }
        }
        (Track::Audio, Codec::Aac) => SampleEntry::aac(data).ok_or_else(bad)?,
        (Track::Audio, Codec::Opus) => SampleEntry::Opus { head: OpusHead::parse(data).map_err(|_| bad())? },
        (track, codec) => return Err(Fmp4Error::Unsupported { track, codec }),
    })
}

/// One track of the segments: its entry, and the samples of the open segment.
#[derive(Debug)]
struct TrackSegment {
    id: u32,
    entry: SampleEntry,
    /// (decode time ms, composition offset ms, sync) of each sample, and their bytes.
    samples: Vec<(u32, i32, bool, u32)>,
    data: Vec<u8>,
}

/// The fMP4 form of a stream's tracks: its init segment, and the open segment's samples.
#[derive(Debug)]
pub struct Fmp4Segments {
    tracks: Vec<TrackSegment>,
    init: Vec<u8>,
    /// Fragments written (the `mfhd` sequence number).
    fragments: u32,
}

impl Fmp4Segments {
    /// Builds the init segment from the tracks' configurations.
    pub fn new(tracks: &Tracks) -> Result<Fmp4Segments, Fmp4Error> {
        let mut out = Vec::new();
        for (track, id, info) in [(Track::Video, VIDEO_ID, &tracks.video), (Track::Audio, AUDIO_ID, &tracks.audio)] {
            let Some(info) = info else { continue };
            let config = info.config.as_ref().ok_or(Fmp4Error::Unsupported { track, codec: info.codec })?;
            let size = tracks.video_info.as_ref().filter(|v| v.width > 0).map(|v| (v.width, v.height));
            out.push(TrackSegment { id, entry: entry(track, config, size)?, samples: Vec::new(), data: Vec::new() });
        }
        let init = fmp4::init_segment(
            &out.iter().map(|t| fmp4::Track { id: t.id, entry: t.entry.clone() }).collect::<Vec<_>>(),
        );
        Ok(Fmp4Segments { tracks: out, init, fragments: 0 })
    }

    pub fn init(&self) -> &[u8] {
        &self.init
    }

    /// The track a recording's index points into (video if there is one) and its timescale.
    pub fn index_track(&self) -> Option<(u32, u32)> {
        let t = self.tracks.iter().find(|t| t.entry.is_video()).or(self.tracks.first())?;
        Some((t.id, t.entry.timescale()))
    }

    /// Decode time (ms) of the open fragment's first sample of the index track.
    pub fn pending_start(&self) -> Option<u32> {
        let (id, _) = self.index_track()?;
        self.tracks.iter().find(|t| t.id == id)?.samples.first().map(|s| s.0)
    }

    /// Bytes of the open segment so far.
    pub fn buffered(&self) -> usize {
        self.tracks.iter().map(|t| t.data.len()).sum()
    }

    /// Adds a frame to the open segment (an empty one is no sample: MP4 readers refuse them).
    pub fn push(&mut self, f: &MediaPacket) {
        if f.data().is_empty() {
            return;
        }
        let id = if f.track == Track::Video { VIDEO_ID } else { AUDIO_ID };
        let Some(t) = self.tracks.iter_mut().find(|t| t.id == id) else { return };
        let start = t.data.len();
        if f.codec == Codec::Av1 {
            // Temporal delimiters do not belong in MP4 samples (AV1-ISOBMFF 2.4).
            let mut obus: &[u8] = f.data();
            while let Some((kind, _, rest)) = av1::next_obu(obus) {
                let whole = &obus[..obus.len() - rest.len()];
                if kind != av1::OBU_TEMPORAL_DELIMITER {
                    t.data.extend_from_slice(whole);
                }
                obus = rest;
            }
        } else {
            t.data.extend_from_slice(f.data());
        }
        let size = (t.data.len() - start) as u32;
        if size == 0 {
            return; // nothing but temporal delimiters
        }
        let sync = f.track != Track::Video || f.keyframe;
        t.samples.push((f.dts, f.cts, sync, size));
    }

    /// Writes the open segment, ending at `end_ms` (the next segment's start), as one fragment,
    /// and starts the next one empty.
    pub fn finish(&mut self, end_ms: u32) -> Result<Vec<u8>, Fmp4Error> {
        let mut runs_samples = Vec::new();
        for t in &self.tracks {
            let scale = t.entry.timescale();
            let at = |ms: u32| fmp4::ticks(ms as u64, scale);
            let mut samples = Vec::with_capacity(t.samples.len());
            for (i, &(dts, cts, sync, size)) in t.samples.iter().enumerate() {
                let next = match t.samples.get(i + 1) {
                    Some(n) => at(n.0),
                    // The last sample lasts until the segment's end, or as long as the one before.
                    None if end_ms > dts => at(end_ms),
                    None => at(dts) + samples.last().map_or(0, |s: &Sample| s.duration as u64),
                };
                let duration = next.saturating_sub(at(dts)).min(u32::MAX as u64) as u32;
                let cts = (cts as i64 * scale as i64 / 1000).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                samples.push(Sample { duration, size, sync, cts });
            }
            runs_samples.push((t.id, t.samples.first().map_or(0, |s| at(s.0)), samples));
        }
        let runs: Vec<Run> = runs_samples
            .iter()
            .zip(&self.tracks)
            .filter(|((_, _, s), _)| !s.is_empty())
            .map(|((id, base, samples), t)| Run { track_id: *id, base_decode_time: *base, samples, data: &t.data })
            .collect();
        self.fragments += 1;
        let out = fmp4::fragment(self.fragments, &runs)?;
        for t in &mut self.tracks {
            t.samples.clear();
            t.data.clear();
        }
        Ok(out)
    }
}
