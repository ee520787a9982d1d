//! Audio transcoding for rsrs: AAC <-> Opus, so WebRTC players hear RTMP and SRT publishers
//! (Opus only) and RTMP, HTTP-FLV and HLS players hear WebRTC publishers (AAC). libfdk-aac is
//! compiled from source by its crate; libopus comes from the system (`libopus-dev`). Without
//! libopus this crate builds, and every Opus call fails with [`AudioError::NoLibopus`].

pub mod aac;
pub mod opus;
pub mod resample;
pub mod transcode;

pub use transcode::{AacToOpus, Frame, OpusToAac};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error(
        "this rsrs was built without libopus, so it cannot transcode between AAC and Opus; \
         install it and rebuild: apt-get install libopus-dev pkg-config"
    )]
    NoLibopus,
    #[error("{0} is not supported")]
    Unsupported(String),
    #[error("{0}")]
    Codec(String),
}

/// Whether Opus transcoding is built in.
pub const HAS_LIBOPUS: bool = cfg!(not(rsrs_no_libopus));
