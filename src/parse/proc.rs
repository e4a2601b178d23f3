//! Parsers for procfs text: `/proc/modules`, `/proc/meminfo`, `/proc/PID/limits`,
//! `/proc/PID/status`, `/proc/PID/mounts`, `/proc/driver/nvidia/version`, `/proc/cpuinfo`,
//! `/proc/PID/maps`, `/proc/PID/environ` and `/proc/PID/cmdline`.
//!
//! Ours, not `procfs-core` 0.18's, where we checked its parsers (every one fails the whole
//! file on one line it does not expect, while these skip that line, and it reads lines as
//! UTF-8, while a maps path may be any bytes):
//! - `/proc/modules`: it parses the use count as a number; a real VM prints `-` there, and
//!   the whole module list would be lost.
//! - `/proc/PID/limits`: it requires all sixteen rows (the fixtures hold the few we
//!   read), and computes `len - 2` of a short line's fields (a panic in debug builds).
//! - `/proc/PID/maps`: it trims the path (a path may end in spaces) and keeps ` (deleted)`
//!   as part of it.
//! - `/proc/meminfo`: `Meminfo` requires eight fields (MemTotal ... Inactive) and fails the
//!   whole file on one unparsable value, so a truncated capture would lose `Hugepagesize` and
//!   the huge page counters, which are all we read.
//! - `/proc/PID/status`: `Status` requires about fifteen fields and fails the whole file on a
//!   line without `:` or a non-UTF-8 `Name:`; we read four (`Name`, `Uid`, `CapEff`, `CapBnd`)
//!   from whatever lines there are.
//! - `/proc/PID/mounts`: `MountEntry` parsing fails the whole table on one short line (a
//!   truncated last line), which would lose the `/dev/shm` entry we judge.
//! - `/proc/cpuinfo`: `CpuInfo` is tolerant, but it builds a map per CPU (192 on a p5) and then
//!   compares them all to find the common fields, to answer the one thing we ask: x86 or arm64
//!   keys in the first block.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of `/proc/modules`: `name size refcount deps state address [taint]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModuleLine {
    pub name: String,
    pub size: u64,
    /// `None` where the kernel cannot unload modules (CONFIG_MODULE_UNLOAD=n prints `-`).
    pub refcount: Option<i64>,
    pub used_by: Vec<String>,
    pub state: String,
}

pub fn modules(text: &str) -> Vec<ModuleLine> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let name = f.next()?.to_string();
            let size = f.next()?.parse().ok()?;
            let refcount = match f.next()? {
                "-" => None,
                n => Some(n.parse().ok()?),
            };
            let deps = f.next()?;
            let state = f.next()?.to_string();
            let used_by =
                deps.split(',').filter(|d| !d.is_empty() && *d != "-").map(String::from).collect();
            Some(ModuleLine { name, size, refcount, used_by, state })
        })
        .collect()
}

/// `/proc/meminfo` as `key -> value in the file's unit` (kB for sizes, a count for
/// `HugePages_*`).
pub fn meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), n))
        })
        .collect()
}

/// A resource limit; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Limit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

fn limit_value(s: &str) -> Option<Option<u64>> {
    if s == "unlimited" { Some(None) } else { s.parse().ok().map(Some) }
}

/// The `Max locked memory` row of `/proc/PID/limits`, in bytes.
pub fn limits_memlock(text: &str) -> Option<Limit> {
    let line = text.lines().find(|l| l.starts_with("Max locked memory"))?;
    let rest = line.strip_prefix("Max locked memory")?;
    let mut f = rest.split_whitespace();
    let soft = limit_value(f.next()?)?;
    let hard = limit_value(f.next()?)?;
    Some(Limit { soft, hard })
}

/// Fields of `/proc/PID/status` used here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Status {
    pub name: Option<String>,
    pub uid: Option<u32>,
    pub cap_eff: Option<u64>,
    pub cap_bnd: Option<u64>,
    /// The pid in the process's innermost pid namespace (last field of `NSpid`): what the
    /// process itself, and so its log lines, call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<u32>,
}

pub fn status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Name" => s.name = Some(v.to_string()),
            "Uid" => s.uid = v.split_whitespace().nth(1).and_then(|x| x.parse().ok()),
            "CapEff" => s.cap_eff = u64::from_str_radix(v, 16).ok(),
            "CapBnd" => s.cap_bnd = u64::from_str_radix(v, 16).ok(),
            "NSpid" => s.ns_pid = v.split_whitespace().last().and_then(|x| x.parse().ok()),
            _ => {}
        }
    }
    s
}

/// Linux capability names by bit number (`include/uapi/linux/capability.h`).
pub const CAPABILITY_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const CAP_IPC_LOCK: u32 = 14;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_RESOURCE: u32 = 24;

pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAPABILITY_NAMES.get(b as usize).map_or_else(|| format!("CAP_{b}"), |n| n.to_string())
        })
        .collect()
}

/// One mount from `/proc/PID/mounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub options: Vec<String>,
}

/// Decodes the octal escapes (`\040` for space) the kernel writes in mount fields.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push((v & 0xff) as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            Some(Mount {
                source: unescape_mount(f.next()?),
                target: unescape_mount(f.next()?),
                fstype: f.next()?.to_string(),
                options: f.next()?.split(',').map(String::from).collect(),
            })
        })
        .collect()
}

/// Parses a tmpfs `size=` option (`65536k`, `80g`, `1073741824`, `50%`). Percentages are
/// returned as `Err(percent)` so the caller can apply them to MemTotal.
pub fn tmpfs_size(options: &[String]) -> Option<Result<u64, u64>> {
    let v = options.iter().find_map(|o| o.strip_prefix("size="))?;
    if let Some(p) = v.strip_suffix('%') {
        return p.parse().ok().map(Err);
    }
    super::size_bytes(v).map(Ok)
}

/// What `/proc/driver/nvidia/version` says about the kernel module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NvidiaVersion {
    pub version: Option<String>,
    pub open: bool,
    pub arch: Option<String>,
    pub line: String,
}

/// First line: open = `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04
/// Release Build ...`; proprietary = `NVRM version: NVIDIA UNIX x86_64 Kernel Module
/// 580.95.05 ...` (REFERENCE §8.1).
pub fn nvidia_version(text: &str) -> Option<NvidiaVersion> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?.trim().to_string();
    let open = line.contains("Open Kernel Module");
    let version = line.split_whitespace().find(|w| {
        let parts: Vec<&str> = w.split('.').collect();
        parts.len() >= 2
            && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    let arch = ["x86_64", "aarch64", "ppc64le", "arm64"]
        .iter()
        .find(|a| line.split_whitespace().any(|w| w == **a))
        .map(|a| if *a == "arm64" { "aarch64".to_string() } else { a.to_string() });
    Some(NvidiaVersion { version: version.map(String::from), open, arch, line })
}

/// Architecture from `/proc/cpuinfo`: x86 lists `vendor_id`/`flags`, arm64 lists
/// `CPU implementer`/`Features`.
pub fn cpuinfo_arch(text: &str) -> Option<&'static str> {
    let mut x86 = false;
    let mut arm = false;
    for line in text.lines().take(200) {
        let key = line.split(':').next().unwrap_or("").trim();
        match key {
            "vendor_id" | "flags" | "cpu family" => x86 = true,
            "CPU implementer" | "CPU architecture" | "Features" => arm = true,
            _ => {}
        }
    }
    match (x86, arm) {
        (true, false) => Some("x86_64"),
        (false, true) => Some("aarch64"),
        _ => None,
    }
}

/// One VMA of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub inode: u64,
    pub path: String,
}

impl Vma {
    pub fn is_exec(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
    pub fn is_shared(&self) -> bool {
        self.perms.as_bytes().get(3) == Some(&b's')
    }
    pub fn is_prot_none(&self) -> bool {
        self.perms.starts_with("---")
    }
}

pub fn maps(text: &str) -> Vec<Vma> {
    text.lines().filter_map(maps_line).collect()
}

pub fn maps_line(line: &str) -> Option<Vma> {
    let mut f = line.splitn(6, ' ');
    let range = f.next()?;
    let perms = f.next()?;
    let offset = f.next()?;
    let _dev = f.next()?;
    let inode = f.next()?;
    let path = f.next().unwrap_or("").trim_start().to_string();
    let (s, e) = range.split_once('-')?;
    let start = u64::from_str_radix(s, 16).ok()?;
    let end = u64::from_str_radix(e, 16).ok()?;
    if end < start || perms.len() != 4 {
        return None;
    }
    Some(Vma {
        start,
        end,
        perms: perms.to_string(),
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        path,
    })
}

/// `/proc/PID/environ`: NUL-separated `NAME=value` pairs.
pub fn environ(data: &[u8]) -> Vec<(String, String)> {
    data.split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let s = String::from_utf8_lossy(e);
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `/proc/PID/cmdline`: NUL-separated arguments.
pub fn cmdline(data: &[u8]) -> Vec<String> {
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_from_real_text() {
        let text = "efa 135168 0 - Live 0x0000000000000000\n\
                    nvidia_uvm 2158592 0 - Live 0x0000000000000000 (POE)\n\
                    ib_core 507904 3 efa,ib_uverbs,rdma_ucm, Live 0x0000000000000000\n";
        let m = modules(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[2].used_by, vec!["efa", "ib_uverbs", "rdma_ucm"]);
        assert_eq!(m[1].state, "Live");
    }

    #[test]
    fn modules_without_unload_support() {
        // Captured on a Firecracker GPU VM (kernel 6.18, CONFIG_MODULE_UNLOAD=n).
        let m = modules(
            "nvidia_uvm 1830912 - - Live 0xffffffffc080c000 (O)\nnvidia 14299136 - - Live 0xffffffffc0400000 (O)\n",
        );
        assert_eq!(m.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["nvidia_uvm", "nvidia"]);
        assert_eq!(m[1].refcount, None);
    }

    #[test]
    fn limits_and_status() {
        let l = "Limit                     Soft Limit           Hard Limit           Units     \n\
                 Max locked memory         65536                65536                bytes     \n";
        assert_eq!(limits_memlock(l), Some(Limit { soft: Some(65536), hard: Some(65536) }));
        let u = "Max locked memory         unlimited            unlimited            bytes\n";
        assert_eq!(limits_memlock(u), Some(Limit { soft: None, hard: None }));
        let s = status("Name:\tpython3\nUid:\t0\t0\t0\t0\nCapEff:\t00000000a80425fb\n");
        assert_eq!(s.uid, Some(0));
        assert_eq!(s.cap_eff, Some(0xa80425fb));
        assert!(!capability_names(0xa80425fb).contains(&"CAP_IPC_LOCK".to_string()));
    }

    #[test]
    fn nvidia_open_and_proprietary() {
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (dvs-builder@U22-I3-AM02-24-3)  Wed Oct 15 20:27:51 UTC 2025\nGCC version:  gcc version 13.3.0\n";
        let v = nvidia_version(open).unwrap();
        assert!(v.open);
        assert_eq!(v.version.as_deref(), Some("580.159.04"));
        assert_eq!(v.arch.as_deref(), Some("x86_64"));
        let prop = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Tue Sep 23 09:55:41 UTC 2025\n";
        let v = nvidia_version(prop).unwrap();
        assert!(!v.open);
        assert_eq!(v.version.as_deref(), Some("580.95.05"));
    }

    #[test]
    fn mounts_and_shm_size() {
        let m = mounts("shm /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k 0 0\n");
        assert_eq!(m[0].target, "/dev/shm");
        assert_eq!(tmpfs_size(&m[0].options), Some(Ok(64 << 20)));
        assert_eq!(tmpfs_size(&["size=50%".to_string()]), Some(Err(50)));
        assert_eq!(unescape_mount("a\\040b"), "a b");
    }

    #[test]
    fn maps_lines() {
        let v = maps_line("7f9d46000000-7f9daa600000 ---p 00000000 00:00 0 ").unwrap();
        assert!(v.is_prot_none());
        assert_eq!(v.path, "");
        let v = maps_line("7f0e1c000000-7f0e1c200000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)").unwrap();
        assert_eq!(v.path, "/dev/zero (deleted)");
        assert!(v.is_shared());
        assert!(maps_line("zzzz").is_none());
    }
}
