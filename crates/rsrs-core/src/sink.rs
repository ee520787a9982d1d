//! Sinks: writers fed like a player from a stream's ring (HLS, DVR; forwarders next), all driven
//! by one loop, [`drive`], so waiting, batching, shutdown and idle work behave the same for each.

use crate::hub::{Consumer, Signal};
use crate::media::MediaPacket;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Frames taken from the ring per wake-up.
const BATCH: usize = 256;

/// A writer of a stream's frames.
pub trait Sink {
    type Error;

    /// Takes one frame, in stream order.
    fn frame(&mut self, f: &Arc<MediaPacket>) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Asked before each batch; `false` stops the sink (a reload turned it off).
    fn still_wanted(&mut self) -> bool {
        true
    }

    /// How long the stream may be quiet before [`idle`](Self::idle) runs; `None`: never.
    fn idle_after(&self) -> Option<Duration> {
        None
    }

    /// Work for a quiet moment (a recorder flushes what it buffered).
    fn idle(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
}

/// Why [`drive`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkEnd {
    /// The publisher left.
    Unpublished,
    /// The stream is gone, or the stream cannot be had (the reason).
    Closed(Option<Arc<str>>),
    /// [`Sink::still_wanted`] said no.
    NotWanted,
    /// The server is shutting down.
    Shutdown,
}

/// Feeds `sink` from `consumer` (after `initial`, the frames the attach gave) until the stream
/// ends, the sink no longer wants it, or `shutdown` is cancelled; a sink error stops it at once.
pub async fn drive<S: Sink>(
    sink: &mut S,
    consumer: &mut Consumer,
    initial: Vec<Arc<MediaPacket>>,
    shutdown: Option<&CancellationToken>,
) -> Result<SinkEnd, S::Error> {
    let mut batch = initial;
    loop {
        let end = if batch.is_empty() {
            let idle = sink.idle_after();
            tokio::select! {
                sig = consumer.recv(&mut batch, BATCH) => sig.map(|s| match s {
                    Signal::Unpublished => SinkEnd::Unpublished,
                    Signal::Closed => SinkEnd::Closed(None),
                    Signal::Failed(why) => SinkEnd::Closed(Some(why)),
                }),
                _ = async { shutdown.unwrap_or(&CancellationToken::new()).cancelled().await }, if shutdown.is_some() => {
                    Some(SinkEnd::Shutdown)
                }
                _ = tokio::time::sleep(idle.unwrap_or(Duration::MAX)), if idle.is_some() => {
                    sink.idle().await?;
                    continue;
                }
            }
        } else {
            None
        };
        if !sink.still_wanted() {
            return Ok(SinkEnd::NotWanted);
        }
        for f in std::mem::take(&mut batch) {
            sink.frame(&f).await?;
        }
        if let Some(end) = end {
            return Ok(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, SourceSettings, StreamKey};
    use crate::media::Track;
    use bytes::Bytes;

    #[derive(Default)]
    struct Recorder {
        seen: Vec<u32>,
        idles: usize,
        wanted_batches: Option<usize>,
    }

    impl Sink for Recorder {
        type Error = String;

        async fn frame(&mut self, f: &Arc<MediaPacket>) -> Result<(), String> {
            if f.flv_body().first() == Some(&0xff) {
                return Err("bad frame".into());
            }
            self.seen.push(f.dts);
            Ok(())
        }

        fn still_wanted(&mut self) -> bool {
            match &mut self.wanted_batches {
                Some(0) => false,
                Some(n) => {
                    *n -= 1;
                    true
                }
                None => true,
            }
        }

        fn idle_after(&self) -> Option<Duration> {
            Some(Duration::from_millis(5))
        }

        async fn idle(&mut self) -> Result<(), String> {
            self.idles += 1;
            Ok(())
        }
    }

    fn setup() -> (Arc<Hub>, StreamKey, SourceSettings) {
        let key = StreamKey { vhost: "v".into(), app: "live".into(), stream: "s".into() };
        let settings =
            SourceSettings { gop_cache: true, gop_cache_max_frames: 100, time_jitter: rsrs_config::TimeJitter::Off };
        (Arc::new(Hub::default()), key, settings)
    }

    #[tokio::test]
    async fn a_sink_gets_every_frame_then_the_end() {
        let (hub, key, settings) = setup();
        let (mut consumer, initial) = Consumer::attach(&hub, &key, settings);
        let src = hub.publish(&key, "p", "", settings).unwrap();
        for ts in [0u32, 40, 80] {
            src.push(Track::Audio, ts, Bytes::from_static(&[0xaf, 1, 0])).unwrap();
        }
        hub.unpublish(&src, "p");
        let mut sink = Recorder::default();
        let end = drive(&mut sink, &mut consumer, initial, None).await.unwrap();
        assert_eq!(end, SinkEnd::Unpublished);
        assert_eq!(sink.seen, vec![0, 40, 80]);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_shutdown_idle_and_unwanted_stop_or_wake_it() {
        let (hub, key, settings) = setup();
        let src = hub.publish(&key, "p", "", settings).unwrap();
        // A quiet stream: idle work runs; shutdown ends it.
        let (mut consumer, initial) = Consumer::attach(&hub, &key, settings);
        let token = CancellationToken::new();
        let stop = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.cancel();
        });
        let mut sink = Recorder::default();
        assert_eq!(drive(&mut sink, &mut consumer, initial, Some(&token)).await, Ok(SinkEnd::Shutdown));
        assert!(sink.idles >= 2, "idle ran {} times", sink.idles);
        // A frame the sink cannot take: its error ends the drive.
        src.push(Track::Audio, 0, Bytes::from_static(&[0xff])).unwrap();
        assert_eq!(drive(&mut sink, &mut consumer, Vec::new(), None).await, Err("bad frame".into()));
        // No longer wanted: it stops before the next batch.
        src.push(Track::Audio, 10, Bytes::from_static(&[0xaf, 1])).unwrap();
        let mut sink = Recorder { wanted_batches: Some(0), ..Default::default() };
        assert_eq!(drive(&mut sink, &mut consumer, Vec::new(), None).await, Ok(SinkEnd::NotWanted));
        assert!(sink.seen.is_empty());
    }
}
