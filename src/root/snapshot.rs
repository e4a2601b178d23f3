//! Snapshots, loaded: a gzipped tar of a sysroot tree (the files, directory listings and
//! links the gatherers read, plus `.efa-doctor/manifest.json`) becomes an in-memory [`Root`].
//! Extracted, a snapshot is a valid `--root` directory; fixtures under `tests/fixtures/` use
//! the same layout. The manifest's content is read by `facts::manifest`; the archive is
//! written by `commands::snapshot`.
//!
//! A snapshot is untrusted input when loaded: absolute paths, `..`, links that leave the
//! tree, hard links, device files, oversized files and corrupt archives are rejected with a
//! clear error, and the whole archive is held in memory within fixed bounds.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::root::{MAX_FILE_BYTES, MemNode, MemTree, Root};

/// Where the manifest lives inside a captured tree.
pub const MANIFEST_PATH: &str = ".efa-doctor/manifest.json";

/// Largest archive content efa-doctor accepts, decompressed.
pub const MAX_SNAPSHOT_BYTES: u64 = 512 * 1024 * 1024;
/// Most entries a snapshot may hold.
pub const MAX_SNAPSHOT_ENTRIES: usize = 500_000;

/// Why a snapshot was refused.
#[derive(Debug, thiserror::Error)]
#[error("snapshot {file}: {reason}")]
pub struct SnapshotError {
    pub file: String,
    pub reason: String,
}

/// True when a relative link at `link` pointing at `target` stays inside the tree.
pub(crate) fn link_stays_inside(link: &str, target: &str) -> bool {
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

/// What a snapshot read from standard input (`--snapshot -`) is called in the report.
pub const STDIN_NAME: &str = "<stdin>";

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
    let from_stdin = path == Path::new("-");
    let shown = if from_stdin { STDIN_NAME.to_string() } else { path.display().to_string() };
    let fail = |reason: String| SnapshotError { file: shown.clone(), reason };
    let file =
        if from_stdin { crate::root::open_stdin() } else { crate::root::open_user_file(path) }
            .map_err(|e| fail(format!("cannot open: {e}")))?;
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
