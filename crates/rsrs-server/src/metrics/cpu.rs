//! The process's own CPU and memory, from `/proc/self`: what `srs_cpu_percent` and
//! `srs_memory` report. A leaf, so the server can keep the sampler.

use std::sync::Mutex;
use std::time::Instant;

/// CPU time at the previous scrape, for `srs_cpu_percent` between scrapes.
#[derive(Default)]
pub struct CpuSampler {
    last: Mutex<Option<(Instant, f64)>>,
}

impl CpuSampler {
    /// The process's CPU use since the last call, in percent of one core (as SRS and `top`).
    pub fn percent(&self) -> f64 {
        let now = Instant::now();
        let Some(cpu) = process_cpu_seconds() else { return 0.0 };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let percent = match *last {
            Some((t, c)) if now > t => ((cpu - c) / now.duration_since(t).as_secs_f64() * 100.0).max(0.0),
            _ => 0.0,
        };
        *last = Some((now, cpu));
        percent
    }
}

/// User plus system CPU seconds of this process, from `/proc/self/stat`.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // Safety: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks / if hz > 0 { hz as f64 } else { 100.0 })
}

/// Resident memory of this process in bytes, from `/proc/self/statm`.
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // Safety: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * if page > 0 { page as u64 } else { 4096 }
}
