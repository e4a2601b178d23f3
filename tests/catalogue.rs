//! The check registry and the catalogue in `checks/` agree, and every failure mode of
//! FAILURE-MODES.md that efa-doctor claims is covered by a registered check.

use std::collections::BTreeSet;
use std::path::Path;

use efa_doctor::checks::{CHECKS, catalogue};

#[test]
fn every_document_parses() {
    let errors = catalogue::doc_errors();
    assert!(errors.is_empty(), "malformed catalogue documents: {errors:#?}");
}

#[test]
fn registry_and_catalogue_agree() {
    let registered: BTreeSet<&str> = CHECKS.iter().map(|c| c.id()).collect();
    let documented: BTreeSet<&str> = catalogue::docs().iter().map(|d| d.id.as_str()).collect();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let orphaned: Vec<_> = documented.difference(&registered).collect();
    assert!(undocumented.is_empty(), "checks without a document in checks/: {undocumented:?}");
    assert!(orphaned.is_empty(), "documents in checks/ without a registered check: {orphaned:?}");
}

#[test]
fn every_markdown_file_is_embedded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("checks");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "README.md")
        .collect();
    let embedded: BTreeSet<String> = catalogue::docs().iter().map(|d| d.file.clone()).collect();
    assert_eq!(on_disk, embedded);
}

#[test]
fn covers_point_at_real_failure_modes() {
    for d in catalogue::docs() {
        assert!(!d.covers.is_empty(), "{} covers no failure mode", d.id);
        for c in &d.covers {
            let n: u32 = c[2..].parse().unwrap();
            assert!((1..=32).contains(&n), "{}: {c} is not in FAILURE-MODES.md (FM01-FM32)", d.id);
        }
    }
}
