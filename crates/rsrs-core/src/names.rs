//! Names and texts a client sends (vhost, app, stream, query parameters, URLs): one rule for every
//! protocol, applied before a name reaches a log line, a hook, a file path or the stream table.
//!
//! Stream and app names become file names (`[app]/[stream]-[seq].ts`), so a name is refused when
//! it could climb out of a directory (`..` segments, empty segments from leading or doubled
//! slashes, backslashes) or corrupt what it lands in (control characters, NUL). Lengths are
//! bounded so a hostile name cannot be amplified through logs and replies.

use std::fmt;

/// Longest vhost: a DNS name.
pub const MAX_VHOST: usize = 253;
/// Longest app (SRS allows several levels, `live/sub`).
pub const MAX_APP: usize = 256;
/// Longest stream name.
pub const MAX_STREAM: usize = 256;
/// Longest query string or URL (tcUrl, pageUrl, swfUrl); room for signed tokens and JWTs.
pub const MAX_TEXT: usize = 4096;

/// Why a client's name or text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} bytes, longer than the {max} allowed")]
    TooLong { what: &'static str, len: usize, max: usize },
    #[error("{what} contains a control character")]
    Control { what: &'static str },
    #[error("{what} contains a backslash")]
    Backslash { what: &'static str },
    #[error("{what} has an empty, '.' or '..' path segment")]
    Segment { what: &'static str },
    #[error("{what} contains '/'")]
    Slash { what: &'static str },
}

fn common(what: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    if s.len() > max {
        return Err(NameError::TooLong { what, len: s.len(), max });
    }
    if s.chars().any(char::is_control) {
        return Err(NameError::Control { what });
    }
    Ok(())
}

/// A name that becomes part of a path: non-empty segments, none `.` or `..`, no backslash.
fn path_name(what: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { what });
    }
    common(what, s, max)?;
    if s.contains('\\') {
        return Err(NameError::Backslash { what });
    }
    if s.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(NameError::Segment { what });
    }
    Ok(())
}

pub fn check_vhost(s: &str) -> Result<(), NameError> {
    path_name("vhost", s, MAX_VHOST)?;
    if s.contains('/') {
        return Err(NameError::Slash { what: "vhost" });
    }
    Ok(())
}

pub fn check_app(s: &str) -> Result<(), NameError> {
    path_name("app", s, MAX_APP)
}

pub fn check_stream(s: &str) -> Result<(), NameError> {
    path_name("stream name", s, MAX_STREAM)
}

/// The app and stream of a play or publish, and its query, whatever the protocol.
pub fn check_stream_request(app: &str, stream: &str, param: &str) -> Result<(), NameError> {
    check_app(app)?;
    check_stream(stream)?;
    check_text("param", param)
}

/// Free text that is logged and passed on (query parameters, tcUrl, pageUrl): bounded, and
/// without control characters.
pub fn check_text(what: &'static str, s: &str) -> Result<(), NameError> {
    common(what, s, MAX_TEXT)
}

/// Shows client-supplied text in a log line or a reply: control characters escaped (`\n`,
/// `\x1b`), at most [`Escaped::MAX_CHARS`] characters, then how much was left out. Use it for
/// anything from the network that is shown before it was checked.
pub struct Escaped<'a>(pub &'a str);

impl Escaped<'_> {
    pub const MAX_CHARS: usize = 128;
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, (i, c)) in self.0.char_indices().enumerate() {
            if shown == Self::MAX_CHARS {
                return write!(f, "...(+{} bytes)", self.0.len() - i);
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Escapes every control character in a whole log record except its final newline, so each
/// record is exactly one line whatever the fields held (belt and braces: fields from the
/// network are checked or [`Escaped`] before they are logged). `keep_esc` keeps ANSI colours.
pub fn escape_log_record(record: &[u8], keep_esc: bool) -> std::borrow::Cow<'_, [u8]> {
    let body = record.strip_suffix(b"\n").unwrap_or(record);
    let bad = |b: u8| (b < 0x20 && b != b'\t' && !(keep_esc && b == 0x1b)) || b == 0x7f;
    if !body.iter().any(|&b| bad(b)) {
        return std::borrow::Cow::Borrowed(record);
    }
    let mut out = Vec::with_capacity(record.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b if bad(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    if body.len() < record.len() {
        out.push(b'\n');
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_a_directory_are_refused() {
        assert_eq!(check_stream("livestream"), Ok(()));
        assert_eq!(check_app("live/sub"), Ok(()));
        assert_eq!(check_stream("cam.1-a_b"), Ok(()));
        for bad in ["..", "../x", "a/../b", "a/..", "/x", "x/", "a//b", ".", "./a"] {
            assert_eq!(check_app(bad), Err(NameError::Segment { what: "app" }), "{bad}");
        }
        assert_eq!(check_stream(r"..\x"), Err(NameError::Backslash { what: "stream name" }));
        assert_eq!(check_stream("a\r\nb"), Err(NameError::Control { what: "stream name" }));
        assert_eq!(check_stream("a\0b"), Err(NameError::Control { what: "stream name" }));
        assert_eq!(check_stream(""), Err(NameError::Empty { what: "stream name" }));
        assert_eq!(check_vhost("a/b"), Err(NameError::Slash { what: "vhost" }));
        assert_eq!(check_vhost(".."), Err(NameError::Segment { what: "vhost" }));
        let long = "x".repeat(MAX_STREAM + 1);
        assert_eq!(check_stream(&long), Err(NameError::TooLong { what: "stream name", len: 257, max: 256 }));
        assert_eq!(check_text("param", &"a".repeat(MAX_TEXT)), Ok(()));
        assert!(check_text("param", "?a=\n").is_err());
    }

    #[test]
    fn escaped_text_is_one_short_line() {
        assert_eq!(Escaped("a\r\nINFO forged").to_string(), "a\\r\\nINFO forged");
        assert_eq!(Escaped("\u{1b}[31m").to_string(), "\\u{1b}[31m");
        let big = "y".repeat(1 << 20);
        let s = Escaped(&big).to_string();
        assert_eq!(s.len(), 128 + "...(+1048448 bytes)".len());
        assert!(s.ends_with("...(+1048448 bytes)"));
    }

    #[test]
    fn log_records_stay_one_line() {
        assert_eq!(&*escape_log_record(b"plain\n", false), b"plain\n");
        assert_eq!(&*escape_log_record(b"a\r\nb\x00c\n", false), b"a\\r\\nb\\x00c\n");
        assert_eq!(&*escape_log_record(b"\x1b[1mx\n", true), b"\x1b[1mx\n");
        assert_eq!(&*escape_log_record(b"\x1b[1mx\n", false), b"\\x1b[1mx\n");
    }
}
