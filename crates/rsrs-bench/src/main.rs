//! `rsrs-bench`: players, publishers and the raw fan-out baseline, bounded in count and time,
//! against loopback addresses only.

use clap::{Parser, Subcommand};
use rsrs_bench::client::Url;
use rsrs_bench::player::{self, PlayerStats, Proto};
use rsrs_bench::report::Report;
use rsrs_bench::{baseline, publisher, sampler, DelayBook};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_PLAYERS: usize = 20_000;
const MAX_SECS: u64 = 900;

#[derive(Parser)]
#[command(name = "rsrs-bench", version, about = "Load generator for live streaming servers (loopback only)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Publishers leave Nagle's algorithm on, as ffmpeg's do (default: off, as OBS and librtmp).
    #[arg(long, global = true)]
    publisher_nagle: bool,
}

#[derive(clap::Args, Clone)]
struct PlayArgs {
    /// Stream to play: rtmp://HOST[:PORT]/APP/STREAM, http://HOST:PORT/APP/STREAM.flv, or tcp://HOST:PORT (raw)
    #[arg(long)]
    url: String,
    #[arg(long, value_enum, default_value = "rtmp")]
    proto: Proto,
    /// Number of players.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Seconds over which players join.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// Seconds of steady load after the ramp (the measurement window).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds each player stays before leaving (0: to the end). With a ramp, players join and
    /// leave at count/ramp per second: churn.
    #[arg(long, default_value_t = 0.0)]
    hold: f64,
    /// Server process to measure (CPU and RSS, including its children). Repeatable.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Seconds between progress lines (0: none).
    #[arg(long, default_value_t = 5.0)]
    interval: f64,
    /// Write the report as JSON to this file ("-" for stdout).
    #[arg(long)]
    json: Option<String>,
    /// Label for the report.
    #[arg(long, default_value = "players")]
    label: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Many players on one stream.
    Play(PlayArgs),
    /// Publish an FLV file in real time, looping, over RTMP.
    Publish {
        #[arg(long)]
        url: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
        /// Number of streams: STREAM-0 .. STREAM-(N-1) when more than one.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Publish with the built-in publisher and play, measuring publish-to-play delay too.
    Run {
        /// Where to publish (RTMP).
        #[arg(long)]
        publish_url: String,
        #[arg(long)]
        file: PathBuf,
        /// Seconds to publish before players join (fills the server's GOP cache).
        #[arg(long, default_value_t = 2.5)]
        warmup: f64,
        #[command(flatten)]
        play: PlayArgs,
    },
    /// Many streams at once (the origin-cluster shape): STREAMS publishers, each stream played by
    /// --count players at --url with `{i}` replaced by the stream's index; per-stream CPU and
    /// RSS, publish-to-play delay, and the streams that stalled.
    Streams {
        /// Where to publish (RTMP): stream i is STREAM-i.
        #[arg(long)]
        publish_url: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value_t = 100)]
        streams: usize,
        /// Seconds over which publishers join.
        #[arg(long, default_value_t = 10.0)]
        publish_ramp: f64,
        /// Seconds to publish after the last publisher joined, before players join.
        #[arg(long, default_value_t = 2.5)]
        warmup: f64,
        #[command(flatten)]
        play: PlayArgs,
    },
    /// The raw fan-out floor: send the file's bytes at its real rate to every client.
    Baseline {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value_t = 350)]
        interval_ms: u64,
        #[arg(long, default_value_t = 60.0)]
        duration: f64,
    },
}

fn main() {
    let cli = Cli::parse();
    if cli.publisher_nagle {
        publisher::leave_nagle_on();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = rt.block_on(async move {
        match cli.cmd {
            Cmd::Play(a) => play(a, None).await,
            Cmd::Publish { url, file, duration, count } => publish_cmd(&url, &file, duration, count).await,
            Cmd::Run { publish_url, file, warmup, play: a } => {
                let tags = match load(&file) {
                    Ok(t) => t,
                    Err(e) => return fail(&e),
                };
                let url = match loopback_url(&publish_url) {
                    Ok(u) => u,
                    Err(e) => return fail(&e),
                };
                let book = Arc::new(DelayBook::default());
                let total = a.ramp + a.duration + warmup + 2.0;
                let end = Instant::now() + secs(total);
                let pb = book.clone();
                let pubtask = tokio::spawn(async move { publisher::run(url, tags, end, Some(pb)).await });
                tokio::time::sleep(secs(warmup)).await;
                if pubtask.is_finished() {
                    return match pubtask.await {
                        Ok(Err(e)) => fail(&format!("publisher: {e}")),
                        _ => fail("publisher stopped early"),
                    };
                }
                let code = play(a, Some(book)).await;
                pubtask.abort();
                code
            }
            Cmd::Streams { publish_url, file, streams, publish_ramp, warmup, play: a } => {
                streams_cmd(&publish_url, &file, streams, publish_ramp, warmup, a).await
            }
            Cmd::Baseline { listen, file, interval_ms, duration } => {
                let tags = match load(&file) {
                    Ok(t) => t,
                    Err(e) => return fail(&e),
                };
                if let Err(e) = loopback_url(&format!("tcp://{listen}")) {
                    return fail(&e);
                }
                let end = Instant::now() + secs(duration);
                match baseline::serve(&listen, tags, Duration::from_millis(interval_ms.max(1)), end).await {
                    Ok(()) => 0,
                    Err(e) => fail(&format!("baseline: {e}")),
                }
            }
        }
    });
    std::process::exit(code);
}

fn fail(e: &str) -> i32 {
    eprintln!("rsrs-bench: {e}");
    1
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, MAX_SECS as f64))
}

fn load(file: &std::path::Path) -> Result<Arc<Vec<rsrs_codec::flv::Tag>>, String> {
    publisher::load_flv(file).map(Arc::new)
}

/// Parses a URL and refuses anything that is not a loopback address: load goes nowhere else.
fn loopback_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| e.to_string())?;
    let ok = match u.host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => u.host == "localhost",
    };
    if !ok {
        return Err(format!("{s}: only loopback addresses (127.0.0.0/8, ::1, localhost) may be loaded"));
    }
    Ok(u)
}

async fn publish_cmd(url: &str, file: &std::path::Path, duration: f64, count: usize) -> i32 {
    let tags = match load(file) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let base = match loopback_url(url) {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };
    let end = Instant::now() + secs(duration);
    let mut tasks = Vec::new();
    for i in 0..count.clamp(1, MAX_PLAYERS) {
        let mut u = base.clone();
        if count > 1 {
            u.stream = format!("{}-{i}", base.stream);
        }
        let tags = tags.clone();
        tasks.push(tokio::spawn(async move { (u.stream.clone(), publisher::run(u, tags, end, None).await) }));
    }
    let mut code = 0;
    for t in tasks {
        match t.await {
            Ok((s, Ok(bytes))) => eprintln!("published {s}: {:.1} MB", bytes as f64 / 1e6),
            Ok((s, Err(e))) => {
                eprintln!("publish {s} failed: {e}");
                code = 1;
            }
            Err(e) => {
                eprintln!("publisher task failed: {e}");
                code = 1;
            }
        }
    }
    code
}

async fn streams_cmd(
    publish_url: &str,
    file: &std::path::Path,
    streams: usize,
    ramp: f64,
    warmup: f64,
    a: PlayArgs,
) -> i32 {
    let tags = match load(file) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let base = match loopback_url(publish_url) {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };
    if !a.url.contains("{i}") {
        return fail("--url must contain {i}, the stream's index");
    }
    if let Err(e) = loopback_url(&a.url.replace("{i}", "0")) {
        return fail(&e);
    }
    let streams = streams.clamp(1, MAX_PLAYERS);
    let per_stream = a.count.clamp(1, MAX_PLAYERS / streams);
    let end = Instant::now() + secs(ramp + warmup + a.ramp + a.duration + 2.0);
    // One delay book per stream: every stream publishes the same file, so frames repeat across
    // streams and only the stream's own publisher may time them.
    let books: Vec<Arc<DelayBook>> = (0..streams).map(|_| Arc::new(DelayBook::default())).collect();
    let before = (!a.server_pids.is_empty()).then(|| sampler::sample(&a.server_pids));
    let t0 = Instant::now();
    let mut publishers = Vec::with_capacity(streams);
    for (i, book) in books.iter().enumerate() {
        let mut u = base.clone();
        u.stream = format!("{}-{i}", base.stream);
        let (tags, book) = (tags.clone(), book.clone());
        let start_at = t0 + secs(ramp * i as f64 / streams as f64);
        publishers.push(tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(start_at)).await;
            publisher::run(u, tags, end, Some(book)).await
        }));
    }
    tokio::time::sleep(secs(ramp + warmup)).await;
    let failed = publishers.iter().filter(|p| p.is_finished()).count();
    if failed > 0 {
        eprintln!("rsrs-bench: {failed} publishers stopped before players joined");
    }
    let mut players = Vec::with_capacity(streams * per_stream);
    for (i, book) in books.iter().enumerate() {
        let url = match loopback_url(&a.url.replace("{i}", &i.to_string())) {
            Ok(u) => u,
            Err(e) => return fail(&e),
        };
        players.extend(std::iter::repeat_n((url, Some(book.clone())), per_stream));
    }
    let code = run_players(&a, players, Some(streams), before).await;
    for p in publishers {
        p.abort();
    }
    code
}

async fn play(a: PlayArgs, book: Option<Arc<DelayBook>>) -> i32 {
    let url = match loopback_url(&a.url) {
        Ok(u) => u,
        Err(e) => return fail(&e),
    };
    let players = vec![(url, book); a.count.clamp(1, MAX_PLAYERS)];
    run_players(&a, players, None, None).await
}

/// Runs the players (each with its URL and, when the bench publishes, its stream's delay book)
/// and reports. With `streams`, players are that many equal groups, one per stream, and `before`
/// is the server's usage before the streams were published.
async fn run_players(
    a: &PlayArgs,
    players: Vec<(Url, Option<Arc<DelayBook>>)>,
    streams: Option<usize>,
    before: Option<sampler::Usage>,
) -> i32 {
    let count = players.len();
    let t0 = Instant::now();
    let window_start = t0 + secs(a.ramp);
    let end = window_start + secs(a.duration);
    let total = Arc::new(AtomicU64::new(0));
    let before = before.or_else(|| (!a.server_pids.is_empty()).then(|| sampler::sample(&a.server_pids)));

    // Window sampler: server usage and delivered bytes at the start and end of steady load.
    let pids = a.server_pids.clone();
    let tot = total.clone();
    let window = tokio::spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(window_start)).await;
        let (u0, b0, g0) = (sampler::sample(&pids), tot.load(Ordering::Relaxed), sampler::sample_self());
        tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await;
        let (u1, b1, g1) = (sampler::sample(&pids), tot.load(Ordering::Relaxed), sampler::sample_self());
        (u0, u1, b1 - b0, g1.cpu_secs - g0.cpu_secs)
    });
    let progress = (a.interval > 0.0).then(|| {
        let tot = total.clone();
        let every = secs(a.interval);
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(every).await;
                let now = tot.load(Ordering::Relaxed);
                eprintln!(
                    "[{:>5.1}s] received {:.1} MB ({:.1} Mb/s)",
                    t0.elapsed().as_secs_f64(),
                    now as f64 / 1e6,
                    (now - last) as f64 * 8.0 / 1e6 / every.as_secs_f64()
                );
                last = now;
            }
        })
    });
    let mut tasks = Vec::with_capacity(count);
    for (i, (u, b)) in players.into_iter().enumerate() {
        let start_at = t0 + secs(a.ramp * i as f64 / count as f64);
        let leave = if a.hold > 0.0 { (start_at + secs(a.hold)).min(end) } else { end };
        let (tot, proto) = (total.clone(), a.proto);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(start_at)).await;
            player::run(proto, u, leave, tot, b).await
        }));
    }
    let mut stats: Vec<PlayerStats> = Vec::with_capacity(count);
    for t in tasks {
        stats.push(
            t.await.unwrap_or_else(|e| PlayerStats {
                error: Some(format!("player task failed: {e}")),
                ..Default::default()
            }),
        );
    }
    if let Some(p) = progress {
        p.abort();
    }
    let (u0, u1, window_bytes, loadgen_cpu) = window.await.unwrap_or_default();
    let measured = !a.server_pids.is_empty();
    let mut r = Report::build(
        &a.label,
        &stats,
        before,
        measured.then_some((u0, u1)),
        window_bytes,
        a.duration,
        a.proto == Proto::Raw,
    );
    r.loadgen_cpu_secs = Some(loadgen_cpu);
    if let Some(n) = streams.filter(|&n| n > 0) {
        let stalled = stats
            .chunks(count.div_ceil(n).max(1))
            .filter(|g| g.iter().any(|p| p.error.is_some() || p.stalls > 0 || !p.kept_up || p.video_frames == 0))
            .count();
        r.per_stream(n, stalled);
    }
    print!("{}", r.table());
    if let Some(j) = &a.json {
        let text = serde_json::to_string_pretty(&r).unwrap_or_default();
        if j == "-" {
            println!("{text}");
        } else if let Err(e) = std::fs::write(j, text) {
            return fail(&format!("cannot write {j}: {e}"));
        }
    }
    0
}
