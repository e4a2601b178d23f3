//! PCI functions that matter for GPUDirect: NVIDIA GPUs, EFA functions (vendor `0x1d0f`,
//! device `0xefaN`, or bound to the `efa` driver, REFERENCE §1.1) and NVSwitches, with their NUMA node, PCIe
//! link state and the chain of bridges above them (from the canonical sysfs path, the way
//! NIXL groups NICs with GPUs, REFERENCE §2.3).

use serde::{Deserialize, Serialize};

use super::Notes;
use crate::parse::sysfs;
use crate::root::Root;

pub use crate::parse::sysfs::{VENDOR_AMAZON, is_efa_id};
pub const VENDOR_NVIDIA: u32 = 0x10de;

/// Driver name the EFA kernel module binds as; a bound function is EFA whatever its id.
pub const EFA_DRIVER: &str = "efa";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PciKind {
    Gpu,
    Efa,
    Nvswitch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PciDevice {
    pub bdf: String,
    pub kind: PciKind,
    pub vendor: u32,
    pub device: u32,
    pub class: u32,
    pub numa_node: Option<i32>,
    pub current_link_speed_gts: Option<f64>,
    pub max_link_speed_gts: Option<f64>,
    pub current_link_width: Option<u32>,
    pub max_link_width: Option<u32>,
    /// The device's canonical path in sysfs, e.g.
    /// `sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0`.
    pub sysfs_path: String,
    /// Ancestors from the host bridge down (`pci0000:00`, then bridge BDFs), excluding the
    /// device itself.
    pub ancestors: Vec<String>,
    /// Bound driver (`nvidia`, `efa`), if any.
    pub driver: Option<String>,
    /// The link partner's (upstream port's) `max_link_speed`/`max_link_width`: a link trains
    /// to the lesser of its two ends, so a device below its own maximum may be at the port's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_max_link_speed_gts: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_max_link_width: Option<u32>,
}

impl PciDevice {
    /// The most this link can train to: the lesser of the device's and its partner's maximum.
    pub fn link_ceiling(&self) -> (Option<f64>, Option<u32>) {
        let speed = match (self.max_link_speed_gts, self.partner_max_link_speed_gts) {
            (Some(d), Some(p)) => Some(d.min(p)),
            (d, _) => d,
        };
        let width = match (self.max_link_width, self.partner_max_link_width) {
            (Some(d), Some(p)) => Some(d.min(p)),
            (d, _) => d,
        };
        (speed, width)
    }

    /// Whether the link trained below its ceiling, in speed and in width (FM23); `None`
    /// where the files are absent.
    pub fn link_below(&self) -> (Option<bool>, Option<bool>) {
        let (max_speed, max_width) = self.link_ceiling();
        let speed = match (self.current_link_speed_gts, max_speed) {
            (Some(c), Some(m)) => Some(c + 0.01 < m),
            _ => None,
        };
        let width = match (self.current_link_width, max_width) {
            (Some(c), Some(m)) => Some(c < m),
            _ => None,
        };
        (speed, width)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PciFacts {
    /// `None` when `sys/bus/pci/devices` is unreadable.
    pub devices: Option<Vec<PciDevice>>,
    pub notes: Notes,
}

impl PciFacts {
    pub fn of_kind(&self, kind: PciKind) -> impl Iterator<Item = &PciDevice> {
        self.devices.iter().flatten().filter(move |d| d.kind == kind)
    }

    pub fn has(&self, kind: PciKind) -> bool {
        self.of_kind(kind).next().is_some()
    }

    pub fn by_bdf(&self, bdf: &str) -> Option<&PciDevice> {
        self.devices.iter().flatten().find(|d| d.bdf == bdf)
    }
}

fn classify(vendor: u32, device: u32, class: u32, driver: Option<&str>) -> Option<PciKind> {
    let base = class >> 16;
    let sub = (class >> 8) & 0xff;
    if is_efa_id(vendor, device) || driver == Some(EFA_DRIVER) {
        return Some(PciKind::Efa);
    }
    match vendor {
        // Display controllers: 0x0300 VGA, 0x0302 3D (datacenter GPUs).
        VENDOR_NVIDIA if base == 0x03 && (sub == 0x00 || sub == 0x02) => Some(PciKind::Gpu),
        // Bridge / other (0x0680): NVSwitch.
        VENDOR_NVIDIA if base == 0x06 && sub == 0x80 => Some(PciKind::Nvswitch),
        _ => None,
    }
}

pub fn gather(root: &Root) -> PciFacts {
    let mut f = PciFacts::default();
    let dir = "sys/bus/pci/devices";
    let names = match root.list(dir) {
        Ok(n) => n,
        Err(e) => {
            f.notes.insert("devices".into(), e.to_string());
            return f;
        }
    };
    let mut devices = Vec::new();
    for bdf in names.into_iter().filter(|n| sysfs::is_bdf(n)) {
        let base = format!("{dir}/{bdf}");
        let attr = |a: &str| root.read_value(&format!("{base}/{a}")).ok();
        let (Some(vendor), Some(device), Some(class)) = (
            attr("vendor").as_deref().and_then(sysfs::hex_u32),
            attr("device").as_deref().and_then(sysfs::hex_u32),
            attr("class").as_deref().and_then(sysfs::hex_u32),
        ) else {
            continue;
        };
        let driver = root
            .read_link(&format!("{base}/driver"))
            .ok()
            .and_then(|t| t.rsplit('/').next().map(String::from));
        let Some(kind) = classify(vendor, device, class, driver.as_deref()) else {
            continue;
        };
        let sysfs_path = root.canonical(&base).unwrap_or_else(|_| base.clone());
        let ancestors = ancestors_of(&sysfs_path, &bdf);
        // The upstream port is the nearest ancestor that is a function, not a host bridge.
        let partner = |a: &str| {
            let port = ancestors.last().filter(|p| sysfs::is_bdf(p))?;
            root.read_value(&format!("{dir}/{port}/{a}")).ok()
        };
        devices.push(PciDevice {
            kind,
            vendor,
            device,
            class,
            numa_node: attr("numa_node").as_deref().and_then(sysfs::numa_node),
            current_link_speed_gts: attr("current_link_speed")
                .as_deref()
                .and_then(sysfs::link_speed_gts),
            max_link_speed_gts: attr("max_link_speed").as_deref().and_then(sysfs::link_speed_gts),
            current_link_width: attr("current_link_width").as_deref().and_then(sysfs::link_width),
            max_link_width: attr("max_link_width").as_deref().and_then(sysfs::link_width),
            driver,
            partner_max_link_speed_gts: partner("max_link_speed")
                .as_deref()
                .and_then(sysfs::link_speed_gts),
            partner_max_link_width: partner("max_link_width")
                .as_deref()
                .and_then(sysfs::link_width),
            sysfs_path,
            ancestors,
            bdf,
        });
    }
    f.devices = Some(devices);
    f
}

/// `sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0` -> `["pci0000:00", "0000:00:01.0"]`.
pub fn ancestors_of(sysfs_path: &str, bdf: &str) -> Vec<String> {
    sysfs_path
        .split('/')
        .skip_while(|c| !c.starts_with("pci"))
        .filter(|c| *c != bdf)
        .filter(|c| c.starts_with("pci") || sysfs::is_bdf(c))
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors() {
        assert_eq!(
            ancestors_of(
                "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0",
                "0000:02:00.0"
            ),
            vec!["pci0000:00", "0000:00:01.0", "0000:01:00.0"]
        );
    }

    #[test]
    fn classes() {
        assert_eq!(classify(0x1d0f, 0xefa1, 0x020000, None), Some(PciKind::Efa));
        // The posted next generation, and any later one, by prefix.
        assert_eq!(classify(0x1d0f, 0xefa4, 0x020000, None), Some(PciKind::Efa));
        assert_eq!(classify(0x1d0f, 0xefaf, 0x020000, None), Some(PciKind::Efa));
        // An unknown id bound to the efa driver is EFA.
        assert_eq!(classify(0x1d0f, 0x1234, 0x020000, Some("efa")), Some(PciKind::Efa));
        // ENA, NVMe and Amazon bridges are not.
        assert_eq!(classify(0x1d0f, 0xec20, 0x020000, Some("ena")), None);
        assert_eq!(classify(0x1d0f, 0xcd01, 0x010802, Some("nvme")), None);
        assert_eq!(classify(0x1d0f, 0x0200, 0x060400, Some("pcieport")), None);
        assert_eq!(classify(0x1d0f, 0xef00, 0x020000, None), None);
        assert_eq!(classify(0x10de, 0xefa1, 0x020000, None), None);
        assert_eq!(classify(0x10de, 0x2330, 0x030200, Some("nvidia")), Some(PciKind::Gpu));
        assert_eq!(classify(0x10de, 0x22a3, 0x068000, None), Some(PciKind::Nvswitch));
    }
}
