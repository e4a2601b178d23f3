//! examples/ and the README's command lines: every file parses in its own format, and every
//! `efa-doctor` command line in them is accepted by the real command-line parser.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(examples().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Tokens that end one simple command.
fn ends_command(t: &str) -> bool {
    matches!(t, "||" | "&&" | ";" | "|" | "&")
        || t.starts_with('>')
        || t.starts_with('<')
        || t.starts_with("2>")
}

/// Whether token `i` is where a command name stands: first, after an operator, after a
/// wrapper (`sudo`, `exec`, `env`, `time`, kubectl's `--`) or an environment assignment.
fn command_position(tokens: &[String], i: usize) -> bool {
    let Some(prev) = i.checked_sub(1).map(|p| tokens[p].as_str()) else { return true };
    ends_command(prev)
        || matches!(prev, "sudo" | "exec" | "env" | "time" | "nice" | "--")
        || (prev.contains('=') && !prev.starts_with('-') && command_position(tokens, i - 1))
}

/// Every `efa-doctor ...` invocation in a shell command line (continuations already
/// joined), including those inside `sh -c '...'` strings.
fn invocations(line: &str) -> Vec<Vec<String>> {
    let line = match line.find(" #") {
        Some(i) if !line[..i].contains('\'') => &line[..i],
        _ => line,
    };
    let tokens = shell_words::split(line)
        .unwrap_or_else(|e| panic!("{line:?} does not parse as shell: {e}"));
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.contains(' ') && t.contains("efa-doctor") {
            out.extend(invocations(t));
        } else if t.rsplit('/').next() == Some("efa-doctor") && command_position(&tokens, i) {
            let args: Vec<String> =
                tokens[i + 1..].iter().take_while(|a| !ends_command(a)).cloned().collect();
            i += args.len();
            out.push(args);
        }
        i += 1;
    }
    out
}

/// The command lines of a shell text, with `\`-continued lines joined.
fn shell_lines(text: &str) -> Vec<String> {
    text.replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn assert_accepted(args: &[String], origin: &str) {
    let argv = std::iter::once("efa-doctor".to_string()).chain(args.iter().cloned());
    if let Err(e) = efa_doctor::cli::command().try_get_matches_from(argv) {
        panic!("{origin}: `efa-doctor {}` is rejected by the command line:\n{e}", args.join(" "));
    }
}

fn check_all(lines: &[String], origin: &str) -> usize {
    let mut n = 0;
    for line in lines {
        for args in invocations(line) {
            assert_accepted(&args, origin);
            n += 1;
        }
    }
    n
}

#[test]
fn the_invocation_finder_finds_what_it_should() {
    let got = invocations(
        "sudo efa-doctor check --format junit --output /tmp/x.xml || echo $? > /tmp/rc",
    );
    assert_eq!(
        got,
        vec![["check", "--format", "junit", "--output", "/tmp/x.xml"].map(String::from).to_vec()]
    );
    let got = invocations(
        "kubectl debug node/n -i --image=i -- sh -c 'efa-doctor snapshot -o /tmp/a.tar.gz >&2 && cat /tmp/a.tar.gz' > out",
    );
    assert_eq!(got, vec![["snapshot", "-o", "/tmp/a.tar.gz"].map(String::from).to_vec()]);
    assert!(
        invocations("sudo install -m 0755 /tmp/efa-doctor /usr/local/bin/efa-doctor").is_empty()
    );
    // A misspelt flag is caught.
    let bad = invocations("efa-doctor check --no-prob")[0].clone();
    let argv = std::iter::once("efa-doctor".to_string()).chain(bad);
    assert!(efa_doctor::cli::command().try_get_matches_from(argv).is_err());
}

#[test]
fn kubectl_debug_script() {
    let text = read("kubectl-debug/run.sh");
    let o = std::process::Command::new("bash")
        .arg("-n")
        .arg(examples().join("kubectl-debug/run.sh"))
        .output()
        .unwrap();
    assert!(o.status.success(), "bash -n: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(check_all(&shell_lines(&text), "kubectl-debug/run.sh"), 5);
    // Every in-cluster run judges the node's root, not the debug container.
    for line in shell_lines(&text).iter().filter(|l| l.contains("kubectl debug")) {
        assert!(line.contains("--root /host"), "{line}");
    }
}

fn npd_monitor_checks(m: &Value, origin: &str) {
    assert_eq!(m["plugin"], "custom", "{origin}");
    let conditions: Vec<&str> =
        m["conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    let rules = m["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        assert!(
            conditions.contains(&rule["condition"].as_str().unwrap()),
            "{origin}: rule for an undeclared condition"
        );
        assert!(rule["path"].as_str().unwrap().ends_with("/efa-doctor"));
        let args: Vec<String> = rule["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_accepted(&args, origin);
        // NPD reads the exit code and one short line.
        assert!(args.windows(2).any(|w| w[0] == "--format" && w[1] == "npd"), "{origin}");
        assert!(
            args.contains(&"--no-probe".to_string()),
            "{origin}: no GPU contexts every few minutes"
        );
    }
}

#[test]
fn node_problem_detector_plugin_and_daemonset() {
    let standalone: Value =
        serde_json::from_str(&read("node-problem-detector/efa-doctor-monitor.json")).unwrap();
    npd_monitor_checks(&standalone, "efa-doctor-monitor.json");

    let text = read("node-problem-detector/daemonset.yaml");
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML document"))
        .collect();
    let kind = |k: &str| docs.iter().find(|d| d["kind"] == k).unwrap_or_else(|| panic!("no {k}"));
    let cm = kind("ConfigMap");
    let embedded: Value =
        serde_json::from_str(cm["data"]["efa-doctor-monitor.json"].as_str().unwrap()).unwrap();
    npd_monitor_checks(&embedded, "daemonset.yaml ConfigMap");
    assert_eq!(
        embedded["rules"], standalone["rules"],
        "the ConfigMap and the standalone file agree"
    );

    let ds = kind("DaemonSet");
    let spec = &ds["spec"]["template"]["spec"];
    let npd = &spec["containers"][0];
    let config_arg = npd["command"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a.as_str().unwrap().strip_prefix("--config.custom-plugin-monitor="))
        .unwrap();
    let mount = |c: &Value, name: &str| -> String {
        c["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap()["mountPath"].as_str().unwrap().to_string()
    };
    // The plugin config, the binary and the host root are where the config says.
    assert_eq!(format!("{}/efa-doctor-monitor.json", mount(npd, "config")), config_arg);
    assert_eq!(
        format!("{}/efa-doctor", mount(npd, "efa-doctor-bin")),
        embedded["rules"][0]["path"]
    );
    assert_eq!(mount(npd, "host-root"), "/host");
    let volumes = spec["volumes"].as_array().unwrap();
    assert_eq!(volumes.iter().find(|v| v["name"] == "host-root").unwrap()["hostPath"]["path"], "/");
    let init = &spec["initContainers"][0];
    assert!(init["command"].to_string().contains("/efa-doctor/efa-doctor"));
    assert_eq!(mount(init, "efa-doctor-bin"), "/efa-doctor");
}

#[test]
fn packer_gate() {
    let text = read("ami-gate/efa-doctor.pkr.hcl");
    let body: hcl::Body = hcl::from_str(&text).expect("valid HCL");
    let build = body.blocks().find(|b| b.identifier() == "build").expect("a build block");
    let mut n = 0;
    let mut downloads_report = false;
    for p in build.body().blocks().filter(|b| b.identifier() == "provisioner") {
        let kind = p.labels().first().map(|l| l.as_str().to_string()).unwrap_or_default();
        for attr in p.body().attributes() {
            match (kind.as_str(), attr.key()) {
                ("shell", "inline") => {
                    let hcl::Expression::Array(lines) = attr.expr() else {
                        panic!("inline is not an array")
                    };
                    for l in lines {
                        let hcl::Expression::String(s) = l else { continue };
                        n += check_all(std::slice::from_ref(s), "efa-doctor.pkr.hcl");
                    }
                }
                ("file", "source") => {
                    if let hcl::Expression::String(s) = attr.expr() {
                        downloads_report |= s.ends_with("efa-doctor.xml");
                    }
                }
                _ => {}
            }
        }
    }
    assert_eq!(n, 2);
    assert!(downloads_report, "the JUnit report is kept");
}

#[test]
fn image_builder_component() {
    let doc: Value =
        serde_yaml_ng::from_str(&read("ami-gate/image-builder-component.yaml")).unwrap();
    assert_eq!(doc["schemaVersion"], 1.0);
    let mut n = 0;
    for phase in doc["phases"].as_array().unwrap() {
        for step in phase["steps"].as_array().unwrap() {
            if let Some(cmds) = step["inputs"]["commands"].as_array() {
                let lines: Vec<String> =
                    cmds.iter().map(|c| c.as_str().unwrap().to_string()).collect();
                n += check_all(&lines, "image-builder-component.yaml");
            }
        }
    }
    assert_eq!(n, 2);
}

/// `[Section]` / `Key=Value` of a systemd unit.
fn unit(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
        } else {
            let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("not a unit line: {line}"));
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[test]
fn prometheus_textfile_timer() {
    let service = unit(&read("prometheus-textfile/efa-doctor-textfile.service"));
    let get = |u: &[(String, String, String)], s: &str, k: &str| {
        u.iter().find(|(a, b, _)| a == s && b == k).map(|(_, _, v)| v.clone())
    };
    let exec = get(&service, "Service", "ExecStart").expect("ExecStart");
    assert_eq!(check_all(std::slice::from_ref(&exec), "efa-doctor-textfile.service"), 1);
    assert!(
        exec.contains("--format prometheus")
            && exec.contains("--output /var/lib/node_exporter/textfile_collector/")
    );
    assert_eq!(get(&service, "Service", "Type").as_deref(), Some("oneshot"));
    assert!(
        get(&service, "Service", "SuccessExitStatus").unwrap().split_whitespace().any(|c| c == "1")
    );
    let timer = unit(&read("prometheus-textfile/efa-doctor-textfile.timer"));
    assert!(get(&timer, "Timer", "OnUnitActiveSec").is_some());
    assert_eq!(get(&timer, "Install", "WantedBy").as_deref(), Some("timers.target"));
}

#[test]
fn readme_command_lines() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut lines = Vec::new();
    let mut in_sh = false;
    for l in readme.lines() {
        if l.starts_with("```") {
            in_sh = l == "```sh";
            continue;
        }
        if in_sh {
            lines.push(l.to_string());
        }
    }
    assert!(check_all(&lines, "README.md") >= 10);
}

#[test]
fn every_example_file_is_tested() {
    let tested = [
        "README.md",
        "kubectl-debug/run.sh",
        "node-problem-detector/efa-doctor-monitor.json",
        "node-problem-detector/daemonset.yaml",
        "ami-gate/efa-doctor.pkr.hcl",
        "ami-gate/image-builder-component.yaml",
        "prometheus-textfile/efa-doctor-textfile.service",
        "prometheus-textfile/efa-doctor-textfile.timer",
    ];
    let mut found = Vec::new();
    for dir in std::fs::read_dir(examples()).unwrap().flatten() {
        if dir.path().is_dir() {
            for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
                found.push(format!(
                    "{}/{}",
                    dir.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                ));
            }
        } else {
            found.push(dir.file_name().to_string_lossy().into_owned());
        }
    }
    found.sort();
    let mut want: Vec<String> = tested.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(found, want, "a new example needs a test");
}
