//! Minimal, cheap RTMP and HTTP-FLV clients for load generation. Protocol parsing comes from
//! `rsrs-codec`; this only drives sockets.

use bytes::{Buf, Bytes, BytesMut};
use rsrs_codec::flv::{FlvReader, Tag};
use rsrs_codec::http::ChunkedDecoder;
use rsrs_codec::rtmp::message as msg;
use rsrs_codec::rtmp::Message;
use rsrs_rtmp::client::{ClientError as UpstreamError, RtmpClient as UpstreamClient};
use rsrs_rtmp::io::IoError;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad URL {0}")]
    Url(String),
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("closed by server")]
    Closed,
    #[error("rtmp: {0}")]
    Rtmp(String),
    #[error("http: {0}")]
    Http(String),
    #[error("timeout: {0}")]
    Timeout(&'static str),
}

/// `scheme://host[:port]/app.../stream` split into parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// Everything between host and the last segment.
    pub app: String,
    /// Last segment, with any query.
    pub stream: String,
    pub path: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, ClientError> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| ClientError::Url(s.into()))?;
        let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
        let default = match scheme {
            "rtmp" => 1935,
            "http" => 80,
            "tcp" => 0,
            _ => return Err(ClientError::Url(s.into())),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| ClientError::Url(s.into()))?),
            None => (hostport.to_string(), default),
        };
        let (app, stream) = path.rsplit_once('/').unwrap_or(("", path));
        Ok(Url { scheme: scheme.into(), host, port, app: app.into(), stream: stream.into(), path: format!("/{path}") })
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// An RTMP client connection after `connect` and `createStream`: the server's own client
/// (`rsrs_rtmp::client`), with what a load generator needs on top.
pub struct RtmpClient {
    inner: UpstreamClient,
}

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn rtmp_err(e: UpstreamError) -> ClientError {
    match e {
        UpstreamError::Io(IoError::Closed) => ClientError::Closed,
        UpstreamError::Connect(_, e) => ClientError::Connect(e),
        UpstreamError::Timeout(what) => ClientError::Timeout(what),
        other => ClientError::Rtmp(other.to_string()),
    }
}

impl RtmpClient {
    /// TCP connect, handshake, `connect`, `createStream`.
    pub async fn connect(url: &Url) -> Result<RtmpClient, ClientError> {
        let addr = tokio::net::lookup_host(url.addr())
            .await
            .map_err(ClientError::Connect)?
            .next()
            .ok_or_else(|| ClientError::Url(url.addr()))?;
        let tc_url = format!("rtmp://{}:{}/{}", url.host, url.port, url.app);
        let inner = UpstreamClient::connect(addr, &tc_url, &url.app, IO_TIMEOUT, IO_TIMEOUT).await.map_err(rtmp_err)?;
        Ok(RtmpClient { inner })
    }

    pub fn stream_id(&self) -> u32 {
        self.inner.stream_id
    }

    /// Leaves Nagle's algorithm on for what this client sends (it is off after connect).
    pub fn leave_nagle_on(&self) -> Result<(), ClientError> {
        Ok(self.inner.writer.set_nodelay(false)?)
    }

    /// Starts playing `stream` (with any query).
    pub async fn play(&mut self, stream: &str) -> Result<(), ClientError> {
        self.inner.play(stream).await.map_err(rtmp_err)
    }

    /// FMLE publish sequence; waits for NetStream.Publish.Start.
    pub async fn publish(&mut self, stream: &str) -> Result<(), ClientError> {
        self.inner.publish(stream, IO_TIMEOUT).await.map_err(rtmp_err)
    }

    /// Next message (acknowledgements and pings are answered on the way).
    pub async fn next(&mut self) -> Result<Message, ClientError> {
        self.inner.next().await.map_err(rtmp_err)
    }

    /// Bytes read from the socket so far.
    pub fn received(&self) -> u64 {
        self.inner.reader.received()
    }

    pub async fn send(&mut self, msgs: &[Message]) -> Result<(), ClientError> {
        self.inner.writer.send(msgs).await.map_err(ClientError::Io)
    }

    /// Sends one media message on the client's stream.
    pub async fn send_media(&mut self, type_id: u8, timestamp: u32, payload: Bytes) -> Result<(), ClientError> {
        let csid = if type_id == msg::AUDIO { 4 } else { 6 };
        let m = Message { csid, timestamp, type_id, stream_id: self.inner.stream_id, payload };
        self.send(std::slice::from_ref(&m)).await
    }
}

/// An HTTP-FLV player connection.
pub struct FlvClient {
    sock: TcpStream,
    chunked: Option<ChunkedDecoder>,
    reader: FlvReader,
    raw: BytesMut,
    body: Vec<u8>,
    ended: bool,
    head_done: bool,
    received: u64,
}

impl FlvClient {
    pub async fn connect(url: &Url) -> Result<FlvClient, ClientError> {
        let mut sock = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(url.addr()))
            .await
            .map_err(|_| ClientError::Timeout("connecting"))?
            .map_err(ClientError::Connect)?;
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rsrs-bench\r\nAccept: */*\r\n\r\n",
            url.path,
            url.addr()
        );
        sock.write_all(req.as_bytes()).await?;
        Ok(FlvClient {
            sock,
            chunked: None,
            reader: FlvReader::new(16 << 20),
            raw: BytesMut::with_capacity(16384),
            body: Vec::new(),
            ended: false,
            head_done: false,
            received: 0,
        })
    }

    /// Waits for the response head (servers may hold it until media flows).
    async fn read_head(&mut self) -> Result<(), ClientError> {
        loop {
            if let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.raw[..end]).to_string();
                let status = head.split_whitespace().nth(1).unwrap_or("");
                if status != "200" {
                    return Err(ClientError::Http(format!("status {status}")));
                }
                if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
                    self.chunked = Some(ChunkedDecoder::new(usize::MAX));
                }
                self.raw.advance(end + 4);
                let rest = self.raw.split().to_vec();
                self.push_body(&rest)?;
                return Ok(());
            }
            if self.raw.len() > 16384 {
                return Err(ClientError::Http("response head too large".into()));
            }
            let n = self.sock.read_buf(&mut self.raw).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.received += n as u64;
        }
    }

    fn push_body(&mut self, data: &[u8]) -> Result<(), ClientError> {
        match &mut self.chunked {
            Some(d) => {
                self.body.clear();
                d.feed(data).map_err(|e| ClientError::Http(e.to_string()))?;
                d.take_body(&mut self.body);
                self.ended = d.is_done();
                self.reader.push(&self.body);
            }
            None => self.reader.push(data),
        }
        Ok(())
    }

    /// Bytes read from the socket so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Next FLV tag.
    pub async fn next(&mut self) -> Result<Tag, ClientError> {
        if !self.head_done {
            self.read_head().await?;
            self.head_done = true;
        }
        loop {
            if let Some(t) = self.reader.next_tag().map_err(|e| ClientError::Http(e.to_string()))? {
                return Ok(t);
            }
            if self.ended {
                return Err(ClientError::Closed);
            }
            let mut buf = [0u8; 16384];
            let r = self.sock.read(&mut buf).await?;
            if r == 0 {
                return Err(ClientError::Closed);
            }
            self.received += r as u64;
            self.push_body(&buf[..r])?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("rtmp://127.0.0.1/live/livestream").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.app.as_str(), u.stream.as_str()),
            ("127.0.0.1", 1935, "live", "livestream")
        );
        let u = Url::parse("http://h:8080/live/s.flv?x=1").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/live/s.flv?x=1"));
        assert!(Url::parse("ftp://x/y").is_err());
    }
}
