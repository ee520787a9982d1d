//! HLS state that outlives a publish (numbering, the window, the playlist path), per stream.
//! Held by the server for every stream; knows nothing of the server.

use crate::hub::StreamKey;
use rsrs_codec::hls::Segment;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing::info;

/// Per-stream state that outlives one publish: numbering, the window, the playlist path.
#[derive(Debug, Default)]
pub struct HlsState {
    pub(crate) next_seq: u64,
    pub(crate) window: VecDeque<(Segment, PathBuf)>,
    /// Bumped on every publish, so a pending dispose knows the stream came back.
    pub(crate) generation: u64,
    pub(crate) m3u8: Option<PathBuf>,
    /// fMP4 init segments written for this stream: (path relative to hls_path, bytes).
    pub(crate) inits: Vec<(String, Vec<u8>)>,
}

/// HLS state of every stream.
#[derive(Debug, Default)]
pub struct HlsRegistry {
    streams: Mutex<HashMap<StreamKey, Arc<Mutex<HlsState>>>>,
}

impl HlsRegistry {
    /// The stream's state; on first use in this process, recovered from a playlist an earlier run
    /// left, so numbering continues after a restart instead of jumping back to 0 under readers.
    pub(crate) fn state(&self, key: &StreamKey, m3u8: &Path) -> Arc<Mutex<HlsState>> {
        let mut map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone()).or_insert_with(|| Arc::new(Mutex::new(recover(m3u8)))).clone()
    }

    /// Drops a disposed stream's state (unless it was published again), so streams that come and
    /// go leave nothing behind; a later publish starts from what is on disk, as after a restart.
    pub(crate) fn forget(&self, key: &StreamKey, generation: u64) {
        let mut map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(key).is_some_and(|st| lock(st).generation == generation) {
            map.remove(key);
        }
    }
}

/// Reads back a playlist we wrote: its segments (still on disk) become the window.
fn recover(m3u8: &Path) -> HlsState {
    let mut st = HlsState::default();
    let Ok(text) = std::fs::read_to_string(m3u8) else { return st };
    let dir = m3u8.parent().unwrap_or(Path::new("."));
    let mut seq = None;
    let (mut duration, mut disc) = (None, false);
    let mut map: Option<String> = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = v.trim().parse::<u64>().ok();
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            duration = v.split(',').next().and_then(|d| d.trim().parse::<f64>().ok());
        } else if line == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:URI=") {
            map = Some(v.trim_matches('"').to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (Some(n), Some(d)) = (seq, duration.take()) else { continue };
            let path = dir.join(line);
            if !line.contains("://") && path.exists() {
                st.window.push_back((
                    Segment { sequence: n, duration: d, uri: line.to_string(), discontinuity: disc, map: map.clone() },
                    path,
                ));
            }
            seq = Some(n + 1);
            disc = false;
        }
    }
    st.next_seq = seq.unwrap_or(0);
    if !st.window.is_empty() {
        info!(
            "HLS: continuing {} from sequence {} ({} segments recovered)",
            m3u8.display(),
            st.next_seq,
            st.window.len()
        );
        st.m3u8 = Some(m3u8.to_path_buf());
    }
    st
}

pub(crate) fn lock(s: &Mutex<HlsState>) -> std::sync::MutexGuard<'_, HlsState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}
