//! GPU facts through NVML (`libnvidia-ml.so.1`, loaded at run time by nvml-wrapper), run in
//! the native helper process under a deadline.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError};
use nvml_wrapper::error::NvmlError;

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct RemappedRows {
    pub correctable: u32,
    pub uncorrectable: u32,
    pub pending: bool,
    pub failure: bool,
}

/// `nvmlGpuFabricInfoV_t` (REFERENCE §8.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// `default`, `exclusive_process`, `prohibited` (`nvmlDeviceGetComputeMode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_mode: Option<String>,
    /// Free device memory in bytes (`nvmlDeviceGetMemoryInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_free: Option<u64>,
    /// NVML errors per field (e.g. `not supported`).
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
}

/// What the NVML helper returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NvmlReport {
    pub init_error: Option<String>,
    pub driver_version: Option<String>,
    /// `cuDriverGetVersion` form, e.g. 13000 for CUDA 13.0.
    pub cuda_driver_version: Option<i32>,
    pub nvml_version: Option<String>,
    pub gpus: Vec<Gpu>,
}

fn err(e: &NvmlError) -> String {
    match e {
        NvmlError::NotSupported => "not supported".into(),
        NvmlError::FunctionNotFound => "not in this driver's NVML".into(),
        other => other.to_string(),
    }
}

/// NVML PCI bus ids are `00000000:53:00.0`; sysfs writes `0000:53:00.0`.
pub fn normalise_bus_id(id: &str) -> String {
    let id = id.trim().to_ascii_lowercase();
    match id.split_once(':') {
        Some((dom, rest)) if dom.len() > 4 => format!("{}:{rest}", &dom[dom.len() - 4..]),
        _ => id,
    }
}

const FABRIC_STATE_NAMES: [&str; 4] = ["not-supported", "not-started", "in-progress", "completed"];

/// `nvmlDeviceGetGpuFabricInfoV` with the v3 struct (REFERENCE §8.4); v2 on older drivers.
fn fabric_info(nvml: &Nvml, dev: &nvml_wrapper::Device<'_>) -> Result<FabricInfo, String> {
    let lib = nvml.lib();
    let f = lib
        .nvmlDeviceGetGpuFabricInfoV
        .as_ref()
        .map_err(|_| "nvmlDeviceGetGpuFabricInfoV not in this driver".to_string())?;
    for (version_word, version) in [(0x0300_0028u32, 3u8), (0x0200_0024, 2)] {
        // SAFETY: a plain C struct; NVML fills it when `version` matches its size.
        let mut info: nvml_wrapper_sys::bindings::nvmlGpuFabricInfoV_t =
            unsafe { std::mem::zeroed() };
        info.version = version_word;
        // SAFETY: handle is a live device of this Nvml instance.
        let ret = unsafe { f(dev.handle(), &mut info) };
        if ret == 25 {
            // NVML_ERROR_ARGUMENT_VERSION_MISMATCH: try the older layout.
            continue;
        }
        if ret != 0 {
            return Err(format!("nvmlDeviceGetGpuFabricInfoV returned {ret}"));
        }
        let state = info.state;
        return Ok(FabricInfo {
            state,
            state_name: FABRIC_STATE_NAMES.get(state as usize).unwrap_or(&"unknown").to_string(),
            status: (state == 3).then_some(info.status),
            clique_id: info.cliqueId,
            cluster_uuid: info.clusterUuid.iter().map(|b| format!("{b:02x}")).collect(),
            health_mask: info.healthMask,
            health_summary: (version >= 3).then_some(info.healthSummary),
            struct_version: version,
        });
    }
    Err("NVML rejected both fabric-info struct versions".into())
}

fn remapped(nvml: &Nvml, dev: &nvml_wrapper::Device<'_>) -> Result<RemappedRows, String> {
    let f = nvml
        .lib()
        .nvmlDeviceGetRemappedRows
        .as_ref()
        .map_err(|_| "nvmlDeviceGetRemappedRows not in this driver".to_string())?;
    let (mut c, mut u, mut p, mut fl) = (0u32, 0u32, 0u32, 0u32);
    // SAFETY: four out-parameters of unsigned int.
    let ret = unsafe { f(dev.handle(), &mut c, &mut u, &mut p, &mut fl) };
    match ret {
        0 => {
            Ok(RemappedRows { correctable: c, uncorrectable: u, pending: p != 0, failure: fl != 0 })
        }
        3 => Err("not supported".into()),
        r => Err(format!("nvmlDeviceGetRemappedRows returned {r}")),
    }
}

/// `__native nvml`.
pub fn serve() -> String {
    super::step("nvmlInit_v2");
    let report = match Nvml::builder().lib_path(OsStr::new("libnvidia-ml.so.1")).init() {
        Ok(nvml) => collect(&nvml),
        Err(e) => NvmlReport { init_error: Some(err(&e)), ..NvmlReport::default() },
    };
    serde_json::to_string(&report).unwrap_or_default()
}

fn collect(nvml: &Nvml) -> NvmlReport {
    let mut r = NvmlReport::default();
    super::step("nvmlSystemGetDriverVersion");
    r.driver_version = nvml.sys_driver_version().ok();
    super::step("nvmlSystemGetCudaDriverVersion_v2");
    r.cuda_driver_version = nvml.sys_cuda_driver_version().ok();
    super::step("nvmlSystemGetNVMLVersion");
    r.nvml_version = nvml.sys_nvml_version().ok();
    super::step("nvmlDeviceGetCount_v2");
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            r.init_error = Some(format!("nvmlDeviceGetCount: {}", err(&e)));
            return r;
        }
    };
    for i in 0..count {
        super::step(&format!("nvmlDeviceGetHandleByIndex_v2({i})"));
        let dev = match nvml.device_by_index(i) {
            Ok(d) => d,
            Err(e) => {
                r.gpus.push(Gpu {
                    index: i,
                    errors: [("handle".to_string(), err(&e))].into(),
                    ..Gpu::default()
                });
                continue;
            }
        };
        let mut g = Gpu { index: i, ..Gpu::default() };
        macro_rules! field {
            ($name:literal, $call:expr) => {{
                super::step(&format!("{} on GPU {i}", $name));
                match $call {
                    Ok(v) => Some(v),
                    Err(e) => {
                        g.errors.insert($name.to_string(), err(&e));
                        None
                    }
                }
            }};
        }
        g.name = field!("name", dev.name());
        g.uuid = field!("uuid", dev.uuid());
        g.pci_bus_id = field!("pci_info", dev.pci_info()).map(|p| normalise_bus_id(&p.bus_id));
        g.persistence_mode = field!("persistence_mode", dev.is_in_persistent_mode());
        g.compute_mode = field!("compute_mode", dev.compute_mode()).map(|m| {
            use nvml_wrapper::enum_wrappers::device::ComputeMode;
            match m {
                ComputeMode::Default => "default",
                ComputeMode::ExclusiveThread => "exclusive_thread",
                ComputeMode::Prohibited => "prohibited",
                ComputeMode::ExclusiveProcess => "exclusive_process",
            }
            .to_string()
        });
        g.memory_free = field!("memory_info", dev.memory_info()).map(|m| m.free);
        if let Some(ecc) = field!("ecc_mode", dev.is_ecc_enabled()) {
            g.ecc_enabled = Some(ecc.currently_enabled);
            g.ecc_pending = Some(ecc.pending_enabled);
        }
        g.ecc_uncorrected_volatile = field!(
            "ecc_uncorrected_volatile",
            dev.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
        );
        g.ecc_uncorrected_aggregate = field!(
            "ecc_uncorrected_aggregate",
            dev.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate)
        );
        super::step(&format!("nvmlDeviceGetRemappedRows on GPU {i}"));
        match remapped(nvml, &dev) {
            Ok(rr) => g.remapped_rows = Some(rr),
            Err(e) => {
                g.errors.insert("remapped_rows".into(), e);
            }
        }
        g.pcie_gen_current = field!("pcie_gen_current", dev.current_pcie_link_gen());
        g.pcie_gen_max = field!("pcie_gen_max", dev.max_pcie_link_gen());
        g.pcie_width_current = field!("pcie_width_current", dev.current_pcie_link_width());
        g.pcie_width_max = field!("pcie_width_max", dev.max_pcie_link_width());
        super::step(&format!("nvmlDeviceGetGpuFabricInfoV on GPU {i}"));
        match fabric_info(nvml, &dev) {
            Ok(f) => g.fabric = Some(f),
            Err(e) => {
                g.errors.insert("fabric".into(), e);
            }
        }
        r.gpus.push(g);
    }
    r
}
