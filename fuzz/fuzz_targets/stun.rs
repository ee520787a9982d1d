//! Datagrams on WebRTC's shared port, as anyone may send them: routing by STUN username never
//! panics, and a ufrag it finds is a non-empty part of the datagram.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_codec::stun::{is_stun, local_ufrag};

fuzz_target!(|data: &[u8]| {
    if let Some(u) = local_ufrag(data) {
        assert!(is_stun(data));
        assert!(!u.is_empty() && !u.contains(':'));
    }
});
