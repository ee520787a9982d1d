//! What the server knows of its edge streams (mode, upstream, state), for the API and to keep
//! one pull or forward per stream. Knows nothing of the server.

use crate::hub::StreamKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What an edge does for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeMode {
    /// Pulls the stream from an origin for this edge's players.
    Pull,
    /// Forwards this edge's publisher to an origin.
    Forward,
}

impl EdgeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeMode::Pull => "pull",
            EdgeMode::Forward => "forward",
        }
    }
}

/// Where an edge's upstream connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EdgeState {
    #[default]
    Connecting,
    Connected,
}

impl EdgeState {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeState::Connecting => "connecting",
            EdgeState::Connected => "connected",
        }
    }
}

/// What the API shows about an edge stream.
#[derive(Debug)]
pub struct EdgeInfo {
    pub mode: EdgeMode,
    pub upstream: Mutex<String>,
    pub state: Mutex<EdgeState>,
    /// Upstream connections begun for this stream (the first, then every reconnect).
    pub connects: AtomicU64,
    totals: Arc<EdgeTotals>,
}

/// Upstream connections begun and failed, by [`EdgeMode`] (`[pull, forward]`), for the
/// server's life.
#[derive(Debug, Default)]
pub struct EdgeTotals {
    pub connects: [AtomicU64; 2],
    pub failures: [AtomicU64; 2],
}

impl EdgeInfo {
    /// Connections to upstreams after the first: how often this stream's upstream was lost
    /// or moved.
    pub fn reconnects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// An upstream connection failed (could not connect, or broke).
    pub(crate) fn failed(&self) {
        self.totals.failures[self.mode as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn state(&self) -> EdgeState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set(&self, upstream: &str, state: EdgeState) {
        if state == EdgeState::Connecting {
            self.connects.fetch_add(1, Ordering::Relaxed);
            self.totals.connects[self.mode as usize].fetch_add(1, Ordering::Relaxed);
        }
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = upstream.to_string();
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// Edge streams of this server.
#[derive(Debug, Default)]
pub struct EdgeRegistry {
    streams: Mutex<HashMap<StreamKey, Arc<EdgeInfo>>>,
    pub totals: Arc<EdgeTotals>,
}

impl EdgeRegistry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Arc<EdgeInfo>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &StreamKey) -> Option<Arc<EdgeInfo>> {
        self.map().get(key).cloned()
    }

    /// Every edge stream now.
    pub fn all(&self) -> Vec<(StreamKey, Arc<EdgeInfo>)> {
        self.map().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Registers a new edge task for `key`; `None` if one already runs.
    pub(crate) fn claim(&self, key: &StreamKey, mode: EdgeMode) -> Option<Arc<EdgeInfo>> {
        let mut m = self.map();
        if m.contains_key(key) {
            return None;
        }
        let info = Arc::new(EdgeInfo {
            mode,
            upstream: Mutex::default(),
            state: Mutex::default(),
            connects: AtomicU64::new(0),
            totals: self.totals.clone(),
        });
        m.insert(key.clone(), info.clone());
        Some(info)
    }

    pub(crate) fn release(&self, key: &StreamKey) {
        self.map().remove(key);
    }
}
