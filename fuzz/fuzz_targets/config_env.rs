//! Config text with `$VAR`/`${VAR}` arguments and `SRS_*` overrides: a config or an error with a
//! location, never a panic. The input is split at the first NUL: config text, then environment
//! lines `NAME=value`. A few variables are always set so that expansion happens as well as not.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_config::Config;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (conf, env_text) = text.split_once('\0').unwrap_or((text, ""));
    let mut env: BTreeMap<String, String> = [
        ("FUZZ_PORT", "1935"),
        ("FUZZ_ON", "on"),
        ("FUZZ_DIR", "./objs/nginx/html"),
        ("FUZZ_ODD", "}{;# \"'$"),
        ("FUZZ_REF", "$FUZZ_PORT"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(env_text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())));
    let _ = Config::load_str(conf, "fuzz.conf", &env);
    if conf.is_empty() {
        let _ = Config::from_env_only(&env);
    }
});
