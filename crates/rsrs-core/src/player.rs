//! One player loop for every protocol that sends a stream to one client (RTMP, HTTP-FLV; SRT and
//! WebRTC next): the merge window, batching, skip-ahead (in the consumer), pause, kicks and the
//! stream's end behave the same whatever the wire.
//!
//! A protocol implements [`PlayerWire`]: how a batch is written, what the client says, and what
//! the player does when the publisher leaves. [`run`] does the rest.

use crate::hub::{Batch, Consumer, ConsumerClock, Signal};
use crate::media::MediaPacket;
use crate::shared_framing::SharedFraming;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Most frames written in one batch.
pub const MAX_BATCH: usize = 256;

/// What a client said while playing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSays {
    /// Nothing that changes the play (answered by the wire if it needed an answer).
    Nothing,
    /// Stop playing (RTMP `closeStream`, a closed HTTP connection).
    Stop,
    Pause,
    Resume,
}

/// What a player does when its stream's publisher leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterUnpublish {
    /// Stay and wait for a republish (RTMP, as SRS).
    Wait,
    /// End the play (HTTP-FLV's response ends, as SRS).
    End,
}

/// Why [`run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayEnd {
    /// The client stopped.
    ClientStopped,
    /// Kicked (the API, a refused publisher's cleanup).
    Kicked,
    /// The publisher left and this wire ends with it.
    Unpublished,
    /// The stream is gone.
    Closed,
    /// The stream cannot be had; the reason is for the client.
    Failed(Arc<str>),
    /// Nothing was sent before the wire's give-up time.
    GaveUp,
    /// The wire says it has played enough (a requested duration).
    Done,
}

/// How one protocol writes a stream to one client.
pub trait PlayerWire {
    type Error;
    /// What arrives from the client (an RTMP message, bytes on an HTTP connection).
    type Input;

    /// Writes `batch` (stamping frames with `clock`). `shared` is the merge window's framing
    /// shared by players on one timeline, for wires whose framing can use it.
    fn send(
        &mut self,
        batch: &[Arc<MediaPacket>],
        clock: &mut ConsumerClock,
        shared: &SharedFraming,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Waits for the client's next input. Must be cancel-safe: it races the stream, so it only
    /// reads; answering is [`handle`](Self::handle)'s, which always runs to its end.
    fn input(&mut self) -> impl Future<Output = Result<Self::Input, Self::Error>> + Send;

    /// Acts on an input (answering it if the protocol wants) and says what it means for the play.
    fn handle(&mut self, input: Self::Input) -> impl Future<Output = Result<ClientSays, Self::Error>> + Send;

    /// What the player does when the publisher leaves.
    fn after_unpublish(&mut self) -> AfterUnpublish;

    /// Until when the player may wait for its first bytes; `None`: no limit.
    fn give_up_at(&self) -> Option<Instant> {
        None
    }

    /// Whether the player has had what it asked for.
    fn done(&self, _clock: &ConsumerClock) -> bool {
        false
    }
}

/// Plays `consumer` to `wire`, `initial` first, merging writes over `merge` (`mw_latency`): the
/// player wakes at the close of the stream's shared merge window and writes what came meanwhile.
/// Until the client stops, the stream ends for this wire, or `kill` is cancelled.
pub async fn run<W: PlayerWire>(
    wire: &mut W,
    consumer: &mut Consumer,
    initial: Vec<Arc<MediaPacket>>,
    merge: Duration,
    kill: &CancellationToken,
) -> Result<PlayEnd, W::Error> {
    let mut batch = Batch::from(initial);
    let mut clock = ConsumerClock::default();
    if !batch.is_empty() {
        wire.send(batch.packets(), &mut clock, &SharedFraming::default()).await?;
        batch.clear();
    }
    consumer.merge_every(merge);
    let shared = consumer.shared_framing();
    // Made once, and two atomics a poll: the token's own future would take two locks each time.
    let killed = crate::kick::Kick::new(kill);
    tokio::pin!(killed);
    loop {
        if wire.done(&clock) {
            return Ok(PlayEnd::Done);
        }
        let give_up = wire.give_up_at();
        // Media first: a wake-up is nearly always the window closing, and the other branches'
        // polls are then skipped. A kick or the client's word waits one write at most.
        let sig = tokio::select! {
            biased;
            mut sig = consumer.next(&mut batch, MAX_BATCH) => {
                // More can be waiting than a batch (a slow player's window runs): write until
                // it is all taken.
                loop {
                    wire.send(batch.packets(), &mut clock, &shared).await?;
                    batch.clear();
                    if sig.is_some() || !consumer.more() {
                        break sig;
                    }
                    sig = consumer.take_waiting(&mut batch, MAX_BATCH);
                }
            }
            _ = &mut killed => return Ok(PlayEnd::Kicked),
            input = wire.input() => {
                match wire.handle(input?).await? {
                    ClientSays::Stop => return Ok(PlayEnd::ClientStopped),
                    ClientSays::Pause => consumer.paused = true,
                    // Headers first, then the next keyframe, so decoders pick up again.
                    ClientSays::Resume => consumer.resume(batch.own()),
                    ClientSays::Nothing => {}
                }
                None
            }
            _ = async { tokio::time::sleep_until(give_up.unwrap_or_else(Instant::now)).await }, if give_up.is_some() => {
                return Ok(PlayEnd::GaveUp);
            }
        };
        match sig {
            None => {}
            Some(Signal::Unpublished) if wire.after_unpublish() == AfterUnpublish::Wait => {}
            Some(Signal::Unpublished) => return Ok(PlayEnd::Unpublished),
            Some(Signal::Closed) => return Ok(PlayEnd::Closed),
            Some(Signal::Failed(why)) => return Ok(PlayEnd::Failed(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, SourceSettings, StreamKey};
    use crate::media::Track;
    use bytes::Bytes;

    /// A wire that records what it was sent, and says what a script tells it to.
    struct Script {
        sent: Vec<u32>,
        writes: usize,
        says: tokio::sync::mpsc::UnboundedReceiver<ClientSays>,
        after: AfterUnpublish,
        give_up: Option<Instant>,
        stop_after_ms: Option<u32>,
    }

    impl PlayerWire for Script {
        type Error = std::io::Error;
        type Input = ClientSays;

        async fn send(
            &mut self,
            batch: &[Arc<MediaPacket>],
            clock: &mut ConsumerClock,
            _shared: &SharedFraming,
        ) -> std::io::Result<()> {
            if !batch.is_empty() {
                self.writes += 1;
            }
            self.sent.extend(batch.iter().map(|f| clock.stamp(f)));
            Ok(())
        }

        async fn input(&mut self) -> std::io::Result<ClientSays> {
            Ok(self.says.recv().await.unwrap_or(ClientSays::Stop))
        }

        async fn handle(&mut self, says: ClientSays) -> std::io::Result<ClientSays> {
            Ok(says)
        }

        fn after_unpublish(&mut self) -> AfterUnpublish {
            self.after
        }

        fn give_up_at(&self) -> Option<Instant> {
            self.give_up.filter(|_| self.sent.is_empty())
        }

        fn done(&self, clock: &ConsumerClock) -> bool {
            self.stop_after_ms.is_some_and(|ms| clock.position() >= ms)
        }
    }

    fn script(after: AfterUnpublish) -> (Script, tokio::sync::mpsc::UnboundedSender<ClientSays>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Script { sent: vec![], writes: 0, says: rx, after, give_up: None, stop_after_ms: None }, tx)
    }

    fn setup() -> (Arc<Hub>, StreamKey, SourceSettings) {
        let key = StreamKey { vhost: "v".into(), app: "live".into(), stream: "p".into() };
        let settings =
            SourceSettings { gop_cache: true, gop_cache_max_frames: 100, time_jitter: rsrs_config::TimeJitter::Off };
        (Arc::new(Hub::default()), key, settings)
    }

    fn audio(src: &crate::hub::Source, ts: u32) {
        src.push(Track::Audio, ts, Bytes::from_static(&[0xaf, 1, 0])).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_merged_and_the_stream_end_is_per_wire() {
        let (hub, key, settings) = setup();
        let src = hub.publish(&key, "pub", "", settings).unwrap();
        let (mut consumer, initial) = Consumer::attach(&hub, &key, settings);
        let (mut wire, _tx) = script(AfterUnpublish::End);
        for ts in 0..5 {
            audio(&src, ts * 20);
        }
        hub.unpublish(&src, "pub");
        let kill = CancellationToken::new();
        let end = run(&mut wire, &mut consumer, initial, Duration::from_millis(350), &kill).await.unwrap();
        assert_eq!(end, PlayEnd::Unpublished);
        assert_eq!(wire.sent, vec![0, 20, 40, 60, 80]);
        assert_eq!(wire.writes, 1, "five messages, one merged write");
    }

    #[tokio::test(start_paused = true)]
    async fn an_rtmp_like_wire_waits_through_a_republish_then_stops_when_told() {
        let (hub, key, settings) = setup();
        let (mut consumer, initial) = Consumer::attach(&hub, &key, settings);
        let (mut wire, tx) = script(AfterUnpublish::Wait);
        let kill = CancellationToken::new();
        let src = hub.publish(&key, "a", "", settings).unwrap();
        audio(&src, 0);
        hub.unpublish(&src, "a");
        let src = hub.publish(&key, "b", "", settings).unwrap();
        audio(&src, 1000);
        let play = tokio::spawn(async move {
            let end = run(&mut wire, &mut consumer, initial, Duration::ZERO, &kill).await.unwrap();
            (end, wire.sent)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(ClientSays::Stop).unwrap();
        let (end, sent) = play.await.unwrap();
        assert_eq!(end, PlayEnd::ClientStopped);
        assert_eq!(sent, vec![0, 1000], "both publishes, one timeline");
    }

    #[tokio::test(start_paused = true)]
    async fn give_up_kick_and_duration_end_a_play() {
        let (hub, key, settings) = setup();
        let kill = CancellationToken::new();
        // Nothing published: the wire's give-up time ends it.
        let (mut consumer, initial) = Consumer::attach(&hub, &key, settings);
        let (mut wire, _tx) = script(AfterUnpublish::End);
        wire.give_up = Some(Instant::now() + Duration::from_secs(30));
        let end = run(&mut wire, &mut consumer, initial, Duration::ZERO, &kill).await.unwrap();
        assert_eq!(end, PlayEnd::GaveUp);
        // Enough played.
        let src = hub.publish(&key, "p", "", settings).unwrap();
        let (mut consumer, initial) = Consumer::attach(&hub, &key, settings);
        let (mut wire, _tx) = script(AfterUnpublish::End);
        wire.stop_after_ms = Some(40);
        for ts in [0, 20, 40, 60] {
            audio(&src, ts);
        }
        let end = run(&mut wire, &mut consumer, initial, Duration::ZERO, &kill).await.unwrap();
        assert_eq!(end, PlayEnd::Done);
        assert!(wire.sent.contains(&40));
        // Kicked.
        let (mut consumer, initial) = Consumer::attach(&hub, &key, settings);
        let (mut wire, _tx) = script(AfterUnpublish::End);
        kill.cancel();
        assert_eq!(run(&mut wire, &mut consumer, initial, Duration::ZERO, &kill).await.unwrap(), PlayEnd::Kicked);
    }

    /// A wire that frames a batch as its timestamps, through the window's shared framing when
    /// it can.
    struct Framer {
        stamps: Vec<u8>,
        shared_writes: usize,
    }

    fn stamps(batch: &[Arc<MediaPacket>], clock: &mut ConsumerClock) -> Bytes {
        batch.iter().flat_map(|f| clock.stamp(f).to_be_bytes()).collect::<Vec<u8>>().into()
    }

    impl PlayerWire for Framer {
        type Error = std::io::Error;
        type Input = ();

        async fn send(
            &mut self,
            batch: &[Arc<MediaPacket>],
            clock: &mut ConsumerClock,
            shared: &SharedFraming,
        ) -> std::io::Result<()> {
            let bytes = match shared.framed(7, batch, clock, stamps) {
                Some(b) => {
                    self.shared_writes += 1;
                    b
                }
                None => stamps(batch, clock),
            };
            self.stamps.extend_from_slice(&bytes);
            Ok(())
        }

        async fn input(&mut self) -> std::io::Result<()> {
            std::future::pending().await
        }

        async fn handle(&mut self, _: ()) -> std::io::Result<ClientSays> {
            Ok(ClientSays::Nothing)
        }

        fn after_unpublish(&mut self) -> AfterUnpublish {
            AfterUnpublish::End
        }
    }

    /// Players of one window that joined together write one framing between them, each gets
    /// the stream on its own timeline all the same, and a player that joined later frames its
    /// own.
    #[tokio::test(start_paused = true)]
    async fn players_on_one_timeline_share_their_windows_framing() {
        let (hub, key, mut settings) = setup();
        // Without a GOP cache a player's timeline starts at the first message after it joined.
        settings.gop_cache = false;
        let src = hub.publish(&key, "pub", "", settings).unwrap();
        audio(&src, 1000);
        let kill = CancellationToken::new();
        let play = |consumer: Consumer, initial| {
            let kill = kill.clone();
            async move {
                let mut consumer = consumer;
                let mut wire = Framer { stamps: vec![], shared_writes: 0 };
                let end = run(&mut wire, &mut consumer, initial, Duration::from_millis(100), &kill).await.unwrap();
                assert_eq!(end, PlayEnd::Unpublished);
                wire
            }
        };
        let together: Vec<_> = (0..3).map(|_| Consumer::attach(&hub, &key, settings)).collect();
        let feed = async {
            for i in 1..=50 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                audio(&src, 1000 + i * 20);
                if i == 10 {
                    // Joins now, on a timeline of its own.
                    return Some(Consumer::attach(&hub, &key, settings));
                }
            }
            None
        };
        let mut players = together.into_iter().map(|(c, initial)| play(c, initial));
        let (a, b, c) = (players.next().unwrap(), players.next().unwrap(), players.next().unwrap());
        let late = async {
            let (consumer, initial) = Box::pin(feed).await.unwrap();
            let rest = async {
                for i in 11..=50 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    audio(&src, 1000 + i * 20);
                }
                hub.unpublish(&src, "pub");
            };
            let (late, ()) = tokio::join!(play(consumer, initial), rest);
            late
        };
        let (a, b, c, late) = tokio::join!(a, b, c, late);
        let expected: Vec<u8> = (0..50u32).flat_map(|i| (i * 20).to_be_bytes()).collect();
        for p in [&a, &b, &c] {
            assert_eq!(p.stamps, expected, "the whole stream from zero, in order");
        }
        // Each close: one notes, one frames for the rest; so two of three shared at most closes.
        let shared = a.shared_writes + b.shared_writes + c.shared_writes;
        assert!(shared >= 10, "only {shared} shared writes over ~10 closes");
        assert_eq!(late.shared_writes, 0, "a later joiner is on a timeline of its own");
        assert_eq!(late.stamps[..4], [0, 0, 0, 0], "its timeline starts at its own zero");
    }
}
