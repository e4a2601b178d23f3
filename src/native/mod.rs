//! The node's native libraries (libfabric, NVML, libcuda), loaded at run time in a child
//! process.
//!
//! Every native call runs in a child process of efa-doctor itself (`efa-doctor __native
//! TASK`), for three reasons: a deadline can always be enforced by killing the child (NVML
//! and `fi_getinfo` can hang on a wedged device); a crash inside a broken library becomes a
//! finding instead of killing the run; and libfabric's own log output (stderr) can be
//! captured as evidence. The child prints one JSON document on stdout. Before each native
//! call it writes `step: <what>` to stderr, so a timeout names the call that hung.

pub mod cuda;
pub mod fabric;
pub mod nvml;
pub mod pair;
pub mod probe;
pub mod rdm;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// First argument that makes the binary act as a native helper.
pub const HELPER_ARG: &str = "__native";

/// How a native gathering went. Serialised as a lowercase word in the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeRun<T> {
    pub state: NativeState,
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
        NativeRun { state: NativeState::NotRun, error: None, result: None, log: Vec::new() }
    }
}

impl<T> NativeRun<T> {
    pub fn not_run(why: impl Into<String>) -> Self {
        NativeRun { error: Some(why.into()), ..NativeRun::default() }
    }
}

/// Runs `efa-doctor __native <args>`, whose stdout is one JSON document of `T`. A timeout
/// reads "`{timeout}` within N s (hung in <last call>)".
pub fn run_json<T: serde::de::DeserializeOwned>(
    args: &[&str],
    env: &[(&str, &str)],
    deadline: Duration,
    timeout: &str,
) -> NativeRun<T> {
    let failed =
        |state, error: String| NativeRun { state, error: Some(error), ..NativeRun::default() };
    match run_child(args, env, deadline) {
        Ok(out) => match serde_json::from_slice(&out.stdout) {
            Ok(r) => {
                NativeRun { state: NativeState::Ok, error: None, result: Some(r), log: out.log }
            }
            Err(e) => NativeRun {
                log: out.log,
                ..failed(NativeState::Failed, format!("unreadable helper output: {e}"))
            },
        },
        Err(ChildError::Timeout { secs, last_step }) => {
            failed(NativeState::Timeout, format!("{timeout} within {secs} s (hung in {last_step})"))
        }
        Err(e) => failed(NativeState::Failed, e.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("did not finish within {secs} s (last call: {last_step})")]
    Timeout { secs: u64, last_step: String },
    #[error("{0}")]
    Failed(String),
}

/// Lines of the child's stderr kept as evidence.
const MAX_LOG_LINES: usize = 200;

/// Runs `efa-doctor __native <args>` with extra environment, under `deadline`.
pub fn run_child(
    args: &[&str],
    env: &[(&str, &str)],
    deadline: Duration,
) -> Result<ChildOutput, ChildError> {
    let exe = std::env::current_exe()
        .map_err(|e| ChildError::Failed(format!("cannot find own executable: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg(HELPER_ARG)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child =
        cmd.spawn().map_err(|e| ChildError::Failed(format!("cannot start helper process: {e}")))?;
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(ChildError::Failed(format!("waiting for helper: {e}"))),
        }
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        // The pipe closes when the child dies; a grandchild still holding it must not keep
        // us waiting, so give the reader a moment and name whatever step it saw.
        let give_up = Instant::now() + Duration::from_millis(200);
        while !err_t.is_finished() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(5));
        }
        let last_step =
            if err_t.is_finished() { split_log(&err_t.join().unwrap_or_default()).1 } else { None };
        return Err(ChildError::Timeout {
            secs: deadline.as_secs(),
            last_step: last_step.unwrap_or_else(|| "none recorded".into()),
        });
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let (log, last_step) = split_log(&stderr);
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

fn split_log(stderr: &[u8]) -> (Vec<String>, Option<String>) {
    let text = String::from_utf8_lossy(stderr);
    let mut log = Vec::new();
    let mut last = None;
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("step: ") {
            last = Some(s.to_string());
        } else if !line.trim().is_empty() {
            log.push(line.to_string());
        }
    }
    if log.len() > MAX_LOG_LINES {
        log.drain(..log.len() - MAX_LOG_LINES);
    }
    (log, last)
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
