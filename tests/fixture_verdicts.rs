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
    // Driver 2.17.3g: 12 admin and 2 kernel-verbs counters on the device, 22 on the port.
    assert_eq!(d.counters.len(), 14, "device-level counters: {:?}", d.counters.keys());
    assert!(d.counters.contains_key("alloc_mr_err") && d.counters.contains_key("get_dma_mr_err"));
    assert_eq!(d.ports[0].counters.len(), 22, "port-level counters");
    // Real p5 EFA have non-zero node GUIDs (a real lstopo: cd77:f833:0000:1001).
    assert_ne!(d.node_guid.as_deref(), Some("0000:0000:0000:0000"));
    assert_eq!(f.host.uverbs.as_ref().unwrap().len(), 32);
    // rdmap79s0 sits behind Amazon bridge 0000:46:01.0 at 15.75 GB/s: Gen4 x8.
    let efa = f.pci.by_bdf("0000:4f:00.0").unwrap();
    assert_eq!(efa.ancestors.last().map(String::as_str), Some("0000:46:01.0"));
    assert_eq!((efa.current_link_speed_gts, efa.current_link_width), (Some(16.0), Some(8)));
    // The GPU's link partner is the next function of the same multi-function port, 46:01.4.
    let gpu = f.pci.by_bdf("0000:53:00.0").unwrap();
    assert_eq!(gpu.ancestors.last().map(String::as_str), Some("0000:46:01.4"));
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
    // The real p6e-gb200 runs a 4 KiB-page kernel (6.8.0-1030-aws): the bug is CUDA memory
    // on arm64, whatever the page size (issue 14).
    assert_verdict(g, Fail, "2.4.0amzn3.0", "aarch64 with 4 KiB pages");
    assert!(g.evidence.iter().any(|e| e.observed.as_deref() == Some("4 NVIDIA GPU(s)")));
    let rem = g.remediation.as_deref().unwrap();
    assert!(rem.contains("v2.5.1") && rem.contains("efa_mr_is_cuda"), "both workarounds: {rem}");
    assert_eq!(r.facts.kernel.page_size, Some(4096));
    assert_eq!(r.facts.kernel.arch.as_deref(), Some("aarch64"));
    assert_verdict(result(&r, "host.hugepages"), Pass, "5128 of 5128 2 MiB huge pages free", "");
}

#[test]
fn gb200_with_fixed_libfabric_passes() {
    let r = report("gb200-fixed");
    assert_verdict(result(&r, "libfabric.gb200-registration"), Pass, "2.5.1 >= 2.5.0", "");
}

/// The real p6e-gb200 layout (shared/research/real-efa): one PCI domain, `rdmap<bus>s0`,
/// per GPU 2 EFA behind its Amazon switch and 2 CPU-mediated ("C2C") EFA in a tree without
/// a GPU, and 1.97 GB/s bridges above the GPU switches. None of it is a finding.
#[test]
fn p6e_gb200_real_layout() {
    let r = report("gb200-fixed");
    let f = &r.facts;
    let efa: Vec<_> = f.rdma.efa().collect();
    assert_eq!(efa.len(), 16);
    assert!(efa.iter().all(|d| d.bdf.as_deref().is_some_and(|b| b.starts_with("0000:"))));
    let d = efa.iter().find(|d| d.name == "rdmap39s0").unwrap();
    assert_eq!(d.bdf.as_deref(), Some("0000:27:00.0"));
    // Driver 2.15.3g: kernel-verbs counters, no network counters.
    assert_eq!((d.counters.len(), d.ports[0].counters.len()), (14, 17));
    let t = result(&r, "efa.topology");
    assert_verdict(t, Pass, "(2 EFA per GPU); 8 EFA function(s) share no PCIe tree with a GPU", "");
    for c2c in ["0000:36:00.0", "0000:a9:00.0", "0000:c0:00.0"] {
        assert!(t.summary.contains(c2c), "{c2c} is C2C: {}", t.summary);
    }
    // The GPU's switch hangs below two bridges at 1.97 GB/s; the GPU and its EFA link at
    // Gen5 x16 to their own ports, which is what is judged.
    let gpu = f.pci.by_bdf("0000:9c:00.0").unwrap();
    assert_eq!(gpu.ancestors, ["pci0000:97", "0000:97:00.0", "0000:98:00.0", "0000:99:00.2"]);
    assert_verdict(
        result(&r, "pci.link"),
        Pass,
        "20 GPU/EFA link(s) at the width both ends support",
        "",
    );
}

/// p6-b200 and p6-b300: two Mellanox ConnectX-7 in /sys/class/infiniband and
/// /dev/infiniband beside the EFA; counting without the Amazon vendor filter would give 10
/// and 18.
#[test]
fn p6_mellanox_devices_are_not_efa() {
    for (fx, efa, gpu_per_switch) in
        [("p6-b200-healthy", 8, "1 EFA per GPU"), ("p6-b300-healthy", 16, "2 EFA per GPU")]
    {
        let r = report(fx);
        let f = &r.facts;
        let all = f.rdma.devices.as_ref().unwrap();
        assert_eq!(all.len(), efa + 2, "{fx}");
        assert_eq!(f.rdma.efa().count(), efa, "{fx}");
        let mlx: Vec<_> = all.iter().filter(|d| !d.is_efa).collect();
        assert!(
            mlx.iter().all(|d| d.vendor == Some(0x15b3) && d.name.starts_with("ibp")),
            "{fx}: {mlx:?}"
        );
        assert_eq!(f.host.uverbs.as_ref().unwrap().len(), efa + 2, "{fx}");
        assert_eq!(f.pci.of_kind(efa_doctor::facts::pci::PciKind::Efa).count(), efa, "{fx}");
        assert_verdict(result(&r, "efa.devices"), Pass, &format!("{efa} EFA device(s)"), "");
        assert_verdict(result(&r, "efa.topology"), Pass, gpu_per_switch, "");
    }
    let r = report("p6-b200-healthy");
    let names: Vec<_> =
        r.facts.rdma.devices.as_ref().unwrap().iter().map(|d| d.name.as_str()).collect();
    for n in ["rdmap79s0", "rdmap133s0", "ibp115s0f0", "ibp116s0f0"] {
        assert!(names.contains(&n), "{n}: {names:?}");
    }
    // B300 links at PCIe Gen6 x16.
    let r = report("p6-b300-healthy");
    let gpu = r.facts.pci.by_bdf("0000:58:00.0").unwrap();
    assert_eq!((gpu.current_link_speed_gts, gpu.current_link_width), (Some(64.0), Some(16)));
    assert_verdict(result(&r, "pci.link"), Pass, "24 GPU/EFA link(s)", "");
}

/// Each fixture carries exactly the hw_counters files of the EFA driver it claims
/// (shared/research/real-efa/COUNTERS.md).
#[test]
fn counter_files_follow_the_claimed_driver() {
    // (fixture, device-directory count, port-directory count, has network counters)
    for (fx, dev, port, network) in [
        ("p5-healthy", 14, 22, true),             // 2.17.3g
        ("p5en-healthy", 14, 22, true),           // 3.1.0g
        ("p4d-healthy", 14, 17, false),           // 2.15.3g
        ("gb200-arm64", 14, 17, false),           // 2.15.3g
        ("p6-b200-healthy", 14, 22, true),        // 2.17.3g
        ("old-kernel-no-peermem", 25, 25, false), // in-tree 5.10: one list in both
    ] {
        let r = report(fx);
        for d in r.facts.rdma.efa() {
            assert_eq!(
                (d.counters.len(), d.ports[0].counters.len()),
                (dev, port),
                "{fx} {}",
                d.name
            );
            assert_eq!(d.ports[0].counters.contains_key("retrans_pkts"), network, "{fx}");
            if dev == 25 {
                let (a, b): (Vec<_>, Vec<_>) =
                    (d.counters.keys().collect(), d.ports[0].counters.keys().collect());
                assert_eq!(a, b, "{fx}: the pre-split list is the same in both directories");
                assert!(!d.counters.contains_key("rdma_write_wrs"));
            }
        }
    }
}

/// Real CPUs, bridges and neighbours (shared/research/real-efa): p4d has Intel CPUs, six
/// NVSwitches from 80:1a.0 and ENA/NVMe on the GPUs' root buses; p5en's switches hold ENA,
/// NVMe and empty hot-plug ports on multi-function downstream ports.
#[test]
fn neighbours_of_the_gpus_are_real() {
    let cpuinfo = |fx: &str| std::fs::read_to_string(fixture(fx).join("proc/cpuinfo")).unwrap();
    assert!(cpuinfo("p4d-healthy").contains("GenuineIntel"));
    assert!(cpuinfo("p5en-healthy").contains("Platinum 8488C"));
    assert!(cpuinfo("p5-healthy").contains("AMD EPYC 7R13"));
    let r = report("p4d-healthy");
    let nvswitch = efa_doctor::facts::pci::PciKind::Nvswitch;
    assert_eq!(r.facts.pci.of_kind(nvswitch).map(|d| d.bdf.as_str()).next(), Some("0000:80:1a.0"));
    assert_eq!(r.facts.pci.of_kind(nvswitch).count(), 6);
    let dev = |fx: &str, bdf: &str, file: &str| {
        std::fs::read_to_string(fixture(fx).join("sys/bus/pci/devices").join(bdf).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(dev("p4d-healthy", "0000:10:00.0", "device"), "0xec20");
    assert_eq!(dev("p4d-healthy", "0000:10:1e.0", "device"), "0xcd01");
    // p5en: EFA 6e on port 5f:01.6, ENA 60 on 5f:00.0, an empty hot-plug port 5f:00.4.
    let r = report("p5en-healthy");
    let e = r.facts.pci.by_bdf("0000:6e:00.0").unwrap();
    assert_eq!(e.ancestors.last().map(String::as_str), Some("0000:5f:01.6"));
    assert_eq!((e.current_link_speed_gts, e.current_link_width), (Some(32.0), Some(8)));
    assert_eq!(dev("p5en-healthy", "0000:60:00.0", "device"), "0xec20");
    assert_eq!(dev("p5en-healthy", "0000:5f:00.4", "current_link_width"), "0");
    assert!(r.facts.pci.by_bdf("0000:60:00.0").is_none(), "ENA is not a GPU, EFA or NVSwitch");
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
