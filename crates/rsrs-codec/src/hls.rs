//! HLS media playlists: RFC 8216, in the form SRS writes them, and low-latency HLS (RFC 8216bis:
//! partial segments, preload hints, blocking reload, delta updates).

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
    /// Its partial segments (low-latency HLS), in order; empty otherwise.
    pub parts: Vec<Part>,
}

/// A partial segment (`EXT-X-PART`).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Seconds.
    pub duration: f64,
    pub uri: String,
    /// Starts with a keyframe: a player may start here.
    pub independent: bool,
}

/// What a low-latency playlist adds to the segments.
#[derive(Debug, Clone, Copy)]
pub struct LowLatency<'a> {
    /// `PART-TARGET`, seconds: no part is longer.
    pub part_target: f64,
    /// Parts of the segment being written, after the last whole segment.
    pub open_parts: &'a [Part],
    /// The initialization segment of the open parts (when no whole segment precedes them).
    pub open_map: Option<&'a str>,
    /// The part the server writes next (`EXT-X-PRELOAD-HINT`).
    pub preload_hint: Option<&'a str>,
    /// Asked for a delta update (`_HLS_skip=YES`): old segments are skipped.
    pub skip: bool,
}

/// How far back from the end parts stay listed, in target durations (RFC 8216bis: at least 3).
const PARTS_FOR_TARGETS: f64 = 3.0;

/// `CAN-SKIP-UNTIL`, in target durations (RFC 8216bis: at least 6).
const SKIP_UNTIL_TARGETS: f64 = 6.0;

/// A live media playlist for `segments` (oldest first). `min_target` is the configured fragment
/// length; the target duration covers the longest segment, as RFC 8216 requires.
pub fn media_playlist(segments: &[Segment], min_target: f64) -> String {
    let target = target_duration(segments, min_target);
    let mut s = String::with_capacity(64 + segments.len() * 48);
    // EXT-X-MAP needs version 6 (with I-frames not only); 7 is what fMP4 players expect.
    let version = if segments.iter().any(|x| x.map.is_some()) { 7 } else { 3 };
    let _ = write!(s, "#EXTM3U\n#EXT-X-VERSION:{version}\n");
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", segments.first().map(|x| x.sequence).unwrap_or(0));
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
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

/// The target duration: the longest segment, at least `min_target`, rounded up (RFC 8216).
fn target_duration(segments: &[Segment], min_target: f64) -> u64 {
    segments.iter().map(|s| s.duration).fold(min_target, f64::max).ceil() as u64
}

fn write_part(s: &mut String, p: &Part) {
    let _ = write!(s, "#EXT-X-PART:DURATION={:.3},URI=\"{}\"", p.duration, p.uri);
    s.push_str(if p.independent { ",INDEPENDENT=YES\n" } else { "\n" });
}

/// A low-latency media playlist: the segments (the last ones with their parts), the open
/// segment's parts and the preload hint, with the server control a blocking-reload player
/// needs; with `skip`, a delta update that leaves out segments more than `CAN-SKIP-UNTIL`
/// before the end (never across a discontinuity or a new map).
pub fn low_latency_playlist(segments: &[Segment], min_target: f64, ll: &LowLatency) -> String {
    let target = target_duration(segments, min_target);
    let skip_until = SKIP_UNTIL_TARGETS * target as f64;
    let mut s = String::with_capacity(256 + segments.len() * 64 + ll.open_parts.len() * 48);
    s.push_str("#EXTM3U\n#EXT-X-VERSION:9\n");
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(
        s,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},CAN-SKIP-UNTIL={skip_until:.1}",
        3.0 * ll.part_target
    );
    let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={:.3}", ll.part_target);
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", segments.first().map(|x| x.sequence).unwrap_or(0));
    // Seconds from each segment's start to the end of the playlist.
    let open: f64 = ll.open_parts.iter().map(|p| p.duration).sum();
    let mut from_end: Vec<f64> = Vec::with_capacity(segments.len());
    let mut acc = open;
    for seg in segments.iter().rev() {
        acc += seg.duration;
        from_end.push(acc);
    }
    from_end.reverse();
    let mut skipped = 0;
    if ll.skip {
        // Whole segments ending more than CAN-SKIP-UNTIL before the end, while nothing in them
        // (a discontinuity or a map change) would be lost with them.
        let first_map = segments.first().and_then(|x| x.map.as_deref());
        while skipped < segments.len()
            && from_end[skipped] - segments[skipped].duration > skip_until
            && !segments[skipped + 1..].first().is_some_and(|n| n.discontinuity || n.map.as_deref() != first_map)
            && !segments[skipped].discontinuity
        {
            skipped += 1;
        }
        if skipped > 0 {
            let _ = writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
    }
    // The map is written again after a skip: the segments listed name their own.
    let mut map: Option<&str> = None;
    for (i, seg) in segments.iter().enumerate().skip(skipped) {
        if seg.discontinuity {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(m) = seg.map.as_deref().filter(|m| map != Some(*m)) {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{m}\"");
            map = Some(m);
        }
        if from_end[i] <= PARTS_FOR_TARGETS * target as f64 + seg.duration {
            for p in &seg.parts {
                write_part(&mut s, p);
            }
        }
        let _ = writeln!(s, "#EXTINF:{:.3},\n{}", seg.duration, seg.uri);
    }
    if let Some(m) = ll.open_map.filter(|m| map != Some(*m)) {
        let _ = writeln!(s, "#EXT-X-MAP:URI=\"{m}\"");
    }
    for p in ll.open_parts {
        write_part(&mut s, p);
    }
    if let Some(hint) = ll.preload_hint {
        let _ = writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srs_shaped_playlist() {
        let segs = vec![
            Segment {
                sequence: 7,
                duration: 10.0,
                uri: "livestream-7.ts".into(),
                discontinuity: false,
                map: None,
                parts: vec![],
            },
            Segment {
                sequence: 8,
                duration: 10.44,
                uri: "livestream-8.ts".into(),
                discontinuity: true,
                map: None,
                parts: vec![],
            },
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
            parts: vec![],
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

    fn part(uri: &str, duration: f64, independent: bool) -> Part {
        Part { duration, uri: uri.into(), independent }
    }

    fn ll_segment(n: u64) -> Segment {
        Segment {
            sequence: n,
            duration: 1.0,
            uri: format!("x-{n}.m4s"),
            discontinuity: false,
            map: Some("x/init.mp4".into()),
            parts: vec![part(&format!("x-{n}.0.m4s"), 0.5, true), part(&format!("x-{n}.1.m4s"), 0.5, false)],
        }
    }

    #[test]
    fn low_latency_playlist_lists_recent_parts_and_the_hint() {
        let segs: Vec<Segment> = (0..6).map(ll_segment).collect();
        let open = [part("x-6.0.m4s", 0.48, true)];
        let ll = LowLatency {
            part_target: 0.5,
            open_parts: &open,
            open_map: Some("x/init.mp4"),
            preload_hint: Some("x-6.1.m4s"),
            skip: false,
        };
        let text = low_latency_playlist(&segs, 1.0, &ll);
        let head = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n\
                    #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=6.0\n\
                    #EXT-X-PART-INF:PART-TARGET=0.500\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"x/init.mp4\"\n\
                    #EXTINF:1.000,\nx-0.m4s\n";
        assert!(text.starts_with(head), "{text}");
        // Parts of the segments within 3 target durations of the end, then the open ones and the hint.
        assert!(!text.contains("x-2.0.m4s"), "{text}");
        assert!(text.ends_with(
            "#EXT-X-PART:DURATION=0.500,URI=\"x-3.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.500,URI=\"x-3.1.m4s\"\n#EXTINF:1.000,\nx-3.m4s\n\
             #EXT-X-PART:DURATION=0.500,URI=\"x-4.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.500,URI=\"x-4.1.m4s\"\n#EXTINF:1.000,\nx-4.m4s\n\
             #EXT-X-PART:DURATION=0.500,URI=\"x-5.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.500,URI=\"x-5.1.m4s\"\n#EXTINF:1.000,\nx-5.m4s\n\
             #EXT-X-PART:DURATION=0.480,URI=\"x-6.0.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x-6.1.m4s\"\n"
        ), "{text}");
        assert_eq!(text.matches("#EXT-X-MAP").count(), 1);
    }

    #[test]
    fn delta_updates_skip_old_segments_but_never_a_discontinuity() {
        let segs: Vec<Segment> = (0..12).map(ll_segment).collect();
        let ll = LowLatency { part_target: 0.5, open_parts: &[], open_map: None, preload_hint: None, skip: true };
        let text = low_latency_playlist(&segs, 1.0, &ll);
        // 12 one-second segments, CAN-SKIP-UNTIL 6 s: the first 5 end more than 6 s before the end.
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n#EXT-X-MAP:URI=\"x/init.mp4\"\n#EXTINF:1.000,\nx-5.m4s\n"), "{text}");
        let mut segs = segs;
        segs[3].discontinuity = true;
        let text = low_latency_playlist(&segs, 1.0, &ll);
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n"), "stops before the discontinuity: {text}");
        let no_skip = LowLatency { skip: false, ..ll };
        assert!(!low_latency_playlist(&segs, 1.0, &no_skip).contains("EXT-X-SKIP"));
    }
}
