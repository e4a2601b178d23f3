//! Kernel-side prerequisites of GPUDirect RDMA over EFA: the GPU memory path and the
//! kernel modules.

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::pci::PciKind;
use crate::parse::Version;
use crate::verdict::{Evidence, Outcome};

/// First kernel with the RDMA dma-buf import ioctls (torvalds/linux bfe0cc6).
const DMABUF_KERNEL: [u64; 2] = [5, 12];

/// First kernel whose in-tree EFA driver registers dma-buf memory: "RDMA/efa: Add support
/// for dmabuf memory regions" (66f4817b5712) was pushed to rdma-next on 2021-10-31, the day
/// 5.15 was released, so it entered with the 5.16 merge window (linux-rdma post-receive mail
/// of leon/linux-rdma, 2021-10-31).
const INTREE_EFA_DMABUF_KERNEL: [u64; 2] = [5, 16];

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
    let out_of_tree = efa_out_of_tree(f);
    // The in-tree EFA driver imports dma-buf only from 5.16, later than the RDMA core.
    let intree_too_old = out_of_tree == Some(false) && !kver.at_least(&INTREE_EFA_DMABUF_KERNEL);
    let new_kernel = kver.at_least(&DMABUF_KERNEL) && !intree_too_old;
    let open = f.nvidia_driver.is_open();
    let dmabuf = new_kernel && open == Some(true);

    let mut ev = vec![
        kernel_evidence(f).expected(if out_of_tree == Some(false) {
            ">= 5.16 for dma-buf with the in-tree EFA driver"
        } else {
            ">= 5.12 for dma-buf"
        }),
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
    for d in &efa {
        if let Some(p) = &d.p2p {
            ev.push(
                Evidence::new(format!("sys/class/infiniband/{}/device/p2p", d.name))
                    .observed(format!("{p:?}")),
            );
        } else if let Some(g) = &d.gdr {
            ev.push(
                Evidence::new(format!("sys/class/infiniband/{}/device/gdr", d.name))
                    .observed(g.clone()),
            );
        }
    }
    let p2p = efa.iter().find_map(|d| d.p2p_provider()).map(|(_, provider)| provider);

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
        (false, _) if intree_too_old && kver.at_least(&DMABUF_KERNEL) => format!(
            "kernel {kver} has the RDMA dma-buf import, but its in-tree EFA driver registers dma-buf memory only from 5.16"
        ),
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

    let fix = "Use a kernel >= 5.12 (>= 5.16 with the in-tree EFA driver) with the NVIDIA open kernel module (the dma-buf path; EKS AL2023 and \
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
        if cx.bake {
            return vec![modules_on_disk(cx.facts)];
        }
        vec![modules(cx.facts)]
    }
}

/// Bake profile: what the image installs for the running kernel. On a build instance
/// without EFA interfaces the efa module is not loaded (nothing to bind), so loaded state
/// says nothing; `lib/modules/<release>/modules.dep` says what modprobe will load at boot.
fn modules_on_disk(f: &Facts) -> Outcome {
    let release = f.kernel.release.as_deref().unwrap_or("?");
    let Some(disk) = &f.modules.on_disk else {
        let why = f.modules.notes.get("on_disk").cloned().unwrap_or_default();
        return Outcome::skip(format!(
            "the module index of kernel {release} is not readable in this root ({why})"
        ));
    };
    let src = format!("lib/modules/{release}/modules.dep");
    let has = |n: &str| disk.contains_key(n) || f.modules.is_loaded(n) == Some(true);
    let mut ev = Vec::new();
    for name in ["efa", "ib_uverbs", "nvidia", "nvidia_uvm"] {
        ev.push(
            Evidence::new(format!("{src}: {name}"))
                .observed(disk.get(name).cloned().unwrap_or_else(|| "not installed".into())),
        );
    }
    let mut fails = Vec::new();
    let mut fixes = Vec::new();
    if !has("efa") {
        fails.push(format!("the efa module is not installed for the running kernel {release}"));
        fixes.push(format!("Install the EFA driver for kernel {release} in the image: run the EFA installer (`sudo ./efa_installer.sh -y`, which builds efa.ko through DKMS and runs depmod), or use a kernel that ships the in-tree driver (CONFIG_INFINIBAND_EFA); rebuild it whenever the image's kernel changes."));
    }
    if !has("ib_uverbs") {
        fails.push(format!("ib_uverbs is not installed for kernel {release}"));
        fixes.push(
            "Install the kernel's RDMA modules (e.g. `linux-modules-extra-$(uname -r)` on Ubuntu)."
                .into(),
        );
    }
    let gpu_hw = f.pci.has(PciKind::Gpu) || !f.gpu.gpus.is_empty();
    let nvidia = has("nvidia") && has("nvidia_uvm");
    if !nvidia && gpu_hw {
        fails.push(format!(
            "the NVIDIA kernel driver is not installed for kernel {release} on this GPU instance"
        ));
        fixes.push("Install the NVIDIA driver (open kernel modules for GPUDirect RDMA over dma-buf) built for the image's kernel.".into());
    }
    if !fails.is_empty() {
        return Outcome::fail(fails.join("; ")).with_evidence(ev).remediation(fixes.join(" "));
    }
    let nv = if nvidia {
        "nvidia and nvidia_uvm installed"
    } else {
        "no NVIDIA driver (and no NVIDIA GPU on this build instance)"
    };
    Outcome::pass(format!(
        "image content for kernel {release}: efa and ib_uverbs installed; {nv} (bake profile: loaded state not judged)"
    ))
    .with_evidence(ev)
}

fn modules(f: &Facts) -> Outcome {
    let Some(loaded) = &f.modules.loaded else {
        let why = f.modules.notes.get("loaded").cloned().unwrap_or_default();
        return Outcome::skip(format!("the module list is not readable in this root ({why})"));
    };
    let state = |n: &str| f.modules.is_loaded(n) == Some(true);
    // Modules are required only for hardware that is present: with sysfs readable and no
    // EFA (or no NVIDIA GPU) there, the efa (or nvidia) modules are not needed; efa.devices
    // reports the missing EFA once. Unreadable sysfs keeps the requirement.
    let efa_needed = !f.efa_absent();
    let gpu_hw = f.pci.has(PciKind::Gpu) || !f.gpu.gpus.is_empty();
    let gpu_needed = gpu_hw || f.pci.devices.is_none();
    let mut not_needed = Vec::new();

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
    if !efa_needed {
        not_needed.push("efa and ib_uverbs not needed: no EFA device (see efa.devices)");
    } else if !state("efa") {
        fails.push("efa is not loaded".to_string());
        fixes.push("Load the EFA driver (`sudo modprobe efa`); if it is not installed, run the EFA installer or use an EFA-enabled AMI (EKS AL2023 NVIDIA, Bottlerocket, DLAMI).");
    } else if !state("ib_uverbs") {
        fails.push("efa is loaded but ib_uverbs is not: user-space verbs (libfabric) cannot open the device".into());
        fixes.push("Load the verbs interface: `sudo modprobe ib_uverbs` (rdma-core's udev rules normally do this).");
    }
    if !gpu_needed {
        not_needed.push("nvidia modules not needed: no NVIDIA GPU on the PCI bus");
    } else if !state("nvidia") {
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
        let mut have = Vec::new();
        if efa_needed {
            have.push(format!("{efa_kind}, ib_uverbs"));
        }
        if gpu_needed {
            have.push(format!("nvidia {nv} and nvidia_uvm"));
        }
        // Nothing present needs a module: no evidence of a working driver stack to pass on.
        if have.is_empty() {
            return Outcome::skip(
                "no EFA device and no NVIDIA GPU: no module is required (see efa.devices)",
            )
            .with_evidence(ev);
        }
        let mut summary = format!("{} loaded; {gdr}", have.join(", "));
        for n in &not_needed {
            summary.push_str("; ");
            summary.push_str(n);
        }
        return Outcome::pass(summary)
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
    fn nothing_present_needs_a_module_and_nothing_passes() {
        // sysfs readable, no EFA and no NVIDIA GPU on it: efa.devices reports the absence.
        let mut f = facts("6.8.0-1021-aws", true, &[]);
        f.pci.devices = Some(vec![]);
        f.rdma.devices = Some(vec![]);
        let o = modules(&f);
        assert_eq!(o.status, crate::verdict::Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("see efa.devices"), "{}", o.summary);
        // A GPU without its driver is still a failure.
        let mut f = facts("6.8.0-1021-aws", true, &[]);
        f.pci.devices = Some(vec![]);
        f.rdma.devices = Some(vec![]);
        f.gpu.gpus.push(Default::default());
        assert_eq!(modules(&f).status, crate::verdict::Status::Fail);
    }

    #[test]
    fn dmabuf_on_new_kernel_with_open_module() {
        let o = gpudirect_path(&facts("6.8.0-1021-aws", true, &["nvidia", "efa"]));
        assert_eq!(o.status, crate::verdict::Status::Pass);
        assert_eq!(o.value.as_deref(), Some("dma-buf"));
    }

    #[test]
    fn old_kernel_without_peermem_in_tree_driver_fails() {
        let o = gpudirect_path(&facts(
            "5.10.230-223.885.amzn2.x86_64",
            true,
            &["nvidia", "efa", "nvidia_peermem"],
        ));
        assert_eq!(o.status, crate::verdict::Status::Fail);
        assert!(o.summary.contains("in-tree"), "{}", o.summary);
        assert!(o.summary.contains("nvidia_peermem"), "{}", o.summary);
        let o = gpudirect_path(&facts("5.10.230", true, &["nvidia", "efa", "efa_nv_peermem"]));
        assert_eq!(o.status, crate::verdict::Status::Pass);
    }

    #[test]
    fn in_tree_efa_driver_imports_dmabuf_only_from_5_16() {
        // 5.12-5.15 have the RDMA core's dma-buf import, but the in-tree EFA driver gained
        // dma-buf MRs with 5.16 (66f4817b5712).
        let o = gpudirect_path(&facts("5.15.0-1019-aws", true, &["nvidia", "efa"]));
        assert_eq!(o.status, crate::verdict::Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("only from 5.16"), "{}", o.summary);
        assert!(o.evidence[0].expected.as_deref().is_some_and(|e| e.contains(">= 5.16")));
        let o = gpudirect_path(&facts("5.16.0", true, &["nvidia", "efa"]));
        assert_eq!(o.value.as_deref(), Some("dma-buf"), "{}", o.summary);
        // The out-of-tree driver (>= 1.16.0) brings its own dma-buf support on 5.12+.
        let mut f = facts("5.15.0-1019-aws", true, &["nvidia", "efa"]);
        f.modules.versions.insert("efa".into(), "2.17.3g".into());
        assert_eq!(gpudirect_path(&f).value.as_deref(), Some("dma-buf"));
    }

    #[test]
    fn proprietary_driver_has_no_dmabuf() {
        let o = gpudirect_path(&facts("6.8.0", false, &["nvidia"]));
        assert_eq!(o.status, crate::verdict::Status::Warn);
        assert!(o.summary.contains("proprietary"));
    }
}
