//! `efa-doctor probe mr` through the REAL libfabric: the test-only provider `fakehmem`
//! (tests/fakeprov, loaded by libfabric from FI_PROVIDER_PATH) returns the registration
//! errors each case chooses, and the test-only `libcuda.so.1` (tests/fakecuda) stands in for
//! the GPU. The probe's own code (context, allocation, dma-buf export, three
//! `fi_mr_regattr` calls, cleanup) runs unchanged; so does Debian's tcp provider.

mod common;

use std::path::Path;

use common::fakecuda::fakecuda_dir;
use common::fakeprov::{FAKEPROV_NAME, fakeprov_dir};
use serde_json::Value;

/// Variables that would change what libfabric, the provider or the fake driver do.
const INHERITED: &[&str] = &[
    "FI_PROVIDER",
    "FI_PROVIDER_PATH",
    "FI_LOG_LEVEL",
    "FI_LOG_PROV",
    "FI_HOOK",
    "FAKEPROV_NO_HMEM",
    "FAKEPROV_DMABUF_RET",
    "FAKEPROV_CUDA_RET",
    "FAKEPROV_HOST_RET",
    "FAKEPROV_TRACE",
    "FAKEPROV_NO_P2P",
    "FAKECUDA_INIT_RET",
    "FAKECUDA_DEVICES",
    "FAKECUDA_ALLOC_RET",
    "FAKECUDA_DMABUF_PCIE_RET",
    "FAKECUDA_DMABUF_RET",
    "FAKECUDA_HANG",
    "FAKECUDA_TRACE",
    "LD_LIBRARY_PATH",
];

struct Run {
    report: Value,
    code: Option<i32>,
    trace: String,
    cuda_trace: String,
}

impl Run {
    fn result(&self) -> &Value {
        let r = &self.report["results"];
        assert_eq!(r.as_array().unwrap().len(), 1, "{r:#}");
        &r[0]
    }
}

fn probe_with(args: &[&str], env: &[(&str, &str)], cuda: Option<&Path>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("fakeprov.trace");
    let cuda_trace = dir.path().join("fakecuda.trace");
    let mut cmd = common::bin();
    for v in INHERITED {
        cmd.env_remove(v);
    }
    let empty = dir.path().join("no-libcuda");
    std::fs::create_dir_all(&empty).unwrap();
    cmd.env("LD_LIBRARY_PATH", cuda.unwrap_or(&empty))
        .env("FI_PROVIDER_PATH", fakeprov_dir())
        .env("FAKEPROV_TRACE", &trace)
        .env("FAKECUDA_TRACE", &cuda_trace)
        .env("NO_COLOR", "1")
        .args(["probe", "mr", "--format", "json"])
        .args(args)
        .envs(env.iter().copied());
    let o = cmd.output().expect("efa-doctor runs");
    let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    Run {
        report,
        code: o.status.code(),
        trace: std::fs::read_to_string(&trace).unwrap_or_default(),
        cuda_trace: std::fs::read_to_string(&cuda_trace).unwrap_or_default(),
    }
}

/// The fake provider with a fake GPU.
fn probe(env: &[(&str, &str)]) -> Run {
    probe_with(&["--provider", FAKEPROV_NAME], env, Some(&fakecuda_dir()))
}

fn assert_verdict(run: &Run, status: &str, value: &str, summary: &str) {
    let r = run.result();
    assert_eq!(r["status"], status, "{r:#}");
    assert_eq!(r["value"], value, "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains(summary), "summary lacks {summary:?}: {r:#}");
    if status == "fail" {
        assert!(r["remediation"].as_str().is_some_and(|s| s.len() > 40), "{r:#}");
        assert_eq!(run.code, Some(1));
    }
}

/// Whether the installed libfabric defines FI_MR_DMABUF (API >= 1.20): Debian 12's 1.17
/// does not, so the explicit dma-buf registration is (correctly) not attempted there.
fn dmabuf_api(run: &Run) -> bool {
    let api = run.report["facts"]["probe"]["result"]["api_version"].as_str().unwrap().to_string();
    let (major, minor) = api.split_once('.').unwrap();
    (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap()) >= (1, 20)
}

fn evidence(run: &Run) -> String {
    run.result()["evidence"].to_string()
}

/// Every allocation, fd and context the probe took was given back.
fn assert_cleaned_up(run: &Run) {
    let count = |what: &str| run.cuda_trace.lines().filter(|l| l.starts_with(what)).count();
    assert_eq!(count("alloc"), count("free"), "device memory leaked:\n{}", run.cuda_trace);
    assert_eq!(count("retain"), count("release"), "context leaked:\n{}", run.cuda_trace);
}

#[test]
fn registration_works() {
    let run = probe(&[]);
    assert_verdict(&run, "pass", "ok", "CUDA memory registers through the fakehmem provider");
    // Host control, then CUDA implicit, then (API >= 1.20) CUDA with the dma-buf fd.
    let calls: Vec<&str> = run.trace.lines().collect();
    assert!(calls[0].starts_with("iface=0 flags=0x0 len=2097152 ret=0"), "{}", run.trace);
    assert!(calls[1].starts_with("iface=1 flags=0x0 len=2097152 ret=0"), "{}", run.trace);
    if dmabuf_api(&run) {
        assert_eq!(calls.len(), 3, "{}", run.trace);
        assert!(
            calls[2].starts_with("iface=1 flags=0x10000000000"),
            "FI_MR_DMABUF = 1<<40: {}",
            calls[2]
        );
    } else {
        assert_eq!(calls.len(), 2, "{}", run.trace);
        assert!(evidence(&run).contains("predates FI_MR_DMABUF (1.20)"), "{}", evidence(&run));
    }
    assert!(
        evidence(&run).contains("dma-buf export flags=0"),
        "the PCIe flag is refused (801), then flags=0: {}",
        evidence(&run)
    );
    assert_eq!(run.result()["details"]["memory_type"], "device");
    assert_cleaned_up(&run);
}

/// Issue 15 item 1: without a peer-to-peer path the efa provider "registers" CUDA memory
/// without the device (a made-up key from 2^32, libfabric v2.6.0
/// prov/efa/src/rdm/efa_rdm_mr.c), warns once at start-up and refuses
/// FI_OPT_CUDA_API_PERMITTED=false. The fake provider does the same through the real
/// libfabric: the success is reported as the failure it is.
#[test]
fn registration_without_p2p_is_a_failure() {
    let run = probe(&[("FAKEPROV_NO_P2P", "1")]);
    assert_verdict(&run, "fail", "no-p2p", "succeeded without GPUDirect");
    let ev = evidence(&run);
    assert!(ev.contains("key 0x10000000"), "the made-up key: {ev}");
    assert!(ev.contains("FI_OPT_CUDA_API_PERMITTED") && ev.contains("-95"), "{ev}");
    assert!(
        ev.contains("Failed to register CUDA buffer with the EFA device"),
        "the provider's own warning, captured from the helper: {ev}"
    );
    assert!(run.result()["details"]["implicit_key"].as_u64().unwrap() > u64::from(u32::MAX));
    assert_cleaned_up(&run);
    // With the path there, the same provider's registration passes and the option is taken.
    let ok = probe(&[]);
    assert_verdict(&ok, "pass", "ok", "registers");
    assert!(evidence(&ok).contains("accepted"), "{}", evidence(&ok));
}

#[test]
fn gb200_12019_signature() {
    let run = probe(&[("FAKEPROV_CUDA_RET", "-14"), ("FAKEPROV_DMABUF_RET", "0")]);
    let ev = evidence(&run);
    assert!(ev.contains("-14 (Bad address)"), "{ev}");
    // The provider's own warning, captured from libfabric's log.
    assert!(ev.contains("Unable to register MR of 2097152 bytes: Bad address"), "{ev}");
    if dmabuf_api(&run) {
        assert_verdict(&run, "fail", "efault-12019", "libfabric #12019");
        assert!(run.result()["remediation"].as_str().unwrap().contains("2.5.0"));
    } else {
        // Without FI_MR_DMABUF the explicit path cannot prove the bug: EFAULT is reported
        // as such, with the reason the dma-buf registration was not tried.
        assert_verdict(&run, "fail", "efault", "EFAULT");
        assert!(ev.contains("predates FI_MR_DMABUF"), "{ev}");
    }
    assert_cleaned_up(&run);
}

#[test]
fn efault_on_both_paths_is_the_kernel_side() {
    let run = probe(&[("FAKEPROV_CUDA_RET", "-14"), ("FAKEPROV_DMABUF_RET", "-14")]);
    assert_verdict(&run, "fail", "efault", "cannot import this GPU memory");
    assert!(run.result()["remediation"].as_str().unwrap().contains("open kernel module"));
}

#[test]
fn efault_without_a_dmabuf_fd() {
    // The driver exports no dma-buf at all: the explicit path cannot be tried.
    let run = probe(&[("FAKEPROV_CUDA_RET", "-14"), ("FAKECUDA_DMABUF_RET", "801")]);
    assert_verdict(&run, "fail", "efault", "EFAULT");
    let ev = evidence(&run);
    assert!(ev.contains("CUDA_ERROR_NOT_SUPPORTED"), "{ev}");
    assert!(
        ev.contains("not attempted: the CUDA driver exported no dma-buf fd")
            || ev.contains("predates FI_MR_DMABUF"),
        "{ev}"
    );
    assert_eq!(run.trace.lines().count(), 2, "{}", run.trace);
}

#[test]
fn other_errnos() {
    for (env, value, summary) in [
        (vec![("FAKEPROV_CUDA_RET", "-95")], "eopnotsupp", "EOPNOTSUPP"),
        (vec![("FAKEPROV_CUDA_RET", "-38")], "hmem-uninitialised", "not initialised"),
        (vec![("FAKEPROV_CUDA_RET", "-13")], "privileges", "EACCES"),
        (vec![("FAKEPROV_HOST_RET", "-12")], "memlock", "ENOMEM"),
        (vec![("FAKEPROV_HOST_RET", "-5")], "host-failed", "cannot register even host memory"),
        (vec![("FAKEPROV_CUDA_RET", "-22")], "other", "-22 (Invalid argument)"),
    ] {
        let run = probe(&env);
        assert_verdict(&run, "fail", value, summary);
        assert_cleaned_up(&run);
    }
}

#[test]
fn provider_without_hmem() {
    let run = probe(&[("FAKEPROV_NO_HMEM", "1")]);
    assert_verdict(&run, "fail", "no-hmem", "offers no FI_HMEM");
    // Only the host control ran: a CUDA buffer would have been registered as host memory.
    assert_eq!(run.trace.lines().count(), 1, "{}", run.trace);
    assert!(run.trace.starts_with("iface=0"));
}

#[test]
fn debian_tcp_provider_with_host_memory() {
    // The real tcp provider of the distribution's libfabric: no CUDA support, so the verdict
    // is no-hmem, after a real host registration succeeded.
    let run = probe_with(&["--provider", "tcp"], &[], Some(&fakecuda_dir()));
    assert_verdict(&run, "fail", "no-hmem", "tcp provider offers no FI_HMEM");
    let details = &run.result()["details"];
    assert_eq!(details["host"]["ret"], 0, "{details:#}");
    assert!(run.report["facts"]["probe"]["result"]["getinfo_error"]["code"] == -61);
    assert_cleaned_up(&run);
}

#[test]
fn no_cuda_driver_or_no_device_is_a_skip() {
    let run = probe_with(&["--provider", FAKEPROV_NAME], &[], None);
    assert_eq!(run.result()["status"], "skip");
    assert!(
        run.result()["summary"].as_str().unwrap().contains("libcuda.so.1"),
        "{:#}",
        run.result()
    );
    assert_eq!(run.code, Some(0));
    let run = probe(&[("FAKECUDA_INIT_RET", "100")]);
    assert_eq!(run.result()["status"], "skip");
    assert!(run.result()["summary"].as_str().unwrap().contains("CUDA_ERROR_NO_DEVICE"));
}

#[test]
fn allocation_failure_is_an_error_and_releases_the_context() {
    let run = probe(&[("FAKECUDA_ALLOC_RET", "2")]);
    let r = run.result();
    assert_eq!(r["status"], "error", "{r:#}");
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("cuMemAlloc_v2 returned 2 (CUDA_ERROR_OUT_OF_MEMORY)")
    );
    assert_eq!(run.code, Some(2));
    assert_eq!(run.trace, "", "no registration without memory");
    assert_cleaned_up(&run);
}

#[test]
fn a_hung_driver_meets_the_deadline() {
    let start = std::time::Instant::now();
    let run = probe_with(
        &["--provider", FAKEPROV_NAME, "--timeout", "2"],
        &[("FAKECUDA_HANG", "cuInit")],
        Some(&fakecuda_dir()),
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    let r = run.result();
    assert_eq!(r["status"], "error", "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains("within 2 s (hung in cuInit)"), "{r:#}");
}

#[test]
fn chosen_gpus_only() {
    let run = probe_with(
        &["--provider", FAKEPROV_NAME, "--gpu", "1"],
        &[("FAKECUDA_DEVICES", "2")],
        Some(&fakecuda_dir()),
    );
    let gpus = run.report["facts"]["probe"]["result"]["gpus"].as_array().unwrap().clone();
    assert_eq!(gpus.len(), 1);
    assert_eq!(gpus[0]["ordinal"], 1);
    assert_eq!(gpus[0]["pci_bus_id"], "0000:54:00.0");
    // Two GPUs, one result each.
    let run = probe_with(
        &["--provider", FAKEPROV_NAME, "--gpu", "0,1"],
        &[("FAKECUDA_DEVICES", "2")],
        Some(&fakecuda_dir()),
    );
    assert_eq!(run.report["results"].as_array().unwrap().len(), 2);
    assert_cleaned_up(&run);
}

#[test]
fn check_runs_the_probe_only_where_it_applies() {
    // Without an efa provider (CI), the probe is skipped with the reason; --no-probe says so.
    let o = common::run(&["check", "--only", "probe.mr", "--format", "json"]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["results"][0]["status"], "skip");
    let o = common::run(&["check", "--only", "probe.mr", "--no-probe", "--format", "json"]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["results"][0]["summary"].as_str().unwrap().contains("--no-probe"));
    // A root that is not the live node never probes.
    let r = common::check_only(&common::fixture("p5-healthy"), "probe.mr");
    assert!(r["results"][0]["summary"].as_str().unwrap().contains("live node only"), "{r:#}");
}

#[test]
fn a_captured_probe_is_judged_again_on_replay() {
    let run = probe(&[("FAKEPROV_CUDA_RET", "-14"), ("FAKEPROV_DMABUF_RET", "-14")]);
    let probe_facts = run.report["facts"]["probe"].clone();
    // A captured tree whose manifest carries that measurement.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    common::copy_tree(&common::fixture("gb200-arm64"), &root);
    common::inject_native(&root, "probe", probe_facts);
    let r = common::check_only(&root, "probe.mr");
    assert_eq!(r["results"][0]["value"], "efault", "{r:#}");
    assert_eq!(r["results"][0]["summary"], run.result()["summary"]);
}

/// On a terminal (a pty from script(1)), the probe's run is a status line on stderr, with
/// its clock and deadline; the report on stdout is untouched.
#[test]
fn a_running_probe_shows_a_status_line_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let line = format!(
        "exec {} probe mr --provider {FAKEPROV_NAME} --timeout 2 --format json > {}",
        shell_words::quote(env!("CARGO_BIN_EXE_efa-doctor")),
        shell_words::quote(out.to_str().unwrap())
    );
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["60", "script", "-qec", &line, "/dev/null"]);
    for v in INHERITED {
        cmd.env_remove(v);
    }
    cmd.env("LD_LIBRARY_PATH", fakecuda_dir())
        .env("FI_PROVIDER_PATH", fakeprov_dir())
        .env("FAKECUDA_HANG", "cuInit")
        .stdin(std::process::Stdio::null());
    let o = cmd.output().expect("script(1) from util-linux runs");
    let seen = String::from_utf8_lossy(&o.stdout);
    let status = "\refa-doctor: probe.mr, registering GPU memory: ";
    assert!(seen.contains(&format!("{status}0 s (at most 2 s)")), "{seen:?}");
    assert!(seen.contains(&format!("{status}1 s (at most 2 s)")), "{seen:?}");
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["results"][0]["status"], "error", "{report:#}");
    assert!(!std::fs::read_to_string(&out).unwrap().contains("registering GPU memory:"));
}
