//! The Prometheus exposition (`exporter { enabled on; listen 9972; }`, `GET /metrics`).
//!
//! SRS's series keep their names so SRS dashboards keep working: `srs_build_info`,
//! `srs_node_uname_info`, `srs_cpu_percent`, `srs_memory`, `srs_send_bytes_total`,
//! `srs_receive_bytes_total`, `srs_streams`, `srs_clients`, `srs_clients_total`. rsrs adds its
//! own under `rsrs_`: clients by type, and per stream its publisher, players, bytes and frames.
//! At most [`MAX_LABELLED_STREAMS`] streams get series of their own (a flood of stream names must
//! not grow the exposition without bound); the rest are counted in `rsrs_streams_unlabelled`.
//!
//! Everything is read at scrape time from counters the media path keeps anyway (atomics) and
//! from the registries' maps; no lock a publisher or player takes is held while rendering.

pub mod cpu;
pub mod events;
pub mod rates;
pub mod system;

use crate::server::Server;
use cpu::resident_bytes;
use prometheus::{Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

/// Streams with series of their own, at most.
pub const MAX_LABELLED_STREAMS: usize = 1000;

fn uname() -> Vec<(&'static str, String)> {
    // Safety: uname fills the struct it is given; zeroed is a valid starting value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return Vec::new();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    vec![
        ("sysname", field(&u.sysname)),
        ("nodename", field(&u.nodename)),
        ("release", field(&u.release)),
        ("version", field(&u.version)),
        ("machine", field(&u.machine)),
    ]
}

/// A scrape's registry: every series is made afresh from the values of now, so a stream's
/// series vanish with it.
struct Scrape {
    registry: Registry,
}

impl Scrape {
    fn add(&self, c: impl prometheus::core::Collector + 'static) {
        // Names are fixed here and unique: registering cannot fail.
        let _ = self.registry.register(Box::new(c));
    }

    fn gauge(&self, name: &str, help: &str, v: i64) {
        if let Ok(g) = IntGauge::new(name, help) {
            g.set(v);
            self.add(g);
        }
    }

    fn counter(&self, name: &str, help: &str, v: u64) {
        if let Ok(c) = IntCounter::new(name, help) {
            c.inc_by(v);
            self.add(c);
        }
    }

    fn labelled_counters<const N: usize>(
        &self,
        name: &str,
        help: &str,
        labels: &[&str; N],
        values: impl Iterator<Item = ([&'static str; N], u64)>,
    ) {
        if let Ok(c) = IntCounterVec::new(Opts::new(name, help), labels) {
            for (l, v) in values {
                c.with_label_values(&l).inc_by(v);
            }
            self.add(c);
        }
    }

    fn labelled_gauges<const N: usize>(
        &self,
        name: &str,
        help: &str,
        labels: &[&str; N],
        values: impl Iterator<Item = ([&'static str; N], i64)>,
    ) {
        if let Ok(g) = IntGaugeVec::new(Opts::new(name, help), labels) {
            for (l, v) in values {
                g.with_label_values(&l).set(v);
            }
            self.add(g);
        }
    }

    fn info(&self, name: &str, help: &str, labels: &[(&str, String)]) {
        let names: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
        if let Ok(g) = IntGaugeVec::new(Opts::new(name, help), &names) {
            let values: Vec<&str> = labels.iter().map(|(_, v)| v.as_str()).collect();
            g.with_label_values(&values).set(1);
            self.add(g);
        }
    }
}

/// The exposition, in Prometheus's text format.
pub fn render(server: &Server) -> String {
    let cfg = server.config();
    let mut constant = HashMap::new();
    if !cfg.exporter.label.is_empty() {
        constant.insert("label".to_string(), cfg.exporter.label.clone());
    }
    if !cfg.exporter.tag.is_empty() {
        constant.insert("tag".to_string(), cfg.exporter.tag.clone());
    }
    let s = Scrape { registry: Registry::new_custom(None, Some(constant)).unwrap_or_default() };

    let mut parts = crate::version::VERSION.split('.');
    let mut next = || parts.next().unwrap_or("0").to_string();
    let (major, minor, revision) = (next(), next(), next());
    s.info(
        "srs_build_info",
        "A metric with a constant '1' value labeled by the version of the server",
        &[
            ("major", major),
            ("minor", minor),
            ("revision", revision),
            ("version", crate::version::VERSION.into()),
            // SRS's: the server and service ids of the API's envelope, and the pid.
            ("server", server.server_id.clone()),
            ("service", server.service_id.clone()),
            ("pid", std::process::id().to_string()),
            ("signature", crate::version::signature()),
        ],
    );
    s.info("srs_node_uname_info", "A metric with a constant '1' value labeled by the node's uname", &uname());
    if let Ok(cpu) =
        Gauge::new("srs_cpu_percent", "The CPU used by the process since the last scrape, in percent of one core")
    {
        cpu.set(server.cpu.percent());
        s.add(cpu);
    }
    // SRS's unit: KiB (its `rss * 4`); bytes are in process_resident_memory_bytes.
    s.gauge("srs_memory", "The resident memory of the process in KiB", (resident_bytes() / 1024) as i64);
    let bytes = server.clients.byte_totals(None);
    s.counter("srs_send_bytes_total", "Bytes sent to clients since start", bytes.send);
    s.counter("srs_receive_bytes_total", "Bytes received from clients since start", bytes.recv);
    let sources = server.hub.all();
    s.gauge("srs_streams", "Streams (published, or waited for by players)", sources.len() as i64);
    // SRS counts clients that publish or play; connections (API calls, scrapes, handshakes
    // not yet done) are rsrs_connections.
    let clients = server.clients.all();
    let identified = clients.iter().filter(|c| c.details().is_some()).count();
    s.gauge("srs_clients", "Clients publishing or playing", identified as i64);
    s.counter(
        "srs_clients_total",
        "Clients that published or played since start",
        server.clients.total.load(Ordering::Relaxed),
    );
    s.gauge("rsrs_connections", "Open connections (clients, API calls, scrapes)", clients.len() as i64);
    s.counter(
        "rsrs_connections_total",
        "Connections accepted since start",
        server.clients.connections.load(Ordering::Relaxed),
    );
    s.counter(
        "srs_clients_errs_total",
        "Client connections that ended on an error (not a close, a kick or the peer leaving)",
        server.clients.errors.load(Ordering::Relaxed),
    );
    process_series(&s);

    // Clients by what they do (SRS's client types), in all and per stream.
    let mut by_type: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut by_stream: HashMap<String, BTreeMap<&'static str, i64>> = HashMap::new();
    for d in clients.iter().filter_map(|c| c.details()) {
        let kind = d.kind.as_str();
        *by_type.entry(kind).or_default() += 1;
        *by_stream.entry(d.stream_id).or_default().entry(kind).or_default() += 1;
    }
    s.labelled_gauges("rsrs_clients", "Connected clients by type", &["type"], by_type.iter().map(|(t, n)| ([*t], *n)));

    let labels = ["vhost", "app", "stream"];
    let gauges = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &labels);
    let counters = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &labels);
    let (
        Ok(publishers),
        Ok(consumers),
        Ok(recv),
        Ok(send),
        Ok(frames),
        Ok(recv_kbps),
        Ok(send_kbps),
        Ok(gop),
        Ok(lags),
        Ok(skipped),
        Ok(players),
        Ok(paced),
    ) = (
        gauges("rsrs_stream_publishers", "Whether the stream has a publisher (1) or not (0)"),
        gauges("rsrs_stream_consumers", "Players and writers (HLS, DVR, edge forward) attached to the stream"),
        counters("rsrs_stream_receive_bytes_total", "Bytes the stream received from its publishers"),
        counters("rsrs_stream_send_bytes_total", "Bytes the stream's players were sent"),
        counters("rsrs_stream_video_frames_total", "Video frames the stream received"),
        gauges("rsrs_stream_receive_kbps", "Kilobits per second the stream received, over the last 30 s"),
        gauges("rsrs_stream_send_kbps", "Kilobits per second the stream's players were sent, over the last 30 s"),
        gauges("rsrs_stream_gop_cache_bytes", "Bytes in the stream's GOP cache (what a new player is sent first)"),
        counters("rsrs_stream_player_lags_total", "Times a slow player fell a whole ring behind and skipped ahead"),
        counters(
            "rsrs_stream_skipped_packets_total",
            "Packets slow players were not sent (dropped behind them, then skipped to a keyframe)",
        ),
        IntGaugeVec::new(
            Opts::new("rsrs_stream_clients", "Clients of the stream by type (players by protocol, publishers)"),
            &["vhost", "app", "stream", "type"],
        ),
        gauges(
            "rsrs_stream_publisher_paced",
            "Whether the stream's publisher reads at its players' merge-window closes (1) or at each message (0)",
        ),
    )
    else {
        return String::new();
    };
    let mut unlabelled = 0i64;
    let mut labelled = std::collections::HashSet::new();
    for (i, src) in sources.iter().enumerate() {
        if i >= MAX_LABELLED_STREAMS {
            unlabelled += 1;
            continue;
        }
        labelled.insert(src.key.clone());
        let l = [src.key.vhost.as_str(), src.key.app.as_str(), src.key.stream.as_str()];
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        publishers.with_label_values(&l).set(src.published.load(Ordering::Relaxed) as i64);
        consumers.with_label_values(&l).set(src.consumers.load(Ordering::Relaxed) as i64);
        recv.with_label_values(&l).inc_by(load(&src.recv_bytes));
        send.with_label_values(&l).inc_by(load(&src.send_bytes));
        frames.with_label_values(&l).inc_by(load(&src.video_frames));
        let (r, w) = server.rates.stream(&src.id);
        recv_kbps.with_label_values(&l).set(r as i64);
        send_kbps.with_label_values(&l).set(w as i64);
        gop.with_label_values(&l).set(load(&src.gop_bytes) as i64);
        lags.with_label_values(&l).inc_by(load(&src.lags));
        skipped.with_label_values(&l).inc_by(load(&src.skipped_packets));
        paced.with_label_values(&l).set(src.pacer.is_paced() as i64);
        for (kind, n) in by_stream.get(&src.id).into_iter().flatten() {
            players.with_label_values(&[l[0], l[1], l[2], kind]).set(*n);
        }
    }
    for c in [publishers, consumers, recv_kbps, send_kbps, gop, players, paced] {
        s.add(c);
    }
    for c in [recv, send, frames, lags, skipped] {
        s.add(c);
    }
    s.gauge("rsrs_streams_unlabelled", "Streams beyond the series cap, without series of their own", unlabelled);
    s.gauge("rsrs_hls_viewers", "HLS viewer sessions (hls_ctx)", server.hls_viewers.len() as i64);

    edge_series(&s, server, &labelled);
    srt_series(&s, server);
    rtc_series(&s, server);
    event_series(&s, server);

    let mut out = Vec::new();
    // Encoding into memory only fails on invalid metrics, which the names above are not.
    let _ = TextEncoder::new().encode(&s.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The standard process series (as Prometheus client libraries name them), from `/proc/self`.
fn process_series(s: &Scrape) {
    let Some(st) = std::fs::read_to_string("/proc/self/stat").ok().and_then(|t| system::parse_self_stat(&t)) else {
        return;
    };
    // Safety: sysconf has no preconditions.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    };
    if let Ok(c) = prometheus::Counter::new("process_cpu_seconds_total", "User and system CPU time of the process") {
        c.inc_by((st.number("utime") + st.number("stime")).max(0) as f64 / hz);
        s.add(c);
    }
    s.gauge("process_resident_memory_bytes", "Resident memory of the process", resident_bytes() as i64);
    s.gauge("process_virtual_memory_bytes", "Virtual memory of the process", st.number("vsize") as i64);
    s.gauge("process_threads", "Threads of the process", st.number("num_threads") as i64);
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    s.gauge("process_open_fds", "Open file descriptors of the process", fds as i64);
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        s.gauge(
            "rsrs_tokio_alive_tasks",
            "Tasks alive in the runtime (connections, streams, timers): flat under a steady load, or something leaks",
            rt.metrics().num_alive_tasks() as i64,
        );
    }
    // starttime is in ticks after boot; the boot time comes from /proc/stat's btime.
    let btime = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok())));
    if let (Some(btime), Ok(g)) =
        (btime, Gauge::new("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds"))
    {
        g.set(btime + st.number("starttime") as f64 / hz);
        s.add(g);
    }
}

/// Edge streams: by mode and upstream state, upstream connections begun and failed, and per
/// stream (within the cap) whether its upstream is connected and how often it reconnected.
fn edge_series(s: &Scrape, server: &Server, labelled: &std::collections::HashSet<crate::hub::StreamKey>) {
    use crate::edge::{EdgeMode, EdgeState};
    let edges = server.edges.all();
    let modes = [EdgeMode::Pull, EdgeMode::Forward];
    let states = [EdgeState::Connecting, EdgeState::Connected];
    let count = |m: EdgeMode, st: EdgeState| edges.iter().filter(|(_, e)| e.mode == m && e.state() == st).count();
    s.labelled_gauges(
        "rsrs_edge_streams",
        "Edge streams by mode (pull for players, forward for a publisher) and upstream state",
        &["mode", "state"],
        modes.iter().flat_map(|m| states.iter().map(move |st| ([m.as_str(), st.as_str()], count(*m, *st) as i64))),
    );
    let totals = &server.edges.totals;
    s.labelled_counters(
        "rsrs_edge_upstream_connects_total",
        "Edge upstream connections begun (the first of a stream, then each reconnect)",
        &["mode"],
        modes.iter().map(|m| ([m.as_str()], totals.connects[*m as usize].load(Ordering::Relaxed))),
    );
    s.labelled_counters(
        "rsrs_edge_upstream_failures_total",
        "Edge upstream connections that failed or broke",
        &["mode"],
        modes.iter().map(|m| ([m.as_str()], totals.failures[*m as usize].load(Ordering::Relaxed))),
    );
    let per_stream = ["vhost", "app", "stream", "mode"];
    let (Ok(connected), Ok(reconnects)) = (
        IntGaugeVec::new(
            Opts::new("rsrs_stream_edge_upstream_connected", "Whether the edge stream's upstream is connected"),
            &per_stream,
        ),
        IntCounterVec::new(
            Opts::new("rsrs_stream_edge_reconnects_total", "Upstream reconnections of the edge stream"),
            &per_stream,
        ),
    ) else {
        return;
    };
    for (key, e) in edges.iter().filter(|(k, _)| labelled.contains(k)) {
        let l = [key.vhost.as_str(), key.app.as_str(), key.stream.as_str(), e.mode.as_str()];
        connected.with_label_values(&l).set((e.state() == EdgeState::Connected) as i64);
        reconnects.with_label_values(&l).inc_by(e.reconnects());
    }
    s.add(connected);
    s.add(reconnects);
}

/// libsrt's statistics of each SRT connection (at most [`MAX_LABELLED_STREAMS`]): what a lossy
/// contribution link looks like from here.
fn srt_series(s: &Scrape, server: &Server) {
    let labels = ["client", "type", "vhost", "app", "stream"];
    let gauge = |name: &str, help: &str| prometheus::GaugeVec::new(Opts::new(name, help), &labels);
    let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &labels);
    let (Ok(rtt), Ok(buf_ms), Ok(rate), Ok(recv), Ok(sent), Ok(lost_in), Ok(lost_out), Ok(retrans), Ok(drop_in)) = (
        gauge("rsrs_srt_rtt_ms", "Round-trip time of the SRT connection, milliseconds"),
        gauge("rsrs_srt_receive_buffer_ms", "Media held in the SRT receive buffer, milliseconds"),
        gauge("rsrs_srt_bandwidth_mbps", "The SRT connection's estimated link bandwidth, Mb/s"),
        counter("rsrs_srt_packets_received_total", "SRT data packets received"),
        counter("rsrs_srt_packets_sent_total", "SRT data packets sent"),
        counter("rsrs_srt_packets_lost_total", "SRT data packets found missing on receive"),
        counter("rsrs_srt_send_packets_lost_total", "SRT data packets the peer reported missing"),
        counter("rsrs_srt_packets_retransmitted_total", "SRT data packets retransmitted (received or sent)"),
        counter("rsrs_srt_packets_dropped_total", "SRT data packets given up as too late to play on receive"),
    ) else {
        return;
    };
    let mut conns = server.srt.all();
    conns.truncate(MAX_LABELLED_STREAMS);
    for (id, st) in conns {
        let Some(d) = server.clients.get(&id).and_then(|c| c.details()) else { continue };
        let l = [id.as_str(), d.kind.as_str(), d.vhost.as_str(), d.app.as_str(), d.stream.as_str()];
        rtt.with_label_values(&l).set(st.rtt_ms);
        buf_ms.with_label_values(&l).set(st.rcv_buf_ms as f64);
        rate.with_label_values(&l).set(st.bandwidth_mbps);
        recv.with_label_values(&l).inc_by(st.pkt_recv);
        sent.with_label_values(&l).inc_by(st.pkt_sent);
        lost_in.with_label_values(&l).inc_by(st.pkt_rcv_loss);
        lost_out.with_label_values(&l).inc_by(st.pkt_snd_loss);
        retrans.with_label_values(&l).inc_by(st.pkt_retrans + st.pkt_rcv_retrans);
        drop_in.with_label_values(&l).inc_by(st.pkt_rcv_drop);
    }
    s.add(rtt);
    s.add(buf_ms);
    s.add(rate);
    s.add(recv);
    s.add(sent);
    s.add(lost_in);
    s.add(lost_out);
    s.add(retrans);
    s.add(drop_in);
}

/// WebRTC sessions, the feedback that shows lossy links (NACKs) and decoders starting over
/// (keyframe requests), and the audio transcoders WebRTC needs.
fn rtc_series(s: &Scrape, server: &Server) {
    let t = &server.rtc_totals;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let ways = [("play", 0usize), ("publish", 1)];
    s.labelled_gauges(
        "rsrs_rtc_sessions",
        "WebRTC sessions now (WHEP play, WHIP publish), connected or connecting",
        &["way"],
        ways.iter().map(|(w, i)| ([*w], t.sessions[*i].load(Ordering::Relaxed))),
    );
    s.labelled_counters(
        "rsrs_rtc_sessions_total",
        "WebRTC sessions that connected, and that ended without connecting (ICE or DTLS failed)",
        &["way", "outcome"],
        ways.iter().flat_map(|(w, i)| {
            [([*w, "connected"], load(&t.connected[*i])), ([*w, "never_connected"], load(&t.never_connected[*i]))]
        }),
    );
    s.labelled_counters(
        "rsrs_rtc_nacks_total",
        "RTCP NACKs: received from players (packets rsrs retransmitted), sent to publishers",
        &["direction"],
        [(["received"], load(&t.nacks_received)), (["sent"], load(&t.nacks_sent))].into_iter(),
    );
    s.labelled_counters(
        "rsrs_rtc_keyframe_requests_total",
        "RTCP PLIs and FIRs: received from players, sent to publishers",
        &["direction"],
        [(["received"], load(&t.keyframe_requests_received)), (["sent"], load(&t.keyframe_requests_sent))].into_iter(),
    );
    s.labelled_gauges(
        "rsrs_transcoders",
        "Audio transcoders running (AAC to Opus for WebRTC players, Opus to AAC for WHIP publishers)",
        &["direction"],
        crate::transcode::Direction::ALL.iter().map(|d| ([d.as_str()], crate::transcode::running(*d))),
    );
}

/// What the server did: reloads, HLS and DVR output, cluster redirects, hooks, refusals.
fn event_series(s: &Scrape, server: &Server) {
    let e = &server.events;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    s.labelled_counters(
        "rsrs_reloads_total",
        "Config reloads, applied or failed (an invalid config changes nothing)",
        &["result"],
        [(["applied"], load(&e.reloads)), (["failed"], load(&e.reload_failures))].into_iter(),
    );
    s.counter("rsrs_hls_segments_total", "HLS segments written", load(&e.hls_segments));
    s.counter("rsrs_hls_segment_bytes_total", "Bytes of HLS segments written", load(&e.hls_segment_bytes));
    s.counter("rsrs_hls_errors_total", "HLS writers stopped by an error (disk, codec, path)", load(&e.hls_errors));
    s.counter("rsrs_dvr_files_total", "DVR recordings finished", load(&e.dvr_files));
    s.counter("rsrs_dvr_errors_total", "DVR recorders stopped by an error", load(&e.dvr_errors));
    s.counter(
        "rsrs_cluster_redirects_total",
        "Players sent to another origin of the cluster that has their stream",
        load(&e.cluster_redirects),
    );
    s.labelled_counters(
        "rsrs_hook_calls_total",
        "HTTP hook calls by event and outcome (accepted, refused, failed, dropped)",
        &["event", "outcome"],
        server.hooks.calls.all().map(|(ev, o, n)| ([ev.name(), o.as_str()], n)),
    );
    s.gauge("rsrs_hook_notifications_pending", "Hook notifications not yet delivered", server.hooks.pending() as i64);
    s.labelled_counters(
        "rsrs_admission_refusals_total",
        "Clients kept out, by action and by what refused them (security, refer, token, hook)",
        &["action", "reason"],
        e.refusals().map(|(a, r, n)| ([a, r], n)),
    );
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::StreamKey;

    fn server() -> std::sync::Arc<Server> {
        let cfg = rsrs_config::Config::load_str(
            "listen 1935;\nexporter { enabled on; label east; }\nvhost __defaultVhost__ { }\n",
            "srs.conf",
            &Default::default(),
        )
        .unwrap();
        Server::new(cfg, None)
    }

    #[test]
    fn a_flood_of_stream_names_does_not_grow_the_exposition_past_the_cap() {
        let s = server();
        let settings = crate::server::source_settings(s.config().vhost("__defaultVhost__").unwrap());
        let mut sources = Vec::new();
        for i in 0..10_000 {
            let key = StreamKey { vhost: "__defaultVhost__".into(), app: "live".into(), stream: format!("s{i}") };
            sources.push(s.hub.publish(&key, &format!("c{i}"), "", settings).unwrap());
        }
        let text = render(&s);
        let per_stream = text.lines().filter(|l| l.starts_with("rsrs_stream_publishers{")).count();
        assert_eq!(per_stream, MAX_LABELLED_STREAMS);
        assert!(text.contains("rsrs_streams_unlabelled{label=\"east\"} 9000"), "{}", &text[..2000.min(text.len())]);
        assert!(text.contains("srs_streams{label=\"east\"} 10000"));
        assert!(text.len() < 1024 * 1024, "{} bytes", text.len());
        // A stream that goes has no series any more.
        for (i, src) in sources.iter().enumerate() {
            s.hub.unpublish(src, &format!("c{i}"));
        }
        let text = render(&s);
        assert!(!text.contains("rsrs_stream_publishers{"), "series of gone streams remain");
        assert!(text.contains("srs_streams{label=\"east\"} 0"));
    }
}
