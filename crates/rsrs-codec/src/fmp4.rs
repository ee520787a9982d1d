//! Fragmented MP4 (ISO 14496-12, CMAF shaped): the initialization segment (`ftyp` + `moov`
//! with empty sample tables and `mvex`) and media fragments (`moof` + `mdat`), for fMP4 HLS and
//! MP4 recordings.
//!
//! Sans-io and stateless: the caller gives the tracks' configurations once and then, per
//! fragment, each track's samples (sizes, durations, composition offsets, sync flags) and
//! their bytes. Boxes are written by hand: the set is small and fixed, every byte is tested,
//! and no MP4 crate writes fragments from elementary data without an I/O layer of its own.

use crate::aac::AudioSpecificConfig;

/// What a track carries, with the configuration record its sample entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleEntry {
    /// `avc1` with its avcC.
    Avc { avcc: Vec<u8>, width: u16, height: u16 },
    /// `hvc1` with its hvcC (parameter sets also in band, as encoders send them).
    Hevc { hvcc: Vec<u8>, width: u16, height: u16 },
    /// `av01` with its av1C.
    Av1 { av1c: Vec<u8>, width: u16, height: u16 },
    /// `vp09` with its vpcC (the record, without the full box's version and flags).
    Vp9 { vpcc: Vec<u8>, width: u16, height: u16 },
    /// `mp4a` with an esds around the AudioSpecificConfig.
    Aac { asc: Vec<u8>, sample_rate: u32, channels: u16 },
    /// `Opus` with a dOps made from the OpusHead.
    Opus { head: OpusHead },
}

/// The OpusHead identification header (RFC 7845 5.1), as Enhanced RTMP and Ogg carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    pub input_sample_rate: u32,
    pub output_gain: i16,
    pub mapping_family: u8,
    /// Stream count, coupled count and the channel mapping, for mapping families other than 0.
    pub mapping: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("OpusHead of {0} bytes is malformed (it needs the `OpusHead` magic and 19 bytes)")]
pub struct BadOpusHead(pub usize);

impl OpusHead {
    pub fn parse(b: &[u8]) -> Result<OpusHead, BadOpusHead> {
        if b.len() < 19 || &b[..8] != b"OpusHead" {
            return Err(BadOpusHead(b.len()));
        }
        let family = b[18];
        let mapping = if family == 0 { Vec::new() } else { b[19..].to_vec() };
        if family != 0 && mapping.len() < 2 + b[9] as usize {
            return Err(BadOpusHead(b.len()));
        }
        Ok(OpusHead {
            channels: b[9],
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            input_sample_rate: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            output_gain: i16::from_le_bytes([b[16], b[17]]),
            mapping_family: family,
            mapping,
        })
    }
}

impl SampleEntry {
    /// The media timescale for the track: 90 kHz for video, the sample rate for audio (48 kHz
    /// for Opus, whatever the input rate).
    pub fn timescale(&self) -> u32 {
        match self {
            SampleEntry::Avc { .. } | SampleEntry::Hevc { .. } | SampleEntry::Av1 { .. } | SampleEntry::Vp9 { .. } => {
                90_000
            }
            SampleEntry::Aac { sample_rate, .. } => *sample_rate,
            SampleEntry::Opus { .. } => 48_000,
        }
    }

    pub fn is_video(&self) -> bool {
        matches!(
            self,
            SampleEntry::Avc { .. } | SampleEntry::Hevc { .. } | SampleEntry::Av1 { .. } | SampleEntry::Vp9 { .. }
        )
    }

    /// An AAC entry from an AudioSpecificConfig.
    pub fn aac(asc: &[u8]) -> Option<SampleEntry> {
        let c = AudioSpecificConfig::parse(asc).ok()?;
        Some(SampleEntry::Aac { asc: asc.to_vec(), sample_rate: c.sample_rate()?, channels: c.channels.max(1) as u16 })
    }
}

/// A track of the init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// 1-based, unique in the file.
    pub id: u32,
    pub entry: SampleEntry,
}

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    pub size: u32,
    /// A sync sample (a video keyframe; every audio sample).
    pub sync: bool,
    /// Composition offset (PTS - DTS) in the track's timescale.
    pub cts: i32,
}

/// One track's part of a fragment: its samples and their bytes, in decode order.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
    /// The samples' bytes, concatenated; as long as the sizes add up to.
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("track {track}'s samples add up to {sizes} bytes, but {data} bytes were given")]
    SizeMismatch { track: u32, sizes: u64, data: usize },
    #[error("a fragment of {0} bytes is larger than 4 GiB")]
    TooLarge(u64),
}

fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn full(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    boxed(out, kind, |o| {
        o.extend_from_slice(&(((version as u32) << 24) | (flags & 0x00ff_ffff)).to_be_bytes());
        body(o)
    })
}

fn u16b(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn u32b(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}

/// The unity matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// `ftyp` + `moov` for `tracks`.
pub fn init_segment(tracks: &[Track]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    boxed(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        u32b(o, 0);
        for brand in [b"iso6", b"cmfc", b"mp41", b"dash"] {
            o.extend_from_slice(brand);
        }
    });
    boxed(&mut out, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32b(o, 0); // creation time
            u32b(o, 0); // modification time
            u32b(o, 1000); // timescale
            u32b(o, 0); // duration: unknown (fragmented)
            u32b(o, 0x0001_0000); // rate 1.0
            u16b(o, 0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            MATRIX.iter().for_each(|m| u32b(o, *m));
            o.extend_from_slice(&[0; 24]); // pre_defined
            u32b(o, tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1);
        });
        for t in tracks {
            trak(o, t);
        }
        boxed(o, b"mvex", |o| {
            for t in tracks {
                full(o, b"trex", 0, 0, |o| {
                    u32b(o, t.id);
                    u32b(o, 1); // sample description index
                    u32b(o, 0); // default duration
                    u32b(o, 0); // default size
                    u32b(o, 0); // default flags
                });
            }
        });
    });
    out
}

fn trak(o: &mut Vec<u8>, t: &Track) {
    let video = t.entry.is_video();
    let (w, h) = match &t.entry {
        SampleEntry::Avc { width, height, .. }
        | SampleEntry::Hevc { width, height, .. }
        | SampleEntry::Av1 { width, height, .. }
        | SampleEntry::Vp9 { width, height, .. } => (*width, *height),
        _ => (0, 0),
    };
    boxed(o, b"trak", |o| {
        // Flags: enabled, in movie, in preview.
        full(o, b"tkhd", 0, 3, |o| {
            u32b(o, 0);
            u32b(o, 0);
            u32b(o, t.id);
            u32b(o, 0); // reserved
            u32b(o, 0); // duration
            o.extend_from_slice(&[0; 8]);
            u16b(o, 0); // layer
            u16b(o, 0); // alternate group
            u16b(o, if video { 0 } else { 0x0100 }); // volume
            u16b(o, 0);
            MATRIX.iter().for_each(|m| u32b(o, *m));
            u32b(o, (w as u32) << 16);
            u32b(o, (h as u32) << 16);
        });
        boxed(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                u32b(o, 0);
                u32b(o, 0);
                u32b(o, t.entry.timescale());
                u32b(o, 0);
                u16b(o, 0x55c4); // language: und
                u16b(o, 0);
            });
            full(o, b"hdlr", 0, 0, |o| {
                u32b(o, 0);
                o.extend_from_slice(if video { b"vide" } else { b"soun" });
                o.extend_from_slice(&[0; 12]);
                o.extend_from_slice(if video { b"VideoHandler\0" } else { b"SoundHandler\0" });
            });
            boxed(o, b"minf", |o| {
                if video {
                    full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                } else {
                    full(o, b"smhd", 0, 0, |o| o.extend_from_slice(&[0; 4]));
                }
                boxed(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        u32b(o, 1);
                        full(o, b"url ", 0, 1, |_| {}); // media in this file
                    })
                });
                boxed(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        u32b(o, 1);
                        sample_entry(o, &t.entry);
                    });
                    for kind in [b"stts", b"stsc", b"stco"] {
                        full(o, kind, 0, 0, |o| u32b(o, 0));
                    }
                    full(o, b"stsz", 0, 0, |o| {
                        u32b(o, 0);
                        u32b(o, 0);
                    });
                });
            });
        });
    });
}

fn visual_entry(o: &mut Vec<u8>, kind: &[u8; 4], w: u16, h: u16, config: (&[u8; 4], &[u8])) {
    visual_entry_with(o, kind, w, h, |o| boxed(o, config.0, |o| o.extend_from_slice(config.1)))
}

fn visual_entry_with(o: &mut Vec<u8>, kind: &[u8; 4], w: u16, h: u16, config: impl FnOnce(&mut Vec<u8>)) {
    boxed(o, kind, |o| {
        o.extend_from_slice(&[0; 6]);
        u16b(o, 1); // data reference index
        o.extend_from_slice(&[0; 16]);
        u16b(o, w);
        u16b(o, h);
        u32b(o, 0x0048_0000); // 72 dpi
        u32b(o, 0x0048_0000);
        u32b(o, 0);
        u16b(o, 1); // frame count
        o.extend_from_slice(&[0; 32]); // compressor name
        u16b(o, 0x0018); // depth
        u16b(o, 0xffff); // pre_defined = -1
        config(o);
    });
}

fn audio_entry(o: &mut Vec<u8>, kind: &[u8; 4], channels: u16, rate: u32, config: impl FnOnce(&mut Vec<u8>)) {
    boxed(o, kind, |o| {
        o.extend_from_slice(&[0; 6]);
        u16b(o, 1);
        o.extend_from_slice(&[0; 8]);
        u16b(o, channels);
        u16b(o, 16); // sample size
        u32b(o, 0);
        // The rate as 16.16 fixed point; rates above 65535 (none we carry) are written as 0.
        u32b(o, if rate <= 0xffff { rate << 16 } else { 0 });
        config(o);
    });
}

/// An MPEG-4 descriptor: tag and a one-byte length (every descriptor here is short).
fn descriptor(o: &mut Vec<u8>, tag: u8, body: &[u8]) {
    o.push(tag);
    // Four-byte length form, valid for any size a descriptor here can have.
    let n = body.len() as u32;
    o.extend_from_slice(&[
        0x80 | (n >> 21) as u8 & 0x7f,
        0x80 | (n >> 14) as u8 & 0x7f,
        0x80 | (n >> 7) as u8 & 0x7f,
        n as u8 & 0x7f,
    ]);
    o.extend_from_slice(body);
}

fn sample_entry(o: &mut Vec<u8>, e: &SampleEntry) {
    match e {
        SampleEntry::Avc { avcc, width, height } => visual_entry(o, b"avc1", *width, *height, (b"avcC", avcc)),
        SampleEntry::Hevc { hvcc, width, height } => visual_entry(o, b"hvc1", *width, *height, (b"hvcC", hvcc)),
        SampleEntry::Av1 { av1c, width, height } => visual_entry(o, b"av01", *width, *height, (b"av1C", av1c)),
        // vpcC is a full box, version 1.
        SampleEntry::Vp9 { vpcc, width, height } => {
            visual_entry_with(o, b"vp09", *width, *height, |o| full(o, b"vpcC", 1, 0, |o| o.extend_from_slice(vpcc)))
        }
        SampleEntry::Aac { asc, sample_rate, channels } => audio_entry(o, b"mp4a", *channels, *sample_rate, |o| {
            full(o, b"esds", 0, 0, |o| {
                let mut dsi = Vec::new();
                descriptor(&mut dsi, 0x05, asc);
                let mut dcd = vec![0x40, 0x15, 0, 0, 0];
                dcd.extend_from_slice(&[0; 8]); // max and average bitrate: unknown
                dcd.extend_from_slice(&dsi);
                let mut es = vec![0, 0, 0]; // ES_ID, flags
                descriptor(&mut es, 0x04, &dcd);
                descriptor(&mut es, 0x06, &[0x02]);
                descriptor(o, 0x03, &es);
            })
        }),
        SampleEntry::Opus { head } => audio_entry(o, b"Opus", head.channels as u16, 48_000, |o| {
            boxed(o, b"dOps", |o| {
                o.push(0); // version
                o.push(head.channels);
                u16b(o, head.pre_skip);
                u32b(o, head.input_sample_rate);
                o.extend_from_slice(&head.output_gain.to_be_bytes());
                o.push(head.mapping_family);
                o.extend_from_slice(&head.mapping);
            })
        }),
    }
}

/// Sample flags: a sync sample depends on no other; others depend on one and are not sync.
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// `moof` + `mdat` for one fragment of every track in `runs`.
pub fn fragment(sequence: u32, runs: &[Run]) -> Result<Vec<u8>, FragmentError> {
    for r in runs {
        let sizes: u64 = r.samples.iter().map(|s| s.size as u64).sum();
        if sizes != r.data.len() as u64 {
            return Err(FragmentError::SizeMismatch { track: r.track_id, sizes, data: r.data.len() });
        }
    }
    let data_len: u64 = runs.iter().map(|r| r.data.len() as u64).sum();
    let samples: usize = runs.iter().map(|r| r.samples.len()).sum();
    let mut out = Vec::with_capacity(64 + runs.len() * 64 + samples * 16 + data_len as usize);
    let mut offsets = Vec::with_capacity(runs.len());
    boxed(&mut out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32b(o, sequence));
        for r in runs {
            boxed(o, b"traf", |o| {
                full(o, b"tfhd", 0, 0x02_0000, |o| u32b(o, r.track_id)); // default-base-is-moof
                full(o, b"tfdt", 1, 0, |o| o.extend_from_slice(&r.base_decode_time.to_be_bytes()));
                // data offset, and per sample: duration, size, flags, composition offset.
                full(o, b"trun", 1, 0x0f01, |o| {
                    u32b(o, r.samples.len() as u32);
                    offsets.push(o.len());
                    u32b(o, 0); // data offset, patched below
                    for s in r.samples {
                        u32b(o, s.duration);
                        u32b(o, s.size);
                        u32b(o, if s.sync { SYNC } else { NON_SYNC });
                        o.extend_from_slice(&s.cts.to_be_bytes());
                    }
                });
            });
        }
    });
    let moof_len = out.len();
    let total = moof_len as u64 + 8 + data_len;
    if total > u32::MAX as u64 {
        return Err(FragmentError::TooLarge(total));
    }
    // Each run's data offset counts from the start of the moof.
    let mut at = moof_len as u64 + 8;
    for (r, pos) in runs.iter().zip(offsets) {
        out[pos..pos + 4].copy_from_slice(&(at as u32).to_be_bytes());
        at += r.data.len() as u64;
    }
    u32b(&mut out, (8 + data_len) as u32);
    out.extend_from_slice(b"mdat");
    for r in runs {
        out.extend_from_slice(r.data);
    }
    Ok(out)
}

/// The movie fragment random access box (`mfra`, ISO 14496-12 8.8.9) that ends a finished
/// fragmented file: for `track_id`, each fragment's start time (in the track's timescale) and
/// the file offset of its `moof`, so players seek without reading every fragment.
pub fn mfra(track_id: u32, entries: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + entries.len() * 19);
    boxed(&mut out, b"mfra", |o| {
        full(o, b"tfra", 1, 0, |o| {
            u32b(o, track_id);
            u32b(o, 0); // traf, trun and sample numbers each one byte
            u32b(o, entries.len() as u32);
            for (time, offset) in entries {
                o.extend_from_slice(&time.to_be_bytes());
                o.extend_from_slice(&offset.to_be_bytes());
                o.extend_from_slice(&[1, 1, 1]); // first traf, first trun, first sample
            }
        });
        let size = o.len() as u32 + 16; // this mfro included
        full(o, b"mfro", 0, 0, |o| u32b(o, size));
    });
    out
}

/// How much of a fragmented MP4 written up to a crash is whole: the length up to the end of the
/// last complete top-level box.
pub fn whole_prefix(file: &[u8]) -> usize {
    whole_len(file.len() as u64, |at| file.get(at as usize..at as usize + 8)?.try_into().ok()) as usize
}

/// [`whole_prefix`] for a file of `len` bytes read box header by box header: `head(at)` gives
/// the 8 bytes at `at` (a recording may be large; nothing else of it is read).
pub fn whole_len(len: u64, mut head: impl FnMut(u64) -> Option<[u8; 8]>) -> u64 {
    let mut at = 0u64;
    while len - at >= 8 {
        let Some(h) = head(at) else { break };
        let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        if size < 8 || size > len - at {
            break;
        }
        at += size;
    }
    at
}

/// Converts milliseconds to a timescale's ticks (exact for the timescales here).
pub fn ticks(ms: u64, timescale: u32) -> u64 {
    ms * timescale as u64 / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boxes at the top level of `b`: (kind, body).
    fn boxes(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut v = Vec::new();
        while b.len() >= 8 {
            let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            assert!(size >= 8 && size <= b.len(), "box size {size} of {} left", b.len());
            v.push(([b[4], b[5], b[6], b[7]], &b[8..size]));
            b = &b[size..];
        }
        assert!(b.is_empty(), "trailing bytes");
        v
    }

    fn child<'a>(b: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
        let (first, rest) = path.split_first().unwrap();
        let (_, body) = boxes(b).into_iter().find(|(k, _)| k == *first).unwrap_or_else(|| panic!("no {first:?}"));
        if rest.is_empty() {
            body
        } else {
            child(body, rest)
        }
    }

    const AVCC: [u8; 17] = [1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1e, 1, 0, 2, 0x68, 0xee];

    #[test]
    fn init_segment_bytes_for_h264_and_aac() {
        let tracks = [
            Track { id: 1, entry: SampleEntry::Avc { avcc: AVCC.to_vec(), width: 640, height: 360 } },
            Track { id: 2, entry: SampleEntry::aac(&[0x12, 0x10]).unwrap() },
        ];
        let init = init_segment(&tracks);
        let top: Vec<[u8; 4]> = boxes(&init).iter().map(|(k, _)| *k).collect();
        assert_eq!(top, vec![*b"ftyp", *b"moov"]);
        assert_eq!(child(&init, &[b"ftyp"]), b"iso6\0\0\0\0iso6cmfcmp41dash");
        let mvhd = child(&init, &[b"moov", b"mvhd"]);
        assert_eq!(mvhd.len(), 100);
        assert_eq!(&mvhd[12..16], &1000u32.to_be_bytes(), "timescale");
        assert_eq!(&mvhd[96..100], &3u32.to_be_bytes(), "next track id");
        // The video track: tkhd with 640x360, mdhd at 90 kHz, avc1 with the avcC as given.
        let traks: Vec<&[u8]> =
            boxes(child(&init, &[b"moov"])).into_iter().filter(|(k, _)| k == b"trak").map(|(_, b)| b).collect();
        assert_eq!(traks.len(), 2);
        let tkhd = child(traks[0], &[b"tkhd"]);
        assert_eq!(&tkhd[..4], &[0, 0, 0, 3]);
        assert_eq!(&tkhd[12..16], &1u32.to_be_bytes());
        assert_eq!(&tkhd[76..84], &[0x02, 0x80, 0, 0, 0x01, 0x68, 0, 0]);
        assert_eq!(&child(traks[0], &[b"mdia", b"mdhd"])[12..16], &90_000u32.to_be_bytes());
        assert_eq!(&child(traks[0], &[b"mdia", b"hdlr"])[8..12], b"vide");
        let stsd = child(traks[0], &[b"mdia", b"minf", b"stbl", b"stsd"]);
        assert_eq!(&stsd[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        let avc1 = child(&stsd[8..], &[b"avc1"]);
        assert_eq!(&avc1[24..28], &[0x02, 0x80, 0x01, 0x68], "width, height");
        assert_eq!(child(&avc1[78..], &[b"avcC"]), &AVCC);
        // The audio track: mdhd at 44.1 kHz, mp4a with an esds holding the ASC.
        assert_eq!(&child(traks[1], &[b"mdia", b"mdhd"])[12..16], &44_100u32.to_be_bytes());
        let stsd = child(traks[1], &[b"mdia", b"minf", b"stbl", b"stsd"]);
        let mp4a = child(&stsd[8..], &[b"mp4a"]);
        assert_eq!(&mp4a[16..20], &[0, 2, 0, 16], "2 channels, 16 bit");
        assert_eq!(&mp4a[24..28], &[0xac, 0x44, 0, 0], "44100 as 16.16");
        let esds = child(&mp4a[28..], &[b"esds"]);
        assert_eq!(
            esds,
            &[
                0, 0, 0, 0, 0x03, 0x80, 0x80, 0x80, 0x22, 0, 0, 0, 0x04, 0x80, 0x80, 0x80, 0x14, 0x40, 0x15, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x80, 0x80, 0x80, 0x02, 0x12, 0x10, 0x06, 0x80, 0x80, 0x80, 0x01, 0x02
            ][..]
        );
        // mvex: one trex per track.
        let mvex = child(&init, &[b"moov", b"mvex"]);
        assert_eq!(boxes(mvex).len(), 2);
        assert_eq!(&boxes(mvex)[1].1[4..8], &2u32.to_be_bytes());
    }

    #[test]
    fn opus_entry_has_a_big_endian_dops() {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let h = OpusHead::parse(&head).unwrap();
        assert_eq!((h.channels, h.pre_skip, h.input_sample_rate), (2, 312, 48_000));
        let init = init_segment(&[Track { id: 1, entry: SampleEntry::Opus { head: h } }]);
        let stsd = child(&init, &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]);
        let opus = child(&stsd[8..], &[b"Opus"]);
        assert_eq!(&opus[24..28], &[0xbb, 0x80, 0, 0], "48000 as 16.16");
        assert_eq!(child(&opus[28..], &[b"dOps"]), &[0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]);
        assert!(OpusHead::parse(b"OpusHea").is_err());
        assert!(
            OpusHead::parse(&[b"OpusHead".as_slice(), &[1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1]].concat()).is_err(),
            "family 1 without its mapping"
        );
    }

    #[test]
    fn mfra_points_at_fragments() {
        let m = mfra(1, &[(0, 800), (180_000, 95_000)]);
        let (kind, body) = boxes(&m)[0];
        assert_eq!(&kind, b"mfra");
        let tfra = child(body, &[b"tfra"]);
        assert_eq!(&tfra[..16], &[1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&tfra[16..35], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x20, 1, 1, 1]);
        assert_eq!(&tfra[35..43], &180_000u64.to_be_bytes());
        // mfro gives the whole mfra's size, so a reader finds it from the end of the file.
        assert_eq!(&m[m.len() - 4..], &(m.len() as u32).to_be_bytes());
    }

    #[test]
    fn vp9_entry_has_a_version_1_vpcc() {
        let record = [0, 21, 0x82, 2, 2, 2, 0, 0];
        let init = init_segment(&[Track {
            id: 1,
            entry: SampleEntry::Vp9 { vpcc: record.to_vec(), width: 640, height: 360 },
        }]);
        let stsd = child(&init, &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]);
        let vp09 = child(&stsd[8..], &[b"vp09"]);
        assert_eq!(&vp09[24..28], &[0x02, 0x80, 0x01, 0x68]);
        assert_eq!(child(&vp09[78..], &[b"vpcC"]), &[1, 0, 0, 0, 0, 21, 0x82, 2, 2, 2, 0, 0]);
    }

    #[test]
    fn fragment_bytes_and_data_offsets() {
        let video = [
            Sample { duration: 3600, size: 3, sync: true, cts: 7200 },
            Sample { duration: 3600, size: 2, sync: false, cts: -3600 },
        ];
        let audio = [Sample { duration: 1024, size: 4, sync: true, cts: 0 }];
        let runs = [
            Run { track_id: 1, base_decode_time: 90_000, samples: &video, data: &[1, 2, 3, 4, 5] },
            Run { track_id: 2, base_decode_time: 44_100, samples: &audio, data: &[6, 7, 8, 9] },
        ];
        let f = fragment(5, &runs).unwrap();
        let top = boxes(&f);
        assert_eq!(top.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![*b"moof", *b"mdat"]);
        assert_eq!(top[1].1, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let moof_len = 8 + top[0].1.len();
        assert_eq!(child(&f, &[b"moof", b"mfhd"]), &[0, 0, 0, 0, 0, 0, 0, 5]);
        let trafs: Vec<&[u8]> = boxes(top[0].1).into_iter().filter(|(k, _)| k == b"traf").map(|(_, b)| b).collect();
        assert_eq!(child(trafs[0], &[b"tfhd"]), &[0, 2, 0, 0, 0, 0, 0, 1]);
        assert_eq!(child(trafs[0], &[b"tfdt"]), &[1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x5f, 0x90]);
        let trun = child(trafs[0], &[b"trun"]);
        let mut want = vec![1, 0, 0x0f, 0x01, 0, 0, 0, 2];
        want.extend_from_slice(&(moof_len as u32 + 8).to_be_bytes());
        want.extend_from_slice(&[0, 0, 0x0e, 0x10, 0, 0, 0, 3, 0x02, 0, 0, 0, 0, 0, 0x1c, 0x20]);
        want.extend_from_slice(&[0, 0, 0x0e, 0x10, 0, 0, 0, 2, 0x01, 0x01, 0, 0, 0xff, 0xff, 0xf1, 0xf0]);
        assert_eq!(trun, &want[..]);
        let trun = child(trafs[1], &[b"trun"]);
        assert_eq!(&trun[8..12], &(moof_len as u32 + 8 + 5).to_be_bytes(), "audio data after the video's");
        assert_eq!(
            fragment(1, &[Run { track_id: 3, base_decode_time: 0, samples: &audio, data: &[1] }]),
            Err(FragmentError::SizeMismatch { track: 3, sizes: 4, data: 1 })
        );
        assert_eq!(ticks(1000, 90_000), 90_000);
        assert_eq!(whole_prefix(&f), f.len());
        assert_eq!(whole_prefix(&f[..f.len() - 1]), 8 + top[0].1.len(), "a cut mdat is not whole");
        assert_eq!(whole_prefix(&[0, 0, 0, 4, 1, 2, 3, 4]), 0, "a size below 8 ends the walk");
        assert_eq!(ticks(23, 44_100), 1014);
    }
}
