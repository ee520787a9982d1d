//! Links libopus (found by pkg-config). Without it the crate builds with stand-ins that refuse,
//! so a machine without libopus still builds and runs everything but AAC <-> Opus transcoding.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rsrs_no_libopus)");
    if let Err(e) = pkg_config::Config::new().atleast_version("1.1").probe("opus") {
        println!(
            "cargo:warning=libopus was not found, so this rsrs cannot transcode between AAC and Opus (WebRTC audio \
             from RTMP, RTMP audio from WebRTC). Install it and rebuild: apt-get install libopus-dev pkg-config \
             (pkg-config said: {})",
            e.to_string().lines().next().unwrap_or("")
        );
        println!("cargo:rustc-cfg=rsrs_no_libopus");
    }
}
