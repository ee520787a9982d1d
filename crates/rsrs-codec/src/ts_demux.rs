//! MPEG-TS demuxer (ISO 13818-1), sans-io, for TS arriving over SRT (and any other TS input):
//! bytes in any chunking, PAT and PMT read, PES reassembled per elementary stream with its PTS
//! and DTS, continuity errors counted, and sync found again after loss or garbage.
//!
//! What comes out is each elementary stream's PES payload (Annex-B access units for H.264 and
//! HEVC, ADTS frames for AAC) with its timestamps in 90 kHz; turning those into the core's
//! media packets is the ingest's job. Memory is bounded: a partial packet, and per stream one
//! PES of at most [`MAX_PES`] bytes.

use crate::ts::PACKET;

/// Largest PES reassembled; a longer one is dropped (and counted).
pub const MAX_PES: usize = 16 * 1024 * 1024;

/// The stream types rsrs takes from a PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    H264,
    Hevc,
    /// AAC in ADTS.
    Aac,
    /// MPEG-1/2 audio layer 3 (or 1, 2).
    Mp3,
    /// Opus (ETSI TS 102 366 Annex, as ffmpeg writes it): private data with the "Opus"
    /// registration descriptor; the channel count from its extension descriptor.
    Opus(u8),
    /// Anything else: reassembled, left to the caller.
    Other(u8),
}

impl StreamType {
    fn from_byte(t: u8) -> StreamType {
        match t {
            0x1b => StreamType::H264,
            0x24 => StreamType::Hevc,
            0x0f => StreamType::Aac,
            0x03 | 0x04 => StreamType::Mp3,
            other => StreamType::Other(other),
        }
    }
}

/// One reassembled PES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    pub pid: u16,
    pub stream_type: StreamType,
    /// 90 kHz, 33 bits.
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    /// The adaptation field's random access indicator on its first packet.
    pub random_access: bool,
    pub data: Vec<u8>,
}

/// What went wrong in the input so far (the demuxer carries on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TsErrors {
    /// Packets that did not follow their PID's continuity counter (a loss); the PES they broke
    /// was dropped.
    pub continuity: u64,
    /// Times sync was lost and bytes skipped to find it again.
    pub resyncs: u64,
    /// PES dropped for being malformed or longer than [`MAX_PES`].
    pub dropped_pes: u64,
    /// Packets with the transport error indicator set.
    pub transport: u64,
}

#[derive(Debug, Default)]
struct PesState {
    stream_type: Option<StreamType>,
    buf: Vec<u8>,
    /// Whether `buf` holds a PES started by a payload unit start (else bytes are skipped).
    started: bool,
    random_access: bool,
    last_cc: Option<u8>,
}

/// The demuxer's state: a partial packet, the program's streams and their PES in progress.
#[derive(Debug, Default)]
pub struct TsDemuxer {
    pending: Vec<u8>,
    pmt_pid: Option<u16>,
    streams: std::collections::BTreeMap<u16, PesState>,
    pub errors: TsErrors,
}

impl TsDemuxer {
    pub fn new() -> TsDemuxer {
        TsDemuxer::default()
    }

    /// The elementary streams the PMT announced: (pid, type).
    pub fn streams(&self) -> Vec<(u16, StreamType)> {
        self.stream_types().collect()
    }

    /// The same, without collecting them (for a check made on every input).
    pub fn stream_types(&self) -> impl Iterator<Item = (u16, StreamType)> + '_ {
        self.streams.iter().filter_map(|(pid, s)| Some((*pid, s.stream_type?)))
    }

    /// Takes bytes (any chunking) and appends the PES they complete to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Pes>) {
        self.pending.extend_from_slice(data);
        let mut at = 0;
        while self.pending.len() - at >= PACKET {
            if self.pending[at] != 0x47 || (self.pending.len() - at > PACKET && self.pending[at + PACKET] != 0x47) {
                // Lost sync: the next place where two packets start in a row (or one at the end).
                self.errors.resyncs += 1;
                let next = (at + 1..self.pending.len()).find(|&i| {
                    self.pending[i] == 0x47 && (i + PACKET >= self.pending.len() || self.pending[i + PACKET] == 0x47)
                });
                match next {
                    Some(i) => at = i,
                    None => {
                        at = self.pending.len();
                        break;
                    }
                }
                continue;
            }
            let mut packet = [0u8; PACKET];
            packet.copy_from_slice(&self.pending[at..at + PACKET]);
            self.packet(&packet, out);
            at += PACKET;
        }
        self.pending.drain(..at);
        // Never more than a packet waits: anything longer would have been consumed above.
        if self.pending.len() > PACKET {
            let cut = self.pending.len() - PACKET;
            self.pending.drain(..cut);
        }
    }

    /// Ends the input: the PES still in progress are complete now.
    pub fn flush(&mut self, out: &mut Vec<Pes>) {
        let pids: Vec<u16> = self.streams.keys().copied().collect();
        for pid in pids {
            self.finish(pid, out);
        }
    }

    fn packet(&mut self, p: &[u8; PACKET], out: &mut Vec<Pes>) {
        if p[1] & 0x80 != 0 {
            self.errors.transport += 1;
            return;
        }
        let pusi = p[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
        let afc = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0f;
        let mut start = 4;
        let mut random_access = false;
        if afc & 0x02 != 0 {
            let len = p[4] as usize;
            if 5 + len > PACKET {
                return;
            }
            random_access = len > 0 && p[5] & 0x40 != 0;
            start = 5 + len;
        }
        if afc & 0x01 == 0 || start >= PACKET {
            return; // no payload
        }
        let payload = &p[start..];
        if pid == 0 {
            if pusi {
                self.pat(payload);
            }
            return;
        }
        if Some(pid) == self.pmt_pid {
            if pusi {
                self.pmt(payload);
            }
            return;
        }
        let Some(st) = self.streams.get_mut(&pid) else { return };
        // Continuity: a repeated counter is a duplicate packet; any other jump is a loss.
        if let Some(last) = st.last_cc {
            if cc == last {
                return;
            }
            if cc != (last + 1) & 0x0f {
                self.errors.continuity += 1;
                if st.started {
                    self.errors.dropped_pes += 1;
                }
                st.buf.clear();
                st.started = false;
            }
        }
        st.last_cc = Some(cc);
        if pusi {
            self.finish(pid, out);
            let Some(st) = self.streams.get_mut(&pid) else { return };
            st.started = true;
            st.random_access = random_access;
        }
        let Some(st) = self.streams.get_mut(&pid) else { return };
        if !st.started {
            return; // waiting for the next PES start after a loss
        }
        if st.buf.len() + payload.len() > MAX_PES {
            self.errors.dropped_pes += 1;
            st.buf.clear();
            st.started = false;
            return;
        }
        st.buf.extend_from_slice(payload);
        // A PES that declares its length (audio does) is complete as soon as it is all here,
        // not only when the next one starts: one PES less of delay.
        let declared = st.buf.get(4..6).map_or(0, |l| u16::from_be_bytes([l[0], l[1]]) as usize);
        if declared > 0 && st.buf.len() >= declared + 6 {
            self.finish(pid, out);
        }
    }

    /// Emits the PES gathered for `pid`, if it parses.
    fn finish(&mut self, pid: u16, out: &mut Vec<Pes>) {
        let Some(st) = self.streams.get_mut(&pid) else { return };
        if !st.started || st.buf.is_empty() {
            st.buf.clear();
            st.started = false;
            return;
        }
        let buf = std::mem::take(&mut st.buf);
        st.started = false;
        let stream_type = st.stream_type.unwrap_or(StreamType::Other(0));
        let random_access = st.random_access;
        match parse_pes(&buf) {
            Some((pts, dts, data)) => out.push(Pes { pid, stream_type, pts, dts, random_access, data: data.to_vec() }),
            None => self.errors.dropped_pes += 1,
        }
    }

    /// The PAT: the first program's PMT pid.
    fn pat(&mut self, payload: &[u8]) {
        let Some(section) = section(payload, 0x00) else { return };
        // After the 5 bytes of table header (id ext, version, section numbers): program entries.
        for entry in section.get(5..).unwrap_or(&[]).chunks_exact(4) {
            let program = u16::from_be_bytes([entry[0], entry[1]]);
            if program != 0 {
                self.pmt_pid = Some(u16::from_be_bytes([entry[2] & 0x1f, entry[3]]));
                return;
            }
        }
    }

    /// The PMT: the program's elementary streams.
    fn pmt(&mut self, payload: &[u8]) {
        let Some(section) = section(payload, 0x02) else { return };
        let Some(&[hi, lo]) = section.get(7..9).map(|s| <&[u8; 2]>::try_from(s).unwrap()) else { return };
        let info_len = (u16::from_be_bytes([hi, lo]) & 0x0fff) as usize;
        let mut es = section.get(9 + info_len..).unwrap_or(&[]);
        while es.len() >= 5 {
            let t = StreamType::from_byte(es[0]);
            let pid = u16::from_be_bytes([es[1] & 0x1f, es[2]]);
            let len = (u16::from_be_bytes([es[3], es[4]]) & 0x0fff) as usize;
            let t = match t {
                StreamType::Other(0x06) => opus_in(es.get(5..5 + len).unwrap_or(&[])).unwrap_or(t),
                t => t,
            };
            self.streams.entry(pid).or_default().stream_type = Some(t);
            es = es.get(5 + len..).unwrap_or(&[]);
        }
    }
}

/// Opus, if an ES's descriptors carry the "Opus" registration: its channel count (the DVB
/// extension descriptor's channel_config_code; 2 without one).
fn opus_in(mut descriptors: &[u8]) -> Option<StreamType> {
    let mut opus = false;
    let mut channels = 2;
    while descriptors.len() >= 2 {
        let (tag, len) = (descriptors[0], descriptors[1] as usize);
        let body = descriptors.get(2..2 + len)?;
        match (tag, body) {
            (0x05, b"Opus") => opus = true,
            (0x7f, [0x80, code, ..]) if (1..=8).contains(code) => channels = *code,
            _ => {}
        }
        descriptors = &descriptors[2 + len..];
    }
    opus.then_some(StreamType::Opus(channels))
}

/// A PSI section's body (after its 3-byte header, before its CRC) when it is `table_id` and
/// whole in this payload.
fn section(payload: &[u8], table_id: u8) -> Option<&[u8]> {
    let pointer = *payload.first()? as usize;
    let s = payload.get(1 + pointer..)?;
    if *s.first()? != table_id {
        return None;
    }
    let len = (u16::from_be_bytes([*s.get(1)?, *s.get(2)?]) & 0x0fff) as usize;
    let body = s.get(3..3 + len)?;
    if body.len() < 4
        || crate::ts::crc32_mpeg2(&s[..3 + len - 4]) != u32::from_be_bytes(body[len - 4..].try_into().ok()?)
    {
        return None;
    }
    Some(&body[..len - 4])
}

fn read_ts(b: &[u8]) -> u64 {
    ((b[0] as u64 >> 1) & 0x07) << 30
        | (b[1] as u64) << 22
        | ((b[2] as u64) >> 1) << 15
        | (b[3] as u64) << 7
        | (b[4] as u64) >> 1
}

/// (PTS, DTS, payload) of a PES packet.
fn parse_pes(b: &[u8]) -> Option<(Option<u64>, Option<u64>, &[u8])> {
    if b.len() < 9 || b[..3] != [0, 0, 1] {
        return None;
    }
    let flags = b[7] >> 6;
    let header_len = b[8] as usize;
    let data = b.get(9 + header_len..)?;
    let declared = u16::from_be_bytes([b[4], b[5]]) as usize;
    // A declared length bounds the payload (0 is "unbounded", for video).
    let data =
        if declared > 0 { data.get(..(declared + 6).saturating_sub(9 + header_len).min(data.len()))? } else { data };
    let (pts, dts) = match flags {
        0b10 if header_len >= 5 => (Some(read_ts(&b[9..14])), None),
        0b11 if header_len >= 10 => (Some(read_ts(&b[9..14])), Some(read_ts(&b[14..19]))),
        _ => (None, None),
    };
    Some((pts, dts, data))
}

/// One ADTS frame: its header's fields and the raw AAC frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsFrame<'a> {
    /// Audio object type (the header's profile + 1: 2 is AAC LC).
    pub object_type: u8,
    pub freq_index: u8,
    pub channels: u8,
    pub raw: &'a [u8],
}

/// The ADTS frames of an AAC PES, up to the first that is malformed or cut short.
pub fn adts_frames(mut data: &[u8]) -> Vec<AdtsFrame<'_>> {
    let mut out = Vec::new();
    while data.len() >= 7 && data[0] == 0xff && data[1] & 0xf0 == 0xf0 {
        let header = if data[1] & 0x01 == 0 { 9 } else { 7 };
        let len = ((data[3] as usize & 0x03) << 11) | (data[4] as usize) << 3 | (data[5] as usize) >> 5;
        if len < header || len > data.len() {
            break;
        }
        out.push(AdtsFrame {
            object_type: (data[2] >> 6) + 1,
            freq_index: (data[2] >> 2) & 0x0f,
            channels: ((data[2] & 0x01) << 2) | (data[3] >> 6),
            raw: &data[header..len],
        });
        data = &data[len..];
    }
    out
}

/// The NAL units of an Annex-B access unit (start codes of 3 or 4 bytes).
pub fn annexb_nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (n, &s) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(data.len(), |next| next - 3);
        // A 4-byte start code's leading zero belongs to it, not to the NAL before.
        while end > s && data[end - 1] == 0 && starts.get(n + 1).is_some() {
            end -= 1;
        }
        if end > s {
            out.push(&data[s..end]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::{AudioCodec, TsMuxer, VideoCodec};
    use bytes::BytesMut;

    const AVCC: [u8; 17] = [1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1e, 1, 0, 2, 0x68, 0xee];

    /// A TS stream of `n` video frames (keyframe every 5th) and audio frames, by our muxer.
    fn stream(n: u32) -> Vec<u8> {
        let mut m = TsMuxer::new(Some(VideoCodec::H264), Some(AudioCodec::Aac));
        m.set_avc_config(&AVCC).unwrap();
        m.set_aac_config(&[0x12, 0x10]).unwrap();
        let mut out = BytesMut::new();
        m.tables(&mut out);
        for i in 0..n {
            let mut frame = vec![0, 0, 1, 0x2c, if i % 5 == 0 { 0x65 } else { 0x41 }];
            frame.extend(std::iter::repeat_n(i as u8, 300 + i as usize * 7));
            let len = (frame.len() - 4) as u32;
            frame[0..4].copy_from_slice(&len.to_be_bytes());
            m.video(&frame, i * 40, 80, i % 5 == 0, &mut out).unwrap();
            m.audio(&[0xde, 0xad, i as u8], i * 40 + 5, &mut out).unwrap();
        }
        out.to_vec()
    }

    #[test]
    fn round_trip_of_our_muxer_in_any_chunking() {
        let ts = stream(20);
        for chunk in [188, 1316, 1, 7, 1000] {
            let mut d = TsDemuxer::new();
            let mut pes = Vec::new();
            for c in ts.chunks(chunk) {
                d.push(c, &mut pes);
            }
            d.flush(&mut pes);
            assert_eq!(d.errors, TsErrors::default(), "chunks of {chunk}");
            assert_eq!(d.streams(), vec![(0x100, StreamType::H264), (0x101, StreamType::Aac)]);
            let video: Vec<&Pes> = pes.iter().filter(|p| p.stream_type == StreamType::H264).collect();
            let audio: Vec<&Pes> = pes.iter().filter(|p| p.stream_type == StreamType::Aac).collect();
            assert_eq!((video.len(), audio.len()), (20, 20), "chunks of {chunk}");
            for (i, v) in video.iter().enumerate() {
                assert_eq!((v.dts, v.pts), (Some(i as u64 * 40 * 90), Some((i as u64 * 40 + 80) * 90)));
                let nalus = annexb_nal_units(&v.data);
                // AUD, then (keyframes) SPS and PPS, then the slice.
                assert_eq!(nalus[0], &[0x09, 0xf0]);
                let slice = nalus.last().unwrap();
                assert_eq!(slice.len(), 1 + 300 + i * 7);
                assert_eq!(nalus.len(), if i % 5 == 0 { 4 } else { 2 });
            }
            for (i, a) in audio.iter().enumerate() {
                assert_eq!(a.pts, Some((i as u64 * 40 + 5) * 90));
                assert_eq!(
                    adts_frames(&a.data),
                    vec![AdtsFrame { object_type: 2, freq_index: 4, channels: 2, raw: &[0xde, 0xad, i as u8][..] }]
                );
            }
        }
    }

    #[test]
    fn a_lost_packet_drops_its_pes_and_is_counted() {
        let ts = stream(20);
        // Drop one packet from the middle of the stream (a video PES spans several).
        let lost = 30;
        let mut cut = ts[..lost * PACKET].to_vec();
        cut.extend_from_slice(&ts[(lost + 1) * PACKET..]);
        let mut d = TsDemuxer::new();
        let mut pes = Vec::new();
        d.push(&cut, &mut pes);
        d.flush(&mut pes);
        assert_eq!(d.errors.continuity, 1);
        let video = pes.iter().filter(|p| p.stream_type == StreamType::H264).count();
        let audio = pes.iter().filter(|p| p.stream_type == StreamType::Aac).count();
        assert_eq!(video + audio, 39, "one PES lost, every other one whole");
        // Every PES that came out is whole: its slice has the length it was muxed with.
        for v in pes.iter().filter(|p| p.stream_type == StreamType::H264) {
            let i = (v.dts.unwrap() / 90 / 40) as usize;
            assert_eq!(annexb_nal_units(&v.data).last().unwrap().len(), 1 + 300 + i * 7);
        }
    }

    #[test]
    fn garbage_and_duplicates_are_survived() {
        let ts = stream(10);
        let mut noisy = b"garbage without a sync byte \x47 and a lone sync".to_vec();
        noisy.extend_from_slice(&ts[..5 * PACKET]);
        noisy.extend_from_slice(&ts[4 * PACKET..5 * PACKET]); // a duplicate packet
        noisy.extend_from_slice(&ts[5 * PACKET..]);
        let mut d = TsDemuxer::new();
        let mut pes = Vec::new();
        d.push(&noisy, &mut pes);
        d.flush(&mut pes);
        assert_eq!(d.errors.continuity, 0, "a duplicate is not a loss");
        assert!(d.errors.resyncs >= 1);
        assert_eq!(pes.len(), 20);
        // Bounded: random bytes never keep more than a packet waiting.
        let mut d = TsDemuxer::new();
        let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        d.push(&noise, &mut pes);
        assert!(d.pending.len() <= PACKET);
    }

    #[test]
    fn annexb_and_adts_helpers() {
        assert_eq!(
            annexb_nal_units(&[0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65]),
            vec![&[0x67, 1][..], &[0x68, 2], &[0x65]]
        );
        assert!(annexb_nal_units(&[1, 2, 3]).is_empty());
        assert!(adts_frames(&[0xff, 0xf1, 0x50, 0x80, 0xff, 0xff]).is_empty(), "truncated");
        assert_eq!(parse_pes(&[0, 0, 2]), None);
    }
}
