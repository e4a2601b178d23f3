//! PCIe link training of GPUs and EFA functions.

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::pci::{PciDevice, PciKind};
use crate::parse::sysfs::pcie_gen;
use crate::report::{Evidence, Outcome};

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
    let (mut narrow, mut slow_gpu, mut slow_efa, mut unknown) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    for d in &devices {
        let kind = if d.kind == PciKind::Gpu { "GPU" } else { "EFA" };
        match d.link_degraded() {
            None => unknown += 1,
            Some(false) => {}
            Some(true) => {
                ev.push(
                    Evidence::new(format!(
                        "sys/bus/pci/devices/{}/current_link_speed,current_link_width",
                        d.bdf
                    ))
                    .observed(describe(d))
                    .expected("current = max"),
                );
                let width_low =
                    matches!((d.current_link_width, d.max_link_width), (Some(c), Some(m)) if c < m);
                let label = format!("{kind} {}: {}", d.bdf, describe(d));
                if width_low {
                    narrow.push(label);
                } else if d.kind == PciKind::Gpu {
                    slow_gpu.push(label);
                } else {
                    slow_efa.push(label);
                }
            }
        }
    }
    let checked = devices.len() - unknown;
    if checked == 0 {
        return Outcome::skip(
            "no GPU or EFA function reports its PCIe link (virtual functions on older Nitro report none)",
        );
    }
    let fix = "A link trained narrower or slower than the device supports caps GPUDirect bandwidth: reseating is not possible on EC2, so stop and start the instance (new host) and report the instance if it persists. For GPUs, confirm under load first: idle GPUs may lower their link speed to save power.";
    if !narrow.is_empty() || !slow_efa.is_empty() {
        let mut all = narrow.clone();
        all.extend(slow_efa.iter().cloned());
        return Outcome::fail(format!("PCIe link degraded: {}", all.join("; ")))
            .with_evidence(ev)
            .remediation(fix);
    }
    if !slow_gpu.is_empty() {
        return Outcome::warn(format!(
            "GPU link below its maximum speed (may be idle power saving): {}",
            slow_gpu.join("; ")
        ))
        .with_evidence(ev)
        .remediation(fix);
    }
    let skipped = if unknown > 0 { format!(" ({unknown} report no link)") } else { String::new() };
    Outcome::pass(format!("{checked} GPU/EFA link(s) at full speed and width{skipped}"))
        .with_evidence(ev)
}
