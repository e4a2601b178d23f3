//! Hostile and unreadable inputs (issue 12): one way to open an input, and "unreadable is
//! never zero". FIFOs, sockets, devices, dangling links, garbage and negative counters, EACCES
//! (really exercised: as an unprivileged user when the tests run as root), unknown NVML
//! fields, unreadable roots and a planted manifest. Every run of the binary has a deadline,
//! so a regression that blocks on a FIFO fails instead of hanging the suite.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// How long one run of the binary may take here; a blocked open or read fails the test.
const DEADLINE: Duration = Duration::from_secs(60);

/// The g5 fixture's only EFA device, in the copied tree.
const DEV: &str = "sys/devices/pci0000:00/0000:00:1b.0/infiniband/rdmap0s27";

/// Runs `cmd` to completion within [`DEADLINE`]; kills it and panics past that.
fn run_with_deadline(mut cmd: Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("binary starts");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {DEADLINE:?} (blocked on an input?): {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A copy of a fixture in a fresh temporary directory that any user may traverse (so an
/// unprivileged run can reach it), and the path of the copy.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = d.path().join("root");
    copy_tree(&fixture(name), &root);
    (d, root)
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// `check --root ROOT --only IDS --format json`, as this user, within the deadline.
fn check_json(root: &Path, only: &str) -> (serde_json::Value, Output) {
    let mut cmd = bin();
    cmd.args(["check", "--root", root.to_str().unwrap(), "--only", only, "--format", "json"]);
    let o = run_with_deadline(cmd);
    (json(&o), o)
}

fn assert_status(res: &serde_json::Value, status: &str, fragments: &[&str]) {
    assert_eq!(res["status"], status, "{res:#}");
    let summary = res["summary"].as_str().unwrap();
    for f in fragments {
        assert!(summary.contains(f), "summary {summary:?} lacks {f:?}");
    }
}

/// A command that runs as an unprivileged user: `setpriv` to nobody when the tests run as
/// root (root ignores file modes, so chmod alone would not exercise EACCES), else as is.
fn unprivileged(args: &[&str]) -> Command {
    if nix::unistd::geteuid().is_root() {
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("setpriv (util-linux) is needed to test permission denied as root");
        let mut c = Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_efa-doctor"))
            .args(args);
        c
    } else {
        let mut c = bin();
        c.args(args);
        c
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---- counters: absent, FIFO, directory, dangling link, garbage, negative, EACCES ----

#[test]
fn healthy_counters_still_pass_and_an_absent_counter_is_not_an_error() {
    let (_d, root) = copy_fixture("g5-single-efa");
    // A counter older drivers lack (mmap_err came with 1.9.0): absent from the listing.
    std::fs::remove_file(root.join(DEV).join("hw_counters/mmap_err")).unwrap();
    let (r, _) = check_json(&root, "efa.errors");
    assert_status(sole_result(&r, "efa.errors"), "pass", &["all error counters are zero on 1"]);
}

/// Turns a counter file into something that cannot be read as a count.
type Plant = dyn Fn(&Path);

#[test]
fn unreadable_counters_are_errors_naming_the_counter_and_the_reason() {
    let cases: [(&str, &str, &Plant); 5] = [
        ("hw_counters/reg_mr_err", "is a fifo", &|p| mkfifo(p)),
        ("hw_counters/cmds_err", "is a directory", &|p| {
            std::fs::remove_file(p).unwrap();
            std::fs::create_dir(p).unwrap();
        }),
        ("ports/1/hw_counters/rx_drops", "not found", &|p| {
            std::fs::remove_file(p).unwrap();
            std::os::unix::fs::symlink("gone", p).unwrap();
        }),
        ("hw_counters/alloc_pd_err", "unparsable: not a decimal counter \"garbage\"", &|p| {
            std::fs::write(p, "garbage\n").unwrap()
        }),
        ("ports/1/hw_counters/rdma_read_wr_err", "unparsable: negative value \"-5\"", &|p| {
            std::fs::write(p, "-5\n").unwrap()
        }),
    ];
    for (counter, reason, plant) in cases {
        let (_d, root) = copy_fixture("g5-single-efa");
        plant(&root.join(DEV).join(counter));
        let (r, o) = check_json(&root, "efa.errors");
        let res = sole_result(&r, "efa.errors");
        let name = counter.rsplit('/').next().unwrap();
        assert_status(res, "error", &[name, reason]);
        assert!(!res["summary"].as_str().unwrap().contains("zero"), "{res:#}");
        assert_eq!(o.status.code(), Some(2), "an unjudged check makes the run unknown");
    }
}

#[test]
fn unreadable_traffic_counters_are_an_error_not_a_pass() {
    let (_d, root) = copy_fixture("g5-single-efa");
    mkfifo(&root.join(DEV).join("ports/1/hw_counters/rx_pkts"));
    let (r, _) = check_json(&root, "efa.traffic");
    assert_status(sole_result(&r, "efa.traffic"), "error", &["rx_pkts", "is a fifo"]);
}

#[test]
fn no_counter_readable_at_all_is_never_a_pass() {
    let (_d, root) = copy_fixture("g5-single-efa");
    std::fs::remove_dir_all(root.join(DEV).join("hw_counters")).unwrap();
    std::fs::remove_dir_all(root.join(DEV).join("ports/1/hw_counters")).unwrap();
    let (r, _) = check_json(&root, "efa.errors,efa.traffic");
    assert_status(
        sole_result(&r, "efa.errors"),
        "skip",
        &["no EFA device exposes an error counter"],
    );
    assert_status(
        sole_result(&r, "efa.traffic"),
        "skip",
        &["no EFA device exposes tx_pkts/rx_pkts"],
    );
}

#[test]
fn a_counter_missing_from_the_second_reading_is_not_a_zero_rise() {
    let (_d, root) = copy_fixture("p5-healthy");
    let path = root.join(".efa-doctor/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let after = m["counter_sample"]["after"].as_object_mut().unwrap();
    let (dev, counters) = after.iter_mut().next().unwrap();
    let dev = dev.clone();
    counters.as_object_mut().unwrap().remove("reg_mr_err").expect("sample has reg_mr_err");
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let (r, _) = check_json(&root, "efa.errors");
    assert_status(
        sole_result(&r, "efa.errors"),
        "error",
        &[&format!("{dev}/hw_counters/reg_mr_err: missing from the second reading")],
    );
}

#[test]
fn permission_denied_counters_and_directories_say_so() {
    // A counter file and a counter directory the user cannot read (really: as nobody).
    for (target, mode, fragment) in [
        ("hw_counters/reg_mr_err", 0o000, "reg_mr_err: permission denied"),
        ("ports/1/hw_counters", 0o700, "ports/1/hw_counters: permission denied"),
    ] {
        let (_d, root) = copy_fixture("g5-single-efa");
        chmod(&root.join(DEV).join(target), mode);
        let o = run_with_deadline(unprivileged(&[
            "check",
            "--root",
            root.to_str().unwrap(),
            "--only",
            "efa.errors",
            "--format",
            "json",
        ]));
        let r = json(&o);
        assert_status(sole_result(&r, "efa.errors"), "error", &[fragment]);
    }
}

#[test]
fn an_unreadable_directory_is_permission_denied_not_not_found() {
    // lstat of sys/class/infiniband fails with EACCES when sys/class is not searchable.
    let (_d, root) = copy_fixture("g5-single-efa");
    chmod(&root.join("sys/class"), 0o700);
    let o = run_with_deadline(unprivileged(&[
        "check",
        "--root",
        root.to_str().unwrap(),
        "--only",
        "efa.devices",
        "--format",
        "json",
    ]));
    let r = json(&o);
    let note = r["facts"]["rdma"]["notes"]["devices"].as_str().unwrap();
    assert!(note.contains("permission denied"), "{note}");
}

// ---- unreadable roots ----

#[test]
fn an_unreadable_root_is_exit_2_with_the_reason() {
    let (_d, root) = copy_fixture("g5-single-efa");
    chmod(&root, 0o700);
    let o = run_with_deadline(unprivileged(&["check", "--root", root.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "no report from a root that cannot be read");
}

#[test]
fn a_root_whose_proc_and_sys_are_unreadable_is_exit_2() {
    let (_d, root) = copy_fixture("g5-single-efa");
    chmod(&root.join("proc"), 0o700);
    chmod(&root.join("sys"), 0o700);
    let o = run_with_deadline(unprivileged(&["check", "--root", root.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("proc: permission denied"), "{}", stderr(&o));
}

#[test]
fn a_root_whose_sys_is_not_a_directory_is_refused() {
    // As root (no privilege drop): a `sys` that is a FIFO is refused at open, never read.
    let (_d, root) = copy_fixture("g5-single-efa");
    std::fs::remove_dir_all(root.join("sys")).unwrap();
    mkfifo(&root.join("sys"));
    let mut cmd = bin();
    cmd.args(["check", "--root", root.to_str().unwrap()]);
    let o = run_with_deadline(cmd);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("sys: not a directory"), "{}", stderr(&o));
}

// ---- NVML fields that are unknown ----

#[test]
fn unknown_nvml_fields_stay_unknown() {
    let (_d, root) = copy_fixture("g5-single-efa");
    let path = root.join(".efa-doctor/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for g in m["native"]["gpu"]["gpus"].as_array_mut().unwrap() {
        for field in [
            "persistence_mode",
            "ecc_enabled",
            "ecc_pending",
            "ecc_uncorrected_volatile",
            "ecc_uncorrected_aggregate",
            "remapped_rows",
        ] {
            g[field] = serde_json::Value::Null;
        }
        g["errors"] = serde_json::json!({
            "persistence_mode": "not supported",
            "ecc_mode": "not supported",
            "ecc_uncorrected_volatile": "not supported",
            "remapped_rows": "not supported",
        });
    }
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let (r, _) = check_json(&root, "gpu.inventory,gpu.memory-health");
    let inv = sole_result(&r, "gpu.inventory");
    assert_status(inv, "pass", &["persistence mode unknown on GPU 0 (not supported)"]);
    assert!(!inv["summary"].as_str().unwrap().contains("persistence mode on"), "{inv:#}");
    let mh = sole_result(&r, "gpu.memory-health");
    assert_status(mh, "skip", &["ECC mode unknown on GPU 0 (not supported)", "row remapping"]);
    assert!(!mh["summary"].as_str().unwrap().contains("ECC on"), "{mh:#}");
    assert!(r["facts"]["gpu"]["gpus"][0]["ecc_enabled"].is_null());
}

// ---- the manifest is trusted only for captures ----

#[test]
fn a_manifest_planted_in_a_mounted_host_root_is_ignored() {
    let root = fixture("g5-single-efa");
    let host = efa_doctor::root::Root::directory(&root, efa_doctor::root::RootKind::HostMount)
        .expect("fixture opens");
    let facts = efa_doctor::gather(&host, efa_doctor::facts::GatherOptions::default()).unwrap();
    assert!(facts.gpu.gpus.is_empty(), "GPU facts came from a planted manifest");
    assert_ne!(facts.gpu.state, efa_doctor::native::NativeState::Ok);
    // The same tree as a plain directory (a fixture, an extracted capture) uses it.
    let plain =
        efa_doctor::root::Root::directory(&root, efa_doctor::root::RootKind::Directory).unwrap();
    let facts = efa_doctor::gather(&plain, efa_doctor::facts::GatherOptions::default()).unwrap();
    assert_eq!(facts.gpu.gpus.len(), 8);
}

// ---- FIFOs and devices anywhere an input is read never block ----

#[test]
fn fifos_in_node_files_are_refused_without_blocking() {
    let (_d, root) = copy_fixture("g5-single-efa");
    // Without the manifest the libraries on disk are read (the stack gatherer).
    std::fs::remove_file(root.join(".efa-doctor/manifest.json")).unwrap();
    mkfifo(&root.join("proc/modules"));
    std::fs::remove_file(root.join("opt/amazon/efa/lib64/libfabric.so.1")).unwrap();
    mkfifo(&root.join("opt/amazon/efa/lib64/libfabric.so.1"));
    mkfifo(&root.join(DEV).join("node_guid"));
    let (r, _) = check_json(&root, "kernel.modules,efa.devices,stack.libfabric-copies");
    let note = r["facts"]["modules"]["notes"].to_string();
    assert!(note.contains("proc/modules: is a fifo"), "{note}");
}

#[test]
fn logs_from_a_fifo_without_a_writer_fail_clearly() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("log");
    mkfifo(&fifo);
    let mut cmd = bin();
    cmd.args(["logs", fifo.to_str().unwrap()]);
    let o = run_with_deadline(cmd);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no writer"), "{}", stderr(&o));
}

#[test]
fn logs_from_a_pipe_the_user_named_still_stream() {
    let bash = ["/bin/bash", "/usr/bin/bash"].into_iter().find(|p| Path::new(p).exists());
    let bash = bash.expect("bash is needed for process substitution");
    let mut cmd = Command::new(bash);
    cmd.arg("-c").arg(format!(
        "exec '{}' logs --format json <(sleep 0.3; printf 'x NCCL INFO Using network Socket\\n')",
        env!("CARGO_BIN_EXE_efa-doctor")
    ));
    let o = run_with_deadline(cmd);
    let r = json(&o);
    let files = r["facts"]["logs"]["files"].as_array().unwrap();
    assert_eq!(files[0]["lines"], 1, "{r:#}");
    assert!(files[0]["error"].is_null(), "{r:#}");
}

#[test]
fn rules_and_metrics_that_are_fifos_or_devices_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    mkfifo(&rules.join("planted.toml"));
    let mut cmd = bin();
    cmd.args(["logs", "--rules", rules.to_str().unwrap(), "/dev/null"]);
    let o = run_with_deadline(cmd);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a fifo, not a regular file"), "{}", stderr(&o));

    let fifo = d.path().join("metrics");
    mkfifo(&fifo);
    let (r, _) = {
        let mut cmd = bin();
        cmd.args([
            "check",
            "--root",
            fixture("g5-single-efa").to_str().unwrap(),
            "--only",
            "host.instance",
            "--metrics",
            fifo.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let o = run_with_deadline(cmd);
        (json(&o), o)
    };
    let err = r["facts"]["metrics"][0]["error"].as_str().unwrap();
    assert!(err.contains("no writer"), "{err}");

    // `snapshot --log /dev/zero` is refused before it is read, not read until memory runs out.
    let mut cmd = bin();
    cmd.args([
        "snapshot",
        "--root",
        fixture("g5-single-efa").to_str().unwrap(),
        "--log",
        "/dev/zero",
        "-o",
        d.path().join("s.tar.gz").to_str().unwrap(),
    ]);
    let o = run_with_deadline(cmd);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("character device"), "{}", stderr(&o));
}

#[test]
fn a_fifo_libfabric_on_the_loader_path_is_not_handed_to_dlopen() {
    use efa_doctor::root::{Root, RootKind};
    let d = tempfile::tempdir().unwrap();
    let lib = d.path().join("opt/amazon/efa/lib64");
    std::fs::create_dir_all(&lib).unwrap();
    mkfifo(&lib.join("libfabric.so.1"));
    let root = Root::directory_with_kind(d.path(), RootKind::Live).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(efa_doctor::facts::libfabric::gather(&root, Some("x86_64"), true));
    });
    let f = rx.recv_timeout(DEADLINE).expect("libfabric gathering blocked on a FIFO");
    assert_eq!(f.state, efa_doctor::native::NativeState::Failed, "{f:?}");
    assert!(f.error.as_deref().unwrap().contains("is a fifo"), "{f:?}");
}

#[test]
fn an_unreadable_operstate_is_unknown_not_down() {
    let (_d, root) = copy_fixture("g5-single-efa");
    let net = root.join("sys/devices/pci0000:00/0000:00:1b.0/net/eth1");
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(net.join("operstate"), "up\n").unwrap();
    let (r, _) = check_json(&root, "efa.link");
    assert_status(sole_result(&r, "efa.link"), "pass", &["network interfaces up"]);
    mkfifo(&net.join("operstate"));
    let (r, _) = check_json(&root, "efa.link");
    let res = sole_result(&r, "efa.link");
    assert_status(res, "pass", &["operstate unreadable for rdmap0s27 (eth1)"]);
    assert!(!res["summary"].as_str().unwrap().contains("interfaces up"), "{res:#}");
}

/// Issue 12: a NIXL `_api.py` in a Python environment a user controls was read with a
/// blocking open; a FIFO there hung the run. It is refused, and the rest of the stack is
/// still judged.
#[test]
fn a_fifo_nixl_api_in_a_venv_is_refused_without_blocking() {
    let (_d, root) = copy_fixture("stack-nixl-old-libfabric");
    std::fs::remove_file(root.join(".efa-doctor/manifest.json")).unwrap();
    let api = root.join("usr/local/lib/python3.12/dist-packages/nixl_cu13/_api.py");
    mkfifo(&api);
    let (r, o) = check_json(&root, "stack.nixl");
    assert_ne!(o.status.code(), Some(101), "{}", stderr(&o));
    let pkgs = r["facts"]["efa_stack"]["nixl_packages"].as_array().unwrap();
    assert!(pkgs.is_empty(), "a FIFO is no package file: {pkgs:?}");
    assert!(!r["facts"]["efa_stack"]["nixl_plugins"].as_array().unwrap().is_empty());
}
