//! The CUDA driver API (`libcuda.so.1`), loaded at run time for the registration probe:
//! a primary context made current, a device allocation, and its dma-buf export
//! (REFERENCE §4.4). Every resource is released by a guard, on every path.

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulonglong, c_void};
use std::os::fd::{FromRawFd, OwnedFd};

use libloading::Library;

pub type CuResult = c_int;
pub type CuDevice = c_int;
pub type CuContext = *mut c_void;
pub type CuDevicePtr = u64;

pub const CUDA_SUCCESS: CuResult = 0;
pub const CUDA_ERROR_INVALID_VALUE: CuResult = 1;
pub const CUDA_ERROR_NOT_SUPPORTED: CuResult = 801;
/// "Device supports buffer sharing with dma_buf mechanism" (cuda.h; not 113 or 142).
pub const CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED: c_int = 124;
pub const CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED: c_int = 116;
pub const CU_POINTER_ATTRIBUTE_MEMORY_TYPE: c_int = 2;
pub const CU_MEMORYTYPE_HOST: c_uint = 1;
pub const CU_MEMORYTYPE_DEVICE: c_uint = 2;
pub const CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD: c_int = 1;
/// Ask for a PCIe (BAR1) mapping of the dma-buf; libfabric tries it first and retries
/// without it on INVALID_VALUE or NOT_SUPPORTED (hmem_cuda.c `cuda_get_dmabuf_fd`).
pub const CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE: c_ulonglong = 1;

pub const LIBCUDA: &str = "libcuda.so.1";

type InitFn = unsafe extern "C" fn(c_uint) -> CuResult;
type GetCountFn = unsafe extern "C" fn(*mut c_int) -> CuResult;
type DeviceGetFn = unsafe extern "C" fn(*mut CuDevice, c_int) -> CuResult;
type NameFn = unsafe extern "C" fn(*mut c_char, c_int, CuDevice) -> CuResult;
type AttrFn = unsafe extern "C" fn(*mut c_int, c_int, CuDevice) -> CuResult;
type RetainFn = unsafe extern "C" fn(*mut CuContext, CuDevice) -> CuResult;
type ReleaseFn = unsafe extern "C" fn(CuDevice) -> CuResult;
type SetCurrentFn = unsafe extern "C" fn(CuContext) -> CuResult;
type AllocFn = unsafe extern "C" fn(*mut CuDevicePtr, usize) -> CuResult;
type FreeFn = unsafe extern "C" fn(CuDevicePtr) -> CuResult;
type PointerAttrFn = unsafe extern "C" fn(*mut c_void, c_int, CuDevicePtr) -> CuResult;
type HandleFn =
    unsafe extern "C" fn(*mut c_void, CuDevicePtr, usize, c_int, c_ulonglong) -> CuResult;
type ErrorNameFn = unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult;

/// A failed driver call: which, its code and the driver's name for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuError {
    pub call: &'static str,
    pub code: CuResult,
    pub name: String,
}

impl std::fmt::Display for CuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} returned {} ({})", self.call, self.code, self.name)
    }
}

/// The loaded driver library.
pub struct Cuda {
    init: InitFn,
    get_count: GetCountFn,
    device_get: DeviceGetFn,
    name: NameFn,
    pci_bus_id: NameFn,
    attr: AttrFn,
    retain: RetainFn,
    release: ReleaseFn,
    set_current: SetCurrentFn,
    alloc: AllocFn,
    free: FreeFn,
    pointer_attr: PointerAttrFn,
    /// CUDA >= 11.7; absent in older drivers.
    handle_for_range: Option<HandleFn>,
    error_name: Option<ErrorNameFn>,
    _lib: Library,
}

impl Cuda {
    /// Loads `libcuda.so.1` the way applications do (the dynamic loader's search).
    pub fn load() -> Result<Cuda, String> {
        // SAFETY: loading the driver library runs its constructors, as every CUDA program
        // does; this runs in the disposable helper process.
        let lib = unsafe { Library::new(LIBCUDA) }.map_err(|e| super::dl_error(&e))?;
        macro_rules! sym {
            ($t:ty, $($name:literal),+) => {{
                let mut found: Option<$t> = None;
                $(
                    if found.is_none() {
                        // SAFETY: the symbol has this C signature in every driver exporting it.
                        found = unsafe { lib.get::<$t>(concat!($name, "\0").as_bytes()) }.ok().map(|s| *s);
                    }
                )+
                found
            }};
        }
        macro_rules! need {
            ($t:ty, $($name:literal),+) => {
                sym!($t, $($name),+).ok_or_else(|| format!("{} is missing from {LIBCUDA}", [$($name),+][0]))?
            };
        }
        Ok(Cuda {
            init: need!(InitFn, "cuInit"),
            get_count: need!(GetCountFn, "cuDeviceGetCount"),
            device_get: need!(DeviceGetFn, "cuDeviceGet"),
            name: need!(NameFn, "cuDeviceGetName"),
            pci_bus_id: need!(NameFn, "cuDeviceGetPCIBusId"),
            attr: need!(AttrFn, "cuDeviceGetAttribute"),
            retain: need!(RetainFn, "cuDevicePrimaryCtxRetain"),
            release: need!(ReleaseFn, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"),
            set_current: need!(SetCurrentFn, "cuCtxSetCurrent"),
            alloc: need!(AllocFn, "cuMemAlloc_v2"),
            free: need!(FreeFn, "cuMemFree_v2"),
            pointer_attr: need!(PointerAttrFn, "cuPointerGetAttribute"),
            handle_for_range: sym!(HandleFn, "cuMemGetHandleForAddressRange"),
            error_name: sym!(ErrorNameFn, "cuGetErrorName"),
            _lib: lib,
        })
    }

    fn check(&self, call: &'static str, code: CuResult) -> Result<(), CuError> {
        if code == CUDA_SUCCESS {
            return Ok(());
        }
        let mut p: *const c_char = std::ptr::null();
        let name = match self.error_name {
            // SAFETY: cuGetErrorName writes a pointer to a static string, or fails.
            Some(f) if unsafe { f(code, &mut p) } == CUDA_SUCCESS && !p.is_null() => {
                // SAFETY: a static NUL-terminated string owned by the driver.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
            _ => "unknown error".into(),
        };
        Err(CuError { call, code, name })
    }

    pub fn init(&self) -> Result<(), CuError> {
        // SAFETY: plain driver call.
        self.check("cuInit", unsafe { (self.init)(0) })
    }

    pub fn device_count(&self) -> Result<i32, CuError> {
        let mut n = 0;
        // SAFETY: writes one int.
        self.check("cuDeviceGetCount", unsafe { (self.get_count)(&mut n) })?;
        Ok(n)
    }

    pub fn device(&self, ordinal: i32) -> Result<CuDevice, CuError> {
        let mut d = 0;
        // SAFETY: writes one int.
        self.check("cuDeviceGet", unsafe { (self.device_get)(&mut d, ordinal) })?;
        Ok(d)
    }

    fn string(&self, call: &'static str, f: NameFn, dev: CuDevice) -> Result<String, CuError> {
        let mut buf = [0 as c_char; 128];
        // SAFETY: the driver writes at most len bytes, NUL-terminated.
        self.check(call, unsafe { f(buf.as_mut_ptr(), buf.len() as c_int, dev) })?;
        // SAFETY: NUL-terminated within the buffer (zero-initialised, len passed).
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
    }

    pub fn name(&self, dev: CuDevice) -> Result<String, CuError> {
        self.string("cuDeviceGetName", self.name, dev)
    }

    pub fn pci_bus_id(&self, dev: CuDevice) -> Result<String, CuError> {
        self.string("cuDeviceGetPCIBusId", self.pci_bus_id, dev)
    }

    pub fn attribute(&self, dev: CuDevice, attr: c_int) -> Result<i32, CuError> {
        let mut v = 0;
        // SAFETY: writes one int.
        self.check("cuDeviceGetAttribute", unsafe { (self.attr)(&mut v, attr, dev) })?;
        Ok(v)
    }

    /// Retains the device's primary context and makes it current on this thread: libfabric
    /// exports dma-bufs without managing contexts itself.
    pub fn primary_context(&self, dev: CuDevice) -> Result<PrimaryContext<'_>, CuError> {
        let mut ctx: CuContext = std::ptr::null_mut();
        // SAFETY: writes one context handle.
        self.check("cuDevicePrimaryCtxRetain", unsafe { (self.retain)(&mut ctx, dev) })?;
        let guard = PrimaryContext { cuda: self, dev };
        // SAFETY: ctx was just retained.
        self.check("cuCtxSetCurrent", unsafe { (self.set_current)(ctx) })?;
        Ok(guard)
    }
}

/// A retained primary context; released on drop.
pub struct PrimaryContext<'a> {
    cuda: &'a Cuda,
    dev: CuDevice,
}

impl PrimaryContext<'_> {
    pub fn alloc(&self, size: usize) -> Result<DeviceBuffer<'_>, CuError> {
        let mut ptr: CuDevicePtr = 0;
        // SAFETY: writes one device pointer; the context is current.
        self.cuda.check("cuMemAlloc_v2", unsafe { (self.cuda.alloc)(&mut ptr, size) })?;
        Ok(DeviceBuffer { cuda: self.cuda, ptr, size })
    }
}

impl Drop for PrimaryContext<'_> {
    fn drop(&mut self) {
        // SAFETY: balances the retain; clearing the current context first is not required.
        unsafe {
            (self.cuda.set_current)(std::ptr::null_mut());
            (self.cuda.release)(self.dev);
        }
    }
}

/// Device memory from `cuMemAlloc_v2`; freed on drop.
pub struct DeviceBuffer<'a> {
    cuda: &'a Cuda,
    pub ptr: CuDevicePtr,
    pub size: usize,
}

impl DeviceBuffer<'_> {
    /// `CU_POINTER_ATTRIBUTE_MEMORY_TYPE`: 2 for device memory.
    pub fn memory_type(&self) -> Result<u32, CuError> {
        let mut t: c_uint = 0;
        // SAFETY: the memory-type attribute is one unsigned int.
        self.cuda.check("cuPointerGetAttribute", unsafe {
            (self.cuda.pointer_attr)(
                &mut t as *mut c_uint as *mut c_void,
                CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                self.ptr,
            )
        })?;
        Ok(t)
    }

    /// Exports the buffer as a dma-buf fd: with the PCIe mapping flag first, then without
    /// it, as libfabric does. Returns the fd and the flags that worked.
    pub fn dmabuf(&self) -> Result<(OwnedFd, u64), CuError> {
        let Some(f) = self.cuda.handle_for_range else {
            return Err(CuError {
                call: "cuMemGetHandleForAddressRange",
                code: -1,
                name: "not in this driver (CUDA < 11.7)".into(),
            });
        };
        let mut last = None;
        for flags in [CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE, 0] {
            let mut fd: c_int = -1;
            // SAFETY: writes one int fd for a range inside our own allocation.
            let code = unsafe {
                f(
                    &mut fd as *mut c_int as *mut c_void,
                    self.ptr,
                    self.size,
                    CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD,
                    flags,
                )
            };
            match self.cuda.check("cuMemGetHandleForAddressRange", code) {
                // SAFETY: the driver returned a new fd that we now own.
                Ok(()) if fd >= 0 => return Ok((unsafe { OwnedFd::from_raw_fd(fd) }, flags)),
                Ok(()) => {
                    return Err(CuError {
                        call: "cuMemGetHandleForAddressRange",
                        code: -1,
                        name: "no fd returned".into(),
                    });
                }
                Err(e)
                    if flags != 0
                        && (e.code == CUDA_ERROR_INVALID_VALUE
                            || e.code == CUDA_ERROR_NOT_SUPPORTED) =>
                {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("the loop ran"))
    }
}

impl Drop for DeviceBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated by cuMemAlloc_v2 in a context still retained by our caller.
        unsafe { (self.cuda.free)(self.ptr) };
    }
}
