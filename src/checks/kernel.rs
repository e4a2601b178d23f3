//! Kernel-side prerequisites of GPUDirect RDMA over EFA: the GPU memory path and the
//! kernel modules.

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::pci::PciKind;
use crate::parse::Version;
use crate::report::{Evidence, Outcome};

/// First kernel with the RDMA dma-buf import ioctls (torvalds/linux bfe0cc6).
const DMABUF_KERNEL: [u64; 2] = [5, 12];

fn kernel_evidence(f: &Facts) -> Evidence {
    Evidence::new(f.kernel.notes.get("release").cloned().unwrap_or_else(|| "kernel release".into()))
        .observed(f.kernel.release.clone().unwrap_or_else(|| "unknown".into()))
}

fn nvidia_evidence(f: &Facts) -> Evidence {
    let n = &f.nvidia_driver;
    Evidence::new("proc/driver/nvidia/version").observed(
        n.version_line
            .clone()
            .or_else(|| n.version.as_ref().map(|v| format!("driver {v}")))
            .unwrap_or_else(|| "absent".into()),
    )
}

/// Is the EFA driver the out-of-tree Amazon one? Its `/sys/module/efa/version` exists
/// (`2.17.3g`); the in-tree driver has none (REFERENCE §1.2).
fn efa_out_of_tree(f: &Facts) -> Option<bool> {
    match f.modules.is_loaded("efa") {
        Some(true) => Some(f.modules.versions.contains_key("efa")),
        _ => None,
    }
}

pub struct GpudirectPath;

impl Check for GpudirectPath {
    fn id(&self) -> &'static str {
        "kernel.gpudirect-path"
    }

    fn needs(&self) -> Needs {
        Needs::KERNEL | Needs::MODULES | Needs::NVIDIA_DRIVER | Needs::PCI | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![gpudirect_path(cx.facts)]
    }
}

fn gpudirect_path(f: &Facts) -> Outcome {
    let nvidia_loaded = f.modules.is_loaded("nvidia");
    if nvidia_loaded == Some(false) && f.nvidia_driver.version.is_none() {
        return Outcome::skip("the NVIDIA kernel driver is not loaded, so there is no GPU memory to reach (see kernel.modules)")
            .evidence(nvidia_evidence(f));
    }
    if nvidia_loaded.is_none() && f.nvidia_driver.version.is_none() {
        return Outcome::skip(
            "neither the module list nor the NVIDIA driver version is readable in this root",
        );
    }
    let Some(kver) = f.kernel.version() else {
        return Outcome::skip(
            "the kernel release is unknown in this root, so the dma-buf path cannot be judged",
        )
        .evidence(kernel_evidence(f));
    };
    let new_kernel = kver.at_least(&DMABUF_KERNEL);
    let open = f.nvidia_driver.is_open();
    let dmabuf = new_kernel && open == Some(true);

    let mut ev = vec![
        kernel_evidence(f).expected(">= 5.12 for dma-buf"),
        nvidia_evidence(f).expected("NVIDIA open kernel module for dma-buf"),
    ];
    let efa_nv_peermem = f.modules.is_loaded("efa_nv_peermem") == Some(true);
    let nvidia_peermem = f.modules.is_loaded("nvidia_peermem") == Some(true);
    ev.push(Evidence::new("proc/modules").observed(format!(
        "efa_nv_peermem {}, nvidia_peermem {}",
        if efa_nv_peermem { "loaded" } else { "not loaded" },
        if nvidia_peermem { "loaded" } else { "not loaded" }
    )));

    // What the EFA driver itself reports about its P2P provider, per device.
    let efa: Vec<_> = f.rdma.efa().collect();
    let mut p2p_providers = Vec::new();
    for d in &efa {
        if let Some(p) = &d.p2p {
            ev.push(
                Evidence::new(format!("sys/class/infiniband/{}/device/p2p", d.name))
                    .observed(format!("{p:?}")),
            );
            if !p.is_empty() {
                p2p_providers.push(p.clone());
            }
        } else if let Some(g) = &d.gdr {
            ev.push(
                Evidence::new(format!("sys/class/infiniband/{}/device/gdr", d.name))
                    .observed(g.clone()),
            );
            if g == "1" {
                p2p_providers.push("gdr=1".into());
            }
        }
    }
    let p2p = p2p_providers.first().cloned();
    let out_of_tree = efa_out_of_tree(f);

    if dmabuf {
        let mut s = format!(
            "dma-buf path available: kernel {kver} >= 5.12 with the NVIDIA open kernel module {}",
            f.nvidia_driver.version.as_deref().unwrap_or("")
        );
        if let Some(p) = &p2p {
            s.push_str(&format!("; the EFA driver also has a P2P provider ({p})"));
        }
        if out_of_tree == Some(true)
            && f.modules
                .versions
                .get("efa")
                .and_then(|v| Version::parse(v))
                .is_some_and(|v| v.below(&[1, 16]))
        {
            return Outcome::fail(format!(
                "kernel and NVIDIA driver support dma-buf, but the out-of-tree EFA driver {} predates dma-buf support (1.16.0)",
                f.modules.versions["efa"]
            ))
            .with_evidence(ev)
            .remediation("Update the EFA driver with the current EFA installer (`aws-efa-installer`), or use an AMI whose kernel ships the in-tree EFA driver.");
        }
        return Outcome::pass(s).with_evidence(ev).value("dma-buf");
    }

    let why_no_dmabuf = match (new_kernel, open) {
        (false, _) => format!("kernel {kver} is older than 5.12 (no RDMA dma-buf import)"),
        (true, Some(false)) => "the NVIDIA kernel module is the proprietary one, which does not export dma-buf for GPU memory".to_string(),
        // (true, Some(true)) is the dma-buf case handled above.
        (true, _) => "the NVIDIA kernel module kind (open or proprietary) is unknown".to_string(),
    };

    if let Some(p) = p2p {
        return Outcome::pass(format!("legacy P2P path through the EFA driver's provider {p:?}; dma-buf is not available: {why_no_dmabuf}"))
            .with_evidence(ev)
            .value("p2p");
    }
    if efa_nv_peermem {
        return Outcome::pass(format!(
            "legacy P2P path: efa_nv_peermem is loaded; dma-buf is not available: {why_no_dmabuf}"
        ))
        .with_evidence(ev)
        .value("p2p");
    }

    let fix = "Use a kernel >= 5.12 with the NVIDIA open kernel module (the dma-buf path; EKS AL2023 and \
               Ubuntu 22.04+ GPU AMIs ship this), or on an older kernel install the out-of-tree EFA driver \
               with the EFA installer and load its peer-memory module: `sudo modprobe efa_nv_peermem` \
               (it supports the open NVIDIA driver only). `nvidia_peermem` serves InfiniBand (MOFED) and \
               gives EFA no GPUDirect path.";
    let mut extra = String::new();
    if nvidia_peermem {
        extra = "; nvidia_peermem is loaded but serves InfiniBand peer memory, not EFA".into();
    }
    if !efa.is_empty() || out_of_tree == Some(false) {
        // The EFA driver is present and reports no provider (or is the in-tree one, which has
        // no P2P path at all): nothing can register GPU memory.
        let who = if out_of_tree == Some(false) {
            "the in-tree EFA driver has no P2P path (it registers GPU memory only through dma-buf)"
                .to_string()
        } else {
            "the EFA driver reports no P2P provider".to_string()
        };
        return Outcome::fail(format!("no GPUDirect RDMA path: {why_no_dmabuf}, and {who}{extra}"))
            .with_evidence(ev)
            .remediation(fix)
            .value("none");
    }
    if !f.pci.has(PciKind::Gpu) && f.pci.devices.is_some() {
        return Outcome::skip(format!(
            "no NVIDIA GPU on the PCI bus; dma-buf would not be available: {why_no_dmabuf}"
        ))
        .with_evidence(ev);
    }
    Outcome::warn(format!(
        "dma-buf path not available ({why_no_dmabuf}) and no EFA device is visible to confirm a legacy P2P path{extra}"
    ))
    .with_evidence(ev)
    .remediation(fix)
    .value("unconfirmed")
}

pub struct Modules;

impl Check for Modules {
    fn id(&self) -> &'static str {
        "kernel.modules"
    }

    fn needs(&self) -> Needs {
        Needs::KERNEL | Needs::MODULES | Needs::NVIDIA_DRIVER | Needs::PCI | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![modules(cx.facts)]
    }
}

fn modules(f: &Facts) -> Outcome {
    let Some(loaded) = &f.modules.loaded else {
        let why = f.modules.notes.get("loaded").cloned().unwrap_or_default();
        return Outcome::skip(format!("the module list is not readable in this root ({why})"));
    };
    let state = |n: &str| f.modules.is_loaded(n) == Some(true);
    let efa_hw = f.efa_hardware();
    let gpu_hw = f.pci.has(PciKind::Gpu);

    let mut ev = Vec::new();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut fixes = Vec::new();
    for name in
        ["efa", "ib_uverbs", "nvidia", "nvidia_uvm", "gdrdrv", "efa_nv_peermem", "nvidia_peermem"]
    {
        let version =
            f.modules.versions.get(name).map(|v| format!(" version {v}")).unwrap_or_default();
        let how = if f.modules.builtin.iter().any(|b| b == name) { " (built in)" } else { "" };
        let obs =
            if state(name) { format!("loaded{how}{version}") } else { "not loaded".to_string() };
        ev.push(Evidence::new(format!("proc/modules: {name}")).observed(obs));
    }
    if !state("efa") {
        let why = if efa_hw { "" } else { " (and no EFA PCI device is present: see efa.devices)" };
        fails.push(format!("efa is not loaded{why}"));
        fixes.push("Load the EFA driver (`sudo modprobe efa`); if it is not installed, run the EFA installer or use an EFA-enabled AMI (EKS AL2023 NVIDIA, Bottlerocket, DLAMI).");
    } else if !state("ib_uverbs") {
        fails.push("efa is loaded but ib_uverbs is not: user-space verbs (libfabric) cannot open the device".into());
        fixes.push("Load the verbs interface: `sudo modprobe ib_uverbs` (rdma-core's udev rules normally do this).");
    }
    if !state("nvidia") {
        let why = if gpu_hw { " while NVIDIA GPUs are on the PCI bus" } else { "" };
        fails.push(format!("nvidia is not loaded{why}"));
        fixes.push("Install or load the NVIDIA driver (`sudo modprobe nvidia`); check `dmesg | grep NVRM` for why it failed.");
    } else if !state("nvidia_uvm") {
        warns.push("nvidia_uvm is not loaded (nvidia-modprobe loads it when the first CUDA program starts; a container without /dev/nvidia-uvm cannot start CUDA)".to_string());
        fixes.push("Run `nvidia-modprobe -u -c=0` (or any CUDA program on the host) so /dev/nvidia-uvm exists before workloads start.");
    }
    // EFA 2.17.3 added P2P support for the NVIDIA 580 driver series (REFERENCE §1.2, §8.2).
    if let (Some(efa_v), Some(nv)) = (
        f.modules.versions.get("efa").and_then(|v| Version::parse(v)),
        f.nvidia_driver.version.as_deref().and_then(Version::parse),
    ) {
        if efa_v.below(&[2, 17, 3])
            && nv.at_least(&[580])
            && f.kernel.version().is_some_and(|k| k.below(&[5, 12]))
        {
            warns.push(format!(
                "out-of-tree EFA driver {efa_v} predates P2P support for NVIDIA 580 drivers (EFA 2.17.3), and this kernel has no dma-buf path"
            ));
            fixes.push("Update the EFA driver with the current EFA installer.");
        }
    }
    let efa_kind = match efa_out_of_tree(f) {
        Some(true) => format!("out-of-tree EFA driver {}", f.modules.versions["efa"]),
        Some(false) => "in-tree EFA driver".to_string(),
        None => "no EFA driver".to_string(),
    };
    let gdr =
        if state("gdrdrv") { "gdrdrv loaded" } else { "gdrdrv not loaded (GDRCopy is optional)" };
    let outcome = if !fails.is_empty() {
        Outcome::fail(fails.join("; "))
    } else if !warns.is_empty() {
        Outcome::warn(warns.join("; "))
    } else {
        let nv = f.nvidia_driver.version.as_deref().unwrap_or("?");
        return Outcome::pass(format!(
            "{efa_kind}, ib_uverbs, nvidia {nv} and nvidia_uvm loaded; {gdr}"
        ))
        .with_evidence(ev)
        .details(serde_json::json!({ "loaded": loaded.len() }));
    };
    outcome.with_evidence(ev).remediation(fixes.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::proc::ModuleLine;

    fn facts(release: &str, open: bool, mods: &[&str]) -> Facts {
        let mut f = Facts::default();
        f.kernel.release = Some(release.into());
        f.nvidia_driver.version = Some("580.95.05".into());
        f.nvidia_driver.kernel_module = Some(if open { "open" } else { "proprietary" }.into());
        f.modules.loaded = Some(
            mods.iter()
                .map(|m| ModuleLine {
                    name: m.to_string(),
                    size: 1,
                    refcount: Some(0),
                    used_by: vec![],
                    state: "Live".into(),
                })
                .collect(),
        );
        f
    }

    #[test]
    fn dmabuf_on_new_kernel_with_open_module() {
        let o = gpudirect_path(&facts("6.8.0-1021-aws", true, &["nvidia", "efa"]));
        assert_eq!(o.status, crate::report::Status::Pass);
        assert_eq!(o.value.as_deref(), Some("dma-buf"));
    }

    #[test]
    fn old_kernel_without_peermem_in_tree_driver_fails() {
        let o = gpudirect_path(&facts(
            "5.10.230-223.885.amzn2.x86_64",
            true,
            &["nvidia", "efa", "nvidia_peermem"],
        ));
        assert_eq!(o.status, crate::report::Status::Fail);
        assert!(o.summary.contains("in-tree"), "{}", o.summary);
        assert!(o.summary.contains("nvidia_peermem"), "{}", o.summary);
        let o = gpudirect_path(&facts("5.10.230", true, &["nvidia", "efa", "efa_nv_peermem"]));
        assert_eq!(o.status, crate::report::Status::Pass);
    }

    #[test]
    fn proprietary_driver_has_no_dmabuf() {
        let o = gpudirect_path(&facts("6.8.0", false, &["nvidia"]));
        assert_eq!(o.status, crate::report::Status::Warn);
        assert!(o.summary.contains("proprietary"));
    }
}
