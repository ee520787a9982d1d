//! MPEG-TS as SRT would deliver it (arbitrary bytes in arbitrary chunks) through the demuxer,
//! and each PES through the ADTS and Annex-B splitters: no panic, memory bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_codec::ts_demux::{adts_frames, annexb_nal_units, TsDemuxer, MAX_PES};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let mut d = TsDemuxer::new();
    let mut pes = Vec::new();
    for c in rest.chunks(chunk as usize + 1) {
        d.push(c, &mut pes);
    }
    d.flush(&mut pes);
    for p in &pes {
        assert!(p.data.len() <= MAX_PES);
        let _ = adts_frames(&p.data);
        let _ = annexb_nal_units(&p.data);
    }
    let _ = d.streams();
});
