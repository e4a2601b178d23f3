//! Workload processes: which NIXL backend and which libfabric a running inference or
//! training worker really has mapped, its EFA-relevant environment, limits and capabilities,
//! read from `/proc/PID/{cmdline,environ,maps,limits,status,mounts}` through the root.
//!
//! Only allow-listed environment variables are kept (see `redact::env_allowed`), their values
//! redacted as text; command lines go through `redact::args`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::host::Shm;
use crate::parse::proc::{self, Limit, Vma};
use crate::root::{ReadError, ReadErrorKind, Root};

/// Command-line words that mark an inference or training worker.
const WORKER_MARKERS: [(&str, &str); 7] = [
    ("vllm", "vllm"),
    ("sglang", "sglang"),
    ("tensorrt_llm", "trtllm"),
    ("trtllm", "trtllm"),
    ("dynamo", "dynamo"),
    ("torchrun", "torch"),
    ("nixl", "nixl"),
];

/// Libraries whose mapping says something about the data path.
const LIB_MARKERS: [&str; 10] = [
    "libnixl",
    "libplugin_",
    // `libfabric.so.1`, and wheels' hashed copies such as `libfabric-5a1f3c2e.so.1.20.0`.
    "libfabric",
    "libnccl.so",
    "libnccl-net",
    "libucp.so",
    "libucp-",
    "libuct",
    "libcuda.so",
    "libefa",
];

/// Most processes inspected in one run.
pub const MAX_PROCESSES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MappedLib {
    pub path: String,
    /// Has an executable (`r-xp`) mapping: the code ran, not just opened.
    pub executable: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessFacts {
    pub pid: u32,
    pub comm: Option<String>,
    /// Redacted command line.
    pub cmdline: Vec<String>,
    /// vllm, sglang, trtllm, dynamo, torch, nixl, or none.
    pub framework: Option<String>,
    /// Allow-listed environment only.
    pub env: BTreeMap<String, String>,
    /// How many other variables were present and left out.
    pub env_withheld: usize,
    pub memlock: Option<Limit>,
    /// CapEff as hex.
    pub cap_eff: Option<String>,
    pub ipc_lock: Option<bool>,
    /// Its pid inside its own pid namespace (a container's), from `NSpid` in `status`:
    /// the pid its log lines print.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<u32>,
    /// Libraries of interest mapped into the process.
    pub libraries: Vec<MappedLib>,
    /// Size of `/dev/shm` in the process's own mount namespace.
    pub shm: Option<Shm>,
    /// Files that could not be read, with why (e.g. permission denied).
    pub unreadable: BTreeMap<String, String>,
    /// Registered addresses (from `--addr` and the logs) classified against the maps.
    pub regions: Vec<Region>,
    /// `NIXL_PLUGIN_DIR` as the process sees it: the plugin files there, or `None` when the
    /// directory does not exist.
    pub nixl_plugin_dir: Option<Vec<String>>,
    /// RDMA device files the process holds open (`/proc/PID/fd` links into
    /// `/dev/infiniband/`): a provider that opened the device, not just a library mapped.
    /// `None` when `fd/` could not be read.
    #[serde(default)]
    pub rdma_fds: Option<Vec<String>>,
    /// The 2 MiB huge-page limit of its hugetlb cgroup (`max`, or bytes), where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugetlb_2m_limit: Option<HugetlbLimit>,
    /// What the libraries it maps say, read in its own filesystem.
    #[serde(default)]
    pub libs: ProcessLibs,
    /// The process's memory map, kept for classifying registered addresses.
    #[serde(skip)]
    pub vmas: Vec<Vma>,
}

impl ProcessFacts {
    pub fn lib(&self, needle: &str) -> impl Iterator<Item = &MappedLib> {
        self.libraries
            .iter()
            .filter(move |l| l.path.rsplit('/').next().is_some_and(|n| n.contains(needle)))
    }

    pub fn has_lib(&self, needle: &str) -> bool {
        self.lib(needle).next().is_some()
    }
}

/// A cgroup's 2 MiB huge-page limit and the file it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HugetlbLimit {
    /// `None` for `max` (unlimited).
    pub bytes: Option<u64>,
    pub source: String,
}

/// The 2 MiB hugetlb limit of the cgroup `proc/PID/cgroup` names: cgroup v2
/// `hugetlb.2MB.max`, or v1's `hugetlb.2MB.limit_in_bytes` (Kubernetes gives a pod that
/// requests no `hugepages-2Mi` a limit of 0).
fn hugetlb_limit(root: &Root, pid: u32) -> Option<HugetlbLimit> {
    let text = root.read_string(&format!("proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        let file = if id == "0" && controllers.is_empty() {
            format!("sys/fs/cgroup/{path}/hugetlb.2MB.max")
        } else if controllers.split(',').any(|c| c == "hugetlb") {
            format!("sys/fs/cgroup/hugetlb/{path}/hugetlb.2MB.limit_in_bytes")
        } else {
            continue;
        };
        let file = file.replace("//", "/");
        if let Ok(v) = root.read_value(&file) {
            let bytes = if v == "max" { None } else { Some(v.parse().ok()?) };
            return Some(HugetlbLimit { bytes, source: file });
        }
    }
    None
}

/// What efa-doctor derived from the libraries a process maps, read in the process's own
/// filesystem (`/proc/PID/root`: a container's files, not the host's of the same name).
/// Snapshots do not copy libraries, so a capture keeps this in its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessLibs {
    /// aws-ofi-nccl, when mapped: the libfabric its loader resolves in this process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofi_nccl: Option<MappedConsumer>,
    /// The `FABRIC_1.N` version nodes each mapped libfabric defines (by mapped path).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub libfabric_defines: BTreeMap<String, Vec<String>>,
    /// The NIXL Python package beside the mapped libnixl: its `_api.py` default backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nixl_api: Option<NixlApi>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MappedConsumer {
    pub path: String,
    /// `FABRIC_1.N` nodes it needs from libfabric.so.1.
    pub needs: Vec<String>,
    /// Where its loader looks for libfabric.so.1 in this process, in order.
    pub search: Vec<String>,
    /// The first `libfabric.so.1` on that path in the process's filesystem.
    pub resolves_to: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NixlApi {
    pub path: String,
    /// `nixl_agent_config(backends=...)`'s default as written there (a patched image says
    /// LIBFABRIC).
    pub default_backends: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessesFacts {
    /// How the processes were chosen: `--pid` or discovery.
    pub selection: String,
    pub processes: Vec<ProcessFacts>,
    /// Workers discovery found, including those past [`MAX_PROCESSES`] that were not
    /// inspected (0 with `--pid`).
    #[serde(default)]
    pub discovered: usize,
    pub notes: super::Notes,
}

impl ProcessesFacts {
    /// Workers found but not inspected because discovery stops at [`MAX_PROCESSES`].
    pub fn not_inspected(&self) -> usize {
        self.discovered.saturating_sub(self.processes.len())
    }
}

/// The framework a command line runs: a word's last path component names a worker module,
/// script or entry point (`vllm.entrypoints...`, `/usr/local/bin/vllm`, `trtllm-serve`,
/// `dynamo.vllm`), not merely a directory such as `/opt/dynamo/venv/bin/python3`.
fn framework_of(cmdline: &[String]) -> Option<String> {
    cmdline.iter().find_map(|arg| {
        let word = arg.rsplit('/').next().unwrap_or(arg).to_ascii_lowercase();
        WORKER_MARKERS.iter().find_map(|(marker, framework)| {
            let rest = word.strip_prefix(marker)?;
            (rest.is_empty() || rest.starts_with(['.', '-', '_', ' ']))
                .then(|| framework.to_string())
        })
    })
}

pub(crate) fn why(e: &ReadError) -> String {
    match e.kind {
        ReadErrorKind::PermissionDenied => {
            "permission denied: run efa-doctor as root (or with CAP_SYS_PTRACE) to read another user's process".into()
        }
        _ => e.to_string(),
    }
}

/// Reads one process. `None` when it does not exist (or exited).
pub fn inspect(root: &Root, pid: u32) -> Option<ProcessFacts> {
    inspect_with(root, pid, Prefetched::default(), None)
}

/// Most `fd/` entries looked at per process.
const MAX_FDS: usize = 16384;

/// Library directories a process's loader searches after LD_LIBRARY_PATH and RUNPATH when
/// its `etc/ld.so.conf.d` names none (glibc's defaults and Debian's multiarch paths).
const DEFAULT_LIB_DIRS: [&str; 8] = [
    "/lib64",
    "/usr/lib64",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// Derives [`ProcessLibs`] from the files the process maps, in its own filesystem.
fn process_libs(root: &Root, p: &ProcessFacts) -> ProcessLibs {
    use crate::parse::elf;
    let mut out = ProcessLibs::default();
    let read = |path: &str| {
        root.read_in_process(p.pid, path).ok().filter(|d| d.len() as u64 <= 256 * 1024 * 1024)
    };
    for l in p.lib("libfabric") {
        if let Some(info) = read(&l.path).and_then(|d| elf::parse(&d)) {
            let defines = info.defines.into_iter().filter(|d| d.starts_with("FABRIC_")).collect();
            out.libfabric_defines.insert(l.path.clone(), defines);
        }
    }
    if let Some(l) = p.lib("libnccl-net").next() {
        if let Some(info) = read(&l.path).and_then(|d| elf::parse(&d)) {
            let origin = l.path.rsplit_once('/').map_or("/", |(d, _)| d);
            let env: Vec<String> = p
                .env
                .get("LD_LIBRARY_PATH")
                .map(|v| v.split(':').map(String::from).collect())
                .unwrap_or_default();
            let search = info.search_order(origin, &env, &system_lib_dirs(root, p.pid));
            let resolves_to = search
                .iter()
                .map(|d| format!("{}/libfabric.so.1", d.trim_end_matches('/')))
                .find(|f| root.exists_in_process(p.pid, f));
            out.ofi_nccl = Some(MappedConsumer {
                path: l.path.clone(),
                needs: info.needs_from("libfabric.so.1"),
                search,
                resolves_to,
            });
        }
    }
    // A wheel maps `<site-packages>/.nixl_cu13.mesonpy.libs/libnixl.so`; its Python package
    // is `<site-packages>/nixl_cu13`, and the `nixl` meta package sits beside it.
    if let Some(l) = p.lib("libnixl").find(|l| l.path.ends_with("/libnixl.so")) {
        let site = l.path.rsplit_once('/').and_then(|(dir, _)| dir.rsplit_once('/'));
        if let Some((sp, libs)) = site {
            let pkg = libs.strip_prefix('.').and_then(|x| x.strip_suffix(".mesonpy.libs"));
            for name in pkg.into_iter().chain(["nixl"]) {
                let api = format!("{sp}/{name}/_api.py");
                let Some(text) = read(&api) else { continue };
                let default_backends =
                    super::stack::default_backends(&String::from_utf8_lossy(&text));
                let found = default_backends.is_some();
                if found || out.nixl_api.is_none() {
                    out.nixl_api = Some(NixlApi { path: api, default_backends });
                }
                if found {
                    break;
                }
            }
        }
    }
    out
}

/// The process's `ld.so.conf.d` directories (its own filesystem), then glibc's defaults.
fn system_lib_dirs(root: &Root, pid: u32) -> Vec<String> {
    let mut dirs = Vec::new();
    for name in root.list_in_process(pid, "/etc/ld.so.conf.d").unwrap_or_default() {
        if !name.ends_with(".conf") {
            continue;
        }
        if let Ok(text) = root.read_in_process(pid, &format!("/etc/ld.so.conf.d/{name}")) {
            for line in String::from_utf8_lossy(&text).lines() {
                let d = line.split('#').next().unwrap_or("").trim();
                if d.starts_with('/') && !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_string());
                }
            }
        }
    }
    dirs.extend(DEFAULT_LIB_DIRS.iter().map(|d| d.to_string()));
    dirs
}

/// Files discovery already read (unrecorded) to decide the process is a worker.
#[derive(Default)]
struct Prefetched {
    cmdline: Option<Arc<Vec<u8>>>,
    maps: Option<Arc<Vec<u8>>>,
}

fn inspect_with(
    root: &Root,
    pid: u32,
    pre: Prefetched,
    captured: Option<&BTreeMap<u32, ProcessLibs>>,
) -> Option<ProcessFacts> {
    let base = format!("proc/{pid}");
    if !root.is_dir(&base) {
        return None;
    }
    // What discovery read is kept, not read a second time.
    let read = |name: &str, pre: Option<Arc<Vec<u8>>>| {
        let rel = format!("{base}/{name}");
        match pre {
            Some(d) => {
                root.keep(&rel, &d);
                Ok(d)
            }
            None => root.read(&rel),
        }
    };
    let mut p = ProcessFacts { pid, ..ProcessFacts::default() };
    p.comm = root.read_value(&format!("{base}/comm")).ok();
    match read("cmdline", pre.cmdline) {
        Ok(d) => p.cmdline = crate::redact::args(&proc::cmdline(&d)),
        Err(e) => {
            p.unreadable.insert("cmdline".into(), why(&e));
        }
    }
    p.framework = framework_of(&p.cmdline);
    match root.read(&format!("{base}/environ")) {
        Ok(d) => {
            for (k, v) in proc::environ(&d) {
                if crate::redact::env_allowed(&k) {
                    p.env.insert(k, crate::redact::env_value(&v));
                } else {
                    p.env_withheld += 1;
                }
            }
        }
        Err(e) => {
            p.unreadable.insert("environ".into(), why(&e));
        }
    }
    if let Some(dir) = p.env.get("NIXL_PLUGIN_DIR").cloned() {
        p.nixl_plugin_dir = root
            .list_in_process(pid, &dir)
            .ok()
            .map(|names| names.into_iter().filter(|n| n.starts_with("lib")).collect());
    }
    match root.read_string(&format!("{base}/limits")) {
        Ok(t) => p.memlock = proc::limits_memlock(&t),
        Err(e) => {
            p.unreadable.insert("limits".into(), why(&e));
        }
    }
    if let Ok(t) = root.read_string(&format!("{base}/status")) {
        let s = proc::status(&t);
        p.cap_eff = s.cap_eff.map(|c| format!("{c:016x}"));
        p.ipc_lock = s.cap_eff.map(|c| c & (1 << proc::CAP_IPC_LOCK) != 0);
        p.ns_pid = s.ns_pid;
    }
    match read("maps", pre.maps) {
        Ok(d) => {
            p.vmas = proc::maps(&String::from_utf8_lossy(&d));
            let mut libs: BTreeMap<String, bool> = BTreeMap::new();
            for v in &p.vmas {
                let name = v.path.rsplit('/').next().unwrap_or("");
                if v.path.starts_with('/') && LIB_MARKERS.iter().any(|m| name.contains(m)) {
                    *libs.entry(v.path.clone()).or_default() |= v.is_exec();
                }
            }
            p.libraries =
                libs.into_iter().map(|(path, executable)| MappedLib { path, executable }).collect();
        }
        Err(e) => {
            p.unreadable.insert("maps".into(), why(&e));
        }
    }
    match root.links_in(&format!("{base}/fd"), MAX_FDS, |t| t.starts_with("/dev/infiniband/")) {
        Ok(fds) => p.rdma_fds = Some(fds),
        Err(e) => {
            p.unreadable.insert("fd".into(), why(&e));
        }
    }
    p.hugetlb_2m_limit = hugetlb_limit(root, pid);
    p.libs = match captured {
        Some(c) => c.get(&pid).cloned().unwrap_or_default(),
        None => process_libs(root, &p),
    };
    if let Ok(t) = root.read_string(&format!("{base}/mounts")) {
        let mounts = proc::mounts(&t);
        if let Some(m) = mounts.iter().rev().find(|m| m.target == "/dev/shm" && m.fstype == "tmpfs")
        {
            if let Some(Ok(b)) = proc::tmpfs_size(&m.options) {
                p.shm =
                    Some(Shm { size_bytes: b, source: format!("proc/{pid}/mounts (tmpfs size=)") });
            }
        }
    }
    Some(p)
}

/// Processes to inspect: the given pids, or every worker found. `captured` is what a
/// snapshot kept of their libraries ([`ProcessLibs`]); without it the libraries are read.
pub fn gather(
    root: &Root,
    pids: &[u32],
    captured: Option<&BTreeMap<u32, ProcessLibs>>,
) -> ProcessesFacts {
    let mut f = ProcessesFacts::default();
    if !pids.is_empty() {
        f.selection = "--pid".into();
        for &pid in pids {
            match inspect_with(root, pid, Prefetched::default(), captured) {
                Some(p) => f.processes.push(p),
                None => {
                    f.notes.insert(pid.to_string(), format!("no process {pid} in this root"));
                }
            }
        }
        return f;
    }
    f.selection = "discovery".into();
    let Ok(names) = root.list("proc") else {
        f.notes.insert("proc".into(), "proc is not readable in this root".into());
        return f;
    };
    let self_pid = root.read_link("proc/self").ok().and_then(|t| t.parse::<u32>().ok());
    for pid in names.iter().filter_map(|n| n.parse::<u32>().ok()) {
        if Some(pid) == self_pid {
            continue;
        }
        // A cheap look first (unrecorded), so snapshots keep only the workers' files.
        let cmdline = root.read_blob(&format!("proc/{pid}/cmdline")).ok();
        let by_name = cmdline.as_ref().is_some_and(|d| framework_of(&proc::cmdline(d)).is_some());
        let maps = if by_name { None } else { root.read_blob(&format!("proc/{pid}/maps")).ok() };
        let by_maps = maps.as_ref().is_some_and(|d| {
            let t = String::from_utf8_lossy(d);
            ["libnixl", "libnccl.so", "/libfabric"].iter().any(|m| t.contains(m))
        });
        if !(by_name || by_maps) {
            continue;
        }
        // Past the cap, workers are only counted, so the report can say it capped.
        if f.processes.len() >= MAX_PROCESSES {
            f.discovered += 1;
            continue;
        }
        if let Some(p) = inspect_with(root, pid, Prefetched { cmdline, maps }, captured) {
            f.processes.push(p);
            f.discovered += 1;
        }
    }
    if f.not_inspected() > 0 {
        f.notes.insert(
            "discovery".into(),
            format!(
                "found {} workers; inspected the first {MAX_PROCESSES} (the discovery limit): pass --pid to choose",
                f.discovered
            ),
        );
    }
    f
}

/// Where a registered address lies in a process's memory (REFERENCE §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegionClass {
    /// Inside an anonymous PROT_NONE reservation: CUDA's VA range for device memory. A host
    /// page there could not have been pinned, so a successful registration is GPU memory.
    Device,
    /// Host memory: pinned (`/dev/zero (deleted)`, driver mappings) or pageable (heap,
    /// anonymous read-write): the NIC reads it through the CPU's memory, a bounce.
    Host,
    /// No mapping contains it (another process, or freed since).
    Unmapped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Region {
    pub address: String,
    pub size: Option<u64>,
    pub class: RegionClass,
    /// The maps line of the containing VMA.
    pub vma: Option<String>,
    /// Where the address came from (`--addr`, or a log file and line).
    pub source: String,
    /// Who reported it: the workload (NIXL's own lines, `--addr`) or only the libfabric
    /// provider, which logs its own packet pools with the same line.
    #[serde(default)]
    pub origin: RegOrigin,
}

/// Who reported a registration.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RegOrigin {
    /// NIXL's own registration lines, or `--addr`: the workload's buffers.
    #[default]
    Workload,
    /// Only the provider's `Registered memory at` line: the workload's buffer or the
    /// provider's own (the efa provider registers its packet pools the same way).
    Provider,
}

/// Classifies `addr` against a process's maps (one lookup; see [`VmaIndex`] for many).
pub fn classify(vmas: &[Vma], addr: u64) -> (RegionClass, Option<&Vma>) {
    match vmas.iter().find(|v| v.start <= addr && addr < v.end) {
        Some(v) => (class_of(v), Some(v)),
        None => (RegionClass::Unmapped, None),
    }
}

/// A process's maps sorted by start address, so each lookup is a binary search: a log can
/// hold hundreds of thousands of registrations and a process as many mappings.
pub struct VmaIndex<'a> {
    sorted: Vec<&'a Vma>,
}

impl<'a> VmaIndex<'a> {
    pub fn new(vmas: &'a [Vma]) -> VmaIndex<'a> {
        let mut sorted: Vec<&Vma> = vmas.iter().collect();
        sorted.sort_by_key(|v| (v.start, v.end));
        VmaIndex { sorted }
    }

    /// Like [`classify`]. The kernel's mappings never overlap; of overlapping ones in a
    /// planted file, the one starting last at or below `addr` is taken.
    pub fn classify(&self, addr: u64) -> (RegionClass, Option<&'a Vma>) {
        let after = self.sorted.partition_point(|v| v.start <= addr);
        match after.checked_sub(1).map(|i| self.sorted[i]) {
            Some(v) if addr < v.end => (class_of(v), Some(v)),
            _ => (RegionClass::Unmapped, None),
        }
    }

    fn maps(&self, addr: u64) -> bool {
        self.classify(addr).0 != RegionClass::Unmapped
    }
}

fn class_of(v: &Vma) -> RegionClass {
    if v.is_prot_none() && v.inode == 0 && v.path.is_empty() {
        RegionClass::Device
    } else {
        RegionClass::Host
    }
}

/// A registered address to classify: where it came from, and the process that logged it
/// when the log line says (`pid N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub address: u64,
    pub size: Option<u64>,
    pub source: String,
    pub pid: Option<u32>,
    pub origin: RegOrigin,
}

/// `0x`-prefixed hexadecimal, as logs and `--addr` write addresses.
pub fn hex_address(s: &str) -> Option<u64> {
    let s = s.trim();
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(h, 16).ok()
}

/// Parses `--addr ADDR[:SIZE]` (hex address, decimal or hex size).
pub fn parse_addr(s: &str) -> Result<(u64, Option<u64>), String> {
    let (a, size) = match s.split_once(':') {
        Some((a, z)) => (a, Some(z)),
        None => (s, None),
    };
    let addr =
        hex_address(a).ok_or_else(|| format!("'{a}' is not a hex address like 0x7f9d46000000"))?;
    let size = match size {
        Some(z) => Some(
            hex_address(z)
                .or_else(|| z.trim().parse().ok())
                .ok_or_else(|| format!("'{z}' is not a size"))?,
        ),
        None => None,
    };
    Ok((addr, size))
}

/// Classifies each registration against the process that made it: the one its log line
/// names, the only one inspected, or else every process that has the address mapped. An
/// address mapped nowhere is reported as `unmapped` in every inspected process.
pub fn attach_registrations(f: &mut ProcessesFacts, regs: &[Registration]) {
    let single = f.processes.len() == 1;
    let indexes: Vec<VmaIndex<'_>> = f.processes.iter().map(|p| VmaIndex::new(&p.vmas)).collect();
    let placed: Vec<bool> =
        regs.iter().map(|r| indexes.iter().any(|ix| ix.maps(r.address))).collect();
    let mut regions: Vec<Vec<Region>> = Vec::with_capacity(indexes.len());
    for (p, ix) in f.processes.iter().zip(&indexes) {
        let mut here: Vec<Region> = Vec::new();
        if p.vmas.is_empty() {
            regions.push(here);
            continue;
        }
        // The same buffer given by --addr and found in the log is one registration.
        let mut seen: std::collections::HashMap<u64, usize> = Default::default();
        for (r, placed) in regs.iter().zip(&placed) {
            let mine = match r.pid {
                Some(pid) => pid == p.pid,
                None => single || !placed || ix.maps(r.address),
            };
            if !mine {
                continue;
            }
            if let Some(&i) = seen.get(&r.address) {
                let region: &mut Region = &mut here[i];
                region.size = region.size.or(r.size);
                // The workload named the buffer the provider also logged.
                if r.origin == RegOrigin::Workload {
                    region.origin = RegOrigin::Workload;
                }
                continue;
            }
            let (class, vma) = ix.classify(r.address);
            seen.insert(r.address, here.len());
            here.push(Region {
                address: format!("0x{:x}", r.address),
                size: r.size,
                class,
                vma: vma.map(vma_line),
                source: r.source.clone(),
                origin: r.origin,
            });
        }
        regions.push(here);
    }
    drop(indexes);
    for (p, here) in f.processes.iter_mut().zip(regions) {
        p.regions.extend(here);
    }
}

pub fn vma_line(v: &Vma) -> String {
    format!("{:x}-{:x} {} {:08x} {} {}", v.start, v.end, v.perms, v.offset, v.inode, v.path)
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_corrected_method() {
        let maps = proc::maps(
            "7f9d46000000-7f9daa600000 ---p 00000000 00:00 0 \n\
             7f0e1c000000-7f0e1c200000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)\n\
             55d0c0000000-55d0c0100000 rw-p 00000000 00:00 0                          [heap]\n\
             7f0000000000-7f0000001000 ---p 00000000 00:00 0 \n",
        );
        assert_eq!(classify(&maps, 0x7f9d4a000000).0, RegionClass::Device);
        assert_eq!(classify(&maps, 0x7f0e1c000100).0, RegionClass::Host);
        assert_eq!(classify(&maps, 0x55d0c0000010).0, RegionClass::Host);
        assert_eq!(classify(&maps, 0x1000).0, RegionClass::Unmapped);
        let ix = VmaIndex::new(&maps);
        for a in [0x7f9d4a000000, 0x7f0e1c000100, 0x55d0c0000010, 0x1000, 0x7f9daa600000, 0] {
            assert_eq!(ix.classify(a), classify(&maps, a), "{a:x}");
        }
    }

    /// Issue 12: each registration was classified against each mapping (and each earlier
    /// region), quadratic. 200,000 of each must take a few seconds at most, unoptimised.
    #[test]
    fn registrations_are_classified_in_n_log_n() {
        let n = 200_000u64;
        let vmas: Vec<Vma> = (0..n)
            .rev()
            .map(|i| Vma {
                start: 0x1000_0000 + i * 0x2000,
                end: 0x1000_0000 + i * 0x2000 + 0x1000,
                perms: if i % 2 == 0 { "---p".into() } else { "rw-p".into() },
                offset: 0,
                inode: 0,
                path: String::new(),
            })
            .collect();
        let mut f = ProcessesFacts {
            processes: vec![ProcessFacts { pid: 7, vmas, ..ProcessFacts::default() }],
            ..ProcessesFacts::default()
        };
        // Every other registration falls in a gap between mappings.
        let regs: Vec<Registration> = (0..n)
            .map(|i| Registration {
                address: 0x1000_0000 + i * 0x1000 + 8,
                size: Some(64),
                source: format!("log:{i}"),
                pid: None,
                origin: RegOrigin::Workload,
            })
            .collect();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            attach_registrations(&mut f, &regs);
            let _ = tx.send(f);
        });
        let f = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("classifying 200k registrations against 200k mappings took over 10 s");
        let regions = &f.processes[0].regions;
        assert_eq!(regions.len(), n as usize);
        let count = |c| regions.iter().filter(|r| r.class == c).count();
        assert_eq!(count(RegionClass::Unmapped), n as usize / 2);
        assert_eq!(count(RegionClass::Device), n as usize / 4);
        assert_eq!(count(RegionClass::Host), n as usize / 4);
    }

    #[test]
    fn frameworks() {
        let c = |s: &str| framework_of(&s.split(' ').map(String::from).collect::<Vec<_>>());
        assert_eq!(
            c("python3 -m vllm.entrypoints.openai.api_server --port 8000").as_deref(),
            Some("vllm")
        );
        assert_eq!(c("python3 -m sglang.launch_server").as_deref(), Some("sglang"));
        assert_eq!(c("/usr/bin/bash").as_deref(), None);
        assert_eq!(
            c("/opt/dynamo/venv/bin/python3 /opt/dynamo/venv/bin/torchrun train.py").as_deref(),
            Some("torch")
        );
        assert_eq!(
            c("/opt/dynamo/venv/bin/python3 -m dynamo.vllm --model Qwen/Qwen3-8B").as_deref(),
            Some("dynamo")
        );
        assert_eq!(c("/usr/local/bin/trtllm-serve Qwen/Qwen3-8B").as_deref(), Some("trtllm"));
        assert_eq!(c("/usr/local/bin/vllm serve meta-llama/Llama-3.1-8B").as_deref(), Some("vllm"));
        assert_eq!(c("python3 my_vllm_notes.py").as_deref(), None);
    }

    /// Issue 12: discovery stopped at 64 workers without saying so.
    #[test]
    fn discovery_says_when_it_capped() {
        let dir = tempfile::tempdir().unwrap();
        let workers = MAX_PROCESSES + 6;
        for pid in 100..100 + workers + 3 {
            let d = dir.path().join(format!("proc/{pid}"));
            std::fs::create_dir_all(&d).unwrap();
            let cmd: &[u8] =
                if pid < 100 + workers { b"vllm\0serve\0m\0" } else { b"/usr/bin/bash\0" };
            std::fs::write(d.join("cmdline"), cmd).unwrap();
            std::fs::write(d.join("maps"), b"").unwrap();
        }
        let root = Root::directory(dir.path(), crate::root::RootKind::Directory).unwrap();
        let f = gather(&root, &[], None);
        assert_eq!(f.processes.len(), MAX_PROCESSES);
        assert_eq!(f.discovered, workers);
        assert_eq!(f.not_inspected(), 6);
        let note = &f.notes["discovery"];
        assert!(
            note.contains(&format!("found {workers} workers")) && note.contains("64"),
            "{note}"
        );
        // Under the cap, nothing is said.
        let few = gather(&root, &[100, 101], None);
        assert_eq!(few.not_inspected(), 0);
        assert!(!few.notes.contains_key("discovery"));
    }
}
