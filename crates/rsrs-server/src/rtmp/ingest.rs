//! Media from an RTMP peer (a publisher, or an edge's upstream origin) into a stream's source.

use crate::hub::IngestError;
use crate::media::Track;
use rsrs_codec::rtmp::message as msg;
use rsrs_codec::rtmp::Message;

/// Pushes a media message from a publisher or an edge's upstream into the source, splitting
/// aggregates. With `identity`, metadata is stamped with this server's identity, as SRS does for
/// a publisher; without, it is kept as it came (an edge relays its origin's). An error means the
/// stream's bounds were broken: the sender is to be dropped.
pub fn ingest(
    source: &crate::hub::Source,
    m: &Message,
    identity: Option<&msg::ServerIdentity>,
) -> Result<(), IngestError> {
    if m.type_id == msg::AGGREGATE {
        for part in msg::split_aggregate(m) {
            ingest_one(source, &part, identity)?;
        }
        Ok(())
    } else {
        ingest_one(source, m, identity)
    }
}

fn ingest_one(
    source: &crate::hub::Source,
    m: &Message,
    identity: Option<&msg::ServerIdentity>,
) -> Result<(), IngestError> {
    match m.type_id {
        msg::AUDIO if !m.payload.is_empty() => source.push(Track::Audio, m.timestamp, m.payload.clone()),
        msg::VIDEO if !m.payload.is_empty() => source.push(Track::Video, m.timestamp, m.payload.clone()),
        msg::AMF0_DATA | msg::AMF3_DATA => {
            let body = if m.type_id == msg::AMF3_DATA && !m.payload.is_empty() {
                m.payload.slice(1..)
            } else {
                m.payload.clone()
            };
            let meta = match identity {
                Some(id) => msg::normalize_metadata(&body, id),
                None => rsrs_codec::amf0::decode_one(&body)
                    .is_ok_and(|(name, _)| name.as_str() == Some("onMetaData"))
                    .then_some(body),
            };
            match meta {
                Some(meta) => source.push(Track::Data, 0, meta),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}
