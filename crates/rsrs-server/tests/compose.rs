//! The deployment kit run for real: every topology under deploy/compose brought up from the
//! project's own images (built here without a registry), each container running the srs.conf its
//! Kubernetes manifest ships, answering to the manifests' Service names. Publishers are the demo
//! publisher container; ffprobe plays through the Service names from inside the network; players
//! that count frames run on the host. Then what each scenario promises under disruption: a killed
//! origin, edges rolled one by one, a ConfigMap swapped the kubelet's way.
//! Needs a Docker engine (required in CI through RSRS_REQUIRE_DOCKER).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

const RSRS_IMAGE: &str = "rsrs:test";
const PUBLISHER_IMAGE: &str = "rsrs-publisher:test";

/// Builds the images once per test binary (deploy/compose/build-images.sh) and extracts every
/// manifest's srs.conf (deploy/k8s/check.py --extract); returns the extraction directory.
fn kit() -> &'static Path {
    static KIT: OnceLock<PathBuf> = OnceLock::new();
    KIT.get_or_init(|| {
        let st =
            Command::new("bash").arg(repo_root().join("deploy/compose/build-images.sh")).arg("test").status().unwrap();
        assert!(st.success(), "deploy/compose/build-images.sh failed");
        let extract = tmp("compose-configs");
        let _ = std::fs::remove_dir_all(&extract);
        let out = Command::new("python3")
            .arg(repo_root().join("deploy/k8s/check.py"))
            .args(["--rsrs", BIN, "--extract"])
            .arg(&extract)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "check.py --extract: {text}");
        extract
    })
}

/// The srs.conf the Helm chart renders for an example values file (deploy/helm/check.py
/// --extract, with `helm install srs`'s names), by example and ConfigMap name.
fn chart_conf(example: &str, configmap: &str) -> String {
    static CHART: OnceLock<PathBuf> = OnceLock::new();
    let dir = CHART.get_or_init(|| {
        let extract = tmp("helm-configs");
        let _ = std::fs::remove_dir_all(&extract);
        let out = Command::new("python3")
            .arg(repo_root().join("deploy/helm/check.py"))
            .args(["--rsrs", BIN, "--cache"])
            .arg(tmp("tools"))
            .arg("--extract")
            .arg(&extract)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "deploy/helm/check.py --extract: {text}");
        extract
    });
    let path = dir.join(example).join(configmap).join("srs.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The srs.conf a manifest ships, by scenario directory and ConfigMap name.
fn shipped_conf(scenario: &str, configmap: &str) -> String {
    let path = kit().join(scenario).join(configmap).join("srs.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A directory laid out as the kubelet mounts a ConfigMap, holding `conf` as srs.conf.
fn configmap_dir(name: &str, conf: &str) -> PathBuf {
    let dir = tmp(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_configmap_version(&dir, 1, conf);
    dir
}

/// The `srs.conf: |` blocks of the SRS guide's own ConfigMaps, in the order the guide gives them.
fn guide_confs() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("../shared/seed/000_a9cad5b2dcccb222.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut confs = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("srs.conf: |") {
            let indent = l.len() - l.trim_start().len();
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|b| b.trim().is_empty() || b.len() - b.trim_start().len() > indent)
                .copied()
                .collect();
            let cut = body.iter().map(|b| b.len() - b.trim_start().len()).filter(|&n| n > indent).min().unwrap_or(0);
            confs.push(body.iter().map(|b| format!("{}\n", b.get(cut..).unwrap_or(""))).collect());
        }
    }
    confs
}

/// A compose project; taken down with its volumes when dropped.
struct Topology {
    project: String,
    file: PathBuf,
    env: Vec<(String, String)>,
}

impl Topology {
    /// `docker-compose up -d` of deploy/compose/<dir> with the test images and the generated sample
    /// as the demo publisher's source; `env` names the config directories (and moves host ports).
    fn up(name: &str, dir: &str, env: &[(&str, &dyn AsRef<std::ffi::OsStr>)]) -> Topology {
        kit();
        let prefix = format!("rsrs{name}");
        remove_stale_projects(&prefix);
        let sample = sample();
        let mut all: Vec<(String, String)> = vec![
            ("RSRS_IMAGE".into(), RSRS_IMAGE.into()),
            ("PUBLISHER_IMAGE".into(), PUBLISHER_IMAGE.into()),
            ("NGINX_IMAGE".into(), "rsrs-nginx:test".into()),
            ("MEDIA_DIR".into(), sample.parent().unwrap().display().to_string()),
            ("SOURCE".into(), format!("/media/{}", sample.file_name().unwrap().to_string_lossy())),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.as_ref().to_string_lossy().into_owned())));
        let topo = Topology {
            project: format!("{prefix}{}", std::process::id()),
            file: repo_root().join("deploy/compose").join(dir).join("docker-compose.yml"),
            env: all,
        };
        let up = topo.compose(&["up", "-d"]);
        assert!(up.status.success(), "compose up {dir}: {}", String::from_utf8_lossy(&up.stderr));
        topo
    }

    fn compose(&self, args: &[&str]) -> Output {
        let mut c = Command::new("docker-compose");
        c.args(["-p", &self.project, "-f"]).arg(&self.file).args(args);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.output().expect("docker-compose")
    }

    fn container(&self, service: &str) -> String {
        let id = String::from_utf8_lossy(&self.compose(&["ps", "-q", service]).stdout).trim().to_string();
        assert!(!id.is_empty(), "no container for {service}");
        id
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker").args(args).output().expect("docker")
    }

    fn logs(&self, service: &str) -> String {
        let out = self.docker(&["logs", &self.container(service)]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    fn wait_logs(&self, service: &str, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, POLL, || self.logs(service).contains(needle))
    }

    fn exit_code(&self, service: &str) -> String {
        let out = self.docker(&["inspect", "-f", "{{.State.ExitCode}}", &self.container(service)]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `docker stop` (SIGTERM, then SIGKILL after 60 s) in the background, as Kubernetes ends a pod.
    fn stop_in_background(&self, service: &str) -> std::process::Child {
        Command::new("docker")
            .args(["stop", "-t", "60", &self.container(service)])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// A command in a throwaway container of the publisher image (ffmpeg, ffprobe) on the
    /// topology's network, so the manifests' Service names resolve.
    fn tool(&self, cmd: &[&str]) -> Output {
        let net = format!("{}_cluster", self.project);
        Command::new("docker")
            .args(["run", "--rm", "--network", &net, PUBLISHER_IMAGE, "timeout", "40"])
            .args(cmd)
            .output()
            .expect("docker run")
    }

    /// ffprobe from inside the network: `seconds` of media from `url`.
    fn probe(&self, url: &str, seconds: u32, opts: &[&str]) -> (Vec<serde_json::Value>, Vec<Packet>) {
        let interval = format!("%+{seconds}");
        let mut cmd = vec!["ffprobe", "-v", "error", "-show_streams", "-show_packets", "-of", "json"];
        cmd.extend_from_slice(opts);
        cmd.extend_from_slice(&["-read_intervals", &interval, url]);
        let out = self.tool(&cmd);
        assert!(out.status.success(), "ffprobe {url} in the network: {}", String::from_utf8_lossy(&out.stderr));
        parse_probe(&out.stdout)
    }

    /// A shell command in a container with the named volume of this project mounted on /v.
    fn in_volume(&self, volume: &str, script: &str) -> Output {
        let mount = format!("{}_{volume}:/v", self.project);
        self.docker(&["run", "--rm", "-v", &mount, RSRS_IMAGE, "sh", "-c", script])
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "-t", "5"]);
    }
}

/// Containers left by an earlier run that was killed before its Drop (they would hold the ports).
fn remove_stale_projects(prefix: &str) {
    let out = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.ID}} {{.Label \"com.docker.compose.project\"}}"])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((id, project)) = line.split_once(' ') {
            let rest = project.strip_prefix(prefix).unwrap_or("x");
            if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()) {
                let _ = Command::new("docker").args(["rm", "-f", "-v", id]).output();
            }
        }
    }
}

/// How often the waits below ask again.
const POLL: Duration = Duration::from_millis(200);

/// The status of GET `path` on a port published on 127.0.0.1, or None if no HTTP answer came.
fn local_status(port: u16, path: &str) -> Option<u16> {
    http_status(&format!("127.0.0.1:{port}"), path)
}

fn wait_http(port: u16, path: &str, status: u16, timeout: Duration) {
    let ok = wait_until(timeout, POLL, || local_status(port, path) == Some(status));
    assert!(ok, "127.0.0.1:{port}{path} never answered {status}");
}

/// Names of the streams an rsrs API (on 127.0.0.1:`port`) lists.
fn streams(port: u16) -> Vec<String> {
    let addr = format!("127.0.0.1:{port}");
    if local_status(port, "/api/v1/versions") != Some(200) {
        return Vec::new();
    }
    let (_, _, body) = http_request(&addr, "GET", "/api/v1/streams/", &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    v["streams"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn wait_stream(port: u16, name: &str, timeout: Duration) {
    let ok = wait_until(timeout, POLL, || streams(port).iter().any(|s| s == name));
    assert!(ok, "the API on {port} never listed {name}");
}

/// RTMP players (edge upstreams) an rsrs API on 127.0.0.1:`port` lists.
fn rtmp_plays(port: u16) -> usize {
    let (_, _, body) = http_request(&format!("127.0.0.1:{port}"), "GET", "/api/v1/clients/?count=100", &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    v["clients"].as_array().map(|a| a.iter().filter(|c| c["type"] == "rtmp-play").count()).unwrap_or(0)
}

fn wait_rtmp_plays(port: u16, n: usize, timeout: Duration) {
    let mut now = 0;
    let ok = wait_until(timeout, POLL, || {
        now = rtmp_plays(port);
        now == n
    });
    assert!(ok, "the API on {port} lists {now} RTMP players, not {n}");
}

fn assert_not_cut_off(r: &serde_json::Value, what: &str) {
    eprintln!("{what}: {} players, {} stalls, {:.1} media s", r["players"], r["stalls"], r["media_secs"]);
    assert_eq!(r["connected"], r["players"], "{what}: {r}");
    assert_eq!(r["disconnected"], 0, "{what}: a player was cut off: {r}");
    assert_eq!(r["without_video"], 0, "{what}: {r}");
}

#[test]
#[cfg_attr(no_compose, ignore = "no Docker engine or docker-compose (RSRS_REQUIRE_DOCKER=1 makes this a failure)")]
fn quickstart_serves_its_service_name_and_reloads_on_a_configmap_swap() {
    require_docker();
    let conf = shipped_conf("quickstart", "rsrs-config");
    let dir = configmap_dir("compose-quickstart-conf", &conf);
    let topo = Topology::up("qs", "quickstart", &[("RSRS_CONF", &dir)]);
    wait_http(18081, "/readyz", 200, Duration::from_secs(30));
    // The demo publisher container publishes to rtmp://rsrs-service/live/livestream.
    wait_stream(19881, "livestream", Duration::from_secs(30));
    let (s, p) = topo.probe("rtmp://rsrs-service/live/livestream", 2, &[]);
    assert_sample_stream(&s, &p);
    let (s, p) = topo.probe("http://rsrs-service:8080/live/livestream.flv", 2, &[]);
    assert_sample_stream(&s, &p);
    // SRT out of the image (it carries libsrt): by the Service name, and through the published
    // UDP port from the host.
    let (s, p) = topo.probe("srt://rsrs-service:10080?streamid=#!::r=live/livestream,m=request", 2, &[]);
    assert_sample_stream(&s, &p);
    let (s, p) = probe("srt://127.0.0.1:10381?streamid=#!::r=live/livestream,m=request", 2);
    assert_sample_stream(&s, &p);
    // The guide's canary check: `ffmpeg -i URL 2>&1 | grep server_version` names the server.
    let out = topo.tool(&["sh", "-c", "ffmpeg -hide_banner -i rtmp://rsrs-service/live/livestream 2>&1 | grep server"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("server_version") && text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    // The kubelet's ConfigMap update turns the API off; players are not disturbed.
    let players = Players::start("rtmp://127.0.0.1:19381/live/livestream", "rtmp", 4, 6);
    std::thread::sleep(Duration::from_secs(1));
    let api_off = conf.replacen("enabled         on;", "enabled         off;", 1);
    assert!(api_off.contains("http_api {\n    enabled         off;"), "{api_off}");
    write_configmap_version(&dir, 2, &api_off);
    assert!(topo.wait_logs("rsrs", "reload (inotify) applied", Duration::from_secs(10)), "{}", topo.logs("rsrs"));
    assert!(topo.logs("rsrs").contains("auto reload: ..data changed"), "{}", topo.logs("rsrs"));
    assert_eq!(local_status(19881, "/api/v1/versions"), None, "the API listener is closed");
    assert_eq!(local_status(18081, "/readyz"), Some(200), "HTTP server untouched");
    let r = players.report();
    assert_not_cut_off(&r, "players across the reload");
    assert_eq!(r["kept_up"], 4, "{r}");
    // `docker stop`: SIGTERM without force_grace_quit is a fast, clean quit.
    let st = topo.docker(&["stop", "-t", "20", &topo.container("rsrs")]);
    assert!(st.status.success());
    assert_eq!(topo.exit_code("rsrs"), "0", "{}", topo.logs("rsrs"));
}

#[test]
#[cfg_attr(no_compose, ignore = "no Docker engine or docker-compose (RSRS_REQUIRE_DOCKER=1 makes this a failure)")]
fn hls_pod_shares_segments_with_nginx_and_the_cronjob_removes_only_leftovers() {
    require_docker();
    let conf = shipped_conf("hls-nginx", "rsrs-hls-config");
    let dir = configmap_dir("compose-hls-conf", &conf);
    let topo = Topology::up("hls", "hls-nginx", &[("RSRS_CONF", &dir)]);
    wait_http(18091, "/readyz", 200, Duration::from_secs(30));
    // The init container copied rsrs's default web files into the volume nginx serves.
    wait_http(18090, "/", 200, Duration::from_secs(30));
    let (_, _, index) = http_request("127.0.0.1:18090", "GET", "/", &[]);
    assert_eq!(index, std::fs::read(repo_root().join("crates/rsrs-server/assets/index.html")).unwrap());
    // hls_fragment 10: the first playlist appears after a segment of about 10 s.
    wait_http(18090, "/live/livestream.m3u8", 200, Duration::from_secs(40));
    for url in ["http://rsrs-hls-service/live/livestream.m3u8", "http://rsrs-hls-service:8080/live/livestream.m3u8"] {
        let (s, p) = topo.probe(url, 3, &["-live_start_index", "0"]);
        assert_sample_stream(&s, &p);
    }
    // The CronJob's command on the same volume: old leftovers go; recordings, the web files and
    // the live playlist stay, however old.
    let seed = topo.in_volume(
        "html",
        "mkdir -p /v/old && touch -d '2026-10-01 00:00' /v/old/a.ts /v/old/a.m3u8 /v/old/b.flv.tmp /v/old/rec.flv \
         /v/index.html && mkdir -p /v/empty && touch -d '2026-10-01 00:00' /v/empty",
    );
    assert!(seed.status.success(), "{}", String::from_utf8_lossy(&seed.stderr));
    let run = topo.compose(&["run", "--rm", "cleanup"]);
    assert!(run.status.success(), "cleanup: {}", String::from_utf8_lossy(&run.stderr));
    let left = topo.in_volume("html", "cd /v && find . -type f -o -type d | sort");
    let left = String::from_utf8_lossy(&left.stdout).to_string();
    for gone in ["./old/a.ts", "./old/a.m3u8", "./old/b.flv.tmp", "./empty"] {
        assert!(!left.lines().any(|l| l == gone), "{gone} was left: {left}");
    }
    for kept in ["./old/rec.flv", "./index.html", "./live/livestream.m3u8"] {
        assert!(left.lines().any(|l| l == kept), "{kept} was removed: {left}");
    }
    // The kubelet's ConfigMap update turns HLS off: the running stream stops writing segments,
    // RTMP and HTTP-FLV go on.
    let hls_off = conf.replace("hls {\n        enabled         on;", "hls {\n        enabled         off;");
    assert_ne!(hls_off, conf);
    write_configmap_version(&dir, 2, &hls_off);
    assert!(
        topo.wait_logs("rsrs", "HLS turned off by a config reload", Duration::from_secs(10)),
        "{}",
        topo.logs("rsrs")
    );
    let (s, p) = topo.probe("http://rsrs-hls-service:8080/live/livestream.flv", 2, &[]);
    assert_sample_stream(&s, &p);
}

#[test]
#[cfg_attr(no_compose, ignore = "no Docker engine or docker-compose (RSRS_REQUIRE_DOCKER=1 makes this a failure)")]
fn edge_cluster_survives_an_origin_restart_and_a_rolling_update_of_the_edges() {
    require_docker();
    // The edge-cluster origin, and the rolling-update edge (force_grace_quit, short grace waits).
    let origin = configmap_dir("compose-edge-origin", &shipped_conf("edge-cluster", "srs-origin-config"));
    let edge = configmap_dir("compose-edge-edge", &shipped_conf("rolling-update", "srs-edge-config"));
    let topo = Topology::up("edge", "edge-cluster", &[("ORIGIN_CONF", &origin), ("EDGE_CONF", &edge)]);
    for port in [18062, 18063] {
        wait_http(port, "/readyz", 200, Duration::from_secs(30));
    }
    wait_stream(19861, "livestream", Duration::from_secs(30));
    let (s, p) = topo.probe("rtmp://srs-edge-service/live/livestream", 2, &[]);
    assert_sample_stream(&s, &p);
    let (s, p) = topo.probe("http://srs-edge-service:8080/live/livestream.flv", 2, &[]);
    assert_sample_stream(&s, &p);
    // Players counting frames on both edges: one upstream per edge, whatever their number.
    let on_edge1 = Players::start("rtmp://127.0.0.1:19362/live/livestream", "rtmp", 4, 16);
    let on_edge2 = Players::start("http://127.0.0.1:18063/live/livestream.flv", "flv", 4, 34);
    wait_rtmp_plays(19861, 2, Duration::from_secs(10));
    // The origin dies and comes back plainly: edges retry, the demo publisher reconnects, players
    // see a stall and are not cut off.
    let killed = topo.docker(&["kill", &topo.container("origin")]);
    assert!(killed.status.success());
    let started = topo.docker(&["start", &topo.container("origin")]);
    assert!(started.status.success());
    wait_stream(19861, "livestream", Duration::from_secs(30));
    wait_rtmp_plays(19861, 2, Duration::from_secs(25));
    // Roll edge1: SIGTERM (force_grace_quit) closes its listeners and serves its players to their end.
    let stop1 = topo.stop_in_background("edge1");
    let r = on_edge1.report();
    assert_not_cut_off(&r, "edge1's players during the origin restart and edge1's roll");
    assert!(r["media_secs"].as_f64().unwrap() > 4.0 * 8.0, "players kept receiving after the restart: {r}");
    assert!(stop1.wait_with_output().unwrap().status.success());
    assert_eq!(topo.exit_code("edge1"), "0", "edge1 exits 0 after its players left");
    let logs = topo.logs("edge1");
    assert!(
        logs.contains("SIGTERM (force_grace_quit): graceful quit") && logs.contains("graceful quit done"),
        "{logs}"
    );
    // Its replacement comes up and takes players; then edge2 is rolled the same way.
    assert!(topo.docker(&["start", &topo.container("edge1")]).status.success());
    wait_http(18062, "/readyz", 200, Duration::from_secs(30));
    let on_new_edge1 = Players::start("rtmp://127.0.0.1:19362/live/livestream", "rtmp", 4, 8);
    std::thread::sleep(Duration::from_secs(1));
    let stop2 = topo.stop_in_background("edge2");
    let r = on_new_edge1.report();
    assert_not_cut_off(&r, "players on the replaced edge1");
    assert_eq!(r["kept_up"], 4, "{r}");
    let r = on_edge2.report();
    assert_not_cut_off(&r, "edge2's players during the origin restart and both rolls");
    assert!(stop2.wait_with_output().unwrap().status.success());
    assert_eq!(topo.exit_code("edge2"), "0", "edge2 exits 0 after its players left");
}

#[test]
#[cfg_attr(no_compose, ignore = "no Docker engine or docker-compose (RSRS_REQUIRE_DOCKER=1 makes this a failure)")]
fn helm_charts_edge_cluster_runs_as_containers() {
    require_docker();
    // The chart's edge-cluster example, rendered as `helm install srs`: its edges pull from
    // srs-origin-service, the name the chart gives the origins' Service and the compose alias.
    let origin = chart_conf("edge-cluster", "srs-origin-config");
    let edge = chart_conf("edge-cluster", "srs-edge-config");
    assert!(edge.contains("origin          srs-origin-service;"), "{edge}");
    let origin = configmap_dir("compose-helm-origin", &origin);
    let edge = configmap_dir("compose-helm-edge", &edge);
    let topo = Topology::up(
        "helm",
        "edge-cluster",
        &[
            ("ORIGIN_CONF", &origin),
            ("EDGE_CONF", &edge),
            ("ORIGIN_RTMP_PORT", &"19341"),
            ("ORIGIN_SRT_PORT", &"10341"),
            ("ORIGIN_API_PORT", &"19841"),
            ("EDGE1_RTMP_PORT", &"19342"),
            ("EDGE1_SRT_PORT", &"10342"),
            ("EDGE1_HTTP_PORT", &"18042"),
            ("EDGE2_RTMP_PORT", &"19343"),
            ("EDGE2_SRT_PORT", &"10343"),
            ("EDGE2_HTTP_PORT", &"18043"),
        ],
    );
    for port in [18042, 18043] {
        wait_http(port, "/readyz", 200, Duration::from_secs(30));
    }
    wait_stream(19841, "livestream", Duration::from_secs(30));
    let (s, p) = topo.probe("rtmp://srs-edge-service/live/livestream", 2, &[]);
    assert_sample_stream(&s, &p);
    let (s, p) = topo.probe("http://srs-edge-service:8080/live/livestream.flv", 2, &[]);
    assert_sample_stream(&s, &p);
    // SRT out of an edge, as the chart's Service offers it.
    let (s, p) = probe("srt://127.0.0.1:10342?streamid=#!::r=live/livestream,m=request", 2);
    assert_sample_stream(&s, &p);
    // The chart's rolling-update settings: SIGTERM is a graceful quit that ends with exit 0.
    let st = topo.docker(&["stop", "-t", "60", &topo.container("edge2")]);
    assert!(st.status.success());
    assert_eq!(topo.exit_code("edge2"), "0", "{}", topo.logs("edge2"));
    assert!(topo.logs("edge2").contains("SIGTERM (force_grace_quit): graceful quit"), "{}", topo.logs("edge2"));
}

#[test]
#[cfg_attr(no_compose, ignore = "no Docker engine or docker-compose (RSRS_REQUIRE_DOCKER=1 makes this a failure)")]
fn origin_cluster_finds_streams_by_service_name_and_survives_losing_the_origin_holding_one() {
    require_docker();
    let origin = configmap_dir("compose-oc-origin", &shipped_conf("origin-cluster-statefulset", "srs-origin-config"));
    let edge = configmap_dir("compose-oc-edge", &shipped_conf("origin-cluster-statefulset", "srs-edge-config"));
    let topo = Topology::up("oc", "origin-cluster", &[("ORIGIN_CONF", &origin), ("EDGE_CONF", &edge)]);
    for port in [18074, 18075] {
        wait_http(port, "/readyz", 200, Duration::from_secs(30));
    }
    // The demo publisher publishes through srs-edge-service; the edge forwards to an origin.
    let apis = [19871, 19872, 19873];
    let holder = || apis.iter().position(|&p| streams(p).iter().any(|s| s == "livestream"));
    assert!(wait_until(Duration::from_secs(30), POLL, || holder().is_some()), "no origin got the stream");
    let first = holder().unwrap();
    // Every edge finds it through the Service names, asking srs-origin-0.socs first.
    let (s, p) = topo.probe("rtmp://srs-edge-service/live/livestream", 2, &[]);
    assert_sample_stream(&s, &p);
    let (s, p) = topo.probe("http://srs-edge-service:8080/live/livestream.flv", 2, &[]);
    assert_sample_stream(&s, &p);
    // Any origin answers for the cluster through `socs`.
    for port in apis {
        let (_, _, body) = http_request(&format!("127.0.0.1:{port}"), "GET", "/api/v1/cluster/streams", &[]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let names: Vec<&str> = v["streams"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["livestream"], "{port}: {v}");
        assert!(v["peers"].as_array().unwrap().iter().all(|p| p["ok"] == true), "{port}: {v}");
    }
    // A second publisher of the same stream on another origin is refused.
    let other = (first + 1) % 3;
    let mut dup = publish(&format!("rtmp://127.0.0.1:{}/live/livestream", 19371 + other), true);
    assert!(dup.wait_timeout(Duration::from_secs(15)).is_some_and(|st| !st.success()));
    assert!(dup.stderr_text().contains("already published on origin"));
    // Players on both edges; then the origin holding the stream is killed. The publishing edge
    // moves the stream to a live origin and the edges' players follow it there.
    let p1 = Players::start("rtmp://127.0.0.1:19374/live/livestream", "rtmp", 4, 20);
    let p2 = Players::start("http://127.0.0.1:18075/live/livestream.flv", "flv", 4, 20);
    std::thread::sleep(Duration::from_secs(2));
    assert!(topo.docker(&["kill", &topo.container(&format!("origin{first}"))]).status.success());
    let moved = wait_until(Duration::from_secs(20), POLL, || holder().is_some_and(|h| h != first));
    assert!(moved, "the stream never moved to a live origin");
    for (r, what) in [(p1.report(), "edge1's players"), (p2.report(), "edge2's players")] {
        assert_not_cut_off(&r, what);
        assert!(r["media_secs"].as_f64().unwrap() > 4.0 * 10.0, "{what} kept receiving after the move: {r}");
    }
}

#[test]
#[cfg_attr(no_compose, ignore = "no Docker engine or docker-compose (RSRS_REQUIRE_DOCKER=1 makes this a failure)")]
fn origin_cluster_with_a_service_per_origin_redirects_edges() {
    require_docker();
    let origin = configmap_dir("compose-ocd-origin", &shipped_conf("origin-cluster-deployments", "srs-origin-config"));
    let edge = configmap_dir("compose-ocd-edge", &shipped_conf("origin-cluster-deployments", "srs-edge-config"));
    let topo = Topology::up("ocd", "origin-cluster-deployments", &[("ORIGIN_CONF", &origin), ("EDGE_CONF", &edge)]);
    wait_http(18079, "/readyz", 200, Duration::from_secs(30));
    // The demo publisher pushes to srs-origin-2-socs; the edge asks srs-origin-0-socs first.
    wait_stream(19878, "livestream", Duration::from_secs(30));
    let (s, p) = topo.probe("rtmp://srs-edge-service/live/livestream", 2, &[]);
    assert_sample_stream(&s, &p);
    let (s, p) = topo.probe("http://srs-edge-service:8080/live/livestream.flv", 2, &[]);
    assert_sample_stream(&s, &p);
    let logs = topo.logs("edge");
    assert!(logs.contains("edge: redirected to"), "the edge followed a 302: {logs}");
    // The HLS of the stream is on the volume all origins share (the first 10 s segment ends it).
    let on_volume = wait_until(Duration::from_secs(40), Duration::from_secs(1), || {
        topo.in_volume("html", "test -f /v/live/livestream.m3u8").status.success()
    });
    assert!(on_volume, "no playlist on the shared volume: {}", topo.logs("origin2"));
}

#[test]
#[cfg_attr(no_compose, ignore = "no Docker engine or docker-compose (RSRS_REQUIRE_DOCKER=1 makes this a failure)")]
#[cfg_attr(no_guide, ignore = "SRS's guide is not at ../shared/seed beside the checkout (CI requires it)")]
fn the_guides_own_cluster_configs_run_with_only_the_image_swapped() {
    require_docker();
    // The guide's ConfigMaps, verbatim: its edge for the edge cluster (origin srs-origin-service),
    // its origin-cluster origin (coworkers srs-origin-N.socs:1985) and that cluster's edge.
    let confs = guide_confs();
    let pick = |needle: &str| {
        confs.iter().find(|c| c.contains(needle)).unwrap_or_else(|| panic!("the guide has no conf with {needle}"))
    };
    let origin = configmap_dir("compose-guide-origin", pick("coworkers"));
    let edge = configmap_dir("compose-guide-edge", pick("origin          srs-origin-0.socs srs-origin-1.socs"));
    // Host ports of its own: the other tests' topologies may be up at the same time.
    let topo = Topology::up(
        "guide",
        "origin-cluster",
        &[
            ("ORIGIN_CONF", &origin),
            ("EDGE_CONF", &edge),
            ("O0_RTMP_PORT", &"29371"),
            ("O1_RTMP_PORT", &"29372"),
            ("O2_RTMP_PORT", &"29373"),
            ("O0_API_PORT", &"29871"),
            ("O1_API_PORT", &"29872"),
            ("O2_API_PORT", &"29873"),
            ("EDGE1_RTMP_PORT", &"29374"),
            ("EDGE1_HTTP_PORT", &"28074"),
            ("EDGE2_RTMP_PORT", &"29375"),
            ("EDGE2_HTTP_PORT", &"28075"),
        ],
    );
    for port in [28074, 28075] {
        wait_http(port, "/readyz", 200, Duration::from_secs(30));
    }
    let published = wait_until(Duration::from_secs(30), POLL, || {
        [29871, 29872, 29873].iter().any(|&p| streams(p).contains(&"livestream".into()))
    });
    assert!(published, "no origin got the stream");
    let (s, p) = topo.probe("rtmp://srs-edge-service/live/livestream", 2, &[]);
    assert_sample_stream(&s, &p);
    let (s, p) = topo.probe("http://srs-edge-service:8080/live/livestream.flv", 2, &[]);
    assert_sample_stream(&s, &p);
    drop(topo);
    // The guide's edge-cluster edge in front of the image's own default config as origin.
    let edge = configmap_dir("compose-guide-edge2", pick("origin          srs-origin-service;"));
    let default_origin = tmp("compose-guide-default-origin");
    let _ = std::fs::remove_dir_all(&default_origin);
    std::fs::create_dir_all(&default_origin).unwrap();
    std::fs::copy(repo_root().join("deploy/image/conf/docker.conf"), default_origin.join("docker.conf")).unwrap();
    let topo = Topology::up(
        "guidee",
        "edge-cluster",
        &[
            ("ORIGIN_CONF", &default_origin),
            ("EDGE_CONF", &edge),
            ("ORIGIN_RTMP_PORT", &"29361"),
            ("ORIGIN_API_PORT", &"29861"),
            ("EDGE1_RTMP_PORT", &"29362"),
            ("EDGE1_HTTP_PORT", &"28062"),
            ("EDGE2_RTMP_PORT", &"29363"),
            ("EDGE2_HTTP_PORT", &"28063"),
        ],
    );
    wait_http(28062, "/readyz", 200, Duration::from_secs(30));
    wait_stream(29861, "livestream", Duration::from_secs(30));
    let (s, p) = topo.probe("http://srs-edge-service:8080/live/livestream.flv", 2, &[]);
    assert_sample_stream(&s, &p);
}
