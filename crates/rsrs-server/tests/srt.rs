//! SRT end to end, against real peers: ffmpeg 9 (PyPI's `imageio-ffmpeg`, built with libsrt) and
//! `srt-live-transmit` (Debian's `srt-tools`) publish H.264/AAC and HEVC/AAC MPEG-TS; ffprobe
//! plays the result over RTMP, HTTP-FLV, HLS and SRT. Also: a passphrase (and a wrong one
//! refused), a lossy link (5 % loss and 50 ms each way, through a UDP relay: this kernel has no
//! `sch_netem`), and garbage UDP with half-open handshakes beside a running publisher.
//! Servers on 127.0.25.x.

mod common;

use common::*;
use serde_json::Value;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A 6 s 640x360 test pattern with a tone as MPEG-TS, made once per run.
fn ts_sample(name: &str, video: &[&str]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("srt-sample-{name}.ts"));
    if path.exists() {
        return path;
    }
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let st = Command::new(ffmpeg9())
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6", "-pix_fmt", "yuv420p"])
        .args(["-g", "25"])
        .args(video)
        .args(["-c:a", "aac", "-f", "mpegts"])
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(st.success(), "encoding the {name} TS sample");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn h264_ts() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| ts_sample("h264", &["-c:v", "libx264", "-preset", "veryfast"])).clone()
}

fn hevc_ts() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| ts_sample("hevc", &["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"]))
        .clone()
}

fn conf(extra_srt: &str) -> String {
    format!(
        "listen IP:1935;\ndaemon off;\nsrs_log_tank console;\n\
         http_api {{ enabled on; listen IP:1985; }}\n\
         http_server {{ enabled on; listen IP:8080; dir ./objs/nginx/html; }}\n\
         exporter {{ enabled on; listen IP:9972; }}\n\
         srt_server {{ enabled on; listen IP:10080; {extra_srt} }}\n\
         vhost __defaultVhost__ {{\n  srt {{ enabled on; srt_to_rtmp on; }}\n\
         http_remux {{ enabled on; mount [vhost]/[app]/[stream].flv; }}\n\
         hls {{ enabled on; hls_fragment 1; hls_window 10; hls_ctx off; }}\n}}\n"
    )
}

fn start(name: &str, ip: &str, extra_srt: &str) -> Rsrs {
    let s = Rsrs::start(name, ip, &conf(extra_srt));
    assert!(s.wait_log("SRT listening on", Duration::from_secs(10)), "{}", s.log_text());
    s
}

fn srt_url(ip: &str, port: u16, stream_id: &str, extra: &str) -> String {
    format!("srt://{ip}:{port}?streamid={stream_id}{extra}")
}

/// ffmpeg 9 sending `file` as TS over SRT, in real time, looping.
fn publish_srt(file: &Path, url: &str) -> Proc {
    let child = Command::new(ffmpeg9())
        .args(["-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "mpegts", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Proc(child)
}

/// ffmpeg 9 sending 2 s of the H.264 sample to `url` (a publish expected to be refused); whether
/// ffmpeg succeeded.
fn try_publish(url: &str) -> bool {
    Command::new("timeout")
        .args(["10", ffmpeg9(), "-nostdin", "-v", "error", "-re", "-i"])
        .arg(h264_ts())
        .args(["-c", "copy", "-t", "2", "-f", "mpegts", url])
        .output()
        .unwrap()
        .status
        .success()
}

/// The stream's codecs, size, a keyframe start, both tracks, and audio and video starting
/// together (A/V sync: their first timestamps within half a second).
fn assert_av(streams: &[Value], packets: &[Packet], video: &str, what: &str) {
    let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap_or_else(|| panic!("{what}: no video"));
    let a = streams.iter().find(|s| s["codec_type"] == "audio").unwrap_or_else(|| panic!("{what}: no audio"));
    assert_eq!(v["codec_name"], video, "{what}: {v}");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(640), Some(360)), "{what}: {v}");
    assert_eq!(a["codec_name"], "aac", "{what}: {a}");
    let first_v =
        packets.iter().find(|p| p.codec_type == "video").unwrap_or_else(|| panic!("{what}: no video packets"));
    let first_a =
        packets.iter().find(|p| p.codec_type == "audio").unwrap_or_else(|| panic!("{what}: no audio packets"));
    assert!(first_v.keyframe, "{what}: playback must start on a keyframe");
    // Matroska keeps no decode times: its presentation times stand in.
    let t = |p: &Packet| if p.dts.is_nan() { p.pts } else { p.dts };
    assert!(
        (t(first_v) - t(first_a)).abs() < 0.5,
        "{what}: audio starts at {} and video at {}",
        t(first_a),
        t(first_v)
    );
    for kind in ["video", "audio"] {
        let dts: Vec<f64> = packets.iter().filter(|p| p.codec_type == kind).map(t).collect();
        assert!(dts.len() > 10, "{what}: too few {kind} packets: {}", dts.len());
        // Presentation times reorder with B-frames: only decode times must not go back.
        let known = packets.iter().all(|p| !p.dts.is_nan());
        assert!(!known || dts.windows(2).all(|w| w[1] >= w[0]), "{what}: {kind} timestamps go backwards");
    }
}

/// The first client of `kind` in the API.
fn api_client(s: &Rsrs, kind: &str) -> Value {
    let v = s.wait_api("/api/v1/clients/", Duration::from_secs(15), |v| {
        v["clients"].as_array().is_some_and(|a| a.iter().any(|c| c["type"] == kind))
    });
    v["clients"].as_array().unwrap().iter().find(|c| c["type"] == kind).unwrap().clone()
}

/// Waits for `n` segments of `stream`'s playlist; probes its second segment (the first may
/// begin before the publisher's first keyframe reached the writer).
fn probe_hls(s: &Rsrs, stream: &str) -> (Vec<Value>, Vec<Packet>) {
    let dir = s.dir.join("objs/nginx/html/live");
    let m3u8 = dir.join(format!("{stream}.m3u8"));
    let mut text = String::new();
    let ok = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        text = std::fs::read_to_string(&m3u8).unwrap_or_default();
        text.matches("#EXTINF").count() >= 3
    });
    assert!(ok, "{} never had 3 segments: {text}\n{}", m3u8.display(), s.log_text());
    let seg = text.lines().filter(|l| l.ends_with(".ts")).nth(1).unwrap();
    probe_file(&dir.join(seg))
}

#[test]
fn srt_publish_plays_over_rtmp_flv_hls_and_srt_and_shows_in_api_and_exporter() {
    let ip = "127.0.25.1";
    let s = start("srt-h264", ip, "");
    let _p = publish_srt(&h264_ts(), &srt_url(ip, 10080, "#!::r=live/cam,m=publish", ""));
    let publisher = api_client(&s, "srt-publish");
    assert_eq!((publisher["url"].as_str(), publisher["publish"].as_bool()), (Some("/live/cam"), Some(true)));

    let (st, pk) = probe(&s.rtmp("live/cam"), 4);
    assert_av(&st, &pk, "h264", "RTMP");
    let (st, pk) = probe(&s.http("/live/cam.flv"), 4);
    assert_av(&st, &pk, "h264", "HTTP-FLV");
    let (st, pk) = probe_hls(&s, "cam");
    assert_av(&st, &pk, "h264", "HLS");
    // SRT out, by SRS's request form and by a plain path (play is the default mode).
    let (st, pk) = probe(&srt_url(ip, 10080, "#!::r=live/cam,m=request", ""), 4);
    assert_av(&st, &pk, "h264", "SRT (m=request)");
    let (st, pk) = probe(&srt_url(ip, 10080, "live/cam", ""), 3);
    assert_av(&st, &pk, "h264", "SRT (path)");

    // The publisher's link as libsrt sees it, in the API and the exporter.
    let publisher = api_client(&s, "srt-publish");
    assert!(publisher["srt"]["pkt_recv"].as_u64().unwrap() > 100, "{publisher}");
    assert!(publisher["recv_bytes"].as_u64().unwrap() > 100_000, "{publisher}");
    let exporter = format!("{ip}:9972");
    let id = publisher["id"].as_str().unwrap();
    let received = metric_value(&exporter, "rsrs_srt_packets_received_total", &[id, "type=\"srt-publish\""]);
    assert!(received > 100.0, "{received}");
    assert!(metric_value(&exporter, "rsrs_clients", &["type=\"srt-publish\""]) == 1.0);
    // An SRT player shows as srt-play while it plays.
    let _play = Command::new("timeout")
        .args(["20", ffmpeg9(), "-nostdin", "-v", "error", "-i"])
        .arg(srt_url(ip, 10080, "#!::r=live/cam,m=request", ""))
        .args(["-t", "15", "-c", "copy", "-f", "null", "-"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Proc)
        .unwrap();
    let player = api_client(&s, "srt-play");
    assert_eq!(player["url"], "/live/cam");
    let sent = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        api_client(&s, "srt-play")["send_bytes"].as_u64().unwrap_or(0) > 50_000
    });
    assert!(sent, "the SRT player was sent nothing");
}

#[test]
fn srt_live_transmit_publishes_hevc_which_plays_over_srt_hls_and_enhanced_rtmp() {
    let ip = "127.0.25.2";
    let s = start("srt-hevc", ip, "");
    // ffmpeg writes the TS to a pipe; srt-live-transmit (libsrt's own tool) sends it.
    let mut feed = Command::new(ffmpeg9())
        .args(["-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(hevc_ts())
        .args(["-c", "copy", "-f", "mpegts", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = feed.stdout.take().unwrap();
    let _feed = Proc(feed);
    let _slt = Command::new("srt-live-transmit")
        .args(["-q", "file://con"])
        .arg(srt_url(ip, 10080, "#!::r=live/hevc,m=publish", ""))
        .stdin(stdout)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Proc)
        .expect("srt-live-transmit (apt-get install srt-tools)");
    let streams = s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 640);
    assert_eq!(streams["streams"][0]["video"]["codec"], "HEVC");
    assert_eq!(streams["streams"][0]["audio"]["codec"], "AAC");
    let (st, pk) = probe(&srt_url(ip, 10080, "#!::r=live/hevc,m=request", ""), 4);
    assert_av(&st, &pk, "hevc", "SRT");
    let (st, pk) = probe_hls(&s, "hevc");
    assert_av(&st, &pk, "hevc", "HLS");
    // Enhanced RTMP, read by ffmpeg 9 (Debian's 5.1 cannot read HEVC in FLV).
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("srt-hevc-rtmp.mkv");
    let st = Command::new("timeout")
        .args(["30", ffmpeg9(), "-nostdin", "-v", "error", "-y", "-i", &s.rtmp("live/hevc"), "-t", "3", "-c", "copy"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let (st, pk) = probe_file(&out);
    assert_av(&st, &pk, "hevc", "Enhanced RTMP");
}

#[test]
fn a_passphrase_admits_the_right_caller_and_refuses_a_wrong_one() {
    let ip = "127.0.25.3";
    let s = start("srt-pass", ip, "passphrase rsrs-secret-2026; pbkeylen 16;");
    assert!(
        !try_publish(&srt_url(ip, 10080, "#!::r=live/enc,m=publish", "&passphrase=not-the-secret-1&pbkeylen=16")),
        "a wrong passphrase must be refused"
    );
    assert!(!try_publish(&srt_url(ip, 10080, "#!::r=live/enc,m=publish", "")), "no passphrase must be refused");
    assert_eq!(s.api("/api/v1/streams/")["streams"].as_array().map_or(0, |a| a.len()), 0, "nothing was published");

    let _p = publish_srt(
        &h264_ts(),
        &srt_url(ip, 10080, "#!::r=live/enc,m=publish", "&passphrase=rsrs-secret-2026&pbkeylen=16"),
    );
    let (st, pk) = probe(&s.rtmp("live/enc"), 3);
    assert_av(&st, &pk, "h264", "RTMP of an encrypted SRT publish");
    // Playing needs the passphrase too.
    let (st, pk) = probe(&srt_url(ip, 10080, "#!::r=live/enc,m=request", "&passphrase=rsrs-secret-2026"), 3);
    assert_av(&st, &pk, "h264", "encrypted SRT play");
}

#[test]
fn a_publisher_behind_five_percent_loss_plays_cleanly_and_the_loss_shows() {
    let ip = "127.0.25.4";
    let s = start("srt-loss", ip, "");
    let link = LossyLink::start("127.0.25.4:20080", "127.0.25.4:10080", 0.05, Duration::from_millis(50));
    let (lip, lport) = link.addr.split_once(':').unwrap();
    // 1 s of SRT latency for a 100 ms round trip with 5 % loss each way (ffmpeg takes µs).
    let _p =
        publish_srt(&h264_ts(), &srt_url(lip, lport.parse().unwrap(), "#!::r=live/far,m=publish", "&latency=1000000"));
    let publisher = api_client(&s, "srt-publish");
    assert_eq!(publisher["url"], "/live/far");
    // 8 s decoded from RTMP without a single decoder complaint.
    let out = Command::new("timeout")
        .args(["40", "ffmpeg", "-nostdin", "-v", "error", "-i", &s.rtmp("live/far"), "-t", "8", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "decode errors behind a lossy link: {}", String::from_utf8_lossy(&out.stderr));
    let srt = api_client(&s, "srt-publish")["srt"].clone();
    assert!(srt["pkt_recv_loss"].as_u64().unwrap() > 0, "the loss must show: {srt}");
    assert!(srt["pkt_recv_retrans"].as_u64().unwrap() > 0, "retransmissions must show: {srt}");
    assert!(srt["rtt_ms"].as_f64().unwrap() >= 80.0, "a 100 ms round trip: {srt}");
    let ratio = srt["pkt_recv_loss"].as_f64().unwrap() / srt["pkt_recv"].as_f64().unwrap();
    assert!((0.02..0.12).contains(&ratio), "about 5 % lost: {srt}");
}

#[test]
fn garbage_udp_and_half_open_handshakes_do_not_disturb_a_publisher() {
    let ip = "127.0.25.5";
    let s = start("srt-garbage", ip, "");
    let _p = publish_srt(&h264_ts(), &srt_url(ip, 10080, "#!::r=live/steady,m=publish", ""));
    api_client(&s, "srt-publish");
    let before = api_client(&s, "srt-publish")["recv_bytes"].as_u64().unwrap();
    let target = format!("{ip}:10080");
    // 50 sockets: each sends random datagrams, then a handshake induction it never completes.
    let mut seed = 7u64;
    let mut socks = Vec::new();
    for i in 0..50u32 {
        let u = UdpSocket::bind(format!("{ip}:0")).unwrap();
        for _ in 0..40 {
            let len = 1 + ((seed >> 7) % 1500) as usize;
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = u.send_to(&junk, &target);
        }
        // SRT control packet, type 0 (handshake), version 4, induction (1), socket id i.
        let mut hs = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        hs.extend_from_slice(&4u32.to_be_bytes()); // version
        hs.extend_from_slice(&[0, 0, 0, 2]); // encryption 0, extension field 2
        hs.extend_from_slice(&(i * 1000 + 1).to_be_bytes()); // initial sequence number
        hs.extend_from_slice(&1500u32.to_be_bytes()); // MTU
        hs.extend_from_slice(&8192u32.to_be_bytes()); // flow window
        hs.extend_from_slice(&1u32.to_be_bytes()); // handshake type: induction
        hs.extend_from_slice(&(0x1000 + i).to_be_bytes()); // socket id
        hs.extend_from_slice(&[0; 4]); // SYN cookie
        hs.extend_from_slice(&[127, 0, 25, 5]);
        hs.extend_from_slice(&[0; 12]);
        let _ = u.send_to(&hs, &target);
        socks.push(u);
    }
    // The publisher carries on, and a player gets a clean stream.
    let (st, pk) = probe(&s.http("/live/steady.flv"), 3);
    assert_av(&st, &pk, "h264", "HTTP-FLV after the garbage");
    let after = api_client(&s, "srt-publish")["recv_bytes"].as_u64().unwrap();
    assert!(after > before + 50_000, "the publisher stalled: {before} then {after} bytes");
    assert_eq!(
        s.api("/api/v1/clients/")["clients"].as_array().unwrap().iter().filter(|c| c["type"] == "srt-publish").count(),
        1
    );
    // A second, real caller is still accepted.
    let _q = publish_srt(&h264_ts(), &srt_url(ip, 10080, "#!::r=live/second,m=publish", ""));
    let (st, pk) = probe(&s.rtmp("live/second"), 3);
    assert_av(&st, &pk, "h264", "RTMP of a caller after the garbage");
    drop(socks);
}

#[test]
fn stream_ids_that_name_no_stream_or_a_vhost_without_srt_are_refused() {
    let ip = "127.0.25.6";
    let text = conf("").replace("vhost __defaultVhost__ {", "vhost closed.example { }\nvhost __defaultVhost__ {");
    let s = Rsrs::start("srt-refuse", ip, &text);
    assert!(s.wait_log("SRT listening on", Duration::from_secs(10)));
    for (id, why) in [
        ("#!::m=publish", "names no stream"),
        ("#!::r=live/x,m=push", "publish and request"),
        ("#!::h=closed.example,r=live/x,m=publish", "does not take SRT"),
    ] {
        try_publish(&srt_url(ip, 10080, id, ""));
        assert!(s.wait_log(why, Duration::from_secs(10)), "{id}: no `{why}` in\n{}", s.log_text());
    }
    assert_eq!(s.api("/api/v1/streams/")["streams"].as_array().map_or(0, |a| a.len()), 0);
}

#[test]
fn an_edge_pulls_an_srt_published_stream_and_forwards_an_srt_publish_to_its_origin() {
    let (oip, eip) = ("127.0.25.7", "127.0.25.8");
    let origin = start("srt-origin", oip, "");
    let edge_conf = conf("").replace(
        "vhost __defaultVhost__ {",
        &format!("vhost __defaultVhost__ {{\n  cluster {{ mode remote; origin {oip}:1935; }}"),
    );
    let edge = Rsrs::start("srt-edge", eip, &edge_conf);
    assert!(edge.wait_log("SRT listening on", Duration::from_secs(10)));
    // Published over SRT on the origin, played over RTMP and SRT from the edge.
    let _p = publish_srt(&h264_ts(), &srt_url(oip, 10080, "#!::r=live/origin-cam,m=publish", ""));
    api_client(&origin, "srt-publish");
    let (st, pk) = probe(&edge.rtmp("live/origin-cam"), 3);
    assert_av(&st, &pk, "h264", "RTMP from the edge");
    let (st, pk) = probe(&srt_url(eip, 10080, "#!::r=live/origin-cam,m=request", ""), 3);
    assert_av(&st, &pk, "h264", "SRT from the edge");
    // Published over SRT on the edge: forwarded to the origin, where it plays.
    let _q = publish_srt(&h264_ts(), &srt_url(eip, 10080, "#!::r=live/edge-cam,m=publish", ""));
    let (st, pk) = probe(&origin.rtmp("live/edge-cam"), 3);
    assert_av(&st, &pk, "h264", "RTMP on the origin of an SRT publish on the edge");
}

fn mint(args: &[&str]) -> String {
    mint_token(TOKEN_SECRET, args)
}

const TOKEN_SECRET: &str = "an-srt-test-secret-long-enough";

#[test]
fn srt_callers_pass_the_same_admission_as_rtmp_tokens_security_and_hooks() {
    // Signed URLs: the token rides in the stream id, as SRS passes other keys on as the query.
    let ip = "127.0.25.9";
    // HLS sessions (hls_ctx) for vhosts that restrict play.
    let conf = |extra: &str| conf(extra).replace("hls_ctx off", "hls_ctx on");
    let text = conf("").replace(
        "vhost __defaultVhost__ {",
        &format!("vhost __defaultVhost__ {{\n  token {{ enabled on; secret {TOKEN_SECRET}; }}"),
    );
    let s = Rsrs::start("srt-token", ip, &text);
    assert!(s.wait_log("SRT listening on", Duration::from_secs(10)));
    try_publish(&srt_url(ip, 10080, "#!::r=live/t,m=publish", ""));
    assert!(s.wait_log("publish refused", Duration::from_secs(10)), "{}", s.log_text());
    assert_eq!(s.api("/api/v1/streams/")["streams"].as_array().map_or(0, |a| a.len()), 0);
    let token = mint(&["--stream", "live/t", "--action", "publish", "--expires", "1h"]);
    let id = format!("#!::r=live/t?{},m=publish", token.replace('&', ","));
    let _p = publish_srt(&h264_ts(), &srt_url(ip, 10080, &id, ""));
    let publisher = api_client(&s, "srt-publish");
    assert_eq!(publisher["url"], "/live/t");

    // A deciding hook that cannot be reached refuses (fail closed); security denies by address.
    let ip = "127.0.25.10";
    let text = conf("").replace(
        "vhost __defaultVhost__ {",
        "vhost __defaultVhost__ {\n  http_hooks { enabled on; on_publish http://127.0.25.10:9/never; }\n\
           security { enabled on; deny play 127.0.0.0/8; allow play all; allow publish all; }",
    );
    let s = Rsrs::start("srt-hooks", ip, &text);
    assert!(s.wait_log("SRT listening on", Duration::from_secs(10)));
    try_publish(&srt_url(ip, 10080, "#!::r=live/h,m=publish", ""));
    assert!(s.wait_log("publish refused", Duration::from_secs(10)), "{}", s.log_text());
    let play = Command::new("timeout")
        .args(["10", "ffprobe", "-v", "error", "-show_streams"])
        .arg(srt_url(ip, 10080, "#!::r=live/h,m=request", ""))
        .output()
        .unwrap();
    assert!(!play.status.success() || play.stdout.is_empty());
    assert!(s.wait_log("play refused", Duration::from_secs(10)), "{}", s.log_text());
    assert_eq!(s.api("/api/v1/streams/")["streams"].as_array().map_or(0, |a| a.len()), 0);
}

#[test]
fn opus_in_ts_over_srt_reaches_enhanced_rtmp_players() {
    let ip = "127.0.25.11";
    let s = start("srt-opus", ip, "");
    // ffmpeg writes Opus into TS with its registration descriptor and control headers.
    let sample = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("srt-sample-opus.ts");
    if !sample.exists() {
        let tmp = sample.with_extension(format!("{}.ts", std::process::id()));
        let st = Command::new(ffmpeg9())
            .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6", "-pix_fmt", "yuv420p"])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-c:a", "libopus", "-f", "mpegts"])
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::rename(&tmp, &sample).unwrap();
    }
    let _p = publish_srt(&sample, &srt_url(ip, 10080, "#!::r=live/opus,m=publish", ""));
    let streams =
        s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["audio"]["codec"] == "Opus");
    assert_eq!(streams["streams"][0]["audio"]["sample_rate"], 48000, "{streams}");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("srt-opus-rtmp.mkv");
    let st = Command::new("timeout")
        .args(["30", ffmpeg9(), "-nostdin", "-v", "error", "-y", "-i", &s.rtmp("live/opus"), "-t", "3", "-c", "copy"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let (st, pk) = probe_file(&out);
    let a = st.iter().find(|x| x["codec_type"] == "audio").expect("audio");
    assert_eq!(a["codec_name"], "opus", "{a}");
    assert!(pk.iter().filter(|p| p.codec_type == "audio").count() > 50, "Opus packets");
    assert!(pk.iter().find(|p| p.codec_type == "video").is_some_and(|p| p.keyframe));
}
