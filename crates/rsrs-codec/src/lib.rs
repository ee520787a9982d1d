//! Sans-io media protocol codecs for rsrs.
//!
//! Everything here is a pure function or a state machine over bytes: no sockets, no clocks, no
//! async. The server crate drives these with I/O; tests and fuzzers drive them directly.
//! Nothing in this crate panics on input from a peer.

pub mod aac;
pub mod amf0;
pub mod av1;
pub mod avc;
pub(crate) mod bits;
pub mod flv;
pub mod fmp4;
pub mod hevc;
pub mod hls;
pub mod http;
pub mod media;
pub mod rtmp;
pub mod srt_streamid;
pub mod stun;
pub mod ts;
pub mod ts_demux;
pub mod ts_ingest;
pub mod vp9;
