//! Writing outputs (`-o`, `snapshot -o`) into a directory someone else may control: nothing is
//! written outside the named file, links are not written through, modes are never widened,
//! devices are written only when named directly, and nothing hangs.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DEADLINE: Duration = Duration::from_secs(60);
const PRECIOUS: &[u8] = b"precious: must survive\n";

fn healthy() -> String {
    fixture("p5-healthy").display().to_string()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Waits for `child` at most [`DEADLINE`], killing it past that (a write that blocks must
/// fail the test, not hang it). Its piped output is drained meanwhile, so a large report
/// cannot block it on a full pipe.
fn wait_with_deadline(mut child: Child) -> Output {
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                r.read_to_end(&mut v).unwrap();
            }
            v
        })
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            let err = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
            panic!("efa-doctor still running after {DEADLINE:?}: {err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// `efa-doctor --root p5-healthy --format json -o OUT`, with a deadline.
fn report_to(out: &Path) -> Output {
    let child = bin()
        .args(["--root", &healthy(), "--format", "json", "-o"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_deadline(child)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_report(bytes: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("a JSON report");
    assert_eq!(v["schema"], "efa-doctor/1");
}

fn victim(dir: &Path) -> PathBuf {
    let v = dir.join("victim");
    std::fs::write(&v, PRECIOUS).unwrap();
    v
}

#[test]
fn planted_links_at_temporary_names_are_never_followed() {
    let d = tempfile::tempdir().unwrap();
    let target = victim(d.path());
    let out = d.path().join("report.json");
    // Start through a shell that waits, so the pid efa-doctor will have (exec keeps it) is
    // known before it runs: the old temporary name `.report.json.tmp.PID` can be planted.
    let mut child = Command::new("sh")
        .args(["-c", "read _; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_efa-doctor"))
        .args(["--root", &healthy(), "--format", "json", "-o"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut planted = vec![d.path().join(format!(".report.json.tmp.{pid}"))];
    // And many names of the shape the temporary file has now (its random part cannot be
    // guessed; O_EXCL is what makes a collision harmless).
    for i in 0..256 {
        planted.push(d.path().join(format!(".efa-doctor-{i:06}.tmp")));
        planted.push(d.path().join(format!(".report.json.tmp.{}", pid + 1 + i)));
    }
    for p in &planted {
        std::os::unix::fs::symlink(&target, p).unwrap();
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let o = wait_with_deadline(child);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(&target).unwrap(), PRECIOUS, "the link target was written");
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert!(meta.file_type().is_file(), "the report is a regular file, not a planted link");
    assert_report(&std::fs::read(&out).unwrap());
    for p in &planted {
        assert_eq!(std::fs::read_link(p).unwrap(), target, "{} was touched", p.display());
    }
    // Exactly the planted links, the victim and the report: no temporary file left.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), planted.len() + 2);
}

#[test]
fn a_link_at_the_target_is_replaced_not_written_through() {
    let d = tempfile::tempdir().unwrap();
    let target = victim(d.path());
    let out = d.path().join("efa.prom");
    std::os::unix::fs::symlink(&target, &out).unwrap();
    let o = report_to(&out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(&target).unwrap(), PRECIOUS);
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert!(meta.file_type().is_file());
    // The new file does not take the mode of whatever the link pointed at.
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_report(&std::fs::read(&out).unwrap());

    // A dangling link is replaced too, never created through.
    let out = d.path().join("dangling.json");
    let nowhere = d.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&nowhere, &out).unwrap();
    let o = report_to(&out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!nowhere.exists(), "the dangling link was followed");
    assert!(std::fs::symlink_metadata(&out).unwrap().file_type().is_file());
}

#[test]
fn new_reports_are_0600_and_existing_modes_and_owners_are_kept() {
    let d = tempfile::tempdir().unwrap();
    let new = d.path().join("new.json");
    let o = report_to(&new);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o7777, 0o600);
    // An existing 0600 report stays 0600 (it used to become 0644), a 0640 one stays 0640.
    for mode in [0o600, 0o640] {
        let p = d.path().join(format!("existing-{mode:o}.json"));
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        }
        let o = report_to(&p);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, mode, "mode {mode:o} changed");
        if is_root() {
            assert_eq!((m.uid(), m.gid()), (65534, 65534), "owner not kept");
        }
        assert_report(&std::fs::read(&p).unwrap());
    }
}

#[test]
fn directories_sockets_and_block_devices_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    let sock = d.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let dir_link = d.path().join("dir-link");
    std::os::unix::fs::symlink(&dir, &dir_link).unwrap();
    let null_link = d.path().join("null-link");
    std::os::unix::fs::symlink("/dev/null", &null_link).unwrap();
    let mut cases = vec![
        (dir.clone(), "it is a directory"),
        (sock.clone(), "it is a socket"),
        (dir_link, "it is a symbolic link to a directory"),
        (null_link, "it is a symbolic link to a character device"),
    ];
    if is_root() {
        // A device number no driver serves, so even a wrong write could reach no disk.
        let blk = d.path().join("blk");
        let dev = nix::sys::stat::makedev(7, 254);
        nix::sys::stat::mknod(
            &blk,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
            dev,
        )
        .unwrap();
        let blk_link = d.path().join("blk-link");
        std::os::unix::fs::symlink(&blk, &blk_link).unwrap();
        cases.push((blk.clone(), "it is a block device"));
        cases.push((blk_link, "it is a symbolic link to a block device"));
    } else {
        eprintln!("not root: the block-device cases need mknod and are left out");
    }
    for (path, why) in cases {
        let o = report_to(&path);
        assert_eq!(o.status.code(), Some(2), "{}", path.display());
        let err = stderr(&o);
        assert!(
            err.contains("refusing to write") && err.contains(why),
            "{}: {err}",
            path.display()
        );
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    assert!(std::fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        if is_root() { 6 } else { 4 },
        "no temporary file left"
    );
}

#[test]
fn a_fifo_is_written_in_place_and_one_without_a_reader_fails_at_once() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("report.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();

    // No reader: a clear error, not a process blocked in open(2) forever.
    let o = report_to(&fifo);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no process has it open for reading"), "{}", stderr(&o));

    // A reader: the report goes through the FIFO, which stays a FIFO. The reader does not
    // block, so a failing efa-doctor cannot hang the test either.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    for via in [fifo.clone(), d.path().join("fifo-link")] {
        if via != fifo {
            std::os::unix::fs::symlink(&fifo, &via).unwrap();
        }
        let mut child = bin()
            .args(["--root", &healthy(), "--format", "json", "-o"])
            .arg(&via)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (start, mut got, mut chunk) = (Instant::now(), Vec::new(), vec![0u8; 1 << 16]);
        let status = loop {
            let exited = child.try_wait().unwrap();
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) if exited.is_some() => break exited.unwrap(),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if start.elapsed() > DEADLINE {
                child.kill().unwrap();
                panic!("no report through the FIFO within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(status.code(), Some(0), "{}: {err}", via.display());
        assert_report(&got);
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }
}

#[test]
fn dash_dev_stdout_and_dev_null_are_the_streams_they_name() {
    let d = tempfile::tempdir().unwrap();
    // `-o -` is standard output (it used to create a file named `-`).
    let o = bin()
        .current_dir(d.path())
        .args(["--root", &healthy(), "--format", "json", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_report(&o.stdout);
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0, "a file was created");

    let o = report_to(Path::new("/dev/stdout"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_report(&o.stdout);

    let o = report_to(Path::new("/dev/null"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());

    // Standard output appended to a file (`>> log`): the report is appended through the
    // descriptor the shell gave, not renamed over the descriptor's name or written from
    // offset 0 of a new open.
    let log = d.path().join("run.log");
    std::fs::write(&log, b"HEAD\n").unwrap();
    let appended = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let child = bin()
        .args(["--root", &healthy(), "--format", "json", "-o", "/proc/self/fd/1"])
        .stdout(appended)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_with_deadline(child);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read(&log).unwrap();
    assert!(text.starts_with(b"HEAD\n"), "the earlier content was overwritten");
    assert_report(&text[5..]);
}

#[test]
fn a_path_that_is_not_utf8_is_written_as_named() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join(std::ffi::OsStr::from_bytes(b"report-\xff.json"));
    let o = report_to(&out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_report(&std::fs::read(&out).unwrap());
}

#[test]
fn snapshot_output_follows_the_same_rules() {
    let d = tempfile::tempdir().unwrap();
    let target = victim(d.path());
    let out = d.path().join("snap.tar.gz");
    std::os::unix::fs::symlink(&target, &out).unwrap();
    let o = run(&["snapshot", "--root", &healthy(), "--no-probe", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(&target).unwrap(), PRECIOUS);
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.mode() & 0o7777, 0o600);
    let replay = run(&["--snapshot", out.to_str().unwrap(), "--format", "json"]);
    assert!(matches!(replay.status.code(), Some(0 | 1)), "{}", stderr(&replay));
    assert_eq!(json(&replay)["root"]["kind"], "snapshot");

    let dir = d.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    let o = run(&["snapshot", "--root", &healthy(), "--no-probe", "-o", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("it is a directory"), "{}", stderr(&o));
}
