//! One module per subcommand; `crate::run` dispatches the command line to them. The helpers
//! here are what every command shares: the usage error and writing the output.

pub mod check;
pub mod list;
pub mod logs;
pub mod man;
pub mod output;
pub mod probe;
pub mod render;
pub mod snapshot;
pub mod status;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::cli::{ColorChoice, OutputArgs};
use crate::commands;
use crate::report::{self, FailOn, Format, Report, RootInfo, RunInfo};

/// A usage error: exit code 2, message without a backtrace.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `--color auto`: colour on a terminal, unless `NO_COLOR` is set (no-color.org) or the
/// terminal is `TERM=dumb`, which shows escape sequences as garbage (Emacs' shell, some CI
/// log viewers).
fn use_color(choice: ColorChoice, to_file: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            !to_file
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
                && std::io::stdout().is_terminal()
        }
    }
}

/// One run as it was asked for: when it started and its command line. The report's
/// [`RunInfo`] comes from it.
#[derive(Debug, Clone)]
pub struct Invocation {
    started: SystemTime,
    clock: Instant,
    arguments: Vec<String>,
}

impl Invocation {
    /// A run starting now with `args` (the program name first).
    pub fn start(args: &[OsString]) -> Invocation {
        let arguments: Vec<String> =
            args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        Invocation {
            started: SystemTime::now(),
            clock: Instant::now(),
            arguments: crate::redact::args(&arguments),
        }
    }

    /// The run metadata as of now; `error` says why the run failed, when it did.
    pub fn run_info(&self, error: Option<&str>) -> RunInfo {
        let since_epoch = self.started.duration_since(UNIX_EPOCH).unwrap_or_default();
        RunInfo {
            started: crate::facts::manifest::rfc3339(since_epoch.as_secs()),
            started_unix: (since_epoch.as_millis() as f64) / 1000.0,
            // Milliseconds are what a CI dashboard shows; more digits would only be noise.
            duration_seconds: (self.clock.elapsed().as_millis() as f64) / 1000.0,
            hostname: nix::unistd::gethostname().ok().map(|h| h.to_string_lossy().into_owned()),
            arguments: self.arguments.clone(),
            error: error.map(String::from),
        }
    }
}

/// Where each format the user asked for goes: the `--format` output (`--output`, else
/// standard output), then `--json`, `--junit` and `--prometheus`. `None` is standard output.
fn destinations(out: &OutputArgs) -> Vec<(Format, Option<&Path>)> {
    let mut d = vec![(out.format, out.output.as_deref())];
    for (format, path) in [
        (Format::Json, &out.json),
        (Format::Junit, &out.junit),
        (Format::Prometheus, &out.prometheus),
    ] {
        if let Some(p) = path {
            d.push((format, Some(p.as_path())));
        }
    }
    d
}

/// Refuses output options that would collide, before anything runs: two formats on
/// standard output, or two formats into one file (the second would silently replace the
/// first).
pub fn check_outputs(out: &OutputArgs) -> Result<()> {
    let mut seen: Vec<(Format, std::path::PathBuf)> = Vec::new();
    for (format, path) in destinations(out) {
        let key = match path.map(|p| (p, commands::output::stdio_alias(p))) {
            None | Some((_, Some(commands::output::Stdio::Stdout))) => "-".into(),
            Some((_, Some(commands::output::Stdio::Stderr))) => "/dev/stderr".into(),
            Some((p, None)) => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        };
        if let Some((other, _)) = seen.iter().find(|(_, k)| *k == key) {
            let place = if key.as_os_str() == "-" {
                "standard output".to_string()
            } else {
                key.display().to_string()
            };
            anyhow::bail!(UsageError(format!(
                "both the {} and the {} report would go to {}; name a file for one of them \
                 (--output, --json, --junit, --prometheus)",
                other.name(),
                format.name(),
                report::show(&place)
            )));
        }
        seen.push((format, key));
    }
    Ok(())
}

/// Writes the report in every format asked for, each to its own place (see
/// [`destinations`]). Every output is attempted; the first failure is returned.
pub fn emit(report: &Report, out: &OutputArgs) -> Result<()> {
    emit_outputs(report, out, true)
}

/// As [`emit`]; `console_human: false` leaves out a human table bound for the terminal (a
/// failed run's message is already on standard error).
fn emit_outputs(report: &Report, out: &OutputArgs, console_human: bool) -> Result<()> {
    let mut first_error = None;
    for (format, path) in destinations(out) {
        let to_file = path.is_some_and(|p| commands::output::stdio_alias(p).is_none());
        if format == Format::Human && !to_file && !console_human {
            continue;
        }
        let options = report::RenderOptions {
            color: format == Format::Human && use_color(out.color, to_file),
            counters: out.prometheus_counters,
        };
        let text = report::render(report, format, &options);
        let written = match path {
            Some(p) => write_atomically(p, text.as_bytes()),
            None => write_stdout(text.as_bytes()),
        };
        if let Err(e) = written {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Finishes a command that judges: stamps the run metadata on the report and writes it in
/// every format asked for, returning the exit code. A run that could not build its report
/// still writes one ([`Report::failed`], exit 2) to every output, so a CI job keeps a report
/// and a Prometheus textfile stops claiming the last good state; the error is then returned
/// for `main` to print.
pub fn finish(
    built: Result<Report>,
    root: impl FnOnce() -> RootInfo,
    fail_on: FailOn,
    out: &OutputArgs,
    inv: &Invocation,
) -> Result<i32> {
    match built {
        Ok(mut report) => {
            report.run = Some(inv.run_info(None));
            emit(&report, out)?;
            Ok(report.summary.exit_code)
        }
        Err(e) => {
            let why = format!("{e:#}");
            let mut report = Report::failed(root(), &why, fail_on);
            report.run = Some(inv.run_info(Some(&why)));
            match emit_outputs(&report, out, false) {
                Ok(()) => Err(e),
                Err(w) => {
                    Err(anyhow::anyhow!("{why} (and its report could not be written: {w:#})"))
                }
            }
        }
    }
}

/// Writes `data` to the output `path` the user named: the only file efa-doctor writes. A
/// regular file is replaced atomically (a reader never sees part of it) through an exclusive,
/// unpredictably named temporary file, keeping the target's mode (0600 when new); links are
/// never written through; devices other than a character device or FIFO named directly are
/// refused. [`output`] has the rules.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    commands::output::write(path, data).map_err(|e| match e {
        commands::output::OutputError::Refused { .. } => UsageError(e.to_string()).into(),
        e => e.into(),
    })
}

/// Writes to stdout; a closed pipe (`efa-doctor | head`) is not an error.
pub fn write_stdout(data: &[u8]) -> Result<()> {
    Ok(commands::output::write_stdout(data)?)
}
