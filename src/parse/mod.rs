//! Pure parsers: text in, typed values out. No I/O, no globals, no queries of the machine
//! running the analysis. Each one accepts arbitrary input without panicking (property tests
//! in `tests/parsers_fuzz.rs` feed them garbage) and returns `None` or skips lines it does
//! not understand.

pub mod elf;
pub mod proc;
pub mod sysfs;
pub mod version;

pub use version::Version;

/// A byte count with an optional binary suffix: `4096`, `64k`, `128M`, `1G`, `2T`.
pub fn size_bytes(s: &str) -> Option<u64> {
    let (num, shift) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 10),
        'm' | 'M' => (&s[..s.len() - 1], 20),
        'g' | 'G' => (&s[..s.len() - 1], 30),
        't' | 'T' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}
