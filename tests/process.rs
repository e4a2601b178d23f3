//! Workload inspection on the p5-workers fixture: one process per failure mode (see its
//! README.md), judged through the command line as a user runs it.

mod common;

use common::{fixture, run, stdout};
use serde_json::Value;

const SECRETS: [&str; 3] = [
    "hf_workerSECRETshouldNeverLeak42",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "sk-vllmSECRETapikey",
];

fn root() -> String {
    fixture("p5-workers").display().to_string()
}

fn registration(pid: &str, name: &str) -> String {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("p5-workers/registrations.json")).unwrap(),
    )
    .unwrap();
    v[pid][name].as_str().unwrap().to_string()
}

fn check(extra: &[&str]) -> Value {
    let root = root();
    let mut args = vec!["check", "--root", root.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(matches!(o.status.code(), Some(0..=2)), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The one result of `id` for process `pid`.
fn for_pid<'a>(r: &'a Value, id: &str, pid: u32) -> &'a Value {
    let needle = format!("(pid {pid})");
    let all: Vec<&Value> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["id"] == id && x["summary"].as_str().unwrap().contains(&needle))
        .collect();
    assert_eq!(all.len(), 1, "{id} for pid {pid}: {all:#?}");
    all[0]
}

fn assert_result(r: &Value, status: &str, summary: &str, evidence: &str, remediation: &str) {
    assert_eq!(r["status"], status, "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains(summary), "summary lacks {summary:?}: {r:#}");
    assert!(r["evidence"].to_string().contains(evidence), "evidence lacks {evidence:?}: {r:#}");
    if status == "fail" || status == "warn" {
        assert!(
            r["remediation"].as_str().unwrap_or("").contains(remediation),
            "remediation lacks {remediation:?}: {r:#}"
        );
    }
}

#[test]
fn discovery_finds_the_workers_and_not_the_shell() {
    let r = check(&["--only", "process.memlock"]);
    let ps = &r["facts"]["processes"];
    assert_eq!(ps["selection"], "discovery");
    let pids: Vec<u64> =
        ps["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(
        pids,
        [2001, 2002, 2003, 2004, 2005, 2006, 2008, 2009, 2010, 2011, 2012, 2013, 2014, 2015, 2016]
    );
    let frameworks: Vec<&str> = ps["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["framework"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        frameworks,
        [
            "vllm", "vllm", "sglang", "torch", "dynamo", "trtllm", "vllm", "trtllm", "dynamo",
            "sglang", "", "vllm", "sglang", "torch", "torch"
        ]
    );
}

#[test]
fn nixl_backend_per_framework() {
    let r = check(&["--only", "process.nixl-backend"]);
    // LIBFABRIC running: plugin executed, libfabric and libefa mapped, uverbs0 open.
    let ok = for_pid(&r, "process.nixl-backend", 2001);
    assert_result(ok, "pass", "runs NIXL's LIBFABRIC backend", "/dev/infiniband/uverbs0 open", "");
    assert_eq!(ok["details"]["running"], serde_json::json!(["LIBFABRIC"]));
    assert_eq!(ok["details"]["configured"]["backends"], serde_json::json!(["LIBFABRIC"]));
    // vLLM with NixlConnector and no backends list: its default, UCX, on EFA (FM01, FM02).
    let ucx = for_pid(&r, "process.nixl-backend", 2002);
    assert_result(
        ucx,
        "fail",
        "UCX backend on an EFA node",
        "UCX transports loaded: cma, cuda_copy/cuda_ipc, ib",
        "\"backends\":[\"LIBFABRIC\"]",
    );
    assert_eq!(ucx["value"], "UCX");
    assert!(ucx["evidence"].to_string().contains("NixlConnector's default"));
    assert_result(
        for_pid(&r, "process.nixl-backend", 2006),
        "pass",
        "LIBFABRIC",
        "libplugin_LIBFABRIC.so r-xp",
        "",
    );
    // The NCCL trainer has no NIXL: no result for it.
    assert!(!r["results"].to_string().contains("(pid 2004)"));
}

/// Issue 15 item 2: the configured backend against the one that really runs, for every
/// framework's way of configuring it. A mismatch is a finding of its own.
#[test]
fn configured_but_not_running_is_a_mismatch_per_framework() {
    let r = check(&["--only", "process.nixl-backend"]);
    // (pid, where the configuration was read, what shows LIBFABRIC did not run)
    let cases: [(u32, &str, &str, &str); 5] = [
        // SGLang: the plugin was only opened (r--p) while UCX runs (FM03).
        (
            2003,
            "SGLANG_DISAGGREGATION_NIXL_BACKEND",
            "mapped without r-xp",
            "SGLANG_DISAGGREGATION_NIXL_BACKEND=LIBFABRIC",
        ),
        // vLLM: the plugin's code is mapped (loaded for its parameters), but the efa
        // provider never opened the device.
        (
            2008,
            "--kv-transfer-config kv_connector_extra_config.backends",
            "no /dev/infiniband/uverbs* open",
            "kv_connector_extra_config",
        ),
        (
            2009,
            "TRTLLM_NIXL_KVCACHE_BACKEND",
            "UCX: running",
            "TRTLLM_NIXL_KVCACHE_BACKEND=LIBFABRIC",
        ),
        (
            2010,
            "DYN_KVBM_NIXL_BACKEND_LIBFABRIC",
            "UCX: running",
            "DYN_KVBM_NIXL_BACKEND_LIBFABRIC=true",
        ),
        // A container whose nixl _api.py default was patched, read in its own filesystem.
        (2012, "nixl_cu13/_api.py (patched", "UCX: running", "nixl_agent_config"),
    ];
    for (pid, source, why, fix) in cases {
        let m = for_pid(&r, "process.nixl-backend", pid);
        assert_result(m, "fail", "but runs UCX", why, fix);
        assert_eq!(m["value"], "mismatch", "{pid}");
        assert!(m["evidence"].to_string().contains(source), "{pid}: {source}: {m:#}");
        assert!(m["summary"].as_str().unwrap().contains("configured LIBFABRIC"), "{pid}");
        assert!(m["remediation"].as_str().unwrap().contains("did not take effect"), "{pid}");
        assert_eq!(m["details"]["running"], serde_json::json!(["UCX"]), "{pid}");
    }
    // UCX chosen on purpose (one node, NVLink through cuda_ipc) is not a failure.
    let chosen = for_pid(&r, "process.nixl-backend", 2011);
    assert_result(chosen, "pass", "UCX backend as configured", "cuda_copy/cuda_ipc", "");
}

#[test]
fn pid_selects_one_worker() {
    let r = check(&["--pid", "2002", "--only", "process.nixl-backend"]);
    assert_eq!(r["facts"]["processes"]["selection"], "--pid");
    assert_eq!(r["results"].as_array().unwrap().len(), 1);
    assert_eq!(r["results"][0]["status"], "fail");
    // A pid that is not there is a usage error (exit 2), not a run that judges nothing.
    let root = root();
    for extra in [&["99999"][..], &["2002,99999"][..]] {
        let mut args = vec!["check", "--root", root.as_str(), "--only", "process", "--pid"];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--pid 99999: no such process"), "{err}");
        assert!(o.stdout.is_empty(), "no report is judged without the process");
    }
}

#[test]
fn registered_memory_contract_and_classes() {
    let kv = registration("2001", "kv_cache");
    let bounce = registration("2001", "bounce");
    let host_kv = registration("2006", "kv_cache");
    let (a, b, c) =
        (format!("{kv}:1073741824"), format!("{bounce}:2097152"), format!("{host_kv}:4294967296"));
    let r =
        check(&["--only", "process.registered-memory", "--addr", &a, "--addr", &b, "--addr", &c]);
    // GPU KV cache plus a small pinned bounce buffer: pass.
    let ok = for_pid(&r, "process.registered-memory", 2001);
    assert_result(
        ok,
        "pass",
        "counted 2 workload registration(s): 1 device, 1 host, 0 unmapped",
        "---p",
        "",
    );
    let regions = ok["details"]["regions"].as_array().unwrap();
    assert_eq!(
        regions.len(),
        2,
        "each address is judged in the process that maps it: {regions:#?}"
    );
    assert_eq!(regions[0]["address"], kv.as_str());
    assert_eq!(regions[0]["size"], 1073741824u64);
    assert_eq!(regions[0]["class"], "device");
    assert_eq!(regions[1]["class"], "host");
    assert!(regions[1]["vma"].as_str().unwrap().ends_with("/dev/zero (deleted)"));
    // TensorRT-LLM's 4 GiB KV cache in anonymous host memory (FM04).
    let bad = for_pid(&r, "process.registered-memory", 2006);
    assert_result(bad, "fail", "registered only host memory", "host in", "GPU memory");
    assert_eq!(bad["details"]["regions"][0]["class"], "host");
    assert_eq!(bad["value"], "host-only");
    // Other workers have no address to judge.
    assert_eq!(for_pid(&r, "process.registered-memory", 2002)["status"], "skip");
}

#[test]
fn an_address_no_process_maps_is_unmapped() {
    let r =
        check(&["--pid", "2001", "--only", "process.registered-memory", "--addr", "0x10000:4096"]);
    let res = &r["results"][0];
    assert_result(res, "warn", "0 device, 0 host, 1 unmapped", "no mapping", "FI_LOG_LEVEL=info");
    assert_eq!(res["details"]["regions"][0]["class"], "unmapped");
    // A host registration of unknown size beside GPU memory is not called KV-sized.
    let kv = registration("2001", "kv_cache");
    let bounce = registration("2001", "bounce");
    let r = check(&[
        "--pid",
        "2001",
        "--only",
        "process.registered-memory",
        "--addr",
        &kv,
        "--addr",
        &bounce,
    ]);
    let res = &r["results"][0];
    assert_result(res, "pass", "1 device, 1 host", "size unknown", "");
    assert!(res["summary"].as_str().unwrap().contains("unknown size"), "{res:#}");
}

#[test]
fn bad_addr_is_a_usage_error() {
    let root = root();
    let o = run(&["check", "--root", &root, "--addr", "not-an-address"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a hex address"));
}

#[test]
fn libfabric_copies_in_one_process() {
    let r = check(&["--only", "process.libfabric-copies"]);
    let two = for_pid(&r, "process.libfabric-copies", 2004);
    assert_result(
        two,
        "fail",
        "2 different libfabric libraries",
        "libfabric-5a1f3c2e.so.1.20.0",
        "same libfabric.so.1",
    );
    assert_result(
        for_pid(&r, "process.libfabric-copies", 2001),
        "pass",
        "one libfabric",
        "/opt/amazon/efa/lib/libfabric.so.1.32.0",
        "",
    );
}

/// Issue 15 item 5: a container process's libraries resolve in its own filesystem
/// (`/proc/PID/root`), not the node's. pid 2015's image has its own libfabric and an
/// aws-ofi-nccl built against it: what it maps is right, although the node's aws-ofi-nccl
/// resolves the EFA installer's libfabric. pid 2016 LD_PRELOADs another one.
#[test]
fn container_libraries_resolve_in_the_container() {
    let r = check(&["--only", "process.libfabric-copies"]);
    assert_result(
        for_pid(&r, "process.libfabric-copies", 2015),
        "pass",
        "one libfabric",
        "/usr/lib/x86_64-linux-gnu/libfabric.so.1.26.0",
        "",
    );
    let pre = for_pid(&r, "process.libfabric-copies", 2016);
    assert_result(
        pre,
        "fail",
        "but the plugin resolves /usr/lib/x86_64-linux-gnu/libfabric.so.1 in the process's own filesystem",
        "read through proc/2016/root",
        "LD_PRELOAD",
    );
    assert_eq!(pre["value"], "mismatch");
    // The facts say what was read in the container, and a snapshot keeps them.
    let f = check(&["--pid", "2015", "--only", "process.libfabric-copies"]);
    let libs = &f["facts"]["processes"]["processes"][0]["libs"];
    assert_eq!(
        libs["ofi_nccl"]["resolves_to"], "/usr/lib/x86_64-linux-gnu/libfabric.so.1",
        "{libs:#}"
    );
    assert!(
        libs["libfabric_defines"]["/usr/lib/x86_64-linux-gnu/libfabric.so.1.26.0"]
            .to_string()
            .contains("FABRIC_1.8")
    );
}

#[test]
fn environment_findings() {
    let r = check(&["--only", "process.environment"]);
    let trainer = for_pid(&r, "process.environment", 2004);
    assert_result(
        trainer,
        "fail",
        "FI_PROVIDER=tcp excludes the efa provider",
        "FI_PROVIDER=tcp",
        "FI_PROVIDER=efa",
    );
    for fragment in
        ["FI_EFA_USE_HUGE_PAGE=1 but the node has no free 2 MiB huge pages", "NCCL_NET_PLUGIN=none"]
    {
        assert!(trainer["summary"].as_str().unwrap().contains(fragment), "{fragment}: {trainer:#}");
    }
    let dynamo = for_pid(&r, "process.environment", 2005);
    assert_result(
        dynamo,
        "fail",
        "NIXL_PLUGIN_DIR=/opt/nixl/lib/x86_64-linux-gnu/plugins does not exist",
        "NIXL_PLUGIN_DIR=",
        "NIXL_PLUGIN_DIR",
    );
    assert!(dynamo["summary"].as_str().unwrap().contains("UCX_TLS set but UCX is not loaded"));
    let ucx = for_pid(&r, "process.environment", 2002);
    assert_result(
        ucx,
        "warn",
        "asks for InfiniBand transports",
        "UCX_TLS=rc,cuda_copy,cuda_ipc",
        "LIBFABRIC",
    );
    let clean = for_pid(&r, "process.environment", 2001);
    assert_result(clean, "pass", "environment consistent", "FI_PROVIDER=efa", "");
    // Variables outside the allow-list are counted, never shown.
    let facts = check(&["--pid", "2001", "--only", "process.environment"]);
    assert_eq!(facts["facts"]["processes"]["processes"][0]["env_withheld"], 2);
}

#[test]
fn worker_memlock() {
    let r = check(&["--only", "process.memlock"]);
    assert_result(
        for_pid(&r, "process.memlock", 2004),
        "fail",
        "may lock only 64 KiB",
        "soft 64 KiB",
        "memlock=-1:-1",
    );
    assert_result(for_pid(&r, "process.memlock", 2001), "pass", "unlimited", "unlimited", "");
}

#[test]
fn secrets_in_environ_and_cmdline_never_appear_in_any_format() {
    let root = root();
    for format in ["human", "json", "junit", "prometheus", "npd"] {
        let o = run(&["check", "--root", &root, "--format", format]);
        let out = stdout(&o);
        // NPD's line is at most 80 bytes (report::npd::MAX_LINE_BYTES).
        let min = if format == "npd" { 20 } else { 100 };
        assert!(out.len() > min, "{format}");
        for s in SECRETS {
            assert!(!out.contains(s), "{format} output leaks {s}");
        }
        assert!(
            !out.contains("HF_TOKEN") && !out.contains("AWS_SECRET_ACCESS_KEY"),
            "{format} names a withheld variable"
        );
    }
    // The API key given on vLLM's command line is masked, the rest of the line kept.
    let r = check(&["--pid", "2001", "--only", "process.memlock"]);
    let cmd = r["facts"]["processes"]["processes"][0]["cmdline"].to_string();
    assert!(cmd.contains("--api-key") && cmd.contains("--kv-transfer-config"), "{cmd}");
}

#[test]
fn snapshot_of_workers_keeps_their_files_and_drops_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("workers.tar.gz");
    let root = root();
    let o = run(&["snapshot", "--root", &root, "-o", snap.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = common::gunzip_text(&snap);
    for s in SECRETS {
        assert!(!text.contains(s), "snapshot holds {s}");
    }
    // Replaying the snapshot judges the same processes the same way.
    let live = check(&[
        "--only",
        "process.nixl-backend,process.environment,process.memlock,process.libfabric-copies",
    ]);
    // Read in the container's own filesystem at capture; replayed from the manifest.
    assert!(live["results"].to_string().contains("(pid 2016) runs aws-ofi-nccl with"));
    let o = run(&[
        "check",
        "--snapshot",
        snap.to_str().unwrap(),
        "--only",
        "process.nixl-backend,process.environment,process.memlock,process.libfabric-copies",
        "--format",
        "json",
    ]);
    let replay: Value = serde_json::from_slice(&o.stdout).unwrap();
    let verdicts = |r: &Value| -> Vec<(String, String)> {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["status"].to_string(), x["summary"].to_string()))
            .collect()
    };
    assert_eq!(verdicts(&live), verdicts(&replay));
}

fn log_check(pid: &str, log: &str) -> Value {
    let log = fixture("p5-workers").join(log).display().to_string();
    check(&["--pid", pid, "--only", "process.registered-memory", "--log", &log])
}

/// Issue 15 item 3: the efa provider logs its packet pools with the same `Registered memory
/// at` line as the workload's buffers; only the workload's are counted. The KV cache is
/// CUDA VMM memory (PyTorch expandable segments) inside one large `---p` reservation.
#[test]
fn provider_pools_are_ignored_and_vmm_memory_is_device() {
    let r = log_check("2013", "registrations-2013.log");
    let res = &r["results"][0];
    assert_result(
        res,
        "pass",
        "counted 1 workload registration(s): 1 device, 0 host, 0 unmapped; ignored 2 of the provider's own",
        "---p",
        "",
    );
    let regions = res["details"]["regions"].as_array().unwrap();
    let kv = registration("2013", "kv_cache");
    let by = |a: &str| {
        regions.iter().find(|x| x["address"] == a).unwrap_or_else(|| panic!("{a}: {regions:#?}"))
    };
    assert_eq!(by(&kv)["class"], "device");
    assert_eq!(by(&kv)["counted"], "workload");
    assert_eq!(by(&kv)["origin"], "workload", "NIXL named the buffer libfabric also logged");
    for pool in ["pool_hugepage", "pool_anon"] {
        let p = by(&registration("2013", pool));
        assert_eq!(
            (p["class"].as_str(), p["counted"].as_str()),
            (Some("host"), Some("provider-pool")),
            "{pool}"
        );
    }
    // libfabric's lines alone cannot tell a pool from a host KV buffer: nothing is judged.
    let r = log_check("2013", "registrations-2013-provider-only.log");
    let res = &r["results"][0];
    assert_eq!(res["status"], "skip", "{res:#}");
    assert!(res["summary"].as_str().unwrap().contains("packet pools"), "{res:#}");
    assert!(res["summary"].as_str().unwrap().contains("ignored 1"), "the huge-page pool: {res:#}");
}

/// Issue 15 item 3: registering only host memory for KV transfers is a finding whatever the
/// sizes (two 16 MiB pinned buffers, under the 64 MiB "KV-sized" bar).
#[test]
fn host_only_registration_is_a_finding_whatever_the_sizes() {
    let r = log_check("2014", "registrations-2014.log");
    let res = &r["results"][0];
    assert_result(
        res,
        "fail",
        "counted 2 workload registration(s): 0 device, 2 host, 0 unmapped",
        "/dev/zero (deleted)",
        "GPU memory",
    );
    assert!(res["summary"].as_str().unwrap().contains("only host memory"), "{res:#}");
    assert_eq!(res["value"], "host-only");
}
