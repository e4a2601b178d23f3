//! A small `#[repr(C)]` layer over the node's own `libfabric.so.1`, loaded at run time.
//!
//! Only the exported functions are real symbols (`fi_getinfo`, `fi_freeinfo`, `fi_dupinfo`,
//! `fi_fabric`, `fi_version`, `fi_strerror`, `fi_tostr`); everything else is an inline
//! dispatch through ops tables, reproduced here (REFERENCE §3.1). Structs are defined up to
//! the fields we use; libfabric only ever appends fields, and every struct we read is
//! allocated by the library itself (hints come from `fi_dupinfo(NULL)`), so reading our
//! prefix is safe with any libfabric >= 1.9 (REFERENCE §3.4). `libfabric-sys` is not used: it
//! links a vendored libfabric 1.5 statically, which predates the EFA provider and FI_HMEM.

#![allow(non_camel_case_types)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;

use libloading::Library;
use serde::{Deserialize, Serialize};

pub const fn fi_version(major: u32, minor: u32) -> u32 {
    (major << 16) | minor
}

// Capabilities and modes (include/rdma/fabric.h).
pub const FI_MSG: u64 = 1 << 1;
pub const FI_RMA: u64 = 1 << 2;
pub const FI_READ: u64 = 1 << 8;
pub const FI_WRITE: u64 = 1 << 9;
pub const FI_RECV: u64 = 1 << 10;
pub const FI_SEND: u64 = 1 << 11;
pub const FI_REMOTE_READ: u64 = 1 << 12;
pub const FI_REMOTE_WRITE: u64 = 1 << 13;
pub const FI_HMEM: u64 = 1 << 47;
pub const FI_LOCAL_COMM: u64 = 1 << 51;
pub const FI_REMOTE_COMM: u64 = 1 << 52;
pub const FI_CONTEXT: u64 = 1 << 59;
pub const FI_CONTEXT2: u64 = 1 << 52;

pub const FI_MR_LOCAL: c_int = 1 << 2;
pub const FI_MR_VIRT_ADDR: c_int = 1 << 4;
pub const FI_MR_ALLOCATED: c_int = 1 << 5;
pub const FI_MR_PROV_KEY: c_int = 1 << 6;
pub const FI_MR_HMEM: c_int = 1 << 10;
/// regattr flag: the attr carries a dma-buf fd (libfabric >= 1.20).
pub const FI_MR_DMABUF: u64 = 1 << 40;

pub const FI_EP_RDM: c_int = 3;
pub const FI_THREAD_COMPLETION: c_int = 4;
pub const FI_HMEM_SYSTEM: c_int = 0;
pub const FI_HMEM_CUDA: c_int = 1;
/// `enum fi_type` position of FI_TYPE_VERSION, for `fi_tostr`.
const FI_TYPE_VERSION: c_int = 18;
const FI_BUS_PCI: c_int = 1;
pub const FI_ENODATA: i32 = 61;

const CAP_NAMES: [(u64, &str); 33] = [
    (1 << 1, "FI_MSG"),
    (1 << 2, "FI_RMA"),
    (1 << 3, "FI_TAGGED"),
    (1 << 4, "FI_ATOMIC"),
    (1 << 5, "FI_MULTICAST"),
    (1 << 6, "FI_COLLECTIVE"),
    (1 << 8, "FI_READ"),
    (1 << 9, "FI_WRITE"),
    (1 << 10, "FI_RECV"),
    (1 << 11, "FI_SEND"),
    (1 << 12, "FI_REMOTE_READ"),
    (1 << 13, "FI_REMOTE_WRITE"),
    (1 << 16, "FI_MULTI_RECV"),
    (1 << 17, "FI_REMOTE_CQ_DATA"),
    (1 << 18, "FI_MORE"),
    (1 << 19, "FI_PEEK"),
    (1 << 20, "FI_TRIGGER"),
    (1 << 21, "FI_FENCE"),
    (1 << 22, "FI_PRIORITY"),
    (1 << 47, "FI_HMEM"),
    (1 << 48, "FI_VARIABLE_MSG"),
    (1 << 49, "FI_RMA_PMEM"),
    (1 << 50, "FI_SOURCE_ERR"),
    (1 << 51, "FI_LOCAL_COMM"),
    (1 << 52, "FI_REMOTE_COMM"),
    (1 << 53, "FI_SHARED_AV"),
    (1 << 54, "FI_PROV_ATTR_ONLY"),
    (1 << 55, "FI_NUMERICHOST"),
    (1 << 56, "FI_RMA_EVENT"),
    (1 << 57, "FI_SOURCE"),
    (1 << 58, "FI_NAMED_RX_CTX"),
    (1 << 59, "FI_DIRECTED_RECV"),
    (1 << 44, "FI_XPU"),
];

const MR_MODE_NAMES: [(c_int, &str); 12] = [
    (1 << 0, "FI_MR_BASIC"),
    (1 << 1, "FI_MR_SCALABLE"),
    (1 << 2, "FI_MR_LOCAL"),
    (1 << 3, "FI_MR_RAW"),
    (1 << 4, "FI_MR_VIRT_ADDR"),
    (1 << 5, "FI_MR_ALLOCATED"),
    (1 << 6, "FI_MR_PROV_KEY"),
    (1 << 7, "FI_MR_MMU_NOTIFY"),
    (1 << 8, "FI_MR_RMA_EVENT"),
    (1 << 9, "FI_MR_ENDPOINT"),
    (1 << 10, "FI_MR_HMEM"),
    (1 << 11, "FI_MR_COLLECTIVE"),
];

pub fn cap_names(caps: u64) -> Vec<String> {
    CAP_NAMES.iter().filter(|(b, _)| caps & b != 0).map(|(_, n)| n.to_string()).collect()
}

pub fn mr_mode_names(m: c_int) -> Vec<String> {
    MR_MODE_NAMES.iter().filter(|(b, _)| m & b != 0).map(|(_, n)| n.to_string()).collect()
}

/// `major.minor` of a libfabric version word (`FI_VERSION`), as `fi_info` prints it.
pub fn version_text(v: u32) -> String {
    format!("{}.{}", v >> 16, v & 0xffff)
}

pub fn ep_type_name(t: c_int) -> String {
    match t {
        0 => "FI_EP_UNSPEC".into(),
        1 => "FI_EP_MSG".into(),
        2 => "FI_EP_DGRAM".into(),
        3 => "FI_EP_RDM".into(),
        4 => "FI_EP_SOCK_STREAM".into(),
        5 => "FI_EP_SOCK_DGRAM".into(),
        other => format!("FI_EP_{other}"),
    }
}

#[repr(C)]
pub struct fid {
    pub fclass: usize,
    pub context: *mut c_void,
    pub ops: *mut fi_ops,
}

#[repr(C)]
pub struct fi_ops {
    pub size: usize,
    pub close: Option<unsafe extern "C" fn(*mut fid) -> c_int>,
    pub bind: Option<unsafe extern "C" fn(*mut fid, *mut fid, u64) -> c_int>,
    pub control: Option<unsafe extern "C" fn(*mut fid, c_int, *mut c_void) -> c_int>,
}

#[repr(C)]
pub struct fi_info {
    pub next: *mut fi_info,
    pub caps: u64,
    pub mode: u64,
    pub addr_format: u32,
    pub src_addrlen: usize,
    pub dest_addrlen: usize,
    pub src_addr: *mut c_void,
    pub dest_addr: *mut c_void,
    pub handle: *mut fid,
    pub tx_attr: *mut c_void,
    pub rx_attr: *mut c_void,
    pub ep_attr: *mut fi_ep_attr,
    pub domain_attr: *mut fi_domain_attr,
    pub fabric_attr: *mut fi_fabric_attr,
    pub nic: *mut fid_nic,
}

#[repr(C)]
pub struct fi_fabric_attr {
    pub fabric: *mut fid_fabric,
    pub name: *mut c_char,
    pub prov_name: *mut c_char,
    pub prov_version: u32,
    pub api_version: u32,
}

/// Prefix of `struct fi_ep_attr`.
#[repr(C)]
pub struct fi_ep_attr {
    pub ep_type: c_int,
    pub protocol: u32,
}

/// Prefix of `struct fi_domain_attr` (unchanged since 1.x up to `mr_key_size`).
#[repr(C)]
pub struct fi_domain_attr {
    pub domain: *mut c_void,
    pub name: *mut c_char,
    pub threading: c_int,
    pub control_progress: c_int,
    pub data_progress: c_int,
    pub resource_mgmt: c_int,
    pub av_type: c_int,
    pub mr_mode: c_int,
    pub mr_key_size: usize,
}

#[repr(C)]
pub struct fid_nic {
    pub fid: fid,
    pub device_attr: *mut fi_device_attr,
    pub bus_attr: *mut fi_bus_attr,
}

#[repr(C)]
pub struct fi_device_attr {
    pub name: *mut c_char,
    pub device_id: *mut c_char,
    pub device_version: *mut c_char,
    pub vendor_id: *mut c_char,
    pub driver: *mut c_char,
    pub firmware: *mut c_char,
}

#[repr(C)]
pub struct fi_pci_attr {
    pub domain_id: u16,
    pub bus_id: u8,
    pub device_id: u8,
    pub function_id: u8,
}

#[repr(C)]
pub struct fi_bus_attr {
    pub bus_type: c_int,
    pub pci: fi_pci_attr,
}

#[repr(C)]
pub struct fid_fabric {
    pub fid: fid,
    pub ops: *mut fi_ops_fabric,
    pub api_version: u32,
}

type DomainFn =
    unsafe extern "C" fn(*mut fid_fabric, *mut fi_info, *mut *mut fid_domain, *mut c_void) -> c_int;

#[repr(C)]
pub struct fi_ops_fabric {
    pub size: usize,
    pub domain: Option<DomainFn>,
}

#[repr(C)]
pub struct fid_domain {
    pub fid: fid,
    /// The domain's `fi_ops_domain` table, opaque here: only endpoints (`rdm`, which
    /// builds on this module) read it.
    pub ops: *mut c_void,
    pub mr: *mut fi_ops_mr,
}

type RegattrFn = unsafe extern "C" fn(*mut fid, *const fi_mr_attr, u64, *mut *mut fid_mr) -> c_int;

#[repr(C)]
pub struct fi_ops_mr {
    pub size: usize,
    pub reg: *mut c_void,
    pub regv: *mut c_void,
    pub regattr: Option<RegattrFn>,
}

#[repr(C)]
pub struct fid_mr {
    pub fid: fid,
    pub mem_desc: *mut c_void,
    pub key: u64,
}

#[repr(C)]
pub struct iovec {
    pub iov_base: *mut c_void,
    pub iov_len: usize,
}

#[repr(C)]
pub struct fi_mr_dmabuf {
    pub fd: c_int,
    pub offset: u64,
    pub len: usize,
    pub base_addr: *mut c_void,
}

/// The full 2.x `struct fi_mr_attr`, zero-initialised: older libraries read only the
/// prefix their API version knows (REFERENCE §3.4 rule 3).
#[repr(C)]
pub struct fi_mr_attr {
    /// `mr_iov` or, with FI_MR_DMABUF, `dmabuf`.
    pub mr_iov_or_dmabuf: *const c_void,
    pub iov_count: usize,
    pub access: u64,
    pub offset: u64,
    pub requested_key: u64,
    pub context: *mut c_void,
    pub auth_key_size: usize,
    pub auth_key: *mut u8,
    pub iface: c_int,
    pub device: u64,
    pub hmem_data: *mut c_void,
    pub page_size: usize,
    pub base_mr: *const fid_mr,
    pub sub_mr_cnt: usize,
}

impl fi_mr_attr {
    /// A send/receive registration of one buffer of memory kind `iface` on `device`.
    pub fn for_iov(iov: &iovec, iface: c_int, device: u64) -> fi_mr_attr {
        fi_mr_attr::for_buffer(iov as *const iovec as *const c_void, iface, device)
    }

    /// The same through a dma-buf descriptor (with the FI_MR_DMABUF flag).
    pub fn for_dmabuf(d: &fi_mr_dmabuf, iface: c_int, device: u64) -> fi_mr_attr {
        fi_mr_attr::for_buffer(d as *const fi_mr_dmabuf as *const c_void, iface, device)
    }

    fn for_buffer(mr_iov_or_dmabuf: *const c_void, iface: c_int, device: u64) -> fi_mr_attr {
        fi_mr_attr {
            mr_iov_or_dmabuf,
            iov_count: 1,
            access: FI_SEND | FI_RECV,
            iface,
            device,
            ..fi_mr_attr::default()
        }
    }
}

impl Default for fi_mr_attr {
    fn default() -> Self {
        // SAFETY: a plain C struct of integers and pointers; all-zero is its documented
        // default.
        unsafe { std::mem::zeroed() }
    }
}

type GetinfoFn = unsafe extern "C" fn(
    u32,
    *const c_char,
    *const c_char,
    u64,
    *const fi_info,
    *mut *mut fi_info,
) -> c_int;
type FreeinfoFn = unsafe extern "C" fn(*mut fi_info);
type DupinfoFn = unsafe extern "C" fn(*const fi_info) -> *mut fi_info;
type FabricFn =
    unsafe extern "C" fn(*mut fi_fabric_attr, *mut *mut fid_fabric, *mut c_void) -> c_int;
type VersionFn = unsafe extern "C" fn() -> u32;
type StrerrorFn = unsafe extern "C" fn(c_int) -> *const c_char;
type TostrFn = unsafe extern "C" fn(*const c_void, c_int) -> *mut c_char;

/// A loaded libfabric.
pub struct Fabric {
    getinfo: GetinfoFn,
    freeinfo: FreeinfoFn,
    dupinfo: DupinfoFn,
    fabric: FabricFn,
    version: VersionFn,
    strerror: StrerrorFn,
    tostr: Option<TostrFn>,
    // Keeps the code above mapped; dropped last.
    _lib: Library,
}

fn cstr(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: libfabric strings are NUL-terminated and live as long as their fi_info.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

impl Fabric {
    /// Loads `path` and resolves the exported entry points.
    pub fn load(path: &str) -> Result<Fabric, String> {
        // SAFETY: loading a shared library runs its constructors; libfabric's are benign,
        // and this runs in a disposable child process.
        let lib = unsafe { Library::new(path) }.map_err(|e| super::dl_error(&e))?;
        macro_rules! sym {
            ($name:literal, $t:ty) => {{
                // SAFETY: the symbol has this C signature in every libfabric release.
                let s: libloading::Symbol<$t> = unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{}: {e}", $name))?;
                *s
            }};
        }
        Ok(Fabric {
            getinfo: sym!("fi_getinfo", GetinfoFn),
            freeinfo: sym!("fi_freeinfo", FreeinfoFn),
            dupinfo: sym!("fi_dupinfo", DupinfoFn),
            fabric: sym!("fi_fabric", FabricFn),
            version: sym!("fi_version", VersionFn),
            strerror: sym!("fi_strerror", StrerrorFn),
            // SAFETY: as above; fi_tostr exists since 1.0 but is optional for our purposes.
            tostr: unsafe { lib.get::<TostrFn>(b"fi_tostr\0") }.ok().map(|s| *s),
            _lib: lib,
        })
    }

    /// `fi_version()`: the API version, major.minor.
    pub fn api_version(&self) -> u32 {
        // SAFETY: no arguments, no state.
        unsafe { (self.version)() }
    }

    /// The release string (`1.17.0`, `2.4.0amzn3.0`), as `fi_info --version` prints it.
    pub fn release(&self) -> Option<String> {
        let tostr = self.tostr?;
        let dummy: u64 = 0;
        // SAFETY: FI_TYPE_VERSION ignores its data argument and returns a static buffer.
        cstr(unsafe { tostr(&dummy as *const u64 as *const c_void, FI_TYPE_VERSION) })
    }

    /// `fi_strerror` of a positive error code.
    pub fn strerror(&self, err: i32) -> String {
        // SAFETY: returns a static string for any input.
        cstr(unsafe { (self.strerror)(err.abs()) }).unwrap_or_else(|| format!("error {err}"))
    }

    /// Fresh hints allocated by the library (never Rust-owned structs).
    pub fn hints(&self) -> Result<Hints<'_>, String> {
        // SAFETY: fi_dupinfo(NULL) allocates a zeroed fi_info with all sub-attributes.
        let p = unsafe { (self.dupinfo)(ptr::null()) };
        if p.is_null() {
            return Err("fi_dupinfo(NULL) returned NULL".into());
        }
        Ok(Hints { fab: self, ptr: p })
    }

    /// `fi_getinfo(version, NULL, NULL, 0, hints)`.
    pub fn getinfo(&self, version: u32, hints: Option<&Hints<'_>>) -> Result<InfoList<'_>, i32> {
        let mut out: *mut fi_info = ptr::null_mut();
        let h = hints.map_or(ptr::null(), |h| h.ptr as *const fi_info);
        // SAFETY: hints is null or a library-allocated fi_info; out receives a list we free.
        let ret = unsafe { (self.getinfo)(version, ptr::null(), ptr::null(), 0, h, &mut out) };
        if ret != 0 {
            return Err(ret);
        }
        Ok(InfoList { fab: self, head: out })
    }

    /// Opens a fabric and a domain for `info` (one entry of a list).
    pub fn open_domain(&self, info: InfoRef<'_>) -> Result<Domain<'_>, (String, i32)> {
        let info = info.ptr;
        let mut fabric: *mut fid_fabric = ptr::null_mut();
        // SAFETY: info comes from our InfoList and outlives this call.
        let ret = unsafe { (self.fabric)((*info).fabric_attr, &mut fabric, ptr::null_mut()) };
        if ret != 0 {
            return Err(("fi_fabric".into(), ret));
        }
        let mut dom = Domain { fabric, domain: ptr::null_mut(), _fab: self };
        // SAFETY: fabric is valid; the ops table is the provider's.
        let domain_fn = unsafe { (*fabric).ops.as_ref().and_then(|o| o.domain) };
        let Some(domain_fn) = domain_fn else {
            return Err(("fi_domain (no op)".into(), -38));
        };
        // SAFETY: as above.
        let ret = unsafe { domain_fn(fabric, info, &mut dom.domain, ptr::null_mut()) };
        if ret != 0 {
            return Err(("fi_domain".into(), ret));
        }
        Ok(dom)
    }
}

/// Hints owned by the library; freed with `fi_freeinfo`.
pub struct Hints<'a> {
    fab: &'a Fabric,
    ptr: *mut fi_info,
}

/// Duplicates a string with the C allocator: `fi_freeinfo` frees strings in hints.
fn c_strdup(s: &str) -> *mut c_char {
    let Ok(c) = CString::new(s) else { return ptr::null_mut() };
    // SAFETY: strdup copies a NUL-terminated string into malloc'd memory.
    unsafe { nix::libc::strdup(c.as_ptr()) }
}

impl Hints<'_> {
    /// NIXL's hints for EFA (REFERENCE §3.5).
    pub fn nixl_style(&mut self, provider: Option<&str>, hmem: bool) {
        // SAFETY: ptr and its sub-attributes were allocated by fi_dupinfo(NULL).
        unsafe {
            let i = &mut *self.ptr;
            i.caps =
                FI_MSG | FI_RMA | FI_LOCAL_COMM | FI_REMOTE_COMM | if hmem { FI_HMEM } else { 0 };
            i.mode = FI_CONTEXT;
            (*i.ep_attr).ep_type = FI_EP_RDM;
            let d = &mut *i.domain_attr;
            d.mr_mode = FI_MR_LOCAL
                | FI_MR_VIRT_ADDR
                | FI_MR_ALLOCATED
                | FI_MR_PROV_KEY
                | if hmem { FI_MR_HMEM } else { 0 };
            d.mr_key_size = 2;
            d.threading = FI_THREAD_COMPLETION;
            if let Some(p) = provider {
                let f = &mut *i.fabric_attr;
                if !f.prov_name.is_null() {
                    nix::libc::free(f.prov_name as *mut c_void);
                }
                f.prov_name = c_strdup(p);
            }
        }
    }
}

impl Hints<'_> {
    /// Hints for two-sided messages on a reliable datagram endpoint (the pair probe): what
    /// `fi_pingpong -e rdm` asks for, with contexts we provide.
    pub fn rdm_messages(&mut self, provider: Option<&str>) {
        self.nixl_style(provider, false);
        // SAFETY: as in nixl_style.
        unsafe {
            let i = &mut *self.ptr;
            i.caps = FI_MSG;
            i.mode = FI_CONTEXT | FI_CONTEXT2;
        }
    }
}

impl Drop for Hints<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated by fi_dupinfo; freed once.
        unsafe { (self.fab.freeinfo)(self.ptr) }
    }
}

/// A list returned by `fi_getinfo`; freed with `fi_freeinfo`.
pub struct InfoList<'a> {
    fab: &'a Fabric,
    head: *mut fi_info,
}

/// One node of a live [`InfoList`]; only obtainable from the list, so its pointer is valid
/// for the borrow.
#[derive(Clone, Copy)]
pub struct InfoRef<'a> {
    ptr: *mut fi_info,
    _list: std::marker::PhantomData<&'a ()>,
}

impl InfoRef<'_> {
    pub(crate) fn raw(&self) -> *mut fi_info {
        self.ptr
    }
}

impl InfoList<'_> {
    pub fn iter(&self) -> impl Iterator<Item = InfoRef<'_>> + '_ {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            let this = cur;
            // SAFETY: a valid list node.
            cur = unsafe { (*cur).next };
            Some(InfoRef { ptr: this, _list: std::marker::PhantomData })
        })
    }
}

impl<'a> InfoList<'a> {
    /// The reliable-datagram entries, each described once.
    pub fn rdm(&self) -> Vec<(InfoRef<'_>, ProviderInfo)> {
        self.iter().map(|i| (i, describe(i))).filter(|(_, d)| d.ep_type == "FI_EP_RDM").collect()
    }
}

impl Drop for InfoList<'_> {
    fn drop(&mut self) {
        if !self.head.is_null() {
            // SAFETY: the list came from fi_getinfo and is freed once.
            unsafe { (self.fab.freeinfo)(self.head) }
        }
    }
}

/// An open fabric + domain; closed in reverse order on drop.
pub struct Domain<'a> {
    fabric: *mut fid_fabric,
    pub(crate) domain: *mut fid_domain,
    _fab: &'a Fabric,
}

/// Closes any fid through its ops table (`fi_close`).
pub(crate) unsafe fn close_fid(f: *mut fid) -> c_int {
    if f.is_null() {
        return 0;
    }
    // SAFETY: f is a live fid; its ops table has `close` first after `size`.
    unsafe {
        match (*f).ops.as_ref().and_then(|o| o.close) {
            Some(close) => close(f),
            None => -38,
        }
    }
}

impl Domain<'_> {
    /// `fi_mr_regattr(domain, attr, flags, &mr)`; the MR is closed before returning.
    pub fn register(&self, attr: &fi_mr_attr, flags: u64) -> Result<(), i32> {
        self.register_kept(attr, flags).map(drop)
    }

    /// `fi_mr_regattr`, keeping the MR open until the returned guard is dropped.
    pub fn register_kept(&self, attr: &fi_mr_attr, flags: u64) -> Result<MemoryRegion<'_>, i32> {
        // SAFETY: domain is open; its MR ops table belongs to the provider.
        let regattr = unsafe { (*self.domain).mr.as_ref().and_then(|m| m.regattr) };
        let Some(regattr) = regattr else { return Err(-38) };
        let mut mr: *mut fid_mr = ptr::null_mut();
        // SAFETY: attr points to a fully initialised fi_mr_attr that outlives the call.
        let ret = unsafe { regattr(&mut (*self.domain).fid, attr, flags, &mut mr) };
        if ret != 0 {
            return Err(ret);
        }
        Ok(MemoryRegion { mr, _domain: std::marker::PhantomData })
    }
}

/// A registered memory region; closed on drop, before its domain.
pub struct MemoryRegion<'d> {
    mr: *mut fid_mr,
    _domain: std::marker::PhantomData<&'d ()>,
}

impl MemoryRegion<'_> {
    /// `fi_mr_key`: the key the provider gave the region.
    pub fn key(&self) -> u64 {
        // SAFETY: a live MR returned by regattr.
        unsafe { (*self.mr).key }
    }

    /// `fi_mr_desc`: the descriptor data transfers pass when the domain needs FI_MR_LOCAL.
    pub fn desc(&self) -> *mut c_void {
        // SAFETY: a live MR returned by regattr.
        unsafe { (*self.mr).mem_desc }
    }
}

impl Drop for MemoryRegion<'_> {
    fn drop(&mut self) {
        // SAFETY: returned by regattr, closed once.
        unsafe { close_fid(&mut (*self.mr).fid) };
    }
}

impl Drop for Domain<'_> {
    fn drop(&mut self) {
        // SAFETY: closed once, domain before fabric.
        unsafe {
            if !self.domain.is_null() {
                close_fid(&mut (*self.domain).fid);
            }
            if !self.fabric.is_null() {
                close_fid(&mut (*self.fabric).fid);
            }
        }
    }
}

/// One `fi_getinfo` entry, as efa-doctor reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderInfo {
    pub name: String,
    pub fabric: String,
    pub domain: String,
    pub ep_type: String,
    pub caps: Vec<String>,
    pub mr_mode: Vec<String>,
    /// Provider version, `major.minor` (what `fi_info` prints as `version:`).
    pub version: String,
    /// The NIC behind the entry (`rdmap79s0`), when the provider reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic_bdf: Option<String>,
}

/// Reads one entry. Every pointer is checked: providers leave optional parts null.
pub fn describe(info: InfoRef<'_>) -> ProviderInfo {
    // SAFETY: info is a node of a live list from fi_getinfo.
    unsafe {
        let i = &*info.ptr;
        let fa = i.fabric_attr.as_ref();
        let da = i.domain_attr.as_ref();
        let ep = i.ep_attr.as_ref();
        let nic = i.nic.as_ref();
        let nic_name = nic.and_then(|n| n.device_attr.as_ref()).and_then(|d| cstr(d.name));
        let nic_bdf =
            nic.and_then(|n| n.bus_attr.as_ref()).filter(|b| b.bus_type == FI_BUS_PCI).map(|b| {
                format!(
                    "{:04x}:{:02x}:{:02x}.{:x}",
                    b.pci.domain_id, b.pci.bus_id, b.pci.device_id, b.pci.function_id
                )
            });
        let pv = fa.map_or(0, |f| f.prov_version);
        ProviderInfo {
            name: fa.and_then(|f| cstr(f.prov_name)).unwrap_or_default(),
            fabric: fa.and_then(|f| cstr(f.name)).unwrap_or_default(),
            domain: da.and_then(|d| cstr(d.name)).unwrap_or_default(),
            ep_type: ep_type_name(ep.map_or(0, |e| e.ep_type)),
            caps: cap_names(i.caps),
            mr_mode: mr_mode_names(da.map_or(0, |d| d.mr_mode)),
            version: version_text(pv),
            nic: nic_name,
            nic_bdf,
        }
    }
}

/// What the enumeration task returns.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Enumeration {
    pub version: Option<String>,
    pub api_version: Option<String>,
    pub providers: Vec<ProviderInfo>,
    /// Non-zero return of `fi_getinfo` (negative errno), with its text.
    pub getinfo_error: Option<(i32, String)>,
    pub load_error: Option<String>,
}

/// `__native libfabric --lib PATH`: load and enumerate every provider, as `fi_info` does
/// (no hints, the library's own API version).
pub fn serve_enumerate(args: &[String]) -> String {
    let path =
        super::options(args).find(|(k, _)| *k == "--lib").map(|(_, v)| v).unwrap_or_default();
    let mut e = Enumeration::default();
    super::step(&format!("dlopen {path}"));
    let fab = match Fabric::load(&path) {
        Ok(f) => f,
        Err(err) => {
            e.load_error = Some(err);
            return serde_json::to_string(&e).unwrap_or_default();
        }
    };
    super::step("fi_version");
    let api = fab.api_version();
    e.api_version = Some(version_text(api));
    super::step("fi_tostr(FI_TYPE_VERSION)");
    e.version = fab.release();
    super::step("fi_getinfo");
    match fab.getinfo(api, None) {
        Ok(list) => e.providers = list.iter().map(describe).collect(),
        Err(r) if r == -FI_ENODATA => {}
        Err(r) => e.getinfo_error = Some((r, fab.strerror(r))),
    }
    serde_json::to_string(&e).unwrap_or_default()
}
