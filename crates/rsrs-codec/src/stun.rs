//! Just enough STUN (RFC 8489) to route a datagram on WebRTC's one shared UDP port: whether it is
//! a STUN message, and the USERNAME of a binding request (`server-ufrag:client-ufrag`), which
//! names the session before the peer's address is known.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
/// The largest USERNAME a session could have (RFC 8489 allows 509 bytes).
const MAX_USERNAME: usize = 513;

/// Whether `b` is a STUN message (RFC 7983's demultiplexing: first byte 0..3, and the cookie).
pub fn is_stun(b: &[u8]) -> bool {
    b.len() >= 20 && b[0] < 4 && b[4..8] == MAGIC_COOKIE
}

/// The local (first) part of a STUN message's USERNAME: the ufrag this server gave the session.
/// `None` for anything that is not a well-formed STUN message with a USERNAME.
pub fn local_ufrag(b: &[u8]) -> Option<&str> {
    if !is_stun(b) {
        return None;
    }
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    let mut attrs = b.get(20..20 + len)?;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let alen = u16::from_be_bytes([attrs[2], attrs[3]]) as usize;
        let value = attrs.get(4..4 + alen)?;
        if kind == ATTR_USERNAME {
            if alen > MAX_USERNAME {
                return None;
            }
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next().filter(|u| !u.is_empty());
        }
        // Attributes are padded to 4 bytes.
        attrs = attrs.get(4 + alen.div_ceil(4) * 4..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(username: &str) -> Vec<u8> {
        let mut attr = vec![0x00, 0x06];
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        // A PRIORITY attribute after it, to check the walk.
        attr.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn routes_by_the_servers_ufrag() {
        let m = binding("abcd:efgh");
        assert!(is_stun(&m));
        assert_eq!(local_ufrag(&m), Some("abcd"));
        assert_eq!(local_ufrag(&binding("x1y:z")), Some("x1y"));
        assert_eq!(local_ufrag(&binding(":z")), None);
        // DTLS (20..63) and RTP (128..191) are not STUN.
        assert!(!is_stun(&[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        let mut rtp = m.clone();
        rtp[0] = 0x80;
        assert!(!is_stun(&rtp));
        // Cut short anywhere: no answer, no panic.
        for n in 0..m.len() {
            let _ = local_ufrag(&m[..n]);
        }
    }
}
