//! Untrusted text never reaches a terminal, a label or an XML document raw: a process name,
//! a DMI string, the kernel release, a module version and a log line that hold escape
//! sequences (or bidi overrides) are shown with those characters written visibly, in every
//! format, while the tool's own colours keep working.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const CLEAR: &str = "\u{1b}[2J";

/// A p5-workers copy whose node strings and worker 2007's name carry terminal sequences, a
/// log line that clears the screen and forges a verdict, and a user rule that puts a
/// captured piece of such a line into its summary.
fn hostile_root(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let root = dir.join("root");
    copy_tree(&fixture("p5-workers"), &root);
    let dmi = root.join("sys/devices/virtual/dmi/id");
    std::fs::create_dir_all(&dmi).unwrap();
    std::fs::write(dmi.join("product_name"), "p5.48xlarge\u{1b}]0;owned\u{7}\n").unwrap();
    std::fs::write(root.join("proc/sys/kernel/osrelease"), "6.8.0-1024-aws\u{1b}[31m\n").unwrap();
    std::fs::write(root.join("sys/module/efa/version"), "2.17.3g\u{1b}[1A\n").unwrap();
    std::fs::write(root.join("proc/2007/comm"), "\u{1b}[2Jpy\u{202e}thon\u{9b}0m\n").unwrap();
    let log = dir.join("w.log");
    std::fs::write(
        &log,
        format!("{CLEAR}\u{1b}[H ALL CHECKS PASSED\r Backend UCX was instantiated\nother line\n"),
    )
    .unwrap();
    let rules = dir.join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("site.toml"),
        r#"
[[rule]]
id = "site.forged"
literals = ["ALL CHECKS"]
regex = '(?P<msg>.*ALL CHECKS PASSED)'
[rule.result]
id = "site.forged"
status = "fail"
summary = "forged: {msg}"
remediation = "none"
value = "{msg}"
"#,
    )
    .unwrap();
    (root, log, rules)
}

fn run_on(root: &Path, log: &Path, rules: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--root",
        root.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--pid",
        "2001,2007",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// No byte of a terminal control sequence or a bidi override from the inputs is left.
fn assert_no_raw_controls(what: &str, out: &str) {
    assert!(!out.contains('\u{1b}'), "{what}: raw ESC in {out:?}");
    assert!(!out.contains('\u{9b}') && !out.contains('\u{202e}'), "{what}: raw C1/bidi");
    assert!(!out.contains('\u{7}') && !out.contains('\r'), "{what}: raw BEL/CR");
}

#[test]
fn hostile_node_text_is_shown_visibly_in_every_format() {
    let d = tempfile::tempdir().unwrap();
    let (root, log, rules) = hostile_root(d.path());

    let human = stdout(&run_on(&root, &log, &rules, &["--color", "never"]));
    assert_no_raw_controls("human", &human);
    for visible in [
        "p5.48xlarge\\x1b]0;owned\\x07",
        "kernel 6.8.0-1024-aws\\x1b[31m",
        "2.17.3g\\x1b[1A",
        "\\x1b[2Jpy\\u{202e}thon\\u{9b}0m (pid 2007)",
        "\\x1b[2J\\x1b[H ALL CHECKS PASSED\\r Backend UCX was instantiated",
    ] {
        assert!(human.contains(visible), "human output lacks {visible:?}:\n{human}");
    }

    // `logs` judges the log alone, so the user rule's failure is the line NPD shows.
    let npd = stdout(&run(&[
        "logs",
        log.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--format",
        "npd",
    ]));
    assert_no_raw_controls("npd", &npd);
    assert!(
        npd.starts_with("FAIL site.forged (+1 more): forged: \\x1b[2J\\x1b[H ALL CHECKS PASSED"),
        "{npd}"
    );
    assert_eq!(npd.lines().count(), 1);

    let prom = stdout(&run_on(&root, &log, &rules, &["--format", "prometheus"]));
    assert_no_raw_controls("prometheus", &prom);
    assert!(
        prom.contains(
            r#"instance_type="p5.48xlarge\\x1b]0;owned\\x07",kernel="6.8.0-1024-aws\\x1b[31m""#
        ),
        "{prom}"
    );

    let junit = stdout(&run_on(&root, &log, &rules, &["--format", "junit"]));
    assert_no_raw_controls("junit", &junit);
    let doc = roxmltree::Document::parse(&junit).expect("JUnit output is well-formed XML 1.0");
    let forged = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("site.forged"))
        .expect("the user rule's case");
    let failure = forged.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert!(failure.attribute("message").unwrap().contains("forged: \\x1b[2J"), "{junit}");
    // Each result's JSON is a line of the suite's system-out (a case may hold none).
    let system_out = doc.descendants().find(|n| n.has_tag_name("system-out")).unwrap();
    let result: serde_json::Value = system_out
        .text()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["id"] == "site.forged")
        .expect("the user rule's JSON line");
    assert_eq!(result["summary"], "forged: \u{1b}[2J\u{1b}[H ALL CHECKS PASSED", "lossless JSON");

    let json_out = stdout(&run_on(&root, &log, &rules, &["--format", "json"]));
    assert_no_raw_controls("json", &json_out);
    let v: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["facts"]["kernel"]["release"], "6.8.0-1024-aws\u{1b}[31m", "JSON keeps the value");
}

#[test]
fn the_tools_own_colours_still_work() {
    let d = tempfile::tempdir().unwrap();
    let (root, log, rules) = hostile_root(d.path());
    let human = stdout(&run_on(&root, &log, &rules, &["--color", "always"]));
    assert!(human.contains("\u{1b}["), "colour sequences are emitted");
    assert!(!human.contains(CLEAR) && !human.contains("\u{1b}]0;"), "none from the inputs");
    assert!(human.contains("\\x1b[2J"));
}

#[test]
fn error_messages_show_control_characters_visibly() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join(format!("missing{CLEAR}\u{1b}]0;x\u{7}"));
    let o = run(&["--root", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("missing\\x1b[2J\\x1b]0;x\\x07"), "{err}");
}

#[test]
fn the_snapshot_summary_on_stderr_shows_the_root_visibly() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join(format!("node{CLEAR}"));
    copy_tree(&fixture("p5-healthy"), &root);
    let out = d.path().join("s.tar.gz");
    let o = run(&["snapshot", "--root", root.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("node\\x1b[2J"), "{err}");
}
