//! The edge-cluster scenario as containers (deploy/compose/edge-cluster): the image, the Service
//! names as network aliases, and the srs.conf files exactly as the Kubernetes manifests ship them.
//! Needs a Docker engine (required in CI through RSRS_REQUIRE_DOCKER).

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A compose project, taken down when dropped.
struct Topology {
    project: String,
    file: &'static str,
    env: Vec<(String, String)>,
}

impl Topology {
    fn compose(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new("docker-compose");
        c.args(["-p", &self.project, "-f"]).arg(root().join(self.file)).args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().expect("docker-compose")
    }

    fn container(&self, service: &str) -> String {
        String::from_utf8_lossy(&self.compose(&["ps", "-q", service]).stdout).trim().to_string()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-t", "5"]);
    }
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut b = String::new();
            let _ = s.read_to_string(&mut b);
            if b.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "container on port {port} never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Builds the image (once per test binary) and extracts the manifests' configs into `dir`.
fn prepare(dir: &str) -> PathBuf {
    static IMAGE: std::sync::Once = std::sync::Once::new();
    IMAGE.call_once(|| {
        let st =
            Command::new("bash").arg(root().join("deploy/image/build-offline.sh")).arg("rsrs:test").status().unwrap();
        assert!(st.success(), "build-offline.sh failed");
    });
    let extract = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let _ = std::fs::remove_dir_all(&extract);
    let out = Command::new("python3")
        .arg(root().join("deploy/k8s/check.py"))
        .args(["--rsrs", BIN, "--extract"])
        .arg(&extract)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    extract
}

#[test]
fn edge_cluster_containers_merge_upstreams_and_roll_without_cutting_players() {
    if !docker_available() {
        return;
    }
    // The configs the manifests ship: the edge-cluster origin, and the rolling-update edge
    // (force_grace_quit, short grace waits).
    let extract = prepare("compose-edge");
    let env = vec![
        ("RSRS_IMAGE".to_string(), "rsrs:test".to_string()),
        ("ORIGIN_CONF".to_string(), extract.join("edge-cluster/srs-origin-config").display().to_string()),
        ("EDGE_CONF".to_string(), extract.join("rolling-update/srs-edge-config").display().to_string()),
    ];
    let topo = Topology {
        project: format!("rsrstest{}", std::process::id()),
        file: "deploy/compose/edge-cluster/docker-compose.yml",
        env,
    };
    let up = topo.compose(&["up", "-d"]);
    assert!(up.status.success(), "compose up: {}", String::from_utf8_lossy(&up.stderr));
    for port in [18062, 18063] {
        wait_ready(port);
    }
    let _pub = publish("rtmp://127.0.0.1:19361/live/livestream", true);
    // Players count frames on both edges (published ports on loopback).
    let bench = PathBuf::from(BIN).with_file_name("rsrs-bench");
    let players = |url: &str, proto: &str| {
        Command::new(&bench)
            .args(["play", "--url", url, "--proto", proto, "--count", "4", "--ramp", "0", "--duration", "10"])
            .args(["--interval", "0", "--json", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    std::thread::sleep(Duration::from_secs(1));
    let on_edge1 = players("rtmp://127.0.0.1:19362/live/livestream", "rtmp");
    let on_edge2 = players("http://127.0.0.1:18063/live/livestream.flv", "flv");
    // One upstream per edge, whatever the number of players: the origin sees two players.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, body) = http_request("127.0.0.1:19861", "GET", "/api/v1/clients/", &[]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let plays = v["clients"].as_array().unwrap().iter().filter(|c| c["type"] == "rtmp-play").count();
        if plays == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "origin clients: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Roll edge1 as Kubernetes would (SIGTERM + grace): its players keep playing to their end.
    std::thread::sleep(Duration::from_secs(2));
    let edge1 = topo.container("edge1");
    let stop = Command::new("docker").args(["stop", "-t", "60", &edge1]).stdout(Stdio::null()).spawn().unwrap();
    for p in [on_edge1, on_edge2] {
        let out = p.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let r: serde_json::Value = serde_json::from_str(&text[text.find('{').expect("a report")..]).unwrap();
        assert_eq!(r["kept_up"], 4, "{r}");
        assert_eq!(r["disconnected"], 0, "a player was cut off by the roll: {r}");
    }
    let st = stop.wait_with_output().unwrap();
    assert!(st.status.success());
    let code = Command::new("docker").args(["inspect", "-f", "{{.State.ExitCode}}", &edge1]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&code.stdout).trim(), "0", "edge1 exits 0 after its players left");
    let logs = Command::new("docker").args(["logs", &edge1]).output().unwrap();
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.contains("SIGTERM (force_grace_quit): graceful quit") && logs.contains("graceful quit done"),
        "{logs}"
    );
}

#[test]
fn origin_cluster_containers_find_streams_through_the_service_name() {
    if !docker_available() {
        return;
    }
    let extract = prepare("compose-origins");
    let env = vec![
        ("RSRS_IMAGE".to_string(), "rsrs:test".to_string()),
        ("ORIGIN_CONF".to_string(), extract.join("origin-cluster-statefulset/srs-origin-config").display().to_string()),
        ("EDGE_CONF".to_string(), extract.join("origin-cluster-statefulset/srs-edge-config").display().to_string()),
    ];
    let topo = Topology {
        project: format!("rsrsoc{}", std::process::id()),
        file: "deploy/compose/origin-cluster/docker-compose.yml",
        env,
    };
    let up = topo.compose(&["up", "-d"]);
    assert!(up.status.success(), "compose up: {}", String::from_utf8_lossy(&up.stderr));
    wait_ready(18074);
    // Published on the third origin; the edge asks srs-origin-0.socs first and is redirected.
    let _pub = publish("rtmp://127.0.0.1:19373/live/far", true);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !http_request("127.0.0.1:19873", "GET", "/api/v1/streams/", &[]).2.windows(4).any(|w| w == b"\"far") {
        assert!(Instant::now() < deadline, "origin2 never got the stream");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (streams, packets) = probe("rtmp://127.0.0.1:19374/live/far", 2);
    assert_sample_stream(&streams, &packets);
    let (streams, packets) = probe("http://127.0.0.1:18074/live/far.flv", 2);
    assert_sample_stream(&streams, &packets);
    // Any origin answers for the cluster through `socs` (which also names itself): once each.
    for api in ["127.0.0.1:19871", "127.0.0.1:19872", "127.0.0.1:19873"] {
        let (_, _, body) = http_request(api, "GET", "/api/v1/cluster/streams", &[]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let names: Vec<&str> = v["streams"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["far"], "{api}: {v}");
        let peers = v["peers"].as_array().unwrap();
        assert!(peers.iter().all(|p| p["ok"] == true), "{api}: {v}");
        assert_eq!(peers.len(), 4, "itself locally, then the three addresses of socs (itself among them): {v}");
    }
    // A duplicate publish on another origin is refused.
    let mut dup = publish("rtmp://127.0.0.1:19371/live/far", true);
    assert!(dup.wait_timeout(Duration::from_secs(15)).is_some_and(|st| !st.success()));
    assert!(dup.stderr_text().contains("already published on origin"));
}
