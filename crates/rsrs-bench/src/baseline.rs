//! The raw fan-out floor: a server that sends the same bytes at the same rate to every
//! connected socket, with no protocol work at all: one shared buffer, one write per client per
//! interval. Its CPU per delivered GB is the practical limit for any streaming server here.

use crate::publisher::flv_bytes;
use bytes::Bytes;
use rsrs_codec::flv::Tag;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Serves until `end`: every `interval`, the next slice of the FLV (by media time) goes to all.
pub async fn serve(listen: &str, tags: Arc<Vec<Tag>>, interval: Duration, end: Instant) -> std::io::Result<()> {
    let l = TcpListener::bind(listen).await?;
    eprintln!("baseline listening on {listen}");
    let data = flv_bytes(&tags);
    // Byte offsets where each tag ends, with its timestamp, to cut slices by media time.
    let mut cuts = Vec::with_capacity(tags.len());
    let mut off = 13usize;
    for t in tags.iter() {
        off += 11 + t.data.len() + 4;
        cuts.push((t.timestamp as u64, off));
    }
    let period = cuts.last().map(|c| c.0).unwrap_or(0) + 33;
    let (tx, _) = broadcast::channel::<Bytes>(64);
    let feeder = {
        let tx = tx.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut pos = 13usize;
            let mut lap = 0u64;
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let media_now = start.elapsed().as_millis() as u64;
                let mut slice_end = pos;
                loop {
                    let next = cuts.iter().find(|c| c.1 > slice_end);
                    match next {
                        Some(&(ts, o)) if lap * period + ts <= media_now => slice_end = o,
                        Some(_) => break,
                        None => {
                            // End of file: send what we have, loop.
                            if slice_end > pos {
                                let _ = tx.send(data.slice(pos..slice_end));
                            }
                            pos = 13;
                            slice_end = 13;
                            lap += 1;
                        }
                    }
                }
                if slice_end > pos {
                    let _ = tx.send(data.slice(pos..slice_end));
                    pos = slice_end;
                }
            }
        })
    };
    let deadline = tokio::time::Instant::from_std(end);
    loop {
        let accept = tokio::time::timeout_at(deadline, l.accept()).await;
        let Ok(Ok((mut sock, _))) = accept else { break };
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            while let Ok(b) = rx.recv().await {
                if sock.write_all(&b).await.is_err() {
                    return;
                }
            }
        });
    }
    feeder.abort();
    Ok(())
}
