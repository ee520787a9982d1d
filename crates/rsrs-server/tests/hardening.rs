//! Attacks on a running rsrs, each sent for real (raw sockets where ffmpeg cannot express it),
//! asserting the refusal, the bound or where files land, and that an honest publisher and player
//! on the same server keep going.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use rsrs_codec::rtmp::Message;
use rsrs_server::rtmp::client::{ClientError, RtmpClient};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command as Cmd, Stdio};
use std::time::{Duration, Instant};

fn conf(extra_top: &str, vhost_extra: &str) -> String {
    ORIGIN_CONF
        .replace("daemon              off;", &format!("daemon              off;\n{extra_top}"))
        .replace("vhost __defaultVhost__ {", &format!("vhost __defaultVhost__ {{\n{vhost_extra}"))
}

/// Sends raw bytes and returns everything the server answers until it closes (or 10 s pass).
fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The honest pair every attack test ends with: the stream still plays over RTMP and HTTP-FLV.
fn assert_still_serving(s: &Rsrs, stream: &str) {
    let (streams, packets) = probe(&s.rtmp(stream), 2);
    assert_sample_stream(&streams, &packets);
    let (streams, packets) = probe(&s.http(&format!("{stream}.flv")), 2);
    assert_sample_stream(&streams, &packets);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// An RTMP publish of `stream` on `app` with the server's own client; the refusal if any.
fn rtmp_publish(rt: &tokio::runtime::Runtime, ip: &str, app: &str, stream: &str) -> Result<RtmpClient, ClientError> {
    rt.block_on(async {
        let addr = format!("{ip}:1935").parse().unwrap();
        let t = Duration::from_secs(5);
        let mut c = RtmpClient::connect(addr, &format!("rtmp://{ip}/{app}"), app, t, t).await?;
        c.publish(stream, t).await?;
        Ok(c)
    })
}

#[test]
fn api_auth_holds_for_every_spelling_of_a_path() {
    let s = Rsrs::start(
        "hard-auth",
        "127.0.20.1",
        &conf("", "").replace(
            "    listen          IP:1985;\n",
            "    listen          IP:1985;\n    auth { enabled on; username admin; password s3cret; }\n",
        ),
    );
    let _p = publish(&s.rtmp("live/a"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let api = format!("{}:1985", s.ip);
    let basic = "Authorization: Basic YWRtaW46czNjcmV0\r\n"; // admin:s3cret
    let listed =
        raw(&api, format!("GET /api/v1/clients/ HTTP/1.1\r\nHost: x\r\n{basic}Connection: close\r\n\r\n").as_bytes());
    assert_eq!(status_of(&listed), 200, "{listed}");
    let body = &listed[listed.find("\r\n\r\n").unwrap() + 4..];
    let clients: serde_json::Value = serde_json::from_str(body).unwrap();
    let publisher = clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["publish"] == true)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .expect("the publisher is listed");

    // The bypass: no leading slash. Refused as malformed, before routing.
    for req in [
        "GET api/v1/clients HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        format!("DELETE api/v1/clients/{publisher} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ] {
        let r = raw(&api, req.as_bytes());
        assert_eq!(status_of(&r), 400, "{req:?} -> {r}");
        assert!(!r.contains("\"clients\""), "{r}");
    }
    // Other spellings of the same path are authorised as that path.
    for target in [
        "/api/v1/../v1/clients",
        "//api/v1/clients",
        "/%61pi/v1/clients",
        "/./api/v1/clients/",
        "http://x/api/v1/clients",
        &format!("/api/v1/clients/{publisher}/"),
    ] {
        for method in ["GET", "DELETE"] {
            let r = raw(&api, format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
            assert_eq!(status_of(&r), 401, "{method} {target} -> {r}");
        }
    }
    // The publisher was never kicked.
    assert_eq!(s.count_log("kicked"), 0, "{}", s.log_text());
    assert_still_serving(&s, "live/a");
}

#[test]
fn names_that_climb_out_of_their_directories_are_refused() {
    let s = Rsrs::start(
        "hard-names",
        "127.0.20.2",
        &conf(
            "",
            "    hls { enabled on; hls_fragment 1; }\n    dvr { enabled on; dvr_path ./objs/nginx/html/[app]/[stream].[timestamp].flv; }\n",
        ),
    );
    // A unique target outside the server's directory, which must never appear.
    let escape = format!("rsrs-escape-{}", std::process::id());
    let outside = s.dir.join("objs/nginx/html/../../../..").join(&escape);
    let _ = std::fs::remove_dir_all(&outside);
    let _ok = publish(&s.rtmp("live/ok"), true);

    // ffmpeg's own knobs, as an attacker would use them.
    for (app, stream, why) in [
        (format!("../../../../{escape}"), "x".to_string(), "app has an empty, '.' or '..' path segment"),
        ("live".to_string(), format!("../../../../{escape}/x"), "stream name has an empty, '.' or '..' path segment"),
        ("live".to_string(), r"..\..\x".to_string(), "stream name contains a backslash"),
    ] {
        let out = Cmd::new("timeout")
            .args(["20", "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-t", "2", "-i"])
            .arg(sample())
            .args(["-c", "copy", "-f", "flv", "-rtmp_app", &app, "-rtmp_playpath", &stream])
            .arg(format!("rtmp://{}:1935/{app}/{stream}", s.ip))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "publish of {app}/{stream} was accepted");
        assert!(s.wait_log(why, Duration::from_secs(5)), "{why}\n{}", s.log_text());
    }
    // Over HTTP the path is normalised first; what is still unsafe as a name is refused.
    let http = format!("{}:8080", s.ip);
    let r = raw(&http, b"GET /live/a%5cb.flv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&r), 400, "{r}");
    assert!(r.contains("backslash"), "{r}");
    let r = raw(&http, b"GET /live/a%0d%0ab.flv HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_of(&r), 400, "{r}");

    assert!(!outside.exists(), "{} was created", outside.display());
    assert!(s.wait_log("DVR recording", Duration::from_secs(10)));
    assert_still_serving(&s, "live/ok");
    // The honest stream's files are where the config says.
    let live = s.dir.join("objs/nginx/html/live");
    assert!(!files_with_suffix(&live, ".flv.tmp").is_empty(), "{}", s.log_text());
    assert!(live.join("ok.m3u8").exists(), "{}", s.log_text());
}

#[test]
fn control_characters_and_huge_names_never_reach_the_log() {
    let s = Rsrs::start("hard-log", "127.0.20.3", &conf("", ""));
    let _ok = publish(&s.rtmp("live/ok"), true);
    let forged = "2026-12-02T00:00:00.000000Z  INFO forged: admin logged in";
    let rt = runtime();
    match rtmp_publish(&rt, &s.ip, "live", &format!("x\r\n{forged}")) {
        Err(ClientError::Refused(why)) => assert!(why.contains("control character"), "{why}"),
        other => panic!("a name with CR/LF was not refused: {:?}", other.map(|_| ())),
    }
    // 1 MiB of name: refused, and what is logged or sent back is short.
    let huge = "n".repeat(1 << 20);
    match rtmp_publish(&rt, &s.ip, "live", &huge) {
        Err(ClientError::Refused(why)) => {
            assert!(why.contains("longer than the 256 allowed"), "{}", &why[..why.len().min(300)]);
            assert!(why.len() < 1024, "the reply echoed {} bytes", why.len());
        }
        other => panic!("a 1 MiB name was not refused: {:?}", other.map(|_| ())),
    }
    // The same in a tcUrl and an app, at connect.
    let long_app = "a".repeat(5000);
    assert!(rtmp_publish(&rt, &s.ip, &long_app, "x").is_err());
    assert!(s.wait_log("longer than the 256 allowed", Duration::from_secs(5)));
    assert!(s.wait_log("tcUrl is", Duration::from_secs(5)), "{}", s.log_text());
    let log = s.log_text();
    assert!(!log.lines().any(|l| l.starts_with(forged)), "a forged log line got through:\n{log}");
    assert!(log.contains("\\r\\n2026-12-02T00:00:00"), "the refusal shows the name escaped:\n{log}");
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2048, "a log line of {longest} bytes");
    assert_still_serving(&s, "live/ok");
}

/// H.264 from the sample: the sequence header, the first keyframe, and one P-frame's NAL units
/// repeated to `size` bytes (valid AVCC, so the HLS muxer takes it as real video).
fn sample_video(size: usize) -> (Bytes, Bytes, Bytes) {
    let data = std::fs::read(sample()).unwrap();
    let mut r = rsrs_codec::flv::FlvReader::new(16 << 20);
    r.push(&data);
    let (mut sh, mut key, mut inter) = (None, None, None);
    while let Ok(Some(t)) = r.next_tag() {
        if t.tag_type != 9 || t.data.len() < 6 {
            continue;
        }
        match (t.data[0], t.data[1]) {
            (0x17, 0) if sh.is_none() => sh = Some(t.data.clone()),
            (0x17, 1) if key.is_none() => key = Some(t.data.clone()),
            (0x27, 1) if inter.is_none() => inter = Some(t.data.clone()),
            _ => {}
        }
    }
    let inter = inter.unwrap();
    let mut big = BytesMut::with_capacity(size + inter.len());
    big.put_slice(&inter[..5]);
    while big.len() < size {
        big.put_slice(&inter[5..]);
    }
    (sh.unwrap(), key.unwrap(), big.freeze())
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    st.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).unwrap().parse().unwrap()
}

#[test]
fn a_frozen_clock_cannot_grow_memory() {
    let s = Rsrs::start("hard-frozen", "127.0.20.4", &conf("", "    hls { enabled on; hls_fragment 2; }\n"));
    let _ok = publish(&s.rtmp("live/ok"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let before = vm_kib(s.pid(), "VmRSS:");
    let (sh, key, inter) = sample_video(256 * 1024);
    let rt = runtime();
    let mut c = rtmp_publish(&rt, &s.ip, "live", "frozen").expect("publish accepted");
    let sid = c.stream_id;
    let video = |ts: u32, payload: Bytes| Message { csid: 6, timestamp: ts, type_id: 9, stream_id: sid, payload };
    // At most 300 MiB, all at one timestamp; the server must cut us off long before.
    let sent = rt.block_on(async {
        c.writer.send(&[video(1000, sh), video(1000, key)]).await.unwrap();
        let mut sent = 0usize;
        while sent < 300 << 20 {
            if c.writer.send(&[video(1000, inter.clone())]).await.is_err() {
                break;
            }
            sent += inter.len();
        }
        sent
    });
    assert!(sent < 200 << 20, "the publisher was never cut off ({} MiB sent)", sent >> 20);
    assert!(s.wait_log("timestamps do not advance", Duration::from_secs(10)), "{}", s.log_text());
    let peak = vm_kib(s.pid(), "VmHWM:");
    eprintln!("RSS before {before} KiB, peak {peak} KiB, {} MiB sent", sent >> 20);
    assert!(peak < before + 320 * 1024, "peak RSS {peak} KiB (from {before} KiB)");
    assert_still_serving(&s, "live/ok");
}

#[test]
fn a_connection_flood_leaves_the_api_and_publishers_their_share() {
    // 200 slots: a tenth kept for RTMP, a twentieth for the API.
    let s = Rsrs::start(
        "hard-flood",
        "127.0.20.5",
        &conf("", "").replace("max_connections     1000;", "max_connections     200;"),
    );
    let http = format!("{}:8080", s.ip);
    // 300 idle sockets on the HTTP port (bounded), and waits for streams that do not exist.
    let mut flood = Vec::new();
    for i in 0..300 {
        let Ok(mut c) = TcpStream::connect(&http) else { break };
        if i % 2 == 0 {
            let _ = c.write_all(format!("GET /live/nothing-{i}.flv HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        flood.push(c);
    }
    assert!(s.wait_log("refusing connections", Duration::from_secs(10)), "{}", s.log_text());
    // The operator still gets the API, and a publisher still publishes and is played.
    let v = s.api("/api/v1/versions");
    assert_eq!(v["code"], 0);
    let _p = publish(&s.rtmp("live/ok"), true);
    let (streams, packets) = probe(&s.rtmp("live/ok"), 2);
    assert_sample_stream(&streams, &packets);
    // A wait for a stream that never comes ends: a 404 after 30 s, not a slot held for ever.
    drop(flood);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || http_status(&http, "/") == Some(200)),
        "the HTTP port did not free up after the flood left"
    );
    let mut waiter = TcpStream::connect(&http).unwrap();
    waiter.set_read_timeout(Some(Duration::from_secs(45))).unwrap();
    let t0 = Instant::now();
    waiter.write_all(b"GET /live/never.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let n = waiter.read(&mut buf).unwrap();
    let r = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(status_of(&r), 404, "{r}");
    assert!(t0.elapsed() >= Duration::from_secs(25), "answered after {:?}", t0.elapsed());
}

#[test]
fn http_framing_is_strict() {
    let s = Rsrs::start("hard-http", "127.0.20.6", &conf("exporter { enabled on; listen 127.0.20.6:9972; }", ""));
    let api = format!("{}:1985", s.ip);
    for (req, status) in [
        ("POST /api/v1/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST /api/v1/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello", 400),
        ("POST /api/v1/versions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST /api/v1/versions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        ("POST /api/v1/versions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST /api/v1/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413),
        ("POST /api/v1/versions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ] {
        let r = raw(&api, req.as_bytes());
        assert_eq!(status_of(&r), status, "{req:?} -> {r}");
    }
    // A chunked body is read whole, and the next request on the connection is answered. (The
    // cluster discovery call takes any method; a POST to a read-only resource gets 405.)
    let r = raw(
        &api,
        b"POST /api/v1/clusters HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
          GET /api/v1/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.matches("HTTP/1.1 200").count(), 2, "{r}");
    // The head limit is exact: 16384 bytes pass, 16385 do not.
    let head = |len: usize| {
        let start = "GET /api/v1/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ";
        let mut h = start.to_string();
        h.push_str(&"p".repeat(len - start.len() - 4));
        h.push_str("\r\n\r\n");
        assert_eq!(h.len(), len);
        h
    };
    assert_eq!(status_of(&raw(&api, head(16384).as_bytes())), 200);
    assert_eq!(status_of(&raw(&api, head(16385).as_bytes())), 431);
    // 30 KB of head in one write is not let through either.
    assert_eq!(status_of(&raw(&api, head(30000).as_bytes())), 431);
    // The server is still fine.
    assert_eq!(s.api("/api/v1/versions")["code"], 0);
    // Each refused request ended its connection on a client error (SRS's srs_clients_errs_total);
    // none of them was a client that published or played.
    assert_eq!(metric_value("127.0.20.6:9972", "srs_clients_errs_total", &[]), 9.0);
    assert_eq!(metric_value("127.0.20.6:9972", "srs_clients_total", &[]), 0.0);
}

#[test]
fn symlinks_cannot_leave_the_web_root() {
    let s = Rsrs::start("hard-symlink", "127.0.20.7", &conf("", ""));
    let root = s.dir.join("objs/nginx/html");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("inside.txt"), b"inside\n").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("host.txt")).unwrap();
    std::os::unix::fs::symlink("inside.txt", root.join("alias.txt")).unwrap();
    let http = format!("{}:8080", s.ip);
    for path in ["/etc/passwd", "/host.txt"] {
        let (status, _, body) = http_request(&http, "GET", path, &[]);
        assert_eq!(status, 403, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (status, _, body) = http_request(&http, "GET", "/etc/", &[]);
    assert!(status == 403 || status == 404, "/etc/: {status} {}", String::from_utf8_lossy(&body));
    let (status, _, body) = http_request(&http, "GET", "/alias.txt", &[]);
    assert_eq!((status, body.as_slice()), (200, &b"inside\n"[..]), "a link inside the root still works");
}

/// A small tmpfs of our own, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Cmd::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status();
        if ok.is_ok_and(|s| s.success()) {
            return SmallDisk(dir.to_path_buf());
        }
        panic!("cannot mount a tmpfs at {} (the test runs as root)", dir.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Cmd::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn recordings_survive_kill_9() {
    let dvr_conf = conf("", "    dvr { enabled on; dvr_path ./rec/[app]/[stream].flv; }\n");
    let mut s = Rsrs::start("hard-dvr", "127.0.20.8", &dvr_conf);
    let _p = publish(&s.rtmp("live/k"), true);
    assert!(s.wait_log("DVR recording", Duration::from_secs(10)));
    let recording_since = Instant::now();
    // A player watching 5 s of the stream lets the recording grow meanwhile.
    let (streams, packets) = probe(&s.rtmp("live/k"), 5);
    assert_sample_stream(&streams, &packets);
    let wall = recording_since.elapsed().as_secs_f64();
    s.signal("KILL");
    s.wait_exit(Duration::from_secs(5)).expect("killed");
    let tmp = s.dir.join("rec/live/k.flv.tmp");
    assert!(tmp.exists(), "the unfinished recording is on disk");
    // The next start finishes it; at most about a second may be missing.
    drop(s);
    let s = Rsrs::restart("hard-dvr", "127.0.20.8", &dvr_conf);
    let done = s.dir.join("rec/live/k.flv");
    assert!(done.exists(), "{}", s.log_text());
    let (_, packets) = probe_file(&done);
    let kept = packets.iter().filter(|p| p.codec_type == "video").map(|p| p.dts).fold(0.0, f64::max);
    assert!(kept >= wall - 2.0, "kill -9 after {wall:.1} s of recording kept only {kept:.1} s");
}

/// A full disk: the recording is finished as soon as writing stops, not left as .tmp. Needs root
/// to mount a small tmpfs; without it the test shows as ignored (a build script checks).
#[test]
#[cfg_attr(not_root, ignore = "mounting a tmpfs needs root")]
fn a_full_disk_finishes_the_recording_and_ends_the_playlist() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hard-dvr-full");
    let disk_conf = conf(
        "",
        &format!(
            "    dvr {{ enabled on; dvr_path {}/[app]/[stream].flv; }}\n    hls {{ enabled on; hls_fragment 1; hls_path {}; }}\n",
            dir.display(),
            dir.display()
        ),
    );
    let _disk = SmallDisk::mount(&dir, "512k");
    let s = Rsrs::start("hard-dvr-full", "127.0.20.9", &disk_conf);
    let _p = publish(&s.rtmp("live/full"), true);
    assert!(s.wait_log("DVR file finished after a write error", Duration::from_secs(60)), "{}", s.log_text());
    assert!(files_with_suffix(&dir, ".flv.tmp").is_empty(), "a recording was left unfinished");
    let finished = files_with_suffix(&dir, ".flv");
    assert_eq!(finished.len(), 1, "{finished:?}");
    let out = Cmd::new("flvmeta").arg("--check").arg(&finished[0]).output().expect("flvmeta");
    assert!(out.status.success(), "flvmeta --check: {}", String::from_utf8_lossy(&out.stdout));
    // HLS stopped too: its playlist says it has ended, or is gone; never left looking live.
    let ended = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        s.count_log("ended (#EXT-X-ENDLIST)") + s.count_log("cannot end the playlist") > 0
    });
    assert!(ended, "{}", s.log_text());
    let m3u8 = dir.join("live/full.m3u8");
    if let Ok(text) = std::fs::read_to_string(&m3u8) {
        assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    }
    assert_still_serving(&s, "live/full");
}

#[test]
fn a_publisher_far_faster_than_real_time_cannot_fill_the_disk_with_dvr() {
    let s = Rsrs::start(
        "hard-fast",
        "127.0.20.10",
        &conf("", "    dvr { enabled on; dvr_path ./rec/[app]/[stream].flv; }\n"),
    );
    // No -re: the looping sample goes as fast as the socket takes it.
    let mut fast = Proc(
        Cmd::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-stream_loop", "-1", "-i"])
            .arg(sample())
            .args(["-c", "copy", "-f", "flv"])
            .arg(s.rtmp("live/fast"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(s.wait_log("far faster than real time", Duration::from_secs(30)), "{}", s.log_text());
    assert!(fast.wait_timeout(Duration::from_secs(10)).is_some(), "the fast publisher was not disconnected");
    let rec = s.dir.join("rec/live/fast.flv");
    assert!(rec.exists(), "the recording was finished");
    let kept = probe_duration(&rec);
    assert!(kept <= 45.0, "{kept:.1} s of media recorded in a few seconds");
    // Honest publishing on the same server is recorded as usual.
    let _p = publish(&s.rtmp("live/ok"), true);
    assert_still_serving(&s, "live/ok");
}
