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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Largest file a `Root` reads. Larger files are refused so a hostile or corrupt tree (or a
/// runaway `/proc/PID/maps`) cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Symlink hops allowed while resolving one path (the kernel's own limit is 40).
const MAX_LINK_HOPS: usize = 40;

/// Where the node data comes from. Shown in every report so nobody mistakes a container's
/// view for the node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootKind {
    /// The running system, read at `/`. Live-only operations (syscalls, opening devices,
    /// loading the node's libraries) are allowed.
    Live,
    /// The host's root mounted into a container (`kubectl debug node/...` mounts it at
    /// `/host`). Files are the node's; syscalls would describe the container.
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
}

/// Why a read failed. `NotFound` is the common, expected case (an absent optional file),
/// and callers turn it into "unknown" or `skip`, never into a zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    NotFound,
    PermissionDenied,
    TooLarge(u64),
    NotADirectory,
    IsADirectory,
    LinkLoop,
    Io(String),
}

/// A failed read, with the path (relative to the root) it concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReadError {
    pub path: String,
    pub kind: ReadErrorKind,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.path;
        match &self.kind {
            ReadErrorKind::NotFound => write!(f, "{p}: not found"),
            ReadErrorKind::PermissionDenied => write!(f, "{p}: permission denied"),
            ReadErrorKind::TooLarge(n) => {
                write!(f, "{p}: larger than the {MAX_FILE_BYTES}-byte read limit ({n} bytes)")
            }
            ReadErrorKind::NotADirectory => write!(f, "{p}: not a directory"),
            ReadErrorKind::IsADirectory => write!(f, "{p}: is a directory"),
            ReadErrorKind::LinkLoop => write!(f, "{p}: too many levels of symbolic links"),
            ReadErrorKind::Io(e) => write!(f, "{p}: {e}"),
        }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    File,
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
        let kind = if base == Path::new("/") { RootKind::Live } else { kind };
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
    /// Only on the live root, where it tells whether *this* process may use the device;
    /// `None` elsewhere.
    pub fn try_open_device(&self, rel: &str) -> Option<Result<(), ReadError>> {
        if !self.kind.is_live() {
            return None;
        }
        let path = self.host_path(rel)?;
        Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map(drop)
                .map_err(|e| ReadError::from_io(rel, &e)),
        )
    }

    /// Reads a binary (a shared library) without recording it: snapshots keep what was
    /// derived from it in their manifest instead of megabytes of code.
    pub fn read_blob(&self, rel: &str) -> Result<Arc<Vec<u8>>, ReadError> {
        self.read_inner(rel, false)
    }

    /// Reads a whole file (at most [`MAX_FILE_BYTES`]).
    pub fn read(&self, rel: &str) -> Result<Arc<Vec<u8>>, ReadError> {
        self.read_inner(rel, true)
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

    fn read_inner(&self, rel: &str, record: bool) -> Result<Arc<Vec<u8>>, ReadError> {
        let canon = self.resolve(rel, true)?;
        let data = match &self.backend {
            Backend::Dir(base) => Arc::new(read_bounded(&base.join(&canon), rel)?),
            Backend::Mem(tree) => match tree.get(&canon) {
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

    /// Reads a one-value file (sysfs attribute) without its trailing newline.
    pub fn read_value(&self, rel: &str) -> Result<String, ReadError> {
        self.read_string(rel).map(|s| s.trim().to_string())
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
        let canon = self.resolve(rel, true).ok()?;
        let kind = self.node_kind(&canon)?;
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
            Ok(d) => self.node_kind(&join(&d, name)).is_some(),
            Err(_) => false,
        }
    }

    fn record(&self, f: impl FnOnce(&mut Recording)) {
        if let Some(r) = &self.recording {
            f(&mut r.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    fn node_kind(&self, canon: &str) -> Option<NodeKind> {
        match &self.backend {
            Backend::Dir(base) => {
                let m = std::fs::symlink_metadata(base.join(canon)).ok()?;
                Some(if m.file_type().is_symlink() {
                    NodeKind::Link
                } else if m.is_dir() {
                    NodeKind::Dir
                } else {
                    NodeKind::File
                })
            }
            Backend::Mem(tree) => tree.get(canon).map(|n| match n {
                MemNode::File(_) => NodeKind::File,
                MemNode::Dir => NodeKind::Dir,
                MemNode::Symlink(_) => NodeKind::Link,
            }),
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
        let norm = normalise(rel);
        if norm.is_empty() {
            return Ok(String::new());
        }
        let (dir, name) = split_last(&norm);
        let dir_canon = {
            let cached = self.dir_cache.lock().ok().and_then(|c| c.get(dir).cloned());
            match cached {
                Some(c) => c,
                None => {
                    let c = self.resolve_uncached(dir, rel)?;
                    if let Ok(mut cache) = self.dir_cache.lock() {
                        cache.insert(dir.to_string(), c.clone());
                    }
                    c
                }
            }
        };
        if !follow_last {
            return Ok(join(&dir_canon, name));
        }
        let mut hops = 0;
        self.walk(&dir_canon, name, rel, &mut hops)
    }

    fn resolve_uncached(&self, path: &str, shown: &str) -> Result<String, ReadError> {
        let mut hops = 0;
        self.walk("", path, shown, &mut hops)
    }

    /// Walks `rest` starting at canonical directory `start`.
    fn walk(
        &self,
        start: &str,
        rest: &str,
        shown: &str,
        hops: &mut usize,
    ) -> Result<String, ReadError> {
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
                continue;
            }
            current.push(comp);
            let path = current.join("/");
            match self.node_kind(&path) {
                Some(NodeKind::Link) => {
                    *hops += 1;
                    if *hops > MAX_LINK_HOPS {
                        return Err(ReadError::new(shown, ReadErrorKind::LinkLoop));
                    }
                    let target = self.raw_readlink(&path)?;
                    self.record(|r| {
                        r.links.insert(path.clone(), target.clone());
                    });
                    current.pop();
                    if target.starts_with('/') {
                        current.clear();
                    }
                    for c in target.split('/').filter(|c| !c.is_empty() && *c != ".").rev() {
                        pending.push(c.to_string());
                    }
                }
                Some(NodeKind::Dir) | Some(NodeKind::File) => {
                    if !pending.is_empty() && self.node_kind(&path) == Some(NodeKind::File) {
                        return Err(ReadError::new(shown, ReadErrorKind::NotADirectory));
                    }
                }
                None => return Err(ReadError::new(shown, ReadErrorKind::NotFound)),
            }
        }
        Ok(current.join("/"))
    }
}

fn split_last(norm: &str) -> (&str, &str) {
    match norm.rfind('/') {
        Some(i) => (&norm[..i], &norm[i + 1..]),
        None => ("", norm),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

/// The names in a directory (unsorted), skipping names that are not UTF-8.
fn read_dir_names(path: &Path, shown: &str) -> Result<Vec<String>, ReadError> {
    let rd = std::fs::read_dir(path).map_err(|e| ReadError::from_io(shown, &e))?;
    Ok(rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
}

fn read_bounded(path: &Path, shown: &str) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(|e| ReadError::from_io(shown, &e))?;
    let mut buf = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ReadError::from_io(shown, &e))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::new(shown, ReadErrorKind::TooLarge(buf.len() as u64)));
    }
    Ok(buf)
}

/// Reads a file the *user* named on the command line (a log, a rules directory, a
/// snapshot). These are not node data, so they are read as given and never re-rooted.
pub fn read_user_file(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// A file the user named (a log, a snapshot).
pub type UserFile = std::fs::File;

/// Opens a user-named file for streaming.
pub fn open_user_file(path: &Path) -> std::io::Result<UserFile> {
    std::fs::File::open(path)
}

/// Lists a user-named directory (a `--rules DIR`), sorted.
pub fn list_user_dir(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    Ok(v)
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
