//! MPEG-TS as SRT would deliver it (arbitrary bytes in arbitrary chunks) through the demuxer,
//! and each PES through the ADTS and Annex-B splitters, and the same bytes through the SRT
//! ingest (parameter sets to avcC/hvcC, ADTS to AudioSpecificConfig): no panic, memory bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_codec::ts_demux::{adts_frames, annexb_nal_units, TsDemuxer, MAX_PES};
use rsrs_codec::ts_ingest::TsIngest;

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
    let mut ingest = TsIngest::new();
    let mut out = Vec::new();
    for c in rest.chunks(chunk as usize + 1) {
        ingest.push(c, &mut out);
        assert!(out.len() <= rest.len() + 1, "never more packets than bytes");
    }
    ingest.flush(&mut out);
    for p in &out {
        // A 3-byte start code becomes a 4-byte length: at most a quarter more.
        assert!(p.data.len() <= MAX_PES + MAX_PES / 4);
    }
});
