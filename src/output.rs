//! The one way efa-doctor writes an output (`-o` of every command, `snapshot -o`).
//!
//! Reports land in directories other tools and users share (node-exporter's textfile
//! directory), and efa-doctor usually runs as root, so a path someone else could have planted
//! must never redirect the write:
//!
//! - A regular file (or nothing yet) is replaced atomically: the data goes to a temporary file
//!   created exclusively (`O_CREAT|O_EXCL`, so a planted link is never followed) under an
//!   unpredictable name in the same directory, is synced, then renamed over the target. The
//!   new file keeps an existing target's permission bits and owner (so a 0600 report is never
//!   widened and a group-readable one stays readable); a new file is 0600, as a report may hold
//!   node details.
//! - A symbolic link is never written through: a link to a regular file (or a dangling one) is
//!   itself replaced by the rename; a link to a FIFO is written in place (a pipe destroys
//!   nothing, and `-o >(gzip > f)` is such a link); a link to anything else is refused.
//! - A character device or FIFO named directly (`-o /dev/null`, `mkfifo` output) is written in
//!   place: a FIFO is opened without blocking first, so one with no reader is an error, not a
//!   hang. A block device, a directory or a socket is refused.
//! - `-`, `/dev/stdout` and `/dev/stderr` (and their `/dev/fd/N`, `/proc/self/fd/N` names)
//!   are this process's own standard output or error.

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a new output file: owner only, since a report may hold node details.
pub const NEW_FILE_MODE: u32 = 0o600;

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The target is something efa-doctor will not write (a directory, a block device, ...).
    #[error("refusing to write {}: {why}", path.display())]
    Refused { path: PathBuf, why: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> OutputError + 'a {
    move |source| OutputError::Io { what, path: path.to_path_buf(), source }
}

fn refuse(path: &Path, why: impl Into<String>) -> OutputError {
    OutputError::Refused { path: path.to_path_buf(), why: why.into() }
}

/// This process's own standard streams, by the names a user gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    Stdout,
    Stderr,
}

/// The standard stream `path` names, if it names one: these are written through the
/// descriptor the process already has (keeping the shell's `>>` and pipes), never reopened.
pub fn stdio_alias(path: &Path) -> Option<Stdio> {
    // `/proc/self/fd/N` is this process's own descriptor, not node data: the live procfs
    // mount point comes from the root module like every other procfs path.
    let name = match path.strip_prefix(crate::root::live::PROC) {
        Ok(own) => Path::new("/dev").join(own.strip_prefix("self").ok()?),
        Err(_) => path.to_path_buf(),
    };
    match name.as_os_str().as_encoded_bytes() {
        b"-" | b"/dev/stdout" | b"/dev/fd/1" => Some(Stdio::Stdout),
        b"/dev/stderr" | b"/dev/fd/2" => Some(Stdio::Stderr),
        _ => None,
    }
}

/// Writes to standard output; a closed pipe (`efa-doctor | head`) is not an error.
pub fn write_stdout(data: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(data).and_then(|_| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// Writes `data` to the output `path` under the rules in the module documentation.
pub fn write(path: &Path, data: &[u8]) -> Result<(), OutputError> {
    match stdio_alias(path) {
        Some(Stdio::Stdout) => return write_stdout(data).map_err(io("cannot write", path)),
        Some(Stdio::Stderr) => {
            return std::io::stderr().lock().write_all(data).map_err(io("cannot write", path));
        }
        None => {}
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(io("cannot inspect", path)(e)),
    };
    let Some(meta) = meta else { return replace(path, data, None) };
    let ft = meta.file_type();
    if ft.is_file() {
        replace(path, data, Some(&meta))
    } else if ft.is_symlink() {
        match std::fs::metadata(path) {
            // The link is replaced, not followed: the file it points at stays as it was, and
            // the new file takes the default mode, not the mode of whatever it pointed at.
            Err(e) if e.kind() == ErrorKind::NotFound => replace(path, data, None),
            Ok(t) if t.is_file() => replace(path, data, None),
            Ok(t) if t.file_type().is_fifo() => write_in_place(path, data, Special::Fifo, true),
            Ok(t) => Err(refuse(
                path,
                format!(
                    "it is a symbolic link to {}; efa-doctor writes a device only when it is named directly",
                    kind_of(&t)
                ),
            )),
            Err(e) => Err(io("cannot follow the symbolic link", path)(e)),
        }
    } else if ft.is_fifo() {
        write_in_place(path, data, Special::Fifo, false)
    } else if ft.is_char_device() {
        write_in_place(path, data, Special::CharDevice, false)
    } else {
        Err(refuse(path, format!("it is {}; name a regular file", kind_of(&meta))))
    }
}

fn kind_of(m: &Metadata) -> &'static str {
    let ft = m.file_type();
    if ft.is_dir() {
        "a directory"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "an unknown kind of file"
    }
}

/// Writes through a temporary file and a rename. `existing` is the regular file being
/// replaced, whose mode and owner the new file takes.
fn replace(path: &Path, data: &[u8], existing: Option<&Metadata>) -> Result<(), OutputError> {
    if path.file_name().is_none() {
        return Err(refuse(path, "it does not name a file"));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // tempfile creates with O_CREAT|O_EXCL (a planted link or file at the name is an error,
    // never followed), a random name (retried on collision) and mode 0600; the fixed prefix
    // keeps the name short whatever the target's length, and the suffix keeps it out of
    // globs such as node-exporter's `*.prom`.
    let mut tmp = tempfile::Builder::new()
        .prefix(".efa-doctor-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(NEW_FILE_MODE))
        .tempfile_in(dir)
        .map_err(io("cannot create a temporary file in", dir))?;
    if let Some(m) = existing {
        // The owner first (chown clears set-id bits); without the privilege to give a file
        // away this fails and the file stays ours, which is what it would be anyway.
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid()));
        // Permission bits only: a report is not a program, so set-id and sticky bits go.
        tmp.as_file()
            .set_permissions(Permissions::from_mode(m.mode() & 0o777))
            .map_err(io("cannot set the mode of", tmp.path()))?;
    }
    tmp.write_all(data).map_err(io("cannot write", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io("cannot sync", tmp.path()))?;
    // On error the temporary file is removed when `tmp` drops.
    tmp.persist(path).map_err(|e| io("cannot rename the temporary file over", path)(e.error))?;
    // The rename is durable once the directory is synced; a failure here loses nothing now.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    Fifo,
    CharDevice,
}

/// Writes into a FIFO or character device as it is. `via_link`: the user's path is a link,
/// so the open follows it; otherwise the open refuses a link swapped in since the check.
fn write_in_place(
    path: &Path,
    data: &[u8],
    want: Special,
    via_link: bool,
) -> Result<(), OutputError> {
    use nix::fcntl::OFlag;
    // O_NONBLOCK: a FIFO with no reader fails at once (ENXIO) instead of blocking forever;
    // O_NOCTTY: a terminal never becomes our controlling terminal. No O_CREAT, no O_TRUNC.
    let mut flags = OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    if !via_link {
        flags |= OFlag::O_NOFOLLOW;
    }
    let mut f = OpenOptions::new().write(true).custom_flags(flags.bits()).open(path).map_err(
        |e| match e.raw_os_error() {
            Some(nix::libc::ENXIO) if want == Special::Fifo => {
                refuse(path, "it is a FIFO and no process has it open for reading")
            }
            Some(nix::libc::ELOOP) => refuse(path, "it was replaced by a symbolic link"),
            _ => io("cannot open", path)(e),
        },
    )?;
    // What was opened must still be what was inspected: the path may have been swapped.
    let meta = f.metadata().map_err(io("cannot inspect", path))?;
    let ok = match want {
        Special::Fifo => meta.file_type().is_fifo(),
        Special::CharDevice => meta.file_type().is_char_device(),
    };
    if !ok {
        return Err(refuse(path, format!("it became {} while being opened", kind_of(&meta))));
    }
    // Blocking again, so a slow reader is waited for rather than failing with EAGAIN.
    let status = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| io("cannot configure", path)(e.into()))?;
    let blocking = OFlag::from_bits_truncate(status) & !OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETFL(blocking))
        .map_err(|e| io("cannot configure", path)(e.into()))?;
    f.write_all(data).map_err(io("cannot write", path))
}

/// Appends `line` to a trace file the user named (`EFA_DOCTOR_TRACE_HELPERS`): never through
/// a symbolic link; failing to write it changes nothing.
pub fn append_line(path: &Path, line: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path);
    if let Ok(mut f) = opened {
        let _ = writeln!(f, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdio_aliases() {
        assert_eq!(stdio_alias(Path::new("-")), Some(Stdio::Stdout));
        assert_eq!(stdio_alias(Path::new("/dev/stdout")), Some(Stdio::Stdout));
        let proc = |rest: &str| PathBuf::from(format!("{}/{rest}", crate::root::live::PROC));
        assert_eq!(stdio_alias(&proc("self/fd/2")), Some(Stdio::Stderr));
        assert_eq!(stdio_alias(Path::new("./-")), None);
        assert_eq!(stdio_alias(Path::new("/dev/fd/3")), None);
        assert_eq!(stdio_alias(&proc("1/fd/1")), None);
        assert_eq!(stdio_alias(&proc("fd/1")), None);
    }

    #[test]
    fn new_file_is_0600_and_existing_mode_is_kept_not_widened() {
        let d = tempfile::tempdir().unwrap();
        let new = d.path().join("new.json");
        write(&new, b"a").unwrap();
        assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o7777, 0o600);
        for mode in [0o600, 0o640, 0o444] {
            let p = d.path().join(format!("kept-{mode:o}"));
            std::fs::write(&p, b"old").unwrap();
            std::fs::set_permissions(&p, Permissions::from_mode(mode)).unwrap();
            write(&p, b"new").unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), b"new");
            assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, mode, "{mode:o}");
        }
        let p = d.path().join("setuid");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, Permissions::from_mode(0o4755)).unwrap();
        write(&p, b"new").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o755);
        // Only the target is left: no temporary file behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 5);
    }

    #[test]
    fn a_path_that_names_no_file_is_refused() {
        let e = write(Path::new("/"), b"x").unwrap_err();
        assert!(e.to_string().contains("it is a directory"), "{e}");
    }
}
