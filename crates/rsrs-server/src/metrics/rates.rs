//! Byte rates over about the last 30 s (SRS's `kbps.recv_30s`/`send_30s`) for streams and
//! vhosts, from their cumulative counters sampled by the sampling task. Entries of streams and
//! vhosts that are gone are dropped at the next sample, so the maps stay as large as what is live.

use crate::stats::RateSampler;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct Rates {
    streams: Mutex<HashMap<String, RateSampler>>,
    vhosts: Mutex<HashMap<String, RateSampler>>,
}

/// Samples `(name, recv bytes, send bytes)` into `map`, keeping only the names given.
fn sample_into<'a>(
    map: &Mutex<HashMap<String, RateSampler>>,
    now: Instant,
    live: impl Iterator<Item = (&'a str, u64, u64)>,
) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    let mut seen = std::collections::HashSet::new();
    for (name, recv, send) in live {
        seen.insert(name.to_string());
        map.entry(name.to_string()).or_default().sample(now, recv, send);
    }
    map.retain(|k, _| seen.contains(k));
}

fn kbps_of(map: &Mutex<HashMap<String, RateSampler>>, name: &str) -> (u64, u64) {
    map.lock().unwrap_or_else(|e| e.into_inner()).get(name).map_or((0, 0), |r| r.kbps())
}

impl Rates {
    /// Samples every live stream by id.
    pub fn sample_streams<'a>(&self, now: Instant, live: impl Iterator<Item = (&'a str, u64, u64)>) {
        sample_into(&self.streams, now, live);
    }

    /// Samples every vhost by name.
    pub fn sample_vhosts<'a>(&self, now: Instant, live: impl Iterator<Item = (&'a str, u64, u64)>) {
        sample_into(&self.vhosts, now, live);
    }

    /// (recv, send) kbps of a stream by id.
    pub fn stream(&self, id: &str) -> (u64, u64) {
        kbps_of(&self.streams, id)
    }

    /// (recv, send) kbps of a vhost by name.
    pub fn vhost(&self, name: &str) -> (u64, u64) {
        kbps_of(&self.vhosts, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_of_live_entries_and_gone_ones_forgotten() {
        let r = Rates::default();
        let t0 = Instant::now();
        r.sample_streams(t0, [("a", 0, 0), ("b", 0, 0)].into_iter());
        r.sample_streams(t0 + Duration::from_secs(10), [("a", 1_250_000, 2_500_000), ("b", 0, 0)].into_iter());
        assert_eq!(r.stream("a"), (1000, 2000));
        r.sample_streams(t0 + Duration::from_secs(15), [("b", 0, 0)].into_iter());
        assert_eq!(r.stream("a"), (0, 0), "a gone stream has no rate");
        assert_eq!(r.streams.lock().unwrap().len(), 1);
        r.sample_vhosts(t0, [("v", 0, 0)].into_iter());
        r.sample_vhosts(t0 + Duration::from_secs(5), [("v", 625_000, 0)].into_iter());
        assert_eq!(r.vhost("v"), (1000, 0));
    }
}
