//! Just enough HEVC for the API and the muxers: the decoder configuration record (hvcC, ISO
//! 14496-15 8.3.3), its parameter sets, and the SPS fields that give the picture size.

use crate::bits::{unescape, BitReader};

/// NAL unit types (ITU-T H.265 table 7-1) the muxers look at.
pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
pub const NAL_AUD: u8 = 35;
/// IRAP pictures (BLA, IDR, CRA and reserved IRAP types) are 16 to 23.
pub const NAL_IRAP_FIRST: u8 = 16;
pub const NAL_IRAP_LAST: u8 = 23;

/// The type of an HEVC NAL unit, from its two-byte header.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// An HEVCDecoderConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HevcConfig {
    pub profile_space: u8,
    pub tier: u8,
    pub profile_idc: u8,
    pub profile_compatibility: u32,
    /// The 48 constraint-indicator bits, in the low bits.
    pub constraint_flags: u64,
    pub level_idc: u8,
    pub chroma_format: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Bytes in each NAL unit's length prefix (1, 2 or 4).
    pub nal_length_size: usize,
    /// VPS, SPS and PPS NAL units, in that order (other arrays, such as SEI, are left out).
    pub parameter_sets: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("HEVC decoder configuration record of {len} bytes is malformed at byte {at}")]
pub struct BadHevcConfig {
    pub len: usize,
    pub at: usize,
}

impl HevcConfig {
    pub fn parse(rec: &[u8]) -> Result<HevcConfig, BadHevcConfig> {
        let bad = |at| BadHevcConfig { len: rec.len(), at };
        if rec.len() < 23 {
            return Err(bad(rec.len()));
        }
        let mut cfg = HevcConfig {
            profile_space: rec[1] >> 6,
            tier: (rec[1] >> 5) & 1,
            profile_idc: rec[1] & 0x1f,
            profile_compatibility: u32::from_be_bytes([rec[2], rec[3], rec[4], rec[5]]),
            constraint_flags: rec[6..12].iter().fold(0u64, |a, b| a << 8 | *b as u64),
            level_idc: rec[12],
            chroma_format: rec[16] & 0x03,
            bit_depth_luma: (rec[17] & 0x07) + 8,
            bit_depth_chroma: (rec[18] & 0x07) + 8,
            nal_length_size: (rec[21] & 0x03) as usize + 1,
            parameter_sets: Vec::new(),
        };
        let arrays = rec[22] as usize;
        let mut pos = 23;
        let mut sets: [Vec<Vec<u8>>; 3] = Default::default();
        for _ in 0..arrays {
            let kind = *rec.get(pos).ok_or(bad(pos))? & 0x3f;
            let count = u16::from_be_bytes([*rec.get(pos + 1).ok_or(bad(pos))?, *rec.get(pos + 2).ok_or(bad(pos))?]);
            pos += 3;
            for _ in 0..count {
                let len =
                    u16::from_be_bytes([*rec.get(pos).ok_or(bad(pos))?, *rec.get(pos + 1).ok_or(bad(pos))?]) as usize;
                let nal = rec.get(pos + 2..pos + 2 + len).ok_or(bad(pos))?;
                if (NAL_VPS..=NAL_PPS).contains(&kind) {
                    sets[(kind - NAL_VPS) as usize].push(nal.to_vec());
                }
                pos += 2 + len;
            }
        }
        cfg.parameter_sets = sets.into_iter().flatten().collect();
        Ok(cfg)
    }

    /// The first SPS, if the record has one.
    pub fn sps(&self) -> Option<&[u8]> {
        self.parameter_sets.iter().find(|n| nal_type(n) == NAL_SPS).map(|v| v.as_slice())
    }

    /// SRS's profile names.
    pub fn profile_name(&self) -> &'static str {
        match self.profile_idc {
            1 => "Main",
            2 => "Main10",
            3 => "MainStillPicture",
            4 => "RExt",
            _ => "Other",
        }
    }

    /// The level as SRS writes it: `level_idc / 30` (63 is "2.1", 120 is "4").
    pub fn level_name(&self) -> String {
        let l = self.level_idc as u32;
        if l.is_multiple_of(30) {
            format!("{}", l / 30)
        } else {
            format!("{}.{}", l / 30, (l % 30) / 3)
        }
    }

    /// The RFC 6381 codec string for HLS `CODECS` (`hvc1.1.6.L63.90`).
    pub fn codec_string(&self, fourcc: &str) -> String {
        let space = ["", "A", "B", "C"][self.profile_space as usize & 3];
        // The compatibility flags, bit-reversed, in hex without leading zeros.
        let compat = self.profile_compatibility.reverse_bits();
        let tier = if self.tier == 1 { 'H' } else { 'L' };
        let mut s = format!("{fourcc}.{space}{}.{compat:X}.{tier}{}", self.profile_idc, self.level_idc);
        // Constraint bytes, trailing zero bytes dropped.
        let bytes: Vec<u8> = (0..6).map(|i| (self.constraint_flags >> (40 - 8 * i)) as u8).collect();
        let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        for b in &bytes[..used] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

/// An hvcC record (4-byte NAL lengths) for parameter sets that came in-band (Annex B): the
/// profile, tier, level and constraint flags are the SPS's, chroma format and bit depths too.
/// `None` without a VPS, SPS and PPS, or for an SPS that does not parse.
pub fn build_record(vps: &[Vec<u8>], sps: &[Vec<u8>], pps: &[Vec<u8>]) -> Option<Vec<u8>> {
    let first = sps.first()?;
    if vps.is_empty() || pps.is_empty() || nal_type(first) != NAL_SPS || first.len() < 3 {
        return None;
    }
    let rbsp = unescape(&first[2..]);
    let mut r = BitReader::new(&rbsp);
    r.bits(4)?;
    let max_sub_layers_minus1 = r.bits(3)?;
    let temporal_id_nested = r.bits(1)?;
    // The general profile_tier_level is 12 bytes, byte-aligned from bit 8 of the RBSP.
    let ptl = rbsp.get(1..13)?;
    let (chroma, luma, chroma_depth) = sps_format(first).unwrap_or((1, 8, 8));
    let mut rec = Vec::with_capacity(64);
    rec.push(1);
    rec.extend_from_slice(&ptl[..12 - 1]); // profile space/tier/idc, compatibility, constraints
    rec.push(ptl[11]); // general_level_idc
    rec.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc 0
    rec.push(0xfc); // parallelismType 0
    rec.push(0xfc | (chroma as u8 & 0x03));
    rec.push(0xf8 | (luma.saturating_sub(8) as u8 & 0x07));
    rec.push(0xf8 | (chroma_depth.saturating_sub(8) as u8 & 0x07));
    rec.extend_from_slice(&[0, 0]); // avgFrameRate unknown
                                    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
    rec.push((((max_sub_layers_minus1 + 1) as u8 & 0x07) << 3) | ((temporal_id_nested as u8) << 2) | 0x03);
    rec.push(3);
    for (kind, sets) in [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)] {
        rec.push(kind); // array_completeness 0, as ffmpeg writes it (sets may repeat in-band)
        rec.extend_from_slice(&u16::try_from(sets.len()).ok()?.to_be_bytes());
        for s in sets {
            rec.extend_from_slice(&u16::try_from(s.len()).ok()?.to_be_bytes());
            rec.extend_from_slice(s);
        }
    }
    Some(rec)
}

/// Chroma format and luma/chroma bit depths from an HEVC SPS.
fn sps_format(nal: &[u8]) -> Option<(u32, u32, u32)> {
    let rbsp = unescape(nal.get(2..)?);
    let mut r = BitReader::new(&rbsp);
    r.bits(4)?;
    let max_sub_layers_minus1 = r.bits(3)?;
    r.bits(1)?;
    skip_sub_layers(&mut r, max_sub_layers_minus1)?;
    r.ue()?;
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.bits(1)?;
    }
    r.ue()?;
    r.ue()?;
    if r.flag()? {
        for _ in 0..4 {
            r.ue()?;
        }
    }
    Some((chroma_format_idc, r.ue()? + 8, r.ue()? + 8))
}

/// Skips the rest of profile_tier_level after `sps_temporal_id_nesting_flag`.
fn skip_sub_layers(r: &mut BitReader, max_sub_layers_minus1: u32) -> Option<()> {
    r.skip(88)?;
    r.bits(8)?;
    let mut sub_profile = [false; 8];
    let mut sub_level = [false; 8];
    for i in 0..max_sub_layers_minus1 as usize {
        sub_profile[i] = r.flag()?;
        sub_level[i] = r.flag()?;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for i in 0..max_sub_layers_minus1 as usize {
        if sub_profile[i] {
            r.skip(88)?;
        }
        if sub_level[i] {
            r.skip(8)?;
        }
    }
    Some(())
}

/// Width and height in pixels from an HEVC SPS NAL unit (with its 2-byte NAL header), after
/// the conformance window. `None` for anything malformed; never panics.
pub fn sps_dimensions(nal: &[u8]) -> Option<(u32, u32)> {
    if nal_type(nal) != NAL_SPS || nal.len() < 3 {
        return None;
    }
    let rbsp = unescape(&nal[2..]);
    let mut r = BitReader::new(&rbsp);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    r.bits(1)?; // temporal_id_nesting
    skip_sub_layers(&mut r, max_sub_layers_minus1)?;
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.bits(1)?; // separate_colour_plane_flag
    }
    let width = r.ue()?;
    let height = r.ue()?;
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.flag()? {
        left = r.ue()?;
        right = r.ue()?;
        top = r.ue()?;
        bottom = r.ue()?;
    }
    let (sub_w, sub_h) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop = |unit: u32, a: u32, b: u32| a.checked_add(b)?.checked_mul(unit);
    Some((width.checked_sub(crop(sub_w, left, right)?)?, height.checked_sub(crop(sub_h, top, bottom)?)?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// x265 (Main, level 2.1) for 640x360, as ffmpeg 9 writes it into MP4: VPS, SPS, PPS.
    pub(crate) const X265_HVCC: &str = "0101600000009000000000003ff000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003003f959809210001002a42010101600000030090000003000003003fa00502016965959a4932bc05a0200000030020000003032122000100074401c172b46240";

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn x265_record_and_sps() {
        let c = HevcConfig::parse(&hex(X265_HVCC)).unwrap();
        assert_eq!((c.profile_idc, c.tier, c.level_idc, c.nal_length_size), (1, 0, 63, 4));
        assert_eq!((c.chroma_format, c.bit_depth_luma), (1, 8));
        assert_eq!(c.parameter_sets.iter().map(|n| nal_type(n)).collect::<Vec<_>>(), vec![32, 33, 34]);
        assert_eq!((c.profile_name(), c.level_name().as_str()), ("Main", "2.1"));
        // Rebuilt from its own parameter sets, as an SRT ingest does from Annex B: x265's
        // record byte for byte, but for the frame rate and parallelism x265 fills in.
        let sets = &c.parameter_sets;
        let rec = build_record(&sets[0..1], &sets[1..2], &sets[2..3]).unwrap();
        let orig = hex(X265_HVCC);
        assert_eq!(rec[..13], orig[..13]);
        assert_eq!(rec[16..19], orig[16..19]);
        assert_eq!(rec[21] & 0x3f, orig[21] & 0x3f);
        assert_eq!(rec[22..], orig[22..]);
        assert_eq!(HevcConfig::parse(&rec).unwrap(), c);
        assert_eq!(sps_dimensions(c.sps().unwrap()), Some((640, 360)));
        // What ffmpeg and Apple write for Main, level 2.1, constraints 0x90 (progressive, frame only).
        assert_eq!(c.codec_string("hvc1"), "hvc1.1.6.L63.90");
    }

    #[test]
    fn levels_as_srs_names_them() {
        let level = |l| HevcConfig { level_idc: l, ..Default::default() }.level_name();
        assert_eq!(
            (level(63), level(90), level(93), level(120), level(153)),
            ("2.1".into(), "3".into(), "3.1".into(), "4".into(), "5.1".into())
        );
    }

    #[test]
    fn truncated_records_and_garbage_sps() {
        let rec = hex(X265_HVCC);
        for cut in [0, 5, 22, 23, 26, 30, 60, rec.len() - 1] {
            assert!(HevcConfig::parse(&rec[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(sps_dimensions(&[]), None);
        assert_eq!(sps_dimensions(&[0x42, 0x01]), None);
        assert_eq!(sps_dimensions(&[0x40, 0x01, 0xff]), None, "a VPS is not an SPS");
        let sps = HevcConfig::parse(&rec).unwrap().sps().unwrap().to_vec();
        for cut in 3..sps.len() - 4 {
            // Truncated: None or a size, never a panic.
            let _ = sps_dimensions(&sps[..cut]);
        }
    }
}
