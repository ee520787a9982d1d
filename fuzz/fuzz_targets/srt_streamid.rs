//! SRT stream ids as a caller may send them (any bytes, up to libsrt's 512): parsed without a
//! panic, and what parses names a stream.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_codec::srt_streamid::parse;

fuzz_target!(|data: &[u8]| {
    let id = String::from_utf8_lossy(&data[..data.len().min(512)]);
    if let Ok(s) = parse(&id, "live") {
        assert!(!s.stream.is_empty());
        assert!(!s.stream.contains('?'));
    }
});
