//! What the server knows of its edge streams (mode, upstream, state), for the API and to keep
//! one pull or forward per stream. Knows nothing of the server.

use crate::hub::StreamKey;
use std::collections::HashMap;
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
}

impl EdgeInfo {
    pub(crate) fn set(&self, upstream: &str, state: EdgeState) {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = upstream.to_string();
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// Edge streams of this server.
#[derive(Debug, Default)]
pub struct EdgeRegistry {
    streams: Mutex<HashMap<StreamKey, Arc<EdgeInfo>>>,
}

impl EdgeRegistry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Arc<EdgeInfo>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &StreamKey) -> Option<Arc<EdgeInfo>> {
        self.map().get(key).cloned()
    }

    /// Registers a new edge task for `key`; `None` if one already runs.
    pub(crate) fn claim(&self, key: &StreamKey, mode: EdgeMode) -> Option<Arc<EdgeInfo>> {
        let mut m = self.map();
        if m.contains_key(key) {
            return None;
        }
        let info = Arc::new(EdgeInfo { mode, upstream: Mutex::default(), state: Mutex::default() });
        m.insert(key.clone(), info.clone());
        Some(info)
    }

    pub(crate) fn release(&self, key: &StreamKey) {
        self.map().remove(key);
    }
}
