//! HLS and DVR on disk (scenario S2 and the DVR/cleanup parts of S6): played from rsrs and from
//! a real nginx sharing the directory, every playlist version checked strictly, recordings
//! checked with ffprobe and flvmeta, leftovers recovered at start and cleaned by `rsrs cleanup`.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn conf_with(vhost_extra: &str) -> String {
    ORIGIN_CONF.replace("vhost __defaultVhost__ {", &format!("vhost __defaultVhost__ {{\n{vhost_extra}"))
}

/// Reads a playlist every 5 ms, as a reader sharing the directory would, and keeps every
/// distinct version seen until `finish`.
struct PlaylistWatcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<BTreeSet<String>>,
}

impl PlaylistWatcher {
    fn start(m3u8: PathBuf) -> PlaylistWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(t) = std::fs::read_to_string(&m3u8) {
                    seen.insert(t);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        });
        PlaylistWatcher { stop, thread }
    }

    fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// (media sequence, target duration, [(segment duration, uri)]).
type Playlist = (u64, u64, Vec<(f64, String)>);

/// A strict RFC 8216 media-playlist check.
fn strict_playlist(text: &str) -> Result<Playlist, String> {
    if !text.ends_with('\n') {
        return Err("playlist does not end with a newline (partial?)".into());
    }
    let mut lines = text.lines();
    if lines.next() != Some("#EXTM3U") {
        return Err("first line is not #EXTM3U".into());
    }
    let (mut target, mut seq, mut version) = (None, None, None);
    let mut segs = Vec::new();
    let mut pending: Option<f64> = None;
    for l in lines {
        if let Some(v) = l.strip_prefix("#EXT-X-TARGETDURATION:") {
            if target.replace(v.parse::<u64>().map_err(|_| format!("bad target {v}"))?).is_some() {
                return Err("two EXT-X-TARGETDURATION tags".into());
            }
        } else if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            if !segs.is_empty() || pending.is_some() {
                return Err("EXT-X-MEDIA-SEQUENCE after a segment".into());
            }
            seq = Some(v.parse::<u64>().map_err(|_| format!("bad sequence {v}"))?);
        } else if let Some(v) = l.strip_prefix("#EXT-X-VERSION:") {
            version = Some(v.parse::<u64>().map_err(|_| format!("bad version {v}"))?);
        } else if let Some(v) = l.strip_prefix("#EXTINF:") {
            if pending.is_some() {
                return Err("two EXTINF without a URI".into());
            }
            let d = v.split(',').next().unwrap_or("");
            pending = Some(d.parse::<f64>().map_err(|_| format!("bad EXTINF {v}"))?);
        } else if l == "#EXT-X-DISCONTINUITY" || l.is_empty() {
        } else if l.starts_with('#') {
            return Err(format!("unexpected tag {l}"));
        } else {
            let d = pending.take().ok_or(format!("URI {l} without EXTINF"))?;
            segs.push((d, l.to_string()));
        }
    }
    if pending.is_some() {
        return Err("EXTINF without a URI at the end".into());
    }
    let target = target.ok_or("no EXT-X-TARGETDURATION")?;
    version.ok_or("no EXT-X-VERSION")?;
    for (d, u) in &segs {
        if d.round() as u64 > target {
            return Err(format!("segment {u} of {d}s exceeds the target duration {target}"));
        }
    }
    Ok((seq.unwrap_or(0), target, segs))
}

#[test]
fn hls_plays_from_rsrs_and_nginx_and_playlists_are_always_whole() {
    let s = Rsrs::start("hls", "127.0.7.1", &conf_with("    hls { enabled on; hls_fragment 2; hls_window 30; }"));
    let html = s.dir.join("objs/nginx/html");
    let m3u8 = html.join("live/hls.m3u8");
    // Watch the playlist like a reader sharing the directory would, all through the publish.
    let watcher = PlaylistWatcher::start(m3u8.clone());
    let mut publisher = publish(&s.rtmp("live/hls"), false);
    assert!(publisher.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()), "publisher failed");
    assert!(s.wait_log("HLS finished", Duration::from_secs(5)), "{}", s.log_text());
    let versions = watcher.finish();
    // Three are written (one per segment); a loaded machine may deliver the media in a burst
    // and two writes can fall between polls, so at least one rewrite must have been seen.
    assert!(versions.len() >= 2, "expected the playlist to be seen changing, saw {} versions", versions.len());
    let mut last_seq = 0;
    for v in &versions {
        let (seq, _, segs) = strict_playlist(v).unwrap_or_else(|e| panic!("invalid playlist version: {e}\n{v}"));
        assert!(seq >= last_seq || seq == 0);
        last_seq = last_seq.max(seq);
        for (i, (_, uri)) in segs.iter().enumerate() {
            assert_eq!(uri, &format!("hls-{}.ts", seq + i as u64), "media sequence and segment numbers agree");
        }
    }
    let final_text = std::fs::read_to_string(&m3u8).unwrap();
    let (_, target, segs) = strict_playlist(&final_text).unwrap();
    let total: f64 = segs.iter().map(|s| s.0).sum();
    // The last segment also holds the audio after the last video frame, so it may pass 2 s;
    // the target covers the longest segment, rounded up (RFC 8216, as SRS).
    let longest = segs.iter().map(|s| s.0).fold(2.0, f64::max);
    assert_eq!(target, longest.ceil() as u64, "{final_text}");
    assert!((5.5..=6.2).contains(&total), "playlist covers {total}s of the 6 s stream:\n{final_text}");
    for (d, uri) in &segs[..segs.len() - 1] {
        // Cut on keyframes (every 1 s) once 2 s have passed.
        assert!((1.9..=3.1).contains(d), "segment {uri} lasts {d}s");
        assert!(html.join("live").join(uri).exists());
    }
    assert!(!std::fs::read_dir(html.join("live")).unwrap().flatten().any(|e| {
        let n = e.file_name().to_string_lossy().to_string();
        n.ends_with(".tmp") || n.ends_with(".temp")
    }));

    // Played from rsrs, and from a plain nginx that shares the directory.
    let _nginx = start_nginx(
        "hls",
        &format!(
            "http {{ include /etc/nginx/mime.types; server {{ listen 127.0.7.2:8081; root {}; }} }}",
            html.canonicalize().unwrap().display()
        ),
        "127.0.7.2:8081",
    );
    for url in [s.http("live/hls.m3u8"), "http://127.0.7.2:8081/live/hls.m3u8".to_string()] {
        // No ENDLIST (SRS never writes one), so players treat it as live: read 5 s from the
        // start of the window rather than wait for segments that will not come.
        let (streams, packets) = probe_with(&url, 5, &["-live_start_index", "0"]);
        assert_sample_stream(&streams, &packets);
        let v: Vec<&Packet> = packets.iter().filter(|p| p.codec_type == "video").collect();
        let span = v.last().unwrap().pts - v.first().unwrap().pts;
        assert!((4.8..=5.2).contains(&span), "{url}: {span}s of video");
        assert!(v.len() >= 145, "{url}: {} frames in 5 s", v.len());
    }
    let (st, head, _) = http_request(&format!("{}:8080", s.ip), "GET", "/live/hls.m3u8", &[]);
    assert_eq!(st, 200);
    assert!(head.contains("application/vnd.apple.mpegurl") && head.contains("Cache-Control: no-cache"), "{head}");
}

#[test]
fn hls_window_cleanup_and_republish_discontinuity() {
    let conf = conf_with("    hls { enabled on; hls_fragment 1; hls_window 2; }").replace(
        "vhost __defaultVhost__ {",
        "exporter { enabled on; listen 127.0.7.3:9972; }\nvhost __defaultVhost__ {",
    );
    let s = Rsrs::start("hls-window", "127.0.7.3", &conf);
    let dir = s.dir.join("objs/nginx/html/live");
    let mut seen = BTreeSet::new();
    for round in 1..=2 {
        // The second publish is the republish whose playlist versions matter.
        let watcher = (round == 2).then(|| PlaylistWatcher::start(dir.join("w.m3u8")));
        let mut p = publish(&s.rtmp("live/w"), false);
        assert!(p.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
        assert!(s.wait_log_count("HLS finished", round, Duration::from_secs(5)), "{}", s.log_text());
        if let Some(w) = watcher {
            seen = w.finish();
        }
    }
    // The republish's first segment is marked discontinuous (new timestamps, new encoder state).
    assert!(
        seen.iter().any(|v| v.contains("#EXT-X-DISCONTINUITY\n#EXTINF")),
        "no playlist version during the republish had a discontinuity: {seen:?}"
    );
    let text = std::fs::read_to_string(dir.join("w.m3u8")).unwrap();
    let (seq, _, segs) = strict_playlist(&text).unwrap();
    let total: f64 = segs.iter().map(|s| s.0).sum();
    assert!(total <= 2.0 + 1.2, "window of 2 s holds {total}s:\n{text}");
    assert!(seq >= 6, "numbering continues across the republish: {text}");
    // Expired segments are deleted from disk.
    let on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".ts"))
        .collect();
    assert_eq!(on_disk.len(), segs.len(), "only windowed segments stay: {on_disk:?}\n{text}");
    assert_eq!(s.count_log("HLS started"), 2);
    // Sequence numbers start at 0 and every segment written got one.
    let written = metric_value("127.0.7.3:9972", "rsrs_hls_segments_total", &[]);
    assert_eq!(written, (seq + segs.len() as u64) as f64, "{text}");
}

#[test]
fn hls_pure_audio_and_pure_video_streams() {
    let s = Rsrs::start("hls-av", "127.0.7.8", &conf_with("    hls { enabled on; hls_fragment 1; }"));
    for (name, drop_track, keep) in [("onlyaudio", "-vn", "audio"), ("onlyvideo", "-an", "video")] {
        let mut p = Proc(
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
                .arg(sample())
                .args(["-c", "copy", drop_track, "-f", "flv"])
                .arg(s.rtmp(&format!("live/{name}")))
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(p.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
        let n = if keep == "audio" { 1 } else { 2 };
        assert!(s.wait_log_count("HLS finished", n, Duration::from_secs(5)), "{}", s.log_text());
        let (streams, packets) = probe_with(&s.http(&format!("live/{name}.m3u8")), 4, &["-live_start_index", "0"]);
        assert_eq!(streams.len(), 1, "{name}: {streams:?}");
        assert_eq!(streams[0]["codec_type"], keep);
        let mine: Vec<&Packet> = packets.iter().filter(|p| p.codec_type == keep).collect();
        assert!(mine.len() > 50, "{name}: {} packets", mine.len());
        assert!(mine.windows(2).all(|w| w[1].dts >= w[0].dts), "{name}: timestamps go backwards");
    }
}

#[test]
fn hls_dispose_removes_files_after_unpublish() {
    let s =
        Rsrs::start("hls-dispose", "127.0.7.9", &conf_with("    hls { enabled on; hls_fragment 1; hls_dispose 1; }"));
    let mut p = publish(&s.rtmp("live/gone"), false);
    assert!(p.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
    let live = s.dir.join("objs/nginx/html/live");
    assert!(s.wait_log("HLS finished", Duration::from_secs(5)));
    assert!(live.join("gone.m3u8").exists(), "kept until hls_dispose passes");
    assert!(s.wait_log("HLS disposed", Duration::from_secs(5)), "{}", s.log_text());
    let left: Vec<_> = std::fs::read_dir(&live).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "files left after dispose: {left:?}");
}

#[test]
fn hls_numbering_continues_after_a_restart() {
    let conf = conf_with("    hls { enabled on; hls_fragment 1; hls_window 30; hls_dispose 0; }");
    let first = Rsrs::start("hls-restart", "127.0.7.10", &conf);
    let mut p = publish(&first.rtmp("live/r"), false);
    assert!(p.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
    assert!(first.wait_log("HLS finished", Duration::from_secs(5)));
    let m3u8 = first.dir.join("objs/nginx/html/live/r.m3u8");
    let (_, _, before) = strict_playlist(&std::fs::read_to_string(&m3u8).unwrap()).unwrap();
    drop(first); // killed, as a crashed or restarted pod
    let second = Rsrs::restart("hls-restart", "127.0.7.10", &conf);
    let mut p = publish(&second.rtmp("live/r"), false);
    assert!(p.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
    assert!(second.wait_log("HLS finished", Duration::from_secs(5)), "{}", second.log_text());
    let text = std::fs::read_to_string(&m3u8).unwrap();
    let (seq, _, after) = strict_playlist(&text).unwrap();
    assert_eq!(seq, 0, "the window still starts at the first run's first segment:\n{text}");
    assert_eq!(after.len(), before.len() * 2, "both runs' segments are listed:\n{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXTINF"), "the restart is a discontinuity:\n{text}");
    assert_eq!(after[before.len()].1, format!("r-{}.ts", before.len()), "numbering continues:\n{text}");
}

#[test]
fn hls_disk_error_stops_hls_only() {
    let s = Rsrs::start(
        "hls-diskerr",
        "127.0.7.4",
        &conf_with("    hls { enabled on; hls_fragment 1; hls_path ./blocked/hls; }").replace(
            "vhost __defaultVhost__ {",
            "exporter { enabled on; listen 127.0.7.4:9972; }\nvhost __defaultVhost__ {",
        ),
    );
    // A regular file where a directory must go: every write fails.
    std::fs::write(s.dir.join("blocked"), b"not a directory").unwrap();
    let _pub = publish(&s.rtmp("live/d"), true);
    assert!(s.wait_log("HLS stopped for this stream: cannot write", Duration::from_secs(10)), "{}", s.log_text());
    let (streams, packets) = probe(&s.rtmp("live/d"), 2);
    assert_sample_stream(&streams, &packets);
    let (streams, packets) = probe(&s.http("live/d.flv"), 2);
    assert_sample_stream(&streams, &packets);
    assert_eq!(metric_value("127.0.7.4:9972", "rsrs_hls_errors_total", &[]), 1.0);
    assert_eq!(metric_value("127.0.7.4:9972", "rsrs_hls_segments_total", &[]), 0.0);
}

fn flvs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn flvmeta_check(p: &Path) {
    let out = Command::new("flvmeta").arg("--check").arg(p).output().expect("flvmeta (apt-get install flvmeta)");
    assert!(out.status.success(), "flvmeta --check {}: {}", p.display(), String::from_utf8_lossy(&out.stdout));
}

#[test]
fn dvr_session_writes_one_valid_file() {
    let s = Rsrs::start(
        "dvr-session",
        "127.0.7.5",
        &conf_with("    dvr { enabled on; dvr_plan session; dvr_path ./objs/dvr/[app]/[stream].[timestamp].flv; }"),
    );
    let mut p = publish(&s.rtmp("live/rec"), false);
    assert!(p.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
    assert!(s.wait_log("DVR file finished", Duration::from_secs(5)), "{}", s.log_text());
    let files = flvs(&s.dir.join("objs/dvr/live"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".flv"));
    let (streams, packets) = probe_file(&files[0]);
    assert_sample_stream(&streams, &packets);
    // ffprobe reads the duration from the patched metadata.
    let d = probe_duration(&files[0]);
    assert!((5.5..=6.2).contains(&d), "recorded {d}s");
    flvmeta_check(&files[0]);
}

#[test]
fn dvr_segments_and_graceful_finish_on_quit() {
    let s = Rsrs::start(
        "dvr-segment",
        "127.0.7.6",
        &conf_with(
            "    dvr { enabled on; dvr_plan segment; dvr_duration 2; dvr_path ./objs/dvr/[stream]-[timestamp].flv; }",
        )
        .replace(
            "vhost __defaultVhost__ {",
            "exporter { enabled on; listen 127.0.7.6:9972; }\nvhost __defaultVhost__ {",
        ),
    );
    let mut p = publish(&s.rtmp("live/seg"), false);
    assert!(p.wait_timeout(Duration::from_secs(30)).is_some_and(|st| st.success()));
    assert!(s.wait_log_count("DVR file finished", 3, Duration::from_secs(5)), "{}", s.log_text());
    let files = flvs(&s.dir.join("objs/dvr"));
    assert_eq!(files.len(), 3, "{files:?}");
    let mut total = 0.0;
    for f in &files {
        flvmeta_check(f);
        let (streams, packets) = probe_file(f);
        assert_sample_stream(&streams, &packets);
        total += probe_duration(f);
    }
    assert!((5.5..=6.3).contains(&total), "segments add up to {total}s");
    assert_eq!(metric_value("127.0.7.6:9972", "rsrs_dvr_files_total", &[]), 3.0);

    // A recording in progress is finished, not lost, when the server is told to quit.
    let _live = publish(&s.rtmp("live/quit"), true);
    assert!(s.wait_log("DVR recording stream=/live/quit", Duration::from_secs(10)), "{}", s.log_text());
    let pid = s.pid().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(s.wait_log("DVR file finished stream=/live/quit", Duration::from_secs(10)), "{}", s.log_text());
}

#[test]
fn leftovers_are_recovered_at_start_and_cleanup_removes_only_leftovers() {
    let ip = "127.0.7.7";
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-recover");
    // Rsrs::start wipes its directory, so stage the leftovers through a first run.
    let conf = conf_with(
        "    hls { enabled on; }\n    dvr { enabled on; dvr_path ./objs/nginx/html/[app]/[stream].[timestamp].flv; }",
    );
    drop(Rsrs::start("recover", ip, &conf));
    let live = dir.join("objs/nginx/html/live");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("old-3.ts.tmp"), b"x").unwrap();
    std::fs::write(live.join("old.m3u8.temp"), b"x").unwrap();
    std::fs::copy(sample(), live.join("crashed.123.flv.tmp")).unwrap();
    std::fs::write(live.join("keep.ts"), b"x").unwrap();
    // Start again in the same directory, as after a kill -9.
    let mut cmd = Command::new(BIN);
    cmd.current_dir(&dir)
        .args(["-c", "srs.conf"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut again = Proc(cmd.spawn().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while live.join("old-3.ts.tmp").exists() || !live.join("crashed.123.flv").exists() {
        assert!(std::time::Instant::now() < deadline, "start-up recovery did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!live.join("old.m3u8.temp").exists());
    assert!(!live.join("crashed.123.flv.tmp").exists());
    assert!(live.join("keep.ts").exists(), "recovery only touches temp files");
    let (streams, _) = probe_file(&live.join("crashed.123.flv"));
    assert_eq!(streams.len(), 2, "the recovered recording is playable");
    let _ = again.0.kill();

    // rsrs cleanup on that tree: with a zero age every leftover goes, recordings stay.
    let dry =
        Command::new(BIN).args(["cleanup", "--older-than", "0s", "--dry-run", "--dir"]).arg(&dir).output().unwrap();
    assert!(dry.status.success());
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(text.contains("would remove file") && text.contains("keep.ts"), "{text}");
    assert!(live.join("keep.ts").exists(), "dry run removes nothing");
    let real = Command::new(BIN).args(["cleanup", "--older-than", "0s", "--dir"]).arg(&dir).output().unwrap();
    assert!(real.status.success(), "{}", String::from_utf8_lossy(&real.stderr));
    assert!(!live.join("keep.ts").exists());
    assert!(live.join("crashed.123.flv").exists(), "finished recordings are never removed");
    assert!(dir.join("srs.conf").exists());
    let bad = Command::new(BIN).args(["cleanup", "--dir", "/nonexistent-dir", "--older-than", "1d"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
}
