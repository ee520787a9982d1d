//! A publisher that reads when its stream's merge windows close, not at each message.
//!
//! On a stream whose consumers all merge writes (`mw_latency`), a message read now is not sent
//! before the next close of a window anyway. Reading at each message costs a wake-up, a read and
//! the kernel's acknowledgement per message, dozens a second on each of possibly thousands of
//! streams. A paced publisher instead waits to be pulled: each window's timer, at its close, asks
//! the publisher to read what gathered in its socket, waits (a short grace) until it has, then
//! closes. The players get the same messages at the same closes, with one read per close instead
//! of one per message. Unlike SRS's merged reads (`publish.mr`), this adds no delay for them.
//!
//! The publisher protocol decides whether to pace ([`Source::read_pacing`](crate::hub::Source));
//! this is the handshake between it and the windows' timers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest a window's close waits for a paced publisher's read: a late publisher's messages go to
/// the next close rather than hold the players back.
pub const PULL_GRACE: Duration = Duration::from_millis(10);

#[derive(Debug, Default)]
pub struct ReadPacer {
    /// A publisher reads only when pulled (or at its fallback, see [`PacedPublisher`]).
    paced: AtomicBool,
    /// A close asks the publisher to read (a stored permit if it is busy reading).
    pull: Notify,
    /// The publisher read and pushed what it had.
    pulled: Notify,
}

impl ReadPacer {
    /// Called by a window's timer at its close: has a paced publisher read first, waiting at most
    /// `grace`. Returns at once when the publisher is not paced.
    pub(crate) async fn pull(&self, grace: Duration) {
        if !self.paced.load(Ordering::Acquire) {
            return;
        }
        // Registered before the pull, so a publisher that answers at once is not missed.
        let done = self.pulled.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        self.pull.notify_one();
        let _ = tokio::time::timeout(grace, done).await;
    }

    /// Whether a publisher is paced now.
    pub fn is_paced(&self) -> bool {
        self.paced.load(Ordering::Acquire)
    }

    /// The publisher's side, while it paces: dropped, it reads at each message again.
    pub fn pace(&self) -> PacedPublisher<'_> {
        self.paced.store(true, Ordering::Release);
        PacedPublisher { pacer: self }
    }
}

/// A publisher's hold on its stream's pacer; ends the pacing when dropped (the publisher left, or
/// its stream no longer qualifies).
#[derive(Debug)]
pub struct PacedPublisher<'a> {
    pacer: &'a ReadPacer,
}

impl PacedPublisher<'_> {
    /// Until a close pulls (cancel-safe: a pull while the publisher was busy is kept as a permit).
    pub async fn pulled(&self) {
        self.pacer.pull.notified().await;
    }

    /// What gathered was read and pushed: the waiting closes may go ahead.
    pub fn read_done(&self) {
        self.pacer.pulled.notify_waiters();
    }
}

impl Drop for PacedPublisher<'_> {
    fn drop(&mut self) {
        self.pacer.paced.store(false, Ordering::Release);
        // A close waiting for this publisher goes ahead now.
        self.pacer.pulled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_close_waits_for_the_paced_publishers_read_and_no_longer_than_the_grace() {
        let pacer = Arc::new(ReadPacer::default());
        // Not paced: a close does not wait.
        let t = tokio::time::Instant::now();
        pacer.pull(PULL_GRACE).await;
        assert_eq!(t.elapsed(), Duration::ZERO);

        // Paced, and the publisher answers after 3 ms: the close waits exactly that long.
        let p = pacer.clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let publisher = tokio::spawn(async move {
            let paced = p.pace();
            paced.pulled().await;
            tokio::time::sleep(Duration::from_millis(3)).await;
            paced.read_done();
            rx.recv().await;
        });
        tokio::task::yield_now().await;
        let t = tokio::time::Instant::now();
        pacer.pull(PULL_GRACE).await;
        assert_eq!(t.elapsed(), Duration::from_millis(3));

        // A publisher that does not answer holds a close back only for the grace.
        let t = tokio::time::Instant::now();
        pacer.pull(PULL_GRACE).await;
        assert_eq!(t.elapsed(), PULL_GRACE);

        // Once it stops pacing, closes no longer wait.
        tx.send(()).await.unwrap();
        publisher.await.unwrap();
        assert!(!pacer.is_paced());
        let t = tokio::time::Instant::now();
        pacer.pull(PULL_GRACE).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pull_while_the_publisher_is_busy_is_kept() {
        let pacer = ReadPacer::default();
        let paced = pacer.pace();
        // The close's pull comes while the publisher is not waiting (it is reading).
        let close = pacer.pull(PULL_GRACE);
        tokio::pin!(close);
        assert!(futures_poll_once(close.as_mut()).await.is_pending());
        // The publisher's next wait returns at once, and its answer releases the close.
        tokio::time::timeout(Duration::from_millis(1), paced.pulled()).await.expect("the pull was kept");
        paced.read_done();
        let t = tokio::time::Instant::now();
        close.await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut f).poll(cx))).await
    }
}
