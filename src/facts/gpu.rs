//! GPU facts from NVML, gathered in the native helper process under a deadline, or replayed
//! from a capture.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::native::{self, NativeState};

/// How long NVML may take for the whole node. A wedged GPU can make NVML calls block for
/// minutes; past this the helper is killed and the GPU facts are an `error`.
pub const NVML_DEADLINE: Duration = Duration::from_secs(30);

/// What the NVML helper measures is its own result type; the GPU facts carry it as is.
pub use crate::native::nvml::{FabricInfo, Gpu, NvmlReport, RemappedRows};

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
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

    #[test]
    fn only_a_library_that_cannot_be_opened_is_missing() {
        let state = |e: &str| {
            from_report(NvmlReport { init_error: Some(e.into()), ..NvmlReport::default() }).state
        };
        // dlerror's text, as the helper reports it.
        let absent = "libnvidia-ml.so.1: cannot open shared object file: No such file or directory";
        assert_eq!(state(absent), NativeState::Missing);
        // Captures taken through nvml-wrapper carry its prefix.
        assert_eq!(state(&format!("a libloading error occurred: {absent}")), NativeState::Missing);
        for present in [
            "NVIDIA driver is not loaded (NVML return 9)",
            "driver/library version mismatch (NVML return 18)",
            "a library NVML needs was not found (NVML return 12)",
            "nvmlInit_v2 is not in this driver's NVML",
        ] {
            assert_eq!(state(present), NativeState::Failed, "{present}");
        }
    }
}
