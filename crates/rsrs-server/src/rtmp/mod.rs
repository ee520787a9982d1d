//! RTMP serving: the per-connection session and its message I/O.

pub mod client;
pub mod conn;
pub mod io;
