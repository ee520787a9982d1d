//! Links libsrt (found by pkg-config) and builds the C shim that keeps libsrt's structs and
//! constants on the C side, so a libsrt release that moves a field cannot misalign a read here.
//! Without libsrt the crate builds with stubs that refuse, so a machine without it still builds
//! and runs everything else.

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo::rustc-check-cfg=cfg(rsrs_no_libsrt)");
    let lib = match pkg_config::Config::new().atleast_version("1.4.2").probe("srt") {
        Ok(lib) => lib,
        Err(e) => {
            // The rest of rsrs still builds and runs; `srt_server` then refuses to start with
            // this same advice.
            println!(
                "cargo:warning=libsrt was not found, so this rsrs has no SRT. Install it and rebuild: \
                 apt-get install libsrt-openssl-dev pkg-config (pkg-config said: {})",
                e.to_string().lines().next().unwrap_or("")
            );
            println!("cargo:rustc-cfg=rsrs_no_libsrt");
            return;
        }
    };
    let mut build = cc::Build::new();
    build.file("src/shim.c").warnings(true).extra_warnings(true);
    for path in &lib.include_paths {
        build.include(path);
    }
    build.compile("rsrs_srt_shim");
}
