//! Origin cluster (`cluster { origin_cluster on; coworkers HOST:PORT ...; }`).
//!
//! An origin asked to play a stream it does not have asks its coworkers' HTTP API, SRS's way
//! (`POST /api/v1/clusters?vhost=&ip=&app=&stream=&coworker=`), and answers the player with
//! SRS's RTMP 302 redirect to the origin that has it; edges (rsrs's and SRS's) follow it.
//!
//! Beyond SRS: a coworker entry may name a DNS name with many addresses (a Kubernetes headless
//! Service such as `socs:1985`): it is resolved on every use and every address is a peer, so
//! scaling the StatefulSet needs no config edit. A publish is refused when a coworker already
//! has the stream, and a race between two origins is settled deterministically (the origin with
//! the greater server id yields). Any origin answers for the whole cluster at
//! `/api/v1/cluster/streams` and `/api/v1/cluster/clients`.

use crate::http::client;
use crate::hub::StreamKey;
use crate::server::Server;
use rsrs_config::Vhost;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How long one coworker may take to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a stream is published, as a coworker reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub ip: String,
    pub port: u16,
    pub api: String,
    pub server_id: String,
}

/// Percent-encodes a query value (names may hold `&`, `?`, `#` or spaces).
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a player of a stream is served from, on an origin of an origin cluster.
#[derive(Debug)]
pub enum PlayAt {
    /// Here: the stream is published here, or the vhost is not a cluster origin.
    Here,
    /// Another origin of the cluster has it: send the player there.
    Peer(Found),
    /// No origin of the cluster has it (a cluster origin does not wait for a future publisher).
    Nowhere,
}

/// The one decision, for every protocol, of where a play on this server is served from.
pub async fn locate_play(server: &Server, vhost: &Vhost, key: &StreamKey, client_host: &str) -> PlayAt {
    let cluster = &vhost.cluster;
    let here = server.hub.get(key).is_some_and(|s| s.publisher().is_some());
    if !cluster.origin_cluster || cluster.edge || here {
        return PlayAt::Here;
    }
    match discover(server, vhost, key, client_host).await {
        Some(found) => PlayAt::Peer(found),
        None => PlayAt::Nowhere,
    }
}

/// Every peer address the coworker entries name, ourselves excluded.
pub async fn peers(server: &Server, vhost: &Vhost) -> Vec<(String, SocketAddr)> {
    let me = server.config().http_api.listen.0;
    let mut out = Vec::new();
    for entry in &vhost.cluster.coworkers {
        match client::resolve_all(entry).await {
            Ok(addrs) => {
                for a in addrs {
                    let is_me = a == me || (me.ip().is_unspecified() && a.port() == me.port() && a.ip().is_loopback());
                    if !is_me && !out.iter().any(|(_, x)| *x == a) {
                        out.push((entry.clone(), a));
                    }
                }
            }
            Err(e) => warn!("origin cluster: {e}"),
        }
    }
    out
}

/// Asks every peer where `key` is published; the first that has it wins.
pub async fn discover(server: &Server, vhost: &Vhost, key: &StreamKey, client_host: &str) -> Option<Found> {
    for (entry, addr) in peers(server, vhost).await {
        let path = format!(
            "/api/v1/clusters?vhost={}&ip={}&app={}&stream={}&coworker={}",
            encode(&key.vhost),
            encode(client_host),
            encode(&key.app),
            encode(&key.stream),
            addr
        );
        match client::request(server.hooks.http(), addr, &entry, "POST", &path, PEER_TIMEOUT).await {
            Ok((200 | 201, body)) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let o = &v["data"]["origin"];
                if v["code"] == 0 && o.is_object() {
                    let ip = o["ip"].as_str().unwrap_or("").to_string();
                    let port = o["port"].as_u64().unwrap_or(0) as u16;
                    // Behind a headless Service our own address is among the peers: skip ourselves.
                    let server_id = o["server_id"].as_str().unwrap_or("");
                    if !ip.is_empty() && port != 0 && server_id != server.server_id {
                        return Some(Found {
                            ip,
                            port,
                            api: o["api"].as_str().unwrap_or("").to_string(),
                            server_id: o["server_id"].as_str().unwrap_or("").to_string(),
                        });
                    }
                }
            }
            Ok((status, _)) => warn!("origin cluster: coworker {addr} answered HTTP {status}"),
            Err(e) => warn!("origin cluster: coworker {addr}: {e}"),
        }
    }
    None
}

/// The `/api/v1/clusters` answer: where this server publishes the stream, if it does.
pub fn clusters_answer(server: &Server, q: &dyn Fn(&str) -> Option<String>) -> Value {
    let cfg = server.config();
    let vhost_q = q("vhost").unwrap_or_default();
    let (app, stream) = (q("app").unwrap_or_default(), q("stream").unwrap_or_default());
    let query = json!({ "ip": q("ip").unwrap_or_default(), "vhost": vhost_q, "app": app, "stream": stream });
    let vhost = cfg.vhost(&vhost_q).map(|v| v.name.clone()).unwrap_or(vhost_q);
    let key = StreamKey { vhost: vhost.clone(), app, stream };
    let published = server.hub.get(&key).is_some_and(|s| s.published_here());
    let origin = if published {
        let rtmp = cfg.listen.first().map(|e| e.0);
        let port = rtmp.map(|a| a.port()).unwrap_or(1935);
        // The first listen host unless it is a wildcard or 127.0.0.1; then how the caller
        // reached us (the coworker parameter), which is NAT and Kubernetes friendly.
        let ip = match rtmp.map(|a| a.ip()) {
            Some(ip) if !ip.is_unspecified() && ip.to_string() != "127.0.0.1" => ip.to_string(),
            _ => q("coworker")
                .and_then(|c| c.rsplit_once(':').map(|(h, _)| h.to_string()))
                .unwrap_or_else(|| "127.0.0.1".into()),
        };
        let api_port = cfg.http_api.listen.0.port();
        let api = format!("{ip}:{api_port}");
        json!({ "ip": ip, "port": port, "vhost": vhost, "api": api, "routers": [api], "server_id": server.server_id })
    } else {
        Value::Null
    };
    json!({ "code": 0, "data": { "query": query, "origin": origin } })
}

/// SRS's RTMP 302: onStatus error `NetConnection.Connect.Rejected` with `ex.redirect2`.
pub fn redirect_message(found: &Found, key: &StreamKey, param: &str) -> rsrs_codec::rtmp::Message {
    use rsrs_codec::amf0::Amf0Value;
    let mut full = format!("rtmp://{}:{}/{}/{}{}", found.ip, found.port, key.app, key.stream, param);
    if key.vhost != rsrs_config::DEFAULT_VHOST {
        full.push(if full.contains('?') { '&' } else { '?' });
        full.push_str(&format!("vhost={}", key.vhost));
    }
    let tc_url = format!("rtmp://{}:{}/{}", found.ip, found.port, key.app);
    rsrs_codec::rtmp::message::on_status(
        0,
        "error",
        "NetConnection.Connect.Rejected",
        "RTMP 302 Redirect",
        vec![(
            "ex".into(),
            Amf0Value::object([
                ("code", Amf0Value::Number(302.0)),
                ("redirect", Amf0Value::String(tc_url)),
                ("redirect2", Amf0Value::String(full)),
            ]),
        )],
    )
}

/// After a publish is accepted, looks once more for the same stream on a peer (two origins may
/// have accepted it at the same moment). The origin with the greater server id yields.
pub fn settle_publish_race(server: &Arc<Server>, vhost: &Vhost, key: &StreamKey, client_id: &str) {
    let (server, vhost, key, cid) = (server.clone(), vhost.clone(), key.clone(), client_id.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(other) = discover(&server, &vhost, &key, "").await {
            if !other.server_id.is_empty() && other.server_id < server.server_id {
                warn!(stream = %key.url(), "origin cluster: also published on {} (server {}); this origin yields", other.api, other.server_id);
                if let Some(c) = server.clients.get(&cid) {
                    c.kill.cancel();
                }
            } else {
                info!(stream = %key.url(), "origin cluster: also published on {}; that origin yields", other.api);
            }
        }
    });
}

/// `/api/v1/cluster/{streams,clients}`: this origin's list plus every peer's, each entry marked
/// with the origin that holds it, and each peer's status.
pub async fn cluster_view(server: &Arc<Server>, what: &str, local: Vec<Value>) -> Value {
    let cfg = server.config();
    let vhost = cfg.vhosts.iter().find(|v| v.cluster.origin_cluster).cloned();
    let me = cfg.http_api.listen.to_string();
    let mut items: Vec<Value> = local
        .into_iter()
        .map(|mut v| {
            v["origin"] = json!(me);
            v
        })
        .collect();
    let mut peer_status = vec![json!({ "api": me, "ok": true, "self": true })];
    if let Some(vhost) = vhost {
        let peers = peers(server, &vhost).await;
        let fetches = peers.iter().map(|(entry, addr)| {
            let path = format!("/api/v1/{what}/?count=100000");
            let (entry, addr, http) = (entry.clone(), *addr, server.hooks.http().clone());
            async move { (addr, client::request(&http, addr, &entry, "GET", &path, PEER_TIMEOUT).await) }
        });
        for (addr, r) in futures_join_all(fetches).await {
            // The peer's error, as the API shows it.
            let answer = r.map_err(|e| e.to_string()).and_then(|(st, body)| {
                if st != 200 {
                    return Err(format!("HTTP {st}"));
                }
                serde_json::from_slice::<Value>(&body).map_err(|e| format!("bad JSON: {e}"))
            });
            match answer {
                Ok(v) if v["server"] == json!(server.server_id) => {
                    // Ourselves, reached through the Service: already listed.
                    peer_status.push(json!({ "api": addr.to_string(), "ok": true, "self": true }));
                }
                Ok(v) => {
                    for mut it in v[what].as_array().cloned().unwrap_or_default() {
                        it["origin"] = json!(addr.to_string());
                        items.push(it);
                    }
                    peer_status.push(json!({ "api": addr.to_string(), "ok": true }));
                }
                Err(e) => peer_status.push(json!({ "api": addr.to_string(), "ok": false, "error": e })),
            }
        }
    }
    if what == "streams" {
        // A stream is listed once: where it is published.
        items.retain(|s| s["publish"]["active"] == true);
    }
    json!({ "code": 0, "server": server.server_id, what: items, "peers": peer_status })
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsrs_codec::amf0;

    #[test]
    fn redirect_is_srs_shaped() {
        let f = Found { ip: "10.0.0.3".into(), port: 1935, api: "10.0.0.3:1985".into(), server_id: "vid-x".into() };
        let k = StreamKey { vhost: "__defaultVhost__".into(), app: "live".into(), stream: "s".into() };
        let m = redirect_message(&f, &k, "?token=1");
        assert_eq!((m.csid, m.stream_id), (5, 0));
        let v = amf0::decode_all(&m.payload).unwrap();
        assert_eq!(v[0].as_str(), Some("onStatus"));
        let info = &v[3];
        assert_eq!(info.get("level").and_then(|x| x.as_str()), Some("error"));
        assert_eq!(info.get("code").and_then(|x| x.as_str()), Some("NetConnection.Connect.Rejected"));
        assert_eq!(info.get("description").and_then(|x| x.as_str()), Some("RTMP 302 Redirect"));
        let ex = info.get("ex").unwrap();
        assert_eq!(ex.get("code").and_then(|x| x.as_number()), Some(302.0));
        assert_eq!(ex.get("redirect").and_then(|x| x.as_str()), Some("rtmp://10.0.0.3:1935/live"));
        assert_eq!(ex.get("redirect2").and_then(|x| x.as_str()), Some("rtmp://10.0.0.3:1935/live/s?token=1"));
    }
}
