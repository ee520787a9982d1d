//! The protocol-neutral core of rsrs: what every protocol shares and none owns.
//!
//! [`media`] is what flows: packets parsed once at ingest (track, codec, configuration or frame,
//! timing) with their wire forms made once, and each stream's [`media::Tracks`].
//! [`hub`] holds the live streams: one source per stream, its tracks, its GOP cache and the
//! fan-out ring that consumers (players, HLS, DVR, edge forwarders) read. [`player`] is the one loop that sends a
//! stream to a player, [`sink`] the one loop that feeds a writer. [`stats`] is the registry of connected
//! clients the API shows and kicks. [`names`] is the one rule for stream, app and vhost names,
//! [`slots`] the shares of `max_connections`, [`paths`] the file-name templates of HLS and DVR,
//! [`transcode`] the audio transcoders WebRTC needs (AAC <-> Opus, through `rsrs-audio`).
//! [`kick`] is a client's kick as a future that a loop woken per message polls for two atomics,
//! [`idle`] a publisher's idle timeout as one timer for the whole publish. [`shared_framing`] lets
//! the players of a merge window that share a timeline write one framed buffer between them.
//! Protocol crates (RTMP) and the server build on this; it depends only on the codecs and the
//! config, so cargo keeps the layers pointing one way.

pub mod access;
pub mod hub;
pub mod idle;
pub mod ids;
pub mod kick;
pub mod media;
pub mod names;
pub mod paced_reads;
pub mod paths;
pub mod player;
pub mod shared_framing;
pub mod sink;
pub mod slots;
pub mod stats;
pub mod transcode;
