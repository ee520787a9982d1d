//! Command line, compatible with SRS where the guide and its tooling rely on it:
//! `-c FILE` (also `-cFILE`, `-tc FILE`), `-t`, `-v`/`-V`/`--version`, `-g`, `-e`, `-h`.
//! Unlike SRS, no arguments at all runs the built-in default config instead of printing help.

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub config: Option<String>,
    pub test: bool,
    pub version: bool,
    pub signature: bool,
    pub env_only: bool,
    pub help: bool,
}

pub const USAGE: &str = "\
Usage: rsrs [-h] [-v] [-g] [-t] [-e] [-c FILE]
       rsrs cleanup --dir DIR --older-than AGE [--dry-run]   (HLS/DVR leftovers; see rsrs cleanup -h)
       rsrs token --stream APP/STREAM --action publish|play --expires AGE ...   (signed URLs; rsrs token -h)
  -c FILE   run with the SRS-format config FILE (default: the built-in default config)
  -t        check the config, print the verdict, exit 0 (ok) or 1 (error)
  -e        env-only mode: no config file, everything from SRS_* environment variables
  -v, -V    print the version and exit
  -g        print the server signature and exit
  -h        print this help
Environment: SRS_CONFIG_FILE overrides -c; SRS_<DIRECTIVE_PATH> overrides a directive
(e.g. SRS_LISTEN, SRS_HTTP_API_ENABLED, SRS_VHOST_HLS_ENABLED); RUST_LOG overrides the log
level; RSRS_LOG_FORMAT=json logs JSON lines.
";

/// SRS images run `-c conf/docker.conf`, while Kubernetes examples mount a ConfigMap holding
/// `srs.conf` over `conf/` (hiding `docker.conf`), or the other way round. When the named file is
/// missing and its sibling exists, use the sibling (and say so), so either layout starts.
pub fn config_file_or_sibling(path: &str) -> String {
    let p = std::path::Path::new(path);
    if p.exists() {
        return path.to_string();
    }
    let sibling = match p.file_name().and_then(|n| n.to_str()) {
        Some("docker.conf") => p.with_file_name("srs.conf"),
        Some("srs.conf") => p.with_file_name("docker.conf"),
        _ => return path.to_string(),
    };
    if sibling.exists() {
        eprintln!("rsrs: {path} does not exist; using {} (SRS images use either name)", sibling.display());
        return sibling.display().to_string();
    }
    path.to_string()
}

/// A command line rsrs cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("option -c needs a config file")]
    MissingConfigFile,
    #[error("invalid option -{0}")]
    InvalidOption(char),
    #[error("unexpected argument `{0}`")]
    UnexpectedArgument(String),
}

pub fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        match a.as_str() {
            "--help" => o.help = true,
            "--version" => o.version = true,
            _ if a.starts_with('-') && a.len() > 1 && !a.starts_with("--") => {
                let flags: Vec<char> = a[1..].chars().collect();
                let mut j = 0;
                while j < flags.len() {
                    match flags[j] {
                        'c' => {
                            let rest: String = flags[j + 1..].iter().collect();
                            if !rest.is_empty() {
                                o.config = Some(rest);
                            } else if i < args.len() {
                                o.config = Some(args[i].clone());
                                i += 1;
                            } else {
                                return Err(UsageError::MissingConfigFile);
                            }
                            j = flags.len();
                            continue;
                        }
                        't' => o.test = true,
                        'v' | 'V' => o.version = true,
                        'g' | 'G' => o.signature = true,
                        'e' => o.env_only = true,
                        'h' | '?' => o.help = true,
                        other => return Err(UsageError::InvalidOption(other)),
                    }
                    j += 1;
                }
            }
            other => return Err(UsageError::UnexpectedArgument(other.to_string())),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Options, UsageError> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn either_config_name_is_accepted() {
        let dir = std::env::temp_dir().join(format!("rsrs-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("srs.conf"), "listen 1935;").unwrap();
        let docker = dir.join("docker.conf").display().to_string();
        assert_eq!(config_file_or_sibling(&docker), dir.join("srs.conf").display().to_string());
        let other = dir.join("other.conf").display().to_string();
        assert_eq!(config_file_or_sibling(&other), other, "only the two SRS names fall back");
        std::fs::write(dir.join("docker.conf"), "listen 1935;").unwrap();
        assert_eq!(config_file_or_sibling(&docker), docker, "an existing file is used as named");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn srs_forms() {
        assert_eq!(p(&["-c", "conf/srs.conf"]).unwrap().config.as_deref(), Some("conf/srs.conf"));
        assert_eq!(p(&["-cconf/a.conf"]).unwrap().config.as_deref(), Some("conf/a.conf"));
        let o = p(&["-tc", "x.conf"]).unwrap();
        assert!(o.test);
        assert_eq!(o.config.as_deref(), Some("x.conf"));
        assert!(p(&["-v"]).unwrap().version);
        assert!(p(&["--version"]).unwrap().version);
        assert!(p(&["-e"]).unwrap().env_only);
        assert!(p(&[]).unwrap() == Options::default());
        assert_eq!(p(&["-x"]).unwrap_err().to_string(), "invalid option -x");
        assert_eq!(p(&["-c"]).unwrap_err().to_string(), "option -c needs a config file");
        assert_eq!(p(&["run"]).unwrap_err(), UsageError::UnexpectedArgument("run".into()));
    }
}
