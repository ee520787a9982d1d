//! Any config text: an error with a location or a config, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::load_str(text, "fuzz.conf", &Default::default());
    }
});
