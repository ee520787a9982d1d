//! AMF0 from a peer: decoding never panics, and what decodes re-encodes to bytes that decode to
//! the same values.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_codec::amf0;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf0::decode_all(data) {
        let again = amf0::decode_all(&amf0::encode_all(&values)).expect("our own encoding decodes");
        // NaN != NaN, so compare the encodings rather than the values.
        assert_eq!(amf0::encode_all(&again), amf0::encode_all(&values));
    }
});
