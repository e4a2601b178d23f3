//! Builds the test-only libfabric provider `fakehmem` (tests/fakeprov/fakeprov.c).
//!
//! [`fakeprov_dir`] returns a directory holding `libfakehmem-fi.so` and nothing else, to be
//! put in `FI_PROVIDER_PATH` of a child process; the real libfabric then loads it. The
//! environment the provider reads is documented at the top of fakeprov.c.

use std::path::PathBuf;
use std::sync::OnceLock;

/// File name libfabric's DL loader looks for (`lib<name>-fi.so`).
pub const FAKEPROV_LIB: &str = "libfakehmem-fi.so";
/// The provider's name, as `fi_info -p` takes it.
pub const FAKEPROV_NAME: &str = "fakehmem";

fn hint(err: &str) -> &'static str {
    if err.contains("rdma/") && err.contains("No such file") {
        "the libfabric headers (<rdma/fabric.h>, <rdma/providers/fi_prov.h>) are missing: install libfabric-dev"
    } else if err.contains("-lfabric") {
        "libfabric.so (the link-time library) is missing: install libfabric-dev"
    } else {
        "compiling tests/fakeprov/fakeprov.c failed"
    }
}

/// Compiles fakeprov.c (once per test process) and returns the directory to use as
/// `FI_PROVIDER_PATH`. Panics, with the reason, when `cc` (or `$CC`), the libfabric
/// headers or `libfabric.so` are missing.
pub fn fakeprov_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        super::clib::build(
            "fakeprov",
            "tests/fakeprov/fakeprov.c",
            FAKEPROV_LIB,
            &["-lfabric"],
            hint,
        )
    })
    .clone()
}
