//! Edge cluster (scenario S3) with real processes: origins and edges on their own loopback
//! addresses with the standard ports, players from rsrs-bench, ffprobe and ffmpeg.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn edge_conf(origins: &str) -> String {
    ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        &format!("vhost __defaultVhost__ {{\n    cluster {{ mode remote; origin {origins}; }}"),
    )
}

fn upstream_plays(origin: &Rsrs) -> usize {
    origin.api("/api/v1/clients/?count=100")["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "rtmp-play")
        .count()
}

#[test]
fn edges_merge_players_into_one_upstream_each() {
    let origin = Rsrs::start("edge-o", "127.0.9.1", ORIGIN_CONF);
    let e1 = Rsrs::start("edge-e1", "127.0.9.2", &edge_conf("127.0.9.1"));
    let e2 = Rsrs::start("edge-e2", "127.0.9.3", &edge_conf("127.0.9.1:1935"));
    let _pub = publish(&origin.rtmp("live/m"), true);
    assert!(origin.wait_log("publish started", Duration::from_secs(10)));
    let players = vec![
        Players::start(&e1.rtmp("live/m"), "rtmp", 8, 6),
        Players::start(&e1.http("live/m.flv"), "flv", 8, 6),
        Players::start(&e2.rtmp("live/m"), "rtmp", 8, 6),
        Players::start(&e2.http("live/m.flv"), "flv", 8, 6),
    ];
    // While 32 players watch through two edges, the origin serves exactly two upstreams.
    e1.wait_api("/api/v1/streams/", Duration::from_secs(10), |v| v["streams"][0]["clients"] == 16);
    e2.wait_api("/api/v1/streams/", Duration::from_secs(10), |v| v["streams"][0]["clients"] == 16);
    assert_eq!(upstream_plays(&origin), 2, "one upstream per stream per edge");
    let s = &e1.api("/api/v1/streams/")["streams"][0];
    assert_eq!(s["edge"]["mode"], "pull");
    assert_eq!(s["edge"]["upstream"], "127.0.9.1");
    assert_eq!(s["edge"]["state"], "connected");
    for p in players {
        let r = p.report();
        assert_eq!(r["kept_up"], 8, "{r}");
        assert_eq!(r["without_audio"], 0, "{r}");
        assert_eq!(r["not_starting_on_keyframe"], 0, "{r}");
    }
    // With the players gone, each edge stops its upstream shortly after.
    origin.wait_api("/api/v1/clients/", Duration::from_secs(10), |v| {
        !v["clients"].as_array().unwrap().iter().any(|c| c["type"] == "rtmp-play")
    });
    assert!(e1.wait_log("edge: pull stopped: last player left", Duration::from_secs(1)));
}

#[test]
fn publish_through_an_edge_reaches_origin_and_other_edges() {
    let origin = Rsrs::start("edgepub-o", "127.0.9.4", ORIGIN_CONF);
    let e1 = Rsrs::start("edgepub-e1", "127.0.9.5", &edge_conf("127.0.9.4"));
    let e2 = Rsrs::start("edgepub-e2", "127.0.9.6", &edge_conf("127.0.9.4"));
    let _pub = publish(&e1.rtmp("live/p"), true);
    assert!(e1.wait_log("edge: forwarding to origin", Duration::from_secs(10)), "{}", e1.log_text());
    for url in [origin.rtmp("live/p"), e2.http("live/p.flv"), e1.rtmp("live/p")] {
        let (streams, packets) = probe(&url, 2);
        assert_sample_stream(&streams, &packets);
    }
    let c = origin.api("/api/v1/clients/");
    let pubs: Vec<_> = c["clients"].as_array().unwrap().iter().filter(|c| c["publish"] == true).collect();
    assert_eq!(pubs.len(), 1, "the edge is one publisher on the origin: {c}");
}

#[test]
fn edge_players_survive_an_origin_dying() {
    let a = Rsrs::start("failover-a", "127.0.9.7", ORIGIN_CONF);
    let b = Rsrs::start("failover-b", "127.0.9.8", ORIGIN_CONF);
    let conf = edge_conf("127.0.9.7 127.0.9.8").replace(
        "vhost __defaultVhost__ {",
        "exporter { enabled on; listen 127.0.9.9:9972; }\nvhost __defaultVhost__ {",
    );
    let edge = Rsrs::start("failover-e", "127.0.9.9", &conf);
    let pub_a = publish(&a.rtmp("live/f"), true);
    assert!(a.wait_log("publish started", Duration::from_secs(10)));
    let rtmp = Players::start(&edge.rtmp("live/f"), "rtmp", 4, 14);
    let flv = Players::start(&edge.http("live/f.flv"), "flv", 4, 14);
    edge.wait_api("/api/v1/streams/", Duration::from_secs(10), |v| v["streams"][0]["clients"] == 8);
    // Players are watching via origin A; then origin A dies and the encoder republishes on B.
    std::thread::sleep(Duration::from_secs(2));
    drop(pub_a);
    drop(a);
    let _pub_b = publish(&b.rtmp("live/f"), true);
    assert!(edge.wait_log("origin=127.0.9.8", Duration::from_secs(15)), "{}", edge.log_text());
    for r in [rtmp.report(), flv.report()] {
        assert_eq!(r["connected"], 4, "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert_eq!(r["disconnected"], 0, "no player is cut off: {r}");
        // The switch costs a short stall, then media flows from B: well over half the run.
        let media = r["media_secs"].as_f64().unwrap();
        assert!(media >= 4.0 * 8.0, "players kept receiving: {media} media seconds in {r}");
        assert!(r["stalls"].as_u64().unwrap() <= 4, "at most one stall per player: {r}");
    }
    // The failover as an operator's dashboard sees it: the upstream broke, the stream reconnected
    // and is connected again.
    let value = |name: &str, labels: &[&str]| metric_value("127.0.9.9:9972", name, labels);
    let stream = ["stream=\"f\"", "mode=\"pull\""];
    assert!(value("rsrs_stream_edge_reconnects_total", &stream) >= 1.0);
    assert_eq!(value("rsrs_stream_edge_upstream_connected", &stream), 1.0);
    assert_eq!(value("rsrs_edge_streams", &["mode=\"pull\"", "state=\"connected\""]), 1.0);
    assert!(value("rsrs_edge_upstream_connects_total", &["mode=\"pull\""]) >= 2.0);
}

#[test]
fn no_origin_means_a_clear_error_in_bounded_time() {
    // Nothing listens on this origin address.
    let conf = edge_conf("127.0.9.11").replace(
        "vhost __defaultVhost__ {",
        "exporter { enabled on; listen 127.0.9.10:9972; }\nvhost __defaultVhost__ {",
    );
    let edge = Rsrs::start("noorigin-e", "127.0.9.10", &conf);
    // An HTTP-FLV player and an RTMP player wait for the same missing stream, concurrently.
    let web = format!("{}:8080", edge.ip);
    let flv = std::thread::spawn(move || http_request(&web, "GET", "/live/nothing.flv", &[]));
    let out =
        Command::new("timeout").args(["40", "ffprobe", "-v", "error"]).arg(edge.rtmp("live/nothing")).output().unwrap();
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(124), "ffprobe must be answered, not left waiting");
    assert!(edge.wait_log("edge: giving up", Duration::from_secs(1)), "{}", edge.log_text());
    let (status, _, body) = flv.join().unwrap();
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("no origin delivered the stream"));
    // Nothing leaks: the stream is gone from the API.
    edge.wait_api("/api/v1/streams/", Duration::from_secs(5), |v| v["streams"].as_array().unwrap().is_empty());
    // Every attempt on the dead origin is a failed upstream connection.
    let pull = ["mode=\"pull\""];
    let failures = metric_value("127.0.9.10:9972", "rsrs_edge_upstream_failures_total", &pull);
    assert!(failures >= 2.0, "{failures}");
    assert_eq!(failures, metric_value("127.0.9.10:9972", "rsrs_edge_upstream_connects_total", &pull));
}

#[test]
fn rsrs_edge_in_front_of_nginx_rtmp_origin() {
    let _nginx = start_nginx(
        "edge-origin",
        "rtmp { server { listen 127.0.9.12:1935; application live { live on; } } }",
        "127.0.9.12:1935",
    );
    let edge = Rsrs::start("nginx-edge", "127.0.9.13", &edge_conf("127.0.9.12"));
    let _pub = publish("rtmp://127.0.9.12:1935/live/n", true);
    std::thread::sleep(Duration::from_millis(1500)); // nginx has no API to wait on
    for url in [edge.rtmp("live/n"), edge.http("live/n.flv")] {
        let (streams, packets) = probe(&url, 2);
        assert_sample_stream(&streams, &packets);
    }
}

#[test]
fn token_traverse_asks_the_origin_before_admitting() {
    let origin = Rsrs::start("tt-o", "127.0.9.14", ORIGIN_CONF);
    let traverse = |origins: &str| edge_conf(origins).replace("mode remote;", "mode remote; token_traverse on;");
    let edge = Rsrs::start("tt-e", "127.0.9.15", &traverse("127.0.9.14"));
    let _pub = publish(&origin.rtmp("live/t"), true);
    assert!(origin.wait_log("publish started", Duration::from_secs(10)));
    let (streams, packets) = probe(&edge.rtmp("live/t?token=abc"), 2);
    assert_sample_stream(&streams, &packets);
    // The origin saw the client's own connect (the edge's tcUrl, as the client sent it)...
    assert!(
        origin.wait_log("connected tc_url=rtmp://127.0.9.15:1935/live", Duration::from_secs(2)),
        "{}",
        origin.log_text()
    );
    // ...and the edge's pull, which names the origin (as the publisher's connect does: two).
    assert!(
        origin.wait_log_count("connected tc_url=rtmp://127.0.9.14:1935/live", 2, Duration::from_secs(2)),
        "{}",
        origin.log_text()
    );
    assert_eq!(origin.count_log("closed by peer: early eof"), 0, "no stray probe connections");

    let lonely = Rsrs::start("tt-bad", "127.0.9.16", &traverse("127.0.9.17"));
    let out =
        Command::new("timeout").args(["20", "ffprobe", "-v", "error"]).arg(lonely.rtmp("live/t")).output().unwrap();
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(124), "refused at once, not left waiting");
    assert!(
        lonely.wait_log("connect refused: token_traverse: no origin reachable", Duration::from_secs(2)),
        "{}",
        lonely.log_text()
    );
}
