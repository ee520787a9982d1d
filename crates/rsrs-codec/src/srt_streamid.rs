//! SRS's SRT stream ids: what a caller's `streamid` says about the stream and the direction.
//!
//! Accepted forms, as SRS 5-7 read them:
//! - `#!::r=live/livestream,m=publish` (the SRT access-control form), with `m=request` (or no
//!   `m`) to play, `h=vhost` for the vhost (or `h=vhost/app/stream`, or `h=app/stream`), and any
//!   other key passed on as the query (`secret=...`, `token=...`);
//! - `live/livestream` or `live/livestream?token=...` (a plain path: play);
//! - `livestream` (a bare name: the default app, play).
//!
//! Keys are read as SRS does: split on `=`, `,`, `&`, `;`, a `?` taken as a separator, the
//! last of a repeated key winning, and the others put in the query in key order.

use std::collections::BTreeMap;

/// Which way the media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtMode {
    /// The caller sends a stream (`m=publish`).
    Publish,
    /// The caller receives one (`m=request`, or no mode).
    Play,
}

/// A stream id, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId {
    pub mode: SrtMode,
    /// From `h=`; `None`: the default vhost.
    pub vhost: Option<String>,
    pub app: String,
    pub stream: String,
    /// The query: every key that is not `h`, `m` or `r` (and `vhost=` when `h` named one).
    pub param: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("SRT stream id `{0}` has mode `{1}`; SRS's modes are publish and request")]
    BadMode(String, String),
    #[error("SRT stream id `{0}` names no stream (expected e.g. `#!::r=live/livestream,m=publish`)")]
    NoStream(String),
}

/// The stream id SRS assumes when a caller sends none.
pub const DEFAULT_STREAM_ID: &str = "#!::r=live/livestream,m=publish";

/// Reads `id`; a path without an app goes to `default_app` (SRS's `default_app`, `live`).
pub fn parse(id: &str, default_app: &str) -> Result<StreamId, StreamIdError> {
    let mut mode = SrtMode::Play;
    let mut vhost = None;
    let subpath = match id.strip_prefix("#!::") {
        None if id.contains('/') => id.to_string(),
        None => format!("{default_app}/{id}"),
        Some(rest) => {
            let rest = rest.replace('?', ",");
            let mut subpath = String::new();
            let mut params = Vec::new();
            for (k, v) in split_query(&rest) {
                match k.as_str() {
                    "h" => match (v.find('/'), v.rfind('/')) {
                        (Some(first), Some(last)) if first != last => {
                            subpath = v[first + 1..].to_string();
                            params.push(format!("vhost={}", &v[..first]));
                            vhost = Some(v[..first].to_string());
                        }
                        (Some(_), _) => subpath = v,
                        _ => {
                            params.push(format!("vhost={v}"));
                            vhost = Some(v);
                        }
                    },
                    "r" => subpath = v,
                    "m" => {
                        mode = match v.to_ascii_lowercase().as_str() {
                            "publish" => SrtMode::Publish,
                            "request" => SrtMode::Play,
                            _ => return Err(StreamIdError::BadMode(id.to_string(), v)),
                        }
                    }
                    _ => params.push(format!("{k}={v}")),
                }
            }
            if subpath.is_empty() {
                return Err(StreamIdError::NoStream(id.to_string()));
            }
            if !params.is_empty() {
                subpath = format!("{subpath}?{}", params.join("&"));
            }
            subpath
        }
    };
    let (app, with_param) = match subpath.split_once('/') {
        None => (default_app.to_string(), subpath.as_str()),
        Some((app, rest)) => (app.to_string(), rest),
    };
    let (stream, param) = with_param.split_once('?').unwrap_or((with_param, ""));
    if stream.is_empty() {
        return Err(StreamIdError::NoStream(id.to_string()));
    }
    Ok(StreamId { mode, vhost, app, stream: stream.to_string(), param: param.to_string() })
}

/// SRS's `srs_parse_query_string`: tokens split on `=`, `,`, `&&`, `&` and `;`, taken in pairs;
/// a repeated key keeps its last value; keys come back sorted (SRS's `std::map`).
fn split_query(q: &str) -> BTreeMap<String, String> {
    let tokens: Vec<&str> = q.split(['=', ',', '&', ';']).filter(|t| !t.is_empty()).collect();
    let mut out = BTreeMap::new();
    for pair in tokens.chunks(2) {
        out.insert(pair[0].to_string(), pair.get(1).unwrap_or(&"").to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str) -> StreamId {
        parse(id, "live").unwrap()
    }

    #[test]
    fn srs_forms() {
        let s = p("#!::r=live/livestream,m=publish");
        assert_eq!(
            (s.mode, s.app.as_str(), s.stream.as_str(), s.param.as_str()),
            (SrtMode::Publish, "live", "livestream", "")
        );
        assert_eq!(s.vhost, None);
        let s = p("#!::r=live/livestream,m=request");
        assert_eq!(s.mode, SrtMode::Play);
        assert_eq!(p("#!::r=live/livestream").mode, SrtMode::Play, "no mode: play");
        let s = p("#!::h=srs.srt.com.cn,r=live/livestream,m=publish");
        assert_eq!((s.vhost.as_deref(), s.param.as_str()), (Some("srs.srt.com.cn"), "vhost=srs.srt.com.cn"));
        let s = p("#!::h=example.com/live/show,m=publish");
        assert_eq!((s.vhost.as_deref(), s.app.as_str(), s.stream.as_str()), (Some("example.com"), "live", "show"));
        let s = p("#!::h=live/show");
        assert_eq!((s.vhost, s.app.as_str(), s.stream.as_str()), (None, "live", "show"));
        // A query in r=, and other keys, become the param (sorted, as SRS's map).
        let s = p("#!::r=live/livestream?secret=abc,m=publish,token=t1");
        assert_eq!((s.stream.as_str(), s.param.as_str()), ("livestream", "secret=abc&token=t1"));
        assert_eq!(p("#!::m=PUBLISH,r=live/x").mode, SrtMode::Publish, "mode in any case, keys in any order");
    }

    #[test]
    fn plain_paths_play() {
        let s = p("live/livestream?token=t");
        assert_eq!(
            (s.mode, s.app.as_str(), s.stream.as_str(), s.param.as_str()),
            (SrtMode::Play, "live", "livestream", "token=t")
        );
        let s = p("livestream");
        assert_eq!((s.app.as_str(), s.stream.as_str()), ("live", "livestream"));
        assert_eq!(p(DEFAULT_STREAM_ID).stream, "livestream");
    }

    #[test]
    fn refused() {
        assert!(matches!(parse("#!::r=live/x,m=push", "live"), Err(StreamIdError::BadMode(..))));
        assert!(matches!(parse("#!::m=publish", "live"), Err(StreamIdError::NoStream(_))));
        assert!(matches!(parse("#!::r=live/,m=publish", "live"), Err(StreamIdError::NoStream(_))));
        assert!(matches!(parse("#!::", "live"), Err(StreamIdError::NoStream(_))));
    }
}
