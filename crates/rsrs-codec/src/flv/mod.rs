//! FLV file/stream format: header, tags, and a streaming tag reader. The headers inside tag
//! bodies (codec, keyframe, configuration) are read in [`tag`]; what the API reports about a
//! track in [`info`].

pub mod info;
pub mod tag;

pub use info::{audio_info, video_info, AudioInfo, VideoInfo};

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT: u8 = 18;

/// Size of the FLV file header plus the first PreviousTagSize (always zero).
pub const HEADER_LEN: usize = 13;
/// Size of a tag header.
pub const TAG_HEADER_LEN: usize = 11;

/// The 9-byte FLV header followed by PreviousTagSize0.
pub fn header(has_audio: bool, has_video: bool) -> [u8; HEADER_LEN] {
    let flags = (has_audio as u8) << 2 | has_video as u8;
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// The tag type that carries a track.
pub fn tag_type(track: crate::media::Track) -> u8 {
    match track {
        crate::media::Track::Audio => TAG_AUDIO,
        crate::media::Track::Video => TAG_VIDEO,
        crate::media::Track::Data => TAG_SCRIPT,
    }
}

/// Writes the 11-byte tag header for a tag of `data_len` bytes.
pub fn put_tag_header(out: &mut BytesMut, tag_type: u8, timestamp: u32, data_len: usize) {
    // One copy of a stack array: this runs per packet per player.
    let [_, l2, l1, l0] = (data_len as u32).to_be_bytes();
    let [t3, t2, t1, t0] = timestamp.to_be_bytes();
    out.extend_from_slice(&[tag_type, l2, l1, l0, t2, t1, t0, t3, 0, 0, 0]);
}

/// A whole tag: header, body and the trailing PreviousTagSize, as one buffer.
pub fn encode_tag(tag_type: u8, timestamp: u32, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(TAG_HEADER_LEN + data.len() + 4);
    put_tag_header(&mut out, tag_type, timestamp, data.len());
    out.put_slice(data);
    out.put_u32((TAG_HEADER_LEN + data.len()) as u32);
    out.freeze()
}

/// One FLV tag as read from a stream or file.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub tag_type: u8,
    pub timestamp: u32,
    pub data: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlvError {
    #[error("not an FLV stream: header starts with {0:02x?}")]
    BadSignature([u8; 3]),
    #[error("FLV tag of {len} bytes exceeds the limit of {max}")]
    TagTooLarge { len: usize, max: usize },
    #[error("FLV header data offset {0} is invalid")]
    BadHeaderOffset(u32),
}

/// Incremental FLV reader: push bytes as they arrive, pull tags out.
#[derive(Debug)]
pub struct FlvReader {
    buf: BytesMut,
    header: Option<(bool, bool)>,
    max_tag: usize,
}

impl FlvReader {
    pub fn new(max_tag: usize) -> Self {
        FlvReader { buf: BytesMut::new(), header: None, max_tag }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// `(has_audio, has_video)` from the header, once read.
    pub fn header_flags(&self) -> Option<(bool, bool)> {
        self.header
    }

    /// Bytes buffered but not yet returned as tags.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete tag, `Ok(None)` if more bytes are needed.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, FlvError> {
        if self.header.is_none() {
            if self.buf.len() < 9 {
                return Ok(None);
            }
            if &self.buf[..3] != b"FLV" {
                return Err(FlvError::BadSignature([self.buf[0], self.buf[1], self.buf[2]]));
            }
            let offset = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]);
            if !(9..=1024).contains(&offset) {
                return Err(FlvError::BadHeaderOffset(offset));
            }
            if self.buf.len() < offset as usize + 4 {
                return Ok(None);
            }
            let flags = self.buf[4];
            self.header = Some((flags & 4 != 0, flags & 1 != 0));
            self.buf.advance(offset as usize + 4);
        }
        if self.buf.len() < TAG_HEADER_LEN {
            return Ok(None);
        }
        let b = &self.buf;
        let len = (b[1] as usize) << 16 | (b[2] as usize) << 8 | b[3] as usize;
        if len > self.max_tag {
            return Err(FlvError::TagTooLarge { len, max: self.max_tag });
        }
        if b.len() < TAG_HEADER_LEN + len + 4 {
            return Ok(None);
        }
        let tag_type = b[0] & 0x1f;
        let timestamp = (b[4] as u32) << 16 | (b[5] as u32) << 8 | b[6] as u32 | (b[7] as u32) << 24;
        self.buf.advance(TAG_HEADER_LEN);
        let data = self.buf.split_to(len).freeze();
        self.buf.advance(4);
        Ok(Some(Tag { tag_type, timestamp, data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes() {
        assert_eq!(header(true, true), [b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);
        assert_eq!(header(false, true)[4], 1);
        assert_eq!(header(true, false)[4], 4);
    }

    #[test]
    fn tag_bytes_with_extended_timestamp() {
        let t = encode_tag(TAG_VIDEO, 0x0102_0304, &[0xAA, 0xBB]);
        assert_eq!(&t[..], &[9, 0, 0, 2, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, 0xAA, 0xBB, 0, 0, 0, 13]);
    }

    #[test]
    fn reader_round_trip_byte_by_byte() {
        let mut stream = header(true, false).to_vec();
        stream.extend_from_slice(&encode_tag(TAG_AUDIO, 40, &[0xAF, 1, 2, 3]));
        stream.extend_from_slice(&encode_tag(TAG_SCRIPT, 0x0100_0000, &[2, 0, 0]));
        let mut r = FlvReader::new(1 << 20);
        let mut tags = vec![];
        for b in &stream {
            r.push(std::slice::from_ref(b));
            while let Some(t) = r.next_tag().unwrap() {
                tags.push(t);
            }
        }
        assert_eq!(r.header_flags(), Some((true, false)));
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0], Tag { tag_type: TAG_AUDIO, timestamp: 40, data: Bytes::from_static(&[0xAF, 1, 2, 3]) });
        assert_eq!(tags[1].timestamp, 0x0100_0000);
    }

    #[test]
    fn reader_rejects_garbage_and_huge_tags() {
        let mut r = FlvReader::new(100);
        r.push(b"GET / HTTP/1.1\r\n");
        assert!(matches!(r.next_tag(), Err(FlvError::BadSignature(_))));
        let mut r = FlvReader::new(100);
        r.push(&header(true, true));
        r.push(&[9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r.next_tag(), Err(FlvError::TagTooLarge { len: 0xff_ffff, max: 100 }));
    }
}
