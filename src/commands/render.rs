//! `efa-doctor report render` and `report schema`: a saved JSON report in other formats,
//! and the JSON Schema every report follows.

use std::path::Path;

use anyhow::Result;

use super::{UsageError, check_outputs, emit, write_stdout};
use crate::cli::RenderArgs;
use crate::report::{self, Report, Summary};

/// Renders a saved report in the formats asked for and exits with its exit code.
pub fn render(a: &RenderArgs) -> Result<i32> {
    check_outputs(&a.output)?;
    let mut saved = read_saved(&a.file)?;
    if let Some(fail_on) = a.fail_on {
        saved.summary = Summary::of(&saved.results, fail_on);
    }
    emit(&saved, &a.output)?;
    Ok(saved.summary.exit_code)
}

/// Reads and parses a saved `efa-doctor/1` report (`-`: standard input), at most
/// [`crate::root::MAX_FILE_BYTES`].
fn read_saved(file: &Path) -> Result<Report> {
    let shown = report::show(&file.display().to_string());
    let path = if file == Path::new("-") { Path::new("/dev/stdin") } else { file };
    let bytes = crate::root::read_user_file(path)
        .map_err(|e| UsageError(format!("cannot read the report {shown}: {e}")))?;
    let saved: Report = serde_json::from_slice(&bytes)
        .map_err(|e| UsageError(format!("{shown} is not an efa-doctor JSON report: {e}")))?;
    if saved.schema != report::SCHEMA {
        anyhow::bail!(UsageError(format!(
            "{shown} is a {} report; this efa-doctor renders {}",
            report::show(&saved.schema),
            report::SCHEMA
        )));
    }
    Ok(saved)
}

/// Prints the JSON Schema of `efa-doctor/1` reports.
pub fn schema() -> Result<i32> {
    write_stdout(report::schema::text().as_bytes())?;
    Ok(report::exit::OK)
}
