//! RTMP handshake, server and client side, with the "complex" (HMAC-SHA256 digest) variant that
//! Flash-era clients expect and the plain variant of the spec.
//!
//! Server: read C0C1 (1537 bytes), call [`server_response`] for S0S1S2, then read and ignore C2
//! (SRS does not validate C2 either: ffmpeg's C2 does not always verify).
//! Client: send [`client_c0c1`], read S0S1S2, send [`client_c2`].

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Size of C1/S1/C2/S2.
pub const PACKET_LEN: usize = 1536;
/// Size of C0+C1.
pub const C0C1_LEN: usize = 1 + PACKET_LEN;
/// Size of S0+S1+S2.
pub const S0S1S2_LEN: usize = 1 + 2 * PACKET_LEN;
pub const RTMP_VERSION: u8 = 3;

const DIGEST_LEN: usize = 32;

/// "Genuine Adobe Flash Media Server 001" followed by 32 fixed bytes.
const FMS_KEY: [u8; 68] = [
    0x47, 0x65, 0x6e, 0x75, 0x69, 0x6e, 0x65, 0x20, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x20, 0x46, 0x6c, 0x61, 0x73, 0x68,
    0x20, 0x4d, 0x65, 0x64, 0x69, 0x61, 0x20, 0x53, 0x65, 0x72, 0x76, 0x65, 0x72, 0x20, 0x30, 0x30, 0x31, 0xf0, 0xee,
    0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57, 0x6e, 0xec, 0x5d, 0x2d, 0x29,
    0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
];

/// "Genuine Adobe Flash Player 001" followed by the same 32 fixed bytes.
const FP_KEY: [u8; 62] = [
    0x47, 0x65, 0x6e, 0x75, 0x69, 0x6e, 0x65, 0x20, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x20, 0x46, 0x6c, 0x61, 0x73, 0x68,
    0x20, 0x50, 0x6c, 0x61, 0x79, 0x65, 0x72, 0x20, 0x30, 0x30, 0x31, 0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8,
    0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57, 0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6,
    0x36, 0xcf, 0xeb, 0x31, 0xae,
];

/// Where the digest sits in C1/S1: schema 0 puts the key block first (digest block at 772),
/// schema 1 the digest block first (at 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    KeyFirst,
    DigestFirst,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HandshakeError {
    #[error("RTMP handshake: client asked for version {0}, only 3 (plain) is supported")]
    UnsupportedVersion(u8),
    #[error("RTMP handshake: expected {expected} bytes, got {got}")]
    WrongLength { expected: usize, got: usize },
}

/// Which handshake the server answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    Simple,
    Complex(Schema),
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Offset of the 32-byte digest inside a 1536-byte C1/S1 for `schema`.
pub fn digest_offset(packet: &[u8; PACKET_LEN], schema: Schema) -> usize {
    let base = match schema {
        Schema::KeyFirst => 772,
        Schema::DigestFirst => 8,
    };
    let sum: usize = packet[base..base + 4].iter().map(|&b| b as usize).sum();
    base + 4 + sum % 728
}

/// The digest of `packet` (all bytes except the digest itself) under `key`.
pub fn packet_digest(packet: &[u8; PACKET_LEN], schema: Schema, key: &[u8]) -> [u8; DIGEST_LEN] {
    let off = digest_offset(packet, schema);
    hmac_sha256(key, &[&packet[..off], &packet[off + DIGEST_LEN..]])
}

fn digest_valid(packet: &[u8; PACKET_LEN], schema: Schema, key: &[u8]) -> bool {
    let off = digest_offset(packet, schema);
    packet_digest(packet, schema, key)[..] == packet[off..off + DIGEST_LEN]
}

fn sign(packet: &mut [u8; PACKET_LEN], schema: Schema, key: &[u8]) {
    let off = digest_offset(packet, schema);
    let d = packet_digest(packet, schema, key);
    packet[off..off + DIGEST_LEN].copy_from_slice(&d);
}

/// Finds which schema (if any) C1 was signed with, using the Flash Player key.
pub fn detect_client_schema(c1: &[u8; PACKET_LEN]) -> Option<Schema> {
    [Schema::KeyFirst, Schema::DigestFirst].into_iter().find(|&s| digest_valid(c1, s, &FP_KEY[..30]))
}

/// S2 for a complex handshake: random bytes signed with a key derived from C1's digest.
fn complex_s2(c1: &[u8; PACKET_LEN], schema: Schema, random: &mut impl RngCore) -> [u8; PACKET_LEN] {
    let off = digest_offset(c1, schema);
    let temp_key = hmac_sha256(&FMS_KEY, &[&c1[off..off + DIGEST_LEN]]);
    let mut s2 = [0u8; PACKET_LEN];
    random.fill_bytes(&mut s2);
    let sig = hmac_sha256(&temp_key, &[&s2[..PACKET_LEN - DIGEST_LEN]]);
    s2[PACKET_LEN - DIGEST_LEN..].copy_from_slice(&sig);
    s2
}

/// Builds S0+S1+S2 in answer to C0+C1. `epoch` is the server's time field (seconds).
pub fn server_response(
    c0c1: &[u8],
    epoch: u32,
    random: &mut impl RngCore,
) -> Result<(Vec<u8>, HandshakeKind), HandshakeError> {
    if c0c1.len() != C0C1_LEN {
        return Err(HandshakeError::WrongLength { expected: C0C1_LEN, got: c0c1.len() });
    }
    if c0c1[0] != RTMP_VERSION {
        return Err(HandshakeError::UnsupportedVersion(c0c1[0]));
    }
    let mut c1 = [0u8; PACKET_LEN];
    c1.copy_from_slice(&c0c1[1..]);
    let mut out = Vec::with_capacity(S0S1S2_LEN);
    out.push(RTMP_VERSION);
    let mut s1 = [0u8; PACKET_LEN];
    random.fill_bytes(&mut s1);
    s1[..4].copy_from_slice(&epoch.to_be_bytes());
    // A zero version field in C1 means a client that only speaks the plain handshake.
    let schema = if c1[4..8] != [0, 0, 0, 0] { detect_client_schema(&c1) } else { None };
    match schema {
        Some(schema) => {
            s1[4..8].copy_from_slice(&[0x01, 0x00, 0x05, 0x04]);
            sign(&mut s1, schema, &FMS_KEY[..36]);
            out.extend_from_slice(&s1);
            out.extend_from_slice(&complex_s2(&c1, schema, random));
            Ok((out, HandshakeKind::Complex(schema)))
        }
        None => {
            s1[4..8].copy_from_slice(&c1[..4]);
            out.extend_from_slice(&s1);
            out.extend_from_slice(&c1);
            Ok((out, HandshakeKind::Simple))
        }
    }
}

/// C0+C1 for a client. With `complex`, C1 carries a digest (schema 1, as librtmp sends) so
/// servers that insist on the Flash handshake accept it.
pub fn client_c0c1(epoch: u32, complex: bool, random: &mut impl RngCore) -> Vec<u8> {
    let mut c1 = [0u8; PACKET_LEN];
    random.fill_bytes(&mut c1);
    c1[..4].copy_from_slice(&epoch.to_be_bytes());
    if complex {
        c1[4..8].copy_from_slice(&[0x80, 0x00, 0x07, 0x02]);
        sign(&mut c1, Schema::DigestFirst, &FP_KEY[..30]);
    } else {
        c1[4..8].copy_from_slice(&[0, 0, 0, 0]);
    }
    let mut out = Vec::with_capacity(C0C1_LEN);
    out.push(RTMP_VERSION);
    out.extend_from_slice(&c1);
    out
}

/// C2 in answer to S0S1S2: an echo of S1, which every server accepts.
pub fn client_c2(s0s1s2: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    if s0s1s2.len() != S0S1S2_LEN {
        return Err(HandshakeError::WrongLength { expected: S0S1S2_LEN, got: s0s1s2.len() });
    }
    if s0s1s2[0] != RTMP_VERSION {
        return Err(HandshakeError::UnsupportedVersion(s0s1s2[0]));
    }
    Ok(s0s1s2[1..1 + PACKET_LEN].to_vec())
}

/// Checks S1's digest (FMS key) for a client that sent a complex C1.
pub fn verify_server_s1(s1: &[u8; PACKET_LEN]) -> Option<Schema> {
    [Schema::KeyFirst, Schema::DigestFirst].into_iter().find(|&s| digest_valid(s1, s, &FMS_KEY[..36]))
}

/// Checks S2's signature against the digest the client put in its own C1.
pub fn verify_server_s2(c1: &[u8; PACKET_LEN], c1_schema: Schema, s2: &[u8; PACKET_LEN]) -> bool {
    let off = digest_offset(c1, c1_schema);
    let temp_key = hmac_sha256(&FMS_KEY, &[&c1[off..off + DIGEST_LEN]]);
    let sig = hmac_sha256(&temp_key, &[&s2[..PACKET_LEN - DIGEST_LEN]]);
    sig[..] == s2[PACKET_LEN - DIGEST_LEN..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn pattern_packet() -> [u8; PACKET_LEN] {
        let mut p = [0u8; PACKET_LEN];
        for (i, b) in p.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        p
    }

    #[test]
    fn digest_offsets_follow_the_schema_rule() {
        let p = pattern_packet();
        // Schema 1: bytes 8..12 are 56,63,70,77 -> sum 266 -> 8 + 4 + 266.
        assert_eq!(digest_offset(&p, Schema::DigestFirst), 278);
        // Schema 0: bytes 772..776.
        let sum: usize = (772..776).map(|i| i * 7 % 251).sum();
        assert_eq!(digest_offset(&p, Schema::KeyFirst), 776 + sum % 728);
    }

    #[test]
    fn digest_matches_an_independent_hmac() {
        // Expected value computed outside Rust with Python's hmac module:
        // hmac.new(FP_KEY[:30], p[:278] + p[310:], sha256) for the pattern packet.
        let p = pattern_packet();
        let d = packet_digest(&p, Schema::DigestFirst, &FP_KEY[..30]);
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, EXPECTED_PATTERN_DIGEST);
    }

    const EXPECTED_PATTERN_DIGEST: &str = "043c48a656b74dfbb0b2f019c99c24655a14f06be57b01fa458f547bfeefc4e0";

    #[test]
    fn complex_client_gets_a_verifiable_complex_answer() {
        let mut rng = StdRng::seed_from_u64(7);
        let c0c1 = client_c0c1(1000, true, &mut rng);
        let mut c1 = [0u8; PACKET_LEN];
        c1.copy_from_slice(&c0c1[1..]);
        assert_eq!(detect_client_schema(&c1), Some(Schema::DigestFirst));
        let (s, kind) = server_response(&c0c1, 42, &mut rng).unwrap();
        assert_eq!(kind, HandshakeKind::Complex(Schema::DigestFirst));
        assert_eq!(s.len(), S0S1S2_LEN);
        let mut s1 = [0u8; PACKET_LEN];
        s1.copy_from_slice(&s[1..1 + PACKET_LEN]);
        let mut s2 = [0u8; PACKET_LEN];
        s2.copy_from_slice(&s[1 + PACKET_LEN..]);
        assert_eq!(&s1[..4], &42u32.to_be_bytes());
        assert_eq!(verify_server_s1(&s1), Some(Schema::DigestFirst));
        assert!(verify_server_s2(&c1, Schema::DigestFirst, &s2));
    }

    #[test]
    fn plain_client_gets_an_echo() {
        let mut rng = StdRng::seed_from_u64(1);
        let c0c1 = client_c0c1(5, false, &mut rng);
        let (s, kind) = server_response(&c0c1, 9, &mut rng).unwrap();
        assert_eq!(kind, HandshakeKind::Simple);
        assert_eq!(&s[1 + PACKET_LEN..], &c0c1[1..], "S2 echoes C1");
        assert_eq!(&s[5..9], &c0c1[1..5], "S1 carries C1's time");
        assert_eq!(client_c2(&s).unwrap(), s[1..1 + PACKET_LEN].to_vec());
    }

    #[test]
    fn bad_versions_and_lengths() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut c0c1 = client_c0c1(5, false, &mut rng);
        c0c1[0] = 6;
        assert_eq!(server_response(&c0c1, 0, &mut rng).unwrap_err(), HandshakeError::UnsupportedVersion(6));
        assert!(matches!(server_response(&c0c1[..10], 0, &mut rng), Err(HandshakeError::WrongLength { .. })));
    }
}
