//! HLS on disk: one writer task per published stream, fed like a player from the stream's ring.
//!
//! Segments are cut on keyframes once `hls_fragment × hls_td_ratio` has passed (or at
//! `hls_aof_ratio × hls_fragment` whatever comes), written whole to `<ts>.tmp` and renamed, and
//! the playlist is written to `<m3u8>.temp` and renamed, so a reader sharing the directory
//! (nginx) never sees a partial file. Segments that leave the window are deleted; everything is
//! deleted `hls_dispose` seconds after unpublish unless the stream comes back. Numbering and
//! the window continue across republishes (with a discontinuity), and across restarts: the
//! window is recovered from the playlist on disk.
//! A disk or codec error stops HLS for that stream only, and says why.

pub mod state;
pub mod viewers;

use crate::fmp4::{self, Fmp4Segments};
use crate::hooks::Publisher;
use crate::hub::{Consumer, StreamKey};
use crate::media::{Codec, Content, MediaPacket, Track, Tracks};
use crate::metrics::events::Events;
use crate::paths::{self, Stamp};
use crate::server::{source_settings, Server};
use bytes::BytesMut;
use rsrs_codec::hls::{media_playlist, Segment};
use rsrs_codec::ts::{AudioCodec, TsMuxer, VideoCodec};
use rsrs_config::access::HttpHooks;
use rsrs_config::HookEvent;
use rsrs_config::{Hls, Vhost};
use rsrs_core::sink::{drive, Sink, SinkEnd};
pub use state::HlsRegistry;
use state::{lock, HlsState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{error, info, warn};

/// Gives the muxer a track's decoder configuration (H.264 avcC, HEVC hvcC or AAC
/// AudioSpecificConfig).
fn take_config(m: &mut TsMuxer, config: &MediaPacket) -> Result<(), HlsError> {
    match config.codec {
        Codec::H264 => m.set_avc_config(config.data())?,
        Codec::H265 => m.set_hevc_config(config.data())?,
        Codec::Aac => m.set_aac_config(config.data())?,
        _ => {}
    }
    Ok(())
}

/// Largest segment held in memory before it is written. A segment is cut here even before its
/// duration is reached (about 20 s of a 50 Mb/s stream), so no publisher can grow it further.
pub const MAX_SEGMENT_BYTES: usize = 128 * 1024 * 1024;

/// Starts the HLS writer for a stream that was just published, if its vhost has HLS on. Must be
/// called before the publisher's first media so no frame is missed.
pub fn start(server: &Arc<Server>, key: &StreamKey, vhost: &Vhost, publisher: &Publisher) {
    if !vhost.hls.enabled {
        return;
    }
    let (consumer, initial) = Consumer::attach(&server.hub, key, source_settings(vhost));
    let m3u8_rel = paths::render(&vhost.hls.m3u8_file, key, None, &Stamp::now(server.config().utc_time));
    let m3u8 = match paths::confine(Path::new(&vhost.hls.path), &paths::join(&vhost.hls.path, &m3u8_rel)) {
        Ok(p) => p,
        Err(e) => {
            Events::bump(&server.events.hls_errors);
            error!(stream = %key.url(), "HLS not started for this stream: refusing to write: {e}");
            return;
        }
    };
    let state = server.hls.state(key, &m3u8);
    let generation = {
        let mut st = lock(&state);
        st.generation += 1;
        st.generation
    };
    let w = HlsWriter {
        publisher: publisher.clone(),
        hooks: vhost.access.hooks.clone(),
        server: server.clone(),
        cfg: vhost.hls.clone(),
        key: key.clone(),
        utc: server.config().utc_time,
        state,
        muxer: None,
        muxer_shape: (None, None),
        fmp4: None,
        tracks: Tracks::default(),
        open: None,
        first_of_publish: true,
        part: None,
        last_dts: None,
        max_gap_ms: 0,
    };
    tokio::spawn(async move { w.run(consumer, initial, generation).await });
}

struct OpenSegment {
    seq: u64,
    start_ts: u32,
    last_ts: u32,
    buf: BytesMut,
    rel: String,
    discontinuity: bool,
    /// Low-latency HLS: the parts written so far, whose bytes make the whole segment.
    parts: usize,
    part_bytes: Vec<u8>,
}

/// The low-latency part being gathered.
struct OpenPart {
    start: u32,
    /// Starts with a keyframe (or the stream has no video).
    independent: bool,
}

/// Where part `index` of a segment written at `rel` goes: `x-12.m4s` has `x-12.0.m4s`, ...
fn part_rel(rel: &str, index: usize) -> String {
    match rel.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => format!("{stem}.{index}.{ext}"),
        _ => format!("{rel}.{index}"),
    }
}

struct HlsWriter {
    /// For `on_hls` and `on_hls_notify`, sent after each segment.
    publisher: Publisher,
    hooks: HttpHooks,
    server: Arc<Server>,
    cfg: Hls,
    key: StreamKey,
    utc: bool,
    state: Arc<Mutex<HlsState>>,
    muxer: Option<TsMuxer>,
    muxer_shape: (Option<VideoCodec>, Option<AudioCodec>),
    /// fMP4 segments (`hls_use_fmp4`, or codecs TS cannot carry), with the playlist's name for
    /// their init segment; rebuilt when a track's configuration changes.
    fmp4: Option<(Fmp4Segments, String)>,
    /// The stream's tracks as this writer has seen them: a new muxer is fed their configs.
    tracks: Tracks,
    open: Option<OpenSegment>,
    first_of_publish: bool,
    /// Low-latency HLS: the open part, the last frame's time and the largest gap between two
    /// frames seen (a part is cut before the next frame could take it past the part target).
    part: Option<OpenPart>,
    last_dts: Option<u32>,
    max_gap_ms: u32,
}

#[derive(Debug, thiserror::Error)]
enum HlsError {
    #[error("cannot write {path}: {err}")]
    Disk { path: PathBuf, err: std::io::Error },
    #[error("{0}")]
    Codec(#[from] rsrs_codec::ts::TsError),
    #[error("HLS carries H.264, HEVC, AV1 and VP9 video and AAC, MP3 and Opus audio; this stream's {track:?} is {codec}", codec = codec.name())]
    UnsupportedCodec { track: Track, codec: Codec },
    #[error("{0}")]
    Fmp4(#[from] fmp4::Fmp4Error),
    #[error("refusing to write: {0}")]
    Outside(#[from] paths::OutsideRoot),
}

impl HlsWriter {
    async fn run(mut self, mut consumer: Consumer, initial: Vec<Arc<MediaPacket>>, generation: u64) {
        let url = self.key.url();
        info!(stream = %url, "HLS started");
        let result: Result<(), HlsError> = async {
            match drive(&mut self, &mut consumer, initial, None).await? {
                SinkEnd::NotWanted => {
                    info!(stream = %url, "HLS turned off by a config reload");
                    self.close_segment(None).await?;
                    self.end_playlist().await;
                    Ok(())
                }
                _ => self.close_segment(None).await,
            }
        }
        .await;
        drop(consumer);
        // No part comes next: the hint goes, and requests held for it are answered.
        let ended = {
            let mut st = lock(&self.state);
            let had_hint = st.ll.as_mut().and_then(|ll| ll.hint.take()).is_some();
            had_hint.then(|| st.low_latency_playlist(false)).flatten()
        };
        if ended.is_some() {
            if let Err(e) = self.write_playlist(ended).await {
                warn!(stream = %url, "HLS: cannot rewrite the playlist without its preload hint: {e}");
            }
            self.server.hls.notify();
        }
        if let Err(e) = result {
            Events::bump(&self.server.events.hls_errors);
            error!(stream = %url, "HLS stopped for this stream: {e}");
            // The stream may go on live, but this playlist will not: say so to its players.
            self.end_playlist().await;
            if self.cfg.on_error == rsrs_config::HlsOnError::Disconnect {
                self.server.disconnect_publisher(&self.key, "hls_on_error disconnect");
            }
        } else {
            info!(stream = %url, "HLS finished (stream unpublished)");
        }
        if self.cfg.dispose > 0.0 {
            let state = self.state.clone();
            let after = Duration::from_secs_f64(self.cfg.dispose);
            let (key, server, hls_path) = (self.key.clone(), self.server.clone(), self.cfg.path.clone());
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                if dispose(&state, generation, &url, &hls_path).await {
                    server.hls.forget(&key, generation);
                }
            });
        }
    }

    /// Whether the stream's segments are fMP4: asked for, or a track TS cannot carry.
    fn wants_fmp4(&self) -> bool {
        let ts_cannot = |t: Track, info: &Option<crate::media::TrackInfo>| {
            info.as_ref().is_some_and(|i| !fmp4::ts_carries(t, i.codec))
        };
        self.cfg.use_fmp4
            || self.cfg.low_latency
            || ts_cannot(Track::Video, &self.tracks.video)
            || ts_cannot(Track::Audio, &self.tracks.audio)
    }

    async fn write_frame(&mut self, f: &Arc<MediaPacket>) -> Result<(), HlsError> {
        // Metadata, end-of-sequence and relayed-only packets have nothing to mux.
        if f.track == Track::Data || !matches!(f.content, Content::Config | Content::Frame) {
            return Ok(());
        }
        if !fmp4::ts_carries(f.track, f.codec) && !fmp4::carries(f.track, f.codec) {
            return Err(HlsError::UnsupportedCodec { track: f.track, codec: f.codec });
        }
        if f.is_config() {
            let before = match f.track {
                Track::Video => &self.tracks.video,
                _ => &self.tracks.audio,
            };
            let same = before.as_ref().and_then(|t| t.config.as_ref()).is_some_and(|c| c.data() == f.data());
            self.tracks.update(f);
            // TS takes a new configuration of the same codecs in stride; anything else (a new
            // fMP4 init segment, another codec in TS, a codec only fMP4 carries) ends the open
            // segment here, and the next one starts with the right container and muxer.
            let ts_keeps = self.fmp4.is_none() && !self.wants_fmp4() && self.ts_shape() == self.muxer_shape;
            match self.muxer.as_mut() {
                Some(m) if ts_keeps => take_config(m, f)?,
                _ => {}
            }
            let restart = (!same && self.fmp4.is_some()) || (self.muxer.is_some() && !ts_keeps);
            if restart {
                self.close_segment(Some(f.dts)).await?;
                self.fmp4 = None;
                self.muxer = None;
            }
            return Ok(());
        }
        if self.tracks.update(f) {
            return Ok(());
        }
        let has_video = self.tracks.has_video();
        let is_key = f.keyframe;
        let buffered = |w: &Self| match (&w.fmp4, &w.open) {
            (Some((m, _)), _) => m.buffered(),
            (None, Some(seg)) => seg.buf.len(),
            _ => 0,
        };
        match &self.open {
            None => {
                if has_video && self.cfg.wait_keyframe && !is_key {
                    return Ok(());
                }
                self.open_segment(f.dts).await?;
            }
            Some(_) if buffered(self) + f.data().len() > MAX_SEGMENT_BYTES => {
                warn!(
                    stream = %self.key.url(),
                    bytes = buffered(self),
                    "HLS segment cut at its byte limit ({MAX_SEGMENT_BYTES}) before its duration was reached"
                );
                self.close_segment(Some(f.dts)).await?;
                self.open_segment(f.dts).await?;
            }
            Some(seg) => {
                let dur = f.dts.saturating_sub(seg.start_ts) as f64 / 1000.0;
                let frag = self.cfg.fragment;
                let cut =
                    (f.track == Track::Video && (is_key || !self.cfg.wait_keyframe) && dur >= frag * self.cfg.td_ratio)
                        || (!has_video && dur >= frag)
                        || dur >= frag * self.cfg.aof_ratio;
                if cut {
                    self.close_segment(Some(f.dts)).await?;
                    self.open_segment(f.dts).await?;
                }
            }
        }
        if self.cfg.low_latency && self.fmp4.is_some() && self.open.is_some() {
            let part_ms = (self.cfg.part_duration * 1000.0) as u32;
            if let Some(gap) = self.last_dts.map(|l| f.dts.saturating_sub(l)) {
                self.max_gap_ms = self.max_gap_ms.max(gap.min(part_ms / 2));
            }
            self.last_dts = Some(f.dts);
            if self.part.as_ref().is_some_and(|p| f.dts.saturating_sub(p.start) + self.max_gap_ms.max(1) > part_ms) {
                self.cut_part(f.dts, false).await?;
            }
            if self.part.is_none() {
                self.part = Some(OpenPart { start: f.dts, independent: is_key || !has_video });
            }
        }
        let Some(seg) = self.open.as_mut() else { return Ok(()) };
        seg.last_ts = f.dts;
        if let Some((m, _)) = self.fmp4.as_mut() {
            m.push(f);
            return Ok(());
        }
        let Some(m) = self.muxer.as_mut() else { return Ok(()) };
        match f.track {
            Track::Video => m.video(f.data(), f.dts, f.cts, f.keyframe, &mut seg.buf)?,
            _ => m.audio(f.data(), f.dts, &mut seg.buf)?,
        };
        Ok(())
    }

    async fn open_segment(&mut self, ts: u32) -> Result<(), HlsError> {
        let fmp4 = self.wants_fmp4();
        if fmp4 {
            if self.fmp4.is_none() {
                let segments = Fmp4Segments::new(&self.tracks)?;
                let uri = self.write_init(segments.init()).await?;
                self.fmp4 = Some((segments, uri));
            }
        } else {
            self.fmp4 = None;
            self.open_ts_muxer()?;
        }
        let mut st = lock(&self.state);
        let seq = st.next_seq;
        st.next_seq += 1;
        let discontinuity = self.first_of_publish && !st.window.is_empty();
        self.first_of_publish = false;
        drop(st);
        let template = if fmp4 { &self.cfg.fmp4_file } else { &self.cfg.ts_file };
        let rel = paths::render(template, &self.key, Some(seq), &Stamp::now(self.utc));
        let mut buf = BytesMut::with_capacity(if fmp4 { 0 } else { 512 * 1024 });
        if let (false, Some(m)) = (fmp4, self.muxer.as_mut()) {
            m.tables(&mut buf);
        }
        if self.cfg.low_latency && fmp4 {
            let map = self.fmp4.as_ref().map(|(_, init)| init.clone());
            let hint = self.part_hint(&rel, 0)?;
            let min_target = self.cfg.fragment * self.cfg.td_ratio;
            let part_target = self.cfg.part_duration;
            let mut st = lock(&self.state);
            let ll = st.ll.get_or_insert_with(Default::default);
            (ll.part_target, ll.min_target, ll.open_seq, ll.open_map) = (part_target, min_target, seq, map);
            ll.open_parts.clear();
            ll.hint = Some(hint);
        }
        self.part = None;
        self.open = Some(OpenSegment {
            seq,
            start_ts: ts,
            last_ts: ts,
            buf,
            rel,
            discontinuity,
            parts: 0,
            part_bytes: Vec::new(),
        });
        Ok(())
    }

    /// The preload hint for part `index` of the segment at `rel`: its playlist name and path.
    fn part_hint(&self, rel: &str, index: usize) -> Result<(String, PathBuf), HlsError> {
        let part = part_rel(rel, index);
        let path = paths::confine(Path::new(&self.cfg.path), &paths::join(&self.cfg.path, &part))?;
        Ok((self.playlist_uri(&part), path))
    }

    /// Writes the open part (ending at `end`), lists it in the playlist, moves the preload hint
    /// on, and wakes blocked requests. The last part of a segment (`closing`) is only written
    /// and listed: the segment's close publishes the playlist, with the next segment's hint.
    async fn cut_part(&mut self, end: u32, closing: bool) -> Result<(), HlsError> {
        let Some(part) = self.part.take() else { return Ok(()) };
        let (Some((m, _)), Some(seg)) = (self.fmp4.as_mut(), self.open.as_mut()) else { return Ok(()) };
        if m.buffered() == 0 {
            return Ok(());
        }
        let bytes = m.finish(end)?;
        let (index, seg_rel) = (seg.parts, seg.rel.clone());
        seg.parts += 1;
        seg.part_bytes.extend_from_slice(&bytes);
        let (uri, path) = self.part_hint(&seg_rel, index)?;
        write_atomic(&path, &bytes, ".tmp").await?;
        let next = self.part_hint(&seg_rel, index + 1)?;
        let duration = end.saturating_sub(part.start) as f64 / 1000.0;
        let text = {
            let mut st = lock(&self.state);
            if let Some(ll) = st.ll.as_mut() {
                ll.open_parts.push(rsrs_codec::hls::Part { duration, uri, independent: part.independent });
                ll.hint = (!closing).then_some(next);
            }
            st.low_latency_playlist(false)
        };
        if !closing {
            self.write_playlist(text).await?;
            self.server.hls.notify();
        }
        Ok(())
    }

    /// Writes the playlist file (when it has a place yet).
    async fn write_playlist(&self, text: Option<String>) -> Result<(), HlsError> {
        let m3u8_rel = paths::render(&self.cfg.m3u8_file, &self.key, None, &Stamp::now(self.utc));
        let m3u8 = paths::confine(Path::new(&self.cfg.path), &paths::join(&self.cfg.path, &m3u8_rel))?;
        if let Some(text) = text {
            lock(&self.state).m3u8 = Some(m3u8.clone());
            write_atomic(&m3u8, text.as_bytes(), ".temp").await?;
        }
        Ok(())
    }

    /// The TS muxer the stream's tracks need.
    fn ts_shape(&self) -> (Option<VideoCodec>, Option<AudioCodec>) {
        let audio =
            self.tracks.audio.as_ref().map(|a| if a.codec == Codec::Mp3 { AudioCodec::Mp3 } else { AudioCodec::Aac });
        let video =
            self.tracks
                .video
                .as_ref()
                .map(|v| if v.codec == Codec::H265 { VideoCodec::Hevc } else { VideoCodec::H264 });
        (video, audio)
    }

    fn open_ts_muxer(&mut self) -> Result<(), HlsError> {
        let shape = self.ts_shape();
        if self.muxer.is_none() || self.muxer_shape != shape {
            // Tracks changed (or first segment): a new PMT, fed the codec configurations.
            let mut m = TsMuxer::new(shape.0, shape.1);
            for config in self.tracks.packets().filter(|p| p.is_config()) {
                take_config(&mut m, config)?;
            }
            self.muxer = Some(m);
            self.muxer_shape = shape;
        }
        Ok(())
    }

    /// Writes an init segment and returns the playlist's name for it. The first of a stream
    /// takes `hls_init_file`'s name; one that differs from an init still in use (a republish
    /// with other settings) is named after the segment it starts, so older segments keep theirs.
    async fn write_init(&mut self, init: &[u8]) -> Result<String, HlsError> {
        let mut rel = paths::render(&self.cfg.init_file, &self.key, None, &Stamp::now(self.utc));
        let (next_seq, previous) = {
            let st = lock(&self.state);
            (st.next_seq, st.inits.last().cloned())
        };
        if let Some((prev_rel, prev_bytes)) = &previous {
            if prev_bytes.as_slice() == init {
                return Ok(self.playlist_uri(prev_rel));
            }
            if let Some((stem, ext)) = rel.rsplit_once('.') {
                rel = format!("{stem}-{next_seq}.{ext}");
            }
        }
        let path = paths::confine(Path::new(&self.cfg.path), &paths::join(&self.cfg.path, &rel))?;
        write_atomic(&path, init, ".tmp").await?;
        lock(&self.state).inits.push((rel.clone(), init.to_vec()));
        info!(stream = %self.key.url(), "HLS: fMP4 init segment {}", path.display());
        Ok(self.playlist_uri(&rel))
    }

    /// How the playlist names a file written at `rel` (relative to it, or under `hls_entry_prefix`).
    fn playlist_uri(&self, rel: &str) -> String {
        let m3u8_rel = paths::render(&self.cfg.m3u8_file, &self.key, None, &Stamp::now(self.utc));
        if self.cfg.entry_prefix.is_empty() {
            paths::relative_to(&m3u8_rel, rel)
        } else {
            format!("{}/{}", self.cfg.entry_prefix.trim_end_matches('/'), rel.trim_start_matches('/'))
        }
    }

    /// Closes the open segment (at `end_ts`, the next segment's start, when known), writes it,
    /// updates the window and the playlist.
    async fn close_segment(&mut self, end_ts: Option<u32>) -> Result<(), HlsError> {
        let Some(seg) = self.open.take() else { return Ok(()) };
        let end = end_ts.unwrap_or(seg.last_ts);
        let duration = end.saturating_sub(seg.start_ts) as f64 / 1000.0;
        if duration < 0.1 && end_ts.is_none() {
            // A sliver at unpublish is not worth a segment (SRS drops < 100 ms too).
            return Ok(());
        }
        let path = paths::confine(Path::new(&self.cfg.path), &paths::join(&self.cfg.path, &seg.rel))?;
        let mut seg = seg;
        if seg.parts > 0 || self.part.is_some() {
            // Low latency: the last part, then the segment is its parts' bytes.
            self.open = Some(seg);
            self.cut_part(end, true).await?;
            seg = self.open.take().expect("put back above");
        }
        let low_latency = seg.parts > 0;
        let (bytes, map): (bytes::Bytes, _) = match self.fmp4.as_mut() {
            Some((_, init)) if low_latency => (std::mem::take(&mut seg.part_bytes).into(), Some(init.clone())),
            Some((m, init)) => (m.finish(end)?.into(), Some(init.clone())),
            None => (seg.buf.freeze(), None),
        };
        write_atomic(&path, &bytes, ".tmp").await?;
        let events = &self.server.events;
        Events::bump(&events.hls_segments);
        events.hls_segment_bytes.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let m3u8_rel = paths::render(&self.cfg.m3u8_file, &self.key, None, &Stamp::now(self.utc));
        let uri = if self.cfg.entry_prefix.is_empty() {
            paths::relative_to(&m3u8_rel, &seg.rel)
        } else {
            format!("{}/{}", self.cfg.entry_prefix.trim_end_matches('/'), seg.rel.trim_start_matches('/'))
        };
        let m3u8 = paths::confine(Path::new(&self.cfg.path), &paths::join(&self.cfg.path, &m3u8_rel))?;
        let (text, expired) = {
            let mut st = lock(&self.state);
            let parts = st.ll.as_mut().map(|ll| std::mem::take(&mut ll.open_parts)).unwrap_or_default();
            st.window.push_back((
                Segment { sequence: seg.seq, duration, uri, discontinuity: seg.discontinuity, map, parts },
                path.clone(),
            ));
            if let Some(ll) = st.ll.as_mut() {
                // The next segment's first part is written next.
                ll.open_seq = seg.seq + 1;
                let next_rel = paths::render(&self.cfg.fmp4_file, &self.key, Some(seg.seq + 1), &Stamp::now(self.utc));
                ll.hint = self.part_hint(&next_rel, 0).ok();
            }
            let mut expired = Vec::new();
            // Keep just over hls_window seconds: drop the oldest while the rest still cover it.
            loop {
                let total: f64 = st.window.iter().map(|(s, _)| s.duration).sum();
                let first = st.window.front().map(|(s, _)| s.duration).unwrap_or(0.0);
                if st.window.len() > 1 && total - first >= self.cfg.window {
                    if let Some((s, p)) = st.window.pop_front() {
                        expired.extend(part_paths(&p, s.parts.len()));
                        expired.push(p);
                    }
                } else {
                    break;
                }
            }
            st.m3u8 = Some(m3u8.clone());
            (self.playlist(&st), expired)
        };
        write_atomic(&m3u8, text.as_bytes(), ".temp").await?;
        self.server.hls.notify();
        self.segment_hooks(seg.seq, duration, &path, &m3u8, &m3u8_rel, &seg.rel);
        if self.cfg.cleanup {
            for p in expired.into_iter().chain(self.unused_inits()) {
                if let Err(e) = tokio::fs::remove_file(&p).await {
                    warn!("HLS cleanup: cannot remove {}: {e}", p.display());
                }
            }
        }
        Ok(())
    }

    /// Init segments no segment of the window uses any more (all but the newest), forgotten;
    /// their paths, to remove.
    fn unused_inits(&self) -> Vec<PathBuf> {
        let mut st = lock(&self.state);
        let in_use: std::collections::HashSet<String> = st.window.iter().filter_map(|(s, _)| s.map.clone()).collect();
        let newest = st.inits.len().saturating_sub(1);
        let mut gone = Vec::new();
        let mut i = 0;
        st.inits.retain(|(rel, _)| {
            i += 1;
            let keep = i - 1 == newest || in_use.contains(&self.playlist_uri(rel));
            if !keep {
                gone.push(paths::join(&self.cfg.path, rel));
            }
            keep
        });
        gone
    }

    /// `on_hls` (POST, SRS's fields) and `on_hls_notify` (GET of a URL template) for a segment
    /// just written; both in the background.
    fn segment_hooks(&self, seq: u64, duration: f64, ts: &Path, m3u8: &Path, m3u8_rel: &str, ts_rel: &str) {
        let server = &self.server;
        let urls = self.hooks.urls(HookEvent::Hls);
        if !urls.is_empty() {
            let stream_id = server.hub.get(&self.key).map(|s| s.id.clone()).unwrap_or_default();
            let mut body = self.publisher.hook_body(
                (&server.server_id, &server.service_id),
                HookEvent::Hls,
                &self.key,
                &stream_id,
            );
            let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
            // SRS's `url`: the segment as the playlist names it, from the playlist's directory.
            let m3u8_dir = m3u8_rel.rsplit_once('/').map_or("", |(d, _)| d);
            let url = if m3u8_dir.is_empty() {
                paths::relative_to(m3u8_rel, ts_rel)
            } else {
                format!("{m3u8_dir}/{}", paths::relative_to(m3u8_rel, ts_rel))
            };
            body["duration"] = serde_json::json!(duration);
            body["cwd"] = serde_json::json!(cwd);
            body["file"] = serde_json::json!(ts.display().to_string());
            body["url"] = serde_json::json!(url);
            body["m3u8"] = serde_json::json!(m3u8.display().to_string());
            body["m3u8_url"] = serde_json::json!(m3u8_rel);
            body["seq_no"] = serde_json::json!(seq);
            server.hooks.notify(HookEvent::Hls, urls.to_vec(), body);
        }
        let templates = self.hooks.urls(HookEvent::HlsNotify);
        if !templates.is_empty() {
            let ts_url = paths::relative_to(m3u8_rel, ts_rel);
            let urls = templates
                .iter()
                .map(|t| {
                    if ts_url.starts_with("http://") || ts_url.starts_with("https://") {
                        return ts_url.clone();
                    }
                    t.replace("[server_id]", &server.server_id)
                        .replace("[service_id]", &server.service_id)
                        .replace("[app]", &self.key.app)
                        .replace("[stream]", &self.key.stream)
                        .replace("[ts_url]", &ts_url)
                        .replace("[param]", &self.publisher.param)
                })
                .collect();
            server.hooks.notify(HookEvent::HlsNotify, urls, serde_json::Value::Null);
        }
    }

    /// The playlist of the window as it stands.
    fn playlist(&self, st: &HlsState) -> String {
        if let Some(text) = st.low_latency_playlist(false) {
            return text;
        }
        let segs: Vec<Segment> = st.window.iter().map(|(s, _)| s.clone()).collect();
        media_playlist(&segs, self.cfg.fragment * self.cfg.td_ratio)
    }

    /// Marks the playlist as finished (`#EXT-X-ENDLIST`) when HLS stops while the stream may go
    /// on, so players stop polling a playlist that will not change; if it cannot be rewritten
    /// (a full disk), it is removed rather than left looking live.
    async fn end_playlist(&self) {
        let (text, m3u8) = {
            let st = lock(&self.state);
            let Some(m3u8) = st.m3u8.clone() else { return };
            (self.playlist(&st) + "#EXT-X-ENDLIST\n", m3u8)
        };
        match write_atomic(&m3u8, text.as_bytes(), ".temp").await {
            Ok(()) => info!(stream = %self.key.url(), "HLS: playlist {} ended (#EXT-X-ENDLIST)", m3u8.display()),
            Err(e) => {
                let removed = tokio::fs::remove_file(&m3u8).await;
                let then = if removed.is_ok() { "removed it" } else { "and cannot remove it" };
                warn!(stream = %self.key.url(), "HLS: cannot end the playlist ({e}); {then}");
            }
        }
    }
}

impl Sink for HlsWriter {
    type Error = HlsError;

    fn frame(&mut self, f: &Arc<MediaPacket>) -> impl std::future::Future<Output = Result<(), HlsError>> + Send {
        self.write_frame(f)
    }

    /// A reload that turns HLS off for this vhost stops running streams too.
    fn still_wanted(&mut self) -> bool {
        self.server.config().vhost(&self.key.vhost).is_some_and(|v| v.hls.enabled)
    }
}

/// Writes `data` to `path + suffix` and renames it over `path`, creating directories.
async fn write_atomic(path: &Path, data: &[u8], suffix: &str) -> Result<(), HlsError> {
    let disk = |err| HlsError::Disk { path: path.to_path_buf(), err };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(disk)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(suffix);
    let tmp = PathBuf::from(tmp);
    if let Err(e) = tokio::fs::write(&tmp, data).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(disk(e));
    }
    tokio::fs::rename(&tmp, path).await.map_err(disk)
}

/// Removes a stream's segments and playlist unless it was published again since `generation`;
/// whether it did.
async fn dispose(state: &Mutex<HlsState>, generation: u64, url: &str, hls_path: &str) -> bool {
    let (files, m3u8) = {
        let mut st = lock(state);
        if st.generation != generation {
            return false;
        }
        let mut files: Vec<PathBuf> =
            st.window.drain(..).flat_map(|(s, p)| part_paths(&p, s.parts.len()).into_iter().chain([p])).collect();
        st.ll = None;
        files.extend(st.inits.drain(..).map(|(rel, _)| paths::join(hls_path, &rel)));
        (files, st.m3u8.take())
    };
    for p in files.iter().chain(m3u8.iter()) {
        let _ = tokio::fs::remove_file(p).await;
    }
    info!(stream = %url, "HLS disposed: removed {} segments and the playlist", files.len());
    true
}

/// The paths of a segment's parts, beside it.
fn part_paths(segment: &Path, parts: usize) -> Vec<PathBuf> {
    let s = segment.to_string_lossy();
    (0..parts).map(|i| PathBuf::from(part_rel(&s, i))).collect()
}

/// Removes temp files an earlier run left in `root` (a crash between write and rename).
pub fn remove_stale_temps(root: &Path) -> usize {
    let mut removed = 0;
    paths::walk(root, 0, &mut |p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if (name.ends_with(".ts.tmp") || name.ends_with(".m4s.tmp") || name.ends_with(".m3u8.temp"))
            && std::fs::remove_file(p).is_ok()
        {
            removed += 1;
        }
    });
    removed
}
