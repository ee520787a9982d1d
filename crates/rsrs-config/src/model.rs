//! The typed config: what the server reads. Defaults are SRS's (see the reference tables).

use crate::parse::{self, Directive, Location};
use crate::{schema, ConfigError};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// Environment variables, captured once so loading is deterministic.
pub type Env = BTreeMap<String, String>;

/// The process environment as an [`Env`].
pub fn process_env() -> Env {
    std::env::vars().collect()
}

pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// A listen endpoint: `port`, `ip:port` or `[ipv6]:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint(pub SocketAddr);

/// A listen value that is not an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("invalid listen endpoint `{0}`: expected PORT, IP:PORT or [IPV6]:PORT")]
    Malformed(String),
    #[error("invalid listen endpoint `{0}`: port must be 1-65535")]
    PortZero(String),
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        if let Ok(port) = s.parse::<u16>() {
            if port == 0 {
                return Err(EndpointError::PortZero(s.to_string()));
            }
            return Ok(Endpoint(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)));
        }
        if let Some(port) = s.strip_prefix(':') {
            return Endpoint::parse(port).map_err(|e| match e {
                EndpointError::PortZero(_) => EndpointError::PortZero(s.to_string()),
                EndpointError::Malformed(_) => EndpointError::Malformed(s.to_string()),
            });
        }
        let addr: SocketAddr = s.parse().map_err(|_| EndpointError::Malformed(s.to_string()))?;
        if addr.port() == 0 {
            return Err(EndpointError::PortZero(s.to_string()));
        }
        Ok(Endpoint(addr))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTank {
    Console,
    File,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpApi {
    pub enabled: bool,
    pub listen: Endpoint,
    pub crossdomain: bool,
    pub raw_api: bool,
    pub allow_reload: bool,
    pub auth: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpServer {
    pub enabled: bool,
    pub listen: Endpoint,
    pub dir: String,
    pub crossdomain: bool,
}

/// SRS's Prometheus exporter: `exporter { enabled on; listen 9972; label ...; tag ...; }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Exporter {
    pub enabled: bool,
    pub listen: Endpoint,
    /// Put on every series as `label="..."` and `tag="..."` when set (SRS does the same).
    pub label: String,
    pub tag: String,
}

/// SRS's `stats { network 0; disk sda sdb; }`: the block devices whose busy time the API's
/// `disk_busy_percent` reports (none listed: the busiest whole disk).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    pub disks: Vec<String>,
}

/// SRS's `srt_server { }`: the SRT listener (UDP) and the socket options every connection on
/// it gets. Defaults are SRS's.
#[derive(Debug, Clone, PartialEq)]
pub struct SrtServer {
    pub enabled: bool,
    pub listen: Endpoint,
    pub latency_ms: u32,
    pub recv_latency_ms: u32,
    pub peer_latency_ms: u32,
    /// Bytes per second; -1: no limit.
    pub maxbw: i64,
    pub mss: u32,
    pub connect_timeout_ms: u32,
    pub peer_idle_timeout_ms: u32,
    pub sendbuf: u32,
    pub recvbuf: u32,
    pub payload_size: u32,
    pub tsbpd: bool,
    pub tlpktdrop: bool,
    /// Empty: no encryption.
    pub passphrase: String,
    pub pbkeylen: u32,
    /// The app of a stream id that names none (`livestream`).
    pub default_app: String,
}

/// SRS's `rtc_server { }`: WebRTC's UDP port (every session on it) and the address put in the
/// answers' candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct RtcServer {
    pub enabled: bool,
    pub listen: Endpoint,
    /// The address browsers are told to send to; `None` (or `*`): the listen address.
    pub candidate: Option<String>,
    /// Which candidates answers carry (SRS's `protocol udp|tcp|all`, default udp).
    pub protocol: RtcProtocol,
    /// SRS's `tcp { enabled; listen; }`: ICE-TCP, every session on one TCP port too.
    pub tcp_enabled: bool,
    pub tcp_listen: Endpoint,
}

/// SRS's `rtc_server.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcProtocol {
    Udp,
    Tcp,
    All,
}

impl RtcProtocol {
    pub fn udp(self) -> bool {
        self != RtcProtocol::Tcp
    }

    pub fn tcp(self) -> bool {
        self != RtcProtocol::Udp
    }
}

/// A vhost's `rtc { enabled on; rtmp_to_rtc on; rtc_to_rtmp on; }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostRtc {
    pub enabled: bool,
    /// Streams published over RTMP (or SRT) play over WebRTC.
    pub rtmp_to_rtc: bool,
}

/// A vhost's `srt { enabled on; srt_to_rtmp on; }`: whether SRT clients may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostSrt {
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeJitter {
    Full,
    Zero,
    Off,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Play {
    pub gop_cache: bool,
    pub gop_cache_max_frames: usize,
    /// Most media a player may have queued before it is skipped ahead.
    pub queue_length: Duration,
    /// Merged-write window: how long a player's output is held to batch writes.
    pub mw_latency: Duration,
    pub mw_msgs: usize,
    pub time_jitter: TimeJitter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub firstpkt_timeout: Duration,
    pub normal_timeout: Duration,
    /// Merged reads (`mr on`, with `mr_latency`): how long an RTMP publisher's read waits after
    /// a small one. `None` when off, and with `min_latency on` (SRS's realtime mode), as in SRS.
    pub merged_read: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRemux {
    pub enabled: bool,
    pub mount: String,
    pub drop_if_not_match: bool,
    pub has_audio: bool,
    pub has_video: bool,
    pub guess_has_av: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// `mode remote`: this vhost is an edge.
    pub edge: bool,
    pub origins: Vec<String>,
    pub token_traverse: bool,
    pub vhost: String,
    pub debug_srs_upnode: bool,
    pub origin_cluster: bool,
    pub coworkers: Vec<String>,
    pub protocol: String,
    pub follow_client: bool,
}

/// `hls_on_error`: what an HLS error does to the stream's publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HlsOnError {
    /// HLS stops for the stream; the publisher and other players go on (the default).
    Continue,
    /// As `continue` (SRS's `ignore`).
    Ignore,
    /// The publisher is disconnected.
    Disconnect,
}

/// `hls { }`: HLS segments and playlist on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Hls {
    pub enabled: bool,
    /// Target segment duration, seconds.
    pub fragment: f64,
    pub td_ratio: f64,
    pub aof_ratio: f64,
    /// Playlist window, seconds.
    pub window: f64,
    pub on_error: HlsOnError,
    pub path: String,
    pub m3u8_file: String,
    pub ts_file: String,
    pub entry_prefix: String,
    pub cleanup: bool,
    /// Seconds after unpublish before the files are removed; 0 keeps them.
    pub dispose: f64,
    pub wait_keyframe: bool,
    /// SRS's HLS viewer sessions: a viewer's first playlist request runs the play checks and
    /// hooks once and gets a session id (`?hls_ctx=`) its later requests carry.
    pub ctx: bool,
    /// Whether segment URIs in the playlist carry the session id too.
    pub ts_ctx: bool,
    /// SRS 7's `hls_use_fmp4`: fragmented MP4 segments (CMAF) instead of MPEG-TS. Streams whose
    /// codecs TS cannot carry (AV1, Opus) use fMP4 whatever this says.
    pub use_fmp4: bool,
    /// fMP4 segment and initialization-segment paths (SRS 7's `hls_fmp4_file`, `hls_init_file`).
    pub fmp4_file: String,
    pub init_file: String,
    /// Low-latency HLS (rsrs's `hls_low_latency`; RFC 8216bis): fMP4 parts of
    /// `hls_part_duration` seconds, preload hints, blocking playlist reload on the HTTP port.
    pub low_latency: bool,
    pub part_duration: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DvrPlan {
    Session,
    Segment,
}

/// `dvr { }`: recording to FLV files.
#[derive(Debug, Clone, PartialEq)]
pub struct Dvr {
    pub enabled: bool,
    /// `all`, or `app/stream` entries.
    pub apply: Vec<String>,
    pub plan: DvrPlan,
    pub path: String,
    /// Segment length for the segment plan, seconds.
    pub duration: u64,
    pub wait_keyframe: bool,
}

impl Dvr {
    /// Whether `app/stream` is recorded (`dvr_apply`).
    pub fn applies(&self, app: &str, stream: &str) -> bool {
        self.enabled
            && (self.apply.iter().any(|a| a == "all") || self.apply.iter().any(|a| *a == format!("{app}/{stream}")))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vhost {
    pub name: String,
    pub enabled: bool,
    pub chunk_size: u32,
    pub min_latency: bool,
    pub tcp_nodelay: bool,
    pub in_ack_size: u32,
    pub out_ack_size: u32,
    pub play: Play,
    pub publish: Publish,
    pub http_remux: HttpRemux,
    pub cluster: Cluster,
    pub hls: Hls,
    pub dvr: Dvr,
    pub srt: VhostSrt,
    pub rtc: VhostRtc,
    /// Who may publish and play: hooks, security rules, refer, signed URLs.
    pub access: crate::access::Access,
}

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it came from (`-c` path, `built-in default`, or `environment`).
    pub source: String,
    pub listen: Vec<Endpoint>,
    pub max_connections: u32,
    pub daemon: bool,
    pub pid: String,
    pub chunk_size: u32,
    pub log_tank: LogTank,
    pub log_level: String,
    pub log_file: String,
    pub work_dir: String,
    pub utc_time: bool,
    pub server_id: Option<String>,
    pub grace_start_wait: Duration,
    pub grace_final_wait: Duration,
    pub force_grace_quit: bool,
    pub inotify_auto_reload: bool,
    pub auto_reload_for_docker: bool,
    pub http_api: HttpApi,
    pub http_server: HttpServer,
    pub exporter: Exporter,
    pub stats: Stats,
    pub srt_server: SrtServer,
    pub rtc_server: RtcServer,
    pub vhosts: Vec<std::sync::Arc<Vhost>>,
    /// Non-fatal findings (unimplemented directives, odd values) to log at start.
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads a config file (as `rsrs -c FILE`).
    pub fn load_file(path: &Path, env: &Env) -> Result<Config, ConfigError> {
        let tree = parse::parse_file(path)?;
        Config::from_tree(tree, env, &path.display().to_string(), false)
    }

    /// Loads config text; `name` appears in errors.
    pub fn load_str(text: &str, name: &str, env: &Env) -> Result<Config, ConfigError> {
        let tree = parse::parse_str(text, name)?;
        Config::from_tree(tree, env, name, false)
    }

    /// The built-in default config, with env overrides applied.
    pub fn builtin(env: &Env) -> Result<Config, ConfigError> {
        Config::load_str(crate::DEFAULT_CONFIG, "built-in default", env)
    }

    /// Env-only mode (`-e` / `SRS_ENV_ONLY`): no file; a default vhost; everything from `SRS_*`.
    pub fn from_env_only(env: &Env) -> Result<Config, ConfigError> {
        let loc = Location { file: "environment".into(), line: 0 };
        let vhost = Directive { name: "vhost".into(), args: vec![DEFAULT_VHOST.into()], block: Some(vec![]), loc };
        Config::from_tree(vec![vhost], env, "environment", true)
    }

    fn from_tree(mut tree: Vec<Directive>, env: &Env, source: &str, env_only: bool) -> Result<Config, ConfigError> {
        expand_env(&mut tree, env);
        schema::transform(&mut tree);
        // First, as in SRS: full.conf lists every directive, including ones rsrs refuses.
        if (Getter { env, root: &tree }).global(&["is_full"]).map(|v| v.bool()).transpose()?.unwrap_or(false) {
            return Err(ConfigError::plain(
                "is_full is on: this is SRS's full.conf reference, never use it to run a server",
            ));
        }
        let mut warnings = schema::check(&tree)?;
        let g = Getter { env, root: &tree };
        let listen = match g.global(&["listen"]) {
            Some(v) => {
                if v.args.is_empty() {
                    return Err(v.err("needs at least one [ip:]port"));
                }
                v.args
                    .iter()
                    .map(|a| Endpoint::parse(a).map_err(|e| v.err(e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None if env_only => Vec::new(),
            // SRS 7 no longer requires it (a WebRTC- or SRT-only server); SRS 6 did.
            None => {
                warnings.push(format!(
                    "{source}: no `listen` (nor `rtmp {{ listen }}`): RTMP is not served (e.g. `listen 1935;`)"
                ));
                Vec::new()
            }
        };
        let max_connections = g.global(&["max_connections"]).map(|v| v.u32()).transpose()?.unwrap_or(1000);
        if max_connections == 0 {
            return Err(g
                .global(&["max_connections"])
                .map(|v| v.err("must be greater than 0"))
                .unwrap_or_else(|| ConfigError::plain("max_connections must be > 0")));
        }
        let daemon =
            if env_only { false } else { g.global(&["daemon"]).map(|v| v.bool()).transpose()?.unwrap_or(true) };
        let tank = g.log("srs_log_tank");
        let log_tank = match tank.as_ref().map(|v| v.str()).transpose()? {
            Some("console") => LogTank::Console,
            Some("file") => LogTank::File,
            Some(other) => {
                return Err(tank
                    .as_ref()
                    .map(|v| v.err(format!("must be console or file, not `{other}`")))
                    .unwrap_or_else(|| ConfigError::plain("")))
            }
            None if env_only => LogTank::Console,
            None => LogTank::File,
        };
        let level_v2 = g.log("srs_log_level_v2");
        let level = g.log("srs_log_level");
        let log_level = match (&level_v2, &level) {
            (Some(v), _) => {
                let s = v.str()?;
                if !["trace", "debug", "info", "warn", "error"].contains(&s) {
                    return Err(v.err(format!("`{s}` is not one of trace, debug, info, warn, error")));
                }
                s.to_string()
            }
            (None, Some(v)) => {
                let s = v.str()?;
                // SRS v1 names: verbose < info < trace < warn < error. Map to tracing levels.
                match s {
                    "verbose" => "trace",
                    "info" => "debug",
                    "trace" => "info",
                    "warn" => "warn",
                    "error" => "error",
                    _ => return Err(v.err(format!("`{s}` is not one of verbose, info, trace, warn, error"))),
                }
                .to_string()
            }
            (None, None) => "info".into(),
        };
        let log_file =
            g.log("srs_log_file").map(|v| v.string()).transpose()?.unwrap_or_else(|| "./objs/srs.log".into());
        let chunk_size = g.global(&["chunk_size"]).map(|v| v.u32()).transpose()?.unwrap_or(60000);
        let http_api = HttpApi {
            enabled: g.global(&["http_api", "enabled"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            listen: g
                .global(&["http_api", "listen"])
                .map(|v| v.endpoint())
                .transpose()?
                .unwrap_or(Endpoint::parse("1985").expect("valid")),
            crossdomain: g.global(&["http_api", "crossdomain"]).map(|v| v.bool()).transpose()?.unwrap_or(true),
            raw_api: g.global(&["http_api", "raw_api", "enabled"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            allow_reload: g
                .global(&["http_api", "raw_api", "allow_reload"])
                .map(|v| v.bool())
                .transpose()?
                .unwrap_or(false),
            auth: if g.global(&["http_api", "auth", "enabled"]).map(|v| v.bool()).transpose()?.unwrap_or(false) {
                Some((
                    g.global(&["http_api", "auth", "username"]).map(|v| v.secret()).transpose()?.unwrap_or_default(),
                    g.global(&["http_api", "auth", "password"]).map(|v| v.secret()).transpose()?.unwrap_or_default(),
                ))
            } else {
                None
            },
        };
        let http_server = HttpServer {
            enabled: g.global(&["http_server", "enabled"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            listen: g
                .global(&["http_server", "listen"])
                .map(|v| v.endpoint())
                .transpose()?
                .unwrap_or(Endpoint::parse("8080").expect("valid")),
            dir: g
                .global(&["http_server", "dir"])
                .map(|v| v.string())
                .transpose()?
                .unwrap_or_else(|| "./objs/nginx/html".into()),
            crossdomain: g.global(&["http_server", "crossdomain"]).map(|v| v.bool()).transpose()?.unwrap_or(true),
        };
        let exporter = Exporter {
            enabled: g.global(&["exporter", "enabled"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            listen: g
                .global(&["exporter", "listen"])
                .map(|v| v.endpoint())
                .transpose()?
                .unwrap_or(Endpoint::parse("9972").expect("valid")),
            label: g.global(&["exporter", "label"]).map(|v| v.string()).transpose()?.unwrap_or_default(),
            tag: g.global(&["exporter", "tag"]).map(|v| v.string()).transpose()?.unwrap_or_default(),
        };
        let stats = Stats { disks: g.global(&["stats", "disk"]).map(|v| v.args).unwrap_or_default() };
        let srt_server = srt_server_from(&g)?;
        let rtc_server = RtcServer {
            enabled: g.global(&["rtc_server", "enabled"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            listen: g
                .global(&["rtc_server", "listen"])
                .map(|v| v.endpoint())
                .transpose()?
                .unwrap_or(Endpoint::parse("8000").expect("valid")),
            // `candidate $NAME;` with NAME unset is SRS's default, `*` (see `expand_env`).
            candidate: g
                .global(&["rtc_server", "candidate"])
                .map(|v| v.string())
                .transpose()?
                .filter(|c| !c.is_empty() && c != "*" && !c.starts_with('$')),
            protocol: match g.global(&["rtc_server", "protocol"]) {
                None => RtcProtocol::Udp,
                Some(v) => match v.string()?.as_str() {
                    "udp" => RtcProtocol::Udp,
                    "tcp" => RtcProtocol::Tcp,
                    "all" => RtcProtocol::All,
                    other => return Err(v.err(format!("is `{other}`; it takes udp, tcp or all"))),
                },
            },
            tcp_enabled: g.global(&["rtc_server", "tcp", "enabled"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            tcp_listen: g
                .global(&["rtc_server", "tcp", "listen"])
                .map(|v| v.endpoint())
                .transpose()?
                .unwrap_or(Endpoint::parse("8000").expect("valid")),
        };
        if rtc_server.enabled && rtc_server.protocol.tcp() && !rtc_server.tcp_enabled {
            return Err(ConfigError::plain(
                "rtc_server: protocol tcp or all needs the TCP port: `tcp { enabled on; listen 8000; }`".to_string(),
            ));
        }
        let ms = |path: &[&str], default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(g.global(path).map(|v| v.f64()).transpose()?.map_or(default, |v| v as u64)))
        };
        let mut vhosts = Vec::new();
        for d in tree.iter().filter(|d| d.name == "vhost") {
            let Some(name) = d.arg0() else {
                return Err(ConfigError::at(&d.loc, "vhost", "needs a name, e.g. `vhost __defaultVhost__ { }`"));
            };
            if vhosts.iter().any(|v: &std::sync::Arc<Vhost>| v.name == name) {
                warnings
                    .push(format!("{}: vhost `{name}` is defined again; the first definition wins (as in SRS)", d.loc));
                continue;
            }
            vhosts.push(std::sync::Arc::new(vhost_from(&g, d, name, chunk_size, &mut warnings)?));
        }
        let cfg = Config {
            source: source.to_string(),
            listen,
            max_connections,
            daemon,
            pid: g.global(&["pid"]).map(|v| v.string()).transpose()?.unwrap_or_else(|| "./objs/srs.pid".into()),
            chunk_size,
            log_tank,
            log_level,
            log_file,
            work_dir: g.global(&["work_dir"]).map(|v| v.string()).transpose()?.unwrap_or_else(|| "./".into()),
            utc_time: g.global(&["utc_time"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            server_id: g.global(&["server_id"]).map(|v| v.string()).transpose()?,
            grace_start_wait: ms(&["grace_start_wait"], 2300)?,
            grace_final_wait: ms(&["grace_final_wait"], 3200)?,
            force_grace_quit: g.global(&["force_grace_quit"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            inotify_auto_reload: g.global(&["inotify_auto_reload"]).map(|v| v.bool()).transpose()?.unwrap_or(false),
            auto_reload_for_docker: g
                .global(&["auto_reload_for_docker"])
                .map(|v| v.bool())
                .transpose()?
                .unwrap_or(true),
            http_api,
            http_server,
            exporter,
            stats,
            srt_server,
            rtc_server,
            vhosts,
            warnings,
        };
        Ok(cfg)
    }

    /// The vhost for a request's host, falling back to `__defaultVhost__` as SRS does.
    pub fn vhost(&self, name: &str) -> Option<&Vhost> {
        self.vhost_shared(name).map(|v| &**v)
    }

    /// [`vhost`](Self::vhost), shared: what a connection keeps for its life (a reference count,
    /// not a copy of every setting per client).
    pub fn vhost_shared(&self, name: &str) -> Option<&std::sync::Arc<Vhost>> {
        self.vhosts.iter().find(|v| v.name == name).or_else(|| self.vhosts.iter().find(|v| v.name == DEFAULT_VHOST))
    }
}

/// Environment variables in arguments. SRS expands them only in `rtc_server.candidate` and
/// `stream_caster.sip.candidate` (`candidate $CANDIDATE;`, where an unset variable means the
/// default, `*`). rsrs expands an argument that is exactly `$NAME` or `${NAME}` in any directive
/// when NAME is set and not empty, so one ConfigMap can serve many pods; an unset one stays
/// literal text, as SRS leaves it, and a directive that needs a number or an address then says so
/// at its line. Nothing is expanded inside a longer word (`rtmp://$HOST/live` is literal), so a
/// config SRS reads means the same here.
fn expand_env(dirs: &mut [Directive], env: &Env) {
    for d in dirs {
        for arg in &mut d.args {
            if let Some(value) = env_reference(arg).and_then(|name| env.get(name)).filter(|v| !v.is_empty()) {
                *arg = value.clone();
            }
        }
        if let Some(children) = d.block.as_mut() {
            expand_env(children, env);
        }
    }
}

/// The variable an argument names, when the whole argument is `$NAME` or `${NAME}`.
fn env_reference(arg: &str) -> Option<&str> {
    let name = match arg.strip_prefix("${") {
        Some(rest) => rest.strip_suffix('}')?,
        None => arg.strip_prefix('$')?,
    };
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// Largest number a time or ratio directive takes (about 31 years in seconds).
const MAX_NUMBER: f64 = 1e9;

fn vhost_from(
    g: &Getter,
    d: &Directive,
    name: &str,
    global_chunk: u32,
    warnings: &mut Vec<String>,
) -> Result<Vhost, ConfigError> {
    let b = |p: &[&str], default: bool| -> Result<bool, ConfigError> {
        Ok(g.vhost(d, p).map(|v| v.bool()).transpose()?.unwrap_or(default))
    };
    let ms = |p: &[&str], default: f64| -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs_f64(g.vhost(d, p).map(|v| v.f64()).transpose()?.unwrap_or(default) / 1000.0))
    };
    let secs = |p: &[&str], default: f64| -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs_f64(g.vhost(d, p).map(|v| v.f64()).transpose()?.unwrap_or(default)))
    };
    let min_latency = b(&["min_latency"], false)?;
    let chunk_size = g.vhost(d, &["chunk_size"]).map(|v| v.u32()).transpose()?.unwrap_or(global_chunk);
    if !(128..=65536).contains(&chunk_size) {
        warnings.push(format!("vhost {name}: chunk_size {chunk_size} is outside 128..=65536; clients may reject it"));
    }
    let time_jitter = match g.vhost(d, &["play", "time_jitter"]) {
        None => TimeJitter::Full,
        Some(v) => match v.str()? {
            "full" => TimeJitter::Full,
            "zero" => TimeJitter::Zero,
            "off" => TimeJitter::Off,
            other => return Err(v.err(format!("must be full, zero or off, not `{other}`"))),
        },
    };
    let mut remux = HttpRemux {
        enabled: b(&["http_remux", "enabled"], false)?,
        mount: g
            .vhost(d, &["http_remux", "mount"])
            .map(|v| v.string())
            .transpose()?
            .unwrap_or_else(|| "[vhost]/[app]/[stream].flv".into()),
        drop_if_not_match: b(&["http_remux", "drop_if_not_match"], true)?,
        has_audio: b(&["http_remux", "has_audio"], true)?,
        has_video: b(&["http_remux", "has_video"], true)?,
        guess_has_av: b(&["http_remux", "guess_has_av"], true)?,
    };
    if remux.enabled && !remux.mount.ends_with(".flv") {
        warnings.push(format!(
            "vhost {name}: http_remux mount `{}`: only .flv mounts are implemented by rsrs yet; HTTP remux is off for this vhost",
            remux.mount
        ));
        remux.enabled = false;
    }
    let mode = g.vhost(d, &["cluster", "mode"]).map(|v| v.string()).transpose()?.unwrap_or_else(|| "local".into());
    if mode != "local" && mode != "remote" {
        return Err(g
            .vhost(d, &["cluster", "mode"])
            .map(|v| v.err(format!("must be local or remote, not `{mode}`")))
            .unwrap_or_else(|| ConfigError::plain("bad mode")));
    }
    let list = |p: &[&str]| -> Vec<String> { g.vhost(d, p).map(|v| v.args).unwrap_or_default() };
    let cluster = Cluster {
        edge: mode == "remote",
        origins: list(&["cluster", "origin"]),
        token_traverse: b(&["cluster", "token_traverse"], false)?,
        vhost: g.vhost(d, &["cluster", "vhost"]).map(|v| v.string()).transpose()?.unwrap_or_else(|| "[vhost]".into()),
        debug_srs_upnode: b(&["cluster", "debug_srs_upnode"], true)?,
        origin_cluster: b(&["cluster", "origin_cluster"], false)?,
        coworkers: list(&["cluster", "coworkers"]),
        protocol: g
            .vhost(d, &["cluster", "protocol"])
            .map(|v| v.string())
            .transpose()?
            .unwrap_or_else(|| "rtmp".into()),
        follow_client: b(&["cluster", "follow_client"], false)?,
    };
    if cluster.edge && cluster.origins.is_empty() {
        return Err(ConfigError::at(
            &d.loc,
            "vhost.cluster",
            format!("vhost {name}: mode remote needs at least one `origin`"),
        ));
    }
    if cluster.edge && cluster.protocol != "rtmp" {
        warnings.push(format!(
            "vhost {name}: cluster.protocol {} is not implemented by rsrs yet; the edge pulls over RTMP",
            cluster.protocol
        ));
    }
    if cluster.follow_client {
        warnings.push(format!(
            "vhost {name}: cluster.follow_client is not implemented by rsrs yet; the edge pulls over RTMP"
        ));
    }
    // Directives the schema accepts whose setting rsrs does not honour as SRS does: said at load
    // (and by `rsrs -t`) with their file:line, never silently ignored.
    type Differs<'a> = (&'a [&'a str], fn(&Val) -> bool, &'a str);
    let differs: [Differs<'_>; 8] = [
        (&["tcp_nodelay"], |v| v.bool().is_ok_and(|on| !on), "rsrs always sets TCP_NODELAY on RTMP connections; `tcp_nodelay off` has no effect"),
        (&["play", "queue_length"], |_| true, "rsrs bounds a player by its stream's ring (512 messages, about 6 s), not by queue_length: a player further behind skips to the next keyframe"),
        (&["play", "mw_msgs"], |_| true, "rsrs merges a player's writes by mw_latency alone; mw_msgs has no effect"),
        (&["http_remux", "has_audio"], |v| v.bool().is_ok_and(|on| !on), "rsrs declares in the FLV header the tracks the stream carries; has_audio has no effect"),
        (&["http_remux", "has_video"], |v| v.bool().is_ok_and(|on| !on), "rsrs declares in the FLV header the tracks the stream carries; has_video has no effect"),
        (&["http_remux", "guess_has_av"], |v| v.bool().is_ok_and(|on| !on), "rsrs always takes the FLV header's tracks from the stream; guess_has_av off has no effect"),
        (&["http_remux", "drop_if_not_match"], |v| v.bool().is_ok_and(|on| on), "rsrs sends every track the stream carries; drop_if_not_match has no effect"),
        (&["cluster", "vhost"], |_| true, "cluster.vhost is not implemented by rsrs yet: the edge asks its origins for this vhost"),
    ];
    for (path, applies, what) in differs {
        if let Some(v) = g.vhost(d, path).filter(applies) {
            warnings.push(v.err(format!("vhost {name}: {what}")).to_string());
        }
    }
    let f = |p: &[&str], default: f64| -> Result<f64, ConfigError> {
        Ok(g.vhost(d, p).map(|v| v.f64()).transpose()?.unwrap_or(default))
    };
    let text = |p: &[&str], default: &str| -> Result<String, ConfigError> {
        Ok(g.vhost(d, p).map(|v| v.string()).transpose()?.unwrap_or_else(|| default.to_string()))
    };
    let on_error = match text(&["hls", "hls_on_error"], "continue")?.as_str() {
        "continue" => HlsOnError::Continue,
        "ignore" => HlsOnError::Ignore,
        "disconnect" => HlsOnError::Disconnect,
        other => {
            return Err(g
                .vhost(d, &["hls", "hls_on_error"])
                .map(|v| v.err(format!("must be continue, ignore or disconnect, not `{other}`")))
                .unwrap_or_else(|| ConfigError::plain("bad hls_on_error")))
        }
    };
    let hls = Hls {
        enabled: b(&["hls", "enabled"], false)?,
        fragment: f(&["hls", "hls_fragment"], 10.0)?,
        td_ratio: f(&["hls", "hls_td_ratio"], 1.0)?,
        aof_ratio: f(&["hls", "hls_aof_ratio"], 2.1)?,
        window: f(&["hls", "hls_window"], 60.0)?,
        on_error,
        path: text(&["hls", "hls_path"], "./objs/nginx/html")?,
        m3u8_file: text(&["hls", "hls_m3u8_file"], "[app]/[stream].m3u8")?,
        ts_file: text(&["hls", "hls_ts_file"], "[app]/[stream]-[seq].ts")?,
        entry_prefix: text(&["hls", "hls_entry_prefix"], "")?,
        cleanup: b(&["hls", "hls_cleanup"], true)?,
        dispose: f(&["hls", "hls_dispose"], 120.0)?,
        wait_keyframe: b(&["hls", "hls_wait_keyframe"], true)?,
        ctx: b(&["hls", "hls_ctx"], true)?,
        ts_ctx: b(&["hls", "hls_ts_ctx"], true)?,
        use_fmp4: b(&["hls", "hls_use_fmp4"], false)?,
        fmp4_file: text(&["hls", "hls_fmp4_file"], "[app]/[stream]-[seq].m4s")?,
        init_file: text(&["hls", "hls_init_file"], "[app]/[stream]/init.mp4")?,
        low_latency: b(&["hls", "hls_low_latency"], false)?,
        part_duration: f(&["hls", "hls_part_duration"], 0.5)?,
    };
    if hls.low_latency && !(0.1..=hls.fragment).contains(&hls.part_duration) {
        return Err(g
            .vhost(d, &["hls", "hls_part_duration"])
            .map(|v| v.err(format!("must be from 0.1 to hls_fragment ({}) seconds", hls.fragment)))
            .unwrap_or_else(|| ConfigError::plain("hls_part_duration out of range")));
    }
    if hls.fragment <= 0.0 {
        return Err(g
            .vhost(d, &["hls", "hls_fragment"])
            .map(|v| v.err("must be greater than 0"))
            .unwrap_or_else(|| ConfigError::plain("hls_fragment must be > 0")));
    }
    let plan = match text(&["dvr", "dvr_plan"], "session")?.as_str() {
        "session" => DvrPlan::Session,
        "segment" => DvrPlan::Segment,
        other => {
            return Err(g
                .vhost(d, &["dvr", "dvr_plan"])
                .map(|v| v.err(format!("must be session or segment, not `{other}`")))
                .unwrap_or_else(|| ConfigError::plain("bad dvr_plan")))
        }
    };
    let mut dvr_path = text(&["dvr", "dvr_path"], "./objs/nginx/html/[app]/[stream].[timestamp].flv")?;
    // A path ending in .mp4 records fragmented MP4, as SRS picks the format by the extension.
    if !dvr_path.ends_with(".flv") && !dvr_path.ends_with(".mp4") {
        // SRS 1 form: a directory.
        dvr_path = format!("{}/[stream].[timestamp].flv", dvr_path.trim_end_matches('/'));
    }
    let access = crate::access::access_from(g, d, name, warnings)?;
    if hls.enabled && !hls.ctx && access.restricts(crate::Action::Play) {
        let at = g.vhost(d, &["hls", "hls_ctx"]);
        let msg = format!(
            "vhost {name}: `hls_ctx off` serves HLS as plain files, which cannot keep out the players that \
             security, refer, token or on_play refuse; turn hls_ctx on or lift the play restriction"
        );
        return Err(at.map(|v| v.err(msg.clone())).unwrap_or_else(|| ConfigError::plain(msg)));
    }
    if let Some(v) = g.vhost(d, &["hls", "hls_keys"]).filter(|v| v.bool().unwrap_or(true)) {
        return Err(v.err(format!(
            "vhost {name}: HLS encryption (hls_keys) is not implemented by rsrs yet; segments would be written \
             in the clear, so the config is refused"
        )));
    }
    let srt = VhostSrt { enabled: b(&["srt", "enabled"], false)? };
    let rtc = VhostRtc { enabled: b(&["rtc", "enabled"], false)?, rtmp_to_rtc: b(&["rtc", "rtmp_to_rtc"], false)? };
    if let Some(v) = g.vhost(d, &["srt", "srt_to_rtmp"]).filter(|v| !v.bool().unwrap_or(true)) {
        warnings.push(format!(
            "{}: vhost {name}: `srt_to_rtmp off` has no effect in rsrs: a stream published over SRT plays over \
             every protocol, as with srt_to_rtmp on",
            v.location()
        ));
    }
    let dvr = Dvr {
        enabled: b(&["dvr", "enabled"], false)?,
        apply: g.vhost(d, &["dvr", "dvr_apply"]).map(|v| v.args).unwrap_or_else(|| vec!["all".into()]),
        plan,
        path: dvr_path,
        duration: g.vhost(d, &["dvr", "dvr_duration"]).map(|v| v.f64()).transpose()?.map_or(30, |v| v as u64).max(1),
        wait_keyframe: b(&["dvr", "dvr_wait_keyframe"], true)?,
    };
    Ok(Vhost {
        name: name.to_string(),
        enabled: b(&["enabled"], true)?,
        chunk_size,
        min_latency,
        tcp_nodelay: b(&["tcp_nodelay"], false)?,
        in_ack_size: g.vhost(d, &["in_ack_size"]).map(|v| v.u32()).transpose()?.unwrap_or(0),
        out_ack_size: g.vhost(d, &["out_ack_size"]).map(|v| v.u32()).transpose()?.unwrap_or(2_500_000),
        play: Play {
            gop_cache: b(&["play", "gop_cache"], true)?,
            gop_cache_max_frames: g
                .vhost(d, &["play", "gop_cache_max_frames"])
                .map(|v| v.u32())
                .transpose()?
                .unwrap_or(2500) as usize,
            queue_length: secs(&["play", "queue_length"], 30.0)?,
            mw_latency: ms(&["play", "mw_latency"], if min_latency { 0.0 } else { 350.0 })?,
            mw_msgs: (g.vhost(d, &["play", "mw_msgs"]).map(|v| v.u32()).transpose()?.unwrap_or(if min_latency {
                0
            } else {
                8
            }) as usize)
                .min(128),
            time_jitter,
        },
        publish: Publish {
            firstpkt_timeout: ms(&["publish", "firstpkt_timeout"], 20000.0)?,
            normal_timeout: ms(&["publish", "normal_timeout"], 5000.0)?,
            // `mr_latency` is checked even while `mr` is off, so a typo fails at its line now
            // rather than when someone turns merged reads on.
            merged_read: {
                let latency = ms(&["publish", "mr_latency"], 350.0)?;
                (b(&["publish", "mr"], false)? && !min_latency && !latency.is_zero()).then_some(latency)
            },
        },
        http_remux: remux,
        cluster,
        hls,
        dvr,
        srt,
        rtc,
        access,
    })
}

fn srt_server_from(g: &Getter) -> Result<SrtServer, ConfigError> {
    let num = |key: &str, default: u32| -> Result<u32, ConfigError> {
        Ok(g.global(&["srt_server", key]).map(|v| v.u32()).transpose()?.unwrap_or(default))
    };
    let flag = |key: &str, default: bool| -> Result<bool, ConfigError> {
        Ok(g.global(&["srt_server", key]).map(|v| v.bool()).transpose()?.unwrap_or(default))
    };
    let maxbw = match g.global(&["srt_server", "maxbw"]) {
        None => -1,
        Some(v) => {
            let s = v.str()?;
            s.parse::<i64>().ok().filter(|n| *n >= -1).ok_or_else(|| {
                v.err(format!("must be -1 (no limit), 0 (relative to the input) or bytes per second, not `{s}`"))
            })?
        }
    };
    let passphrase = g.global(&["srt_server", "passphrase"]).map(|v| v.secret()).transpose()?.unwrap_or_default();
    if !passphrase.is_empty() && !(10..=79).contains(&passphrase.len()) {
        let v = g.global(&["srt_server", "passphrase"]).expect("present");
        return Err(v.err(format!("must be 10 to 79 characters (SRT's rule), not {}", passphrase.len())));
    }
    let pbkeylen = num("pbkeylen", 0)?;
    if ![0, 16, 24, 32].contains(&pbkeylen) {
        let v = g.global(&["srt_server", "pbkeylen"]).expect("present");
        return Err(v.err(format!("must be 16, 24 or 32 (bytes of AES key), or 0 for the caller's, not {pbkeylen}")));
    }
    Ok(SrtServer {
        enabled: flag("enabled", false)?,
        listen: g
            .global(&["srt_server", "listen"])
            .map(|v| v.endpoint())
            .transpose()?
            .unwrap_or(Endpoint::parse("10080").expect("valid")),
        latency_ms: num("latency", 120)?,
        recv_latency_ms: num("recvlatency", 120)?,
        peer_latency_ms: num("peerlatency", 0)?,
        maxbw,
        mss: num("mss", 1500)?,
        connect_timeout_ms: num("connect_timeout", 3000)?,
        peer_idle_timeout_ms: num("peer_idle_timeout", 10000)?,
        sendbuf: num("sendbuf", 8192 * (1500 - 28))?,
        recvbuf: num("recvbuf", 8192 * (1500 - 28))?,
        payload_size: num("payloadsize", 1316)?,
        tsbpd: flag("tsbpdmode", true)?,
        tlpktdrop: flag("tlpktdrop", true)?,
        passphrase,
        pbkeylen,
        default_app: g
            .global(&["srt_server", "default_app"])
            .map(|v| v.string())
            .transpose()?
            .unwrap_or_else(|| "live".into()),
    })
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    File(Location, String),
    Env(String),
}

/// One directive's arguments with their origin.
#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub(crate) args: Vec<String>,
    origin: Origin,
}

impl Val {
    pub(crate) fn err(&self, msg: impl Into<String>) -> ConfigError {
        match &self.origin {
            Origin::File(loc, path) => ConfigError::at(loc, path, msg),
            Origin::Env(var) => ConfigError::env(var, msg),
        }
    }

    /// Where the value was written, for a warning.
    pub(crate) fn location(&self) -> String {
        match &self.origin {
            Origin::File(loc, _) => loc.to_string(),
            Origin::Env(var) => format!("environment variable {var}"),
        }
    }

    pub(crate) fn str(&self) -> Result<&str, ConfigError> {
        self.args.first().map(|s| s.as_str()).ok_or_else(|| self.err("needs a value"))
    }

    pub(crate) fn string(&self) -> Result<String, ConfigError> {
        self.str().map(str::to_string)
    }

    /// A password, key or secret: `$NAME` left unexpanded (NAME unset) is an error, never the
    /// literal text, which anyone reading the config would know.
    pub(crate) fn secret(&self) -> Result<String, ConfigError> {
        let s = self.str()?;
        match env_reference(s) {
            Some(name) => Err(self.err(format!("names environment variable {name}, which is not set or empty"))),
            None => Ok(s.to_string()),
        }
    }

    pub(crate) fn bool(&self) -> Result<bool, ConfigError> {
        match self.str()? {
            "on" => Ok(true),
            "off" => Ok(false),
            other => Err(self.err(format!("must be on or off, not `{other}`"))),
        }
    }

    pub(crate) fn u32(&self) -> Result<u32, ConfigError> {
        let s = self.str()?;
        s.parse::<u32>().map_err(|_| self.err(format!("must be a whole number from 0 to 4294967295, not `{s}`")))
    }

    /// A non-negative number, at most [`MAX_NUMBER`]: times built from it (seconds or
    /// milliseconds) must stay far from overflowing a clock.
    pub(crate) fn f64(&self) -> Result<f64, ConfigError> {
        let s = self.str()?;
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && (0.0..=MAX_NUMBER).contains(&v) => Ok(v),
            _ => Err(self.err(format!("must be a non-negative number up to {MAX_NUMBER}, not `{s}`"))),
        }
    }

    fn endpoint(&self) -> Result<Endpoint, ConfigError> {
        Endpoint::parse(self.str()?).map_err(|e| self.err(e.to_string()))
    }
}

pub(crate) struct Getter<'a> {
    env: &'a Env,
    root: &'a [Directive],
}

impl Getter<'_> {
    fn env_val(&self, var: &str) -> Option<Val> {
        let v = self.env.get(var).filter(|v| !v.is_empty())?;
        Some(Val { args: v.split_whitespace().map(str::to_string).collect(), origin: Origin::Env(var.to_string()) })
    }

    /// Log directives: `SRS_SRS_LOG_X` and the short `SRS_LOG_X` both override the file.
    fn log(&self, name: &str) -> Option<Val> {
        let short = format!("SRS_{}", name.trim_start_matches("srs_").to_uppercase());
        self.global(&[name])
            .filter(|v| matches!(v.origin, Origin::Env(_)))
            .or_else(|| self.env_val(&short))
            .or_else(|| self.global(&[name]))
    }

    /// A global directive by path; `SRS_<PATH>` in the environment wins, as in SRS.
    fn global(&self, path: &[&str]) -> Option<Val> {
        let var = format!("SRS_{}", path.join("_").to_uppercase());
        if let Some(v) = self.env_val(&var) {
            return Some(v);
        }
        find(self.root, path)
    }

    /// A vhost directive by path; `SRS_VHOST_<PATH>` applies to every vhost, as in SRS.
    pub(crate) fn vhost(&self, vhost: &Directive, path: &[&str]) -> Option<Val> {
        let var = format!("SRS_VHOST_{}", path.join("_").to_uppercase());
        if let Some(v) = self.env_val(&var) {
            return Some(v);
        }
        find(vhost.children(), path).map(|v| match v.origin {
            Origin::File(loc, p) => Val { args: v.args, origin: Origin::File(loc, format!("vhost.{p}")) },
            o => Val { args: v.args, origin: o },
        })
    }
}

fn find(dirs: &[Directive], path: &[&str]) -> Option<Val> {
    let (first, rest) = path.split_first()?;
    let d = dirs.iter().find(|d| d.name == *first)?;
    if rest.is_empty() {
        return Some(Val { args: d.args.clone(), origin: Origin::File(d.loc.clone(), path.join(".")) });
    }
    let v = find(d.children(), rest)?;
    // Keep the full dotted path in the origin so errors name e.g. `http_api.listen`.
    Some(match v.origin {
        Origin::File(loc, _) => Val { args: v.args, origin: Origin::File(loc, path.join(".")) },
        o => Val { args: v.args, origin: o },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn builtin_default_matches_srs_docker_default() {
        let c = Config::builtin(&Env::new()).unwrap();
        assert_eq!(c.listen, vec![Endpoint::parse("1935").unwrap()]);
        assert!(c.http_api.enabled && c.http_server.enabled);
        assert_eq!(c.http_api.listen.0.port(), 1985);
        assert_eq!(c.http_server.listen.0.port(), 8080);
        assert_eq!(c.http_server.dir, "./objs/nginx/html");
        let v = c.vhost("anything.example").unwrap();
        assert_eq!(v.name, DEFAULT_VHOST);
        assert!(v.http_remux.enabled);
        assert_eq!(v.http_remux.mount, "[vhost]/[app]/[stream].flv");
        assert_eq!(c.log_tank, LogTank::Console);
        assert!(!c.daemon);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn srs_defaults_when_absent() {
        let c = Config::load_str("listen 1935;\nvhost v {}\n", "t", &Env::new()).unwrap();
        assert_eq!(c.max_connections, 1000);
        assert!(c.daemon);
        assert_eq!(c.pid, "./objs/srs.pid");
        assert_eq!(c.log_tank, LogTank::File);
        assert_eq!(c.log_file, "./objs/srs.log");
        assert_eq!(c.grace_start_wait, Duration::from_millis(2300));
        assert_eq!(c.grace_final_wait, Duration::from_millis(3200));
        assert!(!c.http_api.enabled && !c.http_server.enabled);
        let v = &c.vhosts[0];
        assert_eq!(v.chunk_size, 60000);
        assert_eq!(v.out_ack_size, 2_500_000);
        assert_eq!(v.play.queue_length, Duration::from_secs(30));
        assert_eq!(v.play.mw_latency, Duration::from_millis(350));
        assert_eq!(v.play.gop_cache_max_frames, 2500);
        assert_eq!(v.publish.firstpkt_timeout, Duration::from_secs(20));
        assert_eq!(v.publish.normal_timeout, Duration::from_secs(5));
        assert_eq!(v.publish.merged_read, None);
        assert!(c.vhost("other").is_none(), "no default vhost, no fallback");
    }

    #[test]
    fn env_overrides_named_as_srs() {
        let e = env(&[
            ("SRS_LISTEN", "1936 127.0.0.1:1937"),
            ("SRS_HTTP_API_ENABLED", "off"),
            ("SRS_HTTP_SERVER_LISTEN", "9090"),
            ("SRS_VHOST_HTTP_REMUX_ENABLED", "off"),
            ("SRS_VHOST_PLAY_GOP_CACHE", "off"),
            ("SRS_LOG_TANK", "file"),
            ("SRS_MAX_CONNECTIONS", ""),
        ]);
        let c = Config::builtin(&e).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.listen[1].to_string(), "127.0.0.1:1937");
        assert!(!c.http_api.enabled);
        assert_eq!(c.http_server.listen.0.port(), 9090);
        assert!(!c.vhosts[0].http_remux.enabled);
        assert!(!c.vhosts[0].play.gop_cache);
        assert_eq!(c.log_tank, LogTank::File, "SRS_LOG_TANK overrides the file");
        let c = Config::builtin(&env(&[("SRS_SRS_LOG_TANK", "file")])).unwrap();
        assert_eq!(c.log_tank, LogTank::File);
        assert_eq!(c.max_connections, 1000, "empty env values are ignored");
        let e = Config::builtin(&env(&[("SRS_HTTP_API_ENABLED", "yes")])).unwrap_err();
        assert_eq!(e.to_string(), "environment variable SRS_HTTP_API_ENABLED: must be on or off, not `yes`");
    }

    #[test]
    fn env_only_mode() {
        let c = Config::from_env_only(&env(&[("SRS_LISTEN", "1935"), ("SRS_HTTP_API_ENABLED", "on")])).unwrap();
        assert_eq!(c.listen.len(), 1);
        assert!(c.http_api.enabled);
        assert!(!c.daemon);
        assert_eq!(c.log_tank, LogTank::Console);
        assert_eq!(c.vhosts[0].name, DEFAULT_VHOST);
        let c = Config::from_env_only(&Env::new()).unwrap();
        assert!(c.listen.is_empty(), "no RTMP listener without SRS_LISTEN");
    }

    #[test]
    fn absurd_times_are_errors_not_panics() {
        // Found by the config_env fuzz target: a 44-digit queue_length overflowed Duration.
        let mut env = Env::new();
        env.insert("SRS_VHOST_PLAY_QUEUE_LENGTH".into(), "4".repeat(44));
        let e = Config::from_env_only(&env).unwrap_err();
        assert!(e.to_string().contains("must be a non-negative number up to"), "{e}");
        for text in [
            "listen 1935;\nvhost v { play { mw_latency 1e300; } }\n",
            "listen 1935;\nvhost v { hls { enabled on; hls_dispose 1e20; } }\n",
            "listen 1935;\nvhost v { dvr { enabled on; dvr_duration 99999999999999999999; } }\n",
        ] {
            assert!(Config::load_str(text, "t", &Env::new()).is_err(), "{text}");
        }
    }

    #[test]
    fn accepted_but_unhonoured_settings_are_said_with_their_line() {
        let text = "listen 1935;\nvhost v {\n  tcp_nodelay off;\n  play { queue_length 10; mw_msgs 8; }\n  \
                    http_remux { enabled on; has_audio off; }\n}\n";
        let c = Config::load_str(text, "srs.conf", &Env::new()).unwrap();
        let w = c.warnings.join("\n");
        assert!(w.contains("srs.conf:3: directive `vhost.tcp_nodelay`"), "{w}");
        assert!(w.contains("srs.conf:4: directive `vhost.play.queue_length`"), "{w}");
        assert!(w.contains("vhost.play.mw_msgs"), "{w}");
        assert!(w.contains("srs.conf:5: directive `vhost.http_remux.has_audio`"), "{w}");
        assert_eq!(c.warnings.len(), 4, "{w}");
        // What rsrs does anyway is not warned about.
        let c = Config::load_str("listen 1935;\nvhost v { tcp_nodelay on; }\n", "t", &Env::new()).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn errors_name_file_line_and_directive() {
        let e = Config::load_str("listen 1935;\nvhost v {\n  play { gop_cach on; }\n}\n", "srs.conf", &Env::new())
            .unwrap_err();
        assert_eq!(e.to_string(), "srs.conf:3: directive `vhost.play.gop_cach`: unknown directive in `play`");
        let e = Config::load_str("listen 1935;\nlisten_x 1;\n", "srs.conf", &Env::new()).unwrap_err();
        assert_eq!(e.to_string(), "srs.conf:2: directive `listen_x`: unknown directive at top level");
        let e = Config::load_str("listen 19x5;\n", "srs.conf", &Env::new()).unwrap_err();
        assert!(e.to_string().starts_with("srs.conf:1: directive `listen`: invalid listen endpoint `19x5`"), "{e}");
        let e = Config::load_str("listen 1935;\nhttp_api {\n enabled yes;\n}\n", "srs.conf", &Env::new()).unwrap_err();
        assert_eq!(e.to_string(), "srs.conf:3: directive `http_api.enabled`: must be on or off, not `yes`");
        // SRS 7 serves without RTMP; rsrs says so.
        let c = Config::load_str("max_connections 10;\n", "srs.conf", &Env::new()).unwrap();
        assert!(c.listen.is_empty() && c.warnings.iter().any(|w| w.contains("RTMP is not served")), "{:?}", c.warnings);
        let e = Config::load_str("listen 1935;\nmax_connections 0;\n", "srs.conf", &Env::new()).unwrap_err();
        assert!(e.to_string().contains("srs.conf:2"), "{e}");
        let e = Config::load_str("listen 1935;\nis_full on;\n", "srs.conf", &Env::new()).unwrap_err();
        assert!(e.to_string().contains("full.conf"));
        let e = Config::load_str("listen 1935;\nvhost v { cluster { mode remote; } }\n", "srs.conf", &Env::new())
            .unwrap_err();
        assert!(e.to_string().contains("needs at least one `origin`"), "{e}");
        let e = Config::load_str("listen 1935;\nvhost v { play { time_jitter fast; } }\n", "srs.conf", &Env::new())
            .unwrap_err();
        assert!(e.to_string().contains("`vhost.play.time_jitter`"), "{e}");
        let e = Config::load_str("listen 1935;\nhttp_api on;\n", "srs.conf", &Env::new()).unwrap_err();
        assert!(e.to_string().contains("must be a { } block"), "{e}");
    }

    #[test]
    fn unimplemented_directives_warn() {
        let c = Config::load_str(
            "listen 1935;\ngrace_start_wait 700;\nvhost __defaultVhost__ {\n hls { enabled on; hls_keys off; }\n forward { enabled on; }\n}\n",
            "srs.conf",
            &Env::new(),
        )
        .unwrap();
        assert_eq!(c.grace_start_wait, Duration::from_millis(700));
        assert!(!c.warnings.iter().any(|w| w.contains("grace_start_wait")), "implemented now: {:?}", c.warnings);
        assert!(!c.warnings.iter().any(|w| w.contains("hls_keys")), "switched off: {:?}", c.warnings);
        assert!(!c.warnings.iter().any(|w| w.contains("`vhost.hls`")), "hls itself is implemented: {:?}", c.warnings);
        assert!(c.warnings.iter().any(|w| w.contains("forward")), "{:?}", c.warnings);
        assert!(c.vhosts[0].hls.enabled);
    }

    /// SRS's merged reads: `publish { mr on; mr_latency MS; }`, the legacy `mr { enabled; latency; }`
    /// block, its environment variables, and off in realtime mode (`min_latency on`) as in SRS.
    #[test]
    fn merged_reads_as_srs_configures_them() {
        let load = |vhost: &str, env: &Env| {
            let c = Config::load_str(&format!("listen 1935;\nvhost v {{ {vhost} }}\n"), "t", env).unwrap();
            assert!(!c.warnings.iter().any(|w| w.contains("mr")), "implemented: {:?}", c.warnings);
            c.vhosts[0].publish.merged_read
        };
        let none = Env::new();
        assert_eq!(load("publish { mr on; }", &none), Some(Duration::from_millis(350)));
        assert_eq!(load("publish { mr on; mr_latency 100; }", &none), Some(Duration::from_millis(100)));
        assert_eq!(load("mr { enabled on; latency 200; }", &none), Some(Duration::from_millis(200)));
        assert_eq!(load("publish { mr off; mr_latency 100; }", &none), None);
        assert_eq!(load("publish { mr on; mr_latency 0; }", &none), None);
        assert_eq!(load("min_latency on; publish { mr on; }", &none), None, "realtime mode reads at once");
        assert_eq!(
            load("", &env(&[("SRS_VHOST_PUBLISH_MR", "on"), ("SRS_VHOST_PUBLISH_MR_LATENCY", "50")])),
            Some(Duration::from_millis(50))
        );
        assert!(Config::load_str("listen 1935;\nvhost v { publish { mr maybe; } }\n", "t", &none).is_err());
        assert!(Config::load_str("listen 1935;\nvhost v { publish { mr_latency soon; } }\n", "t", &none).is_err());
    }

    #[test]
    fn legacy_forms_are_transformed() {
        let c = Config::load_str(
            "listen 1935;\nhttp_stream { enabled on; listen 8081; }\nvhost v { gop_cache off; mw_latency 100; publish_normal_timeout 7000; mode remote; origin 127.0.0.1; }\n",
            "t",
            &Env::new(),
        )
        .unwrap();
        assert!(c.http_server.enabled);
        assert_eq!(c.http_server.listen.0.port(), 8081);
        let v = &c.vhosts[0];
        assert!(!v.play.gop_cache);
        assert_eq!(v.play.mw_latency, Duration::from_millis(100));
        assert_eq!(v.publish.normal_timeout, Duration::from_millis(7000));
        assert!(v.cluster.edge);
        assert_eq!(v.cluster.origins, vec!["127.0.0.1"]);
    }

    #[test]
    fn min_latency_changes_merge_defaults() {
        let c = Config::load_str("listen 1935;\nvhost v { min_latency on; }\n", "t", &Env::new()).unwrap();
        assert_eq!(c.vhosts[0].play.mw_latency, Duration::ZERO);
        assert_eq!(c.vhosts[0].play.mw_msgs, 0);
    }

    #[test]
    fn srt_server_and_vhost_srt() {
        let c = Config::load_str("listen 1935;\nvhost __defaultVhost__ { }\n", "t", &Env::new()).unwrap();
        let s = &c.srt_server;
        assert!(!s.enabled);
        assert_eq!((s.listen.0.port(), s.latency_ms, s.recv_latency_ms, s.peer_latency_ms), (10080, 120, 120, 0));
        assert_eq!((s.maxbw, s.mss, s.payload_size, s.tsbpd, s.tlpktdrop), (-1, 1500, 1316, true, true));
        assert!(!c.vhosts[0].srt.enabled);
        let text =
            "listen 1935;\nsrt_server { enabled on; listen 127.0.0.1:10081; recvlatency 1000; maxbw 1000000000;\n\
                    passphrase 0123456789abc; pbkeylen 16; tsbpdmode off; sei_filter off; }\n\
                    vhost __defaultVhost__ { srt { enabled on; srt_to_rtmp off; } }\n";
        let c = Config::load_str(text, "t", &Env::new()).unwrap();
        let s = &c.srt_server;
        assert!(s.enabled && !s.tsbpd && c.vhosts[0].srt.enabled);
        assert_eq!(
            (s.listen.0.to_string().as_str(), s.recv_latency_ms, s.maxbw),
            ("127.0.0.1:10081", 1000, 1_000_000_000)
        );
        assert_eq!((s.passphrase.as_str(), s.pbkeylen), ("0123456789abc", 16));
        assert!(c.warnings.iter().any(|w| w.contains("srt_to_rtmp off")), "{:?}", c.warnings);
        assert!(!c.warnings.iter().any(|w| w.contains("sei_filter")), "off is what rsrs does: {:?}", c.warnings);
        let e = Config::load_str("listen 1935;\nsrt_server { passphrase short; }\n", "t", &Env::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t:2: directive `srt_server.passphrase`: must be 10 to 79 characters (SRT's rule), not 5"
        );
        let e = Config::load_str("listen 1935;\nsrt_server { pbkeylen 20; }\n", "t", &Env::new()).unwrap_err();
        assert!(e.to_string().contains("16, 24 or 32"), "{e}");
        let e = Config::load_str("listen 1935;\nsrt_server { latncy 20; }\n", "t", &Env::new()).unwrap_err();
        assert!(e.to_string().contains("srt_server.latncy"), "{e}");
    }

    #[test]
    fn endpoints() {
        assert_eq!(Endpoint::parse("1935").unwrap().to_string(), "0.0.0.0:1935");
        assert_eq!(Endpoint::parse("127.0.0.2:80").unwrap().to_string(), "127.0.0.2:80");
        assert_eq!(Endpoint::parse("[::1]:1935").unwrap().to_string(), "[::1]:1935");
        assert_eq!(Endpoint::parse(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert!(Endpoint::parse("0").is_err());
        assert!(Endpoint::parse("host:1").is_err());
    }

    #[test]
    fn rtc_server_protocol_and_tcp_as_srs() {
        let load = |body: &str| {
            Config::load_str(&format!("rtc_server {{ enabled on; {body} }}\nlisten 1935;\n"), "t", &Env::new())
        };
        let c = load("").unwrap();
        assert_eq!((c.rtc_server.protocol, c.rtc_server.tcp_enabled), (RtcProtocol::Udp, false));
        let c = load("protocol all; tcp { enabled on; listen 127.0.0.1:8001; }").unwrap();
        assert_eq!(c.rtc_server.protocol, RtcProtocol::All);
        assert!(c.rtc_server.protocol.udp() && c.rtc_server.protocol.tcp());
        assert_eq!(c.rtc_server.tcp_listen.to_string(), "127.0.0.1:8001");
        let e = load("protocol tcp;").unwrap_err().to_string();
        assert!(e.contains("needs the TCP port"), "{e}");
        let e = load("protocol quic; tcp { enabled on; }").unwrap_err().to_string();
        assert!(e.contains("t:1") && e.contains("quic") && e.contains("udp, tcp or all"), "{e}");
        assert!(load("tcp { enabled on; bogus 1; }").is_err());
    }
}
