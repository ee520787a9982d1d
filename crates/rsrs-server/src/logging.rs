//! Logging setup: console (containers, `daemon off`) or `srs_log_file` (`srs_log_tank file`),
//! plain text or JSON (`RSRS_LOG_FORMAT=json`). `RUST_LOG` overrides the configured level.

use rsrs_config::{Config, LogTank};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::EnvFilter;

/// The log file, swappable so SIGUSR1 can reopen it after logrotate moved it.
static LOG_FILE: OnceLock<(PathBuf, Arc<Mutex<std::fs::File>>)> = OnceLock::new();

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open log file {}: {err}", .path.display())]
    Open { path: PathBuf, err: std::io::Error },
    #[error("cannot create log directory {}: {err}", .path.display())]
    Dir { path: PathBuf, err: std::io::Error },
}

fn open(path: &std::path::Path) -> Result<std::fs::File, LogError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| LogError::Open { path: path.to_path_buf(), err })
}

/// Reopens the log file (SIGUSR1, for log rotation). No-op when logging to the console.
pub fn reopen() {
    if let Some((path, file)) = LOG_FILE.get() {
        match open(path) {
            Ok(f) => {
                *file.lock().unwrap_or_else(|e| e.into_inner()) = f;
                tracing::info!("log file {} reopened", path.display());
            }
            Err(e) => tracing::error!("{e}"),
        }
    }
}

struct LogWriter(Arc<Mutex<std::fs::File>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// Writes each log record as exactly one line: the formatter hands over a whole record per
/// write, and any control character inside it (a CR/LF in a field from the network) is escaped,
/// so no client can forge or split log lines.
struct OneLine<W> {
    inner: W,
    keep_esc: bool,
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write_all(&crate::names::escape_log_record(buf, self.keep_esc))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn init(cfg: &Config) -> Result<(), LogError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log_level));
    let json = std::env::var("RSRS_LOG_FORMAT").map(|v| v == "json").unwrap_or(false);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    match cfg.log_tank {
        LogTank::Console => {
            let make = move || OneLine { inner: std::io::stdout(), keep_esc: ansi };
            if json {
                builder.json().with_writer(make).init();
            } else {
                builder.with_writer(make).init();
            }
        }
        LogTank::File => {
            let path = std::path::Path::new(&cfg.log_file);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|err| LogError::Dir { path: dir.to_path_buf(), err })?;
            }
            let shared = Arc::new(Mutex::new(open(path)?));
            let _ = LOG_FILE.set((path.to_path_buf(), shared.clone()));
            let builder = builder
                .with_ansi(false)
                .with_writer(move || OneLine { inner: LogWriter(shared.clone()), keep_esc: false });
            if json {
                builder.json().init();
            } else {
                builder.init();
            }
        }
    }
    Ok(())
}
