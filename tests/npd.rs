//! `--format npd` as node-problem-detector reads it: stdout is cut at `max_output_length`
//! bytes (80 by default), exit 0/1/2 become the condition's False/True/Unknown. Every fixture's
//! line fits whole, with the count of further findings before the summary, and a run that
//! fails still says why on stdout.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use efa_doctor::report::npd::MAX_LINE_BYTES;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_efa-doctor")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn npd(args: &[&str]) -> Output {
    Command::new(bin()).args(args).args(["--format", "npd", "--no-probe"]).output().unwrap()
}

/// Every node root and captured snapshot among the fixtures.
fn fixture_roots() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(fixtures()).unwrap().flatten() {
        let p = e.path();
        if p.join("sys").is_dir() || p.join("proc").is_dir() {
            out.push(vec!["--root".to_string(), p.display().to_string()]);
        }
    }
    for e in std::fs::read_dir(fixtures().join("real")).unwrap().flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(".tar.gz") {
            out.push(vec!["--snapshot".to_string(), p.display().to_string()]);
        }
    }
    out.sort();
    out
}

#[test]
fn every_fixture_line_fits_npd_whole_with_the_count_first() {
    let roots = fixture_roots();
    assert!(roots.len() >= 15, "{} fixture roots", roots.len());
    let mut with_more = 0;
    for args in &roots {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = npd(&args);
        let code = o.status.code().unwrap();
        let text = String::from_utf8(o.stdout).expect("UTF-8");
        let line = text.strip_suffix('\n').unwrap_or_else(|| panic!("{args:?}: {text:?}"));
        assert!(!line.contains('\n'), "{args:?}: more than one line");
        assert!(line.len() <= MAX_LINE_BYTES, "{args:?}: {} bytes: {line}", line.len());
        match code {
            0 => assert!(line.starts_with("OK: ") || line.starts_with("WARN "), "{line}"),
            1 => assert!(line.starts_with("FAIL "), "{args:?}: {line}"),
            _ => assert!(line.starts_with("ERROR "), "{args:?}: {line}"),
        }
        if let Some(i) = line.find(" more): ") {
            // "STATUS id (+N more): summary": the count is never what gets cut.
            assert!(line[..i].contains(" (+"), "{line}");
            with_more += 1;
        }
    }
    assert!(with_more >= 3, "only {with_more} fixtures with several findings");
}

#[test]
fn a_run_that_cannot_work_says_why_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-root");
    let missing = missing.to_str().unwrap();
    let o = npd(&["--root", missing]);
    assert_eq!(o.status.code(), Some(2));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.starts_with("ERROR efa-doctor could not run: cannot use --root"), "{text}");
    assert!(text.trim_end().len() <= MAX_LINE_BYTES);
    assert!(!o.stderr.is_empty(), "the error still goes to stderr");

    // `check --format npd` names the same path. Every machine format writes the failed
    // run's report where it was asked to; the human table leaves it to stderr.
    let o =
        Command::new(bin()).args(["check", "--root", missing, "--format", "npd"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stdout).unwrap().starts_with("ERROR "));
    for (format, report) in
        [("human", false), ("json", true), ("junit", true), ("prometheus", true)]
    {
        let o = Command::new(bin()).args(["--root", missing, "--format", format]).output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            !o.stdout.is_empty(),
            report,
            "{format}: {:?}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // With --output FILE the line goes to the file, not to stdout.
    let file = dir.path().join("out.txt");
    let o = npd(&["--root", missing, "--output", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let line = std::fs::read_to_string(&file).unwrap();
    assert!(line.starts_with("ERROR efa-doctor could not run: cannot use --root"), "{line}");
}

/// A run that completes but whose check errored (exit 2, NPD's Unknown) names the check and
/// why: here a counter file holding garbage, which `efa.errors` will not judge as a zero.
#[test]
fn an_errored_check_says_which_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    common::copy_tree(&fixtures().join("g5-single-efa"), &root);
    let counter = root.join("sys/class/infiniband/rdmap0s27/hw_counters/reg_mr_err");
    std::fs::remove_file(&counter).unwrap();
    std::fs::write(&counter, "garbage\n").unwrap();
    let o = npd(&["--root", root.to_str().unwrap(), "--only", "efa.errors"]);
    let line = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(2), "{line}");
    assert!(line.starts_with("ERROR efa.errors: could not read 1 EFA"), "{line}");
    assert!(line.trim_end().len() <= MAX_LINE_BYTES);
}
