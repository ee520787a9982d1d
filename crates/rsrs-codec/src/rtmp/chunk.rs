//! RTMP chunk stream: reassembles messages from chunks (every fmt 0-3, extended timestamps,
//! peer chunk-size changes) and splits messages into chunks.
//!
//! The decoder is a pure state machine over a byte buffer: the caller appends what it read and
//! pulls complete messages. It enforces limits so a hostile peer cannot grow memory without bound.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// RTMP's default chunk size until a SetChunkSize says otherwise.
pub const DEFAULT_CHUNK_SIZE: usize = 128;
/// Largest chunk size we accept from a peer (the spec allows up to 2^31-1; nobody needs that).
pub const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;
/// Most chunk streams a peer may interleave at once.
pub const MAX_CHUNK_STREAMS: usize = 64;

/// One reassembled RTMP message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub csid: u32,
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChunkError {
    #[error("RTMP chunk: first chunk on chunk stream {csid} uses fmt {fmt} with no previous header")]
    NoPreviousHeader { csid: u32, fmt: u8 },
    #[error("RTMP chunk: message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge { len: usize, max: usize },
    #[error("RTMP chunk: peer set chunk size {0}, allowed range is 128..={MAX_CHUNK_SIZE}")]
    BadChunkSize(u32),
    #[error("RTMP chunk: more than {MAX_CHUNK_STREAMS} chunk streams in use")]
    TooManyChunkStreams,
    #[error("RTMP chunk: {pending} bytes of partial messages exceed the limit of {max}")]
    TooMuchPending { pending: usize, max: usize },
    #[error("RTMP chunk: chunk stream id {0} is reserved")]
    ReservedChunkStream(u32),
}

#[derive(Debug, Default)]
struct ChunkStreamState {
    timestamp: u32,
    delta: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    has_header: bool,
    extended: bool,
    partial: BytesMut,
}

/// Reassembles messages from a peer's chunk stream.
#[derive(Debug)]
pub struct ChunkDecoder {
    buf: BytesMut,
    chunk_size: usize,
    /// By chunk stream id, in the order first seen. A peer uses a handful (at most
    /// [`MAX_CHUNK_STREAMS`]): a short scan beats hashing on every chunk.
    streams: Vec<(u32, ChunkStreamState)>,
    max_message: usize,
    max_pending: usize,
    pending: usize,
}

impl ChunkDecoder {
    /// `max_message` bounds one message, `max_pending` all partially received messages together.
    pub fn new(max_message: usize, max_pending: usize) -> Self {
        ChunkDecoder {
            buf: BytesMut::with_capacity(8192),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
            max_message,
            max_pending,
            pending: 0,
        }
    }

    /// Buffer for the caller to read socket data into (avoids a copy).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Applies a peer's SetChunkSize. Called by the session when it sees message type 1.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        let s = size & 0x7fff_ffff;
        if !(DEFAULT_CHUNK_SIZE as u32..=MAX_CHUNK_SIZE as u32).contains(&s) {
            return Err(ChunkError::BadChunkSize(size));
        }
        self.chunk_size = s as usize;
        Ok(())
    }

    /// Drops a partially received message (Abort message, type 2).
    pub fn abort(&mut self, csid: u32) {
        if let Some((_, st)) = self.streams.iter_mut().find(|(id, _)| *id == csid) {
            self.pending -= st.partial.len();
            st.partial = BytesMut::new();
        }
    }

    /// Returns the next complete message, or `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            match self.next_chunk()? {
                None => return Ok(None),
                Some(Some(m)) => return Ok(Some(m)),
                Some(None) => continue,
            }
        }
    }

    /// Consumes one chunk if it is fully buffered. `Some(Some(msg))` when it completed a message.
    fn next_chunk(&mut self) -> Result<Option<Option<Message>>, ChunkError> {
        let b = &self.buf[..];
        let Some(&b0) = b.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (64 + x as u32, 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&x), Some(&y)) => (64 + x as u32 + ((y as u32) << 8), 3),
                _ => return Ok(None),
            },
            n => (n as u32, 1),
        };
        if csid < 2 {
            return Err(ChunkError::ReservedChunkStream(csid));
        }
        let header_len = [11, 7, 3, 0][fmt as usize];
        if b.len() < pos + header_len {
            return Ok(None);
        }
        let at = match self.streams.iter().position(|(id, _)| *id == csid) {
            Some(at) => at,
            None if self.streams.len() >= MAX_CHUNK_STREAMS => return Err(ChunkError::TooManyChunkStreams),
            None => {
                self.streams.push((csid, ChunkStreamState::default()));
                self.streams.len() - 1
            }
        };
        let st = &mut self.streams[at].1;
        if fmt != 0 && !st.has_header {
            // librtmp sometimes opens a stream with fmt 1; only fmt 2/3 truly need a predecessor.
            if fmt != 1 {
                return Err(ChunkError::NoPreviousHeader { csid, fmt });
            }
        }
        let first_of_message = st.partial.is_empty();
        let h = &b[pos..pos + header_len];
        let ts_field = if fmt < 3 { u24(&h[0..3]) } else { 0 };
        let mut length = st.length;
        let mut type_id = st.type_id;
        let mut stream_id = st.stream_id;
        if fmt <= 1 {
            length = u24(&h[3..6]) as usize;
            type_id = h[6];
        }
        if fmt == 0 {
            stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
        }
        pos += header_len;
        let extended = if fmt < 3 { ts_field == 0xff_ffff } else { st.extended };
        let mut ext_value = None;
        if extended {
            let Some(e) = b.get(pos..pos + 4) else {
                return Ok(None);
            };
            let v = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            if fmt == 3 && !first_of_message {
                // Continuation chunks may or may not repeat the extended timestamp (encoders
                // disagree); accept it only if it matches the message's timestamp, as SRS does.
                if v == st.timestamp {
                    pos += 4;
                }
            } else {
                ext_value = Some(v);
                pos += 4;
            }
        }
        if length > self.max_message {
            return Err(ChunkError::MessageTooLarge { len: length, max: self.max_message });
        }
        let remaining = length - st.partial.len().min(length);
        let take = remaining.min(self.chunk_size);
        if b.len() < pos + take {
            return Ok(None);
        }
        // The whole chunk is buffered: commit header state.
        if first_of_message {
            match fmt {
                0 => {
                    st.timestamp = ext_value.unwrap_or(ts_field);
                    st.delta = st.timestamp;
                }
                1 | 2 => {
                    st.delta = ext_value.unwrap_or(ts_field);
                    st.timestamp = st.timestamp.wrapping_add(st.delta);
                }
                _ => {
                    if let Some(v) = ext_value {
                        st.delta = v;
                    }
                    st.timestamp = st.timestamp.wrapping_add(st.delta);
                }
            }
        }
        st.extended = extended;
        st.length = length;
        st.type_id = type_id;
        st.stream_id = stream_id;
        st.has_header = true;
        if self.pending + take > self.max_pending {
            return Err(ChunkError::TooMuchPending { pending: self.pending + take, max: self.max_pending });
        }
        self.buf.advance(pos);
        let data = self.buf.split_to(take);
        let st = &mut self.streams[at].1;
        if st.partial.is_empty() && take == length {
            // Fast path: the whole message was in one chunk; no copy.
            return Ok(Some(Some(Message {
                csid,
                timestamp: st.timestamp,
                type_id,
                stream_id,
                payload: data.freeze(),
            })));
        }
        st.partial.extend_from_slice(&data);
        self.pending += take;
        if st.partial.len() < length {
            return Ok(Some(None));
        }
        self.pending -= st.partial.len();
        let payload = std::mem::take(&mut st.partial).freeze();
        Ok(Some(Some(Message { csid, timestamp: st.timestamp, type_id, stream_id, payload })))
    }
}

fn u24(b: &[u8]) -> u32 {
    (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    match csid {
        2..=63 => out.put_u8(fmt << 6 | csid as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8(fmt << 6 | 1);
            let v = csid - 64;
            out.put_u8(v as u8);
            out.put_u8((v >> 8) as u8);
        }
    }
}

/// Writes a fmt 0 chunk header: basic header, absolute timestamp (extended when it does not fit
/// 24 bits), length, type and message stream id.
pub fn put_message_header(out: &mut BytesMut, csid: u32, timestamp: u32, len: usize, type_id: u8, stream_id: u32) {
    put_basic_header(out, 0, csid);
    // One copy of a stack array: this runs per packet per player.
    let [_, t2, t1, t0] = timestamp.min(0xff_ffff).to_be_bytes();
    let [_, l2, l1, l0] = (len as u32).to_be_bytes();
    let [s0, s1, s2, s3] = stream_id.to_le_bytes();
    out.extend_from_slice(&[t2, t1, t0, l2, l1, l0, type_id, s0, s1, s2, s3]);
    if timestamp >= 0xff_ffff {
        out.put_u32(timestamp);
    }
}

/// A message's payload as chunks without the first chunk's header: pieces of `chunk_size` with
/// fmt 3 headers between them. Players with the same chunk size can share it byte for byte,
/// each writing its own [`put_message_header`] in front; a timestamp needing the extended field
/// must use [`encode_message`] instead (its continuations repeat it).
pub fn chunk_body(payload: &[u8], chunk_size: usize, csid: u32) -> Bytes {
    let chunk_size = chunk_size.max(1);
    let mut out = BytesMut::with_capacity(payload.len() + payload.len() / chunk_size * 3 + 1);
    for (i, piece) in payload.chunks(chunk_size).enumerate() {
        if i > 0 {
            put_basic_header(&mut out, 3, csid);
        }
        out.put_slice(piece);
    }
    out.freeze()
}

/// Serializes one message as a self-contained chunk sequence: a fmt 0 header (absolute
/// timestamp) followed by fmt 3 continuations. Self-contained output can be shared byte for byte
/// among all players with the same chunk size, whatever each has received before.
pub fn encode_message(
    out: &mut BytesMut,
    chunk_size: usize,
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
) {
    let chunk_size = chunk_size.max(1);
    let extended = timestamp >= 0xff_ffff;
    let chunks = payload.len().div_ceil(chunk_size).max(1);
    out.reserve(payload.len() + 16 + (chunks - 1) * 8);
    put_message_header(out, csid, timestamp, payload.len(), type_id, stream_id);
    for (i, piece) in payload.chunks(chunk_size).enumerate() {
        if i > 0 {
            put_basic_header(out, 3, csid);
            if extended {
                out.put_u32(timestamp);
            }
        }
        out.put_slice(piece);
    }
}

/// Convenience: a message's chunks as a new buffer.
pub fn encode_message_bytes(chunk_size: usize, msg: &Message) -> Bytes {
    let mut out = BytesMut::new();
    encode_message(&mut out, chunk_size, msg.csid, msg.timestamp, msg.type_id, msg.stream_id, &msg.payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_body_behind_its_own_header_is_the_whole_message() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let body = chunk_body(&payload, 128, 6);
        assert_eq!(body.len(), 302);
        assert_eq!((body[128], body[257]), (0xc6, 0xc6));
        let mut split = BytesMut::new();
        put_message_header(&mut split, 6, 1234, payload.len(), 9, 1);
        split.extend_from_slice(&body);
        let mut whole = BytesMut::new();
        encode_message(&mut whole, 128, 6, 1234, 9, 1, &payload);
        assert_eq!(split, whole);
    }

    fn decode_all(dec: &mut ChunkDecoder) -> Vec<Message> {
        let mut v = vec![];
        while let Some(m) = dec.next_message().unwrap() {
            v.push(m);
        }
        v
    }

    #[test]
    fn fmt0_header_bytes() {
        let mut out = BytesMut::new();
        encode_message(&mut out, 128, 3, 0x010203, 20, 1, &[0xAA; 3]);
        assert_eq!(&out[..], &[0x03, 0x01, 0x02, 0x03, 0, 0, 3, 20, 1, 0, 0, 0, 0xAA, 0xAA, 0xAA]);
    }

    #[test]
    fn split_with_fmt3_and_extended_timestamp() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut out = BytesMut::new();
        encode_message(&mut out, 128, 6, 0x0100_0000, 9, 1, &payload);
        // fmt0 header with 0xffffff marker and 4-byte extended timestamp.
        assert_eq!(&out[..16], &[0x06, 0xff, 0xff, 0xff, 0, 1, 0x2c, 9, 1, 0, 0, 0, 0x01, 0, 0, 0]);
        // Continuation: fmt 3 basic header then the repeated extended timestamp.
        assert_eq!(&out[16 + 128..16 + 128 + 5], &[0xC6, 0x01, 0, 0, 0]);
        let mut dec = ChunkDecoder::new(1 << 20, 1 << 20);
        dec.push(&out);
        let msgs = decode_all(&mut dec);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].timestamp, 0x0100_0000);
        assert_eq!(&msgs[0].payload[..], &payload[..]);
    }

    #[test]
    fn decodes_every_fmt_and_delta_rules() {
        // Built by hand: fmt0 ts=1000 len=2 type 8 sid 1; fmt1 delta 20 len 1 type 9;
        // fmt2 delta 5; fmt3 (reuses delta 5).
        let bytes: Vec<u8> = vec![
            0x04, 0x00, 0x03, 0xe8, 0, 0, 2, 8, 1, 0, 0, 0, 0x11, 0x22, // fmt0
            0x44, 0x00, 0x00, 0x14, 0, 0, 1, 9, 0x33, // fmt1
            0x84, 0x00, 0x00, 0x05, 0x44, // fmt2
            0xC4, 0x55, // fmt3
        ];
        let mut dec = ChunkDecoder::new(1 << 20, 1 << 20);
        // Feed byte by byte to exercise partial reads.
        let mut msgs = vec![];
        for b in &bytes {
            dec.push(std::slice::from_ref(b));
            msgs.extend(decode_all(&mut dec));
        }
        let summary: Vec<(u32, u8, usize, u32)> =
            msgs.iter().map(|m| (m.timestamp, m.type_id, m.payload.len(), m.stream_id)).collect();
        assert_eq!(summary, vec![(1000, 8, 2, 1), (1020, 9, 1, 1), (1025, 9, 1, 1), (1030, 9, 1, 1)]);
    }

    #[test]
    fn two_and_three_byte_chunk_stream_ids() {
        for csid in [64u32, 319, 320, 65599] {
            let mut out = BytesMut::new();
            encode_message(&mut out, 128, csid, 7, 20, 0, b"hi");
            let mut dec = ChunkDecoder::new(1 << 20, 1 << 20);
            dec.push(&out);
            let m = dec.next_message().unwrap().unwrap();
            assert_eq!((m.csid, m.timestamp, &m.payload[..]), (csid, 7, &b"hi"[..]));
        }
        let mut out = BytesMut::new();
        encode_message(&mut out, 128, 64, 0, 20, 0, b"");
        assert_eq!(&out[..2], &[0x00, 0x00]);
        let mut out = BytesMut::new();
        encode_message(&mut out, 128, 320, 0, 20, 0, b"");
        assert_eq!(&out[..3], &[0x01, 0x00, 0x01]);
    }

    #[test]
    fn interleaved_chunk_streams_and_chunk_size_change() {
        let a: Vec<u8> = vec![1; 200];
        let b: Vec<u8> = vec![2; 200];
        let mut ea = BytesMut::new();
        encode_message(&mut ea, 128, 4, 0, 8, 1, &a);
        let mut eb = BytesMut::new();
        encode_message(&mut eb, 128, 6, 0, 9, 1, &b);
        // Interleave: first chunk of a, first chunk of b, rest of a, rest of b.
        let mut s = vec![];
        s.extend_from_slice(&ea[..12 + 128]);
        s.extend_from_slice(&eb[..12 + 128]);
        s.extend_from_slice(&ea[12 + 128..]);
        s.extend_from_slice(&eb[12 + 128..]);
        let mut dec = ChunkDecoder::new(1 << 20, 1 << 20);
        dec.push(&s);
        let msgs = decode_all(&mut dec);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].payload, Bytes::from(a));
        assert_eq!(msgs[1].payload, Bytes::from(b));
        dec.set_chunk_size(4096).unwrap();
        assert_eq!(dec.chunk_size(), 4096);
        assert_eq!(dec.set_chunk_size(1), Err(ChunkError::BadChunkSize(1)));
        assert_eq!(dec.set_chunk_size(0x7fff_ffff), Err(ChunkError::BadChunkSize(0x7fff_ffff)));
    }

    #[test]
    fn limits() {
        let mut dec = ChunkDecoder::new(1000, 1 << 20);
        dec.push(&[0x04, 0, 0, 0, 0, 0x10, 0, 9, 1, 0, 0, 0]);
        assert!(matches!(dec.next_message(), Err(ChunkError::MessageTooLarge { len: 4096, .. })));
        let mut dec = ChunkDecoder::new(1 << 20, 1 << 20);
        dec.push(&[0x84, 0, 0, 0]);
        assert_eq!(dec.next_message(), Err(ChunkError::NoPreviousHeader { csid: 4, fmt: 2 }));
        let mut dec = ChunkDecoder::new(1 << 20, 1 << 20);
        dec.push(&[0x00, 0x00]);
        // csid 64 via 2-byte form is fine; csid 0/1 forms never decode to <2, but check pending limit:
        let mut dec2 = ChunkDecoder::new(1 << 20, 200);
        let mut s = vec![];
        for csid in 3..6u32 {
            let mut e = BytesMut::new();
            encode_message(&mut e, 128, csid, 0, 9, 1, &[0; 1000]);
            s.extend_from_slice(&e[..12 + 128]);
        }
        dec2.push(&s);
        assert!(matches!(dec2.next_message(), Err(ChunkError::TooMuchPending { .. })));
        // Many chunk streams.
        let mut dec3 = ChunkDecoder::new(1 << 20, 1 << 30);
        let mut s = vec![];
        for csid in 100..(100 + MAX_CHUNK_STREAMS as u32 + 1) {
            let mut e = BytesMut::new();
            encode_message(&mut e, 128, csid, 0, 9, 1, &[0; 200]);
            s.extend_from_slice(&e[..13 + 128]);
        }
        dec3.push(&s);
        assert_eq!(dec3.next_message(), Err(ChunkError::TooManyChunkStreams));
    }
}
