//! Every `srs.conf` of the SRS Kubernetes guide must load (the drop-in contract), and our own
//! equivalents of its forms must mean what they mean in SRS.

use rsrs_config::{Config, Env};
use std::path::PathBuf;

/// Pulls the `srs.conf: |-` blocks out of the guide's ConfigMaps.
fn guide_configs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("srs.conf: |") {
            let mut conf = String::new();
            while let Some(l) = lines.peek() {
                if !(l.starts_with("    ") || l.trim().is_empty()) || l.trim() == "EOF" || l.trim() == "---" {
                    break;
                }
                conf.push_str(l.trim_start_matches("    "));
                conf.push('\n');
                lines.next();
            }
            out.push(conf);
        }
    }
    out
}

#[test]
#[cfg_attr(no_guide, ignore = "SRS's guide is not at ../shared/seed beside the checkout (CI requires it)")]
fn every_guide_config_loads() {
    let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed");
    let dir = std::fs::read_dir(&seed).unwrap_or_else(|e| panic!("the guide at {}: {e}", seed.display()));
    let mut n = 0;
    for entry in dir {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (i, conf) in guide_configs(&text).iter().enumerate() {
            let c = Config::load_str(conf, &format!("guide config #{i}"), &Env::new())
                .unwrap_or_else(|e| panic!("guide config #{i} failed: {e}\n{conf}"));
            assert_eq!(c.listen[0].0.port(), 1935);
            assert!(c.vhost("any").is_some());
            n += 1;
        }
    }
    assert!(n >= 6, "expected the guide's configs, found {n}");
}

#[test]
fn guide_forms_mean_what_srs_means() {
    let edge = "listen 1935;\nmax_connections 1000;\ndaemon off;\ngrace_start_wait 700;\ngrace_final_wait 800;\nforce_grace_quit on;\n\
        http_api { enabled on; listen 1985; }\nhttp_server { enabled on; listen 8080; }\n\
        vhost __defaultVhost__ {\n  cluster { mode remote; origin srs-origin-0.socs srs-origin-1.socs; }\n  http_remux { enabled on; }\n}\n";
    let c = Config::load_str(edge, "edge.conf", &Env::new()).unwrap();
    let v = c.vhost("x").unwrap();
    assert!(v.cluster.edge);
    assert_eq!(v.cluster.origins, vec!["srs-origin-0.socs", "srs-origin-1.socs"]);
    assert!(c.force_grace_quit);
    assert_eq!(c.grace_start_wait.as_millis(), 700);
    assert!(!c.daemon);

    let origin = "listen 1935;\ndaemon off;\nhttp_api { enabled on; listen 1985; }\nhttp_server { enabled on; listen 8080; }\n\
        vhost __defaultVhost__ {\n  cluster { origin_cluster on; coworkers srs-origin-0.socs:1985 srs-origin-1.socs:1985; }\n\
        http_remux { enabled on; }\n  hls { enabled on; }\n}\n";
    let c = Config::load_str(origin, "origin.conf", &Env::new()).unwrap();
    let v = c.vhost("x").unwrap();
    assert!(v.cluster.origin_cluster && !v.cluster.edge);
    assert_eq!(v.cluster.coworkers.len(), 2);
    assert!(v.hls.enabled && v.http_remux.enabled);
}
