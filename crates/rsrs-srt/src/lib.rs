//! SRT for rsrs: libsrt, the implementation OBS, ffmpeg, vMix and SRS use, driven from tokio.
//!
//! libsrt runs its own protocol threads (ARQ, pacing, TSBPD, encryption); rsrs keeps its sockets
//! non-blocking and waits for them through one libsrt epoll, polled by one thread of ours (the
//! reactor). A task that finds a socket not ready subscribes the event and waits on a
//! [`tokio::sync::Notify`]; the reactor wakes it and drops the subscription (level-triggered,
//! as SRS does it, so no readiness is ever missed). Reads and writes themselves are libsrt's
//! buffer copies, done on the calling task.
//!
//! SRS's stream ids are read by `rsrs_codec::srt_streamid` (pure, fuzzed, no libsrt).

mod sys;

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// The largest message a live-mode SRT socket carries (SRTO_PAYLOADSIZE's default): 7 TS packets.
pub const LIVE_PAYLOAD: usize = 1316;

/// How long a waiting task sleeps before it looks at the socket's state again, whatever the
/// reactor said: a safety net, never the normal path.
const RECHECK: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum SrtError {
    #[error("libsrt could not start: {0}")]
    Init(String),
    #[error("SRT listen on {addr}: {reason}")]
    Listen { addr: SocketAddrV4, reason: String },
    #[error("SRT passphrase must be 10 to 79 characters (got {0})")]
    Passphrase(usize),
    #[error("SRT connection {peer} broken: {reason}")]
    Broken { peer: SocketAddr, reason: String },
    #[error("SRT accept: {0}")]
    Accept(String),
    #[error("SRT message of {0} bytes is larger than the live payload ({LIVE_PAYLOAD})")]
    TooLarge(usize),
}

/// SRS's `srt_server` socket options. `None`: libsrt's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SrtOptions {
    pub latency_ms: Option<u32>,
    pub rcv_latency_ms: Option<u32>,
    pub peer_latency_ms: Option<u32>,
    /// Bytes per second; -1 is "infinite", 0 is "relative to the input rate" (libsrt's).
    pub maxbw: Option<i64>,
    pub mss: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub peer_idle_timeout_ms: Option<u32>,
    pub sendbuf: Option<u32>,
    pub recvbuf: Option<u32>,
    pub payload_size: Option<u32>,
    pub tsbpd: Option<bool>,
    pub tlpktdrop: Option<bool>,
    /// 10 to 79 characters; callers without it (or with another) are refused at the handshake.
    pub passphrase: Option<String>,
    /// 16, 24 or 32 (bytes of AES key); 0: the caller's choice.
    pub pbkeylen: u32,
}

/// Live statistics of one connection, from libsrt.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SrtStats {
    pub rtt_ms: f64,
    pub bandwidth_mbps: f64,
    pub recv_rate_mbps: f64,
    pub send_rate_mbps: f64,
    pub pkt_recv: u64,
    pub pkt_sent: u64,
    /// Packets found missing on receive (each later retransmitted or dropped).
    pub pkt_rcv_loss: u64,
    /// Packets the peer reported lost on send.
    pub pkt_snd_loss: u64,
    /// Packets this side retransmitted.
    pub pkt_retrans: u64,
    /// Retransmitted packets received.
    pub pkt_rcv_retrans: u64,
    /// Packets given up as too late (TLPKTDROP) on receive, and on send.
    pub pkt_rcv_drop: u64,
    pub pkt_snd_drop: u64,
    pub pkt_rcv_undecrypt: u64,
    pub byte_recv: u64,
    pub byte_sent: u64,
    pub rcv_buf_bytes: u64,
    pub rcv_buf_ms: u64,
    pub snd_buf_bytes: u64,
    pub snd_buf_ms: u64,
    /// The latency the two sides agreed on for receiving.
    pub rcv_latency_ms: u64,
}

/// Wakers for one socket.
#[derive(Debug, Default)]
struct Waiter {
    read: Notify,
    write: Notify,
    /// Events subscribed in the epoll now (sys::EV_*), changed only under this lock.
    interest: Mutex<c_int>,
}

struct Reactor {
    eid: c_int,
    waiters: Mutex<HashMap<c_int, Arc<Waiter>>>,
}

static REACTOR: OnceLock<Result<Arc<Reactor>, String>> = OnceLock::new();

fn reactor() -> Result<Arc<Reactor>, SrtError> {
    REACTOR.get_or_init(start_reactor).clone().map_err(SrtError::Init)
}

fn start_reactor() -> Result<Arc<Reactor>, String> {
    // SAFETY: plain calls into the shim; srt_startup may be called more than once.
    let eid = unsafe {
        if sys::rsrs_srt_init() < 0 {
            return Err(sys::last_error());
        }
        sys::rsrs_srt_epoll_create()
    };
    if eid < 0 {
        return Err(sys::last_error());
    }
    let r = Arc::new(Reactor { eid, waiters: Mutex::new(HashMap::new()) });
    let poller = r.clone();
    std::thread::Builder::new()
        .name("srt-epoll".into())
        .spawn(move || poller.run())
        .map_err(|e| format!("cannot start the SRT poller thread: {e}"))?;
    Ok(r)
}

impl Reactor {
    fn run(&self) {
        let mut socks = [0 as c_int; 64];
        let mut events = [0 as c_int; 64];
        loop {
            // SAFETY: the buffers hold 64 entries, as the shim is told.
            let n = unsafe { sys::rsrs_srt_epoll_wait(self.eid, socks.as_mut_ptr(), events.as_mut_ptr(), 64, 250) };
            if n < 0 {
                tracing::warn!("SRT epoll wait failed: {}", sys::last_error());
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            for i in 0..n as usize {
                let Some(w) = self.waiters.lock().unwrap_or_else(|e| e.into_inner()).get(&socks[i]).cloned() else {
                    continue;
                };
                let ev = events[i];
                let mut interest = w.interest.lock().unwrap_or_else(|e| e.into_inner());
                let mut want = *interest;
                if ev & (sys::EV_IN | sys::EV_ERR) != 0 {
                    w.read.notify_one();
                    want &= !sys::EV_IN;
                }
                if ev & (sys::EV_OUT | sys::EV_ERR) != 0 {
                    w.write.notify_one();
                    want &= !sys::EV_OUT;
                }
                self.subscribe(socks[i], &mut interest, want);
            }
        }
    }

    /// Sets `sock`'s subscription to `want` (sys::EV_*): added to the epoll when it starts
    /// wanting something, removed when it wants nothing (libsrt has no empty subscription).
    fn subscribe(&self, sock: c_int, interest: &mut c_int, want: c_int) {
        let want = if want & (sys::EV_IN | sys::EV_OUT) == 0 { 0 } else { want | sys::EV_ERR };
        if want == *interest {
            return;
        }
        // SAFETY: plain calls on a socket id; one that was closed meanwhile only fails.
        unsafe {
            match (*interest, want) {
                (0, w) => sys::rsrs_srt_epoll_add(self.eid, sock, w),
                (_, 0) => sys::rsrs_srt_epoll_remove(self.eid, sock),
                (_, w) => sys::rsrs_srt_epoll_update(self.eid, sock, w),
            };
        }
        *interest = want;
    }

    fn register(&self, sock: c_int) -> Arc<Waiter> {
        let w = Arc::new(Waiter::default());
        // Not in the epoll until a task waits for something.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).insert(sock, w.clone());
        w
    }

    fn deregister(&self, sock: c_int, w: &Waiter) {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(&sock);
        let mut interest = w.interest.lock().unwrap_or_else(|e| e.into_inner());
        self.subscribe(sock, &mut interest, 0);
    }

    /// Waits until `sock` may be ready for `ev`, or `limit` passed (then false).
    async fn wait(&self, sock: c_int, w: &Waiter, ev: c_int, limit: Option<Duration>) -> bool {
        let notified = if ev == sys::EV_IN { w.read.notified() } else { w.write.notified() };
        {
            let mut interest = w.interest.lock().unwrap_or_else(|e| e.into_inner());
            let want = *interest | ev;
            self.subscribe(sock, &mut interest, want);
        }
        match limit {
            Some(limit) => tokio::time::timeout(limit, notified).await.is_ok(),
            None => {
                notified.await;
                true
            }
        }
    }
}

fn stats_of(sock: c_int) -> Option<SrtStats> {
    let mut s = sys::Stats::default();
    // SAFETY: `s` is the shim's struct, written in full on success.
    if unsafe { sys::rsrs_srt_stats(sock, &mut s) } < 0 {
        return None;
    }
    let u = |v: i64| v.max(0) as u64;
    Some(SrtStats {
        rtt_ms: s.rtt_ms,
        bandwidth_mbps: s.bandwidth_mbps,
        recv_rate_mbps: s.recv_rate_mbps,
        send_rate_mbps: s.send_rate_mbps,
        pkt_recv: u(s.pkt_recv),
        pkt_sent: u(s.pkt_sent),
        pkt_rcv_loss: u(s.pkt_rcv_loss),
        pkt_snd_loss: u(s.pkt_snd_loss),
        pkt_retrans: u(s.pkt_retrans),
        pkt_rcv_retrans: u(s.pkt_rcv_retrans),
        pkt_rcv_drop: u(s.pkt_rcv_drop),
        pkt_snd_drop: u(s.pkt_snd_drop),
        pkt_rcv_undecrypt: u(s.pkt_rcv_undecrypt),
        byte_recv: u(s.byte_recv),
        byte_sent: u(s.byte_sent),
        rcv_buf_bytes: u(s.rcv_buf_bytes),
        rcv_buf_ms: u(s.rcv_buf_ms),
        snd_buf_bytes: u(s.snd_buf_bytes),
        snd_buf_ms: u(s.snd_buf_ms),
        rcv_latency_ms: u(s.rcv_tsbpd_delay_ms),
    })
}

/// A listening SRT socket (UDP).
pub struct SrtListener {
    sock: c_int,
    waiter: Arc<Waiter>,
    reactor: Arc<Reactor>,
    local: SocketAddrV4,
}

impl SrtListener {
    /// Listens on `addr` with `opts` (which accepted connections inherit).
    pub fn bind(addr: SocketAddrV4, opts: &SrtOptions) -> Result<SrtListener, SrtError> {
        let reactor = reactor()?;
        let pass = match &opts.passphrase {
            Some(p) if !p.is_empty() => {
                if !(10..=79).contains(&p.len()) {
                    return Err(SrtError::Passphrase(p.len()));
                }
                Some(CString::new(p.as_str()).map_err(|_| SrtError::Passphrase(p.len()))?)
            }
            _ => None,
        };
        let opt = |v: Option<u32>| v.map_or(-1, |v| v as i64);
        let flag = |v: Option<bool>| v.map_or(-1, |v| v as c_int);
        let o = sys::Opts {
            latency_ms: opt(opts.latency_ms),
            rcv_latency_ms: opt(opts.rcv_latency_ms),
            peer_latency_ms: opt(opts.peer_latency_ms),
            maxbw: opts.maxbw.unwrap_or(i64::MIN).max(-1),
            mss: opt(opts.mss),
            conn_timeout_ms: opt(opts.connect_timeout_ms),
            peer_idle_timeout_ms: opt(opts.peer_idle_timeout_ms),
            sndbuf: opt(opts.sendbuf),
            rcvbuf: opt(opts.recvbuf),
            payload_size: opt(opts.payload_size),
            tsbpd: flag(opts.tsbpd),
            tlpktdrop: flag(opts.tlpktdrop),
            passphrase: pass.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            pbkeylen: opts.pbkeylen as c_int,
        };
        // maxbw -1 means "infinite" to libsrt, so "unset" must not be -1: the shim skips < 0,
        // and -1 as a real setting is libsrt's default anyway.
        let ip = CString::new(addr.ip().to_string()).expect("an IP has no NUL");
        let mut err = [0 as c_char; 256];
        // SAFETY: every pointer outlives the call; `err` is NUL-terminated by snprintf.
        let sock = unsafe {
            sys::rsrs_srt_listen(ip.as_ptr(), addr.port() as c_int, &o, 256, err.as_mut_ptr(), err.len() as c_int)
        };
        if sock < 0 {
            // SAFETY: the shim wrote a NUL-terminated message into `err`.
            let reason = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
            return Err(SrtError::Listen { addr, reason });
        }
        let waiter = reactor.register(sock);
        Ok(SrtListener { sock, waiter, reactor, local: addr })
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// The next caller that completed the handshake (passphrase checked by libsrt).
    pub async fn accept(&self) -> Result<SrtSocket, SrtError> {
        loop {
            // libsrt logs an accept with nothing pending as an error: accept only once told.
            while !self.reactor.wait(self.sock, &self.waiter, sys::EV_IN, Some(RECHECK)).await {}
            let mut ip = [0 as c_char; 64];
            let mut port: c_int = 0;
            // SAFETY: `ip` holds 64 bytes, as the shim is told.
            let s = unsafe { sys::rsrs_srt_accept(self.sock, ip.as_mut_ptr(), ip.len() as c_int, &mut port) };
            match s {
                sys::AGAIN => continue,
                s if s < 0 => return Err(SrtError::Accept(sys::last_error())),
                s => {
                    // SAFETY: the shim wrote a NUL-terminated address (or an empty string).
                    let ip = unsafe { CStr::from_ptr(ip.as_ptr()) }.to_string_lossy().parse::<IpAddr>();
                    let peer = SocketAddr::new(ip.unwrap_or(IpAddr::from([0, 0, 0, 0])), port as u16);
                    let mut id = [0 as c_char; 600];
                    // SAFETY: `id` holds 600 bytes; libsrt's stream id is at most 512.
                    let n = unsafe { sys::rsrs_srt_streamid(s, id.as_mut_ptr(), id.len() as c_int) };
                    let bytes: Vec<u8> = id[..n.max(0) as usize].iter().map(|b| *b as u8).collect();
                    let stream_id = String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string();
                    let waiter = self.reactor.register(s);
                    return Ok(SrtSocket {
                        sock: s,
                        waiter,
                        reactor: self.reactor.clone(),
                        peer,
                        stream_id,
                        closed: AtomicBool::new(false),
                    });
                }
            }
        }
    }
}

impl Drop for SrtListener {
    fn drop(&mut self) {
        self.reactor.deregister(self.sock, &self.waiter);
        // SAFETY: our socket, closed once.
        unsafe { sys::rsrs_srt_close(self.sock) };
    }
}

/// One SRT connection in live mode: messages of up to [`LIVE_PAYLOAD`] bytes.
pub struct SrtSocket {
    sock: c_int,
    waiter: Arc<Waiter>,
    reactor: Arc<Reactor>,
    peer: SocketAddr,
    stream_id: String,
    closed: AtomicBool,
}

impl SrtSocket {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The caller's `streamid` (SRTO_STREAMID), as it sent it.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    fn broken(&self) -> SrtError {
        SrtError::Broken { peer: self.peer, reason: sys::last_error() }
    }

    /// The next message (a few TS packets). Cancel-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize, SrtError> {
        loop {
            // SAFETY: `buf` is writable for its length.
            let n = unsafe { sys::rsrs_srt_recv(self.sock, buf.as_mut_ptr() as *mut c_char, buf.len() as c_int) };
            match n {
                sys::AGAIN => {
                    if !self.alive() {
                        return Err(self.broken());
                    }
                    self.reactor.wait(self.sock, &self.waiter, sys::EV_IN, Some(RECHECK)).await;
                }
                n if n < 0 => return Err(self.broken()),
                n => return Ok(n as usize),
            }
        }
    }

    /// Sends one message, waiting while libsrt's send buffer is full.
    pub async fn send(&self, msg: &[u8]) -> Result<(), SrtError> {
        if msg.len() > LIVE_PAYLOAD {
            return Err(SrtError::TooLarge(msg.len()));
        }
        loop {
            // SAFETY: `msg` is readable for its length.
            let n = unsafe { sys::rsrs_srt_send(self.sock, msg.as_ptr() as *const c_char, msg.len() as c_int) };
            match n {
                sys::AGAIN => {
                    if !self.alive() {
                        return Err(self.broken());
                    }
                    self.reactor.wait(self.sock, &self.waiter, sys::EV_OUT, Some(RECHECK)).await;
                }
                n if n < 0 => return Err(self.broken()),
                _ => return Ok(()),
            }
        }
    }

    /// Whether the connection still stands.
    pub fn alive(&self) -> bool {
        // SAFETY: a plain state query.
        !self.closed.load(Ordering::Relaxed) && unsafe { sys::rsrs_srt_alive(self.sock) } != 0
    }

    /// libsrt's statistics now (totals since the connection began).
    pub fn stats(&self) -> Option<SrtStats> {
        stats_of(self.sock)
    }

    /// Closes the connection now (the peer sees a shutdown); later calls fail.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            self.reactor.deregister(self.sock, &self.waiter);
            // SAFETY: our socket, closed once (guarded by `closed`).
            unsafe { sys::rsrs_srt_close(self.sock) };
        }
        self.waiter.read.notify_one();
        self.waiter.write.notify_one();
    }
}

impl Drop for SrtSocket {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built without libsrt, a listener fails at once and says how to get libsrt.
    #[cfg(rsrs_no_libsrt)]
    #[tokio::test]
    async fn without_libsrt_listening_says_why() {
        let addr: SocketAddrV4 = "127.0.31.2:10080".parse().unwrap();
        match SrtListener::bind(addr, &SrtOptions::default()) {
            Err(SrtError::Init(why)) => assert!(why.contains("apt-get install libsrt-openssl-dev"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
    }

    /// A listener refuses a passphrase libsrt would refuse, with the reason, and binds on a free
    /// loopback port; a second bind on the same port fails with libsrt's reason.
    #[cfg(not(rsrs_no_libsrt))]
    #[tokio::test]
    async fn listen_errors_are_specific() {
        let bad = SrtOptions { passphrase: Some("short".into()), ..Default::default() };
        let addr: SocketAddrV4 = "127.0.31.1:10080".parse().unwrap();
        assert!(matches!(SrtListener::bind(addr, &bad), Err(SrtError::Passphrase(5))));
        let l = SrtListener::bind(addr, &SrtOptions::default()).unwrap();
        assert_eq!(l.local_addr(), addr);
        match SrtListener::bind(addr, &SrtOptions::default()) {
            Err(SrtError::Listen { reason, .. }) => assert!(reason.contains("already listening"), "{reason}"),
            other => panic!("second bind: {:?}", other.err()),
        }
    }
}
