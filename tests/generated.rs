//! Generated artifacts are committed and must match what the clap definition generates now:
//! shell completions and the man pages. Run with `EFA_DOCTOR_UPDATE=1` to rewrite them.

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
        check(file, &efa_doctor::commands::man::completion_script(shell).unwrap());
    }
}

#[test]
fn man_pages_are_current() {
    let pages = efa_doctor::commands::man::man_pages().unwrap();
    let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    // One page per command, nested ones included; clap's `help` has none.
    for want in ["efa-doctor.1", "efa-doctor-check.1", "efa-doctor-probe-mr.1", "efa-doctor-man.1"]
    {
        assert!(names.contains(&want), "no {want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    for (name, roff) in &pages {
        check(&format!("completions/{name}"), roff);
    }
    assert_eq!(pages[0].1, efa_doctor::man_page().unwrap());
    // No page is left behind for a command that is gone.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.ends_with(".1") {
            assert!(names.contains(&n.as_str()), "completions/{n} is no command's page");
        }
    }
}

#[test]
fn hidden_commands_stay_out_of_completions() {
    let text =
        String::from_utf8(efa_doctor::commands::man::completion_script(Shell::Bash).unwrap())
            .unwrap();
    assert!(!text.contains("__native"));
}
