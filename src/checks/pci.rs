//! PCIe link training of GPUs and EFA functions.

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::pci::{PciDevice, PciKind};
use crate::parse::sysfs::pcie_gen;
use crate::verdict::{Evidence, Outcome};

pub struct Link;

impl Check for Link {
    fn id(&self) -> &'static str {
        "pci.link"
    }

    fn needs(&self) -> Needs {
        Needs::PCI
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![link(cx.facts)]
    }
}

fn speed(v: Option<f64>) -> String {
    match v {
        Some(s) => match pcie_gen(s) {
            Some(g) => format!("{s} GT/s (Gen{g})"),
            None => format!("{s} GT/s"),
        },
        None => "unknown".into(),
    }
}

fn describe(d: &PciDevice) -> String {
    format!(
        "{} x{} (max {} x{})",
        speed(d.current_link_speed_gts),
        d.current_link_width.map_or("?".into(), |w| w.to_string()),
        speed(d.max_link_speed_gts),
        d.max_link_width.map_or("?".into(), |w| w.to_string())
    )
}

/// GT/s of a PCIe generation, for NVML's generation numbers.
fn gen_speed(g: u32) -> Option<f64> {
    [2.5, 5.0, 8.0, 16.0, 32.0, 64.0].get(g.checked_sub(1)? as usize).copied()
}

fn describe_ceiling(d: &PciDevice) -> String {
    let (s, w) = d.link_ceiling();
    format!("{} x{}", speed(s), w.map_or("?".into(), |w| w.to_string()))
}

fn link(f: &Facts) -> Outcome {
    let devices: Vec<&PciDevice> = f
        .pci
        .devices
        .iter()
        .flatten()
        .filter(|d| matches!(d.kind, PciKind::Gpu | PciKind::Efa))
        .collect();
    if devices.is_empty() {
        return Outcome::skip("no GPU or EFA function on the PCI bus");
    }
    let mut ev = Vec::new();
    let (mut narrow, mut slow_efa, mut idle_gpu, mut unknown) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for d in &devices {
        let kind = if d.kind == PciKind::Gpu { "GPU" } else { "EFA" };
        let (slow, thin) = d.link_below();
        if slow.is_none() && thin.is_none() {
            unknown += 1;
            continue;
        }
        if slow != Some(true) && thin != Some(true) {
            continue;
        }
        let source = format!("sys/bus/pci/devices/{}/current_link_speed,current_link_width", d.bdf);
        let label = format!("{kind} {}: {}", d.bdf, describe(d));
        let expected =
            format!("{} (the lesser of the device's and its port's maximum)", describe_ceiling(d));
        if thin == Some(true) {
            ev.push(Evidence::new(source).observed(describe(d)).expected(expected));
            narrow.push(label);
        } else if d.kind == PciKind::Gpu {
            // Idle NVIDIA GPUs lower their link speed to save power; NVML says what the
            // device and system can reach.
            let nvml =
                f.gpu.gpus.iter().find(|g| {
                    g.pci_bus_id.as_deref().is_some_and(|b| b.eq_ignore_ascii_case(&d.bdf))
                });
            let nvml_text = nvml
                .and_then(|g| Some((g.pcie_gen_current?, g.pcie_gen_max?)))
                .map(|(c, m)| format!("; NVML: Gen{c} of max Gen{m}"))
                .unwrap_or_default();
            let at_system_max = nvml
                .and_then(|g| gen_speed(g.pcie_gen_max?))
                .zip(d.current_link_speed_gts)
                .is_some_and(|(m, c)| c + 0.01 >= m);
            if at_system_max {
                continue;
            }
            ev.push(
                Evidence::new(source)
                    .observed(format!("{}{nvml_text}", describe(d)))
                    .expected("full speed under load; idle GPUs train down to save power"),
            );
            idle_gpu.push(label);
        } else {
            ev.push(Evidence::new(source).observed(describe(d)).expected(expected));
            slow_efa.push(label);
        }
    }
    let checked = devices.len() - unknown;
    if checked == 0 {
        return Outcome::skip(
            "no GPU or EFA function reports its PCIe link (virtual functions on older Nitro report none)",
        );
    }
    let fix = "A link trained narrower than both of its ends support caps GPUDirect bandwidth: reseating is not possible on EC2, so stop and start the instance (new host) and report the instance if it persists.";
    let idle_note = if idle_gpu.is_empty() {
        String::new()
    } else {
        format!(
            "; {} GPU link(s) below full speed, not judged: idle NVIDIA GPUs lower their PCIe speed to save power, and this run puts no load on them ({})",
            idle_gpu.len(),
            idle_gpu.join("; ")
        )
    };
    if !narrow.is_empty() {
        return Outcome::fail(format!(
            "PCIe link narrower than both ends support: {}{idle_note}",
            narrow.join("; ")
        ))
        .with_evidence(ev)
        .remediation(fix);
    }
    if !slow_efa.is_empty() {
        return Outcome::warn(format!(
            "EFA link below the speed both ends support: {}{idle_note}",
            slow_efa.join("; ")
        ))
        .with_evidence(ev)
        .remediation("Compare with the other EFA functions of the node (on real p5 nodes EFA links run at 15.75 GB/s, below a Gen5 x16 slot, by design); if one differs from its siblings, stop and start the instance (new host) and report it.");
    }
    let skipped = if unknown > 0 { format!(" ({unknown} report no link)") } else { String::new() };
    Outcome::pass(format!(
        "{} GPU/EFA link(s) at the width both ends support{skipped}{idle_note}",
        checked
    ))
    .with_evidence(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::gpu::Gpu;
    use crate::facts::pci::PciFacts;
    use crate::verdict::Status;

    /// A device at `cur` of `max` (GT/s, width) under a port whose maximum is `port`.
    fn dev(
        bdf: &str,
        kind: PciKind,
        cur: (f64, u32),
        max: (f64, u32),
        port: (f64, u32),
    ) -> PciDevice {
        PciDevice {
            bdf: bdf.into(),
            kind,
            vendor: 0,
            device: 0,
            class: 0,
            numa_node: None,
            current_link_speed_gts: Some(cur.0),
            max_link_speed_gts: Some(max.0),
            current_link_width: Some(cur.1),
            max_link_width: Some(max.1),
            sysfs_path: String::new(),
            ancestors: vec!["pci0000:44".into(), "0000:46:05.0".into()],
            driver: None,
            partner_max_link_speed_gts: Some(port.0),
            partner_max_link_width: Some(port.1),
        }
    }

    fn facts(devices: Vec<PciDevice>) -> Facts {
        Facts {
            pci: PciFacts { devices: Some(devices), ..PciFacts::default() },
            ..Facts::default()
        }
    }

    #[test]
    fn an_idle_gpu_trained_down_is_a_note() {
        let o = link(&facts(vec![dev(
            "0000:53:00.0",
            PciKind::Gpu,
            (2.5, 16),
            (32.0, 16),
            (32.0, 16),
        )]));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(
            o.summary.contains("1 GPU link(s) below full speed, not judged: idle NVIDIA GPUs"),
            "{}",
            o.summary
        );
        assert!(o.evidence[0].source.contains("0000:53:00.0"));
        // NVML saying the system's maximum is the current generation: not even a note.
        let mut f =
            facts(vec![dev("0000:53:00.0", PciKind::Gpu, (16.0, 16), (32.0, 16), (32.0, 16))]);
        f.gpu.gpus = vec![Gpu {
            pci_bus_id: Some("0000:53:00.0".into()),
            pcie_gen_current: Some(4),
            pcie_gen_max: Some(4),
            ..Gpu::default()
        }];
        let o = link(&f);
        assert_eq!(o.status, Status::Pass);
        assert!(!o.summary.contains("not judged"), "{}", o.summary);
    }

    #[test]
    fn a_narrow_link_fails_unless_its_port_is_that_narrow() {
        let o = link(&facts(vec![dev(
            "0000:75:00.0",
            PciKind::Gpu,
            (32.0, 8),
            (32.0, 16),
            (32.0, 16),
        )]));
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("GPU 0000:75:00.0"));
        assert_eq!(
            o.evidence[0].expected.as_deref(),
            Some("32 GT/s (Gen5) x16 (the lesser of the device's and its port's maximum)")
        );
        assert!(o.remediation.as_deref().is_some_and(|r| r.contains("stop and start")));
        // An x16-capable EFA function in an x8 port trains at x8: that is its ceiling.
        let o =
            link(&facts(vec![dev("0000:4f:00.0", PciKind::Efa, (16.0, 8), (32.0, 16), (16.0, 8))]));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
    }

    #[test]
    fn an_efa_link_below_both_ends_speed_warns() {
        let o =
            link(&facts(vec![dev("0000:4f:00.0", PciKind::Efa, (8.0, 8), (32.0, 8), (32.0, 8))]));
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(o.summary.contains("EFA 0000:4f:00.0"));
    }
}
