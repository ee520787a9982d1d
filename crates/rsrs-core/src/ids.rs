//! Random identifiers in SRS's shapes: `vid-xxxxxxx` for vhosts and streams, 8 characters for
//! clients and the service.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `prefix` followed by `n` random characters from `[0-9a-z]`.
pub fn random_id(prefix: &str, n: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    for _ in 0..n {
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

/// A client (connection) id.
pub fn client_id() -> String {
    random_id("", 8)
}
