//! Static files from `http_server.dir` (the web root, HLS output), with SRS's content types.

use super::{Request, Response};
use bytes::Bytes;
use std::path::{Component, Path, PathBuf};

/// The page served at `/` when the web root has no `index.html` of its own.
pub const DEFAULT_INDEX: &str = include_str!("../../assets/index.html");

pub enum FileReply {
    /// A small or generated response.
    Full(Response),
    /// A file to stream: head, open file, length.
    Stream(Response, tokio::fs::File, u64),
}

/// Content type by extension, as SRS's file server maps them.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|x| x.1.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "ts" => "video/MP2T",
        "m3u8" => "application/vnd.apple.mpegurl",
        "flv" => "video/x-flv",
        "mp4" | "mp4v" => "video/mp4",
        "m4v" => "video/x-m4v",
        "3gp" | "3gpp" => "video/3gpp",
        "aac" => "audio/x-aac",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/x-m4a",
        "ogg" => "audio/ogg",
        "mpd" => "application/dash+xml",
        "m4s" => "video/iso.segment",
        "json" => "application/json",
        "xml" => "text/xml",
        "html" | "htm" => "text/html",
        "js" => "text/javascript",
        "css" => "text/css",
        "ico" => "image/x-icon",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "txt" => "text/plain",
        "rss" => "application/rss+xml",
        "swf" => "application/x-shockwave-flash",
        "doc" => "application/msword",
        "zip" => "application/zip",
        "rar" => "application/x-rar-compressed",
        _ => "application/octet-stream",
    }
}

/// Maps a URL path under `root`, refusing anything that would escape it.
pub fn resolve(root: &str, url_path: &str) -> Option<PathBuf> {
    let mut p = PathBuf::from(root);
    for c in Path::new(url_path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(s) => p.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(p)
}

pub async fn serve(root: &str, req: &Request) -> FileReply {
    if req.method != "GET" && req.method != "HEAD" {
        return FileReply::Full(Response::text(405, "Method Not Allowed"));
    }
    let Some(mut path) = resolve(root, &req.path) else {
        return FileReply::Full(Response::text(404, "Not Found"));
    };
    let mut url = req.path.clone();
    if tokio::fs::metadata(&path).await.map(|m| m.is_dir()).unwrap_or(false) {
        path.push("index.html");
        url = "index.html".into();
    }
    // A symlink inside the root may point anywhere: serve only what really lies under the root.
    // The resolved path is what gets opened, so a link swapped afterwards changes nothing.
    match (tokio::fs::canonicalize(root).await, tokio::fs::canonicalize(&path).await) {
        (Ok(real_root), Ok(real)) if !real.starts_with(&real_root) => {
            tracing::warn!(path = %crate::names::Escaped(&req.path), "refused: resolves outside the web root");
            return FileReply::Full(Response::text(403, "Forbidden"));
        }
        (Ok(_), Ok(real)) => path = real,
        _ => {}
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) if req.path == "/" || req.path == "/index.html" => {
            return FileReply::Full(Response::new(200, "text/html", Bytes::from_static(DEFAULT_INDEX.as_bytes())));
        }
        Err(_) => return FileReply::Full(Response::text(404, "Not Found")),
    };
    let len = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return FileReply::Full(Response::text(404, "Not Found")),
    };
    let mut head = Response::new(200, content_type(&url), Bytes::new());
    // Playlists change every segment; segments never change once written.
    if url.ends_with(".m3u8") {
        head = head.header("Cache-Control", "no-cache");
    } else if url.ends_with(".ts") {
        head = head.header("Cache-Control", "max-age=3600");
    }
    FileReply::Stream(head, file, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_escape_from_root() {
        assert_eq!(resolve("/srv", "/live/a.m3u8"), Some(PathBuf::from("/srv/live/a.m3u8")));
        assert_eq!(resolve("/srv", "/../etc/passwd"), None);
        assert_eq!(resolve("/srv", "/a/../../x"), None);
        assert_eq!(resolve("/srv", "/"), Some(PathBuf::from("/srv")));
    }

    #[test]
    fn types() {
        assert_eq!(content_type("/live/s.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("/live/s-1.TS"), "video/MP2T");
        assert_eq!(content_type("/x"), "application/octet-stream");
    }
}
