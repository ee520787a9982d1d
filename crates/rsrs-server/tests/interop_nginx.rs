//! Interop with nginx's RTMP module (Debian `nginx` + `libnginx-mod-rtmp`) as a real peer:
//! nginx pulls a stream from rsrs (nginx as an RTMP player) and pushes one to rsrs (nginx as an
//! RTMP publisher). nginx runs in the foreground on its own loopback address.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const NGINX_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// nginx in the foreground; stopped with SIGTERM so the master also stops its worker (a
/// SIGKILLed master leaves an orphaned worker holding the port).
struct Nginx(Proc);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0 .0.id().to_string()).status();
        if self.0.wait_timeout(Duration::from_secs(5)).is_none() {
            let _ = Command::new("pkill").args(["-KILL", "-P"]).arg(self.0 .0.id().to_string()).status();
        }
    }
}

fn start_nginx(name: &str, rtmp_block: &str) -> Nginx {
    assert!(
        std::path::Path::new(NGINX_MODULE).exists(),
        "nginx RTMP module missing: apt-get install nginx libnginx-mod-rtmp (.ci/run installs it)"
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("nginx-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let conf = format!(
        "load_module {NGINX_MODULE};\nuser root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log info;\n\
         events {{ worker_connections 256; }}\nrtmp {{\n{rtmp_block}\n}}\n",
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
    // nginx binds before it forks its worker; wait until the port answers.
    let addr = rtmp_block.split("listen ").nth(1).and_then(|s| s.split(';').next()).unwrap().trim().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        if let Some(st) = p.0.try_wait().unwrap() {
            panic!("nginx exited {st}: {}", p.stderr_text());
        }
        assert!(std::time::Instant::now() < deadline, "nginx did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx(p)
}

#[test]
fn nginx_rtmp_pulls_from_rsrs() {
    let s = Rsrs::start("nginx-pull", "127.0.3.1", ORIGIN_CONF);
    let _pub = publish(&s.rtmp("live/pulled"), true);
    assert!(s.wait_log("publish started", Duration::from_secs(10)));
    let _nginx = start_nginx(
        "pull",
        &format!("server {{ listen 127.0.3.2:1935; application live {{ live on; pull rtmp://{}:1935/live; }} }}", s.ip),
    );
    let (streams, packets) = probe("rtmp://127.0.3.2:1935/live/pulled", 3);
    assert_sample_stream(&streams, &packets);
    // What ffprobe got came through nginx's pull, which rsrs served as an RTMP play (nginx
    // stops pulling once its last player leaves, so check the log rather than the live API).
    assert!(s.wait_log("play started stream=/live/pulled", Duration::from_secs(1)), "{}", s.log_text());
}

#[test]
fn nginx_rtmp_pushes_to_rsrs() {
    let s = Rsrs::start("nginx-push", "127.0.3.3", ORIGIN_CONF);
    let _nginx = start_nginx(
        "push",
        &format!("server {{ listen 127.0.3.4:1935; application live {{ live on; push rtmp://{}:1935/live; }} }}", s.ip),
    );
    let _pub = publish("rtmp://127.0.3.4:1935/live/pushed", true);
    assert!(s.wait_log("publish started", Duration::from_secs(15)), "{}", s.log_text());
    for url in [s.rtmp("live/pushed"), s.http("live/pushed.flv")] {
        let (streams, packets) = probe(&url, 3);
        assert_sample_stream(&streams, &packets);
    }
}
