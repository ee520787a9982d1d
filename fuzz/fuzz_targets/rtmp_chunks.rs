//! A hostile RTMP peer after the handshake: arbitrary chunk bytes, fed in arbitrary pieces, with
//! every message handed to the parsers the session uses on it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_codec::rtmp::{chunk::ChunkDecoder, message};

fuzz_target!(|data: &[u8]| {
    // First byte: how the bytes are cut into reads; the rest: the stream.
    let Some((&cut, stream)) = data.split_first() else { return };
    let piece = (cut as usize % 64) + 1;
    let mut dec = ChunkDecoder::new(1 << 20, 4 << 20);
    for part in stream.chunks(piece) {
        dec.push(part);
        loop {
            match dec.next_message() {
                Ok(Some(msg)) => {
                    match msg.type_id {
                        1 => {
                            if let Some(size) = message::control_u32(&msg.payload) {
                                if dec.set_chunk_size(size).is_err() {
                                    return;
                                }
                            }
                        }
                        2 => {
                            if let Some(csid) = message::control_u32(&msg.payload) {
                                dec.abort(csid);
                            }
                        }
                        18 | 15 => {
                            let id = message::ServerIdentity { server: "rsrs".into(), version: "0".into(), pid: 1 };
                            let _ = message::normalize_metadata(&msg.payload, &id);
                        }
                        22 => {
                            let _ = message::split_aggregate(&msg);
                        }
                        _ => {}
                    }
                    let _ = message::Command::parse(msg.type_id, &msg.payload);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
