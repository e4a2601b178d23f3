//! `__native probe-mr`: registers real CUDA memory with the node's libfabric, the way NIXL
//! does, and reports every return code (REFERENCE §4.4). Judging happens in the parent
//! (`checks::probe`); this side only measures.
//!
//! Per GPU: a primary context made current, one device allocation, its dma-buf export,
//! then on a domain of the requested provider a host-memory registration (control),
//! `fi_mr_regattr` with iface FI_HMEM_CUDA (implicit, as NIXL registers) and, where the
//! API allows, with the dma-buf fd (FI_MR_DMABUF). Everything is released on every path by
//! guards, in reverse order.

use std::ffi::c_void;
use std::os::fd::AsRawFd;

use serde::{Deserialize, Serialize};

use super::cuda::{self, Cuda};
use super::fabric::{
    self, FI_HMEM_CUDA, FI_HMEM_SYSTEM, FI_MR_DMABUF, Fabric, ProviderInfo, fi_mr_attr,
    fi_mr_dmabuf, iovec,
};
use super::step;

/// Bytes registered per buffer: large enough for a real pinning, small enough to be cheap.
pub const PROBE_BYTES: usize = 2 << 20;
/// RDM entries reported (a tcp provider lists one per address of every interface).
const MAX_ENTRIES: usize = 16;
/// libfabric API that defines FI_MR_DMABUF and the dma-buf member of `fi_mr_attr`.
const DMABUF_API: u32 = fabric::fi_version(1, 20);

/// A call that returned an error: the call, its return code and the library's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallError {
    pub call: String,
    pub code: i32,
    pub text: String,
}

/// One `fi_mr_regattr`: `ret` 0 is success; `skipped` says why it was not attempted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Registration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Registration {
    fn skipped(why: impl Into<String>) -> Registration {
        Registration { skipped: Some(why.into()), ..Registration::default() }
    }

    pub fn ok(&self) -> bool {
        self.ret == Some(0)
    }

    /// The negative errno of a failed attempt.
    pub fn failed_with(&self) -> Option<i32> {
        self.ret.filter(|r| *r != 0)
    }
}

/// What one GPU gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuProbe {
    pub ordinal: i32,
    pub name: Option<String>,
    pub pci_bus_id: Option<String>,
    /// `CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED`.
    pub dmabuf_supported: Option<bool>,
    /// `CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED`.
    pub gdr_supported: Option<bool>,
    /// The CUDA call that stopped the probe of this GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_error: Option<CallError>,
    /// `device` for cuMemAlloc memory, as the driver reports it.
    pub memory_type: Option<String>,
    /// `flags=1` (PCIe mapping) or `flags=0`, or why the export failed.
    pub dmabuf_export: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmabuf_error: Option<CallError>,
    /// The libfabric domain used.
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_error: Option<CallError>,
    pub host: Registration,
    pub implicit: Registration,
    /// The key the provider gave the implicit CUDA registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implicit_key: Option<u64>,
    /// The domain's `mr_key_size` in bytes: a wider key was made up by the provider, not
    /// returned by the device (the efa provider's no-P2P keys start at 2^32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mr_key_size: Option<usize>,
    /// `fi_setopt(FI_OPT_CUDA_API_PERMITTED=false)` on an endpoint (aws-ofi-nccl's test):
    /// refused (-FI_EOPNOTSUPP) when CUDA memory can only be moved by CUDA copies.
    #[serde(default)]
    pub no_cuda_api: Registration,
    pub dmabuf: Registration,
}

/// The whole measurement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MrProbe {
    pub lib: String,
    pub libfabric_version: Option<String>,
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
    pub provider: String,
    /// Whether the provider answered hints that ask for FI_HMEM (as NIXL's do).
    pub hmem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub getinfo_error: Option<CallError>,
    /// The RDM entries the provider offered.
    pub entries: Vec<ProviderInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_error: Option<CallError>,
    pub cuda_devices: Option<i32>,
    pub gpus: Vec<GpuProbe>,
    /// GPUs left alone, with why (NVML showed them busy: exclusive-process mode, or full).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<(i32, String)>,
}

fn cu_err(e: cuda::CuError) -> CallError {
    CallError { call: e.call.into(), code: e.code, text: e.name }
}

/// Page-aligned host memory for the control registration.
struct HostBuffer {
    ptr: *mut c_void,
    len: usize,
}

impl HostBuffer {
    fn new(len: usize) -> Option<HostBuffer> {
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: posix_memalign writes one pointer; 4096 is a power of two.
        let rc = unsafe { nix::libc::posix_memalign(&mut ptr, 4096, len) };
        if rc != 0 || ptr.is_null() {
            return None;
        }
        // SAFETY: ptr holds len writable bytes; touching them makes the pages real.
        unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, len) };
        Some(HostBuffer { ptr, len })
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated by posix_memalign, freed once.
        unsafe { nix::libc::free(self.ptr) }
    }
}

fn register(fab: &Fabric, dom: &fabric::Domain<'_>, attr: &fi_mr_attr, flags: u64) -> Registration {
    match dom.register(attr, flags) {
        Ok(()) => Registration { ret: Some(0), ..Registration::default() },
        Err(r) => Registration { ret: Some(r), error: Some(fab.strerror(r)), skipped: None },
    }
}

struct Args {
    lib: String,
    provider: String,
    /// (ordinal, preferred domain)
    gpus: Vec<(i32, Option<String>)>,
    skipped: Vec<(i32, String)>,
    bytes: usize,
}

fn parse_args(args: &[String]) -> Args {
    let mut a = Args {
        lib: String::new(),
        provider: "efa".into(),
        gpus: Vec::new(),
        skipped: Vec::new(),
        bytes: PROBE_BYTES,
    };
    for (k, v) in super::options(args) {
        match k {
            "--lib" => a.lib = v,
            "--provider" => a.provider = v,
            "--bytes" => a.bytes = v.parse().unwrap_or(PROBE_BYTES),
            "--skip-gpu" => {
                if let Some((n, why)) = v.split_once(':') {
                    if let Ok(n) = n.parse() {
                        a.skipped.push((n, why.to_string()));
                    }
                }
            }
            "--gpu" => {
                let (n, dom) = match v.split_once(':') {
                    Some((n, d)) => (n, Some(d.to_string())),
                    None => (v.as_str(), None),
                };
                if let Ok(n) = n.parse() {
                    a.gpus.push((n, dom));
                }
            }
            _ => {}
        }
    }
    a
}

/// `__native probe-mr --lib PATH --provider NAME [--gpu N[:DOMAIN]]... [--bytes N]`.
/// No `--gpu` probes every CUDA device.
pub fn serve(args: &[String]) -> String {
    let a = parse_args(args);
    let mut p = MrProbe {
        lib: a.lib.clone(),
        provider: a.provider.clone(),
        skipped: a.skipped.clone(),
        ..MrProbe::default()
    };
    run(&a, &mut p);
    serde_json::to_string(&p).unwrap_or_default()
}

fn run(a: &Args, p: &mut MrProbe) {
    step(&format!("dlopen {}", a.lib));
    let fab = match Fabric::load(&a.lib) {
        Ok(f) => f,
        Err(e) => {
            p.load_error = Some(e);
            return;
        }
    };
    let api = fab.api_version();
    p.api_version = Some(fabric::version_text(api));
    p.libfabric_version = fab.release();

    // NIXL's hints, with FI_HMEM first and, as NIXL does on failure, without it.
    let mut list = None;
    for hmem in [true, false] {
        let Ok(mut hints) = fab.hints() else { break };
        hints.nixl_style(Some(&a.provider), hmem);
        step(&format!("fi_getinfo provider={} hmem={hmem}", a.provider));
        match fab.getinfo(api, Some(&hints)) {
            Ok(l) => {
                p.hmem = Some(hmem);
                list = Some(l);
                break;
            }
            Err(r) => {
                if hmem {
                    p.hmem = Some(false);
                }
                p.getinfo_error = Some(CallError {
                    call: format!("fi_getinfo(hmem={hmem})"),
                    code: r,
                    text: fab.strerror(r),
                });
            }
        }
    }
    let Some(list) = list else { return };
    let rdm = list.rdm();
    for (_, e) in &rdm {
        if p.entries.len() < MAX_ENTRIES
            && !p
                .entries
                .iter()
                .any(|x| x.name == e.name && x.domain == e.domain && x.fabric == e.fabric)
        {
            p.entries.push(e.clone());
        }
    }

    step(&format!("dlopen {}", cuda::LIBCUDA));
    let cu = match Cuda::load() {
        Ok(c) => c,
        Err(e) => {
            p.cuda_error =
                Some(CallError { call: format!("dlopen {}", cuda::LIBCUDA), code: -1, text: e });
            return;
        }
    };
    step("cuInit");
    if let Err(e) = cu.init() {
        p.cuda_error = Some(cu_err(e));
        return;
    }
    step("cuDeviceGetCount");
    let count = match cu.device_count() {
        Ok(n) => n,
        Err(e) => {
            p.cuda_error = Some(cu_err(e));
            return;
        }
    };
    p.cuda_devices = Some(count);
    let gpus: Vec<(i32, Option<String>)> = if a.gpus.is_empty() && a.skipped.is_empty() {
        (0..count).map(|n| (n, None)).collect()
    } else {
        a.gpus.clone()
    };
    for (ordinal, domain) in gpus {
        let mut g = GpuProbe { ordinal, ..GpuProbe::default() };
        probe_gpu(&fab, &rdm, &cu, api, p.hmem == Some(true), domain.as_deref(), a.bytes, &mut g);
        p.gpus.push(g);
    }
}

#[allow(clippy::too_many_arguments)]
fn probe_gpu(
    fab: &Fabric,
    rdm: &[(fabric::InfoRef<'_>, fabric::ProviderInfo)],
    cu: &Cuda,
    api: u32,
    hmem: bool,
    domain: Option<&str>,
    bytes: usize,
    g: &mut GpuProbe,
) {
    let ordinal = g.ordinal;
    step(&format!("cuDeviceGet {ordinal}"));
    let dev = match cu.device(ordinal) {
        Ok(d) => d,
        Err(e) => {
            g.cuda_error = Some(cu_err(e));
            return;
        }
    };
    g.name = cu.name(dev).ok();
    g.pci_bus_id = cu.pci_bus_id(dev).ok().map(|b| super::nvml::normalise_bus_id(&b));
    g.dmabuf_supported =
        cu.attribute(dev, cuda::CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED).ok().map(|v| v != 0);
    g.gdr_supported =
        cu.attribute(dev, cuda::CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED).ok().map(|v| v != 0);
    step(&format!("cuDevicePrimaryCtxRetain {ordinal}"));
    let ctx = match cu.primary_context(dev) {
        Ok(c) => c,
        Err(e) => {
            g.cuda_error = Some(cu_err(e));
            return;
        }
    };
    step(&format!("cuMemAlloc_v2 {bytes}"));
    let buf = match ctx.alloc(bytes) {
        Ok(b) => b,
        Err(e) => {
            g.cuda_error = Some(cu_err(e));
            return;
        }
    };
    g.memory_type = buf.memory_type().ok().map(|t| match t {
        cuda::CU_MEMORYTYPE_DEVICE => "device".to_string(),
        cuda::CU_MEMORYTYPE_HOST => "host".to_string(),
        other => format!("type {other}"),
    });
    step("cuMemGetHandleForAddressRange");
    let dmabuf_fd = match buf.dmabuf() {
        Ok((fd, flags)) => {
            g.dmabuf_export = Some(format!("flags={flags}"));
            Some(fd)
        }
        Err(e) => {
            g.dmabuf_error = Some(cu_err(e));
            None
        }
    };

    // The entry for the GPU's nearest NIC when the caller named one, else the first.
    let entry = rdm.iter().find(|(_, e)| domain.is_none_or(|d| e.domain == d)).or(rdm.first());
    let Some((entry, described)) = entry else {
        g.domain_error = Some(CallError {
            call: "fi_getinfo".into(),
            code: -61,
            text: "no FI_EP_RDM entry".into(),
        });
        return;
    };
    g.domain = Some(described.domain.clone());
    step(&format!("fi_fabric/fi_domain {}", g.domain.as_deref().unwrap_or("")));
    let dom = match fab.open_domain(*entry) {
        Ok(d) => d,
        Err((call, r)) => {
            g.domain_error = Some(CallError { call, code: r, text: fab.strerror(r) });
            return;
        }
    };

    step("fi_mr_regattr host");
    g.host = match HostBuffer::new(bytes) {
        Some(h) => {
            let iov = iovec { iov_base: h.ptr, iov_len: h.len };
            register(fab, &dom, &fi_mr_attr::for_iov(&iov, FI_HMEM_SYSTEM, 0), 0)
        }
        None => Registration::skipped("no host memory for the control buffer"),
    };

    if !hmem {
        let why = "the provider offers no FI_HMEM: libfabric would register the CUDA buffer as host memory";
        g.implicit = Registration::skipped(why);
        g.dmabuf = Registration::skipped(why);
        return;
    }
    step("fi_mr_regattr FI_HMEM_CUDA");
    let iov = iovec { iov_base: buf.ptr as *mut c_void, iov_len: buf.size };
    let attr = fi_mr_attr::for_iov(&iov, FI_HMEM_CUDA, ordinal as u64);
    g.implicit = match dom.register_kept(&attr, 0) {
        Ok(mr) => {
            g.implicit_key = Some(mr.key());
            Registration { ret: Some(0), ..Registration::default() }
        }
        Err(r) => Registration { ret: Some(r), error: Some(fab.strerror(r)), skipped: None },
    };
    // SAFETY: entry is a node of the live list; domain_attr may be null.
    g.mr_key_size = unsafe { (*entry.raw()).domain_attr.as_ref().map(|d| d.mr_key_size) };
    // A successful registration does not say the NIC reaches the GPU: without P2P the efa
    // provider registers CUDA memory without the device and copies through the CPU.
    step("fi_setopt FI_OPT_CUDA_API_PERMITTED=false");
    g.no_cuda_api = match super::rdm::forbid_cuda_api(&dom, *entry) {
        Ok(()) => Registration { ret: Some(0), ..Registration::default() },
        Err((call, r)) => Registration {
            ret: Some(r),
            error: Some(format!("{call}: {}", fab.strerror(r))),
            skipped: None,
        },
    };

    g.dmabuf = match (&dmabuf_fd, api >= DMABUF_API) {
        (_, false) => Registration::skipped(format!(
            "libfabric API {} predates FI_MR_DMABUF (1.20)",
            fabric::version_text(api)
        )),
        (None, _) => Registration::skipped("the CUDA driver exported no dma-buf fd"),
        (Some(fd), true) => {
            let d = fi_mr_dmabuf {
                fd: fd.as_raw_fd(),
                offset: 0,
                len: buf.size,
                base_addr: buf.ptr as *mut c_void,
            };
            step("fi_mr_regattr FI_MR_DMABUF");
            register(
                fab,
                &dom,
                &fi_mr_attr::for_dmabuf(&d, FI_HMEM_CUDA, ordinal as u64),
                FI_MR_DMABUF,
            )
        }
    };
    // Locals drop in reverse order of declaration, on every return above too: domain (and
    // its MRs), fd, device buffer, context.
}
