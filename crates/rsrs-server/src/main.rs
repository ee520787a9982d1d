//! The `rsrs` binary: parse the command line, load and check the config, then serve.

use rsrs_config::{process_env, Config};
use rsrs_server::lifecycle::{self, in_container};
use rsrs_server::{cleanup, cli, logging, server, token_cmd, version};
use std::path::Path;
use std::process::ExitCode;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(|a| a.as_str()) {
        Some("cleanup") => return ExitCode::from(cleanup::main(&args[1..]) as u8),
        Some("token") => return ExitCode::from(token_cmd::main(&args[1..]) as u8),
        _ => {}
    }
    let opts = match cli::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rsrs: {e}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if opts.help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if opts.version {
        println!("{}", version::VERSION);
        return ExitCode::SUCCESS;
    }
    if opts.signature {
        println!("{}", version::signature());
        return ExitCode::SUCCESS;
    }
    let env = process_env();
    let env_only = opts.env_only || env.contains_key("SRS_ENV_ONLY");
    let path = if env_only {
        None
    } else {
        env.get("SRS_CONFIG_FILE").filter(|v| !v.is_empty()).cloned().or(opts.config.clone())
    };
    let path = path.map(|p| cli::config_file_or_sibling(&p));
    let loaded = match (&path, env_only) {
        (_, true) => Config::from_env_only(&env),
        (Some(p), false) => Config::load_file(Path::new(p), &env),
        (None, false) => Config::builtin(&env),
    };
    let cfg = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rsrs: config error: {e}");
            if opts.test {
                eprintln!("rsrs: configuration file {} test failed", path.as_deref().unwrap_or("(built-in)"));
            }
            return ExitCode::from(1);
        }
    };
    if opts.test {
        for w in &cfg.warnings {
            println!("rsrs: warning: {w}");
        }
        println!("rsrs: the configuration file {} syntax is ok", cfg.source);
        println!("rsrs: configuration file {} test is successful", cfg.source);
        return ExitCode::SUCCESS;
    }
    if !cfg.work_dir.is_empty() && cfg.work_dir != "./" {
        if let Err(e) = std::env::set_current_dir(&cfg.work_dir) {
            eprintln!("rsrs: cannot change to work_dir {}: {e}", cfg.work_dir);
            return ExitCode::from(1);
        }
    }
    if cfg.daemon && !in_container() {
        if let Err(e) = daemonize() {
            eprintln!("rsrs: {e}");
            return ExitCode::from(1);
        }
    }
    if let Err(e) = logging::init(&cfg) {
        eprintln!("rsrs: {e}");
        return ExitCode::from(1);
    }
    info!("rsrs {} starting, config: {}, pid {}", version::VERSION, cfg.source, std::process::id());
    for w in &cfg.warnings {
        warn!("config: {w}");
    }
    let _pid = match PidFile::acquire(&cfg.pid) {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            eprintln!("rsrs: {e}");
            return ExitCode::from(1);
        }
    };
    rsrs_server::alloc::tune();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rsrs: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let config_path = path.as_ref().map(std::path::PathBuf::from);
    rt.block_on(async move {
        let srv = server::Server::new(cfg, config_path);
        match lifecycle::run(srv).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("{e}");
                eprintln!("rsrs: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// Why the server could not detach or claim its pid file.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("cannot daemonize: {step} failed: {err}")]
    Daemonize { step: &'static str, err: std::io::Error },
    #[error("cannot {what} {path}: {err}")]
    PidFile { what: &'static str, path: String, err: std::io::Error },
    #[error("pid file {path} is locked: another rsrs (pid {pid}) is running here")]
    PidFileLocked { path: String, pid: String },
}

fn daemonize() -> Result<(), StartError> {
    let failed = |step| StartError::Daemonize { step, err: std::io::Error::last_os_error() };
    // Safety: called before any thread is started (no runtime yet), so fork is sound.
    unsafe {
        match libc::fork() {
            -1 => return Err(failed("fork")),
            0 => {}
            _ => libc::_exit(0),
        }
        if libc::setsid() == -1 {
            return Err(failed("setsid"));
        }
        match libc::fork() {
            -1 => return Err(failed("second fork")),
            0 => {}
            _ => libc::_exit(0),
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
        }
    }
    Ok(())
}

/// The pid file, write-locked for the life of the process so a second instance refuses to start.
struct PidFile {
    _file: std::fs::File,
}

impl PidFile {
    fn acquire(path: &str) -> Result<PidFile, StartError> {
        use std::io::Write;
        use std::os::unix::io::AsRawFd;
        let p = Path::new(path);
        let failed = |what, at: &Path| {
            let at = at.display().to_string();
            move |err| StartError::PidFile { what, path: at, err }
        };
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(failed("create pid directory", dir))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
            .map_err(failed("open pid file", p))?;
        // Safety: flock on a file descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let pid = std::fs::read_to_string(p).unwrap_or_default().trim().to_string();
            return Err(StartError::PidFileLocked { path: path.to_string(), pid });
        }
        f.set_len(0).map_err(failed("write pid file", p))?;
        write!(f, "{}", std::process::id()).map_err(failed("write pid file", p))?;
        Ok(PidFile { _file: f })
    }
}
