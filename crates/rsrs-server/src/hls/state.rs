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
    /// Low-latency HLS: the open segment's sequence number and parts written so far, the map
    /// they need, and the part written next (its playlist name and its path).
    pub(crate) ll: Option<LowLatencyState>,
}

/// What a low-latency playlist shows beyond the whole segments.
#[derive(Debug, Clone, Default)]
pub struct LowLatencyState {
    pub(crate) part_target: f64,
    /// The configured fragment × td_ratio, the playlist's least target duration.
    pub(crate) min_target: f64,
    pub(crate) open_seq: u64,
    pub(crate) open_parts: Vec<rsrs_codec::hls::Part>,
    pub(crate) open_map: Option<String>,
    pub(crate) hint: Option<(String, PathBuf)>,
}

impl HlsState {
    /// The low-latency playlist of the window as it stands (`skip`: a delta update).
    pub(crate) fn low_latency_playlist(&self, skip: bool) -> Option<String> {
        let ll = self.ll.as_ref()?;
        let segs: Vec<Segment> = self.window.iter().map(|(s, _)| s.clone()).collect();
        Some(rsrs_codec::hls::low_latency_playlist(
            &segs,
            ll.min_target,
            &rsrs_codec::hls::LowLatency {
                part_target: ll.part_target,
                open_parts: &ll.open_parts,
                open_map: ll.open_map.as_deref(),
                preload_hint: ll.hint.as_ref().map(|(u, _)| u.as_str()),
                skip,
            },
        ))
    }

    /// Whether segment `msn` is whole in the playlist, or (with `part`) that part of it is.
    pub(crate) fn has(&self, msn: u64, part: Option<usize>) -> bool {
        let Some(ll) = &self.ll else { return true };
        if msn < ll.open_seq {
            return true;
        }
        part.is_some_and(|p| msn == ll.open_seq && ll.open_parts.len() > p)
    }

    /// The sequence number of the last whole segment, or of the one being written.
    pub(crate) fn last_msn(&self) -> u64 {
        match &self.ll {
            Some(ll) => ll.open_seq,
            None => self.next_seq.saturating_sub(1),
        }
    }
}

/// HLS state of every stream.
#[derive(Debug)]
pub struct HlsRegistry {
    streams: Mutex<HashMap<StreamKey, Arc<Mutex<HlsState>>>>,
    /// Bumped whenever a low-latency playlist changes: blocked playlist and part requests wake
    /// and look again.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for HlsRegistry {
    fn default() -> Self {
        HlsRegistry { streams: Mutex::default(), changed: tokio::sync::watch::channel(0).0 }
    }
}

impl HlsRegistry {
    /// The stream's state, if HLS ran for it in this process.
    pub fn get(&self, key: &StreamKey) -> Option<Arc<Mutex<HlsState>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// Wakes blocked low-latency requests.
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Whether `path` is the part some stream writes next (a preload hint).
    pub fn is_hinted(&self, path: &Path) -> bool {
        let streams: Vec<_> = self.streams.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        streams
            .iter()
            .any(|st| lock(st).ll.as_ref().and_then(|ll| ll.hint.as_ref()).is_some_and(|(_, p)| same_path(p, path)))
    }

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
                    Segment {
                        sequence: n,
                        duration: d,
                        uri: line.to_string(),
                        discontinuity: disc,
                        map: map.clone(),
                        parts: Vec::new(),
                    },
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

/// Whether two paths name the same file, lexically (`./a/b` is `a/b`).
fn same_path(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| -> Vec<std::ffi::OsString> {
        p.components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .map(|c| c.as_os_str().to_owned())
            .collect()
    };
    norm(a) == norm(b)
}
