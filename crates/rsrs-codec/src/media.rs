//! Codec identities shared by every container and protocol: which track a packet belongs to,
//! which codec made it, and what it holds. The FLV tag parser (`flv::tag`) produces these; the
//! core keeps them on each packet so no consumer has to read a container header again.

/// The kind of elementary stream a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    Video,
    Audio,
    /// Script data (`onMetaData`) and other timed data.
    Data,
}

/// A codec, as an identity. Names follow SRS's API (`H264`, `HEVC`, `AAC`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    H264,
    H265,
    Av1,
    Vp9,
    Vp8,
    Aac,
    Mp3,
    Opus,
    Flac,
    Ac3,
    Eac3,
    G711A,
    G711U,
    Speex,
    Pcm,
    Adpcm,
    Nellymoser,
    /// AMF0 script data (`onMetaData`).
    Amf0,
    /// A codec rsrs does not know; its packets are still relayed as they came.
    Unknown,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::H265 => "HEVC",
            Codec::Av1 => "AV1",
            Codec::Vp9 => "VP9",
            Codec::Vp8 => "VP8",
            Codec::Aac => "AAC",
            Codec::Mp3 => "MP3",
            Codec::Opus => "Opus",
            Codec::Flac => "FLAC",
            Codec::Ac3 => "AC3",
            Codec::Eac3 => "EAC3",
            Codec::G711A => "G711A",
            Codec::G711U => "G711U",
            Codec::Speex => "Speex",
            Codec::Pcm => "PCM",
            Codec::Adpcm => "ADPCM",
            Codec::Nellymoser => "Nellymoser",
            Codec::Amf0 => "AMF0",
            Codec::Unknown => "Unknown",
        }
    }
}

/// What a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// The decoder configuration (avcC, hvcC, av1C, AudioSpecificConfig, OpusHead...): track
    /// information, what FLV calls a "sequence header".
    Config,
    /// Coded media: one access unit or audio frame.
    Frame,
    /// The end of a coded sequence (the publisher stops this track's configuration).
    EndOfSequence,
    /// Script data or in-band codec metadata (AMF0), no media.
    Metadata,
    /// Anything else a publisher may send on a media track (Enhanced RTMP commands, multitrack
    /// or modifier packets): relayed to players as it came, never muxed.
    Other,
}
