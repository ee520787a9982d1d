//! Just enough VP9 for the API: the codec configuration record (vpcC, "VP Codec ISO Media File
//! Format Binding") and the picture size from a keyframe's uncompressed header (VP9 has no
//! size in its configuration).

use crate::bits::BitReader;

/// The record of a `vpcC` as it came (with or without the box's version and flags in front),
/// without them: what an MP4 `vpcC` full box carries after its own version 1.
pub fn record_body(rec: &[u8]) -> &[u8] {
    match rec {
        [1, 0, 0, 0, rest @ ..] if rest.len() >= 8 => rest,
        _ => rec,
    }
}

/// A VPCodecConfigurationRecord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9Config {
    pub profile: u8,
    pub level: u8,
    pub bit_depth: u8,
    pub chroma_subsampling: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("VP9 configuration record of {0} bytes is too short")]
pub struct BadVp9Config(pub usize);

impl Vp9Config {
    /// Reads the record, with or without the `vpcC` box's version and flags in front (MP4
    /// writes them; FLV writers differ).
    pub fn parse(rec: &[u8]) -> Result<Vp9Config, BadVp9Config> {
        let body = record_body(rec);
        if body.len() < 8 {
            return Err(BadVp9Config(rec.len()));
        }
        Ok(Vp9Config {
            profile: body[0],
            level: body[1],
            bit_depth: body[2] >> 4,
            chroma_subsampling: (body[2] >> 1) & 7,
        })
    }

    /// `Profile 0` to `Profile 3`, as browsers and ffprobe name them.
    pub fn profile_name(&self) -> &'static str {
        ["Profile 0", "Profile 1", "Profile 2", "Profile 3"].get(self.profile as usize).copied().unwrap_or("Other")
    }

    /// `2.1` from 21.
    pub fn level_name(&self) -> String {
        format!("{}.{}", self.level / 10, self.level % 10)
    }

    /// The codec string for HLS `CODECS` (`vp09.00.21.08`).
    pub fn codec_string(&self) -> String {
        format!("vp09.{:02}.{:02}.{:02}", self.profile, self.level, self.bit_depth)
    }
}

/// The size of a VP9 keyframe, from its uncompressed header (VP9 spec 6.2); `None` for
/// inter frames and anything malformed.
pub fn keyframe_dimensions(frame: &[u8]) -> Option<(u32, u32)> {
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 2 {
        return None; // frame_marker
    }
    let profile = r.bits(1)? | r.bits(1)? << 1;
    if profile == 3 {
        r.bits(1)?; // reserved_zero
    }
    if r.flag()? {
        return None; // show_existing_frame
    }
    if r.flag()? {
        return None; // frame_type: not a keyframe
    }
    r.bits(2)?; // show_frame, error_resilient_mode
    if r.bits(24)? != 0x49_83_42 {
        return None; // frame_sync_code
    }
    // color_config
    if profile >= 2 {
        r.bits(1)?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.bits(1)?; // color_range
        if profile == 1 || profile == 3 {
            r.bits(3)?; // subsampling_x, subsampling_y, reserved
        }
    } else if profile == 1 || profile == 3 {
        r.bits(1)?;
    }
    let width = r.bits(16)? + 1;
    let height = r.bits(16)? + 1;
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hevc::tests::hex;

    #[test]
    fn libvpx_record_and_keyframe() {
        // ffmpeg 9's vpcC (with version and flags) and the start of libvpx's first keyframe, 640x360.
        let c = Vp9Config::parse(&hex("010000000015820202020000")).unwrap();
        assert_eq!(c, Vp9Config { profile: 0, level: 21, bit_depth: 8, chroma_subsampling: 1 });
        assert_eq!(Vp9Config::parse(&hex("0015820202020000")).unwrap(), c, "without the box header");
        assert_eq!(
            (c.profile_name(), c.level_name().as_str(), c.codec_string().as_str()),
            ("Profile 0", "2.1", "vp09.00.21.08")
        );
        assert_eq!(keyframe_dimensions(&hex("824983420027f016760a38241c184a1005587fd1fa3e8fe7")), Some((640, 360)));
        assert_eq!(keyframe_dimensions(&hex("86")), None, "an inter frame");
        assert_eq!(keyframe_dimensions(&hex("82498342")), None, "truncated");
        assert_eq!(Vp9Config::parse(&[0, 1]), Err(BadVp9Config(2)));
    }
}
