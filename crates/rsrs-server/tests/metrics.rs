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

    /// Whether Prometheus accepts the query, and how many series it returns.
    fn check(&self, q: &str) -> (bool, usize, String) {
        let path = format!("/api/v1/query?query={}", encode(q));
        let (_, _, body) = http_request(&self.addr, "GET", &path, &[]);
        // A large answer comes chunked (one chunk here): the JSON is from the first `{` to the last `}`.
        let json = match (body.iter().position(|b| *b == b'{'), body.iter().rposition(|b| *b == b'}')) {
            (Some(a), Some(b)) => &body[a..=b],
            _ => &body[..],
        };
        let v: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
        let n = v["data"]["result"].as_array().map_or(0, |r| r.len());
        (v["status"] == "success", n, String::from_utf8_lossy(&body).into_owned())
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
    let players = Players::start(&s.http("live/m.flv"), "flv", 3, 18);

    // SRS's names, with the configured label, and rsrs's per-stream series.
    let text = scrape(&exporter);
    promtool_check(&text);
    for name in [
        "srs_build_info",
        "srs_cpu_percent",
        "srs_memory",
        "srs_send_bytes_total",
        "srs_receive_bytes_total",
        "srs_clients_errs_total",
        "process_open_fds",
        "rsrs_hook_calls_total",
        "rsrs_admission_refusals_total",
        "rsrs_reloads_total",
        "rsrs_edge_streams",
        "rsrs_hls_segments_total",
    ] {
        assert!(text.contains(&format!("\n{name}{{")), "{name} missing:\n{text}");
    }
    assert!(text.contains("label=\"test-cluster\""));

    // Through Prometheus: three HTTP-FLV players, and bytes out at about three times bytes in.
    let flv = prom.wait_for("sum(rsrs_clients{type=\"flv-play\"})", |v| v == 3.0);
    assert_eq!(flv, Some(3.0), "Prometheus should see the three players");
    let per_stream = prom.wait_for("rsrs_stream_consumers{stream=\"m\"}", |v| v >= 3.0);
    assert!(per_stream.is_some_and(|v| v >= 3.0), "{per_stream:?}");
    let by_protocol = prom.wait_for("rsrs_stream_clients{stream=\"m\",type=\"flv-play\"}", |v| v == 3.0);
    assert_eq!(by_protocol, Some(3.0), "players of the stream by protocol");
    let gop = prom.wait_for("rsrs_stream_gop_cache_bytes{stream=\"m\"}", |v| v > 0.0);
    assert!(gop.is_some(), "the stream's GOP cache holds bytes");
    // The 30 s bitrate, sampled every 5 s: the sample's bitrate is a few hundred kb/s.
    let kbps = prom.wait_for("rsrs_stream_receive_kbps{stream=\"m\"}", |v| v > 20.0);
    assert!(kbps.is_some_and(|v| v < 20_000.0), "the stream's receive bitrate: {kbps:?}");
    let ratio = prom.wait_for(
        "sum(rate(srs_send_bytes_total[5s])) / sum(rate(rsrs_stream_receive_bytes_total{stream=\"m\"}[5s]))",
        |v| (1.5..=6.0).contains(&v),
    );
    assert!(ratio.is_some_and(|v| (1.5..=6.0).contains(&v)), "bytes out / bytes in for 3 players: {ratio:?}");

    // The Grafana dashboard's queries and prometheus-adapter's rules, on this live data.
    dashboard_and_autoscaling_queries_work(&prom);

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
    // Over every sample Prometheus took, no counter was ever seen to go down.
    let resets = prom.wait_for(
        "sum(resets(srs_send_bytes_total[5m]) + resets(srs_receive_bytes_total[5m]) + resets(srs_clients_total[5m]))",
        |_| true,
    );
    assert_eq!(resets, Some(0.0), "a counter went down while clients left");
    promtool_check(&scrape(&exporter));
    // Only /metrics is served on the exporter's port.
    assert_eq!(http_request(&exporter, "GET", "/api/v1/clients", &[]).0, 404);
}

/// Every `expr` in a Grafana dashboard (panels, annotations), with its panel's title.
fn exprs(v: &Value, title: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            let title = m.get("title").and_then(|t| t.as_str()).unwrap_or(title);
            if let Some(e) = m.get("expr").and_then(|e| e.as_str()) {
                out.push((title.to_string(), e.to_string()));
            }
            for x in m.values() {
                exprs(x, title, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| exprs(x, title, out)),
        _ => {}
    }
}

/// deploy/grafana/rsrs.json's queries all parse and those of live things return series; the
/// HPA example's custom metrics (prometheus-adapter rules) give the players and the egress.
fn dashboard_and_autoscaling_queries_work(prom: &Prometheus) {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("deploy/grafana/rsrs.json")).unwrap()).unwrap();
    let mut all = Vec::new();
    exprs(&dashboard, "", &mut all);
    assert!(all.len() >= 30, "{} queries", all.len());
    let as_grafana = |e: &str| e.replace("$instance", ".*").replace("$stream", ".*").replace("$__rate_interval", "1m");
    for (title, e) in &all {
        let (ok, _, body) = prom.check(&as_grafana(e));
        assert!(ok, "dashboard panel {title:?}: Prometheus refuses {e}: {body}");
    }
    for title in [
        "Players",
        "Egress",
        "Bitrate received per stream",
        "Players per stream",
        "GOP cache",
        "Clients by type",
        "CPU",
        "Open file descriptors",
    ] {
        let (_, e) = all.iter().find(|(t, _)| t == title).unwrap_or_else(|| panic!("no panel {title}"));
        let (_, n, body) = prom.check(&as_grafana(e));
        assert!(n > 0, "panel {title:?} shows nothing during a publish with players: {e}: {body}");
    }
    let (_, players) = all.iter().find(|(t, _)| t == "Players").unwrap();
    assert_eq!(prom.query(&as_grafana(players)), Some(3.0), "{players}");

    // prometheus-adapter fills <<.Series>>, <<.LabelMatchers>> and <<.GroupBy>> per pod; here
    // the one target stands for the pod.
    let rules =
        std::fs::read_to_string(repo_root().join("deploy/k8s/edge-autoscaling/prometheus-adapter.yaml")).unwrap();
    let quoted = |key: &str| -> Vec<String> {
        rules
            .lines()
            .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix(key))
            .map(|v| v.trim().trim_matches('\'').to_string())
            .collect()
    };
    let (series, queries) = (quoted("seriesQuery:"), quoted("metricsQuery:"));
    assert_eq!((series.len(), queries.len()), (2, 2), "{rules}");
    let mut values = Vec::new();
    // Three players; the sample is a few hundred kb/s, so three of it are over 10 kB/s.
    let expected: [fn(f64) -> bool; 2] = [|v| v == 3.0, |v| v > 10_000.0];
    for ((s, q), ok) in series.iter().zip(&queries).zip(expected) {
        let name = s.split('{').next().unwrap();
        let q = q
            .replace("<<.Series>>", name)
            .replace("<<.LabelMatchers>>", "job=\"rsrs\"")
            .replace("<<.GroupBy>>", "instance");
        values.push(prom.wait_for(&q, ok));
    }
    assert_eq!(values[0], Some(3.0), "rsrs_players for the HPA: {queries:?}");
    assert!(values[1].is_some_and(|v| v > 10_000.0), "rsrs_egress_bytes_per_second for the HPA: {values:?}");
}

/// The API's figures an SRS console or exporter reads: 30 s rates of clients, streams and
/// vhosts, the process's and the machine's figures from /proc, and the statistics endpoints.
#[test]
fn api_reports_rates_and_machine_figures_as_srs_does() {
    let s = Rsrs::start("api-figures", "127.0.23.3", ORIGIN_CONF);
    let mut publisher = publish(&s.rtmp("live/f"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)), "{}", s.log_text());
    let players = Players::start(&s.http("live/f.flv"), "flv", 2, 14);
    let positive = |v: &Value| v.as_f64().is_some_and(|x| x > 0.0);

    // Rates come from samples 5 s apart: the second sample gives the first rate.
    let vhosts = s.wait_api("/api/v1/vhosts/", Duration::from_secs(20), |v| {
        positive(&v["vhosts"][0]["kbps"]["recv_30s"]) && positive(&v["vhosts"][0]["kbps"]["send_30s"])
    });
    let recv = vhosts["vhosts"][0]["kbps"]["recv_30s"].as_f64().unwrap();
    let send = vhosts["vhosts"][0]["kbps"]["send_30s"].as_f64().unwrap();
    assert!(send > recv, "two players are sent more than the publisher sends: {vhosts}");
    let streams = s.wait_api("/api/v1/streams/", Duration::from_secs(10), |v| {
        positive(&v["streams"][0]["kbps"]["recv_30s"]) && positive(&v["streams"][0]["kbps"]["send_30s"])
    });
    assert_eq!(streams["streams"][0]["name"], "f");

    let sum = s.wait_api("/api/v1/summaries", Duration::from_secs(10), |v| positive(&v["data"]["self"]["cpu_percent"]));
    let (me, sys) = (&sum["data"]["self"], &sum["data"]["system"]);
    assert_eq!(sum["data"]["ok"], true, "{sum}");
    assert_eq!(me["pid"].as_u64(), Some(s.pid() as u64));
    assert!(me["cpu_percent"].as_f64().unwrap() < 3.0, "a fraction of a core, as SRS: {me}");
    for field in ["mem_kbyte", "mem_percent"] {
        assert!(positive(&me[field]), "self.{field}: {me}");
    }
    for field in [
        "cpu_percent",
        "mem_ram_kbyte",
        "mem_ram_percent",
        "cpus",
        "cpus_online",
        "uptime",
        "conn_sys",
        "conn_sys_et",
        "conn_srs",
        "net_recvi_bytes",
        "net_sendi_bytes",
        "srs_recv_bytes",
        "srs_send_bytes",
    ] {
        assert!(positive(&sys[field]), "system.{field} should be above 0: {sys}");
    }
    for field in ["disk_read_KBps", "disk_write_KBps", "disk_busy_percent", "net_recv_bytes", "load_1m"] {
        assert!(sys[field].is_number(), "system.{field}: {sys}");
    }

    let data = |path: &str| {
        let v = s.api(path);
        assert_eq!(v["code"], 0, "{path}: {v}");
        assert_eq!(v["data"]["ok"], true, "{path}: {v}");
        v["data"].clone()
    };
    let ru = data("/api/v1/rusages");
    assert!(positive(&ru["ru_maxrss"]) && positive(&ru["ru_minflt"]), "{ru}");
    let me = data("/api/v1/self_proc_stats");
    assert_eq!(me["pid"].as_u64(), Some(s.pid() as u64));
    assert_eq!(me["comm"], "(rsrs)");
    assert!(positive(&me["num_threads"]) && positive(&me["rss"]) && positive(&me["vsize"]), "{me}");
    let cpu = data("/api/v1/system_proc_stats");
    assert!(positive(&cpu["user"]) && positive(&cpu["idle"]), "{cpu}");
    let mem = data("/api/v1/meminfos");
    assert!(positive(&mem["MemTotal"]) && positive(&mem["RealInUse"]), "{mem}");
    let features = s.api("/api/v1/features");
    assert_eq!(features["data"]["features"]["hls"], true, "{features}");
    let (status, _, body) = http_request(
        &format!("{}:1985", s.ip),
        "GET",
        "/api/v1/requests?x=1",
        &[("X-Probe", "yes"), ("Authorization", "Basic c2VjcmV0")],
    );
    assert_eq!(status, 200);
    let echo: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["data"]["uri"], "/api/v1/requests?x=1");
    assert_eq!(echo["data"]["METHOD"], "GET");
    let headers = echo["data"]["headers"].as_object().unwrap();
    assert!(headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("x-probe") && v == "yes"), "{echo}");
    assert!(!headers.keys().any(|k| k.eq_ignore_ascii_case("authorization")), "credentials are not echoed: {echo}");
    assert_eq!(s.api("/api/v1/tests/errors")["code"], 100);
    let (status, head, _) = http_request(&format!("{}:1985", s.ip), "GET", "/api/v1/tests/redirects", &[]);
    assert_eq!(status, 301, "{head}");
    assert!(head.to_ascii_lowercase().contains("location: /api/v1/tests/errors"), "{head}");

    assert_eq!(players.report()["players"], 2);
    let _ = publisher.0.kill();
}
