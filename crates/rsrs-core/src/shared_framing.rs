//! Framed bytes shared by the players of one merge window that are sent the same messages on the
//! same timeline.
//!
//! A player's framing carries its own timestamps: its timeline starts at its first frame, as
//! SRS's `time_jitter full` gives each player. So each player frames its batch itself, and the
//! kernel gathers a header and a body per message: a `writev` of about 50 slices a window for a
//! 1.6 Mb/s stream, where a single buffer costs the kernel about a fifth less.
//!
//! Players that joined within the same GOP start on the same frame, so their timelines are the
//! same. When a second of them in a window is sent the same messages as a first, it frames the
//! batch once into one buffer, and every later one writes that buffer as it is. A crowd that
//! arrives together (an event's start, players coming back after an edge restart) is where this
//! counts. Players that joined at different times frame their own, as before, at the cost of one
//! lookup a window. A high-bitrate stream's batch, over `MAX_SHARED_BYTES`, is not copied at all.

use crate::hub::ConsumerClock;
use crate::media::MediaPacket;
use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// Batches a window remembers between two closes. The first sight of a batch is only noted (its
/// player frames its own), so a window of players on different timelines holds no bytes.
const MAX_NOTED: usize = 16;
/// Framed buffers a window holds between two closes: a few groups of players on one timeline.
const MAX_FRAMED: usize = 4;
/// Smaller batches are not worth a lookup.
const MIN_BATCH: usize = 2;
/// Larger batches (a high-bitrate stream: 875 KB a window at 20 Mb/s) are not copied. Such a copy,
/// one per timeline and window, is out of the cache by the time its players write it, and a
/// fresh mapping each time; the packets' own bodies, which every player writes from otherwise,
/// are one copy for all. Big bodies also make a gathered write's slices few for its bytes.
const MAX_SHARED_BYTES: usize = 128 * 1024;

/// One window's batches since its last close.
#[derive(Default)]
pub(crate) struct FramedBatches {
    noted: Mutex<Vec<Noted>>,
}

struct Noted {
    /// The protocol's byte layout (see [`SharedFraming::framed`]).
    form: u64,
    /// The timeline: the stream time that is zero for these players.
    base: u32,
    /// The messages, held so their identity cannot be reused while noted.
    packets: Vec<Arc<MediaPacket>>,
    bytes: Option<Bytes>,
}

impl std::fmt::Debug for FramedBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `try_lock`: printing while a framing holds the lock must not deadlock.
        f.debug_struct("FramedBatches").field("noted", &self.noted.try_lock().map(|n| n.len()).ok()).finish()
    }
}

impl FramedBatches {
    /// At a window's close: the next batches are new messages.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Noted>> {
        // The list holds no invariant a panic elsewhere could break.
        self.noted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A player's handle on its merge window's shared framing; empty for a player without a window
/// (`min_latency on`, the first write, forwarders).
#[derive(Clone, Default)]
pub struct SharedFraming(Option<Arc<FramedBatches>>);

impl SharedFraming {
    pub(crate) fn of(window: Arc<FramedBatches>) -> SharedFraming {
        SharedFraming(Some(window))
    }

    /// `batch` framed in one buffer by `make` for a player on `clock`'s timeline, when another
    /// player of the window was sent the same messages on the same timeline; `None` means the
    /// caller frames its own. `form` names the byte layout `make` writes (protocol, chunk size,
    /// stream id): different layouts must have different forms.
    ///
    /// On `Some`, `clock` has been advanced over the batch as stamping each message would.
    /// `make` is given a copy of the clock to stamp with.
    pub fn framed(
        &self,
        form: u64,
        batch: &[Arc<MediaPacket>],
        clock: &mut ConsumerClock,
        make: impl FnOnce(&[Arc<MediaPacket>], &mut ConsumerClock) -> Bytes,
    ) -> Option<Bytes> {
        let window = self.0.as_ref()?;
        // Before its first frame a player's timeline is not fixed yet.
        let base = clock.base()?;
        if batch.len() < MIN_BATCH || batch.iter().map(|p| p.data().len()).sum::<usize>() > MAX_SHARED_BYTES {
            return None;
        }
        let mut noted = window.lock();
        let framed = noted.iter().filter(|n| n.bytes.is_some()).count();
        let Some(n) = noted.iter_mut().find(|n| {
            n.form == form
                && n.base == base
                && n.packets.len() == batch.len()
                && n.packets.iter().zip(batch).all(|(a, b)| Arc::ptr_eq(a, b))
        }) else {
            if noted.len() < MAX_NOTED {
                noted.push(Noted { form, base, packets: batch.to_vec(), bytes: None });
            }
            return None;
        };
        if n.bytes.is_none() {
            if framed >= MAX_FRAMED {
                return None;
            }
            let mut copy = clock.clone();
            n.bytes = Some(make(batch, &mut copy));
        }
        let bytes = n.bytes.clone();
        drop(noted);
        for f in batch {
            clock.stamp(f);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Track;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn packets(from: u32, n: u32) -> Vec<Arc<MediaPacket>> {
        (from..from + n)
            .map(|i| Arc::new(MediaPacket::from_flv(Track::Audio, i * 20, Bytes::from_static(&[0xaf, 1, 7])).unwrap()))
            .collect()
    }

    /// The timestamps a clock gives, as bytes, so a framing can be compared.
    fn stamps(batch: &[Arc<MediaPacket>], clock: &mut ConsumerClock) -> Bytes {
        batch.iter().flat_map(|f| clock.stamp(f).to_be_bytes()).collect::<Vec<u8>>().into()
    }

    fn started(at: &Arc<MediaPacket>) -> ConsumerClock {
        let mut c = ConsumerClock::default();
        c.stamp(at);
        c
    }

    #[test]
    fn the_second_player_on_a_timeline_frames_once_for_the_rest() {
        let shared = SharedFraming::of(Arc::default());
        let earlier = packets(0, 1);
        let batch = packets(1, 5);
        let made = AtomicUsize::new(0);
        let make = |b: &[Arc<MediaPacket>], c: &mut ConsumerClock| {
            made.fetch_add(1, Ordering::Relaxed);
            stamps(b, c)
        };
        let mut first = started(&earlier[0]);
        assert!(shared.framed(1, &batch, &mut first, make).is_none(), "the first sight is only noted");
        let own = stamps(&batch, &mut first);
        for _ in 0..3 {
            let mut next = started(&earlier[0]);
            let got = shared.framed(1, &batch, &mut next, make).expect("shared");
            assert_eq!(got, own, "the same bytes the first player framed for itself");
            assert_eq!(next.position(), first.position(), "the clock moved over the batch");
        }
        assert_eq!(made.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn other_timelines_messages_or_forms_are_not_shared() {
        let shared = SharedFraming::of(Arc::default());
        let early = packets(0, 2);
        let batch = packets(2, 4);
        let make = |b: &[Arc<MediaPacket>], c: &mut ConsumerClock| stamps(b, c);
        let mut a = started(&early[0]);
        assert!(shared.framed(1, &batch, &mut a, make).is_none());
        // Another timeline (joined a frame later): its own framing.
        let mut later = started(&early[1]);
        assert!(shared.framed(1, &batch, &mut later, make).is_none());
        // Another layout of the same messages.
        let mut b = started(&early[0]);
        assert!(shared.framed(2, &batch, &mut b, make).is_none());
        // Equal messages but not the same ones (another stream, another window's copy).
        let mut c = started(&early[0]);
        assert!(shared.framed(1, &packets(2, 4), &mut c, make).is_none());
        // One message fewer.
        let mut d = started(&early[0]);
        assert!(shared.framed(1, &batch[..3], &mut d, make).is_none());
        // A player whose timeline has not started.
        assert!(shared.framed(1, &batch, &mut ConsumerClock::default(), make).is_none());
        // The same as the first, at last.
        let mut e = started(&early[0]);
        assert_eq!(shared.framed(1, &batch, &mut e, make), Some(stamps(&batch, &mut started(&early[0]))));
    }

    #[test]
    fn a_big_batch_is_never_copied() {
        let shared = SharedFraming::of(Arc::default());
        let earlier = packets(0, 1);
        // Two AAC frames of a byte over half the bound each (the 2-byte tag header aside).
        let big = |ts: u32| {
            let mut body = vec![0xaf, 1];
            body.resize(2 + MAX_SHARED_BYTES / 2 + 1, 7);
            Arc::new(MediaPacket::from_flv(Track::Audio, ts, body.into()).unwrap())
        };
        let batch = vec![big(20), big(40)];
        let make = |_: &[Arc<MediaPacket>], _: &mut ConsumerClock| -> Bytes { panic!("copied a big batch") };
        for _ in 0..3 {
            assert!(shared.framed(1, &batch, &mut started(&earlier[0]), make).is_none());
        }
        // At the bound it is shared again.
        let smaller = |ts: u32| {
            let mut body = vec![0xaf, 1];
            body.resize(2 + MAX_SHARED_BYTES / 2, 7);
            Arc::new(MediaPacket::from_flv(Track::Audio, ts, body.into()).unwrap())
        };
        let batch = vec![smaller(20), smaller(40)];
        let make = |b: &[Arc<MediaPacket>], c: &mut ConsumerClock| stamps(b, c);
        assert!(shared.framed(1, &batch, &mut started(&earlier[0]), make).is_none(), "noted");
        assert!(shared.framed(1, &batch, &mut started(&earlier[0]), make).is_some());
    }

    #[test]
    fn a_close_forgets_and_the_held_bytes_are_bounded() {
        let window: Arc<FramedBatches> = Arc::default();
        let shared = SharedFraming::of(window.clone());
        let make = |b: &[Arc<MediaPacket>], c: &mut ConsumerClock| stamps(b, c);
        let batch = packets(100, 3);
        let starts = packets(0, 40);
        // Many timelines, each seen twice: only MAX_FRAMED get bytes, only MAX_NOTED are noted.
        let mut shared_count = 0;
        for s in &starts {
            for _ in 0..2 {
                if shared.framed(1, &batch, &mut started(s), make).is_some() {
                    shared_count += 1;
                }
            }
        }
        assert_eq!(shared_count, MAX_FRAMED);
        assert_eq!(window.lock().len(), MAX_NOTED);
        window.clear();
        assert!(window.lock().is_empty());
        assert!(shared.framed(1, &batch, &mut started(&starts[0]), make).is_none(), "noted anew after a close");
        // No window: never shared.
        let none = SharedFraming::default();
        for _ in 0..3 {
            assert!(none.framed(1, &batch, &mut started(&starts[0]), make).is_none());
        }
    }
}
