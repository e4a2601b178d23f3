//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod clib;
pub mod fakecuda;
pub mod fakeprov;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use efa_doctor::cli::CheckArgs;
use efa_doctor::report::{CheckResult, Report, Status};
use efa_doctor::root::{Root, RootKind};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs every check against a fixture directory, in process.
pub fn report(name: &str) -> Report {
    report_with(name, &CheckArgs::default())
}

pub fn report_with(name: &str, args: &CheckArgs) -> Report {
    let root = Root::directory(&fixture(name), RootKind::Directory).expect("fixture exists");
    efa_doctor::build_report(&root, args).expect("report builds")
}

pub fn results<'a>(r: &'a Report, id: &str) -> Vec<&'a CheckResult> {
    r.results.iter().filter(|x| x.id == id).collect()
}

pub fn result<'a>(r: &'a Report, id: &str) -> &'a CheckResult {
    let v = results(r, id);
    assert_eq!(v.len(), 1, "expected exactly one {id} result, got {:?}", v);
    v[0]
}

/// Asserts status, a summary fragment, evidence naming `evidence` and, for fail/warn, a
/// remediation.
pub fn assert_verdict(r: &CheckResult, status: Status, summary: &str, evidence: &str) {
    assert_eq!(r.status, status, "{}: {}", r.id, r.summary);
    assert!(r.summary.contains(summary), "{}: summary {:?} lacks {:?}", r.id, r.summary, summary);
    if !evidence.is_empty() {
        let found = r.evidence.iter().any(|e| {
            e.source.contains(evidence)
                || e.observed.as_deref().is_some_and(|o| o.contains(evidence))
                || e.expected.as_deref().is_some_and(|o| o.contains(evidence))
        });
        assert!(found, "{}: no evidence mentions {:?}: {:#?}", r.id, evidence, r.evidence);
    }
    if matches!(status, Status::Fail | Status::Warn) {
        assert!(r.remediation.as_deref().is_some_and(|s| s.len() > 20), "{}: no remediation", r.id);
    }
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_efa-doctor"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).env("NO_COLOR", "1").output().expect("binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Copies a fixture tree (symlinks as symlinks) to `to`, for tests that edit a copy.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Sets `native.<key>` in the manifest of the captured tree at `root`: replays a native
/// measurement (probe, IMDS) that a test took live.
pub fn inject_native(root: &Path, key: &str, value: serde_json::Value) {
    let path = root.join(".efa-doctor/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["native"][key] = value;
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

/// `efa-doctor check --root ROOT --only ID --format json`, parsed.
pub fn check_only(root: &Path, id: &str) -> serde_json::Value {
    let o = run(&["check", "--root", root.to_str().unwrap(), "--only", id, "--format", "json"]);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

/// A command's standard output as JSON (panics with its stderr otherwise).
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

/// The one result of check `id` in a JSON report.
pub fn sole_result<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    let all: Vec<&serde_json::Value> =
        report["results"].as_array().unwrap().iter().filter(|x| x["id"] == id).collect();
    assert_eq!(all.len(), 1, "expected one {id} result: {all:#?}");
    all[0]
}

/// A snapshot's content, decompressed, as text (to look for what must not be there).
pub fn gunzip_text(path: &Path) -> String {
    let raw = std::fs::read(path).unwrap();
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text).unwrap();
    String::from_utf8_lossy(&text).into_owned()
}

/// Unpacks a snapshot into `dir` (a plain `--root` tree).
pub fn unpack(snapshot: &Path, dir: &Path) {
    let raw = std::fs::read(snapshot).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&raw[..])).unpack(dir).unwrap();
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
