//! HTTP/1.1 request framing (RFC 9112), sans-io: the request head, its target normalised to one
//! path every later check sees, and the body's framing (`Content-Length` or chunked).
//!
//! The head is tokenised by `httparse` (well kept, no allocation, fast enough for the HTTP-FLV
//! accept path); what httparse leaves to its caller is done here, strictly: a request whose
//! framing a proxy in front could read differently (both `Content-Length` and
//! `Transfer-Encoding`, two different lengths, a length that is not digits) is refused rather
//! than guessed at, and the head limit is exact.

use thiserror::Error;

/// Bounds applied while reading a request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest request head (request line, headers and the blank line), in bytes.
    pub max_head: usize,
    /// Most header fields.
    pub max_headers: usize,
    /// Largest body, however it is framed.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: 16 * 1024, max_headers: 64, max_body: 64 * 1024 }
    }
}

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (`Content-Length: 0` or neither header).
    None,
    /// Exactly this many bytes follow the head.
    Length(usize),
    /// `Transfer-Encoding: chunked`; decode with [`ChunkedDecoder`].
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The target's path, percent-decoded, with dot segments resolved and repeated slashes
    /// collapsed: always starts with `/` (or is `*` for `OPTIONS *`). Authorisation and routing
    /// both read this one form.
    pub path: String,
    /// The query, without the leading `?`, as sent.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub http10: bool,
    pub framing: BodyFraming,
    /// Bytes of the head, including the blank line.
    pub head_len: usize,
}

/// Why a request cannot be read. [`HttpParseError::status`] is the answer to send before closing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpParseError {
    #[error("request head exceeds {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request target {0:?} is not an absolute path (it must start with '/')")]
    BadTarget(String),
    #[error("request path is not valid: {0}")]
    BadPath(&'static str),
    #[error("invalid Content-Length {0:?}")]
    InvalidLength(String),
    #[error("conflicting Content-Length values")]
    ConflictingLength,
    #[error("both Content-Length and Transfer-Encoding are set")]
    LengthWithTransferEncoding,
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingHttp10,
    #[error("unsupported Transfer-Encoding {0:?} (only chunked is accepted)")]
    UnsupportedTransferEncoding(String),
    #[error("request body of {len} bytes exceeds {limit}")]
    BodyTooLarge { len: usize, limit: usize },
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
}

impl HttpParseError {
    /// The HTTP status that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            HttpParseError::HeadTooLarge { .. } | HttpParseError::TooManyHeaders { .. } => 431,
            HttpParseError::BodyTooLarge { .. } => 413,
            HttpParseError::UnsupportedTransferEncoding(_) => 501,
            _ => 400,
        }
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)`: incomplete, read more (the
/// buffer is already known to be within the head limit).
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HttpParseError> {
    let mut storage = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut r = httparse::Request::new(&mut storage);
    let head_len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // Everything buffered so far belongs to the head.
            if buf.len() > limits.max_head {
                return Err(HttpParseError::HeadTooLarge { limit: limits.max_head });
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpParseError::TooManyHeaders { limit: limits.max_headers })
        }
        Err(e) => return Err(HttpParseError::Malformed(httparse_reason(e))),
    };
    if head_len > limits.max_head {
        return Err(HttpParseError::HeadTooLarge { limit: limits.max_head });
    }
    let method = r.method.ok_or(HttpParseError::Malformed("no method"))?.to_string();
    let target = r.path.ok_or(HttpParseError::Malformed("no request target"))?;
    let http10 = r.version == Some(0);
    let (path, query) = normalize_target(target, &method)?;
    let headers: Vec<(String, String)> =
        r.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
    let framing = body_framing(&headers, http10, limits)?;
    Ok(Some(RequestHead { method, path, query, headers, http10, framing, head_len }))
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token in the request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// Splits and normalises a request target: origin-form (`/p?q`), absolute-form
/// (`http://host/p?q`, RFC 9112 §3.2.2) or `*` for `OPTIONS`. Anything else is refused.
pub fn normalize_target(target: &str, method: &str) -> Result<(String, String), HttpParseError> {
    if target == "*" {
        return if method == "OPTIONS" { Ok(("*".into(), String::new())) } else { Err(bad_target(target)) };
    }
    let rest = if target.starts_with('/') {
        target
    } else {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let after = if lower.starts_with("http://") {
            &target[7..]
        } else if lower.starts_with("https://") {
            &target[8..]
        } else {
            return Err(bad_target(target));
        };
        // The authority ends at the first '/', '?' or end.
        match after.find(['/', '?']) {
            Some(i) if after.as_bytes()[i] == b'/' => &after[i..],
            Some(i) => return Ok(("/".into(), after[i + 1..].to_string())),
            None => "/",
        }
    };
    let (raw_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let decoded = percent_decode_bytes(raw_path);
    let decoded =
        String::from_utf8(decoded).map_err(|_| HttpParseError::BadPath("not UTF-8 after percent-decoding"))?;
    if decoded.chars().any(|c| c.is_control()) {
        return Err(HttpParseError::BadPath("control character or NUL"));
    }
    Ok((remove_dot_segments(&decoded), query.to_string()))
}

fn bad_target(t: &str) -> HttpParseError {
    HttpParseError::BadTarget(t.chars().take(64).collect())
}

/// RFC 3986 §5.2.4 on an absolute path, also collapsing empty segments: `/a//b/./c/../d` is
/// `/a/b/d`, and `..` never climbs above `/`. A trailing slash is kept (it selects an index).
pub fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = path.split('/').collect();
    let last = segs.len() - 1;
    let mut trailing = false;
    for (i, s) in segs.iter().enumerate() {
        match *s {
            "" | "." => trailing = i == last && i > 0,
            ".." => {
                out.pop();
                trailing = i == last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut p = String::with_capacity(path.len());
    for s in &out {
        p.push('/');
        p.push_str(s);
    }
    if p.is_empty() || trailing {
        p.push('/');
    }
    p
}

/// Decodes `%XX` escapes; malformed escapes are kept as they are.
pub fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = ((b[i + 1] as char).to_digit(16), (b[i + 2] as char).to_digit(16)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// RFC 9112 §6: the body's framing, refusing every ambiguous combination.
fn body_framing(headers: &[(String, String)], http10: bool, limits: &Limits) -> Result<BodyFraming, HttpParseError> {
    let mut length: Option<usize> = None;
    let mut codings: Vec<String> = Vec::new();
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("content-length") {
            // A list of identical values ("5, 5") is allowed; anything else is not.
            for part in v.split(',') {
                let part = part.trim_matches([' ', '\t']);
                if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HttpParseError::InvalidLength(v.chars().take(32).collect()));
                }
                let n: usize = part.parse().map_err(|_| HttpParseError::InvalidLength(part.to_string()))?;
                match length {
                    Some(m) if m != n => return Err(HttpParseError::ConflictingLength),
                    _ => length = Some(n),
                }
            }
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            codings.extend(v.split(',').map(|c| c.trim_matches([' ', '\t']).to_ascii_lowercase()));
        }
    }
    if !codings.is_empty() {
        if http10 {
            return Err(HttpParseError::TransferEncodingHttp10);
        }
        if length.is_some() {
            return Err(HttpParseError::LengthWithTransferEncoding);
        }
        if codings.len() != 1 || codings[0] != "chunked" {
            return Err(HttpParseError::UnsupportedTransferEncoding(codings.join(", ").chars().take(64).collect()));
        }
        return Ok(BodyFraming::Chunked);
    }
    match length {
        None | Some(0) => Ok(BodyFraming::None),
        Some(n) if n > limits.max_body => Err(HttpParseError::BodyTooLarge { len: n, limit: limits.max_body }),
        Some(n) => Ok(BodyFraming::Length(n)),
    }
}

/// Longest chunk-size line (size, extensions) and trailer field line accepted.
const MAX_CHUNK_LINE: usize = 1024;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// Reading chunk data: bytes left.
    Data(usize),
    /// Expecting the CRLF after chunk data: bytes of it seen.
    DataEnd(u8),
    /// Reading trailer lines after the last chunk.
    Trailer,
    Done,
}

/// An incremental decoder of a chunked request body (RFC 9112 §7.1), bounded in body size and
/// line lengths; each input byte is looked at once, however the body is split across reads.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    line: Vec<u8>,
    trailer_bytes: usize,
    body: Vec<u8>,
    /// Body bytes already handed out by [`take_body`](ChunkedDecoder::take_body).
    taken: usize,
    max_body: usize,
}

impl ChunkedDecoder {
    pub fn new(max_body: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size,
            line: Vec::new(),
            trailer_bytes: 0,
            body: Vec::new(),
            taken: 0,
            max_body,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// The decoded body (complete once [`is_done`](Self::is_done)).
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Moves the body decoded so far into `out`, for a body read as a stream (an HTTP-FLV
    /// response); `max_body` still bounds the whole.
    pub fn take_body(&mut self, out: &mut Vec<u8>) {
        self.taken += self.body.len();
        out.append(&mut self.body);
    }

    /// Consumes from `input`; returns how many bytes were used. Stops right after the body's
    /// end, so bytes of a pipelined next request are left to the caller.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, HttpParseError> {
        let mut i = 0;
        while i < input.len() && self.state != ChunkState::Done {
            match self.state {
                ChunkState::Size | ChunkState::Trailer => {
                    let b = input[i];
                    i += 1;
                    if b != b'\n' {
                        if self.line.len() >= MAX_CHUNK_LINE {
                            return Err(HttpParseError::BadChunk("line too long"));
                        }
                        self.line.push(b);
                        continue;
                    }
                    let Some(line) = self.line.strip_suffix(b"\r") else {
                        return Err(HttpParseError::BadChunk("line not ended by CRLF"));
                    };
                    if self.state == ChunkState::Size {
                        let size = chunk_size(line)?;
                        let so_far = self.taken + self.body.len();
                        if size > self.max_body - so_far {
                            return Err(HttpParseError::BodyTooLarge {
                                len: so_far.saturating_add(size),
                                limit: self.max_body,
                            });
                        }
                        self.state = if size == 0 { ChunkState::Trailer } else { ChunkState::Data(size) };
                    } else if line.is_empty() {
                        self.state = ChunkState::Done;
                    } else {
                        self.trailer_bytes += line.len() + 2;
                        if self.trailer_bytes > MAX_TRAILERS {
                            return Err(HttpParseError::BadChunk("trailers too large"));
                        }
                    }
                    self.line.clear();
                }
                ChunkState::Data(left) => {
                    let n = left.min(input.len() - i);
                    self.body.extend_from_slice(&input[i..i + n]);
                    i += n;
                    self.state = if n == left { ChunkState::DataEnd(0) } else { ChunkState::Data(left - n) };
                }
                ChunkState::DataEnd(seen) => {
                    let want = if seen == 0 { b'\r' } else { b'\n' };
                    if input[i] != want {
                        return Err(HttpParseError::BadChunk("chunk data not followed by CRLF"));
                    }
                    i += 1;
                    self.state = if seen == 0 { ChunkState::DataEnd(1) } else { ChunkState::Size };
                }
                ChunkState::Done => break,
            }
        }
        Ok(i)
    }
}

/// `1*HEXDIG [ BWS ";" chunk-ext ]`: the size, extensions ignored.
fn chunk_size(line: &[u8]) -> Result<usize, HttpParseError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(HttpParseError::BadChunk("chunk size is not hexadecimal"));
    }
    if digits > 15 {
        return Err(HttpParseError::BadChunk("chunk size too large"));
    }
    let rest = &line[digits..];
    let rest_trimmed: &[u8] = {
        let ws = rest.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        &rest[ws..]
    };
    if !rest_trimmed.is_empty() && rest_trimmed[0] != b';' {
        return Err(HttpParseError::BadChunk("junk after the chunk size"));
    }
    let s = std::str::from_utf8(&line[..digits]).map_err(|_| HttpParseError::BadChunk("chunk size"))?;
    usize::from_str_radix(s, 16).map_err(|_| HttpParseError::BadChunk("chunk size too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Option<RequestHead>, HttpParseError> {
        parse_head(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn targets_are_normalised() {
        let t = |s| normalize_target(s, "GET");
        assert_eq!(t("/api/v1/clients?x=1").unwrap(), ("/api/v1/clients".into(), "x=1".into()));
        assert_eq!(t("/a//b/./c/../d").unwrap().0, "/a/b/d");
        assert_eq!(t("/../../etc/passwd").unwrap().0, "/etc/passwd");
        assert_eq!(t("/%2e%2e/%61pi/v1/").unwrap().0, "/api/v1/");
        assert_eq!(t("/live/").unwrap().0, "/live/");
        assert_eq!(t("/live/..").unwrap().0, "/");
        assert_eq!(t("/").unwrap().0, "/");
        assert_eq!(t("http://h:1985/api/v1/clients?a").unwrap(), ("/api/v1/clients".into(), "a".into()));
        assert_eq!(t("HTTP://h").unwrap().0, "/");
        assert_eq!(t("api/v1/clients"), Err(HttpParseError::BadTarget("api/v1/clients".into())));
        assert!(matches!(t("*"), Err(HttpParseError::BadTarget(_))));
        assert_eq!(normalize_target("*", "OPTIONS").unwrap().0, "*");
        assert_eq!(t("/a%00b"), Err(HttpParseError::BadPath("control character or NUL")));
        assert_eq!(t("/a%0d%0aSet-Cookie"), Err(HttpParseError::BadPath("control character or NUL")));
        assert!(matches!(t("/%ff"), Err(HttpParseError::BadPath(_))));
    }

    #[test]
    fn a_path_without_its_slash_is_refused() {
        let e = head("GET api/v1/clients HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err();
        assert_eq!(e.status(), 400);
        let e = head("DELETE api/v1/clients/abc HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn framing_follows_rfc9112() {
        let h = head("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").unwrap().unwrap();
        assert_eq!(h.framing, BodyFraming::Length(5));
        let h = head("POST /x HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, BodyFraming::Length(5));
        let h = head("POST /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, BodyFraming::Chunked);
        assert_eq!(head("GET / HTTP/1.1\r\n\r\n").unwrap().unwrap().framing, BodyFraming::None);
        let bad = |s: &str| head(s).unwrap_err();
        assert_eq!(
            bad("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpParseError::LengthWithTransferEncoding
        );
        assert_eq!(
            bad("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            HttpParseError::ConflictingLength
        );
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), HttpParseError::InvalidLength("-1".into()));
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"), HttpParseError::InvalidLength("abc".into()));
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), HttpParseError::InvalidLength("+5".into()));
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n").status(), 400);
        assert_eq!(bad("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").status(), 501);
        assert_eq!(bad("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n").status(), 501);
        assert_eq!(
            bad("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpParseError::TransferEncodingHttp10
        );
        assert_eq!(
            bad("POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"),
            HttpParseError::BodyTooLarge { len: 65537, limit: 65536 }
        );
        assert_eq!(bad("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n").status(), 400);
    }

    #[test]
    fn the_head_limit_is_exact() {
        let limits = Limits { max_head: 100, ..Limits::default() };
        let make = |len: usize| {
            let mut s = String::from("GET / HTTP/1.1\r\nX: ");
            let pad = len - s.len() - 4;
            s.push_str(&"a".repeat(pad));
            s.push_str("\r\n\r\n");
            assert_eq!(s.len(), len);
            s
        };
        assert!(parse_head(make(100).as_bytes(), &limits).unwrap().is_some());
        assert_eq!(parse_head(make(101).as_bytes(), &limits), Err(HttpParseError::HeadTooLarge { limit: 100 }));
        // Incomplete and within the limit: read more. Incomplete and over it: refused at once.
        assert_eq!(parse_head(&make(101).as_bytes()[..99], &limits).unwrap(), None);
        assert_eq!(parse_head(&[b'a'; 101][..], &limits).unwrap_err().status(), 431);
        let partial = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(200));
        assert_eq!(parse_head(partial.as_bytes(), &limits), Err(HttpParseError::HeadTooLarge { limit: 100 }));
        let many: String = (0..65).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(head(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err().status(), 431);
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET /next";
        let end = wire.len() - b"GET /next".len();
        for split in 0..wire.len() {
            let mut d = ChunkedDecoder::new(64);
            let a = d.feed(&wire[..split]).unwrap();
            let b = if d.is_done() { 0 } else { d.feed(&wire[a..]).unwrap() };
            assert!(d.is_done(), "split at {split}");
            assert_eq!(a + b, end, "stops at the body's end (split {split})");
            assert_eq!(d.into_body(), b"hello world");
        }
    }

    #[test]
    fn a_streamed_body_is_taken_piece_by_piece_and_still_bounded() {
        let mut d = ChunkedDecoder::new(10);
        let mut out = Vec::new();
        d.feed(b"5\r\nhello\r\n").unwrap();
        d.take_body(&mut out);
        d.feed(b"3\r\nabc\r\n").unwrap();
        d.take_body(&mut out);
        assert_eq!(out, b"helloabc");
        assert_eq!(d.feed(b"3\r\n"), Err(HttpParseError::BodyTooLarge { len: 11, limit: 10 }));
    }

    #[test]
    fn bad_chunks_are_refused() {
        let err = |wire: &[u8], max: usize| ChunkedDecoder::new(max).feed(wire).unwrap_err();
        assert_eq!(err(b"zz\r\n", 64), HttpParseError::BadChunk("chunk size is not hexadecimal"));
        assert_eq!(err(b"5\nhello", 64), HttpParseError::BadChunk("line not ended by CRLF"));
        assert_eq!(err(b"5\r\nhelloXX", 64), HttpParseError::BadChunk("chunk data not followed by CRLF"));
        assert_eq!(err(b"41\r\n", 64), HttpParseError::BodyTooLarge { len: 65, limit: 64 });
        assert_eq!(err(b"5\r\nhello\r\n3c\r\n", 64), HttpParseError::BodyTooLarge { len: 65, limit: 64 });
        assert_eq!(err(b"ffffffffffffffffff\r\n", 64), HttpParseError::BadChunk("chunk size too large"));
        assert_eq!(err(b"5 x\r\n", 64), HttpParseError::BadChunk("junk after the chunk size"));
        assert_eq!(err(&[b'1'; 2000], 64), HttpParseError::BadChunk("line too long"));
    }
}
