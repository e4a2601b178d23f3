//! Bad input never panics: an empty root, a root of random files, garbage or truncation in
//! every file the checks read, symlink loops, oversized files.

mod common;

use std::path::Path;

use common::*;
use efa_doctor::cli::CheckArgs;
use efa_doctor::report::Status;
use efa_doctor::root::{Root, RootKind};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn judge(dir: &Path) -> efa_doctor::report::Report {
    let root = Root::directory(dir, RootKind::Directory).unwrap();
    efa_doctor::build_report(&root, &CheckArgs::default()).unwrap()
}

fn assert_no_internal_error(r: &efa_doctor::report::Report, what: &str) {
    for res in &r.results {
        assert!(
            !res.summary.contains("internal error"),
            "{what}: {} panicked: {}",
            res.id,
            res.summary
        );
    }
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
        if ft.is_dir() {
            files(&p, out);
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

#[test]
fn empty_root_gives_skips_not_failures_or_panics() {
    let d = tempfile::tempdir().unwrap();
    let r = judge(d.path());
    assert_no_internal_error(&r, "empty root");
    assert!(r.results.iter().all(|x| x.status == Status::Skip), "{:#?}", r.results);
    assert_eq!(r.summary.exit_code, 0);
    assert!(r.facts.kernel.arch.is_none(), "architecture must not be filled in from this machine");
    assert!(r.facts.kernel.page_size.is_none());
}

#[test]
fn root_of_random_files() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed);
    let paths = [
        "proc/modules",
        "proc/meminfo",
        "proc/self",
        "proc/cpuinfo",
        "proc/sys/kernel/osrelease",
        "proc/driver/nvidia/version",
        "sys/class/infiniband/efa_0",
        "sys/bus/pci/devices/0000:00:06.0",
        "sys/devices/virtual/dmi/id/product_name",
        "sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
        "etc/ld.so.conf",
        "opt/amazon/efa_installed_packages",
        "opt/amazon/efa/lib/libfabric.so.1",
        ".efa-doctor/manifest.json.bak",
        "dev/infiniband",
    ];
    for p in paths {
        let full = d.path().join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        let n = (rng.next() % 4096) as usize;
        std::fs::write(&full, rng.bytes(n)).unwrap();
    }
    let r = judge(d.path());
    assert_no_internal_error(&r, "random files");
}

/// Replace every file of the healthy p5 fixture, one kind of damage at a time.
#[test]
fn garbage_and_truncation_in_every_file_the_checks_read() {
    let mut rng = Rng(42);
    for damage in ["garbage", "truncate", "empty", "binary-nul", "huge-number"] {
        let d = tempfile::tempdir().unwrap();
        copy_tree(&fixture("p5-healthy"), d.path());
        let mut all = Vec::new();
        files(d.path(), &mut all);
        for f in &all {
            if f.ends_with("manifest.json") {
                continue; // a corrupt manifest is a usage error, tested below
            }
            let old = std::fs::read(f).unwrap();
            let new = match damage {
                "garbage" => rng.bytes(old.len().max(1)),
                "truncate" => old[..old.len() / 2].to_vec(),
                "empty" => Vec::new(),
                "binary-nul" => vec![0u8; 64],
                _ => b"99999999999999999999999999999999\n".to_vec(),
            };
            std::fs::write(f, new).unwrap();
        }
        let r = judge(d.path());
        assert_no_internal_error(&r, damage);
    }
}

#[test]
fn corrupt_manifest_is_a_clear_usage_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join(".efa-doctor")).unwrap();
    std::fs::write(d.path().join(".efa-doctor/manifest.json"), b"{not json").unwrap();
    let o = run(&["--root", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest"));
}

#[test]
fn symlink_loops_and_escapes_are_contained() {
    let d = tempfile::tempdir().unwrap();
    let ib = d.path().join("sys/class/infiniband");
    std::fs::create_dir_all(&ib).unwrap();
    std::os::unix::fs::symlink("efa_1", ib.join("efa_0")).unwrap();
    std::os::unix::fs::symlink("efa_0", ib.join("efa_1")).unwrap();
    std::fs::create_dir_all(d.path().join("proc")).unwrap();
    std::os::unix::fs::symlink("/proc/self", d.path().join("proc/self")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc", d.path().join("sys/class/up"))
        .unwrap();
    let r = judge(d.path());
    assert_no_internal_error(&r, "loops");
    // /proc/self pointed at the analysing machine's procfs: it must not have been followed.
    assert!(r.facts.host.memlock.is_none());
}

#[test]
fn oversized_file_is_refused_not_read() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("proc")).unwrap();
    let f = std::fs::File::create(d.path().join("proc/modules")).unwrap();
    f.set_len(efa_doctor::root::MAX_FILE_BYTES + 1).unwrap();
    let r = judge(d.path());
    assert_no_internal_error(&r, "oversized");
    assert_eq!(result(&r, "kernel.modules").status, Status::Skip);
    assert!(result(&r, "kernel.modules").summary.contains("read limit"));
}
