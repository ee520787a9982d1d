//! RTMP message types: protocol control, user control, AMF0 commands and data, and builders for
//! the exact messages an SRS-compatible server sends.

use super::chunk::Message;
use crate::amf0::{self, Amf0Error, Amf0Value};
use bytes::{BufMut, Bytes, BytesMut};

pub const SET_CHUNK_SIZE: u8 = 1;
pub const ABORT: u8 = 2;
pub const ACKNOWLEDGEMENT: u8 = 3;
pub const USER_CONTROL: u8 = 4;
pub const WINDOW_ACK_SIZE: u8 = 5;
pub const SET_PEER_BANDWIDTH: u8 = 6;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const AMF3_DATA: u8 = 15;
pub const AMF3_COMMAND: u8 = 17;
pub const AMF0_DATA: u8 = 18;
pub const AMF0_COMMAND: u8 = 20;
pub const AGGREGATE: u8 = 22;

/// Chunk stream ids SRS uses for what it sends (players and tools sometimes rely on them).
pub const CSID_PROTOCOL: u32 = 2;
pub const CSID_RESULT: u32 = 3;
pub const CSID_METADATA: u32 = 4;
pub const CSID_STATUS: u32 = 5;
pub const CSID_VIDEO: u32 = 6;
pub const CSID_AUDIO: u32 = 7;

/// User control event types.
pub const UC_STREAM_BEGIN: u16 = 0;
pub const UC_STREAM_EOF: u16 = 1;
pub const UC_SET_BUFFER_LENGTH: u16 = 3;
pub const UC_PING_REQUEST: u16 = 6;
pub const UC_PING_RESPONSE: u16 = 7;

/// The stream id SRS gives every createStream.
pub const DEFAULT_STREAM_ID: u32 = 1;

fn control(type_id: u8, payload: Bytes) -> Message {
    Message { csid: CSID_PROTOCOL, timestamp: 0, type_id, stream_id: 0, payload }
}

pub fn set_chunk_size(size: u32) -> Message {
    control(SET_CHUNK_SIZE, Bytes::copy_from_slice(&size.to_be_bytes()))
}

pub fn window_ack_size(size: u32) -> Message {
    control(WINDOW_ACK_SIZE, Bytes::copy_from_slice(&size.to_be_bytes()))
}

pub fn acknowledgement(sequence: u32) -> Message {
    control(ACKNOWLEDGEMENT, Bytes::copy_from_slice(&sequence.to_be_bytes()))
}

/// Set Peer Bandwidth; `limit` 2 is "dynamic".
pub fn set_peer_bandwidth(size: u32, limit: u8) -> Message {
    let mut b = BytesMut::with_capacity(5);
    b.put_u32(size);
    b.put_u8(limit);
    control(SET_PEER_BANDWIDTH, b.freeze())
}

pub fn user_control(event: u16, value: u32) -> Message {
    let mut b = BytesMut::with_capacity(6);
    b.put_u16(event);
    b.put_u32(value);
    control(USER_CONTROL, b.freeze())
}

/// User control SetBufferLength: the stream id and the client's buffer in ms (10 bytes in all).
/// Servers such as SRS refuse the message, and drop the connection, if the length is missing.
pub fn set_buffer_length(stream_id: u32, buffer_ms: u32) -> Message {
    let mut b = BytesMut::with_capacity(10);
    b.put_u16(UC_SET_BUFFER_LENGTH);
    b.put_u32(stream_id);
    b.put_u32(buffer_ms);
    control(USER_CONTROL, b.freeze())
}

/// Reads a 4-byte big-endian value from a control message payload.
pub fn control_u32(payload: &[u8]) -> Option<u32> {
    payload.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A decoded AMF0 (or AMF3-wrapped AMF0) command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub transaction_id: f64,
    /// The command object (often null) followed by the arguments.
    pub args: Vec<Amf0Value>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CommandError {
    #[error("RTMP command: {0}")]
    Amf0(#[from] Amf0Error),
    #[error("RTMP command: missing name or transaction id")]
    Malformed,
}

impl Command {
    /// Parses a command message payload (type 20, or 17 with its leading AMF3 format byte).
    pub fn parse(type_id: u8, payload: &[u8]) -> Result<Command, CommandError> {
        let body = if type_id == AMF3_COMMAND && !payload.is_empty() { &payload[1..] } else { payload };
        let mut values = amf0::decode_all(body)?.into_iter();
        let name = match values.next() {
            Some(Amf0Value::String(s)) => s,
            _ => return Err(CommandError::Malformed),
        };
        let transaction_id = match values.next() {
            Some(Amf0Value::Number(n)) => n,
            None => 0.0,
            Some(_) => return Err(CommandError::Malformed),
        };
        Ok(Command { name, transaction_id, args: values.collect() })
    }

    /// The command object (first value after the transaction id).
    pub fn object(&self) -> Option<&Amf0Value> {
        self.args.first()
    }

    /// The n-th argument after the command object.
    pub fn arg(&self, n: usize) -> Option<&Amf0Value> {
        self.args.get(n + 1)
    }

    pub fn to_message(&self, csid: u32, stream_id: u32) -> Message {
        let mut values = vec![Amf0Value::String(self.name.clone()), Amf0Value::Number(self.transaction_id)];
        values.extend(self.args.iter().cloned());
        Message { csid, timestamp: 0, type_id: AMF0_COMMAND, stream_id, payload: amf0::encode_all(&values) }
    }
}

fn command(csid: u32, stream_id: u32, values: &[Amf0Value]) -> Message {
    Message { csid, timestamp: 0, type_id: AMF0_COMMAND, stream_id, payload: amf0::encode_all(values) }
}

/// Identity strings used in replies and metadata.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    /// e.g. `rsrs/0.1.0(Hang)`-like signature; SRS puts `SRS/<ver>(<code>)` here.
    pub server: String,
    /// Bare version, e.g. `0.1.0`.
    pub version: String,
    pub pid: u32,
}

/// The `_result` for `connect`, shaped as SRS sends it.
pub fn connect_result(
    id: &ServerIdentity,
    transaction_id: f64,
    object_encoding: f64,
    server_ip: &str,
    context_id: &str,
) -> Message {
    let props = Amf0Value::object([
        ("fmsVer", Amf0Value::str("FMS/3,5,3,888")),
        ("capabilities", Amf0Value::Number(127.0)),
        ("mode", Amf0Value::Number(1.0)),
    ]);
    let data = Amf0Value::EcmaArray(vec![
        ("version".into(), Amf0Value::str("3,5,3,888")),
        ("srs_sig".into(), Amf0Value::str("rsrs")),
        ("srs_server".into(), Amf0Value::String(id.server.clone())),
        ("srs_license".into(), Amf0Value::str("MIT")),
        ("srs_url".into(), Amf0Value::str("rsrs")),
        ("srs_version".into(), Amf0Value::String(id.version.clone())),
        ("srs_server_ip".into(), Amf0Value::str(server_ip)),
        ("srs_pid".into(), Amf0Value::Number(id.pid as f64)),
        ("srs_id".into(), Amf0Value::str(context_id)),
    ]);
    let info = Amf0Value::object([
        ("level", Amf0Value::str("status")),
        ("code", Amf0Value::str("NetConnection.Connect.Success")),
        ("description", Amf0Value::str("Connection succeeded")),
        ("objectEncoding", Amf0Value::Number(object_encoding)),
        ("data", data),
    ]);
    command(CSID_RESULT, 0, &[Amf0Value::str("_result"), Amf0Value::Number(transaction_id), props, info])
}

/// The FourCCs rsrs forwards over Enhanced RTMP (video, then audio).
pub const VIDEO_FOURCCS: [&str; 5] = ["avc1", "hvc1", "av01", "vp09", "vp08"];
pub const AUDIO_FOURCCS: [&str; 7] = ["mp4a", ".mp3", "Opus", "fLaC", "ac-3", "ec-3", "ipcm"];
/// Enhanced RTMP v2's `FourCcInfoMask.CanForward`: rsrs relays these without decoding.
const CAN_FORWARD: f64 = 4.0;

/// Adds Enhanced RTMP's capability answer to a `connect` `_result` (for a client whose
/// `connect` asked with `fourCcList` or the v2 info maps): the FourCCs rsrs forwards, as v1's
/// `fourCcList` and v2's `videoFourCcInfoMap`/`audioFourCcInfoMap` (CanForward).
pub fn with_enhanced_rtmp_caps(mut result: Message) -> Message {
    let Ok(mut values) = crate::amf0::decode_all(&result.payload) else { return result };
    let Some(Amf0Value::Object(props)) = values.get_mut(2) else { return result };
    let list = VIDEO_FOURCCS.iter().chain(AUDIO_FOURCCS.iter()).map(|f| Amf0Value::str(f)).collect();
    props.push(("fourCcList".into(), Amf0Value::StrictArray(list)));
    let map = |fs: &[&str]| Amf0Value::object(fs.iter().map(|f| (*f, Amf0Value::Number(CAN_FORWARD))));
    props.push(("videoFourCcInfoMap".into(), map(&VIDEO_FOURCCS)));
    props.push(("audioFourCcInfoMap".into(), map(&AUDIO_FOURCCS)));
    result.payload = crate::amf0::encode_all(&values);
    result
}

/// `_error(tid, null, {level: error, code: NetConnection.Connect.Rejected, description})`: a
/// refused `connect` (ffmpeg prints the description as "Server error: ...").
pub fn connect_rejected(transaction_id: f64, description: &str) -> Message {
    let info = Amf0Value::object([
        ("level", Amf0Value::str("error")),
        ("code", Amf0Value::str("NetConnection.Connect.Rejected")),
        ("description", Amf0Value::str(description)),
    ]);
    command(CSID_RESULT, 0, &[Amf0Value::str("_error"), Amf0Value::Number(transaction_id), Amf0Value::Null, info])
}

/// `_result(tid, null, value)`.
pub fn result(transaction_id: f64, value: Amf0Value) -> Message {
    command(CSID_RESULT, 0, &[Amf0Value::str("_result"), Amf0Value::Number(transaction_id), Amf0Value::Null, value])
}

pub fn on_bw_done() -> Message {
    command(CSID_RESULT, 0, &[Amf0Value::str("onBWDone"), Amf0Value::Number(0.0), Amf0Value::Null])
}

/// `onStatus(0, null, {level, code, description, ...extra})` on the status chunk stream.
pub fn on_status(
    stream_id: u32,
    level: &str,
    code: &str,
    description: &str,
    extra: Vec<(String, Amf0Value)>,
) -> Message {
    let mut info = vec![
        ("level".to_string(), Amf0Value::str(level)),
        ("code".to_string(), Amf0Value::str(code)),
        ("description".to_string(), Amf0Value::str(description)),
    ];
    info.extend(extra);
    command(
        CSID_STATUS,
        stream_id,
        &[Amf0Value::str("onStatus"), Amf0Value::Number(0.0), Amf0Value::Null, Amf0Value::Object(info)],
    )
}

/// onStatus with the `details`/`clientid` fields SRS adds to play and publish statuses.
pub fn stream_status(code: &str, description: &str, stream: &str) -> Message {
    on_status(
        DEFAULT_STREAM_ID,
        "status",
        code,
        description,
        vec![("details".into(), Amf0Value::str(stream)), ("clientid".into(), Amf0Value::str("ASAICiss"))],
    )
}

/// `onFCPublish`/`onFCUnpublish` notifications (no level field, as SRS sends them).
pub fn on_fc(name: &str, code: &str, description: &str) -> Message {
    command(
        CSID_STATUS,
        DEFAULT_STREAM_ID,
        &[
            Amf0Value::str(name),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            Amf0Value::object([("code", Amf0Value::str(code)), ("description", Amf0Value::str(description))]),
        ],
    )
}

/// `|RtmpSampleAccess(true, true)` data message sent after play starts.
pub fn sample_access() -> Message {
    Message {
        csid: CSID_STATUS,
        timestamp: 0,
        type_id: AMF0_DATA,
        stream_id: DEFAULT_STREAM_ID,
        payload: amf0::encode_all(&[
            Amf0Value::str("|RtmpSampleAccess"),
            Amf0Value::Boolean(true),
            Amf0Value::Boolean(true),
        ]),
    }
}

/// Normalizes a data message carrying stream metadata: strips the `@setDataFrame` wrapper,
/// turns the ECMA array into an object, drops `duration` and adds the server identity, as SRS
/// does (ffmpeg prints `server_version` from it). Returns `None` if it is not metadata.
pub fn normalize_metadata(payload: &[u8], id: &ServerIdentity) -> Option<Bytes> {
    let values = amf0::decode_all(payload).ok()?;
    let mut it = values.into_iter();
    let mut name = it.next()?;
    if name.as_str() == Some("@setDataFrame") {
        name = it.next()?;
    }
    if name.as_str() != Some("onMetaData") {
        return None;
    }
    let mut props: Vec<(String, Amf0Value)> = match it.next() {
        Some(Amf0Value::Object(p)) | Some(Amf0Value::EcmaArray(p)) => p,
        _ => Vec::new(),
    };
    props.retain(|(k, _)| k != "duration" && k != "server" && k != "server_version");
    props.push(("server".into(), Amf0Value::String(id.server.clone())));
    props.push(("server_version".into(), Amf0Value::String(id.version.clone())));
    Some(amf0::encode_all(&[Amf0Value::str("onMetaData"), Amf0Value::Object(props)]))
}

/// Splits an aggregate message (type 22) into its audio/video/data sub-messages, rebasing
/// their timestamps on the aggregate's own. Malformed trailing bytes are ignored.
pub fn split_aggregate(msg: &Message) -> Vec<Message> {
    let mut out = Vec::new();
    let p = &msg.payload;
    let mut pos = 0;
    let mut base: Option<u32> = None;
    while pos + 11 <= p.len() {
        let type_id = p[pos];
        let len = (p[pos + 1] as usize) << 16 | (p[pos + 2] as usize) << 8 | p[pos + 3] as usize;
        let ts = (p[pos + 4] as u32) << 16 | (p[pos + 5] as u32) << 8 | p[pos + 6] as u32 | (p[pos + 7] as u32) << 24;
        let start = pos + 11;
        let Some(end) = start.checked_add(len).filter(|&e| e + 4 <= p.len()) else {
            break;
        };
        let first = *base.get_or_insert(ts);
        out.push(Message {
            csid: msg.csid,
            timestamp: msg.timestamp.wrapping_add(ts.wrapping_sub(first)),
            type_id,
            stream_id: msg.stream_id,
            payload: msg.payload.slice(start..end),
        });
        pos = end + 4;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ServerIdentity {
        ServerIdentity { server: "rsrs/1.2.3".into(), version: "1.2.3".into(), pid: 9 }
    }

    #[test]
    fn control_message_bytes() {
        assert_eq!(&set_chunk_size(60000).payload[..], &[0, 0, 0xea, 0x60]);
        assert_eq!(&set_peer_bandwidth(2_500_000, 2).payload[..], &[0, 0x26, 0x25, 0xa0, 2]);
        assert_eq!(&user_control(UC_STREAM_BEGIN, 1).payload[..], &[0, 0, 0, 0, 0, 1]);
        assert_eq!(&set_buffer_length(1, 3000).payload[..], &[0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8]);
        assert_eq!(set_chunk_size(1).csid, CSID_PROTOCOL);
    }

    #[test]
    fn command_parse_round_trip_and_amf3_wrapper() {
        let c = Command {
            name: "play".into(),
            transaction_id: 4.0,
            args: vec![Amf0Value::Null, Amf0Value::str("livestream"), Amf0Value::Number(-2.0)],
        };
        let m = c.to_message(8, 1);
        assert_eq!(Command::parse(AMF0_COMMAND, &m.payload).unwrap(), c);
        let mut amf3 = vec![0u8];
        amf3.extend_from_slice(&m.payload);
        assert_eq!(Command::parse(AMF3_COMMAND, &amf3).unwrap(), c);
        assert_eq!(c.arg(0).and_then(|v| v.as_str()), Some("livestream"));
        assert_eq!(Command::parse(AMF0_COMMAND, &[0x00, 0, 0, 0, 0, 0, 0, 0, 0]), Err(CommandError::Malformed));
        assert!(Command::parse(AMF0_COMMAND, &[0x02, 0, 5, b'a']).is_err());
    }

    #[test]
    fn enhanced_rtmp_capabilities_answer_fourcclist_and_info_maps() {
        let m = with_enhanced_rtmp_caps(connect_result(&id(), 1.0, 0.0, "127.0.0.1", "abcd1234"));
        let v = crate::amf0::decode_all(&m.payload).unwrap();
        assert_eq!(v[2].get("fmsVer").and_then(|x| x.as_str()), Some("FMS/3,5,3,888"), "SRS's properties stay");
        let Some(Amf0Value::StrictArray(list)) = v[2].get("fourCcList") else { panic!("{:?}", v[2]) };
        assert!(list.iter().any(|x| x.as_str() == Some("hvc1")) && list.iter().any(|x| x.as_str() == Some("Opus")));
        assert_eq!(v[2].get("videoFourCcInfoMap").and_then(|m| m.get("av01")).and_then(|x| x.as_number()), Some(4.0));
        assert_eq!(v[2].get("audioFourCcInfoMap").and_then(|m| m.get("Opus")).and_then(|x| x.as_number()), Some(4.0));
        assert_eq!(v[3].get("code").and_then(|x| x.as_str()), Some("NetConnection.Connect.Success"));
    }

    #[test]
    fn connect_result_shape() {
        let m = connect_result(&id(), 1.0, 0.0, "127.0.0.1", "abcd1234");
        let v = amf0::decode_all(&m.payload).unwrap();
        assert_eq!(v[0].as_str(), Some("_result"));
        assert_eq!(v[1], Amf0Value::Number(1.0));
        assert_eq!(v[2].get("fmsVer").and_then(|x| x.as_str()), Some("FMS/3,5,3,888"));
        assert_eq!(v[2].get("capabilities"), Some(&Amf0Value::Number(127.0)));
        assert_eq!(v[3].get("code").and_then(|x| x.as_str()), Some("NetConnection.Connect.Success"));
        let data = v[3].get("data").unwrap();
        assert!(matches!(data, Amf0Value::EcmaArray(_)));
        assert_eq!(data.get("srs_version").and_then(|x| x.as_str()), Some("1.2.3"));
        assert_eq!(m.csid, CSID_RESULT);
    }

    #[test]
    fn metadata_is_unwrapped_and_enriched() {
        let input = amf0::encode_all(&[
            Amf0Value::str("@setDataFrame"),
            Amf0Value::str("onMetaData"),
            Amf0Value::EcmaArray(vec![
                ("duration".into(), Amf0Value::Number(0.0)),
                ("width".into(), Amf0Value::Number(640.0)),
            ]),
        ]);
        let out = normalize_metadata(&input, &id()).unwrap();
        let v = amf0::decode_all(&out).unwrap();
        assert_eq!(
            v,
            vec![
                Amf0Value::str("onMetaData"),
                Amf0Value::object([
                    ("width", Amf0Value::Number(640.0)),
                    ("server", Amf0Value::str("rsrs/1.2.3")),
                    ("server_version", Amf0Value::str("1.2.3")),
                ])
            ]
        );
        assert!(normalize_metadata(&amf0::encode_all(&[Amf0Value::str("onCuePoint")]), &id()).is_none());
    }

    #[test]
    fn aggregate_split() {
        let mut p = BytesMut::new();
        for (ts, data) in [(100u32, &[1u8, 2][..]), (140, &[3u8][..])] {
            p.put_u8(9);
            p.put_u8(0);
            p.put_u16(data.len() as u16);
            p.put_u8((ts >> 16) as u8);
            p.put_u16(ts as u16);
            p.put_u8(0);
            p.put_slice(&[0, 0, 0]);
            p.put_slice(data);
            p.put_u32(11 + data.len() as u32);
        }
        p.put_slice(&[9, 0xff]); // trailing garbage
        let agg = Message { csid: 6, timestamp: 1000, type_id: AGGREGATE, stream_id: 1, payload: p.freeze() };
        let parts = split_aggregate(&agg);
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].timestamp, &parts[0].payload[..]), (1000, &[1u8, 2][..]));
        assert_eq!((parts[1].timestamp, &parts[1].payload[..]), (1040, &[3u8][..]));
    }
}
