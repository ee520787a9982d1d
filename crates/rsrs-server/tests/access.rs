//! Who may publish and play, end to end: SRS's HTTP hooks against a real HTTP service started
//! here (it records every body and allows or denies by stream name), security rules by IPv4 and
//! IPv6 address, signed URLs, HLS viewer sessions, and a reload that turns hooks on. Publishers
//! are ffmpeg; players are ffprobe, raw HTTP requests and rtmpdump. Servers on 127.0.21.x.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A hook service: answers `{"code":0}`, or `{"code":1}` when the stream's name has `deny`,
/// after `delay`; records (path, body) of every call.
struct HookService {
    addr: String,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl HookService {
    fn start(ip: &str, delay: Duration) -> HookService {
        HookService::serving(ip, delay, None)
    }

    /// A service that also answers `GET path` with `body` (a key set).
    fn serving(ip: &str, delay: Duration, file: Option<(&str, String)>) -> HookService {
        let file = file.map(|(p, b)| (p.to_string(), b));
        let listener = TcpListener::bind(format!("{ip}:0")).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let rec = calls.clone();
        std::thread::spawn(move || {
            for sock in listener.incoming().flatten() {
                let (rec, file) = (rec.clone(), file.clone());
                std::thread::spawn(move || answer(sock, &rec, delay, file.as_ref()));
            }
        });
        HookService { addr, calls }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Bodies of the calls whose `action` is `action`.
    fn bodies(&self, action: &str) -> Vec<Value> {
        self.calls.lock().unwrap().iter().filter(|(_, b)| b["action"] == action).map(|(_, b)| b.clone()).collect()
    }

    fn wait_for(&self, action: &str, n: usize, timeout: Duration) -> Vec<Value> {
        wait_until(timeout, Duration::from_millis(50), || self.bodies(action).len() >= n);
        self.bodies(action)
    }
}

fn answer(mut sock: TcpStream, rec: &Mutex<Vec<(String, Value)>>, delay: Duration, file: Option<&(String, String)>) {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let body: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    let deny = body["stream"].as_str().is_some_and(|s| s.contains("deny"));
    rec.lock().unwrap().push((path.clone(), body));
    std::thread::sleep(delay);
    let reply = match file {
        Some((p, body)) if *p == path => body.as_str(),
        _ if deny => r#"{"code":1,"msg":"not this one"}"#,
        _ => r#"{"code":0}"#,
    };
    let _ = sock.write_all(
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len())
            .as_bytes(),
    );
}

/// ffmpeg publishing the sample once (6 s); whether it finished without error.
fn publish_ok(url: &str) -> (bool, String) {
    let mut p = publish(url, false);
    let st = p.wait_timeout(Duration::from_secs(30));
    (st.is_some_and(|s| s.success()), p.stderr_text())
}

fn conf(vhost_extra: &str) -> String {
    ORIGIN_CONF.replace("vhost __defaultVhost__ {\n", &format!("vhost __defaultVhost__ {{\n{vhost_extra}\n"))
}

#[test]
fn hooks_decide_publish_and_play_and_are_told_the_end() {
    let hooks = HookService::start("127.0.21.100", Duration::ZERO);
    let events = ["on_connect", "on_close", "on_publish", "on_unpublish", "on_play", "on_stop"];
    let lines: String = events.iter().map(|e| format!("        {e} {};\n", hooks.url(&format!("/api/{e}")))).collect();
    let with_exporter = conf(&format!("    http_hooks {{\n        enabled on;\n{lines}    }}")).replace(
        "vhost __defaultVhost__ {",
        "exporter { enabled on; listen 127.0.21.1:9972; }\nvhost __defaultVhost__ {",
    );
    let s = Rsrs::start("hooks", "127.0.21.1", &with_exporter);

    // An allowed publish goes through: on_connect, then on_publish, with SRS's fields.
    let mut publisher = publish(&s.rtmp("live/cam?k=v"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)), "{}", s.log_text());
    let connect = hooks.wait_for("on_connect", 1, Duration::from_secs(5));
    let on_publish = hooks.wait_for("on_publish", 1, Duration::from_secs(5));
    let b = &on_publish[0];
    assert_eq!(
        (b["app"].as_str(), b["stream"].as_str(), b["param"].as_str()),
        (Some("live"), Some("cam"), Some("?k=v"))
    );
    assert_eq!(b["vhost"], "__defaultVhost__");
    assert_eq!(b["tcUrl"], "rtmp://127.0.21.1:1935/live");
    assert_eq!(b["stream_url"], "/live/cam");
    assert!(b["ip"].as_str().is_some_and(|ip| ip.starts_with("127.")), "{b}");
    assert_eq!(b["client_id"], connect[0]["client_id"]);
    assert!(
        b["server_id"].as_str().is_some_and(|x| !x.is_empty())
            && b["service_id"].as_str().is_some_and(|x| x.len() == 8)
    );

    // An allowed HTTP-FLV play plays; on_play names the player; its end sends on_stop.
    let (streams, packets) = probe(&s.http("/live/cam.flv?who=probe"), 2);
    assert_sample_stream(&streams, &packets);
    let plays = hooks.wait_for("on_play", 1, Duration::from_secs(5));
    assert_eq!(plays[0]["param"], "?who=probe");
    assert!(!hooks.wait_for("on_stop", 1, Duration::from_secs(5)).is_empty(), "on_stop after the play ends");

    // A denied play is refused with 403 and the hook's answer; a denied publish fails ffmpeg.
    let (status, _, body) = http_request(&format!("{}:8080", s.ip), "GET", "/live/deny-x.flv", &[]);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("on_play hook"), "{}", String::from_utf8_lossy(&body));
    let (ok, _) = publish_ok(&s.rtmp("live/deny-me"));
    assert!(!ok, "a denied publish must fail");
    assert!(s.wait_log("publish refused", Duration::from_secs(5)), "{}", s.log_text());
    assert!(s.log_text().contains("not this one"), "the hook's answer is logged");

    // The allowed publisher stops: on_unpublish, then on_close with its byte counts.
    drop(publisher.0.kill());
    let unpub = hooks.wait_for("on_unpublish", 1, Duration::from_secs(10));
    assert_eq!(unpub[0]["stream"], "cam");
    let closes = hooks.wait_for("on_close", 1, Duration::from_secs(10));
    assert!(closes.iter().any(|c| c["recv_bytes"].as_u64().is_some_and(|n| n > 10_000)), "{closes:?}");

    // The exporter counts the calls by outcome, and the clients the hooks kept out.
    let (_, _, body) = http_request("127.0.21.1:9972", "GET", "/metrics", &[]);
    let text = String::from_utf8(body).unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert!(value("rsrs_hook_calls_total{event=\"on_publish\",outcome=\"accepted\"}") >= 1.0);
    // The denied publisher's stream is in on_connect already (as SRS), which refuses it first.
    assert!(value("rsrs_hook_calls_total{event=\"on_connect\",outcome=\"refused\"}") >= 1.0);
    assert!(value("rsrs_hook_calls_total{event=\"on_play\",outcome=\"refused\"}") >= 1.0);
    assert!(value("rsrs_admission_refusals_total{action=\"publish\",reason=\"hook\"}") >= 1.0);
    assert!(value("rsrs_admission_refusals_total{action=\"play\",reason=\"hook\"}") >= 1.0);
    assert_eq!(value("rsrs_admission_refusals_total{action=\"play\",reason=\"token\"}"), 0.0);
}

#[test]
fn an_unreachable_or_slow_to_refuse_hook_service_keeps_clients_out() {
    // Nothing listens on this port: the publish and the play are refused (fail closed).
    let dead = TcpListener::bind("127.0.21.101:0").unwrap();
    let url = format!("http://{}/api/v1/streams", dead.local_addr().unwrap());
    drop(dead);
    let s = Rsrs::start(
        "hooks-down",
        "127.0.21.2",
        &conf(&format!(
            "    http_hooks {{\n        enabled on;\n        on_publish {url};\n        on_play {url};\n    }}"
        )),
    );
    let (ok, _) = publish_ok(&s.rtmp("live/x"));
    assert!(!ok, "no publish while the hook service is down");
    assert!(s.wait_log("could not be asked", Duration::from_secs(5)), "{}", s.log_text());
    let (status, _, _) = http_request(&format!("{}:8080", s.ip), "GET", "/live/x.flv", &[]);
    assert_eq!(status, 403);
}

#[test]
fn hls_viewers_cause_one_on_play_and_files_are_reported_while_the_hook_is_slow() {
    // Every notification takes 2 s to answer: media must keep flowing meanwhile.
    let hooks = HookService::start("127.0.21.102", Duration::from_secs(2));
    let fast = HookService::start("127.0.21.102", Duration::ZERO);
    let s = Rsrs::start(
        "hooks-hls",
        "127.0.21.3",
        &conf(&format!(
            "    hls {{ enabled on; hls_fragment 1; hls_window 3; hls_dispose 0; }}\n\
             \x20   dvr {{ enabled on; dvr_plan segment; dvr_duration 2; dvr_path ./objs/nginx/html/dvr/[app]/[stream].[timestamp].flv; }}\n\
             \x20   http_hooks {{ enabled on; on_play {}; on_stop {}; on_hls {}; on_dvr {}; on_hls_notify {}; }}",
            fast.url("/play"),
            fast.url("/stop"),
            hooks.url("/hls"),
            hooks.url("/dvr"),
            fast.url("/notify/[app]/[stream]/[ts_url]"),
        )),
    );
    let mut publisher = publish(&s.rtmp("live/h"), true);
    let addr = format!("{}:8080", s.ip);
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            http_request(&addr, "GET", "/live/h.m3u8", &[]).0 == 200
        }),
        "no playlist:\n{}",
        s.log_text()
    );
    let on_play_before = fast.bodies("on_play").len();
    // The first request of a viewer gets a master playlist naming its session.
    let (_, _, master) = http_request(&addr, "GET", "/live/h.m3u8", &[]);
    let master = String::from_utf8_lossy(&master).to_string();
    let media_uri = master.lines().find(|l| l.contains("hls_ctx=")).unwrap_or_else(|| panic!("{master}")).to_string();
    assert!(media_uri.starts_with("/live/h.m3u8?hls_ctx="), "{media_uri}");
    // Twenty segments through the session, refreshing the playlist as a player does.
    let mut fetched = 0;
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fetched < 20 && Instant::now() < deadline {
        let (st, _, pl) = http_request(&addr, "GET", &media_uri, &[]);
        assert_eq!(st, 200);
        let pl = String::from_utf8_lossy(&pl).to_string();
        for uri in pl.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            assert!(uri.contains("hls_ctx="), "segment URIs carry the session: {uri}");
            if seen.insert(uri.to_string()) || fetched < 20 {
                let (st, _, ts) = http_request(&addr, "GET", &format!("/live/{uri}"), &[]);
                assert_eq!(st, 200, "{uri}");
                assert_eq!(ts.first(), Some(&0x47), "a TS segment");
                fetched += 1;
            }
        }
    }
    assert!(fetched >= 20, "fetched {fetched} segments");
    assert_eq!(fast.bodies("on_play").len() - on_play_before, 1, "one on_play for the viewer, not one per request");
    // The viewer is a client in the API (`hls-play`, its id the session's), with its bytes.
    let ctx = media_uri.split("hls_ctx=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let clients = s.api("/api/v1/clients/?count=100");
    let viewer = clients["clients"].as_array().unwrap().iter().find(|c| c["id"] == ctx.as_str()).cloned();
    let viewer = viewer.unwrap_or_else(|| panic!("session {ctx} not among the clients: {clients}"));
    assert_eq!(viewer["type"], "hls-play");
    assert!(
        viewer["tcUrl"].as_str().is_some_and(|u| u.starts_with("http://") && u.contains("/live/h.m3u8")),
        "{viewer}"
    );
    assert!(viewer["send_bytes"].as_u64().unwrap() > 20 * 10_000, "20 segments were sent: {viewer}");
    // A second viewer, kicked through the API: its session's requests get 404, and on_stop goes out.
    let (_, _, master2) = http_request(&addr, "GET", "/live/h.m3u8", &[]);
    let uri2 = String::from_utf8_lossy(&master2).lines().find(|l| l.contains("hls_ctx=")).unwrap().to_string();
    let ctx2 = uri2.split("hls_ctx=").nth(1).unwrap().to_string();
    assert_eq!(http_request(&addr, "GET", &uri2, &[]).0, 200);
    let stops_before = fast.bodies("on_stop").len();
    let (st, _, _) = http_request(&format!("{}:1985", s.ip), "DELETE", &format!("/api/v1/clients/{ctx2}"), &[]);
    assert_eq!(st, 200);
    assert_eq!(http_request(&addr, "GET", &uri2, &[]).0, 404, "a kicked session's playlist");
    assert!(fast.wait_for("on_stop", stops_before + 1, Duration::from_secs(10)).len() > stops_before);
    // A segment without a session is refused where play is restricted.
    let (st, _, _) = http_request(&addr, "GET", "/live/h-1.ts", &[]);
    assert_eq!(st, 403);
    // Files are reported, with their paths, while the slow hook answers one at a time.
    let hls = hooks.wait_for("on_hls", 2, Duration::from_secs(20));
    assert!(hls[0]["file"].as_str().is_some_and(|f| f.ends_with(".ts")), "{}", hls[0]);
    assert!(hls[0]["m3u8"].as_str().is_some_and(|f| f.ends_with("live/h.m3u8")), "{}", hls[0]);
    assert!(hls[0]["url"].as_str().is_some_and(|u| u.starts_with("live/h-")), "{}", hls[0]);
    assert!(hls[0]["duration"].as_f64().is_some_and(|d| d > 0.5) && hls[0]["seq_no"].is_u64());
    // on_hls_notify: a GET of the template, filled in.
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            fast.calls
                .lock()
                .unwrap()
                .iter()
                .any(|(path, _)| path.starts_with("/notify/live/h/h-") && path.ends_with(".ts"))
        }),
        "{:?}",
        fast.calls.lock().unwrap().iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
    );
    let dvr = hooks.wait_for("on_dvr", 1, Duration::from_secs(30));
    assert!(dvr[0]["file"].as_str().is_some_and(|f| f.contains("/dvr/live/h.") && f.ends_with(".flv")), "{}", dvr[0]);
    // The publisher was never held up: the stream is still live and playable now.
    assert!(publisher.0.try_wait().unwrap().is_none(), "publisher still running");
    let (streams, packets) = probe(&s.http("/live/h.flv"), 1);
    assert_sample_stream(&streams, &packets);
    // The first viewer goes quiet: its session ends after 2 × hls_window (min 10 s), with an
    // on_stop that names it.
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            fast.bodies("on_stop").iter().any(|b| b["client_id"] == ctx.as_str() && b["stream"] == "h")
        }),
        "{:?}",
        fast.bodies("on_stop")
    );
    let clients = s.api("/api/v1/clients/?count=100");
    assert!(!clients["clients"].as_array().unwrap().iter().any(|c| c["id"] == ctx.as_str()), "{clients}");
}

#[test]
fn security_rules_match_ipv4_and_ipv6_clients() {
    // Loopback clients connect from 127.0.0.1 (IPv4) and ::1 (IPv6).
    let extra = "    security {\n        enabled on;\n        deny play ::1/128;\n        allow play all;\n        allow publish 127.0.0.0/8;\n    }";
    let base = conf(extra).replace("listen              IP:1935;", "listen              IP:1935 [::1]:18021;");
    let s = Rsrs::start("security", "127.0.21.4", &base);
    let mut publisher = publish(&s.rtmp("live/sec"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)), "{}", s.log_text());
    // IPv4 plays, over HTTP-FLV and RTMP.
    let (streams, packets) = probe(&s.http("/live/sec.flv"), 1);
    assert_sample_stream(&streams, &packets);
    let (streams, packets) = probe(&s.rtmp("live/sec"), 1);
    assert_sample_stream(&streams, &packets);
    // The same play from ::1 is refused by the IPv6 rule, and says which rule.
    let out = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-show_streams", "rtmp://[::1]:18021/live/sec"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an IPv6 client the rules deny must not play");
    assert!(s.wait_log("play refused", Duration::from_secs(5)), "{}", s.log_text());
    assert!(s.log_text().contains("play from ::1 denied by the security rule at srs.conf:"), "{}", s.log_text());
    let _ = publisher.0.kill();

    // Publishing is allowed only from 10.0.0.0/8 here: loopback is refused.
    let extra =
        "    security {\n        enabled on;\n        allow publish 10.0.0.0/8;\n        allow play all;\n    }";
    let s2 = Rsrs::start("security-2", "127.0.21.5", &conf(extra));
    let (ok, _) = publish_ok(&s2.rtmp("live/sec"));
    assert!(!ok);
    assert!(s2.wait_log("not allowed by any security rule", Duration::from_secs(5)), "{}", s2.log_text());
}

fn mint(args: &[&str]) -> String {
    mint_token(SECRET, args)
}

const SECRET: &str = "a-test-secret-of-enough-length";

#[test]
fn signed_urls_admit_only_valid_tokens_on_rtmp_flv_and_hls() {
    let s = Rsrs::start(
        "tokens",
        "127.0.21.6",
        &conf(&format!(
            "    token {{ enabled on; secret {SECRET}; }}\n    hls {{ enabled on; hls_fragment 1; hls_window 4; }}"
        )),
    );
    let addr = format!("{}:8080", s.ip);
    // No token, an expired one, a tampered one: refused.
    let (ok, _) = publish_ok(&s.rtmp("live/t"));
    assert!(!ok);
    let expired = mint(&["--stream", "live/t", "--action", "publish", "--expires", "0s"]);
    assert!(!publish_ok(&s.rtmp(&format!("live/t?{expired}"))).0);
    let good = mint(&["--stream", "live/t", "--action", "publish", "--expires", "1h"]);
    let tampered = good.replace("sign=", "sign=00");
    assert!(!publish_ok(&s.rtmp(&format!("live/t?{tampered}"))).0);
    assert!(
        s.wait_log("token expired", Duration::from_secs(5)) || s.log_text().contains("expired"),
        "{}",
        s.log_text()
    );
    assert!(s.log_text().contains("signature does not match"), "{}", s.log_text());
    // A valid token publishes.
    let mut publisher = publish(&s.rtmp(&format!("live/t?{good}")), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)), "{}", s.log_text());
    // HTTP-FLV: without a token 403; with a play token (a JWT for the app) it plays.
    assert_eq!(http_request(&addr, "GET", "/live/t.flv", &[]).0, 403);
    let play = mint(&["--stream", "live/*", "--action", "play", "--expires", "1h", "--jwt"]);
    let (streams, packets) = probe(&s.http(&format!("/live/t.flv?{play}")), 1);
    assert_sample_stream(&streams, &packets);
    // A publish token does not play.
    assert_eq!(http_request(&addr, "GET", &format!("/live/t.flv?{good}"), &[]).0, 403);
    // HLS: the playlist without a token is refused; with one, a session whose segments play.
    assert!(wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        s.dir.join("objs/nginx/html/live/t.m3u8").exists()
    }));
    assert_eq!(http_request(&addr, "GET", "/live/t.m3u8", &[]).0, 403);
    let (st, _, master) = http_request(&addr, "GET", &format!("/live/t.m3u8?{play}"), &[]);
    assert_eq!(st, 200);
    let master = String::from_utf8_lossy(&master).to_string();
    let uri = master.lines().find(|l| l.contains("hls_ctx=")).unwrap().to_string();
    let (st, _, pl) = http_request(&addr, "GET", &uri, &[]);
    assert_eq!(st, 200);
    let seg = String::from_utf8_lossy(&pl)
        .lines()
        .find(|l| l.ends_with(|c: char| c.is_ascii_alphanumeric()) && !l.starts_with('#'))
        .unwrap()
        .to_string();
    assert_eq!(http_request(&addr, "GET", &format!("/live/{seg}"), &[]).0, 200);
    let _ = publisher.0.kill();
}

#[test]
fn a_reload_that_turns_hooks_on_applies_to_the_next_client() {
    let hooks = HookService::start("127.0.21.103", Duration::ZERO);
    let s = Rsrs::start("hooks-reload", "127.0.21.7", &conf(""));
    assert!(publish_ok(&s.rtmp("live/deny-before")).0, "no hooks yet: anything publishes");
    let with_hooks =
        conf(&format!("    http_hooks {{ enabled on; on_publish {}; }}", hooks.url("/p"))).replace("IP", &s.ip);
    std::fs::write(s.dir.join("srs.conf"), with_hooks).unwrap();
    s.signal("HUP");
    assert!(s.wait_log("reload (SIGHUP) applied", Duration::from_secs(5)), "{}", s.log_text());
    assert!(!publish_ok(&s.rtmp("live/deny-after")).0, "the reloaded hook refuses");
    assert!(publish_ok(&s.rtmp("live/fine")).0);
    assert_eq!(hooks.bodies("on_publish").len(), 2);
}

#[test]
fn a_config_that_restricts_access_in_a_way_rsrs_cannot_enforce_does_not_load() {
    for (extra, why) in [
        ("    http_hooks { enabled on; on_publish ftp://x/y; }", "must be http://"),
        ("    token { enabled on; jwt_key /nonexistent/key.pem; }", "cannot read the JWT public key file"),
        ("    security { enabled on; allow publish 10.0.0.0/33; }", "is not all, an IP address or a CIDR"),
        ("    security { enabled on; allow record all; }", "is not publish or play"),
        ("    token { enabled on; secret short; }", "at least 16"),
        ("    hls { enabled on; hls_keys on; }", "encryption"),
        (
            "    hls { enabled on; hls_ctx off; }\n    http_hooks { enabled on; on_play http://127.0.0.1:9/x; }",
            "hls_ctx off",
        ),
    ] {
        let dir = std::env::temp_dir().join(format!("rsrs-access-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("srs.conf");
        std::fs::write(&path, conf(extra).replace("IP", "127.0.21.8")).unwrap();
        let out = Command::new(BIN).args(["-t", "-c"]).arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "loaded: {extra}\n{text}");
        assert!(text.contains(why), "{extra}: {text}");
        assert!(text.contains("srs.conf:"), "names the file and line: {text}");
    }
}

/// Runs openssl (needed for these tests: `apt-get install openssl`).
fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut c = Command::new("openssl");
    c.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("openssl must be installed (apt-get install openssl)");
    if let Some(data) = input {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn b64url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A JWT signed by openssl (independently of rsrs's verifier) with `key`: RS256 for an RSA key,
/// ES256 (the DER signature turned into JOSE's r||s) for a P-256 key.
fn openssl_jwt(key: &std::path::Path, alg: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = serde_json::json!({ "alg": alg, "typ": "JWT" });
    if let Some(k) = kid {
        header["kid"] = k.into();
    }
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let der = openssl(&["dgst", "-sha256", "-sign", key.to_str().unwrap()], Some(input.as_bytes()));
    let sig = if alg == "ES256" {
        // SEQUENCE { INTEGER r, INTEGER s }, each as 32 big-endian bytes.
        let int = |at: usize| -> (Vec<u8>, usize) {
            assert_eq!(der[at], 0x02);
            let len = der[at + 1] as usize;
            let v = der[at + 2..at + 2 + len].iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
            let mut padded = vec![0u8; 32 - v.len()];
            padded.extend(v);
            (padded, at + 2 + len)
        };
        let (r, next) = int(2);
        let (s, _) = int(next);
        [r, s].concat()
    } else {
        der
    };
    format!("{input}.{}", b64url(&sig))
}

#[test]
fn jwts_signed_with_a_public_key_from_a_file_or_a_key_set() {
    let dir = std::env::temp_dir().join(format!("rsrs-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &p("rsa.pem")], None);
    openssl(&["pkey", "-in", &p("rsa.pem"), "-pubout", "-out", &p("rsa.pub.pem")], None);
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &p("ec.pem")], None);
    openssl(&["pkey", "-in", &p("ec.pem"), "-pubout", "-out", &p("ec.pub.pem")], None);
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = serde_json::json!({ "exp": exp, "action": "publish", "stream": "live/*" });

    // ES256 with a key file.
    let s = Rsrs::start(
        "jwt-file",
        "127.0.21.9",
        &conf(&format!("    token {{ enabled on; jwt_key {}; }}", p("ec.pub.pem"))),
    );
    let es = openssl_jwt(&dir.join("ec.pem"), "ES256", None, &claims);
    let mut publisher = publish(&s.rtmp(&format!("live/jwt?token={es}")), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)), "{}", s.log_text());
    // Signed by another key, or with the right key but a different claim: refused.
    let rs = openssl_jwt(&dir.join("rsa.pem"), "RS256", None, &claims);
    assert!(!publish_ok(&s.rtmp(&format!("live/other?token={rs}"))).0);
    let (head, _) = es.rsplit_once('.').unwrap();
    let forged_claims = serde_json::json!({ "exp": exp, "action": "*", "stream": "*" });
    let forged = format!(
        "{}.{}.{}",
        head.split('.').next().unwrap(),
        b64url(forged_claims.to_string().as_bytes()),
        es.rsplit('.').next().unwrap()
    );
    assert!(!publish_ok(&s.rtmp(&format!("live/other?token={forged}"))).0);
    assert!(s.log_text().contains("no public key of the vhost has the JWT's algorithm"), "{}", s.log_text());
    assert!(s.log_text().contains("signature does not match"), "{}", s.log_text());
    let _ = publisher.0.kill();

    // RS256 with a key set fetched from a URL, the key named by its kid.
    let modulus =
        String::from_utf8(openssl(&["rsa", "-pubin", "-in", &p("rsa.pub.pem"), "-modulus", "-noout"], None)).unwrap();
    let hex = modulus.trim().strip_prefix("Modulus=").unwrap();
    let n: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let jwks = serde_json::json!({ "keys": [{ "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": b64url(&n), "e": "AQAB" }] });
    let keys = HookService::serving("127.0.21.104", Duration::ZERO, Some(("/jwks.json", jwks.to_string())));
    let s2 = Rsrs::start(
        "jwt-jwks",
        "127.0.21.10",
        &conf(&format!("    token {{ enabled on; jwks_url {}; }}", keys.url("/jwks.json"))),
    );
    assert!(s2.wait_log("public keys fetched", Duration::from_secs(10)), "{}", s2.log_text());
    let rs_k1 = openssl_jwt(&dir.join("rsa.pem"), "RS256", Some("k1"), &claims);
    assert!(publish_ok(&s2.rtmp(&format!("live/jwks?token={rs_k1}"))).0, "{}", s2.log_text());
    let rs_k2 = openssl_jwt(&dir.join("rsa.pem"), "RS256", Some("k2"), &claims);
    assert!(!publish_ok(&s2.rtmp(&format!("live/jwks?token={rs_k2}"))).0, "an unknown kid is refused");
    assert!(!publish_ok(&s2.rtmp(&format!("live/jwks?token={es}"))).0, "an ES256 token has no key here");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_edge_asks_its_own_hooks_before_pulling_or_forwarding() {
    let hooks = HookService::start("127.0.21.105", Duration::ZERO);
    let origin = Rsrs::start("hooks-edge-o", "127.0.21.11", &conf(""));
    let edge_conf = conf(&format!(
        "    cluster {{ mode remote; origin 127.0.21.11; }}\n    http_hooks {{ enabled on; on_play {}; on_publish {}; }}",
        hooks.url("/play"),
        hooks.url("/publish")
    ));
    let edge = Rsrs::start("hooks-edge-e", "127.0.21.12", &edge_conf);
    let mut publisher = publish(&origin.rtmp("live/e"), true);
    assert!(origin.wait_log("publish started", Duration::from_secs(10)));
    // Played through the edge: the edge's on_play decides, then the edge pulls from the origin.
    let (streams, packets) = probe(&edge.http("/live/e.flv"), 1);
    assert_sample_stream(&streams, &packets);
    let plays = hooks.wait_for("on_play", 1, Duration::from_secs(5));
    assert_eq!(plays[0]["stream"], "e");
    // A stream the edge's hook refuses is refused at the edge, before any pull.
    assert_eq!(http_request(&format!("{}:8080", edge.ip), "GET", "/live/deny-e.flv", &[]).0, 403);
    assert!(
        !edge.log_text().lines().any(|l| l.contains("edge: pulling") && l.contains("deny-e")),
        "{}",
        edge.log_text()
    );
    // A publish to the edge asks the edge's on_publish before it is forwarded.
    assert!(!publish_ok(&edge.rtmp("live/deny-pub")).0);
    assert_eq!(hooks.bodies("on_publish").len(), 1);
    let _ = publisher.0.kill();
}
