//! Host resources the EFA data path depends on: hugepages, the memlock limit and
//! capabilities of the inspecting process, `/dev/shm`, and the verbs device nodes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Notes;
use crate::parse::{self, proc::Limit};
use crate::root::Root;

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostFacts {
    pub hugepages: Option<Hugepages>,
    /// RLIMIT_MEMLOCK of the inspecting process, in bytes (`null` soft/hard = unlimited).
    pub memlock: Option<Limit>,
    pub capabilities: Option<Capabilities>,
    pub shm: Option<Shm>,
    /// `/dev/infiniband/uverbs*`; `None` when `/dev/infiniband` is absent.
    pub uverbs: Option<Vec<UverbsNode>>,
    /// Who tried to open the uverbs nodes: `this process` on the node itself, or a
    /// container judging a mounted node root, whose device access is its own (a pod's device
    /// cgroup), not the node's. `None` when nothing was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uverbs_opened_from: Option<String>,
    /// Whether this root shows a `/dev` at all (a plain sysroot may have none, which says
    /// nothing about device access).
    pub dev_visible: bool,
    /// `/dev/nvidiaN` nodes this root shows: in a container, the GPUs it was given (the
    /// NVIDIA container toolkit creates one per visible device). `None` without `/dev`.
    #[serde(default)]
    pub nvidia_dev_nodes: Option<usize>,
    /// 2 MiB pool sizes the image configures for boot: `vm.nr_hugepages` in sysctl files,
    /// `hugepages=` on the kernel command line in `etc/default/grub` or `proc/cmdline`, as
    /// (source, pages). The bake profile judges these.
    #[serde(default)]
    pub hugepages_config: Vec<(String, u64)>,
    /// MemTotal in bytes.
    pub mem_total: Option<u64>,
    /// Why the inspecting process is believed to run in a container (empty: it is not).
    pub container_clues: Vec<String>,
    pub notes: Notes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Hugepages {
    /// Default huge page size in kB (`Hugepagesize`).
    pub default_size_kb: Option<u64>,
    pub total: Option<u64>,
    pub free: Option<u64>,
    pub reserved: Option<u64>,
    /// 2 MiB pool from `sys/kernel/mm/hugepages/hugepages-2048kB`. libfabric maps from the
    /// default pool (`Hugepagesize`), which is this one only where the default is 2 MiB.
    pub nr_2m: Option<u64>,
    pub free_2m: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Capabilities {
    /// CapEff as hex, as in `/proc/PID/status`.
    pub effective_hex: String,
    pub effective: Vec<String>,
    /// Every capability the kernel knows is set: what `privileged: true` gives.
    pub privileged: Option<bool>,
    pub ipc_lock: bool,
    pub sys_admin: bool,
    pub sys_resource: bool,
    pub uid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shm {
    pub size_bytes: u64,
    /// How the size was found.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UverbsNode {
    pub name: String,
    /// RDMA device behind the node, from `sys/class/infiniband_verbs/<name>/ibdev`.
    pub ibdev: Option<String>,
    /// Whether this process could open it read-write (live root only).
    pub openable: Option<bool>,
    pub open_error: Option<String>,
}

/// Facts a file tree cannot reproduce because they came from system calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LiveFacts {
    /// `statvfs(/dev/shm)`.
    #[serde(default)]
    pub shm: Option<Shm>,
    /// Whether each `/dev/infiniband/uverbs*` opened read-write (`null`: not tried).
    #[serde(default)]
    pub uverbs_openable: BTreeMap<String, Option<bool>>,
    /// Open errors of the nodes that did not open.
    #[serde(default)]
    pub uverbs_errors: BTreeMap<String, String>,
    /// [`HostFacts::uverbs_opened_from`] at capture time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uverbs_opened_from: Option<String>,
}

/// [`HostFacts::uverbs_opened_from`] when efa-doctor runs on the node it judges.
pub const THIS_PROCESS: &str = "this process";

impl HostFacts {
    /// The uverbs nodes were opened by a container judging a mounted node root: what it
    /// could not open says nothing about the node.
    pub fn devices_opened_from_a_container(&self) -> bool {
        self.uverbs_opened_from.as_deref().is_some_and(|v| v != THIS_PROCESS)
    }
}

pub fn gather(root: &Root, captured: Option<&LiveFacts>) -> HostFacts {
    let mut h = HostFacts::default();

    match root.read_string("proc/meminfo") {
        Ok(text) => {
            let m = parse::proc::meminfo(&text);
            h.mem_total = m.get("MemTotal").map(|kb| kb * 1024);
            let mut hp = Hugepages {
                default_size_kb: m.get("Hugepagesize").copied(),
                total: m.get("HugePages_Total").copied(),
                free: m.get("HugePages_Free").copied(),
                reserved: m.get("HugePages_Rsvd").copied(),
                ..Hugepages::default()
            };
            let dir = "sys/kernel/mm/hugepages/hugepages-2048kB";
            hp.nr_2m =
                root.read_value(&format!("{dir}/nr_hugepages")).ok().and_then(|v| v.parse().ok());
            hp.free_2m =
                root.read_value(&format!("{dir}/free_hugepages")).ok().and_then(|v| v.parse().ok());
            h.hugepages = Some(hp);
        }
        Err(e) => {
            h.notes.insert("hugepages".into(), e.to_string());
        }
    }

    match root.read_string("proc/self/limits") {
        Ok(t) => h.memlock = parse::proc::limits_memlock(&t),
        Err(e) => {
            h.notes.insert("memlock".into(), e.to_string());
        }
    }
    if h.memlock.is_none() && root.kind().is_live() {
        if let Ok((soft, hard)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
        {
            let conv = |v: u64| (v != nix::sys::resource::RLIM_INFINITY).then_some(v);
            h.memlock = Some(Limit { soft: conv(soft), hard: conv(hard) });
            h.notes.insert("memlock".into(), "getrlimit(RLIMIT_MEMLOCK)".into());
        }
    }

    match root.read_string("proc/self/status") {
        Ok(t) => {
            let s = parse::proc::status(&t);
            if let Some(eff) = s.cap_eff {
                let last_cap = root
                    .read_value("proc/sys/kernel/cap_last_cap")
                    .ok()
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|c| *c < 64);
                let privileged = last_cap.map(|c| {
                    let all = if c == 63 { u64::MAX } else { (1u64 << (c + 1)) - 1 };
                    eff & all == all
                });
                if privileged.is_none() {
                    h.notes.insert(
                        "privileged".into(),
                        "proc/sys/kernel/cap_last_cap is not readable".into(),
                    );
                }
                let bit = |b: u32| eff & (1u64 << b) != 0;
                h.capabilities = Some(Capabilities {
                    effective_hex: format!("{eff:016x}"),
                    effective: parse::proc::capability_names(eff),
                    privileged,
                    ipc_lock: bit(parse::proc::CAP_IPC_LOCK),
                    sys_admin: bit(parse::proc::CAP_SYS_ADMIN),
                    sys_resource: bit(parse::proc::CAP_SYS_RESOURCE),
                    uid: s.uid,
                });
            } else {
                h.notes.insert("capabilities".into(), "proc/self/status has no CapEff line".into());
            }
        }
        Err(e) => {
            h.notes.insert("capabilities".into(), e.to_string());
        }
    }

    if root.kind() != crate::root::RootKind::HostMount {
        // A mounted host root shows the node's own files, not the debug container's.
        h.container_clues = crate::root::container_clues(root);
    }
    h.shm = shm_of(root, h.mem_total, &mut h.notes);
    h.dev_visible = root.exists("dev/null");
    h.hugepages_config = hugepages_config(root);
    h.nvidia_dev_nodes = root.list("dev").ok().map(|names| {
        names
            .iter()
            .filter(|n| {
                n.strip_prefix("nvidia")
                    .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            })
            .count()
    });
    h.uverbs = uverbs_of(root, &mut h.notes);
    if h.uverbs.iter().flatten().any(|n| n.openable.is_some()) {
        h.uverbs_opened_from = Some(match root.kind() {
            crate::root::RootKind::HostMount => {
                format!("this container (the node's root is mounted at {})", root.display())
            }
            _ => THIS_PROCESS.to_string(),
        });
    }
    if let Some(live) = captured {
        if live.uverbs_opened_from.is_some() {
            h.uverbs_opened_from = live.uverbs_opened_from.clone();
        }
        // Replaying a capture: what system calls said on the node at capture time.
        if let Some(s) = &live.shm {
            h.shm = Some(s.clone());
        }
        for n in h.uverbs.iter_mut().flatten() {
            if let Some(o) = live.uverbs_openable.get(&n.name) {
                n.openable = *o;
                n.open_error = live.uverbs_errors.get(&n.name).cloned();
            }
        }
    }
    h
}

/// Where an image sets the boot-time 2 MiB pool (systemd-sysctl's directories, in its order,
/// and the kernel command line).
fn hugepages_config(root: &Root) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    let mut files = vec!["etc/sysctl.conf".to_string()];
    for dir in ["usr/lib/sysctl.d", "lib/sysctl.d", "run/sysctl.d", "etc/sysctl.d"] {
        let mut names = root.list(dir).unwrap_or_default();
        names.sort();
        files.extend(
            names.into_iter().filter(|n| n.ends_with(".conf")).map(|n| format!("{dir}/{n}")),
        );
    }
    for f in files {
        let Ok(text) = root.read_string(&f) else { continue };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else { continue };
            if k.trim().replace('/', ".") == "vm.nr_hugepages" {
                if let Ok(n) = v.trim().parse() {
                    found.push((format!("{f}:{}", i + 1), n));
                }
            }
        }
    }
    for f in ["etc/default/grub", "proc/cmdline"] {
        let Ok(text) = root.read_string(f) else { continue };
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            // `hugepages=N` applies to the default size, or to the `hugepagesz=` before it.
            let mut size_2m = true;
            for w in line.split(|c: char| c.is_whitespace() || c == '"') {
                if let Some(sz) = w.strip_prefix("hugepagesz=") {
                    size_2m = matches!(sz, "2M" | "2m" | "2048k" | "2048K");
                } else if let Some(n) = w.strip_prefix("hugepages=").and_then(|n| n.parse().ok()) {
                    if size_2m {
                        found.push((format!("{f}:{}", i + 1), n));
                    }
                }
            }
        }
    }
    found
}

/// Size of `/dev/shm`: statvfs on the live root, else the tmpfs `size=` option in the
/// mount table (default: half of RAM).
fn shm_of(root: &Root, mem_total: Option<u64>, notes: &mut Notes) -> Option<Shm> {
    if root.kind().is_live() {
        if let Some(p) = root.host_path("dev/shm") {
            if let Ok(s) = nix::sys::statvfs::statvfs(&p) {
                return Some(Shm {
                    size_bytes: s.blocks().saturating_mul(s.fragment_size()),
                    source: "statvfs(/dev/shm)".into(),
                });
            }
        }
    }
    let mounts = match root.read_string("proc/self/mounts") {
        Ok(t) => parse::proc::mounts(&t),
        Err(e) => {
            notes.insert("shm".into(), e.to_string());
            return None;
        }
    };
    let Some(m) = mounts.iter().rev().find(|m| m.target == "/dev/shm") else {
        notes.insert("shm".into(), "/dev/shm is not a mount point in proc/self/mounts".into());
        return None;
    };
    if m.fstype != "tmpfs" {
        notes.insert("shm".into(), format!("/dev/shm is {} (not tmpfs); size unknown", m.fstype));
        return None;
    }
    match parse::proc::tmpfs_size(&m.options) {
        Some(Ok(b)) => Some(Shm { size_bytes: b, source: "proc/self/mounts (tmpfs size=)".into() }),
        Some(Err(pct)) => mem_total.map(|t| Shm {
            size_bytes: t / 100 * pct,
            source: format!("proc/self/mounts (size={pct}% of MemTotal)"),
        }),
        None => mem_total.map(|t| Shm {
            size_bytes: t / 2,
            source: "proc/self/mounts (tmpfs default: half of MemTotal)".into(),
        }),
    }
}

fn uverbs_of(root: &Root, notes: &mut Notes) -> Option<Vec<UverbsNode>> {
    let names = match root.list("dev/infiniband") {
        Ok(n) => n,
        Err(e) => {
            notes.insert("uverbs".into(), e.to_string());
            return None;
        }
    };
    let nodes = names
        .into_iter()
        .filter(|n| n.starts_with("uverbs"))
        .map(|name| {
            let ibdev = root.read_value(&format!("sys/class/infiniband_verbs/{name}/ibdev")).ok();
            let (openable, open_error) =
                match root.try_open_device(&format!("dev/infiniband/{name}")) {
                    Some(Ok(())) => (Some(true), None),
                    Some(Err(e)) => (Some(false), Some(e.to_string())),
                    None => (None, None),
                };
            UverbsNode { name, ibdev, openable, open_error }
        })
        .collect();
    Some(nodes)
}
