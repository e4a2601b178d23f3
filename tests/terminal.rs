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

// Layout, colour, the status line and `-` on a real terminal: the commands run under
// `script` (util-linux), which gives them a pty sized with `stty` as a terminal would be.

/// The output of `efa-doctor ARGS` run on a pty `cols` wide (0: a pty nobody sized),
/// everything the terminal received, with the pty's CRLF turned back into LF. `shell_tail`
/// is appended to the command line (a redirection).
fn on_terminal(cols: u16, env: &[(&str, &str)], args: &[&str], shell_tail: &str) -> String {
    // Set on the command line: script(1) takes COLUMNS and LINES out of the environment.
    let mut words = vec![
        "env".to_string(),
        "-u".into(),
        "COLUMNS".into(),
        "-u".into(),
        "NO_COLOR".into(),
        "TERM=xterm".into(),
    ];
    words.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    words.push(env!("CARGO_BIN_EXE_efa-doctor").to_string());
    words.extend(args.iter().map(|a| a.to_string()));
    let line = format!("stty cols {cols} rows 50; exec {} {shell_tail}", shell_words::join(&words));
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["60", "script", "-qec", &line, "/dev/null"]).stdin(std::process::Stdio::null());
    let o = cmd.output().expect("script(1) from util-linux runs");
    assert_ne!(o.status.code(), Some(124), "{line} did not finish");
    String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n")
}

/// The widest line of the human report's check table.
fn table_width(out: &str) -> usize {
    out.lines()
        .filter(|l| l.starts_with(['┌', '│', '├', '└', '╞']))
        .map(|l| l.chars().count())
        .max()
        .unwrap_or_else(|| panic!("no table in {out}"))
}

fn human(env: &[(&str, &str)], fixture_name: &str) -> String {
    let mut c = bin();
    c.args(["--root", fixture(fixture_name).to_str().unwrap(), "--color", "never"])
        .env_remove("COLUMNS");
    for (k, v) in env {
        c.env(k, v);
    }
    stdout(&c.output().unwrap())
}

#[test]
fn columns_sets_the_width_of_the_tables() {
    let default = human(&[], "p5-silent-drop");
    assert_eq!(table_width(&default), 120, "no terminal, no COLUMNS: 120 columns");
    let narrow = human(&[("COLUMNS", "80")], "p5-silent-drop");
    assert_eq!(table_width(&narrow), 80, "{narrow}");
    let wide = human(&[("COLUMNS", "200")], "p5-silent-drop");
    assert!((121..=200).contains(&table_width(&wide)), "{wide}");
    // Nonsense and 0 fall back; a tiny width is raised to one the table still reads in.
    assert_eq!(table_width(&human(&[("COLUMNS", "0")], "p5-silent-drop")), 120);
    assert_eq!(table_width(&human(&[("COLUMNS", "wide")], "p5-silent-drop")), 120);
    assert_eq!(table_width(&human(&[("COLUMNS", "10")], "p5-silent-drop")), 40);
    // `list` too.
    let mut c = bin();
    c.arg("list").env("COLUMNS", "90");
    assert_eq!(table_width(&stdout(&c.output().unwrap())), 90);
}

#[test]
fn a_terminal_of_zero_columns_gets_a_readable_table() {
    let root = fixture("p5-silent-drop");
    let out = on_terminal(0, &[], &["--root", root.to_str().unwrap(), "--color", "never"], "");
    assert_eq!(table_width(&out), 120, "{out}");
    assert!(out.contains("│ Status ┆ Check"), "columns are not collapsed:\n{out}");
    // A sized terminal gives its width, and COLUMNS overrides it.
    let out = on_terminal(100, &[], &["--root", root.to_str().unwrap(), "--color", "never"], "");
    assert_eq!(table_width(&out), 100, "{out}");
    let out = on_terminal(
        100,
        &[("COLUMNS", "150")],
        &["--root", root.to_str().unwrap(), "--color", "never"],
        "",
    );
    assert!((101..=150).contains(&table_width(&out)), "{out}");
}

#[test]
fn the_topology_legend_sits_under_its_matrix() {
    let out = human(&[("COLUMNS", "80")], "p5-gpu-far");
    let matrix: Vec<&str> =
        out.lines().skip_while(|l| !l.starts_with("efa.topology (")).skip(1).collect();
    let rows: Vec<&str> = matrix.iter().copied().take_while(|l| !l.trim().is_empty()).collect();
    let legend: Vec<&&str> = rows.iter().filter(|l| l.trim_start().starts_with("G0=")).collect();
    assert_eq!(legend.len(), 1, "{out}");
    // Matrix rows are as wide as their cells, not as the legend.
    let row = rows.iter().find(|l| l.contains("0000:4f:00.0")).unwrap();
    assert!(row.trim_end().len() < 70, "{row:?}");
    // The legend follows the last row, wrapped to the width, naming every column.
    let from = rows.iter().position(|l| l.trim_start().starts_with("G0=")).unwrap();
    let legend = &rows[from..];
    assert!(legend.len() >= 2 && legend.iter().all(|l| l.chars().count() <= 80), "{legend:?}");
    let text = legend.join(" ");
    for g in 0..8 {
        assert!(text.contains(&format!("G{g}=0000:")), "G{g} missing from {legend:?}");
    }
    assert!(!rows[..from].iter().any(|l| l.contains('=')), "no legend inside the table");
}

#[test]
fn term_dumb_gets_no_colour() {
    let root = fixture("p5-silent-drop");
    let args = ["--root", root.to_str().unwrap()];
    let coloured = on_terminal(120, &[("TERM", "xterm")], &args, "");
    assert!(coloured.contains("\u{1b}["), "a terminal gets colour: {coloured}");
    let dumb = on_terminal(120, &[("TERM", "dumb")], &args, "");
    assert!(!dumb.contains('\u{1b}'), "TERM=dumb: {dumb:?}");
    assert!(dumb.contains("FAIL"), "{dumb}");
    let no_color = on_terminal(120, &[("NO_COLOR", "1")], &args, "");
    assert!(!no_color.contains('\u{1b}'));
}

#[test]
fn a_status_line_on_a_terminal_while_sampling_and_nowhere_else() {
    // p5en-healthy has no captured second reading, so --sample really waits.
    let root = fixture("p5en-healthy");
    let d = tempfile::tempdir().unwrap();
    let report = d.path().join("out.txt");
    let args = ["--root", root.to_str().unwrap(), "--sample", "2.2", "--format", "npd"];
    let tail = format!("> {}", shell_words::quote(report.to_str().unwrap()));
    let seen = on_terminal(80, &[("TERM", "dumb")], &args, &tail);
    assert!(seen.contains("\refa-doctor: sampling the EFA counters: 3 s left"), "{seen:?}");
    assert!(seen.contains("\refa-doctor: sampling the EFA counters: 1 s left"), "{seen:?}");
    // Rewritten with carriage returns and blanked at the end: no escape sequence.
    assert!(!seen.contains('\u{1b}'), "{seen:?}");
    assert!(seen.trim_end_matches('\n').ends_with('\r'), "cleared: {seen:?}");
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.starts_with("OK: ") && !report.contains("sampling"), "stdout: {report:?}");
    // Cut to the terminal's width: a wrapped line could not be rewritten.
    let narrow = on_terminal(30, &[], &args, "> /dev/null");
    assert!(narrow.split('\r').all(|l| l.trim_end().chars().count() <= 29), "{narrow:?}");
    // stderr not a terminal: nothing.
    let o = bin().args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn dash_is_standard_input_and_output() {
    let d = tempfile::tempdir().unwrap();
    let snap = d.path().join("node.tar.gz");
    let root = fixture("p5-silent-drop");
    let o = run(&["snapshot", "--root", root.to_str().unwrap(), "-o", snap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let judged_file = json(&run(&["--snapshot", snap.to_str().unwrap(), "--format", "json"]));

    // `--snapshot -` from a redirected file and from a pipe, `-o -` to stdout.
    let from_file = bin()
        .args(["--snapshot", "-", "--format", "json", "-o", "-"])
        .current_dir(d.path())
        .stdin(std::fs::File::open(&snap).unwrap())
        .output()
        .unwrap();
    assert_eq!(from_file.status.code(), Some(1), "{}", String::from_utf8_lossy(&from_file.stderr));
    let v = json(&from_file);
    assert_eq!(v["root"]["kind"], "snapshot");
    assert_eq!(v["root"]["path"], "<stdin>");
    assert_eq!(v["results"], judged_file["results"], "the same verdicts as from the file");
    assert!(!d.path().join("-").exists(), "`-o -` is stdout, not a file named -");

    let mut producer = bin()
        .args(["snapshot", "--root", root.to_str().unwrap(), "-o", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let piped = bin()
        .args(["--snapshot", "-", "--format", "npd"])
        .stdin(producer.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(producer.wait().unwrap().success());
    assert!(stdout(&piped).starts_with("FAIL efa.traffic"), "{}", stdout(&piped));

    // One standard input for two readers, or a terminal as the archive: refused.
    let o = bin()
        .args(["--snapshot", "-", "--log", "-"])
        .stdin(std::fs::File::open(&snap).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot both read standard input"));
    let seen = on_terminal(80, &[], &["--snapshot", "-"], "");
    assert!(seen.contains("standard input is a terminal"), "{seen}");
}
