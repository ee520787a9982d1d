//! An RTMP client for talking to upstream servers (edge pull and publish forwarding), on the same
//! message I/O as the server side. Understands SRS's RTMP 302 redirect.

use super::io::{IoError, RtmpReader, RtmpWriter};
use rsrs_codec::amf0::Amf0Value;
use rsrs_codec::rtmp::handshake;
use rsrs_codec::rtmp::message::{self as msg, Command};
use rsrs_codec::rtmp::Message;
use rsrs_core::stats::Counters;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Io(#[from] IoError),
    #[error("socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("handshake: {0}")]
    Handshake(#[from] handshake::HandshakeError),
    #[error("upstream refused: {0}")]
    Refused(String),
    /// SRS's RTMP 302: play this URL instead.
    #[error("redirected to {0}")]
    Redirect(String),
}

/// A connected (handshake, `connect`, `createStream` done) client.
pub struct RtmpClient {
    pub reader: RtmpReader,
    pub writer: RtmpWriter,
    pub stream_id: u32,
}

async fn timed<T, E: Into<ClientError>>(
    t: Duration,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ClientError> {
    match tokio::time::timeout(t, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(ClientError::Timeout(what)),
    }
}

impl RtmpClient {
    /// Connects to `addr` for application `app`, presenting `tc_url`.
    pub async fn connect(
        addr: SocketAddr,
        tc_url: &str,
        app: &str,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<RtmpClient, ClientError> {
        Self::connect_with(addr, tc_url, app, None, connect_timeout, io_timeout).await
    }

    /// As [`Self::connect`], with a client's own `connect` command object passed through
    /// (`token_traverse`: the origin sees what the client sent).
    pub async fn connect_with(
        addr: SocketAddr,
        tc_url: &str,
        app: &str,
        object: Option<&Amf0Value>,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<RtmpClient, ClientError> {
        let mut sock = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ClientError::Connect(addr, e)),
            Err(_) => return Err(ClientError::Timeout("connecting")),
        };
        let _ = sock.set_nodelay(true);
        let c0c1 = handshake::client_c0c1(0, true, &mut rand::thread_rng());
        sock.write_all(&c0c1).await?;
        let mut s = vec![0u8; handshake::S0S1S2_LEN];
        timed(io_timeout, "in handshake", sock.read_exact(&mut s)).await?;
        sock.write_all(&handshake::client_c2(&s)?).await?;
        let counters = Arc::new(Counters::default());
        let (rd, wr) = sock.into_split();
        let mut c = RtmpClient {
            reader: RtmpReader::new(rd, &[], counters.clone()),
            writer: RtmpWriter::new(wr, counters),
            stream_id: 1,
        };
        c.writer.send(&[msg::set_chunk_size(60000)]).await?;
        let connect = Command {
            name: "connect".into(),
            transaction_id: 1.0,
            args: vec![object.cloned().unwrap_or_else(|| {
                Amf0Value::object([
                    ("app", Amf0Value::str(app)),
                    ("flashVer", Amf0Value::str("LNX 9,0,124,2")),
                    ("tcUrl", Amf0Value::str(tc_url)),
                    ("fpad", Amf0Value::Boolean(false)),
                    ("capabilities", Amf0Value::Number(239.0)),
                    ("audioCodecs", Amf0Value::Number(3575.0)),
                    ("videoCodecs", Amf0Value::Number(252.0)),
                    ("videoFunction", Amf0Value::Number(1.0)),
                    ("objectEncoding", Amf0Value::Number(0.0)),
                ])
            })],
        };
        c.writer.send(&[connect.to_message(msg::CSID_RESULT, 0)]).await?;
        c.expect_result(1.0, io_timeout).await?;
        let create = Command { name: "createStream".into(), transaction_id: 2.0, args: vec![Amf0Value::Null] };
        c.writer.send(&[create.to_message(msg::CSID_RESULT, 0)]).await?;
        let r = c.expect_result(2.0, io_timeout).await?;
        if let Some(id) = r.arg(0).and_then(|v| v.as_number()) {
            c.stream_id = id as u32;
        }
        Ok(c)
    }

    /// Reads the next message, answering acks and pings on the way.
    pub async fn next(&mut self) -> Result<Message, ClientError> {
        let m = self.reader.next().await?;
        if !self.reader.owed.is_empty() {
            let owed = std::mem::take(&mut self.reader.owed);
            self.writer.send(&owed).await?;
        }
        Ok(m)
    }

    async fn expect_result(&mut self, tid: f64, t: Duration) -> Result<Command, ClientError> {
        loop {
            let m = timed(t, "waiting for the upstream's answer", self.next()).await?;
            let Some(cmd) = command(&m) else { continue };
            check_status(&cmd)?;
            if cmd.name == "_error" {
                return Err(ClientError::Refused(format!("_error to transaction {tid}")));
            }
            if cmd.name == "_result" && cmd.transaction_id == tid {
                return Ok(cmd);
            }
        }
    }

    /// Asks to play `stream` (with any query). Media follows through [`Self::next`].
    pub async fn play(&mut self, stream: &str) -> Result<(), ClientError> {
        let play = Command {
            name: "play".into(),
            transaction_id: 0.0,
            args: vec![Amf0Value::Null, Amf0Value::str(stream), Amf0Value::Number(-2000.0)],
        };
        let sid = self.stream_id;
        self.writer.send(&[play.to_message(8, sid), msg::set_buffer_length(sid, 3000)]).await?;
        Ok(())
    }

    /// The FMLE publish sequence; waits for `NetStream.Publish.Start`.
    pub async fn publish(&mut self, stream: &str, t: Duration) -> Result<(), ClientError> {
        let sid = self.stream_id;
        let cmds = [
            Command {
                name: "releaseStream".into(),
                transaction_id: 3.0,
                args: vec![Amf0Value::Null, Amf0Value::str(stream)],
            },
            Command {
                name: "FCPublish".into(),
                transaction_id: 4.0,
                args: vec![Amf0Value::Null, Amf0Value::str(stream)],
            },
        ];
        let mut out: Vec<Message> = cmds.iter().map(|c| c.to_message(msg::CSID_RESULT, 0)).collect();
        let p = Command {
            name: "publish".into(),
            transaction_id: 5.0,
            args: vec![Amf0Value::Null, Amf0Value::str(stream), Amf0Value::str("live")],
        };
        out.push(p.to_message(8, sid));
        self.writer.send(&out).await?;
        loop {
            let m = timed(t, "waiting for NetStream.Publish.Start", self.next()).await?;
            let Some(cmd) = command(&m) else { continue };
            check_status(&cmd)?;
            if status_code(&cmd) == Some("NetStream.Publish.Start") {
                return Ok(());
            }
        }
    }
}

pub fn command(m: &Message) -> Option<Command> {
    if m.type_id != msg::AMF0_COMMAND && m.type_id != msg::AMF3_COMMAND {
        return None;
    }
    Command::parse(m.type_id, &m.payload).ok()
}

pub fn status_code(cmd: &Command) -> Option<&str> {
    cmd.arg(0)?.get("code")?.as_str()
}

/// An error-level status is a refusal, or SRS's 302 redirect when it carries `ex.redirect2` /
/// `ex.redirect`.
pub fn check_status(cmd: &Command) -> Result<(), ClientError> {
    let Some(info) = cmd.arg(0) else { return Ok(()) };
    if info.get("level").and_then(|l| l.as_str()) != Some("error") {
        return Ok(());
    }
    if let Some(ex) = info.get("ex") {
        if let Some(url) = ex.get("redirect2").or_else(|| ex.get("redirect")).and_then(|u| u.as_str()) {
            return Err(ClientError::Redirect(url.to_string()));
        }
    }
    let code = info.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let desc = info.get("description").and_then(|c| c.as_str()).unwrap_or("");
    Err(ClientError::Refused(format!("{code} {desc}").trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(info: Amf0Value) -> Command {
        Command { name: "onStatus".into(), transaction_id: 0.0, args: vec![Amf0Value::Null, info] }
    }

    #[test]
    fn redirect_and_refusal_statuses() {
        let redirect = status(Amf0Value::object([
            ("level", Amf0Value::str("error")),
            ("code", Amf0Value::str("NetConnection.Connect.Rejected")),
            (
                "ex",
                Amf0Value::object([
                    ("code", Amf0Value::Number(302.0)),
                    ("redirect", Amf0Value::str("rtmp://10.0.0.2:1935/live")),
                    ("redirect2", Amf0Value::str("rtmp://10.0.0.2:1935/live/s")),
                ]),
            ),
        ]));
        assert!(matches!(check_status(&redirect), Err(ClientError::Redirect(u)) if u == "rtmp://10.0.0.2:1935/live/s"));
        let refused = status(Amf0Value::object([
            ("level", Amf0Value::str("error")),
            ("code", Amf0Value::str("NetStream.Publish.BadName")),
        ]));
        assert!(matches!(check_status(&refused), Err(ClientError::Refused(r)) if r == "NetStream.Publish.BadName"));
        let ok = status(Amf0Value::object([
            ("level", Amf0Value::str("status")),
            ("code", Amf0Value::str("NetStream.Play.Start")),
        ]));
        assert!(check_status(&ok).is_ok());
        assert_eq!(status_code(&ok), Some("NetStream.Play.Start"));
    }
}
