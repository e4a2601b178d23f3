//! One module per subcommand; `crate::run` dispatches the command line to them. The helpers
//! here are what every command shares: the usage error and writing the output.

pub mod check;
pub mod list;
pub mod logs;
pub mod man;
pub mod output;
pub mod probe;
pub mod snapshot;
pub mod status;

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;

use crate::cli::{ColorChoice, OutputArgs};
use crate::commands;
use crate::report::{self, Report};

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

/// Writes the rendered report to stdout or to `--output` (see [`write_atomically`]).
pub fn emit(report: &Report, out: &OutputArgs) -> Result<()> {
    let to_file = out.output.as_deref().is_some_and(|p| commands::output::stdio_alias(p).is_none());
    let color = use_color(out.color, to_file);
    let text = report::render(report, out.format, color);
    match &out.output {
        Some(path) => write_atomically(path, text.as_bytes()),
        None => write_stdout(text.as_bytes()),
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
