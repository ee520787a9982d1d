//! An RTMP publisher that sends an FLV file in real time, looping.

use crate::client::{ClientError, RtmpClient, Url};
use crate::DelayBook;
use bytes::{BufMut, Bytes, BytesMut};
use rsrs_codec::amf0::Amf0Value;
use rsrs_codec::flv::{self, FlvReader, Tag};
use rsrs_codec::media::Content;
use rsrs_codec::rtmp::message as msg;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads every tag of an FLV file.
pub fn load_flv(path: &std::path::Path) -> Result<Vec<Tag>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut r = FlvReader::new(64 << 20);
    r.push(&data);
    let mut tags = Vec::new();
    while let Some(t) = r.next_tag().map_err(|e| format!("{}: {e}", path.display()))? {
        tags.push(t);
    }
    if tags.is_empty() {
        return Err(format!("{}: no FLV tags", path.display()));
    }
    Ok(tags)
}

/// Whether publishers leave Nagle's algorithm on (`--publisher-nagle`), as ffmpeg's RTMP publisher
/// does; OBS and librtmp turn it off, as this generator does by default.
static NAGLE: AtomicBool = AtomicBool::new(false);

/// Makes every publisher of this process leave Nagle's algorithm on.
pub fn leave_nagle_on() {
    NAGLE.store(true, Ordering::Relaxed);
}

/// Publishes `tags` to `url` in real time until `end`, looping the file with continuous
/// timestamps. Records each video frame's send time in `book` when given.
pub async fn run(
    url: Url,
    tags: Arc<Vec<Tag>>,
    end: Instant,
    book: Option<Arc<DelayBook>>,
) -> Result<u64, ClientError> {
    let mut c = RtmpClient::connect(&url).await?;
    if NAGLE.load(Ordering::Relaxed) {
        c.leave_nagle_on()?;
    }
    c.publish(&url.stream).await?;
    let first = tags.iter().map(|t| t.timestamp).min().unwrap_or(0);
    let last = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
    let period = (last - first) as u64 + 33;
    let start = tokio::time::Instant::now();
    let mut sent = 0u64;
    for lap in 0u64.. {
        for t in tags.iter() {
            let ts = lap * period + (t.timestamp - first) as u64;
            let due = start + Duration::from_millis(ts);
            if due.into_std() >= end {
                return Ok(sent);
            }
            tokio::time::sleep_until(due).await;
            match t.tag_type {
                flv::TAG_SCRIPT => {
                    if lap > 0 {
                        continue;
                    }
                    // RTMP publishers wrap metadata as @setDataFrame(onMetaData, ...).
                    let mut b = BytesMut::new();
                    Amf0Value::str("@setDataFrame").encode(&mut b);
                    b.put_slice(&t.data);
                    let m = rsrs_codec::rtmp::Message {
                        csid: 4,
                        timestamp: 0,
                        type_id: msg::AMF0_DATA,
                        stream_id: c.stream_id(),
                        payload: b.freeze(),
                    };
                    c.send(&[m]).await?;
                }
                flv::TAG_AUDIO | flv::TAG_VIDEO => {
                    let type_id = if t.tag_type == flv::TAG_AUDIO { msg::AUDIO } else { msg::VIDEO };
                    if t.tag_type == flv::TAG_VIDEO
                        && flv::tag::parse_video(&t.data).is_ok_and(|h| h.content == Content::Frame)
                    {
                        if let Some(b) = &book {
                            b.record(&t.data, Instant::now());
                        }
                    }
                    c.send_media(type_id, ts as u32, t.data.clone()).await?;
                    sent += t.data.len() as u64;
                }
                _ => {}
            }
        }
    }
    Ok(sent)
}

/// Encodes tags back into an FLV byte stream (for the raw baseline).
pub fn flv_bytes(tags: &[Tag]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(&flv::header(true, true));
    for t in tags {
        out.put_slice(&flv::encode_tag(t.tag_type, t.timestamp, &t.data));
    }
    out.freeze()
}
