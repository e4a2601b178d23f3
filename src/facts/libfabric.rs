//! The libfabric a workload would load, found the way the dynamic loader finds it, then
//! enumerated in the native helper (every provider, as `fi_info` lists them).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Notes;
use crate::native::fabric::{Enumeration, ProviderInfo};
use crate::native::{self, NativeState};
use crate::root::Root;

/// `fi_getinfo` walks every provider; a wedged EFA device can stall it.
pub const LIBFABRIC_DEADLINE: Duration = Duration::from_secs(30);

pub const LIBFABRIC_SONAME: &str = "libfabric.so.1";

/// One directory the loader would search, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchDir {
    /// Absolute path on the node.
    pub dir: String,
    /// Why it is searched: `LD_LIBRARY_PATH`, `ld.so.conf`, `default`, `efa-installer`.
    pub source: String,
    /// Whether `libfabric.so.1` is there.
    pub has_libfabric: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LibfabricFacts {
    pub state: NativeState,
    /// Where the library was enumerated ([`native::Site::vantage`]); absent when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    pub error: Option<String>,
    /// The library enumerated (absolute path on the node).
    pub path: Option<String>,
    /// Release string (`fi_tostr(FI_TYPE_VERSION)`), e.g. `1.17.0` or `2.4.0amzn3.0`.
    pub version: Option<String>,
    /// `fi_version()`, `major.minor`.
    pub api_version: Option<String>,
    /// One entry per `fi_getinfo` result.
    pub providers: Vec<ProviderInfo>,
    /// Loader search order, first hit wins.
    pub search: Vec<SearchDir>,
    /// libfabric's own warnings during enumeration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    pub notes: Notes,
}

impl LibfabricFacts {
    /// The library to load for a live probe, as the helper at `site` names it, or why there
    /// is none.
    pub fn loadable(&self, root: &Root, site: &native::Site) -> Result<String, String> {
        let path =
            self.path.as_deref().filter(|_| self.state == NativeState::Ok).ok_or_else(|| {
                format!(
                    "no loadable libfabric ({})",
                    self.error.as_deref().unwrap_or("see libfabric.efa-provider")
                )
            })?;
        site.path(root, path).ok_or_else(|| "this root has no files to load".to_string())
    }

    pub fn efa_entries(&self) -> impl Iterator<Item = &ProviderInfo> {
        self.providers.iter().filter(|p| p.name == "efa" || p.name.starts_with("efa;"))
    }
}

/// Library directories of the loader, in search order (LD_LIBRARY_PATH first when live).
pub fn search_dirs(
    root: &Root,
    arch: Option<&str>,
    ld_library_path: Option<&str>,
) -> Vec<(String, String)> {
    let mut dirs: Vec<(String, String)> = Vec::new();
    let push = |d: &str, src: &str, dirs: &mut Vec<(String, String)>| {
        let d = d.trim_end_matches('/');
        if !d.starts_with('/') || dirs.iter().any(|(x, _)| x == d) {
            return;
        }
        dirs.push((d.to_string(), src.to_string()));
    };
    if let Some(lp) = ld_library_path {
        for d in lp.split(':').filter(|d| !d.is_empty()) {
            push(d, "LD_LIBRARY_PATH", &mut dirs);
        }
    }
    for d in ld_so_conf_dirs(root, "etc/ld.so.conf", 0) {
        push(&d, "ld.so.conf", &mut dirs);
    }
    let triplet = match arch {
        Some("aarch64") => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    for d in [
        format!("/lib/{triplet}"),
        format!("/usr/lib/{triplet}"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
    ] {
        push(&d, "default", &mut dirs);
    }
    for d in ["/opt/amazon/efa/lib64", "/opt/amazon/efa/lib"] {
        push(d, "efa-installer", &mut dirs);
    }
    dirs
}

/// Directories named in `ld.so.conf` and its `include`d files (simple `*` globs).
fn ld_so_conf_dirs(root: &Root, file: &str, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    if depth > 4 {
        return out;
    }
    let Ok(text) = root.read_string(file) else { return out };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            for f in glob(root, pattern) {
                out.extend(ld_so_conf_dirs(root, &f, depth + 1));
            }
        } else if line.starts_with('/') {
            out.push(line.split_whitespace().next().unwrap_or(line).to_string());
        }
    }
    out
}

/// Expands `/dir/prefix*suffix` inside the root.
fn glob(root: &Root, pattern: &str) -> Vec<String> {
    let pattern = pattern.trim_start_matches('/');
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    match name.split_once('*') {
        None => vec![pattern.to_string()],
        Some((pre, suf)) => root
            .list(dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.starts_with(pre) && n.ends_with(suf) && n.len() >= pre.len() + suf.len())
            .map(|n| format!("{dir}/{n}"))
            .collect(),
    }
}

/// Finds the libfabric the loader would pick; enumerates it on the live root.
pub fn gather(root: &Root, arch: Option<&str>, native_allowed: bool) -> LibfabricFacts {
    let mut f = LibfabricFacts::default();
    let ldp = if root.kind().is_live() { std::env::var("LD_LIBRARY_PATH").ok() } else { None };
    f.search = search_dirs(root, arch, ldp.as_deref())
        .into_iter()
        .map(|(dir, source)| SearchDir {
            has_libfabric: root.exists(&format!("{dir}/{LIBFABRIC_SONAME}")),
            dir,
            source,
        })
        .collect();
    let chosen = f.search.iter().find(|d| d.has_libfabric).cloned();
    let Some(chosen) = chosen else {
        f.state = NativeState::Missing;
        f.error =
            Some(format!("no {LIBFABRIC_SONAME} in any loader directory or under /opt/amazon/efa"));
        return f;
    };
    let path = format!("{}/{LIBFABRIC_SONAME}", chosen.dir);
    if chosen.source == "efa-installer" {
        f.notes.insert(
            "path".into(),
            format!("{path} is not on the loader path (no /etc/ld.so.conf.d entry): workloads find it only through LD_LIBRARY_PATH"),
        );
    }
    f.path = Some(path.clone());
    if !native_allowed {
        f.state = NativeState::NotRun;
        f.error = Some("libfabric is loaded only on the live node (or from a capture)".into());
        return f;
    }
    let site = native::Site::of(root);
    let Some((site, lib)) = site.and_then(|s| s.path(root, &path).map(|lib| (s, lib))) else {
        f.state = NativeState::NotRun;
        f.error = Some("this root has no files to load".into());
        return f;
    };
    // dlopen would block on a FIFO planted in a loader directory (LD_LIBRARY_PATH).
    if let Err(e) = root.regular_file(&path) {
        f.state = NativeState::Failed;
        f.error = Some(format!("not loaded: {e}"));
        return f;
    }
    let run = native::run_json::<Enumeration>(
        &site,
        &["libfabric", "--lib", &lib],
        &[],
        LIBFABRIC_DEADLINE,
        "libfabric did not answer",
    );
    f.log = run.log;
    f.vantage = run.vantage;
    match run.result {
        Some(e) => apply(&mut f, e),
        None => {
            f.state = run.state;
            f.error = run.error;
        }
    }
    f
}

fn apply(f: &mut LibfabricFacts, e: Enumeration) {
    if let Some(err) = e.load_error {
        f.state = NativeState::Failed;
        f.error = Some(format!("cannot load: {err}"));
        return;
    }
    f.state = NativeState::Ok;
    f.version = e.version;
    f.api_version = e.api_version;
    f.providers = e.providers;
    if let Some((code, text)) = e.getinfo_error {
        f.error = Some(format!("fi_getinfo returned {code} ({text})"));
    }
}
