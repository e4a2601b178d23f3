//! `efa-doctor snapshot`: capture what the checks read, secrets redacted. A normal gathering
//! runs with a recorder on the [`Root`]; the recording and the manifest are written as a
//! gzipped tar that `root::snapshot::load` replays anywhere.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::check::{gather, open_dir_root, probe_request, require_pids};
use super::{UsageError, write_atomically};
use crate::facts::manifest::{CapturedNative, LiveFacts, Manifest, rfc3339};
use crate::facts::{self, Facts};
use crate::redact;
use crate::report::{self, exit};
use crate::root::snapshot::{MANIFEST_PATH, MAX_PATH_BYTES, MAX_PATH_DEPTH, MAX_SNAPSHOT_ENTRIES};
use crate::root::{MAX_FILE_BYTES, Recording};
use crate::{cli, commands};

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
        uverbs_opened_from: facts.host.uverbs_opened_from.clone(),
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
            process_libs: facts
                .processes
                .as_ref()
                .map(|ps| ps.processes.iter().map(|p| (p.pid, p.libs.clone())).collect()),
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

pub fn snapshot_cmd(a: &cli::SnapshotArgs) -> Result<i32> {
    let root = open_dir_root(a.root.as_deref())?.recording();
    let opts = facts::GatherOptions {
        progress: super::status::stderr_status(),
        sample: a.sample,
        pids: a.pids.clone(),
        probe: probe_request(a.no_probe),
        ..facts::GatherOptions::default()
    };
    let facts = gather(&root, opts)?;
    require_pids(&root, &a.pids, &facts)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let manifest = commands::snapshot::manifest_for(&facts, now, a.description.clone());
    let mut rec = root.take_recording();
    for (i, path) in a.logs.iter().enumerate() {
        let data = facts::logs::read_for_capture(path)
            .with_context(|| format!("cannot read --log {}", path.display()))?;
        let base =
            path.file_name().map_or_else(|| "log".into(), |n| n.to_string_lossy().into_owned());
        rec.files.insert(
            format!("{}/{i:02}-{base}", facts::logs::CAPTURED_LOG_DIR),
            std::sync::Arc::new(data),
        );
    }
    let (bytes, stats) = commands::snapshot::archive(rec, manifest, a.max_size)
        .map_err(|e| UsageError(format!("cannot capture: {e}")))?;
    write_atomically(&a.output, &bytes)?;
    let written = match commands::output::stdio_alias(&a.output) {
        Some(_) => "standard output".to_string(),
        None => a.output.display().to_string(),
    };
    // The paths are the user's and the root's: shown escaped like every other text.
    eprintln!(
        "{}",
        report::show_lines(&format!(
            "efa-doctor: wrote {written} ({} files, {} links, {} bytes of content, {} bytes compressed) from {}",
            stats.files,
            stats.links,
            stats.content_bytes,
            stats.archive_bytes,
            root.display()
        ))
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::snapshot::link_stays_inside;

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
