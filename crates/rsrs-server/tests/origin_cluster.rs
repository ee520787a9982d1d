//! Origin cluster (scenario S4) with real processes: three origins and two edges on their own
//! loopback addresses; discovery through SRS's `/api/v1/clusters`, RTMP 302 redirects followed
//! by edges, unique publishing, the cluster API, and peers found through one DNS name with
//! several addresses (the real resolver path: /etc/hosts, as a headless Service would give).

mod common;

use common::*;
use std::time::Duration;

fn origin_conf(coworkers: &str) -> String {
    ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        &format!("vhost __defaultVhost__ {{\n    cluster {{ origin_cluster on; coworkers {coworkers}; }}"),
    )
}

fn edge_conf(origins: &str) -> String {
    ORIGIN_CONF.replace(
        "vhost __defaultVhost__ {",
        &format!("vhost __defaultVhost__ {{\n    cluster {{ mode remote; origin {origins}; }}"),
    )
}

#[test]
fn streams_on_any_origin_play_through_every_edge() {
    let coworkers = "127.0.12.1:1985 127.0.12.2:1985 127.0.12.3:1985";
    let o: Vec<Rsrs> = (1..=3)
        .map(|i| {
            let ip = format!("127.0.12.{i}");
            let conf = origin_conf(coworkers).replace(
                "vhost __defaultVhost__ {",
                &format!("exporter {{ enabled on; listen {ip}:9972; }}\nvhost __defaultVhost__ {{"),
            );
            Rsrs::start(&format!("oc-o{i}"), &ip, &conf)
        })
        .collect();
    let origins = "127.0.12.1 127.0.12.2 127.0.12.3";
    let e1 = Rsrs::start("oc-e1", "127.0.12.4", &edge_conf(origins));
    let e2 = Rsrs::start("oc-e2", "127.0.12.5", &edge_conf(origins));
    // One stream straight to origin 2, one to origin 3, one through an edge (which spreads
    // publishers over the origins by stream name).
    let _p1 = publish(&o[1].rtmp("live/a"), true);
    let _p2 = publish(&o[2].rtmp("live/b"), true);
    let _p3 = publish(&e1.rtmp("live/c"), true);
    assert!(o[1].wait_log("publish started stream=/live/a", Duration::from_secs(10)));
    assert!(o[2].wait_log("publish started stream=/live/b", Duration::from_secs(10)));
    assert!(e1.wait_log("edge: forwarding to origin", Duration::from_secs(10)), "{}", e1.log_text());
    let c_origin = o
        .iter()
        .find(|x| x.wait_log("publish started stream=/live/c", Duration::from_millis(500)))
        .map(|x| format!("{}:1985", x.ip))
        .expect("the edge's publisher landed on an origin");

    // Every stream from every edge, over RTMP and HTTP-FLV; edges ask origin 1 first, which
    // redirects them for the streams it does not have.
    for e in [&e1, &e2] {
        for s in ["a", "b", "c"] {
            let (streams, packets) = probe(&e.rtmp(&format!("live/{s}")), 2);
            assert_sample_stream(&streams, &packets);
            let (streams, packets) = probe(&e.http(&format!("live/{s}.flv")), 2);
            assert_sample_stream(&streams, &packets);
        }
    }
    // HTTP-FLV straight to an origin that lacks the stream: a 302 to the origin that has it.
    let (streams, packets) = probe(&o[0].http("live/a.flv"), 2);
    assert_sample_stream(&streams, &packets);
    assert!(
        o[0].log_text().contains("redirecting the HTTP-FLV player to http://127.0.12.2:8080/live/a.flv"),
        "{}",
        o[0].log_text()
    );
    let (status, _, _) = http_request(&format!("{}:8080", o[0].ip), "GET", "/live/nowhere.flv", &[]);
    assert_eq!(status, 404, "a stream no origin has");
    assert!(
        o[0].log_text().contains("origin cluster: redirecting the player to 127.0.12.2:1935"),
        "{}",
        o[0].log_text()
    );
    assert!(e2.log_text().contains("redirected to rtmp://127.0.12.3:1935/live/b"), "{}", e2.log_text());
    // Origin 1 counted the players it sent elsewhere (edges' pulls and the HTTP-FLV player);
    // the exporter's series are on the API port too.
    let (status, _, body) = http_request("127.0.12.1:1985", "GET", "/metrics", &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let redirects: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rsrs_cluster_redirects_total ")?.parse().ok())
        .unwrap_or_else(|| panic!("no rsrs_cluster_redirects_total in\n{text}"));
    assert!(redirects >= 3.0, "{redirects}");

    // SRS's discovery call answers for its own streams only.
    let (st, _, body) = http_request(
        "127.0.12.2:1985",
        "POST",
        "/api/v1/clusters?vhost=__defaultVhost__&ip=x&app=live&stream=a&coworker=127.0.12.2:1985",
        &[],
    );
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 0);
    assert_eq!(v["data"]["origin"]["ip"], "127.0.12.2");
    assert_eq!(v["data"]["origin"]["port"], 1935);
    assert_eq!(v["data"]["query"]["stream"], "a");
    assert!(o[0].api("/api/v1/clusters?vhost=__defaultVhost__&app=live&stream=a")["data"]["origin"].is_null());

    // A second publisher of a live stream, on another origin, is refused.
    let mut dup = publish(&o[0].rtmp("live/a"), true);
    let st = dup.wait_timeout(Duration::from_secs(15)).expect("duplicate publish refused");
    assert!(!st.success());
    assert!(dup.stderr_text().contains("already published on origin 127.0.12.2:1985"));

    // Any origin answers for the cluster: every stream once, with its origin.
    for origin in &o {
        let v = origin.api("/api/v1/cluster/streams");
        let mut seen: Vec<(String, String)> = v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_string(), s["origin"].as_str().unwrap().to_string()))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("a".into(), "127.0.12.2:1985".into()),
                ("b".into(), "127.0.12.3:1985".into()),
                ("c".into(), c_origin.clone())
            ],
            "{v}"
        );
        assert!(v["peers"].as_array().unwrap().iter().all(|p| p["ok"] == true), "{v}");
    }
}

/// Adds lines to /etc/hosts for the test and takes them out again, whatever happens.
struct HostsEntries(String);

impl HostsEntries {
    fn add(&mut self, line: &str) {
        let mut hosts = std::fs::read_to_string("/etc/hosts").expect("read /etc/hosts");
        if !hosts.ends_with('\n') {
            hosts.push('\n');
        }
        hosts.push_str(&format!("{line} # {}\n", self.0));
        std::fs::write("/etc/hosts", hosts).expect("the DNS test needs a writable /etc/hosts (root in CI)");
    }
}

impl Drop for HostsEntries {
    fn drop(&mut self) {
        if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
            let kept: String = hosts.lines().filter(|l| !l.ends_with(&self.0)).map(|l| format!("{l}\n")).collect();
            let _ = std::fs::write("/etc/hosts", kept);
        }
    }
}

#[test]
fn peers_are_found_through_one_name_that_grows() {
    let name = "socs.rsrs-test.internal";
    let mut hosts = HostsEntries(format!("rsrs-test {}", std::process::id()));
    hosts.add(&format!("127.0.12.11 {name}"));
    hosts.add(&format!("127.0.12.12 {name}"));
    // Every origin has the same config: no list of peers to keep by hand.
    let conf = origin_conf(&format!("{name}:1985"));
    let o1 = Rsrs::start("dns-o1", "127.0.12.11", &conf);
    let _o2 = Rsrs::start("dns-o2", "127.0.12.12", &conf);
    let edge = Rsrs::start("dns-e", "127.0.12.14", &edge_conf("127.0.12.11"));
    // Scale from 2 to 3 origins: the name gains an address; nothing is edited or restarted.
    let o3 = Rsrs::start("dns-o3", "127.0.12.13", &conf);
    hosts.add(&format!("127.0.12.13 {name}"));
    let _pub = publish(&o3.rtmp("live/grown"), true);
    assert!(o3.wait_log("publish started", Duration::from_secs(10)));
    let (streams, packets) = probe(&edge.rtmp("live/grown"), 2);
    assert_sample_stream(&streams, &packets);
    assert!(edge.log_text().contains("redirected to rtmp://127.0.12.13:1935/live/grown"), "{}", edge.log_text());
    // And the cluster API of the first origin sees the new one.
    let v = o1.api("/api/v1/cluster/streams");
    assert_eq!(v["streams"][0]["origin"], "127.0.12.13:1985", "{v}");
}

#[test]
fn origin_death_publisher_moves_and_edge_players_recover() {
    let coworkers = "127.0.12.21:1985 127.0.12.22:1985";
    let o1 = Rsrs::start("ocdie-o1", "127.0.12.21", &origin_conf(coworkers));
    let o2 = Rsrs::start("ocdie-o2", "127.0.12.22", &origin_conf(coworkers));
    let origins = "127.0.12.21 127.0.12.22";
    let pub_edge = Rsrs::start("ocdie-e1", "127.0.12.23", &edge_conf(origins));
    let play_edge = Rsrs::start("ocdie-e2", "127.0.12.24", &edge_conf(origins));
    let _pub = publish(&pub_edge.rtmp("live/moving"), true);
    assert!(pub_edge.wait_log("edge: forwarding to origin", Duration::from_secs(10)), "{}", pub_edge.log_text());
    // Which origin got it depends on the stream name; the other one survives.
    let (holder, survivor) = if o1.wait_log("publish started", Duration::from_secs(5)) { (o1, o2) } else { (o2, o1) };
    let players = Players::start(&play_edge.rtmp("live/moving"), "rtmp", 4, 16);
    play_edge.wait_api("/api/v1/streams/", Duration::from_secs(10), |v| v["streams"][0]["clients"] == 4);
    std::thread::sleep(Duration::from_secs(2));
    let survivor_ip = survivor.ip.clone();
    // The origin holding the stream dies; the publishing edge moves the stream to the live origin
    // and the playing edge follows it there.
    drop(holder);
    assert!(
        survivor.wait_log("publish started stream=/live/moving", Duration::from_secs(15)),
        "{}",
        pub_edge.log_text()
    );
    assert!(play_edge.wait_log(&format!("origin={survivor_ip}"), Duration::from_secs(15)), "{}", play_edge.log_text());
    let r = players.report();
    assert_eq!(r["disconnected"], 0, "edge players were cut off: {r}");
    assert_eq!(r["failed"], 0, "{r}");
    let media = r["media_secs"].as_f64().unwrap();
    assert!(media >= 4.0 * 9.0, "players recovered and kept receiving: {media} media seconds: {r}");
}
