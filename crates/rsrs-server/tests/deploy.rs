//! The deployment kit: every Kubernetes manifest validates strictly for Kubernetes 1.25 through
//! the newest schemas and every embedded srs.conf passes `rsrs -t`; the image builds on a
//! machine without a registry and serves as the guide's ossrs/srs would.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn check(dir: Option<&std::path::Path>) -> (bool, String) {
    let mut c = Command::new("python3");
    c.arg(repo_root().join("deploy/k8s/check.py")).args(["--rsrs", BIN]);
    if let Some(d) = dir {
        c.arg("--dir").arg(d);
    }
    let out = c.output().expect("python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("No module named"), "pip install kubernetes-validate (.ci/run does): {text}");
    (out.status.success(), text)
}

#[test]
fn manifests_validate_strictly_and_their_configs_pass_rsrs_t() {
    let (ok, text) = check(None);
    assert!(ok, "{text}");
    assert!(text.contains("against Kubernetes 1.25.0.."), "{text}");
    assert!(text.contains("0 failures"), "{text}");
    for scenario in [
        "quickstart",
        "hls-nginx",
        "edge-cluster",
        "origin-cluster-statefulset",
        "origin-cluster-deployments",
        "rolling-update",
        "cleanup",
        "demo-publisher",
        "monitoring",
        "edge-autoscaling",
    ] {
        assert!(text.contains(&format!("ok {scenario}/")), "{scenario} not checked:\n{text}");
    }
}

#[test]
fn checker_rejects_broken_manifests() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("broken-k8s");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bad")).unwrap();
    std::fs::write(
        dir.join("bad/all.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicaz: 1\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: i}]\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  srs.conf: |\n    listen 1935;\n    vhost __defaultVhost__ { hls { enabeld on; } }\n---\n\
         apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: old\n---\n\
         apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: sm\nspec:\n  selector: {matchLabels: {a: b}}\n  endpoints: [{port: metrics, intervall: 15s}]\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: adapter\ndata:\n  config.yaml: |\n    rules:\n      - seriesQuery: 'srs_clients'\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad/kustomization.yaml"), "resources:\n  - all.yaml\n  - missing.yaml\n").unwrap();
    let (ok, text) = check(Some(&dir));
    assert!(!ok, "{text}");
    assert!(text.contains("replicaz"), "unknown field caught: {text}");
    assert!(text.contains("enabeld"), "bad srs.conf caught: {text}");
    assert!(text.contains("Ingress/old"), "removed apiVersion caught: {text}");
    assert!(text.contains("missing.yaml"), "kustomization mismatch caught: {text}");
    assert!(
        text.contains("ServiceMonitor/sm") && text.contains("intervall"),
        "custom resource checked strictly: {text}"
    );
    assert!(text.contains("ConfigMap/adapter") && text.contains("metricsQuery"), "adapter rules checked: {text}");
}

/// deploy/helm/check.py: `helm lint`, `helm template`, strict validation and `rsrs -t`.
fn check_chart(values: &[&std::path::Path]) -> (bool, String) {
    let mut c = Command::new("python3");
    c.arg(repo_root().join("deploy/helm/check.py")).args(["--rsrs", BIN]);
    c.arg("--cache").arg(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tools"));
    if !values.is_empty() {
        c.arg("--values").args(values);
    }
    let out = c.output().expect("python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("No module named"), "pip install kubernetes-validate (.ci/run does): {text}");
    assert!(!text.contains("helm not found"), "{text}");
    (out.status.success(), text)
}

#[test]
fn helm_chart_lints_and_renders_every_topology_valid_for_kubernetes_and_rsrs() {
    let (ok, text) = check_chart(&[]);
    assert!(ok, "{text}");
    assert!(text.contains("against Kubernetes 1.25.0..1.37.0"), "{text}");
    assert!(text.contains("0 failures"), "{text}");
    for example in ["defaults", "single-origin", "hls-nginx", "edge-cluster", "origin-cluster", "secured-origin"] {
        assert!(text.contains(&format!("ok {example} (")), "{example} not checked:\n{text}");
    }
}

#[test]
fn helm_checker_rejects_broken_values() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("broken-helm");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let typo = dir.join("typo.yaml");
    std::fs::write(&typo, "config:\n  vhost: |\n    hls { enabeld on; }\n").unwrap();
    let not_int = dir.join("not-int.yaml");
    std::fs::write(&not_int, "edge:\n  enabled: true\n  replicas: three\n").unwrap();
    let no_volume = dir.join("no-volume.yaml");
    std::fs::write(&no_volume, "cleanup:\n  enabled: true\n").unwrap();
    let (ok, text) = check_chart(&[&typo, &not_int, &no_volume]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("typo: ConfigMap/srs-origin-config: srs.conf fails rsrs -t") && text.contains("enabeld"),
        "{text}"
    );
    assert!(text.contains("not-int: Deployment/srs-edge") && text.contains("'three' is not of type"), "{text}");
    assert!(text.contains("no-volume: helm template") && text.contains("needs origin.persistence.enabled"), "{text}");
}

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["volume", "rm", "-f", &self.0]).output();
    }
}

#[test]
#[cfg_attr(no_docker, ignore = "no Docker engine answers (RSRS_REQUIRE_DOCKER=1 makes this a failure)")]
#[cfg_attr(no_guide, ignore = "SRS's guide is not at ../shared/seed beside the checkout (CI requires it)")]
fn image_builds_without_a_registry_and_serves_like_srs() {
    require_docker();
    let st =
        Command::new("bash").arg(repo_root().join("deploy/image/build-offline.sh")).arg("rsrs:test").status().unwrap();
    assert!(st.success(), "build-offline.sh failed");
    let run = |args: &[&str]| -> String {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The drop-in layout: paths, version, init script, shell and cp for the guide's helpers.
    assert_eq!(run(&["run", "--rm", "rsrs:test", "./objs/srs", "-v"]), env!("CARGO_PKG_VERSION"));
    run(&[
        "run",
        "--rm",
        "rsrs:test",
        "sh",
        "-c",
        "test \"$(pwd)\" = /usr/local/srs && test -x etc/init.d/srs && test -f conf/srs.conf && test -f conf/docker.conf \
         && test -f objs/nginx/html/index.html && cp objs/nginx/html/index.html /tmp/x",
    ]);
    // The guide's helper container (srs-cp-files), its shell text verbatim: `[[ ]]` needs bash as
    // /bin/sh, as in SRS's image; with dash the copy would be skipped without an error.
    let guide = std::fs::read_to_string(repo_root().join("../shared/seed/000_a9cad5b2dcccb222.txt")).unwrap();
    let helper: Vec<&str> = guide
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("if [[ ! -f /tmp/html/index.html ]]"))
        .take_while(|l| !l.starts_with("sleep infinity"))
        .chain(["sleep infinity"])
        .collect();
    assert!(helper.len() == 4 && helper[1].starts_with("cp -R"), "the guide's helper: {helper:?}");
    let helper = helper.join("\n");
    let volume = format!("rsrs-test-html-{}", std::process::id());
    let cp_name = format!("rsrs-test-cp-{}", std::process::id());
    let _vol = Volume(volume.clone()); // dropped after the container using it
    let _cp = Container(cp_name.clone());
    run(&[
        "run",
        "-d",
        "--name",
        &cp_name,
        "-v",
        &format!("{volume}:/tmp/html"),
        "rsrs:test",
        "/bin/sh",
        "-c",
        &helper,
    ]);
    let copied = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let test = Command::new("docker").args(["exec", &cp_name, "test", "-f", "/tmp/html/index.html"]).status();
        test.is_ok_and(|s| s.success())
    });
    assert!(copied, "the guide's helper copied nothing: {}", run(&["logs", &cp_name]));
    // The guide's way: a ConfigMap holding srs.conf mounted over conf/ (hiding docker.conf),
    // the image's default command, non-root. The config is the quick-start manifest's own.
    let conf_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("configmap-mount");
    let _ = std::fs::remove_dir_all(&conf_dir);
    std::fs::create_dir_all(&conf_dir).unwrap();
    let manifest = std::fs::read_to_string(repo_root().join("deploy/k8s/quickstart/rsrs.yaml")).unwrap();
    let conf: String = manifest
        .split("srs.conf: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.trim_start_matches("    ")))
        .collect();
    std::fs::write(conf_dir.join("srs.conf"), conf).unwrap();
    let mount = format!("{}:/usr/local/srs/conf:ro", conf_dir.display());
    let name = format!("rsrs-test-{}", std::process::id());
    let _c = Container(name.clone());
    run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--user",
        "1000",
        "-v",
        &mount,
        "-p",
        "127.0.0.1:29350:1935",
        "-p",
        "127.0.0.1:28080:8080",
        "rsrs:test",
    ]);
    let ready = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        http_status("127.0.0.1:28080", "/readyz") == Some(200)
    });
    assert!(ready, "container never became ready: {}", run(&["logs", &name]));
    let _pub = publish("rtmp://127.0.0.1:29350/live/livestream", true);
    let (streams, packets) = probe("http://127.0.0.1:28080/live/livestream.flv", 2);
    assert_sample_stream(&streams, &packets);
    let logs = Command::new("docker").args(["logs", &name]).output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
    assert!(logs.contains("conf/docker.conf does not exist; using conf/srs.conf"), "{logs}");
    // `docker stop` (SIGTERM) ends it cleanly with status 0.
    run(&["stop", "-t", "20", &name]);
    assert_eq!(run(&["inspect", "-f", "{{.State.ExitCode}}", &name]), "0", "{}", run(&["logs", &name]));
    let size: f64 = run(&["image", "inspect", "rsrs:test", "--format", "{{.Size}}"]).parse().unwrap();
    eprintln!("image rsrs:test is {:.1} MB", size / 1e6);
}
