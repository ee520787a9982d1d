//! rsrs-bench: a load generator for live-streaming servers (rsrs, SRS, nginx-rtmp, ...).
//!
//! Many players (RTMP, HTTP-FLV, raw) and publishers from one process, cheap per connection;
//! a raw fan-out baseline; and a report of what the players saw and what the server spent.
//! Every run is bounded in time, and every address it talks to is given on the command line.

pub mod baseline;
pub mod client;
pub mod player;
pub mod publisher;
pub mod report;
pub mod sampler;

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

/// When each video frame was published, keyed by a hash of its payload, so players can compute
/// publish-to-arrival delay even through servers that rewrite timestamps.
#[derive(Default)]
pub struct DelayBook {
    sent: RwLock<HashMap<u64, Instant>>,
}

impl DelayBook {
    fn key(payload: &[u8]) -> u64 {
        // FNV-1a over the first 256 bytes: distinct for every encoded frame of a real stream.
        let mut h: u64 = 0xcbf29ce484222325;
        for &b in payload.iter().take(256) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^ payload.len() as u64
    }

    pub fn record(&self, payload: &[u8], at: Instant) {
        self.sent.write().unwrap_or_else(|e| e.into_inner()).insert(Self::key(payload), at);
    }

    pub fn lookup(&self, payload: &[u8]) -> Option<Instant> {
        self.sent.read().unwrap_or_else(|e| e.into_inner()).get(&Self::key(payload)).copied()
    }
}
