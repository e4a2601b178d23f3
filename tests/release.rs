//! What a release ships: the licence Cargo.toml names, in the tarballs `scripts/release`
//! builds and in the crate `cargo package` builds.

use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn license_is_the_apache_2_text_cargo_toml_names() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    assert!(manifest.lines().any(|l| l == r#"license = "Apache-2.0""#));
    let text = std::fs::read_to_string(repo().join("LICENSE")).expect("a LICENSE file");
    let first: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).take(3).collect();
    assert_eq!(
        first,
        ["Apache License", "Version 2.0, January 2004", "http://www.apache.org/licenses/"]
    );
    // The full text, not a notice: all nine sections and the appendix.
    for section in ["1. Definitions.", "9. Accepting Warranty or Additional Liability."] {
        assert!(text.contains(section), "LICENSE lacks {section:?}");
    }
    assert!(text.contains("END OF TERMS AND CONDITIONS"));
    assert!(text.contains("APPENDIX: How to apply the Apache License to your work."));
}

/// The `DIST_FILES=(...)` list of scripts/release: what each tarball holds beside the binary.
fn dist_files() -> Vec<String> {
    let script = std::fs::read_to_string(repo().join("scripts/release")).unwrap();
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("DIST_FILES=(")?.strip_suffix(')'))
        .expect("scripts/release defines DIST_FILES=(...)");
    assert!(
        script.contains(r#"cp -r "${DIST_FILES[@]}" "dist/$name/""#),
        "scripts/release copies DIST_FILES into the tarball's directory"
    );
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn release_tarballs_carry_the_license() {
    let files = dist_files();
    assert!(files.iter().any(|f| f == "LICENSE"), "{files:?}");
    for f in &files {
        assert!(repo().join(f).exists(), "scripts/release ships {f}, which does not exist");
    }
}

#[test]
fn the_crate_package_carries_the_license() {
    let o = std::process::Command::new(env!("CARGO"))
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(listed.lines().any(|l| l == "LICENSE"), "cargo package leaves LICENSE out");
}
