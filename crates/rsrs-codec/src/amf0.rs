//! AMF0 (Action Message Format version 0) values, encoder and decoder.
//!
//! Decoding is total: any byte sequence yields either values or an [`Amf0Error`], never a panic.
//! Nesting depth and element counts are bounded so a hostile peer cannot exhaust stack or memory.

use bytes::{BufMut, Bytes, BytesMut};

/// Deepest object/array nesting accepted from a peer.
pub const MAX_DEPTH: usize = 32;

/// An AMF0 value. Objects and ECMA arrays keep their property order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the epoch; the time-zone field is ignored as the spec says.
    Date(f64),
}

/// Why AMF0 bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Amf0Error {
    #[error("AMF0 truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("AMF0 unsupported type marker 0x{marker:02x} at offset {offset}")]
    UnsupportedMarker { offset: usize, marker: u8 },
    #[error("AMF0 nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("AMF0 string is not UTF-8 at offset {offset}")]
    BadUtf8 { offset: usize },
}

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const REFERENCE: u8 = 0x07;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;
const UNSUPPORTED: u8 = 0x0d;
const XML_DOCUMENT: u8 = 0x0f;
const TYPED_OBJECT: u8 = 0x10;
const AVMPLUS: u8 = 0x11;

impl Amf0Value {
    pub fn str(s: &str) -> Self {
        Amf0Value::String(s.to_string())
    }

    /// Builds an object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(props: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Properties of an object or ECMA array.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// Looks up a property of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Amf0Value::Number(n) => {
                out.put_u8(NUMBER);
                out.put_f64(*n);
            }
            Amf0Value::Boolean(b) => {
                out.put_u8(BOOLEAN);
                out.put_u8(*b as u8);
            }
            Amf0Value::String(s) => {
                if s.len() > u16::MAX as usize {
                    out.put_u8(LONG_STRING);
                    out.put_u32(s.len() as u32);
                    out.put_slice(s.as_bytes());
                } else {
                    out.put_u8(STRING);
                    put_utf8(out, s);
                }
            }
            Amf0Value::Object(props) => {
                out.put_u8(OBJECT);
                put_properties(out, props);
            }
            Amf0Value::Null => out.put_u8(NULL),
            Amf0Value::Undefined => out.put_u8(UNDEFINED),
            Amf0Value::EcmaArray(props) => {
                out.put_u8(ECMA_ARRAY);
                out.put_u32(props.len() as u32);
                put_properties(out, props);
            }
            Amf0Value::StrictArray(items) => {
                out.put_u8(STRICT_ARRAY);
                out.put_u32(items.len() as u32);
                for v in items {
                    v.encode(out);
                }
            }
            Amf0Value::Date(ms) => {
                out.put_u8(DATE);
                out.put_f64(*ms);
                out.put_i16(0);
            }
        }
    }
}

/// Encodes a sequence of values back to back (as in a command message).
pub fn encode_all(values: &[Amf0Value]) -> Bytes {
    let mut out = BytesMut::with_capacity(128);
    for v in values {
        v.encode(&mut out);
    }
    out.freeze()
}

fn put_utf8(out: &mut BytesMut, s: &str) {
    // Keys and short strings are u16-length-prefixed; truncate rather than corrupt the stream.
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.put_u16(b.len() as u16);
    out.put_slice(b);
}

fn put_properties(out: &mut BytesMut, props: &[(String, Amf0Value)]) {
    for (k, v) in props {
        put_utf8(out, k);
        v.encode(out);
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
}

/// Decodes every value in `buf`. Stops early (returning what was decoded) at an AVM+ switch
/// marker, since AMF3 payloads are not interpreted.
pub fn decode_all(buf: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut r = Reader { buf, pos: 0 };
    let mut out = Vec::new();
    while r.pos < buf.len() {
        if buf[r.pos] == AVMPLUS {
            break;
        }
        out.push(r.value(0)?);
    }
    Ok(out)
}

/// Decodes one value from the start of `buf`, returning it and the bytes consumed.
pub fn decode_one(buf: &[u8]) -> Result<(Amf0Value, usize), Amf0Error> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(Amf0Error::Truncated { offset: self.pos, needed: n.saturating_sub(self.buf.len() - self.pos) })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Amf0Error> {
        let offset = self.pos;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| Amf0Error::BadUtf8 { offset })
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let len = self.u16()? as usize;
            if len == 0 && self.buf.get(self.pos) == Some(&OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.utf8(len)?;
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        let offset = self.pos;
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Amf0Value::Number(self.f64()?),
            BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            STRING => {
                let len = self.u16()? as usize;
                Amf0Value::String(self.utf8(len)?)
            }
            LONG_STRING | XML_DOCUMENT => {
                let len = self.u32()? as usize;
                Amf0Value::String(self.utf8(len)?)
            }
            OBJECT => Amf0Value::Object(self.properties(depth)?),
            TYPED_OBJECT => {
                let len = self.u16()? as usize;
                let _class = self.utf8(len)?;
                Amf0Value::Object(self.properties(depth)?)
            }
            NULL => Amf0Value::Null,
            UNDEFINED | UNSUPPORTED => Amf0Value::Undefined,
            REFERENCE => {
                // References index earlier objects; we don't keep a table, so treat as undefined.
                self.u16()?;
                Amf0Value::Undefined
            }
            ECMA_ARRAY => {
                // The count is a hint only (encoders get it wrong); the end marker is authoritative.
                self.u32()?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            STRICT_ARRAY => {
                let n = self.u32()? as usize;
                // Each element takes at least one byte, so a count beyond the buffer is a lie.
                if n > self.buf.len() - self.pos {
                    return Err(Amf0Error::Truncated { offset: self.pos, needed: n });
                }
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            DATE => {
                let ms = self.f64()?;
                self.u16()?;
                Amf0Value::Date(ms)
            }
            other => return Err(Amf0Error::UnsupportedMarker { offset, marker: other }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_string_bool_bytes() {
        let v = [Amf0Value::str("connect"), Amf0Value::Number(1.0), Amf0Value::Boolean(true), Amf0Value::Null];
        let b = encode_all(&v);
        assert_eq!(
            &b[..],
            &[
                0x02, 0x00, 0x07, b'c', b'o', b'n', b'n', b'e', b'c', b't', //
                0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, //
                0x01, 0x01, 0x05
            ]
        );
        assert_eq!(decode_all(&b).unwrap(), v);
    }

    #[test]
    fn object_and_ecma_array_bytes() {
        let obj = Amf0Value::object([("a", Amf0Value::Number(0.0))]);
        let mut b = BytesMut::new();
        obj.encode(&mut b);
        assert_eq!(&b[..], &[0x03, 0x00, 0x01, b'a', 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x09]);
        let arr = Amf0Value::EcmaArray(vec![("k".into(), Amf0Value::str("v"))]);
        let mut b = BytesMut::new();
        arr.encode(&mut b);
        assert_eq!(&b[..], &[0x08, 0, 0, 0, 1, 0x00, 0x01, b'k', 0x02, 0x00, 0x01, b'v', 0x00, 0x00, 0x09]);
        assert_eq!(decode_one(&b).unwrap(), (arr, b.len()));
    }

    #[test]
    fn round_trip_nested() {
        let v = Amf0Value::object([
            ("app", Amf0Value::str("live")),
            ("list", Amf0Value::StrictArray(vec![Amf0Value::Number(1.5), Amf0Value::Undefined])),
            ("when", Amf0Value::Date(1234.0)),
            ("inner", Amf0Value::EcmaArray(vec![("x".into(), Amf0Value::Boolean(false))])),
        ]);
        let b = encode_all(std::slice::from_ref(&v));
        assert_eq!(decode_all(&b).unwrap(), vec![v]);
    }

    #[test]
    fn long_string_round_trip() {
        let s = "x".repeat(70_000);
        let b = encode_all(&[Amf0Value::String(s.clone())]);
        assert_eq!(b[0], LONG_STRING);
        assert_eq!(decode_all(&b).unwrap(), vec![Amf0Value::String(s)]);
    }

    #[test]
    fn truncated_input_is_an_error_at_every_cut() {
        let b = encode_all(&[Amf0Value::object([("key", Amf0Value::str("value")), ("n", Amf0Value::Number(3.0))])]);
        for cut in 1..b.len() {
            assert!(decode_all(&b[..cut]).is_err(), "cut at {cut} decoded");
        }
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        // Deep nesting.
        let mut deep = vec![];
        for _ in 0..100 {
            deep.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
        // Strict array claiming billions of elements.
        assert!(decode_all(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x05]).is_err());
        // Unknown marker.
        assert!(matches!(decode_all(&[0x42]), Err(Amf0Error::UnsupportedMarker { marker: 0x42, .. })));
        // Bad UTF-8.
        assert!(matches!(decode_all(&[0x02, 0, 1, 0xff]), Err(Amf0Error::BadUtf8 { .. })));
    }
}
