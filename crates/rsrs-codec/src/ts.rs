//! MPEG-TS muxer for HLS: PAT/PMT, PES for H.264 and HEVC (length-prefixed NAL units to
//! Annex-B, with an access unit delimiter, and the parameter sets before every keyframe) and
//! AAC (ADTS from the AudioSpecificConfig) or MP3, PCR on the video PID, continuity counters,
//! and PTS/DTS from decode time plus composition time.
//!
//! Input is elementary data (length-prefixed NAL units, raw AAC or MP3 frames) and the
//! tracks' configuration records, never container headers; output is whole 188-byte packets.

use crate::aac::{AudioSpecificConfig, BadAudioSpecificConfig};
use crate::avc::{BadDecoderConfig, DecoderConfig};
use crate::hevc::{self, BadHevcConfig, HevcConfig};
use bytes::{BufMut, BytesMut};

pub const PACKET: usize = 188;
pub const PMT_PID: u16 = 0x1001;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;
const STREAM_TYPE_H264: u8 = 0x1b;
const STREAM_TYPE_HEVC: u8 = 0x24;
const STREAM_TYPE_AAC: u8 = 0x0f;
const STREAM_TYPE_MP3: u8 = 0x03;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TsError {
    #[error(transparent)]
    BadAvcConfig(#[from] BadDecoderConfig),
    #[error(transparent)]
    BadHevcConfig(#[from] BadHevcConfig),
    #[error(transparent)]
    BadAacConfig(#[from] BadAudioSpecificConfig),
    #[error("video frame before its decoder configuration")]
    NoVideoConfig,
    #[error("{0:?} configuration for a TS stream whose video is {1:?}")]
    WrongVideoCodec(VideoCodec, Option<VideoCodec>),
    #[error("AAC frame before its AudioSpecificConfig")]
    NoAacConfig,
    #[error("audio frame for a TS stream created without audio")]
    NoAudioTrack,
    #[error("video frame is truncated: a NAL unit runs past its end")]
    Truncated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Mp3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    Hevc,
}

/// What the video's frames need: how long their NAL lengths are, and the parameter sets
/// (SPS, PPS; VPS, SPS, PPS for HEVC) to put before every keyframe.
#[derive(Debug)]
struct VideoConfig {
    nal_length_size: usize,
    parameter_sets: Vec<Vec<u8>>,
}

/// Converts H.264 or HEVC and AAC/MP3 elementary data into a TS stream.
#[derive(Debug)]
pub struct TsMuxer {
    video: Option<VideoCodec>,
    audio: Option<AudioCodec>,
    video_config: Option<VideoConfig>,
    aac: Option<AudioSpecificConfig>,
    cc: [u8; 4],
}

impl TsMuxer {
    /// The stream's video and audio codecs, if any. These shape the PMT, so a stream that
    /// starts pure audio and gains video needs a new muxer (new segment).
    pub fn new(video: Option<VideoCodec>, audio: Option<AudioCodec>) -> TsMuxer {
        TsMuxer { video, audio, video_config: None, aac: None, cc: [0; 4] }
    }

    fn cc(&mut self, pid: u16) -> u8 {
        let i = match pid {
            0 => 0,
            PMT_PID => 1,
            VIDEO_PID => 2,
            _ => 3,
        };
        let c = self.cc[i];
        self.cc[i] = (c + 1) & 0x0f;
        c
    }

    /// PAT and PMT, to start every segment.
    pub fn tables(&mut self, out: &mut BytesMut) {
        // PAT: one program, number 1, at PMT_PID.
        let mut pat = Vec::with_capacity(16);
        pat.extend_from_slice(&[0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01]);
        pat.push(0xe0 | (PMT_PID >> 8) as u8);
        pat.push(PMT_PID as u8);
        self.section(out, 0, &pat);
        // PMT
        let pcr_pid = if self.video.is_some() { VIDEO_PID } else { AUDIO_PID };
        let mut streams = Vec::new();
        if let Some(v) = self.video {
            let t = if v == VideoCodec::H264 { STREAM_TYPE_H264 } else { STREAM_TYPE_HEVC };
            streams.extend_from_slice(&[t, 0xe0 | (VIDEO_PID >> 8) as u8, VIDEO_PID as u8, 0xf0, 0x00]);
        }
        if let Some(a) = self.audio {
            let t = if a == AudioCodec::Aac { STREAM_TYPE_AAC } else { STREAM_TYPE_MP3 };
            streams.extend_from_slice(&[t, 0xe0 | (AUDIO_PID >> 8) as u8, AUDIO_PID as u8, 0xf0, 0x00]);
        }
        let section_len = 9 + streams.len() + 4;
        let mut pmt = vec![
            0x02,
            0xb0 | (section_len >> 8) as u8,
            section_len as u8,
            0x00,
            0x01,
            0xc1,
            0x00,
            0x00,
            0xe0 | (pcr_pid >> 8) as u8,
            pcr_pid as u8,
            0xf0,
            0x00,
        ];
        pmt.extend_from_slice(&streams);
        self.section(out, PMT_PID, &pmt);
    }

    fn section(&mut self, out: &mut BytesMut, pid: u16, section: &[u8]) {
        let start = out.len();
        out.put_u8(0x47);
        out.put_u8(0x40 | (pid >> 8) as u8);
        out.put_u8(pid as u8);
        let cc = self.cc(pid);
        out.put_u8(0x10 | cc);
        out.put_u8(0x00); // pointer field
        out.put_slice(section);
        out.put_u32(crc32_mpeg2(section));
        out.resize(start + PACKET, 0xff);
    }

    /// Takes the H.264 decoder configuration record (avcC) for the frames that follow.
    pub fn set_avc_config(&mut self, record: &[u8]) -> Result<(), TsError> {
        self.expect_video(VideoCodec::H264)?;
        let c = DecoderConfig::parse(record)?;
        let parameter_sets = c.sps.into_iter().chain(c.pps).collect();
        self.video_config = Some(VideoConfig { nal_length_size: c.nal_length_size, parameter_sets });
        Ok(())
    }

    /// Takes the HEVC decoder configuration record (hvcC) for the frames that follow.
    pub fn set_hevc_config(&mut self, record: &[u8]) -> Result<(), TsError> {
        self.expect_video(VideoCodec::Hevc)?;
        let c = HevcConfig::parse(record)?;
        self.video_config = Some(VideoConfig { nal_length_size: c.nal_length_size, parameter_sets: c.parameter_sets });
        Ok(())
    }

    fn expect_video(&self, codec: VideoCodec) -> Result<(), TsError> {
        if self.video != Some(codec) {
            return Err(TsError::WrongVideoCodec(codec, self.video));
        }
        Ok(())
    }

    /// Takes the AAC AudioSpecificConfig for the frames that follow.
    pub fn set_aac_config(&mut self, asc: &[u8]) -> Result<(), TsError> {
        self.aac = Some(AudioSpecificConfig::parse(asc)?);
        Ok(())
    }

    /// Muxes one H.264 or HEVC access unit (length-prefixed NAL units) decoded at `dts_ms` and
    /// presented `cts_ms` later.
    pub fn video(
        &mut self,
        frame: &[u8],
        dts_ms: u32,
        cts_ms: i32,
        keyframe: bool,
        out: &mut BytesMut,
    ) -> Result<(), TsError> {
        let cfg = self.video_config.as_ref().ok_or(TsError::NoVideoConfig)?;
        let hevc = self.video == Some(VideoCodec::Hevc);
        let mut es = Vec::with_capacity(frame.len() + 64);
        if hevc {
            // AUD, pic_type 2 (any slice type).
            es.extend_from_slice(&[0, 0, 0, 1, hevc::NAL_AUD << 1, 0x01, 0x50]);
        } else {
            es.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
        }
        if keyframe {
            for p in &cfg.parameter_sets {
                es.extend_from_slice(&[0, 0, 0, 1]);
                es.extend_from_slice(p);
            }
        }
        let mut data = frame;
        let n = cfg.nal_length_size;
        while !data.is_empty() {
            if data.len() < n {
                return Err(TsError::Truncated);
            }
            let len = data[..n].iter().fold(0usize, |a, &b| a << 8 | b as usize);
            let nal = data.get(n..n + len).ok_or(TsError::Truncated)?;
            data = &data[n + len..];
            if nal.is_empty() {
                continue;
            }
            // Skip delimiters, and the parameter sets already put in front.
            let skip = if hevc {
                let t = hevc::nal_type(nal);
                t == hevc::NAL_AUD || (keyframe && (hevc::NAL_VPS..=hevc::NAL_PPS).contains(&t))
            } else {
                let t = nal[0] & 0x1f;
                t == 9 || (keyframe && (t == 7 || t == 8))
            };
            if skip {
                continue;
            }
            es.extend_from_slice(&[0, 0, 0, 1]);
            es.extend_from_slice(nal);
        }
        let dts = dts_ms as u64 * 90;
        let pts = (dts_ms as i64 + cts_ms as i64).max(0) as u64 * 90;
        self.pes(out, VIDEO_PID, 0xe0, &es, pts, Some(dts), true);
        Ok(())
    }

    /// Muxes one audio frame (raw AAC or an MPEG audio frame) presented at `pts_ms`.
    pub fn audio(&mut self, frame: &[u8], pts_ms: u32, out: &mut BytesMut) -> Result<(), TsError> {
        let pts = pts_ms as u64 * 90;
        let pcr = self.video.is_none();
        match self.audio.ok_or(TsError::NoAudioTrack)? {
            AudioCodec::Aac => {
                let c = self.aac.ok_or(TsError::NoAacConfig)?;
                let len = frame.len() + 7;
                let mut es = Vec::with_capacity(len);
                es.extend_from_slice(&[
                    0xff,
                    0xf1,
                    ((c.object_type.saturating_sub(1) & 0x03) << 6)
                        | ((c.freq_index & 0x0f) << 2)
                        | ((c.channels >> 2) & 0x01),
                    ((c.channels & 0x03) << 6) | ((len >> 11) & 0x03) as u8,
                    (len >> 3) as u8,
                    (((len & 0x07) as u8) << 5) | 0x1f,
                    0xfc,
                ]);
                es.extend_from_slice(frame);
                self.pes(out, AUDIO_PID, 0xc0, &es, pts, None, pcr);
            }
            AudioCodec::Mp3 => self.pes(out, AUDIO_PID, 0xc0, frame, pts, None, pcr),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn pes(&mut self, out: &mut BytesMut, pid: u16, stream_id: u8, es: &[u8], pts: u64, dts: Option<u64>, pcr: bool) {
        let mut hdr = Vec::with_capacity(19);
        hdr.extend_from_slice(&[0, 0, 1, stream_id]);
        let hdr_data_len = if dts.is_some() { 10 } else { 5 };
        let pes_len = 3 + hdr_data_len + es.len();
        // Video PES may exceed 16 bits; 0 means "unbounded" for video streams.
        let len_field = if stream_id == 0xe0 || pes_len > 0xffff { 0 } else { pes_len as u16 };
        hdr.extend_from_slice(&len_field.to_be_bytes());
        hdr.push(0x80);
        hdr.push(if dts.is_some() { 0xc0 } else { 0x80 });
        hdr.push(hdr_data_len as u8);
        put_ts(&mut hdr, if dts.is_some() { 0x3 } else { 0x2 }, pts);
        if let Some(d) = dts {
            put_ts(&mut hdr, 0x1, d);
        }
        let mut payload = hdr.as_slice().iter().chain(es.iter()).copied();
        let total = hdr.len() + es.len();
        let mut written = 0;
        let mut first = true;
        while written < total {
            let start = out.len();
            out.put_u8(0x47);
            out.put_u8(if first { 0x40 } else { 0x00 } | (pid >> 8) as u8);
            out.put_u8(pid as u8);
            let cc = self.cc(pid);
            let with_pcr = first && pcr;
            let af_min = if with_pcr { 8 } else { 0 };
            let room = PACKET - 4 - af_min;
            let left = total - written;
            if af_min == 0 && left >= room {
                out.put_u8(0x10 | cc);
            } else {
                // Adaptation field: PCR and/or stuffing to fill the packet exactly.
                let take = left.min(PACKET - 4 - af_min.max(1));
                let af_len = PACKET - 4 - 1 - take; // bytes after the length byte
                out.put_u8(0x30 | cc);
                out.put_u8(af_len as u8);
                if af_len > 0 {
                    out.put_u8(if with_pcr { 0x10 } else { 0x00 });
                    let mut used = 1;
                    if with_pcr {
                        let base = dts.unwrap_or(pts).saturating_sub(0);
                        out.put_u8((base >> 25) as u8);
                        out.put_u8((base >> 17) as u8);
                        out.put_u8((base >> 9) as u8);
                        out.put_u8((base >> 1) as u8);
                        out.put_u8(((base & 1) << 7) as u8 | 0x7e);
                        out.put_u8(0);
                        used += 6;
                    }
                    for _ in used..af_len {
                        out.put_u8(0xff);
                    }
                }
            }
            let take = PACKET - (out.len() - start);
            for _ in 0..take {
                out.put_u8(payload.next().unwrap_or(0xff));
            }
            written += take;
            first = false;
        }
    }
}

fn put_ts(out: &mut Vec<u8>, marker: u8, t: u64) {
    let t = t & 0x1_ffff_ffff;
    out.push((marker << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1);
    out.push((t >> 22) as u8);
    out.push((((t >> 15) as u8) << 1) | 1);
    out.push((t >> 7) as u8);
    out.push(((t as u8) << 1) | 1);
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final XOR).
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // The standard check value of CRC-32/MPEG-2 over "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn pat_bytes() {
        let mut m = TsMuxer::new(Some(VideoCodec::H264), Some(AudioCodec::Aac));
        let mut out = BytesMut::new();
        m.tables(&mut out);
        assert_eq!(out.len(), 2 * PACKET);
        // PAT header and section with CRC.
        assert_eq!(
            &out[..17],
            &[0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x01]
        );
        let crc = crc32_mpeg2(&out[5..17]);
        assert_eq!(&out[17..21], &crc.to_be_bytes());
        assert!(out[21..PACKET].iter().all(|&b| b == 0xff));
        // PMT: PCR on the video PID, H.264 then AAC.
        let pmt = &out[PACKET..];
        assert_eq!(&pmt[..4], &[0x47, 0x50, 0x01, 0x10]);
        assert_eq!(&pmt[13..15], &[0xe1, 0x00]);
        assert_eq!(&pmt[17..22], &[0x1b, 0xe1, 0x00, 0xf0, 0x00]);
        assert_eq!(&pmt[22..27], &[0x0f, 0xe1, 0x01, 0xf0, 0x00]);
    }

    fn avc_record() -> Vec<u8> {
        // One 4-byte SPS and one 2-byte PPS, 4-byte lengths.
        vec![1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1e, 1, 0, 2, 0x68, 0xee]
    }

    #[test]
    fn video_pes_annexb_with_aud_sps_pps_and_pts_dts() {
        let mut m = TsMuxer::new(Some(VideoCodec::H264), None);
        let mut out = BytesMut::new();
        assert_eq!(m.video(&[], 0, 0, false, &mut out), Err(TsError::NoVideoConfig));
        m.set_avc_config(&avc_record()).unwrap();
        // Keyframe with cts 40 ms and one IDR NAL of 3 bytes.
        let frame = [0, 0, 0, 3, 0x65, 0xaa, 0xbb];
        m.video(&frame, 1000, 40, true, &mut out).unwrap();
        assert_eq!(out.len(), PACKET);
        let p = &out[..];
        assert_eq!(&p[..4], &[0x47, 0x41, 0x00, 0x30]);
        // Adaptation field with PCR = DTS (90 kHz): 1000 ms -> 90000.
        let af_len = p[4] as usize;
        assert_eq!(p[5], 0x10);
        let pcr_base =
            (p[6] as u64) << 25 | (p[7] as u64) << 17 | (p[8] as u64) << 9 | (p[9] as u64) << 1 | (p[10] as u64) >> 7;
        assert_eq!(pcr_base, 90_000);
        let pes = &p[5 + af_len..];
        assert_eq!(&pes[..9], &[0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10]);
        let read_ts = |b: &[u8]| -> u64 {
            ((b[0] as u64 >> 1) & 0x07) << 30
                | (b[1] as u64) << 22
                | ((b[2] as u64) >> 1) << 15
                | (b[3] as u64) << 7
                | (b[4] as u64) >> 1
        };
        assert_eq!(read_ts(&pes[9..14]), 1040 * 90, "PTS = DTS + CTS");
        assert_eq!(read_ts(&pes[14..19]), 1000 * 90);
        let es = &pes[19..];
        assert_eq!(
            es,
            &[
                0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0, 0x1e, 0, 0, 0, 1, 0x68, 0xee, 0, 0, 0, 1, 0x65,
                0xaa, 0xbb
            ]
        );
    }

    #[test]
    fn hevc_pes_with_aud_and_parameter_sets_before_keyframes() {
        use crate::hevc::tests::{hex, X265_HVCC};
        let mut m = TsMuxer::new(Some(VideoCodec::Hevc), Some(AudioCodec::Aac));
        let mut out = BytesMut::new();
        m.tables(&mut out);
        assert_eq!(&out[PACKET + 17..PACKET + 22], &[0x24, 0xe1, 0x00, 0xf0, 0x00], "PMT lists HEVC");
        assert_eq!(
            m.set_avc_config(&avc_record()),
            Err(TsError::WrongVideoCodec(VideoCodec::H264, Some(VideoCodec::Hevc)))
        );
        let rec = hex(X265_HVCC);
        m.set_hevc_config(&rec).unwrap();
        let cfg = HevcConfig::parse(&rec).unwrap();
        // An IDR_W_RADL slice (type 19) behind an AUD and a repeated SPS, which are dropped.
        let mut frame = vec![0, 0, 0, 3, 0x46, 0x01, 0x50, 0, 0, 0, 3];
        frame.extend_from_slice(&cfg.parameter_sets[1][..3]);
        frame.extend_from_slice(&[0, 0, 0, 4, 0x26, 0x01, 0xaf, 0xbe]);
        out.clear();
        m.video(&frame, 0, 0, true, &mut out).unwrap();
        let ts: Vec<u8> = out
            .chunks(PACKET)
            .flat_map(|p| {
                let start = if p[3] & 0x20 != 0 { 5 + p[4] as usize } else { 4 };
                p[start..].to_vec()
            })
            .collect();
        let es = &ts[19..];
        let mut want = vec![0, 0, 0, 1, 0x46, 0x01, 0x50];
        for p in &cfg.parameter_sets {
            want.extend_from_slice(&[0, 0, 0, 1]);
            want.extend_from_slice(p);
        }
        want.extend_from_slice(&[0, 0, 0, 1, 0x26, 0x01, 0xaf, 0xbe]);
        assert_eq!(&es[..want.len()], &want[..]);
        // An inter frame: the AUD and its slice only.
        out.clear();
        m.video(&[0, 0, 0, 3, 0x02, 0x01, 0xd0], 40, 0, false, &mut out).unwrap();
        let i = out.windows(4).position(|w| w == [0, 0, 1, 0xe0]).unwrap();
        assert_eq!(&out[i + 19..i + 33], &[0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x02, 0x01, 0xd0]);
    }

    #[test]
    fn long_pes_spans_packets_with_continuity() {
        let mut m = TsMuxer::new(Some(VideoCodec::H264), None);
        let mut out = BytesMut::new();
        m.set_avc_config(&avc_record()).unwrap();
        let mut frame = vec![0, 0, 0x03, 0xe8, 0x41];
        frame.extend(std::iter::repeat_n(0x5a, 999));
        m.video(&frame, 40, 0, false, &mut out).unwrap();
        assert_eq!(out.len() % PACKET, 0);
        let n = out.len() / PACKET;
        assert!(n >= 6);
        for i in 0..n {
            let p = &out[i * PACKET..(i + 1) * PACKET];
            assert_eq!(p[0], 0x47);
            assert_eq!(p[3] & 0x0f, i as u8 & 0x0f, "continuity counter");
            assert_eq!(p[1] & 0x40 != 0, i == 0, "PUSI only on the first packet");
        }
        // All 999 payload bytes arrive, in order.
        let count = out.iter().filter(|&&b| b == 0x5a).count();
        assert_eq!(count, 999);
    }

    #[test]
    fn aac_gets_adts() {
        let mut m = TsMuxer::new(None, Some(AudioCodec::Aac));
        let mut out = BytesMut::new();
        // AAC LC 44.1 kHz stereo.
        assert_eq!(m.audio(&[0xde, 0xad], 0, &mut out), Err(TsError::NoAacConfig));
        m.set_aac_config(&[0x12, 0x10]).unwrap();
        m.audio(&[0xde, 0xad], 23, &mut out).unwrap();
        let p = &out[..PACKET];
        let i = p.windows(2).position(|w| w == [0xff, 0xf1]).expect("ADTS sync");
        // profile LC (1), freq index 4, channels 2, frame length 9.
        assert_eq!(&p[i..i + 9], &[0xff, 0xf1, 0x50, 0x80, 0x01, 0x3f, 0xfc, 0xde, 0xad]);
        // Pure audio: PCR rides on the audio PID.
        assert_eq!(p[5] & 0x10, 0x10);
    }

    #[test]
    fn mp3_is_carried_raw_with_its_stream_type() {
        let mut m = TsMuxer::new(None, Some(AudioCodec::Mp3));
        let mut out = BytesMut::new();
        m.tables(&mut out);
        assert_eq!(&out[PACKET + 17..PACKET + 22], &[0x03, 0xe1, 0x01, 0xf0, 0x00], "PMT lists MPEG-1 audio");
        out.clear();
        // An MPEG audio frame.
        m.audio(&[0xff, 0xfb, 0x90, 0x00], 26, &mut out).unwrap();
        let p = &out[..PACKET];
        let i = p.windows(4).position(|w| w == [0, 0, 1, 0xc0]).expect("audio PES");
        assert_eq!(&p[i + 4..i + 6], &[0, 12], "PES length: 3 + 5 header bytes + 4 ES bytes");
        assert_eq!(&p[i + 14..i + 18], &[0xff, 0xfb, 0x90, 0x00]);
    }

    #[test]
    fn hostile_input_is_an_error_and_writes_nothing() {
        let mut m = TsMuxer::new(Some(VideoCodec::H264), Some(AudioCodec::Aac));
        let mut out = BytesMut::new();
        assert_eq!(
            m.set_avc_config(&[1, 0, 0, 0, 0, 1]),
            Err(TsError::BadAvcConfig(BadDecoderConfig { len: 6, at: 6 }))
        );
        m.set_avc_config(&avc_record()).unwrap();
        // A NAL length of 9 with one byte behind it.
        assert_eq!(m.video(&[0, 0, 0, 9, 1], 0, 0, false, &mut out), Err(TsError::Truncated));
        assert_eq!(m.video(&[0, 0], 0, 0, false, &mut out), Err(TsError::Truncated));
        assert!(m.set_aac_config(&[0x12]).is_err());
        assert_eq!(TsMuxer::new(Some(VideoCodec::H264), None).audio(&[1], 0, &mut out), Err(TsError::NoAudioTrack));
        assert!(out.is_empty(), "errors write nothing");
    }
}
