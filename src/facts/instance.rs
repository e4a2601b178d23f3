//! Instance identity without the network: DMI (`product_name` holds the instance type on
//! Nitro, and aws-ofi-nccl keys its platform table on it) and the instance table in
//! `data/instances.toml`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::Notes;
use crate::root::Root;

/// One row of `data/instances.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceSpec {
    #[serde(rename = "type")]
    pub instance_type: String,
    pub gpus: u32,
    pub gpu: String,
    pub efa_devices: u32,
    #[serde(default)]
    pub efa_gbps: Option<u32>,
    pub gpudirect: bool,
    pub nvswitch: bool,
    pub arch: String,
    pub verified: bool,
    pub sources: Vec<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Deserialize)]
struct Table {
    instance: Vec<InstanceSpec>,
}

/// The instance table, parsed once.
pub fn table() -> &'static [InstanceSpec] {
    static TABLE: OnceLock<Vec<InstanceSpec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        toml::from_str::<Table>(include_str!("../../data/instances.toml"))
            .map(|t| t.instance)
            .unwrap_or_default()
    })
}

pub fn spec(instance_type: &str) -> Option<&'static InstanceSpec> {
    table().iter().find(|s| s.instance_type == instance_type)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceFacts {
    /// EC2 instance type (DMI `product_name`).
    pub instance_type: Option<String>,
    /// DMI `sys_vendor` (`Amazon EC2` on Nitro).
    pub sys_vendor: Option<String>,
    /// Nitro `board_asset_tag` = instance id.
    pub instance_id: Option<String>,
    /// The row of the instance table for this type, if efa-doctor knows it.
    pub spec: Option<InstanceSpec>,
    pub notes: Notes,
}

impl InstanceFacts {
    /// True when the clues say this is an EC2 instance; `None` when there are no clues.
    pub fn is_ec2(&self) -> Option<bool> {
        if self.sys_vendor.as_deref().is_some_and(|v| v.contains("Amazon"))
            || self.instance_id.as_deref().is_some_and(|i| i.starts_with("i-"))
        {
            return Some(true);
        }
        if self.sys_vendor.is_some() {
            return Some(false);
        }
        None
    }
}

pub fn gather(root: &Root) -> InstanceFacts {
    let mut f = InstanceFacts::default();
    let dmi = "sys/devices/virtual/dmi/id";
    let read =
        |name: &str| root.read_value(&format!("{dmi}/{name}")).ok().filter(|v| !v.is_empty());
    f.instance_type = read("product_name");
    f.sys_vendor = read("sys_vendor");
    f.instance_id = read("board_asset_tag").filter(|t| t.starts_with("i-"));
    if f.instance_type.is_none() {
        f.notes.insert(
            "instance_type".into(),
            format!("{dmi}/product_name is absent (not a Nitro instance, or DMI not exposed)"),
        );
    }
    f.spec = f.instance_type.as_deref().and_then(spec).cloned();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_is_consistent() {
        let t = table();
        assert!(t.len() >= 15, "instance table failed to parse");
        let p5 = spec("p5.48xlarge").unwrap();
        assert_eq!((p5.gpus, p5.efa_devices), (8, 32));
        for s in t {
            assert!(!s.sources.is_empty(), "{} has no source", s.instance_type);
            assert!(matches!(s.arch.as_str(), "x86_64" | "aarch64"));
        }
        // Rows checked against the real evidence (shared/research/real-efa).
        let gb = spec("p6e-gb200.36xlarge").unwrap();
        assert_eq!((gb.gpus, gb.efa_devices, gb.efa_gbps), (4, 16, None), "no unverifiable rate");
        assert!(spec("p4d.24xlarge").unwrap().sources[0].contains("no PCIe switch"));
        assert_eq!(spec("p6-b300.48xlarge").unwrap().efa_devices, 16);
    }
}
