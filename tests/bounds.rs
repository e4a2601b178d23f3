//! Issue 12, bounds: hostile inputs (snapshots, logs, rules, native helpers) are refused or
//! handled within a stated time and memory bound. Each run of the binary is itself bounded:
//! it is killed at its deadline or as soon as its peak RSS passes the bound, so a regression
//! fails fast instead of exhausting the machine.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;

/// How a bounded run ended.
#[derive(Debug)]
struct Bounded {
    /// Exit code, or `None` when killed (by us or a signal).
    code: Option<i32>,
    /// Killed because it ran past its deadline.
    timed_out: bool,
    /// Killed because its RSS passed the bound.
    over_memory: bool,
    wall: Duration,
    /// Peak resident set, KiB (VmHWM while running; `wait4`'s ru_maxrss at the end).
    peak_kib: u64,
    stdout: String,
    stderr: String,
}

impl Bounded {
    fn assert_within(&self, what: &str) {
        assert!(!self.timed_out, "{what}: ran past its deadline ({:?}): {self:?}", self.wall);
        assert!(!self.over_memory, "{what}: peak RSS {} KiB passed the bound", self.peak_kib);
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Runs `cmd` with its output in files, killing it at `deadline` or when its peak RSS passes
/// `max_rss_mib`.
#[allow(clippy::zombie_processes)] // reaped with wait4, for its rusage
fn run_bounded(mut cmd: Command, deadline: Duration, max_rss_mib: u64) -> Bounded {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (mut timed_out, mut over_memory, mut peak_kib) = (false, false, 0);
    let mut status = 0;
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child, with valid out-pointers.
        let r =
            unsafe { nix::libc::wait4(pid as i32, &mut status, nix::libc::WNOHANG, &mut usage) };
        if r == pid as i32 {
            break;
        }
        peak_kib = peak_kib.max(vm_hwm_kib(pid).unwrap_or(0));
        let kill = if peak_kib > max_rss_mib * 1024 {
            over_memory = true;
            true
        } else if start.elapsed() > deadline {
            timed_out = true;
            true
        } else {
            false
        };
        if kill {
            // SAFETY: our own, not yet reaped child.
            unsafe { nix::libc::kill(pid as i32, nix::libc::SIGKILL) };
            unsafe { nix::libc::wait4(pid as i32, &mut status, 0, &mut usage) };
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = start.elapsed();
    peak_kib = peak_kib.max(usage.ru_maxrss as u64);
    if peak_kib > max_rss_mib * 1024 {
        over_memory = true;
    }
    let code = nix::libc::WIFEXITED(status).then(|| nix::libc::WEXITSTATUS(status));
    Bounded {
        code,
        timed_out,
        over_memory,
        wall,
        peak_kib,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err).unwrap_or_default()).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Snapshots

/// Memory bound of a `--snapshot` run refused on a hostile archive.
const SNAPSHOT_RSS_MIB: u64 = 256;
const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(30);

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(raw).unwrap();
    gz.finish().unwrap()
}

/// One raw tar header block of `kind`, `name` and `size` (no data).
fn header(name: &str, kind: tar::EntryType, size: u64) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    *h.as_bytes()
}

/// A gzip stream of a header claiming `size` bytes followed by that many zeros, written in
/// blocks so the test never holds it whole.
fn extension_bomb(kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&header("././@LongLink", kind, size)).unwrap();
    let block = vec![b'a'; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        gz.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    gz.write_all(&header("proc/x", tar::EntryType::Regular, 0)).unwrap();
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

fn load_bounded(archive: &[u8]) -> Bounded {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("s.tar.gz");
    std::fs::write(&f, archive).unwrap();
    let mut cmd = bin();
    cmd.args(["--snapshot", f.to_str().unwrap(), "--format", "json"]);
    run_bounded(cmd, SNAPSHOT_DEADLINE, SNAPSHOT_RSS_MIB)
}

fn assert_refused(archive: &[u8], expect: &str, what: &str) {
    let r = load_bounded(archive);
    r.assert_within(what);
    assert_eq!(r.code, Some(2), "{what}: accepted: {r:?}");
    assert!(r.stderr.contains(expect), "{what}: {:?} lacks {expect:?}", r.stderr);
}

/// Issue 12: GNU long-name, long-link and PAX headers were read whole, past the content
/// limit (a 1.9 MB archive reached 9.8 GB). A 300 MB one must be refused from its header.
#[test]
fn snapshot_extension_headers_are_bounded() {
    let size = 300 << 20;
    for (kind, what) in [
        (tar::EntryType::GNULongName, "GNU long-name"),
        (tar::EntryType::GNULongLink, "GNU long-link"),
        (tar::EntryType::XHeader, "PAX"),
    ] {
        let bomb = extension_bomb(kind, size);
        assert_refused(
            &bomb,
            &format!("a {what} header of {size} bytes, over the 65536-byte limit"),
            what,
        );
    }
    // Within the extension limit, a name longer than PATH_MAX is still refused.
    let mut raw = Vec::new();
    let long = "a/".repeat(3000);
    raw.extend_from_slice(&header("././@LongLink", tar::EntryType::GNULongName, long.len() as u64));
    raw.extend_from_slice(long.as_bytes());
    raw.resize(raw.len().div_ceil(512) * 512, 0);
    raw.extend_from_slice(&header("x", tar::EntryType::Regular, 0));
    raw.extend_from_slice(&[0u8; 1024]);
    assert_refused(&gzip(&raw), "over the 4096-byte path limit", "long name");
}

/// A GNU tar of `n` files, each under its own top directory `depth` components deep.
fn deep_names(n: usize, depth: usize) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        let tail = "component-name-of-twenty-nine/".repeat(depth - 2);
        for i in 0..n {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, format!("top{i}/{tail}f"), std::io::empty()).unwrap();
        }
        tar.finish().unwrap();
    }
    gz.finish().unwrap()
}

/// Issue 12: deep names cost quadratic memory (each implies every parent directory, each
/// parent a copy of its prefix: 384-byte names reached 6.3 GB). Depth and length are
/// bounded, and so are the names the tree holds in all.
#[test]
fn snapshot_deep_names_are_bounded() {
    // 120 components of 30 bytes, 4000 names: 1 GB of implied parent names before the fix.
    let r = load_bounded(&deep_names(4000, 120));
    r.assert_within("deep names");
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("exceed 67108864 bytes"), "{}", r.stderr);
    assert!(r.wall < Duration::from_secs(15), "{:?}", r.wall);
    let mut raw = Vec::new();
    let name = "a/".repeat(200) + "f";
    raw.extend_from_slice(&header("././@LongLink", tar::EntryType::GNULongName, name.len() as u64));
    raw.extend_from_slice(name.as_bytes());
    raw.resize(raw.len().div_ceil(512) * 512, 0);
    raw.extend_from_slice(&header("x", tar::EntryType::Regular, 0));
    raw.extend_from_slice(&[0u8; 1024]);
    assert_refused(&gzip(&raw), "more than 128 components", "too deep");
}

fn small_archive() -> Vec<u8> {
    let mut raw = Vec::new();
    raw.extend_from_slice(&header("proc/modules", tar::EntryType::Regular, 5));
    raw.extend_from_slice(b"efa 1");
    raw.resize(1024, 0);
    raw.extend_from_slice(&[0u8; 1024]);
    raw
}

/// Issue 12: the gzip CRC was never checked and trailing garbage was ignored.
#[test]
fn snapshot_gzip_is_verified_to_its_end() {
    let good = gzip(&small_archive());
    let r = load_bounded(&good);
    assert_ne!(r.code, Some(2), "a sound archive is refused: {}", r.stderr);
    // The CRC32 is the trailer's first four bytes.
    let mut bad_crc = good.clone();
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0xff;
    assert_refused(&bad_crc, "corrupt", "CRC");
    let mut bad_len = good.clone();
    let at = bad_len.len() - 1;
    bad_len[at] ^= 0x01;
    assert_refused(&bad_len, "corrupt", "ISIZE");
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"garbage after the member");
    assert_refused(&trailing, "trailing data after the gzip stream", "trailing");
    let mut inside = small_archive();
    inside.extend_from_slice(b"hidden after the end marker");
    assert_refused(&gzip(&inside), "data after the tar end-of-archive marker", "after marker");
}

/// Issue 12: `snapshot` wrote links whose `..` climb past `/` (Linux clamps them), which
/// `--snapshot` refused. A directory root with such links round-trips.
#[test]
fn snapshot_of_links_climbing_past_the_root_loads() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let dev = root.join("sys/devices/pci0000:00/0000:00:06.0");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("vendor"), "0x1d0f\n").unwrap();
    std::fs::write(dev.join("device"), "0xefa1\n").unwrap();
    let ib = root.join("sys/class/infiniband/efa_0");
    std::fs::create_dir_all(&ib).unwrap();
    // Eight `..` from a directory four deep: four too many, clamped at `/`.
    std::os::unix::fs::symlink(
        "../../../../../../../../sys/devices/pci0000:00/0000:00:06.0",
        ib.join("device"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/../../sys/devices", root.join("sys/class/devs")).unwrap();
    let snap = d.path().join("s.tar.gz");
    let o = bin()
        .args(["snapshot", "--root", root.to_str().unwrap(), "-o", snap.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let replay =
        bin().args(["--snapshot", snap.to_str().unwrap(), "--format", "json"]).output().unwrap();
    let err = String::from_utf8_lossy(&replay.stderr);
    assert_ne!(replay.status.code(), Some(2), "snapshot output refused: {err}");
    let report: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap();
    let devices = &report["facts"]["rdma"]["devices"];
    assert_eq!(devices[0]["bdf"], "0000:00:06.0", "{devices}");
}

// ---------------------------------------------------------------------------------------
// Native helpers

fn hostile_fabric_dir() -> std::path::PathBuf {
    common::clib::hostile_fabric_dir()
}

/// True once `pid` has exited (gone, or a zombie waiting for init).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn assert_gone_soon(pid: i32, what: &str) {
    let until = Instant::now() + Duration::from_secs(3);
    while !gone(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !gone(pid) {
        // SAFETY: the test's own stray daemon.
        unsafe { nix::libc::kill(pid, nix::libc::SIGKILL) };
        panic!("{what}: process {pid} survived the helper");
    }
}

fn read_pid(file: &Path) -> i32 {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(pid) = std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < until, "no pid in {}", file.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// efa-doctor on this node with the hostile libfabric first on LD_LIBRARY_PATH.
fn live_with_hostile_fabric(
    mode: &str,
    extra: &[(&str, String)],
    deadline: Duration,
    rss_mib: u64,
) -> Bounded {
    let mut cmd = bin();
    cmd.args(["--only", "libfabric", "--format", "json"])
        .env("LD_LIBRARY_PATH", hostile_fabric_dir())
        .env("HOSTILE_FABRIC", mode)
        .env_remove("FI_PROVIDER_PATH");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    run_bounded(cmd, deadline, rss_mib)
}

/// Issue 12: a library whose fi_getinfo forks a daemon kept efa-doctor waiting on the pipes
/// the daemon holds (here 120 s) and left it running. The run now ends when the helper does
/// (well inside the 30 s libfabric deadline) and the helper's process group is killed.
#[test]
fn native_helper_daemon_neither_holds_the_run_nor_survives() {
    let d = tempfile::tempdir().unwrap();
    let pidfile = d.path().join("daemon.pid");
    let r = live_with_hostile_fabric(
        "daemon",
        &[("HOSTILE_FABRIC_PIDFILE", pidfile.display().to_string())],
        Duration::from_secs(20),
        256,
    );
    // Checked (and cleaned up) first, so a regression leaves no stray daemon behind.
    assert_gone_soon(read_pid(&pidfile), "daemon");
    r.assert_within("daemon");
    assert!(r.wall < Duration::from_secs(10), "{:?}", r.wall);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect(&r.stderr);
    assert_eq!(report["facts"]["libfabric"]["state"], "ok", "{}", report["facts"]["libfabric"]);
}

/// Issue 12: helper output was buffered whole (6.5 GB of stderr: 12.8 GB RSS). 1 GiB of
/// stderr must leave efa-doctor under 200 MiB, keeping only the tail as evidence.
#[test]
fn native_helper_output_is_bounded() {
    let r = live_with_hostile_fabric(
        "spew",
        &[("HOSTILE_FABRIC_SPEW_BYTES", (1u64 << 30).to_string())],
        Duration::from_secs(45),
        200,
    );
    r.assert_within("spew");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect(&r.stderr);
    let lf = &report["facts"]["libfabric"];
    let log = lf["log"].as_array().map_or(0, Vec::len);
    assert!(log > 0 && log <= 200, "{log} log lines kept");
    assert!(lf["log"][0].as_str().is_some_and(|l| l.len() <= 4096));
}

/// The helper runner itself: a helper that hangs with a daemon is killed at the deadline,
/// daemon included; one that writes more than its stdout bound is stopped.
#[test]
fn native_helper_group_is_killed_at_the_deadline() {
    use efa_doctor::native::{ChildError, run_bounded as run_helper};
    let d = tempfile::tempdir().unwrap();
    let pidfile = d.path().join("daemon.pid");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "echo 'step: fi_getinfo' >&2; sleep 120 & echo $! > {}; sleep 120",
        pidfile.display()
    ));
    let start = Instant::now();
    let r = run_helper(cmd, Duration::from_secs(1));
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    match r {
        Err(ChildError::Timeout { last_step, .. }) => assert_eq!(last_step, "fi_getinfo"),
        other => panic!("{other:?}"),
    }
    assert_gone_soon(read_pid(&pidfile), "daemon of a hung helper");

    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("head -c 40000000 /dev/zero");
    let r = run_helper(cmd, Duration::from_secs(20));
    match r {
        Err(ChildError::Failed(e)) => assert!(e.contains("more than 16777216 bytes"), "{e}"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Logs and rules

fn logs_run(args: &[&str], deadline: Duration, rss_mib: u64) -> Bounded {
    let mut cmd = bin();
    cmd.arg("logs").args(args);
    run_bounded(cmd, deadline, rss_mib)
}

/// Issue 12: event caps were per stream with no limit on streams (4M PIDs: 5.4 GB). 400,000
/// process ids must stay under 200 MiB, and the summary says the events were capped.
#[test]
fn log_streams_are_bounded_globally() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("pids.log");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    for pid in 0..400_000u32 {
        writeln!(
            w,
            "ip-10-0-0-1:{pid}:{pid} [0] NCCL INFO Using network Socket with a longer tail to keep"
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let r = logs_run(&[log.to_str().unwrap(), "--format", "json"], Duration::from_secs(60), 200);
    r.assert_within("400k streams");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect(&r.stderr);
    let logs = &report["facts"]["logs"];
    assert_eq!(logs["events"]["nccl.network"], 400_000, "{logs}");
    let capped = logs["capped"].as_str().unwrap_or_default();
    assert!(capped.contains("kept 20000 events") && capped.contains("380000 more"), "{capped}");
}

/// A sparse file of `len` bytes (reads as zeros, costs no disk).
fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// Issue 12: `snapshot --log` read the whole log into memory. A 1 GiB log keeps its first
/// and last 16 MiB, and the snapshot still loads.
#[test]
fn snapshot_log_is_bounded() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("huge.log");
    sparse(&log, 1 << 30);
    let snap = d.path().join("s.tar.gz");
    let root = common::fixture("p4d-healthy");
    let mut cmd = bin();
    cmd.args(["snapshot", "--root", root.to_str().unwrap(), "--log", log.to_str().unwrap()])
        .args(["-o", snap.to_str().unwrap()]);
    let r = run_bounded(cmd, Duration::from_secs(60), 256);
    r.assert_within("snapshot --log 1 GiB");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let unpacked = d.path().join("x");
    common::unpack(&snap, &unpacked);
    let kept = unpacked.join(".efa-doctor/logs/00-huge.log");
    let len = std::fs::metadata(&kept).unwrap().len();
    assert!(len > 32 << 20 && len < (32 << 20) + 200, "{len}");
    let mut cmd = bin();
    cmd.args(["--snapshot", snap.to_str().unwrap(), "--format", "json"]);
    let r = run_bounded(cmd, Duration::from_secs(60), 512);
    r.assert_within("loading it");
    assert_ne!(r.code, Some(2), "{}", r.stderr);
}

fn rules_dir(files: &[(&str, String)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

fn user_rules(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[rule]]\nid = 'site.r{i}'\nliterals = ['marker ']\nregex = 'marker (?P<n>\\d+)(?: r{i})?'\n\
                 [rule.result]\nid = 'site.check-{i}'\nstatus = 'warn'\nsummary = 'saw {{n}}'\nvalue = '{{n}}'\n"
            )
        })
        .collect()
}

/// Issue 12: `--rules` cost grew without bound (1,000 rules on 1,000 lines: 17 s). At most
/// 256 user rules are accepted, with a clear message; 256 rules sharing one literal, on
/// 2,000 lines each repeating it and matching every rule with a distinct value, finish in
/// seconds with at most 1,000 results.
#[test]
fn user_rules_are_bounded() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("x.log");
    let text: String =
        (0..2000).map(|n| format!("marker {n} {}\n", "marker ".repeat(500))).collect();
    std::fs::write(&log, text).unwrap();
    let over = rules_dir(&[
        ("a.toml", user_rules(200)),
        ("b.toml", user_rules(57).replace("site.", "site.b")),
    ]);
    let r = logs_run(
        &[log.to_str().unwrap(), "--rules", over.path().to_str().unwrap()],
        Duration::from_secs(30),
        256,
    );
    r.assert_within("257 rules");
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("more than 256 user rules"), "{}", r.stderr);

    let at = rules_dir(&[("a.toml", user_rules(256))]);
    let r = logs_run(
        &[log.to_str().unwrap(), "--rules", at.path().to_str().unwrap(), "--format", "json"],
        Duration::from_secs(20),
        256,
    );
    r.assert_within("256 rules x 2000 lines");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect(&r.stderr);
    let results = report["results"].as_array().unwrap();
    let user =
        results.iter().filter(|x| x["id"].as_str().is_some_and(|i| i.starts_with("site."))).count();
    assert_eq!(user, 1000, "user results are capped at 1000");
    let capped = report["facts"]["logs"]["capped"].as_str().unwrap_or_default();
    assert!(capped.contains("reported 1000 user-rule results"), "{capped}");
}

/// Issue 12: a user rule could emit results under a built-in check's id.
#[test]
fn user_rules_cannot_take_builtin_ids() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("x.log");
    std::fs::write(&log, "all good here\n").unwrap();
    let rules = rules_dir(&[(
        "forge.toml",
        "[[rule]]\nid = 'forge'\nliterals = ['all good']\nregex = 'all good'\n\
         [rule.result]\nid = 'efa.devices'\nstatus = 'pass'\nsummary = 'EFA is fine'\n"
            .into(),
    )]);
    let r = logs_run(
        &[log.to_str().unwrap(), "--rules", rules.path().to_str().unwrap()],
        Duration::from_secs(30),
        256,
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("result id efa.devices is a built-in check's"), "{}", r.stderr);
}

/// Issue 12: a rules file is read whole (`--rules` at /dev/zero). A 1 GiB regular file is
/// refused from its first MiB.
#[test]
fn rules_file_size_is_bounded() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("x.log");
    std::fs::write(&log, "x\n").unwrap();
    let rules = tempfile::tempdir().unwrap();
    sparse(&rules.path().join("huge.toml"), 1 << 30);
    let r = logs_run(
        &[log.to_str().unwrap(), "--rules", rules.path().to_str().unwrap()],
        Duration::from_secs(30),
        128,
    );
    r.assert_within("1 GiB rules file");
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("larger than the 1048576-byte read limit (the rules file limit)"),
        "{}",
        r.stderr
    );
}

/// Issue 12: a memory-mapped log truncated while read (logrotate `copytruncate`) killed the
/// run with SIGBUS. Logs are read, not mapped: truncation ends the input.
#[test]
fn log_truncated_while_read_is_no_crash() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("rotating.log");
    for _ in 0..3 {
        sparse(&log, 2 << 30);
        let mut cmd = bin();
        cmd.args(["logs", log.to_str().unwrap(), "--format", "json"]);
        let dir = d.path().to_path_buf();
        let log2 = log.clone();
        // Truncate shortly after the run starts, while it is reading.
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let _ = std::fs::OpenOptions::new().write(true).open(&log2).map(|f| f.set_len(0));
            dir
        });
        let r = run_bounded(cmd, Duration::from_secs(60), 256);
        t.join().unwrap();
        r.assert_within("truncated log");
        assert!(r.code.is_some(), "killed by a signal: {r:?}");
    }
}

/// What the loader reads itself now (the tar crate's extension handling read them whole)
/// still works: GNU long names and links, PAX `path` and `linkpath`.
#[test]
fn snapshot_extensions_within_bounds_still_load() {
    let long_dir = "sys/devices/".to_string() + &"pci0000:00/".repeat(12);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        tar.append_data(&mut h, format!("{long_dir}vendor"), &b"0x1"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, "sys/class/long", format!("../../{long_dir}")).unwrap();
        tar.finish().unwrap();
    }
    let packed = gz.finish().unwrap();
    let mut raw = flate2::read::GzDecoder::new(&packed[..]);
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(&mut raw, &mut tar_bytes).unwrap();
    tar_bytes.truncate(tar_bytes.len() - 1024); // drop the end marker, append PAX entries
    let pax = |out: &mut Vec<u8>, records: &str, name: &str, kind: tar::EntryType, data: &[u8]| {
        out.extend_from_slice(&header("PaxHeader", tar::EntryType::XHeader, records.len() as u64));
        out.extend_from_slice(records.as_bytes());
        out.resize(out.len().div_ceil(512) * 512, 0);
        out.extend_from_slice(&header(name, kind, data.len() as u64));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    };
    pax(&mut tar_bytes, "21 path=proc/modules\n", "ignored", tar::EntryType::Regular, b"efa 1");
    pax(&mut tar_bytes, "25 linkpath=proc/modules\n", "etc/m", tar::EntryType::Symlink, b"");
    tar_bytes.extend_from_slice(&[0u8; 1024]);
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("s.tar.gz");
    std::fs::write(&f, gzip(&tar_bytes)).unwrap();
    let root = efa_doctor::root::snapshot::load(&f).unwrap();
    assert_eq!(root.read(&format!("{long_dir}vendor")).unwrap().as_slice(), b"0x1");
    assert_eq!(root.read("sys/class/long/vendor").unwrap().as_slice(), b"0x1");
    assert_eq!(root.read("proc/modules").unwrap().as_slice(), b"efa 1");
    assert!(root.read("ignored").is_err());
    assert_eq!(root.read_link("etc/m").unwrap(), "proc/modules");
}

/// `snapshot` refuses to write what `--snapshot` would refuse, and clamps links that climb
/// past `/`: an archive written from a recording loads.
#[test]
fn archive_output_always_loads() {
    let mut rec = efa_doctor::root::Recording::default();
    rec.files.insert("sys/a/f".into(), std::sync::Arc::new(b"1".to_vec()));
    rec.links.insert("sys/a/up".into(), "../../../../../../sys/a".into());
    rec.links.insert("sys/abs".into(), "/../../../sys/a/f".into());
    rec.links.insert("top".into(), "..".into());
    let (bytes, _) =
        efa_doctor::commands::snapshot::archive(rec, Default::default(), 1 << 20).unwrap();
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("s.tar.gz");
    std::fs::write(&f, &bytes).unwrap();
    let root = efa_doctor::root::snapshot::load(&f).expect("archive output loads");
    assert_eq!(root.read("sys/a/up/f").unwrap().as_slice(), b"1");
    assert_eq!(root.read("sys/abs").unwrap().as_slice(), b"1");

    let mut rec = efa_doctor::root::Recording::default();
    rec.files.insert("d/".repeat(200) + "f", std::sync::Arc::new(Vec::new()));
    let e = efa_doctor::commands::snapshot::archive(rec, Default::default(), 1 << 20).unwrap_err();
    assert!(e.contains("over the 128-component depth limit"), "{e}");
}

/// A gzipped `--log` is kept decompressed (so it can be redacted) and cut like a plain one:
/// its first and last halves with a marker, never refused and never unbounded.
#[test]
fn snapshot_gzipped_log_is_cut_like_a_plain_one() {
    use std::io::Write as _;
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("big.log.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"first line HF_TOKEN=hf_abcdefghijklmnop\n").unwrap();
    let filler = b"an ordinary line of a long training log\n".repeat(1 << 16);
    for _ in 0..20 {
        gz.write_all(&filler).unwrap();
    }
    gz.write_all(b"last line\n").unwrap();
    std::fs::write(&log, gz.finish().unwrap()).unwrap();
    let snap = d.path().join("s.tar.gz");
    let root = common::fixture("p4d-healthy");
    let mut cmd = bin();
    cmd.args(["snapshot", "--root", root.to_str().unwrap(), "--log", log.to_str().unwrap()])
        .args(["-o", snap.to_str().unwrap()]);
    let r = run_bounded(cmd, Duration::from_secs(60), 512);
    r.assert_within("snapshot --log of a 52 MiB gzipped log");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let unpacked = d.path().join("x");
    common::unpack(&snap, &unpacked);
    let kept = std::fs::read(unpacked.join(".efa-doctor/logs/00-big.log.gz")).unwrap();
    assert!(kept.len() > 32 << 20 && kept.len() < (32 << 20) + 200, "{}", kept.len());
    let text = String::from_utf8_lossy(&kept);
    assert!(text.starts_with("first line HF_TOKEN=[redacted]"), "{}", &text[..80]);
    assert!(text.ends_with("last line\n"));
    assert!(text.contains("bytes of this log left out"));
}
