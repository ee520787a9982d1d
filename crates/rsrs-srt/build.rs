//! Links libsrt (found by pkg-config) and builds the C shim that keeps libsrt's structs and
//! constants on the C side, so a libsrt release that moves a field cannot misalign a read here.

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    let lib = match pkg_config::Config::new().atleast_version("1.4.2").probe("srt") {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "rsrs needs libsrt 1.4.2 or later with its headers to build SRT support.\n\
                 On Debian or Ubuntu: apt-get install libsrt-openssl-dev pkg-config\n\
                 (pkg-config said: {e})"
            );
            std::process::exit(1);
        }
    };
    let mut build = cc::Build::new();
    build.file("src/shim.c").warnings(true).extra_warnings(true);
    for path in &lib.include_paths {
        build.include(path);
    }
    build.compile("rsrs_srt_shim");
}
