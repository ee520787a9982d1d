//! The server's modules import each other without a cycle, so each can be read (and changed)
//! knowing only what it names. The graph is read from the sources: a module depends on the
//! modules its `crate::...` paths and `super::...` paths name, the longest existing module path
//! counting (`hls::state` is its own module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a/b/mod.rs` and `a/b.rs` are module `a::b`.
fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The identifiers-and-`::` path starting at `at` in `text`.
fn path_at(text: &str, at: usize) -> String {
    text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> =
        files.iter().map(|f| (module_name(&src, f), f.clone())).filter(|(m, _)| m != "lib" && m != "main").collect();
    let longest = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        (1..=parts.len()).rev().map(|i| parts[..i].join("::")).find(|m| modules.contains_key(m))
    };
    let mut g = BTreeMap::new();
    for (name, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests may reach anywhere; the layering is about the code that ships.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let parent = name.rsplit_once("::").map(|x| x.0.to_string());
        let mut deps = BTreeSet::new();
        for (at, _) in text.match_indices("crate::") {
            let path = path_at(text, at + "crate::".len());
            deps.extend(longest(&path));
            // `use crate::m::{a, b}`: each item may be a module.
            if let Some(rest) = text[at..].strip_prefix(&format!("crate::{path}{{")) {
                for item in rest.split('}').next().unwrap_or("").split(',') {
                    let item = item.split_whitespace().next().unwrap_or("");
                    deps.extend(longest(&format!("{path}{item}")));
                }
            }
        }
        for (at, _) in text.match_indices("super::") {
            let path = path_at(text, at + "super::".len());
            let base = parent.clone().unwrap_or_default();
            deps.extend(longest(&format!("{base}::{path}")).or_else(|| parent.clone()));
        }
        deps.remove(name);
        g.insert(name.clone(), deps);
    }
    g
}

fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        u: &str,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(u.to_string(), 1);
        stack.push(u.to_string());
        for v in g.get(u).into_iter().flatten() {
            match state.get(v) {
                Some(1) => {
                    let from = stack.iter().position(|x| x == v).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(v.clone());
                    return Some(cycle);
                }
                None => {
                    if let Some(c) = visit(g, v, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(u.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for u in g.keys() {
        if !state.contains_key(u) {
            if let Some(c) = visit(g, u, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_servers_modules_import_each_other_without_a_cycle() {
    let g = graph();
    assert!(g.len() > 15, "read too few modules: {g:?}");
    assert!(g["streams"].contains("server"), "the graph reads `crate::` paths: {g:?}");
    if let Some(cycle) = find_cycle(&g) {
        panic!("import cycle: {}\nthe graph: {g:#?}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&g).unwrap().join(" -> "), "a -> b -> c -> a");
    g.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&g), None);
}
