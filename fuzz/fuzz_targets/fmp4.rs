//! Codec configurations (hvcC, av1C, vpcC, OpusHead, avcC, AudioSpecificConfig) from arbitrary
//! bytes, and what the fMP4 writer makes of them and of arbitrary samples: every box it writes
//! must be whole (sizes that add up), and a fragment's data offsets must point into its mdat.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_codec::fmp4::{self, OpusHead, Run, Sample, SampleEntry, Track};
use rsrs_codec::{av1, hevc, vp9};

/// Walks boxes at one level: true if their sizes tile `b` exactly.
fn whole(mut b: &[u8]) -> bool {
    while !b.is_empty() {
        if b.len() < 8 {
            return false;
        }
        let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if size < 8 || size > b.len() {
            return false;
        }
        b = &b[size..];
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let (head, rest) = data.split_at(data.len().min(64));
    let mut tracks = Vec::new();
    if let Ok(c) = hevc::HevcConfig::parse(head) {
        let _ = c.codec_string("hvc1");
        let _ = c.level_name();
        let _ = c.sps().and_then(hevc::sps_dimensions);
        tracks.push(Track { id: 1, entry: SampleEntry::Hevc { hvcc: head.to_vec(), width: 1, height: 1 } });
    }
    if let Ok(c) = av1::Av1Config::parse(head) {
        let _ = (c.codec_string(), c.max_dimensions());
        tracks.push(Track { id: 2, entry: SampleEntry::Av1 { av1c: head.to_vec(), width: 1, height: 1 } });
    }
    if let Ok(c) = vp9::Vp9Config::parse(head) {
        let _ = c.codec_string();
    }
    let _ = vp9::keyframe_dimensions(head);
    if let Ok(h) = OpusHead::parse(head) {
        tracks.push(Track { id: 3, entry: SampleEntry::Opus { head: h } });
    }
    if let Some(e) = SampleEntry::aac(head) {
        tracks.push(Track { id: 4, entry: e });
    }
    let init = fmp4::init_segment(&tracks);
    assert!(whole(&init), "init segment boxes are whole");
    // Samples: each byte of `rest` a sample size, durations and offsets from the same bytes.
    let samples: Vec<Sample> = rest
        .iter()
        .map(|b| Sample { duration: *b as u32 * 7, size: (*b % 16) as u32, sync: b & 1 == 1, cts: *b as i32 - 128 })
        .collect();
    let total: usize = samples.iter().map(|s| s.size as usize).sum();
    let bytes = vec![0xab; total];
    let f = fmp4::fragment(1, &[Run { track_id: 1, base_decode_time: head.len() as u64, samples: &samples, data: &bytes }])
        .expect("sizes add up");
    assert!(whole(&f), "fragment boxes are whole");
    assert!(f.ends_with(&bytes));
    let mut obus = rest;
    while let Some((_, _, r)) = av1::next_obu(obus) {
        if r.len() >= obus.len() {
            break;
        }
        obus = r;
    }
});
