//! rsrs: an SRS-compatible live streaming server.
//!
//! Layout: [`server`] owns listeners and shared state; [`rtmp`] serves RTMP connections;
//! [`http`] serves the API, HTTP-FLV and static files; [`hub`] is the per-stream fan-out with
//! the GOP cache; [`stats`] tracks clients for the API. Protocol encoding and decoding live in
//! the sans-io `rsrs-codec` crate, configuration in `rsrs-config`.

pub mod alloc;
pub mod cleanup;
pub mod cli;
pub mod cluster;
pub mod dvr;
pub mod edge;
pub mod hls;
pub mod http;
pub mod inotify;
pub mod lifecycle;
pub mod logging;
pub mod rtmp;
pub mod server;
pub mod streams;

// The core, under the names the server has always used for it.
pub use rsrs_core::{hub, ids, names, paths, slots, stats};
