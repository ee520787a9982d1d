//! RTMP on sockets: [`io`] reads messages (answering acks and pings) and writes them, including
//! the core's shared frames with vectored writes; [`client`] is the RTMP client that edges pull
//! and forward with and that the load generator drives. The server's session (admission, play and
//! publish) lives in the server crate.

pub mod client;
pub mod io;
