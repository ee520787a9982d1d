//! Logging setup: console (containers, `daemon off`) or `srs_log_file` (`srs_log_tank file`),
//! plain text or JSON (`RSRS_LOG_FORMAT=json`). `RUST_LOG` overrides the configured level.

use rsrs_config::{Config, LogTank};
use std::sync::Mutex;
use tracing_subscriber::EnvFilter;

pub fn init(cfg: &Config) -> Result<(), String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log_level));
    let json = std::env::var("RSRS_LOG_FORMAT").map(|v| v == "json").unwrap_or(false);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    match cfg.log_tank {
        LogTank::Console => {
            if json {
                builder.json().with_writer(std::io::stdout).init();
            } else {
                builder.with_writer(std::io::stdout).init();
            }
        }
        LogTank::File => {
            let path = std::path::Path::new(&cfg.log_file);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            let builder = builder.with_ansi(false).with_writer(Mutex::new(file));
            if json {
                builder.json().init();
            } else {
                builder.init();
            }
        }
    }
    Ok(())
}
