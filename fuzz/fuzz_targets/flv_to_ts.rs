//! An FLV byte stream (HTTP-FLV or a DVR file) read tag by tag, each audio/video body parsed
//! as the core parses a publisher's media, described as the API does, and muxed to MPEG-TS as
//! the HLS writer does (configurations taken, frames muxed).
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rsrs_codec::media::{Codec, Content, Track};
use rsrs_codec::{av1, avc, flv, hevc, ts, vp9};

fuzz_target!(|data: &[u8]| {
    let mut reader = flv::FlvReader::new(1 << 20);
    reader.push(data);
    // The first byte picks the video codec the TS stream is made for.
    let video = if data.first().is_some_and(|b| b & 1 == 1) { ts::VideoCodec::Hevc } else { ts::VideoCodec::H264 };
    let mut muxer = ts::TsMuxer::new(Some(video), Some(ts::AudioCodec::Aac));
    let mut out = BytesMut::new();
    muxer.tables(&mut out);
    while let Ok(Some(tag)) = reader.next_tag() {
        let track = match tag.tag_type {
            8 => Track::Audio,
            9 => Track::Video,
            _ => Track::Data,
        };
        let Ok(hdr) = flv::tag::parse(track, &tag.data) else { continue };
        let body = &tag.data[hdr.data_offset..];
        // What the core would write back for elementary data must parse to the same header.
        if let Ok(again) = flv::tag::write(track, hdr.codec, hdr.content, hdr.keyframe, hdr.cts, body) {
            let back = flv::tag::parse(track, &again).expect("a written tag parses");
            assert_eq!((back.codec, back.content, &again[back.data_offset..]), (hdr.codec, hdr.content, body));
        }
        match (track, hdr.codec, hdr.content) {
            (Track::Audio, _, _) => {
                let _ = flv::audio_info(&tag.data);
            }
            (Track::Video, _, _) => {
                let _ = flv::video_info(&tag.data);
            }
            _ => {}
        }
        let _ = match (hdr.codec, hdr.content) {
            (Codec::H264, Content::Config) => muxer.set_avc_config(body),
            (Codec::H265, Content::Config) => muxer.set_hevc_config(body),
            (Codec::Aac, Content::Config) => muxer.set_aac_config(body),
            (Codec::H264 | Codec::H265, Content::Frame) => {
                muxer.video(body, tag.timestamp, hdr.cts, hdr.keyframe, &mut out)
            }
            (Codec::Aac, Content::Frame) => muxer.audio(body, tag.timestamp, &mut out),
            _ => Ok(()),
        };
        if out.len() > 8 << 20 {
            out.clear();
        }
    }
    assert_eq!(out.len() % 188, 0, "TS output is whole packets");
    let _ = avc::sps_dimensions(data);
    let _ = hevc::sps_dimensions(data);
    let _ = hevc::HevcConfig::parse(data);
    let _ = av1::Av1Config::parse(data).map(|c| c.max_dimensions());
    let _ = vp9::keyframe_dimensions(data);
    let _ = vp9::Vp9Config::parse(data);
});
