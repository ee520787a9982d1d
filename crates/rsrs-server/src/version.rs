//! What this build is: its version, and the signature it gives in replies and metadata.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `rsrs/<version>`: what `srs_server` and the metadata's `server` field carry.
pub fn signature() -> String {
    format!("rsrs/{VERSION}")
}
