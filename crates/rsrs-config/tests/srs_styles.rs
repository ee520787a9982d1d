//! A corpus of configs written in the styles of SRS 1 to 7 (by us, not copied from SRS), each
//! loaded as `rsrs -t` loads it, with the verdict its header states:
//!
//! - `# expect: ok`, `# expect: warn TEXT` (a warning contains TEXT; repeatable) or
//!   `# expect: error TEXT` (the error contains TEXT);
//! - `# absent: TEXT`: no warning contains TEXT;
//! - `# env: NAME=VALUE`: the environment it is loaded with (otherwise empty);
//! - `# listen: PORT`, `# candidate: ADDR`: what the loaded config must hold.

use rsrs_config::{Config, Env};
use std::path::PathBuf;

#[derive(Default)]
struct Expect {
    error: Option<String>,
    warns: Vec<String>,
    absent: Vec<String>,
    env: Env,
    listen: Option<u16>,
    candidate: Option<String>,
}

fn header(text: &str) -> Expect {
    let mut e = Expect::default();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let Some((key, value)) = line.trim_start_matches('#').trim().split_once(':') else { continue };
        let value = value.trim().to_string();
        match key {
            "expect" if value == "ok" => {}
            "expect" => match value.split_once(' ') {
                Some(("warn", t)) => e.warns.push(t.to_string()),
                Some(("error", t)) => e.error = Some(t.to_string()),
                _ => panic!("bad expect line: {line}"),
            },
            "absent" => e.absent.push(value),
            "env" => {
                let (k, v) = value.split_once('=').expect("NAME=VALUE");
                e.env.insert(k.to_string(), v.to_string());
            }
            "listen" => e.listen = Some(value.parse().expect("a port")),
            "candidate" => e.candidate = Some(value),
            _ => {}
        }
    }
    e
}

#[test]
fn every_style_loads_as_its_header_says() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/srs_styles");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus is at {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let e = header(&text);
        let problem = match (Config::load_file(path, &e.env), &e.error) {
            (Err(err), Some(want)) if err.to_string().contains(want.as_str()) => None,
            (Err(err), Some(want)) => Some(format!("error `{err}`, expected one containing `{want}`")),
            (Err(err), None) => Some(format!("refused: {err}")),
            (Ok(_), Some(want)) => Some(format!("loaded, expected an error containing `{want}`")),
            (Ok(c), None) => {
                let mut p = Vec::new();
                for w in &e.warns {
                    if !c.warnings.iter().any(|x| x.contains(w.as_str())) {
                        p.push(format!("no warning containing `{w}`"));
                    }
                }
                for a in &e.absent {
                    if c.warnings.iter().any(|x| x.contains(a.as_str())) {
                        p.push(format!("a warning contains `{a}`"));
                    }
                }
                if e.warns.is_empty() && !c.warnings.is_empty() && e.absent.is_empty() {
                    p.push("unexpected warnings".into());
                }
                if let Some(port) = e.listen {
                    if c.listen.first().map(|l| l.0.port()) != Some(port) {
                        p.push(format!("listen {:?}, expected {port}", c.listen));
                    }
                }
                if e.candidate.is_some() && c.rtc_server.candidate != e.candidate {
                    p.push(format!("candidate {:?}, expected {:?}", c.rtc_server.candidate, e.candidate));
                }
                (!p.is_empty()).then(|| format!("{}; warnings: {:#?}", p.join("; "), c.warnings))
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{name}: {p}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the legacy forms become, beyond loading.
#[test]
fn legacy_forms_mean_what_they_mean_in_srs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/srs_styles");
    let c = Config::load_file(&dir.join("srs2-legacy-vhost.conf"), &Env::new()).unwrap();
    let v = c.vhost("any").unwrap();
    assert!(!v.play.gop_cache);
    assert_eq!(v.publish.firstpkt_timeout.as_millis(), 20000);
    assert_eq!(v.publish.normal_timeout.as_millis(), 7000);
    assert!(c.http_server.enabled, "http_stream is http_server");
    let refer = format!("{:?}", v.access);
    assert!(refer.contains("github.com") && refer.contains("ossrs.net"), "{refer}");
    let c = Config::load_file(&dir.join("srs2-edge.conf"), &Env::new()).unwrap();
    let v = c.vhost("any").unwrap();
    assert!(v.cluster.edge && v.cluster.token_traverse);
    assert_eq!(v.cluster.origins, vec!["127.0.0.1:19350", "127.0.0.1:19351"]);
    let c = Config::load_file(&dir.join("srs4-rtc-forms.conf"), &Env::new()).unwrap();
    assert!(c.srt_server.tlpktdrop);
    assert!(c.vhost("any").unwrap().rtc.rtmp_to_rtc, "aac transcode is rtmp_to_rtc on");
    let c = Config::load_file(&dir.join("srs6-docker.conf"), &Env::new()).unwrap();
    assert_eq!(c.rtc_server.candidate, None, "an unset $CANDIDATE is SRS's `*`");
}
