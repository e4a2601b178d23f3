//! Hostile and mistaken command lines: arguments that are not UTF-8, negative numbers, a
//! `--pid` that is not there, a `--log` that cannot be read. Each is a usage error (exit 2)
//! that says what was wrong, never a panic and never a run that judges nothing.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Output;

use clap::error::ErrorKind;
use common::*;

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_os(args: &[&OsStr]) -> Output {
    bin().args(args).env("NO_COLOR", "1").output().expect("binary runs")
}

fn assert_usage_error(o: &Output, needle: &str) {
    let e = err(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains(needle), "stderr lacks {needle:?}: {e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn arguments_that_are_not_utf8_are_usage_errors_or_paths() {
    let bad = OsStr::from_bytes(b"\xff\x1b[2J");
    // Where a string is required: exit 2, naming the argument (escaped) and its option.
    for opt in ["--only", "--skip", "--metrics"] {
        let o = run_os(&[OsStr::new(opt), bad]);
        assert_usage_error(
            &o,
            &format!("argument '\\xff\\x1b[2J' (after '{opt}') is not valid UTF-8"),
        );
    }
    assert_usage_error(&run_os(&[OsStr::new("explain"), bad]), "is not valid UTF-8");
    assert_usage_error(&run_os(&[bad]), "unrecognized subcommand");
    // Paths may be any bytes: they reach the command, which says what it found there.
    let root = OsStr::from_bytes(b"/nonexistent/\xff");
    assert_usage_error(&run_os(&[OsStr::new("--root"), root]), "cannot use --root");
    let log = OsStr::from_bytes(b"/nonexistent/\xff.log");
    assert_usage_error(&run_os(&[OsStr::new("logs"), log]), "not found");
    // The internal helper dispatch still works, and refuses arguments it cannot read.
    assert_usage_error(&run(&["__native", "no-such-task"]), "unknown native task");
    assert_usage_error(&run_os(&[OsStr::new("__native"), bad]), "not UTF-8");
}

/// Every (subcommand path, option) pair of the command line that takes a value.
fn value_options() -> Vec<(Vec<String>, clap::Arg)> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Arg)>) {
        for a in cmd.get_arguments() {
            if a.get_action().takes_values() {
                out.push((path.clone(), a.clone()));
            }
        }
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut out = Vec::new();
    walk(&efa_doctor::cli::command(), Vec::new(), &mut out);
    out
}

/// Parses `efa-doctor PATH... OPTION VALUE`: `Err` when the option's value was rejected (the
/// message), `Ok` otherwise (accepted, or some other error such as a missing required
/// argument, which comes after the values are parsed).
fn value_verdict(path: &[String], arg: &clap::Arg, value: &str) -> Result<(), String> {
    let mut argv: Vec<OsString> = vec!["efa-doctor".into()];
    argv.extend(path.iter().map(OsString::from));
    if let Some(long) = arg.get_long() {
        argv.push(format!("--{long}").into());
    }
    argv.push(value.into());
    match efa_doctor::cli::command().try_get_matches_from(argv) {
        Err(e) if e.kind() == ErrorKind::UnknownArgument => {
            panic!("{path:?} {:?} {value}: read as an unknown argument: {e}", arg.get_id())
        }
        Err(e) if matches!(e.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) => {
            Err(e.to_string())
        }
        _ => Ok(()),
    }
}

#[test]
fn negative_numbers_reach_the_option_and_are_rejected_by_name() {
    let mut numeric = Vec::new();
    for (path, arg) in value_options() {
        // A value that starts like a negative number is always read as the option's value,
        // never as an unknown flag (value_verdict panics on that).
        let negative = value_verdict(&path, &arg, "-1");
        // Numeric: takes `1`, refuses a word. A negative count, size, pid or duration is
        // meaningless, so it must be refused, and the message must name option and value.
        let is_numeric = value_verdict(&path, &arg, "1").is_ok()
            && value_verdict(&path, &arg, "x").is_err()
            && arg.get_long().is_some();
        if !is_numeric {
            continue;
        }
        let long = arg.get_long().unwrap();
        numeric.push(format!("{} --{long}", path.join(" ")).trim().to_string());
        let msg = negative.expect_err(&format!("{path:?} --{long} -1 was accepted"));
        assert!(msg.contains(&format!("invalid value '-1' for '--{long}")), "{msg}");
    }
    // Not vacuous: the numeric options known today are among those found.
    for known in [
        "--sample",
        "--pid",
        "check --sample",
        "check --pid",
        "snapshot --sample",
        "snapshot --pid",
        "snapshot --max-size",
        "probe mr --gpu",
        "probe mr --timeout",
        "probe pair --port",
        "probe pair --sizes",
        "probe pair --iters",
        "probe pair --stall",
        "probe pair --wait",
    ] {
        assert!(numeric.iter().any(|n| n == known), "{known} not found among {numeric:?}");
    }
}

#[test]
fn negative_numbers_through_the_binary() {
    for (args, named) in [
        (&["--sample", "-1"][..], "'--sample <SECS>'"),
        (&["--pid", "-1"][..], "'--pid <PID>'"),
        (&["snapshot", "-o", "/nonexistent/x", "--max-size", "-1"][..], "'--max-size <SIZE>'"),
        (&["probe", "mr", "--gpu", "-1"][..], "'--gpu <N>'"),
        (&["probe", "pair", "--connect", "h", "--sizes", "64,-1"][..], "'--sizes <SIZES>'"),
        (&["probe", "pair", "--listen", "--iters", "-5"][..], "'--iters <N>'"),
    ] {
        let o = run(args);
        let value = args.last().unwrap().rsplit(',').next().unwrap();
        assert_usage_error(&o, &format!("invalid value '{value}' for {named}"));
        assert!(!err(&o).contains("unexpected argument"), "{args:?}: {}", err(&o));
    }
}

#[test]
fn a_pid_that_is_not_there_is_a_usage_error() {
    let root = fixture("p5-workers").display().to_string();
    let o = run(&["--root", &root, "--pid", "424242", "--format", "json"]);
    assert_usage_error(&o, "--pid 424242: no such process");
    // The JSON asked for is the failed run's report, which says the same.
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["run"]["error"].as_str().unwrap().contains("--pid 424242: no such process"));
    assert_eq!(report["summary"]["exit_code"], 2);
    // One missing among present ones is still an error: the user asked for all of them.
    let o = run(&["check", "--root", &root, "--pid", "2001,424242,2002"]);
    assert_usage_error(&o, "--pid 424242: no such process");
    // A snapshot is not written without the process it was asked to capture.
    let d = tempfile::tempdir().unwrap();
    let snap = d.path().join("s.tar.gz");
    let o = run(&[
        "snapshot",
        "--root",
        &root,
        "--no-probe",
        "--pid",
        "424242",
        "-o",
        snap.to_str().unwrap(),
    ]);
    assert_usage_error(&o, "--pid 424242: no such process");
    assert!(!snap.exists());
    // A pid that is there still works.
    let o = run(&["--root", &root, "--pid", "2001", "--only", "process.memlock"]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", err(&o));
}

#[test]
fn a_log_that_cannot_be_read_is_a_usage_error_with_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let readable = d.path().join("ok.log");
    std::fs::write(&readable, "NET/OFI Selected provider is efa, fabric is efa (found 4 nics)\n")
        .unwrap();
    let missing = d.path().join("missing.log");
    let (ok, gone) = (readable.to_str().unwrap(), missing.to_str().unwrap());
    let root = fixture("p5-healthy").display().to_string();
    let reason = format!("{gone}: not found");
    assert_usage_error(&run(&["--root", &root, "--log", gone]), &reason);
    assert_usage_error(&run(&["--root", &root, "--log", ok, "--log", gone]), &reason);
    assert_usage_error(&run(&["logs", gone]), &reason);
    assert_usage_error(&run(&["logs", ok, gone]), &reason);
    // The readable one alone is judged as before.
    assert!(matches!(run(&["logs", ok]).status.code(), Some(0 | 1)));

    // Permission denied: as root, read as nobody (root reads any mode); otherwise mode 000.
    use std::os::unix::fs::PermissionsExt;
    let secret = d.path().join("secret.log");
    std::fs::write(&secret, "x\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let denied = |args: &[&str]| {
        let mut c = bin();
        c.args(args).env("NO_COLOR", "1");
        if nix::unistd::geteuid().is_root() {
            c.uid(65534).gid(65534);
        }
        c.output().unwrap()
    };
    let reason = format!("{}: permission denied", secret.display());
    assert_usage_error(&denied(&["logs", secret.to_str().unwrap()]), &reason);
    assert_usage_error(&denied(&["--root", &root, "--log", secret.to_str().unwrap()]), &reason);
}
