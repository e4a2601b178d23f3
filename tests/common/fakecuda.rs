//! Builds the test-only CUDA driver stand-in (tests/fakecuda/fakecuda.c) as `libcuda.so.1`.
//!
//! [`fakecuda_dir`] returns a directory to put first on `LD_LIBRARY_PATH` of an efa-doctor
//! child: the probe's `dlopen("libcuda.so.1")` then finds it. Its environment knobs are
//! documented at the top of fakecuda.c.

use std::path::PathBuf;
use std::sync::OnceLock;

pub fn fakecuda_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        super::clib::build(
            "fakecuda",
            "tests/fakecuda/fakecuda.c",
            "libcuda.so.1",
            &[],
            |_| "compiling tests/fakecuda/fakecuda.c failed",
        )
    })
    .clone()
}
