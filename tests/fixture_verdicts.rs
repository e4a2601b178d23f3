//! Every hand-made fixture gives its verdicts, with evidence naming the device or file and a
//! remediation. Each check has at least one fixture where it fails (or warns) and one where
//! it passes.

mod common;

use common::*;
use efa_doctor::report::Status::*;

#[test]
fn p5_healthy_passes_everything_that_applies() {
    let r = report("p5-healthy");
    for res in &r.results {
        assert!(
            matches!(res.status, Pass | Skip),
            "{} is {:?}: {}",
            res.id,
            res.status,
            res.summary
        );
    }
    assert_eq!(r.summary.exit_code, 0);
    assert_verdict(
        result(&r, "kernel.gpudirect-path"),
        Pass,
        "dma-buf path available",
        "6.8.0-1024-aws",
    );
    assert_verdict(result(&r, "kernel.modules"), Pass, "out-of-tree EFA driver 2.17.3g", "efa");
    assert_verdict(
        result(&r, "efa.devices"),
        Pass,
        "32 EFA device(s) of 32",
        "32 EFA RDMA device(s)",
    );
    assert_verdict(result(&r, "efa.traffic"), Pass, "none sent without receiving", "");
    assert_verdict(result(&r, "efa.errors"), Pass, "no error counter rose", "");
    assert_verdict(result(&r, "efa.topology"), Pass, "4 EFA per GPU", "0000:53:00.0");
    assert_verdict(result(&r, "gpu.inventory"), Pass, "8 × NVIDIA H100", "nvmlDeviceGetCount_v2");
    assert_verdict(result(&r, "gpu.fabric"), Pass, "completed on 8", "");
    assert_verdict(
        result(&r, "libfabric.efa-provider"),
        Pass,
        "fabric efa and efa-direct",
        "rdmap79s0-rdm",
    );
    assert_verdict(
        result(&r, "stack.libfabric-copies"),
        Pass,
        "2.6.0amzn1.0",
        "/opt/amazon/efa/lib/libfabric.so.1",
    );
    assert_verdict(result(&r, "stack.aws-ofi-nccl"), Pass, "1 aws-ofi-nccl", "aws-ofi-nccl 1.21.1");
    assert_eq!(result(&r, "host.instance").value.as_deref(), Some("p5.48xlarge"));
    // The topology matrix is data in JSON: 32 EFA rows, 8 GPU columns, PIX on the diagonal groups.
    let m = &result(&r, "efa.topology").details.as_ref().unwrap()["matrix"];
    assert_eq!(m["rows"].as_array().unwrap().len(), 32);
    assert_eq!(m["cols"].as_array().unwrap().len(), 8);
    assert_eq!(m["cells"][0][0], "PIX");
    assert_eq!(m["cells"][0][4], "SYS");
}

#[test]
fn p5_facts_follow_the_layout() {
    let r = report("p5-healthy");
    let f = &r.facts;
    assert_eq!(f.kernel.release.as_deref(), Some("6.8.0-1024-aws"));
    assert_eq!(f.kernel.arch.as_deref(), Some("x86_64"));
    assert_eq!(f.kernel.page_size, Some(4096));
    assert_eq!(f.nvidia_driver.kernel_module.as_deref(), Some("open"));
    let efa: Vec<_> = f.rdma.efa().collect();
    assert_eq!(efa.len(), 32);
    let d = efa.iter().find(|d| d.name == "rdmap79s0").unwrap();
    assert_eq!(d.bdf.as_deref(), Some("0000:4f:00.0"));
    assert_eq!(d.p2p.as_deref(), Some("NVIDIA"));
    assert_eq!(d.ports[0].rate_gbps, Some(100));
    assert_eq!(d.counters.len(), 12, "device-level counters: {:?}", d.counters.keys());
    assert_eq!(d.ports[0].counters.len(), 22, "port-level counters");
    assert_eq!(f.host.uverbs.as_ref().unwrap().len(), 32);
    // The GPU's link partner is its switch's downstream port 0000:46:05.0.
    let gpu = f.pci.by_bdf("0000:53:00.0").unwrap();
    assert_eq!(
        (gpu.partner_max_link_speed_gts, gpu.partner_max_link_width),
        (Some(32.0), Some(16))
    );
    assert_eq!(f.efa_stack.installer.as_ref().unwrap().version.as_deref(), Some("1.50.0"));
}

#[test]
fn silent_drop_names_devices_and_causes() {
    let r = report("p5-silent-drop");
    let t = result(&r, "efa.traffic");
    assert_verdict(
        t,
        Fail,
        "silent drop on rdmap79s0, rdmap80s0, rdmap81s0, rdmap82s0",
        "tx_pkts +4444, rx_pkts +0",
    );
    let rem = t.remediation.as_deref().unwrap();
    for cause in ["self-referencing egress", "secondary VPC CIDR", "another availability zone"] {
        assert!(rem.contains(cause), "remediation lacks {cause}: {rem}");
    }
    // One window alone would only warn: these devices never received since the driver loaded.
    assert!(
        t.summary.contains("rx_pkts 0 since the driver loaded")
            || t.evidence.iter().any(|e| e
                .observed
                .as_deref()
                .is_some_and(|o| o.contains("rx_pkts 0 since the driver loaded")))
    );
    // EFA loops back over the device (the EFA installer's fi_pingpong test): never a cause.
    assert!(rem.contains("same node is not a cause"), "{rem}");
    assert_eq!(r.summary.exit_code, 1);
}

#[test]
fn rising_error_counters_fail_with_counter_names() {
    // Was: any rise failed (rdma_read_wr_err +3, reg_mr_err +5). Issue 14: bursts within the
    // EKS node monitoring agent's allowance and refused registrations are normal; only the
    // admin queue failing (no_completion_cmds with cmds_err) is this fixture's finding.
    let r = report("p5-errors-rising");
    let e = result(&r, "efa.errors");
    assert_verdict(
        e,
        Fail,
        "rdmap150s0/no_completion_cmds +40 in 10.0 s with cmds_err rising",
        "sys/class/infiniband/rdmap150s0/hw_counters/no_completion_cmds",
    );
    let within = e
        .evidence
        .iter()
        .find(|x| x.source.ends_with("rdmap79s0/ports/1/hw_counters/rdma_read_wr_err"))
        .unwrap();
    assert_eq!(within.expected.as_deref(), Some("<= +110 (burst 100 plus 1/s)"));
    // The burst and the refused registrations are not part of the verdict.
    let verdict = e.summary.split(" (").next().unwrap();
    assert!(
        !verdict.contains("rdma_read_wr_err") && !verdict.contains("reg_mr_err"),
        "{}",
        e.summary
    );
    assert!(e.remediation.as_deref().unwrap().contains("admin queue"));
    // rdma_write_bytes stays 0 on every device and is never a finding.
    assert!(!e.summary.contains("rdma_write_bytes"));
    // Traffic itself is fine on this node: one finding, not two.
    assert_eq!(result(&r, "efa.traffic").status, Pass);
}

#[test]
fn one_missing_device_warns() {
    let r = report("p5-device-missing");
    assert_verdict(
        result(&r, "efa.devices"),
        Warn,
        "31 EFA device(s) attached; p5.48xlarge supports up to 32",
        "31 EFA",
    );
}

#[test]
fn partial_allocation_in_a_container() {
    // A pod given 4 of the node's 32 EFA devices is what topology-aware allocation does
    // (EKS "Manage EFA devices"): information, not a warning.
    let r = report("p5-container-partial");
    assert_verdict(
        result(&r, "efa.devices"),
        Pass,
        "4 of the node's 32 EFA devices allocated to this container",
        "4 uverbs node(s)",
    );
    // A file tree's device nodes cannot be opened: information, never a pass or a warning.
    assert_verdict(result(&r, "host.privileges"), Skip, "not testable from this root", "CapEff");
    assert!(!r.facts.host.container_clues.is_empty());
}

#[test]
fn degraded_gpu_link_fails() {
    let r = report("p5-pcie-degraded");
    assert_verdict(
        result(&r, "pci.link"),
        Fail,
        "GPU 0000:75:00.0",
        "sys/bus/pci/devices/0000:75:00.0",
    );
}

#[test]
fn gpu_far_from_every_efa_warns() {
    let r = report("p5-gpu-far");
    assert_verdict(result(&r, "efa.topology"), Warn, "1 of 8 GPU(s)", "0000:e1:00.0");
}

#[test]
fn container_without_devices_and_small_memlock() {
    // One root cause, one failure: efa.devices; what follows skips and points at it, and
    // efa-doctor's own memlock limit is information (process.memlock judges workers).
    let r = report("container-no-devices");
    let m = result(&r, "host.memlock");
    assert_verdict(m, Skip, "64 KiB", "proc/self/limits");
    assert!(m.summary.contains("process.memlock"), "{}", m.summary);
    assert_verdict(result(&r, "host.privileges"), Skip, "see efa.devices", "");
    assert_verdict(
        result(&r, "efa.devices"),
        Fail,
        "none of the 32 EFA devices is usable",
        "dev/infiniband",
    );
    assert_verdict(result(&r, "libfabric.efa-provider"), Skip, "see efa.devices", "");
}

#[test]
fn old_kernel_without_peer_memory() {
    let r = report("old-kernel-no-peermem");
    let g = result(&r, "kernel.gpudirect-path");
    assert_verdict(g, Fail, "older than 5.12", "5.10.230");
    assert!(g.summary.contains("in-tree EFA driver has no P2P path"));
    assert!(g.summary.contains("nvidia_peermem is loaded but serves InfiniBand"));
    assert_verdict(result(&r, "kernel.modules"), Pass, "in-tree EFA driver", "");
}

#[test]
fn p4d_uses_the_legacy_p2p_path() {
    let r = report("p4d-healthy");
    let g = result(&r, "kernel.gpudirect-path");
    assert_verdict(g, Pass, "legacy P2P path", "device/p2p");
    assert_eq!(g.value.as_deref(), Some("p2p"));
    // One EFA per host bridge shared by its two GPUs (NIXL's rule for fewer NICs than GPUs).
    assert_verdict(result(&r, "efa.topology"), Pass, "1 EFA per GPU", "");
    // p4d's EFA virtual functions report no PCIe link: unknown, not degraded.
    assert_verdict(result(&r, "pci.link"), Pass, "4 report no link", "");
    assert_eq!(result(&r, "gpu.fabric").status, Skip);
    assert_eq!(r.summary.exit_code, 0);
}

#[test]
fn p5en_sixteen_devices_at_200g() {
    let r = report("p5en-healthy");
    assert_verdict(result(&r, "efa.devices"), Pass, "16 EFA device(s) of 16", "");
    assert_verdict(result(&r, "efa.link"), Pass, "16 × 200 Gb/s", "4X HDR");
    assert_verdict(result(&r, "efa.topology"), Pass, "2 EFA per GPU", "");
}

#[test]
fn g5_single_efa_no_gpudirect_expectation() {
    let r = report("g5-single-efa");
    let i = result(&r, "host.instance");
    assert_verdict(i, Pass, "no GPUDirect RDMA expected", "g5.48xlarge");
    assert_verdict(result(&r, "efa.devices"), Pass, "1 EFA device(s) of 1", "");
    // Without a GPUDirect expectation, GPUs far from the one EFA are not a finding.
    assert_eq!(result(&r, "efa.topology").status, Pass);
    assert_eq!(r.summary.exit_code, 0);
}

#[test]
fn gb200_with_affected_libfabric_fails_before_any_probe() {
    let r = report("gb200-arm64");
    let g = result(&r, "libfabric.gb200-registration");
    assert_verdict(g, Fail, "2.4.0amzn3.0", "aarch64 with 64 KiB pages");
    let rem = g.remediation.as_deref().unwrap();
    assert!(rem.contains("v2.5.1") && rem.contains("efa_mr_is_cuda"), "both workarounds: {rem}");
    assert_eq!(r.facts.kernel.page_size, Some(65536));
    assert_eq!(r.facts.kernel.arch.as_deref(), Some("aarch64"));
    // Was Warn "no 2 MiB huge page pool": libfabric maps from the default (512 MiB) pool
    // here, and no AWS document sets a reservation for it (issue 14).
    assert_verdict(result(&r, "host.hugepages"), Pass, "no free 512 MiB huge page", "proc/meminfo");
}

#[test]
fn gb200_with_fixed_libfabric_passes() {
    let r = report("gb200-fixed");
    assert_verdict(result(&r, "libfabric.gb200-registration"), Pass, "2.5.1 >= 2.5.0", "");
}

#[test]
fn ofi_nccl_built_against_another_libfabric() {
    // One root cause: the distribution's libfabric comes first. The plugin's missing
    // FABRIC_1.9 and the missing efa provider follow from it and point at it
    // (tests/vantage.rs has the variant where the plugin's mismatch is its own fault).
    let r = report("stack-ofi-nccl-mismatch");
    let o = result(&r, "stack.aws-ofi-nccl");
    assert_verdict(o, Skip, "lacks FABRIC_1.9", "/opt/aws-ofi-nccl/lib/libnccl-net-ofi.so");
    assert!(o.summary.contains("see stack.libfabric-copies"), "{}", o.summary);
    assert_verdict(
        result(&r, "stack.libfabric-copies"),
        Fail,
        "is found before the EFA installer's",
        "1.17.0",
    );
    assert_verdict(
        result(&r, "libfabric.efa-provider"),
        Skip,
        "no efa provider) before the EFA installer's",
        "",
    );
}

#[test]
fn nixl_plugin_newer_than_the_libfabric() {
    let r = report("stack-nixl-old-libfabric");
    let n = result(&r, "stack.nixl");
    assert_verdict(n, Fail, "needs FABRIC_1.10", "libplugin_LIBFABRIC.so");
    assert!(
        n.evidence.iter().any(|e| e.observed.as_deref().is_some_and(|o| o.contains("[\"UCX\"]"))),
        "{:?}",
        n.evidence
    );
}

/// Checks never report a status worse than their catalogue severity.
#[test]
fn no_check_exceeds_its_documented_severity() {
    use efa_doctor::checks::catalogue::{Severity, doc};
    for name in std::fs::read_dir(fixture("")).unwrap().flatten() {
        if !name.path().join(".efa-doctor/manifest.json").exists() {
            continue;
        }
        let r = report(&name.file_name().to_string_lossy());
        for res in &r.results {
            let d = doc(&res.id).unwrap();
            if d.severity == Severity::Warn {
                assert_ne!(
                    res.status,
                    Fail,
                    "{} in {:?} fails but is documented as warn",
                    res.id,
                    name.path()
                );
            }
        }
    }
}
