//! The Prometheus exporter, scraped by a real Prometheus server (Debian's `prometheus`) while
//! ffmpeg publishes and rsrs-bench players play; queried through Prometheus's HTTP API, and
//! checked with `promtool check metrics`. Servers on 127.0.23.x.

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn exporter_conf() -> String {
    ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        "exporter {\n    enabled on;\n    listen IP:9972;\n    label test-cluster;\n}\nvhost __defaultVhost__ {",
    )
}

/// A Prometheus server scraping `target` every second, on `listen`; stopped when dropped.
struct Prometheus {
    _proc: Proc,
    addr: String,
}

impl Prometheus {
    fn start(name: &str, listen: &str, target: &str) -> Prometheus {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("prom-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: rsrs\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus must be installed (apt-get install prometheus)");
        Prometheus { _proc: Proc(child), addr: listen.to_string() }
    }

    /// The value of an instant query's first result, if any.
    fn query(&self, q: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", encode(q));
        let (status, _, body) = std::panic::catch_unwind(|| http_request(&self.addr, "GET", &path, &[])).ok()?;
        if status != 200 {
            return None;
        }
        let v: Value = serde_json::from_slice(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    fn wait_for(&self, q: &str, ok: impl Fn(f64) -> bool) -> Option<f64> {
        let mut last = None;
        wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
            last = self.query(q);
            last.is_some_and(&ok)
        });
        last
    }
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn scrape(addr: &str) -> String {
    let (status, head, body) = http_request(addr, "GET", "/metrics", &[]);
    assert_eq!(status, 200, "{head}");
    String::from_utf8(body).unwrap()
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (apt-get install prometheus)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prometheus_scrapes_players_bytes_and_streams_that_come_and_go() {
    let s = Rsrs::start("metrics", "127.0.23.1", &exporter_conf());
    let exporter = format!("{}:9972", s.ip);
    let prom = Prometheus::start("metrics", "127.0.23.2:19090", &exporter);
    let mut publisher = publish(&s.rtmp("live/m"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)), "{}", s.log_text());
    let players = Players::start(&s.http("live/m.flv"), "flv", 3, 12);

    // SRS's names, with the configured label, and rsrs's per-stream series.
    let text = scrape(&exporter);
    promtool_check(&text);
    for name in ["srs_build_info", "srs_cpu_percent", "srs_memory", "srs_send_bytes_total", "srs_receive_bytes_total"] {
        assert!(text.contains(&format!("\n{name}{{")), "{name} missing:\n{text}");
    }
    assert!(text.contains("label=\"test-cluster\""));

    // Through Prometheus: three HTTP-FLV players, and bytes out at about three times bytes in.
    let flv = prom.wait_for("sum(rsrs_clients{type=\"flv-play\"})", |v| v == 3.0);
    assert_eq!(flv, Some(3.0), "Prometheus should see the three players");
    let per_stream = prom.wait_for("rsrs_stream_consumers{stream=\"m\"}", |v| v >= 3.0);
    assert!(per_stream.is_some_and(|v| v >= 3.0), "{per_stream:?}");
    let ratio = prom.wait_for(
        "sum(rate(srs_send_bytes_total[5s])) / sum(rate(rsrs_stream_receive_bytes_total{stream=\"m\"}[5s]))",
        |v| (1.5..=6.0).contains(&v),
    );
    assert!(ratio.is_some_and(|v| (1.5..=6.0).contains(&v)), "bytes out / bytes in for 3 players: {ratio:?}");

    // Counters never go down as clients leave; the stream's series go with the stream.
    let before = prom.wait_for("srs_send_bytes_total", |v| v > 0.0).unwrap();
    let report = players.report();
    assert_eq!(report["players"], 3);
    let _ = publisher.0.kill();
    assert!(s.wait_log("publish stopped", Duration::from_secs(10)), "{}", s.log_text());
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || !scrape(&exporter).contains("stream=\"m\"")),
        "the stream's series should vanish:\n{}",
        scrape(&exporter)
    );
    let after = prom.wait_for("srs_send_bytes_total", |v| v >= before).unwrap();
    assert!(after >= before, "srs_send_bytes_total went down: {before} then {after}");
    promtool_check(&scrape(&exporter));
    // Only /metrics is served on the exporter's port.
    assert_eq!(http_request(&exporter, "GET", "/api/v1/clients", &[]).0, 404);
}
