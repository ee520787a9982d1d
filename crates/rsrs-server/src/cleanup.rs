//! `rsrs cleanup`: removes HLS/DVR leftovers from a shared volume, replacing the guide's `find`
//! CronJob with something that cannot delete recordings or web files.
//!
//! Removed: `*.ts`, `*.m4s` (fMP4 segments and low-latency parts), `*.m3u8` (and their
//! `.ts.tmp` / `.m4s.tmp` / `.m3u8.temp` temp files), unfinished
//! recordings `*.flv.tmp` / `*.mp4.tmp`, all older than the limit, then directories left empty
//! that are older than the limit too (a fresh empty directory may be about to receive a segment).
//! Never removed: finished `.flv`/`.mp4` recordings (fMP4 HLS init segments are `.mp4` too
//! and are left: a few hundred bytes each), static files, anything else. Symlinks are not
//! followed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const USAGE: &str = "Usage: rsrs cleanup --dir DIR --older-than AGE [--dry-run]
  AGE is a number with a unit: 45s, 30m, 12h, 3d, 1w
  Removes *.ts, *.m4s, *.m3u8, *.flv.tmp, *.mp4.tmp (and HLS temp files) older than AGE under DIR,
  then empty directories older than AGE; never finished recordings or web files.";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub dir: PathBuf,
    pub older_than: Duration,
    pub dry_run: bool,
}

/// Why `rsrs cleanup` cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("invalid age `{0}`: expected a number with a unit, e.g. 3d, 12h, 30m")]
    BadAgeNumber(String),
    #[error("invalid age `{0}`: unit must be s, m, h, d or w")]
    BadAgeUnit(String),
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    #[error("{0} is required")]
    Required(&'static str),
    #[error("unknown cleanup option `{0}`\n{USAGE}")]
    UnknownOption(String),
    /// `-h`: not an error, but nothing to run either.
    #[error("{USAGE}")]
    Help,
    #[error("cannot read {}: {err}", path.display())]
    Unreadable { path: PathBuf, err: std::io::Error },
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
}

pub fn parse_age(s: &str) -> Result<Duration, CleanupError> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| CleanupError::BadAgeNumber(s.to_string()))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(CleanupError::BadAgeUnit(s.to_string())),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

pub fn parse(args: &[String]) -> Result<Options, CleanupError> {
    let (mut dir, mut age, mut dry_run) = (None, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(it.next().ok_or(CleanupError::MissingValue("--dir"))?)),
            "--older-than" => age = Some(parse_age(it.next().ok_or(CleanupError::MissingValue("--older-than"))?)?),
            "--dry-run" => dry_run = true,
            "-h" | "--help" => return Err(CleanupError::Help),
            other => return Err(CleanupError::UnknownOption(other.to_string())),
        }
    }
    Ok(Options {
        dir: dir.ok_or(CleanupError::Required("--dir"))?,
        older_than: age.ok_or(CleanupError::Required("--older-than"))?,
        dry_run,
    })
}

/// Whether a file name is an HLS/DVR leftover.
pub fn is_leftover(name: &str) -> bool {
    [".ts", ".m4s", ".m3u8", ".flv.tmp", ".mp4.tmp", ".ts.tmp", ".m4s.tmp", ".m3u8.temp"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// What was (or, with dry run, would be) removed.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub files: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
    pub errors: Vec<String>,
}

pub fn run(opts: &Options, now: SystemTime) -> Result<Outcome, CleanupError> {
    let meta =
        std::fs::symlink_metadata(&opts.dir).map_err(|err| CleanupError::Unreadable { path: opts.dir.clone(), err })?;
    if !meta.is_dir() {
        return Err(CleanupError::NotADirectory(opts.dir.clone()));
    }
    let cutoff = now.checked_sub(opts.older_than).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut out = Outcome::default();
    visit(&opts.dir, opts, cutoff, 0, &mut out);
    Ok(out)
}

fn old(p: &Path, cutoff: SystemTime) -> bool {
    std::fs::symlink_metadata(p).and_then(|m| m.modified()).map(|t| t < cutoff).unwrap_or(false)
}

/// Returns whether `dir` is (or, in a dry run, would be) empty afterwards.
fn visit(dir: &Path, opts: &Options, cutoff: SystemTime, depth: usize, out: &mut Outcome) -> bool {
    if depth > 32 {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        out.errors.push(format!("cannot read {}", dir.display()));
        return false;
    };
    let mut empty = true;
    for e in entries.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else {
            empty = false;
            continue;
        };
        if ft.is_dir() {
            // Age before visiting: removing entries inside bumps the directory's mtime.
            let was_old = old(&path, cutoff);
            let sub_empty = visit(&path, opts, cutoff, depth + 1, out);
            if sub_empty && was_old && (opts.dry_run || std::fs::remove_dir(&path).is_ok()) {
                out.dirs.push(path);
                continue;
            }
            empty = false;
        } else if ft.is_file() && is_leftover(&e.file_name().to_string_lossy()) && old(&path, cutoff) {
            if opts.dry_run {
                out.files.push(path);
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => out.files.push(path),
                Err(err) => {
                    out.errors.push(format!("cannot remove {}: {err}", path.display()));
                    empty = false;
                }
            }
        } else {
            empty = false;
        }
    }
    empty
}

/// The `rsrs cleanup` command: prints what it removed; exit status 1 on errors.
pub fn main(args: &[String]) -> i32 {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(CleanupError::Help) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("rsrs cleanup: {e}");
            return 2;
        }
    };
    let verb = if opts.dry_run { "would remove" } else { "removed" };
    match run(&opts, SystemTime::now()) {
        Ok(o) => {
            for f in &o.files {
                println!("{verb} file {}", f.display());
            }
            for d in &o.dirs {
                println!("{verb} empty directory {}", d.display());
            }
            for e in &o.errors {
                eprintln!("rsrs cleanup: {e}");
            }
            println!(
                "rsrs cleanup: {verb} {} files and {} directories under {}",
                o.files.len(),
                o.dirs.len(),
                opts.dir.display()
            );
            if o.errors.is_empty() {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("rsrs cleanup: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File};

    fn touch(p: &Path, age: Duration) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let f = File::create(p).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    fn age_dir(p: &Path, age: Duration) {
        File::open(p).unwrap().set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn removes_exactly_the_old_leftovers() {
        let root = std::env::temp_dir().join(format!("rsrs-cleanup-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let day = Duration::from_secs(86400);
        let old_files = [
            "live/a-1.ts",
            "live/f-1.m4s",
            "live/f-2.0.m4s",
            "live/a.m3u8",
            "dvr/live/a.123.flv.tmp",
            "dvr/live/b.mp4.tmp",
            "live/a-2.ts.tmp",
            "live/a.m3u8.temp",
        ];
        let keep_old = [
            "dvr/live/a.100.flv",
            "dvr/live/a.100.mp4",
            "live/f/init.mp4",
            "index.html",
            "players/js/app.js",
            "crossdomain.xml",
            "live/notes.txt",
        ];
        let new_files = ["live/b-9.ts", "live/b.m3u8", "dvr/live/c.flv.tmp"];
        for f in old_files.iter().chain(keep_old.iter()) {
            touch(&root.join(f), 5 * day);
        }
        for f in new_files {
            touch(&root.join(f), Duration::from_secs(60));
        }
        fs::create_dir_all(root.join("old/empty/deeper")).unwrap();
        fs::create_dir_all(root.join("fresh-empty")).unwrap();
        for d in ["old/empty/deeper", "old/empty", "old"] {
            age_dir(&root.join(d), 5 * day);
        }
        let opts = Options { dir: root.clone(), older_than: 3 * day, dry_run: true };
        let dry = run(&opts, SystemTime::now()).unwrap();
        let mut expect: Vec<PathBuf> = old_files.iter().map(|f| root.join(f)).collect();
        expect.sort();
        let mut got = dry.files.clone();
        got.sort();
        assert_eq!(got, expect);
        for f in old_files {
            assert!(root.join(f).exists(), "dry run removed {f}");
        }
        let real = run(&Options { dry_run: false, ..opts }, SystemTime::now()).unwrap();
        assert_eq!(real.errors, Vec::<String>::new());
        for f in old_files {
            assert!(!root.join(f).exists(), "{f} should be removed");
        }
        for f in keep_old.iter().chain(new_files.iter()) {
            assert!(root.join(f).exists(), "{f} must be kept");
        }
        assert!(!root.join("old").exists(), "old empty directories are removed");
        assert!(root.join("fresh-empty").exists(), "a fresh empty directory is kept");
        assert!(root.exists(), "the root itself is never removed");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn ages_and_options() {
        assert_eq!(parse_age("3d").unwrap(), Duration::from_secs(3 * 86400));
        assert_eq!(parse_age("90").unwrap(), Duration::from_secs(90));
        assert!(matches!(parse_age("3y"), Err(CleanupError::BadAgeUnit(_))));
        assert!(matches!(parse_age("d"), Err(CleanupError::BadAgeNumber(_))));
        let a: Vec<String> =
            ["--dir", "/x", "--older-than", "12h", "--dry-run"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            parse(&a).unwrap(),
            Options { dir: "/x".into(), older_than: Duration::from_secs(43200), dry_run: true }
        );
        assert!(matches!(parse(&a[..2]), Err(CleanupError::Required("--older-than"))));
        assert!(matches!(parse(&a[..1]), Err(CleanupError::MissingValue("--dir"))));
        let missing = Options { dir: "/nonexistent/rsrs".into(), older_than: Duration::ZERO, dry_run: true };
        assert!(run(&missing, SystemTime::now())
            .unwrap_err()
            .to_string()
            .starts_with("cannot read /nonexistent/rsrs: "));
    }
}
