//! Snapshots: capture what the checks read, and replay it anywhere.
//!
//! A snapshot is a gzipped tar of a sysroot tree: the files, directory listings and links the
//! gatherers read (recorded by the [`Root`](crate::root::Root)), plus `.efa-doctor/manifest.json`
//! with what a file tree cannot hold: the tool version, capture time, architecture, page
//! size, kernel release, and the facts that came from the node's native libraries. Extracted,
//! it is a valid `--root` directory; fixtures under `tests/fixtures/` use the same layout.

use serde::{Deserialize, Serialize};

use crate::facts::rdma::CounterSample;
use crate::root::Root;

/// Where the manifest lives inside a captured tree.
pub const MANIFEST_PATH: &str = ".efa-doctor/manifest.json";

/// The manifest of a captured tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub tool_version: Option<String>,
    /// RFC 3339, UTC.
    #[serde(default)]
    pub captured_at: Option<String>,
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub page_size: Option<u64>,
    #[serde(default)]
    pub kernel_release: Option<String>,
    /// Second counter reading taken during capture (`--sample`).
    #[serde(default)]
    pub counter_sample: Option<CounterSample>,
    /// Results from the node's native libraries, captured live.
    #[serde(default)]
    pub native: Option<CapturedNative>,
    /// What the fixture or capture is (free text, for people).
    #[serde(default)]
    pub description: Option<String>,
}

/// Facts that came from native libraries at capture time; replay needs none of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CapturedNative {
    #[serde(default)]
    pub gpu: Option<crate::facts::gpu::GpuFacts>,
    #[serde(default)]
    pub libfabric: Option<crate::facts::libfabric::LibfabricFacts>,
    /// Derived from libraries on disk, which snapshots do not copy.
    #[serde(default)]
    pub efa_stack: Option<crate::facts::stack::EfaStackFacts>,
}

/// Reads the manifest of a captured tree, if the root has one. A malformed manifest is an
/// error: replaying a capture with half its facts silently missing would mislead.
pub fn load_manifest(root: &Root) -> Result<Option<Manifest>, String> {
    match root.read(MANIFEST_PATH) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| format!("{MANIFEST_PATH} in {}: {e}", root.display())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
