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
