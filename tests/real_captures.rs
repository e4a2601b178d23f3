//! Verdicts on captures taken on a real GPU machine with `efa-doctor snapshot` (see
//! tests/fixtures/real/README.md for exactly what was run there).

mod common;

use common::{fixture, run, stdout};
use serde_json::Value;

fn real(name: &str) -> String {
    fixture("real").join(name).display().to_string()
}

fn json_report(args: &[&str]) -> Value {
    let o = run(args);
    assert!(
        matches!(o.status.code(), Some(0..=2)),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&o)))
}

fn result<'a>(r: &'a Value, id: &str) -> &'a Value {
    common::sole_result(r, id)
}

/// The ids of a report's failed results, in report order.
fn failures(r: &Value) -> Vec<&str> {
    let results = r["results"].as_array().unwrap();
    results.iter().filter(|x| x["status"] == "fail").map(|x| x["id"].as_str().unwrap()).collect()
}

fn status(r: &Value, id: &str) -> String {
    result(r, id)["status"].as_str().unwrap().to_string()
}

/// The buffers the NIXL script registered, as it printed them: (address, size, kind).
fn buffers(ready: &str) -> Vec<(String, u64, String)> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(real(ready)).unwrap()).unwrap();
    v["buffers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["address"].as_str().unwrap().to_string(),
                b["size"].as_u64().unwrap(),
                b["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ucx_pid() -> String {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(real("h200-nixl-ucx.ready.json")).unwrap())
            .unwrap();
    v["pid"].to_string()
}

#[test]
fn registered_cuda_buffers_are_device_and_pinned_host_buffers_are_host() {
    let snap = real("h200-nixl-ucx.tar.gz");
    let pid = ucx_pid();
    let bufs = buffers("h200-nixl-ucx.ready.json");
    assert_eq!(bufs.len(), 4);
    let addrs: Vec<String> = bufs.iter().map(|(a, s, _)| format!("{a}:{s}")).collect();
    let mut args = vec![
        "check",
        "--snapshot",
        &snap,
        "--pid",
        &pid,
        "--only",
        "process.registered-memory",
        "--format",
        "json",
    ];
    for a in &addrs {
        args.extend(["--addr", a]);
    }
    let r = json_report(&args);
    let res = result(&r, "process.registered-memory");
    // The JSON contract: details.regions = [{address, size, class}].
    let regions = res["details"]["regions"].as_array().expect("details.regions");
    assert_eq!(
        regions.len(),
        4,
        "the log's registrations and --addr name the same buffers once: {regions:#?}"
    );
    for (addr, size, kind) in &bufs {
        let region = regions
            .iter()
            .find(|x| x["address"] == addr.as_str())
            .unwrap_or_else(|| panic!("{addr} missing"));
        assert_eq!(region["size"], *size);
        let want = if kind == "cuda" { "device" } else { "host" };
        assert_eq!(region["class"], want, "{addr} ({kind}): {region}");
    }
    // The pinned host buffers are the CPU's `/dev/zero (deleted)` shared mappings.
    assert!(
        regions
            .iter()
            .filter(|x| x["class"] == "host")
            .all(|x| x["vma"].as_str().unwrap().ends_with("/dev/zero (deleted)"))
    );
    assert!(
        regions
            .iter()
            .filter(|x| x["class"] == "device")
            .all(|x| x["vma"].as_str().unwrap().contains(" ---p "))
    );
    // 64 MiB registered in host memory is a KV cache bounced through the CPU.
    assert_eq!(res["status"], "fail");
    assert!(res["remediation"].as_str().unwrap().contains("kv_buffer_device"));
}

#[test]
fn the_captured_nixl_log_alone_gives_the_registered_addresses() {
    // NIXL's UCX backend logs `registered N bytes at 0x...` at NIXL_LOG_LEVEL=DEBUG; the
    // snapshot carries that log, so no --addr is needed.
    let snap = real("h200-nixl-ucx.tar.gz");
    let r = json_report(&[
        "check",
        "--snapshot",
        &snap,
        "--only",
        "process.registered-memory",
        "--format",
        "json",
    ]);
    let regions =
        result(&r, "process.registered-memory")["details"]["regions"].as_array().unwrap().clone();
    let classes: Vec<&str> = regions.iter().map(|x| x["class"].as_str().unwrap()).collect();
    assert_eq!(classes.iter().filter(|c| **c == "device").count(), 2, "{regions:#?}");
    assert_eq!(classes.iter().filter(|c| **c == "host").count(), 2, "{regions:#?}");
    assert!(regions.iter().all(|x| x["source"].as_str().unwrap().contains("nixl-UCX.log:")));
}

#[test]
fn the_backend_is_reported_as_ucx() {
    let snap = real("h200-nixl-ucx.tar.gz");
    let r = json_report(&["check", "--snapshot", &snap, "--format", "json"]);
    let backend = result(&r, "process.nixl-backend");
    assert_eq!(backend["value"], "UCX", "{backend:#}");
    // No EFA device on that machine: UCX is the right choice there.
    assert_eq!(backend["status"], "pass");
    assert!(backend["evidence"].to_string().contains("libplugin_UCX.so r-xp"));
    let from_log = result(&r, "nixl.backend");
    assert_eq!(from_log["value"], "UCX");
    // Discovery found the worker without --pid.
    assert_eq!(r["facts"]["processes"]["selection"], "discovery");
    assert_eq!(r["facts"]["processes"]["processes"][0]["pid"].to_string(), ucx_pid());
}

#[test]
fn nixl_telemetry_scrape_shows_the_bytes_moved() {
    let snap = real("h200-nixl-ucx.tar.gz");
    let prom = real("h200-nixl-ucx.prom");
    let r = json_report(&[
        "check",
        "--snapshot",
        &snap,
        "--metrics",
        &prom,
        "--only",
        "kv.metrics",
        "--format",
        "json",
    ]);
    let m = result(&r, "kv.metrics");
    assert_eq!(m["status"], "pass", "{m:#}");
    // Two 64 MiB transfers by the prefill agent.
    assert_eq!(m["value"], "134217728");
    assert_eq!(m["details"]["first"]["sources"], serde_json::json!(["nixl"]));
}

#[test]
fn libfabric_plugin_needing_a_newer_libfabric_is_caught_on_disk_and_in_the_log() {
    // On the machine, NIXL printed `version 'FABRIC_1.10' not found`: stack.nixl predicts it
    // from the ELF version needs alone, nixl.backend-init reads it from the log.
    let snap = real("h200-nixl-libfabric.tar.gz");
    let r = json_report(&["check", "--snapshot", &snap, "--format", "json"]);
    let stack = result(&r, "stack.nixl");
    assert_eq!(stack["status"], "fail");
    assert!(stack["summary"].as_str().unwrap().contains("FABRIC_1.10"), "{stack:#}");
    // One root cause, one failure: the worker's log (pid 841 in NIXL's glog prefix) shows
    // that very plugin file failing to load, so the worker and the log point at stack.nixl.
    let init = result(&r, "nixl.backend-init");
    assert_eq!(init["status"], "skip", "{init:#}");
    assert!(init["summary"].as_str().unwrap().contains("see stack.nixl"), "{init:#}");
    assert!(init["evidence"].to_string().contains("version `FABRIC_1.10' not found"), "{init:#}");
    let backend = result(&r, "process.nixl-backend");
    assert_eq!(backend["status"], "skip", "{backend:#}");
    assert_eq!(backend["value"], "plugin-unloadable", "{backend:#}");
    let s = backend["summary"].as_str().unwrap();
    assert!(
        s.contains("(pid 841)") && s.contains("see stack.nixl") && s.contains("FABRIC_1.10"),
        "{s}"
    );
    let ev = backend["evidence"].to_string();
    assert!(
        ev.contains("no libplugin_*.so mapped") && ev.contains("nixl_plugin_manager.cpp"),
        "{ev}"
    );
    let fails = failures(&r);
    assert_eq!(fails, ["efa.devices", "stack.nixl"]);
    // Judged from the logs alone (no process inspected), the log verdict stands.
    let r = json_report(&[
        "check",
        "--snapshot",
        &snap,
        "--only",
        "nixl.backend-init",
        "--format",
        "json",
    ]);
    let init = result(&r, "nixl.backend-init");
    assert_eq!(init["status"], "fail", "{init:#}");
    assert!(
        init["summary"].as_str().unwrap().contains("version `FABRIC_1.10' not found"),
        "{init:#}"
    );
}

/// The log a capture holds (`.efa-doctor/logs/NAME` inside the snapshot), written to a file.
fn captured_log(snapshot: &str, name: &str, dir: &std::path::Path) -> String {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(real(snapshot)).unwrap());
    let mut ar = tar::Archive::new(gz);
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with(name) {
            let out = dir.join(name);
            entry.unpack(&out).unwrap();
            return out.to_string_lossy().into_owned();
        }
    }
    panic!("{name} not in {snapshot}");
}

#[test]
fn node_capture_replays_the_gpu_and_kernel_facts() {
    let snap = real("h200-node.tar.gz");
    let r = json_report(&["check", "--snapshot", &snap, "--format", "json"]);
    assert_eq!(status(&r, "gpu.inventory"), "pass");
    assert_eq!(status(&r, "kernel.gpudirect-path"), "pass");
    assert_eq!(status(&r, "efa.devices"), "fail");
    // The VM's kernel prints `-` for module use counts; nvidia is still seen as loaded.
    let modules = result(&r, "kernel.modules");
    assert!(!modules["summary"].as_str().unwrap().contains("nvidia is not loaded"), "{modules:#}");
    assert_eq!(r["facts"]["kernel"]["release"], "6.18.44-fc-v657-gpu");
}

/// Text of one XML element (first occurrence), for the fields compared below.
fn xml_field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("<{tag}> missing")) + open.len();
    let end = xml[start..].find("</").unwrap() + start;
    xml[start..end].trim()
}

#[test]
fn nvml_facts_agree_with_nvidia_smi_on_the_same_machine() {
    // nvidia-smi -q -x was taken in the same run as the node capture.
    let xml = std::fs::read_to_string(real("h200-nvidia-smi-q.xml")).unwrap();
    let snap = real("h200-node.tar.gz");
    let r = json_report(&["check", "--snapshot", &snap, "--format", "json"]);
    let gpu = &r["facts"]["gpu"];
    assert_eq!(gpu["driver_version"], xml_field(&xml, "driver_version"));
    assert_eq!(gpu["cuda_driver_version"], xml_field(&xml, "cuda_version"));
    let g = &gpu["gpus"][0];
    assert_eq!(g["name"], xml_field(&xml, "product_name"));
    assert_eq!(g["uuid"], xml_field(&xml, "uuid"));
    // nvidia-smi prints an 8-digit PCI domain, NVML's short form 4.
    let smi_bus = xml_field(&xml, "pci_bus_id").to_ascii_lowercase();
    assert_eq!(
        smi_bus.strip_prefix("0000").unwrap(),
        g["pci_bus_id"].as_str().unwrap().to_ascii_lowercase()
    );
    assert_eq!(g["persistence_mode"], xml_field(&xml, "persistence_mode") == "Enabled");
    assert_eq!(g["pcie_gen_current"].to_string(), xml_field(&xml, "current_link_gen"));
    assert_eq!(g["pcie_gen_max"].to_string(), xml_field(&xml, "max_link_gen"));
    assert_eq!(format!("{}x", g["pcie_width_current"]), xml_field(&xml, "current_link_width"));
    assert_eq!(format!("{}x", g["pcie_width_max"]), xml_field(&xml, "max_link_width"));
    assert_eq!(g["ecc_enabled"], xml_field(&xml, "current_ecc") == "Enabled");
    assert_eq!(g["ecc_pending"], xml_field(&xml, "pending_ecc") == "Enabled");
    let rows = &g["remapped_rows"];
    assert_eq!(rows["correctable"].to_string(), xml_field(&xml, "remapped_row_corr"));
    assert_eq!(rows["uncorrectable"].to_string(), xml_field(&xml, "remapped_row_unc"));
    assert_eq!(rows["pending"], xml_field(&xml, "remapped_row_pending") == "Yes");
    assert_eq!(rows["failure"], xml_field(&xml, "remapped_row_failure") == "Yes");
    assert_eq!(gpu["gpus"].as_array().unwrap().len().to_string(), xml_field(&xml, "attached_gpus"));
}

#[test]
fn the_planted_secret_never_leaves_the_worker() {
    // The NIXL process ran with HF_TOKEN=hf_plantedSECRETvalue0123 in its environment.
    const SECRET: &str = "hf_plantedSECRETvalue0123";
    let snap = real("h200-nixl-ucx.tar.gz");
    let text = common::gunzip_text(std::path::Path::new(&snap));
    assert!(!text.contains(SECRET));
    assert!(!text.contains("HF_TOKEN"));
    for format in ["human", "json", "junit", "prometheus", "npd"] {
        let o = run(&["check", "--snapshot", &snap, "--format", format]);
        let out = stdout(&o);
        assert!(!out.is_empty(), "{format}");
        assert!(!out.contains(SECRET) && !out.contains("HF_TOKEN"), "{format} leaks the secret");
    }
}

#[test]
fn json_contract_with_root_pid_and_log() {
    // The contract, verbatim: check --root DIR --pid PID --log FILE --only
    // process.registered-memory --format json, on the capture unpacked as a plain tree.
    let dir = tempfile::tempdir().unwrap();
    common::unpack(std::path::Path::new(&real("h200-nixl-ucx.tar.gz")), dir.path());
    let log = dir.path().join(".efa-doctor/logs/00-nixl-UCX.log");
    let (root, log, pid) = (dir.path().display().to_string(), log.display().to_string(), ucx_pid());
    let r = json_report(&[
        "check",
        "--root",
        &root,
        "--pid",
        &pid,
        "--log",
        &log,
        "--only",
        "process.registered-memory",
        "--format",
        "json",
    ]);
    let regions =
        result(&r, "process.registered-memory")["details"]["regions"].as_array().unwrap().clone();
    let bufs = buffers("h200-nixl-ucx.ready.json");
    assert_eq!(regions.len(), bufs.len());
    for region in &regions {
        let address = region["address"].as_str().unwrap();
        assert!(address.starts_with("0x"));
        let (_, size, kind) = bufs.iter().find(|(a, _, _)| a == address).unwrap();
        assert_eq!(region["size"], *size);
        assert_eq!(region["class"], if kind == "cuda" { "device" } else { "host" });
    }
}

#[test]
fn probe_on_real_cuda_memory_through_the_system_libfabric() {
    // `efa-doctor probe mr --provider tcp -f json` on the H200: Ubuntu's libfabric 1.17 has no
    // CUDA support, so the tcp provider answers NIXL's hints only without FI_HMEM.
    let probe: Value =
        serde_json::from_str(&std::fs::read_to_string(real("h200-probe-mr-tcp.json")).unwrap())
            .unwrap();
    let r = result(&probe, "probe.mr");
    assert_eq!(r["status"], "fail");
    assert_eq!(r["value"], "no-hmem");
    let g = &probe["facts"]["probe"]["result"]["gpus"][0];
    assert_eq!(g["memory_type"], "device", "cuMemAlloc_v2 gave real device memory");
    assert_eq!(g["dmabuf_export"], "flags=0", "the PCIe mapping flag is refused, flags=0 exports");
    assert_eq!(g["host"]["ret"], 0);
    assert_eq!(g["pci_bus_id"], probe["facts"]["gpu"]["gpus"][0]["pci_bus_id"]);

    // Replayed from a capture that carries the measurement, the verdict is the same.
    let dir = tempfile::tempdir().unwrap();
    common::unpack(std::path::Path::new(&real("h200-node.tar.gz")), dir.path());
    common::inject_native(dir.path(), "probe", probe["facts"]["probe"].clone());
    let replay = common::check_only(dir.path(), "probe.mr");
    assert_eq!(result(&replay, "probe.mr")["summary"], r["summary"]);
}

/// A captured worker (`CAPTURE.tar.gz`, its pid from `CAPTURE.ready.json`) judged with
/// `--pid` and `--only ONLY`.
fn worker_report(capture: &str, only: &str) -> Value {
    let snap = real(&format!("{capture}.tar.gz"));
    let pid = ready_pid(&format!("{capture}.ready.json"));
    json_report(&["--snapshot", &snap, "--pid", &pid, "--only", only, "-f", "json"])
}

/// What both real mismatch workers (SGLang's variable says LIBFABRIC, the plugin did not
/// load, NIXL runs UCX) must show: the configuration, the running backend and its evidence.
fn assert_libfabric_configured_runs_ucx(b: &Value) {
    assert_eq!(
        (b["status"].as_str(), b["value"].as_str()),
        (Some("fail"), Some("mismatch")),
        "{b:#}"
    );
    assert!(b["summary"].as_str().unwrap().contains("configured LIBFABRIC"), "{b:#}");
    let ev = b["evidence"].to_string();
    assert!(ev.contains("SGLANG_DISAGGREGATION_NIXL_BACKEND"), "{ev}");
    assert!(ev.contains("libplugin_UCX.so r-xp") && ev.contains("UCX transports loaded"), "{ev}");
    assert_eq!(b["details"]["running"], serde_json::json!(["UCX"]));
}

/// The pid a capture's NIXL worker printed in its ready file.
fn ready_pid(ready: &str) -> String {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(real(ready)).unwrap()).unwrap();
    v["pid"].to_string()
}

/// Issue 15: a real NIXL worker (nixl-cu12 1.5.1, scripts/device/nixl_worker.py mismatch)
/// configured through SGLANG_DISAGGREGATION_NIXL_BACKEND=LIBFABRIC, whose LIBFABRIC plugin
/// could not load, falls back to UCX: the configuration did not take effect.
#[test]
fn a_real_worker_configured_for_libfabric_that_runs_ucx_is_a_mismatch() {
    let r = worker_report("cpu-nixl-mismatch", "process.nixl-backend");
    assert_libfabric_configured_runs_ucx(result(&r, "process.nixl-backend"));
}

/// Issue 15: the same worker judged with its own log (captured in the snapshot, as NIXL
/// printed it: `Failed to load plugin from .../libplugin_LIBFABRIC.so: libcudart.so.12: ...`
/// under the glog prefix with its pid). The configured-vs-running mismatch and the plugin
/// load failure are one root cause: one failure naming every piece of evidence, and the log
/// checks skip pointing at it. From the log alone, the log verdict stands.
#[test]
fn a_real_mismatch_and_its_log_are_one_failure() {
    let snap = real("cpu-nixl-mismatch.tar.gz");
    let pid = ready_pid("cpu-nixl-mismatch.ready.json");
    let r = json_report(&["--snapshot", &snap, "--pid", &pid, "-f", "json"]);
    let b = result(&r, "process.nixl-backend");
    assert_eq!(b["status"], "fail", "{b:#}");
    assert_eq!(b["value"], "mismatch", "{b:#}");
    let s = b["summary"].as_str().unwrap();
    assert!(s.contains("configured LIBFABRIC") && s.contains("runs UCX"), "{s}");
    assert!(s.contains("could not load or create LIBFABRIC (libcudart.so.12"), "{s}");
    let ev = b["evidence"].to_string();
    for needle in [
        "SGLANG_DISAGGREGATION_NIXL_BACKEND",
        "libplugin_UCX.so r-xp",
        "Failed to load plugin from",
        "createBackend: unsupported backend 'LIBFABRIC'",
        "00-mismatch.log",
    ] {
        assert!(ev.contains(needle), "{needle}: {ev}");
    }
    let fix = b["remediation"].as_str().unwrap();
    assert!(fix.contains("A library the plugin needs is missing"), "{fix}");
    assert_eq!(
        b["details"]["log"]["failed"]["LIBFABRIC"].as_str().map(|x| x.contains("libcudart")),
        Some(true)
    );
    for id in ["nixl.backend-init", "nixl.backend"] {
        let o = result(&r, id);
        assert_eq!(o["status"], "skip", "{o:#}");
        let s = o["summary"].as_str().unwrap();
        assert!(
            s.contains("see process.nixl-backend") && s.contains(&format!("(pid {pid})")),
            "{s}"
        );
        assert!(!o["evidence"].as_array().unwrap().is_empty(), "{o:#}");
    }
    // Exactly one failure for the backend (the host-only registrations are another finding).
    let fails = failures(&r);
    assert_eq!(fails, ["process.nixl-backend", "process.registered-memory"]);
    // `efa-doctor logs` on the same log: no process, so the log verdict is the finding.
    let dir = tempfile::tempdir().unwrap();
    let log = captured_log("cpu-nixl-mismatch.tar.gz", "00-mismatch.log", dir.path());
    let r = json_report(&["logs", &log, "--format", "json"]);
    let init = result(&r, "nixl.backend-init");
    assert_eq!(init["status"], "fail", "{init:#}");
    assert!(init["summary"].as_str().unwrap().contains("libcudart.so.12"), "{init:#}");
}

/// Issue 15: a real NIXL UCX worker (scripts/device/nixl_worker.py hostonly) that registered
/// only host buffers (2 x 32 MiB, below the KV-sized bar): a finding whatever the sizes,
/// from the addresses in its own NIXL log.
#[test]
fn a_real_worker_registering_only_host_memory_is_a_finding() {
    let r = worker_report("cpu-nixl-hostonly", "process.registered-memory");
    let m = result(&r, "process.registered-memory");
    assert_eq!(m["status"], "fail", "{m:#}");
    assert_eq!(m["value"], "host-only", "{m:#}");
    let regions = m["details"]["regions"].as_array().unwrap();
    let bufs = buffers("cpu-nixl-hostonly.ready.json");
    assert_eq!(regions.len(), bufs.len(), "{regions:#?}");
    for (addr, size, _) in &bufs {
        let reg = regions
            .iter()
            .find(|x| x["address"] == addr.as_str())
            .unwrap_or_else(|| panic!("{addr}"));
        assert_eq!(
            (reg["class"].as_str(), reg["size"].as_u64()),
            (Some("host"), Some(*size)),
            "{reg:#}"
        );
        assert_eq!(reg["counted"], "workload", "NIXL's own line: {reg:#}");
    }
}

/// Issue 15 on the H200 (`.dev-workload/run.sh`, nixl-cu13 1.5.1, torch with
/// `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`): the KV buffers are CUDA VMM memory
/// (`cuMemCreate`/`cuMemMap` inside the `---p` reservation PyTorch made with
/// `cuMemAddressReserve`), and still count as device memory.
#[test]
fn real_cuda_vmm_buffers_from_expandable_segments_are_device_memory() {
    let snap = real("h200-nixl-vmm.tar.gz");
    let pid = ready_pid("h200-nixl-vmm.ready.json");
    let dir = tempfile::tempdir().unwrap();
    common::unpack(std::path::Path::new(&snap), dir.path());
    let environ = std::fs::read(dir.path().join(format!("proc/{pid}/environ"))).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"),
        "the capture is of a worker on expandable segments"
    );
    let r = worker_report("h200-nixl-vmm", "process.registered-memory");
    let m = result(&r, "process.registered-memory");
    assert_eq!(
        (m["status"].as_str(), m["value"].as_str()),
        (Some("pass"), Some("device")),
        "{m:#}"
    );
    let regions = m["details"]["regions"].as_array().unwrap();
    let bufs = buffers("h200-nixl-vmm.ready.json");
    assert_eq!(regions.len(), bufs.len(), "{regions:#?}");
    for (addr, size, kind) in &bufs {
        assert_eq!(kind, "cuda");
        let reg = regions
            .iter()
            .find(|x| x["address"] == addr.as_str())
            .unwrap_or_else(|| panic!("{addr}"));
        assert_eq!(
            (reg["class"].as_str(), reg["size"].as_u64(), reg["counted"].as_str()),
            (Some("device"), Some(*size), Some("workload")),
            "{reg:#}"
        );
        assert!(reg["vma"].as_str().unwrap().contains(" ---p "), "{reg:#}");
    }
}

/// The same mismatch as `cpu-nixl-mismatch`, on the H200 with CUDA tensors: configured
/// LIBFABRIC, running UCX (the plugin needs libfabric's FABRIC_1.10; Ubuntu's 1.17 lacks it),
/// and the GPU memory it registered counted as device memory.
#[test]
fn a_real_gpu_worker_configured_for_libfabric_that_runs_ucx_is_a_mismatch() {
    let r = worker_report("h200-nixl-mismatch", "process.nixl-backend,process.registered-memory");
    assert_libfabric_configured_runs_ucx(result(&r, "process.nixl-backend"));
    let m = result(&r, "process.registered-memory");
    assert_eq!(
        (m["status"].as_str(), m["value"].as_str()),
        (Some("pass"), Some("device")),
        "{m:#}"
    );
}
