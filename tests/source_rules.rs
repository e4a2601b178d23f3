//! Source rules: node data is read only through `Root` (no literal `/proc` or `/sys` path
//! and no `std::fs` outside `src/root.rs`), and no stub markers.

use std::path::{Path, PathBuf};

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

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// Files allowed to touch the machine's own filesystem: the Root itself, and the places that
/// write the one output file the user names (`src/commands/output.rs`) or read files the user names.
const ALLOWED_FS: [&str; 4] =
    ["src/root.rs", "src/lib.rs", "src/root/snapshot.rs", "src/commands/output.rs"];

#[test]
fn no_literal_proc_or_sys_paths_outside_root() {
    for (path, text) in sources() {
        if path.ends_with("src/root.rs") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in ["\"/proc", "\"/sys"] {
                assert!(
                    !code.contains(bad),
                    "{}:{}: literal {bad} path outside root.rs: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn std_fs_only_in_allowed_modules() {
    for (path, text) in sources() {
        let rel =
            path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_string_lossy().into_owned();
        if ALLOWED_FS.contains(&rel.as_str()) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") || line.contains("#[cfg(test)]") {
                continue;
            }
            if line.contains("std::fs::") || line.contains("use std::fs") {
                // Unit tests inside a module may build temporary trees.
                let before = &text[..text.lines().take(n).map(|l| l.len() + 1).sum::<usize>()];
                if before.contains("#[cfg(test)]") {
                    continue;
                }
                panic!("{rel}:{}: std::fs outside the Root: {line}", n + 1);
            }
        }
    }
}
