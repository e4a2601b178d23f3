//! The manifest of a capture (snapshot or fixture): what a file tree cannot hold. The tool
//! version, capture time, architecture, page size, kernel release, the values that came
//! from system calls, and the facts that came from the node's native libraries. Its fields
//! are facts, so it is read here, through the [`Root`], not by the snapshot loader.

use serde::{Deserialize, Serialize};

/// The host facts from system calls live with the host gatherer that replays them.
pub use crate::facts::host::LiveFacts;
use crate::facts::rdma::CounterSample;
use crate::root::snapshot::MANIFEST_PATH;
use crate::root::{Root, RootKind};

/// The manifest of a captured tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Values that came from system calls on the live node.
    #[serde(default)]
    pub live: Option<LiveFacts>,
    /// Results from the node's native libraries, captured live.
    #[serde(default)]
    pub native: Option<CapturedNative>,
    /// What the fixture or capture is (free text, for people).
    #[serde(default)]
    pub description: Option<String>,
    /// Bytes of file content in the capture, before compression.
    #[serde(default)]
    pub content_bytes: Option<u64>,
}

/// Facts that came from native libraries at capture time; replay needs none of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CapturedNative {
    #[serde(default)]
    pub gpu: Option<crate::facts::gpu::GpuFacts>,
    #[serde(default)]
    pub libfabric: Option<crate::facts::libfabric::LibfabricFacts>,
    /// Derived from libraries on disk, which snapshots do not copy.
    #[serde(default)]
    pub efa_stack: Option<crate::facts::stack::EfaStackFacts>,
    /// IMDS answers at capture time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds: Option<crate::facts::imds::ImdsFacts>,
    /// What the inspected processes' libraries said ([`crate::facts::process::ProcessLibs`]),
    /// by pid: the libraries themselves are not copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_libs: Option<std::collections::BTreeMap<u32, crate::facts::process::ProcessLibs>>,
    /// The registration probe at capture time (or why it did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::facts::probe::ProbeFacts>,
}

/// Reads the manifest of a captured tree, if the root has one. A malformed manifest is an
/// error: replaying a capture with half its facts silently missing would mislead.
///
/// Only a capture has one: a snapshot, or a plain directory tree (an extracted capture, a
/// fixture). On the live node or a mounted host root the same path is just a file that
/// anyone able to write to `/` could plant to replace the node's measurements, so it is
/// never read there.
pub fn load_manifest(root: &Root) -> Result<Option<Manifest>, String> {
    if !matches!(root.kind(), RootKind::Snapshot | RootKind::Directory) {
        return Ok(None);
    }
    match root.read(MANIFEST_PATH) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| format!("{MANIFEST_PATH} in {}: {e}", root.display())),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// RFC 3339 (UTC, seconds) for a Unix time, without a date library.
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, (secs / 60) % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_trusted_only_for_captures() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".efa-doctor")).unwrap();
        std::fs::write(d.path().join(MANIFEST_PATH), r#"{"page_size": 65536}"#).unwrap();
        let plain = Root::directory(d.path(), RootKind::Directory).unwrap();
        assert_eq!(load_manifest(&plain).unwrap().unwrap().page_size, Some(65536));
        for kind in [RootKind::Live, RootKind::HostMount] {
            let r = Root::directory_with_kind(d.path(), kind).unwrap();
            assert!(load_manifest(&r).unwrap().is_none(), "{kind:?} read a planted manifest");
        }
    }
    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_306_473), "2026-11-22T00:14:33Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
