//! Which directives exist where, which rsrs implements, and SRS's legacy rewrites.
//!
//! An unknown directive is an error (a typo must not silently fall back to a default), as SRS's
//! `illegal ...` is. A directive SRS has for a feature rsrs does not have is accepted with one
//! warning per feature, so SRS's configs load unchanged, unless it restricts who may publish or
//! watch: that is refused where the vhost is read (`model.rs`, `access.rs`, which also see the
//! `SRS_VHOST_*` overrides), because serving what the config meant to protect would fail open.

use crate::parse::Directive;
use crate::ConfigError;

/// How rsrs treats a known directive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Support {
    /// Implemented; the block's children (if any) are checked against `Section`.
    Yes(Section),
    /// Known to SRS, for a feature rsrs does not have (named here): warn once per feature when
    /// it is switched on. A block's contents are not checked.
    NotYet(&'static str),
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
    /// SRS 7's `rtmp { listen; chunk_size; }`.
    Rtmp,
}

const RTC_TUNING: &str = "WebRTC transport tuning";
const RTC_CANDIDATE_DISCOVERY: &str = "WebRTC candidate discovery from the API's host";

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
            "ingest" => NotYet("ingest (pulling streams in with FFmpeg)"),
            "forward" => NotYet("forward (pushing streams to other servers)"),
            "transcode" => NotYet("transcode (FFmpeg engines)"),
            "exec" => NotYet("exec (running a program on publish)"),
            "dash" => NotYet("DASH"),
            "hds" => NotYet("HDS"),
            "http_static" => NotYet("per-vhost http_static"),
            "bandcheck" => NotYet("bandcheck"),
            "rtsp" => NotYet("RTSP"),
            _ => return None,
        },
        HttpApi => match name {
            "enabled" | "listen" | "crossdomain" => leaf,
            "raw_api" => Yes(RawApi),
            "auth" => Yes(Auth),
            "https" => NotYet("HTTPS (put a TLS proxy in front)"),
            _ => return None,
        },
        HttpServer => match name {
            "enabled" | "listen" | "dir" | "crossdomain" => leaf,
            "https" => NotYet("HTTPS (put a TLS proxy in front)"),
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
            "sei_filter" => NotYet("SRT sei_filter"),
            "mix_correct" => NotYet("SRT mix_correct"),
            // SRS 7: the stream id of a client that sends none; rsrs refuses such a client.
            "default_streamid" => NotYet("SRT default_streamid"),
            _ => return None,
        },
        RtcServer => match name {
            "enabled" | "listen" | "candidate" | "protocol" => leaf,
            "tcp" => Yes(RtcTcp),
            // Tuning SRS needs for its own UDP stack; rsrs's has no such knobs.
            "ecdsa" | "encrypt" | "reuseport" | "merge_nalus" | "ip_family" | "dir" => Ignored,
            "black_hole" => NotYet("WebRTC black_hole"),
            "api_as_candidates" | "resolve_api_domain" | "keep_api_domain" | "use_auto_detect_network_ip" => {
                NotYet(RTC_CANDIDATE_DISCOVERY)
            }
            _ => return None,
        },
        RtcTcp => match name {
            "enabled" | "listen" => leaf,
            _ => return None,
        },
        VhostRtc => match name {
            "enabled" | "rtmp_to_rtc" | "rtc_to_rtmp" => leaf,
            // str0m always answers NACKs and sends TWCC feedback.
            "nack" | "twcc" | "nack_no_copy" => Ignored,
            "stun_timeout" | "stun_strict_check" | "dtls_role" | "dtls_version" | "drop_for_pt" | "pli_for_rtmp"
            | "bframe" | "aac" | "keep_bframe" | "opus_bitrate" | "aac_bitrate" | "keep_avc_nalu_sei"
            | "init_rate_from_sdp" | "keep_original_ssrc" => NotYet(RTC_TUNING),
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
            "atc" | "atc_auto" => NotYet("ATC (absolute time)"),
            "mix_correct" => NotYet("play.mix_correct"),
            "send_min_interval" => NotYet("play.send_min_interval"),
            "reduce_sequence_header" => NotYet("play.reduce_sequence_header"),
            _ => return None,
        },
        Publish => match name {
            "firstpkt_timeout" | "normal_timeout" | "mr" | "mr_latency" => leaf,
            "parse_sps" | "try_annexb_first" => Ignored,
            "kickoff_for_idle" => NotYet("publish.kickoff_for_idle"),
            _ => return None,
        },
        HttpRemux => match name {
            "enabled" | "mount" | "drop_if_not_match" | "has_audio" | "has_video" | "guess_has_av" => leaf,
            "fast_cache" => NotYet("http_remux.fast_cache"),
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
            // HLS encryption: `hls_keys on` is refused where the vhost is read (segments would be
            // in the clear); the rest mean nothing without it.
            "hls_keys" | "hls_fragments_per_key" | "hls_key_file" | "hls_key_file_path" | "hls_key_url" => Ignored,
            "hls_ts_floor" => NotYet("hls_ts_floor"),
            "hls_nb_notify" => NotYet("hls_nb_notify"),
            "hls_recover" => NotYet("hls_recover"),
            "hls_master_m3u8_path_relative" => NotYet("hls_master_m3u8_path_relative"),
            "hls_mount" | "hls_storage" => NotYet("HLS in memory (hls_storage)"),
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
        Rtmp => match name {
            "listen" | "chunk_size" => leaf,
            _ => return None,
        },
        Leaf => return None,
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
        "rtmp" => Yes(Section::Rtmp),
        "asprocess" => NotYet("asprocess"),
        "heartbeat" => NotYet("heartbeat"),
        "stream_caster" => NotYet("stream casters (GB28181, UDP TS, FLV POST)"),
        "rtmps" => NotYet("RTMPS (put a TLS proxy in front)"),
        "rtsp_server" => NotYet("RTSP"),
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

/// Checks every directive against the schema. Returns one warning per feature rsrs does not
/// have that the config switches on, naming where it first appears and every directive of it.
pub(crate) fn check(root_dirs: &[Directive]) -> Result<Vec<String>, ConfigError> {
    let mut missing = MissingFeatures::default();
    for d in root_dirs {
        match root(&d.name) {
            None => return Err(ConfigError::at(&d.loc, &d.name, "unknown directive at top level")),
            Some(Support::NotYet(feature)) => missing.note(feature, d, &d.name),
            Some(Support::Ignored) => {}
            Some(Support::Yes(section)) => check_children(d, section, &d.name, &mut missing)?,
        }
    }
    Ok(missing.warnings())
}

/// The features a config asks for that rsrs does not have, in the order they first appear.
#[derive(Default)]
struct MissingFeatures(Vec<(&'static str, String, Vec<String>)>);

impl MissingFeatures {
    fn note(&mut self, feature: &'static str, d: &Directive, path: &str) {
        if !is_switched_on(d) {
            return;
        }
        match self.0.iter_mut().find(|(f, _, _)| *f == feature) {
            Some((_, _, paths)) if !paths.iter().any(|p| p == path) => paths.push(path.to_string()),
            Some(_) => {}
            None => self.0.push((feature, d.loc.to_string(), vec![path.to_string()])),
        }
    }

    fn warnings(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(feature, loc, paths)| {
                let paths = paths.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
                format!("{loc}: {feature} is not implemented by rsrs; ignored: {paths}")
            })
            .collect()
    }
}

/// Whether a directive asks for its feature: a block with `enabled on`, or a value that is not
/// `off`.
fn is_switched_on(d: &Directive) -> bool {
    match &d.block {
        Some(_) => d.get("enabled").and_then(|e| e.arg0()) == Some("on"),
        None => d.arg0() != Some("off"),
    }
}

fn check_children(
    d: &Directive,
    section: Section,
    path: &str,
    missing: &mut MissingFeatures,
) -> Result<(), ConfigError> {
    if section == Section::Leaf {
        if d.block.is_some() {
            return Err(ConfigError::at(&d.loc, path, "takes a value, not a { } block"));
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
            Some(Support::NotYet(feature)) => missing.note(feature, c, &child_path),
            Some(Support::Ignored) => {}
            Some(Support::Yes(s)) => check_children(c, s, &child_path, missing)?,
        }
    }
    Ok(())
}

/// SRS's rewrites of older and newer config forms, applied before validation (SRS's
/// `srs_config_transform_vhost`), so a config from SRS 1 to 7 means what it means there.
pub(crate) fn transform(dirs: &mut Vec<Directive>) {
    hoist_rtmp_block(dirs);
    for d in dirs.iter_mut() {
        match d.name.as_str() {
            "http_stream" => d.name = "http_server".into(),
            // SRS 4 dropped these.
            "rtc_server" => {
                if let Some(b) = d.block.as_mut() {
                    b.retain(|c| c.name != "perf_stat" && c.name != "queue_length");
                }
            }
            // SRS 4's misspelling.
            "srt_server" => {
                for c in d.block.iter_mut().flatten().filter(|c| c.name == "tlpkdrop") {
                    c.name = "tlpktdrop".into();
                }
            }
            "vhost" => transform_vhost(d),
            _ => {}
        }
    }
}

/// SRS 7 moved `listen` and `chunk_size` into `rtmp { }`; rsrs reads them at the top level, where
/// SRS 6 and earlier have them. When both places are written, the top level wins, as in SRS 7.
fn hoist_rtmp_block(dirs: &mut Vec<Directive>) {
    let mut hoisted = Vec::new();
    for d in dirs.iter_mut().filter(|d| d.name == "rtmp") {
        let Some(block) = d.block.as_mut() else { continue };
        block.retain(|c| {
            let moves = (c.name == "listen" || c.name == "chunk_size") && c.block.is_none();
            if moves {
                hoisted.push(c.clone());
            }
            !moves
        });
    }
    for c in hoisted {
        if !dirs.iter().any(|d| d.name == c.name) {
            dirs.push(c);
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
            "mode" | "origin" | "token_traverse" | "vhost" | "debug_srs_upnode" => moved.push(("cluster", c)),
            // SRS 1/2: `refer a b; refer_play c; refer_publish d;` (SRS 3: `refer { }`).
            "refer" if c.block.is_none() => {
                c.name = "all".into();
                moved.push(("refer", c));
            }
            "refer_play" | "refer_publish" => {
                c.name = c.name.trim_start_matches("refer_").to_string();
                moved.push(("refer", c));
            }
            // SRS 1/2: `forward a b;` (SRS 3: `forward { enabled on; destination a b; }`).
            "forward" if c.block.is_none() && !c.args.is_empty() => {
                let loc = c.loc.clone();
                let destination = Directive {
                    name: "destination".into(),
                    args: std::mem::take(&mut c.args),
                    block: None,
                    loc: loc.clone(),
                };
                let enabled = Directive { name: "enabled".into(), args: vec!["on".into()], block: None, loc };
                c.block = Some(vec![enabled, destination]);
                kept.push(c);
            }
            // SRS 4: `nack { enabled; no_copy; }` and `twcc { enabled; }` went into `rtc { }`.
            "nack" | "twcc" => {
                for m in c.block.take().unwrap_or_default() {
                    let name = match (c.name.as_str(), m.name.as_str()) {
                        (_, "enabled") => c.name.clone(),
                        ("nack", "no_copy") => "nack_no_copy".into(),
                        _ => continue,
                    };
                    moved.push(("rtc", Directive { name, ..m }));
                }
            }
            "rtc" => {
                // SRS 4: `aac transcode|discard` and `bframe keep|discard`.
                for m in c.block.iter_mut().flatten() {
                    match m.name.as_str() {
                        "aac" => {
                            m.name = "rtmp_to_rtc".into();
                            m.args = vec![if m.arg0() == Some("transcode") { "on" } else { "off" }.into()];
                        }
                        "bframe" => {
                            m.name = "keep_bframe".into();
                            m.args = vec![if m.arg0() == Some("keep") { "on" } else { "off" }.into()];
                        }
                        _ => {}
                    }
                }
                kept.push(c);
            }
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
    if moved.iter().any(|(section, _)| *section == "refer") && !kept.iter().any(|k| k.name == "refer") {
        let loc = moved.iter().find(|(s, _)| *s == "refer").map(|(_, d)| d.loc.clone()).expect("found above");
        let enabled = Directive { name: "enabled".into(), args: vec!["on".into()], block: None, loc: loc.clone() };
        kept.push(Directive { name: "refer".into(), args: vec![], block: Some(vec![enabled]), loc });
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
