//! RTMP message I/O over a TCP connection: reading reassembled messages (handling protocol
//! control on the way), writing commands, and writing shared media frames with vectored writes.

use bytes::{Bytes, BytesMut};
use rsrs_codec::rtmp::chunk::{self, ChunkDecoder, Message};
use rsrs_codec::rtmp::message::{self as msg, ABORT, ACKNOWLEDGEMENT, SET_CHUNK_SIZE, USER_CONTROL, WINDOW_ACK_SIZE};
use rsrs_core::hub::ConsumerClock;
use rsrs_core::media::{MediaPacket, Track, WireForm};
use rsrs_core::shared_framing::SharedFraming;
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
    /// Merged reads (SRS's `publish.mr`): after a small read, wait this long before the next.
    merged_read: Option<std::time::Duration>,
    /// When the wait after the last small read ends.
    resume_at: Option<tokio::time::Instant>,
}

/// A read under this is small: merged reads wait before the next (SRS's `SRS_MR_SMALL_BYTES`).
const MERGED_READ_SMALL: usize = 4096;
/// Free room a merged read reads into, well above a small read.
const MERGED_READ_ROOM: usize = 16 * 1024;

impl RtmpReader {
    pub fn new(rd: OwnedReadHalf, leftover: &[u8], counters: Arc<Counters>) -> Self {
        let mut dec = ChunkDecoder::new(MAX_MESSAGE, MAX_PENDING);
        dec.push(leftover);
        RtmpReader {
            rd,
            dec,
            counters,
            received: 0,
            ack_window: 0,
            acked: 0,
            owed: Vec::new(),
            merged_read: None,
            resume_at: None,
        }
    }

    /// Merged reads, as SRS's `publish { mr on; mr_latency MS; }`: after a read of under 4 KiB,
    /// the next waits `latency`, so the socket gathers a batch of messages for one wake-up and
    /// one read instead of one each. Adds up to `latency` of delay; `None` reads at once.
    pub fn merge_reads(&mut self, latency: Option<std::time::Duration>) {
        self.merged_read = latency.filter(|l| !l.is_zero());
        self.resume_at = None;
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
            if let Some(m) = self.next_buffered()? {
                return Ok(m);
            }
            if let Some(at) = self.resume_at {
                // A deadline, not a fresh sleep, so a cancelled wait is not started over.
                tokio::time::sleep_until(at).await;
                self.resume_at = None;
            }
            if self.merged_read.is_some() {
                // Room for what gathered: a read cut short by a full buffer is not a small one.
                self.dec.buffer_mut().reserve(MERGED_READ_ROOM);
            }
            let n = self.rd.read_buf(self.dec.buffer_mut()).await?;
            if n == 0 {
                return Err(IoError::Closed);
            }
            if let Some(latency) = self.merged_read.filter(|_| n < MERGED_READ_SMALL) {
                self.resume_at = Some(tokio::time::Instant::now() + latency);
            }
            self.account(n);
        }
    }

    /// The next non-control message among the bytes already read, without reading; control
    /// messages on the way are applied (and acks and pings owed).
    pub fn next_buffered(&mut self) -> Result<Option<Message>, IoError> {
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
                    if m.payload.len() >= 6 && u16::from_be_bytes([m.payload[0], m.payload[1]]) == msg::UC_PING_REQUEST
                    {
                        let t = msg::control_u32(&m.payload[2..]).unwrap_or(0);
                        self.owed.push(msg::user_control(msg::UC_PING_RESPONSE, t));
                    }
                }
                msg::SET_PEER_BANDWIDTH => {}
                _ => return Ok(Some(m)),
            }
        }
        Ok(None)
    }

    /// Reads what the socket holds now, without waiting (a paced publisher's read, see
    /// `rsrs_core::paced_reads`), into room for `expect` bytes; reads again while a read fills
    /// its room, up to `most` in all. Returns the bytes read; [`IoError::Closed`] at the end of
    /// the stream.
    ///
    /// After a read that emptied the socket it looks once more: that read acknowledged what it
    /// took, and a publisher with Nagle's algorithm on (ffmpeg) sends what it held back for that
    /// acknowledgement at once. From the same host it is here by the second look, and goes out
    /// with this close instead of the next.
    pub fn read_available(&mut self, expect: usize, most: usize) -> Result<usize, IoError> {
        let mut total = 0;
        let mut room = expect.max(MIN_AVAILABLE_ROOM);
        let mut looked_again = false;
        while total < most {
            let buf = self.dec.buffer_mut();
            if buf.capacity() - buf.len() < room {
                // A new piece in power-of-two sizes: the allocator then reuses freed pieces
                // whole. Varied sizes (one per close, each the last read and a quarter) made
                // malloc's free-list search a seventh of a paced server's CPU.
                buf.reserve((buf.len() + room).next_power_of_two() - buf.len());
            }
            let free = buf.capacity() - buf.len();
            match recv_now(&self.rd, buf) {
                // What came before the end is taken first; the next read sees the end again.
                Ok(0) if total > 0 => break,
                Ok(0) => return Err(IoError::Closed),
                Ok(n) => {
                    total += n;
                    self.account(n);
                    if n < free {
                        if looked_again {
                            break;
                        }
                        looked_again = true;
                        // Into what room is left: what a Nagle sender held back is small.
                        room = MIN_AVAILABLE_ROOM;
                        continue;
                    }
                    room = room.saturating_mul(2);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(total)
    }

    /// Sets the socket's receive low-water mark (`SO_RCVLOWAT`). A paced publisher's socket, read
    /// only at window closes, sets it high: the kernel then does not wake the reactor for each
    /// message, and grows the receive buffer for what gathers. Acknowledgements still wait for
    /// the kernel's delayed-ACK timer or the read, so a publisher with Nagle's algorithm on holds
    /// its next small send until then; [`read_available`](Self::read_available) looks again for
    /// what that read released. `1` restores the default.
    pub fn set_read_low_water(&self, bytes: usize) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.rd.as_ref().as_raw_fd();
        let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fd` is this reader's open socket and `v` lives across the call.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn account(&mut self, n: usize) {
        self.counters.received(n);
        self.received += n as u64;
        if self.ack_window > 0 && self.received - self.acked >= self.ack_window {
            self.acked = self.received;
            self.owed.push(msg::acknowledgement(self.received as u32));
        }
    }
}

/// One `recv` that does not wait, into `buf`'s free room. Not through tokio's readiness: a paced
/// socket with a raised low-water mark reports no readiness until that much is unread, and the
/// paced read must take what is there at the close.
fn recv_now(rd: &OwnedReadHalf, buf: &mut BytesMut) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let fd = rd.as_ref().as_raw_fd();
    let spare = buf.spare_capacity_mut();
    // SAFETY: `fd` is this reader's open socket; the kernel writes at most `spare.len()` bytes
    // into `spare`, which is `buf`'s allocated, unused room.
    let r = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), spare.len(), libc::MSG_DONTWAIT) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = r as usize;
    // SAFETY: the kernel initialised the first `n` bytes of the room.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Least room a read without waiting reads into.
const MIN_AVAILABLE_ROOM: usize = 4096;

/// Writing side.
pub struct RtmpWriter {
    wr: OwnedWriteHalf,
    pub chunk_size: usize,
    counters: Arc<Counters>,
    buf: BytesMut,
    gather: Gather,
}

impl RtmpWriter {
    pub fn new(wr: OwnedWriteHalf, counters: Arc<Counters>) -> Self {
        RtmpWriter {
            wr,
            chunk_size: chunk::DEFAULT_CHUNK_SIZE,
            counters,
            buf: BytesMut::with_capacity(4096),
            gather: Gather::default(),
        }
    }

    /// Sets `TCP_NODELAY` on the connection (clients set it at connect; a load generator may
    /// turn it off to send as ffmpeg does).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.wr.as_ref().set_nodelay(on)
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
    /// packet's shared chunk body, all in vectored writes; or, when another player of the merge
    /// window on the same timeline was sent the same packets, the chunks `shared` framed once for
    /// them all. Returns bytes written.
    pub async fn send_frames(
        &mut self,
        frames: &[Arc<MediaPacket>],
        clock: &mut ConsumerClock,
        shared: &SharedFraming,
        stream_id: u32,
    ) -> io::Result<usize> {
        let g = &mut self.gather;
        g.clear();
        let size = self.chunk_size;
        // The layout: RTMP chunks, for this chunk size and message stream.
        let form = 1 << 63 | (size as u64) << 32 | u64::from(stream_id);
        match shared.framed(form, frames, clock, |frames, clock| chunks(frames, clock, size, stream_id)) {
            Some(chunks) => g.held_body(chunks),
            None => own_chunks(g, frames, clock, size, stream_id),
        }
        let n = g.write(&mut self.wr, frames).await?;
        // A shared framing is let go at once, not kept alive until this player's next write.
        g.clear();
        self.counters.sent(n);
        Ok(n)
    }
}

/// `frames` as RTMP messages framed for one player: its own message headers (with its
/// timestamps) before the packets' shared bodies, or shared chunked bodies.
fn own_chunks(g: &mut Gather, frames: &[Arc<MediaPacket>], clock: &mut ConsumerClock, size: usize, stream_id: u32) {
    for (i, f) in frames.iter().enumerate() {
        let ts = clock.stamp(f);
        let (csid, type_id) = media_ids(f.track);
        let payload = f.flv_body();
        if payload.len() <= size {
            chunk::put_message_header(&mut g.framing, csid, ts, payload.len(), type_id, stream_id);
            g.frame_body(i);
            continue;
        }
        if ts >= 0x00ff_ffff {
            // Continuations must repeat the extended timestamp: encode this one by itself.
            let mut own = BytesMut::new();
            chunk::encode_message(&mut own, size, csid, ts, type_id, stream_id, payload);
            g.held_body(own.freeze());
            continue;
        }
        let body = f.wire(WireForm::RtmpChunks, size as u32, |p| chunk::chunk_body(p.flv_body(), size, csid));
        chunk::put_message_header(&mut g.framing, csid, ts, payload.len(), type_id, stream_id);
        g.held_body(body);
    }
}

/// What [`own_chunks`] writes, in one buffer (for [`SharedFraming`]).
fn chunks(frames: &[Arc<MediaPacket>], clock: &mut ConsumerClock, size: usize, stream_id: u32) -> Bytes {
    let mut out = BytesMut::with_capacity(frames.iter().map(|f| f.flv_body().len() * 129 / 128 + 24).sum());
    for f in frames {
        let (csid, type_id) = media_ids(f.track);
        chunk::encode_message(&mut out, size, csid, clock.stamp(f), type_id, stream_id, f.flv_body());
    }
    out.freeze()
}

/// One gathered write of media to one client: the client's own framing (headers with its
/// timestamps) in one buffer, between the packets' shared bodies, which stay where they are.
/// Nothing is copied or reference-counted per piece, and the buffers are kept for the next write.
#[derive(Default)]
pub struct Gather {
    /// The client's framing bytes, in order.
    pub framing: BytesMut,
    /// Each body: where in `framing` it goes, and where it is.
    plan: Vec<(usize, BodyAt)>,
    /// Bodies made for this write alone (or shared forms handed out by value).
    held: Vec<Bytes>,
}

#[derive(Clone, Copy)]
enum BodyAt {
    /// The FLV body of the write's packet at this index.
    Frame(usize),
    /// `held[i]`.
    Held(usize),
}

impl Gather {
    pub fn clear(&mut self) {
        self.framing.clear();
        self.plan.clear();
        self.held.clear();
    }

    /// The FLV body of packet `i` of the write goes here, after the framing so far.
    pub fn frame_body(&mut self, i: usize) {
        self.plan.push((self.framing.len(), BodyAt::Frame(i)));
    }

    /// `body` goes here, after the framing so far.
    pub fn held_body(&mut self, body: Bytes) {
        self.plan.push((self.framing.len(), BodyAt::Held(self.held.len())));
        self.held.push(body);
    }

    /// Writes it all to `w` (`frames` are the packets [`frame_body`](Self::frame_body) named),
    /// in as few syscalls as the socket allows. Returns the bytes written.
    pub async fn write<W: AsyncWrite + Unpin>(&self, w: &mut W, frames: &[Arc<MediaPacket>]) -> io::Result<usize> {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(self.plan.len() * 2 + 1);
        let mut at = 0;
        for &(end, body) in &self.plan {
            if end > at {
                slices.push(IoSlice::new(&self.framing[at..end]));
                at = end;
            }
            let body: &[u8] = match body {
                BodyAt::Frame(i) => frames.get(i).map(|f| &f.flv_body()[..]).unwrap_or_default(),
                BodyAt::Held(i) => &self.held[i],
            };
            if !body.is_empty() {
                slices.push(IoSlice::new(body));
            }
        }
        if at < self.framing.len() {
            slices.push(IoSlice::new(&self.framing[at..]));
        }
        write_all_slices(w, &mut slices).await
    }
}

/// Writes every slice, with as few syscalls as possible (at most [`MAX_IOV`] slices each).
pub async fn write_all_slices<W: AsyncWrite + Unpin>(w: &mut W, slices: &mut [IoSlice<'_>]) -> io::Result<usize> {
    let total: usize = slices.iter().map(|s| s.len()).sum();
    let mut rest = slices;
    while !rest.is_empty() {
        // One slice (a framing shared by players on one timeline) is a plain `send`: a socket's
        // `writev` goes through the file layer (`vfs_writev`, the position lock) first.
        let n = match rest {
            [one] => w.write(one).await?,
            _ => w.write_vectored(&rest[..rest.len().min(MAX_IOV)]).await?,
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(total)
}

/// The chunk stream and message type a track's media travels on.
pub fn media_ids(track: Track) -> (u32, u8) {
    match track {
        Track::Audio => (msg::CSID_AUDIO, msg::AUDIO),
        Track::Video => (msg::CSID_VIDEO, msg::VIDEO),
        Track::Data => (msg::CSID_METADATA, msg::AMF0_DATA),
    }
}

/// Writes every buffer in `parts`, with as few syscalls as possible.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(w: &mut W, parts: &[Bytes]) -> io::Result<usize> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
    write_all_slices(w, &mut slices).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn vectored_write_handles_partial_writes() {
        // A duplex pipe with a tiny buffer forces partial writes.
        let (mut a, mut b) = tokio::io::duplex(7);
        let parts: Vec<Bytes> = (0..50u8).map(|i| Bytes::from(vec![i; (i as usize % 5) + 1])).collect();
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
        let n = write_all_vectored(&mut a, &parts).await.unwrap();
        drop(a);
        assert_eq!(n, expected.len());
        assert_eq!(reader.await.unwrap(), expected);
    }

    /// Players sharing a framing get the very bytes they would have framed themselves: small
    /// messages, ones split into chunks, and ones past the 24-bit timestamp whose continuations
    /// repeat the extended timestamp.
    #[tokio::test]
    async fn shared_chunks_are_the_players_own_framing_byte_for_byte() {
        let big: Vec<u8> = [0x27, 1, 0, 0, 0].into_iter().chain((0..300u32).map(|i| i as u8)).collect();
        let big = Bytes::from(big);
        let p = |track, ts, body: Bytes| Arc::new(MediaPacket::from_flv(track, ts, body).unwrap());
        let at = |ts: u32| {
            vec![
                p(Track::Video, ts, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff])),
                p(Track::Audio, ts, Bytes::from_static(&[0xaf, 1, 0x21, 0x22])),
                p(Track::Video, ts + 40, big.clone()),
                p(Track::Data, ts + 40, Bytes::from_static(b"\x02\x00\x0aonMetaData\x05")),
            ]
        };
        for (start, size) in [(0, 128usize), (5000, 128), (0x00ff_fff0, 128), (0x0100_0000, 128), (0, 60000)] {
            let frames = at(start);
            // Timelines fixed at 0 (the 24-bit range, and past it) and one not fixed yet.
            let mut fixed = ConsumerClock::default();
            fixed.stamp(&Arc::new(MediaPacket::from_flv(Track::Audio, 0, Bytes::from_static(&[0xaf, 1])).unwrap()));
            for clock in [fixed, ConsumerClock::default()] {
                let mut g = Gather::default();
                own_chunks(&mut g, &frames, &mut clock.clone(), size, 1);
                let (mut a, mut b) = tokio::io::duplex(1 << 16);
                g.write(&mut a, &frames).await.unwrap();
                drop(a);
                let mut own = vec![];
                tokio::io::AsyncReadExt::read_to_end(&mut b, &mut own).await.unwrap();
                let shared = chunks(&frames, &mut clock.clone(), size, 1);
                assert_eq!(&shared[..], &own[..], "start {start:#x}, chunk size {size}");
                // And they read back as the messages, with the timestamps.
                let mut dec = ChunkDecoder::new(1 << 20, 1 << 20);
                dec.set_chunk_size(size as u32).unwrap();
                dec.buffer_mut().extend_from_slice(&shared);
                let mut got = vec![];
                while let Some(m) = dec.next_message().unwrap() {
                    got.push((m.type_id, m.timestamp, m.payload.len()));
                }
                let mut c = clock.clone();
                let want: Vec<(u8, u32, usize)> =
                    frames.iter().map(|f| (media_ids(f.track).1, c.stamp(f), f.flv_body().len())).collect();
                assert_eq!(got, want, "start {start:#x}, chunk size {size}");
            }
        }
    }

    /// With merged reads, a small read makes the next wait the latency, and what came meanwhile
    /// is read together; without, every message still arrives.
    #[tokio::test]
    async fn merged_reads_wait_after_a_small_read() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        for merge in [Some(std::time::Duration::from_millis(150)), None] {
            let mut publisher = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (server, _) = l.accept().await.unwrap();
            let (rd, _wr) = server.into_split();
            let mut reader = RtmpReader::new(rd, &[], Arc::default());
            reader.merge_reads(merge);
            let message = |ts: u32| {
                let mut out = BytesMut::new();
                chunk::encode_message(&mut out, 128, 4, ts, msg::AUDIO, 1, &[0xaf, 1, 2, 3]);
                out
            };
            publisher.write_all(&message(0)).await.unwrap();
            assert_eq!(reader.next().await.unwrap().timestamp, 0);
            let sent = tokio::time::Instant::now();
            for ts in [20, 40] {
                publisher.write_all(&message(ts)).await.unwrap();
            }
            assert_eq!(reader.next().await.unwrap().timestamp, 20);
            assert_eq!(reader.next().await.unwrap().timestamp, 40);
            let waited = sent.elapsed();
            // (Without, no bound is asserted: a busy machine may be slow to deliver.)
            if let Some(latency) = merge {
                assert!(waited >= latency - std::time::Duration::from_millis(5), "{waited:?}");
            }
        }
    }

    /// A paced read takes what the socket holds although a raised low-water mark keeps the socket
    /// from ever reporting readiness, then sees the end of the stream.
    #[tokio::test]
    async fn a_paced_read_takes_what_the_socket_holds_below_the_low_water_mark() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut publisher = tokio::net::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        let (rd, _wr) = server.into_split();
        let mut reader = RtmpReader::new(rd, &[], Arc::default());
        reader.set_read_low_water(256 * 1024).unwrap();
        let mut out = BytesMut::new();
        for ts in [0, 20, 40] {
            chunk::encode_message(&mut out, 128, 4, ts, msg::AUDIO, 1, &[0xaf, 1, 2, 3]);
        }
        publisher.write_all(&out).await.unwrap();
        // Loopback delivers as the write returns, almost always; the bound covers a slow machine.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut got = Vec::new();
        let mut read = 0;
        while got.len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "read {read} bytes, {} messages", got.len());
            read += reader.read_available(0, 1 << 20).unwrap();
            while let Some(m) = reader.next_buffered().unwrap() {
                got.push(m.timestamp);
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(got, [0, 20, 40]);
        assert_eq!(read, out.len());
        assert_eq!(reader.received(), out.len() as u64);
        // A last message and the end together: the message is read first (a second look that
        // finds the end must not drop what the first took), the end at the next read.
        let mut last = BytesMut::new();
        chunk::encode_message(&mut last, 128, 4, 60, msg::AUDIO, 1, &[0xaf, 1, 4]);
        publisher.write_all(&last).await.unwrap();
        drop(publisher);
        loop {
            assert!(tokio::time::Instant::now() < deadline, "the end of the stream was not seen");
            match reader.read_available(0, 1 << 20) {
                Err(IoError::Closed) => break,
                Ok(_) => {
                    while let Some(m) = reader.next_buffered().unwrap() {
                        got.push(m.timestamp);
                    }
                    tokio::task::yield_now().await
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(got, [0, 20, 40, 60], "the last message before the end");
    }

    /// Framing, shared packet bodies and held bodies go out in the order they were planned,
    /// through partial writes.
    #[tokio::test]
    async fn a_gathered_write_keeps_the_planned_order() {
        let frames: Vec<Arc<MediaPacket>> = [&[0xAFu8, 1, 1, 2, 3][..], &[0xAF, 1, 9]]
            .iter()
            .map(|b| Arc::new(MediaPacket::from_flv(Track::Audio, 0, Bytes::copy_from_slice(b)).unwrap()))
            .collect();
        let mut g = Gather::default();
        g.held_body(Bytes::from_static(b"HEAD"));
        g.framing.extend_from_slice(b"<a>");
        g.frame_body(0);
        g.framing.extend_from_slice(b"<b>");
        g.frame_body(1);
        g.held_body(Bytes::from_static(b"held"));
        g.framing.extend_from_slice(b"<end>");
        let (mut a, mut b) = tokio::io::duplex(5);
        let reader = tokio::spawn(async move {
            let mut got = vec![];
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got).await.unwrap();
            got
        });
        let n = g.write(&mut a, &frames).await.unwrap();
        drop(a);
        let mut expected = b"HEAD<a>".to_vec();
        expected.extend_from_slice(&[0xAF, 1, 1, 2, 3]);
        expected.extend_from_slice(b"<b>");
        expected.extend_from_slice(&[0xAF, 1, 9]);
        expected.extend_from_slice(b"held<end>");
        assert_eq!(n, expected.len());
        assert_eq!(reader.await.unwrap(), expected);
    }
}
