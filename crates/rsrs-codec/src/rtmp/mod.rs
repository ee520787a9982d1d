//! RTMP: handshake, chunk stream and messages, without I/O.

pub mod chunk;
pub mod handshake;
pub mod message;

pub use chunk::{ChunkDecoder, ChunkError, Message};
