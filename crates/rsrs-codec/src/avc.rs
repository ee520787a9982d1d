//! Just enough H.264 for the API and the TS muxer: the decoder configuration record (avcC)
//! and an SPS parser for the picture size.

use crate::bits::{unescape, BitReader};

/// An AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1), what FLV calls the AVC sequence
/// header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecoderConfig {
    pub profile_idc: u8,
    pub level_idc: u8,
    /// Bytes in each NAL unit's length prefix (1, 2 or 4).
    pub nal_length_size: usize,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AVC decoder configuration record of {len} bytes is malformed at byte {at}")]
pub struct BadDecoderConfig {
    pub len: usize,
    pub at: usize,
}

impl DecoderConfig {
    pub fn parse(rec: &[u8]) -> Result<DecoderConfig, BadDecoderConfig> {
        let bad = |at| BadDecoderConfig { len: rec.len(), at };
        if rec.len() < 7 {
            return Err(bad(rec.len()));
        }
        let mut cfg = DecoderConfig {
            profile_idc: rec[1],
            level_idc: rec[3],
            nal_length_size: (rec[4] & 0x03) as usize + 1,
            ..Default::default()
        };
        let mut pos = 5;
        let count = (rec[pos] & 0x1f) as usize;
        pos += 1;
        read_sets(rec, &mut pos, count, &mut cfg.sps).map_err(bad)?;
        let count = *rec.get(pos).ok_or(bad(pos))? as usize;
        pos += 1;
        read_sets(rec, &mut pos, count, &mut cfg.pps).map_err(bad)?;
        Ok(cfg)
    }
}

/// An avcC record (4-byte NAL lengths) for parameter sets that came in-band (Annex B), as SRS
/// makes the FLV sequence header of a stream that arrived over SRT. `None` if there is no SPS,
/// no PPS, or a set longer than a record can hold.
pub fn build_record(sps: &[Vec<u8>], pps: &[Vec<u8>]) -> Option<Vec<u8>> {
    let first = sps.first().filter(|s| s.len() >= 4)?;
    if pps.is_empty() || sps.len() > 31 || pps.len() > 255 {
        return None;
    }
    let mut rec = vec![1, first[1], first[2], first[3], 0xff, 0xe0 | sps.len() as u8];
    for s in sps {
        rec.extend_from_slice(&u16::try_from(s.len()).ok()?.to_be_bytes());
        rec.extend_from_slice(s);
    }
    rec.push(pps.len() as u8);
    for p in pps {
        rec.extend_from_slice(&u16::try_from(p.len()).ok()?.to_be_bytes());
        rec.extend_from_slice(p);
    }
    Some(rec)
}

/// Whether an access unit (length-prefixed NAL units) is a B picture: its first slice's
/// `slice_type` is B (1 or 6). WebRTC receivers decode in arrival order and cannot reorder.
pub fn is_b_frame(frame: &[u8], nal_length_size: usize) -> bool {
    let mut data = frame;
    while data.len() > nal_length_size {
        let len = data[..nal_length_size].iter().fold(0usize, |a, &b| a << 8 | b as usize);
        let Some(nal) = data.get(nal_length_size..nal_length_size + len) else { return false };
        data = &data[nal_length_size + len..];
        if matches!(nal.first().map(|b| b & 0x1f), Some(1) | Some(5)) {
            let rbsp = unescape(&nal[1..nal.len().min(17)]);
            let mut r = BitReader::new(&rbsp);
            return r.ue().is_some() && r.ue().is_some_and(|t| t % 5 == 1);
        }
    }
    false
}

/// An access unit of length-prefixed NAL units (`nal_length_size` bytes each) as Annex B, with
/// `parameter_sets` put first (for a keyframe, so a decoder can start there). NAL units the
/// frame carries that are also parameter sets, or delimiters, are left out. `None` if the
/// lengths run past the frame.
pub fn to_annexb(frame: &[u8], nal_length_size: usize, parameter_sets: &[&[u8]]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(frame.len() + 64);
    for p in parameter_sets {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(p);
    }
    let mut data = frame;
    while !data.is_empty() {
        let len = data.get(..nal_length_size)?.iter().fold(0usize, |a, &b| a << 8 | b as usize);
        let nal = data.get(nal_length_size..nal_length_size + len)?;
        data = &data[nal_length_size + len..];
        let kind = nal.first().map_or(0, |b| b & 0x1f);
        if nal.is_empty() || kind == 9 || (!parameter_sets.is_empty() && (kind == 7 || kind == 8)) {
            continue;
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    Some(out)
}

/// Reads `count` length-prefixed parameter sets; on failure, the offset where they broke off.
fn read_sets(rec: &[u8], pos: &mut usize, count: usize, into: &mut Vec<Vec<u8>>) -> Result<(), usize> {
    for _ in 0..count {
        let len = u16::from_be_bytes([*rec.get(*pos).ok_or(*pos)?, *rec.get(*pos + 1).ok_or(*pos)?]) as usize;
        into.push(rec.get(*pos + 2..*pos + 2 + len).ok_or(*pos)?.to_vec());
        *pos += 2 + len;
    }
    Ok(())
}

/// Width and height in pixels from an H.264 SPS NAL unit (with its 1-byte NAL header).
/// Returns `None` for anything malformed; never panics.
pub fn sps_dimensions(nal: &[u8]) -> Option<(u32, u32)> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let rbsp = unescape(&nal[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags + level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bits(1)?;
        }
        r.ue()?; // bit_depth_luma
        r.ue()?; // bit_depth_chroma
        r.bits(1)?;
        if r.bits(1)? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bits(1)? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num
    let poc_type = r.ue()?;
    if poc_type == 0 {
        r.ue()?;
    } else if poc_type == 1 {
        r.bits(1)?;
        r.se()?;
        r.se()?;
        let n = r.ue()?;
        if n > 255 {
            return None;
        }
        for _ in 0..n {
            r.se()?;
        }
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?;
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_map_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bits(1)?;
    if frame_mbs_only == 0 {
        r.bits(1)?;
    }
    r.bits(1)?; // direct_8x8_inference
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bits(1)? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (crop_x, crop_y) = match chroma_format_idc {
        0 => (1, 2 - frame_mbs_only),
        1 => (2, 2 * (2 - frame_mbs_only)),
        2 => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    // Every value comes from the stream: checked, so a hostile SPS is None, not an overflow.
    let crop = |unit: u32, a: u32, b: u32| a.checked_add(b)?.checked_mul(unit);
    let width = width_mbs.checked_mul(16)?.checked_sub(crop(crop_x, cl, cr)?)?;
    let height =
        (2 - frame_mbs_only).checked_mul(height_map_units)?.checked_mul(16)?.checked_sub(crop(crop_y, ct, cb)?)?;
    Some((width, height))
}

fn skip_scaling_list(r: &mut BitReader, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? as i64 + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x264_sps_640x360() {
        // SPS written by x264 (High profile, level 3.0) for 640x360 (cropped from 368 rows).
        let sps = [
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
            0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
        ];
        assert_eq!(sps_dimensions(&sps), Some((640, 360)));
    }

    #[test]
    fn b_slices_are_told_apart() {
        // first_mb_in_slice 0 (`1`), slice_type as ue(v): P = 0 (`1`), B = 1 (`010`), I = 2 (`011`).
        let nal = |bits: u8| [0, 0, 0, 2, 0x01, bits];
        assert!(!is_b_frame(&nal(0b1100_0000), 4), "P");
        assert!(is_b_frame(&nal(0b1010_0000), 4), "B");
        assert!(!is_b_frame(&nal(0b1011_0000), 4), "I");
        // slice_type 6 (B, all slices B): ue 6 = `00111`.
        assert!(is_b_frame(&nal(0b1001_1100), 4));
        // An SEI before the slice is skipped; a truncated unit is not a B frame.
        let with_sei = [&[0, 0, 0, 2, 0x06, 5][..], &nal(0b1010_0000)].concat();
        assert!(is_b_frame(&with_sei, 4));
        assert!(!is_b_frame(&[0, 0, 0, 9, 0x01], 4));
    }

    #[test]
    fn annexb_with_parameter_sets_first() {
        let frame = [&[0, 0, 0, 2, 0x09, 0xf0][..], &[0, 0, 0, 3, 0x65, 1, 2], &[0, 0, 0, 2, 0x67, 9]].concat();
        let out = to_annexb(&frame, 4, &[&[0x67, 1], &[0x68, 2]]).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 1, 2]);
        // Without sets, in-band ones stay (a delta frame never has them anyway).
        let out = to_annexb(&frame, 4, &[]).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x67, 9]);
        assert_eq!(to_annexb(&[0, 0, 0, 9, 0x65], 4, &[]), None);
    }

    #[test]
    fn record_from_in_band_sets() {
        let sps = vec![0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9];
        let pps = vec![0x68, 0xeb, 0xe3, 0xcb];
        let rec = build_record(std::slice::from_ref(&sps), std::slice::from_ref(&pps)).unwrap();
        assert_eq!(rec, [&[1u8, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0, 6][..], &sps, &[1, 0, 4], &pps].concat());
        let c = DecoderConfig::parse(&rec).unwrap();
        assert_eq!((c.profile_idc, c.level_idc, c.nal_length_size), (0x64, 0x1e, 4));
        assert_eq!((c.sps, c.pps), (vec![sps.clone()], vec![pps]));
        assert_eq!(build_record(&[sps], &[]), None);
        assert_eq!(build_record(&[vec![0x67, 1]], &[vec![0x68]]), None);
    }

    #[test]
    fn decoder_config_record() {
        // One 4-byte SPS and one 2-byte PPS, 4-byte NAL lengths.
        let rec = [1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1e, 1, 0, 2, 0x68, 0xee];
        let c = DecoderConfig::parse(&rec).unwrap();
        assert_eq!((c.profile_idc, c.level_idc, c.nal_length_size), (0x64, 0x1e, 4));
        assert_eq!(c.sps, vec![vec![0x67, 0x64, 0, 0x1e]]);
        assert_eq!(c.pps, vec![vec![0x68, 0xee]]);
        assert_eq!(DecoderConfig::parse(&rec[..10]), Err(BadDecoderConfig { len: 10, at: 6 }));
        assert_eq!(DecoderConfig::parse(&rec[..14]), Err(BadDecoderConfig { len: 14, at: 13 }));
        assert_eq!(DecoderConfig::parse(&[1]), Err(BadDecoderConfig { len: 1, at: 1 }));
    }

    /// An SPS (baseline, no cropping unless asked) with the given size fields, exp-Golomb coded.
    fn sps(width_mbs_minus1: u32, height_units_minus1: u32, frame_mbs_only: bool, crop: Option<[u32; 4]>) -> Vec<u8> {
        let mut bits: Vec<bool> = Vec::new();
        let mut put = |v: u64, n: u32| (0..n).rev().for_each(|i| bits.push(v >> i & 1 == 1));
        let ue = |put: &mut dyn FnMut(u64, u32), v: u32| {
            let x = v as u64 + 1;
            let len = 64 - x.leading_zeros();
            put(0, len - 1);
            put(x, len);
        };
        put(66, 8); // profile_idc: baseline
        put(0, 16); // constraints, level
        ue(&mut put, 0); // sps id
        ue(&mut put, 0); // log2_max_frame_num
        ue(&mut put, 2); // poc type 2
        ue(&mut put, 0); // max_num_ref_frames
        put(0, 1); // gaps
        ue(&mut put, width_mbs_minus1);
        ue(&mut put, height_units_minus1);
        put(frame_mbs_only as u64, 1);
        if !frame_mbs_only {
            put(0, 1); // mb_adaptive_frame_field
        }
        put(1, 1); // direct_8x8_inference
        put(crop.is_some() as u64, 1);
        for c in crop.unwrap_or_default().into_iter().filter(|_| crop.is_some()) {
            ue(&mut put, c);
        }
        put(1, 1); // stop bit
        let mut out = vec![0x67];
        out.extend(bits.chunks(8).map(|c| c.iter().enumerate().fold(0u8, |a, (i, b)| a | (*b as u8) << (7 - i))));
        out
    }

    #[test]
    fn huge_sizes_and_crops_are_none_not_an_overflow() {
        assert_eq!(sps_dimensions(&sps(39, 22, true, None)), Some((640, 368)));
        assert_eq!(sps_dimensions(&sps(39, 22, true, Some([0, 0, 0, 4]))), Some((640, 360)));
        // Found by the flv_to_ts fuzzer: 2 × 2^31 map units × 16 rows overflowed.
        assert_eq!(sps_dimensions(&sps(39, (1 << 31) - 2, false, None)), None);
        assert_eq!(sps_dimensions(&sps(39, 22, true, Some([u32::MAX - 1, 5, 0, 0]))), None);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(sps_dimensions(&[]), None);
        assert_eq!(sps_dimensions(&[0x67]), None);
        assert_eq!(sps_dimensions(&[0x68, 1, 2, 3]), None);
        assert_eq!(sps_dimensions(&[0x67, 0x64, 0, 0, 0, 0, 0, 0]), None);
    }
}
