//! A client's kick (API, reload, quit, cluster) as a future a busy loop can poll on every wake-up
//! for two atomics, instead of the cancellation token's two mutexes.
//!
//! A publisher's loop wakes once per message, dozens of times a second on each of possibly a
//! thousand streams, and a kick must still end it at its next wake-up. Polling
//! `CancellationToken::cancelled()` each time takes the token's lock and its `Notify`'s. [`Kick`]
//! polls the token's future only when the token has woken it: otherwise a poll is one atomic swap
//! and the registration of the task's waker.

use atomic_waker::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Resolves when the token is cancelled. Made once per loop and polled on every wake-up.
pub struct Kick {
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    relay: Arc<Relay>,
}

/// Stands between the token's future and the task: the token wakes this, which marks that the
/// future must be polled and wakes whichever task polled last.
struct Relay {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Kick {
    pub fn new(token: &CancellationToken) -> Kick {
        Kick {
            cancelled: Box::pin(token.clone().cancelled_owned()),
            // Set: the first poll registers the relay with the token.
            relay: Arc::new(Relay { woken: AtomicBool::new(true), task: AtomicWaker::new() }),
        }
    }
}

impl Future for Kick {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before the flag is read: a wake between the two is seen now or wakes us.
        self.relay.task.register(cx.waker());
        if !self.relay.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let relay = Waker::from(self.relay.clone());
        self.cancelled.as_mut().poll(&mut Context::from_waker(&relay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kick_ends_a_loop_that_is_woken_by_other_things() {
        let token = CancellationToken::new();
        let kick = Kick::new(&token);
        tokio::pin!(kick);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
        let t = token.clone();
        let feeder = tokio::spawn(async move {
            for i in 0..100 {
                tx.send(i).await.unwrap();
            }
            t.cancel();
            // The loop must end on the kick, not on the channel closing.
            tx.closed().await;
        });
        let mut got = 0;
        loop {
            tokio::select! {
                biased;
                _ = &mut kick => break,
                m = rx.recv() => match m {
                    Some(_) => got += 1,
                    None => panic!("the channel closed before the kick was seen"),
                },
            }
        }
        // Up to the channel's capacity may still be queued when the kick is seen.
        assert!((96..=100).contains(&got), "{got} messages before the kick");
        drop(rx);
        feeder.await.unwrap();
    }

    #[tokio::test]
    async fn a_kick_before_the_first_poll_is_seen_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        Kick::new(&token).await;
    }

    #[tokio::test]
    async fn a_parent_tokens_cancel_reaches_a_childs_kick() {
        let parent = CancellationToken::new();
        let child = parent.child_token();
        let kick = Kick::new(&child);
        let waiter = tokio::spawn(kick);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        parent.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }
}
