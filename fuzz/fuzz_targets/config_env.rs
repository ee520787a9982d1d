//! Config text with `$VAR`/`${VAR}` arguments and `SRS_*` overrides: a config or an error with a
//! location, never a panic. The input is split at the first NUL: config text, then override
//! lines `NAME=value`. A few variables are set so that expansion succeeds as well as fails.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_config::Config;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        std::env::set_var("FUZZ_PORT", "1935");
        std::env::set_var("FUZZ_ON", "on");
        std::env::set_var("FUZZ_DIR", "./objs/nginx/html");
        std::env::set_var("FUZZ_ODD", "}{;# \"'$");
    });
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (conf, env_text) = text.split_once('\0').unwrap_or((text, ""));
    let env: BTreeMap<String, String> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = Config::load_str(conf, "fuzz.conf", &env);
    if conf.is_empty() {
        let _ = Config::from_env_only(&env);
    }
});
