//! The quick-start origin (scenario S1) against real clients: ffmpeg publishes, ffmpeg,
//! ffprobe and rtmpdump play over RTMP and HTTP-FLV. Each test runs its own rsrs on its own
//! loopback address with the standard ports.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn rtmp_publish_and_play_with_ffprobe() {
    let s = Rsrs::start("rtmp-play", "127.0.2.1", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/livestream"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)), "{}", s.log_text());
    let (streams, packets) = probe(&s.rtmp("live/livestream"), 3);
    assert_sample_stream(&streams, &packets);
    // The guide's canary check: ffmpeg shows which server version served the stream.
    let out = Command::new("timeout")
        .args(["20", "ffprobe", "-hide_banner", "-read_intervals", "%+1"])
        .arg(s.rtmp("live/livestream"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("server_version") && text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}

#[test]
fn http_flv_plays_the_whole_stream_and_ends_with_it() {
    whole_stream_over_http_flv(Rsrs::start("flv-whole", "127.0.2.2", ORIGIN_CONF), |_| {});
}

/// SRS's merged reads (`publish { mr on; }`): the publisher's socket is read in batches, and
/// every frame still arrives, in order.
#[test]
fn merged_reads_lose_nothing() {
    let conf = ORIGIN_CONF
        .replace("vhost __defaultVhost__ {", "vhost __defaultVhost__ {\n    publish { mr on; mr_latency 350; }");
    whole_stream_over_http_flv(Rsrs::start("flv-whole-mr", "127.0.2.14", &conf), |_| {});
}

/// A publisher whose players all merge writes reads at their windows' closes instead of at each
/// message (the exporter says so while it publishes), and the player still gets all of it.
#[test]
fn paced_reads_lose_nothing() {
    let conf = ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        "exporter {\n    enabled on;\n    listen 127.0.2.15:9972;\n}\nvhost __defaultVhost__ {",
    );
    whole_stream_over_http_flv(Rsrs::start("flv-whole-paced", "127.0.2.15", &conf), |_| {
        let paced = || {
            let (_, _, body) = http_request("127.0.2.15:9972", "GET", "/metrics", &[]);
            String::from_utf8_lossy(&body).lines().any(|l| {
                l.starts_with("rsrs_stream_publisher_paced{") && l.contains("stream=\"whole\"") && l.ends_with(" 1")
            })
        };
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(100), paced),
            "the publisher never read paced"
        );
    });
}

fn whole_stream_over_http_flv(s: Rsrs, while_publishing: impl FnOnce(&Rsrs)) {
    let out = s.dir.join("got.flv");
    // The player connects first and waits; it must then get the whole 6 s publish and stop
    // when the publisher leaves.
    let mut player = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(s.http("live/whole.flv"))
            .args(["-c", "copy", "-f", "flv"])
            .arg(&out)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(s.wait_log("HTTP-FLV play started", Duration::from_secs(10)), "{}", s.log_text());
    let mut publisher = publish(&s.rtmp("live/whole"), false);
    while_publishing(&s);
    let st = publisher.wait_timeout(Duration::from_secs(30)).expect("publisher finishes");
    assert!(st.success(), "publisher failed: {}", publisher.stderr_text());
    let st =
        player.wait_timeout(Duration::from_secs(15)).expect("HTTP-FLV response ends when the stream is unpublished");
    assert!(st.success(), "player failed: {}", player.stderr_text());
    let (streams, packets) = probe_file(&out);
    assert_sample_stream(&streams, &packets);
    let video: Vec<&Packet> = packets.iter().filter(|p| p.codec_type == "video").collect();
    let duration = video.last().unwrap().dts - video.first().unwrap().dts;
    assert!((5.5..=6.1).contains(&duration), "received {duration:.2}s of the 6 s stream");
    assert!(video.len() >= 175, "lost frames: got {} of 180", video.len());
}

#[test]
fn rtmpdump_plays() {
    let s = Rsrs::start("rtmpdump", "127.0.2.3", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/dump"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let out = s.dir.join("dump.flv");
    // A live play with no duration runs until stopped: bound it with timeout (it flushes on SIGTERM).
    let st = Command::new("timeout")
        .args(["4", "rtmpdump", "-q", "--live", "-r"])
        .arg(s.rtmp("live/dump"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(124), "rtmpdump should still be playing when stopped: {st}");
    let (streams, packets) = probe_file(&out);
    assert_sample_stream(&streams, &packets);
}

#[test]
fn rtmpdump_stop_ends_the_play_by_itself() {
    let s = Rsrs::start("rtmpdump-stop", "127.0.2.11", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/stop"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let out = s.dir.join("stop.flv");
    // `--stop 3` asks for 3 s (play's duration argument): the server ends the play there.
    let st = Command::new("timeout")
        .args(["15", "rtmpdump", "-q", "--live", "--stop", "3", "-r"])
        .arg(s.rtmp("live/stop"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert_ne!(st.code(), Some(124), "rtmpdump --stop 3 was still playing after 15 s");
    assert!(s.wait_log("played the requested 3000 ms", Duration::from_secs(5)), "{}", s.log_text());
    let (_, packets) = probe_file(&out);
    let last = packets.iter().filter(|p| p.codec_type == "video").map(|p| p.dts).fold(0.0, f64::max);
    assert!((2.5..5.0).contains(&last), "played {last:.2} s for --stop 3");
}

#[test]
fn rtmp_players_stay_through_a_republish() {
    let s = Rsrs::start("republish", "127.0.2.12", ORIGIN_CONF);
    let url = s.rtmp("live/re");
    let mut first = publish(&url, false); // the 6 s sample, once
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    // ffmpeg asks for 9 s: 6 from the first publish, the rest only from the second.
    let mut ffmpeg = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-stats", "-i", &url, "-t", "9", "-f", "null", "-"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let dump = s.dir.join("re.flv");
    let mut rtmpdump = Proc(
        Command::new("rtmpdump")
            .args(["-q", "--live", "-r", &url, "-o"])
            .arg(&dump)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(s.wait_log_count("play started", 2, Duration::from_secs(10)), "{}", s.log_text());
    assert!(first.wait_timeout(Duration::from_secs(15)).is_some(), "the first publish ends with its file");
    assert!(s.wait_log("the player waits for a republish", Duration::from_secs(5)), "{}", s.log_text());
    let _second = publish(&url, true);
    assert!(s.wait_log_count("publish started", 2, Duration::from_secs(10)));
    let st = ffmpeg.wait_timeout(Duration::from_secs(20)).expect("ffmpeg reaches its 9 s");
    let err = ffmpeg.stderr_text();
    assert!(st.success(), "{err}");
    let reached = err.rsplit("time=").next().and_then(|t| t.get(..8)).unwrap_or("");
    assert!(reached >= "00:00:08", "ffmpeg stopped at {reached}: it left with the first publisher\n{err}");
    assert_eq!(s.count_log("play stopped by client"), 0, "{}", s.log_text());
    // rtmpdump is still there and gets the second publish too.
    assert!(rtmpdump.0.try_wait().unwrap().is_none(), "rtmpdump left with the first publisher");
    let size = std::fs::metadata(&dump).map(|m| m.len()).unwrap_or(0);
    assert!(size > 150_000, "rtmpdump got {size} bytes: less than both publishes");
}

#[test]
fn late_joiner_starts_at_once_on_a_keyframe() {
    let s = Rsrs::start("late", "127.0.2.4", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/late"), true);
    // Join well after the first GOP, and in the middle of a GOP (the sample has a keyframe every
    // 30 frames): the GOP cache then holds about half a second the joiner gets at once.
    s.wait_api("/api/v1/streams/", Duration::from_secs(20), |v| {
        let frames = v["streams"][0]["frames"].as_u64().unwrap_or(0);
        frames > 45 && (12..=18).contains(&(frames % 30))
    });
    let rtmp = Players::start(&s.rtmp("live/late"), "rtmp", 3, 2);
    let flv = Players::start(&s.http("live/late.flv"), "flv", 3, 2);
    for (proto, report) in [("rtmp", rtmp.report()), ("flv", flv.report())] {
        assert_eq!(report["connected"], 3, "{proto}: {report}");
        assert_eq!(report["not_starting_on_keyframe"], 0, "{proto}: {report}");
        // At once: the first keyframe within a fraction of a second of connecting...
        let ttfk = report["ttfk_p99_ms"].as_f64().unwrap_or(f64::MAX);
        assert!(ttfk < 300.0, "{proto}: first keyframe after {ttfk} ms");
        // ...and faster than real time: in 2 s of wall time each player got the cached part of
        // the GOP on top of 2 s of live media.
        let per_player = report["media_secs"].as_f64().unwrap() / 3.0;
        assert!(per_player > 2.2, "{proto}: {per_player:.2} s of media in 2 s: no head start from the GOP cache");
    }
    // And a player's timeline starts at its own zero.
    let (streams, packets) = probe(&s.rtmp("live/late"), 2);
    assert_sample_stream(&streams, &packets);
    let first = packets.iter().find(|p| p.codec_type == "video").unwrap();
    assert!(first.dts < 0.1, "player timeline should start near zero, got {}", first.dts);
}

#[test]
fn second_publisher_is_refused_and_the_first_keeps_going() {
    let s = Rsrs::start("busy", "127.0.2.5", ORIGIN_CONF);
    let mut first = publish(&s.rtmp("live/busy"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let mut second = publish(&s.rtmp("live/busy"), true);
    let st = second.wait_timeout(Duration::from_secs(15)).expect("second publisher must be refused");
    assert!(!st.success());
    let err = second.stderr_text();
    assert!(s.wait_log("publish refused", Duration::from_secs(2)), "{}", s.log_text());
    // ffmpeg shows the status description: "Server error: stream /live/busy is already ...".
    assert!(err.contains("stream /live/busy is already being published"), "{err}");
    assert!(first.0.try_wait().unwrap().is_none(), "first publisher must be unaffected");
    let (streams, packets) = probe(&s.rtmp("live/busy"), 2);
    assert_sample_stream(&streams, &packets);
}

#[test]
fn api_lists_and_kicks_clients() {
    let s = Rsrs::start("kick", "127.0.2.6", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/kick"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let mut player = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(s.rtmp("live/kick"))
            .args(["-f", "null", "-"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let v = s.wait_api("/api/v1/clients/", Duration::from_secs(10), |v| {
        v["clients"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "rtmp-play"))
    });
    assert_eq!(v["code"], 0);
    let clients = v["clients"].as_array().unwrap();
    let publisher = clients.iter().find(|c| c["publish"] == true).expect("publisher listed");
    assert_eq!(publisher["type"], "fmle-publish");
    assert_eq!(publisher["url"], "/live/kick");
    let play = clients.iter().find(|c| c["type"] == "rtmp-play").unwrap();
    let id = play["id"].as_str().unwrap().to_string();
    // The stream lists both, and its id links them.
    let streams = s.api("/api/v1/streams");
    let stream = &streams["streams"][0];
    assert_eq!(stream["name"], "kick");
    assert_eq!(stream["publish"]["active"], true);
    assert_eq!(stream["clients"], 2);
    assert_eq!(stream["video"]["codec"], "H264");
    assert_eq!(stream["video"]["width"], 640);
    assert_eq!(stream["audio"]["codec"], "AAC");
    assert_eq!(play["stream"], stream["id"]);
    let one = s.api(&format!("/api/v1/streams/{}", stream["id"].as_str().unwrap()));
    assert_eq!(one["stream"]["id"], stream["id"]);

    let (status, _, body) = http_request(&format!("{}:1985", s.ip), "DELETE", &format!("/api/v1/clients/{id}"), &[]);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["code"], 0);
    assert!(player.wait_timeout(Duration::from_secs(10)).is_some(), "kicked player must be disconnected");
    assert!(s.wait_log("kicked by the API", Duration::from_secs(5)));
    let v = s.api(&format!("/api/v1/clients/{id}"));
    assert_eq!(v["code"], 2049, "a kicked client is gone: {v}");
}

#[test]
fn http_server_files_api_shapes_and_cors() {
    let s = Rsrs::start("http", "127.0.2.7", ORIGIN_CONF);
    let web = format!("{}:8080", s.ip);
    let api = format!("{}:1985", s.ip);
    let (st, head, body) = http_request(&web, "GET", "/", &[]);
    assert_eq!(st, 200);
    assert!(head.contains("Content-Type: text/html"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("rsrs"));
    std::fs::create_dir_all(s.dir.join("objs/nginx/html/live")).unwrap();
    std::fs::write(s.dir.join("objs/nginx/html/live/a.m3u8"), "#EXTM3U\n").unwrap();
    let (st, head, body) = http_request(&web, "GET", "/live/a.m3u8", &[("Origin", "http://example.com")]);
    assert_eq!(st, 200);
    assert!(head.contains("Content-Type: application/vnd.apple.mpegurl"), "{head}");
    assert!(head.contains("Access-Control-Allow-Origin: *"), "{head}");
    assert_eq!(body, b"#EXTM3U\n");
    let (st, head, body) = http_request(&web, "HEAD", "/live/a.m3u8", &[]);
    assert_eq!(st, 200);
    assert!(head.contains("Content-Length: 8"), "{head}");
    assert!(body.is_empty());
    let (st, head, _) = http_request(&web, "GET", "/live/a.m3u8", &[]);
    assert_eq!(st, 200);
    assert!(!head.contains("Access-Control"), "CORS only when Origin is sent: {head}");
    assert_eq!(http_request(&web, "GET", "/nope.ts", &[]).0, 404);
    assert_eq!(http_request(&web, "GET", "/../../etc/passwd", &[]).0, 404);
    assert_eq!(http_request(&web, "OPTIONS", "/live/a.m3u8", &[("Origin", "x")]).0, 200);

    let v = s.api("/api/v1/versions");
    assert_eq!(v["code"], 0);
    assert!(v["server"].as_str().unwrap().starts_with("vid-"));
    assert!(v["pid"].is_string(), "SRS sends pid as a string");
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
    let v = s.api("/api/v1/summaries");
    assert_eq!(v["data"]["ok"], true);
    assert!(v["data"]["self"]["mem_kbyte"].as_u64().unwrap() > 0);
    assert!(v["data"]["system"]["conn_srs"].as_u64().unwrap() >= 1);
    assert_eq!(s.api("/api/v1/streams/vid-nothere")["code"], 2048);
    assert_eq!(s.api("/api/v1/clients/nothere")["code"], 2049);
    assert!(s.api("/api/v1/")["urls"]["streams"].is_string());
    let (st, head, body) = http_request(&api, "GET", "/api/v1/versions?callback=cb", &[]);
    assert_eq!(st, 200);
    assert!(head.contains("text/javascript"));
    assert!(body.starts_with(b"cb({"));
}

#[test]
fn config_check_reports_file_line_and_directive() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("config-check");
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.conf");
    std::fs::write(&good, ORIGIN_CONF.replace("IP", "127.0.0.1")).unwrap();
    let out = Command::new(BIN).arg("-t").arg("-c").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("test is successful"));
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "listen 1935;\nvhost __defaultVhost__ {\n    http_remux {\n        enabeld on;\n    }\n}\n")
        .unwrap();
    let out = Command::new(BIN).arg("-t").arg("-c").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.conf:4") && err.contains("vhost.http_remux.enabeld"), "{err}");
    let out = Command::new(BIN).args(["-t", "-c", "/nonexistent/srs.conf"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/srs.conf"));
    let out = Command::new(BIN).arg("-v").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn max_connections_refuses_cleanly() {
    let conf = ORIGIN_CONF.replace("max_connections     1000;", "max_connections     2;");
    let s = Rsrs::start("maxconn", "127.0.2.8", &conf);
    let addr = format!("{}:1935", s.ip);
    let _a = TcpStream::connect(&addr).unwrap();
    let _b = TcpStream::connect(&addr).unwrap();
    // Once both are registered, a third is closed at once (retry covers accept ordering).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 1];
        let r = c.read(&mut buf);
        if matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "third connection was not refused");
    }
    assert!(s.wait_log("in all, max_connections 2", Duration::from_secs(5)), "{}", s.log_text());
}

#[test]
fn hostile_peers_are_cut_off_and_players_unaffected() {
    let s = Rsrs::start("hostile", "127.0.2.9", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/h"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let addr = format!("{}:1935", s.ip);
    let hs = |c: &mut TcpStream| {
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&[0u8; 1536]);
        c.write_all(&c0c1).unwrap();
        let mut s0s1s2 = vec![0u8; 3073];
        c.read_exact(&mut s0s1s2).unwrap();
        c.write_all(&s0s1s2[1..1537]).unwrap();
    };
    type Attack = Box<dyn Fn(&mut TcpStream)>;
    let attacks: Vec<(&str, Attack)> = vec![
        ("wrong version", Box::new(|c: &mut TcpStream| c.write_all(&[6u8; 1537]).unwrap())),
        (
            "absurd chunk size",
            Box::new(move |c: &mut TcpStream| {
                hs(c);
                c.write_all(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]).unwrap();
            }),
        ),
        (
            "huge message",
            Box::new(move |c: &mut TcpStream| {
                hs(c);
                // 16 MB video message header, then a trickle.
                c.write_all(&[0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0, 0x17]).unwrap();
            }),
        ),
        (
            "truncated AMF connect",
            Box::new(move |c: &mut TcpStream| {
                hs(c);
                c.write_all(&[0x03, 0, 0, 0, 0, 0, 5, 20, 0, 0, 0, 0, 0x02, 0x00, 0x07, b'c', b'o']).unwrap();
                c.write_all(&[0x03, 0, 0, 0, 0, 0, 3, 20, 0, 0, 0, 0, 0x03, 0x00, 0x01]).unwrap();
            }),
        ),
        (
            "garbage chunks",
            Box::new(move |c: &mut TcpStream| {
                hs(c);
                let junk: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
                let _ = c.write_all(&junk);
            }),
        ),
    ];
    let mut player = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(s.rtmp("live/h"))
            .args(["-t", "4", "-f", "null", "-"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    for (name, attack) in &attacks {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        attack(&mut c);
        // The server must end this connection (EOF or reset), not hang or crash.
        let mut buf = [0u8; 4096];
        let ended = loop {
            match c.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                    break false
                }
                Err(_) => break true,
            }
        };
        if *name == "truncated AMF connect" {
            // Undecodable commands are skipped while waiting for a real connect (bounded by
            // the 30 s identification timeout), so this one stays open.
            assert!(!ended, "{name}: an undecodable command alone should not end the connection");
        } else {
            assert!(ended, "{name}: connection not closed");
        }
    }
    let st = player.wait_timeout(Duration::from_secs(20)).expect("player finishes its 4 s");
    assert!(st.success(), "player was hurt: {}", player.stderr_text());
    let mut s = s;
    assert!(s.alive(), "server died:\n{}", s.log_text());
    let log = s.log_text();
    assert!(log.contains("peer set chunk size 2147483647"), "absurd chunk size should be logged:\n{log}");
    assert!(log.contains("exceeds the limit of 8388608"), "oversized message should be logged:\n{log}");
}

#[test]
fn env_only_mode_serves() {
    let ip = "127.0.2.10";
    let listen = format!("{ip}:1935");
    let api = format!("{ip}:1985");
    let s = Rsrs::start_with(
        "envonly",
        ip,
        None,
        &["-e"],
        &[("SRS_LISTEN", &listen), ("SRS_HTTP_API_ENABLED", "on"), ("SRS_HTTP_API_LISTEN", &api)],
    );
    assert!(s.wait_log("HTTP API listening", Duration::from_secs(5)));
    assert_eq!(s.api("/api/v1/versions")["code"], 0);
    let _pub = publish(&s.rtmp("live/env"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let (streams, packets) = probe(&s.rtmp("live/env"), 2);
    assert_sample_stream(&streams, &packets);
}

#[test]
fn api_byte_counters_are_cumulative_and_never_go_down_when_clients_leave() {
    let s = Rsrs::start("bytes", "127.0.2.13", ORIGIN_CONF);
    let totals = |s: &Rsrs| {
        let sum = s.api("/api/v1/summaries");
        let vh = s.api("/api/v1/vhosts/");
        let v = &vh["vhosts"][0];
        (
            sum["data"]["system"]["srs_send_bytes"].as_u64().unwrap(),
            sum["data"]["system"]["srs_recv_bytes"].as_u64().unwrap(),
            v["send_bytes"].as_u64().unwrap(),
            v["recv_bytes"].as_u64().unwrap(),
        )
    };
    let mut publisher = publish(&s.rtmp("live/b"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let (streams, packets) = probe(&s.http("/live/b.flv"), 1);
    assert_sample_stream(&streams, &packets);
    // An HTTP-FLV player shows the URL it asked for, and the bytes of its request.
    let player = Players::start(&s.http("live/b.flv?k=1"), "flv", 1, 4);
    let clients = s.wait_api("/api/v1/clients/?count=100", Duration::from_secs(10), |v| {
        v["clients"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "flv-play"))
    });
    let flv = clients["clients"].as_array().unwrap().iter().find(|c| c["type"] == "flv-play").unwrap().clone();
    assert_eq!(flv["tcUrl"], "http://127.0.2.13:8080/live/b.flv?k=1", "{flv}");
    assert!(flv["recv_bytes"].as_u64().unwrap() > 20, "{flv}");
    assert_eq!(player.report()["players"], 1);
    let with_publisher = totals(&s);
    assert!(
        with_publisher.0 > 10_000 && with_publisher.2 > 10_000,
        "a player's bytes stay counted: {with_publisher:?}"
    );
    // The publisher leaves too: nothing it sent is forgotten.
    let _ = publisher.0.kill();
    assert!(s.wait_log("publish stopped", Duration::from_secs(10)), "{}", s.log_text());
    let after = totals(&s);
    assert!(after.0 >= with_publisher.0 && after.1 >= with_publisher.1, "{with_publisher:?} then {after:?}");
    assert!(after.2 >= with_publisher.2 && after.3 >= with_publisher.3, "{with_publisher:?} then {after:?}");
    assert!(after.3 > 10_000, "the publisher's bytes stay in the vhost's total: {after:?}");
}
