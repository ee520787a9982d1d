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
            ("server", crate::version::signature()),
        ],
    );
    s.info("srs_node_uname_info", "A metric with a constant '1' value labeled by the node's uname", &uname());
    if let Ok(cpu) =
        Gauge::new("srs_cpu_percent", "The CPU used by the process since the last scrape, in percent of one core")
    {
        cpu.set(server.cpu.percent());
        s.add(cpu);
    }
    s.gauge("srs_memory", "The resident memory of the process in bytes", resident_bytes() as i64);
    let bytes = server.clients.byte_totals(None);
    s.counter("srs_send_bytes_total", "Bytes sent to clients since start", bytes.send);
    s.counter("srs_receive_bytes_total", "Bytes received from clients since start", bytes.recv);
    let sources = server.hub.all();
    s.gauge("srs_streams", "Streams (published, or waited for by players)", sources.len() as i64);
    let clients = server.clients.all();
    s.gauge("srs_clients", "Connected clients", clients.len() as i64);
    s.counter("srs_clients_total", "Clients connected since start", server.clients.total.load(Ordering::Relaxed));

    // Clients by what they do (SRS's client types; "unidentified" before a publish or play).
    let mut by_type: BTreeMap<&'static str, i64> = BTreeMap::new();
    for c in &clients {
        *by_type.entry(c.details().map_or("unidentified", |d| d.kind.as_str())).or_default() += 1;
    }
    if let Ok(types) = IntGaugeVec::new(Opts::new("rsrs_clients", "Connected clients by type"), &["type"]) {
        for (t, n) in by_type {
            types.with_label_values(&[t]).set(n);
        }
        s.add(types);
    }

    let labels = ["vhost", "app", "stream"];
    let gauges = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &labels);
    let counters = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &labels);
    let (Ok(publishers), Ok(consumers), Ok(recv), Ok(send), Ok(frames)) = (
        gauges("rsrs_stream_publishers", "Whether the stream has a publisher (1) or not (0)"),
        gauges("rsrs_stream_consumers", "Players and writers (HLS, DVR, edge forward) attached to the stream"),
        counters("rsrs_stream_receive_bytes_total", "Bytes the stream received from its publishers"),
        counters("rsrs_stream_send_bytes_total", "Bytes the stream's players were sent"),
        counters("rsrs_stream_video_frames_total", "Video frames the stream received"),
    ) else {
        return String::new();
    };
    let mut unlabelled = 0i64;
    for (i, src) in sources.iter().enumerate() {
        if i >= MAX_LABELLED_STREAMS {
            unlabelled += 1;
            continue;
        }
        let l = [src.key.vhost.as_str(), src.key.app.as_str(), src.key.stream.as_str()];
        publishers.with_label_values(&l).set(src.publisher().is_some() as i64);
        consumers.with_label_values(&l).set(src.consumers.load(Ordering::Relaxed) as i64);
        recv.with_label_values(&l).inc_by(src.recv_bytes.load(Ordering::Relaxed));
        send.with_label_values(&l).inc_by(src.send_bytes.load(Ordering::Relaxed));
        frames.with_label_values(&l).inc_by(src.video_frames.load(Ordering::Relaxed));
    }
    s.add(publishers);
    s.add(consumers);
    s.add(recv);
    s.add(send);
    s.add(frames);
    s.gauge("rsrs_streams_unlabelled", "Streams beyond the series cap, without series of their own", unlabelled);
    s.gauge("rsrs_hls_viewers", "HLS viewer sessions (hls_ctx)", server.hls_viewers.len() as i64);
    s.gauge("rsrs_hook_notifications_pending", "Hook notifications not yet delivered", server.hooks.pending() as i64);

    let mut out = Vec::new();
    // Encoding into memory only fails on invalid metrics, which the names above are not.
    let _ = TextEncoder::new().encode(&s.registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
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
