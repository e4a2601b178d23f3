//! RDMA devices from `sys/class/infiniband` with their EFA-specific files and hw_counters
//! (layout: REFERENCE §1.5, counter names and versions: §1.6).
//!
//! Counters are read by name from whatever the driver exposes; a driver version that lacks a
//! counter simply has no entry (absent is not zero). A counter file that is listed but fails
//! to read (permission denied, firmware rejecting a stats type) or does not hold a count
//! (garbage, a negative number) is recorded in `counter_errors` with the reason, and a
//! `hw_counters` directory that cannot be listed in `counters_unreadable`: never as a zero.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Notes;
use super::pci::{EFA_DRIVER, is_efa_id};
use crate::parse::sysfs;
use crate::root::Root;

pub type Counters = BTreeMap<String, u64>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Netdev {
    pub name: String,
    pub operstate: Option<String>,
    pub carrier: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RdmaPort {
    pub port: u32,
    /// `ports/N/state` as written (`4: ACTIVE`). Hard-coded ACTIVE on EFA: never a health
    /// signal there.
    pub state: Option<String>,
    pub phys_state: Option<String>,
    pub rate: Option<String>,
    pub rate_gbps: Option<u32>,
    pub link_layer: Option<String>,
    pub counters: Counters,
    pub counter_errors: BTreeMap<String, String>,
    /// Why `hw_counters` exists but could not be listed (`permission denied`); `None` when
    /// it was listed or is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters_unreadable: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RdmaDevice {
    /// Kernel name (`efa_0`) or rdma-core's persistent name (`rdmap16s27`).
    pub name: String,
    pub bdf: Option<String>,
    pub vendor: Option<u32>,
    pub device: Option<u32>,
    pub is_efa: bool,
    pub node_guid: Option<String>,
    /// EFA P2P provider (`NVIDIA`, `NVIDIA peermem`, `NEURON`, empty), out-of-tree driver
    /// >= 2.6.0 (`device/p2p`).
    pub p2p: Option<String>,
    /// Legacy GPUDirect flag (`device/gdr`, out-of-tree 1.9-2.5): `1` or `0`.
    pub gdr: Option<String>,
    pub numa_node: Option<i32>,
    pub ports: Vec<RdmaPort>,
    /// Device-level counters (admin/error counters on EFA >= 1.14).
    pub counters: Counters,
    /// Counters listed but not read, with the reason (`permission denied`, `not found`,
    /// `unparsable: ...`).
    pub counter_errors: BTreeMap<String, String>,
    /// Why `hw_counters` exists but could not be listed (`permission denied`); `None` when
    /// it was listed or is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters_unreadable: Option<String>,
    /// Network interfaces of the same PCI function, with their link state.
    pub netdevs: Vec<Netdev>,
}

/// A second reading of every counter, taken `interval_ms` after the first (`--sample`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CounterSample {
    pub interval_ms: u64,
    /// device name -> counters; port counters are keyed `port<N>/<name>`.
    pub after: BTreeMap<String, Counters>,
}

impl CounterSample {
    /// How much each of `device`'s counters rose between its first reading (the device's
    /// own counters) and this second one; `None` when the sample has no reading of it.
    pub fn delta(&self, device: &RdmaDevice) -> Option<Counters> {
        let after = self.after.get(&device.name)?;
        let before = device.all_counters();
        Some(
            after
                .iter()
                .filter_map(|(k, a)| before.get(k).map(|b| (k.clone(), a.saturating_sub(*b))))
                .collect(),
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RdmaFacts {
    /// `None` when `sys/class/infiniband` is absent (no RDMA device or no RDMA stack).
    pub devices: Option<Vec<RdmaDevice>>,
    pub sample: Option<CounterSample>,
    pub notes: Notes,
}

impl RdmaFacts {
    pub fn efa(&self) -> impl Iterator<Item = &RdmaDevice> {
        self.devices.iter().flatten().filter(|d| d.is_efa)
    }

    /// An EFA RDMA device exists (what libfabric's efa provider opens).
    pub fn has_efa(&self) -> bool {
        self.efa().next().is_some()
    }
}

impl RdmaDevice {
    /// The out-of-tree driver's GPU peer-to-peer provider as the device reports it, with the
    /// attribute that says so: its `device/p2p` name (2.6.0 on), else `gdr=1` (`device/gdr`,
    /// 1.9-2.5); `None` when neither shows one.
    pub fn p2p_provider(&self) -> Option<(&'static str, String)> {
        match (&self.p2p, &self.gdr) {
            (Some(p), _) => (!p.is_empty()).then(|| ("device/p2p", p.clone())),
            (None, Some(g)) => (g == "1").then(|| ("device/gdr", "gdr=1".to_string())),
            (None, None) => None,
        }
    }

    /// Counters of this device that could not be read, as `(sysfs path, reason)`: listed
    /// counters that failed to read or parse (those `keep` accepts, by name) and
    /// `hw_counters` directories that could not be listed.
    pub fn counter_read_failures(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let base = format!("sys/class/infiniband/{}", self.name);
        let mut out = Vec::new();
        let mut dir = |dir: String, unlisted: &Option<String>, errs: &BTreeMap<String, String>| {
            if let Some(why) = unlisted {
                out.push((dir.clone(), why.clone()));
            }
            for (n, why) in errs.iter().filter(|(n, _)| keep(n)) {
                out.push((format!("{dir}/{n}"), why.clone()));
            }
        };
        dir(format!("{base}/hw_counters"), &self.counters_unreadable, &self.counter_errors);
        for p in &self.ports {
            dir(
                format!("{base}/ports/{}/hw_counters", p.port),
                &p.counters_unreadable,
                &p.counter_errors,
            );
        }
        out
    }

    /// Every counter of the device, port counters keyed `port<N>/<name>`.
    pub fn all_counters(&self) -> Counters {
        let mut all = self.counters.clone();
        for p in &self.ports {
            for (k, v) in &p.counters {
                all.insert(format!("port{}/{k}", p.port), *v);
            }
        }
        all
    }
}

pub fn gather(root: &Root) -> RdmaFacts {
    let mut f = RdmaFacts::default();
    let class = "sys/class/infiniband";
    let names = match root.list(class) {
        Ok(n) => n,
        Err(e) => {
            f.notes.insert("devices".into(), e.to_string());
            return f;
        }
    };
    f.devices = Some(names.iter().map(|n| device(root, &format!("{class}/{n}"), n)).collect());
    f
}

fn device(root: &Root, base: &str, name: &str) -> RdmaDevice {
    let val = |rel: &str| root.read_value(&format!("{base}/{rel}")).ok();
    let vendor = val("device/vendor").as_deref().and_then(sysfs::hex_u32);
    let device = val("device/device").as_deref().and_then(sysfs::hex_u32);
    let bdf = root
        .canonical(&format!("{base}/device"))
        .ok()
        .and_then(|c| c.rsplit('/').next().map(String::from))
        .filter(|b| sysfs::is_bdf(b));
    let mut d = RdmaDevice {
        name: name.to_string(),
        is_efa: matches!((vendor, device), (Some(v), Some(d)) if is_efa_id(v, d))
            || root
                .read_link(&format!("{base}/device/driver"))
                .is_ok_and(|t| t.rsplit('/').next() == Some(EFA_DRIVER)),
        vendor,
        device,
        bdf,
        node_guid: val("node_guid"),
        p2p: val("device/p2p"),
        gdr: val("device/gdr"),
        numa_node: val("device/numa_node").as_deref().and_then(sysfs::numa_node),
        ..RdmaDevice::default()
    };
    (d.counters, d.counter_errors, d.counters_unreadable) =
        counters(root, &format!("{base}/hw_counters"));
    if let Ok(ports) = root.list(&format!("{base}/ports")) {
        for p in ports {
            let Ok(num) = p.parse::<u32>() else { continue };
            let pb = format!("{base}/ports/{p}");
            let pval = |rel: &str| root.read_value(&format!("{pb}/{rel}")).ok();
            let (counters, counter_errors, counters_unreadable) =
                counters(root, &format!("{pb}/hw_counters"));
            let rate = pval("rate");
            d.ports.push(RdmaPort {
                port: num,
                state: pval("state"),
                phys_state: pval("phys_state"),
                rate_gbps: rate.as_deref().and_then(sysfs::ib_rate_gbps),
                rate,
                link_layer: pval("link_layer"),
                counters,
                counter_errors,
                counters_unreadable,
            });
        }
    }
    if let Ok(nets) = root.list(&format!("{base}/device/net")) {
        for n in nets {
            let nb = format!("{base}/device/net/{n}");
            d.netdevs.push(Netdev {
                operstate: root.read_value(&format!("{nb}/operstate")).ok(),
                // Reading `carrier` of a down interface fails with EINVAL: unknown, not false.
                carrier: root.read_value(&format!("{nb}/carrier")).ok().and_then(|c| {
                    match c.as_str() {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    }
                }),
                name: n,
            });
        }
    }
    d
}

/// Reads every counter in `dir`: the values, the counters that could not be read (by name,
/// with the reason), and why the directory itself could not be listed.
fn counters(root: &Root, dir: &str) -> (Counters, BTreeMap<String, String>, Option<String>) {
    let mut values = Counters::new();
    let mut errors = BTreeMap::new();
    let names = match root.list(dir) {
        Ok(n) => n,
        // No directory: a driver that exposes no counters here (absent, not unreadable).
        Err(e) if e.is_not_found() => return (values, errors, None),
        Err(e) => return (values, errors, Some(e.kind.to_string())),
    };
    for n in names.into_iter().filter(|n| n != "lifespan") {
        match root.read_value(&format!("{dir}/{n}")) {
            Ok(v) => match sysfs::counter_value(&v) {
                Ok(x) => {
                    values.insert(n, x);
                }
                Err(why) => {
                    errors.insert(n, why);
                }
            },
            Err(e) => {
                errors.insert(n, e.kind.to_string());
            }
        }
    }
    (values, errors, None)
}

/// Takes the second counter reading for `--sample`: waits `interval`, then re-reads every
/// device's counters. Only meaningful where counters change (the live root or a mounted host
/// root).
pub fn sample(
    root: &Root,
    facts: &RdmaFacts,
    interval: Duration,
    progress: &super::progress::Progress,
) -> CounterSample {
    progress.wait("efa-doctor: sampling the EFA counters", interval);
    let mut after = BTreeMap::new();
    for d in facts.devices.iter().flatten() {
        let again = device(root, &format!("sys/class/infiniband/{}", d.name), &d.name);
        after.insert(d.name.clone(), again.all_counters());
    }
    CounterSample { interval_ms: interval.as_millis() as u64, after }
}
