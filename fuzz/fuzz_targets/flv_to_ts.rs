//! An FLV byte stream (HTTP-FLV or a DVR file) read tag by tag, each audio/video body inspected
//! and muxed to MPEG-TS as the HLS writer does.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rsrs_codec::{avc, flv, ts};

fuzz_target!(|data: &[u8]| {
    let mut reader = flv::FlvReader::new(1 << 20);
    reader.push(data);
    let mut muxer = ts::TsMuxer::new(true, Some(ts::AudioCodec::Aac));
    let mut out = BytesMut::new();
    muxer.tables(&mut out);
    while let Ok(Some(tag)) = reader.next_tag() {
        match tag.tag_type {
            8 => {
                let _ = flv::audio_info(&tag.data);
                let _ = flv::is_audio_sequence_header(&tag.data);
                let _ = muxer.audio(&tag.data, tag.timestamp, &mut out);
            }
            9 => {
                let _ = flv::video_info(&tag.data);
                let _ = flv::is_video_keyframe(&tag.data);
                let _ = flv::is_video_sequence_header(&tag.data);
                let _ = muxer.video(&tag.data, tag.timestamp, &mut out);
            }
            _ => {}
        }
        if out.len() > 8 << 20 {
            out.clear();
        }
    }
    assert_eq!(out.len() % 188, 0, "TS output is whole packets");
    let _ = avc::sps_dimensions(data);
});
