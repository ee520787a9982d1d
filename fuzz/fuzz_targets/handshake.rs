//! The RTMP handshake from both sides: a server answering any C0+C1, a client checking any
//! S0+S1+S2.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rand::{rngs::StdRng, SeedableRng};
use rsrs_codec::rtmp::handshake;

fuzz_target!(|data: &[u8]| {
    let mut rng = StdRng::seed_from_u64(7);
    // Short inputs are padded out to C0+C1 so the digest paths are reached.
    let mut c0c1 = data.to_vec();
    if c0c1.len() < 1537 {
        c0c1.resize(1537, 0);
        c0c1[0] = 3;
    }
    let _ = handshake::server_response(&c0c1[..1537], 0, &mut rng);
    let _ = handshake::server_response(data, 0, &mut rng);
    let _ = handshake::client_c2(data);
});
