//! Connection slots: `max_connections` shared between the kinds of listener so that a flood of
//! one kind (idle sockets on the HTTP port, HTTP-FLV waits for streams that do not exist) cannot
//! lock out the others (publishers on RTMP, an operator on the API).
//!
//! Every kind has a reserve. A connection is admitted while the total stays under
//! `max_connections` after setting aside what the *other* kinds have not yet used of their
//! reserves; so each kind can always reach its reserve, and the total never passes the limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The kinds of connection that get a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnClass {
    Rtmp,
    /// The HTTP server port (files, HTTP-FLV, HLS); also the API when it shares that port.
    Http,
    /// A dedicated API port.
    Api,
}

impl ConnClass {
    const ALL: [ConnClass; 3] = [ConnClass::Rtmp, ConnClass::Http, ConnClass::Api];

    fn index(self) -> usize {
        match self {
            ConnClass::Rtmp => 0,
            ConnClass::Http => 1,
            ConnClass::Api => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConnClass::Rtmp => "RTMP",
            ConnClass::Http => "HTTP",
            ConnClass::Api => "API",
        }
    }

    /// What this kind keeps for itself out of `max`: a tenth for the media ports (at most 200),
    /// a twentieth for the API (at most 32); nothing when `max` is too small to share.
    pub fn reserve(self, max: usize) -> usize {
        match self {
            ConnClass::Rtmp | ConnClass::Http => (max / 10).min(200),
            ConnClass::Api => (max / 20).min(32),
        }
    }
}

#[derive(Debug)]
struct State {
    used: [usize; 3],
    /// Refusals not yet logged, per kind, and when the last summary was logged.
    refused: [u64; 3],
    last_log: Option<Instant>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class} connections: {used} in use, {total} in all, max_connections {max} (reserves kept for the other kinds: {kept})")]
pub struct Refused {
    pub class: &'static str,
    pub used: usize,
    pub total: usize,
    pub max: usize,
    pub kept: usize,
}

/// The shared count of connections, by kind.
#[derive(Debug)]
pub struct Slots {
    state: Mutex<State>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots { state: Mutex::new(State { used: [0; 3], refused: [0; 3], last_log: None }) }
    }
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection of `class` under `max` (whose kinds in `open` have listeners), or
    /// says why not. The slot is freed when the returned guard drops.
    pub fn admit(self: &Arc<Self>, class: ConnClass, max: usize, open: &[ConnClass]) -> Result<Slot, Refused> {
        let mut st = self.lock();
        let total: usize = st.used.iter().sum();
        let kept: usize = ConnClass::ALL
            .iter()
            .filter(|c| **c != class && open.contains(c))
            .map(|c| c.reserve(max).saturating_sub(st.used[c.index()]))
            .sum();
        if total + kept >= max {
            st.refused[class.index()] += 1;
            return Err(Refused { class: class.name(), used: st.used[class.index()], total, max, kept });
        }
        st.used[class.index()] += 1;
        Ok(Slot { slots: self.clone(), class })
    }

    /// Connections in use of one kind.
    pub fn used(&self, class: ConnClass) -> usize {
        self.lock().used[class.index()]
    }

    /// Refusals since the last call, if a second has passed since the last summary: one log line
    /// a second under a flood, not one per refused socket.
    pub fn refusals_to_log(&self) -> Option<[u64; 3]> {
        let mut st = self.lock();
        if st.refused.iter().all(|n| *n == 0) || st.last_log.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return None;
        }
        st.last_log = Some(Instant::now());
        Some(std::mem::take(&mut st.refused))
    }
}

/// One admitted connection's slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    class: ConnClass,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = self.slots.lock();
        st.used[self.class.index()] = st.used[self.class.index()].saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ConnClass; 3] = ConnClass::ALL;

    #[test]
    fn a_flood_of_one_kind_leaves_the_others_their_reserve() {
        let s = Arc::new(Slots::default());
        let max = 1000;
        let mut held = Vec::new();
        while let Ok(slot) = s.admit(ConnClass::Http, max, &ALL) {
            held.push(slot);
        }
        // 1000 - RTMP's 100 - the API's 32.
        assert_eq!(held.len(), 868);
        let e = s.admit(ConnClass::Http, max, &ALL).unwrap_err();
        assert_eq!((e.used, e.kept), (868, 132));
        let rtmp: Vec<_> = (0..100).map(|_| s.admit(ConnClass::Rtmp, max, &ALL).unwrap()).collect();
        let api: Vec<_> = (0..32).map(|_| s.admit(ConnClass::Api, max, &ALL).unwrap()).collect();
        assert!(s.admit(ConnClass::Rtmp, max, &ALL).is_err(), "the total never passes max_connections");
        assert!(s.admit(ConnClass::Api, max, &ALL).is_err());
        drop(held);
        assert_eq!(s.used(ConnClass::Http), 0);
        assert_eq!((rtmp.len(), api.len()), (100, 32));
        assert!(s.admit(ConnClass::Rtmp, max, &ALL).is_ok(), "freed slots are usable by any kind");
    }

    #[test]
    fn without_a_listener_a_kind_keeps_nothing() {
        let s = Arc::new(Slots::default());
        let only_rtmp = [ConnClass::Rtmp];
        let held: Vec<_> = (0..10).map(|_| s.admit(ConnClass::Rtmp, 10, &only_rtmp).unwrap()).collect();
        assert!(s.admit(ConnClass::Rtmp, 10, &only_rtmp).is_err());
        assert_eq!(held.len(), 10);
        assert_eq!(ConnClass::Api.reserve(10), 0);
        assert_eq!(ConnClass::Rtmp.reserve(100_000), 200);
    }

    #[test]
    fn refusals_are_summarised_at_most_once_a_second() {
        let s = Arc::new(Slots::default());
        let _a = s.admit(ConnClass::Rtmp, 1, &[ConnClass::Rtmp]).unwrap();
        for _ in 0..5 {
            assert!(s.admit(ConnClass::Rtmp, 1, &[ConnClass::Rtmp]).is_err());
        }
        assert_eq!(s.refusals_to_log(), Some([5, 0, 0]));
        assert!(s.admit(ConnClass::Rtmp, 1, &[ConnClass::Rtmp]).is_err());
        assert_eq!(s.refusals_to_log(), None, "within the second");
    }
}
