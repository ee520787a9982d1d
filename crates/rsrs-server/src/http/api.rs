//! The HTTP API (SRS's `/api/v1/...`): same paths, JSON envelope and field names as SRS, so
//! SRS consoles and scripts read it. Where SRS's behaviour hurts (a 302 from `/api/v1/streams`
//! to `/api/v1/streams/`), both forms answer directly.

use super::{Request, Response};
use crate::metrics::system::{Sample, StatValue};
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
        ["api", "v1", "rusages"] => envelope(server, json!({ "data": rusages(&server.system.last()) })),
        ["api", "v1", "self_proc_stats"] => envelope(server, json!({ "data": self_proc_stats(&server.system.last()) })),
        ["api", "v1", "system_proc_stats"] => {
            envelope(server, json!({ "data": system_proc_stats(&server.system.last()) }))
        }
        ["api", "v1", "meminfos"] => envelope(server, json!({ "data": meminfos(&server.system.last()) })),
        ["api", "v1", "features"] => envelope(server, json!({ "data": features() })),
        ["api", "v1", "requests"] | ["api", "v1", "tests", "requests"] => {
            envelope(server, json!({ "data": request_echo(req) }))
        }
        ["api", "v1", "tests", "errors"] => code(100),
        ["api", "v1", "tests", "redirects"] => {
            return Response::new(301, "text/plain", "Redirect to /api/v1/tests/errors")
                .header("Location", "/api/v1/tests/errors")
        }
        ["api", "v1", ..] => envelope(
            server,
            json!({ "urls": {
                "versions": "the version of server", "summaries": "the summary(pid, argv, pwd, cpu, mem) of server",
                "rusages": "the rusage of server", "self_proc_stats": "the self process stats",
                "system_proc_stats": "the system process stats", "meminfos": "the meminfo of system",
                "authors": "the license, copyright, authors and contributors", "features": "the supported features of the server",
                "requests": "the request itself, for http debug", "vhosts": "manage all vhosts or specified vhost",
                "streams": "manage all streams or specified stream", "clients": "manage all clients or specified client, default query top 10 clients",
                "raw": "raw api for srs, support CUID srs for instance the config", "clusters": "origin cluster server API" },
                "tests": { "requests": "show the request info", "errors": "always return an error 100",
                "redirects": "always redirect to /api/v1/test/errors" } }),
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
            | (_, ["api", "v1", "clusters" | "raw"] | ["api", "v1", "cluster" | "tests", _])
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
    let (recv_kbps, send_kbps) = server.rates.vhost(name);
    json!({ "id": server.vhost_id(name), "name": name, "enabled": enabled, "clients": clients.len(), "streams": streams,
            "send_bytes": bytes.send, "recv_bytes": bytes.recv, "kbps": { "recv_30s": recv_kbps, "send_30s": send_kbps },
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
            let (recv_kbps, send_kbps) = server.rates.stream(&s.id);
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
    let mut v = json!({
        "id": c.id, "vhost": server.vhost_id(&d.vhost), "stream": d.stream_id, "ip": c.ip.to_string(),
        "pageUrl": d.page_url, "swfUrl": d.swf_url, "tcUrl": d.tc_url, "url": d.stream_url, "name": d.stream,
        "type": d.kind.as_str(), "publish": d.kind.is_publish(), "alive": c.started.elapsed().as_secs_f64(),
        "send_bytes": c.counters.send_bytes.load(Ordering::Relaxed), "recv_bytes": c.counters.recv_bytes.load(Ordering::Relaxed),
        "kbps": { "recv_30s": recv, "send_30s": send },
    });
    // SRT connections also show libsrt's view of the link (rsrs's addition to SRS's fields).
    if let Some(st) = server.srt.stats(&c.id) {
        v["srt"] = json!({
            "rtt_ms": st.rtt_ms, "bandwidth_mbps": st.bandwidth_mbps, "latency_ms": st.rcv_latency_ms,
            "recv_rate_mbps": st.recv_rate_mbps, "send_rate_mbps": st.send_rate_mbps,
            "pkt_recv": st.pkt_recv, "pkt_sent": st.pkt_sent, "pkt_recv_loss": st.pkt_rcv_loss,
            "pkt_send_loss": st.pkt_snd_loss, "pkt_retrans": st.pkt_retrans, "pkt_recv_retrans": st.pkt_rcv_retrans,
            "pkt_recv_drop": st.pkt_rcv_drop, "pkt_send_drop": st.pkt_snd_drop, "pkt_recv_undecrypt": st.pkt_rcv_undecrypt,
            "recv_buffer_ms": st.rcv_buf_ms, "recv_buffer_bytes": st.rcv_buf_bytes, "send_buffer_ms": st.snd_buf_ms,
        });
    }
    Some(v)
}

fn summaries(server: &Server) -> Value {
    let now_ms = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let x = server.system.last();
    // Resident memory now (SRS reports the peak, ru_maxrss): what a dashboard wants to see.
    let rss_kb = crate::metrics::cpu::resident_bytes() / 1024;
    let mem = x.mem.unwrap_or_default();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // Safety: sysconf has no preconditions.
    let configured = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    let bytes = server.clients.byte_totals(None);
    json!({
        "ok": x.self_stat.is_some() && x.cpu.is_some() && x.mem.is_some() && x.rusage.is_some(), "now_ms": now_ms,
        "self": {
            "version": VERSION, "pid": std::process::id(), "ppid": std::os::unix::process::parent_id(),
            "argv": std::env::args().collect::<Vec<_>>().join(" "),
            "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
            "mem_kbyte": rss_kb, "mem_percent": if mem.total > 0 { rss_kb as f64 / mem.total as f64 } else { 0.0 },
            "cpu_percent": x.self_cpu,
            "srs_uptime": server.started.elapsed().as_secs(),
        },
        "system": {
            "cpu_percent": x.system_cpu, "disk_read_KBps": x.disk_read_kbps, "disk_write_KBps": x.disk_write_kbps,
            "disk_busy_percent": x.disk_busy,
            "mem_ram_kbyte": mem.total, "mem_ram_percent": mem.percent_ram(),
            "mem_swap_kbyte": mem.swap_total, "mem_swap_percent": mem.percent_swap(),
            "cpus": if configured > 0 { configured as usize } else { cpus }, "cpus_online": cpus,
            "uptime": x.uptime, "ilde_time": x.idle_time,
            "load_1m": x.load[0], "load_5m": x.load[1], "load_15m": x.load[2],
            "net_sample_time": x.time_ms, "net_recv_bytes": x.net_recv, "net_send_bytes": x.net_send,
            "net_recvi_bytes": x.net_recv_intranet, "net_sendi_bytes": x.net_send_intranet,
            "srs_sample_time": now_ms, "srs_recv_bytes": bytes.recv, "srs_send_bytes": bytes.send,
            "conn_sys": x.conns.sys, "conn_sys_et": x.conns.established, "conn_sys_tw": x.conns.time_wait,
            "conn_sys_udp": x.conns.udp, "conn_srs": server.clients.count(),
        }
    })
}

fn rusages(x: &Sample) -> Value {
    let mut m = Map::new();
    m.insert("ok".into(), json!(x.rusage.is_some()));
    m.insert("sample_time".into(), json!(x.time_ms));
    for (k, v) in x.rusage.iter().flatten() {
        m.insert((*k).into(), json!(v));
    }
    Value::Object(m)
}

fn self_proc_stats(x: &Sample) -> Value {
    let mut m = Map::new();
    m.insert("ok".into(), json!(x.self_stat.is_some()));
    m.insert("sample_time".into(), json!(x.time_ms));
    m.insert("percent".into(), json!(x.self_cpu));
    for (k, v) in x.self_stat.iter().flat_map(|s| s.fields.iter()) {
        let v = match v {
            StatValue::Text(t) => json!(t),
            // Some fields (rsslim) can be u64::MAX: keep them exact, whatever fits.
            StatValue::Number(n) => i64::try_from(*n).map(|n| json!(n)).unwrap_or_else(|_| json!(*n as u64)),
        };
        m.insert((*k).into(), v);
    }
    Value::Object(m)
}

fn system_proc_stats(x: &Sample) -> Value {
    let c = x.cpu.unwrap_or_default();
    json!({ "ok": x.cpu.is_some(), "sample_time": x.time_ms, "percent": x.system_cpu,
            "user": c.user, "nice": c.nice, "sys": c.sys, "idle": c.idle, "iowait": c.iowait, "irq": c.irq,
            "softirq": c.softirq, "steal": c.steal, "guest": c.guest })
}

fn meminfos(x: &Sample) -> Value {
    let m = x.mem.unwrap_or_default();
    json!({ "ok": x.mem.is_some(), "sample_time": x.time_ms, "percent_ram": m.percent_ram(), "percent_swap": m.percent_swap(),
            "MemActive": m.active(), "RealInUse": m.real_in_use(), "NotInUse": m.total.saturating_sub(m.real_in_use()),
            "MemTotal": m.total, "MemFree": m.free, "Buffers": m.buffers, "Cached": m.cached,
            "SwapTotal": m.swap_total, "SwapFree": m.swap_free })
}

/// SRS's feature list, true for what rsrs serves.
fn features() -> Value {
    json!({ "options": "", "options2": "", "build": env!("CARGO_PKG_VERSION"), "build2": env!("CARGO_PKG_VERSION"),
            "features": { "ssl": true, "hls": true, "hds": false, "callback": true, "api": true, "httpd": true,
                          "dvr": true, "transcode": false, "ingest": false, "stat": true, "caster": false,
                          "complex_send": true, "tcp_nodelay": true, "so_sendbuf": false, "mr": false,
                          "exporter": true, "token": true } })
}

/// The request as the server read it (for debugging a proxy in front). Credentials are left
/// out: with JSONP any page could read this answer.
fn request_echo(req: &Request) -> Value {
    let headers: Map<String, Value> = req
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("cookie"))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let uri = if req.query.is_empty() { req.path.clone() } else { format!("{}?{}", req.path, req.query) };
    let now_ms = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    json!({ "uri": uri, "path": req.path, "METHOD": req.method, "headers": headers,
            "server": { "sigature": crate::version::signature(), "version": VERSION, "time": now_ms } })
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
