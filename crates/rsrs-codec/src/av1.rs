//! Just enough AV1 for the API and the muxers: the codec configuration record (av1C, "AV1
//! Codec ISO Media File Format Binding" 2.3) and the sequence header OBU fields that give the
//! largest picture size.

use crate::bits::BitReader;

/// OBU types (AV1 spec 6.2.2) the muxers look at.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;

/// An AV1CodecConfigurationRecord.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Av1Config {
    pub seq_profile: u8,
    pub seq_level_idx: u8,
    pub seq_tier: u8,
    pub high_bitdepth: bool,
    pub twelve_bit: bool,
    pub monochrome: bool,
    pub chroma_subsampling_x: bool,
    pub chroma_subsampling_y: bool,
    pub chroma_sample_position: u8,
    /// The record's configOBUs (a sequence header OBU, with its size field).
    pub config_obus: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadAv1Config {
    #[error("AV1 configuration record of {0} bytes is shorter than its 4-byte header")]
    Short(usize),
    #[error("AV1 configuration record has marker/version byte {0:#04x}, not 0x81")]
    Version(u8),
}

impl Av1Config {
    pub fn parse(rec: &[u8]) -> Result<Av1Config, BadAv1Config> {
        if rec.len() < 4 {
            return Err(BadAv1Config::Short(rec.len()));
        }
        if rec[0] != 0x81 {
            return Err(BadAv1Config::Version(rec[0]));
        }
        Ok(Av1Config {
            seq_profile: rec[1] >> 5,
            seq_level_idx: rec[1] & 0x1f,
            seq_tier: rec[2] >> 7,
            high_bitdepth: rec[2] & 0x40 != 0,
            twelve_bit: rec[2] & 0x20 != 0,
            monochrome: rec[2] & 0x10 != 0,
            chroma_subsampling_x: rec[2] & 0x08 != 0,
            chroma_subsampling_y: rec[2] & 0x04 != 0,
            chroma_sample_position: rec[2] & 0x03,
            config_obus: rec[4..].to_vec(),
        })
    }

    pub fn bit_depth(&self) -> u8 {
        match (self.high_bitdepth, self.twelve_bit) {
            (false, _) => 8,
            (true, false) => 10,
            (true, true) => 12,
        }
    }

    pub fn profile_name(&self) -> &'static str {
        match self.seq_profile {
            0 => "Main",
            1 => "High",
            2 => "Professional",
            _ => "Other",
        }
    }

    /// `2.0` to `7.3` from seq_level_idx; 31 is "max".
    pub fn level_name(&self) -> String {
        if self.seq_level_idx == 31 {
            return "max".into();
        }
        format!("{}.{}", 2 + (self.seq_level_idx >> 2), self.seq_level_idx & 3)
    }

    /// The RFC 6381-style codec string for HLS `CODECS` (`av01.0.04M.08`).
    pub fn codec_string(&self) -> String {
        let tier = if self.seq_tier == 1 { 'H' } else { 'M' };
        format!("av01.{}.{:02}{tier}.{:02}", self.seq_profile, self.seq_level_idx, self.bit_depth())
    }

    /// The largest picture size, from the sequence header OBU among the configOBUs.
    pub fn max_dimensions(&self) -> Option<(u32, u32)> {
        let mut obus = self.config_obus.as_slice();
        while let Some((kind, payload, rest)) = next_obu(obus) {
            if kind == OBU_SEQUENCE_HEADER {
                return sequence_header_dimensions(payload);
            }
            obus = rest;
        }
        None
    }
}

/// Reads a LEB128 number (at most 8 bytes): the value and the bytes it took.
fn leb128(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().take(8).enumerate() {
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The first OBU of `data` (low-overhead format): its type, its payload and what follows.
/// An OBU without a size field runs to the end.
pub fn next_obu(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let header = *data.first()?;
    let kind = (header >> 3) & 0x0f;
    let mut pos = 1 + usize::from(header & 0x04 != 0);
    if header & 0x02 != 0 {
        let (size, n) = leb128(data.get(pos..)?)?;
        pos += n;
        let end = pos.checked_add(usize::try_from(size).ok()?)?;
        return Some((kind, data.get(pos..end)?, &data[end..]));
    }
    Some((kind, data.get(pos..)?, &[]))
}

/// max_frame_width/height from a sequence header OBU's payload (AV1 spec 5.5.1).
pub fn sequence_header_dimensions(p: &[u8]) -> Option<(u32, u32)> {
    let mut r = BitReader::new(p);
    r.bits(3)?; // seq_profile
    r.bits(1)?; // still_picture
    let reduced = r.flag()?;
    if reduced {
        r.bits(5)?; // seq_level_idx[0]
    } else {
        let timing_info = r.flag()?;
        let mut decoder_model_info = false;
        let mut buffer_delay_length = 0;
        if timing_info {
            r.skip(64)?; // num_units_in_display_tick, time_scale
            if r.flag()? {
                // num_ticks_per_picture_minus_1: uvlc
                let mut zeros = 0;
                while !r.flag()? {
                    zeros += 1;
                    if zeros >= 32 {
                        return None;
                    }
                }
                r.skip(zeros)?;
            }
            decoder_model_info = r.flag()?;
            if decoder_model_info {
                buffer_delay_length = r.bits(5)? as usize + 1;
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay = r.flag()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.bits(12)?; // operating_point_idc
            let level = r.bits(5)?;
            if level > 7 {
                r.bits(1)?; // seq_tier
            }
            if decoder_model_info && r.flag()? {
                r.skip(2 * buffer_delay_length + 1)?;
            }
            if initial_display_delay && r.flag()? {
                r.bits(4)?;
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = r.bits(width_bits)?.checked_add(1)?;
    let height = r.bits(height_bits)?.checked_add(1)?;
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hevc::tests::hex;

    /// SVT-AV1 (Main, level 3.0, 8 bit, 4:2:0) for 640x360, as ffmpeg 9 writes it into MP4.
    pub(crate) const SVT_AV1C: &str = "81010c000a0c0200000d6627fb3805f00080";

    #[test]
    fn svt_av1_record_and_sequence_header() {
        let c = Av1Config::parse(&hex(SVT_AV1C)).unwrap();
        assert_eq!((c.seq_profile, c.seq_level_idx, c.seq_tier, c.bit_depth()), (0, 1, 0, 8));
        assert!(c.chroma_subsampling_x && c.chroma_subsampling_y && !c.monochrome);
        assert_eq!((c.profile_name(), c.level_name().as_str()), ("Main", "2.1"));
        assert_eq!(c.max_dimensions(), Some((640, 360)));
        assert_eq!(c.codec_string(), "av01.0.01M.08");
    }

    #[test]
    fn obus_and_bad_records() {
        assert_eq!(Av1Config::parse(&[0x81, 0]), Err(BadAv1Config::Short(2)));
        assert_eq!(Av1Config::parse(&[0x80, 0, 0, 0]), Err(BadAv1Config::Version(0x80)));
        // A temporal delimiter with a zero size, then a padding OBU without a size field.
        let data = [0x12, 0x00, 0x78, 1, 2];
        let (kind, payload, rest) = next_obu(&data).unwrap();
        assert_eq!((kind, payload.len(), rest.len()), (OBU_TEMPORAL_DELIMITER, 0, 3));
        let (kind, payload, rest) = next_obu(rest).unwrap();
        assert_eq!((kind, payload, rest.len()), (15, &[1u8, 2][..], 0));
        assert_eq!(next_obu(&[0x0a, 0x05, 1]), None, "size past the end");
        assert_eq!(next_obu(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), None);
        let rec = hex(SVT_AV1C);
        for cut in 4..rec.len() {
            let _ = Av1Config::parse(&rec[..cut]).unwrap().max_dimensions();
        }
    }
}
