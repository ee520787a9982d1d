//! The HLS viewer sessions of a server (`hls_ctx`): who is watching which stream over HLS, and
//! since when. A leaf: the HTTP side (`http/hls_play.rs`) admits and serves, this only keeps.

use crate::hooks::Admitted;
use crate::hub::StreamKey;
use crate::stats::ClientGuard;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::info;

/// Most viewer sessions at once; a flood of new sessions beyond it is refused (503).
pub const MAX_SESSIONS: usize = 100_000;

pub struct Session {
    key: StreamKey,
    last_seen: Instant,
    ttl: Duration,
    /// Sends `on_stop` when the session is dropped.
    _admitted: Admitted,
    /// The viewer in the API's client list (`hls-play`, its id the `hls_ctx`), until it ends.
    client: ClientGuard,
}

impl Session {
    pub fn new(key: StreamKey, ttl: Duration, admitted: Admitted, client: ClientGuard) -> Session {
        Session { key, last_seen: Instant::now(), ttl, _admitted: admitted, client }
    }

    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// Counts bytes served to this viewer.
    pub fn sent(&self, n: u64) {
        self.client.client.counters.sent(n as usize);
    }

    pub fn kicked(&self) -> bool {
        self.client.client.kill.is_cancelled()
    }
}

/// What a session id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A live session of this stream (now marked seen).
    Live,
    /// A session kicked through the API: its requests get 404, as in SRS.
    Kicked,
    /// No session of this stream.
    Unknown,
}

/// The live HLS viewer sessions of a server.
#[derive(Default)]
pub struct HlsViewers {
    sessions: Mutex<HashMap<String, Session>>,
}

impl HlsViewers {
    pub fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a session seen (a playlist request). A kicked session ends here.
    pub fn touch(&self, ctx: &str, key: &StreamKey) -> Seen {
        let mut map = self.map();
        match map.get_mut(ctx) {
            Some(s) if s.key == *key && s.kicked() => {
                let gone = map.remove(ctx);
                drop(map);
                drop(gone);
                Seen::Kicked
            }
            Some(s) if s.key == *key => {
                s.last_seen = Instant::now();
                Seen::Live
            }
            _ => Seen::Unknown,
        }
    }

    /// Ends the sessions not seen for their time to live; their `on_stop` goes out as they drop.
    pub fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<(String, Session)> = {
            let mut map = self.map();
            let gone: Vec<String> =
                map.iter().filter(|(_, s)| now.duration_since(s.last_seen) > s.ttl).map(|(k, _)| k.clone()).collect();
            gone.into_iter().filter_map(|k| map.remove_entry(&k)).collect()
        };
        for (ctx, s) in expired {
            info!(stream = %s.key.url(), hls_ctx = %ctx, "HLS viewer session ended (no playlist request)");
        }
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
