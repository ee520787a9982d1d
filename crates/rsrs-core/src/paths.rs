//! SRS's file-name templates for HLS and DVR: `[vhost] [app] [stream] [seq] [timestamp]` and the
//! date variables `[2006] [01] [02] [15] [04] [05] [999]` (local time unless `utc_time on`).

use crate::hub::StreamKey;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Broken-down time used by the date variables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    pub unix_ms: u64,
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Stamp {
    pub fn now(utc: bool) -> Stamp {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Stamp::at(ms, utc)
    }

    pub fn at(unix_ms: u64, utc: bool) -> Stamp {
        let secs = (unix_ms / 1000) as libc::time_t;
        // Safety: localtime_r/gmtime_r only write into the tm we pass.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        unsafe {
            if utc {
                libc::gmtime_r(&secs, &mut tm);
            } else {
                libc::localtime_r(&secs, &mut tm);
            }
        }
        Stamp {
            unix_ms,
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
        }
    }
}

/// Fills a template. `seq` is only substituted when given.
pub fn render(template: &str, key: &StreamKey, seq: Option<u64>, t: &Stamp) -> String {
    let mut s = template
        .replace("[vhost]", &key.vhost)
        .replace("[app]", &key.app)
        .replace("[stream]", &key.stream)
        .replace("[timestamp]", &t.unix_ms.to_string())
        .replace("[2006]", &format!("{:04}", t.year))
        .replace("[01]", &format!("{:02}", t.month))
        .replace("[02]", &format!("{:02}", t.day))
        .replace("[15]", &format!("{:02}", t.hour))
        .replace("[04]", &format!("{:02}", t.minute))
        .replace("[05]", &format!("{:02}", t.second))
        .replace("[999]", &format!("{:03}", t.unix_ms % 1000));
    if let Some(n) = seq {
        s = s.replace("[seq]", &n.to_string());
    }
    s
}

/// Joins a base directory and a rendered relative path the way SRS does (`base + "/" + rel`).
pub fn join(base: &str, rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}/{}", base.trim_end_matches('/'), rel.trim_start_matches('/')))
}

/// A path rendered from a template that would leave its configured root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is outside {}", .path.display(), .root.display())]
pub struct OutsideRoot {
    pub path: PathBuf,
    pub root: PathBuf,
}

/// `.` dropped and `a/..` folded, without touching the disk; leading `..` are kept.
fn lexical(p: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// Checks, before anything is created, that `path` (built from a template and client names)
/// lies strictly below `root`. Returns the path as given.
pub fn confine(root: &Path, path: &Path) -> Result<PathBuf, OutsideRoot> {
    let (r, p) = (lexical(root), lexical(path));
    if p.starts_with(&r) && p.components().count() > r.components().count() {
        Ok(path.to_path_buf())
    } else {
        Err(OutsideRoot { path: path.to_path_buf(), root: root.to_path_buf() })
    }
}

/// The directory a DVR template writes under: the fixed part of `dvr_path` before its first
/// variable, up to its last `/` (`./objs/nginx/html/[app]/[stream].flv` gives
/// `./objs/nginx/html`).
pub fn template_root(template: &str) -> PathBuf {
    let fixed = template.split('[').next().unwrap_or("");
    match fixed.rfind('/') {
        Some(0) => PathBuf::from("/"),
        Some(i) => PathBuf::from(&fixed[..i]),
        None => PathBuf::from("."),
    }
}

/// `target` relative to the directory of `from` (both relative to the same root), for playlist
/// URIs: `live/a.m3u8` + `live/a-1.ts` gives `a-1.ts`; `live/a.m3u8` + `ts/a-1.ts` gives `../ts/a-1.ts`.
pub fn relative_to(from: &str, target: &str) -> String {
    let from_dir: Vec<&str> = from.trim_start_matches('/').split('/').collect();
    let from_dir = &from_dir[..from_dir.len().saturating_sub(1)];
    let t: Vec<&str> = target.trim_start_matches('/').split('/').collect();
    let common = from_dir.iter().zip(t.iter()).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from_dir.len() - common];
    parts.extend(&t[common..]);
    parts.join("/")
}

/// Visits every file below `dir` (bounded depth, no symlinked directories).
pub fn walk(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path)) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&e.path(), depth + 1, f);
        } else if ft.is_file() {
            f(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StreamKey {
        StreamKey { vhost: "__defaultVhost__".into(), app: "live".into(), stream: "cam".into() }
    }

    #[test]
    fn templates() {
        // 2021-02-03 04:05:06.789 UTC
        let t = Stamp::at(1_612_325_106_789, true);
        assert_eq!(render("[app]/[stream]-[seq].ts", &key(), Some(12), &t), "live/cam-12.ts");
        assert_eq!(render("[app]/[stream].[timestamp].flv", &key(), None, &t), "live/cam.1612325106789.flv");
        assert_eq!(render("[2006]/[01]/[02]/[15][04][05]-[999]", &key(), None, &t), "2021/02/03/040506-789");
        assert_eq!(render("[stream]-[seq]", &key(), None, &t), "cam-[seq]");
    }

    #[test]
    fn rendered_paths_stay_under_their_root() {
        let root = Path::new("./objs/nginx/html");
        let ok = |p: &str| confine(root, Path::new(p)).is_ok();
        assert!(ok("./objs/nginx/html/live/a.m3u8"));
        assert!(ok("objs/nginx/html/./live/../live/a-1.ts"));
        assert!(!ok("./objs/nginx/html/../../../../x/a.m3u8"));
        assert!(!ok("./objs/nginx/html/live/../../html2/a.ts"));
        assert!(!ok("./objs/nginx/html"));
        assert!(!ok("/etc/passwd"));
        assert!(confine(Path::new("/data"), Path::new("/data/live/../../etc/x")).is_err());
        assert!(confine(Path::new("/data"), Path::new("/data/live/a.flv")).is_ok());
        assert_eq!(
            template_root("./objs/nginx/html/[app]/[stream].[timestamp].flv"),
            PathBuf::from("./objs/nginx/html")
        );
        assert_eq!(template_root("/rec/[2006]/x.flv"), PathBuf::from("/rec"));
        assert_eq!(template_root("[app].flv"), PathBuf::from("."));
        assert_eq!(template_root("/x.flv"), PathBuf::from("/"));
    }

    #[test]
    fn relative_uris() {
        assert_eq!(relative_to("live/a.m3u8", "live/a-1.ts"), "a-1.ts");
        assert_eq!(relative_to("live/a.m3u8", "ts/live/a-1.ts"), "../ts/live/a-1.ts");
        assert_eq!(relative_to("a.m3u8", "live/a-1.ts"), "live/a-1.ts");
        assert_eq!(join("./objs/nginx/html/", "/live/a.m3u8").to_str(), Some("./objs/nginx/html/live/a.m3u8"));
    }
}
