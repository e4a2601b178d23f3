//! GPU facts through NVML (`libnvidia-ml.so.1`, loaded at run time), run in the native
//! helper process under a deadline.
//!
//! The calls go straight through `nvml-wrapper-sys`'s bindings: the dozen queries below need
//! no safe wrapper, and nvml-wrapper pulled a second `thiserror` and `syn` into the build.
//! The symbols are the versions nvml-wrapper 0.13 used (`nvmlInit_v2`,
//! `nvmlDeviceGetHandleByIndex_v2`, `nvmlDeviceGetPciInfo_v3`, `nvmlDeviceGetMemoryInfo_v2`,
//! ...), so a driver answers as it did before.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_uint};

use nvml_wrapper_sys::bindings as sys;
use serde::{Deserialize, Serialize};
use sys::{NvmlLib, nvmlDevice_t, nvmlReturn_t};

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

/// What an NVML return code means, for the `errors` of a field and `init_error`. The two
/// words the checks show most (`not supported`, `not in this driver's NVML`) stay bare;
/// every other text carries the code, which is what NVIDIA's documentation lists.
fn describe(ret: nvmlReturn_t) -> String {
    let what = match ret {
        sys::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED => return "not supported".into(),
        sys::nvmlReturn_enum_NVML_ERROR_FUNCTION_NOT_FOUND => {
            return "not in this driver's NVML".into();
        }
        sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED => "NVML is not initialised",
        sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT => "invalid argument",
        sys::nvmlReturn_enum_NVML_ERROR_NO_PERMISSION => "no permission",
        sys::nvmlReturn_enum_NVML_ERROR_ALREADY_INITIALIZED => "already initialised",
        sys::nvmlReturn_enum_NVML_ERROR_NOT_FOUND => "not found",
        sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE => "buffer too small",
        sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_POWER => {
            "external power cables not properly attached"
        }
        sys::nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED => "NVIDIA driver is not loaded",
        sys::nvmlReturn_enum_NVML_ERROR_TIMEOUT => "timed out",
        sys::nvmlReturn_enum_NVML_ERROR_IRQ_ISSUE => "the kernel saw an interrupt issue with a GPU",
        sys::nvmlReturn_enum_NVML_ERROR_LIBRARY_NOT_FOUND => "a library NVML needs was not found",
        sys::nvmlReturn_enum_NVML_ERROR_CORRUPTED_INFOROM => "the infoROM is corrupted",
        sys::nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST => "the GPU fell off the bus or is lost",
        sys::nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED => "the GPU needs a reset",
        sys::nvmlReturn_enum_NVML_ERROR_OPERATING_SYSTEM => {
            "blocked by the operating system or cgroups"
        }
        sys::nvmlReturn_enum_NVML_ERROR_LIB_RM_VERSION_MISMATCH => {
            "driver/library version mismatch"
        }
        sys::nvmlReturn_enum_NVML_ERROR_IN_USE => "the GPU is in use",
        sys::nvmlReturn_enum_NVML_ERROR_MEMORY => "out of memory",
        sys::nvmlReturn_enum_NVML_ERROR_NO_DATA => "no data",
        sys::nvmlReturn_enum_NVML_ERROR_VGPU_ECC_NOT_SUPPORTED => "not available with ECC on",
        sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_RESOURCES => "insufficient resources",
        sys::nvmlReturn_enum_NVML_ERROR_FREQ_NOT_SUPPORTED => "frequency not supported",
        sys::nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH => "struct version mismatch",
        sys::nvmlReturn_enum_NVML_ERROR_DEPRECATED => "deprecated",
        sys::nvmlReturn_enum_NVML_ERROR_NOT_READY => "not ready",
        sys::nvmlReturn_enum_NVML_ERROR_GPU_NOT_FOUND => "GPU not found",
        sys::nvmlReturn_enum_NVML_ERROR_INVALID_STATE => "invalid state",
        sys::nvmlReturn_enum_NVML_ERROR_UNKNOWN => "unknown error",
        _ => "unrecognised error",
    };
    format!("{what} (NVML return {ret})")
}

fn check(ret: nvmlReturn_t) -> Result<(), String> {
    if ret == sys::nvmlReturn_enum_NVML_SUCCESS { Ok(()) } else { Err(describe(ret)) }
}

/// A symbol the bindings looked up when the library was opened; an older driver lacks the
/// newer ones, which is an answer, not a failure of the run.
fn sym<'a, F>(found: &'a Result<F, libloading::Error>, name: &str) -> Result<&'a F, String> {
    found.as_ref().map_err(|_| format!("{name} is not in this driver's NVML"))
}

/// A C string NVML wrote into `buf`: up to the first NUL, or the whole buffer if NVML wrote
/// none (never past it); bytes that are not UTF-8 are replaced, not an error.
fn c_buf_to_string(buf: &[c_char]) -> String {
    // c_char is i8 or u8 by platform: the same bytes either way.
    let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Calls an NVML function that writes a C string of at most `N` bytes, with `N` as the
/// length it is told (the `*_BUFFER_SIZE` of nvml.h).
fn read_string<const N: usize>(
    call: impl FnOnce(*mut c_char, c_uint) -> nvmlReturn_t,
) -> Result<String, String> {
    let mut buf = [0 as c_char; N];
    check(call(buf.as_mut_ptr(), N as c_uint))?;
    Ok(c_buf_to_string(&buf))
}

/// `nvmlEnableState_t`, which NVML defines only as disabled (0) or enabled (1).
fn enabled(state: c_uint) -> Result<bool, String> {
    match state {
        sys::nvmlEnableState_enum_NVML_FEATURE_DISABLED => Ok(false),
        sys::nvmlEnableState_enum_NVML_FEATURE_ENABLED => Ok(true),
        other => Err(format!("unexpected enable state {other}")),
    }
}

fn compute_mode_name(mode: c_uint) -> Result<&'static str, String> {
    Ok(match mode {
        sys::nvmlComputeMode_enum_NVML_COMPUTEMODE_DEFAULT => "default",
        sys::nvmlComputeMode_enum_NVML_COMPUTEMODE_EXCLUSIVE_THREAD => "exclusive_thread",
        sys::nvmlComputeMode_enum_NVML_COMPUTEMODE_PROHIBITED => "prohibited",
        sys::nvmlComputeMode_enum_NVML_COMPUTEMODE_EXCLUSIVE_PROCESS => "exclusive_process",
        other => return Err(format!("unexpected compute mode {other}")),
    })
}

/// nvml.h's `NVML_STRUCT_VERSION`: a versioned struct's size with its version in the top byte.
const fn struct_version(size: usize, version: u32) -> u32 {
    size as u32 | (version << 24)
}

/// NVML after a successful `nvmlInit_v2`; dropping it calls `nvmlShutdown` (before the
/// library is closed), so every path out of the helper shuts NVML down.
struct Session {
    lib: NvmlLib,
}

impl Session {
    /// Opens `libnvidia-ml.so.1` the way the node's workloads do (the loader's search path)
    /// and initialises NVML.
    fn open() -> Result<Session, String> {
        // SAFETY: opening the library runs its initialisers; the NVIDIA driver's own
        // libnvidia-ml.so.1 is the library this helper process exists to run.
        let lib = unsafe { NvmlLib::new("libnvidia-ml.so.1") }.map_err(|e| super::dl_error(&e))?;
        let init = sym(&lib.nvmlInit_v2, "nvmlInit_v2")?;
        // SAFETY: no arguments; NVML counts initialisations, each matched by the shutdown
        // in Drop once this Session exists.
        check(unsafe { init() })?;
        Ok(Session { lib })
    }

    fn string<const N: usize>(
        &self,
        f: &Result<unsafe extern "C" fn(*mut c_char, c_uint) -> nvmlReturn_t, libloading::Error>,
        name: &str,
    ) -> Result<String, String> {
        let f = sym(f, name)?;
        // SAFETY: NVML writes at most `len` bytes, and `len` is the buffer's size.
        read_string::<N>(|buf, len| unsafe { f(buf, len) })
    }

    fn device(&self, index: u32) -> Result<Device<'_>, String> {
        let f = sym(&self.lib.nvmlDeviceGetHandleByIndex_v2, "nvmlDeviceGetHandleByIndex_v2")?;
        let mut handle: nvmlDevice_t = std::ptr::null_mut();
        // SAFETY: one out-parameter; NVML is initialised for as long as `self` lives.
        check(unsafe { f(index, &mut handle) })?;
        Ok(Device { nvml: self, handle })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(shutdown) = &self.lib.nvmlShutdown {
            // SAFETY: matches the successful nvmlInit_v2 of `open`; no handle outlives the
            // Session (each Device borrows it). Its result changes nothing at exit.
            let _ = unsafe { shutdown() };
        }
    }
}

/// A device handle, valid while the session it borrows is.
struct Device<'a> {
    nvml: &'a Session,
    handle: nvmlDevice_t,
}

type DeviceUintFn = unsafe extern "C" fn(nvmlDevice_t, *mut c_uint) -> nvmlReturn_t;
type DeviceStringFn = unsafe extern "C" fn(nvmlDevice_t, *mut c_char, c_uint) -> nvmlReturn_t;

impl Device<'_> {
    fn lib(&self) -> &NvmlLib {
        &self.nvml.lib
    }

    /// The many queries with one `unsigned int` out-parameter (enums included).
    fn uint(&self, f: &Result<DeviceUintFn, libloading::Error>, name: &str) -> Result<u32, String> {
        let f = sym(f, name)?;
        let mut v: c_uint = 0;
        // SAFETY: a live handle and one out-parameter of unsigned int.
        check(unsafe { f(self.handle, &mut v) })?;
        Ok(v)
    }

    fn string<const N: usize>(
        &self,
        f: &Result<DeviceStringFn, libloading::Error>,
        name: &str,
    ) -> Result<String, String> {
        let f = sym(f, name)?;
        // SAFETY: a live handle; NVML writes at most `len` bytes, the buffer's size.
        read_string::<N>(|buf, len| unsafe { f(self.handle, buf, len) })
    }

    fn name(&self) -> Result<String, String> {
        const N: usize = sys::NVML_DEVICE_NAME_V2_BUFFER_SIZE as usize;
        self.string::<N>(&self.lib().nvmlDeviceGetName, "nvmlDeviceGetName")
    }

    fn uuid(&self) -> Result<String, String> {
        const N: usize = sys::NVML_DEVICE_UUID_V2_BUFFER_SIZE as usize;
        self.string::<N>(&self.lib().nvmlDeviceGetUUID, "nvmlDeviceGetUUID")
    }

    /// `busId` of `nvmlPciInfo_t` (`00000000:53:00.0`).
    fn pci_bus_id(&self) -> Result<String, String> {
        let f = sym(&self.lib().nvmlDeviceGetPciInfo_v3, "nvmlDeviceGetPciInfo_v3")?;
        // SAFETY: a plain C struct of integers and char arrays; all zeroes is valid.
        let mut pci: sys::nvmlPciInfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a live handle and a struct NVML fills.
        check(unsafe { f(self.handle, &mut pci) })?;
        Ok(c_buf_to_string(&pci.busId))
    }

    /// Free memory from `nvmlDeviceGetMemoryInfo_v2` (its `reserved` is what v1 counted as
    /// used; `free` is the same in both).
    fn memory_free(&self) -> Result<u64, String> {
        let f = sym(&self.lib().nvmlDeviceGetMemoryInfo_v2, "nvmlDeviceGetMemoryInfo_v2")?;
        let mut info = sys::nvmlMemory_v2_t {
            version: struct_version(std::mem::size_of::<sys::nvmlMemory_v2_t>(), 2),
            total: 0,
            reserved: 0,
            free: 0,
            used: 0,
        };
        // SAFETY: a live handle and a versioned struct whose version word matches its size.
        check(unsafe { f(self.handle, &mut info) })?;
        Ok(info.free)
    }

    /// (current, pending) ECC mode.
    fn ecc_mode(&self) -> Result<(bool, bool), String> {
        let f = sym(&self.lib().nvmlDeviceGetEccMode, "nvmlDeviceGetEccMode")?;
        let (mut current, mut pending) = (0 as c_uint, 0 as c_uint);
        // SAFETY: a live handle and two out-parameters of nvmlEnableState_t.
        check(unsafe { f(self.handle, &mut current, &mut pending) })?;
        Ok((enabled(current)?, enabled(pending)?))
    }

    fn uncorrected_ecc(&self, counter: sys::nvmlEccCounterType_t) -> Result<u64, String> {
        let f = sym(&self.lib().nvmlDeviceGetTotalEccErrors, "nvmlDeviceGetTotalEccErrors")?;
        let mut count = 0u64;
        let kind = sys::nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_UNCORRECTED;
        // SAFETY: a live handle, two enum values nvml.h defines and one out-parameter.
        check(unsafe { f(self.handle, kind, counter, &mut count) })?;
        Ok(count)
    }

    fn remapped_rows(&self) -> Result<RemappedRows, String> {
        let f = sym(&self.lib().nvmlDeviceGetRemappedRows, "nvmlDeviceGetRemappedRows")?;
        let (mut c, mut u, mut p, mut fl) = (0u32, 0u32, 0u32, 0u32);
        // SAFETY: a live handle and four out-parameters of unsigned int.
        check(unsafe { f(self.handle, &mut c, &mut u, &mut p, &mut fl) })?;
        Ok(RemappedRows { correctable: c, uncorrectable: u, pending: p != 0, failure: fl != 0 })
    }

    /// `nvmlDeviceGetGpuFabricInfoV` with the v3 struct (REFERENCE §8.4); v2 on older drivers.
    fn fabric_info(&self) -> Result<FabricInfo, String> {
        let f = sym(&self.lib().nvmlDeviceGetGpuFabricInfoV, "nvmlDeviceGetGpuFabricInfoV")?;
        // v2 is v3 without its last field, so the v3 struct holds either.
        for (size, version) in [
            (std::mem::size_of::<sys::nvmlGpuFabricInfo_v3_t>(), 3u8),
            (std::mem::size_of::<sys::nvmlGpuFabricInfo_v2_t>(), 2),
        ] {
            // SAFETY: a plain C struct of integers and byte arrays; all zeroes is valid.
            let mut info: sys::nvmlGpuFabricInfoV_t = unsafe { std::mem::zeroed() };
            info.version = struct_version(size, version.into());
            // SAFETY: a live handle; the version word tells NVML how much of `info` to fill.
            let ret = unsafe { f(self.handle, &mut info) };
            if ret == sys::nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH {
                continue; // a driver that knows only the older layout
            }
            check(ret)?;
            let state = info.state;
            return Ok(FabricInfo {
                state,
                state_name: FABRIC_STATE_NAMES
                    .get(state as usize)
                    .unwrap_or(&"unknown")
                    .to_string(),
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

/// `__native nvml`.
pub fn serve() -> String {
    super::step("nvmlInit_v2");
    let report = match Session::open() {
        Ok(nvml) => collect(&nvml),
        Err(e) => NvmlReport { init_error: Some(e), ..NvmlReport::default() },
    };
    serde_json::to_string(&report).unwrap_or_default()
}

fn collect(nvml: &Session) -> NvmlReport {
    const VERSION_LEN: usize = sys::NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE as usize;
    const NVML_VERSION_LEN: usize = sys::NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE as usize;
    let lib = &nvml.lib;
    let mut r = NvmlReport::default();
    super::step("nvmlSystemGetDriverVersion");
    r.driver_version = nvml
        .string::<VERSION_LEN>(&lib.nvmlSystemGetDriverVersion, "nvmlSystemGetDriverVersion")
        .ok();
    super::step("nvmlSystemGetCudaDriverVersion_v2");
    r.cuda_driver_version =
        sym(&lib.nvmlSystemGetCudaDriverVersion_v2, "nvmlSystemGetCudaDriverVersion_v2")
            .and_then(|f| {
                let mut v = 0;
                // SAFETY: one out-parameter of int.
                check(unsafe { f(&mut v) }).map(|()| v)
            })
            .ok();
    super::step("nvmlSystemGetNVMLVersion");
    r.nvml_version = nvml
        .string::<NVML_VERSION_LEN>(&lib.nvmlSystemGetNVMLVersion, "nvmlSystemGetNVMLVersion")
        .ok();
    super::step("nvmlDeviceGetCount_v2");
    let count = sym(&lib.nvmlDeviceGetCount_v2, "nvmlDeviceGetCount_v2").and_then(|f| {
        let mut n: c_uint = 0;
        // SAFETY: one out-parameter of unsigned int.
        check(unsafe { f(&mut n) }).map(|()| n)
    });
    let count = match count {
        Ok(c) => c,
        Err(e) => {
            r.init_error = Some(format!("nvmlDeviceGetCount: {e}"));
            return r;
        }
    };
    for i in 0..count {
        super::step(&format!("nvmlDeviceGetHandleByIndex_v2({i})"));
        let dev = match nvml.device(i) {
            Ok(d) => d,
            Err(e) => {
                r.gpus.push(Gpu {
                    index: i,
                    errors: [("handle".to_string(), e)].into(),
                    ..Gpu::default()
                });
                continue;
            }
        };
        r.gpus.push(gpu(i, &dev));
    }
    r
}

fn gpu(i: u32, dev: &Device<'_>) -> Gpu {
    let lib = dev.lib();
    let mut g = Gpu { index: i, ..Gpu::default() };
    // The step is written before the call, so a hang names it; an error is kept per field.
    macro_rules! field {
        ($name:literal, $call:expr) => {
            field!($name, $name, $call)
        };
        ($name:literal, $step:literal, $call:expr) => {{
            super::step(&format!("{} on GPU {i}", $step));
            match $call {
                Ok(v) => Some(v),
                Err(e) => {
                    g.errors.insert($name.to_string(), e);
                    None
                }
            }
        }};
    }
    g.name = field!("name", dev.name());
    g.uuid = field!("uuid", dev.uuid());
    g.pci_bus_id = field!("pci_info", dev.pci_bus_id()).map(|id| normalise_bus_id(&id));
    g.persistence_mode = field!(
        "persistence_mode",
        dev.uint(&lib.nvmlDeviceGetPersistenceMode, "nvmlDeviceGetPersistenceMode")
            .and_then(enabled)
    );
    g.compute_mode = field!(
        "compute_mode",
        dev.uint(&lib.nvmlDeviceGetComputeMode, "nvmlDeviceGetComputeMode")
            .and_then(compute_mode_name)
    )
    .map(str::to_string);
    g.memory_free = field!("memory_info", dev.memory_free());
    if let Some((current, pending)) = field!("ecc_mode", dev.ecc_mode()) {
        g.ecc_enabled = Some(current);
        g.ecc_pending = Some(pending);
    }
    g.ecc_uncorrected_volatile = field!(
        "ecc_uncorrected_volatile",
        dev.uncorrected_ecc(sys::nvmlEccCounterType_enum_NVML_VOLATILE_ECC)
    );
    g.ecc_uncorrected_aggregate = field!(
        "ecc_uncorrected_aggregate",
        dev.uncorrected_ecc(sys::nvmlEccCounterType_enum_NVML_AGGREGATE_ECC)
    );
    g.remapped_rows = field!("remapped_rows", "nvmlDeviceGetRemappedRows", dev.remapped_rows());
    g.pcie_gen_current = field!(
        "pcie_gen_current",
        dev.uint(&lib.nvmlDeviceGetCurrPcieLinkGeneration, "nvmlDeviceGetCurrPcieLinkGeneration")
    );
    g.pcie_gen_max = field!(
        "pcie_gen_max",
        dev.uint(&lib.nvmlDeviceGetMaxPcieLinkGeneration, "nvmlDeviceGetMaxPcieLinkGeneration")
    );
    g.pcie_width_current = field!(
        "pcie_width_current",
        dev.uint(&lib.nvmlDeviceGetCurrPcieLinkWidth, "nvmlDeviceGetCurrPcieLinkWidth")
    );
    g.pcie_width_max = field!(
        "pcie_width_max",
        dev.uint(&lib.nvmlDeviceGetMaxPcieLinkWidth, "nvmlDeviceGetMaxPcieLinkWidth")
    );
    g.fabric = field!("fabric", "nvmlDeviceGetGpuFabricInfoV", dev.fabric_info());
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_codes_read_as_words_with_their_code() {
        assert_eq!(describe(sys::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED), "not supported");
        assert_eq!(
            describe(sys::nvmlReturn_enum_NVML_ERROR_FUNCTION_NOT_FOUND),
            "not in this driver's NVML"
        );
        assert_eq!(
            describe(sys::nvmlReturn_enum_NVML_ERROR_LIB_RM_VERSION_MISMATCH),
            "driver/library version mismatch (NVML return 18)"
        );
        assert_eq!(describe(999), "unknown error (NVML return 999)");
        // A code newer than these bindings is still an answer, never a panic.
        assert_eq!(describe(4242), "unrecognised error (NVML return 4242)");
        assert_eq!(check(sys::nvmlReturn_enum_NVML_SUCCESS), Ok(()));
        assert_eq!(check(15), Err("the GPU fell off the bus or is lost (NVML return 15)".into()));
    }

    /// A real libloading error: a symbol this test binary does not have.
    fn dlsym_error() -> libloading::Error {
        let this = libloading::os::unix::Library::this();
        // SAFETY: the symbol is only looked up, never called.
        unsafe { this.get::<unsafe extern "C" fn()>(b"efa_doctor_no_such_symbol\0") }
            .map(|_| ())
            .unwrap_err()
    }

    #[test]
    fn a_missing_symbol_names_itself() {
        let missing: Result<DeviceUintFn, _> = Err(dlsym_error());
        assert_eq!(
            sym(&missing, "nvmlDeviceGetRemappedRows").unwrap_err(),
            "nvmlDeviceGetRemappedRows is not in this driver's NVML"
        );
    }

    #[test]
    fn c_strings_stop_at_nul_stay_in_the_buffer_and_decode_lossily() {
        let buf = |b: &[u8]| b.iter().map(|&x| x as c_char).collect::<Vec<_>>();
        assert_eq!(c_buf_to_string(&buf(b"NVIDIA H200\0garbage")), "NVIDIA H200");
        // No NUL at all: the buffer's end is the string's end.
        assert_eq!(c_buf_to_string(&buf(b"0000")), "0000");
        assert_eq!(c_buf_to_string(&buf(b"\0")), "");
        assert_eq!(c_buf_to_string(&buf(b"GPU \xff\xfe\0")), "GPU \u{fffd}\u{fffd}");
        // A writer told N bytes that fills all N is read back within them.
        let s = read_string::<4>(|p, len| {
            assert_eq!(len, 4);
            // SAFETY: the buffer holds `len` = 4 bytes.
            unsafe { std::ptr::copy_nonoverlapping(b"abcd".as_ptr().cast(), p, 4) };
            0
        });
        assert_eq!(s, Ok("abcd".into()));
        assert_eq!(read_string::<8>(|_, _| 3), Err("not supported".into()));
    }

    #[test]
    fn enums_outside_nvml_h_are_errors_not_guesses() {
        assert_eq!(enabled(0), Ok(false));
        assert_eq!(enabled(1), Ok(true));
        assert_eq!(enabled(2), Err("unexpected enable state 2".into()));
        assert_eq!(compute_mode_name(3), Ok("exclusive_process"));
        assert_eq!(compute_mode_name(0), Ok("default"));
        assert_eq!(compute_mode_name(9), Err("unexpected compute mode 9".into()));
    }

    #[test]
    fn struct_versions_match_nvml_h() {
        // nvml.h: nvmlGpuFabricInfo_v3 = 0x3000028, _v2 = 0x2000024, nvmlMemory_v2 = 0x2000028.
        let v = |size, ver| struct_version(size, ver);
        assert_eq!(v(std::mem::size_of::<sys::nvmlGpuFabricInfo_v3_t>(), 3), 0x0300_0028);
        assert_eq!(v(std::mem::size_of::<sys::nvmlGpuFabricInfo_v2_t>(), 2), 0x0200_0024);
        assert_eq!(v(std::mem::size_of::<sys::nvmlMemory_v2_t>(), 2), 0x0200_0028);
    }

    #[test]
    fn bus_ids_take_the_sysfs_form() {
        assert_eq!(normalise_bus_id("00000000:53:00.0"), "0000:53:00.0");
        assert_eq!(normalise_bus_id("0000:53:00.0"), "0000:53:00.0");
        assert_eq!(normalise_bus_id(" 00000001:AB:00.0 "), "0001:ab:00.0");
    }
}
