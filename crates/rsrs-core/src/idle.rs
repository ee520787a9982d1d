//! A publisher's idle timeout as one timer for the whole publish, not one per message.
//!
//! A publisher sends dozens to hundreds of messages a second. Arming a fresh timeout per read puts
//! a timer entry in and out of tokio's wheel each time; [`IdleTimer`] keeps one and moves it only
//! when it fires, to the last read plus the timeout.

use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

pub struct IdleTimer {
    timeout: Duration,
    last_read: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl IdleTimer {
    pub fn new(timeout: Duration) -> IdleTimer {
        let last_read = Instant::now();
        IdleTimer { timeout, last_read, sleep: Box::pin(tokio::time::sleep_until(last_read + timeout)) }
    }

    /// Something was read now.
    pub fn touch(&mut self) {
        self.last_read = Instant::now();
    }

    /// Another timeout from now on (the first packet's, then the normal one), counted from the
    /// last read.
    pub fn set_timeout(&mut self, timeout: Duration) {
        if timeout != self.timeout {
            self.timeout = timeout;
            self.sleep.as_mut().reset(self.last_read + timeout);
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Until nothing was read for the timeout. Cancel-safe: the timer lives in `self`.
    pub async fn expired(&mut self) {
        loop {
            self.sleep.as_mut().await;
            let due = self.last_read + self.timeout;
            if due <= Instant::now() {
                return;
            }
            self.sleep.as_mut().reset(due);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reads_push_the_timeout_on_and_a_new_timeout_counts_from_the_last_read() {
        let start = Instant::now();
        let mut idle = IdleTimer::new(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(6)).await;
        idle.touch();
        idle.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(16));

        let start = Instant::now();
        idle.touch();
        idle.set_timeout(Duration::from_secs(3));
        idle.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(idle.timeout(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_timeout_moves_a_long_first_one_in() {
        let start = Instant::now();
        let mut idle = IdleTimer::new(Duration::from_secs(20));
        tokio::time::advance(Duration::from_secs(1)).await;
        idle.touch();
        idle.set_timeout(Duration::from_secs(3));
        idle.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }
}
