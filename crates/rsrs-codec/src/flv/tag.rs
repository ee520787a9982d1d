//! The headers inside FLV audio and video tag bodies (the same bytes are RTMP's audio and video
//! message payloads): legacy FLV (codec ids) and Enhanced RTMP (FourCCs). Parsing yields the
//! codec identity, what the packet holds, its composition time and where the codec's own bytes
//! start; writing builds the header for elementary data that came from another container.

use crate::media::{Codec, Content, Track};
use bytes::{BufMut, Bytes, BytesMut};

/// Legacy FLV video codec ids.
pub const VIDEO_CODEC_AVC: u8 = 7;
/// HEVC in a legacy header (the Chinese CDN extension SRS 5 and ffmpeg forks write).
pub const VIDEO_CODEC_HEVC: u8 = 12;
/// Legacy FLV sound formats.
pub const AUDIO_FORMAT_MP3: u8 = 2;
pub const AUDIO_FORMAT_AAC: u8 = 10;
/// The sound format value that announces an Enhanced RTMP audio header.
const AUDIO_FORMAT_EX_HEADER: u8 = 9;

/// Enhanced RTMP video packet types.
const VIDEO_SEQUENCE_START: u8 = 0;
const VIDEO_CODED_FRAMES: u8 = 1;
const VIDEO_SEQUENCE_END: u8 = 2;
const VIDEO_CODED_FRAMES_X: u8 = 3;
const VIDEO_METADATA: u8 = 4;
/// Enhanced RTMP video frame type of a command frame (no media).
const VIDEO_FRAME_COMMAND: u8 = 5;
/// Enhanced RTMP audio packet types.
const AUDIO_SEQUENCE_START: u8 = 0;
const AUDIO_CODED_FRAMES: u8 = 1;
const AUDIO_SEQUENCE_END: u8 = 2;

/// A parsed audio or video tag-body header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagHeader {
    pub codec: Codec,
    pub content: Content,
    /// A video keyframe (frame type 1).
    pub keyframe: bool,
    /// Composition time offset in milliseconds (PTS - DTS); 0 where the format has none.
    pub cts: i32,
    /// Where the codec's own bytes (NAL units, OBUs, raw AAC, a configuration record) begin.
    pub data_offset: usize,
}

/// A tag body too short for the header its first byte announces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{track:?} tag body of {len} bytes is shorter than its {codec} header ({need} bytes)", codec = codec.name())]
pub struct TagError {
    pub track: Track,
    pub codec: Codec,
    pub len: usize,
    pub need: usize,
}

fn need(track: Track, codec: Codec, body: &[u8], n: usize) -> Result<(), TagError> {
    if body.len() < n {
        return Err(TagError { track, codec, len: body.len(), need: n });
    }
    Ok(())
}

fn video_fourcc(f: &[u8]) -> Codec {
    match f {
        b"avc1" => Codec::H264,
        b"hvc1" => Codec::H265,
        b"av01" => Codec::Av1,
        b"vp09" => Codec::Vp9,
        b"vp08" => Codec::Vp8,
        _ => Codec::Unknown,
    }
}

fn audio_fourcc(f: &[u8]) -> Codec {
    match f {
        b"Opus" => Codec::Opus,
        b"fLaC" => Codec::Flac,
        b"ac-3" => Codec::Ac3,
        b"ec-3" => Codec::Eac3,
        b".mp3" => Codec::Mp3,
        b"mp4a" => Codec::Aac,
        _ => Codec::Unknown,
    }
}

fn si24(b: &[u8]) -> i32 {
    ((((b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32) << 8) as i32) >> 8
}

/// Reads a video tag body's header. An empty body is an error; unknown codecs are not (their
/// packets are relayed untouched, with the payload from byte 1).
pub fn parse_video(body: &[u8]) -> Result<TagHeader, TagError> {
    let track = Track::Video;
    need(track, Codec::Unknown, body, 1)?;
    let b0 = body[0];
    let frame_type = (b0 >> 4) & 0x07;
    let keyframe = frame_type == 1;
    if b0 & 0x80 == 0 {
        let codec = match b0 & 0x0f {
            VIDEO_CODEC_AVC => Codec::H264,
            VIDEO_CODEC_HEVC => Codec::H265,
            _ => {
                return Ok(TagHeader {
                    codec: Codec::Unknown,
                    content: Content::Frame,
                    keyframe,
                    cts: 0,
                    data_offset: 1,
                })
            }
        };
        need(track, codec, body, 5)?;
        let content = match body[1] {
            0 => Content::Config,
            1 => Content::Frame,
            2 => Content::EndOfSequence,
            _ => Content::Other,
        };
        return Ok(TagHeader { codec, content, keyframe, cts: si24(&body[2..5]), data_offset: 5 });
    }
    // Enhanced RTMP: [ex-header bit, frame type (3 bits), packet type (4 bits)].
    let packet_type = b0 & 0x0f;
    let other = TagHeader { codec: Codec::Unknown, content: Content::Other, keyframe: false, cts: 0, data_offset: 1 };
    if frame_type == VIDEO_FRAME_COMMAND && packet_type != VIDEO_METADATA {
        return Ok(other);
    }
    let (content, with_cts) = match packet_type {
        VIDEO_SEQUENCE_START => (Content::Config, false),
        VIDEO_CODED_FRAMES => (Content::Frame, true),
        VIDEO_SEQUENCE_END => (Content::EndOfSequence, false),
        VIDEO_CODED_FRAMES_X => (Content::Frame, false),
        VIDEO_METADATA => (Content::Metadata, false),
        // MPEG-2 TS sequence start, multitrack, modifier extensions: relayed, not interpreted.
        _ => return Ok(other),
    };
    need(track, Codec::Unknown, body, 5)?;
    let codec = video_fourcc(&body[1..5]);
    // Only AVC and HEVC coded frames carry a composition time in their header.
    if with_cts && matches!(codec, Codec::H264 | Codec::H265) {
        need(track, codec, body, 8)?;
        return Ok(TagHeader { codec, content, keyframe, cts: si24(&body[5..8]), data_offset: 8 });
    }
    Ok(TagHeader { codec, content, keyframe, cts: 0, data_offset: 5 })
}

/// Reads an audio tag body's header.
pub fn parse_audio(body: &[u8]) -> Result<TagHeader, TagError> {
    let track = Track::Audio;
    need(track, Codec::Unknown, body, 1)?;
    let b0 = body[0];
    let frame = |codec, content, data_offset| TagHeader { codec, content, keyframe: false, cts: 0, data_offset };
    let format = b0 >> 4;
    if format == AUDIO_FORMAT_EX_HEADER {
        let content = match b0 & 0x0f {
            AUDIO_SEQUENCE_START => Content::Config,
            AUDIO_CODED_FRAMES => Content::Frame,
            AUDIO_SEQUENCE_END => Content::EndOfSequence,
            // Multichannel config, multitrack, modifier extensions.
            _ => return Ok(frame(Codec::Unknown, Content::Other, 1)),
        };
        need(track, Codec::Unknown, body, 5)?;
        return Ok(frame(audio_fourcc(&body[1..5]), content, 5));
    }
    let codec = match format {
        0 | 3 => Codec::Pcm,
        1 => Codec::Adpcm,
        AUDIO_FORMAT_MP3 | 14 => Codec::Mp3,
        4..=6 => Codec::Nellymoser,
        7 => Codec::G711A,
        8 => Codec::G711U,
        AUDIO_FORMAT_AAC => Codec::Aac,
        11 => Codec::Speex,
        _ => Codec::Unknown,
    };
    if codec != Codec::Aac {
        return Ok(frame(codec, Content::Frame, 1));
    }
    need(track, codec, body, 2)?;
    let content = match body[1] {
        0 => Content::Config,
        1 => Content::Frame,
        _ => Content::Other,
    };
    Ok(frame(codec, content, 2))
}

/// Enhanced RTMP v2's multitrack packet types (video and audio).
const VIDEO_MULTITRACK: u8 = 6;
const AUDIO_MULTITRACK: u8 = 5;

/// Whether a tag body is an Enhanced RTMP multitrack packet (several tracks of one kind in one
/// message), which rsrs relays as it came but does not mux.
pub fn is_multitrack(track: Track, body: &[u8]) -> bool {
    let Some(&b0) = body.first() else { return false };
    match track {
        Track::Video => b0 & 0x80 != 0 && b0 & 0x0f == VIDEO_MULTITRACK,
        Track::Audio => b0 >> 4 == AUDIO_FORMAT_EX_HEADER && b0 & 0x0f == AUDIO_MULTITRACK,
        Track::Data => false,
    }
}

/// Parses the header of a tag body on `track`; script data has none.
pub fn parse(track: Track, body: &[u8]) -> Result<TagHeader, TagError> {
    match track {
        Track::Video => parse_video(body),
        Track::Audio => parse_audio(body),
        Track::Data => {
            Ok(TagHeader { codec: Codec::Amf0, content: Content::Metadata, keyframe: false, cts: 0, data_offset: 0 })
        }
    }
}

/// Why elementary data cannot be put into an FLV tag body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{codec} {content:?} has no FLV tag form", codec = codec.name())]
pub struct UnwritableTag {
    pub codec: Codec,
    pub content: Content,
}

/// Builds an FLV tag body for elementary data: the legacy header for H.264, AAC and MP3 (what
/// every FLV player reads), Enhanced RTMP for HEVC, AV1, VP9 and Opus.
pub fn write(
    track: Track,
    codec: Codec,
    content: Content,
    keyframe: bool,
    cts: i32,
    data: &[u8],
) -> Result<Bytes, UnwritableTag> {
    let unwritable = UnwritableTag { codec, content };
    let mut out = BytesMut::with_capacity(data.len() + 8);
    match track {
        Track::Data => {}
        Track::Video => {
            let frame_type: u8 = if keyframe { 1 } else { 2 };
            let legacy_type = match content {
                Content::Config => 0,
                Content::Frame => 1,
                Content::EndOfSequence => 2,
                _ => return Err(unwritable),
            };
            let cts24 = (cts as u32).to_be_bytes();
            if codec == Codec::H264 {
                out.put_u8(frame_type << 4 | VIDEO_CODEC_AVC);
                out.put_u8(legacy_type);
                out.put_slice(&cts24[1..]);
            } else {
                let fourcc: &[u8; 4] = match codec {
                    Codec::H265 => b"hvc1",
                    Codec::Av1 => b"av01",
                    Codec::Vp9 => b"vp09",
                    _ => return Err(unwritable),
                };
                let with_cts = content == Content::Frame && codec == Codec::H265 && cts != 0;
                let packet_type = match content {
                    Content::Config => VIDEO_SEQUENCE_START,
                    Content::Frame if with_cts => VIDEO_CODED_FRAMES,
                    Content::Frame if codec == Codec::H265 => VIDEO_CODED_FRAMES_X,
                    Content::Frame => VIDEO_CODED_FRAMES,
                    _ => VIDEO_SEQUENCE_END,
                };
                out.put_u8(0x80 | frame_type << 4 | packet_type);
                out.put_slice(fourcc);
                if with_cts {
                    out.put_slice(&cts24[1..]);
                }
            }
        }
        Track::Audio => match (codec, content) {
            (Codec::Aac, Content::Config) => out.put_slice(&[0xaf, 0]),
            (Codec::Aac, Content::Frame) => out.put_slice(&[0xaf, 1]),
            (Codec::Mp3, Content::Frame) => out.put_u8(0x2f),
            (Codec::Opus, Content::Config | Content::Frame | Content::EndOfSequence) => {
                let packet_type = match content {
                    Content::Config => AUDIO_SEQUENCE_START,
                    Content::Frame => AUDIO_CODED_FRAMES,
                    _ => AUDIO_SEQUENCE_END,
                };
                out.put_u8(AUDIO_FORMAT_EX_HEADER << 4 | packet_type);
                out.put_slice(b"Opus");
            }
            _ => return Err(unwritable),
        },
    }
    out.put_slice(data);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(codec: Codec, content: Content, keyframe: bool, cts: i32, data_offset: usize) -> TagHeader {
        TagHeader { codec, content, keyframe, cts, data_offset }
    }

    #[test]
    fn legacy_avc() {
        assert_eq!(parse_video(&[0x17, 0, 0, 0, 0, 1]), Ok(h(Codec::H264, Content::Config, true, 0, 5)));
        assert_eq!(parse_video(&[0x27, 1, 0, 0, 40, 9]), Ok(h(Codec::H264, Content::Frame, false, 40, 5)));
        // Negative composition time (SI24).
        assert_eq!(parse_video(&[0x17, 1, 0xff, 0xff, 0xd8]).unwrap().cts, -40);
        assert_eq!(parse_video(&[0x17, 2, 0, 0, 0]).unwrap().content, Content::EndOfSequence);
        assert_eq!(parse_video(&[0x1c, 0, 0, 0, 0]).unwrap().codec, Codec::H265);
        // Sorenson H.263: relayed, payload after the first byte.
        assert_eq!(parse_video(&[0x22, 0xaa]), Ok(h(Codec::Unknown, Content::Frame, false, 0, 1)));
    }

    #[test]
    fn enhanced_video() {
        // SequenceStart hvc1, keyframe.
        let mut b = vec![0x90];
        b.extend_from_slice(b"hvc1");
        b.push(1);
        assert_eq!(parse_video(&b), Ok(h(Codec::H265, Content::Config, true, 0, 5)));
        // CodedFrames hvc1 with cts 33.
        let mut b = vec![0xa1];
        b.extend_from_slice(b"hvc1");
        b.extend_from_slice(&[0, 0, 33, 0xee]);
        assert_eq!(parse_video(&b), Ok(h(Codec::H265, Content::Frame, false, 33, 8)));
        // CodedFramesX: no cts field.
        let mut b = vec![0x93];
        b.extend_from_slice(b"hvc1");
        assert_eq!(parse_video(&b), Ok(h(Codec::H265, Content::Frame, true, 0, 5)));
        // AV1 coded frames have no cts field either.
        let mut b = vec![0x91];
        b.extend_from_slice(b"av01");
        b.push(0x12);
        assert_eq!(parse_video(&b), Ok(h(Codec::Av1, Content::Frame, true, 0, 5)));
        // A command frame carries no FourCC.
        assert_eq!(parse_video(&[0xd1, 0]).unwrap().content, Content::Other);
        // Multitrack: relayed as is.
        assert_eq!(parse_video(&[0x96, 0, 1, 2]).unwrap().content, Content::Other);
    }

    #[test]
    fn audio() {
        assert_eq!(parse_audio(&[0xaf, 0, 0x12, 0x10]), Ok(h(Codec::Aac, Content::Config, false, 0, 2)));
        assert_eq!(parse_audio(&[0xaf, 1, 0x21]), Ok(h(Codec::Aac, Content::Frame, false, 0, 2)));
        assert_eq!(parse_audio(&[0x2f, 0xff]), Ok(h(Codec::Mp3, Content::Frame, false, 0, 1)));
        assert_eq!(parse_audio(&[0x72, 0xd5]).unwrap().codec, Codec::G711A);
        let mut b = vec![0x90];
        b.extend_from_slice(b"Opus");
        assert_eq!(parse_audio(&b), Ok(h(Codec::Opus, Content::Config, false, 0, 5)));
        b[0] = 0x91;
        assert_eq!(parse_audio(&b).unwrap().content, Content::Frame);
    }

    #[test]
    fn truncated_headers_are_errors() {
        assert_eq!(parse_video(&[]), Err(TagError { track: Track::Video, codec: Codec::Unknown, len: 0, need: 1 }));
        assert_eq!(
            parse_video(&[0x17, 1, 0]),
            Err(TagError { track: Track::Video, codec: Codec::H264, len: 3, need: 5 })
        );
        assert_eq!(parse_video(&[0xa1, b'h', b'v', b'c', b'1', 0]).unwrap_err().need, 8);
        assert_eq!(parse_video(&[0x90, b'h']).unwrap_err().need, 5);
        assert_eq!(parse_audio(&[0xaf]).unwrap_err().need, 2);
        assert_eq!(parse_audio(&[0x90, b'O']).unwrap_err().need, 5);
        assert_eq!(
            parse_audio(&[]).unwrap_err().to_string(),
            "Audio tag body of 0 bytes is shorter than its Unknown header (1 bytes)"
        );
    }

    #[test]
    fn write_round_trips_through_parse() {
        let cases = [
            (Track::Video, Codec::H264, Content::Config, true, 0),
            (Track::Video, Codec::H264, Content::Frame, false, -40),
            (Track::Video, Codec::H265, Content::Frame, true, 80),
            (Track::Video, Codec::H265, Content::Frame, false, 0),
            (Track::Video, Codec::Av1, Content::Config, true, 0),
            (Track::Video, Codec::Vp9, Content::Frame, false, 0),
            (Track::Audio, Codec::Aac, Content::Frame, false, 0),
            (Track::Audio, Codec::Mp3, Content::Frame, false, 0),
            (Track::Audio, Codec::Opus, Content::Config, false, 0),
        ];
        for (track, codec, content, keyframe, cts) in cases {
            let body = write(track, codec, content, keyframe, cts, &[0xde, 0xad]).unwrap();
            let hdr = parse(track, &body).unwrap();
            assert_eq!((hdr.codec, hdr.content, hdr.keyframe, hdr.cts), (codec, content, keyframe, cts), "{codec:?}");
            assert_eq!(&body[hdr.data_offset..], &[0xde, 0xad]);
        }
        // Byte for byte what ffmpeg's FLV muxer writes for H.264 and AAC.
        assert_eq!(
            &write(Track::Video, Codec::H264, Content::Frame, true, 40, &[9]).unwrap()[..],
            &[0x17, 1, 0, 0, 40, 9]
        );
        assert_eq!(
            &write(Track::Audio, Codec::Aac, Content::Config, false, 0, &[0x12, 0x10]).unwrap()[..],
            &[0xaf, 0, 0x12, 0x10]
        );
        assert_eq!(
            write(Track::Audio, Codec::G711A, Content::Frame, false, 0, &[]),
            Err(UnwritableTag { codec: Codec::G711A, content: Content::Frame })
        );
    }

    #[test]
    fn multitrack_packets_are_recognised() {
        assert!(is_multitrack(Track::Video, &[0x96, 0]));
        assert!(is_multitrack(Track::Audio, &[0x95, 0]));
        assert!(!is_multitrack(Track::Video, &[0x91, b'h', b'v', b'c', b'1']));
        assert!(!is_multitrack(Track::Audio, &[0xaf, 1]));
        assert!(!is_multitrack(Track::Video, &[]));
        assert_eq!(parse_video(&[0x96, 0, 0, 0, 0, 0]).unwrap().content, Content::Other);
    }
}
