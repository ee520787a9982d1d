//! Aggregates player results and server usage into the report (table or JSON).

use crate::player::PlayerStats;
use crate::sampler::Usage;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub label: String,
    pub players: usize,
    pub connected: usize,
    pub failed: usize,
    pub failures: BTreeMap<String, usize>,
    pub kept_up: usize,
    pub disconnected: usize,
    pub without_audio: usize,
    pub without_video: usize,
    pub not_starting_on_keyframe: usize,
    pub non_monotonic: usize,
    pub stalls: u64,
    pub bytes: u64,
    pub media_secs: f64,
    pub ttff_p50_ms: Option<f64>,
    pub ttff_p99_ms: Option<f64>,
    pub ttfk_p50_ms: Option<f64>,
    pub ttfk_p99_ms: Option<f64>,
    pub delay_p50_ms: Option<f64>,
    pub delay_p99_ms: Option<f64>,
    /// Server CPU seconds during the load window (after the ramp).
    pub server_cpu_secs: Option<f64>,
    /// Bytes players received during the load window.
    pub window_bytes: u64,
    pub window_secs: f64,
    pub server_cpu_secs_per_gb: Option<f64>,
    pub server_rss_kib_before: Option<u64>,
    pub server_rss_kib_after: Option<u64>,
    pub server_rss_kib_per_player: Option<f64>,
    /// The load generator's own CPU seconds over the same window (all its threads).
    pub loadgen_cpu_secs: Option<f64>,
    /// Many-stream runs: streams, and those with a player that stalled, fell behind or got
    /// no video.
    pub streams: Option<usize>,
    pub streams_stalled: Option<usize>,
    /// Many-stream runs: server CPU cores and RSS per stream.
    pub server_cores_per_stream: Option<f64>,
    pub server_rss_kib_per_stream: Option<f64>,
}

pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let idx = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    Some(values[idx.min(values.len() - 1)])
}

impl Report {
    pub fn build(
        label: &str,
        stats: &[PlayerStats],
        before: Option<Usage>,
        window: Option<(Usage, Usage)>,
        window_bytes: u64,
        window_secs: f64,
        raw: bool,
    ) -> Report {
        let mut r =
            Report { label: label.into(), players: stats.len(), window_bytes, window_secs, ..Default::default() };
        let (mut ttff, mut ttfk, mut delays) = (vec![], vec![], vec![]);
        for s in stats {
            if let Some(e) = &s.error {
                r.failed += 1;
                *r.failures.entry(e.clone()).or_default() += 1;
            } else if s.connect_ms.is_some() {
                r.connected += 1;
            }
            r.kept_up += s.kept_up as usize;
            r.disconnected += s.disconnected as usize;
            if !raw && s.error.is_none() {
                r.without_audio += (s.audio_frames == 0) as usize;
                r.without_video += (s.video_frames == 0) as usize;
                r.not_starting_on_keyframe += (s.first_video_is_key == Some(false)) as usize;
                r.non_monotonic += (!s.timestamps_monotonic) as usize;
            }
            r.stalls += s.stalls as u64;
            r.bytes += s.bytes;
            r.media_secs += s.media_secs;
            ttff.extend(s.ttff_ms);
            ttfk.extend(s.ttfk_ms);
            delays.extend(s.delays_ms.iter().copied());
        }
        r.ttff_p50_ms = percentile(&mut ttff, 50.0);
        r.ttff_p99_ms = percentile(&mut ttff, 99.0);
        r.ttfk_p50_ms = percentile(&mut ttfk, 50.0);
        r.ttfk_p99_ms = percentile(&mut ttfk, 99.0);
        r.delay_p50_ms = percentile(&mut delays, 50.0);
        r.delay_p99_ms = percentile(&mut delays, 99.0);
        if let Some((a, b)) = window {
            let cpu = b.cpu_secs - a.cpu_secs;
            r.server_cpu_secs = Some(cpu);
            if window_bytes > 0 {
                r.server_cpu_secs_per_gb = Some(cpu / (window_bytes as f64 / 1e9));
            }
            r.server_rss_kib_after = Some(b.rss_kib);
        }
        if let Some(b) = before {
            r.server_rss_kib_before = Some(b.rss_kib);
            if let (Some(after), true) = (r.server_rss_kib_after, r.players > 0) {
                r.server_rss_kib_per_player = Some(after.saturating_sub(b.rss_kib) as f64 / r.players as f64);
            }
        }
        r
    }

    pub fn table(&self) -> String {
        let o = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "-".into());
        let mut s = String::new();
        s.push_str(&format!("== {} ==\n", self.label));
        s.push_str(&format!(
            "players {}  connected {}  failed {}  kept up {}  disconnected {}  stalls {}\n",
            self.players, self.connected, self.failed, self.kept_up, self.disconnected, self.stalls
        ));
        s.push_str(&format!(
            "no audio {}  no video {}  not starting on keyframe {}  non-monotonic {}\n",
            self.without_audio, self.without_video, self.not_starting_on_keyframe, self.non_monotonic
        ));
        s.push_str(&format!(
            "received {:.1} MB, {:.0} media s  TTFF p50/p99 {}/{} ms  TTFK p50/p99 {}/{} ms  delay p50/p99 {}/{} ms\n",
            self.bytes as f64 / 1e6,
            self.media_secs,
            o(self.ttff_p50_ms, 1),
            o(self.ttff_p99_ms, 1),
            o(self.ttfk_p50_ms, 1),
            o(self.ttfk_p99_ms, 1),
            o(self.delay_p50_ms, 0),
            o(self.delay_p99_ms, 0),
        ));
        s.push_str(&format!(
            "server: CPU {} s over {:.1} s window, {} s/GB, RSS {} -> {} KiB ({} KiB/player)\n",
            o(self.server_cpu_secs, 2),
            self.window_secs,
            o(self.server_cpu_secs_per_gb, 3),
            self.server_rss_kib_before.map(|v| v.to_string()).unwrap_or("-".into()),
            self.server_rss_kib_after.map(|v| v.to_string()).unwrap_or("-".into()),
            o(self.server_rss_kib_per_player, 1),
        ));
        if let Some(cpu) = self.loadgen_cpu_secs {
            s.push_str(&format!("load generator: CPU {cpu:.2} s over the same window\n"));
        }
        if let (Some(n), Some(stalled)) = (self.streams, self.streams_stalled) {
            s.push_str(&format!(
                "streams {n}  stalled {stalled}  server {} cores/stream, {} KiB/stream\n",
                o(self.server_cores_per_stream, 4),
                o(self.server_rss_kib_per_stream, 1),
            ));
        }
        for (e, n) in &self.failures {
            s.push_str(&format!("  failure x{n}: {e}\n"));
        }
        s
    }

    /// Adds the per-stream figures of a many-stream run: `stalled` streams had a player that
    /// stalled, did not keep up or got no video.
    pub fn per_stream(&mut self, streams: usize, stalled: usize) {
        self.streams = Some(streams);
        self.streams_stalled = Some(stalled);
        if streams == 0 {
            return;
        }
        if let (Some(cpu), true) = (self.server_cpu_secs, self.window_secs > 0.0) {
            self.server_cores_per_stream = Some(cpu / self.window_secs / streams as f64);
        }
        if let (Some(b), Some(a)) = (self.server_rss_kib_before, self.server_rss_kib_after) {
            self.server_rss_kib_per_stream = Some(a.saturating_sub(b) as f64 / streams as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 50.0), Some(3.0));
        assert_eq!(percentile(&mut v, 99.0), Some(5.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn aggregates() {
        let ok = PlayerStats {
            connect_ms: Some(1.0),
            ttff_ms: Some(10.0),
            kept_up: true,
            audio_frames: 5,
            video_frames: 5,
            bytes: 100,
            timestamps_monotonic: true,
            first_video_is_key: Some(true),
            ..Default::default()
        };
        let bad = PlayerStats { error: Some("connect: refused".into()), ..Default::default() };
        let silent =
            PlayerStats { connect_ms: Some(1.0), video_frames: 3, timestamps_monotonic: true, ..Default::default() };
        let u0 = Usage { cpu_secs: 1.0, rss_kib: 1000 };
        let u1 = Usage { cpu_secs: 1.5, rss_kib: 1300 };
        let r = Report::build("t", &[ok, bad, silent], Some(u0), Some((u0, u1)), 500_000_000, 10.0, false);
        assert_eq!((r.players, r.connected, r.failed, r.kept_up, r.without_audio), (3, 2, 1, 1, 1));
        assert_eq!(r.failures.get("connect: refused"), Some(&1));
        assert_eq!(r.server_cpu_secs_per_gb, Some(1.0));
        assert_eq!(r.server_rss_kib_per_player, Some(100.0));
        let mut r = r;
        r.per_stream(2, 1);
        assert_eq!((r.streams, r.streams_stalled), (Some(2), Some(1)));
        assert_eq!(r.server_cores_per_stream, Some(0.025));
        assert_eq!(r.server_rss_kib_per_stream, Some(150.0));
    }
}
