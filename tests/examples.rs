//! examples/ and the README's command lines: every file parses in its own format, and every
//! `efa-doctor` command line in them is accepted by the real command-line parser.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicUsize, Ordering};

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
    let in_pod: Vec<String> =
        shell_lines(&text).into_iter().filter(|l| l.starts_with("debug ")).collect();
    assert_eq!(in_pod.len(), 3);
    for line in &in_pod {
        assert!(line.contains("--root /host"), "{line}");
    }
    // The default image is the one scripts/image tags for this version.
    let image = format!("{EFA_DOCTOR_IMAGE}:{}", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&format!("IMAGE=${{2:-{image}}}")), "run.sh's default image is {image}");
}

/// What examples/kubectl-debug/run.sh did against tests/fakekubectl/kubectl, with the real
/// efa-doctor both in the "pod" (on a fixture placed at /host) and on the workstation.
struct DebugRun {
    code: i32,
    stderr: String,
    calls: Vec<String>,
    live_pods: Vec<String>,
    work: tempfile::TempDir,
}

fn run_debug_script(fixture: &Path, worker: bool) -> DebugRun {
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    let state = work.path().join("state");
    let cwd = work.path().join("cwd");
    for d in [&bin, &state, &cwd] {
        std::fs::create_dir(d).unwrap();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::os::unix::fs::symlink(repo.join("tests/fakekubectl/kubectl"), bin.join("kubectl"))
        .unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_efa-doctor"), bin.join("efa-doctor")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(examples().join("kubectl-debug/run.sh"))
        .arg("gpu-node-1")
        .arg("registry.example/efa-doctor:test")
        .current_dir(&cwd)
        .env("PATH", path)
        .env("FAKE_KUBECTL_STATE", &state)
        .env("FAKE_HOST", fixture)
        .env(
            "FAKE_WORKER_LOG",
            repo.join("tests/fixtures/logs/efa-mr-bad-address__libfabric-issue-12019.log"),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if worker {
        cmd.arg("prefill-0");
    }
    let mut child = cmd.spawn().unwrap();
    // Read stderr on a thread so a full pipe cannot stall the script.
    let mut err_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err_pipe, &mut s).unwrap();
        s
    });
    // Bounded: the script runs efa-doctor at most five times on a fixture.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("run.sh did not finish in 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap();
    let lines = |f: &str| -> Vec<String> {
        std::fs::read_to_string(state.join(f))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    };
    DebugRun {
        code: status.code().unwrap_or(-1),
        stderr,
        calls: lines("calls"),
        live_pods: lines("pods"),
        work,
    }
}

impl DebugRun {
    fn created_pods(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("Creating debugging pod "))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    }
    fn file(&self, name: &str) -> PathBuf {
        self.work.path().join("cwd").join(name)
    }
    fn assert_pods_deleted(&self) {
        let created = self.created_pods();
        assert_eq!(created.len(), 3, "{}", self.stderr);
        assert!(self.live_pods.is_empty(), "left behind: {:?}", self.live_pods);
        // All in one delete call, at the end.
        let last = self.calls.last().unwrap();
        assert!(last.starts_with("delete pod -n default"), "{last}");
        for pod in &created {
            assert!(last.split(' ').any(|a| a == pod), "{pod} not deleted: {last}");
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn kubectl_debug_script_goes_on_after_a_failing_check_and_deletes_its_pods() {
    let r = run_debug_script(&fixture("p5-silent-drop"), true);
    assert_eq!(r.code, 1, "a failing check is exit 1, not a script failure:\n{}", r.stderr);
    // Every step ran although the first one found a failing check.
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(r.file("efa-doctor-gpu-node-1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["root"]["path"], fixture("p5-silent-drop").display().to_string());
    assert!(report["summary"]["fail"].as_u64().unwrap() >= 1);
    assert!(r.file("prefill-0.log").metadata().unwrap().len() > 0);
    let bundle = std::fs::read(r.file("node-gpu-node-1.tar.gz")).unwrap();
    assert_eq!(&bundle[..2], b"\x1f\x8b", "the snapshot came out whole");
    assert!(r.stderr.contains("run.sh: snapshot report: a check failed"), "{}", r.stderr);
    assert!(r.stderr.contains("run.sh: logs of prefill-0: a check failed"), "{}", r.stderr);
    assert!(r.calls.iter().any(|c| c == "logs -n inference prefill-0"), "{:?}", r.calls);
    r.assert_pods_deleted();
}

#[test]
fn kubectl_debug_script_on_a_healthy_node_and_on_an_unreadable_one() {
    let r = run_debug_script(&fixture("p5-healthy"), false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.calls.iter().any(|c| c.starts_with("logs")), "no worker given: {:?}", r.calls);
    r.assert_pods_deleted();

    // efa-doctor exits 2 in every pod: the script still tries every step, says which could
    // not run, exits 2 and cleans up.
    let r = run_debug_script(&fixture("no-such-fixture"), false);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for step in ["human report", "JSON report", "snapshot"] {
        let said = format!("run.sh: {step}: could not run (exit 2)");
        assert!(r.stderr.contains(&said), "{}", r.stderr);
    }
    r.assert_pods_deleted();
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
    let plugin = &m["pluginConfig"];
    // Our line always fits NPD's default limit; a smaller one would cut the count.
    assert!(
        plugin["max_output_length"].as_u64().unwrap()
            >= efa_doctor::report::npd::MAX_LINE_BYTES as u64,
        "{origin}"
    );
    // No "healthy" condition before the first run, and a different failure while the
    // condition is already True replaces the message.
    assert_eq!(plugin["skip_initial_status"], true, "{origin}");
    assert_eq!(plugin["enable_message_change_based_condition_update"], true, "{origin}");
    // The default reason is also what an Unknown (exit 2) condition shows: it must not
    // claim health.
    for c in m["conditions"].as_array().unwrap() {
        let reason = c["reason"].as_str().unwrap();
        assert!(!reason.to_lowercase().contains("healthy"), "{origin}: {reason}");
    }
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// The YAML documents of a file in deploy/kubernetes/.
fn deploy_docs(name: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(deploy_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML document"))
        .collect()
}

#[test]
fn node_problem_detector_plugin_config() {
    let standalone: Value =
        serde_json::from_str(&read("node-problem-detector/efa-doctor-monitor.json")).unwrap();
    npd_monitor_checks(&standalone, "examples/node-problem-detector/efa-doctor-monitor.json");
    let deployed: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("efa-doctor-monitor.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(deployed, standalone, "the example and the deployed plugin config agree");
}

fn mount_path(c: &Value, name: &str) -> String {
    let mounts = c["volumeMounts"].as_array().unwrap();
    let m = mounts.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("no {name}"));
    m["mountPath"].as_str().unwrap().to_string()
}

/// What every node agent of the base has: the node's PID and network namespaces, the
/// node-critical priority, GPU/EFA taints tolerated, the node's root read-only at /host.
fn node_agent_checks(ds: &Value) -> &Value {
    let name = ds["metadata"]["name"].as_str().unwrap();
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostPID"], true, "{name}");
    assert_eq!(spec["hostNetwork"], true, "{name}");
    assert_eq!(spec["dnsPolicy"], "ClusterFirstWithHostNet", "{name}");
    assert_eq!(spec["priorityClassName"], "system-node-critical", "{name}");
    let tolerated: Vec<&str> = spec["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["operator"] == "Exists" && t.get("effect").is_none())
        .filter_map(|t| t["key"].as_str())
        .collect();
    for taint in ["nvidia.com/gpu", "aws.amazon.com/efa"] {
        assert!(tolerated.contains(&taint), "{name}: {taint} not tolerated");
    }
    let volumes = spec["volumes"].as_array().unwrap();
    let host = volumes.iter().find(|v| v["name"] == "host-root").unwrap();
    assert_eq!(host["hostPath"]["path"], "/");
    let c = &spec["containers"][0];
    assert_eq!(mount_path(c, "host-root"), "/host");
    let m = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "host-root");
    assert_eq!(m.unwrap()["readOnly"], true, "{name}: the node's root is read only");
    spec
}

#[test]
fn deploy_base_is_complete_and_consistent() {
    let k = &deploy_docs("kustomization.yaml")[0];
    let resources: Vec<&str> =
        k["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    // Every file of the base is used by it.
    let mut used: Vec<String> = resources.iter().map(|s| s.to_string()).collect();
    used.push("kustomization.yaml".into());
    used.push(k["configMapGenerator"][0]["files"][0].as_str().unwrap().into());
    used.push(k["patches"][0]["path"].as_str().unwrap().into());
    used.sort();
    let mut files: Vec<String> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, used, "every file of deploy/kubernetes is in the kustomization");

    // The efa-doctor image is versioned with the crate.
    let image = k["images"].as_array().unwrap().iter().find(|i| i["name"] == EFA_DOCTOR_IMAGE);
    assert_eq!(image.unwrap()["newTag"], env!("CARGO_PKG_VERSION"));

    let all: Vec<Value> = resources.iter().flat_map(|r| deploy_docs(r)).collect();
    let find = |kind: &str, name: &str| {
        all.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };

    // NPD's exporter: its node (get, patch), the node's status (patch), events.
    let role = find("ClusterRole", "efa-doctor-npd");
    let allows = |resource: &str, verb: &str| {
        role["rules"].as_array().unwrap().iter().any(|r| {
            r["apiGroups"].as_array().unwrap().iter().any(|g| g == "")
                && r["resources"].as_array().unwrap().iter().any(|x| x == resource)
                && r["verbs"].as_array().unwrap().iter().any(|v| v == verb)
        })
    };
    for (resource, verb) in [
        ("nodes", "get"),
        ("nodes", "patch"),
        ("nodes/status", "patch"),
        ("events", "create"),
        ("events", "patch"),
    ] {
        assert!(allows(resource, verb), "the NPD role cannot {verb} {resource}");
    }
    let binding = find("ClusterRoleBinding", "efa-doctor-npd");
    assert_eq!(binding["roleRef"]["name"], "efa-doctor-npd");
    assert_eq!(binding["subjects"][0]["name"], "efa-doctor-npd");
    find("ServiceAccount", "efa-doctor-npd");

    let npd_ds = find("DaemonSet", "efa-doctor-npd");
    let spec = node_agent_checks(npd_ds);
    assert_eq!(spec["serviceAccountName"], "efa-doctor-npd");
    let npd = &spec["containers"][0];
    let image = npd["image"].as_str().unwrap();
    let tag = image.strip_prefix("registry.k8s.io/node-problem-detector/node-problem-detector:v");
    let major: u32 = tag.unwrap().split('.').next().unwrap().parse().unwrap();
    assert!(major >= 1, "a current NPD: {image}");
    let args: Vec<&str> =
        npd["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let config_arg =
        args.iter().find_map(|a| a.strip_prefix("--config.custom-plugin-monitor=")).unwrap();
    // Problem metrics on the node's address, not the pod's loopback.
    assert!(args.contains(&"--prometheus-address=$(HOST_IP)"), "{args:?}");
    let monitor: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("efa-doctor-monitor.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(format!("{}/efa-doctor-monitor.json", mount_path(npd, "config")), config_arg);
    assert_eq!(
        format!("{}/efa-doctor", mount_path(npd, "efa-doctor-bin")),
        monitor["rules"][0]["path"]
    );
    let config_volume =
        spec["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "config").unwrap();
    assert_eq!(config_volume["configMap"]["name"], k["configMapGenerator"][0]["name"]);
    // The init container copies the image's binary where the plugin config runs it.
    let init = &spec["initContainers"][0];
    assert_eq!(init["image"], EFA_DOCTOR_IMAGE);
    let cp: Vec<&str> =
        init["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(cp, ["cp", "/usr/local/bin/efa-doctor", "/efa-doctor/efa-doctor"]);
    assert_eq!(mount_path(init, "efa-doctor-bin"), "/efa-doctor");

    let textfile = find("DaemonSet", "efa-doctor-textfile");
    let spec = node_agent_checks(textfile);
    assert_eq!(spec["automountServiceAccountToken"], false, "it needs no API access");
    let c = &spec["containers"][0];
    assert_eq!(c["image"], EFA_DOCTOR_IMAGE);
    let script = c["args"][0].as_str().unwrap();
    assert_eq!(check_all(&shell_lines(script), "textfile-daemonset.yaml"), 1);
    assert!(script.contains("--root /host") && script.contains("--format prometheus"));
    let out = format!("{}/efa_doctor.prom", mount_path(c, "textfile"));
    assert!(script.contains(&format!("--output {out}")), "{script}");
    let tf = spec["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "textfile").unwrap();
    assert_eq!(tf["hostPath"]["path"], "/var/lib/node_exporter/textfile_collector");
}

const EFA_DOCTOR_IMAGE: &str = "ghcr.io/efa-doctor/efa-doctor";

#[test]
fn deploy_node_affinity_is_the_instance_table() {
    let k = &deploy_docs("kustomization.yaml")[0];
    let patch = &k["patches"][0];
    assert_eq!(patch["target"]["kind"], "DaemonSet", "the affinity applies to every DaemonSet");
    let doc = &deploy_docs(patch["path"].as_str().unwrap())[0];
    let term = &doc["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchExpressions"][0];
    assert_eq!(term["key"], "node.kubernetes.io/instance-type");
    assert_eq!(term["operator"], "In");
    let listed: Vec<&str> =
        term["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let table: Vec<&str> = efa_doctor::facts::instance::table()
        .iter()
        .filter(|s| s.gpus > 0 && s.efa_devices > 0)
        .map(|s| s.instance_type.as_str())
        .collect();
    assert!(table.len() >= 10);
    assert_eq!(listed, table, "stale: run scripts/gen-node-affinity");
}

static SCRIPTS: AtomicUsize = AtomicUsize::new(0);

/// An AMI build instance for the gate examples: a scratch directory holding the paths the
/// examples write (`/tmp`, `/usr/local/bin`, `/var/log`, `/run`, moved under it), a `sudo`
/// that runs its command, and an "uploaded" efa-doctor that is the real binary judging a
/// fixture as the image's root.
struct BuildInstance {
    dir: tempfile::TempDir,
}

/// The absolute paths the gate examples use, and where each lands in a [`BuildInstance`].
const MOVED_PATHS: [(&str, &str); 4] =
    [("/tmp/", "tmp/"), ("/usr/local/bin/", "bin/"), ("/var/log/", "log/"), ("/run/", "run/")];

impl BuildInstance {
    fn new(image_root: &Path) -> BuildInstance {
        let dir = tempfile::tempdir().unwrap();
        for d in ["tmp", "bin", "log", "run", "fakebin", "local", "s3"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let write_exe = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        };
        write_exe("fakebin/sudo", "#!/bin/sh\nexec \"$@\"\n");
        // The examples name the subcommand first; the image's root follows it.
        let efa_doctor = format!(
            "#!/bin/sh\n[ \"$1\" = check ] || {{ echo \"unexpected: $*\" >&2; exit 99; }}\nshift\nexec '{}' check --root '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_efa-doctor"),
            image_root.display()
        );
        write_exe("local/efa-doctor", &efa_doctor);
        write_exe("bin/efa-doctor", &efa_doctor);
        BuildInstance { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `text` with the examples' absolute paths moved into this instance, in one pass (the
    /// scratch directory is itself under /tmp).
    fn moved(&self, text: &str) -> String {
        let re =
            regex::Regex::new(r#"(^|[\s"'>=])(/tmp/|/usr/local/bin/|/var/log/|/run/)"#).unwrap();
        re.replace_all(text, |c: &regex::Captures<'_>| {
            let to = MOVED_PATHS.iter().find(|(from, _)| *from == &c[2]).unwrap().1;
            format!("{}{}/{to}", &c[1], self.dir.path().display())
        })
        .into_owned()
    }

    /// Runs `script` (paths moved) as a file given to `interpreter` (`/bin/sh -e`): what the
    /// kernel does with the `#!/bin/sh -e` first line Packer's shell provisioner writes, and
    /// with AWSTOE's bash. Bounded by a minute.
    fn run_script(&self, interpreter: &[&str], script: &str) -> std::process::Output {
        let file = self.path(&format!("script-{}.sh", SCRIPTS.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&file, format!("{}\n", self.moved(script))).unwrap();
        let path = format!(
            "{}:{}:{}",
            self.path("fakebin").display(),
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = std::process::Command::new("timeout")
            .arg("60")
            .args(interpreter)
            .arg(&file)
            .env("PATH", path)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_ne!(child.status.code(), Some(124), "{script} did not finish in 60 s");
        child
    }
}

/// The string lines of an HCL array attribute.
fn hcl_strings(expr: &hcl::Expression) -> Vec<String> {
    let hcl::Expression::Array(items) = expr else { panic!("not an array: {expr:?}") };
    items
        .iter()
        .map(|i| match i {
            hcl::Expression::String(s) => s.clone(),
            other => panic!("not a string: {other:?}"),
        })
        .collect()
}

fn hcl_string(body: &hcl::Body, key: &str) -> Option<String> {
    body.attributes().find(|a| a.key() == key).map(|a| match a.expr() {
        hcl::Expression::String(s) => s.clone(),
        other => panic!("{key} is not a string: {other:?}"),
    })
}

/// What happened when [`packer_build`] ran the template's provisioners.
struct PackerBuild {
    /// The exit status of each provisioner that ran, in order (Packer stops at a failure).
    exits: Vec<i32>,
    stderr: String,
    /// The report the download provisioner brought back.
    report: Option<Vec<u8>>,
    instance: BuildInstance,
}

/// Runs the Packer template's provisioners in order on a [`BuildInstance`] whose image is
/// `image_root`, with Packer's semantics: a file provisioner uploads or downloads, a shell
/// provisioner's `inline` lines run as one `/bin/sh -e` script, the first failure ends the
/// build.
fn packer_build(image_root: &Path) -> PackerBuild {
    let text = read("ami-gate/efa-doctor.pkr.hcl");
    let body: hcl::Body = hcl::from_str(&text).expect("valid HCL");
    let build = body.blocks().find(|b| b.identifier() == "build").expect("a build block");
    let instance = BuildInstance::new(image_root);
    let mut run = PackerBuild { exits: Vec::new(), stderr: String::new(), report: None, instance };
    for p in build.body().blocks().filter(|b| b.identifier() == "provisioner") {
        let kind = p.labels().first().map(|l| l.as_str().to_string()).unwrap_or_default();
        let code = match kind.as_str() {
            "file" => {
                let source = hcl_string(p.body(), "source").unwrap();
                let destination = hcl_string(p.body(), "destination").unwrap();
                if hcl_string(p.body(), "direction").as_deref() == Some("download") {
                    let from = run.instance.moved(&source);
                    match std::fs::read(&from) {
                        Ok(data) => {
                            assert_eq!(destination, "reports/efa-doctor.xml");
                            run.report = Some(data);
                            0
                        }
                        Err(e) => {
                            run.stderr += &format!("download {from}: {e}\n");
                            1
                        }
                    }
                } else {
                    assert_eq!(source, "efa-doctor", "the binary beside the template");
                    let to = run.instance.moved(&destination);
                    std::fs::copy(run.instance.path("local/efa-doctor"), to).unwrap();
                    0
                }
            }
            "shell" => {
                let inline = p.body().attributes().find(|a| a.key() == "inline").unwrap();
                let o = run
                    .instance
                    .run_script(&["/bin/sh", "-e"], &hcl_strings(inline.expr()).join("\n"));
                run.stderr += &String::from_utf8_lossy(&o.stderr);
                o.status.code().unwrap_or(-1)
            }
            other => panic!("unexpected provisioner {other}"),
        };
        run.exits.push(code);
        if code != 0 {
            break;
        }
    }
    run
}

/// The `failures` attribute of the report's one `<testsuite>` (Ant's schema allows none on
/// `<testsuites>`).
fn junit_failures(xml: &[u8]) -> u64 {
    let text = std::str::from_utf8(xml).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
    suite.attribute("failures").unwrap().parse().unwrap()
}

#[test]
fn packer_gate_command_lines() {
    let text = read("ami-gate/efa-doctor.pkr.hcl");
    let body: hcl::Body = hcl::from_str(&text).expect("valid HCL");
    let build = body.blocks().find(|b| b.identifier() == "build").expect("a build block");
    let mut gate = Vec::new();
    for p in build.body().blocks().filter(|b| b.identifier() == "provisioner") {
        if let Some(inline) = p.body().attributes().find(|a| a.key() == "inline") {
            for line in hcl_strings(inline.expr()) {
                check_all(std::slice::from_ref(&line), "efa-doctor.pkr.hcl");
                gate.extend(invocations(&line));
            }
        }
    }
    // One run, judging the image, not the EFA interfaces a build instance lacks.
    assert_eq!(gate.len(), 1, "{gate:?}");
    assert!(gate[0].windows(2).any(|w| w == ["--profile", "bake"]), "{:?}", gate[0]);
}

#[test]
fn packer_gate_keeps_the_report_of_a_failing_image_and_fails_the_build() {
    let b = packer_build(&fixture("stack-ofi-nccl-mismatch"));
    // Upload, run, download: all succeed although a check failed; then the gate fails.
    assert_eq!(b.exits, [0, 0, 0, 1], "{}", b.stderr);
    let report = b.report.as_deref().expect("the report was downloaded");
    assert!(junit_failures(report) >= 1, "{}", String::from_utf8_lossy(report));
    assert!(b.stderr.contains("AMI gate: efa-doctor exited 1 (1: a check failed"), "{}", b.stderr);
    assert!(b.instance.path("bin/efa-doctor").exists(), "installed where the lines run it");
}

#[test]
fn packer_gate_passes_a_healthy_image_on_an_instance_without_efa() {
    let image = fixture("bake-no-efa");
    let b = packer_build(&image);
    assert_eq!(b.exits, [0, 0, 0, 0], "{}", b.stderr);
    assert_eq!(junit_failures(b.report.as_deref().unwrap()), 0);
    // The node profile would have failed this build: no EFA device is attached.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_efa-doctor"))
        .args(["check", "--format", "npd", "--root"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn packer_gate_fails_the_build_when_the_image_cannot_be_judged() {
    let b = packer_build(&fixture("no-such-root"));
    // efa-doctor exits 2; the report (whatever it holds) is still downloaded.
    assert_eq!(b.exits, [0, 0, 0, 2], "{}", b.stderr);
    assert!(b.report.is_some());
    assert!(b.stderr.contains("AMI gate: efa-doctor exited 2"), "{}", b.stderr);
}

/// A `{{ name }}` reference of an AWSTOE document: a parameter, a constant, a loop variable
/// or a chained input/output of another step (`phase.step.inputs[0].x`).
fn awstoe_references(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\{\{\s*([^{}]*?)\s*\}\}").unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

/// What [`image_builder_run`] saw: each step's exit status, the uploaded objects and stderr.
struct ToeRun {
    exits: Vec<(String, i32)>,
    uploaded: Vec<(String, Vec<u8>)>,
    stderr: String,
}

/// Runs the component's test phase as AWSTOE does on a test instance whose image is
/// `image_root`: ExecuteBash commands as one bash script (`bash_flags` added to its
/// shebang), S3Upload with its wildcard source, parameters substituted, the first failing
/// step ending the phase (onFailure: Abort, the default).
fn image_builder_run(image_root: &Path, bash_flags: &str) -> ToeRun {
    let doc: Value =
        serde_yaml_ng::from_str(&read("ami-gate/image-builder-component.yaml")).unwrap();
    let bucket = "reports-bucket";
    let substitute = |s: &str| s.replace("{{ ReportBucket }}", bucket);
    let instance = BuildInstance::new(image_root);
    let phase = doc["phases"].as_array().unwrap().iter().find(|p| p["name"] == "test").unwrap();
    let mut run = ToeRun { exits: Vec::new(), uploaded: Vec::new(), stderr: String::new() };
    for step in phase["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap().to_string();
        assert!(step.get("onFailure").is_none_or(|f| f == "Abort"), "{name} continues on failure");
        let code = match step["action"].as_str().unwrap() {
            "ExecuteBash" => {
                let cmds: Vec<&str> = step["inputs"]["commands"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                let bash: Vec<&str> =
                    std::iter::once("/bin/bash").chain(bash_flags.split_whitespace()).collect();
                let o = instance.run_script(&bash, &substitute(&cmds.join("\n")));
                run.stderr += &String::from_utf8_lossy(&o.stderr);
                o.status.code().unwrap_or(-1)
            }
            "S3Upload" => {
                let mut code = 0;
                for input in step["inputs"].as_array().unwrap() {
                    let source = instance.moved(input["source"].as_str().unwrap());
                    let dest = substitute(input["destination"].as_str().unwrap());
                    let dir = source.strip_suffix("/*").expect("a folder's files");
                    assert!(dest.ends_with('/'), "{dest}: a key prefix for the wildcard");
                    let files: Vec<PathBuf> = std::fs::read_dir(dir)
                        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
                        .unwrap_or_default();
                    if files.is_empty() {
                        run.stderr += &format!("S3Upload: nothing matches {source}\n");
                        code = 1;
                    }
                    for f in files {
                        let key = format!("{dest}{}", f.file_name().unwrap().to_string_lossy());
                        run.uploaded.push((key, std::fs::read(&f).unwrap()));
                    }
                }
                code
            }
            other => panic!("unexpected action {other}"),
        };
        run.exits.push((name, code));
        if code != 0 {
            break;
        }
    }
    run
}

#[test]
fn image_builder_component_command_lines_and_variables() {
    let text = read("ami-gate/image-builder-component.yaml");
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(doc["schemaVersion"], 1.0);
    let declared: Vec<String> = ["parameters", "constants"]
        .iter()
        .flat_map(|k| doc[k].as_array().cloned().unwrap_or_default())
        .flat_map(|p| p.as_object().unwrap().keys().cloned().collect::<Vec<_>>())
        .collect();
    let mut steps = Vec::new();
    let mut gate = Vec::new();
    for phase in doc["phases"].as_array().unwrap() {
        for step in phase["steps"].as_array().unwrap() {
            steps.push(format!(
                "{}.{}",
                phase["name"].as_str().unwrap(),
                step["name"].as_str().unwrap()
            ));
            if let Some(cmds) = step["inputs"]["commands"].as_array() {
                for c in cmds {
                    let lines = shell_lines(c.as_str().unwrap());
                    check_all(&lines, "image-builder-component.yaml");
                    gate.extend(lines.iter().flat_map(|l| invocations(l)));
                }
            }
            // Every reference is to something AWSTOE defines (a document that names an
            // undefined variable fails to run).
            let inputs = serde_json::to_string(&step["inputs"]).unwrap();
            for r in awstoe_references(&inputs) {
                let chained = steps.iter().any(|s| {
                    r.strip_prefix(s.as_str()).is_some_and(|rest| {
                        rest.starts_with(".inputs") || rest.starts_with(".outputs")
                    })
                });
                assert!(
                    declared.contains(&r) || r.starts_with("loop.") || chained,
                    "{{{{ {r} }}}} is not a parameter, constant, loop variable or earlier step"
                );
            }
        }
    }
    // The checks run once, judging the image.
    assert_eq!(gate.len(), 1, "{gate:?}");
    assert!(gate[0].windows(2).any(|w| w == ["--profile", "bake"]), "{:?}", gate[0]);
    assert!(declared.contains(&"ReportBucket".to_string()));
    // The undefined-variable check has teeth.
    assert_eq!(
        awstoe_references("s3://{{ imagebuilder:buildVersion }}/x"),
        ["imagebuilder:buildVersion"]
    );
}

#[test]
fn image_builder_component_uploads_the_report_of_a_failing_image_and_fails() {
    // Whether or not AWSTOE's bash stops at the first failing command.
    for flags in ["", "-e"] {
        let r = image_builder_run(&fixture("stack-ofi-nccl-mismatch"), flags);
        let exits: Vec<(&str, i32)> = r.exits.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(exits, [("RunEfaDoctor", 0), ("UploadReport", 0), ("Gate", 1)], "{}", r.stderr);
        assert_eq!(r.uploaded.len(), 1);
        let (key, report) = &r.uploaded[0];
        assert!(key.starts_with("s3://reports-bucket/efa-doctor/efa-doctor-"), "{key}");
        assert!(key.ends_with(".xml"), "{key}");
        assert!(junit_failures(report) >= 1);
        assert!(r.stderr.contains("AMI gate: efa-doctor exited 1"), "{}", r.stderr);
    }
}

#[test]
fn image_builder_component_passes_a_healthy_image() {
    for flags in ["", "-e"] {
        let r = image_builder_run(&fixture("bake-no-efa"), flags);
        let exits: Vec<(&str, i32)> = r.exits.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(exits, [("RunEfaDoctor", 0), ("UploadReport", 0), ("Gate", 0)], "{}", r.stderr);
        assert_eq!(junit_failures(&r.uploaded[0].1), 0);
    }
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
