//! Generated artifacts are committed and must match what the clap definition generates now:
//! shell completions and the man page. Run with `EFA_DOCTOR_UPDATE=1` to rewrite them.

use std::path::Path;

use clap_complete::Shell;

fn check(path: &str, actual: &[u8]) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("EFA_DOCTOR_UPDATE").is_some() {
        std::fs::write(&full, actual).unwrap();
        return;
    }
    let committed = std::fs::read(&full).unwrap_or_default();
    assert!(
        committed == actual,
        "{path} is stale: regenerate with `EFA_DOCTOR_UPDATE=1 cargo test --test generated`"
    );
}

#[test]
fn completions_are_current() {
    for (shell, file) in [
        (Shell::Bash, "completions/efa-doctor.bash"),
        (Shell::Zsh, "completions/_efa-doctor"),
        (Shell::Fish, "completions/efa-doctor.fish"),
        (Shell::PowerShell, "completions/_efa-doctor.ps1"),
        (Shell::Elvish, "completions/efa-doctor.elv"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut efa_doctor::cli::command(), "efa-doctor", &mut out);
        check(file, &out);
    }
}

#[test]
fn man_page_is_current() {
    check("completions/efa-doctor.1", &efa_doctor::man_page().unwrap());
}

#[test]
fn hidden_commands_stay_out_of_completions() {
    let mut out = Vec::new();
    clap_complete::generate(Shell::Bash, &mut efa_doctor::cli::command(), "efa-doctor", &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("__native"));
}
