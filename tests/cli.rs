//! The command-line contract: exit codes, selectors, formats, output file, colour.

mod common;

use common::*;

fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

#[test]
fn json_report_is_valid_and_versioned() {
    let o = run(&["--root", &fx("p5-healthy"), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], "efa-doctor/1");
    assert_eq!(v["root"]["kind"], "directory");
    assert_eq!(v["facts"]["kernel"]["release"], "6.8.0-1024-aws");
    for r in v["results"].as_array().unwrap() {
        for k in ["id", "status", "summary", "evidence"] {
            assert!(r.get(k).is_some(), "result lacks {k}: {r}");
        }
    }
    assert_eq!(v["summary"]["exit_code"], 0);
}

#[test]
fn exit_codes() {
    assert_eq!(run(&["--root", &fx("p5-healthy")]).status.code(), Some(0));
    assert_eq!(run(&["--root", &fx("p5-silent-drop")]).status.code(), Some(1));
    // A warning fails only with --fail-on warn.
    assert_eq!(run(&["--root", &fx("p5-device-missing")]).status.code(), Some(0));
    assert_eq!(
        run(&["--root", &fx("p5-device-missing"), "--fail-on", "warn"]).status.code(),
        Some(1)
    );
    let o = run(&["--root", "/nonexistent/root"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot use --root"));
}

#[test]
fn selectors_by_id_and_family() {
    let o = run(&[
        "--root",
        &fx("p5-healthy"),
        "--only",
        "host",
        "--skip",
        "host.shm",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> =
        v["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|i| i.starts_with("host.") && *i != "host.shm"), "{ids:?}");
    assert!(ids.contains(&"host.memlock"));
    let o = run(&["--root", &fx("p5-healthy"), "--only", "no.such-check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown check id or family 'no.such-check'")
    );
}

#[test]
fn list_and_explain() {
    let o = run(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), efa_doctor::checks::CHECKS.len());
    for c in arr {
        assert!(c["id"].is_string() && c["title"].is_string() && c["covers"].is_array(), "{c}");
    }
    let o = run(&["explain", "kernel.gpudirect-path"]);
    let text = stdout(&o);
    for s in ["## What it checks", "## Why it matters", "## Evidence", "## Remediation", "FM08"] {
        assert!(text.contains(s), "explain lacks {s}");
    }
    assert_eq!(run(&["explain", "nope.nope"]).status.code(), Some(2));
    let v: serde_json::Value =
        serde_json::from_slice(&run(&["explain", "host.shm", "--format", "json"]).stdout).unwrap();
    assert!(v["remediation"].as_str().unwrap().contains("shm"));
}

#[test]
fn human_report_has_remediation_and_no_colour_off_a_terminal() {
    let o = run(&["--root", &fx("p5-silent-drop")]);
    let text = stdout(&o);
    assert!(text.contains("FAIL efa.traffic"), "{text}");
    assert!(text.contains("  fix: "));
    assert!(text.contains("judging"));
    assert!(!text.contains('\u{1b}'), "colour escape without a terminal");
    let o = bin().args(["--root", &fx("p5-silent-drop"), "--color", "always"]).output().unwrap();
    assert!(stdout(&o).contains('\u{1b}'));
    // The topology matrix is printed for people too.
    let o = run(&["--root", &fx("p5-healthy"), "--only", "efa.topology"]);
    assert!(stdout(&o).contains("G0=0000:53:00.0"), "{}", stdout(&o));
}

#[test]
fn junit_is_well_formed_and_maps_statuses() {
    // p5-device-missing warns on efa.devices (31 of 32 attached).
    let o = run(&["--root", &fx("p5-device-missing"), "--format", "junit"]);
    let xml = stdout(&o);
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert!(!cases.is_empty());
    let partial = cases.iter().find(|c| c.attribute("name") == Some("efa.devices")).unwrap();
    assert!(partial.children().any(|c| c.has_tag_name("skipped")), "warn must be skipped");
    let o = run(&["--root", &fx("p5-silent-drop"), "--format", "junit"]);
    let xml = stdout(&o);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let t = doc.descendants().find(|n| n.attribute("name") == Some("efa.traffic")).unwrap();
    assert!(t.children().any(|c| c.has_tag_name("failure")));
}

#[test]
fn prometheus_text_exposition() {
    let o = run(&["--root", &fx("p5-healthy"), "--format", "prometheus"]);
    let text = stdout(&o);
    let line = regex::Regex::new(r#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.eE+-]+$"#).unwrap();
    for l in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(line.is_match(l), "not exposition format: {l}");
    }
    assert!(text.contains("efa_doctor_check_status{check=\"efa.traffic\",status=\"pass\"} 1"));
    // Raw counters in node_exporter's convention; the fixture's captured sample is the later
    // reading (31,000,000 first, +50,000 in 10 s).
    assert!(text.contains("# TYPE efa_doctor_efa_port_tx_pkts_total counter\n"), "{text}");
    assert!(
        text.contains(
            "efa_doctor_efa_port_tx_pkts_total{device=\"rdmap79s0\",port=\"1\"} 31050000\n"
        )
    );
    assert!(text.contains("efa_doctor_efa_device_reg_mr_err_total{device=\"rdmap79s0\"} 0\n"));
    assert!(!text.contains("counter_rate"), "rates are Prometheus's to compute");
    // Limiting the counter series: only those above zero, or none.
    let count = |which: &str| {
        let o = run(&[
            "--root",
            &fx("p5-healthy"),
            "--format",
            "prometheus",
            "--prometheus-counters",
            which,
        ]);
        let text = stdout(&o);
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains("_total"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let (all, nonzero, none) = (count("all"), count("nonzero"), count("none"));
    assert!(all.len() > 500 && nonzero.len() < all.len(), "{} {}", all.len(), nonzero.len());
    assert!(nonzero.iter().all(|l| !l.ends_with(" 0")), "{nonzero:?}");
    assert!(all.iter().any(|l| l.ends_with("_err_total{device=\"rdmap79s0\"} 0")));
    assert!(none.is_empty());
}

#[test]
fn npd_one_line_and_exit_code() {
    let o = run(&["--root", &fx("p5-silent-drop"), "--format", "npd"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with("FAIL efa.traffic: silent drop"), "{text}");
    let o = run(&["--root", &fx("p5-healthy"), "--format", "npd"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("OK: "));
}

#[test]
fn output_file_is_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let o =
        run(&["--root", &fx("p5-healthy"), "--format", "json", "--output", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["schema"], "efa-doctor/1");
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn mistyped_check_ids_get_a_suggestion() {
    for (flag, typed) in [("--only", "efa.trafic"), ("--skip", "traffic"), ("--only", "efa,kernal")]
    {
        let o = run(&["--root", &fx("p5-healthy"), flag, typed]);
        assert_eq!(o.status.code(), Some(2), "{flag} {typed}");
        let err = String::from_utf8_lossy(&o.stderr);
        let meant = if typed.contains("kernal") { "kernel" } else { "efa.traffic" };
        assert!(err.contains(&format!("; did you mean '{meant}'?")), "{flag} {typed}: {err}");
    }
    let o = run(&["explain", "gpu.memory-heath"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did you mean 'gpu.memory-health'?"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Valid ids are not touched by the completion candidates: any catalogue id still runs.
    let o = run(&["--root", &fx("p5-healthy"), "--only", "host.shm", "--format", "npd"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn completions_and_man_are_documented_commands() {
    let help = stdout(&run(&["--help"]));
    for line in ["  completions  ", "  man  "] {
        assert!(help.contains(line), "--help lists{line}:\n{help}");
    }
    let page = stdout(&run(&["man", "probe", "mr"]));
    assert!(page.contains(".TH efa-doctor-probe-mr 1"), "{page}");
    assert!(page.contains("\\-\\-provider"), "the page documents probe mr's options");
    assert!(stdout(&run(&["man"])).contains(".TH efa-doctor 1"));
    let o = run(&["man", "probe", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("has no command 'nope' (one of: mr, pair)")
    );
    let script = stdout(&run(&["completions", "bash"]));
    assert!(
        script.contains("complete -F _efa_doctor -o nosort -o bashdefault -o default efa-doctor")
    );
}
