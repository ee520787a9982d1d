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
    /// The initialization segment (fMP4) this segment needs, as the playlist names it.
    pub map: Option<String>,
}

/// A live media playlist for `segments` (oldest first). `min_target` is the configured fragment
/// length; the target duration covers the longest segment, as RFC 8216 requires.
pub fn media_playlist(segments: &[Segment], min_target: f64) -> String {
    let longest = segments.iter().map(|s| s.duration).fold(min_target, f64::max);
    let mut s = String::with_capacity(64 + segments.len() * 48);
    // EXT-X-MAP needs version 6 (with I-frames not only); 7 is what fMP4 players expect.
    let version = if segments.iter().any(|x| x.map.is_some()) { 7 } else { 3 };
    let _ = write!(s, "#EXTM3U\n#EXT-X-VERSION:{version}\n");
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", segments.first().map(|x| x.sequence).unwrap_or(0));
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", longest.ceil() as u64);
    let mut map: Option<&str> = None;
    for seg in segments {
        if seg.discontinuity {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        // A map applies until the next one: written first, and again when it changes.
        if let Some(m) = seg.map.as_deref().filter(|m| map != Some(*m)) {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{m}\"");
            map = Some(m);
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
            Segment { sequence: 7, duration: 10.0, uri: "livestream-7.ts".into(), discontinuity: false, map: None },
            Segment { sequence: 8, duration: 10.44, uri: "livestream-8.ts".into(), discontinuity: true, map: None },
        ];
        assert_eq!(
            media_playlist(&segs, 10.0),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-TARGETDURATION:11\n\
             #EXTINF:10.000, no desc\nlivestream-7.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:10.440, no desc\nlivestream-8.ts\n"
        );
    }

    #[test]
    fn fmp4_playlist_maps_each_initialization_segment_once() {
        let seg = |n: u64, map: &str, disc| Segment {
            sequence: n,
            duration: 2.0,
            uri: format!("s-{n}.m4s"),
            discontinuity: disc,
            map: Some(map.into()),
        };
        let text = media_playlist(
            &[seg(1, "s/init.mp4", false), seg(2, "s/init.mp4", false), seg(3, "s/init-1.mp4", true)],
            2.0,
        );
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-MAP:URI=\"s/init.mp4\"\n#EXTINF:2.000, no desc\ns-1.m4s\n#EXTINF:2.000, no desc\ns-2.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"s/init-1.mp4\"\n#EXTINF:2.000, no desc\ns-3.m4s\n"
        );
    }
}
