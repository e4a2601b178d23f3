//! GPU facts from NVML, gathered in the native helper process under a deadline, or replayed
//! from a capture.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::native::{self, NativeState};

/// How long NVML may take for the whole node. A wedged GPU can make NVML calls block for
/// minutes; past this the helper is killed and the GPU facts are an `error`.
pub const NVML_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemappedRows {
    pub correctable: u32,
    pub uncorrectable: u32,
    pub pending: bool,
    pub failure: bool,
}

/// `nvmlGpuFabricInfoV_t` (REFERENCE §8.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FabricInfo {
    /// 0 not supported, 1 not started, 2 in progress, 3 completed.
    pub state: u8,
    pub state_name: String,
    /// NVML return code of the fabric registration; meaningful only when completed.
    pub status: Option<u32>,
    pub clique_id: u32,
    pub cluster_uuid: String,
    pub health_mask: u32,
    /// 0 not supported, 1 healthy, 2 unhealthy, 3 limited capacity (struct v3 only).
    pub health_summary: Option<u8>,
    pub struct_version: u8,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub index: u32,
    pub name: Option<String>,
    pub uuid: Option<String>,
    /// `0000:53:00.0` (normalised to sysfs form).
    pub pci_bus_id: Option<String>,
    pub persistence_mode: Option<bool>,
    pub ecc_enabled: Option<bool>,
    pub ecc_pending: Option<bool>,
    pub ecc_uncorrected_volatile: Option<u64>,
    pub ecc_uncorrected_aggregate: Option<u64>,
    pub remapped_rows: Option<RemappedRows>,
    pub pcie_gen_current: Option<u32>,
    pub pcie_gen_max: Option<u32>,
    pub pcie_width_current: Option<u32>,
    pub pcie_width_max: Option<u32>,
    pub fabric: Option<FabricInfo>,
    /// NVML errors per field (e.g. `not supported`).
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
}

/// What the NVML helper returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvmlReport {
    pub init_error: Option<String>,
    pub driver_version: Option<String>,
    /// `cuDriverGetVersion` form, e.g. 13000 for CUDA 13.0.
    pub cuda_driver_version: Option<i32>,
    pub nvml_version: Option<String>,
    pub gpus: Vec<Gpu>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GpuFacts {
    pub state: NativeState,
    /// Where NVML was queried ([`native::Site::vantage`]); absent when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    /// Why NVML gave nothing, when it did not.
    pub error: Option<String>,
    pub driver_version: Option<String>,
    pub cuda_driver_version: Option<String>,
    pub nvml_version: Option<String>,
    pub gpus: Vec<Gpu>,
}

impl GpuFacts {
    pub fn not_run(why: &str) -> GpuFacts {
        GpuFacts { state: NativeState::NotRun, error: Some(why.into()), ..GpuFacts::default() }
    }
}

fn cuda_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// Queries NVML on the live node, or inside a mounted node root, through the helper process.
pub fn gather_live(root: &crate::root::Root) -> GpuFacts {
    let Some(site) = native::Site::of(root) else {
        return GpuFacts::not_run("NVML runs only on the live node or a mounted node root");
    };
    let run =
        native::run_json::<NvmlReport>(&site, &["nvml"], &[], NVML_DEADLINE, "NVML did not answer");
    let facts = match run.result {
        Some(report) => from_report(report),
        None => GpuFacts { state: run.state, error: run.error, ..GpuFacts::default() },
    };
    GpuFacts { vantage: run.vantage, ..facts }
}

pub fn from_report(report: NvmlReport) -> GpuFacts {
    if let Some(e) = report.init_error {
        // libloading's "cannot open shared object file" means the library is absent.
        let missing = e.contains("cannot open shared object")
            || e.contains("LibloadingError")
            || e.contains("No such file");
        return GpuFacts {
            state: if missing { NativeState::Missing } else { NativeState::Failed },
            error: Some(e),
            driver_version: report.driver_version,
            ..GpuFacts::default()
        };
    }
    GpuFacts {
        state: NativeState::Ok,
        error: None,
        driver_version: report.driver_version,
        cuda_driver_version: report.cuda_driver_version.map(cuda_version),
        nvml_version: report.nvml_version,
        gpus: report.gpus,
        ..GpuFacts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_versions() {
        assert_eq!(cuda_version(13000), "13.0");
        assert_eq!(cuda_version(12090), "12.9");
    }
}
