//! The stream hub: one [`Source`] per stream, holding the GOP cache and fanning media out to
//! every consumer (RTMP and HTTP-FLV players).
//!
//! Fan-out is the hot path. A publisher's message is parsed once into an `Arc<MediaPacket>`
//! (see [`crate::media`]); every consumer gets a reference to it through a bounded broadcast
//! ring shared by the stream, so memory does not grow with the number of players, and the
//! publisher never waits for any of them. Wire forms are made once per packet and shared; each
//! consumer only writes its own few header bytes (its timestamps start at zero, as in SRS).
//! A consumer that falls a whole ring behind is told so and skips ahead to the next keyframe.
//!
//! Players that merge writes (`mw_latency`) share a merge window, which reads the ring once per
//! close into a [`Run`] that all its players write as it is: a player's cost per close does not
//! grow with the messages in it.

use crate::media::{Codec, Content, MediaPacket, TagError, Track, Tracks, UnwritableTag};
use crate::paced_reads::{ReadPacer, PULL_GRACE};
use crate::shared_framing::{FramedBatches, SharedFraming};
use bytes::Bytes;
use rsrs_codec::flv;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::broadcast;

/// Streams released since the process started (the server trims its heap after churn).
pub static RELEASED: AtomicU64 = AtomicU64::new(0);

/// Messages a stream's ring holds (about 6 s of a typical A/V stream). A consumer further behind
/// than this skips to the next keyframe.
pub const RING_CAPACITY: usize = 512;
/// Most bytes the ring's last [`RING_CAPACITY`] messages may hold (the ring keeps them alive). A
/// real stream stays far below: 128 MiB over 512 messages is about 150 Mb/s of video.
pub const RING_MAX_BYTES: usize = 128 * 1024 * 1024;
/// Most bytes the GOP cache holds from its keyframe (about 25 s of a 20 Mb/s stream). Beyond
/// it the cache is dropped until the next keyframe: late joiners then wait for that keyframe.
pub const GOP_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Most media bytes a publisher may send while its timestamps advance by less than a second.
/// A frozen clock would otherwise make every time-based bound (segments, GOP) meaningless.
pub const MAX_BYTES_PER_MEDIA_SECOND: u64 = 64 * 1024 * 1024;

/// Why a publisher's media was refused; the publisher is disconnected with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error(
        "timestamps do not advance: {bytes} bytes of media within one second of stream time \
         (at {timestamp_ms} ms); refusing more than {MAX_BYTES_PER_MEDIA_SECOND}"
    )]
    FrozenClock { bytes: u64, timestamp_ms: u32 },
    #[error(
        "the last {RING_CAPACITY} messages hold {bytes} bytes, more than the {RING_MAX_BYTES} a stream may buffer"
    )]
    RingBytes { bytes: usize },
    #[error("malformed media: {0}")]
    Malformed(#[from] TagError),
    #[error("media that cannot be relayed: {0}")]
    Unwritable(UnwritableTag),
}

impl From<rsrs_codec::ts_ingest::EsPacket> for Elementary {
    fn from(p: rsrs_codec::ts_ingest::EsPacket) -> Elementary {
        Elementary {
            track: p.track,
            codec: p.codec,
            content: p.content,
            dts: p.dts_ms,
            cts: p.cts_ms,
            keyframe: p.keyframe,
            data: Bytes::from(p.data),
        }
    }
}

/// A packet as a protocol without FLV framing hands it in: codec data and its timing.
#[derive(Debug, Clone)]
pub struct Elementary {
    pub track: Track,
    pub codec: Codec,
    pub content: Content,
    /// Milliseconds, on the publisher's clock (jitter correction applies as for RTMP).
    pub dts: u32,
    pub cts: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// What flows through a stream's ring.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Media(Arc<MediaPacket>),
    /// The publisher left; HTTP-FLV responses end, RTMP players wait for a republish.
    Unpublished,
    /// The stream cannot be had (an edge found no origin with it); players are told and released.
    Failed(Arc<str>),
}

/// Identifies a stream: vhost (after default-vhost fallback), app, stream name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub vhost: String,
    pub app: String,
    pub stream: String,
}

impl StreamKey {
    /// SRS's stream URL: `/app/stream` on the default vhost, `vhost/app/stream` otherwise.
    pub fn url(&self) -> String {
        if self.vhost == rsrs_config::DEFAULT_VHOST {
            format!("/{}/{}", self.app, self.stream)
        } else {
            format!("{}/{}/{}", self.vhost, self.app, self.stream)
        }
    }
}

/// SRS's "full" time-jitter correction, applied once per stream: deltas beyond ±250 ms become
/// 10 ms, and time never goes below zero. Doing it at the source (not per player) keeps the
/// timeline smooth across republishes and lets every player share the same frames.
#[derive(Debug)]
struct Jitter {
    last_in: i64,
    last_out: i64,
}

impl Jitter {
    fn new() -> Self {
        Jitter { last_in: 0, last_out: -1 }
    }

    fn correct(&mut self, ts: u32) -> u32 {
        let ts = ts as i64;
        let mut delta = ts - self.last_in;
        if !(-250..=250).contains(&delta) {
            delta = 10;
        }
        self.last_in = ts;
        self.last_out = (self.last_out + delta).max(0);
        self.last_out as u32
    }
}

/// Who feeds a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublisherKind {
    /// A client publishing here (RTMP today; SRT and WHIP later).
    Client,
    /// This edge's pull from an origin: the stream is not published here.
    EdgePull,
}

#[derive(Debug)]
struct SourceState {
    publisher: Option<String>,
    publisher_kind: PublisherKind,
    publisher_tc_url: String,
    tracks: Tracks,
    gop: Vec<Arc<MediaPacket>>,
    gop_has_video: bool,
    audio_after_video: usize,
    jitter: Jitter,
    settings: SourceSettings,
    /// Payload bytes in `gop`.
    gop_bytes: usize,
    /// Sizes of the last [`RING_CAPACITY`] messages sent into the ring, and their sum.
    ring_sizes: std::collections::VecDeque<u32>,
    ring_bytes: usize,
    /// The stream time the media clock last stepped a second from, and bytes since.
    clock_mark: Option<u32>,
    bytes_since_mark: u64,
    /// The merge windows players of this stream share, one per merge duration in use.
    windows: Vec<Arc<MergeWindow>>,
    /// Events sent into the ring so far: the ring position a new receiver starts at. A window
    /// and a consumer reading the ring count the same way, so their places can be compared.
    sent: u64,
}

impl SourceState {
    /// A publisher's timestamp on the stream's timeline (the jitter correction).
    fn retime(&mut self, track: Track, timestamp: u32) -> u32 {
        match (track, self.settings.time_jitter) {
            (Track::Data, _) => 0,
            (_, rsrs_config::TimeJitter::Off) => timestamp,
            _ => self.jitter.correct(timestamp),
        }
    }

    /// Forgets what the previous input left: track information, the GOP, and where its media
    /// clock stood (a new publisher or upstream starts its own).
    fn clear_cache(&mut self) {
        self.tracks = Tracks::default();
        self.clear_gop();
        self.gop_has_video = false;
        self.audio_after_video = 0;
        self.clock_mark = None;
        self.bytes_since_mark = 0;
    }

    fn clear_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
    }

    /// Media must advance by a second of stream time per [`MAX_BYTES_PER_MEDIA_SECOND`].
    fn check_clock(&mut self, ts: u32, len: usize) -> Result<(), IngestError> {
        match self.clock_mark {
            Some(mark) if ts >= mark && ts - mark < 1000 => {
                self.bytes_since_mark += len as u64;
                if self.bytes_since_mark > MAX_BYTES_PER_MEDIA_SECOND {
                    return Err(IngestError::FrozenClock { bytes: self.bytes_since_mark, timestamp_ms: ts });
                }
            }
            // Time went back (jitter correction off): no second was gained, the bytes still count.
            Some(mark) if ts < mark => self.bytes_since_mark += len as u64,
            // The first media, or a second of stream time has passed: a new mark.
            _ => {
                self.clock_mark = Some(ts);
                self.bytes_since_mark = len as u64;
            }
        }
        Ok(())
    }

    /// Sends `ev` into the ring, counting it (a send without receivers leaves the ring as it
    /// was, so it does not count).
    fn send(&mut self, tx: &broadcast::Sender<HubEvent>, ev: HubEvent) {
        if tx.send(ev).is_ok() {
            self.sent += 1;
        }
    }

    /// Accounts a message about to enter the ring, refusing one that would make it too heavy.
    fn check_ring(&mut self, len: usize) -> Result<(), IngestError> {
        if self.ring_sizes.len() == RING_CAPACITY {
            self.ring_bytes -= self.ring_sizes.pop_front().unwrap_or(0) as usize;
        }
        self.ring_sizes.push_back(len as u32);
        self.ring_bytes += len;
        if self.ring_bytes > RING_MAX_BYTES {
            return Err(IngestError::RingBytes { bytes: self.ring_bytes });
        }
        Ok(())
    }
}

/// Settings a source takes from its vhost when published.
#[derive(Debug, Clone, Copy)]
pub struct SourceSettings {
    pub gop_cache: bool,
    pub gop_cache_max_frames: usize,
    pub time_jitter: rsrs_config::TimeJitter,
}

/// One live stream.
#[derive(Debug)]
pub struct Source {
    pub key: StreamKey,
    pub id: String,
    pub created: SystemTime,
    state: Mutex<SourceState>,
    tx: broadcast::Sender<HubEvent>,
    pub consumers: AtomicUsize,
    /// Of those, the ones that take no audio from the ring (WebRTC players, players of a
    /// substitute feed): when they are all there is, a transcoder making the ring's audio can
    /// rest.
    pub audio_indifferent: AtomicUsize,
    pub video_frames: AtomicU64,
    pub recv_bytes: AtomicU64,
    pub send_bytes: AtomicU64,
    /// Mirrors of what the state lock guards, for readers that must not take it (the metrics
    /// scrape): whether a publisher holds the stream, and the GOP cache's bytes.
    pub published: AtomicBool,
    pub gop_bytes: AtomicU64,
    /// Times a player fell a whole ring behind, and the packets such players were not sent
    /// (dropped by the ring, then skipped until the next keyframe).
    pub lags: AtomicU64,
    pub skipped_packets: AtomicU64,
    /// Whether the publisher's Enhanced RTMP multitrack packets were reported (once).
    multitrack_told: AtomicBool,
    /// A player needs a keyframe now (a WebRTC player joined or lost packets); a publisher that
    /// can be asked for one (WHIP) waits on this.
    pub keyframe_wanted: tokio::sync::Notify,
    /// A publisher that reads at the merge windows' closes (see [`paced_reads`](crate::paced_reads)).
    pub pacer: ReadPacer,
    created_at: Instant,
}

/// What a new consumer gets: the stream's track information and cached GOP (only while it is
/// published), and its place in the ring.
pub struct Subscription {
    pub tracks: Tracks,
    pub gop: Vec<Arc<MediaPacket>>,
    pub rx: broadcast::Receiver<HubEvent>,
    /// The ring position `rx` starts at.
    pub position: u64,
}

impl Subscription {
    /// What a player sends first: metadata, configurations, then the GOP.
    pub fn initial(&self) -> Vec<Arc<MediaPacket>> {
        // Sized exactly: a player reuses this vector as its batch for as long as it plays, so
        // slack here is memory per player.
        let mut v = Vec::with_capacity(self.tracks.packets().count() + self.gop.len());
        v.extend(self.tracks.packets().cloned());
        v.extend(self.gop.iter().cloned());
        v
    }
}

/// A merge window shared by players of a stream that merge writes for the same duration
/// (`mw_latency`): one timer per window instead of one per player, and each player woken once per
/// window instead of once per message and again at its own window's end.
///
/// A window closes on a grid, `period` apart, while messages come. A crowd of players is spread
/// over up to [`MAX_WINDOWS`] windows whose grids are offset, so their writes are not one burst
/// that a joining player's first frame would wait behind.
#[derive(Debug)]
struct MergeWindow {
    period: Duration,
    /// Which of the stream's windows for this period this is; gives its offset on the grid.
    slot: usize,
    /// Where this window's grid starts: the stream's first window's start, plus its offset.
    origin: tokio::time::Instant,
    /// Messages since the last close; the first starts the timer.
    since_close: AtomicUsize,
    /// Told by the first message after a close.
    opened: tokio::sync::Notify,
    /// Counts closes; players wait for it to change.
    closes: AtomicU64,
    /// Wakes the players at a close: one list, so one close is one burst of wake-ups (a sharded
    /// notifier wakes in several, each of which may wake a parked worker thread).
    closed: tokio::sync::Notify,
    /// Players in this window, and the timer's wake-up when the last leaves.
    seats: AtomicUsize,
    emptied: tokio::sync::Notify,
    /// What its players framed once for each other since the last close.
    framed: Arc<FramedBatches>,
    /// The window's own reading of the ring, made once per close for all its players.
    feed: Mutex<WindowFeed>,
}

/// What a merge window took from the ring at one close, shared by its players: each writes it
/// as it is, without a reference count and a ring read per message and player (which, from
/// players on both cores, bounce the same cache lines).
#[derive(Debug)]
pub(crate) struct Run {
    /// The ring position (see `SourceState::sent`) of the first packet.
    first: u64,
    packets: Vec<Arc<MediaPacket>>,
    /// What came after the packets (it takes a ring position of its own).
    end: Option<Signal>,
}

impl Run {
    /// The ring position after this run.
    fn end(&self) -> u64 {
        self.first + self.packets.len() as u64 + u64::from(self.end.is_some())
    }
}

/// A window's place in the ring and the runs it read, kept until its slowest player took them
/// (or [`RING_CAPACITY`] messages, as the ring itself: a player further behind skips ahead).
#[derive(Debug)]
struct WindowFeed {
    rx: broadcast::Receiver<HubEvent>,
    /// The ring position of the next event `rx` gives.
    next: u64,
    closed: bool,
    runs: std::collections::VecDeque<Arc<Run>>,
    /// Packets in `runs`.
    held: usize,
    /// Each seat's place: the ring position of the next event it needs (`None`: a free index).
    seats: Vec<Option<u64>>,
}

impl WindowFeed {
    /// At a close: what came since the last, as runs ending at each signal.
    fn read(&mut self) {
        let mut first = self.next;
        let mut packets = Vec::new();
        loop {
            let end = match self.rx.try_recv() {
                Ok(HubEvent::Media(p)) => {
                    packets.push(p);
                    self.next += 1;
                    continue;
                }
                Ok(HubEvent::Unpublished) => Signal::Unpublished,
                Ok(HubEvent::Failed(why)) => Signal::Failed(why),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    // Cannot happen while the window closes early (a quarter ring); if it does,
                    // the gap makes its players skip ahead as a lagging consumer would.
                    self.push(first, std::mem::take(&mut packets), None);
                    self.next += n;
                    first = self.next;
                    continue;
                }
                Err(broadcast::error::TryRecvError::Closed) if !self.closed => {
                    self.closed = true;
                    Signal::Closed
                }
                Err(_) => break,
            };
            self.next += 1;
            self.push(first, std::mem::take(&mut packets), Some(end));
            first = self.next;
        }
        self.push(first, packets, None);
        // What every seat has taken is let go; the ring's own bound applies to the rest.
        let needed = self.seats.iter().flatten().min().copied().unwrap_or(self.next);
        while let Some(run) = self.runs.front() {
            if run.end() > needed && self.held <= RING_CAPACITY {
                break;
            }
            self.held -= run.packets.len();
            self.runs.pop_front();
        }
    }

    fn push(&mut self, first: u64, packets: Vec<Arc<MediaPacket>>, end: Option<Signal>) {
        if packets.is_empty() && end.is_none() {
            return;
        }
        self.held += packets.len();
        self.runs.push_back(Arc::new(Run { first, packets, end }));
    }

    /// The first run past `position` for the seat `index`, and whether another follows. The
    /// seat is noted past it: the run is the seat's to write now, and the window need not keep it.
    fn run_after(&mut self, index: usize, position: u64) -> Option<(Arc<Run>, bool)> {
        let at = self.runs.iter().position(|r| r.end() > position);
        let past = at.map_or(position, |at| self.runs[at].end());
        if let Some(seat) = self.seats.get_mut(index) {
            *seat = Some(past);
        }
        let at = at?;
        Some((self.runs[at].clone(), at + 1 < self.runs.len()))
    }

    /// Whether the runs reach back to `position`, so a consumer there can take them from now on.
    fn covers(&self, position: u64) -> bool {
        self.runs.front().map_or(self.next, |r| r.first) <= position
    }
}

/// Messages after which a window closes early: a long `mw_latency` on a busy stream must not let
/// the ring overrun its players (they would skip to the next keyframe).
const WINDOW_MAX_MESSAGES: usize = RING_CAPACITY / 4;
/// Players a window takes before another is opened beside it: a close's burst of writes stays a
/// few milliseconds, and a crowd wakes the worker threads a few times a period, not once a player.
const WINDOW_PLAYERS: usize = 128;
/// Most windows per stream and period; past that, players share the emptiest.
const MAX_WINDOWS: usize = 32;
/// Most windows a paced publisher reads for: each close is a read. Eight windows of the default
/// 350 ms (a crowd of up to 1024 players) pull every 44 ms, still fewer reads than the 70 or so
/// messages a second of a typical stream; past that the reads would outnumber the messages.
pub const MAX_PACED_WINDOWS: usize = 8;

/// How a paced publisher would be read (see [`Source::read_pacing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPacing {
    /// The longest window period: a paced publisher reads at least every two of these.
    pub longest: Duration,
    /// About how often a window's close pulls the publisher.
    pub pull_every: Duration,
}

impl MergeWindow {
    /// A message entered the ring: wakes a resting timer with the first after a close, closes
    /// early when the window holds too many.
    fn message(&self) {
        let n = self.since_close.fetch_add(1, Ordering::AcqRel) + 1;
        if n == 1 {
            self.opened.notify_one();
        } else if n.is_multiple_of(WINDOW_MAX_MESSAGES) {
            self.close_now();
        }
    }

    /// This window's offset on the stream's grid: slots in bit-reversed order, so that however
    /// many windows there are, their closes are spread over the period.
    fn offset(&self) -> Duration {
        let bits = MAX_WINDOWS.trailing_zeros();
        let spread = (self.slot as u32).reverse_bits() >> (32 - bits);
        self.period * spread / MAX_WINDOWS as u32
    }

    /// The first point of this window's grid after `now`.
    fn next_close(&self, now: tokio::time::Instant) -> tokio::time::Instant {
        let Some(since) = now.checked_duration_since(self.origin) else { return self.origin };
        let period = self.period.as_nanos().max(1);
        let n = since.as_nanos() / period + 1;
        self.origin + Duration::from_nanos(u64::try_from(n * period).unwrap_or(u64::MAX))
    }

    fn feed(&self) -> std::sync::MutexGuard<'_, WindowFeed> {
        // The feed holds no invariant a panic elsewhere could break.
        self.feed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every player now (the publisher left, the stream failed, the window is full).
    fn close_now(&self) {
        self.feed().read();
        self.framed.clear();
        self.closes.fetch_add(1, Ordering::AcqRel);
        self.closed.notify_waiters();
    }

    /// The window's timer: a close at each point of the grid that has messages before it. It
    /// rests after a period without any, and ends when no player is left (and none joined
    /// meanwhile) or the stream is gone.
    async fn run(w: Arc<MergeWindow>, source: Weak<Source>) {
        // Whether the last period had messages: a live stream's timer goes from close to close
        // without waiting to be told of each period's first message.
        let mut live = false;
        loop {
            if w.seats.load(Ordering::Acquire) == 0 {
                let Some(src) = source.upgrade() else { return };
                let mut st = src.lock();
                // Under the lock a player cannot join between the count and the removal.
                if w.seats.load(Ordering::Acquire) == 0 {
                    st.windows.retain(|x| !Arc::ptr_eq(x, &w));
                    return;
                }
            }
            if !live && w.since_close.load(Ordering::Acquire) == 0 {
                tokio::select! {
                    _ = w.opened.notified() => {}
                    _ = w.emptied.notified() => continue,
                }
            }
            tokio::time::sleep_until(w.next_close(tokio::time::Instant::now())).await;
            // A paced publisher reads now, so what gathered in its socket goes out with this close.
            if let Some(src) = source.upgrade() {
                src.pacer.pull(PULL_GRACE).await;
            }
            // Messages after this count for the next close; the ones before are in the ring for
            // the players this one wakes.
            live = w.since_close.swap(0, Ordering::AcqRel) > 0;
            if live {
                w.close_now();
            }
        }
    }
}

/// A player's place in a merge window.
#[derive(Debug)]
struct WindowSeat {
    window: Arc<MergeWindow>,
    /// The last close this player took.
    seen: u64,
    /// This seat's index in the window's feed.
    index: usize,
}

impl WindowSeat {
    /// Takes a seat for a consumer at ring `position`; the first wait returns at once, for what
    /// is already in the ring.
    fn take(w: &Arc<MergeWindow>, position: u64) -> WindowSeat {
        w.seats.fetch_add(1, Ordering::AcqRel);
        let index = {
            let mut feed = w.feed();
            match feed.seats.iter().position(Option::is_none) {
                Some(i) => {
                    feed.seats[i] = Some(position);
                    i
                }
                None => {
                    feed.seats.push(Some(position));
                    feed.seats.len() - 1
                }
            }
        };
        WindowSeat { window: w.clone(), seen: w.closes.load(Ordering::Acquire).wrapping_sub(1), index }
    }

    /// Until the window closes after the last close this player took. Cancel-safe: a close
    /// missed by a dropped wait is seen by the next.
    async fn wait(&mut self) {
        loop {
            let closed = self.window.closed.notified();
            tokio::pin!(closed);
            // Registered before the count is read, so a close between the two is not lost.
            closed.as_mut().enable();
            let now = self.window.closes.load(Ordering::Acquire);
            if now != self.seen {
                self.seen = now;
                return;
            }
            closed.await;
        }
    }
}

impl Drop for WindowSeat {
    fn drop(&mut self) {
        if let Some(seat) = self.window.feed().seats.get_mut(self.index) {
            *seat = None;
        }
        if self.window.seats.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.window.emptied.notify_one();
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stream {0} is already being published by client {1}")]
pub struct StreamBusy(pub String, pub String);

impl Source {
    fn new(key: StreamKey, settings: SourceSettings) -> Source {
        let (tx, _) = broadcast::channel(RING_CAPACITY);
        Source {
            key,
            id: crate::ids::random_id("vid-", 7),
            created: SystemTime::now(),
            state: Mutex::new(SourceState {
                publisher: None,
                publisher_kind: PublisherKind::Client,
                publisher_tc_url: String::new(),
                tracks: Tracks::default(),
                gop: Vec::new(),
                gop_has_video: false,
                audio_after_video: 0,
                jitter: Jitter::new(),
                settings,
                gop_bytes: 0,
                ring_sizes: std::collections::VecDeque::new(),
                ring_bytes: 0,
                clock_mark: None,
                bytes_since_mark: 0,
                windows: Vec::new(),
                sent: 0,
            }),
            tx,
            consumers: AtomicUsize::new(0),
            audio_indifferent: AtomicUsize::new(0),
            video_frames: AtomicU64::new(0),
            recv_bytes: AtomicU64::new(0),
            send_bytes: AtomicU64::new(0),
            published: AtomicBool::new(false),
            gop_bytes: AtomicU64::new(0),
            lags: AtomicU64::new(0),
            skipped_packets: AtomicU64::new(0),
            multitrack_told: AtomicBool::new(false),
            keyframe_wanted: tokio::sync::Notify::new(),
            pacer: ReadPacer::default(),
            created_at: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SourceState> {
        // A panic while holding the lock would be a bug; recover the data rather than cascade.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the stream for a publisher. Fails if another publisher holds it.
    fn publish(
        &self,
        client_id: &str,
        kind: PublisherKind,
        tc_url: &str,
        settings: SourceSettings,
    ) -> Result<(), StreamBusy> {
        let mut st = self.lock();
        if let Some(other) = &st.publisher {
            return Err(StreamBusy(self.key.url(), other.clone()));
        }
        st.publisher = Some(client_id.to_string());
        self.published.store(true, Ordering::Relaxed);
        st.publisher_kind = kind;
        st.publisher_tc_url = tc_url.to_string();
        // A new publish starts a new cache (SRS resets metadata and sequence headers too).
        st.clear_cache();
        st.settings = settings;
        Ok(())
    }

    /// Releases the stream if `client_id` holds it, and tells consumers.
    pub fn unpublish(&self, client_id: &str) {
        let mut st = self.lock();
        if st.publisher.as_deref() != Some(client_id) {
            return;
        }
        st.publisher = None;
        self.published.store(false, Ordering::Relaxed);
        st.clear_gop();
        self.gop_bytes.store(0, Ordering::Relaxed);
        st.send(&self.tx, HubEvent::Unpublished);
        // Players hear of it now, not at their window's end.
        st.windows.iter().for_each(|w| w.close_now());
    }

    /// Ends every consumer with a reason (see [`HubEvent::Failed`]).
    pub fn fail(&self, reason: &str) {
        let mut st = self.lock();
        st.send(&self.tx, HubEvent::Failed(Arc::from(reason)));
        st.windows.iter().for_each(|w| w.close_now());
    }

    /// Forgets cached track information and GOP (a new upstream starts afresh).
    pub fn reset_cache(&self) {
        self.lock().clear_cache();
        self.gop_bytes.store(0, Ordering::Relaxed);
    }

    /// Bytes the GOP cache holds now.
    pub fn gop_cache_bytes(&self) -> usize {
        self.gop_bytes.load(Ordering::Relaxed) as usize
    }

    pub fn publisher(&self) -> Option<String> {
        self.lock().publisher.clone()
    }

    /// Whether a client publishes the stream here (not an edge's pull from an origin).
    pub fn published_here(&self) -> bool {
        let st = self.lock();
        st.publisher.is_some() && st.publisher_kind == PublisherKind::Client
    }

    pub fn publisher_tc_url(&self) -> String {
        self.lock().publisher_tc_url.clone()
    }

    pub fn codec_info(&self) -> (Option<flv::VideoInfo>, Option<flv::AudioInfo>) {
        let st = self.lock();
        (st.tracks.video_info.clone(), st.tracks.audio_info.clone())
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.created_at.elapsed()
    }

    /// Adds an FLV tag body (an RTMP audio, video or data message) from the publisher, parsed
    /// once here. Never blocks on consumers. Refuses media that is malformed or would break the
    /// stream's bounds (see [`IngestError`]); the caller then drops the publisher.
    pub fn push(&self, track: Track, timestamp: u32, body: Bytes) -> Result<(), IngestError> {
        if flv::tag::is_multitrack(track, &body) && !self.multitrack_told.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                stream = %self.key.url(),
                "the publisher sends Enhanced RTMP multitrack packets: they are relayed as they come to RTMP and \
                 HTTP-FLV players; HLS and DVR carry only the stream's default tracks"
            );
        }
        let len = body.len();
        self.ingest(track, timestamp, len, |ts| Ok(MediaPacket::from_flv(track, ts, body)?))
    }

    /// Adds a packet that came without FLV framing (SRT's MPEG-TS, WebRTC's RTP), with the same
    /// timing, bounds and caching as [`push`](Self::push).
    pub fn push_elementary(&self, p: Elementary) -> Result<(), IngestError> {
        let len = p.data.len();
        self.ingest(p.track, p.dts, len, |ts| {
            MediaPacket::from_elementary(p.track, p.codec, p.content, ts, p.cts, p.keyframe, p.data)
                .map_err(IngestError::Unwritable)
        })
    }

    fn ingest(
        &self,
        track: Track,
        timestamp: u32,
        len: usize,
        make: impl FnOnce(u32) -> Result<MediaPacket, IngestError>,
    ) -> Result<(), IngestError> {
        self.recv_bytes.fetch_add(len as u64, Ordering::Relaxed);
        let mut st = self.lock();
        let settings = st.settings;
        let ts = st.retime(track, timestamp);
        if track != Track::Data {
            st.check_clock(ts, len)?;
        }
        let packet = Arc::new(make(ts)?);
        st.check_ring(len)?;
        if !st.tracks.update(&packet) {
            if track == Track::Video {
                self.video_frames.fetch_add(1, Ordering::Relaxed);
            }
            cache_gop(&mut st, &packet, &settings, &self.key);
            self.gop_bytes.store(st.gop_bytes as u64, Ordering::Relaxed);
        }
        // Sent under the lock so a subscriber's snapshot and its ring position line up exactly.
        st.send(&self.tx, HubEvent::Media(packet));
        st.windows.iter().for_each(|w| w.message());
        Ok(())
    }

    /// A merge window of `period` for a new player: the emptiest of the stream's, or a new one
    /// (with its timer task) when those hold [`WINDOW_PLAYERS`] each. Must be called within a
    /// tokio runtime.
    fn merge_window(self: &Arc<Self>, period: Duration, position: u64) -> WindowSeat {
        let mut st = self.lock();
        let same = st.windows.iter().filter(|w| w.period == period);
        let emptiest = same.clone().min_by_key(|w| w.seats.load(Ordering::Acquire));
        if let Some(w) = emptiest {
            if w.seats.load(Ordering::Acquire) < WINDOW_PLAYERS || same.clone().count() >= MAX_WINDOWS {
                return WindowSeat::take(w, position);
            }
        }
        let slot = (0..MAX_WINDOWS).find(|i| !same.clone().any(|w| w.slot == *i)).unwrap_or(0);
        let base = match st.windows.iter().find(|w| w.period == period) {
            Some(w) => w.origin - w.offset(),
            None => tokio::time::Instant::now(),
        };
        let mut w = MergeWindow {
            period,
            slot,
            origin: base,
            since_close: AtomicUsize::new(0),
            opened: tokio::sync::Notify::new(),
            closes: AtomicU64::new(0),
            closed: tokio::sync::Notify::new(),
            seats: AtomicUsize::new(0),
            emptied: tokio::sync::Notify::new(),
            framed: Arc::default(),
            // Under the lock: the window's place in the ring is where the count says.
            feed: Mutex::new(WindowFeed {
                rx: self.tx.subscribe(),
                next: st.sent,
                closed: false,
                runs: Default::default(),
                held: 0,
                seats: Vec::new(),
            }),
        };
        w.origin = base + w.offset();
        let w = Arc::new(w);
        st.windows.push(w.clone());
        let seat = WindowSeat::take(&w, position);
        tokio::spawn(MergeWindow::run(w, Arc::downgrade(self)));
        seat
    }

    /// Attaches a consumer: the stream's tracks and GOP (only while published) and a ring
    /// receiver.
    pub fn subscribe(&self) -> Subscription {
        let st = self.lock();
        let rx = self.tx.subscribe();
        let position = st.sent;
        if st.publisher.is_none() {
            return Subscription { tracks: Tracks::default(), gop: Vec::new(), rx, position };
        }
        Subscription { tracks: st.tracks.clone(), gop: st.gop.clone(), rx, position }
    }

    /// A publisher's timestamp on the stream's timeline, for media that goes to players beside
    /// the ring (a WHIP publisher's own Opus): corrected as if it had been pushed.
    pub fn retime(&self, track: Track, timestamp: u32) -> u32 {
        self.lock().retime(track, timestamp)
    }

    /// Whether the publisher may read at the merge windows' closes instead of at each message
    /// (see [`paced_reads`](crate::paced_reads)): every consumer merges writes, in at most
    /// [`MAX_PACED_WINDOWS`] windows. Then how often it would be pulled, and the longest window
    /// period, which a paced publisher uses for its fallback reads (a window's timer rests while
    /// no message comes).
    pub fn read_pacing(&self) -> Option<ReadPacing> {
        let st = self.lock();
        if st.windows.is_empty() || st.windows.len() > MAX_PACED_WINDOWS {
            return None;
        }
        let seats: usize = st.windows.iter().map(|w| w.seats.load(Ordering::Acquire)).sum();
        let consumers = self.consumers.load(Ordering::Acquire);
        if consumers == 0 || seats != consumers {
            return None;
        }
        let longest = st.windows.iter().map(|w| w.period).max().unwrap_or_default();
        // Each window pulls at its close, and the closes of a period's windows are spread over it.
        let shortest = st.windows.iter().map(|w| w.period).min().unwrap_or_default();
        Some(ReadPacing { longest, pull_every: shortest / st.windows.len() as u32 })
    }

    /// Whether any consumer takes its audio from the ring.
    pub fn ring_audio_wanted(&self) -> bool {
        self.consumers.load(Ordering::Acquire) > self.audio_indifferent.load(Ordering::Acquire)
    }

    /// The settings the stream was published with (for a consumer of its own, as a transcoder).
    pub fn settings(&self) -> SourceSettings {
        self.lock().settings
    }

    /// The stream's track information now (for a consumer that skipped ahead or a new file).
    pub fn tracks(&self) -> Tracks {
        self.lock().tracks.clone()
    }
}

fn cache_gop(st: &mut SourceState, frame: &Arc<MediaPacket>, settings: &SourceSettings, key: &StreamKey) {
    if !settings.gop_cache {
        return;
    }
    if frame.track == Track::Video {
        if frame.keyframe {
            st.clear_gop();
        }
        st.gop_has_video = true;
        st.audio_after_video = 0;
    } else {
        st.audio_after_video += 1;
        // Pure audio stream (SRS: more than 115 audio messages since the last video): the
        // cache cannot start on a keyframe, so keep nothing.
        if st.audio_after_video > 115 {
            st.clear_gop();
            st.gop_has_video = false;
        }
    }
    if !st.gop_has_video {
        return;
    }
    // Only start a GOP at a keyframe, so late joiners always begin decodable.
    if st.gop.is_empty() && !frame.keyframe {
        return;
    }
    let too_many = st.gop.len() >= settings.gop_cache_max_frames;
    if too_many || st.gop_bytes + frame.flv_len() > GOP_CACHE_MAX_BYTES {
        let (frames, bytes) = (st.gop.len(), st.gop_bytes);
        st.clear_gop();
        tracing::warn!(
            stream = %key.url(),
            frames,
            bytes,
            "GOP cache dropped until the next keyframe: over {}",
            if too_many { "gop_cache_max_frames".to_string() } else { format!("its byte limit ({GOP_CACHE_MAX_BYTES})") }
        );
        return;
    }
    st.gop_bytes += frame.flv_len();
    st.gop.push(frame.clone());
}

/// All live sources, by stream key.
#[derive(Debug, Default)]
pub struct Hub {
    sources: Mutex<HashMap<StreamKey, Arc<Source>>>,
}

impl Hub {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Arc<Source>>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `key` for a publisher, creating the source if needed. Done under the map lock so
    /// an idle source cannot be released between lookup and claim.
    pub fn publish(
        &self,
        key: &StreamKey,
        client_id: &str,
        tc_url: &str,
        settings: SourceSettings,
    ) -> Result<Arc<Source>, StreamBusy> {
        self.publish_as(key, client_id, PublisherKind::Client, tc_url, settings)
    }

    /// [`publish`](Self::publish) by a publisher of the given kind.
    pub fn publish_as(
        &self,
        key: &StreamKey,
        client_id: &str,
        kind: PublisherKind,
        tc_url: &str,
        settings: SourceSettings,
    ) -> Result<Arc<Source>, StreamBusy> {
        let mut map = self.map();
        let s = map.entry(key.clone()).or_insert_with(|| Arc::new(Source::new(key.clone(), settings))).clone();
        s.publish(client_id, kind, tc_url, settings)?;
        Ok(s)
    }

    /// Attaches a consumer to `key` (creating the source so a player can wait for a publisher).
    pub fn attach(self: &Arc<Self>, key: &StreamKey, settings: SourceSettings) -> ConsumerGuard {
        let mut map = self.map();
        let s = map.entry(key.clone()).or_insert_with(|| Arc::new(Source::new(key.clone(), settings))).clone();
        s.consumers.fetch_add(1, Ordering::AcqRel);
        ConsumerGuard { source: s, hub: self.clone() }
    }

    /// Releases a publisher's claim and drops the source if nobody is left.
    pub fn unpublish(&self, source: &Source, client_id: &str) {
        source.unpublish(client_id);
        self.release_if_idle(&source.key);
    }

    pub fn get(&self, key: &StreamKey) -> Option<Arc<Source>> {
        self.map().get(key).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Source>> {
        let mut v: Vec<_> = self.map().values().cloned().collect();
        v.sort_by_key(|s| s.created);
        v
    }

    /// Drops a source nobody publishes or plays. Called when a publisher or consumer leaves.
    fn release_if_idle(&self, key: &StreamKey) {
        let mut map = self.map();
        if let Some(s) = map.get(key) {
            if s.publisher().is_none() && s.consumers.load(Ordering::Acquire) == 0 {
                map.remove(key);
                RELEASED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Keeps a consumer counted on its source while alive.
pub struct ConsumerGuard {
    pub source: Arc<Source>,
    hub: Arc<Hub>,
}

impl Drop for ConsumerGuard {
    fn drop(&mut self) {
        self.source.consumers.fetch_sub(1, Ordering::AcqRel);
        self.hub.release_if_idle(&self.source.key);
    }
}

/// What a consumer's pull reports besides frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// The publisher left (HTTP-FLV ends; RTMP players are told and wait for a republish).
    Unpublished,
    /// The source is gone.
    Closed,
    /// The stream cannot be had; the reason is for the player.
    Failed(Arc<str>),
}

/// One player's attachment to a stream: its place in the ring and its skip-ahead state. Shared
/// by every output protocol so they all treat lag, pause and unpublish the same way.
pub struct Consumer {
    guard: ConsumerGuard,
    /// Its own place in the ring: until it takes its merge window's runs, and always without one.
    rx: Option<broadcast::Receiver<HubEvent>>,
    /// The ring position of the next event it needs.
    position: u64,
    /// Whether more is waiting than the last take gave (see [`more`](Self::more)).
    more: bool,
    /// Audio taken from beside the ring instead of the stream's (see
    /// [`substitute_audio`](Self::substitute_audio)).
    audio: Option<AudioSubstitute>,
    /// Counted in the source's `audio_indifferent` while set.
    indifferent: Option<AudioIndifference>,
    skip: SkipAhead,
    /// The stream's shared merge window, once [`merge_every`](Self::merge_every) joined one.
    window: Option<WindowSeat>,
    has_video: bool,
    /// Whether the stream is known to carry audio / video (for FLV header flags).
    pub has_audio: bool,
    pub paused: bool,
}

impl Consumer {
    /// Attaches to `key` and returns the consumer with the packets to send first (metadata,
    /// configurations, the cached GOP).
    pub fn attach(hub: &Arc<Hub>, key: &StreamKey, settings: SourceSettings) -> (Consumer, Vec<Arc<MediaPacket>>) {
        let guard = hub.attach(key, settings);
        let sub = guard.source.subscribe();
        let initial = sub.initial();
        let c = Consumer {
            guard,
            rx: Some(sub.rx),
            position: sub.position,
            more: false,
            audio: None,
            indifferent: None,
            skip: SkipAhead::default(),
            window: None,
            has_video: sub.tracks.has_video(),
            has_audio: sub.tracks.has_audio(),
            paused: false,
        };
        (c, initial)
    }

    pub fn source(&self) -> &Arc<Source> {
        &self.guard.source
    }

    pub fn has_video(&self) -> bool {
        self.has_video
    }

    fn take(&mut self, ev: HubEvent, batch: &mut Vec<Arc<MediaPacket>>) -> Option<Signal> {
        self.position += 1;
        match ev {
            HubEvent::Media(f) => {
                self.admit(&f, batch);
                None
            }
            HubEvent::Unpublished => Some(Signal::Unpublished),
            HubEvent::Failed(why) => Some(Signal::Failed(why)),
        }
    }

    /// Adds `f` to `batch` unless this consumer leaves it out (its audio comes from elsewhere,
    /// it is paused, or it waits for a keyframe).
    fn admit(&mut self, f: &Arc<MediaPacket>, batch: &mut Vec<Arc<MediaPacket>>) {
        if self.audio.as_ref().is_some_and(|a| a.replaces(f)) {
            return;
        }
        if f.is_config() && f.track == Track::Video {
            self.has_video = true;
        }
        if !self.paused {
            if self.skip.admit(f, self.has_video) {
                batch.push(f.clone());
            } else {
                self.guard.source.skipped_packets.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether this consumer takes every packet of the ring as it is.
    fn takes_all(&self) -> bool {
        self.audio.is_none() && !self.paused && !self.skip.waiting
    }

    fn lagged(&mut self, missed: u64, batch: &mut Vec<Arc<MediaPacket>>) {
        self.position += missed;
        tracing::debug!(missed, "player fell behind the ring; skipping to the next keyframe");
        let source = &self.guard.source;
        source.lags.fetch_add(1, Ordering::Relaxed);
        source.skipped_packets.fetch_add(missed, Ordering::Relaxed);
        self.skip.lagged();
        self.extend_headers(batch);
    }

    /// The stream's headers (metadata, configurations), with the substitute audio's.
    fn extend_headers(&self, batch: &mut Vec<Arc<MediaPacket>>) {
        let tracks = self.guard.source.tracks();
        match &self.audio {
            Some(sub) => {
                batch.extend(tracks.packets().filter(|p| !sub.replaces(p)).cloned());
                batch.extend(sub.config.iter().cloned());
            }
            None => batch.extend(tracks.packets().cloned()),
        }
    }

    /// Takes the stream's audio from `feed` instead of the ring: packets of `replaces` are left
    /// out, the feed's configuration goes first (in `batch`, which holds what the player sends
    /// first), and the feed's packets join the ring's. Until the feed ends (its publisher left).
    pub fn substitute_audio(
        &mut self,
        replaces: crate::media::Codec,
        config: Option<Arc<MediaPacket>>,
        feed: broadcast::Receiver<Arc<MediaPacket>>,
        ended: tokio_util::sync::CancellationToken,
        batch: &mut Vec<Arc<MediaPacket>>,
    ) {
        self.ignore_ring_audio();
        let sub = AudioSubstitute { replaces, config, feed, ended };
        let at = batch.iter().position(|p| sub.replaces(p)).unwrap_or(0);
        batch.retain(|p| !sub.replaces(p));
        if let Some(c) = &sub.config {
            batch.insert(at.min(batch.len()), c.clone());
        }
        self.audio = Some(sub);
    }

    /// Says this consumer does not use the ring's audio (it plays audio from elsewhere), so a
    /// transcoder making that audio may rest while only such consumers remain.
    pub fn ignore_ring_audio(&mut self) {
        if self.indifferent.is_none() {
            self.guard.source.audio_indifferent.fetch_add(1, Ordering::AcqRel);
            self.indifferent = Some(AudioIndifference(self.guard.source.clone()));
        }
    }

    /// Takes messages a window at a time from now on: [`next`](Self::next) waits for the close of
    /// the stream's shared merge window of `period` (`mw_latency`). A zero period keeps one
    /// wake-up per message.
    ///
    /// A consumer joins one window for its life: once it takes the window's runs it has no place
    /// in the ring of its own, so a later call changes nothing.
    pub fn merge_every(&mut self, period: Duration) {
        if period.is_zero() || self.window.is_some() {
            return;
        }
        // The seat's first wait returns at once: what is in the ring already is taken then.
        self.window = Some(self.guard.source.merge_window(period, self.position));
    }

    /// Whether the last [`next`](Self::next), [`take_waiting`](Self::take_waiting) or
    /// [`drain`](Self::drain) left more waiting: a full batch, or another of the window's runs.
    pub fn more(&self) -> bool {
        self.more
    }

    /// The handle on the merge window's framing shared by players on one timeline (empty
    /// without a window).
    pub fn shared_framing(&self) -> SharedFraming {
        self.window.as_ref().map(|s| SharedFraming::of(s.window.framed.clone())).unwrap_or_default()
    }

    /// The next messages (cancel-safe): at the close of the merge window when there is one,
    /// else as [`recv`](Self::recv).
    pub async fn next(&mut self, batch: &mut Batch, max: usize) -> Option<Signal> {
        let Some(seat) = self.window.as_mut() else { return self.recv(batch.own(), max).await };
        seat.wait().await;
        self.take_waiting(batch, max)
    }

    /// What is waiting, without blocking (cancel-safe): with a window, its next run whatever
    /// `max` says (a run holds at most a window's [`WINDOW_MAX_MESSAGES`]), else as
    /// [`drain`](Self::drain).
    pub fn take_waiting(&mut self, batch: &mut Batch, max: usize) -> Option<Signal> {
        if self.window.is_none() {
            return self.drain(batch.own(), max);
        }
        if self.rx.is_some() {
            // Joining: from its own place in the ring until the window's runs reach back to it.
            let sig = self.drain(batch.own(), max);
            let covered = self.window.as_ref().is_some_and(|s| s.window.feed().covers(self.position));
            if sig.is_none() && !self.more && covered {
                self.rx = None;
            }
            return sig;
        }
        let position = self.position;
        let taken = self.window.as_ref().and_then(|s| s.window.feed().run_after(s.index, position));
        let Some((run, more)) = taken else {
            self.more = false;
            self.drain_audio(batch.own());
            return None;
        };
        self.more = more;
        if run.first > self.position {
            // The window let go of what this player had not taken: it is a ring behind.
            let missed = run.first - self.position;
            self.lagged(missed, batch.own());
        }
        let from = (self.position - run.first) as usize;
        self.position = run.end();
        let end = run.end.clone();
        if from == 0 && batch.is_empty() && self.takes_all() {
            if !self.has_video {
                self.has_video = run.packets.iter().any(|f| f.is_config() && f.track == Track::Video);
            }
            // The run itself, not another count on it: every player of the window touches that count.
            batch.shared = Some(run);
        } else {
            let own = batch.own();
            for f in run.packets.get(from..).unwrap_or_default() {
                self.admit(f, own);
            }
            self.drain_audio(own);
        }
        end
    }

    /// Waits for the next event (cancel-safe), then takes whatever else is already waiting, up
    /// to `max` frames in `batch`.
    pub async fn recv(&mut self, batch: &mut Vec<Arc<MediaPacket>>, max: usize) -> Option<Signal> {
        // Without a place in the ring it takes its window's runs (see `take_waiting`).
        let Some(rx) = self.rx.as_mut() else { return Some(Signal::Closed) };
        let ev = match self.audio.as_mut() {
            None => Some(rx.recv().await),
            // With a substitute audio feed: whichever comes first.
            Some(sub) => tokio::select! {
                ev = rx.recv() => Some(ev),
                p = sub.feed.recv() => {
                    match p {
                        Ok(p) if !self.paused => batch.push(p),
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        // The publisher left: the stream's own audio again.
                        Err(broadcast::error::RecvError::Closed) => self.audio = None,
                    }
                    None
                }
                _ = sub.ended.cancelled() => {
                    self.audio = None;
                    None
                }
            },
        };
        match ev {
            Some(Ok(ev)) => {
                if let Some(sig) = self.take(ev, batch) {
                    return Some(sig);
                }
            }
            Some(Err(broadcast::error::RecvError::Lagged(n))) => self.lagged(n, batch),
            Some(Err(broadcast::error::RecvError::Closed)) => return Some(Signal::Closed),
            None => {}
        }
        self.drain(batch, max)
    }

    /// Takes what is already waiting without blocking, until `batch` holds `max` frames or a
    /// signal comes.
    pub fn drain(&mut self, batch: &mut Vec<Arc<MediaPacket>>, max: usize) -> Option<Signal> {
        self.more = false;
        loop {
            let Some(rx) = self.rx.as_mut() else { return Some(Signal::Closed) };
            if batch.len() >= max {
                self.more = true;
                break;
            }
            match rx.try_recv() {
                Ok(ev) => {
                    if let Some(sig) = self.take(ev, batch) {
                        return Some(sig);
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.lagged(n, batch),
                Err(broadcast::error::TryRecvError::Closed) => return Some(Signal::Closed),
                Err(broadcast::error::TryRecvError::Empty) => break,
            }
        }
        self.drain_audio(batch);
        None
    }

    /// Takes what the substitute audio feed has waiting (it is read only here and in
    /// `recv_with_audio`, so a merge window must not leave it behind).
    fn drain_audio(&mut self, batch: &mut Vec<Arc<MediaPacket>>) {
        let Some(sub) = self.audio.as_mut() else { return };
        loop {
            match sub.feed.try_recv() {
                Ok(p) if !self.paused => batch.push(p),
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(broadcast::error::TryRecvError::Closed) => {
                    self.audio = None;
                    break;
                }
            }
        }
    }

    /// After a pause: resend headers and restart at the next keyframe so decoders can pick up.
    pub fn resume(&mut self, batch: &mut Vec<Arc<MediaPacket>>) {
        self.paused = false;
        self.skip.lagged();
        self.extend_headers(batch);
    }
}

/// What a player writes next: packets of its own, or its merge window's run as it is.
#[derive(Debug, Default)]
pub struct Batch {
    own: Vec<Arc<MediaPacket>>,
    shared: Option<Arc<Run>>,
}

impl Batch {
    pub fn packets(&self) -> &[Arc<MediaPacket>] {
        match &self.shared {
            Some(run) => &run.packets,
            None => &self.own,
        }
    }

    pub fn len(&self) -> usize {
        self.packets().len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets().is_empty()
    }

    /// Empties it, keeping its own vector's room.
    pub fn clear(&mut self) {
        self.own.clear();
        self.shared = None;
    }

    /// Its own packets, to add to (a window's run it held is copied in first).
    pub fn own(&mut self) -> &mut Vec<Arc<MediaPacket>> {
        if let Some(run) = self.shared.take() {
            self.own.extend(run.packets.iter().cloned());
        }
        &mut self.own
    }
}

impl From<Vec<Arc<MediaPacket>>> for Batch {
    fn from(own: Vec<Arc<MediaPacket>>) -> Batch {
        Batch { own, shared: None }
    }
}

/// A consumer's count in its source's `audio_indifferent`, taken back when dropped.
struct AudioIndifference(Arc<Source>);

impl Drop for AudioIndifference {
    fn drop(&mut self) {
        self.0.audio_indifferent.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Audio a consumer takes from beside the ring.
struct AudioSubstitute {
    /// The stream's audio codec this replaces.
    replaces: crate::media::Codec,
    config: Option<Arc<MediaPacket>>,
    feed: broadcast::Receiver<Arc<MediaPacket>>,
    ended: tokio_util::sync::CancellationToken,
}

impl AudioSubstitute {
    fn replaces(&self, p: &MediaPacket) -> bool {
        p.track == Track::Audio && p.codec == self.replaces
    }
}

/// Per-consumer view of time: the first media frame it receives is its zero, as SRS's per-player
/// jitter correction gives players; headers sent before that are stamped zero.
#[derive(Debug, Default, Clone)]
pub struct ConsumerClock {
    base: Option<u32>,
    /// The latest timestamp handed out: how much of the stream this player has been sent.
    position: u32,
}

impl ConsumerClock {
    pub fn stamp(&mut self, f: &MediaPacket) -> u32 {
        if f.track == Track::Data {
            return 0;
        }
        if f.is_config() && self.base.is_none() {
            return 0;
        }
        let base = *self.base.get_or_insert(f.dts);
        let ts = f.dts.saturating_sub(base);
        self.position = self.position.max(ts);
        ts
    }

    /// Milliseconds of the stream sent so far (for a play's `duration`).
    pub fn position(&self) -> u32 {
        self.position
    }

    /// The stream time that is this player's zero, once its first frame fixed it.
    pub fn base(&self) -> Option<u32> {
        self.base
    }
}

/// Keyframe-skip state for a consumer that lagged behind the ring.
#[derive(Debug, Default)]
pub struct SkipAhead {
    waiting: bool,
}

impl SkipAhead {
    pub fn lagged(&mut self) {
        self.waiting = true;
    }

    /// Whether to deliver this frame: while waiting, drop everything until a video keyframe.
    pub fn admit(&mut self, f: &MediaPacket, stream_has_video: bool) -> bool {
        if !self.waiting {
            return true;
        }
        if f.is_config() || f.track == Track::Data || !stream_has_video || f.keyframe {
            if f.keyframe || !stream_has_video {
                self.waiting = false;
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SourceSettings {
        SourceSettings { gop_cache: true, gop_cache_max_frames: 2500, time_jitter: rsrs_config::TimeJitter::Full }
    }

    fn key() -> StreamKey {
        StreamKey { vhost: "__defaultVhost__".into(), app: "live".into(), stream: "s".into() }
    }

    fn video(key: bool, n: u8) -> Bytes {
        Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, n])
    }

    #[test]
    fn late_joiner_gets_headers_then_gop_from_keyframe() {
        let s = Source::new(key(), settings());
        s.publish("c1", PublisherKind::Client, "rtmp://x/live", settings()).unwrap();
        s.push(Track::Data, 0, Bytes::from_static(b"meta")).unwrap();
        s.push(Track::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1])).unwrap();
        s.push(Track::Audio, 0, Bytes::from_static(&[0xAF, 0, 0x12, 0x10])).unwrap();
        s.push(Track::Video, 40, video(false, 1)).unwrap(); // before any keyframe: not cached
        s.push(Track::Video, 80, video(true, 2)).unwrap();
        s.push(Track::Audio, 90, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        s.push(Track::Video, 120, video(false, 3)).unwrap();
        let sub = s.subscribe();
        let kinds: Vec<(Track, bool, bool)> =
            sub.initial().iter().map(|f| (f.track, f.is_config(), f.keyframe)).collect();
        assert_eq!(
            kinds,
            vec![
                (Track::Data, false, false),
                (Track::Audio, true, false),
                (Track::Video, true, false),
                (Track::Video, false, true),
                (Track::Audio, false, false),
                (Track::Video, false, false),
            ]
        );
        assert!(sub.tracks.has_audio() && sub.tracks.has_video());
        // Second keyframe resets the GOP.
        s.push(Track::Video, 160, video(true, 4)).unwrap();
        assert_eq!(s.subscribe().initial().len(), 4);
    }

    #[test]
    fn second_publisher_is_refused_and_unpublish_notifies() {
        let s = Source::new(key(), settings());
        s.publish("a", PublisherKind::Client, "", settings()).unwrap();
        let err = s.publish("b", PublisherKind::Client, "", settings()).unwrap_err();
        assert_eq!(err.to_string(), "stream /live/s is already being published by client a");
        let mut sub = s.subscribe();
        s.unpublish("b"); // not the holder: no effect
        assert_eq!(s.publisher().as_deref(), Some("a"));
        s.unpublish("a");
        assert!(matches!(sub.rx.try_recv(), Ok(HubEvent::Unpublished)));
        assert!(s.subscribe().initial().is_empty(), "no cache dump without a publisher");
    }

    #[test]
    fn jitter_full_clamps_jumps() {
        let mut j = Jitter::new();
        let out: Vec<u32> = [1000, 1040, 1080, 50000, 50040, 100].iter().map(|&t| j.correct(t)).collect();
        assert_eq!(out, vec![9, 49, 89, 99, 139, 149]);
    }

    #[test]
    fn ring_lag_is_reported_and_the_player_resumes_on_a_keyframe() {
        let s = Source::new(key(), settings());
        s.publish("a", PublisherKind::Client, "", settings()).unwrap();
        let mut sub = s.subscribe();
        for i in 0..(RING_CAPACITY + 10) {
            s.push(Track::Video, i as u32 * 40, video(i % 50 == 0, 0)).unwrap();
        }
        assert!(matches!(sub.rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(_))));
        let mut skip = SkipAhead::default();
        skip.lagged();
        let mut admitted = 0;
        while let Ok(HubEvent::Media(f)) = sub.rx.try_recv() {
            if skip.admit(&f, true) {
                assert!(admitted > 0 || f.keyframe, "first admitted frame after lag must be a keyframe");
                admitted += 1;
            }
        }
        assert!(admitted > 0);
    }

    #[test]
    fn gop_cache_is_bounded_in_bytes() {
        let s = Source::new(key(), settings());
        s.publish("a", PublisherKind::Client, "", settings()).unwrap();
        let big = |key: bool| {
            let mut v = vec![0u8; 1024 * 1024];
            v[0] = if key { 0x17 } else { 0x27 };
            v[1] = 1;
            Bytes::from(v)
        };
        s.push(Track::Video, 0, big(true)).unwrap();
        for i in 1..80u32 {
            s.push(Track::Video, i * 40, big(false)).unwrap();
            assert!(s.gop_cache_bytes() <= GOP_CACHE_MAX_BYTES, "after frame {i}: {}", s.gop_cache_bytes());
        }
        assert_eq!(s.gop_cache_bytes(), 0, "dropped after passing the limit, until the next keyframe");
        s.push(Track::Video, 80 * 40, big(true)).unwrap();
        assert_eq!(s.gop_cache_bytes(), 1024 * 1024);
        assert_eq!(s.subscribe().initial().first().map(|f| f.keyframe), Some(true));
    }

    #[test]
    fn a_frozen_clock_is_refused() {
        let s = Source::new(key(), settings());
        s.publish("a", PublisherKind::Client, "", settings()).unwrap();
        let frame = Bytes::from(vec![0x27u8; 512 * 1024]);
        s.push(Track::Video, 5000, video(true, 0)).unwrap();
        let mut refused = None;
        for n in 0..200u64 {
            if let Err(e) = s.push(Track::Video, 5000, frame.clone()) {
                refused = Some((n, e));
                break;
            }
        }
        let (n, e) = refused.expect("refused before 100 MiB");
        assert_eq!(n, 127, "the 128th 512 KiB frame within one second of stream time passes 64 MiB");
        assert!(matches!(e, IngestError::FrozenClock { .. }), "{e}");
        // A real stream at 100 Mb/s (12.5 MB per second of stream time) is never refused.
        let s = Source::new(key(), settings());
        s.publish("a", PublisherKind::Client, "", settings()).unwrap();
        let frame = Bytes::from(vec![0x27u8; 400 * 1024]);
        for i in 0..300u32 {
            s.push(Track::Video, i * 33, frame.clone()).unwrap();
        }
    }

    #[test]
    fn the_ring_is_bounded_in_bytes() {
        let s = Source::new(key(), settings());
        s.publish("a", PublisherKind::Client, "", settings()).unwrap();
        let frame = Bytes::from(vec![0x27u8; 8 * 1024 * 1024]);
        let mut n = 0u32;
        let err = loop {
            // 200 ms apart: 40 MiB per second of stream time, under the frozen-clock bound.
            match s.push(Track::Video, n * 200, frame.clone()) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
            assert!(n < 100, "never refused");
        };
        assert_eq!(n, 16, "16 messages of 8 MiB fill the ring's 128 MiB");
        assert!(matches!(err, IngestError::RingBytes { .. }), "{err}");
    }

    /// Publish -> core -> play with no socket: what a player reads through its consumer.
    #[tokio::test]
    async fn a_player_follows_a_stream_through_a_republish() {
        let hub = Arc::new(Hub::default());
        let k = key();
        let (mut player, initial) = Consumer::attach(&hub, &k, settings());
        assert!(initial.is_empty(), "nothing published yet");
        let src = hub.publish(&k, "pub1", "rtmp://x/live", settings()).unwrap();
        src.push(Track::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1])).unwrap();
        src.push(Track::Video, 0, video(true, 1)).unwrap();
        src.push(Track::Video, 40, video(false, 2)).unwrap();
        let mut batch = Vec::new();
        let mut clock = ConsumerClock::default();
        assert_eq!(player.recv(&mut batch, 16).await, None);
        let got: Vec<(bool, bool, u32)> = batch.iter().map(|f| (f.is_config(), f.keyframe, clock.stamp(f))).collect();
        assert_eq!(got, vec![(true, false, 0), (false, true, 0), (false, false, 40)]);
        // The publisher leaves: the player is told, keeps its place, and the source stays.
        hub.unpublish(&src, "pub1");
        batch.clear();
        assert_eq!(player.recv(&mut batch, 16).await, Some(Signal::Unpublished));
        assert!(hub.get(&k).is_some(), "a source with a player waits for a republish");
        // It comes back: the same player gets the new headers and media, its timeline going on.
        let src2 = hub.publish(&k, "pub2", "rtmp://x/live", settings()).unwrap();
        assert!(Arc::ptr_eq(&src, &src2));
        src2.push(Track::Video, 5000, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1])).unwrap();
        src2.push(Track::Video, 5000, video(true, 3)).unwrap();
        assert_eq!(player.recv(&mut batch, 16).await, None);
        assert_eq!(batch.len(), 2);
        assert!(batch[0].is_config() && batch[1].keyframe);
        assert!(clock.stamp(&batch[1]) > 40, "the player's time moves on across the republish");
        // The last one out releases the stream.
        hub.unpublish(&src2, "pub2");
        drop(player);
        assert!(hub.get(&k).is_none());
    }

    #[tokio::test]
    async fn a_slow_player_skips_to_a_keyframe_and_the_publisher_never_waits() {
        let hub = Arc::new(Hub::default());
        let k = key();
        let src = hub.publish(&k, "p", "", settings()).unwrap();
        src.push(Track::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1])).unwrap();
        let (mut slow, _) = Consumer::attach(&hub, &k, settings());
        // Two ring's worth while the player reads nothing: pushing never blocks.
        for i in 0..(2 * RING_CAPACITY as u32) {
            src.push(Track::Video, 40 * (i + 1), video(i % 100 == 0, 0)).unwrap();
        }
        let mut batch = Vec::new();
        let mut first_media = None;
        while slow.drain(&mut batch, 4096).is_none() && !batch.is_empty() {
            if first_media.is_none() {
                first_media = batch.iter().find(|f| !f.is_config()).cloned();
            }
            if batch.len() > 2 * RING_CAPACITY {
                break;
            }
            batch.clear();
        }
        let f = first_media.expect("the slow player gets media again");
        assert!(f.keyframe, "it resumes on a keyframe");
    }

    #[test]
    fn consumer_clock_starts_at_zero() {
        let mut c = ConsumerClock::default();
        let p = |track, ts, body: &'static [u8]| MediaPacket::from_flv(track, ts, Bytes::from_static(body)).unwrap();
        let sh = p(Track::Video, 500, &[0x17, 0, 0, 0, 0]);
        let k = p(Track::Video, 9000, &[0x17, 1, 0, 0, 0, 1]);
        let a = p(Track::Audio, 9020, &[0xAF, 1]);
        assert_eq!((c.stamp(&sh), c.stamp(&k), c.stamp(&a)), (0, 0, 20));
    }

    #[test]
    fn malformed_media_is_refused_with_what_was_wrong() {
        let s = Source::new(key(), settings());
        s.publish("a", PublisherKind::Client, "", settings()).unwrap();
        let err = s.push(Track::Video, 0, Bytes::from_static(&[0x17, 1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed media: Video tag body of 2 bytes is shorter than its H264 header (5 bytes)"
        );
        assert_eq!(s.subscribe().initial().len(), 0, "nothing of it was kept");
    }

    /// A player taking its audio from beside the ring: the stream's AAC is left out, the feed's
    /// configuration comes first, its packets arrive with the ring's (also after a merge
    /// window's drain), and the stream's own audio returns when the feed ends.
    #[tokio::test]
    async fn substitute_audio_replaces_the_streams_aac() {
        let hub = Arc::new(Hub::default());
        let k = key();
        let src = hub.publish(&k, "pub", "rtmp://x/live", settings()).unwrap();
        src.push(Track::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1])).unwrap();
        src.push(Track::Audio, 0, Bytes::from_static(&[0xAF, 0, 0x12, 0x10])).unwrap();
        src.push(Track::Video, 0, video(true, 1)).unwrap();
        src.push(Track::Audio, 10, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        let (mut player, mut initial) = Consumer::attach(&hub, &k, settings());
        let opus = |content, dts| {
            Arc::new(
                MediaPacket::from_elementary(
                    Track::Audio,
                    crate::media::Codec::Opus,
                    content,
                    dts,
                    0,
                    false,
                    Bytes::from_static(b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"),
                )
                .unwrap(),
            )
        };
        let (tx, rx) = broadcast::channel(16);
        let ended = tokio_util::sync::CancellationToken::new();
        player.substitute_audio(
            crate::media::Codec::Aac,
            Some(opus(Content::Config, 0)),
            rx,
            ended.clone(),
            &mut initial,
        );
        let codecs = |b: &[Arc<MediaPacket>]| b.iter().map(|p| (p.track, p.codec, p.is_config())).collect::<Vec<_>>();
        use crate::media::Codec::{Aac, Opus, H264};
        // The Opus configuration where the AAC's was.
        assert_eq!(
            codecs(&initial),
            vec![(Track::Audio, Opus, true), (Track::Video, H264, true), (Track::Video, H264, false)]
        );
        // Live: AAC from the ring is left out, Opus from the feed comes in.
        src.push(Track::Audio, 20, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        src.push(Track::Video, 40, video(false, 2)).unwrap();
        for dts in [20, 40, 60] {
            tx.send(opus(Content::Frame, dts)).unwrap();
        }
        let mut batch = Vec::new();
        while batch.len() < 4 {
            assert_eq!(player.recv(&mut batch, 16).await, None);
        }
        let mut got = codecs(&batch);
        got.sort_by_key(|c| c.1 as u8);
        assert_eq!(got.iter().filter(|c| c.1 == Opus).count(), 3, "{got:?}");
        assert!(!got.iter().any(|c| c.1 == Aac), "{got:?}");
        // The feed ends (its publisher left): the stream's AAC again.
        ended.cancel();
        batch.clear();
        let _ = player.recv(&mut batch, 16).await;
        src.push(Track::Audio, 80, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        while !batch.iter().any(|p| p.codec == Aac) {
            assert_eq!(player.recv(&mut batch, 16).await, None);
        }
    }

    /// Players that merge over the same `mw_latency` share one window: each wakes once when it
    /// closes, `period` after the first message in it, and gets every message since.
    #[tokio::test(start_paused = true)]
    async fn players_share_one_merge_window() {
        let hub = Arc::new(Hub::default());
        let src = hub.publish(&key(), "p", "", settings()).unwrap();
        let period = Duration::from_millis(350);
        let mut players: Vec<_> = (0..3).map(|_| Consumer::attach(&hub, &key(), settings()).0).collect();
        for p in players.iter_mut() {
            p.merge_every(period);
            // Joining takes what is waiting at once (nothing yet).
            let mut batch = Batch::default();
            assert_eq!(p.next(&mut batch, 16).await, None);
            assert!(batch.is_empty());
        }
        assert_eq!(src.lock().windows.len(), 1, "one window for one period");
        let start = tokio::time::Instant::now();
        for ts in 0..5 {
            src.push(Track::Audio, ts * 20, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        }
        for p in players.iter_mut() {
            let mut batch = Batch::default();
            assert_eq!(p.next(&mut batch, 16).await, None);
            assert_eq!(batch.len(), 5, "the whole window in one wake-up");
        }
        assert_eq!(start.elapsed(), period, "closed a period after its first message");
        // The publisher leaving closes the window at once.
        src.push(Track::Audio, 100, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        let at = tokio::time::Instant::now();
        hub.unpublish(&src, "p");
        let mut batch = Batch::default();
        assert_eq!(players[0].next(&mut batch, 16).await, Some(Signal::Unpublished));
        assert_eq!(batch.len(), 1);
        assert_eq!(at.elapsed(), Duration::ZERO);
        // The last player gone, the window goes too.
        drop(players);
        tokio::time::sleep(period * 2).await;
        assert!(hub.get(&key()).is_none_or(|s| s.lock().windows.is_empty()));
    }

    /// A publisher may pace its reads only while every consumer merges writes in a few windows;
    /// a paced publisher is pulled at each close, and what it pushes then goes out with that close.
    #[tokio::test(start_paused = true)]
    async fn a_paced_publisher_is_read_at_each_close_while_every_consumer_merges() {
        let hub = Arc::new(Hub::default());
        let src = hub.publish(&key(), "p", "", settings()).unwrap();
        assert_eq!(src.read_pacing(), None, "no consumers: nothing to pace for");
        let period = Duration::from_millis(350);
        let mut players: Vec<_> = (0..2).map(|_| Consumer::attach(&hub, &key(), settings()).0).collect();
        assert_eq!(src.read_pacing(), None, "consumers that do not merge yet");
        for p in players.iter_mut() {
            p.merge_every(period);
            let mut batch = Batch::default();
            assert_eq!(p.next(&mut batch, 16).await, None);
        }
        let one_window = Some(ReadPacing { longest: period, pull_every: period });
        assert_eq!(src.read_pacing(), one_window, "one window: a pull a period");
        // One consumer that takes each message at once (realtime, a writer): no pacing.
        let (realtime, _) = Consumer::attach(&hub, &key(), settings());
        assert_eq!(src.read_pacing(), None);
        drop(realtime);
        assert_eq!(src.read_pacing(), one_window);

        // The paced publisher: pulled at each close, it pushes what "gathered" then.
        let publisher = {
            let src = src.clone();
            tokio::spawn(async move {
                let paced = src.pacer.pace();
                for ts in 0..3u32 {
                    paced.pulled().await;
                    src.push(Track::Audio, ts * 20, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
                    src.push(Track::Audio, ts * 20 + 10, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
                    paced.read_done();
                }
            })
        };
        // The window's timer rests until a message comes; one message starts it.
        src.push(Track::Audio, 0, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        let start = tokio::time::Instant::now();
        for (close, want) in [(1u32, 3usize), (2, 2), (3, 2)] {
            for p in players.iter_mut() {
                let mut batch = Batch::default();
                assert_eq!(p.next(&mut batch, 16).await, None);
                assert_eq!(batch.len(), want, "close {close}: what was pushed at the pull goes with it");
            }
            assert_eq!(start.elapsed(), period * close, "closes stay on the grid");
        }
        publisher.await.unwrap();
        assert!(!src.pacer.is_paced(), "the pacing ends with the publisher's hold");
    }

    /// A crowd in several windows is read at each of their closes, which are spread over the
    /// period; past [`MAX_PACED_WINDOWS`] windows the reads would outnumber the messages.
    #[tokio::test(start_paused = true)]
    async fn a_crowd_in_a_few_windows_is_pulled_at_each_windows_close() {
        let hub = Arc::new(Hub::default());
        let src = hub.publish(&key(), "p", "", settings()).unwrap();
        let period = Duration::from_millis(400);
        let mut players = Vec::new();
        for _ in 0..WINDOW_PLAYERS * 4 {
            let (mut p, _) = Consumer::attach(&hub, &key(), settings());
            p.merge_every(period);
            players.push(p);
        }
        assert_eq!(src.read_pacing(), Some(ReadPacing { longest: period, pull_every: period / 4 }));
        while src.lock().windows.len() <= MAX_PACED_WINDOWS {
            let (mut p, _) = Consumer::attach(&hub, &key(), settings());
            p.merge_every(period);
            players.push(p);
        }
        assert_eq!(src.read_pacing(), None, "{} windows", MAX_PACED_WINDOWS + 1);
    }

    /// A long window on a busy stream closes early rather than let the ring overrun its players.
    #[tokio::test(start_paused = true)]
    async fn a_full_merge_window_closes_early() {
        let hub = Arc::new(Hub::default());
        let src = hub.publish(&key(), "p", "", settings()).unwrap();
        let (mut player, _) = Consumer::attach(&hub, &key(), settings());
        player.merge_every(Duration::from_secs(60));
        let mut batch = Batch::default();
        assert_eq!(player.next(&mut batch, RING_CAPACITY).await, None);
        let start = tokio::time::Instant::now();
        let mut got = 0;
        for n in 0..RING_CAPACITY as u32 * 2 {
            src.push(Track::Audio, n, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
            if (n as usize + 1).is_multiple_of(WINDOW_MAX_MESSAGES) {
                batch.clear();
                assert_eq!(player.next(&mut batch, RING_CAPACITY).await, None);
                got += batch.len();
            }
        }
        assert_eq!(got, RING_CAPACITY * 2, "nothing lost to the ring");
        assert_eq!(src.lags.load(Ordering::Relaxed), 0);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    /// A crowd is spread over windows of at most [`WINDOW_PLAYERS`] each, whose closes are spread
    /// over the period; a few players share one.
    #[tokio::test(start_paused = true)]
    async fn a_crowd_is_spread_over_offset_windows() {
        let hub = Arc::new(Hub::default());
        let src = hub.publish(&key(), "p", "", settings()).unwrap();
        let period = Duration::from_millis(400);
        let mut players: Vec<_> =
            (0..3 * WINDOW_PLAYERS + 8).map(|_| Consumer::attach(&hub, &key(), settings()).0).collect();
        players.iter_mut().for_each(|p| p.merge_every(period));
        let windows = src.lock().windows.clone();
        let mut sizes: Vec<_> = windows.iter().map(|w| w.seats.load(Ordering::Relaxed)).collect();
        sizes.sort();
        assert_eq!(sizes, vec![8, WINDOW_PLAYERS, WINDOW_PLAYERS, WINDOW_PLAYERS]);
        let offsets: Vec<_> = windows.iter().map(|w| w.offset().as_millis()).collect();
        assert_eq!(offsets, vec![0, 200, 100, 300]);
        // Each window closes once a period, at its own offset.
        for i in [0, 1, 2, 3].map(|n| n * WINDOW_PLAYERS) {
            let mut batch = Batch::default();
            assert_eq!(players[i].next(&mut batch, 16).await, None, "joining takes what waits");
        }
        src.push(Track::Audio, 0, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for i in [3, 2, 1, 0].map(|n| n * WINDOW_PLAYERS) {
            let mut p = players.remove(i);
            tasks.push(tokio::spawn(async move {
                let mut batch = Batch::default();
                assert_eq!(p.next(&mut batch, 16).await, None);
                assert_eq!(batch.len(), 1);
                (start.elapsed().as_millis(), p)
            }));
        }
        let mut closes = Vec::new();
        for t in tasks {
            let (ms, p) = t.await.unwrap();
            closes.push(ms);
            players.push(p);
        }
        assert_eq!(closes, vec![300, 100, 200, 400], "one close a window, at its own offset");
        // Players leave: emptied windows go; a newcomer joins the emptiest.
        players.truncate(10);
        // A timer resting on a stale wake-up notices within a period.
        tokio::time::sleep(period * 2).await;
        let left: Vec<_> = src.lock().windows.iter().map(|w| (w.slot, w.seats.load(Ordering::Relaxed))).collect();
        assert!(left.len() < 4, "{left:?}");
        let (mut late, _) = Consumer::attach(&hub, &key(), settings());
        late.merge_every(period);
        assert!(src.lock().windows.len() <= 2);
    }

    /// A window's players are handed the run it read at its close, one for them all. A player
    /// that joins while messages flow reads its own place in the ring until the window's runs
    /// reach back to it, and gets every message once, in order.
    #[tokio::test(start_paused = true)]
    async fn a_windows_players_share_its_runs_and_a_joiner_misses_nothing() {
        let hub = Arc::new(Hub::default());
        let s = SourceSettings { gop_cache: false, ..settings() };
        let src = hub.publish(&key(), "p", "", s).unwrap();
        let audio = |ts: u32| src.push(Track::Audio, ts, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
        let stamps = |b: &Batch| b.packets().iter().map(|p| p.dts).collect::<Vec<_>>();
        let period = Duration::from_millis(100);
        let (mut a, _) = Consumer::attach(&hub, &key(), s);
        a.merge_every(period);
        let mut batch_a = Batch::default();
        assert_eq!(a.next(&mut batch_a, 16).await, None);
        audio(0);
        audio(20);
        // b attaches between two closes and joins the window a message later.
        let (mut b, initial) = Consumer::attach(&hub, &key(), s);
        assert!(initial.is_empty());
        audio(40);
        b.merge_every(period);
        let mut batch_b = Batch::default();
        assert_eq!(b.next(&mut batch_b, 16).await, None, "joining takes its own ring place at once");
        assert_eq!(stamps(&batch_b), [40]);
        assert!(b.rx.is_none(), "the window's runs reach back to it: it lets go of its ring place");
        audio(60);
        let (mut got_a, mut got_b) = (vec![], stamps(&batch_b));
        for _ in 0..2 {
            batch_a.clear();
            batch_b.clear();
            assert_eq!(a.next(&mut batch_a, 16).await, None);
            assert_eq!(b.next(&mut batch_b, 16).await, None);
            got_a.extend(stamps(&batch_a));
            got_b.extend(stamps(&batch_b));
            audio(80);
            audio(100);
        }
        assert_eq!(got_a, [0, 20, 40, 60, 80, 100]);
        assert_eq!(got_b, [40, 60, 80, 100], "every message once");
        assert!(
            std::ptr::eq(batch_a.packets(), batch_b.packets()),
            "players that take all of a run write the window's own"
        );
    }

    /// A window keeps its runs until its slowest player took them, and a ring's worth at most: a
    /// player further behind skips to the next keyframe while the others lose nothing, and what
    /// every player took is let go.
    #[tokio::test(start_paused = true)]
    async fn a_window_lets_go_of_taken_runs_and_a_slow_player_skips_ahead() {
        let hub = Arc::new(Hub::default());
        let src = hub.publish(&key(), "p", "", settings()).unwrap();
        src.push(Track::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1])).unwrap();
        let (mut slow, _) = Consumer::attach(&hub, &key(), settings());
        let (mut fast, _) = Consumer::attach(&hub, &key(), settings());
        // A long period: the window closes only when full, every WINDOW_MAX_MESSAGES.
        let period = Duration::from_secs(60);
        let mut batch = Batch::default();
        for p in [&mut slow, &mut fast] {
            p.merge_every(period);
            assert_eq!(p.next(&mut batch, 16).await, None);
            assert!(batch.is_empty() && p.rx.is_none());
        }
        let window = src.lock().windows[0].clone();
        let mut fast_got = 0;
        for i in 0..(2 * RING_CAPACITY as u32) {
            src.push(Track::Video, 40 * (i + 1), video(i % 100 == 0, 0)).unwrap();
            if (i as usize + 1).is_multiple_of(WINDOW_MAX_MESSAGES) {
                batch.clear();
                assert_eq!(fast.next(&mut batch, 16).await, None);
                fast_got += batch.len();
                assert!(!fast.more());
                assert!(window.feed().held <= RING_CAPACITY + WINDOW_MAX_MESSAGES, "bounded by the ring");
            }
        }
        assert_eq!(fast_got, 2 * RING_CAPACITY, "the fast player lost nothing");
        assert_eq!(src.lags.load(Ordering::Relaxed), 0);
        // The slow one is more than a ring behind: headers, then from the next keyframe.
        let mut got = vec![];
        batch.clear();
        let mut sig = slow.next(&mut batch, 16).await;
        loop {
            assert_eq!(sig, None);
            got.extend(batch.packets().iter().cloned());
            batch.clear();
            if !slow.more() {
                break;
            }
            sig = slow.take_waiting(&mut batch, 16);
        }
        assert_eq!(src.lags.load(Ordering::Relaxed), 1);
        assert!(got[0].is_config(), "the stream's headers first");
        let first = got.iter().find(|f| !f.is_config()).unwrap();
        assert!(first.keyframe, "it resumes on a keyframe");
        assert_eq!(got.last().unwrap().dts, 40 * 2 * RING_CAPACITY as u32, "up to the last message");
        // Both took everything: the next close lets go of all but its own run.
        src.push(Track::Video, 41 * 2 * RING_CAPACITY as u32, video(false, 1)).unwrap();
        window.close_now();
        assert_eq!(window.feed().held, 1);
    }

    /// Players joining, merging, taking and leaving at random points between pushes and closes:
    /// each gets every message from its join on, once and in order, whether from its own ring
    /// place or its window's runs.
    #[tokio::test(start_paused = true)]
    async fn window_players_get_every_message_once_whatever_the_interleaving() {
        use rand::{Rng, SeedableRng};
        for seed in 0..20u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let hub = Arc::new(Hub::default());
            let s = SourceSettings { gop_cache: false, ..settings() };
            let src = hub.publish(&key(), "p", "", s).unwrap();
            let period = Duration::from_secs(3600);
            // (consumer, whether it joined a window, the first stamp it must get, what it got)
            let mut players: Vec<(Consumer, bool, u32, Vec<u32>)> = Vec::new();
            let mut pushed = 0u32;
            let mut batch = Batch::default();
            let take = |p: &mut Consumer, got: &mut Vec<u32>, batch: &mut Batch| loop {
                assert_eq!(p.take_waiting(batch, 7), None);
                got.extend(batch.packets().iter().map(|f| f.dts));
                batch.clear();
                if !p.more() {
                    break;
                }
            };
            for _ in 0..600 {
                match rng.gen_range(0..10) {
                    0..=3 => {
                        // Few enough between two takes that no one falls a ring behind.
                        src.push(Track::Audio, pushed, Bytes::from_static(&[0xAF, 1, 9])).unwrap();
                        pushed += 1;
                    }
                    4 if players.len() < 6 => {
                        let (c, initial) = Consumer::attach(&hub, &key(), s);
                        assert!(initial.is_empty());
                        players.push((c, false, pushed, vec![]));
                    }
                    5 if !players.is_empty() => {
                        let i = rng.gen_range(0..players.len());
                        players[i].0.merge_every(period);
                        players[i].1 = true;
                    }
                    6 => {
                        for w in src.lock().windows.clone() {
                            w.close_now();
                        }
                    }
                    7 if players.len() > 3 => {
                        let (c, _, from, got) = players.swap_remove(rng.gen_range(0..players.len()));
                        assert_eq!(got, (from..from + got.len() as u32).collect::<Vec<_>>(), "seed {seed}");
                        drop(c);
                    }
                    _ => {}
                }
                // Takes stay within a ring's reach of the pushes.
                for (c, _, _, got) in players.iter_mut() {
                    if rng.gen_bool(0.3) || (pushed as usize).is_multiple_of(RING_CAPACITY / 4) {
                        take(c, got, &mut batch);
                    }
                }
            }
            for w in src.lock().windows.clone() {
                w.close_now();
            }
            for (c, merged, from, got) in players.iter_mut() {
                take(c, got, &mut batch);
                assert_eq!(*got, (*from..pushed).collect::<Vec<_>>(), "seed {seed}: merged {merged}");
            }
            assert_eq!(src.lags.load(Ordering::Relaxed), 0);
        }
    }
}
