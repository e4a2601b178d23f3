//! The node's native libraries (libfabric, NVML, libcuda), loaded at run time in a child
//! process.
//!
//! Every native call runs in a child process of efa-doctor itself (`efa-doctor __native
//! TASK`), for three reasons: a deadline can always be enforced by killing the child (NVML
//! and `fi_getinfo` can hang on a wedged device); a crash inside a broken library becomes a
//! finding instead of killing the run; and libfabric's own log output (stderr) can be
//! captured as evidence. The child prints one JSON document on stdout. Before each native
//! call it writes `step: <what>` to stderr, so a timeout names the call that hung.
//!
//! For a mounted node root (`--root /host` in a container, see [`Site`]) the helper runs
//! inside that root: the child chroots into it and executes this same binary from a file
//! descriptor opened beforehand, so its `PT_INTERP` is resolved in the node's root and the
//! node's loader, glibc and libraries are the ones loaded, as its workloads load them.

pub mod cuda;
pub mod fabric;
pub mod nvml;
pub mod pair;
pub mod probe;
pub mod rdm;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::root::{Root, RootKind};

/// First argument that makes the binary act as a native helper.
pub const HELPER_ARG: &str = "__native";

/// How a native gathering went. Serialised as a lowercase word in the facts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NativeState {
    /// The library answered.
    Ok,
    /// The library is not installed where the workload would load it.
    Missing,
    /// It is there but could not be loaded or initialised.
    Failed,
    /// It did not answer within its deadline.
    Timeout,
    /// Not attempted: the root is not the live system and holds no captured result.
    #[default]
    NotRun,
}

/// A library-loading error with its cause (`dlopen failed: libcuda.so.1: cannot open shared
/// object file ...`): libloading's own text stops at "dlopen failed".
pub fn dl_error(e: &libloading::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A task's `--name value` arguments, in order (the parent builds them; no validation
/// beyond pairing is needed).
pub fn options(args: &[String]) -> impl Iterator<Item = (&str, String)> + '_ {
    args.chunks(2).map(|kv| (kv[0].as_str(), kv.get(1).cloned().unwrap_or_default()))
}

/// Marker line a native task writes before each call.
pub fn step(what: &str) {
    eprintln!("step: {what}");
}

/// Result of running a native task in a child process.
#[derive(Debug)]
pub struct ChildOutput {
    pub stdout: Vec<u8>,
    /// stderr lines other than `step:` markers (e.g. libfabric's own log lines).
    pub log: Vec<String>,
}

/// What one native task gave, as the facts record it: its JSON document, or why there is
/// none, and the libraries' own log lines either way.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NativeRun<T> {
    pub state: NativeState,
    /// Where the helper ran ([`Site::vantage`]); absent when none was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    /// Why the task was not run, or how it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

impl<T> Default for NativeRun<T> {
    fn default() -> Self {
        NativeRun {
            state: NativeState::NotRun,
            vantage: None,
            error: None,
            result: None,
            log: Vec::new(),
        }
    }
}

impl<T> NativeRun<T> {
    pub fn not_run(why: impl Into<String>) -> Self {
        NativeRun { error: Some(why.into()), ..NativeRun::default() }
    }
}

/// Where native helpers run for a root, which decides whose loader and libraries they use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// This process, on the live root.
    ThisProcess,
    /// A helper chrooted into the node's root mounted at `dir` on this machine (`shown` is
    /// the root as the user named it).
    Chroot { dir: std::path::PathBuf, shown: String },
}

impl Site {
    /// Where native work for `root` runs; `None` when it cannot (a fixture, a capture).
    pub fn of(root: &Root) -> Option<Site> {
        match root.kind() {
            RootKind::Live => Some(Site::ThisProcess),
            RootKind::HostMount => root
                .mounted_base()
                .map(|d| Site::Chroot { dir: d.to_path_buf(), shown: root.display().to_string() }),
            _ => None,
        }
    }

    /// Shown with each native result: which vantage point answered.
    pub fn vantage(&self) -> String {
        match self {
            Site::ThisProcess => "this process".into(),
            Site::Chroot { shown, .. } => format!("chroot into {shown}"),
        }
    }

    /// How the helper names the node's file `node_path` (absolute on the node): the path on
    /// this machine, or inside the chroot the node's own path (links resolved in the root).
    pub fn path(&self, root: &Root, node_path: &str) -> Option<String> {
        match self {
            Site::ThisProcess => root.host_path(node_path).map(|p| p.display().to_string()),
            Site::Chroot { .. } => root.canonical(node_path).ok().map(|c| format!("/{c}")),
        }
    }
}

/// Runs `efa-doctor __native <args>` at `site`, whose stdout is one JSON document of `T`. A
/// timeout reads "`{timeout}` within N s (hung in <last call>)"; a helper that could not be
/// started inside a mounted root is `not-run`, with why.
pub fn run_json<T: serde::de::DeserializeOwned>(
    site: &Site,
    args: &[&str],
    env: &[(&str, &str)],
    deadline: Duration,
    timeout: &str,
) -> NativeRun<T> {
    let vantage = Some(site.vantage());
    let failed = |state, error: String| NativeRun {
        state,
        vantage: vantage.clone(),
        error: Some(error),
        ..NativeRun::default()
    };
    match run_child(site, args, env, deadline) {
        Ok(out) => match serde_json::from_slice(&out.stdout) {
            Ok(r) => NativeRun {
                state: NativeState::Ok,
                vantage: vantage.clone(),
                error: None,
                result: Some(r),
                log: out.log,
            },
            Err(e) => NativeRun {
                log: out.log,
                ..failed(NativeState::Failed, format!("unreadable helper output: {e}"))
            },
        },
        Err(ChildError::Timeout { secs, last_step }) => {
            failed(NativeState::Timeout, format!("{timeout} within {secs} s (hung in {last_step})"))
        }
        Err(ChildError::CannotEnter(why)) => failed(NativeState::NotRun, why),
        Err(e) => failed(NativeState::Failed, e.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("did not finish within {secs} s (last call: {last_step})")]
    Timeout { secs: u64, last_step: String },
    #[error("{0}")]
    Failed(String),
    /// The helper could not be started inside the mounted root (no privilege to chroot,
    /// no loader for this binary there): nothing about the node's libraries is known.
    #[error("{0}")]
    CannotEnter(String),
}

/// Lines of the child's stderr kept as evidence (the last ones).
const MAX_LOG_LINES: usize = 200;
/// Longest stderr line kept; the rest of a longer line is dropped.
const MAX_LOG_LINE_BYTES: usize = 4096;
/// Most bytes of a helper's stdout (its one JSON document) read; a helper that writes more
/// is killed. Libfabric's enumeration of a 32-NIC node is well under 1 MiB.
pub const MAX_HELPER_STDOUT_BYTES: usize = 16 * 1024 * 1024;
/// How long the pipes may stay open after the helper's process group is gone (held by a
/// process that left the group) before they are abandoned.
const PIPE_GRACE: Duration = Duration::from_millis(200);

/// The helper's stderr, kept as it arrives within fixed memory: the last `step:` marker
/// and the last [`MAX_LOG_LINES`] other lines, each cut at [`MAX_LOG_LINE_BYTES`]. A
/// library spewing gigabytes costs time to drain, not memory.
#[derive(Default)]
struct StderrTail {
    lines: std::collections::VecDeque<String>,
    partial: Vec<u8>,
    last_step: Option<String>,
}

impl StderrTail {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (piece, rest, ended) = match memchr::memchr(b'\n', data) {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            let room = MAX_LOG_LINE_BYTES.saturating_sub(self.partial.len());
            self.partial.extend_from_slice(&piece[..piece.len().min(room)]);
            if ended {
                self.end_line();
            }
            data = rest;
        }
    }

    fn end_line(&mut self) {
        let raw = std::mem::take(&mut self.partial);
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim_end_matches('\r');
        if let Some(step) = line.strip_prefix("step: ") {
            self.last_step = Some(step.to_string());
        } else if !line.trim().is_empty() {
            if self.lines.len() == MAX_LOG_LINES {
                self.lines.pop_front();
            }
            self.lines.push_back(line.to_string());
        }
    }

    fn finish(mut self) -> (Vec<String>, Option<String>) {
        if !self.partial.is_empty() {
            self.end_line();
        }
        (self.lines.into(), self.last_step)
    }
}

/// Helper process groups alive now, killed if efa-doctor itself is interrupted (a helper
/// in its own group gets no terminal signal of its own).
static LIVE_GROUPS: [std::sync::atomic::AtomicI32; 8] =
    [const { std::sync::atomic::AtomicI32::new(0) }; 8];

extern "C" fn kill_groups_and_die(sig: nix::libc::c_int) {
    use std::sync::atomic::Ordering;
    for g in &LIVE_GROUPS {
        let pgid = g.load(Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: kill(2) is async-signal-safe.
            unsafe { nix::libc::kill(-pgid, nix::libc::SIGKILL) };
        }
    }
    // SAFETY: signal(2) and raise(3) are async-signal-safe; the default action ends the
    // process as the signal would have.
    unsafe {
        nix::libc::signal(sig, nix::libc::SIG_DFL);
        nix::libc::raise(sig);
    }
}

/// Registers a helper's group for [`kill_groups_and_die`] while it lives.
struct GroupGuard(Option<usize>);

impl GroupGuard {
    fn register(pgid: i32) -> GroupGuard {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        use std::sync::atomic::Ordering;
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            let action = SigAction::new(
                SigHandler::Handler(kill_groups_and_die),
                SaFlags::empty(),
                SigSet::empty(),
            );
            for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                // SAFETY: the handler only makes async-signal-safe calls. A signal the
                // user chose to ignore stays ignored.
                unsafe {
                    if let Ok(old) = sigaction(sig, &action) {
                        if matches!(old.handler(), SigHandler::SigIgn) {
                            let _ = sigaction(sig, &old);
                        }
                    }
                }
            }
        });
        let slot = LIVE_GROUPS
            .iter()
            .position(|g| g.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst).is_ok());
        GroupGuard(slot)
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            LIVE_GROUPS[i].store(0, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Runs `efa-doctor __native <args>` at `site` with extra environment, under `deadline`.
pub fn run_child(
    site: &Site,
    args: &[&str],
    env: &[(&str, &str)],
    deadline: Duration,
) -> Result<ChildOutput, ChildError> {
    let cmd = match site {
        Site::ThisProcess => {
            let exe = std::env::current_exe()
                .map_err(|e| ChildError::Failed(format!("cannot find own executable: {e}")))?;
            let mut cmd = Command::new(exe);
            cmd.arg(HELPER_ARG).args(args);
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd
        }
        Site::Chroot { dir, .. } => chrooted(dir, args, env)?,
    };
    trace_start(args.first().copied().unwrap_or(""));
    run_bounded(cmd, deadline).map_err(|e| match (site, e) {
        (Site::Chroot { shown, .. }, ChildError::Failed(why)) if why.starts_with(SPAWN_FAILED) => {
            ChildError::CannotEnter(cannot_enter(shown, &why))
        }
        (_, e) => e,
    })
}

/// Prefix of [`run_bounded`]'s error when the child could not be started at all.
const SPAWN_FAILED: &str = "cannot start helper process";

/// Why a helper could not be started inside the mounted root `shown`, from the error the
/// child's chroot or exec returned.
fn cannot_enter(shown: &str, why: &str) -> String {
    let os = why.rsplit_once("(os error ").and_then(|(_, n)| n.trim_end_matches(')').parse().ok());
    let hint = match os {
        Some(nix::libc::EPERM) => format!(
            "efa-doctor may not chroot into {shown} (it needs CAP_SYS_CHROOT: run the container \
             privileged or add SYS_CHROOT to its capabilities)"
        ),
        Some(nix::libc::ENOENT) => format!(
            "{shown} has no dynamic loader for this efa-doctor binary (its PT_INTERP), so it \
             cannot run on the node's libraries"
        ),
        _ => format!("the helper could not be started inside {shown} (chroot, then exec)"),
    };
    format!("native helper not started: {hint}: {why}")
}

/// Raw pointers of the child's argument and environment vectors, built before the fork:
/// only async-signal-safe calls are allowed between fork and exec in a threaded program.
struct ExecVectors {
    _strings: Vec<std::ffi::CString>,
    argv: Vec<*const nix::libc::c_char>,
    envp: Vec<*const nix::libc::c_char>,
}

// SAFETY: the pointers point into `_strings`, owned by the same value and never changed;
// they are read only in the forked child.
unsafe impl Send for ExecVectors {}
unsafe impl Sync for ExecVectors {}

/// A command that, in the child, chroots into `dir`, changes to its `/` and executes this
/// binary from a descriptor opened now (`execveat(fd, "", AT_EMPTY_PATH)`: the file need
/// not exist inside the root; its loader must). Nothing is written under `dir`.
fn chrooted(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Command, ChildError> {
    use nix::fcntl::{OFlag, open};
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    // Close-on-exec: execveat still runs an ELF binary from it (the kernel holds the file).
    let exe = open(
        crate::root::live::SELF_EXE,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    // Without its own executable (no /proc in this container) the helper cannot enter the
    // root: the native results are not run, which is no finding about the node.
    .map_err(|e| {
        ChildError::CannotEnter(format!(
            "native helper not started: cannot open efa-doctor's own executable ({}, is /proc \
             mounted here?): {e}",
            crate::root::live::SELF_EXE
        ))
    })?;
    let text = |b: &[u8]| {
        CString::new(b).map_err(|_| ChildError::Failed("a NUL byte in a helper argument".into()))
    };
    let dir_c = text(dir.as_os_str().as_bytes())?;
    let mut argv = vec![text(b"efa-doctor")?, text(HELPER_ARG.as_bytes())?];
    for a in args {
        argv.push(text(a.as_bytes())?);
    }
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        if !env.iter().any(|(name, _)| std::ffi::OsStr::new(name) == k) {
            envp.push(text(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    for (k, v) in env {
        envp.push(text(format!("{k}={v}").as_bytes())?);
    }
    let nul_ended = |v: &[CString]| {
        v.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
    };
    let (argv_p, envp_p) = (nul_ended(&argv), nul_ended(&envp));
    argv.append(&mut envp);
    let vectors = ExecVectors { _strings: argv, argv: argv_p, envp: envp_p };
    // Never executed by std: the closure below execs (or fails) first.
    let mut cmd = Command::new(crate::root::live::SELF_EXE);
    // SAFETY: only async-signal-safe system calls (prctl, chroot, chdir, execveat) on data
    // prepared before the fork. It runs after std has set up stdio and the process group,
    // and before run_bounded's own hook, so it sets the parent-death signal itself.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            let v = &vectors;
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                || libc::chroot(dir_c.as_ptr()) != 0
                || libc::chdir(c"/".as_ptr()) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::syscall(
                libc::SYS_execveat,
                exe.as_raw_fd(),
                c"".as_ptr(),
                v.argv.as_ptr(),
                v.envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            Err(std::io::Error::last_os_error())
        });
    }
    Ok(cmd)
}

/// With `EFA_DOCTOR_TRACE_HELPERS=FILE`, each helper start appends `helper NAME` to FILE: how
/// the tests see which helpers a run starts (facts are gathered only on demand).
fn trace_start(name: &str) {
    if let Some(path) = std::env::var_os("EFA_DOCTOR_TRACE_HELPERS") {
        crate::root::append_trace_line(std::path::Path::new(&path), &format!("helper {name}"));
    }
}

/// Runs `cmd` as a helper: in its own process group, which is killed at the deadline, when
/// the helper exits (a library may have forked a daemon that still holds the pipes) and if
/// efa-doctor is interrupted; its stdout is read up to [`MAX_HELPER_STDOUT_BYTES`] and its
/// stderr kept as a bounded tail. Returns within `deadline` plus [`PIPE_GRACE`] whatever
/// the helper or its descendants do.
///
/// One loop watches the deadline, both pipes, the stdout cap and the pipe grace. The
/// `wait-timeout` crate covers only the first: it reaps the child (so the group would be
/// killed after its id was freed, where this sees the exit with `WNOWAIT` and kills first),
/// installs a process-wide SIGCHLD handler, and would need a reader thread per pipe (a
/// helper blocked on a full pipe never exits) that cannot be abandoned when a descendant
/// keeps the pipe open.
#[doc(hidden)]
pub fn run_bounded(mut cmd: Command, deadline: Duration) -> Result<ChildOutput, ChildError> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    // SAFETY: prctl(2) is async-signal-safe. If efa-doctor dies, so does the helper.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|e| ChildError::Failed(format!("{SPAWN_FAILED}: {e}")))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _guard = GroupGuard::register(pid.as_raw());
    let kill_group = || {
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    };
    let mut out_pipe = child.stdout.take().map(std::os::fd::OwnedFd::from);
    let mut err_pipe = child.stderr.take().map(std::os::fd::OwnedFd::from);
    for fd in out_pipe.iter().chain(err_pipe.iter()) {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
    }
    let mut stdout = Vec::new();
    let mut stdout_overflow = false;
    let mut stderr = StderrTail::default();
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut status = None;
    let mut timed_out = false;
    let mut group_gone: Option<Instant> = None;
    loop {
        if status.is_none() {
            // Seen without reaping, so the group is killed while its id cannot be reused.
            use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
            let exited = match waitid(
                Id::Pid(pid),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            ) {
                Ok(WaitStatus::StillAlive) => false,
                Ok(_) => true,
                Err(e) => return Err(ChildError::Failed(format!("waiting for helper: {e}"))),
            };
            let late = start.elapsed() >= deadline;
            if exited || late || stdout_overflow {
                timed_out = !exited && late;
                kill_group();
                status = Some(
                    child
                        .wait()
                        .map_err(|e| ChildError::Failed(format!("waiting for helper: {e}")))?,
                );
                group_gone = Some(Instant::now());
            }
        }
        if out_pipe.is_none() && err_pipe.is_none() && status.is_some() {
            break;
        }
        if group_gone.is_some_and(|t| t.elapsed() >= PIPE_GRACE) {
            break; // a descendant that left the group holds a pipe: do not wait for it
        }
        let mut fds: Vec<nix::poll::PollFd<'_>> = out_pipe
            .iter()
            .chain(err_pipe.iter())
            .map(|fd| {
                use std::os::fd::AsFd;
                nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)
            })
            .collect();
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5u8));
        drop(fds);
        if let Some(fd) = &out_pipe {
            match drain(fd, &mut buf, |d| {
                if stdout.len() + d.len() > MAX_HELPER_STDOUT_BYTES {
                    stdout_overflow = true;
                } else {
                    stdout.extend_from_slice(d);
                }
            }) {
                Drained::Open if !stdout_overflow => {}
                _ => out_pipe = None,
            }
        }
        if let Some(fd) = &err_pipe {
            if let Drained::Closed = drain(fd, &mut buf, |d| stderr.feed(d)) {
                err_pipe = None;
            }
        }
    }
    let status = status.expect("the loop ends only after the helper is reaped");
    let (log, last_step) = stderr.finish();
    if timed_out {
        return Err(ChildError::Timeout {
            secs: deadline.as_secs(),
            last_step: last_step.unwrap_or_else(|| "none recorded".into()),
        });
    }
    if stdout_overflow {
        return Err(ChildError::Failed(format!(
            "the helper wrote more than {MAX_HELPER_STDOUT_BYTES} bytes of output (last call: {})",
            last_step.as_deref().unwrap_or("none")
        )));
    }
    if !status.success() && stdout.is_empty() {
        use std::os::unix::process::ExitStatusExt;
        let why = match status.signal() {
            Some(sig) => format!(
                "helper process died with signal {sig} (last call: {})",
                last_step.as_deref().unwrap_or("none")
            ),
            None => format!("helper process exited with {status}"),
        };
        let tail = log.iter().rev().take(3).rev().cloned().collect::<Vec<_>>().join(" | ");
        return Err(ChildError::Failed(if tail.is_empty() {
            why
        } else {
            format!("{why}: {tail}")
        }));
    }
    Ok(ChildOutput { stdout, log })
}

enum Drained {
    Open,
    Closed,
}

/// Reads what a non-blocking pipe holds now, at most a few MiB per call so one chatty pipe
/// cannot starve the deadline check.
fn drain(fd: &std::os::fd::OwnedFd, buf: &mut [u8], mut sink: impl FnMut(&[u8])) -> Drained {
    for _ in 0..64 {
        match nix::unistd::read(fd, buf) {
            Ok(0) => return Drained::Closed,
            Ok(n) => sink(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => return Drained::Open,
            Err(_) => return Drained::Closed,
        }
    }
    Drained::Open
}

/// Entry point of the hidden `__native` subcommand, in the child process.
pub fn serve(args: &[String]) -> i32 {
    let task = args.first().map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(1)..];
    let json = match task {
        "libfabric" => fabric::serve_enumerate(rest),
        "nvml" => nvml::serve(),
        "probe-mr" => probe::serve(rest),
        "probe-pair" => pair::serve(rest),
        other => {
            eprintln!("unknown native task {other:?}");
            return 2;
        }
    };
    println!("{json}");
    0
}
