//! What the API reports about a stream's tracks, read from their FLV configuration bodies.

use super::tag;
use crate::aac::AudioSpecificConfig;
use crate::av1::Av1Config;
use crate::avc::{self, DecoderConfig};
use crate::hevc::{self, HevcConfig};
use crate::media::{Codec, Content};
use crate::vp9::Vp9Config;

/// What the API reports about a video track.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VideoInfo {
    pub codec: &'static str,
    pub profile: &'static str,
    pub level: String,
    pub width: u32,
    pub height: u32,
}

/// What the API reports about an audio track.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AudioInfo {
    pub codec: &'static str,
    pub sample_rate: u32,
    pub channels: u8,
    pub profile: &'static str,
}

/// Codec, and for H.264, HEVC, AV1 and VP9 profile, level and picture size, from a video tag
/// body (the configuration, for anything beyond the codec). VP9's size is not in its
/// configuration: see [`crate::vp9::keyframe_dimensions`].
pub fn video_info(body: &[u8]) -> Option<VideoInfo> {
    let hdr = tag::parse_video(body).ok()?;
    let mut info = VideoInfo { codec: hdr.codec.name(), ..Default::default() };
    if hdr.content != Content::Config {
        return Some(info);
    }
    let rec = &body[hdr.data_offset..];
    let size = match hdr.codec {
        Codec::H264 => {
            let Ok(cfg) = DecoderConfig::parse(rec) else { return Some(info) };
            info.profile = avc_profile_name(cfg.profile_idc);
            info.level = format!("{}", cfg.level_idc as f32 / 10.0);
            cfg.sps.first().and_then(|sps| avc::sps_dimensions(sps))
        }
        Codec::H265 => {
            let Ok(cfg) = HevcConfig::parse(rec) else { return Some(info) };
            info.profile = cfg.profile_name();
            info.level = cfg.level_name();
            cfg.sps().and_then(hevc::sps_dimensions)
        }
        Codec::Av1 => {
            let Ok(cfg) = Av1Config::parse(rec) else { return Some(info) };
            info.profile = cfg.profile_name();
            info.level = cfg.level_name();
            cfg.max_dimensions()
        }
        Codec::Vp9 => {
            let Ok(cfg) = Vp9Config::parse(rec) else { return Some(info) };
            info.profile = cfg.profile_name();
            info.level = cfg.level_name();
            None
        }
        _ => None,
    };
    if let Some((w, h)) = size {
        info.width = w;
        info.height = h;
    }
    Some(info)
}

fn avc_profile_name(idc: u8) -> &'static str {
    match idc {
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 => "High",
        110 => "High10",
        122 => "High422",
        244 => "High444",
        _ => "Other",
    }
}

/// Codec, rate and channels from an audio tag body: the legacy header's flags, refined by the
/// AAC configuration when the body is one.
pub fn audio_info(body: &[u8]) -> Option<AudioInfo> {
    let hdr = tag::parse_audio(body).ok()?;
    let b0 = body[0];
    let legacy = b0 >> 4 != 9;
    let mut info = AudioInfo {
        codec: hdr.codec.name(),
        sample_rate: if legacy { [5512, 11025, 22050, 44100][((b0 >> 2) & 3) as usize] } else { 0 },
        channels: if legacy { (b0 & 1) + 1 } else { 0 },
        profile: "",
    };
    if hdr.codec == Codec::Opus && hdr.content == Content::Config {
        if let Ok(head) = crate::fmp4::OpusHead::parse(&body[hdr.data_offset..]) {
            // Opus always decodes at 48 kHz; the head's input rate is only informative.
            info.sample_rate = 48_000;
            info.channels = head.channels;
        }
    }
    if hdr.codec == Codec::Aac && hdr.content == Content::Config {
        if let Ok(asc) = AudioSpecificConfig::parse(&body[hdr.data_offset..]) {
            if let Some(rate) = asc.sample_rate() {
                info.sample_rate = rate;
            }
            if asc.channels > 0 {
                info.channels = asc.channels;
            }
            info.profile = asc.profile_name();
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_config_info() {
        // AAC LC, 44100 Hz (index 4), 2 channels: 0x12 0x10.
        let i = audio_info(&[0xAF, 0, 0x12, 0x10]).unwrap();
        assert_eq!((i.codec, i.sample_rate, i.channels, i.profile), ("AAC", 44100, 2, "LC"));
        let i = audio_info(&[0x2e, 0xff]).unwrap();
        assert_eq!((i.codec, i.sample_rate, i.channels), ("MP3", 44100, 1));
        assert_eq!(audio_info(&[]), None);
        let mut opus = vec![0x90];
        opus.extend_from_slice(b"OpusOpusHead");
        opus.extend_from_slice(&[1, 2, 0x38, 0x01, 0x44, 0xac, 0, 0, 0, 0, 0]);
        let i = audio_info(&opus).unwrap();
        assert_eq!((i.codec, i.sample_rate, i.channels), ("Opus", 48_000, 2));
    }

    #[test]
    fn avc_config_info() {
        let body = [
            0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 26, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0,
            0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
            1, 0, 2, 0x68, 0xee,
        ];
        let i = video_info(&body).unwrap();
        assert_eq!((i.codec, i.profile, i.level.as_str(), i.width, i.height), ("H264", "High", "3", 640, 360));
        let mut hevc = vec![0x90];
        hevc.extend_from_slice(b"hvc1");
        assert_eq!(video_info(&hevc).unwrap().codec, "HEVC");
    }

    /// An Enhanced RTMP SequenceStart for `fourcc` carrying `record`.
    fn sequence_start(fourcc: &[u8; 4], record: &[u8]) -> Vec<u8> {
        let mut body = vec![0x90];
        body.extend_from_slice(fourcc);
        body.extend_from_slice(record);
        body
    }

    #[test]
    fn hevc_av1_and_vp9_config_info() {
        use crate::hevc::tests::{hex, X265_HVCC};
        let i = video_info(&sequence_start(b"hvc1", &hex(X265_HVCC))).unwrap();
        assert_eq!((i.codec, i.profile, i.level.as_str(), i.width, i.height), ("HEVC", "Main", "2.1", 640, 360));
        // The legacy-header HEVC (codec id 12) some CDNs write carries the same record.
        let mut legacy = vec![0x1c, 0, 0, 0, 0];
        legacy.extend_from_slice(&hex(X265_HVCC));
        assert_eq!(video_info(&legacy).unwrap(), i);
        let i = video_info(&sequence_start(b"av01", &hex("81010c000a0c0200000d6627fb3805f00080"))).unwrap();
        assert_eq!((i.codec, i.profile, i.level.as_str(), i.width, i.height), ("AV1", "Main", "2.1", 640, 360));
        let i = video_info(&sequence_start(b"vp09", &hex("010000000015820202020000"))).unwrap();
        assert_eq!((i.codec, i.profile, i.level.as_str(), i.width), ("VP9", "Profile 0", "2.1", 0));
        // A broken record still names the codec.
        let i = video_info(&sequence_start(b"hvc1", &[1, 2, 3])).unwrap();
        assert_eq!((i.codec, i.width), ("HEVC", 0));
    }
}
