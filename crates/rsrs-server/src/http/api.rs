//! The HTTP API (SRS's `/api/v1/...`): same paths, JSON envelope and field names as SRS, so
//! SRS consoles and scripts read it. Where SRS's behaviour hurts (a 302 from `/api/v1/streams`
//! to `/api/v1/streams/`), both forms answer directly.

use super::{Request, Response};
use crate::server::Server;
use crate::stats::Client;
use crate::version::VERSION;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// SRS error codes the API returns.
pub const ERROR_RTMP_VHOST_NOT_FOUND: i64 = 2014;
pub const ERROR_RTMP_STREAM_NOT_FOUND: i64 = 2048;
pub const ERROR_RTMP_CLIENT_NOT_FOUND: i64 = 2049;
pub const ERROR_HTTP_JSONP: i64 = 4058;

fn envelope(server: &Server, extra: Value) -> Value {
    let mut m = Map::new();
    m.insert("code".into(), json!(0));
    m.insert("server".into(), json!(server.server_id));
    m.insert("service".into(), json!(server.service_id));
    m.insert("pid".into(), json!(std::process::id().to_string()));
    if let Value::Object(e) = extra {
        m.extend(e);
    }
    Value::Object(m)
}

fn code(c: i64) -> Value {
    json!({ "code": c })
}

pub async fn handle(server: &Arc<Server>, req: &Request) -> Response {
    let cfg = server.config();
    if let Some((user, pass)) = &cfg.http_api.auth {
        if req.path.contains("/api/") && !basic_auth_ok(req, user, pass) {
            return Response::new(401, "text/plain", "").header("WWW-Authenticate", "Basic realm=\"rsrs\"");
        }
    }
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if !method_allowed(&req.method, &segs) {
        return Response::text(405, "Method Not Allowed");
    }
    let body = match segs.as_slice() {
        [] => envelope(server, json!({ "urls": { "api": "the api root" } })),
        ["api"] => envelope(server, json!({ "urls": { "v1": "the api version 1.0" } })),
        ["api", "v1", "versions"] => {
            let mut p = VERSION.split('.').map(|x| x.parse::<u64>().unwrap_or(0));
            envelope(
                server,
                json!({ "data": { "major": p.next().unwrap_or(0), "minor": p.next().unwrap_or(0), "revision": p.next().unwrap_or(0), "version": VERSION } }),
            )
        }
        ["api", "v1", "summaries"] => envelope(server, json!({ "data": summaries(server) })),
        ["api", "v1", "authors"] => {
            envelope(server, json!({ "data": { "license": "MIT", "contributors": "rsrs developers" } }))
        }
        ["api", "v1", "vhosts"] => {
            let list: Vec<Value> = cfg.vhosts.iter().map(|v| vhost_json(server, v)).collect();
            envelope(server, json!({ "vhosts": list }))
        }
        ["api", "v1", "vhosts", id] => match cfg.vhosts.iter().find(|v| server.vhost_id(&v.name) == *id) {
            Some(v) => envelope(server, json!({ "vhost": vhost_json(server, v) })),
            None => code(ERROR_RTMP_VHOST_NOT_FOUND),
        },
        ["api", "v1", "streams"] => {
            let (start, count) = paging(req);
            let list: Vec<Value> = streams(server).into_iter().skip(start).take(count).collect();
            envelope(server, json!({ "streams": list }))
        }
        ["api", "v1", "streams", id] => match streams(server).into_iter().find(|s| s["id"] == *id) {
            Some(s) => envelope(server, json!({ "stream": s })),
            None => code(ERROR_RTMP_STREAM_NOT_FOUND),
        },
        ["api", "v1", "clients"] => {
            let (start, count) = paging(req);
            let list: Vec<Value> =
                server.clients.all().iter().filter_map(|c| client_json(server, c)).skip(start).take(count).collect();
            envelope(server, json!({ "clients": list }))
        }
        ["api", "v1", "clients", id] => match server.clients.get(id) {
            None => code(ERROR_RTMP_CLIENT_NOT_FOUND),
            Some(c) if req.method == "DELETE" => {
                tracing::info!(client = %c.id, "kicked through the API");
                c.kill.cancel();
                envelope(server, json!({}))
            }
            Some(c) => match client_json(server, &c) {
                Some(j) => envelope(server, json!({ "client": j })),
                None => code(ERROR_RTMP_CLIENT_NOT_FOUND),
            },
        },
        // Origin-cluster discovery, SRS's call and answer (any method).
        ["api", "v1", "clusters"] => crate::cluster::clusters_answer(server, &|k| req.query_param(k)),
        // The whole cluster from any origin (beyond SRS).
        ["api", "v1", "cluster", what @ ("streams" | "clients")] => {
            let local = if *what == "streams" {
                streams(server)
            } else {
                server.clients.all().iter().filter_map(|c| client_json(server, c)).collect()
            };
            crate::cluster::cluster_view(server, what, local).await
        }
        ["api", "v1", "raw"] => match req.query_param("rpc").as_deref() {
            Some("raw") => json!({ "code": 0, "http_api": {
                "enabled": cfg.http_api.enabled, "listen": cfg.http_api.listen.to_string(), "crossdomain": cfg.http_api.crossdomain,
                "raw_api": { "enabled": cfg.http_api.raw_api, "allow_reload": cfg.http_api.allow_reload, "allow_query": false, "allow_update": false } } }),
            _ if !cfg.http_api.raw_api => code(1061),
            _ => code(1060),
        },
        ["api", "v1", ..] => envelope(
            server,
            json!({ "urls": {
                "versions": "the version of server", "summaries": "the summary(pid, argv, pwd, cpu, mem) of server",
                "authors": "the license, copyright, authors and contributors", "vhosts": "manage all vhosts or specified vhost",
                "streams": "manage all streams or specified stream", "clients": "manage all clients or specified client, default query top 10 clients",
                "raw": "raw api for srs, support CUID srs for instance the config" } }),
        ),
        _ => return Response::text(404, "Not Found"),
    };
    if let Some(cb) = req.query_param("callback") {
        if cb.is_empty() || !cb.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$') {
            return Response::json(&code(ERROR_HTTP_JSONP));
        }
        return Response::new(200, "text/javascript", format!("{cb}({body})"));
    }
    Response::json(&body)
}

/// Reads answer GET and HEAD; a client may also be kicked with DELETE; discovery, raw and the
/// cluster views take any method (as SRS). Anything else, such as `DELETE /api/v1/clients/`
/// with no id, is refused rather than answered as a read.
fn method_allowed(method: &str, segs: &[&str]) -> bool {
    matches!(
        (method, segs),
        ("GET" | "HEAD", _)
            | ("DELETE", ["api", "v1", "clients", _])
            | (_, ["api", "v1", "clusters" | "raw"] | ["api", "v1", "cluster", _])
    )
}

/// SRS paging: `start` from 0, `count` at least 10 (default 10).
fn paging(req: &Request) -> (usize, usize) {
    let start = req.query_param("start").and_then(|s| s.parse().ok()).unwrap_or(0);
    let count = req.query_param("count").and_then(|s| s.parse().ok()).unwrap_or(10usize).max(10);
    (start, count)
}

/// `Authorization: Basic` decoding to exactly `user:pass`, compared in constant time.
fn basic_auth_ok(req: &Request, user: &str, pass: &str) -> bool {
    use base64::Engine;
    let Some(b64) = req.header("authorization").and_then(|h| h.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    crate::access::constant_time_eq(&given, format!("{user}:{pass}").as_bytes())
}

fn vhost_json(server: &Server, v: &rsrs_config::Vhost) -> Value {
    let (name, enabled) = (v.name.as_str(), v.enabled);
    let clients: Vec<_> =
        server.clients.all().into_iter().filter(|c| c.details().is_some_and(|d| d.vhost == name)).collect();
    let streams = server.hub.all().into_iter().filter(|s| s.key.vhost == name).count();
    // Cumulative, as SRS's: clients that left still count.
    let bytes = server.clients.byte_totals(Some(name));
    json!({ "id": server.vhost_id(name), "name": name, "enabled": enabled, "clients": clients.len(), "streams": streams,
            "send_bytes": bytes.send, "recv_bytes": bytes.recv, "kbps": { "recv_30s": 0, "send_30s": 0 },
            "hls": if v.hls.enabled { json!({ "enabled": true, "fragment": v.hls.fragment }) } else { json!({ "enabled": false }) } })
}

fn streams(server: &Server) -> Vec<Value> {
    let clients = server.clients.all();
    let now_ms = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    server
        .hub
        .all()
        .into_iter()
        .filter_map(|s| {
            let publisher = s.publisher();
            // Count real clients (players and the publisher), not internal HLS/DVR writers.
            let clients_of = clients.iter().filter(|c| c.details().is_some_and(|d| d.stream_id == s.id)).count();
            if publisher.is_none() && clients_of == 0 {
                return None;
            }
            let (video, audio) = s.codec_info();
            let (mut recv_kbps, mut send_kbps) = (0, 0);
            for c in clients.iter().filter(|c| c.details().is_some_and(|d| d.stream_id == s.id)) {
                let (r, w) = c.kbps();
                recv_kbps += r;
                send_kbps += w;
            }
            let mut publish = json!({ "active": publisher.is_some() });
            if let Some(p) = &publisher {
                publish["cid"] = json!(p);
            }
            let edge = server.edges.get(&s.key).map(|e| {
                json!({ "mode": e.mode.as_str(), "upstream": *e.upstream.lock().unwrap_or_else(|p| p.into_inner()),
                        "state": e.state.lock().unwrap_or_else(|p| p.into_inner()).as_str() })
            });
            Some(json!({
                "id": s.id, "name": s.key.stream, "edge": edge, "vhost": server.vhost_id(&s.key.vhost), "app": s.key.app,
                "tcUrl": s.publisher_tc_url(), "url": s.key.url(), "live_ms": now_ms,
                "clients": clients_of,
                "frames": s.video_frames.load(Ordering::Relaxed),
                "send_bytes": s.send_bytes.load(Ordering::Relaxed), "recv_bytes": s.recv_bytes.load(Ordering::Relaxed),
                "kbps": { "recv_30s": recv_kbps, "send_30s": send_kbps },
                "publish": publish,
                "video": video.map(|v| json!({ "codec": v.codec, "profile": v.profile, "level": v.level, "width": v.width, "height": v.height })),
                "audio": audio.map(|a| json!({ "codec": a.codec, "sample_rate": a.sample_rate, "channel": a.channels, "profile": a.profile })),
            }))
        })
        .collect()
}

fn client_json(server: &Server, c: &Client) -> Option<Value> {
    let d = c.details()?;
    let (recv, send) = c.kbps();
    Some(json!({
        "id": c.id, "vhost": server.vhost_id(&d.vhost), "stream": d.stream_id, "ip": c.ip.to_string(),
        "pageUrl": d.page_url, "swfUrl": d.swf_url, "tcUrl": d.tc_url, "url": d.stream_url, "name": d.stream,
        "type": d.kind.as_str(), "publish": d.kind.is_publish(), "alive": c.started.elapsed().as_secs_f64(),
        "send_bytes": c.counters.send_bytes.load(Ordering::Relaxed), "recv_bytes": c.counters.recv_bytes.load(Ordering::Relaxed),
        "kbps": { "recv_30s": recv, "send_30s": send },
    }))
}

fn summaries(server: &Server) -> Value {
    let now_ms = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |text: &str, key: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let rss_kb = field(&status, "VmRSS:");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total_kb = field(&meminfo, "MemTotal:").max(1);
    let avail_kb = field(&meminfo, "MemAvailable:");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let loads: Vec<f64> = load.split_whitespace().take(3).map(|x| x.parse().unwrap_or(0.0)).collect();
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let bytes = server.clients.byte_totals(None);
    let (send, recv) = (bytes.send, bytes.recv);
    json!({
        "ok": true, "now_ms": now_ms,
        "self": {
            "version": VERSION, "pid": std::process::id(), "ppid": std::os::unix::process::parent_id(),
            "argv": std::env::args().collect::<Vec<_>>().join(" "),
            "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
            "mem_kbyte": rss_kb, "mem_percent": rss_kb as f64 / total_kb as f64, "cpu_percent": 0.0,
            "srs_uptime": server.started.elapsed().as_secs(),
        },
        "system": {
            "cpu_percent": 0.0, "disk_read_KBps": 0, "disk_write_KBps": 0, "disk_busy_percent": 0.0,
            "mem_ram_kbyte": total_kb, "mem_ram_percent": 1.0 - avail_kb as f64 / total_kb as f64,
            "mem_swap_kbyte": 0, "mem_swap_percent": 0.0, "cpus": cpus, "cpus_online": cpus,
            "uptime": uptime, "ilde_time": 0.0,
            "load_1m": loads.first().copied().unwrap_or(0.0), "load_5m": loads.get(1).copied().unwrap_or(0.0), "load_15m": loads.get(2).copied().unwrap_or(0.0),
            "net_sample_time": now_ms, "net_recv_bytes": 0, "net_send_bytes": 0, "net_recvi_bytes": 0, "net_sendi_bytes": 0,
            "srs_sample_time": now_ms, "srs_recv_bytes": recv, "srs_send_bytes": send,
            "conn_sys": 0, "conn_sys_et": 0, "conn_sys_tw": 0, "conn_sys_udp": 0, "conn_srs": server.clients.count(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert!(method_allowed("GET", &["api", "v1", "clients"]));
        assert!(method_allowed("DELETE", &["api", "v1", "clients", "x1"]));
        assert!(!method_allowed("DELETE", &["api", "v1", "clients"]), "no id: not a silent list");
        assert!(!method_allowed("POST", &["api", "v1", "streams"]));
        assert!(!method_allowed("DELETE", &["api", "v1", "streams", "vid-1"]));
        assert!(method_allowed("POST", &["api", "v1", "clusters"]));
    }
}
