//! A reliable-datagram endpoint for the pair probe: address vector, completion queue and
//! endpoint opened through the provider's ops tables (`fi_av_open`, `fi_cq_open`,
//! `fi_endpoint`, `fi_ep_bind`, `fi_enable`, `fi_getname`, `fi_av_insert`, `fi_send`,
//! `fi_recv`, `fi_cq_read`), following `fi_domain.h`, `fi_endpoint.h`, `fi_eq.h` and
//! `fi_cm.h`. Ops tables only grow at their end, so these prefixes hold for every release.

#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

use super::fabric::{Domain, FI_MR_LOCAL, FI_RECV, FI_SEND, InfoRef, close_fid, fi_info, fid};

pub type fi_addr_t = u64;

const FI_ENABLE: c_int = 6;
const FI_AV_TABLE: c_int = 2;
const FI_CQ_FORMAT_CONTEXT: c_int = 1;
const FI_WAIT_NONE: c_int = 0;
pub const FI_EAGAIN: isize = 11;
pub const FI_EAVAIL: isize = 259;
const FI_ETOOSMALL: c_int = 257;

#[repr(C)]
pub struct fi_ops_domain {
    pub size: usize,
    pub av_open: Option<
        unsafe extern "C" fn(*mut c_void, *mut fi_av_attr, *mut *mut fid_av, *mut c_void) -> c_int,
    >,
    pub cq_open: Option<
        unsafe extern "C" fn(*mut c_void, *mut fi_cq_attr, *mut *mut fid_cq, *mut c_void) -> c_int,
    >,
    pub endpoint: Option<
        unsafe extern "C" fn(*mut c_void, *mut fi_info, *mut *mut fid_ep, *mut c_void) -> c_int,
    >,
}

#[repr(C)]
pub struct fi_av_attr {
    pub av_type: c_int,
    pub rx_ctx_bits: c_int,
    pub count: usize,
    pub ep_per_node: usize,
    pub name: *const c_char,
    pub map_addr: *mut c_void,
    pub flags: u64,
}

#[repr(C)]
pub struct fi_ops_av {
    pub size: usize,
    pub insert: Option<
        unsafe extern "C" fn(
            *mut fid_av,
            *const c_void,
            usize,
            *mut fi_addr_t,
            u64,
            *mut c_void,
        ) -> c_int,
    >,
}

#[repr(C)]
pub struct fid_av {
    pub fid: fid,
    pub ops: *mut fi_ops_av,
}

#[repr(C)]
pub struct fi_cq_attr {
    pub size: usize,
    pub flags: u64,
    pub format: c_int,
    pub wait_obj: c_int,
    pub signaling_vector: c_int,
    pub wait_cond: c_int,
    pub wait_set: *mut c_void,
}

/// `struct fi_cq_err_entry` up to `err_data_size`; newer releases append fields, so it is
/// read into a larger buffer ([`CqErrBuf`]).
#[repr(C)]
pub struct fi_cq_err_entry {
    pub op_context: *mut c_void,
    pub flags: u64,
    pub len: usize,
    pub buf: *mut c_void,
    pub data: u64,
    pub tag: u64,
    pub olen: usize,
    pub err: c_int,
    pub prov_errno: c_int,
    pub err_data: *mut c_void,
    pub err_data_size: usize,
}

#[repr(C)]
struct CqErrBuf {
    entry: fi_cq_err_entry,
    _room_for_newer_fields: [u64; 16],
}

#[repr(C)]
pub struct fi_ops_cq {
    pub size: usize,
    pub read: Option<unsafe extern "C" fn(*mut fid_cq, *mut c_void, usize) -> isize>,
    pub readfrom: *mut c_void,
    pub readerr: Option<unsafe extern "C" fn(*mut fid_cq, *mut fi_cq_err_entry, u64) -> isize>,
    pub sread: *mut c_void,
    pub sreadfrom: *mut c_void,
    pub signal: *mut c_void,
    pub strerror: Option<
        unsafe extern "C" fn(
            *mut fid_cq,
            c_int,
            *const c_void,
            *mut c_char,
            usize,
        ) -> *const c_char,
    >,
}

#[repr(C)]
pub struct fid_cq {
    pub fid: fid,
    pub ops: *mut fi_ops_cq,
}

#[repr(C)]
pub struct fi_ops_cm {
    pub size: usize,
    pub setname: *mut c_void,
    pub getname: Option<unsafe extern "C" fn(*mut fid, *mut c_void, *mut usize) -> c_int>,
}

#[repr(C)]
pub struct fi_ops_msg {
    pub size: usize,
    pub recv: Option<
        unsafe extern "C" fn(
            *mut fid_ep,
            *mut c_void,
            usize,
            *mut c_void,
            fi_addr_t,
            *mut c_void,
        ) -> isize,
    >,
    pub recvv: *mut c_void,
    pub recvmsg: *mut c_void,
    pub send: Option<
        unsafe extern "C" fn(
            *mut fid_ep,
            *const c_void,
            usize,
            *mut c_void,
            fi_addr_t,
            *mut c_void,
        ) -> isize,
    >,
}

#[repr(C)]
pub struct fid_ep {
    pub fid: fid,
    pub ops: *mut c_void,
    pub cm: *mut fi_ops_cm,
    pub msg: *mut fi_ops_msg,
}

/// `struct fi_context2`: provider scratch space for one posted operation (mode FI_CONTEXT2
/// covers FI_CONTEXT).
#[repr(C)]
#[derive(Default)]
pub struct OpContext {
    internal: [usize; 8],
}

/// A failed call: what and its return code (a negative errno).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricError {
    pub call: &'static str,
    pub code: i32,
}

impl std::fmt::Display for FabricError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} returned {}", self.call, self.code)
    }
}

fn err(call: &'static str, code: i32) -> FabricError {
    FabricError { call, code }
}

/// An error completion, with the provider's own explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionError {
    pub err: i32,
    pub prov_errno: i32,
    pub text: String,
}

/// The prefix of `struct fi_ops_ep` up to `setopt` (fi_endpoint.h).
#[repr(C)]
struct fi_ops_ep {
    size: usize,
    cancel: *mut c_void,
    getopt: *mut c_void,
    setopt: Option<unsafe extern "C" fn(*mut fid, c_int, c_int, *const c_void, usize) -> c_int>,
}

/// `FI_OPT_ENDPOINT`, the option level of fi_setopt.
const FI_OPT_ENDPOINT: c_int = 0;
/// `FI_OPT_CUDA_API_PERMITTED` (bool), in fi_endpoint.h since libfabric 1.18.
const FI_OPT_CUDA_API_PERMITTED: c_int = 10;

/// Opens an endpoint of `info` on `dom`, sets `FI_OPT_CUDA_API_PERMITTED` to false (as
/// aws-ofi-nccl does before using GPU memory), and closes it. A provider that can move CUDA
/// memory only by copying it through the CUDA API (no peer-to-peer path to the device)
/// refuses with -FI_EOPNOTSUPP. Returns the call that failed and its code.
pub fn forbid_cuda_api(dom: &Domain<'_>, info: InfoRef<'_>) -> Result<(), (String, i32)> {
    // SAFETY: the domain is open and its ops table is the provider's; the endpoint is ours
    // and closed on every path below; FI_CHECK_OP's size test guards the setopt slot.
    unsafe {
        let d = dom.domain;
        let ops =
            (*d).ops.cast::<fi_ops_domain>().as_ref().ok_or(("fi_domain ops".to_string(), -38))?;
        let open = ops.endpoint.ok_or(("fi_endpoint".to_string(), -38))?;
        let mut ep: *mut fid_ep = ptr::null_mut();
        let rc = open(d as *mut c_void, info.raw(), &mut ep, ptr::null_mut());
        if rc != 0 || ep.is_null() {
            return Err(("fi_endpoint".into(), if rc != 0 { rc } else { -38 }));
        }
        let setopt = (*ep)
            .ops
            .cast::<fi_ops_ep>()
            .as_ref()
            .filter(|o| o.size > std::mem::offset_of!(fi_ops_ep, setopt))
            .and_then(|o| o.setopt);
        let permitted = false;
        let rc = match setopt {
            Some(f) => f(
                &mut (*ep).fid,
                FI_OPT_ENDPOINT,
                FI_OPT_CUDA_API_PERMITTED,
                (&permitted as *const bool).cast(),
                std::mem::size_of::<bool>(),
            ),
            None => -38,
        };
        close_fid(&mut (*ep).fid);
        if rc != 0 {
            Err(("fi_setopt(FI_OPT_CUDA_API_PERMITTED=false)".into(), rc))
        } else {
            Ok(())
        }
    }
}

/// An enabled RDM endpoint with its AV and CQ; everything closed on drop, endpoint first.
pub struct Endpoint<'d> {
    ep: *mut fid_ep,
    av: *mut fid_av,
    cq: *mut fid_cq,
    /// Whether data buffers need registering (FI_MR_LOCAL).
    pub needs_mr: bool,
    _domain: std::marker::PhantomData<&'d ()>,
}

impl<'d> Endpoint<'d> {
    /// Opens and enables an endpoint for `info` on `dom`.
    pub fn open(
        dom: &'d Domain<'_>,
        info: InfoRef<'_>,
        queue_depth: usize,
    ) -> Result<Endpoint<'d>, FabricError> {
        let raw = info.raw();
        let mut e = Endpoint {
            ep: ptr::null_mut(),
            av: ptr::null_mut(),
            cq: ptr::null_mut(),
            needs_mr: false,
            _domain: std::marker::PhantomData,
        };
        // SAFETY: the domain is open and its ops table is the provider's; every out pointer
        // is ours; attributes are zero-initialised C structs of the documented layout.
        unsafe {
            // FI_MR_LOCAL: buffers must be registered and their descriptor passed.
            e.needs_mr = (*raw).domain_attr.as_ref().is_some_and(|d| d.mr_mode & FI_MR_LOCAL != 0);
            let d = dom.domain;
            let ops = (*d)
                .ops
                .cast::<fi_ops_domain>()
                .as_ref()
                .ok_or_else(|| err("fi_domain ops", -38))?;
            let mut av_attr = fi_av_attr {
                av_type: FI_AV_TABLE,
                rx_ctx_bits: 0,
                count: 4,
                ep_per_node: 0,
                name: ptr::null(),
                map_addr: ptr::null_mut(),
                flags: 0,
            };
            let rc = ops.av_open.ok_or_else(|| err("fi_av_open", -38))?(
                d as *mut c_void,
                &mut av_attr,
                &mut e.av,
                ptr::null_mut(),
            );
            if rc != 0 {
                return Err(err("fi_av_open", rc));
            }
            let mut cq_attr = fi_cq_attr {
                size: queue_depth * 2,
                flags: 0,
                format: FI_CQ_FORMAT_CONTEXT,
                wait_obj: FI_WAIT_NONE,
                signaling_vector: 0,
                wait_cond: 0,
                wait_set: ptr::null_mut(),
            };
            let rc = ops.cq_open.ok_or_else(|| err("fi_cq_open", -38))?(
                d as *mut c_void,
                &mut cq_attr,
                &mut e.cq,
                ptr::null_mut(),
            );
            if rc != 0 {
                return Err(err("fi_cq_open", rc));
            }
            let rc = ops.endpoint.ok_or_else(|| err("fi_endpoint", -38))?(
                d as *mut c_void,
                raw,
                &mut e.ep,
                ptr::null_mut(),
            );
            if rc != 0 {
                return Err(err("fi_endpoint", rc));
            }
            let fops = (*e.ep).fid.ops.as_ref().ok_or_else(|| err("fid ops", -38))?;
            let bind = fops.bind.ok_or_else(|| err("fi_ep_bind", -38))?;
            let rc = bind(&mut (*e.ep).fid, &mut (*e.av).fid, 0);
            if rc != 0 {
                return Err(err("fi_ep_bind(av)", rc));
            }
            let rc = bind(&mut (*e.ep).fid, &mut (*e.cq).fid, FI_SEND | FI_RECV);
            if rc != 0 {
                return Err(err("fi_ep_bind(cq)", rc));
            }
            let rc = fops.control.ok_or_else(|| err("fi_enable", -38))?(
                &mut (*e.ep).fid,
                FI_ENABLE,
                ptr::null_mut(),
            );
            if rc != 0 {
                return Err(err("fi_enable", rc));
            }
        }
        Ok(e)
    }

    /// `fi_getname`: this endpoint's address, as the peer inserts it.
    pub fn name(&self) -> Result<Vec<u8>, FabricError> {
        let mut buf = vec![0u8; 256];
        let mut len = buf.len();
        // SAFETY: the endpoint is enabled; buf holds len bytes.
        let getname = unsafe { (*self.ep).cm.as_ref().and_then(|c| c.getname) }
            .ok_or_else(|| err("fi_getname", -38))?;
        // SAFETY: as above.
        let mut rc =
            unsafe { getname(&mut (*self.ep).fid, buf.as_mut_ptr() as *mut c_void, &mut len) };
        if rc == -FI_ETOOSMALL && len <= 64 * 1024 {
            buf.resize(len, 0);
            // SAFETY: retried with the size the provider asked for.
            rc = unsafe { getname(&mut (*self.ep).fid, buf.as_mut_ptr() as *mut c_void, &mut len) };
        }
        if rc != 0 {
            return Err(err("fi_getname", rc));
        }
        buf.truncate(len);
        Ok(buf)
    }

    /// `fi_av_insert` of one peer address.
    pub fn insert(&self, addr: &[u8]) -> Result<fi_addr_t, FabricError> {
        let mut out: fi_addr_t = u64::MAX;
        // SAFETY: the AV is open; addr is a name the peer's provider produced.
        let rc = unsafe {
            let insert = (*self.av)
                .ops
                .as_ref()
                .and_then(|o| o.insert)
                .ok_or_else(|| err("fi_av_insert", -38))?;
            insert(self.av, addr.as_ptr() as *const c_void, 1, &mut out, 0, ptr::null_mut())
        };
        if rc != 1 {
            return Err(err("fi_av_insert", rc));
        }
        Ok(out)
    }

    /// Posts a receive. `-FI_EAGAIN` means the queue is full: drive progress and retry.
    ///
    /// # Safety
    /// `buf` (with `desc` from its registration, if any) and `ctx` must stay valid until the
    /// operation completes.
    pub unsafe fn post_recv(
        &self,
        buf: *mut u8,
        len: usize,
        desc: *mut c_void,
        ctx: *mut OpContext,
    ) -> isize {
        // SAFETY: the caller keeps buf and ctx alive; the endpoint is enabled.
        unsafe {
            match (*self.ep).msg.as_ref().and_then(|m| m.recv) {
                Some(recv) => {
                    recv(self.ep, buf as *mut c_void, len, desc, u64::MAX, ctx as *mut c_void)
                }
                None => -38,
            }
        }
    }

    /// Posts a send to `dest`.
    ///
    /// # Safety
    /// As for [`Endpoint::post_recv`].
    pub unsafe fn post_send(
        &self,
        buf: *const u8,
        len: usize,
        desc: *mut c_void,
        dest: fi_addr_t,
        ctx: *mut OpContext,
    ) -> isize {
        // SAFETY: as above.
        unsafe {
            match (*self.ep).msg.as_ref().and_then(|m| m.send) {
                Some(send) => {
                    send(self.ep, buf as *const c_void, len, desc, dest, ctx as *mut c_void)
                }
                None => -38,
            }
        }
    }

    /// Reads up to `out.len()` completions (their op contexts); 0 when none is ready.
    pub fn poll(&self, out: &mut [*mut c_void]) -> Result<usize, CompletionError> {
        // SAFETY: the CQ is open and uses FI_CQ_FORMAT_CONTEXT (one pointer per entry).
        let rc = unsafe {
            match (*self.cq).ops.as_ref().and_then(|o| o.read) {
                Some(read) => read(self.cq, out.as_mut_ptr() as *mut c_void, out.len()),
                None => -38,
            }
        };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        if rc == -FI_EAGAIN {
            return Ok(0);
        }
        if rc == -FI_EAVAIL {
            return Err(self.read_error());
        }
        Err(CompletionError {
            err: rc as i32,
            prov_errno: 0,
            text: format!("fi_cq_read returned {rc}"),
        })
    }

    fn read_error(&self) -> CompletionError {
        // SAFETY: a zeroed buffer larger than any release's fi_cq_err_entry.
        let mut e: CqErrBuf = unsafe { std::mem::zeroed() };
        // SAFETY: the CQ is open; readerr writes one entry.
        unsafe {
            let ops = (*self.cq).ops.as_ref();
            if let Some(readerr) = ops.and_then(|o| o.readerr) {
                readerr(self.cq, &mut e.entry, 0);
            }
            let mut text = String::new();
            if let Some(strerror) = ops.and_then(|o| o.strerror) {
                let mut buf = [0 as c_char; 256];
                let p = strerror(
                    self.cq,
                    e.entry.prov_errno,
                    e.entry.err_data,
                    buf.as_mut_ptr(),
                    buf.len(),
                );
                if !p.is_null() {
                    text = CStr::from_ptr(p).to_string_lossy().into_owned();
                }
            }
            CompletionError { err: e.entry.err, prov_errno: e.entry.prov_errno, text }
        }
    }
}

impl Drop for Endpoint<'_> {
    fn drop(&mut self) {
        // SAFETY: each fid was opened by us and is closed once, endpoint before what it is
        // bound to.
        unsafe {
            if !self.ep.is_null() {
                close_fid(&mut (*self.ep).fid);
            }
            if !self.av.is_null() {
                close_fid(&mut (*self.av).fid);
            }
            if !self.cq.is_null() {
                close_fid(&mut (*self.cq).fid);
            }
        }
    }
}
