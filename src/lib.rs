//! efa-doctor: diagnoses AWS EFA / GPUDirect RDMA health on GPU nodes.
//!
//! The flow is *gather, then judge*, and modules import only downward, in this order:
//! [`root`] (every read of node data, a snapshot's loading) -> [`parse`] (pure parsers) ->
//! [`native`] (the node's libraries in a helper child) -> [`facts`] (every source, logs
//! included) -> [`checks`] (pure judgement) -> [`report`] (model and renderers) ->
//! [`commands`] (one module per subcommand) -> this crate root and `main`. [`redact`],
//! [`escape`] and [`verdict`] sit below them all. `tests/layers.rs` holds the code to it.

pub mod checks;
pub mod cli;
pub mod commands;
pub mod escape;
pub mod facts;
pub mod native;
pub mod parse;
pub mod redact;
pub mod report;
pub mod root;
pub mod verdict;

use anyhow::Result;

pub use crate::commands::check::{build_report, gather, open_root};
pub use crate::commands::man::man_page;
pub use crate::commands::{Invocation, UsageError, emit, write_atomically, write_stdout};

use crate::cli::{Cli, Command};
use crate::commands::{check, list, logs, man, probe, render, snapshot};

/// Runs the command line and returns the process exit code. `inv` is the run as it was
/// invoked (its start and arguments), which every report records.
pub fn run(cli: Cli, inv: &Invocation) -> Result<i32> {
    match cli.command {
        None => check::check(&cli.check, inv),
        Some(Command::Check(a)) => check::check(&a, inv),
        Some(Command::Logs(a)) => logs::logs_cmd(&a, inv),
        Some(Command::Snapshot(a)) => snapshot::snapshot_cmd(&a),
        Some(Command::Probe(cli::ProbeCommand::Mr(a))) => probe::probe_mr_cmd(&a, inv),
        Some(Command::Probe(cli::ProbeCommand::Pair(a))) => probe::probe_pair_cmd(&a, inv),
        Some(Command::Report(cli::ReportCommand::Render(a))) => render::render(&a),
        Some(Command::Report(cli::ReportCommand::Schema)) => render::schema(),
        Some(Command::List(a)) => list::list(a.format),
        Some(Command::Explain(a)) => list::explain(&a.id, a.format),
        Some(Command::Completions { shell }) => man::completions(shell),
        Some(Command::Man(a)) => man::man_cmd(&a),
    }
}
