//! RTMP message I/O over a TCP connection: reading reassembled messages (handling protocol
//! control on the way), writing commands, and writing shared media frames with vectored writes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rsrs_codec::rtmp::chunk::{self, ChunkDecoder, Message};
use rsrs_codec::rtmp::message::{self as msg, ABORT, ACKNOWLEDGEMENT, SET_CHUNK_SIZE, USER_CONTROL, WINDOW_ACK_SIZE};
use rsrs_core::hub::{ConsumerClock, Frame};
use rsrs_core::stats::Counters;
use std::io::{self, IoSlice};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Largest single message we accept (a 4K keyframe is a few MB).
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// Largest total of partially received messages per connection.
pub const MAX_PENDING: usize = 12 * 1024 * 1024;
/// Most iovecs per write (Linux IOV_MAX is 1024).
const MAX_IOV: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("peer closed the connection")]
    Closed,
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Chunk(#[from] rsrs_codec::rtmp::ChunkError),
}

/// Reading side: a chunk decoder fed from the socket.
pub struct RtmpReader {
    rd: OwnedReadHalf,
    dec: ChunkDecoder,
    counters: Arc<Counters>,
    received: u64,
    ack_window: u64,
    acked: u64,
    /// Control replies owed to the peer (acks, pings); the session sends them.
    pub owed: Vec<Message>,
}

impl RtmpReader {
    pub fn new(rd: OwnedReadHalf, leftover: &[u8], counters: Arc<Counters>) -> Self {
        let mut dec = ChunkDecoder::new(MAX_MESSAGE, MAX_PENDING);
        dec.push(leftover);
        RtmpReader { rd, dec, counters, received: 0, ack_window: 0, acked: 0, owed: Vec::new() }
    }

    /// Bytes read from the socket so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Sets the window after which we acknowledge what we received (`in_ack_size`).
    pub fn set_ack_window(&mut self, w: u32) {
        self.ack_window = w as u64;
    }

    /// Next non-control message. Cancel-safe: all state lives in `self` and the only await is
    /// a socket read, so it can sit in a `select!` beside the media writer.
    pub async fn next(&mut self) -> Result<Message, IoError> {
        loop {
            while let Some(m) = self.dec.next_message()? {
                match m.type_id {
                    SET_CHUNK_SIZE => {
                        let size = msg::control_u32(&m.payload).unwrap_or(0);
                        self.dec.set_chunk_size(size)?;
                    }
                    ABORT => {
                        if let Some(csid) = msg::control_u32(&m.payload) {
                            self.dec.abort(csid);
                        }
                    }
                    WINDOW_ACK_SIZE => {
                        if let Some(w) = msg::control_u32(&m.payload) {
                            self.ack_window = w as u64;
                        }
                    }
                    ACKNOWLEDGEMENT => {}
                    USER_CONTROL => {
                        if m.payload.len() >= 6
                            && u16::from_be_bytes([m.payload[0], m.payload[1]]) == msg::UC_PING_REQUEST
                        {
                            let t = msg::control_u32(&m.payload[2..]).unwrap_or(0);
                            self.owed.push(msg::user_control(msg::UC_PING_RESPONSE, t));
                        }
                    }
                    msg::SET_PEER_BANDWIDTH => {}
                    _ => return Ok(m),
                }
            }
            let n = self.rd.read_buf(self.dec.buffer_mut()).await?;
            if n == 0 {
                return Err(IoError::Closed);
            }
            self.counters.received(n);
            self.received += n as u64;
            if self.ack_window > 0 && self.received - self.acked >= self.ack_window {
                self.acked = self.received;
                self.owed.push(msg::acknowledgement(self.received as u32));
            }
        }
    }
}

/// Writing side.
pub struct RtmpWriter {
    wr: OwnedWriteHalf,
    pub chunk_size: usize,
    counters: Arc<Counters>,
    buf: BytesMut,
    parts: Vec<Bytes>,
}

impl RtmpWriter {
    pub fn new(wr: OwnedWriteHalf, counters: Arc<Counters>) -> Self {
        RtmpWriter {
            wr,
            chunk_size: chunk::DEFAULT_CHUNK_SIZE,
            counters,
            buf: BytesMut::with_capacity(4096),
            parts: Vec::new(),
        }
    }

    /// Sends messages (commands, control) in one write.
    pub async fn send(&mut self, msgs: &[Message]) -> io::Result<()> {
        self.buf.clear();
        for m in msgs {
            chunk::encode_message(
                &mut self.buf,
                self.chunk_size,
                m.csid,
                m.timestamp,
                m.type_id,
                m.stream_id,
                &m.payload,
            );
            if m.type_id == SET_CHUNK_SIZE {
                // Everything after a SetChunkSize uses the new size.
                if let Some(s) = msg::control_u32(&m.payload) {
                    self.chunk_size = s as usize;
                }
            }
        }
        self.wr.write_all(&self.buf).await?;
        self.counters.sent(self.buf.len());
        Ok(())
    }

    /// Writes media frames: a per-player fmt 0 header (its own timestamps) followed by the
    /// frame's shared chunk body, all in vectored writes. Returns bytes written.
    pub async fn send_frames(
        &mut self,
        frames: &[Arc<Frame>],
        clock: &mut ConsumerClock,
        stream_id: u32,
    ) -> io::Result<usize> {
        self.buf.clear();
        self.parts.clear();
        // Reserve once so header slices below never reallocate under earlier `split`s.
        self.buf.reserve(frames.len() * 16);
        for f in frames {
            let ts = clock.stamp(f);
            let body = f.rtmp_body(self.chunk_size);
            if ts >= 0x00ff_ffff && f.payload.len() > self.chunk_size {
                // Continuations must repeat the extended timestamp: encode this one by itself.
                let mut own = BytesMut::new();
                chunk::encode_message(&mut own, self.chunk_size, f.csid(), ts, f.rtmp_type(), stream_id, &f.payload);
                self.parts.push(own.freeze());
                continue;
            }
            put_fmt0_header(&mut self.buf, f.csid(), ts, f.payload.len(), f.rtmp_type(), stream_id);
            self.parts.push(self.buf.split().freeze());
            self.parts.push(body);
        }
        let n = write_all_vectored(&mut self.wr, &mut self.parts).await?;
        self.counters.sent(n);
        Ok(n)
    }
}

fn put_fmt0_header(out: &mut BytesMut, csid: u32, ts: u32, len: usize, type_id: u8, stream_id: u32) {
    out.put_u8(csid as u8 & 0x3f);
    let t = ts.min(0x00ff_ffff);
    out.put_u8((t >> 16) as u8);
    out.put_u8((t >> 8) as u8);
    out.put_u8(t as u8);
    out.put_u8((len >> 16) as u8);
    out.put_u8((len >> 8) as u8);
    out.put_u8(len as u8);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if ts >= 0x00ff_ffff {
        out.put_u32(ts);
    }
}

/// Writes every buffer in `parts` (consuming them) with as few syscalls as possible.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(w: &mut W, parts: &mut [Bytes]) -> io::Result<usize> {
    let total: usize = parts.iter().map(|b| b.len()).sum();
    let mut idx = 0;
    while idx < parts.len() {
        if parts[idx].is_empty() {
            idx += 1;
            continue;
        }
        let slices: Vec<IoSlice<'_>> = parts[idx..].iter().take(MAX_IOV).map(|b| IoSlice::new(b)).collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < parts.len() {
            let l = parts[idx].len();
            if n >= l {
                n -= l;
                idx += 1;
            } else {
                parts[idx].advance(n);
                n = 0;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn vectored_write_handles_partial_writes() {
        // A duplex pipe with a tiny buffer forces partial writes.
        let (mut a, mut b) = tokio::io::duplex(7);
        let mut parts: Vec<Bytes> = (0..50u8).map(|i| Bytes::from(vec![i; (i as usize % 5) + 1])).collect();
        let expected: Vec<u8> = parts.iter().flat_map(|p| p.to_vec()).collect();
        let reader = tokio::spawn(async move {
            let mut got = vec![];
            let mut buf = [0u8; 64];
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut b, &mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        let n = write_all_vectored(&mut a, &mut parts).await.unwrap();
        drop(a);
        assert_eq!(n, expected.len());
        assert_eq!(reader.await.unwrap(), expected);
    }

    #[test]
    fn header_matches_the_codec_encoder() {
        let payload = [1u8, 2, 3];
        let mut expect = BytesMut::new();
        chunk::encode_message(&mut expect, 128, 6, 1234, 9, 1, &payload);
        let mut got = BytesMut::new();
        put_fmt0_header(&mut got, 6, 1234, 3, 9, 1);
        got.put_slice(&payload);
        assert_eq!(got, expect);
    }
}
