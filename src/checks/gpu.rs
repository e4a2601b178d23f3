//! GPU health through NVML: inventory, memory health and the NVLink fabric.

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::gpu::Gpu;
use crate::facts::pci::PciKind;
use crate::native::NativeState;
use crate::verdict::{Evidence, Outcome};

/// The GPUs where NVML did not give `field` (its value is `None`), as `GPU i (reason)`: the
/// reason NVML gave (`not supported`), or `not reported`. Unknown stays unknown: it is never
/// read as the healthy value.
fn unknown_on(gpus: &[Gpu], field: &str, missing: impl Fn(&Gpu) -> bool) -> Vec<String> {
    gpus.iter()
        .filter(|g| missing(g))
        .map(|g| {
            let why = g.errors.get(field).map_or("not reported", String::as_str);
            format!("GPU {} ({why})", g.index)
        })
        .collect()
}

/// Common gate: NVML must have answered. Returns the outcome to report otherwise.
fn nvml_gate(f: &Facts) -> Result<&[Gpu], Box<Outcome>> {
    let g = &f.gpu;
    let pci_gpus = f.pci.of_kind(PciKind::Gpu).count();
    let why = g.error.clone().unwrap_or_default();
    let outcome = match g.state {
        NativeState::Ok => return Ok(&g.gpus),
        NativeState::NotRun => Outcome::skip(format!("NVML not queried: {why}")),
        NativeState::Missing if pci_gpus == 0 => Outcome::skip("no NVIDIA GPU and no NVML on this node"),
        NativeState::Missing => Outcome::fail(format!(
            "{pci_gpus} NVIDIA GPU(s) on the PCI bus but NVML (libnvidia-ml.so.1) is not installed: {why}"
        ))
        .remediation("Install the NVIDIA driver's user-space libraries matching the kernel module (in containers, use the NVIDIA container toolkit so libnvidia-ml is mounted)."),
        NativeState::Timeout => Outcome::error(format!("NVML hung: {why}"))
            .remediation("A wedged GPU or driver blocks NVML: check `dmesg` for Xid errors and `nvidia-smi`; a GPU reset or reboot may be needed."),
        // From inside a mounted node root (a pod), a failed initialisation may be the pod's
        // device access, not the node: no finding about the node from there.
        NativeState::Failed if g.vantage.as_deref().is_some_and(|v| v != "this process") => {
            Outcome::skip(format!(
                "NVML could not initialise from {}: {why} (a pod may lack access to /dev/nvidia*: judge on the node, or run the pod privileged)",
                g.vantage.as_deref().unwrap_or_default()
            ))
        }
        NativeState::Failed => Outcome::fail(format!("NVML could not initialise: {why}"))
            .remediation("Check that the NVIDIA kernel module and user-space driver versions match (`cat /proc/driver/nvidia/version`, `nvidia-smi`); error 'driver/library version mismatch' needs a module reload or reboot."),
    };
    Err(Box::new(outcome))
}

pub struct Inventory;

impl Check for Inventory {
    fn id(&self) -> &'static str {
        "gpu.inventory"
    }

    fn needs(&self) -> Needs {
        // HOST: in a container, the /dev/nvidiaN nodes it was given.
        Needs::GPU | Needs::INSTANCE | Needs::NVIDIA_DRIVER | Needs::PCI | Needs::HOST
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![inventory(cx.facts)]
    }
}

fn inventory(f: &Facts) -> Outcome {
    let gpus = match nvml_gate(f) {
        Ok(g) => g,
        Err(o) => return *o,
    };
    let n = gpus.len();
    let pci_gpus = f.pci.of_kind(PciKind::Gpu).count();
    let expected = f.instance.spec.as_ref().map(|s| s.gpus);
    let drv = f.gpu.driver_version.clone().unwrap_or_else(|| "?".into());
    let cuda = f.gpu.cuda_driver_version.clone().unwrap_or_else(|| "?".into());
    let mut ev = vec![
        Evidence::new("nvmlDeviceGetCount_v2").observed(n.to_string()).expected(match expected {
            Some(e) => format!("{e} on {}", f.instance.instance_type.as_deref().unwrap_or("")),
            None => format!("{pci_gpus} (NVIDIA GPUs on the PCI bus)"),
        }),
        Evidence::new("nvmlSystemGetDriverVersion").observed(drv.clone()),
        Evidence::new("nvmlSystemGetCudaDriverVersion_v2").observed(cuda.clone()),
    ];
    if let Some(kv) = &f.nvidia_driver.version {
        ev.push(Evidence::new("proc/driver/nvidia/version").observed(kv.clone()));
        if f.gpu.driver_version.as_deref().is_some_and(|d| d != kv) {
            return Outcome::fail(format!("NVML driver {drv} does not match the kernel module {kv}"))
                .with_evidence(ev)
                .remediation("Reload the NVIDIA kernel modules or reboot so kernel and user-space driver versions match.");
        }
    }
    // A container given fewer GPUs than the node has is normal: compare NVML with the
    // /dev/nvidiaN nodes it was given, not with the PCI bus or the instance type.
    let given = f.host.nvidia_dev_nodes.filter(|g| {
        !f.host.container_clues.is_empty()
            && *g > 0
            && *g < pci_gpus.max(expected.unwrap_or(0) as usize)
    });
    if let Some(g) = given {
        ev.push(
            Evidence::new("dev/nvidia*")
                .observed(format!("{g} GPU device node(s) given to this container"))
                .expected(format!("{g} seen by NVML")),
        );
        let model = gpus.iter().find_map(|g| g.name.clone()).unwrap_or_else(|| "GPU".into());
        if n < g {
            return Outcome::fail(format!("NVML sees {n} of the {g} GPU(s) given to this container"))
                .with_evidence(ev)
                .remediation("Check `dmesg` on the node for GPUs the driver failed to initialise (Xid errors, RmInitAdapter failed).")
                .value(n.to_string());
        }
        return Outcome::pass(format!(
            "{n} × {model}, driver {drv}, CUDA {cuda}: the {n} GPU(s) given to this container (the node has {})",
            pci_gpus.max(expected.unwrap_or(0) as usize)
        ))
        .with_evidence(ev)
        .value(n.to_string());
    }
    if let Some(e) = expected {
        if (n as u32) < e {
            return Outcome::fail(format!("NVML sees {n} GPU(s); {} has {e}", f.instance.instance_type.as_deref().unwrap_or("this type")))
                .with_evidence(ev)
                .remediation("A GPU fell off the bus or failed to initialise: check `dmesg` for Xid 79 / 'fallen off the bus', then stop and start the instance.")
                .value(n.to_string());
        }
    }
    if n < pci_gpus {
        return Outcome::fail(format!("NVML sees {n} of the {pci_gpus} NVIDIA GPU(s) on the PCI bus"))
            .with_evidence(ev)
            .remediation("Check `dmesg` for GPUs the driver failed to initialise (Xid errors, RmInitAdapter failed).")
            .value(n.to_string());
    }
    let off: Vec<String> = gpus
        .iter()
        .filter(|g| g.persistence_mode == Some(false))
        .map(|g| g.index.to_string())
        .collect();
    let model = gpus.iter().find_map(|g| g.name.clone()).unwrap_or_else(|| "GPU".into());
    if !off.is_empty() {
        ev.push(
            Evidence::new("nvmlDeviceGetPersistenceMode")
                .observed(format!("disabled on GPU {}", off.join(", ")))
                .expected("enabled"),
        );
        return Outcome::warn(format!("{n} × {model}, driver {drv}, CUDA {cuda}; persistence mode off on {} GPU(s)", off.len()))
            .with_evidence(ev)
            .remediation("Enable persistence (`sudo systemctl enable --now nvidia-persistenced`, or `nvidia-smi -pm 1`) so the driver state is not torn down and re-initialised between jobs.")
            .value(n.to_string());
    }
    // The count is verified; a persistence mode NVML did not report is a note, not "on".
    let unknown = unknown_on(gpus, "persistence_mode", |g| g.persistence_mode.is_none());
    let persistence = if unknown.is_empty() {
        "persistence mode on".to_string()
    } else {
        ev.push(
            Evidence::new("nvmlDeviceGetPersistenceMode")
                .observed(format!("unknown on {}", unknown.join(", ")))
                .expected("enabled"),
        );
        format!("persistence mode unknown on {}", unknown.join(", "))
    };
    Outcome::pass(format!("{n} × {model}, driver {drv}, CUDA {cuda}, {persistence}"))
        .with_evidence(ev)
        .value(n.to_string())
}

pub struct MemoryHealth;

impl Check for MemoryHealth {
    fn id(&self) -> &'static str {
        "gpu.memory-health"
    }

    fn needs(&self) -> Needs {
        Needs::GPU | Needs::PCI
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![memory_health(cx.facts)]
    }
}

fn memory_health(f: &Facts) -> Outcome {
    let gpus = match nvml_gate(f) {
        Ok(g) => g,
        Err(o) => return *o,
    };
    if gpus.is_empty() {
        return Outcome::skip("NVML reports no GPU");
    }
    let (mut fails, mut warns, mut ev) = (Vec::new(), Vec::new(), Vec::new());
    for g in gpus {
        let id = format!("GPU {} ({})", g.index, g.pci_bus_id.as_deref().unwrap_or("?"));
        if g.ecc_enabled == Some(false) {
            warns.push(format!("{id}: ECC disabled"));
            ev.push(
                Evidence::new(format!("nvmlDeviceGetEccMode GPU {}", g.index))
                    .observed("disabled")
                    .expected("enabled"),
            );
        }
        if let Some(v) = g.ecc_uncorrected_volatile.filter(|v| *v > 0) {
            fails.push(format!("{id}: {v} uncorrectable ECC error(s) since the driver loaded"));
            ev.push(
                Evidence::new(format!(
                    "nvmlDeviceGetTotalEccErrors(uncorrected, volatile) GPU {}",
                    g.index
                ))
                .observed(v.to_string())
                .expected("0"),
            );
        }
        if let Some(r) = &g.remapped_rows {
            if r.failure {
                fails.push(format!("{id}: row remapping failed"));
            }
            if r.pending {
                fails.push(format!("{id}: row remapping pending (needs a GPU reset)"));
            }
            if r.failure || r.pending {
                ev.push(
                    Evidence::new(format!("nvmlDeviceGetRemappedRows GPU {}", g.index)).observed(
                        format!(
                            "correctable {}, uncorrectable {}, pending {}, failure {}",
                            r.correctable, r.uncorrectable, r.pending, r.failure
                        ),
                    ),
                );
            }
        }
    }
    if !fails.is_empty() {
        return Outcome::fail(fails.join("; "))
            .with_evidence(ev)
            .remediation("Drain the node. A pending remap clears with a GPU reset (`nvidia-smi -r -i N` with no processes) or a reboot; a remap failure or repeated uncorrectable errors need the instance stopped and started (new host) and a report to AWS.");
    }
    if !warns.is_empty() {
        return Outcome::warn(warns.join("; "))
            .with_evidence(ev)
            .remediation("Enable ECC (`sudo nvidia-smi -e 1` and reboot).");
    }
    // Claim only what NVML reported; a field it did not give (`not supported`, an older
    // driver) is named as unknown, never counted as healthy.
    let fields: [(&str, &str, &str, Vec<String>); 3] = [
        (
            "ECC on",
            "ECC mode",
            "nvmlDeviceGetEccMode",
            unknown_on(gpus, "ecc_mode", |g| g.ecc_enabled.is_none()),
        ),
        (
            "no uncorrectable errors",
            "uncorrectable ECC errors",
            "nvmlDeviceGetTotalEccErrors(uncorrected, volatile)",
            unknown_on(gpus, "ecc_uncorrected_volatile", |g| g.ecc_uncorrected_volatile.is_none()),
        ),
        (
            "no pending or failed row remapping",
            "row remapping",
            "nvmlDeviceGetRemappedRows",
            unknown_on(gpus, "remapped_rows", |g| g.remapped_rows.is_none()),
        ),
    ];
    let mut claims = Vec::new();
    let mut unknown = Vec::new();
    for (claim, name, call, missing) in &fields {
        if missing.is_empty() {
            claims.push(*claim);
        } else {
            ev.push(Evidence::new(*call).observed(format!("unknown on {}", missing.join(", "))));
            unknown.push(format!("{name} unknown on {}", missing.join(", ")));
        }
    }
    // A claim covers every GPU or is not made; with no claim left there is nothing to pass.
    if claims.is_empty() {
        return Outcome::skip(format!(
            "NVML reports no memory-health field on {} GPU(s): {}",
            gpus.len(),
            unknown.join("; ")
        ))
        .with_evidence(ev);
    }
    let unknown =
        if unknown.is_empty() { String::new() } else { format!("; {}", unknown.join("; ")) };
    Outcome::pass(format!("{} GPU(s): {}{unknown}", gpus.len(), claims.join(", ")))
        .with_evidence(ev)
}

pub struct Fabric;

impl Check for Fabric {
    fn id(&self) -> &'static str {
        "gpu.fabric"
    }

    fn needs(&self) -> Needs {
        Needs::GPU | Needs::INSTANCE | Needs::PCI
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![fabric(cx.facts)]
    }
}

fn fabric(f: &Facts) -> Outcome {
    let gpus = match nvml_gate(f) {
        Ok(g) => g,
        Err(o) => return *o,
    };
    let nvswitch = f.pci.of_kind(PciKind::Nvswitch).count() > 0
        || f.instance.spec.as_ref().is_some_and(|s| s.nvswitch);
    let infos: Vec<(&Gpu, &crate::facts::gpu::FabricInfo)> =
        gpus.iter().filter_map(|g| g.fabric.as_ref().map(|fi| (g, fi))).collect();
    let supported: Vec<_> = infos.iter().filter(|(_, fi)| fi.state != 0).collect();
    if supported.is_empty() {
        return if nvswitch {
            Outcome::skip(
                "this GPU generation does not report fabric state through NVML (A100 and older): check that nvidia-fabricmanager is running (`systemctl status nvidia-fabricmanager`)",
            )
        } else {
            Outcome::skip("no NVSwitch / NVLink fabric on this node")
        };
    }
    let mut ev = Vec::new();
    let (mut fails, mut warns) = (Vec::new(), Vec::new());
    for (g, fi) in &supported {
        ev.push(Evidence::new(format!("nvmlDeviceGetGpuFabricInfoV GPU {}", g.index)).observed(
            format!(
                "state {}, status {:?}, clique {}, health {:?}",
                fi.state_name, fi.status, fi.clique_id, fi.health_summary
            ),
        ));
        match fi.state {
            3 if fi.status.is_some_and(|s| s != 0) => fails.push(format!(
                "GPU {}: fabric registration failed (NVML status {})",
                g.index,
                fi.status.unwrap_or(0)
            )),
            3 => {}
            _ => fails.push(format!("GPU {}: fabric {}", g.index, fi.state_name)),
        }
        match fi.health_summary {
            Some(2) => fails.push(format!("GPU {}: fabric unhealthy", g.index)),
            Some(3) => warns.push(format!("GPU {}: fabric at limited capacity", g.index)),
            _ => {}
        }
    }
    if !fails.is_empty() {
        return Outcome::fail(fails.join("; "))
            .with_evidence(ev)
            .remediation("Until the NVLink fabric is up, CUDA fails with error 802 (system not ready). Start nvidia-fabricmanager with the same version as the driver (`systemctl status nvidia-fabricmanager`; on GB200 UltraServers also the IMEX service), then check `nvidia-smi -q | grep -A5 Fabric`.");
    }
    if !warns.is_empty() {
        return Outcome::warn(warns.join("; ")).with_evidence(ev).remediation("Check `nvidia-smi -q` Fabric health and the fabric manager's log for degraded NVLinks.");
    }
    Outcome::pass(format!("NVLink fabric registration completed on {} GPU(s)", supported.len()))
        .with_evidence(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::gpu::{GpuFacts, RemappedRows};
    use crate::verdict::Status;

    fn facts(gpus: Vec<Gpu>) -> Facts {
        Facts {
            gpu: GpuFacts { state: NativeState::Ok, gpus, ..GpuFacts::default() },
            ..Facts::default()
        }
    }

    fn healthy(index: u32) -> Gpu {
        Gpu {
            index,
            name: Some("NVIDIA H100".into()),
            persistence_mode: Some(true),
            ecc_enabled: Some(true),
            ecc_uncorrected_volatile: Some(0),
            remapped_rows: Some(RemappedRows::default()),
            ..Gpu::default()
        }
    }

    #[test]
    fn nvml_failing_inside_a_mounted_root_is_no_finding_about_the_node() {
        let mut f = facts(vec![]);
        f.gpu.state = NativeState::Failed;
        f.gpu.error = Some("Insufficient Permissions".into());
        assert_eq!(nvml_gate(&f).unwrap_err().status, Status::Fail, "on the node itself");
        f.gpu.vantage = Some("chroot into /host".into());
        let o = nvml_gate(&f).unwrap_err();
        assert_eq!(o.status, Status::Skip);
        assert!(
            o.summary.contains("from chroot into /host: Insufficient Permissions"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn every_field_known_claims_everything() {
        let f = facts(vec![healthy(0), healthy(1)]);
        let m = memory_health(&f);
        assert_eq!(m.status, Status::Pass);
        assert_eq!(
            m.summary,
            "2 GPU(s): ECC on, no uncorrectable errors, no pending or failed row remapping"
        );
        assert!(inventory(&f).summary.ends_with("persistence mode on"));
    }

    #[test]
    fn a_field_unknown_on_one_gpu_is_not_claimed_for_any() {
        let mut odd = healthy(1);
        odd.remapped_rows = None;
        odd.persistence_mode = None;
        odd.errors.insert("remapped_rows".into(), "not supported".into());
        let f = facts(vec![healthy(0), odd]);
        let m = memory_health(&f);
        assert_eq!(m.status, Status::Pass);
        assert_eq!(
            m.summary,
            "2 GPU(s): ECC on, no uncorrectable errors; row remapping unknown on GPU 1 (not supported)"
        );
        let inv = inventory(&f);
        assert!(
            inv.summary.ends_with("persistence mode unknown on GPU 1 (not reported)"),
            "{}",
            inv.summary
        );
    }
}
