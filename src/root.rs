//! The one place that reads node data from a filesystem.
//!
//! Every fact about the node is read through a [`Root`]: the live `/`, a mounted host root
//! (`/host` in `kubectl debug node/...`), a plain directory tree (a fixture or an extracted
//! capture), or a snapshot archive held in memory. Paths given to a `Root` are relative
//! (`"proc/modules"`, `"sys/class/infiniband"`); symlinks are resolved *inside* the root, so
//! an absolute link in a captured tree can never lead to the machine doing the analysis.
//!
//! Nothing else in the crate may touch `std::fs` for node data; a test enforces that no
//! literal `/proc` or `/sys` path appears outside this module.
//!
//! A `Root` can record what it reads. `efa-doctor snapshot` runs the normal gathering with a
//! recorder attached and archives exactly the files, directory listings and links that the
//! checks used.

pub mod snapshot;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Largest file a `Root` reads. Larger files are refused so a hostile or corrupt tree (or a
/// runaway `/proc/PID/maps`) cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Largest one-value file ([`Root::read_value`]: a sysfs attribute or a `/proc/sys` value).
/// The kernel fills such a file from one page (at most 64 KiB, on arm64 with 64 KiB pages).
pub const MAX_VALUE_BYTES: u64 = 64 * 1024;

/// How long a read from a pipe the user named (`logs <(kubectl logs x)`) may wait for data
/// before it fails: a writer that neither writes nor closes must not hang the run.
pub const PIPE_IDLE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Symlink hops allowed while resolving one path (the kernel's own limit is 40).
const MAX_LINK_HOPS: usize = 40;

/// Where the node data comes from. Shown in every report so nobody mistakes a container's
/// view for the node's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RootKind {
    /// The running system, read at `/`. Live-only operations (syscalls, opening devices,
    /// loading the node's libraries) are allowed.
    Live,
    /// The node's root mounted somewhere else: `/host` in a container (`kubectl debug
    /// node/...`, the fleet DaemonSet), or any directory whose `proc` and `sys` are live
    /// procfs and sysfs mounts (a bind mount of `/`). Files are the node's; syscalls would
    /// describe this process. Native helpers run inside it (chroot, see `native`).
    HostMount,
    /// A plain directory tree: a fixture or an extracted capture.
    Directory,
    /// A snapshot archive made by `efa-doctor snapshot`, held in memory.
    Snapshot,
    /// No node root: `efa-doctor logs` judges logs alone.
    None,
}

impl RootKind {
    /// True when system calls made by this process describe the node being judged.
    pub fn is_live(self) -> bool {
        self == RootKind::Live
    }

    /// True when the node's own libraries can be run for this root: from this process
    /// (live) or from a helper executed inside the mounted root.
    pub fn runs_native(self) -> bool {
        matches!(self, RootKind::Live | RootKind::HostMount)
    }
}

/// Whether `dir` is a mounted live root: its `proc` is a procfs mount and its `sys` a sysfs
/// mount (statfs sees the mounted filesystem). A fixture or an extracted capture has plain
/// directories there, on whatever filesystem holds the tree.
pub fn is_mounted_live(dir: &Path) -> bool {
    use nix::sys::statfs::{PROC_SUPER_MAGIC, SYSFS_MAGIC, statfs};
    let fs_is =
        |sub: &str, magic| statfs(&dir.join(sub)).is_ok_and(|s| s.filesystem_type() == magic);
    fs_is("proc", PROC_SUPER_MAGIC) && fs_is("sys", SYSFS_MAGIC)
}

/// Why a read failed. `NotFound` is the common, expected case (an absent optional file),
/// and callers turn it into "unknown" or `skip`, never into a zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    NotFound,
    PermissionDenied,
    /// Over the read bound for its kind of file: `size` is what fstat (or the read) showed.
    TooLarge {
        size: u64,
        limit: u64,
    },
    NotADirectory,
    IsADirectory,
    /// Not a regular file: `fifo`, `socket`, `character device`, `block device`, or
    /// `symbolic link` (a link swapped in after the root resolved the path). Never opened
    /// for reading, so a planted FIFO cannot block the run.
    NotRegular(&'static str),
    LinkLoop,
    Io(String),
}

/// A failed read, with the path (relative to the root) it concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReadError {
    pub path: String,
    pub kind: ReadErrorKind,
}

impl fmt::Display for ReadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadErrorKind::NotFound => write!(f, "not found"),
            ReadErrorKind::PermissionDenied => write!(f, "permission denied"),
            ReadErrorKind::TooLarge { size, limit } => {
                write!(f, "larger than the {limit}-byte read limit ({size} bytes)")
            }
            ReadErrorKind::NotADirectory => write!(f, "not a directory"),
            ReadErrorKind::IsADirectory => write!(f, "is a directory"),
            ReadErrorKind::NotRegular(what) => {
                write!(f, "is a {what}, not a regular file: not read")
            }
            ReadErrorKind::LinkLoop => write!(f, "too many levels of symbolic links"),
            ReadErrorKind::Io(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

impl ReadError {
    pub(crate) fn new(path: &str, kind: ReadErrorKind) -> ReadError {
        ReadError { path: path.to_string(), kind }
    }

    fn from_io(path: &str, e: &std::io::Error) -> ReadError {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::NotFound => ReadErrorKind::NotFound,
            K::PermissionDenied => ReadErrorKind::PermissionDenied,
            K::NotADirectory => ReadErrorKind::NotADirectory,
            K::IsADirectory => ReadErrorKind::IsADirectory,
            _ if e.raw_os_error() == Some(nix::libc::ENOENT) => ReadErrorKind::NotFound,
            // ENODEV / ENXIO: a sysfs attribute whose device went away while we read it.
            _ if matches!(e.raw_os_error(), Some(nix::libc::ENODEV | nix::libc::ENXIO)) => {
                ReadErrorKind::NotFound
            }
            _ => ReadErrorKind::Io(e.to_string()),
        };
        ReadError::new(path, kind)
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ReadErrorKind::NotFound
    }

    pub fn is_permission_denied(&self) -> bool {
        self.kind == ReadErrorKind::PermissionDenied
    }
}

/// One entry of an in-memory tree (a snapshot).
#[derive(Debug, Clone)]
pub enum MemNode {
    File(Arc<Vec<u8>>),
    Dir,
    Symlink(String),
}

/// An in-memory filesystem tree, keyed by normalised relative path (`""` is the root).
#[derive(Debug, Default, Clone)]
pub struct MemTree {
    nodes: BTreeMap<String, MemNode>,
}

impl MemTree {
    pub fn new() -> MemTree {
        let mut nodes = BTreeMap::new();
        nodes.insert(String::new(), MemNode::Dir);
        MemTree { nodes }
    }

    /// Adds a node and every missing parent directory.
    pub fn insert(&mut self, path: &str, node: MemNode) {
        let path = normalise(path);
        let mut parent = parent_of(&path);
        while let Some(p) = parent {
            self.nodes.entry(p.to_string()).or_insert(MemNode::Dir);
            parent = parent_of(p);
        }
        self.nodes.insert(path, node);
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    fn get(&self, path: &str) -> Option<&MemNode> {
        self.nodes.get(path)
    }

    fn children(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
            })
            .collect()
    }
}

fn parent_of(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind('/').map_or("", |i| &path[..i]))
}

/// Normalises a relative path lexically: drops empty and `.` components and a leading `/`.
/// `..` is kept for the resolver, which clamps it at the root.
pub fn normalise(path: &str) -> String {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

/// What a [`Root`] saw, kept for `efa-doctor snapshot`.
#[derive(Debug, Default)]
pub struct Recording {
    pub files: BTreeMap<String, Arc<Vec<u8>>>,
    /// Directory listings: canonical path -> names.
    pub dirs: BTreeMap<String, Vec<String>>,
    pub links: BTreeMap<String, String>,
    /// Paths whose existence a gatherer tested: canonical path -> is a directory.
    pub present: BTreeMap<String, bool>,
}

#[derive(Debug, Clone)]
enum Backend {
    Dir(PathBuf),
    Mem(Arc<MemTree>),
}

#[derive(Debug, Clone)]
enum KnownNode {
    Dir,
    Link(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    File,
    /// A device node, fifo or socket (what it is): never opened.
    Special(&'static str),
    Dir,
    Link,
}

/// The node's filesystem, as seen by every gatherer.
pub struct Root {
    backend: Backend,
    kind: RootKind,
    display: String,
    note: Option<String>,
    /// Canonical form of directories already resolved; sysfs reads hit the same few
    /// directories thousands of times.
    dir_cache: Mutex<HashMap<String, String>>,
    /// Canonical paths already found to be a directory or a link (with its target): the
    /// links under `/sys/class` all lead through the same few `/sys/devices` directories,
    /// which would otherwise be looked up again for every link followed.
    node_cache: Mutex<HashMap<String, KnownNode>>,
    recording: Option<Mutex<Recording>>,
}

impl fmt::Debug for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Root").field("kind", &self.kind).field("display", &self.display).finish()
    }
}

impl Root {
    /// The running system.
    pub fn live() -> Root {
        Root::with_backend(Backend::Dir(PathBuf::from("/")), RootKind::Live, "/".into())
    }

    /// A directory tree: `kind` says whether it is a mounted host root or a plain tree.
    pub fn directory(path: &Path, kind: RootKind) -> Result<Root, ReadError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| ReadError::from_io(&shown, &e))?;
        if !meta.is_dir() {
            return Err(ReadError::new(&shown, ReadErrorKind::NotADirectory));
        }
        let base = std::fs::canonicalize(path).map_err(|e| ReadError::from_io(&shown, &e))?;
        ensure_listable(&base, &shown)?;
        let kind = if base == Path::new("/") {
            RootKind::Live
        } else if kind == RootKind::Directory && is_mounted_live(&base) {
            let note = format!(
                "{shown} has live procfs and sysfs mounts: judged as a mounted node root; its \
                 native libraries run in a helper chrooted into it"
            );
            return Ok(
                Root::with_backend(Backend::Dir(base), RootKind::HostMount, shown).with_note(note)
            );
        } else {
            kind
        };
        Ok(Root::with_backend(Backend::Dir(base), kind, shown))
    }

    /// A directory judged as `kind` regardless of where it is: for a chroot-like tree that
    /// stands for a live system (tests run the live code paths over such trees).
    pub fn directory_with_kind(path: &Path, kind: RootKind) -> Result<Root, ReadError> {
        let mut r = Root::directory(path, kind)?;
        r.kind = kind;
        Ok(r)
    }

    /// A tree held in memory (a loaded snapshot).
    pub fn memory(tree: MemTree, display: String) -> Root {
        Root::with_backend(Backend::Mem(Arc::new(tree)), RootKind::Snapshot, display)
    }

    fn with_backend(backend: Backend, kind: RootKind, display: String) -> Root {
        Root {
            backend,
            kind,
            display,
            note: None,
            dir_cache: Mutex::new(HashMap::new()),
            node_cache: Mutex::new(HashMap::new()),
            recording: None,
        }
    }

    /// Attaches a note shown with the root in reports (e.g. why `/host` was chosen).
    pub fn with_note(mut self, note: impl Into<String>) -> Root {
        self.note = Some(note.into());
        self
    }

    /// Starts recording every successful read, for `efa-doctor snapshot`.
    pub fn recording(mut self) -> Root {
        self.recording = Some(Mutex::new(Recording::default()));
        self
    }

    /// Takes what was recorded so far.
    pub fn take_recording(&self) -> Recording {
        self.recording
            .as_ref()
            .map(|r| std::mem::take(&mut *r.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
    }

    pub fn kind(&self) -> RootKind {
        self.kind
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The directory on this machine that holds a mounted host root: where a native helper
    /// chroots. `None` for other kinds.
    pub fn mounted_base(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Dir(base) if self.kind == RootKind::HostMount => Some(base),
            _ => None,
        }
    }

    /// The real path of `rel` on this machine, for operations that need one (opening a
    /// device node, loading a library). `None` for in-memory snapshots.
    pub fn host_path(&self, rel: &str) -> Option<PathBuf> {
        match &self.backend {
            Backend::Dir(base) => {
                let canon = self.resolve(rel, true).ok()?;
                Some(base.join(canon))
            }
            Backend::Mem(_) => None,
        }
    }

    /// Opens a device node read-write and closes it at once, as `ibv_open_device` would
    /// (this allocates nothing on the device; a verbs context needs a further ioctl).
    /// Only where it means something: on the live root it tells whether *this* process may
    /// use the device; on a mounted node root, whether this container (and so a helper
    /// chrooted from it) may. `None` for file trees and snapshots.
    pub fn try_open_device(&self, rel: &str) -> Option<Result<(), ReadError>> {
        use std::os::unix::fs::OpenOptionsExt;
        if !self.kind.runs_native() {
            return None;
        }
        let path = self.host_path(rel)?;
        // Only a character device is opened: a FIFO or file planted in its place is not.
        match std::fs::symlink_metadata(&path) {
            Ok(m) if std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()) => {}
            Ok(m) => {
                let what = special_type(&m.file_type()).unwrap_or("regular file");
                let why = format!("is a {what}, not a character device: not opened");
                return Some(Err(ReadError::new(rel, ReadErrorKind::Io(why))));
            }
            Err(e) => return Some(Err(ReadError::from_io(rel, &e))),
        }
        Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
                .open(&path)
                .map(drop)
                .map_err(|e| ReadError::from_io(rel, &e)),
        )
    }

    /// Reads a binary (a shared library) without recording it: snapshots keep what was
    /// derived from it in their manifest instead of megabytes of code. At most
    /// [`MAX_FILE_BYTES`].
    pub fn read_blob(&self, rel: &str) -> Result<Arc<Vec<u8>>, ReadError> {
        self.read_inner(rel, false, MAX_FILE_BYTES)
    }

    /// Reads a whole file (at most [`MAX_FILE_BYTES`]).
    pub fn read(&self, rel: &str) -> Result<Arc<Vec<u8>>, ReadError> {
        self.read_inner(rel, true, MAX_FILE_BYTES)
    }

    /// Records `data`, read earlier with [`Root::read_blob`], once the caller knows a
    /// snapshot needs it: the same bytes, not a second read.
    pub fn keep(&self, rel: &str, data: &Arc<Vec<u8>>) {
        if self.recording.is_some() {
            if let Ok(canon) = self.resolve(rel, true) {
                self.record(|r| {
                    r.files.insert(canon, data.clone());
                });
            }
        }
    }

    fn read_inner(&self, rel: &str, record: bool, limit: u64) -> Result<Arc<Vec<u8>>, ReadError> {
        let (canon, kind) = self.resolve_kind(rel)?;
        let data = match &self.backend {
            // The walk has just classified the node (lstat), so a device node is refused
            // before it is ever opened; `read_resolved_file` checks the opened file again.
            Backend::Dir(base) => match kind {
                NodeKind::Dir => return Err(ReadError::new(rel, ReadErrorKind::IsADirectory)),
                NodeKind::Special(what) => return Err(ReadError::new(rel, not_regular(what))),
                _ => Arc::new(read_resolved_file(&base.join(&canon), rel, limit)?),
            },
            Backend::Mem(tree) => match tree.get(&canon) {
                Some(MemNode::File(d)) if d.len() as u64 > limit => {
                    let size = d.len() as u64;
                    return Err(ReadError::new(rel, ReadErrorKind::TooLarge { size, limit }));
                }
                Some(MemNode::File(d)) => d.clone(),
                Some(MemNode::Dir) => {
                    return Err(ReadError::new(rel, ReadErrorKind::IsADirectory));
                }
                _ => return Err(ReadError::new(rel, ReadErrorKind::NotFound)),
            },
        };
        if record {
            self.record(|r| {
                r.files.insert(canon, data.clone());
            });
        }
        Ok(data)
    }

    /// Reads a file as text, replacing invalid UTF-8 (sysfs and procfs are ASCII; a binary
    /// file is still readable and simply fails to parse later).
    pub fn read_string(&self, rel: &str) -> Result<String, ReadError> {
        self.read(rel).map(|d| String::from_utf8_lossy(&d).into_owned())
    }

    /// Reads a one-value file (sysfs attribute, `/proc/sys` value) without its trailing
    /// newline; at most [`MAX_VALUE_BYTES`].
    pub fn read_value(&self, rel: &str) -> Result<String, ReadError> {
        self.read_inner(rel, true, MAX_VALUE_BYTES)
            .map(|d| String::from_utf8_lossy(&d).trim().to_string())
    }

    /// Names in a directory, sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<String>, ReadError> {
        let canon = self.resolve(rel, true)?;
        let names = match &self.backend {
            Backend::Dir(base) => read_dir_names(&base.join(&canon), rel)?,
            Backend::Mem(tree) => match tree.get(&canon) {
                Some(MemNode::Dir) => tree.children(&canon),
                Some(_) => return Err(ReadError::new(rel, ReadErrorKind::NotADirectory)),
                None => return Err(ReadError::new(rel, ReadErrorKind::NotFound)),
            },
        };
        Ok(self.record_listing(canon, names))
    }

    /// Sorts a listing and records it under `canon`.
    fn record_listing(&self, canon: String, mut names: Vec<String>) -> Vec<String> {
        names.sort();
        self.record(|r| {
            r.dirs.insert(canon, names.clone());
        });
        names
    }

    /// Lists `dir` as the process `pid` sees it (its own mount namespace, through the kernel's
    /// `/proc/PID/root` link), e.g. a container's NIXL_PLUGIN_DIR. Live and mounted roots let
    /// the kernel resolve that link; a snapshot holds the listing recorded at capture.
    pub fn list_in_process(&self, pid: u32, dir: &str) -> Result<Vec<String>, ReadError> {
        let rel = format!("proc/{pid}/root/{}", normalise(dir));
        match &self.backend {
            Backend::Dir(base) if matches!(self.kind, RootKind::Live | RootKind::HostMount) => {
                let names = read_dir_names(&base.join(&rel), &rel)?;
                Ok(self.record_listing(rel, names))
            }
            _ => self.list(&rel),
        }
    }

    /// `path` as process `pid` sees it: in its own filesystem (a container's files, not the
    /// host's of the same name). Live and mounted roots open the process's root directory
    /// (`/proc/PID/root`) and resolve `path` inside it, symlinks included, as that process
    /// would (`openat2` with `RESOLVE_IN_ROOT`); a directory or snapshot holds the files
    /// under `proc/PID/root/`.
    fn in_process(&self, pid: u32, path: &str) -> (String, Option<(PathBuf, String)>) {
        let inner = normalise(path);
        let rel = format!("proc/{pid}/root/{inner}");
        match &self.backend {
            Backend::Dir(base) if matches!(self.kind, RootKind::Live | RootKind::HostMount) => {
                (rel, Some((base.join(format!("proc/{pid}/root")), inner)))
            }
            _ => (rel, None),
        }
    }

    /// Reads a file in process `pid`'s own filesystem (see [`Root::in_process`]), unrecorded:
    /// libraries are large and snapshots keep what was derived from them instead.
    pub fn read_in_process(&self, pid: u32, path: &str) -> Result<Arc<Vec<u8>>, ReadError> {
        match self.in_process(pid, path) {
            (rel, Some((proc_root, inner))) => {
                let file =
                    open_in_root(&proc_root, &inner).map_err(|e| ReadError::from_io(&rel, &e))?;
                let meta = file.metadata().map_err(|e| ReadError::from_io(&rel, &e))?;
                if let Some(what) = special_type(&meta.file_type()) {
                    return Err(ReadError::new(&rel, not_regular(what)));
                }
                if meta.len() > MAX_FILE_BYTES {
                    let (size, limit) = (meta.len(), MAX_FILE_BYTES);
                    return Err(ReadError::new(&rel, ReadErrorKind::TooLarge { size, limit }));
                }
                let buf = read_at_most(file, meta.len(), MAX_FILE_BYTES)
                    .map_err(|e| ReadError::from_io(&rel, &e))?;
                Ok(Arc::new(buf))
            }
            (rel, None) => self.read_blob(&rel),
        }
    }

    /// Whether `path` exists in process `pid`'s own filesystem, unrecorded.
    pub fn exists_in_process(&self, pid: u32, path: &str) -> bool {
        match self.in_process(pid, path) {
            (_, Some((proc_root, inner))) => open_in_root(&proc_root, &inner).is_ok(),
            (rel, None) => {
                self.resolve(&rel, true).is_ok_and(|c| self.node_kind(&c).ok().flatten().is_some())
            }
        }
    }

    /// The targets of the symlinks in `dir` (a process's `fd/`), at most `max` of them;
    /// only those `keep` accepts are returned and recorded: the others (sockets, the
    /// worker's open files) are neither shown nor kept in a snapshot.
    pub fn links_in(
        &self,
        dir: &str,
        max: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, ReadError> {
        let canon = self.resolve(dir, true)?;
        let names = match &self.backend {
            Backend::Dir(base) => read_dir_names(&base.join(&canon), dir)?,
            Backend::Mem(tree) => match tree.get(&canon) {
                Some(MemNode::Dir) => tree.children(&canon),
                Some(_) => return Err(ReadError::new(dir, ReadErrorKind::NotADirectory)),
                None => return Err(ReadError::new(dir, ReadErrorKind::NotFound)),
            },
        };
        let mut kept = Vec::new();
        let mut shown = Vec::new();
        for name in names.iter().take(max) {
            let path = join(&canon, name);
            let Ok(raw) = self.raw_readlink(&path) else { continue };
            // A snapshot stores link targets relative to the link (see the capture's
            // `relative_target`); the kernel shows them absolute.
            let target = if raw.starts_with('/') || !raw.contains('/') {
                raw.clone()
            } else {
                absolute_from(&canon, &raw)
            };
            if keep(&target) {
                self.record(|r| {
                    r.links.insert(path.clone(), raw.clone());
                });
                shown.push(name.clone());
                kept.push(target);
            }
        }
        // The listing a snapshot keeps names only the kept links.
        self.record_listing(canon, shown);
        kept.sort();
        Ok(kept)
    }

    /// The target of a symlink, as stored.
    pub fn read_link(&self, rel: &str) -> Result<String, ReadError> {
        let norm = normalise(rel);
        let (dir, name) = split_last(&norm);
        let dir_canon = self.resolve(dir, true)?;
        let path = join(&dir_canon, name);
        let target = self.raw_readlink(&path).map_err(|mut e| {
            e.path = rel.to_string();
            e
        })?;
        self.record(|r| {
            r.links.insert(path, target.clone());
        });
        Ok(target)
    }

    /// Whether `rel` is a regular file, without opening it: for a path handed to something
    /// that opens it without these guards (`dlopen` in the native helper), where a FIFO
    /// would block and a device could be opened.
    pub fn regular_file(&self, rel: &str) -> Result<(), ReadError> {
        let canon = self.resolve(rel, true)?;
        match &self.backend {
            Backend::Dir(base) => {
                let m = std::fs::symlink_metadata(base.join(&canon))
                    .map_err(|e| ReadError::from_io(rel, &e))?;
                match special_type(&m.file_type()) {
                    None => Ok(()),
                    Some(what) => Err(ReadError::new(rel, not_regular(what))),
                }
            }
            Backend::Mem(tree) => match tree.get(&canon) {
                Some(MemNode::File(_)) => Ok(()),
                Some(_) => Err(ReadError::new(rel, ReadErrorKind::IsADirectory)),
                None => Err(ReadError::new(rel, ReadErrorKind::NotFound)),
            },
        }
    }

    /// The canonical path of `rel` inside the root, with every symlink resolved.
    pub fn canonical(&self, rel: &str) -> Result<String, ReadError> {
        self.resolve(rel, true)
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.kind_of(rel).is_some()
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.kind_of(rel) == Some(NodeKind::Dir)
    }

    /// Resolves and classifies `rel`, recording the answer so a snapshot reproduces it.
    fn kind_of(&self, rel: &str) -> Option<NodeKind> {
        let (canon, kind) = self.resolve_kind(rel).ok()?;
        self.record(|r| {
            r.present.insert(canon, kind == NodeKind::Dir);
        });
        Some(kind)
    }

    /// True when `rel` exists as anything, including a dangling symlink.
    pub fn exists_no_follow(&self, rel: &str) -> bool {
        let norm = normalise(rel);
        let (dir, name) = split_last(&norm);
        match self.resolve(dir, true) {
            Ok(d) => self.node_kind(&join(&d, name)).is_ok_and(|k| k.is_some()),
            Err(_) => false,
        }
    }

    fn record(&self, f: impl FnOnce(&mut Recording)) {
        if let Some(r) = &self.recording {
            f(&mut r.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// What `canon` is without following it: `Ok(None)` when it does not exist. Any other
    /// failure (EACCES on a directory above it) stays an error, so an unreadable tree is
    /// never mistaken for an absent one.
    fn node_kind(&self, canon: &str) -> Result<Option<NodeKind>, ReadError> {
        match &self.backend {
            Backend::Dir(base) => match std::fs::symlink_metadata(base.join(canon)) {
                Ok(m) => Ok(Some(if m.file_type().is_symlink() {
                    NodeKind::Link
                } else if m.is_dir() {
                    NodeKind::Dir
                } else if let Some(what) = special_type(&m.file_type()) {
                    NodeKind::Special(what)
                } else {
                    NodeKind::File
                })),
                Err(e) => {
                    let err = ReadError::from_io(canon, &e);
                    if err.is_not_found() { Ok(None) } else { Err(err) }
                }
            },
            Backend::Mem(tree) => Ok(tree.get(canon).map(|n| match n {
                MemNode::File(_) => NodeKind::File,
                MemNode::Dir => NodeKind::Dir,
                MemNode::Symlink(_) => NodeKind::Link,
            })),
        }
    }

    fn raw_readlink(&self, canon: &str) -> Result<String, ReadError> {
        match &self.backend {
            Backend::Dir(base) => std::fs::read_link(base.join(canon))
                .map(|t| t.to_string_lossy().into_owned())
                .map_err(|e| ReadError::from_io(canon, &e)),
            Backend::Mem(tree) => match tree.get(canon) {
                Some(MemNode::Symlink(t)) => Ok(t.clone()),
                Some(_) => Err(ReadError::new(canon, ReadErrorKind::Io("not a link".into()))),
                None => Err(ReadError::new(canon, ReadErrorKind::NotFound)),
            },
        }
    }

    /// Resolves `rel` to a canonical path inside the root, following symlinks the way the
    /// kernel does under `chroot`: absolute targets restart at the root and `..` never climbs
    /// above it.
    fn resolve(&self, rel: &str, follow_last: bool) -> Result<String, ReadError> {
        if follow_last {
            return self.resolve_kind(rel).map(|(canon, _)| canon);
        }
        let norm = normalise(rel);
        let (dir, name) = split_last(&norm);
        Ok(join(&self.canonical_dir(dir, rel)?, name))
    }

    /// [`Root::resolve`] following the last component, with what it is.
    fn resolve_kind(&self, rel: &str) -> Result<(String, NodeKind), ReadError> {
        let norm = normalise(rel);
        let (dir, name) = split_last(&norm);
        let dir_canon = self.canonical_dir(dir, rel)?;
        let mut hops = 0;
        self.walk(&dir_canon, name, rel, &mut hops)
    }

    /// The canonical form of directory `dir`, from its parent's (cached) canonical form plus
    /// one component: sibling paths share every ancestor, so each directory is looked up
    /// once per run instead of once per component of every path below it.
    fn canonical_dir(&self, dir: &str, shown: &str) -> Result<String, ReadError> {
        if dir.is_empty() {
            return Ok(String::new());
        }
        if let Some(c) = self.dir_cache.lock().ok().and_then(|c| c.get(dir).cloned()) {
            return Ok(c);
        }
        let (parent, name) = split_last(dir);
        let parent_canon = self.canonical_dir(parent, shown)?;
        let mut hops = 0;
        let (canon, _) = self.walk(&parent_canon, name, shown, &mut hops)?;
        if let Ok(mut cache) = self.dir_cache.lock() {
            cache.insert(dir.to_string(), canon.clone());
        }
        Ok(canon)
    }

    fn remember(&self, canon: &str, node: KnownNode) {
        if let Ok(mut cache) = self.node_cache.lock() {
            cache.insert(canon.to_string(), node);
        }
    }

    /// Walks `rest` starting at canonical directory `start`, to the canonical path and what
    /// it finally is: the walk has looked at it already, so a reader need not look again.
    fn walk(
        &self,
        start: &str,
        rest: &str,
        shown: &str,
        hops: &mut usize,
    ) -> Result<(String, NodeKind), ReadError> {
        let mut last = NodeKind::Dir;
        let mut current: Vec<String> = if start.is_empty() {
            Vec::new()
        } else {
            start.split('/').map(String::from).collect()
        };
        let mut pending: Vec<String> =
            rest.split('/').filter(|c| !c.is_empty() && *c != ".").map(String::from).collect();
        pending.reverse();
        while let Some(comp) = pending.pop() {
            if comp == ".." {
                current.pop();
                last = NodeKind::Dir;
                continue;
            }
            current.push(comp);
            let path = current.join("/");
            let known = self.node_cache.lock().ok().and_then(|c| c.get(&path).cloned());
            let kind = match &known {
                Some(KnownNode::Dir) => Some(NodeKind::Dir),
                Some(KnownNode::Link(_)) => Some(NodeKind::Link),
                None => self.node_kind(&path).map_err(|mut e| {
                    e.path = shown.to_string();
                    e
                })?,
            };
            if known.is_none() && kind == Some(NodeKind::Dir) {
                self.remember(&path, KnownNode::Dir);
            }
            match kind {
                Some(NodeKind::Link) => {
                    *hops += 1;
                    if *hops > MAX_LINK_HOPS {
                        return Err(ReadError::new(shown, ReadErrorKind::LinkLoop));
                    }
                    let target = match known {
                        Some(KnownNode::Link(t)) => t,
                        _ => {
                            let t = self.raw_readlink(&path)?;
                            self.record(|r| {
                                r.links.insert(path.clone(), t.clone());
                            });
                            self.remember(&path, KnownNode::Link(t.clone()));
                            t
                        }
                    };
                    current.pop();
                    if target.starts_with('/') {
                        current.clear();
                    }
                    for c in target.split('/').filter(|c| !c.is_empty() && *c != ".").rev() {
                        pending.push(c.to_string());
                    }
                }
                Some(NodeKind::Dir) => last = NodeKind::Dir,
                Some(k @ (NodeKind::File | NodeKind::Special(_))) => {
                    if !pending.is_empty() {
                        return Err(ReadError::new(shown, ReadErrorKind::NotADirectory));
                    }
                    last = k;
                }
                None => return Err(ReadError::new(shown, ReadErrorKind::NotFound)),
            }
        }
        Ok((current.join("/"), last))
    }
}

fn split_last(norm: &str) -> (&str, &str) {
    match norm.rfind('/') {
        Some(i) => (&norm[..i], &norm[i + 1..]),
        None => ("", norm),
    }
}

/// `path` with `.` and `..` resolved lexically, as an absolute path (`a/b/../c` is `/a/c`):
/// for comparing paths a program printed (NIXL prints plugins as `nixl_cu13/../...`).
pub fn lexical(path: &str) -> String {
    absolute_from("", path)
}

/// `target`, relative to the directory `dir` (root-relative), as an absolute path: `..`
/// stops at the root.
fn absolute_from(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

/// The names in a directory (unsorted), skipping names that are not UTF-8.
fn read_dir_names(path: &Path, shown: &str) -> Result<Vec<String>, ReadError> {
    // opendir(3) opens with O_DIRECTORY: a FIFO here fails with ENOTDIR, it never blocks.
    let rd = std::fs::read_dir(path).map_err(|e| ReadError::from_io(shown, &e))?;
    Ok(rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
}

// One way to open an input. Every file efa-doctor reads, node file or user file, is opened
// with O_RDONLY|O_NONBLOCK|O_CLOEXEC (and O_NOFOLLOW where the path must not be a link) and
// then fstat'ed: opening a FIFO without O_NONBLOCK blocks until a writer appears, and a read
// from one blocks until it writes, so a FIFO planted anywhere would hang the run. Only
// regular files are read (procfs and sysfs attributes are regular files); a pipe is read
// only when the user named it, with an idle deadline.

/// The name of a file type, for messages; `None` for a regular file.
fn special_type(ft: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("directory")
    } else if ft.is_fifo() {
        Some("fifo")
    } else if ft.is_socket() {
        Some("socket")
    } else if ft.is_char_device() {
        Some("character device")
    } else if ft.is_block_device() {
        Some("block device")
    } else if ft.is_symlink() {
        Some("symbolic link")
    } else {
        Some("special file")
    }
}

/// `open(path, O_RDONLY|O_NONBLOCK|O_CLOEXEC[|O_NOFOLLOW])` (std adds O_CLOEXEC).
fn open_nonblocking(path: &Path, no_follow: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = nix::libc::O_NONBLOCK;
    if no_follow {
        flags |= nix::libc::O_NOFOLLOW;
    }
    std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path)
}

/// Reads at most `limit + 1` bytes, so the caller can tell "over the bound" from "exactly
/// at it". procfs and sysfs report a size of 0 or one page whatever they hold, so the bound,
/// not fstat's size, is what stops the read; the size only sizes the buffer.
fn read_at_most(file: impl Read, size_hint: u64, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(size_hint.min(limit) as usize);
    file.take(limit + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Set once `openat2(2)` turned out to be missing (kernel < 5.6) or filtered (a seccomp
/// profile that predates it), so later opens go straight to the fallback.
static NO_OPENAT2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Opens a node file by its absolute, fully resolved path (the root's canonical base joined
/// with a canonical path: no component is a link). With `openat2(RESOLVE_NO_SYMLINKS)` a link
/// swapped into *any* component since the root resolved it is refused; without openat2,
/// O_NOFOLLOW still refuses one in the last component.
fn open_resolved(path: &Path) -> std::io::Result<std::fs::File> {
    use nix::fcntl::{AT_FDCWD, OFlag, OpenHow, ResolveFlag, openat2};
    use std::sync::atomic::Ordering;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(AT_FDCWD, path, how) {
            Ok(fd) => return Ok(std::fs::File::from(fd)),
            Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
    }
    open_nonblocking(path, true)
}

/// Opens `inner` inside the directory `root_dir` (a process's `/proc/PID/root`) as if
/// `root_dir` were `/`: absolute symlinks and `..` stay inside it, magic links are refused
/// (`openat2` `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`). Without openat2 (kernel < 5.6)
/// nothing is opened: a plain open would resolve a container's absolute symlinks on the
/// host.
fn open_in_root(root_dir: &Path, inner: &str) -> std::io::Result<std::fs::File> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
    use std::os::fd::AsFd;
    let dir = open(
        root_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let target = if inner.is_empty() { "." } else { inner };
    let how = |flags: OFlag| {
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    // O_PATH first: a device node is never really opened (opening some has side effects).
    let path = std::fs::File::from(openat2(dir.as_fd(), target, how(OFlag::O_PATH))?);
    if !path.metadata()?.is_file() {
        return Ok(path);
    }
    let fd = openat2(dir.as_fd(), target, how(OFlag::O_RDONLY | OFlag::O_NONBLOCK))?;
    Ok(std::fs::File::from(fd))
}

/// Reads the node file at `path` (see [`open_resolved`]) once the caller's walk has
/// classified it as a regular file (lstat), so a device node is never opened at all
/// (opening some has side effects). The opened file is checked again: a node swapped in
/// since is refused, not read. At most `limit` bytes.
fn read_resolved_file(path: &Path, shown: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_resolved(path).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::ELOOP) {
            ReadError::new(shown, ReadErrorKind::NotRegular("symbolic link"))
        } else {
            ReadError::from_io(shown, &e)
        }
    })?;
    let meta = file.metadata().map_err(|e| ReadError::from_io(shown, &e))?;
    if let Some(what) = special_type(&meta.file_type()) {
        return Err(ReadError::new(shown, not_regular(what)));
    }
    if meta.len() > limit {
        return Err(ReadError::new(shown, ReadErrorKind::TooLarge { size: meta.len(), limit }));
    }
    let buf = read_at_most(file, meta.len(), limit).map_err(|e| ReadError::from_io(shown, &e))?;
    if buf.len() as u64 > limit {
        return Err(ReadError::new(
            shown,
            ReadErrorKind::TooLarge { size: buf.len() as u64, limit },
        ));
    }
    Ok(buf)
}

fn not_regular(what: &'static str) -> ReadErrorKind {
    if what == "directory" { ReadErrorKind::IsADirectory } else { ReadErrorKind::NotRegular(what) }
}

/// Refuses a directory root this process cannot list, or whose `proc` or `sys` it cannot
/// list: every read would fail and the run would read as an empty node ("not found",
/// everything skipped, exit 0) instead of saying why.
fn ensure_listable(base: &Path, shown: &str) -> Result<(), ReadError> {
    std::fs::read_dir(base).map_err(|e| ReadError::from_io(shown, &e))?;
    for top in ["proc", "sys"] {
        let p = base.join(top);
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        // A link is the root's to resolve; an absent directory is a partial tree, not an error.
        if m.file_type().is_symlink() {
            continue;
        }
        let what = format!("{}/{top}", shown.trim_end_matches('/'));
        if !m.is_dir() {
            return Err(ReadError::new(&what, ReadErrorKind::NotADirectory));
        }
        std::fs::read_dir(&p).map_err(|e| ReadError::from_io(&what, &e))?;
    }
    Ok(())
}

fn refused(what: &str, accepted: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("is a {what}, not {accepted}: not read"),
    )
}

fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than the {limit}-byte read limit"),
    )
}

/// A file the *user* named on the command line (a log, a snapshot, a metrics file), open for
/// streaming: a regular file, or a pipe the user named on purpose (`logs <(kubectl logs x)`
/// gives `/dev/fd/63`). Reads from a pipe wait at most [`PIPE_IDLE_DEADLINE`] for data; a
/// pipe that ends before any data (a FIFO with no writer) is an error, not an empty log.
#[derive(Debug)]
pub struct UserFile {
    file: std::fs::File,
    pipe: bool,
    got_data: bool,
    /// Standard input, whose blocking mode is the shell's (see `read_pipe`).
    blocking: bool,
}

impl UserFile {
    /// The file itself when it is a regular file (it can be memory-mapped); `None` for a pipe.
    pub fn regular(&self) -> Option<&std::fs::File> {
        (!self.pipe).then_some(&self.file)
    }

    pub fn is_pipe(&self) -> bool {
        self.pipe
    }

    /// Waits until the pipe has data (or its end), at most until `deadline`.
    fn wait_readable(&self, deadline: std::time::Instant) -> std::io::Result<()> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no data from the pipe for {} s", PIPE_IDLE_DEADLINE.as_secs()),
                    ));
                }
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads what the pipe has, waiting for data at most [`PIPE_IDLE_DEADLINE`]. A pipe
    /// efa-doctor opened is non-blocking and read first: a FIFO that never had a writer reads
    /// as its end at once, where poll(2) would wait. Standard input keeps the shell's flags,
    /// blocking ones included, so it is polled before each read for the deadline to hold.
    fn read_pipe(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let deadline = std::time::Instant::now() + PIPE_IDLE_DEADLINE;
        loop {
            if self.blocking {
                self.wait_readable(deadline)?;
            }
            match self.file.read(buf) {
                Ok(0) if !self.got_data && !buf.is_empty() => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "a pipe that ended without any data (a FIFO with no writer?)",
                    ));
                }
                Ok(n) => {
                    self.got_data |= n > 0;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.wait_readable(deadline)?
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for UserFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pipe { self.read_pipe(buf) } else { self.file.read(buf) }
    }
}

/// Opens a user-named file for streaming (see [`UserFile`]). Links are followed (the user
/// named the path; `/dev/fd/N` is one). Devices, sockets and directories are refused, and a
/// device node is refused before it is opened.
pub fn open_user_file(path: &Path) -> std::io::Result<UserFile> {
    const ACCEPTED: &str = "a regular file or a pipe";
    let pre = std::fs::metadata(path)?;
    if !(pre.is_file() || std::os::unix::fs::FileTypeExt::is_fifo(&pre.file_type())) {
        return Err(refused(special_type(&pre.file_type()).unwrap_or("file"), ACCEPTED));
    }
    let file = open_nonblocking(path, false)?;
    let ft = file.metadata()?.file_type();
    match special_type(&ft) {
        None => Ok(UserFile { file, pipe: false, got_data: false, blocking: false }),
        Some("fifo") => Ok(UserFile { file, pipe: true, got_data: false, blocking: false }),
        Some(what) => Err(refused(what, ACCEPTED)),
    }
}

/// Standard input, as a file the user named `-`: a regular file (`< node.tar.gz`) or a pipe
/// (`kubectl exec ... | efa-doctor --snapshot -`), read as [`open_user_file`] reads them. A
/// terminal or any other device is refused. The descriptor is duplicated, not reopened, and
/// its flags are left alone: they are shared with the shell.
pub fn open_stdin() -> std::io::Result<UserFile> {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "standard input is a terminal: redirect or pipe the file into it",
        ));
    }
    let file = std::fs::File::from(stdin.as_fd().try_clone_to_owned()?);
    match special_type(&file.metadata()?.file_type()) {
        None => Ok(UserFile { file, pipe: false, got_data: false, blocking: true }),
        Some("fifo") => Ok(UserFile { file, pipe: true, got_data: false, blocking: true }),
        Some(what) => Err(refused(what, "a regular file or a pipe")),
    }
}

/// Reads a file the *user* named on the command line (e.g. `snapshot --log FILE`), at most
/// [`MAX_FILE_BYTES`]. These are not node data, so they are read as given and never
/// re-rooted; a pipe is read as in [`open_user_file`].
pub fn read_user_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = open_user_file(path)?;
    let size = file.regular().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
    if size > MAX_FILE_BYTES {
        return Err(too_large(MAX_FILE_BYTES));
    }
    let buf = read_at_most(file, size, MAX_FILE_BYTES)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(MAX_FILE_BYTES));
    }
    Ok(buf)
}

/// Reads a file found inside a directory the user named (a `--rules DIR` entry): nobody
/// named this file, so only a regular file is read (a FIFO or device there is refused), at
/// most `limit` bytes (the caller's bound for that kind of file). Links are followed (a Kubernetes ConfigMap volume is links).
pub fn read_user_dir_entry(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    const ACCEPTED: &str = "a regular file";
    let pre = std::fs::metadata(path)?;
    if let Some(what) = special_type(&pre.file_type()) {
        return Err(refused(what, ACCEPTED));
    }
    let file = open_nonblocking(path, false)?;
    let meta = file.metadata()?;
    if let Some(what) = special_type(&meta.file_type()) {
        return Err(refused(what, ACCEPTED));
    }
    if meta.len() > limit {
        return Err(too_large(limit));
    }
    let buf = read_at_most(file, meta.len(), limit)?;
    if buf.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(buf)
}

/// Lists a user-named directory (a `--rules DIR`), sorted.
pub fn list_user_dir(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    Ok(v)
}

/// Appends `line` to a trace file the user named (`EFA_DOCTOR_TRACE_HELPERS`): never through
/// a symbolic link; failing to write it changes nothing. It lives here, at the bottom, since
/// the native layer writes it; it is a file the user named, never node data.
pub fn append_trace_line(path: &Path, line: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path);
    if let Ok(mut f) = opened {
        // One write(2) per line: helpers start concurrently, and O_APPEND keeps a single
        // write whole, where `writeln!` writes the line and its newline separately.
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// Where the live system keeps things this crate must reach on the running machine itself
/// (not through a `Root`): used only by live-only code paths.
pub mod live {
    /// Directory of the host root inside a `kubectl debug node/...` container.
    pub const HOST_MOUNT: &str = "/host";
    /// procfs of the running system.
    pub const PROC: &str = "/proc";
    /// The running process's own executable, used to start native helper processes.
    pub const SELF_EXE: &str = "/proc/self/exe";
}

/// Decides which root to judge when the user gave no `--root`: inside a container that has
/// the node's root mounted at `/host`, judge `/host` and say so; otherwise judge `/`.
pub fn auto_root() -> Root {
    let host = Path::new(live::HOST_MOUNT);
    let looks_like_host_root = ["proc", "sys", "etc", "usr"].iter().all(|d| host.join(d).is_dir());
    if looks_like_host_root && in_container() {
        if let Ok(r) = Root::directory(host, RootKind::HostMount) {
            return r.with_note(
                "running in a container with the node's root at /host: judging the node, not \
                 the container (pass --root / to judge the container instead)",
            );
        }
    }
    let r = Root::live();
    if in_container() {
        r.with_note(
            "running in a container without the node's root at /host: results describe this \
             container's view of the node",
        )
    } else {
        r
    }
}

/// Heuristics for "the process that sees this root runs in a container": the runtime
/// marker files, a Kubernetes service-account mount, an overlay root filesystem, or a
/// container cgroup for PID 1. Read through the root, so a snapshot replays them.
pub fn container_clues(root: &Root) -> Vec<String> {
    let mut clues = Vec::new();
    for marker in
        [".dockerenv", "run/.containerenv", "var/run/secrets/kubernetes.io/serviceaccount"]
    {
        if root.exists(marker) {
            clues.push(format!("/{marker} exists"));
        }
    }
    if let Ok(cg) = root.read_string("proc/1/cgroup") {
        if let Some(k) =
            ["kubepods", "docker", "containerd", "libpod"].iter().find(|k| cg.contains(*k))
        {
            clues.push(format!("PID 1 is in a {k} cgroup"));
        }
    }
    if let Ok(m) = root.read_string("proc/self/mounts") {
        if m.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && f[1] == "/" && f[2] == "overlay"
        }) {
            clues.push("the root filesystem is an overlay mount".into());
        }
    }
    clues
}

fn in_container() -> bool {
    !container_clues(&Root::live()).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("sys/devices/pci0000:00/0000:00:06.0/infiniband/efa_0"))
            .unwrap();
        std::fs::write(
            p.join("sys/devices/pci0000:00/0000:00:06.0/infiniband/efa_0/node_guid"),
            "0000:0000:0000:0001\n",
        )
        .unwrap();
        std::fs::create_dir_all(p.join("sys/class/infiniband")).unwrap();
        symlink(
            "../../devices/pci0000:00/0000:00:06.0/infiniband/efa_0",
            p.join("sys/class/infiniband/efa_0"),
        )
        .unwrap();
        // An absolute link must stay inside the root.
        std::fs::create_dir_all(p.join("etc")).unwrap();
        symlink("/sys/class/infiniband", p.join("etc/ib")).unwrap();
        symlink("../../../../../../etc/passwd", p.join("etc/escape")).unwrap();
        symlink("loop2", p.join("etc/loop1")).unwrap();
        symlink("loop1", p.join("etc/loop2")).unwrap();
        let r = Root::directory(p, RootKind::Directory).unwrap();
        (d, r)
    }

    #[test]
    fn resolves_relative_and_absolute_links_inside_root() {
        let (_d, r) = tree();
        assert_eq!(
            r.read_value("sys/class/infiniband/efa_0/node_guid").unwrap(),
            "0000:0000:0000:0001"
        );
        assert_eq!(r.read_value("/etc/ib/efa_0/node_guid").unwrap(), "0000:0000:0000:0001");
        assert_eq!(
            r.canonical("sys/class/infiniband/efa_0").unwrap(),
            "sys/devices/pci0000:00/0000:00:06.0/infiniband/efa_0"
        );
    }

    #[test]
    fn cached_lookups_give_the_first_answers() {
        // The second pass is served from the directory and link caches: the same canonical
        // paths, the same refusals.
        let (_d, r) = tree();
        for _ in 0..2 {
            assert_eq!(
                r.canonical("etc/ib/efa_0").unwrap(),
                "sys/devices/pci0000:00/0000:00:06.0/infiniband/efa_0"
            );
            assert_eq!(r.read_value("etc/ib/efa_0/node_guid").unwrap(), "0000:0000:0000:0001");
            assert!(r.is_dir("sys/class/infiniband/efa_0"));
            assert!(!r.is_dir("sys/class/infiniband/efa_0/node_guid"));
            assert_eq!(r.read("etc/loop1").unwrap_err().kind, ReadErrorKind::LinkLoop);
            assert_eq!(r.read("etc/ib").unwrap_err().kind, ReadErrorKind::IsADirectory);
        }
    }

    #[test]
    fn never_escapes_the_root() {
        let (_d, r) = tree();
        // `..` clamps at the root, so this resolves to <root>/etc/passwd, which is absent.
        assert!(r.read("etc/escape").unwrap_err().is_not_found());
        assert_eq!(r.read("etc/loop1").unwrap_err().kind, ReadErrorKind::LinkLoop);
    }

    #[test]
    fn records_what_was_read() {
        let (_d, r) = tree();
        let r = r.recording();
        r.read("sys/class/infiniband/efa_0/node_guid").unwrap();
        let rec = r.take_recording();
        assert!(rec.links.contains_key("sys/class/infiniband/efa_0"));
        assert!(
            rec.files
                .contains_key("sys/devices/pci0000:00/0000:00:06.0/infiniband/efa_0/node_guid")
        );
    }

    #[test]
    fn only_regular_files_are_read_and_each_kind_has_its_bound() {
        let (d, r) = tree();
        let p = d.path();
        nix::unistd::mkfifo(&p.join("etc/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o644))
            .unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(p.join("etc/sock")).unwrap();
        assert_eq!(r.read("etc/fifo").unwrap_err().kind, ReadErrorKind::NotRegular("fifo"));
        assert_eq!(r.read_value("etc/sock").unwrap_err().kind, ReadErrorKind::NotRegular("socket"));
        assert_eq!(r.read("etc").unwrap_err().kind, ReadErrorKind::IsADirectory);
        assert!(r.read("etc/fifo").unwrap_err().to_string().contains("etc/fifo: is a fifo"));
        assert!(r.regular_file("etc/fifo").is_err());
        assert!(r.regular_file("sys/class/infiniband/efa_0/node_guid").is_ok());
        // A one-value attribute is bounded by a page; the same file read whole is not.
        std::fs::write(p.join("etc/big"), vec![b'1'; MAX_VALUE_BYTES as usize + 1]).unwrap();
        let limit = MAX_VALUE_BYTES;
        let size = limit + 1;
        assert_eq!(
            r.read_value("etc/big").unwrap_err().kind,
            ReadErrorKind::TooLarge { size, limit }
        );
        assert_eq!(r.read("etc/big").unwrap().len() as u64, size);
        let mut t = MemTree::new();
        t.insert("big", MemNode::File(Arc::new(vec![b'1'; size as usize])));
        let m = Root::memory(t, "mem".into());
        assert_eq!(m.read_value("big").unwrap_err().kind, ReadErrorKind::TooLarge { size, limit });
    }

    #[test]
    fn the_final_open_never_follows_a_link_or_blocks() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        // No writer: a blocking open would wait forever; this one returns at once.
        let (tx, rx) = std::sync::mpsc::channel();
        let f2 = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_nonblocking(&f2, true).map(|f| f.metadata().unwrap().file_type()));
        });
        let ft = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("open blocked");
        assert_eq!(special_type(&ft.unwrap()), Some("fifo"));
        // A link swapped in for the final component is refused (ELOOP), not followed.
        symlink(&fifo, d.path().join("link")).unwrap();
        let e = open_nonblocking(&d.path().join("link"), true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::ELOOP));
    }

    #[test]
    fn a_link_swapped_into_a_resolved_path_is_refused() {
        // What a resolved path looks like after a user swaps a directory of it for a link
        // (between the root's resolution and the open): the open must not follow it.
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir(base.join("elsewhere")).unwrap();
        std::fs::write(base.join("elsewhere/_api.py"), "secret").unwrap();
        symlink(base.join("elsewhere"), base.join("venv")).unwrap();
        let e = read_resolved_file(&base.join("venv/_api.py"), "venv/_api.py", 100).unwrap_err();
        if !NO_OPENAT2.load(std::sync::atomic::Ordering::Relaxed) {
            assert_eq!(e.kind, ReadErrorKind::NotRegular("symbolic link"));
        }
    }

    #[test]
    fn user_inputs_refuse_devices_and_entries_that_are_not_files() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("x.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = read_user_dir_entry(&fifo, 1024).unwrap_err();
        assert!(e.to_string().contains("is a fifo, not a regular file"), "{e}");
        let e = read_user_file(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        // A named FIFO with no writer: an error at the first read, never a hang.
        let mut f = open_user_file(&fifo).unwrap();
        assert!(f.is_pipe());
        let e = f.read(&mut [0u8; 16]).unwrap_err();
        assert!(e.to_string().contains("no writer"), "{e}");
        std::fs::write(d.path().join("r.toml"), "x").unwrap();
        assert_eq!(read_user_dir_entry(&d.path().join("r.toml"), 1024).unwrap(), b"x");
    }

    #[test]
    fn only_a_character_device_is_opened_as_a_device() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("dev/infiniband")).unwrap();
        let fifo = d.path().join("dev/infiniband/uverbs0");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        let r = Root::directory_with_kind(d.path(), RootKind::Live).unwrap();
        let e = r.try_open_device("dev/infiniband/uverbs0").unwrap().unwrap_err();
        assert!(e.to_string().contains("is a fifo, not a character device"), "{e}");
        // A mounted node root is tried too (the container's own access); a tree is not.
        let r = Root::directory_with_kind(d.path(), RootKind::HostMount).unwrap();
        assert!(r.try_open_device("dev/infiniband/uverbs0").unwrap().is_err());
        let r = Root::directory_with_kind(d.path(), RootKind::Directory).unwrap();
        assert!(r.try_open_device("dev/infiniband/uverbs0").is_none());
    }

    #[test]
    fn memory_tree_behaves_like_a_directory() {
        let mut t = MemTree::new();
        t.insert("sys/devices/x/attr", MemNode::File(Arc::new(b"1\n".to_vec())));
        t.insert("sys/class/c/x", MemNode::Symlink("../../devices/x".into()));
        let r = Root::memory(t, "mem".into());
        assert_eq!(r.read_value("sys/class/c/x/attr").unwrap(), "1");
        assert_eq!(r.list("sys/class/c").unwrap(), vec!["x".to_string()]);
        assert_eq!(r.list("sys/devices/x").unwrap(), vec!["attr".to_string()]);
        assert!(r.read("nope").unwrap_err().is_not_found());
    }
}
