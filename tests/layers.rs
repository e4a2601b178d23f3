//! Layers import only downward: bottom (redaction, escaping, the verdict vocabulary) -> root ->
//! parse -> native -> facts -> checks -> report -> commands -> main. This test reads every
//! `use crate::...`, `crate::x::` and `super::` path in `src/`, maps each file and each target to
//! its layer, and fails on an import from a higher layer or on a circle between modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first, by the first segment of a module path.
const LAYERS: [(&str, &[&str]); 9] = [
    ("bottom", &["redact", "escape", "verdict"]),
    ("root", &["root"]),
    ("parse", &["parse"]),
    ("native", &["native"]),
    ("facts", &["facts"]),
    ("checks", &["checks"]),
    ("report", &["report"]),
    ("commands", &["commands", "cli"]),
    // `crate` itself: src/lib.rs and the items it defines (`crate::run`).
    ("main", &["crate", "main"]),
];

fn layer_of(module: &[String]) -> Option<usize> {
    let first = module.first().map_or("crate", String::as_str);
    LAYERS.iter().position(|(_, firsts)| firsts.contains(&first))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/facts/gpu.rs` -> `[facts, gpu]`; `src/facts/mod.rs` -> `[facts]`; `src/lib.rs` -> `[]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> =
        rel.with_extension("").iter().skip(1).map(|s| s.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The code of a line: no `//` comments (doc links name paths without importing them).
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// Expands a `use` tree (`a::{b, c::{d as e}}`) into its paths.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(inner) = tree.strip_prefix('{') {
        let inner = &inner[..inner.rfind('}').unwrap_or(inner.len())];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(prefix, &inner[start..], out);
        return;
    }
    if let Some(k) = tree.find("::{") {
        let mut p = prefix.to_vec();
        p.extend(tree[..k].split("::").map(|s| s.trim().to_string()));
        expand(&p, &tree[k + 2..], out);
        return;
    }
    let path = tree.split(" as ").next().unwrap_or(tree);
    let mut p = prefix.to_vec();
    p.extend(path.split("::").map(|s| s.trim().to_string()).filter(|s| s != "self" && s != "*"));
    out.push(p);
}

/// Every module path a file names, with its line: `use crate::`/`use super::` trees and inline
/// `crate::x::`/`super::x::` paths, resolved against the file's own module.
fn imports(module: &[String], text: &str) -> Vec<(usize, Vec<String>)> {
    let code_text: String = text.lines().map(|l| format!("{}\n", code(l))).collect();
    let line_at = |offset: usize| code_text[..offset].matches('\n').count() + 1;
    // Inline `mod tests` blocks (at the end of a file) sit one level below the file's module.
    let tests_at = code_text.find("mod tests {").unwrap_or(code_text.len());
    let resolve = |at: usize, path: Vec<String>| -> Vec<String> {
        let mut ups = 0;
        let mut rest = path.as_slice();
        while rest.first().is_some_and(|s| s == "super") {
            ups += 1;
            rest = &rest[1..];
        }
        if ups == 0 {
            return rest.to_vec();
        }
        if at > tests_at {
            ups -= 1;
        }
        let mut p = module[..module.len().saturating_sub(ups)].to_vec();
        p.extend(rest.iter().cloned());
        p
    };
    let mut out = Vec::new();
    let mut use_spans = Vec::new();
    for start in ["use crate::", "use super::"] {
        let mut from = 0;
        while let Some(i) = code_text[from..].find(start) {
            let at = from + i;
            let body_start = at + 4;
            let end = code_text[body_start..].find(';').map_or(code_text.len(), |e| body_start + e);
            let mut paths = Vec::new();
            expand(&[], &code_text[body_start..end], &mut paths);
            for p in paths {
                let p = if p.first().is_some_and(|s| s == "crate") { p[1..].to_vec() } else { p };
                out.push((line_at(at), resolve(at, p)));
            }
            use_spans.push(at..end);
            from = end;
        }
    }
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code_text[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            let before = code_text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                || use_spans.iter().any(|s| s.contains(&at))
            {
                continue;
            }
            let tail: String = code_text[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut p: Vec<String> =
                tail.split("::").filter(|s| !s.is_empty()).map(String::from).collect();
            if p.first().is_some_and(|s| s == "crate") {
                p.remove(0);
            }
            out.push((line_at(at), resolve(at, p)));
        }
    }
    out
}

/// The longest prefix of `path` that is a module with its own file.
fn target_module(path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

struct Source {
    rel: String,
    module: Vec<String>,
    imports: Vec<(usize, Vec<String>)>,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let module = module_of(&rel);
            let text = std::fs::read_to_string(&p).unwrap();
            let imports = imports(&module, &text);
            Source { rel: rel.to_string_lossy().into_owned(), module, imports }
        })
        .collect()
}

fn violations(sources: &[Source]) -> Vec<String> {
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let mut bad = Vec::new();
    // Module graph for the circle search: edge -> the first file:line that makes it.
    let mut edges: BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>> = BTreeMap::new();
    for s in sources {
        let own_name =
            if s.rel == "src/main.rs" { vec!["main".to_string()] } else { s.module.clone() };
        let Some(own) = layer_of(&own_name) else {
            bad.push(format!("{}: file in no layer (add it to LAYERS)", s.rel));
            continue;
        };
        for (line, path) in &s.imports {
            let target = target_module(path, &modules);
            let Some(to) = layer_of(&target) else {
                bad.push(format!("{}:{line}: crate::{} is in no layer", s.rel, path.join("::")));
                continue;
            };
            if to > own {
                bad.push(format!(
                    "{}:{line}: upward import from {} to {} (crate::{})",
                    s.rel,
                    LAYERS[own].0,
                    LAYERS[to].0,
                    path.join("::")
                ));
            }
            let is_ancestor = s.module.starts_with(&target);
            if target != s.module && !is_ancestor {
                edges
                    .entry(s.module.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| format!("{}:{line}", s.rel));
            }
        }
    }
    // A circle: an edge a -> b where b reaches a again.
    let reaches = |from: &Vec<String>, to: &Vec<String>| -> Option<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![(from.clone(), Vec::new())];
        while let Some((m, trail)) = stack.pop() {
            if &m == to {
                return Some(trail);
            }
            if !seen.insert(m.clone()) {
                continue;
            }
            for (next, at) in edges.get(&m).into_iter().flatten() {
                let mut t = trail.clone();
                t.push(format!("{} ({at})", next.join("::")));
                stack.push((next.clone(), t));
            }
        }
        None
    };
    let mut reported = BTreeSet::new();
    for (from, tos) in &edges {
        for (to, at) in tos {
            if let Some(back) = reaches(to, from) {
                let mut key: Vec<_> = vec![from.clone(), to.clone()];
                key.sort();
                if reported.insert(key) {
                    bad.push(format!(
                        "{at}: import circle {} -> {} -> {}",
                        from.join("::"),
                        to.join("::"),
                        back.join(" -> ")
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn imports_go_only_downward_and_never_in_a_circle() {
    let bad = violations(&sources());
    assert!(bad.is_empty(), "{} layer violations:\n{}", bad.len(), bad.join("\n"));
}

/// The scanner itself sees every form of import (so the test above cannot pass by missing them).
#[test]
fn scanner_sees_use_trees_inline_paths_and_super() {
    let text = "use crate::{facts::{self, gpu::Gpu as G}, root::Root};\n\
                // crate::report::Ignored in a comment\n\
                fn f() { crate::report::show(x); super::rdm::open(); }\n";
    let got: Vec<String> = imports(&["native".into(), "fabric".into()], text)
        .into_iter()
        .map(|(line, p)| format!("{line}:{}", p.join("::")))
        .collect();
    assert_eq!(
        got,
        ["1:facts", "1:facts::gpu::Gpu", "1:root::Root", "3:report::show", "3:native::rdm::open"]
    );
    let sources = [
        Source {
            rel: "src/facts/a.rs".into(),
            module: vec!["facts".into(), "a".into()],
            imports: vec![(7, vec!["checks".into()])],
        },
        Source { rel: "src/checks/mod.rs".into(), module: vec!["checks".into()], imports: vec![] },
        Source {
            rel: "src/native/x.rs".into(),
            module: vec!["native".into(), "x".into()],
            imports: vec![(1, vec!["native".into(), "y".into(), "T".into()])],
        },
        Source {
            rel: "src/native/y.rs".into(),
            module: vec!["native".into(), "y".into()],
            imports: vec![(2, vec!["native".into(), "x".into()])],
        },
    ];
    let bad = violations(&sources);
    assert!(
        bad.iter().any(|b| b.starts_with("src/facts/a.rs:7: upward import from facts to checks")),
        "{bad:?}"
    );
    assert!(bad.iter().any(|b| b.contains("import circle native::x -> native::y")), "{bad:?}");
}
