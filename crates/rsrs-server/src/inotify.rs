//! A minimal inotify watcher on one directory (Linux), driven by tokio.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use tokio::io::unix::AsyncFd;

/// One event: the entry's name and what happened to it.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub what: &'static str,
}

pub struct Watcher {
    fd: AsyncFd<OwnedFd>,
}

const MASK: u32 = libc::IN_MODIFY | libc::IN_CLOSE_WRITE | libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ATTRIB;

impl Watcher {
    pub fn new(dir: &Path) -> std::io::Result<Watcher> {
        // Safety: plain syscalls; the fd is owned by OwnedFd from here on.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let c = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), MASK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Safety: we own the fd and it stays open as long as the AsyncFd (which owns it).
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Watcher { fd })
    }

    /// Waits for the next batch of events.
    pub async fn next(&mut self) -> std::io::Result<Vec<Event>> {
        let mut buf = [0u8; 4096];
        loop {
            let mut guard = self.fd.readable().await?;
            // Safety: reading into our own buffer from our own fd.
            let n = unsafe { libc::read(self.fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    guard.clear_ready();
                    continue;
                }
                return Err(e);
            }
            return Ok(parse(&buf[..n as usize]));
        }
    }
}

/// Parses `struct inotify_event` records.
fn parse(mut b: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    const HDR: usize = 16; // wd, mask, cookie, len
    while b.len() >= HDR {
        let mask = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        let len = u32::from_ne_bytes([b[12], b[13], b[14], b[15]]) as usize;
        let Some(raw) = b.get(HDR..HDR + len) else { break };
        let name = String::from_utf8_lossy(raw.split(|&c| c == 0).next().unwrap_or(&[])).to_string();
        let what = if mask & libc::IN_MOVED_TO != 0 {
            "moved in"
        } else if mask & libc::IN_CREATE != 0 {
            "created"
        } else if mask & libc::IN_CLOSE_WRITE != 0 {
            "written"
        } else if mask & libc::IN_MODIFY != 0 {
            "modified"
        } else {
            "attributes changed"
        };
        out.push(Event { name, what });
        b = &b[HDR + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sees_a_kubernetes_style_symlink_swap() {
        let dir = std::env::temp_dir().join(format!("rsrs-inotify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = Watcher::new(&dir).unwrap();
        std::os::unix::fs::symlink("..2026_01_01", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        let mut names = Vec::new();
        while !names.iter().any(|e: &Event| e.name == "..data" && e.what == "moved in") {
            let batch = tokio::time::timeout(std::time::Duration::from_secs(5), w.next()).await.unwrap().unwrap();
            names.extend(batch);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
