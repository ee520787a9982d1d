//! DVR: recording a published stream to FLV files, fed like a player from the stream's ring.
//!
//! A recording is written to `<path>.tmp` and renamed to its final name when the session (or
//! segment, with `dvr_plan segment`) ends, on unpublish and on shutdown. The file starts with
//! metadata whose `duration` and `filesize` are patched in place on close, as SRS does, so the
//! finished file is seekable by players that use them. A recording left as `.tmp` by a crash is
//! finished (renamed) at the next start: whatever reached the disk is kept.
//!
//! A `dvr_path` ending in `.mp4` records fragmented MP4 instead (as SRS picks the format by
//! the extension): the init segment, then a fragment per keyframe interval (at least a second,
//! at most [`MAX_FRAGMENT_MS`]), each flushed as it is written, so a crash loses at most the open
//! fragment; a finished file ends with an `mfra` index of its fragments for seeking. A track
//! configuration that changes mid-recording ends the file (MP4 has one sample entry per track).

use crate::hooks::Publisher;
use crate::hub::{Consumer, StreamKey};
use crate::media::{Content, MediaPacket, Track, Tracks};
use crate::metrics::events::Events;
use crate::paths::{self, Stamp};
use crate::server::{source_settings, Server};
use rsrs_codec::amf0::{self, Amf0Value};
use rsrs_codec::flv;
use rsrs_config::access::HttpHooks;
use rsrs_config::HookEvent;
use rsrs_config::{Dvr, DvrPlan, Vhost};
use rsrs_core::sink::{drive, Sink};
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};
use tracing::{error, info, warn};

/// Offsets of the `duration` and `filesize` numbers inside the metadata tag body we write.
/// (`onMetaData` string: 13 bytes; ECMA array marker and count: 5; key: 10; number marker: 1.)
const DURATION_AT: u64 = 29;
const FILESIZE_AT: u64 = 48;
const META_TAG_AT: u64 = flv::HEADER_LEN as u64 + flv::TAG_HEADER_LEN as u64;
/// Buffered data reaches the file at least this often, so a crash loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// An MP4 fragment is cut at the first keyframe a second after it began, or here regardless.
const MIN_FRAGMENT_MS: u32 = 1000;
pub const MAX_FRAGMENT_MS: u32 = 5000;
/// How far a recording's media may run ahead of the wall clock. A publisher far faster than
/// real time (a file sent without `-re`) would otherwise fill the disk at wire speed.
const MAX_LEAD: Duration = Duration::from_secs(30);

/// Starts recording a stream that was just published, if its vhost's `dvr` applies to it.
pub fn start(server: &Arc<Server>, key: &StreamKey, vhost: &Vhost, publisher: &Publisher) {
    if !vhost.dvr.applies(&key.app, &key.stream) {
        return;
    }
    let (consumer, initial) = Consumer::attach(&server.hub, key, source_settings(vhost));
    let rec = Recorder {
        publisher: publisher.clone(),
        hooks: vhost.access.hooks.clone(),
        server: server.clone(),
        cfg: vhost.dvr.clone(),
        key: key.clone(),
        utc: server.config().utc_time,
        tracks: Tracks::default(),
        file: None,
        clock: None,
    };
    let tracker = server.tasks.clone();
    let server = server.clone();
    tracker.spawn(async move { rec.run(server, consumer, initial).await });
}

/// An MP4 recording's state: the open fragment's samples, and where each fragment went.
struct Mp4File {
    segments: crate::fmp4::Fmp4Segments,
    /// (start time in the index track's timescale, offset of its moof) per fragment.
    index: Vec<(u64, u64)>,
}

struct OpenFile {
    out: BufWriter<tokio::fs::File>,
    /// Set when recording MP4.
    mp4: Option<Mp4File>,
    tmp: PathBuf,
    path: PathBuf,
    start_ts: u32,
    last_ts: u32,
    bytes: u64,
    /// What is known to be in the file (whole tags, at the last flush), for finishing it after
    /// a write error: anything past it is cut off.
    flushed_bytes: u64,
    flushed_ts: u32,
    last_flush: Instant,
}

impl OpenFile {
    async fn flush(&mut self) -> Result<(), DvrError> {
        self.out.flush().await.map_err(|err| DvrError::Disk { path: self.tmp.clone(), err })?;
        self.flushed_bytes = self.bytes;
        self.flushed_ts = self.last_ts;
        self.last_flush = Instant::now();
        Ok(())
    }
}

struct Recorder {
    /// For `on_dvr`, sent when a file is finished.
    publisher: Publisher,
    hooks: HttpHooks,
    server: Arc<Server>,
    cfg: Dvr,
    key: StreamKey,
    utc: bool,
    /// Metadata and configurations, written at the start of every file.
    tracks: Tracks,
    file: Option<OpenFile>,
    /// The first frame's stream time and when it came: the pace of the recording.
    clock: Option<(u32, Instant)>,
}

#[derive(Debug, thiserror::Error)]
enum DvrError {
    #[error("DVR {path}: {err}")]
    Disk { path: PathBuf, err: std::io::Error },
    #[error(
        "DVR refuses a publisher far faster than real time: {media_secs:.1} s of media in {wall_secs:.1} s \
         (more than {} s ahead)", MAX_LEAD.as_secs()
    )]
    TooFast { media_secs: f64, wall_secs: f64 },
    #[error("DVR refusing to write: {0}")]
    Outside(#[from] paths::OutsideRoot),
    #[error("DVR to MP4: {0}")]
    Mp4(#[from] crate::fmp4::Fmp4Error),
}

impl Recorder {
    async fn run(mut self, server: Arc<Server>, mut consumer: Consumer, initial: Vec<Arc<MediaPacket>>) {
        let url = self.key.url();
        let shutdown = server.shutdown.clone();
        let result: Result<(), DvrError> = async {
            // Shutdown ends it as the stream's end does: the file is finished rather than lost.
            drive(&mut self, &mut consumer, initial, Some(&shutdown)).await?;
            self.close().await
        }
        .await;
        if let Err(e) = result {
            Events::bump(&server.events.dvr_errors);
            error!(stream = %url, "DVR stopped for this stream: {e}");
            // Keep what was written: finish the file if it is still open. After a disk error
            // what the writer holds is in doubt, so only what was flushed is kept.
            let failed_write = matches!(e, DvrError::Disk { .. });
            if let Err(e) = self.finish(failed_write).await {
                error!(stream = %url, "DVR could not finish its file: {e}");
            }
            if matches!(e, DvrError::TooFast { .. }) {
                server.disconnect_publisher(&self.key, &e.to_string());
            }
        }
    }

    async fn write_frame(&mut self, f: &Arc<MediaPacket>) -> Result<(), DvrError> {
        if f.track != Track::Data && !f.is_config() {
            let (first_ts, started) = *self.clock.get_or_insert((f.dts, Instant::now()));
            let media = Duration::from_millis(f.dts.saturating_sub(first_ts) as u64);
            let wall = started.elapsed();
            if media > wall + MAX_LEAD {
                return Err(DvrError::TooFast { media_secs: media.as_secs_f64(), wall_secs: wall.as_secs_f64() });
            }
        }
        let same_config = f.is_config() && {
            let before = if f.track == Track::Video { &self.tracks.video } else { &self.tracks.audio };
            before.as_ref().and_then(|t| t.config.as_ref()).is_some_and(|c| c.data() == f.data())
        };
        if self.tracks.update(f) {
            // A codec change mid-recording is written where it happens in FLV, and ends an MP4
            // file; metadata only at the start of a file.
            if let Some(file) = self.file.as_mut().filter(|_| f.is_config() && !same_config) {
                if file.mp4.is_some() {
                    info!(stream = %self.key.url(), "DVR: a track's configuration changed; the MP4 file ends here");
                    self.close().await?;
                } else {
                    let ts = f.dts.saturating_sub(file.start_ts);
                    write_tag(file, f, ts).await?;
                }
            }
            return Ok(());
        }
        let has_video = self.tracks.has_video();
        let is_key = f.keyframe;
        match &self.file {
            None => {
                if has_video && self.cfg.wait_keyframe && !is_key {
                    return Ok(());
                }
                self.open(f.dts).await?;
            }
            Some(file) => {
                let dur = f.dts.saturating_sub(file.start_ts) as u64;
                if self.cfg.plan == DvrPlan::Segment
                    && dur >= self.cfg.duration * 1000
                    && (is_key || !self.cfg.wait_keyframe || !has_video)
                {
                    self.close().await?;
                    self.open(f.dts).await?;
                }
            }
        }
        if let Some(file) = self.file.as_mut() {
            if file.mp4.is_some() {
                let since = file.mp4.as_ref().and_then(|m| m.segments.pending_start()).map(|t| f.dts.saturating_sub(t));
                let cut =
                    since.is_some_and(|d| (d >= MIN_FRAGMENT_MS && (is_key || !has_video)) || d >= MAX_FRAGMENT_MS);
                if cut {
                    write_fragment(file, f.dts).await?;
                }
                // Only coded frames are samples (not end-of-sequence or relayed-only packets).
                if let Some(m) = file.mp4.as_mut().filter(|_| f.content == Content::Frame && !f.data().is_empty()) {
                    m.segments.push(f);
                }
            } else {
                let ts = f.dts.saturating_sub(file.start_ts);
                write_tag(file, f, ts).await?;
                if file.last_flush.elapsed() >= FLUSH_EVERY {
                    file.flush().await?;
                }
            }
            file.last_ts = f.dts;
        }
        Ok(())
    }

    async fn open(&mut self, ts: u32) -> Result<(), DvrError> {
        let path = PathBuf::from(paths::render(&self.cfg.path, &self.key, None, &Stamp::now(self.utc)));
        let err = |err| DvrError::Disk { path: path.clone(), err };
        paths::confine(&paths::template_root(&self.cfg.path), &path)?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            // SRS refuses to overwrite or append to a finished recording; so do we.
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "file exists, refusing to overwrite",
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(err)?;
        }
        let tmp = tmp_path(&path);
        let f = tokio::fs::File::create(&tmp).await.map_err(err)?;
        let mut file = OpenFile {
            out: BufWriter::with_capacity(256 * 1024, f),
            mp4: None,
            tmp,
            path,
            start_ts: ts,
            last_ts: ts,
            bytes: 0,
            flushed_bytes: 0,
            flushed_ts: ts,
            last_flush: Instant::now(),
        };
        if file.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("mp4")) {
            let segments = crate::fmp4::Fmp4Segments::new(&self.tracks)?;
            let init = segments.init().to_vec();
            file.out.write_all(&init).await.map_err(|e| DvrError::Disk { path: file.tmp.clone(), err: e })?;
            file.bytes += init.len() as u64;
            file.mp4 = Some(Mp4File { segments, index: Vec::new() });
            file.flush().await?;
            info!(stream = %self.key.url(), file = %file.path.display(), "DVR recording (fragmented MP4)");
            self.file = Some(file);
            return Ok(());
        }
        let has_audio = self.tracks.has_audio();
        let has_video = self.tracks.has_video();
        let header = flv::header(has_audio || !has_video, has_video);
        file.out.write_all(&header).await.map_err(|e| DvrError::Disk { path: file.tmp.clone(), err: e })?;
        file.bytes += header.len() as u64;
        let meta = metadata_body(self.tracks.metadata.as_ref().map(|m| &m.data()[..]));
        let tag = flv::encode_tag(flv::TAG_SCRIPT, 0, &meta);
        file.out.write_all(&tag).await.map_err(|e| DvrError::Disk { path: file.tmp.clone(), err: e })?;
        file.bytes += tag.len() as u64;
        for config in self.tracks.packets().filter(|p| p.is_config()) {
            write_tag(&mut file, config, 0).await?;
        }
        info!(stream = %self.key.url(), file = %file.path.display(), "DVR recording");
        self.file = Some(file);
        Ok(())
    }

    /// Finishes the open file: flush, patch duration and size, rename to the final name. When
    /// the flush fails (a full disk), the file is cut back to the whole tags already written and
    /// finished all the same: a recording never stays `.tmp` because writing stopped.
    async fn close(&mut self) -> Result<(), DvrError> {
        self.finish(false).await
    }

    /// [`close`](Self::close), or, after a write error, finishing with only what was flushed.
    async fn finish(&mut self, after_write_error: bool) -> Result<(), DvrError> {
        let Some(mut file) = self.file.take() else { return Ok(()) };
        let tmp = file.tmp.clone();
        let err = |e| DvrError::Disk { path: tmp.clone(), err: e };
        if file.mp4.is_some() && !after_write_error {
            // The open fragment, then the index; a failure here is a write error as any other.
            let end = file.last_ts.saturating_add(1);
            let tail = async {
                write_fragment(&mut file, end).await?;
                let m = file.mp4.as_ref().expect("checked above");
                if let Some((track, _)) = m.segments.index_track() {
                    let mfra = rsrs_codec::fmp4::mfra(track, &m.index);
                    file.out.write_all(&mfra).await.map_err(|e| DvrError::Disk { path: file.tmp.clone(), err: e })?;
                    file.bytes += mfra.len() as u64;
                }
                Ok::<_, DvrError>(())
            };
            if let Err(e) = tail.await {
                warn!(stream = %self.key.url(), "DVR: cannot write the last fragment and the index: {e}");
                self.file = Some(file);
                return Box::pin(self.finish(true)).await;
            }
        }
        let flushed = if after_write_error {
            Err(std::io::Error::other("an earlier write failed"))
        } else {
            file.out.flush().await
        };
        let (bytes, end_ts) = match &flushed {
            Ok(()) => (file.bytes, file.last_ts),
            Err(_) => (file.flushed_bytes, file.flushed_ts),
        };
        // What the writer still buffers is dropped with it; only the file is used from here.
        let f = file.out.get_mut();
        if flushed.is_err() {
            f.set_len(bytes).await.map_err(err)?;
        }
        let duration = end_ts.saturating_sub(file.start_ts) as f64 / 1000.0;
        if file.mp4.is_none() {
            for (at, value) in [(DURATION_AT, duration), (FILESIZE_AT, bytes as f64)] {
                f.seek(SeekFrom::Start(META_TAG_AT + at)).await.map_err(err)?;
                f.write_all(&value.to_be_bytes()).await.map_err(err)?;
            }
        }
        if let Err(e) = f.sync_all().await {
            warn!(stream = %self.key.url(), file = %tmp.display(), "DVR: sync failed: {e}");
        }
        tokio::fs::rename(&file.tmp, &file.path).await.map_err(err)?;
        Events::bump(&self.server.events.dvr_files);
        self.finished_hook(&file.path);
        let (url, path) = (self.key.url(), file.path.display());
        match flushed {
            Ok(()) => info!(stream = %url, file = %path, duration, bytes, "DVR file finished"),
            Err(e) => warn!(
                stream = %url, file = %path, duration, bytes,
                "DVR file finished after a write error ({e}): kept what reached the disk"
            ),
        }
        Ok(())
    }
}

/// Writes an MP4 recording's open fragment (ending at `end_ms`), indexes it and flushes it.
async fn write_fragment(file: &mut OpenFile, end_ms: u32) -> Result<(), DvrError> {
    let Some(m) = file.mp4.as_mut() else { return Ok(()) };
    let Some(start) = m.segments.pending_start() else { return Ok(()) };
    let scale = m.segments.index_track().map_or(1000, |(_, s)| s);
    let bytes = m.segments.finish(end_ms)?;
    m.index.push((rsrs_codec::fmp4::ticks(start as u64, scale), file.bytes));
    file.out.write_all(&bytes).await.map_err(|e| DvrError::Disk { path: file.tmp.clone(), err: e })?;
    file.bytes += bytes.len() as u64;
    file.flush().await
}

async fn write_tag(file: &mut OpenFile, f: &MediaPacket, ts: u32) -> Result<(), DvrError> {
    let body = f.flv_body();
    let mut hdr = bytes::BytesMut::with_capacity(flv::TAG_HEADER_LEN);
    flv::put_tag_header(&mut hdr, flv::tag_type(f.track), ts, body.len());
    let err = |e| DvrError::Disk { path: file.tmp.clone(), err: e };
    file.out.write_all(&hdr).await.map_err(err)?;
    file.out.write_all(body).await.map_err(err)?;
    file.out.write_all(&((flv::TAG_HEADER_LEN + body.len()) as u32).to_be_bytes()).await.map_err(err)?;
    file.bytes += (flv::TAG_HEADER_LEN + body.len() + 4) as u64;
    Ok(())
}

impl Recorder {
    /// `on_dvr` for a finished file, in the background (SRS's fields plus `cwd` and `file`).
    fn finished_hook(&self, path: &std::path::Path) {
        let urls = self.hooks.urls(HookEvent::Dvr);
        if urls.is_empty() {
            return;
        }
        let server = &self.server;
        let stream_id = server.hub.get(&self.key).map(|s| s.id.clone()).unwrap_or_default();
        let mut body =
            self.publisher.hook_body((&server.server_id, &server.service_id), HookEvent::Dvr, &self.key, &stream_id);
        body["cwd"] = serde_json::json!(std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default());
        body["file"] = serde_json::json!(path.display().to_string());
        server.hooks.notify(HookEvent::Dvr, urls.to_vec(), body);
    }
}

/// The metadata tag body: `onMetaData` with `duration` and `filesize` first (as placeholders at
/// fixed offsets), then the stream's own properties.
fn metadata_body(stream_meta: Option<&[u8]>) -> bytes::Bytes {
    let mut props =
        vec![("duration".to_string(), Amf0Value::Number(0.0)), ("filesize".to_string(), Amf0Value::Number(0.0))];
    if let Some(m) = stream_meta {
        if let Ok(values) = amf0::decode_all(m) {
            if let Some(p) = values.get(1).and_then(|v| v.properties()) {
                props.extend(p.iter().filter(|(k, _)| k != "duration" && k != "filesize").cloned());
            }
        }
    }
    props.push(("recorder".into(), Amf0Value::String(crate::version::signature())));
    // An ECMA array, as FLV files carry it (flvmeta insists).
    amf0::encode_all(&[Amf0Value::str("onMetaData"), Amf0Value::EcmaArray(props)])
}

impl Sink for Recorder {
    type Error = DvrError;

    fn frame(&mut self, f: &Arc<MediaPacket>) -> impl std::future::Future<Output = Result<(), DvrError>> + Send {
        self.write_frame(f)
    }

    /// Quiet for a while with data buffered: it goes to the file.
    fn idle_after(&self) -> Option<Duration> {
        self.file.as_ref().filter(|f| f.bytes > f.flushed_bytes).map(|_| FLUSH_EVERY)
    }

    async fn idle(&mut self) -> Result<(), DvrError> {
        match self.file.as_mut() {
            Some(f) => f.flush().await,
            None => Ok(()),
        }
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Finishes recordings a crash left as `.flv.tmp` below `root`: renames them to their final
/// name (the data up to the crash is a valid FLV). Returns how many.
pub fn recover_stale(root: &Path) -> usize {
    let mut n = 0;
    paths::walk(root, 0, &mut |p: &Path| {
        let Some(name) = p.to_str() else { return };
        if let Some(final_name) = name.strip_suffix(".flv.tmp") {
            let target = PathBuf::from(format!("{final_name}.flv"));
            if !target.exists() && std::fs::rename(p, &target).is_ok() {
                warn!("DVR: recovered {} left unfinished by an earlier run", target.display());
                n += 1;
            }
        } else if let Some(final_name) = name.strip_suffix(".mp4.tmp") {
            // Whole fragments are kept; a fragment cut by the crash is cut off.
            let target = PathBuf::from(format!("{final_name}.mp4"));
            let whole = whole_boxes(p);
            let cut = whole.and_then(|len| std::fs::OpenOptions::new().write(true).open(p)?.set_len(len));
            if cut.is_ok() && !target.exists() && std::fs::rename(p, &target).is_ok() {
                warn!("DVR: recovered {} left unfinished by an earlier run", target.display());
                n += 1;
            }
        }
    });
    n
}

/// The length of a file's whole top-level MP4 boxes, read box header by box header.
fn whole_boxes(path: &Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    Ok(rsrs_codec::fmp4::whole_len(len, |at| {
        let mut h = [0u8; 8];
        f.seek(SeekFrom::Start(at)).ok()?;
        f.read_exact(&mut h).ok()?;
        Some(h)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_offsets_match_the_encoding() {
        let body = metadata_body(Some(&amf0::encode_all(&[
            Amf0Value::str("onMetaData"),
            Amf0Value::object([("width", Amf0Value::Number(640.0)), ("duration", Amf0Value::Number(9.0))]),
        ])));
        let at = |o: u64| f64::from_be_bytes(body[o as usize..o as usize + 8].try_into().unwrap());
        assert_eq!(&body[DURATION_AT as usize - 9..DURATION_AT as usize - 1], b"duration");
        assert_eq!(&body[FILESIZE_AT as usize - 9..FILESIZE_AT as usize - 1], b"filesize");
        assert_eq!((at(DURATION_AT), at(FILESIZE_AT)), (0.0, 0.0));
        let v = amf0::decode_all(&body).unwrap();
        assert_eq!(v[1].get("width"), Some(&Amf0Value::Number(640.0)));
        assert_eq!(v[1].properties().unwrap().iter().filter(|(k, _)| k == "duration").count(), 1);
    }
}
