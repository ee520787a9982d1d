//! Any query as a client's signed URL (`?expires=&sign=`, `?token=JWT` of any algorithm) and any
//! bytes as a key file or key set: refused or admitted, never a panic; a token is never admitted
//! for a key it was not signed with (none is configured here but the secret, and fuzzed input
//! cannot know it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_config::access::Token;
use rsrs_config::Action;
use rsrs_core::access;
use std::time::{Duration, UNIX_EPOCH};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let token = Token { enabled: true, secret: "fuzz-secret-never-guessed-0123".into(), publish: true, play: true, ..Default::default() };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for action in [Action::Publish, Action::Play] {
        let admitted = access::check_token(&token, &[], action, "live", "s", &text, now).is_ok();
        assert!(!admitted, "admitted without the secret: {text:?}");
    }
    let _ = access::public_key_from_pem(data);
    let _ = access::public_keys_from_jwks(data);
    let _ = access::query_value(&text, "token");
});
