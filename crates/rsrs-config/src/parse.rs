//! Lexer and parser for SRS's nginx-like config language.
//!
//! Grammar, as SRS reads it: a directive is a name and arguments ended by `;`, or followed by a
//! `{ ... }` block. `#` starts a comment when it begins a token. Tokens may be quoted with `"` or
//! `'` (no escapes). A directive must fit on one line. `include FILE...;` splices other files in.
//!
//! The parser keeps arguments as written; `$NAME` arguments are expanded later, with the loader's
//! environment (see `model::expand_env`).

use crate::ConfigError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a directive was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One directive with its arguments and, for blocks, its children.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub block: Option<Vec<Directive>>,
    pub loc: Location,
}

impl Directive {
    pub fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }

    /// The first child with this name (SRS: the first duplicate wins).
    pub fn get(&self, name: &str) -> Option<&Directive> {
        self.children().iter().find(|d| d.name == name)
    }

    pub fn arg0(&self) -> Option<&str> {
        self.args.first().map(|s| s.as_str())
    }
}

/// Most nested `include`s we follow (guards against include loops).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Parses a config file, following includes.
pub fn parse_file(path: &Path) -> Result<Vec<Directive>, ConfigError> {
    parse_file_at(path, 0, None)
}

fn parse_file_at(path: &Path, depth: usize, from: Option<&Location>) -> Result<Vec<Directive>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let msg = format!("cannot read config file {}: {e}", path.display());
        match from {
            Some(loc) => ConfigError::at(loc, "include", msg),
            None => ConfigError::plain(msg),
        }
    })?;
    parse_str_at(&text, &path.display().to_string(), depth, path.parent())
}

/// Parses config text; `name` is used in error messages.
pub fn parse_str(text: &str, name: &str) -> Result<Vec<Directive>, ConfigError> {
    parse_str_at(text, name, 0, None)
}

fn parse_str_at(text: &str, name: &str, depth: usize, dir: Option<&Path>) -> Result<Vec<Directive>, ConfigError> {
    let file: Arc<str> = Arc::from(name);
    let tokens = lex(text, &file)?;
    let mut p = Parser { tokens, pos: 0, file, depth, dir: dir.map(Path::to_path_buf) };
    let out = p.block(false)?;
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Semi,
    Open,
    Close,
    Newline,
}

fn lex(text: &str, file: &Arc<str>) -> Result<Vec<(Tok, usize)>, ConfigError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let loc = |line| Location { file: file.clone(), line };
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                chars.next();
                out.push((Tok::Newline, line));
                line += 1;
            }
            ' ' | '\t' | '\r' => {
                chars.next();
            }
            '#' => {
                while let Some(&c) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            ';' => {
                chars.next();
                out.push((Tok::Semi, line));
            }
            '{' => {
                chars.next();
                out.push((Tok::Open, line));
            }
            '}' => {
                chars.next();
                out.push((Tok::Close, line));
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some(ch) if ch == quote => break,
                        Some('\n') | None => {
                            return Err(ConfigError::at(
                                &loc(line),
                                "",
                                format!("unterminated {quote}quoted{quote} string"),
                            ))
                        }
                        Some(ch) => s.push(ch),
                    }
                }
                match chars.peek() {
                    None | Some(' ' | '\t' | '\r' | '\n' | ';' | '{') => {}
                    Some(&other) => {
                        return Err(ConfigError::at(
                            &loc(line),
                            "",
                            format!("unexpected '{other}' after quoted string"),
                        ))
                    }
                }
                // SRS drops empty quoted strings entirely.
                if !s.is_empty() {
                    out.push((Tok::Word(s), line));
                }
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, ' ' | '\t' | '\r' | '\n' | ';' | '{' | '}') {
                        // `${NAME}` is one word, braces included.
                        if !(c == '{' && s.ends_with('$')) {
                            break;
                        }
                        for c in chars.by_ref() {
                            s.push(c);
                            if c == '}' || c == '\n' {
                                break;
                            }
                        }
                        continue;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push((Tok::Word(s), line));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    file: Arc<str>,
    depth: usize,
    dir: Option<PathBuf>,
}

impl Parser {
    fn loc(&self, line: usize) -> Location {
        Location { file: self.file.clone(), line }
    }

    fn block(&mut self, nested: bool) -> Result<Vec<Directive>, ConfigError> {
        let mut out = Vec::new();
        let mut pending: Option<(String, Vec<String>, usize)> = None;
        loop {
            let Some((tok, line)) = self.tokens.get(self.pos).cloned() else {
                if let Some((name, _, l)) = pending {
                    return Err(ConfigError::at(&self.loc(l), &name, "unexpected end of file, expecting ';' or '{'"));
                }
                if nested {
                    let line = self.tokens.last().map(|t| t.1).unwrap_or(1);
                    return Err(ConfigError::at(&self.loc(line), "", "unexpected end of file, expecting '}'"));
                }
                return Ok(out);
            };
            self.pos += 1;
            match tok {
                Tok::Newline => {
                    if let Some((name, _, l)) = &pending {
                        return Err(ConfigError::at(
                            &self.loc(*l),
                            name,
                            "directive must end with ';' on the same line (SRS directives cannot span lines)",
                        ));
                    }
                }
                Tok::Word(w) => {
                    if pending.is_some() {
                        if let Some((_, args, _)) = &mut pending {
                            args.push(w);
                        }
                    } else {
                        pending = Some((w, Vec::new(), line));
                    }
                }
                Tok::Semi => {
                    let Some((name, args, l)) = pending.take() else {
                        return Err(ConfigError::at(&self.loc(line), "", "unexpected ';' with no directive before it"));
                    };
                    if name == "include" {
                        out.extend(self.include(&args, l)?);
                    } else {
                        out.push(Directive { name, args, block: None, loc: self.loc(l) });
                    }
                }
                Tok::Open => {
                    let Some((name, args, l)) = pending.take() else {
                        return Err(ConfigError::at(
                            &self.loc(line),
                            "",
                            "unexpected '{' with no directive name before it",
                        ));
                    };
                    let children = self.block(true)?;
                    out.push(Directive { name, args, block: Some(children), loc: self.loc(l) });
                }
                Tok::Close => {
                    if let Some((name, _, l)) = pending {
                        return Err(ConfigError::at(
                            &self.loc(l),
                            &name,
                            "unexpected '}': directive is missing its ';'",
                        ));
                    }
                    if !nested {
                        return Err(ConfigError::at(&self.loc(line), "", "unexpected '}' with no block open"));
                    }
                    return Ok(out);
                }
            }
        }
    }

    fn include(&self, files: &[String], line: usize) -> Result<Vec<Directive>, ConfigError> {
        let loc = self.loc(line);
        if files.is_empty() {
            return Err(ConfigError::at(&loc, "include", "include needs at least one file"));
        }
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::at(
                &loc,
                "include",
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH} (a loop?)"),
            ));
        }
        let mut out = Vec::new();
        for f in files {
            // SRS resolves against the working directory; we also try the including file's
            // directory, so a config and its includes can live together in a ConfigMap.
            let mut path = PathBuf::from(f);
            if !path.exists() {
                if let Some(dir) = &self.dir {
                    let alt = dir.join(f);
                    if alt.exists() {
                        path = alt;
                    }
                }
            }
            out.extend(parse_file_at(&path, self.depth + 1, Some(&loc))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks_args_comments_quotes() {
        let text =
            "listen 1935; # rtmp\nvhost __defaultVhost__ {\n  hls { enabled on; hls_path \"/a b\"; }\n  x 'y';\n}\n";
        let d = parse_str(text, "t.conf").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "listen");
        assert_eq!(d[0].args, vec!["1935"]);
        assert_eq!(d[1].args, vec!["__defaultVhost__"]);
        let hls = d[1].get("hls").unwrap();
        assert_eq!(hls.get("hls_path").unwrap().args, vec!["/a b"]);
        assert_eq!(hls.loc.line, 3);
        assert_eq!(d[1].get("x").unwrap().args, vec!["y"]);
    }

    #[test]
    fn hash_inside_word_is_not_a_comment() {
        let d = parse_str("a b#c;", "t").unwrap();
        assert_eq!(d[0].args, vec!["b#c"]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_str("listen 1935\n;", "my.conf").unwrap_err();
        assert_eq!(e.to_string(), "my.conf:1: directive `listen`: directive must end with ';' on the same line (SRS directives cannot span lines)");
        let e = parse_str("a {\n b 1;\n", "c.conf").unwrap_err();
        assert!(e.to_string().starts_with("c.conf:2: "), "{e}");
        assert!(e.to_string().contains("expecting '}'"));
        let e = parse_str("}", "c.conf").unwrap_err();
        assert!(e.to_string().contains("unexpected '}'"));
        let e = parse_str(";", "c.conf").unwrap_err();
        assert!(e.to_string().contains("unexpected ';'"));
        let e = parse_str("x \"abc\"d;", "c.conf").unwrap_err();
        assert!(e.to_string().contains("unexpected 'd'"));
        let e = parse_str("a b", "c.conf").unwrap_err();
        assert!(e.to_string().contains("unexpected end of file"));
    }

    #[test]
    fn empty_quoted_string_is_dropped() {
        let d = parse_str("a \"\" b;", "t").unwrap();
        assert_eq!(d[0].args, vec!["b"]);
    }

    #[test]
    fn include_splices_and_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("rsrs-cfg-inc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("inner.conf"), "chunk_size 4096;\n").unwrap();
        std::fs::write(dir.join("main.conf"), "listen 1935;\nvhost v { include inner.conf; }\n").unwrap();
        let d = parse_file(&dir.join("main.conf")).unwrap();
        assert_eq!(d[1].get("chunk_size").unwrap().args, vec!["4096"]);
        std::fs::write(dir.join("bad.conf"), "include nope.conf;\n").unwrap();
        let e = parse_file(&dir.join("bad.conf")).unwrap_err().to_string();
        assert!(e.contains("bad.conf:1") && e.contains("nope.conf"), "{e}");
        std::fs::write(dir.join("loop.conf"), "include loop.conf;\n").unwrap();
        assert!(parse_file(&dir.join("loop.conf")).unwrap_err().to_string().contains("nested deeper"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
