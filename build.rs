//! Embeds the check catalogue (`checks/*.md`) and the log rules (`checks/rules/*.toml`) into
//! the binary. Generates only into OUT_DIR: a list of `include_str!` entries, so adding a
//! catalogue file needs no code change and a missing one is a compile error.

use std::fmt::Write as _;
use std::path::Path;

fn list(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some(ext))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let checks = Path::new(&manifest).join("checks");
    let rules = checks.join("rules");
    println!("cargo:rerun-if-changed={}", checks.display());
    println!("cargo:rerun-if-changed={}", rules.display());

    let mut out = String::new();
    out.push_str(
        "/// Catalogue documents: (file name, contents).\npub static DOCS: &[(&str, &str)] = &[\n",
    );
    for p in list(&checks, "md") {
        let name = Path::new(&p).file_name().unwrap().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        println!("cargo:rerun-if-changed={p}");
        writeln!(out, "    ({name:?}, include_str!({p:?})),").unwrap();
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").unwrap();
    std::fs::write(Path::new(&out_dir).join("catalogue.rs"), out).unwrap();

    // The log rules are read first by the rules engine (facts), the documents by the checks:
    // one file each, so neither layer includes the other's data.
    let mut out = String::new();
    out.push_str(
        "/// Built-in log rules: (file name, contents).\npub static RULES: &[(&str, &str)] = &[\n",
    );
    if rules.is_dir() {
        for p in list(&rules, "toml") {
            let name = Path::new(&p).file_name().unwrap().to_string_lossy().into_owned();
            println!("cargo:rerun-if-changed={p}");
            writeln!(out, "    ({name:?}, include_str!({p:?})),").unwrap();
        }
    }
    out.push_str("];\n");
    std::fs::write(Path::new(&out_dir).join("rules.rs"), out).unwrap();
}
