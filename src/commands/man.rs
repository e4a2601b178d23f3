//! `efa-doctor man [COMMAND]` and `completions SHELL`, generated from the clap definition.

use anyhow::{Result, bail};

use super::{UsageError, write_stdout};
use crate::cli::{self, ManArgs};
use crate::report::exit;

const BIN: &str = "efa-doctor";

/// The command tree as the man pages show it: built, so every subcommand has its display
/// name (`efa-doctor-probe-mr`), and without clap's `help` subcommand, which has no page.
fn man_tree() -> clap::Command {
    let mut cmd = cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// A page of `cmd`, its footer naming efa-doctor (clap_mangen would name the subcommand:
/// "mr 0.1.0").
fn page(cmd: &clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd.clone()).source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
}

fn render(cmd: &clap::Command) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    page(cmd).render(&mut out)?;
    Ok(out)
}

/// efa-doctor's own man page, efa-doctor(1).
pub fn man_page() -> Result<Vec<u8>> {
    render(&man_tree())
}

/// Every man page: efa-doctor(1), then one per command (`efa-doctor-check.1`,
/// `efa-doctor-probe-mr.1`, ...), as (file name, roff).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        out.push((page(cmd).get_filename(), render(cmd)?));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(&man_tree(), &mut out)?;
    Ok(out)
}

/// The man page of the command at `path` (`["probe", "mr"]`); efa-doctor's own when empty.
pub fn man_page_of(path: &[String]) -> Result<Vec<u8>> {
    let tree = man_tree();
    let mut cmd = &tree;
    for (depth, name) in path.iter().enumerate() {
        cmd = match cmd.find_subcommand(name).filter(|s| !s.is_hide_set()) {
            Some(sub) => sub,
            None => {
                let known: Vec<&str> = cmd
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(|s| s.get_name())
                    .collect();
                let parent = std::iter::once(BIN)
                    .chain(path[..depth].iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ");
                bail!(UsageError(if known.is_empty() {
                    format!("`{parent}` has no commands, so no page for '{name}'")
                } else {
                    format!("`{parent}` has no command '{name}' (one of: {})", known.join(", "))
                }));
            }
        };
    }
    render(cmd)
}

pub fn man_cmd(args: &ManArgs) -> Result<i32> {
    write_stdout(&man_page_of(&args.command)?)?;
    Ok(exit::OK)
}

/// The completion script for `shell`.
///
/// clap_complete's bash generator spells the completion states of a program whose name has
/// a hyphen two different ways: the loop that walks the words arrives at
/// `efa__doctor__subcmd__check`, while the `case` arms say `efa__subcmd__doctor__subcmd__check`,
/// so nothing after the first word ever completes (clap-rs/clap#6421, still so in
/// clap_complete 4.6.12). Generated for a hyphen-free name, both agree; only the program the
/// script registers for is then renamed back.
///
/// The fish generator completes options only, not positional arguments; the values of a
/// command's positionals (`explain ID`, `completions SHELL`) are added after it, on the
/// generator's own `__fish_efa_doctor_using_subcommand` condition. It also completes no
/// value of an option given before the command (see [`fish_fixes`]).
pub fn completion_script(shell: clap_complete::Shell) -> Result<Vec<u8>> {
    let mut cmd = cli::command();
    if shell == clap_complete::Shell::Fish {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, BIN, &mut out);
        return Ok(fish_fixes(String::from_utf8(out)?, &cmd)?.into_bytes());
    }
    if shell != clap_complete::Shell::Bash {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, BIN, &mut out);
        return Ok(out);
    }
    let stand_in = BIN.replace('-', "_");
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, &stand_in, &mut out);
    let text = String::from_utf8(out)?;
    let registration = format!(" {stand_in}");
    let mut renamed = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().starts_with("complete -F ") {
            true if l.ends_with(&registration) => {
                renamed += 1;
                format!("{}{}", &l[..l.len() - stand_in.len()], BIN)
            }
            _ => l.to_string(),
        })
        .collect();
    // The generator registers the function once per bash version branch; a different
    // layout would leave the script bound to the stand-in name.
    if renamed == 0 {
        bail!("clap_complete's bash script has no `complete -F ... {stand_in}` line to rename");
    }
    Ok((lines.join("\n") + "\n").into_bytes())
}

/// `script` (clap_complete's fish script) completing what the generator leaves out: the
/// value of an option given before the command, and the possible values of each command's
/// positional arguments.
fn fish_fixes(script: String, cmd: &clap::Command) -> Result<String> {
    let fn_prefix = format!("__fish_{}", BIN.replace('-', "_"));
    let condition = format!("{fn_prefix}_using_subcommand");
    if !script.contains(&format!("function {condition}")) {
        bail!("clap_complete's fish script has no {condition} function to complete positionals on");
    }
    // `__fish_efa_doctor_needs_command` parses the words before the cursor with argparse
    // and gives up when that fails, which it does while the last option still waits for
    // its value: `efa-doctor --only <TAB>` offered nothing. Parsed again with the word
    // being completed as that value, it succeeds.
    let give_up = format!(
        "    argparse -s ({fn_prefix}_global_optspecs) -- $cmd 2>/dev/null\n    or return\n"
    );
    let retry = format!(
        "    argparse -s ({fn_prefix}_global_optspecs) -- $cmd 2>/dev/null\n    or argparse -s ({fn_prefix}_global_optspecs) -- $cmd (commandline -ct)x 2>/dev/null\n    or return\n"
    );
    if !script.contains(&give_up) {
        bail!("clap_complete's fish script no longer parses the command line as expected");
    }
    let mut script = script.replacen(&give_up, &retry, 1);
    // Fish's single-quoted strings end at `'` and take `\` as an escape.
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    script.push_str("\n# Positional arguments, which clap_complete's fish generator leaves out.\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        for arg in sub.get_positionals().filter(|a| !a.is_hide_set()) {
            for value in arg.get_possible_values().iter().filter(|v| !v.is_hide_set()) {
                let mut line = format!(
                    "complete -c {BIN} -n \"{condition} {}\" -f -a {}",
                    sub.get_name(),
                    quote(value.get_name())
                );
                if let Some(help) = value.get_help() {
                    line += &format!(" -d {}", quote(&help.to_string()));
                }
                script.push_str(&line);
                script.push('\n');
            }
        }
    }
    Ok(script)
}

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    write_stdout(&completion_script(shell)?)?;
    Ok(exit::OK)
}
