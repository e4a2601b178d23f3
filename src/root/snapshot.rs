//! Snapshots: capture what the checks read, and replay it anywhere.
//!
//! A snapshot is a gzipped tar of a sysroot tree: the files, directory listings and links the
//! gatherers read (recorded by the [`Root`]), plus `.efa-doctor/manifest.json` with what a
//! file tree cannot hold: the tool version, capture time, architecture, page size, kernel
//! release, the values that came from system calls, and the facts that came from the node's
//! native libraries. Extracted, it is a valid `--root` directory; fixtures under
//! `tests/fixtures/` use the same layout.
//!
//! A snapshot is untrusted input when loaded: absolute paths, `..`, links that leave the
//! tree, hard links, device files, oversized files and corrupt archives are rejected with a
//! clear error, and the whole archive is held in memory within fixed bounds.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::facts::Facts;
use crate::facts::host::Shm;
use crate::facts::rdma::CounterSample;
use crate::redact;
use crate::root::{MAX_FILE_BYTES, MemNode, MemTree, Recording, Root, RootKind};

/// Where the manifest lives inside a captured tree.
pub const MANIFEST_PATH: &str = ".efa-doctor/manifest.json";

/// Largest archive content efa-doctor accepts, decompressed.
pub const MAX_SNAPSHOT_BYTES: u64 = 512 * 1024 * 1024;
/// Most entries a snapshot may hold.
pub const MAX_SNAPSHOT_ENTRIES: usize = 500_000;

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

/// Facts a file tree cannot reproduce because they came from system calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    /// IMDS answers at capture time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds: Option<crate::facts::imds::ImdsFacts>,
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

/// What a captured file is, for redaction: decided by every name it was reached by, not
/// only the path it was recorded under (a `proc/PID` that is a symlink records its files
/// under the link's target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Captured {
    Environ,
    Cmdline,
    Log,
    Other,
}

/// The kind of a file reached as `path`.
fn captured_kind(path: &str) -> Captured {
    let parts: Vec<&str> = path.split('/').collect();
    let pid = |s: &str| !s.is_empty() && (s.bytes().all(|b| b.is_ascii_digit()) || s == "self");
    let process_file = match parts.as_slice() {
        ["proc", p, name] if pid(p) => Some(*name),
        ["proc", p, "task", t, name] if pid(p) && pid(t) => Some(*name),
        _ => None,
    };
    match process_file {
        Some("environ") => Captured::Environ,
        Some("cmdline") => Captured::Cmdline,
        _ if path.starts_with(&format!("{}/", crate::facts::logs::CAPTURED_LOG_DIR)) => {
            Captured::Log
        }
        _ => Captured::Other,
    }
}

/// Rewrites a file that may hold secrets before it enters a capture, by what `path` names: a
/// process's environment keeps only allow-listed variables (their values redacted as
/// text); its command line goes through [`redact::args`]; a captured log through
/// [`redact::bytes`]. A log that cannot be stored redacted (see [`archive`]) is left empty.
pub fn redact(path: &str, data: &[u8]) -> Vec<u8> {
    redact_as(captured_kind(path), data).unwrap_or_default()
}

fn redact_as(kind: Captured, data: &[u8]) -> Result<Vec<u8>, String> {
    Ok(match kind {
        Captured::Environ => {
            let mut out = Vec::new();
            for (k, v) in crate::parse::proc::environ(data) {
                if redact::env_allowed(&k) {
                    out.extend_from_slice(format!("{k}={}", redact::env_value(&v)).as_bytes());
                    out.push(0);
                }
            }
            out
        }
        Captured::Cmdline => {
            let mut out = Vec::new();
            for a in redact::args(&crate::parse::proc::cmdline(data)) {
                out.extend_from_slice(a.as_bytes());
                out.push(0);
            }
            out
        }
        Captured::Log => redact_log(data)?,
        Captured::Other => data.to_vec(),
    })
}

/// A captured log, redacted. A gzipped log is stored decompressed (the analyser reads both),
/// since compressed bytes cannot be redacted; one that decompresses past [`MAX_FILE_BYTES`],
/// the most a snapshot file may hold, is refused rather than cut. A stream corrupt part-way
/// keeps what decompressed, as the analyser would read it.
fn redact_log(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        let _ = flate2::read::MultiGzDecoder::new(data)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut plain);
        if plain.len() as u64 > MAX_FILE_BYTES {
            return Err(format!(
                "decompresses to more than {MAX_FILE_BYTES} bytes, the snapshot file limit"
            ));
        }
        return Ok(redact::bytes(&plain).into_owned());
    }
    Ok(redact::bytes(data).into_owned())
}

/// Most symlinks followed resolving one path, as the kernel allows.
const MAX_LINK_HOPS: usize = 40;

/// Resolves `path` lexically through the recorded `links` (link path -> target as stored),
/// the way [`Root`] resolved it: absolute targets restart at the root, `..` stops there.
/// `None` past [`MAX_LINK_HOPS`].
fn resolve_recorded(path: &str, links: &BTreeMap<String, String>) -> Option<String> {
    let mut current: Vec<String> = Vec::new();
    let mut pending: Vec<String> = path.split('/').rev().map(String::from).collect();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => current.push(c),
        }
        if let Some(target) = links.get(&current.join("/")) {
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return None;
            }
            current.pop();
            if target.starts_with('/') {
                current.clear();
            }
            pending.extend(target.split('/').rev().map(String::from));
        }
    }
    Some(current.join("/"))
}

/// The recorded files that are a process's `environ` or `cmdline`, by where each process's
/// files resolve: a `proc/PID` (or `proc/PID/environ`) that is a symlink records its file
/// under the link's target, whose path says nothing. Every process directory the capture
/// saw is resolved, so the cost is one resolution per process, not per file.
fn process_files(rec: &Recording) -> BTreeMap<String, Captured> {
    let mut dirs: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let listed = rec.dirs.get("proc").into_iter().flatten().map(|n| format!("proc/{n}"));
    let seen = rec.files.keys().chain(rec.links.keys()).chain(rec.present.keys()).cloned();
    for p in listed.chain(seen).chain(rec.dirs.keys().cloned()) {
        let parts: Vec<&str> = p.split('/').collect();
        let id = |s: &str| !s.is_empty() && (s.bytes().all(|b| b.is_ascii_digit()) || s == "self");
        if parts.len() >= 2 && parts[0] == "proc" && id(parts[1]) {
            dirs.insert(format!("proc/{}", parts[1]));
            if parts.len() >= 4 && parts[2] == "task" && id(parts[3]) {
                dirs.insert(format!("proc/{}/task/{}", parts[1], parts[3]));
            }
        }
    }
    let mut out = BTreeMap::new();
    for d in dirs {
        for (name, kind) in [("environ", Captured::Environ), ("cmdline", Captured::Cmdline)] {
            if let Some(canon) = resolve_recorded(&format!("{d}/{name}"), &rec.links) {
                out.insert(canon, kind);
            }
        }
    }
    out
}

/// Rewrites a link target so the capture stays self-contained and loads: an absolute target
/// becomes relative to the link's directory, and a `..` that would climb above the root is
/// dropped, as Linux does at `/` (the loader refuses links that leave the tree).
fn relative_target(link: &str, target: &str) -> String {
    let depth = link.matches('/').count();
    let mut level = depth;
    let mut out: Vec<&str> = Vec::new();
    let ups = if target.starts_with('/') { depth } else { 0 };
    for c in std::iter::repeat_n("..", ups).chain(target.split('/')) {
        match c {
            "" | "." => {}
            ".." if level == 0 => {}
            ".." => {
                level -= 1;
                out.push(c);
            }
            _ => {
                level += 1;
                out.push(c);
            }
        }
    }
    if out.is_empty() { ".".into() } else { out.join("/") }
}

/// Why a name cannot go into a snapshot that [`load`] would take, if it cannot.
fn unloadable_name(p: &str) -> Option<String> {
    if p.len() > MAX_PATH_BYTES {
        return Some(format!(
            "/{p} is {} bytes, over the {MAX_PATH_BYTES}-byte path limit",
            p.len()
        ));
    }
    let depth = p.split('/').filter(|c| !c.is_empty()).count();
    (depth > MAX_PATH_DEPTH).then(|| {
        format!("/{p} has {depth} components, over the {MAX_PATH_DEPTH}-component depth limit")
    })
}

/// What `efa-doctor snapshot` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureStats {
    pub files: usize,
    pub links: usize,
    pub content_bytes: u64,
    pub archive_bytes: u64,
}

/// Builds the manifest for a capture from the gathered facts.
pub fn manifest_for(facts: &Facts, unix_now: u64, description: Option<String>) -> Manifest {
    let live = LiveFacts {
        shm: facts.host.shm.clone().filter(|s| s.source.starts_with("statvfs")),
        uverbs_openable: facts
            .host
            .uverbs
            .iter()
            .flatten()
            .map(|n| (n.name.clone(), n.openable))
            .collect(),
        uverbs_errors: facts
            .host
            .uverbs
            .iter()
            .flatten()
            .filter_map(|n| n.open_error.clone().map(|e| (n.name.clone(), e)))
            .collect(),
    };
    Manifest {
        tool_version: Some(env!("CARGO_PKG_VERSION").into()),
        captured_at: Some(rfc3339(unix_now)),
        arch: facts.kernel.arch.clone(),
        page_size: facts.kernel.page_size,
        kernel_release: facts.kernel.release.clone(),
        counter_sample: facts.rdma.sample.clone(),
        live: Some(live),
        native: Some(CapturedNative {
            gpu: Some(facts.gpu.clone()),
            libfabric: Some(facts.libfabric.clone()),
            efa_stack: Some(facts.efa_stack.clone()),
            // Kept even when not run, so a replay gives the same reason.
            probe: Some(facts.probe.clone()),
            imds: Some(facts.imds.clone()),
        }),
        description,
        content_bytes: None,
    }
}

/// Writes the recording and manifest as a gzipped tar, in memory. Fails when the content
/// exceeds `max_bytes`, naming the largest files.
pub fn archive(
    rec: Recording,
    mut manifest: Manifest,
    max_bytes: u64,
) -> Result<(Vec<u8>, CaptureStats), String> {
    let process = process_files(&rec);
    let mut files: BTreeMap<String, Arc<Vec<u8>>> = BTreeMap::new();
    for (p, d) in &rec.files {
        if p == MANIFEST_PATH {
            continue; // a capture of a capture gets a fresh manifest
        }
        let kind = process.get(p).copied().unwrap_or_else(|| captured_kind(p));
        let redacted = redact_as(kind, d).map_err(|e| format!("/{p}: {e}"))?;
        files.insert(p.clone(), Arc::new(redacted));
    }
    let content: u64 = files.values().map(|d| d.len() as u64).sum();
    if content > max_bytes {
        let mut big: Vec<(&String, usize)> = files.iter().map(|(p, d)| (p, d.len())).collect();
        big.sort_by_key(|b| std::cmp::Reverse(b.1));
        let top: Vec<String> =
            big.iter().take(5).map(|(p, n)| format!("/{p} ({n} bytes)")).collect();
        return Err(format!(
            "the capture would hold {content} bytes, more than the {max_bytes}-byte limit (--max-size); largest: {}",
            top.join(", ")
        ));
    }
    manifest.content_bytes = Some(content);
    // Its strings (library paths, versions, native error messages) get the same text pass.
    let manifest_json = redact::to_json(&manifest, true).map_err(|e| e.to_string())?.into_bytes();

    // Every path the gatherers saw: directories, placeholders for listed or tested names.
    let mut dirs: BTreeMap<String, ()> = BTreeMap::new();
    let mut placeholders: BTreeMap<String, ()> = BTreeMap::new();
    let add_parents = |p: &str, dirs: &mut BTreeMap<String, ()>| {
        let mut cur = p;
        while let Some(i) = cur.rfind('/') {
            cur = &cur[..i];
            dirs.insert(cur.to_string(), ());
        }
    };
    for (d, names) in &rec.dirs {
        if !d.is_empty() {
            dirs.insert(d.clone(), ());
        }
        add_parents(d, &mut dirs);
        for n in names {
            placeholders.insert(if d.is_empty() { n.clone() } else { format!("{d}/{n}") }, ());
        }
    }
    for (p, is_dir) in &rec.present {
        add_parents(p, &mut dirs);
        if *is_dir {
            dirs.insert(p.clone(), ());
        } else {
            placeholders.insert(p.clone(), ());
        }
    }
    for p in files.keys().chain(rec.links.keys()) {
        add_parents(p, &mut dirs);
    }
    dirs.remove("");
    let occupied =
        |p: &str| files.contains_key(p) || rec.links.contains_key(p) || dirs.contains_key(p);
    let placeholders: Vec<String> = placeholders.into_keys().filter(|p| !occupied(p)).collect();
    let links: Vec<(&String, String)> = rec
        .links
        .iter()
        .filter(|(p, _)| !files.contains_key(*p) && !dirs.contains_key(*p))
        .map(|(p, t)| (p, relative_target(p, t)))
        .collect();

    // Refuse here what the loader would refuse, so every archive written loads.
    let entries = dirs.len() + files.len() + placeholders.len() + links.len() + 1;
    if entries > MAX_SNAPSHOT_ENTRIES {
        return Err(format!(
            "the capture would hold {entries} entries, more than the {MAX_SNAPSHOT_ENTRIES}-entry snapshot limit"
        ));
    }
    let names = dirs.keys().chain(files.keys()).chain(&placeholders);
    if let Some(why) =
        names.chain(links.iter().flat_map(|(p, t)| [*p, t])).find_map(|p| unloadable_name(p))
    {
        return Err(format!("cannot capture {why}"));
    }

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    {
        let mut tar = tar::Builder::new(&mut gz);
        // Entries carry no time of their own: the manifest says when the capture was taken.
        let mtime = 0;
        let header = |kind: tar::EntryType, size: u64, mode: u32| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(size);
            h.set_mode(mode);
            h.set_mtime(mtime);
            h.set_uid(0);
            h.set_gid(0);
            h
        };
        let err = |e: std::io::Error| e.to_string();
        for d in dirs.keys() {
            let mut h = header(tar::EntryType::Directory, 0, 0o755);
            tar.append_data(&mut h, format!("{d}/"), std::io::empty()).map_err(err)?;
        }
        for (p, data) in &files {
            let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
            tar.append_data(&mut h, p, data.as_slice()).map_err(err)?;
        }
        for p in &placeholders {
            let mut h = header(tar::EntryType::Regular, 0, 0o644);
            tar.append_data(&mut h, p, std::io::empty()).map_err(err)?;
        }
        for (p, target) in &links {
            let mut h = header(tar::EntryType::Symlink, 0, 0o777);
            tar.append_link(&mut h, p, target).map_err(err)?;
        }
        let mut h = header(tar::EntryType::Regular, manifest_json.len() as u64, 0o644);
        tar.append_data(&mut h, MANIFEST_PATH, manifest_json.as_slice()).map_err(err)?;
        tar.finish().map_err(err)?;
    }
    let bytes = gz.finish().map_err(|e| e.to_string())?;
    let stats = CaptureStats {
        files: files.len(),
        links: links.len(),
        content_bytes: content,
        archive_bytes: bytes.len() as u64,
    };
    Ok((bytes, stats))
}

/// Why a snapshot was refused.
#[derive(Debug, thiserror::Error)]
#[error("snapshot {file}: {reason}")]
pub struct SnapshotError {
    pub file: String,
    pub reason: String,
}

/// True when a relative link at `link` pointing at `target` stays inside the tree.
fn link_stays_inside(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = link.matches('/').count() as i64;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// Longest GNU long-name or long-link record, and longest PAX extension block, a snapshot
/// may hold. The path and link they carry are bounded by [`MAX_PATH_BYTES`] anyway; this
/// bounds what is read before that can be checked.
pub const MAX_EXTENSION_BYTES: u64 = 64 * 1024;
/// Longest entry name or link target (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Most components in an entry name or link target.
pub const MAX_PATH_DEPTH: usize = 128;
/// Most nodes of the loaded tree: entries plus the directories their names imply.
pub const MAX_SNAPSHOT_NODES: usize = 1_000_000;
/// Bytes of names the loaded tree may hold, counting each implied parent directory's name
/// (a deep name implies as many directories as it has components: this is what bounds the
/// memory of many deep, distinct names).
pub const MAX_SNAPSHOT_NAME_BYTES: u64 = 64 * 1024 * 1024;
/// Most bytes the gzip stream may decompress to: content plus every header, extension and
/// padding block.
pub const MAX_ARCHIVE_STREAM_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Zero padding accepted after the tar end-of-archive marker (GNU tar pads to 10 KiB
/// records; `tar --blocking-factor` may use more).
const MAX_TAR_PADDING: u64 = 1024 * 1024;

/// The decompressed stream, cut off at [`MAX_ARCHIVE_STREAM_BYTES`]; `tripped` tells the
/// error apart from a corrupt archive.
struct StreamLimit<R> {
    inner: R,
    left: u64,
    tripped: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for StreamLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want =
            buf.len().min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.tripped.set(true);
            return Err(std::io::Error::other("decompressed stream over its limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// An entry name or link target as path components, refused when it is absolute, climbs
/// with `..` (names only), or is over the length and depth bounds.
fn checked_components(what: &str, raw: &[u8], allow_up: bool) -> Result<Vec<String>, String> {
    let shown = || String::from_utf8_lossy(&raw[..raw.len().min(120)]).into_owned();
    if raw.len() > MAX_PATH_BYTES {
        return Err(format!(
            "{what} {:?}... is {} bytes, over the {MAX_PATH_BYTES}-byte path limit",
            shown(),
            raw.len()
        ));
    }
    let escapes = || format!("entry {:?} escapes the snapshot root", shown());
    if !allow_up && raw.first() == Some(&b'/') {
        return Err(escapes());
    }
    let mut parts = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if !allow_up => return Err(escapes()),
            _ => parts.push(String::from_utf8_lossy(c).into_owned()),
        }
        if parts.len() > MAX_PATH_DEPTH {
            return Err(format!(
                "{what} {:?}... has more than {MAX_PATH_DEPTH} components (the depth limit)",
                shown()
            ));
        }
    }
    Ok(parts)
}

/// Reads a GNU long-name/long-link record or a PAX block, within [`MAX_EXTENSION_BYTES`].
fn read_extension(entry: &mut impl Read, size: u64, what: &str) -> Result<Vec<u8>, String> {
    if size > MAX_EXTENSION_BYTES {
        return Err(format!(
            "a {what} header of {size} bytes, over the {MAX_EXTENSION_BYTES}-byte limit"
        ));
    }
    let mut data = Vec::with_capacity(size as usize);
    entry
        .take(MAX_EXTENSION_BYTES)
        .read_to_end(&mut data)
        .map_err(|e| format!("corrupt {what} header: {e}"))?;
    Ok(data)
}

/// GNU long names end with a NUL.
fn until_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(i) = memchr::memchr(0, &v) {
        v.truncate(i);
    }
    v
}

/// Extension headers waiting for the entry they describe.
#[derive(Default)]
struct Pending {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    pax: bool,
    pax_size: Option<u64>,
}

/// Loads a snapshot archive into an in-memory root.
///
/// Everything is bounded before it is held: entries ([`MAX_SNAPSHOT_ENTRIES`]), content
/// ([`MAX_SNAPSHOT_BYTES`], [`MAX_FILE_BYTES`] per file), the decompressed stream
/// ([`MAX_ARCHIVE_STREAM_BYTES`]), each GNU/PAX extension ([`MAX_EXTENSION_BYTES`]), each
/// name ([`MAX_PATH_BYTES`], [`MAX_PATH_DEPTH`]) and the tree it builds
/// ([`MAX_SNAPSHOT_NODES`], [`MAX_SNAPSHOT_NAME_BYTES`]). The tar crate's own handling of
/// extension headers reads them whole, so entries are read raw and extensions applied here.
/// The gzip stream is read to its end, so its CRC and length are checked, and nothing may
/// follow it.
pub fn load(path: &Path) -> Result<Root, SnapshotError> {
    let shown = path.display().to_string();
    let fail = |reason: String| SnapshotError { file: shown.clone(), reason };
    let file = crate::root::open_user_file(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let tripped = std::rc::Rc::new(std::cell::Cell::new(false));
    let over_stream = || {
        format!(
            "the archive decompresses to more than {MAX_ARCHIVE_STREAM_BYTES} bytes (the stream limit)"
        )
    };
    let gz = flate2::bufread::GzDecoder::new(std::io::BufReader::new(file));
    let limited =
        StreamLimit { inner: gz, left: MAX_ARCHIVE_STREAM_BYTES, tripped: tripped.clone() };
    let mut archive = tar::Archive::new(limited);
    let corrupt = |what: &str, e: std::io::Error| {
        if tripped.get() { over_stream() } else { format!("{what}: {e}") }
    };
    let mut tree = MemTree::new();
    let mut total: u64 = 0;
    let mut name_bytes: u64 = 0;
    let mut count = 0usize;
    {
        let entries = archive
            .entries()
            .map_err(|e| fail(format!("not a gzipped tar archive: {e}")))?
            .raw(true);
        let mut pending = Pending::default();
        for entry in entries {
            let mut entry = entry.map_err(|e| fail(corrupt("corrupt archive", e)))?;
            let kind = entry.header().entry_type();
            let size =
                entry.header().entry_size().map_err(|e| fail(corrupt("corrupt header", e)))?;
            let twice = |what: &str| fail(format!("two {what} headers describe one entry"));
            if kind.is_gnu_longname() {
                if pending.name.is_some() {
                    return Err(twice("GNU long-name"));
                }
                pending.name = Some(until_nul(
                    read_extension(&mut entry, size, "GNU long-name").map_err(fail)?,
                ));
                continue;
            }
            if kind.is_gnu_longlink() {
                if pending.link.is_some() {
                    return Err(twice("GNU long-link"));
                }
                pending.link = Some(until_nul(
                    read_extension(&mut entry, size, "GNU long-link").map_err(fail)?,
                ));
                continue;
            }
            if kind.is_pax_local_extensions() {
                if pending.pax {
                    return Err(twice("PAX"));
                }
                pending.pax = true;
                let data = read_extension(&mut entry, size, "PAX").map_err(fail)?;
                for ext in tar::PaxExtensions::new(&data) {
                    let ext = ext.map_err(|e| fail(format!("corrupt PAX header: {e}")))?;
                    let value = ext.value_bytes().to_vec();
                    match ext.key_bytes() {
                        b"path" => pending.name = Some(value),
                        b"linkpath" => pending.link = Some(value),
                        b"size" => {
                            let n = ext.value().ok().and_then(|v| v.trim().parse().ok());
                            pending.pax_size = Some(n.ok_or_else(|| {
                                fail("corrupt PAX header: size is not a number".into())
                            })?);
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let pending = std::mem::take(&mut pending);
            count += 1;
            if count > MAX_SNAPSHOT_ENTRIES {
                return Err(fail(format!("more than {MAX_SNAPSHOT_ENTRIES} entries")));
            }
            // Entries are read raw, at the header's size: a PAX size that disagrees would
            // make this reader and others see different files.
            if pending.pax_size.is_some_and(|n| n != size) {
                return Err(fail(format!(
                    "a PAX size of {} bytes disagrees with its header's {size}",
                    pending.pax_size.unwrap_or_default()
                )));
            }
            let raw_name = match pending.name {
                Some(n) => n,
                None => entry.path_bytes().into_owned(),
            };
            let parts = checked_components("entry", &raw_name, false).map_err(fail)?;
            let rel = parts.join("/");
            if rel.is_empty() {
                continue;
            }
            let node = match kind {
                tar::EntryType::Directory => MemNode::Dir,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if size > MAX_FILE_BYTES {
                        return Err(fail(format!(
                            "{rel} is {size} bytes, over the {MAX_FILE_BYTES}-byte file limit"
                        )));
                    }
                    total += size;
                    if total > MAX_SNAPSHOT_BYTES {
                        return Err(fail(format!("content exceeds {MAX_SNAPSHOT_BYTES} bytes")));
                    }
                    let mut data = Vec::with_capacity(size as usize);
                    (&mut entry)
                        .take(MAX_FILE_BYTES + 1)
                        .read_to_end(&mut data)
                        .map_err(|e| fail(corrupt(&format!("{rel}: corrupt data"), e)))?;
                    MemNode::File(Arc::new(data))
                }
                tar::EntryType::Symlink => {
                    let raw_target = match pending.link {
                        Some(l) => l,
                        None => entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default(),
                    };
                    let target = String::from_utf8_lossy(&raw_target).into_owned();
                    checked_components("link target", &raw_target, true).map_err(fail)?;
                    if !link_stays_inside(&rel, &target) {
                        return Err(fail(format!(
                            "link {rel} -> {target} leaves the snapshot root"
                        )));
                    }
                    MemNode::Symlink(target)
                }
                tar::EntryType::Link => {
                    return Err(fail(format!("{rel} is a hard link; snapshots hold none")));
                }
                other => {
                    return Err(fail(format!(
                        "{rel} is a {other:?} entry; only files, directories and links are allowed"
                    )));
                }
            };
            let before = tree.len();
            tree.insert(&rel, node);
            // Every node this entry added is a prefix of its name: an upper bound.
            name_bytes += (tree.len() - before) as u64 * rel.len() as u64;
            if tree.len() > MAX_SNAPSHOT_NODES {
                return Err(fail(format!(
                    "the entries' names imply more than {MAX_SNAPSHOT_NODES} files and directories"
                )));
            }
            if name_bytes > MAX_SNAPSHOT_NAME_BYTES {
                return Err(fail(format!(
                    "the entries' names and the directories they imply exceed {MAX_SNAPSHOT_NAME_BYTES} bytes"
                )));
            }
        }
        if pending.name.is_some() || pending.link.is_some() || pending.pax {
            return Err(fail("corrupt archive: an extension header describes no entry".into()));
        }
    }
    // The tar end marker is followed by zero padding, then the end of the gzip member:
    // reading to it makes flate2 check the CRC and length.
    let mut rest = archive.into_inner();
    let mut padding = Vec::new();
    (&mut rest)
        .take(MAX_TAR_PADDING + 1)
        .read_to_end(&mut padding)
        .map_err(|e| fail(corrupt("corrupt archive", e)))?;
    if padding.len() as u64 > MAX_TAR_PADDING || padding.iter().any(|b| *b != 0) {
        return Err(fail("data after the tar end-of-archive marker".into()));
    }
    let mut after = rest.inner.into_inner();
    let trailing = std::io::BufRead::fill_buf(&mut after)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    if trailing > 0 {
        return Err(fail("trailing data after the gzip stream".into()));
    }
    if tree.is_empty() {
        return Err(fail("the archive is empty".into()));
    }
    Ok(Root::memory(tree, shown))
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

    #[test]
    fn secrets_are_redacted() {
        let env = b"FI_PROVIDER=efa\0HF_TOKEN=hf_abc\0AWS_SECRET_ACCESS_KEY=x\0HOME=/root\0NCCL_DEBUG=INFO\0";
        let out = String::from_utf8(redact("proc/42/environ", env)).unwrap();
        assert!(out.contains("FI_PROVIDER=efa") && out.contains("NCCL_DEBUG=INFO"));
        assert!(!out.contains("hf_abc") && !out.contains("HOME") && !out.contains("AWS_SECRET"));
        let args: Vec<String> =
            ["vllm", "serve", "--api-key", "s3cr3t", "--hf-token=abc", "--port", "8000"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let r = redact::args(&args);
        assert_eq!(
            r,
            vec![
                "vllm",
                "serve",
                "--api-key",
                "[redacted]",
                "--hf-token=[redacted]",
                "--port",
                "8000"
            ]
        );
    }

    #[test]
    fn process_files_are_known_by_where_they_resolve() {
        // proc/4242 -> ../srv/w; srv/w/environ -> /etc/e (recorded canonical: etc/e).
        let mut rec = Recording::default();
        for (l, t) in
            [("proc/4242", "../srv/w"), ("srv/w/environ", "/etc/e"), ("proc/self", "4242")]
        {
            rec.links.insert(l.into(), t.into());
        }
        rec.dirs.insert("proc".into(), vec!["4242".into(), "self".into(), "cpuinfo".into()]);
        rec.files.insert("proc/77/task/78/cmdline".into(), Arc::new(Vec::new()));
        let kinds = process_files(&rec);
        assert_eq!(kinds.get("etc/e"), Some(&Captured::Environ));
        assert_eq!(kinds.get("srv/w/cmdline"), Some(&Captured::Cmdline));
        assert_eq!(kinds.get("proc/77/task/78/cmdline"), Some(&Captured::Cmdline));
        assert_eq!(kinds.get("proc/77/environ"), Some(&Captured::Environ));
        assert!(!kinds.contains_key("srv/w/maps"));
        assert_eq!(captured_kind(".efa-doctor/logs/00-x.log"), Captured::Log);
        assert_eq!(captured_kind("etc/environ"), Captured::Other);
        let env = b"HF_TOKEN=x\0NIXL_ETCD_ENDPOINTS=http://u:PW@etcd:2379\0";
        let out = String::from_utf8(redact_as(kinds["etc/e"], env).unwrap()).unwrap();
        assert_eq!(out, "NIXL_ETCD_ENDPOINTS=http://u:[redacted]@etcd:2379\0");
    }

    #[test]
    fn a_gzipped_log_past_the_file_limit_is_refused_not_cut() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..=(MAX_FILE_BYTES >> 20) {
            gz.write_all(&chunk).unwrap();
        }
        let bomb = gz.finish().unwrap();
        let e = redact_as(Captured::Log, &bomb).unwrap_err();
        assert!(e.contains("snapshot file limit"), "{e}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"HF_TOKEN=hf_abc ok\n").unwrap();
        let small = redact_as(Captured::Log, &gz.finish().unwrap()).unwrap();
        assert_eq!(small, b"HF_TOKEN=[redacted] ok\n");
    }

    #[test]
    fn a_link_loop_ends() {
        let links: BTreeMap<String, String> =
            [("proc/1".to_string(), "../a".to_string()), ("a".into(), "proc/1".into())].into();
        assert_eq!(resolve_recorded("proc/1/environ", &links), None);
        assert_eq!(resolve_recorded("proc/2/../../x", &links).as_deref(), Some("x"));
    }

    #[test]
    fn link_containment() {
        assert!(link_stays_inside("sys/class/infiniband/efa_0", "../../devices/pci0000:00/x"));
        assert!(!link_stays_inside("sys/a", "../../../etc/passwd"));
        assert!(!link_stays_inside("sys/a", "/etc/passwd"));
        assert_eq!(relative_target("usr/lib/x", "/opt/y"), "../../opt/y");
        // Linux clamps `..` at `/`: so does the capture, and the loader takes the result.
        for (link, target, want) in [
            ("sys/a", "../../../etc/passwd", "../etc/passwd"),
            ("a", "../../x", "x"),
            ("usr/lib/x", "/../../opt/./y/", "../../opt/y"),
            ("sys/class/net/eth0", "../../../devices/x", "../../../devices/x"),
            ("sys/b", "/", ".."),
            ("c", "..", "."),
        ] {
            let t = relative_target(link, target);
            assert_eq!(t, want, "{link} -> {target}");
            assert!(link_stays_inside(link, &t), "{link} -> {t}");
        }
    }
}
