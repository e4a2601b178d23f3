//! GPU <-> EFA affinity from PCI paths alone (no hwloc), following NIXL's grouping
//! (`libfabric_topology.cpp` `groupNicsWithAccel()`, REFERENCE §2.3), with the relation of
//! every GPU/EFA pair named the way `nvidia-smi topo -m` names it.

use serde::{Deserialize, Serialize};

use super::pci::{PciDevice, PciFacts, PciKind};

/// How two PCI functions are connected, nearest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Relation {
    /// Behind the same PCIe switch port (one bridge apart).
    PIX,
    /// Behind the same switch hierarchy (several bridges, no host bridge).
    PXB,
    /// Under the same PCIe host bridge.
    PHB,
    /// Same NUMA node, different host bridges.
    NODE,
    /// Across NUMA nodes (the inter-socket link), or NUMA unknown.
    SYS,
}

impl Relation {
    /// Near enough for GPUDirect RDMA without crossing the CPU.
    pub fn is_near(self) -> bool {
        matches!(self, Relation::PIX | Relation::PXB | Relation::PHB)
    }
}

pub fn relation(a: &PciDevice, b: &PciDevice) -> Relation {
    let common = a.ancestors.iter().zip(&b.ancestors).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return match (a.numa_node, b.numa_node) {
            (Some(x), Some(y)) if x == y && x >= 0 => Relation::NODE,
            _ => Relation::SYS,
        };
    }
    // ancestors[0] is the host bridge (`pci0000:45`); deeper entries are bridges.
    if common == 1 {
        return Relation::PHB;
    }
    // Diverging at most one level below the shared bridge means the two hang off the same
    // switch (sibling downstream ports): nvidia-smi's "single PCIe bridge".
    if a.ancestors.len() - common <= 1 && b.ancestors.len() - common <= 1 {
        Relation::PIX
    } else {
        Relation::PXB
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuAffinity {
    pub gpu: String,
    pub numa_node: Option<i32>,
    /// EFA functions assigned to this GPU by NIXL's grouping.
    pub efa: Vec<String>,
    /// Nearest relation to any EFA.
    pub nearest: Option<Relation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Topology {
    pub gpus: Vec<String>,
    pub efas: Vec<String>,
    /// `relations[e][g]`: EFA `e` to GPU `g`.
    pub relations: Vec<Vec<Relation>>,
    pub affinity: Vec<GpuAffinity>,
    /// EFA functions no GPU is near.
    pub unassigned_efa: Vec<String>,
}

fn sort_key(d: &PciDevice) -> (u32, u32, u32) {
    crate::parse::sysfs::bdf_bus_dev(&d.bdf).unwrap_or((u32::MAX, 0, 0))
}

/// Builds the topology. NIXL's steps: for each GPU take the first ancestor that has an EFA
/// below it; assign each EFA to its nearest ancestor that has a GPU; split the EFAs of an
/// ancestor evenly among its GPUs in (bus, device) order.
pub fn build(pci: &PciFacts) -> Topology {
    let mut gpus: Vec<&PciDevice> = pci.of_kind(PciKind::Gpu).collect();
    let mut efas: Vec<&PciDevice> = pci.of_kind(PciKind::Efa).collect();
    gpus.sort_by_key(|d| sort_key(d));
    efas.sort_by_key(|d| sort_key(d));
    let relations = efas.iter().map(|e| gpus.iter().map(|g| relation(e, g)).collect()).collect();

    // Group by the deepest shared ancestor: for each EFA, the deepest ancestor that also has a GPU.
    let deepest_gpu_ancestor = |e: &PciDevice| -> Option<String> {
        e.ancestors.iter().rev().find(|anc| gpus.iter().any(|g| g.ancestors.contains(anc))).cloned()
    };
    let mut affinity: Vec<GpuAffinity> = gpus
        .iter()
        .map(|g| GpuAffinity {
            gpu: g.bdf.clone(),
            numa_node: g.numa_node,
            efa: Vec::new(),
            nearest: efas.iter().map(|e| relation(e, g)).min(),
        })
        .collect();
    let mut unassigned = Vec::new();
    let mut groups: std::collections::BTreeMap<String, Vec<&PciDevice>> = Default::default();
    for e in &efas {
        match deepest_gpu_ancestor(e) {
            Some(a) => groups.entry(a).or_default().push(e),
            None => unassigned.push(e.bdf.clone()),
        }
    }
    for (anc, members) in groups {
        // GPUs under this ancestor whose own nearest EFA-bearing ancestor is this one.
        let under: Vec<usize> = gpus
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                g.ancestors.iter().rev().find(|a| efas.iter().any(|e| e.ancestors.contains(a)))
                    == Some(&anc)
            })
            .map(|(i, _)| i)
            .collect();
        if under.is_empty() {
            unassigned.extend(members.iter().map(|e| e.bdf.clone()));
            continue;
        }
        if members.len() < under.len() {
            // Fewer NICs than GPUs: every GPU shares all of them.
            for &gi in &under {
                affinity[gi].efa.extend(members.iter().map(|e| e.bdf.clone()));
            }
            continue;
        }
        let per = members.len() / under.len();
        let extra = members.len() % under.len();
        let mut it = members.iter();
        for (k, &gi) in under.iter().enumerate() {
            let n = per + usize::from(k < extra);
            affinity[gi].efa.extend(it.by_ref().take(n).map(|e| e.bdf.clone()));
        }
    }
    Topology {
        gpus: gpus.iter().map(|g| g.bdf.clone()).collect(),
        efas: efas.iter().map(|e| e.bdf.clone()).collect(),
        relations,
        affinity,
        unassigned_efa: unassigned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(bdf: &str, kind: PciKind, anc: &[&str], numa: i32) -> PciDevice {
        PciDevice {
            bdf: bdf.into(),
            kind,
            vendor: 0,
            device: 0,
            class: 0,
            numa_node: Some(numa),
            current_link_speed_gts: None,
            max_link_speed_gts: None,
            current_link_width: None,
            max_link_width: None,
            sysfs_path: String::new(),
            ancestors: anc.iter().map(|s| s.to_string()).collect(),
            driver: None,
            partner_max_link_speed_gts: None,
            partner_max_link_width: None,
        }
    }

    #[test]
    fn p5_like_switch_groups_four_efa_per_gpu() {
        let sw = ["pci0000:44", "0000:44:00.0", "0000:45:00.0"];
        let mut devices = vec![dev("0000:53:00.0", PciKind::Gpu, &sw, 0)];
        for b in ["4f", "50", "51", "52"] {
            devices.push(dev(&format!("0000:{b}:00.0"), PciKind::Efa, &sw, 0));
        }
        devices.push(dev("0000:97:00.0", PciKind::Gpu, &["pci0000:88", "0000:88:00.0"], 1));
        let t = build(&PciFacts { devices: Some(devices), notes: Default::default() });
        assert_eq!(t.affinity[0].efa.len(), 4);
        assert_eq!(t.affinity[0].nearest, Some(Relation::PIX));
        assert_eq!(t.affinity[1].nearest, Some(Relation::SYS));
        assert!(t.affinity[1].efa.is_empty());
    }
}
