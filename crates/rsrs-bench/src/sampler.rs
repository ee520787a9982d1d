//! Samples a server's CPU time and memory from /proc (the process and all its descendants, so
//! nginx's master and workers count together).

use std::path::Path;

/// CPU seconds (user + system) and resident memory in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub cpu_secs: f64,
    pub rss_kib: u64,
}

fn ticks_per_sec() -> f64 {
    // Linux reports stat times in USER_HZ, 100 on every mainstream kernel configuration.
    100.0
}

fn descendants(pid: u32, out: &mut Vec<u32>) {
    out.push(pid);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            if !out.contains(&c) {
                descendants(c, out);
            }
        }
    }
}

fn one(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(Usage { cpu_secs: (utime + stime) / ticks_per_sec(), rss_kib: rss })
}

/// This process's own usage: the load generator's CPU, reported beside the server's so that a
/// saturated generator is seen, not mistaken for a slow server.
pub fn sample_self() -> Usage {
    one(std::process::id()).unwrap_or_default()
}

/// Usage of the given processes and their descendants, summed.
pub fn sample(pids: &[u32]) -> Usage {
    let mut all = Vec::new();
    for &p in pids {
        if Path::new(&format!("/proc/{p}")).exists() {
            descendants(p, &mut all);
        }
    }
    let mut u = Usage::default();
    for p in all {
        if let Some(x) = one(p) {
            u.cpu_secs += x.cpu_secs;
            u.rss_kib += x.rss_kib;
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let u = sample(&[std::process::id()]);
        assert!(u.rss_kib > 0);
        assert!(u.cpu_secs >= 0.0);
        assert_eq!(sample(&[u32::MAX - 1]), Usage::default());
    }
}
