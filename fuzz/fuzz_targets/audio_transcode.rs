//! What a publisher may send as AAC (any AudioSpecificConfig, any frames) or Opus, through the
//! transcoders WebRTC uses: errors, never a panic, and frame times that only go forward while
//! the input's do.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (asc, rest) = data.split_at(2);
    // 0xFF separates frames: each piece is one frame as the publisher sent it.
    let frames = || rest.split(|b| *b == 0xff).take(64);
    if let Ok(mut t) = rsrs_audio::AacToOpus::new(asc) {
        let mut last = 0;
        for (i, f) in frames().enumerate() {
            if let Ok(out) = t.push(f, 1000 + i as u32 * 21) {
                for o in out {
                    assert!(o.dts_ms >= last, "{} after {last}", o.dts_ms);
                    last = o.dts_ms;
                }
            }
        }
    }
    if let Ok(mut t) = rsrs_audio::OpusToAac::new() {
        for (i, f) in frames().enumerate() {
            let _ = t.push(f, 1000 + i as u32 * 20);
        }
    }
});
