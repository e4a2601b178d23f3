//! Verdicts that depend on where efa-doctor runs from (the node, a pod, `--root /host`) and
//! on what hardware is present: one root cause gives one failure, and nothing the inspector
//! sees only of itself is judged as the workload's.

mod common;

use std::path::Path;

use common::*;
use efa_doctor::report::Status::{self, *};
use efa_doctor::report::{CheckResult, Report};

/// Copy of a fixture in a temporary directory, for a variant of it.
fn variant(name: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_tree(&fixture(name), d.path());
    d
}

fn report_at(dir: &Path) -> Report {
    let root = efa_doctor::root::Root::directory(dir, efa_doctor::root::RootKind::Directory)
        .expect("variant exists");
    efa_doctor::build_report(&root, &Default::default()).expect("report builds")
}

/// Every fail or warn result, as `id: summary`.
fn findings(r: &Report) -> Vec<String> {
    r.results
        .iter()
        .filter(|x| matches!(x.status, Fail | Warn | Status::Error))
        .map(|x| format!("{} {:?}: {}", x.id, x.status, x.summary))
        .collect()
}

fn only_finding<'a>(r: &'a Report, id: &str) -> Vec<&'a CheckResult> {
    r.results
        .iter()
        .filter(|x| matches!(x.status, Fail | Warn | Status::Error))
        .collect::<Vec<_>>()
        .into_iter()
        .inspect(|x| {
            assert_eq!(x.id, id, "{} is not the expected finding: {:#?}", x.id, findings(r))
        })
        .collect()
}

/// Rewrites every sysfs `device` file that holds `from` to hold `to`.
fn rewrite_device_ids(dir: &Path, from: &str, to: &str) -> usize {
    rewrite_attr(dir, "device", from, to)
}

/// Rewrites every sysfs attribute file `attr` that holds `from` to hold `to`.
fn rewrite_attr(dir: &Path, attr: &str, from: &str, to: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            n += rewrite_attr(&e.path(), attr, from, to);
        } else if ft.is_file() && e.file_name() == attr {
            let t = std::fs::read_to_string(e.path()).unwrap_or_default();
            if t.trim() == from {
                std::fs::write(e.path(), format!("{to}\n")).unwrap();
                n += 1;
            }
        }
    }
    n
}

#[test]
fn a_next_generation_efa_id_is_an_efa_device() {
    // 0xefa4 was posted to linux-rdma in 2026: the 0xefa prefix is matched, not a list of four.
    let d = variant("p5-healthy");
    assert_eq!(rewrite_device_ids(&d.path().join("sys/devices"), "0xefa1", "0xefa4"), 32);
    let r = report_at(d.path());
    assert_verdict(
        result(&r, "efa.devices"),
        Pass,
        "32 EFA device(s) of 32",
        "32 EFA RDMA device(s)",
    );
    assert!(r.facts.pci.devices.iter().flatten().any(|p| p.device == 0xefa4));
    assert!(findings(&r).is_empty(), "{:#?}", findings(&r));
}

#[test]
fn an_unknown_id_bound_to_the_efa_driver_is_an_efa_device() {
    let d = variant("p5-healthy");
    assert_eq!(rewrite_device_ids(&d.path().join("sys/devices"), "0xefa1", "0x1234"), 32);
    let r = report_at(d.path());
    // Every fixture function is bound to `efa` (sys/bus/pci/drivers/efa).
    assert_verdict(result(&r, "efa.devices"), Pass, "32 EFA device(s) of 32", "");
}

#[test]
fn the_real_h200_node_without_efa_fails_once() {
    // A real H200 VM, not EC2, no EFA (tests/fixtures/real/README.md).
    let d = tempfile::tempdir().unwrap();
    unpack(&fixture("real/h200-node.tar.gz"), d.path());
    let r = report_at(d.path());
    let f = only_finding(&r, "efa.devices");
    assert_eq!(f.len(), 1, "{:#?}", findings(&r));
    let d = f[0];
    assert_verdict(d, Fail, "no EFA devices", "0 EFA function(s)");
    // The report says what is absent and what follows.
    assert!(d.summary.contains("skip and point here"), "{}", d.summary);
    assert!(d.remediation.as_deref().unwrap().contains("EFA interfaces"));
    for id in
        ["host.hugepages", "host.privileges", "libfabric.efa-provider", "efa.link", "efa.errors"]
    {
        let x = result(&r, id);
        assert_eq!(x.status, Skip, "{id}: {}", x.summary);
        assert!(x.summary.contains("see efa.devices"), "{id}: {}", x.summary);
    }
    // Modules are required for the hardware that is there: nvidia yes, efa no.
    assert_verdict(result(&r, "kernel.modules"), Pass, "efa and ib_uverbs not needed", "nvidia");
    assert!(
        result(&r, "kernel.modules").summary.contains("nvidia 580.159.04 and nvidia_uvm loaded")
    );
    assert_eq!(r.summary.exit_code, 1);
}

#[test]
fn a_node_without_gpus_needs_no_nvidia_module() {
    // A Trainium-like node: EFA, accelerators of Amazon's vendor id, no NVIDIA GPU or module.
    let d = variant("p5-healthy");
    let devs = d.path().join("sys/devices");
    assert!(rewrite_attr(&devs, "vendor", "0x10de", "0x1d0f") >= 8, "GPU vendors rewritten");
    let modules = std::fs::read_to_string(d.path().join("proc/modules")).unwrap();
    let kept: String =
        modules.lines().filter(|l| !l.starts_with("nvidia")).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.path().join("proc/modules"), kept).unwrap();
    let path = d.path().join(".efa-doctor/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["native"]["gpu"]["state"] = "missing".into();
    m["native"]["gpu"]["gpus"] = serde_json::json!([]);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let r = report_at(d.path());
    let m = result(&r, "kernel.modules");
    assert_verdict(m, Pass, "nvidia modules not needed: no NVIDIA GPU", "proc/modules: nvidia");
    assert!(m.summary.contains("out-of-tree EFA driver"), "{}", m.summary);
    // The same tree with the GPUs still on the bus fails on the missing module.
    let d2 = variant("p5-healthy");
    std::fs::write(
        d2.path().join("proc/modules"),
        std::fs::read_to_string(d.path().join("proc/modules")).unwrap(),
    )
    .unwrap();
    let r2 = report_at(d2.path());
    assert_verdict(
        result(&r2, "kernel.modules"),
        Fail,
        "nvidia is not loaded while NVIDIA GPUs",
        "",
    );
}

#[test]
fn a_container_without_efa_access_fails_once() {
    let r = report("container-no-devices");
    let f = only_finding(&r, "efa.devices");
    assert_eq!(f.len(), 1, "{:#?}", findings(&r));
    assert_verdict(f[0], Fail, "none of the 32 EFA devices is usable", "dev/infiniband");
    for id in ["host.privileges", "libfabric.efa-provider"] {
        let x = result(&r, id);
        assert_eq!(x.status, Skip, "{id}: {}", x.summary);
        assert!(x.summary.contains("see efa.devices"), "{id}: {}", x.summary);
    }
    // efa-doctor's own 64 KiB limit is information; process.memlock judges workers.
    let m = result(&r, "host.memlock");
    assert_eq!(m.status, Skip, "{}", m.summary);
    assert!(m.summary.contains("64 KiB") && m.summary.contains("process.memlock"), "{}", m.summary);
    assert!(m.evidence.iter().any(|e| e.source.contains("proc/self/limits")));
}

#[test]
fn a_pod_given_some_efa_devices_is_normal() {
    let r = report("p5-container-partial");
    assert!(findings(&r).is_empty(), "{:#?}", findings(&r));
    let d = result(&r, "efa.devices");
    assert_verdict(
        d,
        Pass,
        "4 of the node's 32 EFA devices allocated to this container",
        "4 uverbs node(s)",
    );
    assert_eq!(d.value.as_deref(), Some("4/32"));
    // A file tree's device nodes cannot be opened: information, never a pass or a warning.
    let p = result(&r, "host.privileges");
    assert_verdict(p, Skip, "not testable from this root", "CapEff");
}

#[test]
fn exclusive_rdma_namespace_shows_only_the_pods_devices() {
    // In exclusive network-namespace mode /sys/class/infiniband lists the pod's 4 devices
    // while /sys/bus/pci lists all 32 functions.
    let d = variant("p5-container-partial");
    let class = d.path().join("sys/class/infiniband");
    let keep = ["rdmap79s0", "rdmap80s0", "rdmap81s0", "rdmap82s0"];
    for e in std::fs::read_dir(&class).unwrap().flatten() {
        if !keep.contains(&e.file_name().to_str().unwrap()) {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let r = report_at(d.path());
    let x = result(&r, "efa.devices");
    assert_verdict(
        x,
        Pass,
        "4 of the node's 32 EFA functions are in this pod's RDMA namespace",
        "4 EFA RDMA device(s)",
    );
    assert!(findings(&r).is_empty(), "{:#?}", findings(&r));
    // On the node itself the same picture is a device the driver did not probe.
    let host = variant("p5-healthy");
    let class = host.path().join("sys/class/infiniband");
    std::fs::remove_file(class.join("rdmap200s0")).unwrap();
    let r = report_at(host.path());
    assert_verdict(
        result(&r, "efa.devices"),
        Fail,
        "only 31 of 32 EFA PCI functions have an RDMA device",
        "",
    );
}

#[test]
fn a_pod_given_four_of_eight_gpus_is_normal() {
    let d = variant("p5-container-partial");
    let path = d.path().join(".efa-doctor/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["native"]["gpu"]["gpus"].as_array_mut().unwrap().truncate(4);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    for i in 0..4 {
        std::fs::write(d.path().join(format!("dev/nvidia{i}")), "").unwrap();
    }
    std::fs::write(d.path().join("dev/nvidiactl"), "").unwrap();
    let r = report_at(d.path());
    let g = result(&r, "gpu.inventory");
    assert_verdict(g, Pass, "the 4 GPU(s) given to this container (the node has 8)", "dev/nvidia*");
    // Three GPU nodes given but NVML sees two: a real fault inside the allocation.
    m["native"]["gpu"]["gpus"].as_array_mut().unwrap().truncate(2);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let r = report_at(d.path());
    assert_verdict(
        result(&r, "gpu.inventory"),
        Fail,
        "NVML sees 2 of the 4 GPU(s) given",
        "dev/nvidia*",
    );
}

#[test]
fn the_workers_dev_shm_is_judged_not_the_inspectors() {
    // Workers with 64 GiB /dev/shm, the inspector in a pod with Docker's 64 MiB.
    let d = variant("p5-workers");
    let small = "tmpfs /dev/shm tmpfs rw,nosuid,nodev,size=65536k 0 0";
    let self_mounts = d.path().join("proc/self/mounts");
    let t = std::fs::read_to_string(&self_mounts).unwrap();
    let t: String = t
        .lines()
        .map(|l| if l.contains(" /dev/shm ") { small.to_string() } else { l.to_string() })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&self_mounts, t).unwrap();
    let r = report_at(d.path());
    assert_verdict(
        result(&r, "host.shm"),
        Pass,
        "/dev/shm of 15 worker(s) is at least 64 GiB",
        "proc/2001/mounts",
    );
    // One worker with 64 MiB fails, by pid.
    let w = d.path().join("proc/2002/mounts");
    let t = std::fs::read_to_string(&w).unwrap().replace("size=67108864k", "size=65536k");
    std::fs::write(&w, t).unwrap();
    let r = report_at(d.path());
    let s = result(&r, "host.shm");
    assert_verdict(s, Fail, "(pid 2002) 64 MiB", "proc/2002/mounts");
    assert!(s.remediation.as_deref().unwrap().contains("emptyDir"));
    // No worker at all: the inspector's own 64 MiB is information only.
    let d = variant("p5-container-partial");
    let m = d.path().join("proc/self/mounts");
    let t = std::fs::read_to_string(&m).unwrap().replace("size=1048576000k", "size=65536k");
    std::fs::write(&m, t).unwrap();
    let r = report_at(d.path());
    let s = result(&r, "host.shm");
    assert_eq!(s.status, Skip, "{}", s.summary);
    assert!(s.summary.contains("efa-doctor's own /dev/shm is 64 MiB"), "{}", s.summary);
}

#[test]
fn ofi_nccl_without_the_efa_installer_copy_fails_on_its_own() {
    // Without the EFA installer's libfabric on disk, the plugin's missing FABRIC_1.9 is its
    // own fault, not a consequence of the loader order.
    let d = variant("stack-ofi-nccl-mismatch");
    std::fs::remove_dir_all(d.path().join("opt/amazon/efa")).unwrap();
    let r = report_at(d.path());
    let o = result(&r, "stack.aws-ofi-nccl");
    assert_verdict(o, Fail, "needs FABRIC_1.9", "/opt/aws-ofi-nccl/lib/libnccl-net-ofi.so");
}

fn bake(dir: &Path) -> Report {
    let args = efa_doctor::cli::CheckArgs {
        profile: efa_doctor::cli::Profile::Bake,
        ..Default::default()
    };
    let root =
        efa_doctor::root::Root::directory(dir, efa_doctor::root::RootKind::Directory).unwrap();
    efa_doctor::build_report(&root, &args).unwrap()
}

#[test]
fn the_bake_profile_judges_the_image_not_the_attachment() {
    let r = bake(&fixture("bake-no-efa"));
    assert!(findings(&r).is_empty(), "{:#?}", findings(&r));
    assert_verdict(
        result(&r, "kernel.modules"),
        Pass,
        "efa and ib_uverbs installed; nvidia and nvidia_uvm installed",
        "updates/dkms/efa.ko",
    );
    assert_verdict(
        result(&r, "host.hugepages"),
        Pass,
        "reserves 5128 2 MiB huge pages at boot",
        "etc/sysctl.d/99-efa-hugepages.conf:2",
    );
    assert_verdict(
        result(&r, "libfabric.efa-provider"),
        Pass,
        "built with the efa provider",
        "/opt/amazon/efa/lib/libfabric.so.1",
    );
    assert_eq!(result(&r, "stack.aws-ofi-nccl").status, Pass);
    for id in [
        "efa.devices",
        "efa.link",
        "efa.errors",
        "efa.traffic",
        "efa.topology",
        "host.privileges",
        "probe.mr",
    ] {
        let x = result(&r, id);
        assert_eq!(x.status, Skip, "{id}: {}", x.summary);
        assert!(x.summary.contains("bake profile"), "{id}: {}", x.summary);
    }
    assert_eq!(r.summary.exit_code, 0);
    // The same image judged as a running node: the missing EFA, once.
    let r = report("bake-no-efa");
    assert_eq!(only_finding(&r, "efa.devices").len(), 1, "{:#?}", findings(&r));
}

#[test]
fn the_bake_profile_fails_an_image_without_the_efa_module() {
    let d = variant("bake-no-efa");
    let dep = d.path().join("lib/modules/6.8.0-1024-aws/modules.dep");
    let t: String = std::fs::read_to_string(&dep)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("updates/dkms/efa.ko"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&dep, t).unwrap();
    std::fs::remove_file(d.path().join("etc/sysctl.d/99-efa-hugepages.conf")).unwrap();
    let hp = d.path().join("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
    std::fs::write(&hp, "0\n").unwrap();
    let r = bake(d.path());
    let m = result(&r, "kernel.modules");
    assert_verdict(
        m,
        Fail,
        "the efa module is not installed for the running kernel 6.8.0-1024-aws",
        "modules.dep: efa",
    );
    assert!(m.remediation.as_deref().unwrap().contains("EFA installer"));
    // No pool is information: libfabric uses regular pages when it gets no huge page.
    assert_verdict(
        result(&r, "host.hugepages"),
        Skip,
        "reserves no 2 MiB huge pages at boot",
        "nr_hugepages",
    );
    assert_eq!(r.summary.exit_code, 1);
    // A kernel command line setting counts too.
    std::fs::create_dir_all(d.path().join("etc/default")).unwrap();
    std::fs::write(
        d.path().join("etc/default/grub"),
        "GRUB_CMDLINE_LINUX=\"hugepagesz=2M hugepages=4096\"\n",
    )
    .unwrap();
    assert_verdict(
        result(&bake(d.path()), "host.hugepages"),
        Pass,
        "reserves 4096",
        "etc/default/grub:1",
    );
}
