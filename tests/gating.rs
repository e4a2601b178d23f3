//! Facts on demand: a run gathers only the fact groups its selected checks declare
//! (`Check::needs`), so `check --only host` starts neither libfabric nor NVML; a full check
//! and `snapshot` still start them all; the slow sources run concurrently.
//!
//! Helper starts are observed twice: efa-doctor's own trace (`EFA_DOCTOR_TRACE_HELPERS`)
//! and a test libfabric (tests/hostilefabric, `HOSTILE_FABRIC=record`) on LD_LIBRARY_PATH
//! that records each fi_getinfo call.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use efa_doctor::checks::{self, CHECKS, Context};
use efa_doctor::facts::{GatherOptions, NOT_GATHERED, Needs};
use efa_doctor::root::{Root, RootKind};
use serde_json::Value;

fn fabric_dir() -> std::path::PathBuf {
    common::clib::hostile_fabric_dir()
}

/// What one live run did.
struct Run {
    json: Value,
    /// `helper NAME` lines, one per helper started.
    helpers: Vec<String>,
    /// How many times the test libfabric's fi_getinfo ran.
    getinfo_calls: usize,
    wall: Duration,
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(String::from).collect()
}

/// Runs efa-doctor on the live root with the test libfabric first on the loader path.
fn live(args: &[&str], env: &[(&str, &str)]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let (trace, calls) = (tmp.path().join("helpers"), tmp.path().join("calls"));
    let mut c = bin();
    c.env_remove("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LD_LIBRARY_PATH", fabric_dir())
        .env("HOSTILE_FABRIC", "record")
        .env("HOSTILE_FABRIC_CALLS", &calls)
        .env("EFA_DOCTOR_TRACE_HELPERS", &trace)
        .envs(env.iter().copied())
        .args(args);
    let start = Instant::now();
    let o = c.output().unwrap();
    let wall = start.elapsed();
    assert_ne!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    Run {
        json: serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        helpers: lines(&trace),
        getinfo_calls: lines(&calls).iter().filter(|l| *l == "fi_getinfo").count(),
        wall,
    }
}

fn started(r: &Run, helper: &str) -> bool {
    r.helpers.iter().any(|l| l == &format!("helper {helper}"))
}

#[test]
fn only_host_starts_no_native_helper() {
    let r = live(&["check", "--only", "host", "--format", "json"], &[]);
    assert!(r.helpers.is_empty(), "helpers started: {:?}", r.helpers);
    assert_eq!(r.getinfo_calls, 0, "libfabric's fi_getinfo ran for --only host");
    let f = &r.json["facts"];
    for group in ["libfabric", "gpu", "efa_stack", "probe", "modules"] {
        assert!(f[group].is_null(), "{group} gathered: {}", f[group]);
        assert_eq!(f["not_gathered"][group], NOT_GATHERED, "{}", f["not_gathered"]);
    }
    // What the host checks read is there, and judged.
    assert!(f["host"].is_object() && f["kernel"].is_object());
    assert!(f["not_gathered"].get("host").is_none());
    let ids: Vec<&str> =
        r.json["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"host.memlock") && ids.iter().all(|i| i.starts_with("host.")), "{ids:?}");
    // A report with groups left out still reads back.
    let _: efa_doctor::report::Report = serde_json::from_value(r.json.clone()).unwrap();
}

#[test]
fn full_check_starts_libfabric_and_nvml() {
    let r = live(&["check", "--format", "json"], &[]);
    assert!(started(&r, "libfabric") && started(&r, "nvml"), "helpers: {:?}", r.helpers);
    assert_eq!(r.getinfo_calls, 1, "helpers: {:?}", r.helpers);
    let f = &r.json["facts"];
    assert!(f.get("not_gathered").is_none(), "{}", f["not_gathered"]);
    assert_eq!(f["libfabric"]["path"], format!("{}/libfabric.so.1", fabric_dir().display()));
    assert!(f["gpu"].is_object() && f["probe"].is_object() && f["efa_stack"].is_object());
}

#[test]
fn the_stack_checks_read_loader_directories_without_starting_libfabric() {
    let r = live(&["check", "--only", "stack.aws-ofi-nccl", "--format", "json"], &[]);
    assert!(r.helpers.is_empty(), "helpers started: {:?}", r.helpers);
    assert_eq!(r.getinfo_calls, 0);
    let f = &r.json["facts"];
    assert!(f["efa_stack"].is_object() && f["libfabric"].is_null());
}

#[test]
fn snapshot_still_starts_every_helper() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("node.tar.gz");
    let r = live(&["snapshot", "--no-probe", "-o", file.to_str().unwrap()], &[]);
    assert!(started(&r, "libfabric") && started(&r, "nvml"), "helpers: {:?}", r.helpers);
    assert_eq!(r.getinfo_calls, 1);
}

/// An IMDS endpoint on loopback that accepts and never answers: IMDS takes its whole
/// deadline (1 s).
fn silent_imds() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut b = [0u8; 1024];
                let _ = stream.read(&mut b);
                std::thread::sleep(Duration::from_secs(10));
            });
        }
    });
    url
}

#[test]
fn libfabric_and_imds_wait_at_the_same_time() {
    // libfabric takes 2 s, IMDS its 1 s deadline: one after the other is at least 3 s.
    let endpoint = silent_imds();
    let r = live(
        &["check", "--only", "libfabric.efa-provider,host.network", "--format", "json"],
        &[
            ("HOSTILE_FABRIC", "record slow"),
            ("HOSTILE_FABRIC_SLEEP_MS", "2000"),
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint),
        ],
    );
    assert_eq!(r.getinfo_calls, 1);
    let f = &r.json["facts"];
    assert_eq!(f["imds"]["endpoint"], endpoint.as_str(), "{}", f["imds"]);
    assert!(f["imds"]["error"].is_string(), "IMDS answered: {}", f["imds"]);
    assert!(r.wall >= Duration::from_secs(2), "libfabric did not sleep: {:?}", r.wall);
    assert!(r.wall < Duration::from_millis(2700), "serial: {:?}", r.wall);
}

/// Every fixture root, in the tree.
fn fixture_roots() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut roots: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("sys").is_dir() || p.join("proc").is_dir())
        .collect();
    roots.sort();
    assert!(roots.len() >= 15, "{roots:?}");
    roots
}

/// A check's declaration is complete: on every fixture it judges the same from only the
/// groups it declares as from everything.
#[test]
fn each_check_judges_the_same_from_the_facts_it_declares() {
    // Every incomplete declaration at once, for both profiles (the bake profile reads other
    // facts), so one run names them all.
    let mut wrong = std::collections::BTreeSet::new();
    for dir in fixture_roots() {
        let root = Root::directory(&dir, RootKind::Directory).unwrap();
        let all = efa_doctor::gather(&root, GatherOptions::default()).unwrap();
        assert!(all.not_gathered.is_empty());
        for c in CHECKS {
            let opts = GatherOptions { needs: checks::needs(&[*c]), ..GatherOptions::default() };
            let some = efa_doctor::gather(&root, opts).unwrap();
            for bake in [false, true] {
                let judge = |f| {
                    let results =
                        checks::run(&[*c], &Context { facts: f, logs: None, analysis: None, bake });
                    serde_json::to_value(results).unwrap()
                };
                if judge(&some) != judge(&all) {
                    wrong.insert(format!(
                        "{} (declares {:?}) on {}{}",
                        c.id(),
                        c.needs(),
                        dir.file_name().unwrap().to_string_lossy(),
                        if bake { " with --profile bake" } else { "" }
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "checks that read more than they declare:\n{}", {
        let v: Vec<_> = wrong.into_iter().collect();
        v.join("\n")
    });
}

/// The log checks, through the whole report: `--only ID` with logs gives what the full run
/// gives for ID.
#[test]
fn log_checks_judge_the_same_alone() {
    let logs: Vec<PathBuf> = std::fs::read_dir(fixture("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(!logs.is_empty());
    for fx in ["p5-healthy", "gb200-arm64", "p5-workers"] {
        let args = efa_doctor::cli::CheckArgs { logs: logs.clone(), ..Default::default() };
        let full = report_with(fx, &args);
        for c in CHECKS.iter().filter(|c| c.needs().contains(Needs::LOGS)) {
            let only = efa_doctor::cli::CheckArgs { only: vec![c.id().into()], ..args.clone() };
            let alone = report_with(fx, &only);
            let pick = |r: &efa_doctor::report::Report| {
                let v: Vec<_> = r.results.iter().filter(|x| x.id == c.id()).collect();
                serde_json::to_value(v).unwrap()
            };
            assert_eq!(pick(&alone), pick(&full), "{} on {fx}", c.id());
        }
    }
}
