//! The committed completion scripts, in the real shells: bash with bash-completion (which
//! loads the script by itself, as installed), zsh's completion system and fish. Each test
//! types a partial command line and asserts the candidates the shell offers. The shells are
//! Debian's `bash-completion`, `zsh` and `fish` (scripts/test installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn completions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("completions")
}

/// Runs `cmd` with a deadline: a shell waiting for input must fail the test, not hang it.
fn run_bounded(mut cmd: Command, what: &str) -> Output {
    let o = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("{what}: {e} (scripts/test installs bash-completion, zsh and fish)")
    });
    assert_ne!(o.status.code(), Some(124), "{what} did not finish in time");
    o
}

fn timeout(secs: &str) -> Command {
    let mut c = Command::new("timeout");
    c.arg(secs);
    c
}

const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";

/// What bash offers for `line` (the cursor at its end): bash-completion's loader finds
/// completions/efa-doctor.bash installed as `efa-doctor` in the user completion directory,
/// then the function `complete -p` names is called as readline calls it.
fn bash(line: &str) -> Vec<String> {
    assert!(Path::new(BASH_COMPLETION).exists(), "no {BASH_COMPLETION}: install bash-completion");
    let home = tempfile::tempdir().unwrap();
    let user_dir = home.path().join("bash-completion");
    std::fs::create_dir_all(user_dir.join("completions")).unwrap();
    std::fs::copy(
        completions_dir().join("efa-doctor.bash"),
        user_dir.join("completions/efa-doctor"),
    )
    .unwrap();
    let driver = format!(
        r#"
source {BASH_COMPLETION}
# bash-completion loads a command's completion on its first use (complete -D).
_completion_loader efa-doctor
spec=$(complete -p efa-doctor) || exit 3
fn=${{spec#*-F }}; fn=${{fn%% *}}
line=$1
COMP_LINE=$line COMP_POINT=${{#line}}
read -ra COMP_WORDS <<< "$line"
[[ $line == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMPREPLY=()
"$fn" "${{COMP_WORDS[0]}}" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#
    );
    let mut cmd = timeout("30");
    cmd.args(["bash", "--norc", "--noprofile", "-c", &driver, "bash", line])
        .env("HOME", home.path())
        .env("BASH_COMPLETION_USER_DIR", &user_dir);
    candidates(run_bounded(cmd, "bash"))
}

/// A zsh script that completes `$2` in an interactive zsh under `zpty`, with the completion
/// functions of the directory `$1` on `fpath` (how `_efa-doctor` is installed), and prints
/// every candidate the completion system offers. Matches are printed instead of inserted
/// (the `compadd` wrapper), and `comppostfuncs` marks the end, so nothing waits on timing.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty || exit 3
zpty shell zsh -f -i
zpty -w shell "PS1='' RPROMPT=''; fpath=(${(q)1} \$fpath)"
zpty -w shell 'autoload -Uz compinit && compinit -u -D'
zpty -w shell 'compadd() {
  if (( ${@[(I)-(O|A|D)]} )); then builtin compadd "$@"; return; fi
  local -a hits; builtin compadd -A hits "$@"
  local h; for h in $hits; do print -r -- "<candidate>$h"; done
}'
zpty -w shell 'comppostfuncs=(__completed); __completed() { print -r -- "<completed>"; exit }'
zpty -w shell "bindkey '^I' complete-word; print -r -- '<rea''dy>'"
while zpty -r shell out; do [[ $out == *'<ready>'* ]] && break; done
zpty -n -w shell "$2"$'\t'
while zpty -r shell out; do
  [[ $out == *'<completed>'* ]] && break
  [[ $out == *'<candidate>'* ]] && print -r -- "${${out##*<candidate>}%%[$'\r\n']#}"
done
"#;

/// What zsh offers for `line`.
fn zsh(line: &str) -> Vec<String> {
    let fpath = tempfile::tempdir().unwrap();
    std::fs::copy(completions_dir().join("_efa-doctor"), fpath.path().join("_efa-doctor")).unwrap();
    let mut cmd = timeout("30");
    cmd.args(["zsh", "-f", "-c", ZSH_DRIVER, "zsh"])
        .arg(fpath.path())
        .arg(line)
        .env("HOME", fpath.path());
    candidates(run_bounded(cmd, "zsh"))
}

/// What fish offers for `line` (`complete -C`, what fish runs on TAB), without descriptions.
fn fish(line: &str) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = timeout("30");
    cmd.args(["fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
        .arg(completions_dir().join("efa-doctor.fish"))
        .arg(line)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path());
    let mut out = candidates(run_bounded(cmd, "fish"));
    for c in &mut out {
        c.truncate(c.find('\t').unwrap_or(c.len()));
    }
    out
}

fn candidates(o: Output) -> Vec<String> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut v: Vec<String> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v.dedup();
    v
}

type Shell = fn(&str) -> Vec<String>;

const SHELLS: [(&str, Shell); 3] = [("bash", bash), ("zsh", zsh), ("fish", fish)];

/// `line` completes to exactly `want` in every shell.
fn completes_to(line: &str, want: &[&str]) {
    for (name, shell) in SHELLS {
        assert_eq!(shell(line), want, "{name}: `{line}<TAB>`");
    }
}

#[test]
fn subcommands_and_their_options() {
    completes_to("efa-doctor probe m", &["mr"]);
    completes_to("efa-doctor probe mr --prov", &["--provider"]);
    completes_to("efa-doctor check --no-pr", &["--no-probe"]);
    completes_to("efa-doctor snapshot --max", &["--max-size"]);
    completes_to("efa-doctor check --format j", &["json", "junit"]);
    completes_to("efa-doctor completions f", &["fish"]);
}

#[test]
fn check_ids_for_only_skip_and_explain() {
    completes_to("efa-doctor check --only efa.t", &["efa.topology", "efa.traffic"]);
    completes_to("efa-doctor --skip kernel.", &["kernel.gpudirect-path", "kernel.modules"]);
    // Families too, where a family is accepted.
    completes_to(
        "efa-doctor check --only lib",
        &["libfabric", "libfabric.efa-provider", "libfabric.gb200-registration"],
    );
    completes_to("efa-doctor logs --fail-on w", &["warn"]);
    completes_to("efa-doctor explain nixl.b", &["nixl.backend", "nixl.backend-init"]);
    // explain takes one check, not a family.
    completes_to("efa-doctor explain pc", &["pci.link"]);
}

#[test]
fn every_check_id_is_offered() {
    let all: Vec<String> = {
        let mut v: Vec<String> =
            efa_doctor::checks::CHECKS.iter().map(|c| c.id().to_string()).collect();
        v.sort();
        v
    };
    for (name, shell) in SHELLS {
        let offered = shell("efa-doctor explain ");
        for id in &all {
            assert!(offered.contains(id), "{name}: `explain <TAB>` lacks {id}: {offered:?}");
        }
    }
}

/// The drivers see what a broken script does: nothing after the subcommand (the bash
/// script clap_complete writes for a hyphenated name, clap-rs/clap#6421).
#[test]
fn the_bash_driver_sees_a_broken_script() {
    // The `case` arms of each state, spelt as clap_complete spells them for `efa-doctor`.
    let broken: String = std::fs::read_to_string(completions_dir().join("efa-doctor.bash"))
        .unwrap()
        .lines()
        .map(|l| match l.strip_prefix("        efa_doctor__subcmd__") {
            Some(rest) if l.ends_with(')') => {
                format!("        efa__subcmd__doctor__subcmd__{rest}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    let home = tempfile::tempdir().unwrap();
    let script = home.path().join("efa-doctor.bash");
    std::fs::write(&script, broken).unwrap();
    let driver = r#"source "$1"; COMP_WORDS=(efa-doctor probe m); COMP_CWORD=2; COMPREPLY=()
_efa_doctor efa-doctor m probe; printf '%s\n' "${COMPREPLY[@]}""#;
    let mut cmd = timeout("30");
    cmd.args(["bash", "--norc", "-c", driver, "bash"]).arg(&script);
    assert_eq!(candidates(run_bounded(cmd, "bash")), Vec::<String>::new());
}
