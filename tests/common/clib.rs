//! Builds the test-only C libraries (tests/fakeprov, tests/fakecuda) once per test process
//! into CARGO_TARGET_TMPDIR.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Compiles `source` (relative to the crate) into `<dir>/<lib_name>` and returns `dir`, a
/// directory holding that library and nothing else. `hint` turns the compiler's error into
/// what to install. Panics when the build fails: these tests must never pass vacuously.
pub fn build(
    tag: &str,
    source: &str,
    lib_name: &str,
    link: &[&str],
    hint: fn(&str) -> &'static str,
) -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(tmp).expect("create CARGO_TARGET_TMPDIR");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
    assert!(src.is_file(), "test library source missing: {}", src.display());

    // Build into a private staging directory, then publish it with one atomic rename to a
    // directory named after the library's contents: concurrent test binaries either win
    // the rename or find an identical, complete directory already there.
    let stage = tmp.join(format!(
        "{tag}-stage-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).expect("create the staging directory");
    let lib = stage.join(lib_name);

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&lib)
        .arg(&src)
        .args(link)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` ({e}) needed to build {source}: install a C toolchain (build-essential)"));
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let _ = std::fs::remove_dir_all(&stage);
        panic!("building {source} with `{cc}`: {}\n{err}", hint(&err));
    }

    let bytes = std::fs::read(&lib).expect("read the built library");
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let dir = tmp.join(format!("{tag}-{:016x}", h.finish()));
    if dir.join(lib_name).is_file() {
        let _ = std::fs::remove_dir_all(&stage);
        return dir;
    }
    match std::fs::rename(&stage, &dir) {
        Ok(()) => dir,
        // Lost the race to a process that published the same library.
        Err(_) if dir.join(lib_name).is_file() => {
            let _ = std::fs::remove_dir_all(&stage);
            dir
        }
        Err(e) => panic!("publishing {} as {}: {e}", stage.display(), dir.display()),
    }
}

/// The directory holding the hostile test `libfabric.so.1` (tests/hostilefabric), built once
/// per test binary.
#[allow(dead_code)]
pub fn hostile_fabric_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        build(
            "hostilefabric",
            "tests/hostilefabric/hostilefabric.c",
            "libfabric.so.1",
            &[],
            |_| "compiling tests/hostilefabric/hostilefabric.c failed",
        )
    })
    .clone()
}
