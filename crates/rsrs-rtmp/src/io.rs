//! RTMP message I/O over a TCP connection: reading reassembled messages (handling protocol
//! control on the way), writing commands, and writing shared media frames with vectored writes.

use bytes::{Buf, Bytes, BytesMut};
use rsrs_codec::rtmp::chunk::{self, ChunkDecoder, Message};
use rsrs_codec::rtmp::message::{self as msg, ABORT, ACKNOWLEDGEMENT, SET_CHUNK_SIZE, USER_CONTROL, WINDOW_ACK_SIZE};
use rsrs_core::hub::ConsumerClock;
use rsrs_core::media::{MediaPacket, Track, WireForm};
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

    /// Writes media packets: a per-player fmt 0 header (its own timestamps) followed by the
    /// packet's shared chunk body, all in vectored writes. Returns bytes written.
    pub async fn send_frames(
        &mut self,
        frames: &[Arc<MediaPacket>],
        clock: &mut ConsumerClock,
        stream_id: u32,
    ) -> io::Result<usize> {
        self.buf.clear();
        self.parts.clear();
        // Reserve once so header slices below never reallocate under earlier `split`s.
        self.buf.reserve(frames.len() * 16);
        for f in frames {
            let ts = clock.stamp(f);
            let (csid, type_id) = media_ids(f.track);
            let payload = f.flv_body();
            if payload.len() <= self.chunk_size {
                chunk::put_message_header(&mut self.buf, csid, ts, payload.len(), type_id, stream_id);
                self.parts.push(self.buf.split().freeze());
                self.parts.push(payload.clone());
                continue;
            }
            if ts >= 0x00ff_ffff {
                // Continuations must repeat the extended timestamp: encode this one by itself.
                let mut own = BytesMut::new();
                chunk::encode_message(&mut own, self.chunk_size, csid, ts, type_id, stream_id, payload);
                self.parts.push(own.freeze());
                continue;
            }
            let size = self.chunk_size;
            let body = f.wire(WireForm::RtmpChunks, size as u32, |p| chunk::chunk_body(p.flv_body(), size, csid));
            chunk::put_message_header(&mut self.buf, csid, ts, payload.len(), type_id, stream_id);
            self.parts.push(self.buf.split().freeze());
            self.parts.push(body);
        }
        let n = write_all_vectored(&mut self.wr, &mut self.parts).await?;
        self.counters.sent(n);
        Ok(n)
    }
}

/// The chunk stream and message type a track's media travels on.
pub fn media_ids(track: Track) -> (u32, u8) {
    match track {
        Track::Audio => (msg::CSID_AUDIO, msg::AUDIO),
        Track::Video => (msg::CSID_VIDEO, msg::VIDEO),
        Track::Data => (msg::CSID_METADATA, msg::AMF0_DATA),
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
}
