//! The benchmark instrument itself, against a real rsrs: rsrs-bench parses what rsrs sends and
//! counts it right, detects a stalled stream, and `bench/compare` runs end to end (a smoke run
//! with few players and seconds, so the script cannot rot).

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The rsrs-bench binary: built beside rsrs by `cargo test --workspace`; built here otherwise.
fn bench_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let p = PathBuf::from(BIN).with_file_name("rsrs-bench");
            if !p.exists() {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let st =
                    Command::new(cargo).args(["build", "-p", "rsrs-bench", "--bin", "rsrs-bench"]).status().unwrap();
                assert!(st.success(), "cannot build rsrs-bench");
            }
            p
        })
        .clone()
}

fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(bench_bin()).args(args).args(["--interval", "0", "--json", "-"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rsrs-bench {args:?} failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    let start = text.find('{').expect("a JSON report");
    serde_json::from_str(&text[start..]).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

#[test]
fn bench_counts_what_rsrs_sends() {
    let s = Rsrs::start("bench-counts", "127.0.4.1", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/b"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let pid = s.pid().to_string();
    for (proto, url) in [("rtmp", s.rtmp("live/b")), ("flv", s.http("live/b.flv"))] {
        let r = bench_json(&[
            "play",
            "--url",
            &url,
            "--proto",
            proto,
            "--count",
            "3",
            "--ramp",
            "0",
            "--duration",
            "3",
            "--server-pid",
            &pid,
        ]);
        assert_eq!(r["players"], 3, "{proto}: {r}");
        assert_eq!(r["connected"], 3, "{proto}: {r}");
        assert_eq!(r["kept_up"], 3, "{proto}: {r}");
        for k in [
            "failed",
            "without_audio",
            "without_video",
            "not_starting_on_keyframe",
            "non_monotonic",
            "stalls",
            "disconnected",
        ] {
            assert_eq!(r[k], 0, "{proto}: {k} in {r}");
        }
        // Each player got at least the 3 s of the run (the GOP cache adds up to a GOP more).
        let media = r["media_secs"].as_f64().unwrap();
        assert!((8.0..=16.0).contains(&media), "{proto}: media seconds {media} for 3 players x 3 s");
        assert!(r["bytes"].as_u64().unwrap() > 3 * 20_000, "{proto}: {r}");
        assert!(r["server_cpu_secs"].as_f64().is_some(), "{proto}: server sampled: {r}");
        assert!(r["ttff_p50_ms"].as_f64().is_some());
    }
}

#[test]
fn bench_run_measures_delay_with_its_own_publisher() {
    let s = Rsrs::start(
        "bench-run",
        "127.0.4.2",
        &ORIGIN_CONF.replace("vhost __defaultVhost__ {", "vhost __defaultVhost__ {\n    min_latency on;"),
    );
    let sample = sample();
    let r = bench_json(&[
        "run",
        "--publish-url",
        &s.rtmp("live/own"),
        "--file",
        sample.to_str().unwrap(),
        "--warmup",
        "1",
        "--url",
        &s.http("live/own.flv"),
        "--proto",
        "flv",
        "--count",
        "2",
        "--ramp",
        "0",
        "--duration",
        "4",
        // Sends as ffmpeg does; the delay stays far below a merge window's.
        "--publisher-nagle",
    ]);
    assert_eq!(r["kept_up"], 2, "{r}");
    let p50 = r["delay_p50_ms"].as_f64().expect("delay measured once players are live");
    // No merge window (min_latency on): frames arrive as they are published.
    assert!(p50 < 300.0, "delay p50 {p50} ms with min_latency on");
}

#[test]
fn bench_streams_counts_each_stream_and_churn_players_leave() {
    let s = Rsrs::start("bench-streams", "127.0.4.4", ORIGIN_CONF);
    let sample = sample();
    let pid = s.pid().to_string();
    let r = bench_json(&[
        "streams",
        "--publish-url",
        &s.rtmp("live/m"),
        "--file",
        sample.to_str().unwrap(),
        "--streams",
        "3",
        "--publish-ramp",
        "0.5",
        "--warmup",
        "1",
        "--url",
        &s.http("live/m-{i}.flv"),
        "--proto",
        "flv",
        "--count",
        "2",
        "--ramp",
        "0",
        "--duration",
        "5",
        "--server-pid",
        &pid,
    ]);
    assert_eq!((r["streams"].as_u64(), r["players"].as_u64()), (Some(3), Some(6)), "{r}");
    assert_eq!(r["streams_stalled"], 0, "{r}");
    assert_eq!(r["kept_up"], 6, "{r}");
    assert!(r["server_cores_per_stream"].as_f64().is_some_and(|c| c > 0.0), "{r}");
    assert!(r["loadgen_cpu_secs"].as_f64().is_some(), "{r}");
    // Each stream's own publisher times its frames: a delay is measured (after the players' first
    // 3 s, the GOP cache's).
    assert!(r["delay_p50_ms"].as_f64().is_some(), "{r}");
    assert_eq!(s.log_text().matches("publish started").count(), 3, "{}", s.log_text());
    // Churn: 4 players joining over 2 s, each leaving after 1 s, never all at once.
    let _pub = publish(&s.rtmp("live/c"), true);
    assert!(s.wait_log_count("publish started", 4, Duration::from_secs(10)));
    let r = bench_json(&[
        "play",
        "--url",
        &s.rtmp("live/c"),
        "--proto",
        "rtmp",
        "--count",
        "4",
        "--ramp",
        "2",
        "--hold",
        "1",
        "--duration",
        "2",
    ]);
    assert_eq!((r["connected"].as_u64(), r["failed"].as_u64()), (Some(4), Some(0)), "{r}");
    let media = r["media_secs"].as_f64().unwrap();
    assert!(media < 4.0 * 3.5, "players left after about 1 s (plus the cached GOP): {media} media s");
    assert!(r["ttfk_p50_ms"].as_f64().is_some(), "{r}");
}

#[test]
fn bench_detects_a_stalled_stream() {
    let s = Rsrs::start("bench-stall", "127.0.4.3", ORIGIN_CONF);
    // Players first, so they are watching when the short publish comes and goes.
    let players = Command::new(bench_bin())
        .args([
            "play",
            "--url",
            &s.rtmp("live/stall"),
            "--proto",
            "rtmp",
            "--count",
            "2",
            "--ramp",
            "0",
            "--duration",
            "6",
        ])
        .args(["--interval", "0", "--json", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(s.wait_log_count("play started", 2, Duration::from_secs(10)), "{}", s.log_text());
    // A publisher that stops after 1.5 s; RTMP players stay connected and starve.
    let mut p = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re", "-t", "1.5", "-i"])
            .arg(sample())
            .args(["-c", "copy", "-f", "flv"])
            .arg(s.rtmp("live/stall"))
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let st = p.wait_timeout(Duration::from_secs(10));
    assert!(st.is_some_and(|s| s.success()), "publisher failed: {}\n{}", p.stderr_text(), s.log_text());
    let out = players.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let r: serde_json::Value = serde_json::from_str(&text[text.find('{').expect("a report")..]).unwrap();
    assert_eq!(r["connected"], 2, "{r}");
    assert!(r["media_secs"].as_f64().unwrap() > 1.0, "players got the short publish: {r}");
    assert!(r["stalls"].as_u64().unwrap() >= 2, "each starved player has a stall: {r}");
    assert_eq!(r["kept_up"], 0, "starved players did not keep up: {r}");
}

#[test]
fn bench_refuses_non_loopback_targets() {
    let out = Command::new(bench_bin())
        .args(["play", "--url", "rtmp://192.0.2.1/live/x", "--count", "1", "--duration", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only loopback"));
}

#[test]
fn compare_script_smoke() {
    let root = repo_root();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compare-smoke");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new("bash")
        .arg(root.join("bench/compare"))
        .env("POINTS", "4")
        .env("DURATION", "2")
        .env("RAMP", "0.5")
        .env("SOURCE", sample())
        .env("RSRS_BIN", BIN)
        .env("BENCH_BIN", bench_bin())
        .env("OUT", &out_dir)
        // The floor twice: a repeated target is a round of its own, with its own row.
        .env("TARGETS", "rsrs-flv rsrs-rtmp rsrs-flv-mw0 nginx-rtmp baseline baseline")
        .env_remove("SRS_BIN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench/compare failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for target in ["rsrs-flv", "rsrs-rtmp", "rsrs-flv-mw0", "nginx-rtmp"] {
        assert!(text.contains(&format!("| {target} | 4 | 4 | 0/0 |")), "{target} row missing or players lost:\n{text}");
    }
    assert!(text.contains("| baseline | 4 |") && text.contains("| baseline.2 | 4 |"), "{text}");
    // A ratio needs CPU measured in whole clock ticks: 4 players for 2 s of a paced publisher may
    // cost rsrs none, so any rsrs row with a ratio will do (the realtime one always has one).
    assert!(
        text.contains("CPU per GB, rsrs / peer")
            && text.lines().any(|l| l.contains(": nginx-rtmp ") && l.contains("rsrs-")),
        "ratios missing:\n{text}"
    );
}
