//! Marks the build `no_docker` when no Docker engine answers, so the container tests show as
//! ignored, with the reason, instead of passing without running. With RSRS_REQUIRE_DOCKER set (CI)
//! they are never ignored: they run and fail if the engine is missing. Likewise `not_root` for the
//! tests that mount a tmpfs, and `no_guide` for the tests that read SRS's guide from ../shared.

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_docker)");
    println!("cargo::rerun-if-env-changed=RSRS_REQUIRE_DOCKER");
    // The socket appears and disappears with the engine: look again when it does.
    println!("cargo::rerun-if-changed=/var/run/docker.sock");
    println!("cargo::rerun-if-changed=build.rs");
    let required = std::env::var_os("RSRS_REQUIRE_DOCKER").is_some();
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !answers && !required {
        println!("cargo::rustc-cfg=no_docker");
    }
    // The compose topologies also need docker-compose.
    println!("cargo::rustc-check-cfg=cfg(no_compose)");
    let compose = Command::new("docker-compose").arg("version").output().map(|o| o.status.success()).unwrap_or(false);
    if (!answers || !compose) && !required {
        println!("cargo::rustc-cfg=no_compose");
    }
    // Tests that read SRS's Kubernetes guide need it beside the checkout (../shared/seed); without
    // it they show as ignored. In CI (CI set) it must be there: they run and fail if it is not.
    println!("cargo::rustc-check-cfg=cfg(no_guide)");
    println!("cargo::rerun-if-env-changed=CI");
    // (Checked when this script runs; a guide put there later needs `touch crates/*/build.rs`.)
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let guide = std::path::Path::new(&manifest).join("../../../shared/seed");
    if !guide.is_dir() && std::env::var_os("CI").is_none() {
        println!("cargo::rustc-cfg=no_guide");
    }
    // Tests that mount a tmpfs need root: without it they show as ignored.
    println!("cargo::rustc-check-cfg=cfg(not_root)");
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        println!("cargo::rustc-cfg=not_root");
    }
}
