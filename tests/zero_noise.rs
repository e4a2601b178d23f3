//! The zero-noise rule: every healthy fixture gives exactly zero `fail` and zero `warn`, and
//! every faulty fixture gives the findings it was built for and nothing else. A new fixture
//! directory must be added to the table, so none escapes the rule.

mod common;

use std::collections::BTreeSet;

use common::*;
use efa_doctor::report::Report;
use efa_doctor::report::Status::{Error, Fail, Warn};

/// Fixture -> the check ids that may fail or warn on it (each exactly once unless the
/// fixture holds several workers). An empty list is a healthy fixture.
const EXPECTED: &[(&str, &[&str])] = &[
    ("p5-healthy", &[]),
    ("p5en-healthy", &[]),
    ("p4d-healthy", &[]),
    ("g5-single-efa", &[]),
    // 8 / 16 EFA plus two Mellanox ConnectX-7 in the same /sys/class/infiniband.
    ("p6-b200-healthy", &[]),
    ("p6-b300-healthy", &[]),
    // A pod given 4 of 32 EFA devices is normal (topology-aware allocation).
    ("p5-container-partial", &[]),
    // The healthy p6e-gb200: one PCI domain, 2 GPU-local and 2 CPU-mediated EFA per GPU,
    // 1.97 GB/s bridges above the GPU switches, and the libfabric fix.
    ("gb200-fixed", &[]),
    ("gb200-arm64", &["libfabric.gb200-registration"]),
    // An AMI build instance without EFA interfaces, judged as a running node: the one
    // finding is the missing EFA (the bake profile judges it as an image, below).
    ("bake-no-efa", &["efa.devices"]),
    ("container-no-devices", &["efa.devices"]),
    ("old-kernel-no-peermem", &["kernel.gpudirect-path"]),
    ("p5-device-missing", &["efa.devices"]),
    ("p5-errors-rising", &["efa.errors"]),
    ("p5-gpu-far", &["efa.topology"]),
    ("p5-pcie-degraded", &["pci.link"]),
    ("p5-silent-drop", &["efa.traffic"]),
    ("stack-nixl-old-libfabric", &["stack.nixl"]),
    // The distribution's libfabric first on the loader path; the plugin's and the
    // provider's troubles follow from it and point at it.
    ("stack-ofi-nccl-mismatch", &["stack.libfabric-copies"]),
    // Seven workers, one fault each (README): the findings are per process.
    (
        "p5-workers",
        &[
            "process.nixl-backend",
            "process.libfabric-copies",
            "process.environment",
            "process.memlock",
        ],
    ),
];

/// Real captures (tests/fixtures/real/README.md): an H200 VM without EFA, not EC2.
const REAL: &[(&str, &[&str])] = &[
    // No EFA: the one failure about EFA; nothing else.
    ("h200-node.tar.gz", &["efa.devices"]),
    // NIXL runs on that machine with a pip wheel whose LIBFABRIC plugin needs a newer
    // libfabric than the system's (real, see stack.nixl), and the test script registers
    // host buffers on purpose; the UCX backend on a node without EFA is right.
    ("h200-nixl-ucx.tar.gz", &["efa.devices", "stack.nixl", "process.registered-memory"]),
    // The plugin that cannot load against the node's libfabric is one root cause: the worker
    // and its log point at stack.nixl (issue 15).
    ("h200-nixl-libfabric.tar.gz", &["efa.devices", "stack.nixl"]),
    // Issue 15's real workers on the CPU-only development machine (a container without
    // EFA or GPUs; README): each gives exactly the finding it was run for.
    ("cpu-nixl-mismatch.tar.gz", &["process.nixl-backend", "process.registered-memory"]),
    ("cpu-nixl-hostonly.tar.gz", &["process.registered-memory"]),
];

fn noisy(r: &Report) -> Vec<(String, String)> {
    r.results
        .iter()
        .filter(|x| matches!(x.status, Fail | Warn | Error))
        .map(|x| (x.id.clone(), format!("{:?}: {}", x.status, x.summary)))
        .collect()
}

fn judge(name: &str, r: &Report, expected: &[&str]) {
    let got = noisy(r);
    let ids: BTreeSet<&str> = got.iter().map(|(i, _)| i.as_str()).collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(ids, want, "{name}: findings differ from what the fixture was built for: {got:#?}");
    if expected.len() == 1 {
        assert_eq!(got.len(), 1, "{name}: one finding expected: {got:#?}");
    }
    // Every finding carries evidence and a fix.
    for x in r.results.iter().filter(|x| matches!(x.status, Fail | Warn)) {
        assert!(!x.evidence.is_empty(), "{name}: {} has no evidence", x.id);
        assert!(x.remediation.as_deref().is_some_and(|s| s.len() > 20), "{name}: {} no fix", x.id);
    }
}

#[test]
fn every_fixture_gives_exactly_its_findings() {
    let mut seen = BTreeSet::new();
    for e in std::fs::read_dir(fixture("")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.path().join(".efa-doctor/manifest.json").exists() {
            continue; // logs/, real/ (captures, below)
        }
        let (_, expected) = EXPECTED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("fixture {name} is not in the zero-noise table"));
        judge(&name, &report(&name), expected);
        seen.insert(name);
    }
    assert_eq!(seen.len(), EXPECTED.len(), "a fixture in the table is missing: {seen:?}");
    assert!(EXPECTED.iter().filter(|(_, e)| e.is_empty()).count() >= 8);
}

#[test]
fn the_build_instance_is_clean_under_the_bake_profile() {
    let args = efa_doctor::cli::CheckArgs {
        profile: efa_doctor::cli::Profile::Bake,
        ..Default::default()
    };
    judge("bake-no-efa (bake)", &report_with("bake-no-efa", &args), &[]);
}

#[test]
fn every_real_capture_gives_exactly_its_findings() {
    for (name, expected) in REAL {
        let d = tempfile::tempdir().unwrap();
        unpack(&fixture("real").join(name), d.path());
        let root =
            efa_doctor::root::Root::directory(d.path(), efa_doctor::root::RootKind::Directory)
                .unwrap();
        let r = efa_doctor::build_report(&root, &Default::default()).unwrap();
        judge(name, &r, expected);
    }
}
