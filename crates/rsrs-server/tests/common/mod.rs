//! End-to-end test harness: real rsrs processes on their own loopback addresses, real ffmpeg,
//! ffprobe and rtmpdump. Every wait is bounded; waits are on events (log lines, process exit)
//! rather than fixed sleeps wherever the event is observable.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rsrs");

/// The repository's root (deploy/, etc/, the shared/ checkout beside it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Polls `cond` every `every` until it holds or `timeout` passes; whether it held. For states
/// only observable by asking (a port, an API, a file); log lines and exits have their own waits.
pub fn wait_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// The status of `GET path` on `addr` (`Connection: close`), or None if no HTTP answer came
/// within 3 s (nothing listening, or a proxy in front of a closed port).
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut b = Vec::new();
    let _ = s.read_to_end(&mut b);
    String::from_utf8_lossy(&b).split_whitespace().nth(1)?.parse().ok()
}

/// A small H.264/AAC FLV made with ffmpeg once per test run: 6 s, 640x360 at 30 fps, a keyframe
/// every second, 44.1 kHz stereo AAC.
pub fn sample() -> PathBuf {
    static SAMPLE: OnceLock<PathBuf> = OnceLock::new();
    SAMPLE
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join("sample-640x360-6s.flv");
            if path.exists() {
                return path;
            }
            let tmp = dir.join(format!("sample-{}.flv.tmp", std::process::id()));
            let st = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y"])
                .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
                .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
                .args(["-t", "6", "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-keyint_min", "30"])
                .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-b:a", "64k", "-shortest", "-f", "flv"])
                .arg(&tmp)
                .status()
                .expect("ffmpeg must be installed (apt-get install ffmpeg)");
            assert!(st.success(), "ffmpeg could not make the sample");
            std::fs::rename(&tmp, &path).unwrap();
            path
        })
        .clone()
}

/// A running rsrs process with its own working directory.
pub struct Rsrs {
    pub ip: String,
    pub dir: PathBuf,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    lines: mpsc::Receiver<String>,
}

impl Rsrs {
    /// Starts rsrs with `conf` (where `IP` is replaced by this server's address) and waits until
    /// every listener is up.
    pub fn start(name: &str, ip: &str, conf: &str) -> Rsrs {
        Rsrs::start_with(name, ip, Some(conf), &[], &[])
    }

    pub fn start_with(name: &str, ip: &str, conf: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Rsrs {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        Rsrs::launch(dir, ip, conf, args, env)
    }

    /// Starts again in the same working directory (files of the previous run kept), as after a
    /// crash or a pod restart with a persistent volume.
    pub fn restart(name: &str, ip: &str, conf: &str) -> Rsrs {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{name}"));
        Rsrs::launch(dir, ip, Some(conf), &[], &[])
    }

    fn launch(dir: PathBuf, ip: &str, conf: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Rsrs {
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&dir).stdout(Stdio::piped()).stderr(Stdio::piped()).env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(conf) = conf {
            std::fs::write(dir.join("srs.conf"), conf.replace("IP", ip)).unwrap();
            cmd.args(["-c", "srs.conf"]);
        }
        cmd.args(args);
        let mut child = cmd.spawn().expect("spawn rsrs");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in
            [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())]
        {
            let tx = tx.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut s = Rsrs { ip: ip.to_string(), dir, child, log, lines: rx };
        // Listeners to wait for: from the config text, or from the file named by `-c`.
        let conf_text = conf.map(str::to_string).or_else(|| {
            let at = args.iter().position(|a| *a == "-c")?;
            std::fs::read_to_string(s.dir.join(args.get(at + 1)?)).ok()
        });
        let expected = conf_text.map(|c| c.matches("listen").count()).unwrap_or(1);
        let mut listening = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while listening < expected.min(3) {
            match s.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("listening on") => listening += 1,
                Ok(_) => {}
                Err(_) => break,
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("rsrs exited with {st} during start-up:\n{}", s.log_text());
            }
        }
        assert!(listening > 0, "rsrs did not start listening:\n{}", s.log_text());
        s
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits for a log line containing `needle` (seen before or after this call).
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(200)))
            {
                Ok(l) if l.contains(needle) => return true,
                _ => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// Waits until at least `n` log lines contain `needle`.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count_log(needle) >= n {
                return true;
            }
            let _ = self.lines.recv_timeout(Duration::from_millis(100));
            if Instant::now() >= deadline {
                return self.count_log(needle) >= n;
            }
        }
    }

    pub fn count_log(&self, needle: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    pub fn rtmp(&self, path: &str) -> String {
        format!("rtmp://{}:1935/{path}", self.ip)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}:8080/{path}", self.ip)
    }

    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = http_request(&format!("{}:1985", self.ip), "GET", path, &[]);
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", String::from_utf8_lossy(&body)))
    }

    /// Polls the API until `pred` holds (bounded).
    pub fn wait_api(
        &self,
        path: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let ok = wait_until(timeout, Duration::from_millis(100), || {
            last = self.api(path);
            pred(&last)
        });
        assert!(ok, "API {path} never satisfied the condition; last: {last}");
        last
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, Duration::from_millis(20), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
    }

    pub fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Rsrs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn wait_timeout(&mut self, t: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(t, Duration::from_millis(50), || {
            status = self.0.try_wait().unwrap();
            status.is_some()
        });
        status
    }

    pub fn stderr_text(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.0.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ffmpeg publishing the sample in real time (`-re`), optionally looping.
pub fn publish(url: &str, looping: bool) -> Proc {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-re"]);
    if looping {
        c.args(["-stream_loop", "-1"]);
    }
    c.arg("-i").arg(sample()).args(["-c", "copy", "-f", "flv", url]);
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    Proc(c.spawn().expect("spawn ffmpeg"))
}

/// One packet from `ffprobe -show_packets`.
#[derive(Debug, Clone)]
pub struct Packet {
    pub codec_type: String,
    pub dts: f64,
    pub pts: f64,
    pub keyframe: bool,
}

/// Runs ffprobe on `url` for `seconds` of media; returns (streams, packets).
pub fn probe(url: &str, seconds: u32) -> (Vec<serde_json::Value>, Vec<Packet>) {
    probe_with(url, seconds, &[])
}

/// `probe` with extra input options (e.g. `-live_start_index 0` for HLS).
pub fn probe_with(url: &str, seconds: u32, input_opts: &[&str]) -> (Vec<serde_json::Value>, Vec<Packet>) {
    let out = Command::new("timeout")
        .arg("30")
        .arg("ffprobe")
        .args(["-v", "error", "-show_streams", "-show_packets", "-of", "json"])
        .args(input_opts)
        .args(["-read_intervals", &format!("%+{seconds}")])
        .arg(url)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe {url} failed: {}", String::from_utf8_lossy(&out.stderr));
    parse_probe(&out.stdout)
}

/// A file's duration as ffprobe reads it (0 when it cannot).
pub fn probe_duration(p: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0.0)
}

/// Probes a file completely.
pub fn probe_file(path: &Path) -> (Vec<serde_json::Value>, Vec<Packet>) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-show_packets", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    parse_probe(&out.stdout)
}

pub fn parse_probe(stdout: &[u8]) -> (Vec<serde_json::Value>, Vec<Packet>) {
    let v: serde_json::Value = serde_json::from_slice(stdout).expect("ffprobe JSON");
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let num = |p: &serde_json::Value, k: &str| p[k].as_str().and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
    let packets = v["packets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| Packet {
            codec_type: p["codec_type"].as_str().unwrap_or("").to_string(),
            dts: num(p, "dts_time"),
            pts: num(p, "pts_time"),
            keyframe: p["flags"].as_str().unwrap_or("").starts_with('K'),
        })
        .collect();
    (streams, packets)
}

/// Asserts the shape every playback of the sample must have.
pub fn assert_sample_stream(streams: &[serde_json::Value], packets: &[Packet]) {
    let v = streams.iter().find(|s| s["codec_type"] == "video").expect("a video stream");
    let a = streams.iter().find(|s| s["codec_type"] == "audio").expect("an audio stream");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(640), Some(360)));
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(a["sample_rate"], "44100");
    let first_video = packets.iter().find(|p| p.codec_type == "video").expect("video packets");
    assert!(first_video.keyframe, "playback must start on a keyframe");
    for kind in ["video", "audio"] {
        let dts: Vec<f64> = packets.iter().filter(|p| p.codec_type == kind).map(|p| p.dts).collect();
        assert!(dts.len() > 10, "too few {kind} packets: {}", dts.len());
        for w in dts.windows(2) {
            assert!(w[1] >= w[0], "{kind} timestamps go backwards: {} then {}", w[0], w[1]);
        }
    }
}

/// A plain HTTP/1.1 request with `Connection: close`; returns (status, head, body).
pub fn http_request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    // Long enough for an edge to give up on a stream no origin has (20 s).
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, buf[split + 4..].to_vec())
}

/// Base config for a single origin on `IP` (RTMP 1935, API 1985, HTTP 8080), HTTP-FLV on.
pub const ORIGIN_CONF: &str = "\
listen              IP:1935;
max_connections     1000;
daemon              off;
srs_log_tank        console;
http_api {
    enabled         on;
    listen          IP:1985;
}
http_server {
    enabled         on;
    listen          IP:8080;
    dir             ./objs/nginx/html;
}
vhost __defaultVhost__ {
    http_remux {
        enabled     on;
        mount       [vhost]/[app]/[stream].flv;
    }
}
";

const NGINX_RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// A real nginx in the foreground; stopped with SIGTERM so the master also stops its worker (a
/// SIGKILLed master leaves an orphaned worker holding the port).
pub struct Nginx(Proc);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0 .0.id().to_string()).status();
        if self.0.wait_timeout(Duration::from_secs(5)).is_none() {
            let _ = Command::new("pkill").args(["-KILL", "-P"]).arg(self.0 .0.id().to_string()).status();
        }
    }
}

/// Starts nginx (with its RTMP module loaded) running `blocks` (`rtmp { }` and/or `http { }`),
/// and waits until `addr` accepts connections.
pub fn start_nginx(name: &str, blocks: &str, addr: &str) -> Nginx {
    assert!(
        Path::new(NGINX_RTMP_MODULE).exists(),
        "nginx RTMP module missing: apt-get install nginx libnginx-mod-rtmp (.ci/run installs it)"
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("nginx-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let conf = format!(
        "load_module {NGINX_RTMP_MODULE};\nuser root;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/logs/error.log info;\nevents {{ worker_connections 256; }}\n{blocks}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nginx must be installed");
    let mut p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if let Some(st) = p.0.try_wait().unwrap() {
            panic!("nginx exited {st}: {}", p.stderr_text());
        }
        assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx(p)
}

/// A container test that was built to run (the build script found an engine, or
/// RSRS_REQUIRE_DOCKER is set) fails when no Docker engine answers: never a silent pass.
pub fn require_docker() {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "no Docker engine answers, though this test was built to run (RSRS_REQUIRE_DOCKER is set, or the engine \
         stopped since the build): start it, or `touch crates/rsrs-server/build.rs` to mark the container tests ignored"
    );
}

/// rsrs-bench players in the background (`count` players for `secs`, bounded); `report()` waits
/// for them and parses the JSON report.
pub struct Players(Proc);

impl Players {
    pub fn start(url: &str, proto: &str, count: u32, secs: u32) -> Players {
        let bin = PathBuf::from(BIN).with_file_name("rsrs-bench");
        assert!(bin.exists(), "rsrs-bench is built by `cargo test --workspace`");
        let child = Command::new(bin)
            .args(["play", "--url", url, "--proto", proto, "--count", &count.to_string(), "--ramp", "0"])
            .args(["--duration", &secs.to_string(), "--interval", "0", "--json", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Players(Proc(child))
    }

    pub fn report(mut self) -> serde_json::Value {
        let out = std::mem::replace(&mut self.0 .0, Command::new("true").spawn().unwrap()).wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let start = text.find('{').unwrap_or_else(|| panic!("no report: {text}"));
        serde_json::from_str(&text[start..]).unwrap()
    }
}

/// Lays out (first call) or updates a config directory the way the kubelet mounts a ConfigMap:
/// the file lives in a `..TIMESTAMP` directory, `..data` links to it and `srs.conf` links through
/// `..data`; an update writes a new directory and renames a fresh `..data_tmp` link over `..data`.
pub fn write_configmap_version(dir: &Path, n: u32, conf: &str) {
    let version = format!("..2026_11_24_00_00_0{n}.{n}");
    std::fs::create_dir_all(dir.join(&version)).unwrap();
    std::fs::write(dir.join(&version).join("srs.conf"), conf).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap(); // the atomic swap
    if std::fs::symlink_metadata(dir.join("srs.conf")).is_err() {
        std::os::unix::fs::symlink("..data/srs.conf", dir.join("srs.conf")).unwrap();
    }
}

/// A series' value in an exporter's exposition: the first line of `name` with all `labels`.
pub fn metric_value(exporter: &str, name: &str, labels: &[&str]) -> f64 {
    let (status, _, body) = http_request(exporter, "GET", "/metrics", &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find(|l| {
            (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
                && labels.iter().all(|x| l.contains(x))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
}

/// Loads `page` in headless Chromium and returns what it reports (the query it sends). One
/// browser at a time: two at once on a 2-core machine, beside the encoders and servers of the
/// other tests, can starve each other past any sensible wait.
pub fn chromium_report(page: &str, report_ip: &str, name: &str) -> String {
    chromium_report_with(page, report_ip, name, &[])
}

/// [`chromium_report`] with more Chromium flags (a fake camera, say).
pub fn chromium_report_with(page: &str, report_ip: &str, name: &str, flags: &[&str]) -> String {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let listener = std::net::TcpListener::bind(format!("{report_ip}:0")).unwrap();
    let report = format!("http://{}/r", listener.local_addr().unwrap());
    let url = format!("{page}&report={report}");
    let profile = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-{name}"));
    let _ = std::fs::remove_dir_all(&profile);
    let chromium = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(flags)
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium must be installed (apt-get install chromium; .ci/run does)");
    let _chromium = Proc(chromium);
    listener.set_nonblocking(true).unwrap();
    let mut got = String::new();
    let ok = wait_until(Duration::from_secs(90), Duration::from_millis(100), || {
        let Ok((mut sock, _)) = listener.accept() else { return false };
        use std::io::{Read, Write};
        sock.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.read(&mut buf).unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        got = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let _ = sock.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        got.starts_with("/r?")
    });
    assert!(ok, "Chromium reported nothing for {url}");
    got
}

/// A UDP relay that loses `loss` of the datagrams and delays the rest by `delay`, each way:
/// a lossy link, in user space (this kernel has no `sch_netem` for `tc netem`). Runs until
/// dropped.
pub struct LossyLink {
    stop: Arc<AtomicBool>,
    pub addr: String,
}

impl LossyLink {
    pub fn start(bind: &str, upstream: &str, loss: f64, delay: Duration) -> LossyLink {
        let front = std::net::UdpSocket::bind(bind).unwrap();
        let back = std::net::UdpSocket::bind(format!("{}:0", bind.split(':').next().unwrap())).unwrap();
        back.connect(upstream).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<std::sync::Mutex<Option<std::net::SocketAddr>>> = Default::default();
        // One delay line per direction: (due, bytes); a sender thread releases them in order.
        let lane = |out: std::net::UdpSocket,
                    to_client: bool,
                    client: Arc<std::sync::Mutex<Option<std::net::SocketAddr>>>,
                    stop: Arc<AtomicBool>| {
            let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((due, buf)) = rx.recv_timeout(Duration::from_millis(100)) else { continue };
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now); // the link's delay itself
                    }
                    if to_client {
                        if let Some(c) = *client.lock().unwrap() {
                            let _ = out.send_to(&buf, c);
                        }
                    } else {
                        let _ = out.send(&buf);
                    }
                }
            });
            tx
        };
        let to_server = lane(back.try_clone().unwrap(), false, client.clone(), stop.clone());
        let to_client = lane(front.try_clone().unwrap(), true, client.clone(), stop.clone());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rng = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 10_000) as f64 / 10_000.0
        };
        let mut rng2 = rng;
        let (st1, st2) = (stop.clone(), stop.clone());
        let c1 = client.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st1.load(Ordering::Relaxed) {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    *c1.lock().unwrap() = Some(from);
                    if rng() >= loss {
                        let _ = to_server.send((Instant::now() + delay, buf[..n].to_vec()));
                    }
                }
            }
        });
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st2.load(Ordering::Relaxed) {
                if let Ok(n) = back.recv(&mut buf) {
                    if rng2() >= loss {
                        let _ = to_client.send((Instant::now() + delay, buf[..n].to_vec()));
                    }
                }
            }
        });
        LossyLink { stop, addr: bind.to_string() }
    }
}

impl Drop for LossyLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// ffmpeg 9: `RSRS_FFMPEG9`, else the binary `imageio-ffmpeg` ships.
pub fn ffmpeg9() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(p) = std::env::var("RSRS_FFMPEG9") {
            return p;
        }
        let out = Command::new("python3")
            .args(["-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"])
            .output()
            .expect("python3");
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && Path::new(&p).exists(),
            "ffmpeg 9 is needed for the Enhanced RTMP, SRT and WebRTC tests: `pip install imageio-ffmpeg` \
             (.ci/run does), or set RSRS_FFMPEG9: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        p
    })
}

/// What `rsrs token` mints for `args`, signed with `secret`.
pub fn mint_token(secret: &str, args: &[&str]) -> String {
    let out = Command::new(BIN).arg("token").args(args).env("RSRS_TOKEN_SECRET", secret).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
