//! Modern codecs end to end: ffmpeg 9 (the static build of PyPI's `imageio-ffmpeg`; Debian's
//! ffmpeg 5.1 cannot write Enhanced RTMP) publishes HEVC+AAC, AV1+Opus and H.264+AAC; rsrs
//! relays them over RTMP and HTTP-FLV, through an edge, reports them in the API and writes
//! them as TS or fMP4 HLS. What comes out is read back with ffmpeg 9 and Debian's ffprobe.
//! Servers on 127.0.24.x.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A 6 s 640x360 test pattern with a tone, encoded once per run as FLV (Enhanced RTMP).
fn sample_of(name: &str, video: &[&str], audio: &[&str]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sample-{name}.flv"));
    if path.exists() {
        return path;
    }
    let tmp = path.with_extension("tmp.flv");
    let st = Command::new(ffmpeg9())
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "6",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "25",
        ])
        .args(video)
        .args(audio)
        .arg(&tmp)
        .env("SVT_LOG", "1") // SVT-AV1's own log: errors only
        .status()
        .unwrap();
    assert!(st.success(), "encoding the {name} sample");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn hevc_sample() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        sample_of(
            "hevc",
            &["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"],
            &["-c:a", "aac"],
        )
    })
    .clone()
}

fn av1_sample() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        sample_of("av1", &["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "log-level=0"], &["-c:a", "libopus"])
    })
    .clone()
}

fn vp9_sample() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        sample_of(
            "vp9",
            &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k"],
            &["-c:a", "libopus"],
        )
    })
    .clone()
}

/// ffmpeg 9 publishing `file` in a loop, in real time, announcing its Enhanced RTMP codecs in
/// `connect` (`fourCcList`) as OBS does.
fn publish9(file: &Path, url: &str) -> Proc {
    let child = Command::new(ffmpeg9())
        .args(["-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(file)
        .args(["-c", "copy", "-rtmp_enhanced_codecs", "hvc1,av01,vp09,Opus", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

/// Plays `url` with ffmpeg 9 for `secs` into a Matroska file, then probes that with ffprobe.
fn play9(url: &str, secs: u32, name: &str) -> (Vec<Value>, Vec<Packet>) {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("play9-{name}.mkv"));
    let st = Command::new("timeout")
        .args(["30", ffmpeg9(), "-nostdin", "-v", "error", "-y", "-i", url, "-t", &secs.to_string(), "-c", "copy"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg 9 could not play {url}");
    probe_file(&out)
}

/// The stream's codecs, size and a keyframe start, as every playback must show them.
fn assert_stream(streams: &[Value], packets: &[Packet], video: &str, audio: &str) {
    let v = streams.iter().find(|s| s["codec_type"] == "video").expect("a video stream");
    let a = streams.iter().find(|s| s["codec_type"] == "audio").expect("an audio stream");
    assert_eq!(v["codec_name"], video, "{v}");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(640), Some(360)), "{v}");
    assert_eq!(a["codec_name"], audio, "{a}");
    let first = packets.iter().find(|p| p.codec_type == "video").expect("video packets");
    assert!(first.keyframe, "playback must start on a keyframe");
    assert!(packets.iter().filter(|p| p.codec_type == "video").count() > 10, "too few video packets");
    assert!(packets.iter().filter(|p| p.codec_type == "audio").count() > 10, "too few audio packets");
}

fn hls_conf(extra: &str) -> String {
    ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        &format!(
            "vhost __defaultVhost__ {{\n    hls {{ enabled on; hls_fragment 1; hls_window 10; hls_ctx off; {extra} }}"
        ),
    )
}

/// Waits for `n` segments in the playlist; its text.
fn wait_playlist(s: &Rsrs, stream: &str, n: usize) -> String {
    let path = s.dir.join(format!("objs/nginx/html/live/{stream}.m3u8"));
    let mut text = String::new();
    let ok = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        text.matches("#EXTINF").count() >= n
    });
    assert!(ok, "{} never had {n} segments: {text}\n{}", path.display(), s.log_text());
    text
}

/// A copy of a live playlist, ended, so a player decodes what is there and stops.
fn ended_copy(s: &Rsrs, stream: &str) -> PathBuf {
    let dir = s.dir.join("objs/nginx/html/live");
    let text = std::fs::read_to_string(dir.join(format!("{stream}.m3u8"))).unwrap();
    let copy = dir.join(format!("{stream}-ended.m3u8"));
    std::fs::write(&copy, text + "#EXT-X-ENDLIST\n").unwrap();
    copy
}

/// Decodes a playlist completely with Debian's ffmpeg; the frames decoded.
fn decode_frames(playlist: &Path) -> u64 {
    let out = Command::new("timeout")
        .args(["60", "ffmpeg", "-nostdin", "-v", "error", "-i"])
        .arg(playlist)
        .args(["-map", "0:v", "-f", "null", "-progress", "pipe:1", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "decoding {}: {}", playlist.display(), String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "decode errors in {}: {}", playlist.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame=")?.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

#[test]
fn hevc_and_av1_over_enhanced_rtmp_are_relayed_reported_and_written_as_hls() {
    let s = Rsrs::start("codecs", "127.0.24.1", &hls_conf(""));
    let _h = publish9(&hevc_sample(), &s.rtmp("live/h"));
    let _a = publish9(&av1_sample(), &s.rtmp("live/a"));
    // The API reads profile, level and size from hvcC and av1C.
    let streams = s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| {
        v["streams"].as_array().is_some_and(|a| a.iter().filter(|s| s["video"]["width"] == 640).count() == 2)
    });
    let find = |name: &str| streams["streams"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
    let (h, a) = (find("h"), find("a"));
    assert_eq!(
        h["video"],
        serde_json::json!({"codec": "HEVC", "profile": "Main", "level": "2.1", "width": 640, "height": 360})
    );
    assert_eq!(h["audio"]["codec"], "AAC");
    assert_eq!((a["video"]["codec"].as_str(), a["video"]["profile"].as_str()), (Some("AV1"), Some("Main")));
    assert_eq!((a["video"]["width"].as_u64(), a["video"]["height"].as_u64()), (Some(640), Some(360)));
    assert_eq!(a["audio"], serde_json::json!({"codec": "Opus", "sample_rate": 48000, "channel": 1, "profile": ""}));

    // RTMP and HTTP-FLV relay them, from a keyframe.
    let (st, pk) = play9(&s.rtmp("live/h"), 2, "h-rtmp");
    assert_stream(&st, &pk, "hevc", "aac");
    let (st, pk) = play9(&s.http("live/h.flv"), 2, "h-flv");
    assert_stream(&st, &pk, "hevc", "aac");
    let (st, pk) = play9(&s.rtmp("live/a"), 2, "a-rtmp");
    assert_stream(&st, &pk, "av1", "opus");
    let (st, pk) = play9(&s.http("live/a.flv"), 2, "a-flv");
    assert_stream(&st, &pk, "av1", "opus");

    // HLS: HEVC goes to MPEG-TS, as SRS writes it; AV1 and Opus, which TS cannot carry, to fMP4.
    let text = wait_playlist(&s, "h", 3);
    assert!(text.contains("#EXT-X-VERSION:3") && text.contains(".ts\n") && !text.contains("EXT-X-MAP"), "{text}");
    let (st, pk) = probe_with(&s.http("live/h.m3u8"), 2, &["-live_start_index", "0"]);
    assert_stream(&st, &pk, "hevc", "aac");
    assert!(decode_frames(&ended_copy(&s, "h")) >= 50);
    let text = wait_playlist(&s, "a", 3);
    assert!(text.contains("#EXT-X-VERSION:7\n") && text.contains("#EXT-X-MAP:URI=\"a/init.mp4\"\n"), "{text}");
    assert!(text.lines().filter(|l| !l.starts_with('#')).all(|l| l.ends_with(".m4s")), "{text}");
    assert!(s.log_text().contains("HLS: fMP4 init segment"), "{}", s.log_text());
    let (st, pk) = probe_with(&s.http("live/a.m3u8"), 2, &["-live_start_index", "0"]);
    assert_stream(&st, &pk, "av1", "opus");
    assert!(decode_frames(&ended_copy(&s, "a")) >= 50);
}

#[test]
fn fmp4_hls_for_h264_and_hevc_plays_and_its_playlists_are_strict() {
    let s = Rsrs::start("codecs-fmp4", "127.0.24.2", &hls_conf("hls_use_fmp4 on;"));
    let _x = publish(&s.rtmp("live/x"), true);
    let _h = publish9(&hevc_sample(), &s.rtmp("live/h"));
    for (stream, codec) in [("x", "h264"), ("h", "hevc")] {
        let text = wait_playlist(&s, stream, 3);
        // RFC 8216: version 7 for EXT-X-MAP, the map before the first segment, durations
        // within the target.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..2], &["#EXTM3U", "#EXT-X-VERSION:7"], "{text}");
        let target: f64 =
            text.lines().find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:")).and_then(|v| v.parse().ok()).unwrap();
        let map = lines.iter().position(|l| l.starts_with("#EXT-X-MAP:URI=")).expect("EXT-X-MAP");
        let first_inf = lines.iter().position(|l| l.starts_with("#EXTINF:")).unwrap();
        assert!(map < first_inf, "{text}");
        for d in text.lines().filter_map(|l| l.strip_prefix("#EXTINF:")) {
            let d: f64 = d.split(',').next().unwrap().parse().unwrap();
            assert!(d.round() <= target, "{d} > target {target}: {text}");
        }
        // The init segment is an ftyp + moov with the stream's sample entry.
        let init = std::fs::read(s.dir.join(format!("objs/nginx/html/live/{stream}/init.mp4"))).unwrap();
        assert_eq!(&init[4..8], b"ftyp");
        let entry: &[u8] = if codec == "h264" { b"avc1" } else { b"hvc1" };
        assert!(init.windows(4).any(|w| w == entry), "{codec} sample entry");
        // ffprobe reads it over HTTP from the start; ffmpeg decodes every segment cleanly.
        let (st, pk) = probe_with(&s.http(&format!("live/{stream}.m3u8")), 2, &["-live_start_index", "0"]);
        assert_stream(&st, &pk, codec, "aac");
        assert!(decode_frames(&ended_copy(&s, stream)) >= 50);
    }
    // Served with the MIME types players expect.
    let (status, head, _) = http_request(&format!("{}:8080", s.ip), "GET", "/live/x/init.mp4", &[]);
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: video/mp4"), "{head}");
    let (status, head, _) = http_request(&format!("{}:8080", s.ip), "GET", "/live/x-1.m4s", &[]);
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: video/iso.segment"), "{head}");
}

#[test]
fn an_rsrs_edge_relays_hevc_from_an_rsrs_origin() {
    let origin = Rsrs::start("codecs-o", "127.0.24.3", ORIGIN_CONF);
    let edge_conf = ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        "vhost __defaultVhost__ {\n    cluster { mode remote; origin 127.0.24.3; }",
    );
    let edge = Rsrs::start("codecs-e", "127.0.24.4", &edge_conf);
    let _h = publish9(&hevc_sample(), &origin.rtmp("live/h"));
    assert!(origin.wait_log("publish started", Duration::from_secs(15)), "{}", origin.log_text());
    let (st, pk) = play9(&edge.http("live/h.flv"), 2, "edge-h");
    assert_stream(&st, &pk, "hevc", "aac");
    let streams = edge.api("/api/v1/streams/");
    assert_eq!(streams["streams"][0]["video"]["codec"], "HEVC", "{streams}");
    assert_eq!(streams["streams"][0]["video"]["width"], 640, "{streams}");
}

/// The first video packet at or after `at` seconds when ffprobe seeks there.
fn seek_probe(file: &Path, at: f64) -> Vec<Packet> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-of", "json", "-read_intervals", &format!("{at}%+0.5")])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "seeking in {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    parse_probe(&out.stdout).1
}

fn only_file(dir: &Path, ext: &str) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect())
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "{files:?} in {}", dir.display());
    files[0].clone()
}

#[test]
fn mp4_dvr_plays_seeks_and_survives_kill_9() {
    let conf = ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        "vhost __defaultVhost__ {\n    dvr { enabled on; dvr_path ./rec/[app]/[stream].[timestamp].mp4; }",
    );
    let mut s = Rsrs::start("codecs-dvr", "127.0.24.5", &conf);
    // H.264 + AAC (Debian's ffmpeg) and HEVC + AAC (ffmpeg 9), 6 s each.
    let mut x = publish(&s.rtmp("live/x"), false);
    let mut h = Proc(
        Command::new(ffmpeg9())
            .args(["-nostdin", "-v", "error", "-re", "-i"])
            .arg(hevc_sample())
            .args(["-c", "copy", "-f", "flv", &s.rtmp("live/h")])
            .spawn()
            .unwrap(),
    );
    assert!(x.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
    assert!(h.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
    assert!(s.wait_log_count("DVR file finished", 2, Duration::from_secs(10)), "{}", s.log_text());
    for (stream, codec) in [("x", "h264"), ("h", "hevc")] {
        let file = std::fs::read_dir(s.dir.join("rec/live"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{stream}.")))
            .unwrap();
        let (st, pk) = probe_file(&file);
        assert_stream(&st, &pk, codec, "aac");
        let d = probe_duration(&file);
        assert!((5.0..=6.5).contains(&d), "{codec}: recorded {d} s");
        // Seeking lands on a keyframe near the asked time (fragments start on keyframes).
        let after = seek_probe(&file, 3.0);
        let v = after.iter().find(|p| p.codec_type == "video").expect("packets after seeking");
        assert!(v.keyframe && (2.0..=3.5).contains(&v.pts), "{codec}: seeking to 3 s gave {v:?}");
        let mut decode = Command::new("ffmpeg");
        decode.args(["-nostdin", "-v", "error", "-i"]).arg(&file).args(["-f", "null", "-"]);
        let out = decode.output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{codec}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // kill -9 while recording: the next start keeps every whole fragment.
    std::fs::remove_dir_all(s.dir.join("rec")).unwrap();
    let _live = publish(&s.rtmp("live/k"), true);
    assert!(s.wait_log("DVR recording (fragmented MP4)", Duration::from_secs(10)), "{}", s.log_text());
    let (streams, packets) = probe(&s.rtmp("live/k"), 4);
    assert_sample_stream(&streams, &packets);
    s.signal("KILL");
    s.wait_exit(Duration::from_secs(5)).expect("killed");
    assert!(only_file(&s.dir.join("rec/live"), "tmp").to_string_lossy().ends_with(".mp4.tmp"));
    drop(s);
    let s = Rsrs::restart("codecs-dvr", "127.0.24.5", &conf);
    assert!(s.wait_log("DVR: recovered", Duration::from_secs(5)), "{}", s.log_text());
    let file = only_file(&s.dir.join("rec/live"), "mp4");
    let (st, pk) = probe_file(&file);
    assert_stream(&st, &pk, "h264", "aac");
    let kept = pk.iter().filter(|p| p.codec_type == "video").map(|p| p.dts).fold(0.0, f64::max);
    assert!(kept >= 2.0, "kill -9 after 4 s of playing kept only {kept:.1} s");
}

/// A page that plays `?src=` in a `<video>` element (Chromium's own HLS player, no script
/// player) and reports decoded frames, or the error, to `?report=`.
const PLAYER_PAGE: &str = r#"<!doctype html><video id=v muted autoplay playsinline></video>
<script>
const p = new URLSearchParams(location.search);
const v = document.getElementById('v');
v.src = p.get('src');
let sent = false;
const report = (s) => { if (!sent) { sent = true; fetch(p.get('report') + '?' + s, {mode: 'no-cors'}); } };
v.addEventListener('error', () => report('error=' + (v.error && v.error.code) + '&msg=' + encodeURIComponent(v.error && v.error.message)));
setInterval(() => {
  const q = v.getVideoPlaybackQuality();
  if (q.totalVideoFrames >= 25) report('frames=' + q.totalVideoFrames + '&width=' + v.videoWidth + '&height=' + v.videoHeight);
}, 250);
</script>
"#;

#[test]
fn chromium_plays_fmp4_hls_natively() {
    let s = Rsrs::start("codecs-chromium", "127.0.24.6", &hls_conf("hls_use_fmp4 on;"));
    std::fs::create_dir_all(s.dir.join("objs/nginx/html")).unwrap();
    std::fs::write(s.dir.join("objs/nginx/html/player.html"), PLAYER_PAGE).unwrap();
    let _x = publish(&s.rtmp("live/x"), true);
    let _a = publish9(&av1_sample(), &s.rtmp("live/a"));
    // H.264 + AAC and AV1 + Opus. (This Chromium has no HEVC decoder, with or without rsrs.)
    for stream in ["x", "a"] {
        wait_playlist(&s, stream, 3);
        let page = format!("{}?src=/live/{stream}.m3u8", s.http("player.html"));
        let got = chromium_report(&page, "127.0.24.7", stream);
        assert!(got.contains("frames=") && got.contains("width=640&height=360"), "{stream}: Chromium says {got}");
    }
}

/// (msn, part) of a low-latency playlist's preload hint (`x-12.3.m4s`).
fn hint_of(playlist: &str) -> (u64, u64) {
    let line = playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:")).expect("a preload hint");
    let uri = line.split("URI=\"").nth(1).unwrap().trim_end_matches('"');
    let stem = uri.trim_end_matches(".m4s");
    let (seg, part) = stem.rsplit_once('.').unwrap();
    (seg.rsplit('-').next().unwrap().parse().unwrap(), part.parse().unwrap())
}

/// RFC 8216bis rules a low-latency playlist must keep.
fn check_low_latency(text: &str) -> Result<(), String> {
    let attr = |tag: &str, key: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(tag))?;
        line.split([':', ',']).find_map(|kv| kv.strip_prefix(&format!("{key}="))?.parse().ok())
    };
    if !text.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n") {
        return Err("not version 9".into());
    }
    let part_target = attr("#EXT-X-PART-INF:", "PART-TARGET").ok_or("no PART-TARGET")?;
    let target: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|v| v.parse().ok())
        .ok_or("no target duration")?;
    if !text.contains("CAN-BLOCK-RELOAD=YES") {
        return Err("no CAN-BLOCK-RELOAD".into());
    }
    let hold = attr("#EXT-X-SERVER-CONTROL:", "PART-HOLD-BACK").ok_or("no PART-HOLD-BACK")?;
    if hold < 2.0 * part_target {
        return Err(format!("PART-HOLD-BACK {hold} < 2 × {part_target}"));
    }
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("#EXT-X-PART:DURATION=") {
            let d: f64 = rest.split(',').next().unwrap().parse().map_err(|_| l.to_string())?;
            if d > part_target {
                return Err(format!("part of {d} s > PART-TARGET {part_target}: {l}"));
            }
        }
        if let Some(rest) = l.strip_prefix("#EXTINF:") {
            let d: f64 = rest.split(',').next().unwrap().parse().map_err(|_| l.to_string())?;
            if d.round() > target {
                return Err(format!("segment of {d} s > target {target}"));
            }
        }
    }
    let map = text.find("#EXT-X-MAP:").ok_or("no EXT-X-MAP")?;
    let first = text.find("#EXT-X-PART:").into_iter().chain(text.find("#EXTINF:")).min().ok_or("no media")?;
    if map > first {
        return Err("EXT-X-MAP after the first media".into());
    }
    Ok(())
}

#[test]
fn low_latency_hls_blocks_reloads_lists_parts_and_plays() {
    let conf = hls_conf("hls_low_latency on; hls_part_duration 0.33;");
    let s = Rsrs::start("codecs-ll", "127.0.24.8", &conf);
    std::fs::create_dir_all(s.dir.join("objs/nginx/html")).unwrap();
    std::fs::write(s.dir.join("objs/nginx/html/player.html"), PLAYER_PAGE).unwrap();
    let _x = publish(&s.rtmp("live/x"), true);
    wait_playlist(&s, "x", 3);
    let web = format!("{}:8080", s.ip);
    let get = |path: &str| {
        let (status, head, body) = http_request(&web, "GET", path, &[]);
        (status, head, body)
    };
    // Follow the live edge with blocking reloads: each answer comes when the hinted part is
    // written, within about a part's duration, and every version keeps the rules.
    let (status, head, body) = get("/live/x.m3u8");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("cache-control: no-cache"), "{head}");
    let mut text = String::from_utf8(body).unwrap();
    let mut slowest = Duration::ZERO;
    for _ in 0..12 {
        check_low_latency(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        let (msn, part) = hint_of(&text);
        let asked = std::time::Instant::now();
        let (status, head, body) = get(&format!("/live/x.m3u8?_HLS_msn={msn}&_HLS_part={part}"));
        slowest = slowest.max(asked.elapsed());
        assert_eq!(status, 200, "{head}");
        assert!(head.to_ascii_lowercase().contains("cache-control: public, max-age="), "{head}");
        text = String::from_utf8(body).unwrap();
        let want = format!("x-{msn}.{part}.m4s");
        assert!(text.contains(&want), "the answer lists the part it was held for ({want}):\n{text}");
    }
    assert!(slowest < Duration::from_millis(330 * 2 + 300), "a blocking reload took {slowest:?}");
    eprintln!("slowest blocking reload: {slowest:?} (part target 330 ms)");
    // The hinted part itself is held until written, then served.
    let (msn, part) = hint_of(&text);
    let (status, _, body) = get(&format!("/live/x-{msn}.{part}.m4s"));
    assert_eq!((status, &body[4..8]), (200, &b"moof"[..]));
    // A whole segment is its parts, byte for byte.
    let last = text.lines().rfind(|l| l.ends_with(".m4s") && !l.starts_with('#')).unwrap().to_string();
    let parts: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1).map(|u| u.split('"').next().unwrap().to_string()))
        .filter(|u| u.starts_with(&format!("{}.", last.trim_end_matches(".m4s"))))
        .collect();
    assert!(parts.len() >= 2, "{last} has parts: {text}");
    let whole = get(&format!("/live/{last}")).2;
    let joined: Vec<u8> = parts.iter().flat_map(|p| get(&format!("/live/{p}")).2).collect();
    assert!(whole == joined, "{last} is not its parts");
    // Too far ahead is a 400; a delta update skips what it may.
    assert_eq!(get(&format!("/live/x.m3u8?_HLS_msn={}", msn + 10)).0, 400);
    let delta = String::from_utf8(get("/live/x.m3u8?_HLS_skip=YES").2).unwrap();
    check_low_latency(&delta).unwrap_or_else(|e| panic!("{e}:\n{delta}"));
    // Plain players and Chromium's own player play it.
    let (st, pk) = probe_with(&s.http("live/x.m3u8"), 2, &["-live_start_index", "0"]);
    assert_sample_stream(&st, &pk);
    let page = format!("{}?src=/live/x.m3u8", s.http("player.html"));
    let got = chromium_report(&page, "127.0.24.9", "ll");
    assert!(got.contains("frames=") && got.contains("width=640&height=360"), "Chromium says {got}");
    // The playlist on disk, for nginx sharing the directory, is the same valid playlist.
    let on_disk = std::fs::read_to_string(s.dir.join("objs/nginx/html/live/x.m3u8")).unwrap();
    check_low_latency(&on_disk).unwrap_or_else(|e| panic!("{e}:\n{on_disk}"));
}

#[test]
fn fmp4_segments_and_init_need_a_viewer_session_where_play_is_restricted() {
    let conf = ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        "vhost __defaultVhost__ {\n    hls { enabled on; hls_fragment 1; hls_use_fmp4 on; }\n    \
         security { enabled on; allow play 127.0.0.0/8; allow publish 127.0.0.0/8; }",
    );
    let s = Rsrs::start("codecs-fmp4-ctx", "127.0.24.10", &conf);
    let _x = publish(&s.rtmp("live/x"), true);
    wait_playlist(&s, "x", 2);
    let web = format!("{}:8080", s.ip);
    for path in ["/live/x-1.m4s", "/live/x/init.mp4"] {
        assert_eq!(http_request(&web, "GET", path, &[]).0, 403, "{path} without a session");
    }
    // Through a session: the master playlist names it, and every URI of the media playlist
    // (the map too) carries it.
    let (_, _, master) = http_request(&web, "GET", "/live/x.m3u8", &[]);
    let master = String::from_utf8_lossy(&master).to_string();
    // The master playlist names the codecs (RFC 6381) and the size, for players to choose by.
    let inf = master.lines().find(|l| l.starts_with("#EXT-X-STREAM-INF:")).unwrap();
    assert!(
        inf.contains(",CODECS=\"avc1.64") && inf.contains(",mp4a.40.2\"") && inf.ends_with(",RESOLUTION=640x360"),
        "{inf}"
    );
    let media = master.lines().find(|l| l.contains("hls_ctx=")).unwrap().to_string();
    let (status, _, body) = http_request(&web, "GET", &media, &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let map = text.lines().find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")).unwrap().trim_end_matches('"');
    assert!(map.contains("hls_ctx="), "{text}");
    assert_eq!(http_request(&web, "GET", &format!("/live/{map}"), &[]).0, 200);
    let seg = text.lines().find(|l| l.contains(".m4s?hls_ctx=")).unwrap();
    let (status, _, body) = http_request(&web, "GET", &format!("/live/{seg}"), &[]);
    assert_eq!((status, &body[4..8]), (200, &b"moof"[..]));
}

#[test]
fn vp9_and_opus_are_reported_relayed_and_written_as_fmp4_hls() {
    let s = Rsrs::start("codecs-vp9", "127.0.24.11", &hls_conf(""));
    std::fs::create_dir_all(s.dir.join("objs/nginx/html")).unwrap();
    std::fs::write(s.dir.join("objs/nginx/html/player.html"), PLAYER_PAGE).unwrap();
    let _v = publish9(&vp9_sample(), &s.rtmp("live/v"));
    // VP9's size comes from its first keyframe (its configuration has none).
    let streams = s.wait_api("/api/v1/streams/", Duration::from_secs(15), |v| v["streams"][0]["video"]["width"] == 640);
    let video = &streams["streams"][0]["video"];
    assert_eq!(
        (video["codec"].as_str(), video["profile"].as_str(), video["height"].as_u64()),
        (Some("VP9"), Some("Profile 0"), Some(360))
    );
    let (st, pk) = play9(&s.http("live/v.flv"), 2, "vp9-flv");
    assert_stream(&st, &pk, "vp9", "opus");
    let text = wait_playlist(&s, "v", 3);
    assert!(text.contains("#EXT-X-MAP:URI=\"v/init.mp4\""), "{text}");
    let (st, pk) = probe_with(&s.http("live/v.m3u8"), 2, &["-live_start_index", "0"]);
    assert_stream(&st, &pk, "vp9", "opus");
    let got = chromium_report(&format!("{}?src=/live/v.m3u8", s.http("player.html")), "127.0.24.12", "vp9");
    assert!(got.contains("frames=") && got.contains("width=640&height=360"), "Chromium says {got}");
}
