//! Kernel release, architecture, page size, loaded modules and the NVIDIA kernel driver.

use serde::{Deserialize, Serialize};

use super::Notes;
use crate::facts::manifest::Manifest;
use crate::parse::{self, Version};
use crate::root::Root;

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KernelFacts {
    /// `uname -r`, e.g. `6.8.0-1021-aws`.
    pub release: Option<String>,
    /// `x86_64` or `aarch64`.
    pub arch: Option<String>,
    /// Base page size in bytes (4096, or 65536 on 64K-page arm64 kernels such as GB200's).
    pub page_size: Option<u64>,
    /// Where each value came from, or why it is unknown.
    pub notes: Notes,
}

impl KernelFacts {
    pub fn version(&self) -> Option<Version> {
        self.release.as_deref().and_then(Version::parse)
    }
}

pub fn gather_kernel(root: &Root, manifest: Option<&Manifest>) -> KernelFacts {
    let mut k = KernelFacts::default();

    match root.read_value("proc/sys/kernel/osrelease") {
        Ok(r) if !r.is_empty() => {
            k.release = Some(r);
            k.notes.insert("release".into(), "proc/sys/kernel/osrelease".into());
        }
        _ => {
            if let Some(r) = manifest.and_then(|m| m.kernel_release.clone()) {
                k.release = Some(r);
                k.notes.insert("release".into(), "snapshot manifest".into());
            } else {
                k.notes
                    .insert("release".into(), "proc/sys/kernel/osrelease is not readable".into());
            }
        }
    }

    let (arch, arch_src) = arch_of(root, manifest, k.release.as_deref());
    k.arch = arch;
    k.notes.insert("arch".into(), arch_src);

    let (page, page_src) = page_size_of(root, manifest);
    k.page_size = page;
    k.notes.insert("page_size".into(), page_src);
    k
}

/// Architecture, from the most direct clue the root offers.
fn arch_of(
    root: &Root,
    manifest: Option<&Manifest>,
    release: Option<&str>,
) -> (Option<String>, String) {
    if root.kind().is_live() {
        if let Ok(u) = nix::sys::utsname::uname() {
            return (Some(normalise_arch(&u.machine().to_string_lossy())), "uname(2)".into());
        }
    }
    if let Some(a) = manifest.and_then(|m| m.arch.clone()) {
        return (Some(a), "snapshot manifest".into());
    }
    if let Ok(a) = root.read_value("proc/sys/kernel/arch") {
        if !a.is_empty() {
            return (Some(normalise_arch(&a)), "proc/sys/kernel/arch".into());
        }
    }
    if let Ok(c) = root.read_string("proc/cpuinfo") {
        if let Some(a) = parse::proc::cpuinfo_arch(&c) {
            return (Some(a.into()), "proc/cpuinfo".into());
        }
    }
    if let Some(r) = release {
        for (needle, arch) in [("x86_64", "x86_64"), ("aarch64", "aarch64"), ("arm64", "aarch64")] {
            if r.contains(needle) {
                return (Some(arch.into()), "kernel release string".into());
            }
        }
    }
    if let Ok(v) = root.read_string("proc/driver/nvidia/version") {
        if let Some(a) = parse::proc::nvidia_version(&v).and_then(|n| n.arch) {
            return (Some(a), "proc/driver/nvidia/version".into());
        }
    }
    (None, "no architecture clue in this root (proc/sys/kernel/arch, proc/cpuinfo)".into())
}

pub fn normalise_arch(a: &str) -> String {
    match a.trim() {
        "arm64" | "aarch64" => "aarch64".into(),
        "amd64" | "x86_64" => "x86_64".into(),
        other => other.into(),
    }
}

/// Page size. Live: sysconf. Otherwise derived from the transparent-hugepage PMD size, which
/// is `page * page / 8` on 64-bit kernels (2 MiB for 4K pages, 512 MiB for 64K pages).
fn page_size_of(root: &Root, manifest: Option<&Manifest>) -> (Option<u64>, String) {
    if root.kind().is_live() {
        if let Ok(Some(p)) = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
            return (Some(p as u64), "sysconf(_SC_PAGESIZE)".into());
        }
    }
    if let Some(p) = manifest.and_then(|m| m.page_size) {
        return (Some(p), "snapshot manifest".into());
    }
    if let Ok(v) = root.read_value("sys/kernel/mm/transparent_hugepage/hpage_pmd_size") {
        if let Some(p) = v.parse::<u64>().ok().and_then(page_from_pmd) {
            return (Some(p), format!("sys/kernel/mm/transparent_hugepage/hpage_pmd_size = {v}"));
        }
    }
    (None, "no page-size clue in this root (hpage_pmd_size)".into())
}

fn page_from_pmd(pmd: u64) -> Option<u64> {
    [4096u64, 16384, 65536].into_iter().find(|p| p * p / 8 == pmd)
}

/// Modules whose presence or version the checks care about.
pub const MODULES_OF_INTEREST: [&str; 10] = [
    "efa",
    "nvidia",
    "nvidia_uvm",
    "nvidia_peermem",
    "efa_nv_peermem",
    "gdrdrv",
    "ib_core",
    "ib_uverbs",
    "nvidia_fs",
    "nvidia_drm",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModulesFacts {
    /// Every module in `/proc/modules`; `None` when that file is unreadable.
    pub loaded: Option<Vec<parse::proc::ModuleLine>>,
    /// Modules of interest that are built into the kernel (in `/sys/module`, not in
    /// `/proc/modules`).
    pub builtin: Vec<String>,
    /// `/sys/module/<name>/version` of modules of interest. The out-of-tree EFA driver
    /// writes e.g. `2.17.3g`; the in-tree driver has no version file (REFERENCE §1.2).
    pub versions: std::collections::BTreeMap<String, String>,
    /// `/sys/module/<name>/taint` of modules of interest (`O` = out-of-tree, `P` =
    /// proprietary).
    pub taint: std::collections::BTreeMap<String, String>,
    /// Modules of interest installed for the running kernel, from
    /// `lib/modules/<release>/modules.dep` (what modprobe loads; DKMS and the EFA installer
    /// register there through depmod) and `modules.builtin`: name -> path. `None` when that
    /// index is unreadable. The bake profile judges the image by it.
    #[serde(default)]
    pub on_disk: Option<std::collections::BTreeMap<String, String>>,
    pub notes: Notes,
}

impl ModulesFacts {
    /// True/false when known; `None` when the module list could not be read.
    pub fn is_loaded(&self, name: &str) -> Option<bool> {
        let loaded = self.loaded.as_ref()?;
        Some(loaded.iter().any(|m| m.name == name) || self.builtin.iter().any(|b| b == name))
    }
}

/// Module name of a `modules.dep` / `modules.builtin` path: `.../efa.ko.xz` -> `efa`
/// (modprobe treats `-` and `_` alike).
fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = file.split(".ko").next().filter(|s| s.len() < file.len())?;
    Some(stem.replace('-', "_"))
}

/// Which modules of interest are installed for kernel `release` (see `on_disk`).
pub fn modules_on_disk(
    root: &Root,
    release: Option<&str>,
    notes: &mut Notes,
) -> Option<std::collections::BTreeMap<String, String>> {
    let Some(release) = release.filter(|r| !r.contains('/') && !r.is_empty()) else {
        notes.insert("on_disk".into(), "kernel release unknown".into());
        return None;
    };
    let dir = format!("lib/modules/{release}");
    let dep = match root.read_string(&format!("{dir}/modules.dep")) {
        Ok(t) => t,
        Err(e) => {
            notes.insert("on_disk".into(), e.to_string());
            return None;
        }
    };
    let mut found = std::collections::BTreeMap::new();
    let builtin = root.read_string(&format!("{dir}/modules.builtin")).unwrap_or_default();
    let entries = dep
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(|p| (p, false))
        .chain(builtin.lines().map(|p| (p, true)));
    for (path, built_in) in entries {
        let Some(name) = module_name(path.trim()) else { continue };
        if MODULES_OF_INTEREST.contains(&name.as_str()) {
            let shown =
                if built_in { format!("{path} (built in)") } else { format!("{dir}/{path}") };
            found.entry(name).or_insert(shown);
        }
    }
    Some(found)
}

pub fn gather_modules(root: &Root) -> ModulesFacts {
    let mut m = ModulesFacts::default();
    match root.read_string("proc/modules") {
        Ok(t) => m.loaded = Some(parse::proc::modules(&t)),
        Err(e) => {
            m.notes.insert("loaded".into(), e.to_string());
        }
    }
    for name in MODULES_OF_INTEREST {
        let dir = format!("sys/module/{name}");
        if !root.is_dir(&dir) {
            continue;
        }
        if let Ok(v) = root.read_value(&format!("{dir}/version")) {
            if !v.is_empty() {
                m.versions.insert(name.into(), v);
            }
        }
        if let Ok(t) = root.read_value(&format!("{dir}/taint")) {
            m.taint.insert(name.into(), t);
        }
        let in_list = m.loaded.as_ref().is_some_and(|l| l.iter().any(|x| x.name == name));
        // A loaded module has `initstate`; a built-in one has a /sys/module dir without it.
        if !in_list && !root.exists(&format!("{dir}/initstate")) && m.loaded.is_some() {
            m.builtin.push(name.into());
        }
    }
    m
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NvidiaDriverFacts {
    pub version: Option<String>,
    /// `open` or `proprietary`.
    pub kernel_module: Option<String>,
    /// The `NVRM version:` line as written by the driver.
    pub version_line: Option<String>,
    pub notes: Notes,
}

impl NvidiaDriverFacts {
    pub fn is_open(&self) -> Option<bool> {
        self.kernel_module.as_deref().map(|k| k == "open")
    }
}

pub fn gather_nvidia(root: &Root) -> NvidiaDriverFacts {
    let mut n = NvidiaDriverFacts::default();
    match root.read_string("proc/driver/nvidia/version") {
        Ok(text) => match parse::proc::nvidia_version(&text) {
            Some(v) => {
                n.version = v.version;
                n.kernel_module = Some(if v.open { "open" } else { "proprietary" }.into());
                n.version_line = Some(v.line);
                n.notes.insert("source".into(), "proc/driver/nvidia/version".into());
            }
            None => {
                n.notes.insert(
                    "source".into(),
                    "proc/driver/nvidia/version has no 'NVRM version:' line".into(),
                );
            }
        },
        Err(e) => {
            n.notes.insert("source".into(), e.to_string());
        }
    }
    if n.version.is_none() {
        if let Ok(v) = root.read_value("sys/module/nvidia/version") {
            if !v.is_empty() {
                n.version = Some(v);
                n.notes.insert("version".into(), "sys/module/nvidia/version".into());
            }
        }
    }
    if n.kernel_module.is_none() {
        // Proprietary modules taint the kernel with `P`; open ones are `Dual MIT/GPL`.
        if let Ok(t) = root.read_value("sys/module/nvidia/taint") {
            n.kernel_module = Some(if t.contains('P') { "proprietary" } else { "open" }.into());
            n.notes.insert("kernel_module".into(), format!("sys/module/nvidia/taint = {t:?}"));
        }
    }
    n
}

#[cfg(test)]
mod on_disk_tests {
    #[test]
    fn module_names() {
        assert_eq!(
            super::module_name("kernel/drivers/infiniband/hw/efa/efa.ko.xz").as_deref(),
            Some("efa")
        );
        assert_eq!(super::module_name("updates/dkms/efa.ko").as_deref(), Some("efa"));
        assert_eq!(
            super::module_name("kernel/drivers/video/nvidia-uvm.ko.zst").as_deref(),
            Some("nvidia_uvm")
        );
        assert_eq!(super::module_name("kernel/drivers/net/efa_x"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_from_pmd() {
        assert_eq!(page_from_pmd(2 * 1024 * 1024), Some(4096));
        assert_eq!(page_from_pmd(512 * 1024 * 1024), Some(65536));
        assert_eq!(page_from_pmd(32 * 1024 * 1024), Some(16384));
        assert_eq!(page_from_pmd(12345), None);
    }
}
