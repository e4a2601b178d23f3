//! Pure parsers: text in, typed values out. No I/O, no globals, no queries of the machine
//! running the analysis. Each one accepts arbitrary input without panicking (property tests
//! in `tests/parsers_fuzz.rs` feed them garbage) and returns `None` or skips lines it does
//! not understand.

pub mod proc;
pub mod sysfs;
pub mod version;

pub use version::Version;
