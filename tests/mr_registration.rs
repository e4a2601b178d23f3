//! `mr.registration`'s EFAULT (issue 15 item 6): libfabric #12019, the GB200 dma-buf bug,
//! only where libfabric is older than the fix (2.5.0) and the registration was CUDA
//! memory; on x86_64 the same old path fails only without the EFA driver's peer-memory
//! provider; with a fixed libfabric the device has no path to the GPU memory; and without
//! any sign of CUDA memory it may be host memory. Judged on fixture node roots (their arch
//! and libfabric) with the real log excerpt of NIXL issue 1609, as a user runs it.

mod common;

use common::{fixture, run};
use serde_json::Value;

/// The NIXL issue 1609 excerpt (GB200): CUDA dma-buf set up, then EFAULT.
fn nixl_1609() -> String {
    std::fs::read_to_string(fixture("logs").join("efa-dmabuf-mr-bad-address__nixl-issue-1609.log"))
        .unwrap()
}

const EFAULT: &str = "libfabric:4242:1764000000::efa:mr:efa_mr_reg_impl():893<warn> Unable to register MR of 1048576 bytes: Bad address, flags 0, ibv pd: 0x375ad3f0, total mr reg size 52232192, mr reg count 2\n";

fn judge(root: &str, log: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("worker.log");
    std::fs::write(&path, log).unwrap();
    let root = fixture(root).display().to_string();
    let o = run(&[
        "check",
        "--root",
        &root,
        "--only",
        "mr.registration",
        "--log",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r: Vec<&Value> =
        v["results"].as_array().unwrap().iter().filter(|r| r["id"] == "mr.registration").collect();
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0]["status"], "fail", "{:#}", r[0]);
    assert_eq!(r[0]["value"], "efault", "{:#}", r[0]);
    r[0].clone()
}

fn cause(r: &Value) -> &str {
    r["details"]["cause"].as_str().unwrap()
}

#[test]
fn gb200_with_the_old_libfabric_is_12019() {
    let r = judge("gb200-arm64", &nixl_1609());
    assert_eq!(cause(&r), "libfabric-12019");
    assert!(r["summary"].as_str().unwrap().contains("#12019"), "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains("libfabric 2.4.0amzn3.0"), "{r:#}");
    assert!(r["evidence"].to_string().contains("Get dma buf handle"), "the CUDA lines: {r:#}");
}

#[test]
fn a_fixed_libfabric_is_not_12019() {
    // p5-healthy's libfabric is 2.6.0amzn1.0: dma-buf first, ibv_reg_mr as fallback.
    let r = judge("p5-healthy", &nixl_1609());
    assert_eq!(cause(&r), "no-gpu-import");
    let s = r["summary"].as_str().unwrap();
    assert!(s.contains("not libfabric #12019") && s.contains("2.6.0amzn1.0"), "{s}");
    assert!(r["remediation"].as_str().unwrap().contains("dma-buf"), "{r:#}");
}

#[test]
fn x86_with_an_old_libfabric_lacks_peer_memory() {
    // The process logged the libfabric it ran (aws-ofi-nccl's line), older than the fix.
    let log = format!("{}NCCL INFO NET/OFI Using Libfabric version 2.4\n", nixl_1609());
    let r = judge("p5-healthy", &log);
    assert_eq!(cause(&r), "no-peer-memory");
    let s = r["summary"].as_str().unwrap();
    assert!(s.contains("peer-memory") && s.contains("not the GB200 bug"), "{s}");
}

#[test]
fn without_cuda_memory_it_is_not_called_a_gpu_bug() {
    let r = judge("gb200-arm64", EFAULT);
    assert_eq!(cause(&r), "host-memory");
    assert!(!r["summary"].as_str().unwrap().contains("#12019"), "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains("host memory"), "{r:#}");
}
