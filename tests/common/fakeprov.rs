//! Builds the test-only libfabric provider `fakehmem` (tests/fakeprov/fakeprov.c).
//!
//! [`fakeprov_dir`] returns a directory holding `libfakehmem-fi.so` and nothing else, to be
//! put in `FI_PROVIDER_PATH` of a child process; the real libfabric then loads it. The
//! environment the provider reads is documented at the top of fakeprov.c.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// File name libfabric's DL loader looks for (`lib<name>-fi.so`).
pub const FAKEPROV_LIB: &str = "libfakehmem-fi.so";
/// The provider's name, as `fi_info -p` takes it.
pub const FAKEPROV_NAME: &str = "fakehmem";

pub fn fakeprov_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakeprov/fakeprov.c")
}

/// Compiles fakeprov.c (once per test process) and returns the directory to use as
/// `FI_PROVIDER_PATH`. Panics, with the reason, when `cc` (or `$CC`), the libfabric
/// headers or `libfabric.so` are missing: these tests must never pass vacuously.
pub fn fakeprov_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(build).clone()
}

fn build() -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(tmp).expect("create CARGO_TARGET_TMPDIR");
    let src = fakeprov_source();
    assert!(src.is_file(), "fake libfabric provider source missing: {}", src.display());

    // Build into a private staging directory, then publish it with one atomic rename to a
    // directory named after the library's contents: concurrent test binaries either win
    // the rename or find an identical, complete directory already there.
    let stage = tmp.join(format!(
        "fakeprov-stage-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).expect("create fakeprov staging directory");
    let lib = stage.join(FAKEPROV_LIB);

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-lfabric")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the C compiler `{cc}` ({e}) needed to build the fake libfabric \
                 provider: install a C toolchain (build-essential) and libfabric-dev"
            )
        });
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let hint = if err.contains("rdma/") && err.contains("No such file") {
            "the libfabric headers (<rdma/fabric.h>, <rdma/providers/fi_prov.h>) are missing: \
             install libfabric-dev"
        } else if err.contains("-lfabric") {
            "libfabric.so (the link-time library) is missing: install libfabric-dev"
        } else {
            "compiling tests/fakeprov/fakeprov.c failed"
        };
        let _ = std::fs::remove_dir_all(&stage);
        panic!("building the fake libfabric provider with `{cc}`: {hint}\n{err}");
    }

    let bytes = std::fs::read(&lib).expect("read the built fake provider");
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let dir = tmp.join(format!("fakeprov-{:016x}", h.finish()));
    if dir.join(FAKEPROV_LIB).is_file() {
        let _ = std::fs::remove_dir_all(&stage);
        return dir;
    }
    match std::fs::rename(&stage, &dir) {
        Ok(()) => dir,
        // Lost the race to a process that published the same library.
        Err(_) if dir.join(FAKEPROV_LIB).is_file() => {
            let _ = std::fs::remove_dir_all(&stage);
            dir
        }
        Err(e) => panic!("publishing {} as {}: {e}", stage.display(), dir.display()),
    }
}
