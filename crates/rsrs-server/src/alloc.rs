//! Giving memory back after streams come and go (glibc's allocator).
//!
//! Measured with `bench/churn` (5 rounds of 300 publishers with HLS): with glibc's defaults RSS
//! went 5 -> 153 MB and stayed there once every stream was gone; with this tuning it returns to
//! about 20 MB. Two causes, two remedies:
//! - glibc's mmap threshold grows with every large block freed, after which per-stream buffers
//!   (HLS segments, DVR and socket buffers, big video frames) come from the heap, where freed
//!   space is kept. A fixed threshold keeps blocks of 128 KiB and more in their own mappings,
//!   returned to the system when freed.
//! - Freed heap pages stay with their arena until trimmed. After streams are released the heap
//!   is trimmed (at most every 10 s, off the media path); glibc's own trimming at each free is
//!   kept out of the hot path by a high trim threshold.
//!
//! `RSRS_MALLOC_TUNING=off` turns both off, to measure the difference.

use std::sync::atomic::Ordering;
use std::time::Duration;

/// Blocks this large or larger get their own mapping.
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
/// Free memory at the heap's top that glibc keeps rather than returning at each free.
const TRIM_THRESHOLD: libc::c_int = 64 * 1024 * 1024;
/// How often the heap may be trimmed after streams were released.
const TRIM_EVERY: Duration = Duration::from_secs(10);

use rsrs_core::hub::RELEASED;

fn enabled() -> bool {
    std::env::var("RSRS_MALLOC_TUNING").map(|v| v != "off").unwrap_or(true)
}

/// Sets the allocator's thresholds. Call before any thread is started.
pub fn tune() {
    if enabled() {
        // Safety: mallopt only sets allocator parameters; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            // Fixing the mmap threshold also fixes the trim threshold at its 128 KiB default, and
            // glibc then gives the heap's top back and takes it again around every large free:
            // about 10% more CPU per GB in bench/compare. Trimming is left to `trim_after_churn`.
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

/// Trims the heap when streams were released since the last look; runs for ever.
pub async fn trim_after_churn() {
    if !enabled() {
        return;
    }
    let mut seen = RELEASED.load(Ordering::Relaxed);
    let mut tick = tokio::time::interval(TRIM_EVERY);
    loop {
        tick.tick().await;
        let now = RELEASED.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            // Walks every arena: a blocking call, kept off the runtime's worker threads.
            // Safety: malloc_trim is thread-safe.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    }
}
