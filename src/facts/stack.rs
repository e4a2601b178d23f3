//! The EFA user-space stack on disk, read without loading anything: the EFA installer record,
//! every libfabric copy with its version, aws-ofi-nccl and the libfabric it was built against,
//! NCCL's net-plugin settings, and NIXL's plugins and Python packages (REFERENCE §5-§7).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Notes;
use super::libfabric::SearchDir;
use crate::parse::Version;
use crate::parse::elf::{self, ElfInfo};
use crate::root::Root;

/// Largest library efa-doctor reads to inspect (libfabric is ~2 MiB, aws-ofi-nccl ~5 MiB).
const MAX_LIB_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Installer {
    pub path: String,
    pub version: Option<String>,
    pub packages: Vec<String>,
}

/// One `libfabric.so.1` on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LibfabricCopy {
    pub path: String,
    /// The file behind the `libfabric.so.1` link (`libfabric.so.1.30.0`).
    pub real_name: Option<String>,
    /// Release string found in the library's data (`2.4.0amzn3.0`); a strong hint.
    pub release: Option<String>,
    /// `FABRIC_1.N` version nodes defined.
    pub defines: Vec<String>,
    /// Release floor implied by the highest node (`FABRIC_1.8` => >= 2.0.0).
    pub floor: Option<String>,
    /// The efa provider is compiled in (links libefa, or a DL provider beside it).
    pub has_efa_provider: bool,
    pub machine: Option<String>,
    /// Found in the loader's search order (else only through a plugin's RUNPATH).
    pub on_loader_path: bool,
}

impl LibfabricCopy {
    /// Best version estimate: the release string, else the node floor.
    pub fn version(&self) -> Option<Version> {
        self.release.as_deref().or(self.floor.as_deref()).and_then(Version::parse)
    }
}

/// A plugin that links libfabric (aws-ofi-nccl, NIXL's LIBFABRIC plugin).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FabricConsumer {
    pub path: String,
    pub version: Option<String>,
    /// `FABRIC_1.N` nodes it needs from libfabric.so.1.
    pub needs: Vec<String>,
    pub runpath: Vec<String>,
    /// The libfabric its loader would pick: DT_RPATH, LD_LIBRARY_PATH, DT_RUNPATH, then the
    /// node's cache and default directories (ld.so(8)).
    pub resolves_to: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NixlPackage {
    /// The package's `_api.py`.
    pub path: String,
    /// Default of `nixl_agent_config(backends=...)` as written in `_api.py`.
    pub default_backends: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EfaStackFacts {
    pub installer: Option<Installer>,
    pub libfabric: Vec<LibfabricCopy>,
    pub aws_ofi_nccl: Vec<FabricConsumer>,
    /// `NCCL_NET_PLUGIN` and friends from `/etc/nccl.conf`.
    pub nccl_conf: BTreeMap<String, String>,
    pub nixl_plugins: Vec<FabricConsumer>,
    pub nixl_packages: Vec<NixlPackage>,
    pub notes: Notes,
}

impl EfaStackFacts {
    /// The on-disk copy at `path`, if it was read.
    pub fn copy(&self, path: &str) -> Option<&LibfabricCopy> {
        self.libfabric.iter().find(|c| c.path == path)
    }
}

fn read_lib(root: &Root, path: &str) -> Option<std::sync::Arc<Vec<u8>>> {
    root.read_blob(path).ok().filter(|data| data.len() <= MAX_LIB_BYTES)
}

fn parse_installer(text: &str) -> (Option<String>, Vec<String>) {
    let mut version = None;
    let mut packages = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("# EFA installer version:") {
            version = Some(v.trim().to_string());
        } else if !line.starts_with('#') {
            packages.extend(line.split_whitespace().map(String::from));
        }
    }
    (version, packages)
}

/// Inspects one libfabric file.
pub fn libfabric_copy(root: &Root, path: &str) -> Option<LibfabricCopy> {
    let data = read_lib(root, path)?;
    let info: ElfInfo = elf::parse(&data)?;
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let defines: Vec<String> =
        info.defines.into_iter().filter(|d| d.starts_with("FABRIC_")).collect();
    let floor = elf::max_fabric_node(&defines)
        .and_then(|n| elf::fabric_node_release(n).map(|r| format!("{r} (from FABRIC_1.{n})")));
    let dl_efa = root.exists(&format!("{dir}/libfabric/libefa-fi.so"));
    Some(LibfabricCopy {
        path: path.to_string(),
        real_name: root.canonical(path).ok().and_then(|c| c.rsplit('/').next().map(String::from)),
        release: elf::libfabric_release_in(&data),
        floor,
        has_efa_provider: dl_efa || info.needed.iter().any(|n| n.starts_with("libefa.so")),
        defines,
        machine: Some(info.machine),
        on_loader_path: true,
    })
}

/// Inspects a plugin that links libfabric, resolving which libfabric it would load.
fn consumer(
    root: &Root,
    path: &str,
    version_needle: Option<&[u8]>,
    loader: &[SearchDir],
) -> Option<FabricConsumer> {
    let data = read_lib(root, path)?;
    let info = elf::parse(&data)?;
    if !info.needed.iter().any(|n| n == super::libfabric::LIBFABRIC_SONAME) {
        return None;
    }
    let origin = path.rsplit_once('/').map_or("/", |(d, _)| d);
    let runpath: Vec<String> = info
        .runpath
        .iter()
        .chain(&info.rpath)
        .map(|r| r.replace("$ORIGIN", origin).replace("${ORIGIN}", origin))
        .collect();
    // LD_LIBRARY_PATH comes before DT_RUNPATH in the loader's search (only DT_RPATH is
    // searched before it).
    let (env, system): (Vec<&SearchDir>, Vec<&SearchDir>) =
        loader.iter().partition(|d| d.source == "LD_LIBRARY_PATH");
    let dirs = |v: Vec<&SearchDir>| v.into_iter().map(|d| d.dir.clone()).collect::<Vec<_>>();
    let resolves_to = info
        .search_order(origin, &dirs(env), &dirs(system))
        .iter()
        .map(|d| format!("{}/{}", d.trim_end_matches('/'), super::libfabric::LIBFABRIC_SONAME))
        .find(|p| root.exists(p));
    let version = version_needle
        .and_then(|n| elf::strings_containing(&data, n, 1).into_iter().next())
        .map(|s| {
            // "Initializing aws-ofi-nccl 1.17.2" or "aws-ofi-nccl 1.17.2": keep the version word.
            s.split_whitespace().last().unwrap_or(&s).to_string()
        });
    Some(FabricConsumer {
        path: path.to_string(),
        version,
        needs: info.needs_from(super::libfabric::LIBFABRIC_SONAME),
        runpath,
        resolves_to,
    })
}

const OFI_NCCL_DIRS: [&str; 4] = [
    "/opt/amazon/ofi-nccl/lib",
    "/opt/amazon/aws-ofi-nccl/lib",
    "/opt/aws-ofi-nccl/lib",
    "/usr/local/lib",
];
const OFI_NCCL_NAMES: [&str; 3] =
    ["libnccl-net-ofi.so", "libnccl-net.so", "libnccl-net-aws-ofi.so"];

/// Directories where NIXL's plugins are installed by containers and wheels (REFERENCE §5.1).
fn nixl_plugin_dirs(root: &Root, site_packages: &[String]) -> Vec<String> {
    let mut dirs = vec![
        "/usr/local/nixl/lib/x86_64-linux-gnu/plugins".to_string(),
        "/usr/local/nixl/lib/aarch64-linux-gnu/plugins".into(),
        "/usr/local/nixl/lib64/plugins".into(),
        "/usr/local/lib/x86_64-linux-gnu/plugins".into(),
        "/usr/local/lib/aarch64-linux-gnu/plugins".into(),
    ];
    for sp in site_packages {
        for entry in root.list(sp).unwrap_or_default() {
            if entry.starts_with(".nixl") && entry.ends_with(".mesonpy.libs") {
                dirs.push(format!("{sp}/{entry}/plugins"));
            } else if entry.starts_with("nixl") && entry.ends_with(".libs") {
                dirs.push(format!("{sp}/{entry}/nixl"));
            }
        }
    }
    dirs
}

/// Entries of /opt looked at for virtual environments.
const MAX_OPT_ENTRIES: usize = 32;

/// Python package directories under the usual prefixes.
fn site_packages(root: &Root) -> Vec<String> {
    let mut out = Vec::new();
    let mut prefixes: Vec<String> =
        ["/usr/local/lib", "/usr/lib", "/opt/conda/lib", "/opt/venv/lib", "/venv/lib"]
            .map(String::from)
            .to_vec();
    // Images install frameworks into virtual environments under /opt (/opt/<name>/.venv,
    // /opt/<name>/venv, /opt/<name> itself).
    for name in root.list("opt").unwrap_or_default().into_iter().take(MAX_OPT_ENTRIES) {
        for venv in ["", "/.venv", "/venv"] {
            prefixes.push(format!("/opt/{name}{venv}/lib"));
        }
    }
    for prefix in &prefixes {
        for py in
            root.list(prefix).unwrap_or_default().into_iter().filter(|p| p.starts_with("python3"))
        {
            for kind in ["dist-packages", "site-packages"] {
                let d = format!("{prefix}/{py}/{kind}");
                if root.is_dir(&d) {
                    out.push(d);
                }
            }
        }
    }
    if root.is_dir("usr/lib/python3/dist-packages") {
        out.push("/usr/lib/python3/dist-packages".into());
    }
    out.sort();
    out.dedup();
    out
}

/// The default of `backends` in `nixl_agent_config`, e.g. `backends: list[str] = ["UCX"]`.
pub fn default_backends(api_py: &str) -> Option<Vec<String>> {
    let re = regex::Regex::new(
        r#"backends\s*:\s*(?:list\[str\]|List\[str\]|Optional\[[^\]]*\]\])?\s*=\s*\[([^\]]*)\]"#,
    )
    .ok()?;
    let cap = re.captures(api_py)?;
    Some(
        cap[1]
            .split(',')
            .map(|b| b.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
            .filter(|b| !b.is_empty())
            .collect(),
    )
}

pub fn gather(root: &Root, loader: &[SearchDir]) -> EfaStackFacts {
    let mut f = EfaStackFacts::default();
    for p in ["opt/amazon/efa_installed_packages", "opt/amazon/efa/installed_packages"] {
        if let Ok(text) = root.read_string(p) {
            let (version, packages) = parse_installer(&text);
            f.installer = Some(Installer { path: format!("/{p}"), version, packages });
            break;
        }
    }
    let mut seen = Vec::new();
    for d in loader.iter().filter(|d| d.has_libfabric) {
        let path = format!("{}/{}", d.dir, super::libfabric::LIBFABRIC_SONAME);
        // Two directory entries can be the same file (/lib -> /usr/lib).
        let canon = root.canonical(&path).unwrap_or_else(|_| path.clone());
        if seen.contains(&canon) {
            continue;
        }
        seen.push(canon);
        if let Some(c) = libfabric_copy(root, &path) {
            f.libfabric.push(c);
        }
    }
    let mut seen_plugins = Vec::new();
    for dir in OFI_NCCL_DIRS {
        for name in OFI_NCCL_NAMES {
            let path = format!("{dir}/{name}");
            // libnccl-net.so is usually a link to libnccl-net-ofi.so: inspect each file once.
            let Ok(canon) = root.canonical(&path) else { continue };
            if seen_plugins.contains(&canon) {
                continue;
            }
            seen_plugins.push(canon);
            if let Some(c) = consumer(root, &path, Some(b"aws-ofi-nccl "), loader) {
                f.aws_ofi_nccl.push(c);
            }
        }
    }
    if let Ok(conf) = root.read_string("etc/nccl.conf") {
        for line in conf.lines() {
            if let Some((k, v)) = line.split('#').next().unwrap_or("").split_once('=') {
                let k = k.trim();
                if k.starts_with("NCCL_") {
                    f.nccl_conf.insert(k.to_string(), v.trim().to_string());
                }
            }
        }
    }
    let sp = site_packages(root);
    for dir in nixl_plugin_dirs(root, &sp) {
        let path = format!("{dir}/libplugin_LIBFABRIC.so");
        if root.exists(&path) {
            if let Some(c) = consumer(root, &path, None, loader) {
                f.nixl_plugins.push(c);
            }
        }
    }
    // Inspect libfabric copies reached only through a plugin's RUNPATH.
    let extra: Vec<String> = f
        .aws_ofi_nccl
        .iter()
        .chain(&f.nixl_plugins)
        .filter_map(|c| c.resolves_to.clone())
        .collect();
    for r in extra {
        // Already read: from the loader path, or for another consumer.
        if f.libfabric.iter().any(|c| c.path == r) {
            continue;
        }
        if let Some(mut c) = libfabric_copy(root, &r) {
            c.on_loader_path = false;
            f.libfabric.push(c);
        }
    }
    for d in &sp {
        for entry in root.list(d).unwrap_or_default() {
            if entry == "nixl" || entry.starts_with("nixl_cu") {
                let api = format!("{d}/{entry}/_api.py");
                if let Ok(text) = root.read_string(&api) {
                    f.nixl_packages
                        .push(NixlPackage { default_backends: default_backends(&text), path: api });
                }
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installer_record() {
        let (v, p) = parse_installer(
            "# EFA installer version: 1.47.0\n# Debug packages installed: no\n# Packages installed:\nlibfabric-aws-2.4.0amzn1.0-1.amzn2023.x86_64 efa-profile-1.7-1\n",
        );
        assert_eq!(v.as_deref(), Some("1.47.0"));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn nixl_default_backend() {
        assert_eq!(
            default_backends("    backends: list[str] = [\"UCX\"]\n"),
            Some(vec!["UCX".into()])
        );
        assert_eq!(
            default_backends("backends: list[str] = ['LIBFABRIC', 'UCX']"),
            Some(vec!["LIBFABRIC".into(), "UCX".into()])
        );
        assert_eq!(default_backends("nothing here"), None);
    }
}
