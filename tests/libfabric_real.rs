//! efa-doctor's run-time libfabric layer against the real library CI installs (Debian's
//! libfabric1 + libfabric-bin): the providers and version it reports equal `fi_info`'s.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;
use efa_doctor::cli::CheckArgs;
use efa_doctor::native::NativeState;
use efa_doctor::report::Status;
use efa_doctor::root::{Root, RootKind};

fn fi_info(args: &[&str]) -> String {
    let o = Command::new("fi_info")
        .args(args)
        .output()
        .expect("fi_info is required for this test: install libfabric-bin (see .ci/run)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn live_libfabric() -> serde_json::Value {
    let o = run(&["--only", "libfabric.efa-provider", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["facts"]["libfabric"].clone()
}

#[test]
fn providers_match_fi_info() {
    let ours = live_libfabric();
    assert_eq!(ours["state"], "ok", "{ours}");
    let mut theirs = BTreeSet::new();
    let (mut prov, mut fabric) = (String::new(), String::new());
    for line in fi_info(&[]).lines() {
        if let Some(p) = line.strip_prefix("provider: ") {
            prov = p.trim().to_string();
        } else if let Some(f) = line.trim().strip_prefix("fabric: ") {
            fabric = f.to_string();
        } else if let Some(d) = line.trim().strip_prefix("domain: ") {
            theirs.insert((prov.clone(), fabric.clone(), d.to_string()));
        }
    }
    let ours_set: BTreeSet<(String, String, String)> = ours["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["fabric"].as_str().unwrap().into(),
                p["domain"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(!theirs.is_empty(), "fi_info listed nothing");
    assert_eq!(ours_set, theirs);
    let names: BTreeSet<&str> =
        ours["providers"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    let fi_names: BTreeSet<String> = fi_info(&[])
        .lines()
        .filter_map(|l| l.strip_prefix("provider: ").map(|s| s.trim().to_string()))
        .collect();
    assert_eq!(names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(), fi_names);
}

#[test]
fn version_matches_fi_info() {
    let ours = live_libfabric();
    let text = fi_info(&["--version"]);
    let lib = text.lines().find_map(|l| l.strip_prefix("libfabric: ")).unwrap().trim();
    let api = text.lines().find_map(|l| l.strip_prefix("libfabric api: ")).unwrap().trim();
    assert_eq!(ours["version"], lib);
    assert_eq!(ours["api_version"], api);
}

#[test]
fn the_on_disk_reading_agrees_with_the_loaded_library() {
    let o = run(&["--only", "stack.libfabric-copies", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let loaded = v["facts"]["libfabric"]["version"].as_str().unwrap().to_string();
    let path = v["facts"]["libfabric"]["path"].as_str().unwrap().to_string();
    let copy = v["facts"]["efa_stack"]["libfabric"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path.as_str())
        .unwrap()
        .clone();
    assert_eq!(copy["release"], loaded.as_str(), "release string read from the ELF");
}

#[test]
fn no_libfabric_reachable_is_a_clear_skip() {
    // A live-kind root over an empty tree: no loader directory holds libfabric.
    let d = tempfile::tempdir().unwrap();
    let root = Root::directory_with_kind(d.path(), RootKind::Live).unwrap();
    let r = efa_doctor::build_report(&root, &CheckArgs::default()).unwrap();
    assert_eq!(r.facts.libfabric.state, NativeState::Missing);
    let res = result(&r, "libfabric.efa-provider");
    assert_eq!(res.status, Status::Skip);
    assert!(res.summary.contains("no libfabric.so.1"), "{}", res.summary);
    assert_ne!(r.summary.exit_code, 2);
}
