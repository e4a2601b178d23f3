//! The node's libfabric: does it have a usable efa provider, and is it affected by the
//! GB200 CUDA registration bug (libfabric #12019)?

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::pci::PciKind;
use crate::facts::stack::LibfabricCopy;
use crate::native::NativeState;
use crate::parse::Version;
use crate::verdict::{Evidence, Outcome};

/// The on-disk copy of the libfabric that was (or would be) loaded.
fn chosen_copy(f: &Facts) -> Option<&LibfabricCopy> {
    f.efa_stack.copy(f.libfabric.path.as_deref()?)
}

fn lib_evidence(f: &Facts) -> Evidence {
    let l = &f.libfabric;
    let what = match (&l.path, &l.version) {
        (Some(p), Some(v)) => {
            format!("{p} (libfabric {v}, API {})", l.api_version.as_deref().unwrap_or("?"))
        }
        (Some(p), None) => p.clone(),
        _ => "not found".into(),
    };
    Evidence::new("libfabric.so.1 (loader search order)").observed(what)
}

pub struct EfaProvider;

impl Check for EfaProvider {
    fn id(&self) -> &'static str {
        "libfabric.efa-provider"
    }

    fn needs(&self) -> Needs {
        Needs::LIBFABRIC | Needs::EFA_STACK | Needs::PCI | Needs::RDMA | Needs::HOST
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        if cx.bake {
            return vec![efa_provider_on_disk(cx.facts)];
        }
        vec![efa_provider(cx.facts)]
    }
}

/// Bake profile: without an EFA device fi_getinfo lists no efa entry, so the provider is
/// judged on disk: the libfabric the loader picks is built with it.
fn efa_provider_on_disk(f: &Facts) -> Outcome {
    let copies = &f.efa_stack.libfabric;
    let ev: Vec<Evidence> = copies
        .iter()
        .map(|c| {
            Evidence::new(c.path.clone()).observed(format!(
                "{}{}",
                if c.has_efa_provider { "efa provider" } else { "no efa provider" },
                if c.on_loader_path { ", on the loader path" } else { "" }
            ))
        })
        .collect();
    let Some(first) = copies.iter().find(|c| c.on_loader_path) else {
        return Outcome::fail("no libfabric.so.1 in the image")
            .with_evidence(ev)
            .remediation("Install the EFA user space in the image: the EFA installer (`aws-efa-installer`, `--minimal` in containers) puts libfabric with the efa provider in /opt/amazon/efa.");
    };
    if first.has_efa_provider {
        return Outcome::pass(format!(
            "the loader picks {}, built with the efa provider (bake profile: no device to enumerate)",
            first.path
        ))
        .with_evidence(ev)
        .value(first.path.clone());
    }
    if let Some(e) = crate::checks::stack::shadowed_efa_copy(f).filter(|e| e.has_efa_provider) {
        return Outcome::skip(format!(
            "skipped: the loader picks {} before the EFA installer's {} (see stack.libfabric-copies)",
            first.path, e.path
        ))
        .with_evidence(ev);
    }
    Outcome::fail(format!("the loader picks {}, which has no efa provider", first.path))
        .with_evidence(ev)
        .remediation("Install the EFA installer's libfabric in the image and put /opt/amazon/efa/lib first on the loader path.")
        .value(first.path.clone())
}

fn efa_provider(f: &Facts) -> Outcome {
    let l = &f.libfabric;
    let hw = f.efa_hardware();
    let why = l.error.clone().unwrap_or_default();
    let searched = l.search.iter().map(|d| d.dir.as_str()).collect::<Vec<_>>().join(":");
    match l.state {
        NativeState::Missing if hw => {
            return Outcome::fail(format!("EFA devices are present but no libfabric.so.1 is installed: {why}"))
                .evidence(Evidence::new("loader search path").observed(searched))
                .remediation("Install the EFA user space: the EFA installer (`aws-efa-installer`, or `--minimal` in containers) puts libfabric with the efa provider in /opt/amazon/efa; in images, build from the EFA installer stage (Dynamo: `docker build --target aws`).");
        }
        NativeState::Missing => {
            return Outcome::skip(format!(
                "no libfabric.so.1 on this node (and no EFA device): {why}"
            ))
            .evidence(Evidence::new("loader search path").observed(searched));
        }
        NativeState::NotRun => {
            return Outcome::skip(format!("libfabric not enumerated: {why}"))
                .evidence(lib_evidence(f));
        }
        NativeState::Timeout => {
            return Outcome::error(format!("libfabric enumeration hung: {why}"))
                .evidence(lib_evidence(f))
                .remediation("fi_getinfo blocks on a wedged device: check `dmesg` for efa errors and the hw_counters' cmds_err / no_completion_cmds.");
        }
        NativeState::Failed => {
            let o = Outcome::new(if hw { crate::verdict::Status::Fail } else { crate::verdict::Status::Warn }, format!("libfabric could not be loaded: {why}"))
                .evidence(lib_evidence(f))
                .remediation("Check that libfabric's dependencies resolve (`ldd /opt/amazon/efa/lib*/libfabric.so.1`: libibverbs, libefa from rdma-core) and that it matches the system's architecture.");
            return o;
        }
        NativeState::Ok => {}
    }
    if f.efa_unreachable() {
        return Outcome::skip(crate::facts::NO_EFA_HERE).evidence(lib_evidence(f));
    }
    let mut ev = vec![lib_evidence(f)];
    let rdm: Vec<_> = l
        .efa_entries()
        .filter(|p| p.ep_type == "FI_EP_RDM" && (p.fabric == "efa" || p.fabric == "efa-direct"))
        .collect();
    let names: Vec<String> = l.providers.iter().fold(Vec::new(), |mut acc, p| {
        if !acc.contains(&p.name) {
            acc.push(p.name.clone());
        }
        acc
    });
    ev.push(Evidence::new("fi_getinfo").observed(format!(
        "{} entr(ies): providers {}",
        l.providers.len(),
        names.join(", ")
    )));
    if !rdm.is_empty() {
        let mut fabrics: Vec<&str> = rdm.iter().map(|p| p.fabric.as_str()).collect();
        fabrics.sort();
        fabrics.dedup();
        let hmem = rdm.iter().filter(|p| p.caps.iter().any(|c| c == "FI_HMEM")).count();
        let hmem_note = if hmem > 0 {
            format!(
                "FI_HMEM advertised on {hmem} (not proof of GPUDirect: the provider claims it whenever CUDA is loadable; `probe.mr` tests it)"
            )
        } else {
            "no entry advertises FI_HMEM: GPU memory cannot be registered".into()
        };
        let domains: Vec<&str> = rdm.iter().map(|p| p.domain.as_str()).collect();
        ev.push(Evidence::new("fi_getinfo efa FI_EP_RDM domains").observed(domains.join(" ")));
        let o = Outcome::pass(format!(
            "efa provider: {} RDM entr(ies) on fabric {}; {hmem_note}",
            rdm.len(),
            fabrics.join(" and ")
        ));
        if hmem == 0 && f.pci.has(PciKind::Gpu) {
            return Outcome::fail(format!("efa provider has {} RDM entries but none with FI_HMEM on a GPU node", rdm.len()))
                .with_evidence(ev)
                .remediation("This libfabric was built without CUDA support (`--with-cuda --enable-cuda-dlopen`), or cannot load libcuda.so.1: use the EFA installer's libfabric and make libcuda visible (NVIDIA container toolkit).")
                .value("no-hmem");
        }
        return o.with_evidence(ev).value("efa");
    }
    if !hw {
        return Outcome::skip(format!(
            "{}; this libfabric offers {}",
            crate::facts::NO_EFA,
            names.join(", ")
        ))
        .with_evidence(ev);
    }
    let built = chosen_copy(f).map(|c| c.has_efa_provider);
    if built == Some(false) {
        if let Some(e) = crate::checks::stack::shadowed_efa_copy(f).filter(|e| e.has_efa_provider) {
            return Outcome::skip(format!(
                "skipped: the loader picks {} (no efa provider) before the EFA installer's {} (see stack.libfabric-copies)",
                l.path.as_deref().unwrap_or("?"),
                e.path
            ))
            .with_evidence(ev);
        }
    }
    // The helper ran chrooted from a container that could not open the node's verbs
    // devices: the provider's empty answer is this vantage point's, not the node's.
    let unopenable = f.host.uverbs.iter().flatten().filter(|n| n.openable == Some(false)).count();
    if built != Some(false) && unopenable > 0 && f.host.devices_opened_from_a_container() {
        return Outcome::skip(format!(
            "the efa provider found no usable EFA device from {}, and {unopenable} verbs device node(s) cannot be opened from {}: {}",
            l.vantage.as_deref().unwrap_or("here"),
            f.host.uverbs_opened_from.as_deref().unwrap_or("here"),
            crate::checks::host::CONTAINER_DEVICE_ACCESS
        ))
        .with_evidence(ev);
    }
    let (summary, fix) = match built {
        Some(false) => (
            format!(
                "this libfabric ({}) has no efa provider: it is not the EFA installer's build",
                l.path.as_deref().unwrap_or("?")
            ),
            "Put the EFA installer's libfabric first: `LD_LIBRARY_PATH=/opt/amazon/efa/lib:/opt/amazon/efa/lib64:$LD_LIBRARY_PATH`, or remove the distribution's libfabric from the image.",
        ),
        _ => (
            "the efa provider found no usable EFA device (fi_getinfo lists no efa entry)"
                .to_string(),
            "Check that /dev/infiniband/uverbs* are present and openable (host.privileges) and that ib_uverbs is loaded; run `FI_LOG_LEVEL=warn fi_info -p efa` to see the provider's reason.",
        ),
    };
    let mut o = Outcome::fail(summary).with_evidence(ev).remediation(fix).value("none");
    if !l.log.is_empty() {
        o = o.evidence(
            Evidence::new("libfabric log")
                .observed(l.log.iter().rev().take(3).cloned().collect::<Vec<_>>().join(" | ")),
        );
    }
    o
}

pub struct Gb200Registration;

impl Check for Gb200Registration {
    fn id(&self) -> &'static str {
        "libfabric.gb200-registration"
    }

    fn needs(&self) -> Needs {
        // PROBE: a live registration of CUDA memory through the efa provider outweighs the
        // version guess (a patched 2.4.x looks like any other 2.4.x).
        Needs::LIBFABRIC | Needs::EFA_STACK | Needs::KERNEL | Needs::PCI | Needs::PROBE
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![gb200(cx.facts)]
    }
}

/// The libfabric version efa-doctor trusts most: the loaded library's own answer, else
/// what the file says.
fn libfabric_version(f: &Facts) -> Option<(Version, String)> {
    if let Some(v) = f.libfabric.version.as_deref().and_then(Version::parse) {
        return Some((v, "fi_tostr(FI_TYPE_VERSION)".into()));
    }
    let c = chosen_copy(f).or_else(|| f.efa_stack.libfabric.first())?;
    if let Some(r) = c.release.as_deref().and_then(Version::parse) {
        return Some((r, format!("version string in {}", c.path)));
    }
    c.version().map(|v| (v, format!("version nodes of {}", c.path)))
}

const GB200_FIX: &str = "Two workarounds (Dynamo EFA guide, libfabric #12019): (1) replace the bundled libfabric with ofiwg/libfabric v2.5.1 or newer, whose EFA provider registers CUDA memory through dma-buf; or (2) rebuild the installer's libfabric with the one-line patch that adds `efa_mr_is_cuda(efa_mr)` to the dma-buf condition in prov/efa/src/efa_mr.c. Either way rebuild aws-ofi-nccl against the libfabric you ship. Confirm with `efa-doctor probe mr`.";

fn gb200(f: &Facts) -> Outcome {
    let arch = f.kernel.arch.as_deref();
    let page = f.kernel.page_size;
    // The page size is reported, not judged: the real p6e-gb200 capture runs a 4 KiB kernel
    // and libfabric #12019's report names none; the bug is CUDA memory on arm64 (GB200).
    let ev_node = Evidence::new("kernel").observed(format!(
        "{} with {} pages",
        arch.unwrap_or("unknown arch"),
        page.map_or("unknown-size".into(), super::human_bytes)
    ));
    if arch.is_some_and(|a| a != "aarch64") {
        return Outcome::skip(format!(
            "not affected: {} (the bug needs arm64 with NVIDIA GPUs)",
            arch.unwrap_or("")
        ))
        .evidence(ev_node);
    }
    // NVIDIA GPUs on the PCI bus; `None` when the bus is unreadable.
    let nvidia_gpu = f.pci.devices.as_ref().map(|_| f.pci.has(PciKind::Gpu));
    let ev_gpu = Evidence::new("sys/bus/pci/devices (vendor 0x10de, class 03xx)").observed(
        match nvidia_gpu {
            Some(true) => format!("{} NVIDIA GPU(s)", f.pci.of_kind(PciKind::Gpu).count()),
            Some(false) => "no NVIDIA GPU".into(),
            None => "unreadable".into(),
        },
    );
    if nvidia_gpu == Some(false) {
        return Outcome::skip(
            "not affected: arm64 without an NVIDIA GPU (a Graviton node registers no CUDA memory)",
        )
        .evidence(ev_node)
        .evidence(ev_gpu);
    }
    if let Some(o) = gb200_probed(f) {
        return o.evidence(ev_node).evidence(ev_gpu);
    }
    let Some((v, src)) = libfabric_version(f) else {
        if f.libfabric.state == NativeState::Missing && f.efa_stack.libfabric.is_empty() {
            return Outcome::skip("no libfabric on this node").evidence(ev_node);
        }
        return Outcome::warn("arm64 node, but the libfabric version cannot be determined")
            .evidence(ev_node)
            .evidence(ev_gpu)
            .remediation(format!(
                "Check `fi_info --version`; versions below 2.5.0 are affected. {GB200_FIX}"
            ));
    };
    let ev_lib = Evidence::new(src)
        .observed(v.to_string())
        .expected(">= 2.5.0 (dma-buf registration of CUDA memory)");
    let certain = arch.is_some() && nvidia_gpu.is_some();
    if v.below(&[2, 5]) {
        let amzn = if v.suffix.contains("amzn") {
            " (AWS build; installers up to 1.48.0 ship 2.4.0amzn3.0 with the old code path)"
        } else {
            ""
        };
        let summary = format!(
            "libfabric {v}{amzn} registers CUDA memory with plain ibv_reg_mr on this arm64 node with NVIDIA GPUs: fi_mr_reg of GPU memory fails with EFAULT (-14, 'Bad address')"
        );
        let o = if certain {
            Outcome::fail(summary)
        } else {
            Outcome::warn(format!("{summary} (architecture or GPUs unknown)"))
        };
        return o
            .evidence(ev_node)
            .evidence(ev_gpu)
            .evidence(ev_lib)
            .remediation(GB200_FIX)
            .value(v.to_string());
    }
    Outcome::pass(format!("libfabric {v} >= 2.5.0 registers CUDA memory through dma-buf"))
        .evidence(ev_node)
        .evidence(ev_gpu)
        .evidence(ev_lib)
        .value(v.to_string())
}

/// What `probe.mr` saw when it registered CUDA memory through the efa provider in this run:
/// the answer the version can only guess at. `None` when it did not run on efa.
fn gb200_probed(f: &Facts) -> Option<Outcome> {
    let r = f.probe.result.as_ref().filter(|r| r.provider == "efa")?;
    let verdicts: Vec<(&str, i32)> =
        r.gpus.iter().map(|g| (crate::checks::probe::classify(r, g).0, g.ordinal)).collect();
    let lib = r.libfabric_version.as_deref().unwrap_or("?");
    let ev = Evidence::new("probe.mr (fi_mr_reg of CUDA memory, efa provider)").observed(
        verdicts.iter().map(|(v, i)| format!("GPU {i}: {v}")).collect::<Vec<_>>().join(", "),
    );
    if let Some((v, i)) = verdicts.iter().find(|(v, _)| v.starts_with("efault")) {
        return Some(
            Outcome::fail(format!(
                "probe.mr: fi_mr_reg of CUDA memory through libfabric {lib} failed with EFAULT on GPU {i} ({v}) on this arm64 node with NVIDIA GPUs"
            ))
            .evidence(ev)
            .remediation(GB200_FIX)
            .value(lib.to_string()),
        );
    }
    if !verdicts.is_empty() && verdicts.iter().all(|(v, _)| *v == "ok") {
        return Some(
            Outcome::pass(format!(
                "probe.mr registered CUDA memory through libfabric {lib}'s efa provider on {} GPU(s): not affected, whatever the version says (a patched 2.4.x passes here)",
                verdicts.len()
            ))
            .evidence(ev)
            .value(lib.to_string()),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::pci::{PciDevice, PciFacts, VENDOR_NVIDIA};
    use crate::verdict::Status;

    /// An EFA node whose libfabric enumerated no efa entry, with uverbs0 refused as `from`.
    fn no_efa_entry(from: &str, vantage: &str) -> Facts {
        let mut f = crate::checks::efa_node_with_uverbs0(
            Some(false),
            Some("Operation not permitted (os error 1)"),
        );
        f.libfabric.state = NativeState::Ok;
        f.libfabric.vantage = Some(vantage.into());
        f.libfabric.path = Some("/opt/amazon/efa/lib/libfabric.so.1".into());
        f.host.uverbs_opened_from = Some(from.into());
        f
    }

    /// An arm64 node with `page` byte pages, libfabric `version`, and a GB200 on the bus
    /// when `gpu`.
    fn arm64(page: u64, version: &str, gpu: bool) -> Facts {
        let mut f = Facts::default();
        f.kernel.arch = Some("aarch64".into());
        f.kernel.page_size = Some(page);
        f.libfabric.version = Some(version.into());
        let gb200 = PciDevice {
            bdf: "0000:9c:00.0".into(),
            kind: PciKind::Gpu,
            vendor: VENDOR_NVIDIA,
            device: 0x2941,
            class: 0x030200,
            numa_node: Some(1),
            current_link_speed_gts: None,
            max_link_speed_gts: None,
            current_link_width: None,
            max_link_width: None,
            sysfs_path: String::new(),
            ancestors: Vec::new(),
            driver: Some("nvidia".into()),
            partner_max_link_speed_gts: None,
            partner_max_link_width: None,
        };
        f.pci = PciFacts {
            devices: Some(if gpu { vec![gb200] } else { Vec::new() }),
            ..PciFacts::default()
        };
        f
    }

    #[test]
    fn a_pod_without_device_access_is_not_a_node_without_the_efa_provider() {
        // kubectl debug node/... (not privileged): the node's /dev is visible at /host, the
        // pod's device cgroup refuses it, and the chrooted helper's efa provider finds none.
        let f = no_efa_entry(
            "this container (the node's root is mounted at /host)",
            "chroot into /host",
        );
        let o = efa_provider(&f);
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("chroot into /host"), "{}", o.summary);
        assert!(o.summary.contains("--profile=sysadmin"), "{}", o.summary);
        // The same refusal on the node itself is the node's problem.
        let o = efa_provider(&no_efa_entry(crate::facts::host::THIS_PROCESS, "this process"));
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.remediation.as_deref().is_some_and(|r| r.contains("host.privileges")));
    }

    /// `probe.mr` through `provider` on one GPU whose implicit CUDA registration returned
    /// `implicit` (the host and dma-buf registrations worked).
    fn probed(mut f: Facts, provider: &str, implicit: i32) -> Facts {
        use crate::native::probe::{GpuProbe, MrProbe, Registration};
        let reg = |ret: i32| Registration {
            ret: Some(ret),
            error: (ret != 0).then(|| "x".into()),
            skipped: None,
        };
        f.probe.result = Some(MrProbe {
            provider: provider.into(),
            hmem: Some(true),
            libfabric_version: Some("2.4.0amzn3.0".into()),
            gpus: vec![GpuProbe {
                ordinal: 0,
                host: reg(0),
                implicit: reg(implicit),
                dmabuf: reg(0),
                ..GpuProbe::default()
            }],
            ..MrProbe::default()
        });
        f
    }

    #[test]
    fn a_live_probe_outweighs_the_version_guess() {
        // A patched 2.4.x (the documented workaround) registers CUDA memory: pass.
        let o = gb200(&probed(arm64(4096, "2.4.0amzn3.0", true), "efa", 0));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("a patched 2.4.x passes here"), "{}", o.summary);
        assert!(o.evidence.iter().any(|e| e.source.starts_with("probe.mr")));
        // The probe seeing EFAULT confirms the bug.
        let o = gb200(&probed(arm64(4096, "2.4.0amzn3.0", true), "efa", -14));
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("EFAULT on GPU 0"), "{}", o.summary);
        // A probe through another provider says nothing about efa: the version decides.
        let o = gb200(&probed(arm64(4096, "2.4.0amzn3.0", true), "tcp", 0));
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("registers CUDA memory with plain ibv_reg_mr"));
    }

    #[test]
    fn gb200_with_4k_pages_is_affected() {
        // The real p6e-gb200 capture runs a 4 KiB kernel (6.8.0-1030-aws).
        let o = gb200(&arm64(4096, "2.4.0amzn3.0", true));
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("arm64 node with NVIDIA GPUs"), "{}", o.summary);
        assert!(
            o.evidence.iter().any(|e| e.observed.as_deref() == Some("aarch64 with 4 KiB pages"))
        );
        assert_eq!(gb200(&arm64(65536, "2.5.1", true)).status, Status::Pass);
    }

    #[test]
    fn a_graviton_node_without_gpus_is_not_affected() {
        let o = gb200(&arm64(65536, "2.4.0amzn3.0", false));
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("without an NVIDIA GPU"), "{}", o.summary);
    }

    #[test]
    fn an_unreadable_pci_bus_only_warns() {
        let mut f = arm64(4096, "2.4.0amzn3.0", true);
        f.pci.devices = None;
        assert_eq!(gb200(&f).status, Status::Warn);
    }
}
