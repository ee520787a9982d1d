//! RTMP serving: the per-connection session. Message I/O and the client are in `rsrs-rtmp`.

pub use rsrs_rtmp::{client, io};
pub mod conn;
pub mod ingest;
