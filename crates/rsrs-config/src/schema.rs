//! Which directives exist where, which rsrs implements, and SRS's legacy rewrites.
//!
//! An unknown directive is an error (a typo must not silently fall back to a default). A
//! directive SRS has but rsrs does not implement yet is accepted with a warning, so the configs
//! of the SRS Kubernetes guide load unchanged.

use crate::parse::Directive;
use crate::ConfigError;

/// How rsrs treats a known directive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Support {
    /// Implemented; the block's children (if any) are checked against `Section`.
    Yes(Section),
    /// Known to SRS, has no effect in rsrs yet: warn when present.
    NotYet,
    /// Known to SRS, meaningless for rsrs (daemon/tcmalloc tuning and such): accept silently.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Section {
    Leaf,
    HttpApi,
    HttpServer,
    Exporter,
    Stats,
    SrtServer,
    VhostSrt,
    RtcServer,
    /// `rtc_server { tcp { } }`.
    RtcTcp,
    VhostRtc,
    Vhost,
    Play,
    Publish,
    HttpRemux,
    Cluster,
    RawApi,
    Auth,
    /// HLS and DVR: implemented, with some of SRS's keys accepted but not implemented.
    Hls,
    Dvr,
    HttpHooks,
    Security,
    Refer,
    /// rsrs's signed URLs.
    Token,
    /// Known SRS block whose contents we don't check (not implemented, many variants).
    Opaque,
}

pub(crate) fn lookup(section: Section, name: &str) -> Option<Support> {
    use Section::*;
    use Support::*;
    let leaf = Yes(Leaf);
    Some(match section {
        Vhost => match name {
            "enabled" | "chunk_size" | "min_latency" | "tcp_nodelay" | "in_ack_size" | "out_ack_size" => leaf,
            "play" => Yes(Play),
            "publish" => Yes(Publish),
            "http_remux" => Yes(HttpRemux),
            "cluster" => Yes(Cluster),
            "hls" => Yes(Hls),
            "dvr" => Yes(Dvr),
            "http_hooks" => Yes(HttpHooks),
            "security" => Yes(Security),
            "refer" => Yes(Refer),
            "token" => Yes(Token),
            "srt" => Yes(VhostSrt),
            "rtc" => Yes(VhostRtc),
            "ingest" | "forward" | "transcode" | "bandcheck" | "dash" | "http_static" | "hds" | "exec" => Yes(Opaque),
            _ => return None,
        },
        HttpApi => match name {
            "enabled" | "listen" | "crossdomain" => leaf,
            "raw_api" => Yes(RawApi),
            "auth" => Yes(Auth),
            "https" => Yes(Opaque),
            _ => return None,
        },
        HttpServer => match name {
            "enabled" | "listen" | "dir" | "crossdomain" => leaf,
            "https" => Yes(Opaque),
            _ => return None,
        },
        Exporter => match name {
            "enabled" | "listen" | "label" | "tag" => leaf,
            _ => return None,
        },
        SrtServer => match name {
            "enabled" | "listen" | "maxbw" | "mss" | "latency" | "recvlatency" | "peerlatency" | "connect_timeout"
            | "peer_idle_timeout" | "sendbuf" | "recvbuf" | "payloadsize" | "default_app" | "tlpktdrop"
            | "tsbpdmode" | "passphrase" | "pbkeylen" => leaf,
            // SRS drops SEI NAL units from SRT input (sei_filter) and reorders A/V (mix_correct);
            // rsrs keeps SEI (captions live there) and always interleaves by time.
            "sei_filter" | "mix_correct" => NotYet,
            _ => return None,
        },
        RtcServer => match name {
            "enabled" | "listen" | "candidate" | "protocol" => leaf,
            "tcp" => Yes(RtcTcp),
            // Tuning SRS needs for its own UDP stack; rsrs's has no such knobs.
            "ecdsa" | "encrypt" | "reuseport" | "merge_nalus" | "ip_family" | "dir" => Ignored,
            "black_hole"
            | "api_as_candidates"
            | "resolve_api_domain"
            | "keep_api_domain"
            | "use_auto_detect_network_ip" => NotYet,
            _ => return None,
        },
        RtcTcp => match name {
            "enabled" | "listen" => leaf,
            _ => return None,
        },
        VhostRtc => match name {
            "enabled" | "rtmp_to_rtc" | "rtc_to_rtmp" => leaf,
            "nack" | "twcc" | "nack_no_copy" | "stun_timeout" | "stun_strict_check" | "dtls_role" | "dtls_version"
            | "drop_for_pt" | "pli_for_rtmp" | "bframe" | "aac" | "keep_bframe" | "opus_bitrate" | "aac_bitrate"
            | "keep_avc_nalu_sei" => NotYet,
            _ => return None,
        },
        VhostSrt => match name {
            "enabled" | "srt_to_rtmp" => leaf,
            _ => return None,
        },
        Stats => match name {
            "enabled" | "network" | "disk" => leaf,
            _ => return None,
        },
        RawApi => match name {
            "enabled" | "allow_reload" | "allow_query" | "allow_update" => leaf,
            _ => return None,
        },
        Auth => match name {
            "enabled" | "username" | "password" => leaf,
            _ => return None,
        },
        Play => match name {
            "gop_cache" | "gop_cache_max_frames" | "queue_length" | "mw_latency" | "mw_msgs" | "time_jitter" => leaf,
            "atc" | "atc_auto" | "mix_correct" | "send_min_interval" | "reduce_sequence_header" => NotYet,
            _ => return None,
        },
        Publish => match name {
            "firstpkt_timeout" | "normal_timeout" => leaf,
            "parse_sps" | "try_annexb_first" => Ignored,
            "mr" | "mr_latency" | "kickoff_for_idle" => NotYet,
            _ => return None,
        },
        HttpRemux => match name {
            "enabled" | "mount" | "drop_if_not_match" | "has_audio" | "has_video" | "guess_has_av" => leaf,
            "fast_cache" => NotYet,
            _ => return None,
        },
        Cluster => match name {
            "mode" | "origin" | "token_traverse" | "vhost" | "debug_srs_upnode" | "origin_cluster" | "coworkers"
            | "protocol" | "follow_client" => leaf,
            _ => return None,
        },
        Hls => match name {
            "enabled" | "hls_fragment" | "hls_td_ratio" | "hls_aof_ratio" | "hls_window" | "hls_on_error"
            | "hls_path" | "hls_m3u8_file" | "hls_ts_file" | "hls_entry_prefix" | "hls_cleanup" | "hls_dispose"
            | "hls_wait_keyframe" | "hls_ctx" | "hls_ts_ctx" | "hls_use_fmp4" | "hls_fmp4_file" | "hls_init_file"
            | "hls_low_latency" | "hls_part_duration" => leaf,
            // Codec hints: the real codecs are taken from the stream.
            "hls_acodec" | "hls_vcodec" | "hls_dts_directly" => Ignored,
            "hls_ts_floor"
            | "hls_nb_notify"
            | "hls_keys"
            | "hls_fragments_per_key"
            | "hls_key_file"
            | "hls_key_file_path"
            | "hls_key_url"
            | "hls_recover"
            | "hls_mount"
            | "hls_storage" => NotYet,
            _ => return None,
        },
        Dvr => match name {
            "enabled" | "dvr_apply" | "dvr_plan" | "dvr_path" | "dvr_duration" | "dvr_wait_keyframe" => leaf,
            "time_jitter" => Ignored,
            _ => return None,
        },
        HttpHooks => match name {
            "enabled" | "on_connect" | "on_close" | "on_publish" | "on_unpublish" | "on_play" | "on_stop"
            | "on_dvr" | "on_hls" | "on_hls_notify" => leaf,
            _ => return None,
        },
        Security => match name {
            "enabled" | "allow" | "deny" => leaf,
            _ => return None,
        },
        Refer => match name {
            "enabled" | "all" | "publish" | "play" => leaf,
            _ => return None,
        },
        Token => match name {
            "enabled" | "secret" | "jwt_key" | "jwks_url" | "publish" | "play" => leaf,
            _ => return None,
        },
        Leaf | Opaque => return None,
    })
}

/// Root-level directives.
pub(crate) fn root(name: &str) -> Option<Support> {
    use Support::*;
    Some(match name {
        "grace_start_wait"
        | "grace_final_wait"
        | "force_grace_quit"
        | "inotify_auto_reload"
        | "auto_reload_for_docker"
        | "listen"
        | "pid"
        | "chunk_size"
        | "srs_log_tank"
        | "srs_log_level"
        | "srs_log_level_v2"
        | "srs_log_file"
        | "max_connections"
        | "daemon"
        | "work_dir"
        | "utc_time"
        | "server_id"
        | "pithy_print_ms"
        | "is_full" => Yes(Section::Leaf),
        "http_api" => Yes(Section::HttpApi),
        "http_server" => Yes(Section::HttpServer),
        "exporter" => Yes(Section::Exporter),
        "stats" => Yes(Section::Stats),
        "vhost" => Yes(Section::Vhost),
        "srt_server" => Yes(Section::SrtServer),
        "rtc_server" => Yes(Section::RtcServer),
        "asprocess" | "heartbeat" | "stream_caster" => NotYet,
        "ff_log_dir"
        | "ff_log_level"
        | "empty_ip_ok"
        | "disable_daemon_for_docker"
        | "in_docker"
        | "tcmalloc_release_rate"
        | "query_latest_version"
        | "first_wait_for_qlv"
        | "threads"
        | "circuit_breaker"
        | "tencentcloud_apm"
        | "tencentcloud_cls" => Ignored,
        _ => return None,
    })
}

/// Checks every directive against the schema. Returns warnings for known-but-unimplemented
/// directives that are switched on (or present, for plain values).
pub(crate) fn check(root_dirs: &[Directive]) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    for d in root_dirs {
        match root(&d.name) {
            None => return Err(ConfigError::at(&d.loc, &d.name, "unknown directive at top level")),
            Some(Support::NotYet) => {
                if is_switched_on(d) {
                    warnings
                        .push(format!("{}: `{}` is recognized but not implemented by rsrs yet; ignored", d.loc, d.name))
                }
            }
            Some(Support::Ignored) => {}
            Some(Support::Yes(section)) => check_children(d, section, &d.name, &mut warnings)?,
        }
    }
    Ok(warnings)
}

fn is_switched_on(d: &Directive) -> bool {
    match &d.block {
        Some(_) => d.get("enabled").and_then(|e| e.arg0()) == Some("on"),
        None => d.arg0() != Some("off"),
    }
}

fn check_children(d: &Directive, section: Section, path: &str, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    if section == Section::Leaf {
        if d.block.is_some() {
            return Err(ConfigError::at(&d.loc, path, "takes a value, not a { } block"));
        }
        return Ok(());
    }
    if section == Section::Opaque {
        if is_switched_on(d) {
            warnings.push(format!("{}: `{}` is recognized but not implemented by rsrs yet; ignored", d.loc, path));
        }
        return Ok(());
    }
    if d.block.is_none() {
        return Err(ConfigError::at(&d.loc, path, "must be a { } block"));
    }
    for c in d.children() {
        let child_path = format!("{path}.{}", c.name);
        match lookup(section, &c.name) {
            None => return Err(ConfigError::at(&c.loc, &child_path, format!("unknown directive in `{}`", d.name))),
            Some(Support::NotYet) => warnings
                .push(format!("{}: `{child_path}` is recognized but not implemented by rsrs yet; ignored", c.loc)),
            Some(Support::Ignored) => {}
            Some(Support::Yes(s)) => check_children(c, s, &child_path, warnings)?,
        }
    }
    Ok(())
}

/// SRS's rewrites of older config forms, applied before validation (see SRS `transform_vhost`).
pub(crate) fn transform(dirs: &mut [Directive]) {
    for d in dirs.iter_mut() {
        if d.name == "http_stream" {
            d.name = "http_server".into();
        }
        if d.name == "vhost" {
            transform_vhost(d);
        }
    }
}

fn transform_vhost(v: &mut Directive) {
    let Some(children) = v.block.as_mut() else {
        return;
    };
    let mut moved: Vec<(&str, Directive)> = Vec::new();
    let mut kept = Vec::new();
    for mut c in children.drain(..) {
        match c.name.as_str() {
            "time_jitter"
            | "mix_correct"
            | "atc"
            | "atc_auto"
            | "mw_latency"
            | "gop_cache"
            | "gop_cache_max_frames"
            | "queue_length"
            | "send_min_interval"
            | "reduce_sequence_header" => moved.push(("play", c)),
            "mode" | "origin" | "token_traverse" | "debug_srs_upnode" => moved.push(("cluster", c)),
            "publish_1stpkt_timeout" => {
                c.name = "firstpkt_timeout".into();
                moved.push(("publish", c));
            }
            "publish_normal_timeout" => {
                c.name = "normal_timeout".into();
                moved.push(("publish", c));
            }
            "http" => {
                c.name = "http_static".into();
                kept.push(c);
            }
            "mr" if c.block.is_some() => {
                for mut m in c.block.take().unwrap_or_default() {
                    m.name = if m.name == "enabled" { "mr".into() } else { "mr_latency".into() };
                    moved.push(("publish", m));
                }
            }
            _ => kept.push(c),
        }
    }
    for (section, d) in moved {
        let loc = d.loc.clone();
        let target = match kept.iter_mut().position(|k| k.name == section) {
            Some(i) => &mut kept[i],
            None => {
                kept.push(Directive { name: section.into(), args: vec![], block: Some(vec![]), loc });
                kept.last_mut().expect("just pushed")
            }
        };
        target.block.get_or_insert_with(Vec::new).push(d);
    }
    // http_remux.hstrs is always on in SRS 3+; drop it.
    if let Some(r) = kept.iter_mut().find(|k| k.name == "http_remux") {
        if let Some(b) = r.block.as_mut() {
            b.retain(|x| x.name != "hstrs");
        }
    }
    *children = kept;
}
