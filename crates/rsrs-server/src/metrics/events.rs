//! Counts of what the server did: reloads, HLS segments and DVR files written (and the writers
//! that failed), origin-cluster redirects, refused clients. Bumped
//! where it happens (never on a per-packet path) and read by the exporter at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why the stream manager kept a client out (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// A `security` rule.
    Security,
    /// `refer`, `refer_publish`, `refer_play`.
    Refer,
    /// A signed URL (`token`) missing, expired or not ours.
    Token,
    /// A deciding hook refused or could not be asked.
    Hook,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 4] =
        [RefusalReason::Security, RefusalReason::Refer, RefusalReason::Token, RefusalReason::Hook];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Security => "security",
            RefusalReason::Refer => "refer",
            RefusalReason::Token => "token",
            RefusalReason::Hook => "hook",
        }
    }
}

/// Counters of one server, for its lifetime (a reload keeps them).
#[derive(Debug, Default)]
pub struct Events {
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub hls_segments: AtomicU64,
    pub hls_segment_bytes: AtomicU64,
    /// HLS writers stopped by an error (disk, codec, path).
    pub hls_errors: AtomicU64,
    pub dvr_files: AtomicU64,
    /// DVR recorders stopped by an error, or files they could not finish.
    pub dvr_errors: AtomicU64,
    /// Players sent to another origin of the cluster.
    pub cluster_redirects: AtomicU64,
    /// Refused clients: `[publish, play]` × [`RefusalReason::ALL`].
    refusals: [[AtomicU64; 4]; 2],
}

impl Events {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, publish: bool, reason: RefusalReason) {
        Events::bump(&self.refusals[usize::from(!publish)][reason as usize]);
    }

    /// (action, reason, count) for every pair.
    pub fn refusals(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        ["publish", "play"].into_iter().enumerate().flat_map(move |(a, action)| {
            RefusalReason::ALL
                .into_iter()
                .map(move |r| (action, r.as_str(), self.refusals[a][r as usize].load(Ordering::Relaxed)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_action_and_reason() {
        let e = Events::default();
        e.refused(true, RefusalReason::Token);
        e.refused(false, RefusalReason::Hook);
        e.refused(false, RefusalReason::Hook);
        let all: Vec<_> = e.refusals().filter(|(_, _, n)| *n > 0).collect();
        assert_eq!(all, vec![("publish", "token", 1), ("play", "hook", 2)]);
        assert_eq!(e.refusals().count(), 8, "every pair is exported, zeros too");
    }
}
