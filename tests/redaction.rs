//! Secrets planted in a worker's command line, its environment and its logs never reach a
//! report (any of the five formats) or a snapshot archive's bytes, while what the checks and
//! the operator need (hosts, schemes, the NIXL backend in `--kv-transfer-config`) survives.
//! Also when `proc/PID` is a symlink to somewhere else in the tree.

mod common;

use std::path::Path;

use common::*;

/// A command-line word that holds a planted secret, and what must survive next to it.
struct Planted {
    words: &'static [&'static str],
    secret: &'static str,
    kept: &'static str,
}

/// Every secret placement the adversarial run tried on a command line.
const CMDLINE: &[Planted] = &[
    Planted {
        words: &["--db-url", "postgres://admin:PlantA1pass@db.internal/app"],
        secret: "PlantA1pass",
        kept: "postgres://admin:[redacted]@db.internal/app",
    },
    Planted {
        words: &["https://bob:PlantB2pass@git.example.com/repo.git"],
        secret: "PlantB2pass",
        kept: "https://bob:[redacted]@git.example.com/repo.git",
    },
    Planted {
        words: &["--openai-api-base", "https://x:PlantC3pass@api.example.net/v1"],
        secret: "PlantC3pass",
        kept: "https://x:[redacted]@api.example.net/v1",
    },
    Planted {
        words: &["--header", "Authorization: Bearer PlantD4bearer"],
        secret: "PlantD4bearer",
        kept: "Authorization: Bearer [redacted]",
    },
    Planted {
        words: &["--header=Authorization: Basic PlantE5basic"],
        secret: "PlantE5basic",
        kept: "--header=Authorization: Basic [redacted]",
    },
    Planted {
        words: &["--header", "X-Api-Key: PlantF6header"],
        secret: "PlantF6header",
        kept: "X-Api-Key: [redacted]",
    },
    Planted {
        words: &["-k", "sk-PlantG7shortOptionToken000"],
        secret: "PlantG7shortOptionToken",
        kept: "-k",
    },
    Planted { words: &["-k", "PlantH8opaque0123456789xyz"], secret: "PlantH8opaque", kept: "-k" },
    Planted {
        words: &["AWS_SECRET_ACCESS_KEY=PlantI9awsSecret/K7MDENGbPxRfiCY"],
        secret: "PlantI9awsSecret",
        kept: "AWS_SECRET_ACCESS_KEY=[redacted]",
    },
    Planted { words: &["--auth", "PlantJ10auth"], secret: "PlantJ10auth", kept: "--auth" },
    Planted { words: &["--auth=PlantK11auth"], secret: "PlantK11auth", kept: "--auth=[redacted]" },
    Planted {
        words: &["--api-key", "PlantL12apikey"],
        secret: "PlantL12apikey",
        kept: "--api-key",
    },
    Planted {
        words: &["--hf-token=hf_PlantM13hftoken0000000000"],
        secret: "PlantM13hftoken",
        kept: "--hf-token=[redacted]",
    },
    Planted {
        words: &[
            "--kv-transfer-config",
            r#"{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_connector_extra_config":{"backends":["LIBFABRIC"],"api_key":"PlantN14json"}}"#,
        ],
        secret: "PlantN14json",
        kept: r#""kv_connector_extra_config":{"backends":["LIBFABRIC"],"api_key":"[redacted]"}"#,
    },
];

/// Allow-listed environment with a secret in its value; and one that is not allow-listed.
const ENVIRON: &[(&str, &str, &str)] = &[
    ("NIXL_ETCD_ENDPOINTS=http://user:PlantO15etcd@etcd:2379", "PlantO15etcd", "etcd:2379"),
    ("HF_TOKEN=hf_PlantP16envtoken00000000000", "PlantP16envtoken", "FI_PROVIDER"),
];

/// Log lines: a vLLM args dump, a token in a log, a URL password, each on a line a rule
/// matches (so it becomes evidence) and on one no rule matches (kept only in a snapshot).
const LOG: &[(&str, &str)] = &[
    (
        "(APIServer pid=2001) INFO non-default args: {'api_key': 'PlantQ17dict', 'model': 'meta-llama/Llama-3.1-8B-Instruct'}",
        "PlantQ17dict",
    ),
    ("HF_TOKEN=hf_PlantR18logtoken000000000000 exported", "PlantR18logtoken"),
    (
        "Backend UCX was instantiated for etcd http://nixl:PlantS19url@etcd.internal:2379",
        "PlantS19url",
    ),
    ("Backend UCX was instantiated key sk-PlantT20evidence00000000000", "PlantT20evidence"),
    (
        "Backend UCX was instantiated api_key=PlantU21assign Authorization: Bearer PlantV22hdr",
        "PlantU21assign",
    ),
];

fn nul_joined(words: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in words {
        out.extend_from_slice(w.as_bytes());
        out.push(0);
    }
    out
}

/// A copy of the p5-workers fixture whose vLLM worker (pid 2001) carries every planted
/// secret, and a log holding the planted log lines. With `linked`, `proc/2001` is a symlink
/// to a directory elsewhere in the tree.
fn planted_root(dir: &Path, linked: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = dir.join("root");
    copy_tree(&fixture("p5-workers"), &root);
    let mut words = vec![
        "/opt/dynamo/venv/bin/python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
    ];
    for p in CMDLINE {
        words.extend_from_slice(p.words);
    }
    let proc_dir = root.join("proc/2001");
    std::fs::write(proc_dir.join("cmdline"), nul_joined(&words)).unwrap();
    let mut env = std::fs::read(proc_dir.join("environ")).unwrap();
    for (e, _, _) in ENVIRON {
        env.extend_from_slice(e.as_bytes());
        env.push(0);
    }
    std::fs::write(proc_dir.join("environ"), env).unwrap();
    if linked {
        let elsewhere = root.join("var/lib/worker-2001");
        std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
        std::fs::rename(&proc_dir, &elsewhere).unwrap();
        std::os::unix::fs::symlink("../var/lib/worker-2001", &proc_dir).unwrap();
    }
    let log = dir.join("worker.log");
    let text: String = LOG.iter().map(|(l, _)| format!("{l}\n")).collect();
    std::fs::write(&log, text).unwrap();
    (root, log)
}

fn secrets() -> Vec<&'static str> {
    let mut s: Vec<&str> = CMDLINE.iter().map(|p| p.secret).collect();
    s.extend(ENVIRON.iter().map(|e| e.1));
    s.extend(LOG.iter().map(|l| l.1));
    s.push("PlantV22hdr");
    s
}

const FORMATS: [&str; 5] = ["human", "json", "junit", "prometheus", "npd"];

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for s in secrets() {
        assert!(!text.contains(s), "{what} leaks {s}");
    }
}

#[test]
fn planted_secrets_reach_no_report_format() {
    let d = tempfile::tempdir().unwrap();
    let (root, log) = planted_root(d.path(), false);
    for format in FORMATS {
        let o = run(&[
            "--root",
            root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--format",
            format,
            "--color",
            "never",
        ]);
        assert!(o.status.code().is_some_and(|c| c <= 2), "{format}: {o:?}");
        assert!(!o.stdout.is_empty(), "{format}: no output");
        assert_clean(format, &o.stdout);
        assert_clean(&format!("{format} stderr"), &o.stderr);
    }
    // What the checks and the operator need survives.
    let v = json(&run(&[
        "--root",
        root.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let p = v["facts"]["processes"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == 2001)
        .expect("pid 2001 inspected");
    let cmdline: Vec<&str> =
        p["cmdline"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    let joined = cmdline.join(" ");
    for planted in CMDLINE {
        assert!(joined.contains(planted.kept), "cmdline lost {:?}: {joined}", planted.kept);
    }
    assert_eq!(cmdline.iter().filter(|a| **a == "[redacted]").count(), 4, "{joined}");
    assert_eq!(p["env"]["NIXL_ETCD_ENDPOINTS"], "http://user:[redacted]@etcd:2379");
    assert_eq!(p["env"]["FI_PROVIDER"], "efa", "allow-listed values stay");
    assert!(p["env"].get("HF_TOKEN").is_none(), "not allow-listed: dropped");
    // The backend is still read from the redacted --kv-transfer-config.
    let nixl = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["id"] == "process.nixl-backend" && r["summary"].as_str().unwrap().contains("pid 2001")
        })
        .expect("a verdict for pid 2001");
    assert_eq!(nixl["value"], "LIBFABRIC", "{nixl:#}");
    // Log evidence keeps the line around the secret.
    let ucx = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "nixl.backend" && r["value"] == "UCX")
        .expect("the UCX lines are judged");
    let ev = serde_json::to_string(&ucx["evidence"]).unwrap();
    assert!(ev.contains("http://nixl:[redacted]@etcd.internal:2379"), "{ev}");
    assert!(ev.contains("api_key=[redacted] Authorization: Bearer [redacted]"), "{ev}");
}

fn snapshot_of(root: &Path, log: &Path, out: &Path) -> Vec<u8> {
    let o = run(&[
        "snapshot",
        "--root",
        root.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_clean("snapshot stderr", &o.stderr);
    gunzip_text(out).into_bytes()
}

#[test]
fn planted_secrets_stay_out_of_snapshots_and_replay_agrees() {
    let d = tempfile::tempdir().unwrap();
    let (root, log) = planted_root(d.path(), false);
    let snap = d.path().join("s.tar.gz");
    let bytes = snapshot_of(&root, &log, &snap);
    assert_clean("snapshot archive", &bytes);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("http://user:[redacted]@etcd:2379"), "the endpoint's host stays");
    assert!(text.contains("'api_key': '[redacted]', 'model': 'meta-llama/Llama-3.1-8B-Instruct'"));
    let direct = json(&run(&[
        "--root",
        root.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let replay = json(&run(&["--snapshot", snap.to_str().unwrap(), "--format", "json"]));
    // Log evidence names the captured copy, so compare the verdicts themselves.
    let verdicts = |v: &serde_json::Value| -> Vec<String> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {} {} {}", r["id"], r["status"], r["summary"], r["value"]))
            .collect()
    };
    assert_eq!(
        verdicts(&direct),
        verdicts(&replay),
        "a redacted capture replays the same verdicts"
    );
}

#[test]
fn a_symlinked_proc_pid_is_redacted_by_what_its_files_are() {
    let d = tempfile::tempdir().unwrap();
    let (root, log) = planted_root(d.path(), true);
    assert!(std::fs::symlink_metadata(root.join("proc/2001")).unwrap().file_type().is_symlink());
    let snap = d.path().join("s.tar.gz");
    let bytes = snapshot_of(&root, &log, &snap);
    assert_clean("snapshot of a symlinked proc/2001", &bytes);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("var/lib/worker-2001/environ"), "the files were captured where they are");
    assert!(!text.contains("hf_workerSECRETshouldNeverLeak42"), "the fixture's own HF_TOKEN");
    assert!(!text.contains("wJalrXUtnFEMI"), "the fixture's own AWS secret");
}

#[test]
fn gzipped_logs_are_stored_redacted() {
    let d = tempfile::tempdir().unwrap();
    let (root, log) = planted_root(d.path(), false);
    let gz = d.path().join("worker.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &std::fs::read(&log).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let snap = d.path().join("s.tar.gz");
    let bytes = snapshot_of(&root, &gz, &snap);
    assert_clean("snapshot with a gzipped log", &bytes);
    let replay = json(&run(&["--snapshot", snap.to_str().unwrap(), "--format", "json"]));
    assert!(
        replay["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "nixl.backend" && r["value"] == "UCX"),
        "the captured log is still analysed"
    );
}

/// The output pass must not touch legitimate text: on every fixture the JSON report written
/// through it is byte-for-byte serde_json's (no false positive in any fact, summary,
/// evidence or remediation).
#[test]
fn the_output_pass_changes_nothing_on_the_fixtures() {
    let mut fixtures: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("proc").is_dir() || e.path().join("sys").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 10, "{fixtures:?}");
    for fx in fixtures {
        let r = report(&fx);
        let plain = serde_json::to_string_pretty(&r).unwrap();
        let shown = efa_doctor::redact::to_json(&r, true).unwrap();
        if plain != shown {
            let diff = plain.lines().zip(shown.lines()).find(|(a, b)| a != b);
            panic!("{fx}: the output pass changed {diff:?}");
        }
    }
}

/// Real logs from upstream issues (tests/fixtures/logs) hold no credentials: redacting them
/// changes nothing, so evidence lines are shown as logged.
#[test]
fn real_logs_pass_through_unchanged() {
    let mut n = 0;
    for e in std::fs::read_dir(fixture("logs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        let out = efa_doctor::redact::bytes(&data);
        if *out != *data {
            let a = String::from_utf8_lossy(&data);
            let b = String::from_utf8_lossy(&out);
            let diff = a.lines().zip(b.lines()).find(|(x, y)| x != y);
            panic!("{}: {diff:?}", p.display());
        }
        n += 1;
    }
    assert!(n >= 20, "{n} logs");
}
