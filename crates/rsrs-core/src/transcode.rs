//! Audio for players that cannot take the stream's own codec.
//! - WebRTC carries Opus only, so a stream with AAC (RTMP, SRT) gets an Opus feed: one
//!   transcoder per stream, started by its first WebRTC player and stopped with its last, on a
//!   thread of its own so a slow codec never delays another stream's media.
//! - A WHIP publisher's Opus becomes AAC for the stream ([`OpusToAacPush`], resting while no
//!   consumer takes the ring's audio). Its original Opus is the stream's feed instead, for
//!   WebRTC players and Enhanced RTMP players that take Opus.

use crate::hub::{Consumer, Elementary, Signal, Source, SourceSettings, StreamKey};
use crate::media::{Codec, Content, MediaPacket, Track};
use bytes::Bytes;
use rsrs_audio::{AacToOpus, AudioError, OpusToAac};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Opus packets a feed holds for its slowest player (5 s of 20 ms frames); a player further
/// behind skips ahead, as on the stream's own ring.
const FEED_CAPACITY: usize = 256;
/// Packets waiting for a transcoder thread; beyond this the newest are dropped (and counted),
/// never the stream's other work held up.
const WORKER_QUEUE: usize = 512;

/// The Opus version of one stream's audio, shared by its WebRTC players.
pub struct OpusFeed {
    tx: broadcast::Sender<Arc<MediaPacket>>,
    /// Ends the transcoder when the last player lets go.
    stop: CancellationToken,
    /// Why there is no Opus, when the stream's audio cannot be transcoded (told to each player).
    pub failed: Mutex<Option<String>>,
    /// A publisher's own Opus (not a transcoder's), and its OpusHead.
    passthrough: bool,
    config: Mutex<Option<Arc<MediaPacket>>>,
}

impl OpusFeed {
    fn new(passthrough: bool) -> OpusFeed {
        OpusFeed {
            tx: broadcast::channel(FEED_CAPACITY).0,
            stop: CancellationToken::new(),
            failed: Mutex::new(None),
            passthrough,
            config: Mutex::new(None),
        }
    }

    /// The Opus configuration (OpusHead) players that need one get first.
    pub fn config(&self) -> Option<Arc<MediaPacket>> {
        self.config.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_config(&self, p: Arc<MediaPacket>) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    }

    /// Cancelled when the feed ends (its publisher left, or its last player).
    pub fn ended(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<MediaPacket>> {
        self.tx.subscribe()
    }

    /// Hands an Opus packet to the feed's players.
    pub fn send(&self, p: Arc<MediaPacket>) {
        let _ = self.tx.send(p);
    }

    /// Ends the feed: its publisher left. Its players get the next one when the stream's
    /// audio configuration comes again.
    pub fn end(&self) {
        self.stop.cancel();
    }

    fn fail(&self, why: String) {
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }
}

impl Drop for OpusFeed {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The live Opus feeds, by stream. Holds them weakly: a feed lives as long as a player or its
/// publisher holds it.
#[derive(Default)]
pub struct OpusFeeds {
    feeds: Mutex<HashMap<StreamKey, Weak<OpusFeed>>>,
}

impl OpusFeeds {
    /// The map, without the feeds that have ended (so it holds only live streams' keys).
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Weak<OpusFeed>>> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.retain(|_, f| f.strong_count() > 0);
        feeds
    }

    /// The stream's Opus feed, starting a transcoder from its AAC if none runs.
    pub fn subscribe(&self, hub: &Arc<crate::hub::Hub>, source: &Source) -> Arc<OpusFeed> {
        let key = &source.key;
        let mut feeds = self.live();
        if let Some(feed) = feeds.get(key).and_then(Weak::upgrade).filter(|f| !f.stop.is_cancelled()) {
            return feed;
        }
        let feed = Arc::new(OpusFeed::new(false));
        feeds.insert(key.clone(), Arc::downgrade(&feed));
        drop(feeds);
        start_aac_to_opus(hub, key, source.settings(), &feed);
        feed
    }

    /// A publisher with Opus of its own offers it as the stream's feed (replacing a transcoder).
    pub fn offer(&self, key: &StreamKey) -> Arc<OpusFeed> {
        let feed = Arc::new(OpusFeed::new(true));
        let mut feeds = self.live();
        if let Some(old) = feeds.insert(key.clone(), Arc::downgrade(&feed)).and_then(|w| w.upgrade()) {
            old.stop.cancel();
        }
        feed
    }

    /// The stream's publisher's own Opus, while it publishes.
    pub fn passthrough(&self, key: &StreamKey) -> Option<Arc<OpusFeed>> {
        self.live().get(key).and_then(Weak::upgrade).filter(|f| f.passthrough && !f.stop.is_cancelled())
    }
}

/// Which way a transcoder goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AacToOpus = 0,
    OpusToAac = 1,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::AacToOpus, Direction::OpusToAac];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::AacToOpus => "aac_to_opus",
            Direction::OpusToAac => "opus_to_aac",
        }
    }
}

static RUNNING: [AtomicI64; 2] = [AtomicI64::new(0), AtomicI64::new(0)];

/// Transcoder threads running now, for the exporter.
pub fn running(d: Direction) -> i64 {
    RUNNING[d as usize].load(Ordering::Relaxed)
}

/// Runs `work` on each packet on a thread of its own; the returned sender never blocks. The
/// thread ends when the sender is dropped.
fn spawn_worker(
    direction: Direction,
    mut work: impl FnMut(Arc<MediaPacket>) + Send + 'static,
) -> std::io::Result<SyncSender<Arc<MediaPacket>>> {
    let (tx, rx) = sync_channel::<Arc<MediaPacket>>(WORKER_QUEUE);
    std::thread::Builder::new().name(direction.as_str().replace('_', "-")).spawn(move || {
        RUNNING[direction as usize].fetch_add(1, Ordering::Relaxed);
        while let Ok(p) = rx.recv() {
            work(p);
        }
        RUNNING[direction as usize].fetch_sub(1, Ordering::Relaxed);
    })?;
    Ok(tx)
}

/// Hands `p` to a worker, dropping it (counted in `dropped`) if the worker is that far behind.
fn offer_to(worker: &SyncSender<Arc<MediaPacket>>, p: Arc<MediaPacket>, dropped: &AtomicU64, what: &str) -> bool {
    match worker.try_send(p) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            if dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                warn!("the {what} transcoder is {WORKER_QUEUE} packets behind; audio is dropped until it catches up");
            }
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

/// Reports a codec error: the first at once, then one line per 100.
fn report(errors: &mut u64, stream: &str, what: &str, e: &AudioError) {
    *errors += 1;
    if *errors == 1 || (*errors).is_multiple_of(100) {
        warn!(stream, errors = *errors, "{what}: {e}");
    }
}

fn start_aac_to_opus(hub: &Arc<crate::hub::Hub>, key: &StreamKey, settings: SourceSettings, feed: &Arc<OpusFeed>) {
    let stream = key.url();
    let out = Arc::downgrade(feed);
    let mut transcoder: Option<AacToOpus> = None;
    let mut errors = 0u64;
    let name = stream.clone();
    let worker = spawn_worker(Direction::AacToOpus, move |p| {
        let Some(feed) = out.upgrade() else { return };
        match (p.codec, p.content) {
            (Codec::Aac, Content::Config) => match AacToOpus::new(p.data()) {
                Ok(t) => {
                    info!(stream = %name, "transcoding AAC to Opus for WebRTC players");
                    *feed.failed.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    transcoder = Some(t);
                }
                Err(e) => {
                    warn!(stream = %name, "WebRTC players get no audio: cannot transcode this AAC: {e}");
                    feed.fail(format!("cannot transcode the stream's AAC to Opus: {e}"));
                    transcoder = None;
                }
            },
            (Codec::Aac, Content::Frame) => {
                let Some(t) = transcoder.as_mut() else { return };
                match t.push(p.data(), p.dts) {
                    Ok(frames) => {
                        for f in frames {
                            if let Ok(p) = MediaPacket::from_elementary(
                                Track::Audio,
                                Codec::Opus,
                                Content::Frame,
                                f.dts_ms,
                                0,
                                false,
                                Bytes::from(f.data),
                            ) {
                                feed.send(Arc::new(p));
                            }
                        }
                    }
                    Err(e) => report(&mut errors, &name, "AAC to Opus", &e),
                }
            }
            _ => {}
        }
    });
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            warn!(stream = %stream, "no thread for the AAC to Opus transcoder: {e}");
            feed.fail(format!("no thread for the transcoder: {e}"));
            return;
        }
    };
    let (mut consumer, initial) = Consumer::attach(hub, key, settings);
    let stop = feed.stop.clone();
    tokio::spawn(async move {
        let dropped = AtomicU64::new(0);
        let mut batch = initial;
        loop {
            for p in batch.drain(..) {
                if p.track == Track::Audio && !offer_to(&worker, p, &dropped, "AAC to Opus") {
                    return;
                }
            }
            let sig = tokio::select! {
                _ = stop.cancelled() => break,
                sig = consumer.recv(&mut batch, 64) => sig,
            };
            if matches!(sig, Some(Signal::Closed) | Some(Signal::Failed(_))) {
                break;
            }
        }
        debug!(stream = %stream, "AAC to Opus transcoder stopped");
    });
}

/// Opus from a WebRTC publisher to AAC for the stream: RTMP, HTTP-FLV, HLS and DVR take AAC.
/// Runs on a thread of its own and pushes into `source` from there.
pub struct OpusToAacPush {
    worker: SyncSender<Arc<MediaPacket>>,
    dropped: AtomicU64,
}

impl OpusToAacPush {
    /// Fails (with the reason) when Opus cannot be transcoded here (no libopus).
    pub fn start(source: Arc<Source>) -> Result<OpusToAacPush, AudioError> {
        let mut t = OpusToAac::new()?;
        let stream = source.key.url();
        let asc = Bytes::copy_from_slice(t.asc());
        let mut config_sent = false;
        let mut errors = 0u64;
        let mut resting = false;
        let worker = spawn_worker(Direction::OpusToAac, move |p| {
            // Only WebRTC players (which take the Opus itself): no one needs AAC now. The
            // timeline starts again when someone does. The configuration goes out first, so
            // the stream says what its audio is.
            if config_sent && !source.ring_audio_wanted() {
                if !resting {
                    resting = true;
                    info!(stream, "no player needs the AAC: the Opus to AAC transcoder rests");
                }
                return;
            }
            if std::mem::take(&mut resting) {
                info!(stream, "a player needs the AAC: the Opus to AAC transcoder resumes");
            }
            let frames = match t.push(p.data(), p.dts) {
                Ok(f) => f,
                Err(e) => return report(&mut errors, &stream, "Opus to AAC", &e),
            };
            for f in frames {
                if !config_sent {
                    config_sent = true;
                    let config = Elementary {
                        track: Track::Audio,
                        codec: Codec::Aac,
                        content: Content::Config,
                        dts: f.dts_ms,
                        cts: 0,
                        keyframe: false,
                        data: asc.clone(),
                    };
                    if let Err(e) = source.push_elementary(config) {
                        warn!(stream, "the transcoded AAC was refused: {e}");
                    }
                }
                let frame = Elementary {
                    track: Track::Audio,
                    codec: Codec::Aac,
                    content: Content::Frame,
                    dts: f.dts_ms,
                    cts: 0,
                    keyframe: false,
                    data: Bytes::from(f.data),
                };
                if let Err(e) = source.push_elementary(frame) {
                    debug!(stream, "the transcoded AAC was refused: {e}");
                }
            }
        })
        .map_err(|e| AudioError::Codec(format!("no thread for the Opus to AAC transcoder: {e}")))?;
        Ok(OpusToAacPush { worker, dropped: AtomicU64::new(0) })
    }

    /// Hands one Opus packet (on the publisher's timeline, in ms) to the transcoder.
    pub fn push(&self, p: Arc<MediaPacket>) {
        offer_to(&self.worker, p, &self.dropped, "Opus to AAC");
    }
}
