//! Every report format checked by its real consumer, on every fixture: JUnit by xmllint
//! against Jenkins' `junit-10.xsd` and the Ant schema (`../shared/schemas/junit/`), the
//! Prometheus exposition by `promtool check metrics`, the JSON report by Python's
//! `jsonschema` against the committed `schemas/efa-doctor-1.json` (`scripts/test` installs
//! all three). Also: several outputs in one run, a failed run's report in every format, and
//! `report render` giving back what the run wrote.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{bin, fixture, stdout};
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn junit_schemas() -> [PathBuf; 2] {
    let dir = repo().join("../shared/schemas/junit");
    [dir.join("junit-10.xsd"), dir.join("ant-junit.xsd")]
}

/// promtool: on PATH, or where `scripts/test` extracts it from Debian's package.
fn promtool() -> PathBuf {
    let extracted = repo().join("target/debian-prometheus/usr/bin/promtool");
    if extracted.is_file() { extracted } else { PathBuf::from("promtool") }
}

/// Every node root and captured snapshot among the fixtures, as `--root DIR` or
/// `--snapshot FILE`.
fn fixture_roots() -> Vec<[String; 2]> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(repo().join("tests/fixtures")).unwrap().flatten() {
        let p = e.path();
        if p.join("sys").is_dir() || p.join("proc").is_dir() {
            out.push(["--root".to_string(), p.display().to_string()]);
        }
    }
    for e in std::fs::read_dir(repo().join("tests/fixtures/real")).unwrap().flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(".tar.gz") {
            out.push(["--snapshot".to_string(), p.display().to_string()]);
        }
    }
    out.sort();
    assert!(out.len() >= 18, "{} fixture roots", out.len());
    out
}

/// One run writing every format: JSON, JUnit and Prometheus to files in `dir` (named by
/// `tag`), NPD's line on standard output.
struct Written {
    code: i32,
    json: PathBuf,
    junit: PathBuf,
    prometheus: PathBuf,
    npd: String,
    stderr: String,
}

fn run_writing_all(dir: &Path, tag: &str, args: &[&str]) -> Written {
    let [json, junit, prometheus] =
        ["json", "xml", "prom"].map(|ext| dir.join(format!("{tag}.{ext}")));
    let o = bin()
        .args(args)
        .args(["--format", "npd", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--prometheus")
        .arg(&prometheus)
        .output()
        .unwrap();
    Written {
        code: o.status.code().unwrap(),
        json,
        junit,
        prometheus,
        npd: stdout(&o),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// xmllint validates every file against both JUnit schemas.
fn assert_junit_valid(files: &[PathBuf]) {
    for xsd in junit_schemas() {
        let o = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .args(files)
            .output()
            .expect("xmllint is required: install libxml2-utils (scripts/test does)");
        assert!(o.status.success(), "{}:\n{}", xsd.display(), String::from_utf8_lossy(&o.stderr));
    }
}

/// `promtool check metrics` accepts the exposition without a lint complaint.
fn assert_promtool_clean(file: &Path) {
    let text = std::fs::read(file).unwrap();
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required: scripts/test extracts it from Debian's prometheus");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &text).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
        "{}: promtool: {}{}",
        file.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Validates the JSON reports with Python's jsonschema against the committed schema, made
/// strict for the test: an object property the schema does not describe is an error, so
/// every field the reports hold is in the schema. (The published schema lets later
/// versions add fields.)
fn assert_json_valid(files: &[PathBuf]) {
    const SCRIPT: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
def strict(s):
    if isinstance(s, dict):
        if "properties" in s and "additionalProperties" not in s:
            s["additionalProperties"] = False
        for v in s.values():
            strict(v)
    elif isinstance(s, list):
        for v in s:
            strict(v)
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
strict(schema)
validator = cls(schema)
bad = 0
for path in sys.argv[2:]:
    for e in validator.iter_errors(json.load(open(path))):
        bad += 1
        print(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
print(f"validated {len(sys.argv) - 2} reports with {cls.__name__}")
sys.exit(1 if bad else 0)
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(repo().join("schemas/efa-doctor-1.json"))
        .args(files)
        .output()
        .expect("python3 is required");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("Draft202012Validator"), "{out}");
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The exit code's ranking of statuses: fail over error over warn over skip over pass.
fn rank(status: &str) -> u8 {
    ["pass", "skip", "warn", "error", "fail"].iter().position(|s| *s == status).unwrap() as u8
}

/// The exposition's samples, `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// What the JUnit file says against the JSON report of the same run.
fn assert_junit_agrees(junit: &Path, report: &Value) {
    let xml = std::fs::read_to_string(junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
    let s = &report["summary"];
    let n = |k: &str| s[k].as_u64().unwrap();
    let warn_fails = s["fail_on"] == "warn";
    let attr = |k: &str| suite.attribute(k).unwrap_or_else(|| panic!("no {k}: {xml}"));
    assert_eq!(attr("tests"), report["results"].as_array().unwrap().len().to_string());
    let failures = n("fail") + if warn_fails { n("warn") } else { 0 };
    assert_eq!(attr("failures"), failures.to_string(), "{}", junit.display());
    assert_eq!(attr("errors"), n("error").to_string());
    let skipped = n("skip") + if warn_fails { 0 } else { n("warn") };
    assert_eq!(attr("skipped"), skipped.to_string());
    // The build is red exactly when the exit code says so.
    assert_eq!(failures + n("error") > 0, s["exit_code"] != 0, "{}", junit.display());
    assert_eq!(attr("hostname"), report["run"]["hostname"].as_str().unwrap());
    assert_eq!(format!("{}Z", attr("timestamp")), report["run"]["started"].as_str().unwrap());
    assert!(attr("time").parse::<f64>().is_ok());
    let props: BTreeMap<&str, &str> = suite
        .descendants()
        .filter(|p| p.has_tag_name("property"))
        .map(|p| (p.attribute("name").unwrap(), p.attribute("value").unwrap()))
        .collect();
    assert_eq!(props["exit_code"], s["exit_code"].to_string());
    assert_eq!(props["root.kind"], report["root"]["kind"].as_str().unwrap());
    if let Some(t) = report["facts"]["instance"]["instance_type"].as_str() {
        assert_eq!(props["instance_type"], t);
    }
    if let Some(k) = report["facts"]["kernel"]["release"].as_str() {
        assert_eq!(props["kernel"], k);
    }
}

/// What the exposition says against the JSON report of the same run.
fn assert_prometheus_agrees(prom: &Path, report: &Value) {
    let text = std::fs::read_to_string(prom).unwrap();
    let m = samples(&text);
    let code = report["summary"]["exit_code"].as_i64().unwrap();
    assert_eq!(m["efa_doctor_up"], if code == 2 { "0" } else { "1" }, "{}", prom.display());
    assert_eq!(m["efa_doctor_exit_code"], code.to_string());
    assert_eq!(
        m["efa_doctor_last_run_timestamp_seconds"].parse::<f64>().unwrap(),
        report["run"]["started_unix"].as_f64().unwrap()
    );
    assert!(m.contains_key("efa_doctor_last_run_duration_seconds"));
    assert!(text.contains("efa_doctor_build_info{version=\""));
    let mut worst: BTreeMap<&str, &str> = BTreeMap::new();
    for r in report["results"].as_array().unwrap() {
        let (id, st) = (r["id"].as_str().unwrap(), r["status"].as_str().unwrap());
        let w = worst.entry(id).or_insert(st);
        if rank(st) > rank(w) {
            *w = st;
        }
    }
    for (id, st) in worst {
        let key = format!("efa_doctor_check_status{{check=\"{id}\",status=\"{st}\"}}");
        assert_eq!(m.get(&key).map(String::as_str), Some("1"), "{}: {key}", prom.display());
    }
}

#[test]
fn every_fixture_in_every_format_passes_its_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let (mut junit, mut json) = (Vec::new(), Vec::new());
    let mut sampled_counters = 0;
    for (i, [flag, root]) in fixture_roots().iter().enumerate() {
        // Plain; and with --sample (the exposition's counters come from the later
        // reading) under --fail-on warn (warnings are JUnit failures).
        for (tag, extra) in [
            (format!("{i}-plain"), vec![]),
            (format!("{i}-sampled"), vec!["--sample", "0.01", "--fail-on", "warn"]),
        ] {
            let mut args = vec![flag.as_str(), root.as_str(), "--no-probe"];
            args.extend(extra);
            let w = run_writing_all(dir.path(), &tag, &args);
            assert!(matches!(w.code, 0..=2), "{args:?}: {}", w.stderr);
            let report = read_json(&w.json);
            assert_eq!(report["summary"]["exit_code"], w.code, "{args:?}");
            assert!(!w.npd.trim().is_empty() && w.npd.lines().count() == 1, "{args:?}");
            assert_promtool_clean(&w.prometheus);
            assert_prometheus_agrees(&w.prometheus, &report);
            assert_junit_agrees(&w.junit, &report);
            if tag.ends_with("sampled") && report["facts"]["rdma"]["sample"].is_object() {
                let text = std::fs::read_to_string(&w.prometheus).unwrap();
                sampled_counters +=
                    text.lines().filter(|l| l.starts_with("efa_doctor_efa_port_")).count();
            }
            junit.push(w.junit);
            json.push(w.json);
        }
    }
    assert!(sampled_counters > 100, "{sampled_counters} counter series from sampled runs");
    assert_junit_valid(&junit);
    assert_json_valid(&json);
}

/// A run that cannot do its job, for each way it can fail after the command line is read.
fn failing_runs(tmp: &Path) -> Vec<(&'static str, Vec<String>)> {
    let healthy = fixture("p5-healthy").display().to_string();
    let missing = tmp.join("missing").display().to_string();
    vec![
        ("cannot use --root", vec!["--root".into(), missing.clone()]),
        ("cannot open", vec!["--snapshot".into(), missing.clone()]),
        (
            "cannot read the logs",
            vec!["--root".into(), healthy.clone(), "--log".into(), missing.clone()],
        ),
        (
            "unknown check id or family",
            vec!["--root".into(), healthy.clone(), "--only".into(), "no.such-check".into()],
        ),
        ("no such process", vec!["--root".into(), healthy, "--pid".into(), "999999999".into()]),
        ("cannot read the logs", vec!["logs".into(), missing]),
    ]
}

#[test]
fn a_failed_run_writes_its_report_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (mut junit, mut json) = (Vec::new(), Vec::new());
    for (i, (why, args)) in failing_runs(dir.path()).into_iter().enumerate() {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        if args[0] != "logs" {
            args.push("--no-probe");
        }
        // The textfile holds the last good state; the failed run must replace it.
        let tag = format!("failed-{i}");
        let prom = dir.path().join(format!("{tag}.prom"));
        std::fs::write(&prom, "efa_doctor_up 1\n").unwrap();
        let w = run_writing_all(dir.path(), &tag, &args);
        assert_eq!(w.code, 2, "{args:?}");
        assert!(w.stderr.contains(why), "{args:?}: {}", w.stderr);
        let report = read_json(&w.json);
        assert!(report["run"]["error"].as_str().unwrap().contains(why), "{report}");
        let results = report["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{report}");
        assert_eq!(results[0]["id"], "efa-doctor.run");
        assert_eq!(results[0]["status"], "error");
        assert_eq!(report["summary"]["exit_code"], 2);
        assert!(report["facts"]["kernel"].is_null(), "a failed run claims no facts");
        let kind = if args[0] == "logs" { "none" } else { "" };
        if !kind.is_empty() {
            assert_eq!(report["root"]["kind"], kind);
        }
        let text = std::fs::read_to_string(&w.prometheus).unwrap();
        assert!(text.contains("\nefa_doctor_up 0\n"), "{text}");
        assert!(
            text.contains("efa_doctor_check_status{check=\"efa-doctor.run\",status=\"error\"} 1")
        );
        assert_promtool_clean(&w.prometheus);
        assert_prometheus_agrees(&w.prometheus, &report);
        assert_junit_agrees(&w.junit, &report);
        let xml = std::fs::read_to_string(&w.junit).unwrap();
        assert!(xml.contains("<error type=\"error\""), "{xml}");
        // NPD's condition message says why.
        assert!(w.npd.starts_with("ERROR efa-doctor could not run: "), "{}", w.npd);
        assert!(w.npd.contains(why) || w.npd.trim_end().ends_with("..."), "{}", w.npd);
        junit.push(w.junit);
        json.push(w.json);
    }
    assert_junit_valid(&junit);
    assert_json_valid(&json);
}

#[test]
fn a_failed_run_replaces_the_output_file_and_keeps_stdout_for_machines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("efa_doctor.prom");
    std::fs::write(&out, "efa_doctor_up 1\n").unwrap();
    let missing = dir.path().join("missing");
    let o = bin()
        .args(["--root", missing.to_str().unwrap(), "--format", "prometheus", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("\nefa_doctor_up 0\n"), "{text}");
    // Machine formats on standard output carry the failed run's report; the human table
    // does not repeat what standard error says.
    for (format, starts) in [("json", "{"), ("junit", "<?xml"), ("prometheus", "# HELP")] {
        let o =
            bin().args(["--root", missing.to_str().unwrap(), "--format", format]).output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(stdout(&o).starts_with(starts), "{format}: {}", stdout(&o));
    }
    let o = bin().args(["--root", missing.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot use --root"));
}

#[test]
fn several_outputs_in_one_run_beside_the_console_table() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture("p5-silent-drop");
    let [json, junit, prom] = ["r.json", "r.xml", "r.prom"].map(|f| dir.path().join(f));
    let o = bin()
        .arg("--root")
        .arg(&root)
        .args(["--no-probe", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--prometheus")
        .arg(&prom)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("FAIL efa.traffic"), "the console table: {}", stdout(&o));
    let report = read_json(&json);
    assert_eq!(report["summary"]["exit_code"], 1);
    assert_junit_agrees(&junit, &report);
    assert_prometheus_agrees(&prom, &report);
    // `-o`/`--format` still choose the main output; an extra one may take standard output
    // when the main one goes to a file.
    let main = dir.path().join("main.xml");
    let o = bin()
        .arg("--root")
        .arg(&root)
        .args(["--no-probe", "--format", "junit", "-o"])
        .arg(&main)
        .args(["--json", "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()["summary"]["exit_code"], 1);
    assert_junit_valid(&[main]);
}

#[test]
fn colliding_outputs_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture("p5-healthy");
    let same = dir.path().join("same");
    for (args, says) in [
        (vec!["--json", "-"], "the human and the json report would go to standard output"),
        (vec!["--format", "json", "--junit", "/dev/stdout"], "standard output"),
        (
            vec!["--json", same.to_str().unwrap(), "--prometheus", same.to_str().unwrap()],
            "the json and the prometheus report would go to",
        ),
    ] {
        let o = bin().arg("--root").arg(&root).arg("--no-probe").args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{args:?}: {o:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(!same.exists());
    }
}

/// `report render` of the saved JSON gives back, byte for byte, what the run itself wrote in
/// each format, and its exit code.
#[test]
fn a_saved_report_renders_as_the_run_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<Vec<String>> = fixture_roots().into_iter().map(|a| a.to_vec()).collect();
    let log = fixture("logs/efa-mr-bad-address__libfabric-issue-12019.log");
    cases.push(vec!["logs".into(), log.display().to_string()]);
    cases.push(vec!["--root".into(), dir.path().join("missing").display().to_string()]);
    for (i, args) in cases.iter().enumerate() {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        if args[0] != "logs" {
            args.push("--no-probe");
        }
        let w = run_writing_all(dir.path(), &format!("saved-{i}"), &args);
        let render = |format: &str| -> Output {
            bin()
                .args(["report", "render"])
                .arg(&w.json)
                .args(["--format", format])
                .output()
                .unwrap()
        };
        for (format, wrote) in [
            ("json", std::fs::read_to_string(&w.json).unwrap()),
            ("junit", std::fs::read_to_string(&w.junit).unwrap()),
            ("prometheus", std::fs::read_to_string(&w.prometheus).unwrap()),
            ("npd", w.npd.clone()),
        ] {
            let o = render(format);
            assert_eq!(o.status.code(), Some(w.code), "{args:?} {format}");
            assert_eq!(stdout(&o), wrote, "{args:?}: {format} differs");
        }
        let human = render("human");
        assert_eq!(human.status.code(), Some(w.code));
        assert!(!human.stdout.is_empty());
    }
}

#[test]
fn render_recounts_under_fail_on_and_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    // p5-device-missing warns (31 of 32 EFA devices) and fails nothing.
    let w = run_writing_all(
        dir.path(),
        "warns",
        &["--root", fixture("p5-device-missing").to_str().unwrap(), "--no-probe"],
    );
    assert_eq!(w.code, 0);
    let junit = dir.path().join("warn.xml");
    let o = bin()
        .args(["report", "render", "-", "--fail-on", "warn", "--format", "junit", "-o"])
        .arg(&junit)
        .stdin(std::fs::File::open(&w.json).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let mut report = read_json(&w.json);
    report["summary"]["fail_on"] = "warn".into();
    report["summary"]["exit_code"] = 1.into();
    assert_junit_agrees(&junit, &report);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure type=\"warn\""), "{xml}");
    assert_junit_valid(&[junit]);

    // Not a report, or another schema: exit 2, and nothing written.
    let bad = dir.path().join("bad.json");
    let out = dir.path().join("never.xml");
    for (content, says) in [
        ("not json", "is not an efa-doctor JSON report"),
        ("{\"schema\": \"efa-doctor/1\"}", "is not an efa-doctor JSON report"),
        (
            &std::fs::read_to_string(&w.json).unwrap().replace("efa-doctor/1", "efa-doctor/9"),
            "is a efa-doctor/9 report",
        ),
    ] {
        std::fs::write(&bad, content).unwrap();
        let o = bin()
            .args(["report", "render"])
            .arg(&bad)
            .args(["--format", "junit", "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{o:?}");
        assert!(!out.exists());
    }
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = repo().join("schemas/efa-doctor-1.json");
    let generated = efa_doctor::report::schema::text();
    if std::env::var_os("EFA_DOCTOR_UPDATE").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "schemas/efa-doctor-1.json is stale: regenerate with `EFA_DOCTOR_UPDATE=1 cargo test --test reports`"
    );
    let o = bin().args(["report", "schema"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), committed);
    let schema: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    // The logs mode's root kind is part of the contract.
    assert!(committed.contains("\"none\""), "root.kind none is documented");
}

/// Every field path the schema describes (`facts.rdma.devices[].ports[].counters.*`).
fn field_paths(schema: &Value) -> BTreeSet<String> {
    fn walk(
        s: &Value,
        defs: &Value,
        path: &str,
        refs: &mut Vec<String>,
        out: &mut BTreeSet<String>,
    ) {
        let Some(obj) = s.as_object() else { return };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/$defs/").to_string();
            if refs.contains(&name) {
                return; // a recursive type: its fields are listed once
            }
            refs.push(name.clone());
            walk(&defs[&name], defs, path, refs, out);
            refs.pop();
        }
        for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
            for sub in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
                walk(sub, defs, path, refs, out);
            }
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                out.insert(p.clone());
                walk(v, defs, &p, refs, out);
            }
        }
        if let Some(items) = obj.get("items").filter(|v| v.is_object()) {
            let p = format!("{path}[]");
            out.insert(p.clone());
            walk(items, defs, &p, refs, out);
        }
        if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
            let p = format!("{path}.*");
            out.insert(p.clone());
            walk(extra, defs, &p, refs, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, &schema["$defs"], "", &mut Vec::new(), &mut out);
    out
}

/// "Fields are only added within efa-doctor/1": `schemas/efa-doctor-1.fields` lists every
/// field path a report may hold; the schema must keep all of them. A new field is added to
/// the list (`EFA_DOCTOR_UPDATE=1 cargo test --test reports` rewrites it); a field that
/// disappears is a break of the contract.
#[test]
fn fields_are_only_added() {
    let schema: Value = serde_json::from_str(&efa_doctor::report::schema::text()).unwrap();
    let now = field_paths(&schema);
    let list = repo().join("schemas/efa-doctor-1.fields");
    if std::env::var_os("EFA_DOCTOR_UPDATE").is_some() {
        let text: String = now.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(&list, text).unwrap();
    }
    let promised: BTreeSet<String> =
        std::fs::read_to_string(&list).unwrap().lines().map(String::from).collect();
    let dropped: Vec<&String> = promised.difference(&now).collect();
    assert!(dropped.is_empty(), "fields dropped from efa-doctor/1: {dropped:#?}");
    let added: Vec<&String> = now.difference(&promised).collect();
    assert!(
        added.is_empty(),
        "new fields, not yet in schemas/efa-doctor-1.fields (EFA_DOCTOR_UPDATE=1 adds them): {added:#?}"
    );
    // Fields a consumer relies on, present since the format was first documented.
    for p in [
        "schema",
        "tool.version",
        "root.kind",
        "facts.rdma.devices[].ports[].counters.*",
        "results[].evidence[].source",
        "results[].remediation",
        "summary.exit_code",
        "run.started",
        "run.hostname",
        "run.duration_seconds",
        "run.arguments[]",
    ] {
        assert!(now.contains(p), "{p}");
    }
}

/// A run that completes with a check that errored is exit 2 too: `efa_doctor_up 0`, a JUnit
/// error, and the report keeps its facts and every other result.
#[test]
fn an_errored_check_is_exit_2_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    common::copy_tree(&fixture("g5-single-efa"), &root);
    let counter = root.join("sys/class/infiniband/rdmap0s27/hw_counters/reg_mr_err");
    std::fs::remove_file(&counter).unwrap();
    std::fs::write(&counter, "garbage\n").unwrap();
    let w =
        run_writing_all(dir.path(), "errored", &["--root", root.to_str().unwrap(), "--no-probe"]);
    assert_eq!(w.code, 2, "{}", w.stderr);
    let report = read_json(&w.json);
    assert!(report["run"].get("error").is_none(), "the run itself completed");
    assert!(report["facts"]["kernel"]["release"].is_string());
    assert!(report["results"].as_array().unwrap().len() > 10);
    let text = std::fs::read_to_string(&w.prometheus).unwrap();
    assert!(text.contains("\nefa_doctor_up 0\n"), "{text}");
    assert!(text.contains("efa_doctor_check_status{check=\"efa.errors\",status=\"error\"} 1"));
    // The counter that could not be read has no series; the others do.
    assert!(!text.contains("efa_doctor_efa_device_reg_mr_err_total"), "{text}");
    assert!(text.contains("efa_doctor_efa_device_create_qp_err_total{device=\"rdmap0s27\"} 0"));
    assert_promtool_clean(&w.prometheus);
    assert_prometheus_agrees(&w.prometheus, &report);
    assert_junit_agrees(&w.junit, &report);
    assert!(w.npd.starts_with("ERROR efa.errors: "), "{}", w.npd);
    assert_junit_valid(&[w.junit]);
    assert_json_valid(&[w.json]);
}
