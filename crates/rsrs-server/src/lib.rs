//! rsrs: an SRS-compatible live streaming server.
//!
//! Layout: [`server`] owns listeners and shared state; [`streams`] is the stream manager, the one
//! place that admits a publish or a play (access rules and [`hooks`] included); [`rtmp`] and [`http`] translate their wire (RTMP
//! sessions; the API, HTTP-FLV and static files); [`hls`] and [`dvr`] are sinks; [`edge`] and
//! [`cluster`] are the edge and the origin cluster; [`lifecycle`] handles signals, grace and
//! reload. Streams, players, sinks and the client registry live in the protocol-neutral
//! `rsrs-core` crate, RTMP message I/O in `rsrs-rtmp`, codecs in the sans-io `rsrs-codec`, and
//! configuration in `rsrs-config`.

pub mod alloc;
pub mod cleanup;
pub mod cli;
pub mod cluster;
pub mod dvr;
pub mod edge;
pub mod fmp4;
pub mod hls;
pub mod hooks;
pub mod http;
pub mod inotify;
pub mod lifecycle;
pub mod listeners;
pub mod logging;
pub mod metrics;
pub mod rtc;
pub mod rtmp;
pub mod server;
pub mod srt;
pub mod streams;
pub mod token_cmd;
pub mod tokens;
pub mod version;

// The core, under the names the server has always used for it.
pub use rsrs_core::{access, hub, ids, media, names, paths, slots, stats, transcode};
