//! Zero-downtime lifecycle (scenario S5 and ConfigMap auto reload of S6), with real processes:
//! graceful quit by SIGQUIT (through the shipped `etc/init.d/srs grace`), SIGTERM with and
//! without `force_grace_quit`, and Kubernetes' atomic ConfigMap swap done exactly as the kubelet
//! does it.

mod common;

use common::*;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn with_globals(globals: &str, vhost_extra: &str) -> String {
    ORIGIN_CONF
        .replace("daemon              off;", &format!("daemon              off;\n{globals}"))
        .replace("vhost __defaultVhost__ {", &format!("vhost __defaultVhost__ {{\n{vhost_extra}"))
}

fn player(url: &str, secs: u32) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i", url, "-t", &secs.to_string(), "-f", "null", "-"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn readyz(ip: &str) -> u16 {
    http_request(&format!("{ip}:8080"), "GET", "/readyz", &[]).0
}

/// Waits until nothing accepts connections on `addr`.
fn wait_refused(addr: &str, timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(50), || TcpStream::connect(addr).is_err())
}

#[test]
fn graceful_quit_keeps_players_finishes_recordings_and_exits_0() {
    let conf = with_globals(
        "grace_start_wait 600;\ngrace_final_wait 300;",
        "    dvr { enabled on; dvr_path ./objs/dvr/[stream].[timestamp].flv; }",
    );
    let mut s = Rsrs::start("grace", "127.0.10.1", &conf);
    assert_eq!(readyz(&s.ip), 200);
    let mut publisher = publish(&s.rtmp("live/g"), true);
    assert!(s.wait_log("DVR recording", Duration::from_secs(10)));
    let mut p = player(&s.rtmp("live/g"), 5);
    assert!(s.wait_log("play started", Duration::from_secs(5)));

    // The preStop hook: the shipped init script sends SIGQUIT and returns at once.
    let script = repo_root().join("etc/init.d/srs");
    let st = Command::new("sh").arg(&script).arg("status").current_dir(&s.dir).status().unwrap();
    assert!(st.success(), "init script status sees the running server");
    let out = Command::new("sh").arg(&script).arg("grace").current_dir(&s.dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(s.wait_log("graceful quit; readiness is now false", Duration::from_secs(2)), "{}", s.log_text());
    assert_eq!(readyz(&s.ip), 503, "readiness turns false at once, while listeners are still open");

    // After grace_start_wait the listeners close: new clients go to other pods.
    for port in [1935, 1985, 8080] {
        assert!(wait_refused(&format!("{}:{port}", s.ip), Duration::from_secs(5)), "port {port} still open");
    }
    // The player that was watching keeps watching to its end.
    let st = p.wait_timeout(Duration::from_secs(15)).expect("player finishes");
    assert!(st.success(), "player was cut off: {}", p.stderr_text());
    assert!(s.alive(), "the publisher is still connected, so the server keeps serving");
    assert!(
        s.wait_log("graceful quit: waiting for 1 connections to leave", Duration::from_secs(10)),
        "{}",
        s.log_text()
    );
    // The publisher leaves; the recording is finished and the process exits 0.
    drop(publisher.0.kill());
    let _ = publisher.0.wait();
    let st = s.wait_exit(Duration::from_secs(10)).expect("exits after the last client");
    assert!(st.success(), "exit status {st}");
    let files: Vec<String> = std::fs::read_dir(s.dir.join("objs/dvr"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(".flv"), "recording finished, not left as .tmp: {files:?}");
    assert!(s.wait_log("graceful quit done", Duration::from_secs(2)), "{}", s.log_text());
}

#[test]
fn sigterm_is_fast_unless_force_grace_quit() {
    // Without force_grace_quit: SIGTERM quits at once, players are cut.
    let mut fast = Rsrs::start("term-fast", "127.0.10.2", &with_globals("grace_start_wait 3000;", ""));
    let _pub = publish(&fast.rtmp("live/t"), true);
    assert!(fast.wait_log("publish started", Duration::from_secs(10)));
    fast.signal("TERM");
    let st = fast.wait_exit(Duration::from_secs(3)).expect("fast quit does not wait for grace_start_wait");
    assert!(st.success());

    // With it: SIGTERM is a graceful quit.
    let mut graceful =
        Rsrs::start("term-grace", "127.0.10.3", &with_globals("grace_start_wait 300;\nforce_grace_quit on;", ""));
    let _pub = publish(&graceful.rtmp("live/t"), true);
    assert!(graceful.wait_log("publish started", Duration::from_secs(10)));
    let mut p = player(&graceful.rtmp("live/t"), 3);
    assert!(graceful.wait_log("play started", Duration::from_secs(5)));
    graceful.signal("TERM");
    assert!(
        graceful.wait_log("SIGTERM (force_grace_quit): graceful quit", Duration::from_secs(2)),
        "{}",
        graceful.log_text()
    );
    assert!(p.wait_timeout(Duration::from_secs(15)).is_some_and(|st| st.success()), "player kept playing");
    assert!(graceful.alive());
    // A second signal during grace: SIGINT cuts the wait short, still exiting cleanly.
    graceful.signal("INT");
    assert!(graceful.wait_exit(Duration::from_secs(5)).is_some_and(|st| st.success()));
}

#[test]
fn configmap_swap_is_picked_up_by_inotify() {
    let ip = "127.0.10.4";
    // The mounted volume lives outside the server's working directory, as in a pod.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("configmap-volume");
    let _ = std::fs::remove_dir_all(&dir);
    let confdir = dir.join("conf");
    std::fs::create_dir_all(&confdir).unwrap();
    let v1 = with_globals("inotify_auto_reload on;\nexporter { enabled on; listen IP:9972; }", "").replace("IP", ip);
    write_configmap_version(&confdir, 1, &v1);
    let s = Rsrs::start_with("configmap", ip, None, &["-c", confdir.join("srs.conf").to_str().unwrap()], &[]);
    assert!(s.wait_log("auto reload: watching", Duration::from_secs(5)), "{}", s.log_text());
    assert_eq!(s.api("/api/v1/versions")["code"], 0);
    let _pub = publish(&s.rtmp("live/c"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let mut p = player(&s.rtmp("live/c"), 6);
    assert!(s.wait_log("play started", Duration::from_secs(5)));

    // The guide's example: a new ConfigMap without http_api and http_server.
    let v2 = format!("listen {ip}:1935;\nmax_connections 1000;\ndaemon off;\nsrs_log_tank console;\ninotify_auto_reload on;\nvhost __defaultVhost__ {{\n}}\n");
    write_configmap_version(&confdir, 2, &v2);
    assert!(s.wait_log("reload (inotify) applied", Duration::from_secs(5)), "{}", s.log_text());
    assert!(s.log_text().contains("reload: http_api on"), "{}", s.log_text());
    assert!(s.wait_log("from the change to the new config being live", Duration::from_secs(2)), "{}", s.log_text());
    assert!(wait_refused(&format!("{ip}:1985"), Duration::from_secs(2)), "API listener still open");
    assert!(wait_refused(&format!("{ip}:8080"), Duration::from_secs(2)), "HTTP listener still open");
    // The RTMP player was not touched.
    let st = p.wait_timeout(Duration::from_secs(15)).expect("player finishes");
    assert!(st.success(), "player was cut off by the reload: {}", p.stderr_text());

    // A broken config pushed during service: the running one stays, the error says where.
    write_configmap_version(&confdir, 3, "listen 1935;\nvhost __defaultVhost__ {\n    hls { enabeld on; }\n}\n");
    assert!(
        s.wait_log("reload (inotify) failed; keeping the running config", Duration::from_secs(5)),
        "{}",
        s.log_text()
    );
    assert!(s.log_text().contains("srs.conf:3") && s.log_text().contains("vhost.hls.enabeld"), "{}", s.log_text());
    let (streams, packets) = probe(&s.rtmp("live/c"), 2);
    assert_sample_stream(&streams, &packets);

    // SIGHUP reloads too: back to a config with the API on.
    write_configmap_version(&confdir, 4, &v1);
    assert!(s.wait_log_count("reload (inotify) applied", 2, Duration::from_secs(5)), "{}", s.log_text());
    s.signal("HUP");
    assert!(s.wait_log("reload (SIGHUP) applied", Duration::from_secs(5)), "{}", s.log_text());
    assert_eq!(s.api("/api/v1/versions")["code"], 0, "API listener reopened");
    // The exporter (closed by v2, open again) counts what happened to every reload.
    let exporter = format!("{ip}:9972");
    assert!(metric_value(&exporter, "rsrs_reloads_total", &["result=\"applied\""]) >= 3.0);
    assert_eq!(metric_value(&exporter, "rsrs_reloads_total", &["result=\"failed\""]), 1.0);
}

#[test]
fn rolling_update_of_edges_cuts_no_player() {
    let origin = Rsrs::start("roll-o", "127.0.10.5", ORIGIN_CONF);
    let edge_conf = |extra: &str| {
        with_globals(
            &format!("grace_start_wait 300;\ngrace_final_wait 100;\nforce_grace_quit on;\n{extra}"),
            "    cluster { mode remote; origin 127.0.10.5; }",
        )
    };
    let mut old = Rsrs::start("roll-old", "127.0.10.6", &edge_conf(""));
    let new = Rsrs::start("roll-new", "127.0.10.7", &edge_conf(""));
    let _pub = publish(&origin.rtmp("live/r"), true);
    assert!(origin.wait_log("publish started", Duration::from_secs(10)));
    let old_rtmp = Players::start(&old.rtmp("live/r"), "rtmp", 5, 8);
    let old_flv = Players::start(&old.http("live/r.flv"), "flv", 5, 8);
    old.wait_api("/api/v1/streams/", Duration::from_secs(10), |v| v["streams"][0]["clients"] == 10);
    // Kubernetes terminates the old pod (SIGTERM with force_grace_quit) while new players
    // arrive at the new one.
    old.signal("TERM");
    assert!(wait_refused(&format!("{}:1935", old.ip), Duration::from_secs(5)));
    let new_players = Players::start(&new.rtmp("live/r"), "rtmp", 5, 5);
    for r in [old_rtmp.report(), old_flv.report()] {
        assert_eq!(r["disconnected"], 0, "old edge cut a player off: {r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert_eq!(r["kept_up"], 5, "{r}");
    }
    let r = new_players.report();
    assert_eq!(r["kept_up"], 5, "{r}");
    // Its players gone, the old edge finishes and exits 0.
    let st = old.wait_exit(Duration::from_secs(10)).expect("old edge exits once drained");
    assert!(st.success());
}
