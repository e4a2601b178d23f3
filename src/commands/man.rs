//! `efa-doctor man` and `completions SHELL`, generated from the clap definition.

use anyhow::Result;

use super::write_stdout;
use crate::cli;
use crate::report::exit;

/// The man page, generated from the clap definition.
pub fn man_page() -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cli::command()).render(&mut out)?;
    Ok(out)
}

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cli::command(), "efa-doctor", &mut out);
    write_stdout(&out)?;
    Ok(exit::OK)
}
