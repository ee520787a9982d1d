//! The machine and process figures SRS's API reports (`summaries`, `rusages`,
//! `self_proc_stats`, `system_proc_stats`, `meminfos`), read from `/proc` and `getrusage` every
//! few seconds by the sampling task, as SRS does; the API answers from the last sample. Rates
//! (CPU, disk) are over the time between two samples.
//!
//! The parsers take the files' text, so they are tested on fixed inputs; a file that is missing
//! or unreadable leaves its part of the sample out (`ok: false`), never an error for the caller.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// `/proc/self/stat`'s fields, in order, with SRS's names.
pub const SELF_STAT_FIELDS: [&str; 44] = [
    "pid",
    "comm",
    "state",
    "ppid",
    "pgrp",
    "session",
    "tty_nr",
    "tpgid",
    "flags",
    "minflt",
    "cminflt",
    "majflt",
    "cmajflt",
    "utime",
    "stime",
    "cutime",
    "cstime",
    "priority",
    "nice",
    "num_threads",
    "itrealvalue",
    "starttime",
    "vsize",
    "rss",
    "rsslim",
    "startcode",
    "endcode",
    "startstack",
    "kstkesp",
    "kstkeip",
    "signal",
    "blocked",
    "sigignore",
    "sigcatch",
    "wchan",
    "nswap",
    "cnswap",
    "exit_signal",
    "processor",
    "rt_priority",
    "policy",
    "delayacct_blkio_ticks",
    "guest_time",
    "cguest_time",
];

/// One value of `/proc/self/stat`: the command and state are text, the rest numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum StatValue {
    Text(String),
    Number(i128),
}

/// `/proc/self/stat`, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelfStat {
    /// (SRS's name, value), in the file's order.
    pub fields: Vec<(&'static str, StatValue)>,
}

impl SelfStat {
    pub fn number(&self, name: &str) -> i128 {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| if let StatValue::Number(x) = v { Some(*x) } else { None })
            .unwrap_or(0)
    }
}

/// Parses `/proc/<pid>/stat`. The command (in parentheses, SRS keeps them) may hold spaces
/// and parentheses itself, so it ends at the last `)`.
pub fn parse_self_stat(text: &str) -> Option<SelfStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse::<i128>().ok()?;
    let comm = &text[open..=close];
    let mut fields = vec![("pid", StatValue::Number(pid)), ("comm", StatValue::Text(comm.to_string()))];
    for (name, raw) in SELF_STAT_FIELDS[2..].iter().zip(text[close + 1..].split_whitespace()) {
        let v = if *name == "state" { StatValue::Text(raw.to_string()) } else { StatValue::Number(raw.parse().ok()?) };
        fields.push((name, v));
    }
    Some(SelfStat { fields })
}

/// The `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub sys: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
}

impl CpuTimes {
    pub fn total(&self) -> u64 {
        self.user + self.nice + self.sys + self.idle + self.iowait + self.irq + self.softirq + self.steal + self.guest
    }
}

pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(CpuTimes {
        user: at(0),
        nice: at(1),
        sys: at(2),
        idle: at(3),
        iowait: at(4),
        irq: at(5),
        softirq: at(6),
        steal: at(7),
        guest: at(8),
    })
}

/// `/proc/meminfo`, in KiB, with SRS's derived figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemInfo {
    /// SRS's `MemActive`: all but free.
    pub fn active(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }
    /// SRS's `RealInUse`: all but free, buffers and page cache.
    pub fn real_in_use(&self) -> u64 {
        self.active().saturating_sub(self.buffers).saturating_sub(self.cached)
    }
    pub fn percent_ram(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.real_in_use() as f64 / self.total as f64
        }
    }
    pub fn percent_swap(&self) -> f64 {
        if self.swap_total == 0 {
            0.0
        } else {
            self.swap_total.saturating_sub(self.swap_free) as f64 / self.swap_total as f64
        }
    }
}

fn field_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

pub fn parse_meminfo(text: &str) -> Option<MemInfo> {
    Some(MemInfo {
        total: field_kb(text, "MemTotal:")?,
        free: field_kb(text, "MemFree:").unwrap_or(0),
        available: field_kb(text, "MemAvailable:").unwrap_or(0),
        buffers: field_kb(text, "Buffers:").unwrap_or(0),
        cached: field_kb(text, "Cached:").unwrap_or(0),
        swap_total: field_kb(text, "SwapTotal:").unwrap_or(0),
        swap_free: field_kb(text, "SwapFree:").unwrap_or(0),
    })
}

/// Pages paged in and out (KiB, `/proc/vmstat`'s `pgpgin`/`pgpgout`).
pub fn parse_vmstat_paging(text: &str) -> (u64, u64) {
    let get =
        |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0);
    (get("pgpgin"), get("pgpgout"))
}

/// Milliseconds each block device spent doing I/O (`/proc/diskstats`' tenth statistic).
pub fn parse_diskstats(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(2)?.to_string(), f.get(12)?.parse().ok()?))
        })
        .collect()
}

/// Bytes received and sent per network interface (`/proc/net/dev`).
pub fn parse_net_dev(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
            Some((name.trim().to_string(), *v.first()?, *v.get(8)?))
        })
        .collect()
}

/// Sockets of the machine (or the pod's network namespace), as SRS counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connections {
    /// TCP sockets allocated plus those in TIME_WAIT.
    pub sys: u64,
    pub established: u64,
    pub time_wait: u64,
    pub udp: u64,
}

/// From `/proc/net/sockstat` and `/proc/net/snmp`.
pub fn parse_connections(sockstat: &str, snmp: &str) -> Connections {
    let pairs = |line: &str| -> Vec<(String, u64)> {
        let w: Vec<&str> = line.split_whitespace().skip(1).collect();
        w.chunks(2).filter_map(|c| Some((c.first()?.to_string(), c.get(1)?.parse().ok()?))).collect()
    };
    let get = |prefix: &str, key: &str| {
        sockstat
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| pairs(l).into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
            .unwrap_or(0)
    };
    let (alloc, tw, udp) = (get("TCP:", "alloc"), get("TCP:", "tw"), get("UDP:", "inuse"));
    // `Tcp:` comes twice in snmp: the names, then the values.
    let tcp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Tcp:")).collect();
    let established = match tcp.as_slice() {
        [names, values, ..] => names
            .split_whitespace()
            .position(|n| n == "CurrEstab")
            .and_then(|i| values.split_whitespace().nth(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        _ => 0,
    };
    Connections { sys: alloc + tw, established, time_wait: tw, udp }
}

/// `getrusage(RUSAGE_SELF)`, with SRS's names (times in whole seconds, as SRS).
pub fn rusage() -> Option<Vec<(&'static str, i64)>> {
    // Safety: getrusage fills the struct it is given; zeroed is a valid starting value.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) } != 0 {
        return None;
    }
    Some(vec![
        ("ru_utime", r.ru_utime.tv_sec),
        ("ru_stime", r.ru_stime.tv_sec),
        ("ru_maxrss", r.ru_maxrss),
        ("ru_ixrss", r.ru_ixrss),
        ("ru_idrss", r.ru_idrss),
        ("ru_isrss", r.ru_isrss),
        ("ru_minflt", r.ru_minflt),
        ("ru_majflt", r.ru_majflt),
        ("ru_nswap", r.ru_nswap),
        ("ru_inblock", r.ru_inblock),
        ("ru_oublock", r.ru_oublock),
        ("ru_msgsnd", r.ru_msgsnd),
        ("ru_msgrcv", r.ru_msgrcv),
        ("ru_nsignals", r.ru_nsignals),
        ("ru_nvcsw", r.ru_nvcsw),
        ("ru_nivcsw", r.ru_nivcsw),
    ])
}

/// Whether an interface carries public addresses (SRS's "internet" devices); loopback and
/// private, link-local and unique-local addresses are the intranet.
fn internet_interfaces() -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // Safety: getifaddrs allocates a list we walk read-only and free once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // Safety: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // Safety: the name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        // Safety: the family tells which sockaddr the address is.
        let public = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    !(ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified())
                }
                libc::AF_INET6 => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    let seg = ip.segments()[0];
                    !(ip.is_loopback() || ip.is_unspecified() || seg & 0xffc0 == 0xfe80 || seg & 0xfe00 == 0xfc00)
                }
                _ => false,
            }
        };
        if public {
            out.insert(name);
        }
    }
    // Safety: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// What one sample read, and the rates since the sample before.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub rusage: Option<Vec<(&'static str, i64)>>,
    pub self_stat: Option<SelfStat>,
    /// CPU of this process since the last sample, as a fraction of one core (SRS's unit).
    pub self_cpu: f64,
    pub cpu: Option<CpuTimes>,
    /// CPU of the machine since the last sample, as a fraction of all cores.
    pub system_cpu: f64,
    pub mem: Option<MemInfo>,
    pub disk_read_kbps: u64,
    pub disk_write_kbps: u64,
    /// Fraction of the time the busiest listed (or any whole) disk was busy.
    pub disk_busy: f64,
    /// Bytes of interfaces with public addresses, and of the rest (loopback, private).
    pub net_recv: u64,
    pub net_send: u64,
    pub net_recv_intranet: u64,
    pub net_send_intranet: u64,
    pub conns: Connections,
    pub uptime: f64,
    pub idle_time: f64,
    pub load: [f64; 3],
}

/// Raw counters kept between samples.
#[derive(Debug, Default)]
struct Previous {
    at: Option<Instant>,
    self_ticks: u64,
    cpu: CpuTimes,
    paging: (u64, u64),
    disk_ticks: Vec<(String, u64)>,
}

/// Samples `/proc` on demand (the sampling task calls [`SystemSampler::sample`]).
#[derive(Debug, Default)]
pub struct SystemSampler {
    previous: Mutex<Previous>,
    last: Mutex<Sample>,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn clock_ticks_per_second() -> f64 {
    // Safety: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

impl SystemSampler {
    /// The last sample.
    pub fn last(&self) -> Sample {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads everything now. `disks`: SRS's `stats.disk` devices (empty: every whole disk).
    pub fn sample(&self, disks: &[String]) {
        let now = Instant::now();
        let mut prev = self.previous.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = prev.at.map(|t| now.duration_since(t).as_secs_f64()).filter(|s| *s > 0.0);
        let mut s = Sample {
            time_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            rusage: rusage(),
            self_stat: read("/proc/self/stat").and_then(|t| parse_self_stat(&t)),
            cpu: read("/proc/stat").and_then(|t| parse_proc_stat(&t)),
            mem: read("/proc/meminfo").and_then(|t| parse_meminfo(&t)),
            conns: parse_connections(
                &read("/proc/net/sockstat").unwrap_or_default(),
                &read("/proc/net/snmp").unwrap_or_default(),
            ),
            ..Sample::default()
        };
        if let Some(st) = &s.self_stat {
            let ticks = (st.number("utime") + st.number("stime")).max(0) as u64;
            if let Some(secs) = elapsed {
                s.self_cpu = ticks.saturating_sub(prev.self_ticks) as f64 / clock_ticks_per_second() / secs;
            }
            prev.self_ticks = ticks;
        }
        if let Some(cpu) = s.cpu {
            let total = cpu.total().saturating_sub(prev.cpu.total());
            if prev.cpu.total() > 0 && total > 0 {
                s.system_cpu = 1.0 - cpu.idle.saturating_sub(prev.cpu.idle) as f64 / total as f64;
            }
            prev.cpu = cpu;
        }
        let paging = parse_vmstat_paging(&read("/proc/vmstat").unwrap_or_default());
        let stats = parse_diskstats(&read("/proc/diskstats").unwrap_or_default());
        let wanted = |name: &str| {
            if disks.is_empty() {
                // Whole disks only (a partition's time is in its disk's), real ones only.
                std::path::Path::new("/sys/block").join(name).exists()
                    && !["loop", "ram", "zram"].iter().any(|p| name.starts_with(p))
            } else {
                disks.iter().any(|d| d == name)
            }
        };
        let ticks: Vec<(String, u64)> = stats.into_iter().filter(|(n, _)| wanted(n)).collect();
        if let Some(secs) = elapsed {
            s.disk_read_kbps = (paging.0.saturating_sub(prev.paging.0) as f64 / secs) as u64;
            s.disk_write_kbps = (paging.1.saturating_sub(prev.paging.1) as f64 / secs) as u64;
            s.disk_busy = ticks
                .iter()
                .filter_map(|(n, t)| {
                    let before = prev.disk_ticks.iter().find(|(p, _)| p == n)?.1;
                    Some(t.saturating_sub(before) as f64 / (secs * 1000.0))
                })
                .fold(0.0, f64::max)
                .min(1.0);
        }
        prev.paging = paging;
        prev.disk_ticks = ticks;
        let internet = internet_interfaces();
        for (name, recv, send) in parse_net_dev(&read("/proc/net/dev").unwrap_or_default()) {
            if internet.contains(&name) {
                s.net_recv += recv;
                s.net_send += send;
            } else {
                s.net_recv_intranet += recv;
                s.net_send_intranet += send;
            }
        }
        let uptime = read("/proc/uptime").unwrap_or_default();
        let mut u = uptime.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
        (s.uptime, s.idle_time) = (u.next().unwrap_or(0.0), u.next().unwrap_or(0.0));
        let load = read("/proc/loadavg").unwrap_or_default();
        for (slot, v) in s.load.iter_mut().zip(load.split_whitespace()) {
            *slot = v.parse().unwrap_or(0.0);
        }
        prev.at = Some(now);
        drop(prev);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_stat_with_a_command_holding_spaces_and_parentheses() {
        let text = "4242 (rs (x) y) S 1 4242 4242 0 -1 4194560 1500 0 2 0 120 35 0 0 20 0 9 0 \
                    3141 1234567 2048 18446744073709551615 1 1 0 0 0 0 0 4096 17987 0 0 0 17 1 0 0 0 0 0\n";
        let st = parse_self_stat(text).unwrap();
        assert_eq!(st.fields.len(), 44);
        assert_eq!(st.fields[1], ("comm", StatValue::Text("(rs (x) y)".into())));
        assert_eq!(st.fields[2], ("state", StatValue::Text("S".into())));
        assert_eq!(st.number("utime"), 120);
        assert_eq!(st.number("stime"), 35);
        assert_eq!(st.number("num_threads"), 9);
        assert_eq!(st.number("rss"), 2048);
        assert_eq!(st.number("rsslim"), 18446744073709551615);
        assert_eq!(st.fields.last().unwrap().0, "cguest_time");
        assert!(parse_self_stat("garbage").is_none());
        assert!(parse_self_stat("1 (x) S notanumber").is_none());
    }

    #[test]
    fn this_process_stat_parses() {
        let st = parse_self_stat(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        assert_eq!(st.number("pid"), std::process::id() as i128);
        assert!(st.number("num_threads") >= 1);
    }

    #[test]
    fn cpu_line_of_proc_stat() {
        let text = "cpu  100 5 50 800 20 1 2 3 4 0\ncpu0 50 2 25 400 10 0 1 1 2 0\nintr 1 2\n";
        let c = parse_proc_stat(text).unwrap();
        assert_eq!(
            c,
            CpuTimes { user: 100, nice: 5, sys: 50, idle: 800, iowait: 20, irq: 1, softirq: 2, steal: 3, guest: 4 }
        );
        assert_eq!(c.total(), 985);
    }

    #[test]
    fn meminfo_and_srs_figures() {
        let text = "MemTotal:        8000000 kB\nMemFree:         2000000 kB\nMemAvailable:    5000000 kB\n\
                    Buffers:          500000 kB\nCached:          1500000 kB\nSwapCached:  0 kB\n\
                    SwapTotal:       1000000 kB\nSwapFree:         750000 kB\n";
        let m = parse_meminfo(text).unwrap();
        assert_eq!(
            (m.total, m.free, m.buffers, m.cached, m.swap_total, m.swap_free),
            (8000000, 2000000, 500000, 1500000, 1000000, 750000)
        );
        assert_eq!(m.active(), 6000000);
        assert_eq!(m.real_in_use(), 4000000);
        assert_eq!(m.percent_ram(), 0.5);
        assert_eq!(m.percent_swap(), 0.25);
        assert!(parse_meminfo("nothing").is_none());
    }

    #[test]
    fn paging_disks_and_interfaces() {
        assert_eq!(parse_vmstat_paging("pgpgin 1234\npgpgout 99\npgpgoutx 7\n"), (1234, 99));
        let disks = "   8       0 sda 1 2 3 4 5 6 7 8 9 4242 11\n   8       1 sda1 1 2 3 4 5 6 7 8 9 42 11\n";
        assert_eq!(parse_diskstats(disks), vec![("sda".into(), 4242), ("sda1".into(), 42)]);
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n  eth0: 300 3 0 0 0 0 0 0 400 4 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), vec![("lo".into(), 1000, 2000), ("eth0".into(), 300, 400)]);
    }

    #[test]
    fn connections_as_srs_counts_them() {
        let sockstat = "sockets: used 300\nTCP: inuse 20 orphan 1 tw 7 alloc 25 mem 4\nUDP: inuse 3 mem 1\n";
        let snmp = "Ip: Forwarding\nIp: 1\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs\n\
                    Tcp: 1 200 120000 -1 50 60 0 0 12 999\nUdp: InDatagrams\nUdp: 5\n";
        assert_eq!(parse_connections(sockstat, snmp), Connections { sys: 32, established: 12, time_wait: 7, udp: 3 });
        assert_eq!(parse_connections("", ""), Connections::default());
    }

    #[test]
    fn a_second_sample_has_rates() {
        let s = SystemSampler::default();
        s.sample(&[]);
        // Burn a little CPU so the rate between the samples is above zero.
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        s.sample(&[]);
        let last = s.last();
        assert!(last.self_cpu > 0.0, "{last:?}");
        assert!(last.mem.is_some() && last.cpu.is_some() && last.rusage.is_some());
    }
}
