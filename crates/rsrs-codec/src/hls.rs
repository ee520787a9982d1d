//! HLS media playlists (RFC 8216), in the form SRS writes them.

use std::fmt::Write;

/// One segment as listed in a playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub sequence: u64,
    /// Seconds.
    pub duration: f64,
    pub uri: String,
    /// A discontinuity (new publish, codec change) precedes this segment.
    pub discontinuity: bool,
}

/// A live media playlist for `segments` (oldest first). `min_target` is the configured fragment
/// length; the target duration covers the longest segment, as RFC 8216 requires.
pub fn media_playlist(segments: &[Segment], min_target: f64) -> String {
    let longest = segments.iter().map(|s| s.duration).fold(min_target, f64::max);
    let mut s = String::with_capacity(64 + segments.len() * 48);
    s.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", segments.first().map(|x| x.sequence).unwrap_or(0));
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", longest.ceil() as u64);
    for seg in segments {
        if seg.discontinuity {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let _ = writeln!(s, "#EXTINF:{:.3}, no desc\n{}", seg.duration, seg.uri);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srs_shaped_playlist() {
        let segs = vec![
            Segment { sequence: 7, duration: 10.0, uri: "livestream-7.ts".into(), discontinuity: false },
            Segment { sequence: 8, duration: 10.44, uri: "livestream-8.ts".into(), discontinuity: true },
        ];
        assert_eq!(
            media_playlist(&segs, 10.0),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-TARGETDURATION:11\n\
             #EXTINF:10.000, no desc\nlivestream-7.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:10.440, no desc\nlivestream-8.ts\n"
        );
    }
}
