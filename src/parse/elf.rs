//! Reading shared libraries without loading them: `DT_NEEDED`, `DT_RUNPATH`/`DT_RPATH`,
//! `DT_SONAME`, the symbol versions a library defines (`.gnu.version_d`) and needs
//! (`.gnu.version_r`), and version strings in its data.
//!
//! This is how efa-doctor tells which libfabric an aws-ofi-nccl or NIXL plugin was built
//! against (the `FABRIC_1.x` nodes it needs), and what a libfabric on disk provides, without
//! running any of their code. Input is untrusted: every failure is a `None` or an empty list.

use object::read::elf::{Dyn, FileHeader, SectionTable};
use object::{Endianness, elf};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ElfInfo {
    /// `x86_64` or `aarch64` (or the raw machine number).
    pub machine: String,
    pub soname: Option<String>,
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
    pub rpath: Vec<String>,
    /// Version nodes defined (`FABRIC_1.0` ... `FABRIC_1.9`).
    pub defines: Vec<String>,
    /// Version nodes needed, per library file (`libfabric.so.1` -> [`FABRIC_1.8`, ...]).
    pub needs: Vec<(String, Vec<String>)>,
}

impl ElfInfo {
    pub fn needs_from(&self, file: &str) -> Vec<String> {
        self.needs.iter().filter(|(f, _)| f == file).flat_map(|(_, v)| v.clone()).collect()
    }

    /// Where the dynamic loader looks for this object's direct dependencies, in glibc's
    /// order (ld.so(8)): DT_RPATH (only when there is no DT_RUNPATH), then LD_LIBRARY_PATH
    /// (`env`), then DT_RUNPATH, then the cache and default directories (`system`).
    /// `$ORIGIN` is replaced with `origin`, the object's directory.
    pub fn search_order(&self, origin: &str, env: &[String], system: &[String]) -> Vec<String> {
        let expand = |d: &String| d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin);
        let rpath: &[String] = if self.runpath.is_empty() { &self.rpath } else { &[] };
        let mut out: Vec<String> = rpath.iter().map(expand).collect();
        out.extend(env.iter().filter(|d| !d.is_empty()).cloned());
        out.extend(self.runpath.iter().map(expand));
        out.extend(system.iter().cloned());
        out
    }
}

fn machine_name(m: elf::Machine) -> String {
    if m == elf::EM_X86_64 {
        "x86_64".into()
    } else if m == elf::EM_AARCH64 {
        "aarch64".into()
    } else {
        format!("machine-{m:?}")
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses a 64-bit ELF shared object. `None` if the data is not one.
pub fn parse(data: &[u8]) -> Option<ElfInfo> {
    let header = elf::FileHeader64::<Endianness>::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let sections: SectionTable<'_, elf::FileHeader64<Endianness>, &[u8]> =
        header.sections(endian, data).ok()?;
    let mut info =
        ElfInfo { machine: machine_name(header.e_machine(endian)), ..ElfInfo::default() };

    if let Ok(Some((dynamic, link))) = sections.dynamic(endian, data) {
        if let Ok(strings) = sections.strings(endian, data, link) {
            for d in dynamic {
                let tag = d.d_tag(endian);
                if tag == elf::DT_NULL {
                    break;
                }
                let Ok(off) = u32::try_from(d.d_val(endian)) else { continue };
                let text = || strings.get(off).map(s).ok();
                if tag == elf::DT_NEEDED {
                    info.needed.extend(text());
                } else if tag == elf::DT_SONAME {
                    info.soname = text();
                } else if tag == elf::DT_RUNPATH {
                    info.runpath.extend(text().into_iter().flat_map(split_path));
                } else if tag == elf::DT_RPATH {
                    info.rpath.extend(text().into_iter().flat_map(split_path));
                }
            }
        }
    }
    if let Ok(Some((mut defs, link))) = sections.gnu_verdef(endian, data) {
        if let Ok(strings) = sections.strings(endian, data, link) {
            while let Ok(Some((_def, mut aux))) = defs.next() {
                // The first aux of each verdef names the version itself; later ones its parents.
                if let Ok(Some(a)) = aux.next() {
                    if let Ok(name) = a.name(endian, strings) {
                        info.defines.push(s(name));
                    }
                }
            }
        }
    }
    if let Ok(Some((mut needs, link))) = sections.gnu_verneed(endian, data) {
        if let Ok(strings) = sections.strings(endian, data, link) {
            while let Ok(Some((need, aux))) = needs.next() {
                let Ok(file) = need.file(endian, strings) else { continue };
                let versions: Vec<String> = aux
                    .filter_map(|a| a.ok())
                    .filter_map(|a| a.name(endian, strings).ok())
                    .map(s)
                    .collect();
                info.needs.push((s(file), versions));
            }
        }
    }
    Some(info)
}

fn split_path(p: String) -> Vec<String> {
    p.split(':').filter(|x| !x.is_empty()).map(String::from).collect()
}

/// The highest `FABRIC_1.N` minor number in a list of version nodes.
pub fn max_fabric_node(nodes: &[String]) -> Option<u32> {
    nodes.iter().filter_map(|n| n.strip_prefix("FABRIC_1.")).filter_map(|m| m.parse().ok()).max()
}

/// First release of libfabric that defines each `FABRIC_1.N` node (REFERENCE §3.4).
pub fn fabric_node_release(minor: u32) -> Option<&'static str> {
    match minor {
        0..=2 => Some("1.0"),
        3 => Some("1.9.0"),
        4 => Some("1.12.0"),
        5 => Some("1.13.0"),
        6 => Some("1.14.0"),
        7 => Some("1.20.0"),
        8 => Some("2.0.0"),
        9 => Some("2.5.0"),
        _ => None,
    }
}

/// Longest printable string [`strings_containing`] returns.
pub const MAX_STRING_BYTES: usize = 200;

/// Finds printable strings of at most [`MAX_STRING_BYTES`] bytes that contain `needle`, up
/// to `limit` of them.
///
/// Linear in `data` whatever it holds: each printable run is examined once (the search
/// resumes after it), and the look back for a run's start stops after `MAX_STRING_BYTES`,
/// so a megabyte of text full of the needle costs one pass, not one pass per occurrence.
pub fn strings_containing(data: &[u8], needle: &[u8], limit: usize) -> Vec<String> {
    let is_text = |b: &u8| (0x20..0x7f).contains(b);
    let mut out = Vec::new();
    if needle.is_empty() || limit == 0 {
        return out;
    }
    let finder = memchr::memmem::Finder::new(needle);
    let mut resume = 0;
    while let Some(found) = finder.find(&data[resume..]) {
        let pos = resume + found;
        let end = data[pos..].iter().position(|b| !is_text(b)).map_or(data.len(), |i| pos + i);
        resume = end.max(pos + 1);
        let window = pos.saturating_sub(MAX_STRING_BYTES + 1);
        let start = match data[window..pos].iter().rposition(|b| !is_text(b)) {
            Some(i) => window + i + 1,
            None if window == 0 => 0,
            None => continue, // longer than MAX_STRING_BYTES
        };
        if end - start <= MAX_STRING_BYTES {
            let text = s(&data[start..end]);
            if !out.contains(&text) {
                out.push(text);
            }
        }
        if out.len() >= limit || resume >= data.len() {
            break;
        }
    }
    out
}

/// libfabric's release string in its data (`2.4.0amzn3.0`, `1.17.0`): the literal that
/// `fi_tostr(FI_TYPE_VERSION)` returns sits next to other strings; we look for a version
/// immediately NUL-terminated. Only a hint (REFERENCE §7 method 4).
pub fn libfabric_release_in(data: &[u8]) -> Option<String> {
    static RELEASE: std::sync::OnceLock<Option<regex::bytes::Regex>> = std::sync::OnceLock::new();
    let re = RELEASE
        .get_or_init(|| {
            regex::bytes::Regex::new(
                r"\x00((?:1|2)\.\d{1,2}\.\d{1,2}(?:amzn\d+\.\d+|rc\d+|a\d+)?)\x00",
            )
            .ok()
        })
        .as_ref()?;
    // Prefer an `amzn` build string; otherwise the most frequent plausible one.
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for c in re.captures_iter(data) {
        *counts.entry(s(&c[1])).or_default() += 1;
    }
    if let Some(k) = counts.keys().find(|k| k.contains("amzn")) {
        return Some(k.clone());
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_elf() {
        assert!(parse(b"").is_none());
        assert!(parse(b"\x7fELF garbage").is_none());
        assert!(parse(&[0u8; 4096]).is_none());
    }

    #[test]
    fn reads_a_real_library() {
        // The libc this test binary runs with is an ELF with versions everywhere.
        let candidates = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
        ];
        let Some(data) = candidates.iter().find_map(|p| std::fs::read(p).ok()) else { return };
        let info = parse(&data).expect("libc parses");
        assert!(info.defines.iter().any(|d| d.starts_with("GLIBC_2.")), "{:?}", info.defines);
        assert_eq!(info.soname.as_deref(), Some("libc.so.6"));
    }

    #[test]
    fn fabric_nodes() {
        let v: Vec<String> =
            ["FABRIC_1.0", "FABRIC_1.7", "FABRIC_1.8"].iter().map(|s| s.to_string()).collect();
        assert_eq!(max_fabric_node(&v), Some(8));
        assert_eq!(fabric_node_release(9), Some("2.5.0"));
        assert_eq!(
            libfabric_release_in(b"x\x002.4.0amzn3.0\x00y\x001.2.3\x00"),
            Some("2.4.0amzn3.0".into())
        );
        assert_eq!(
            strings_containing(b"\x00aws-ofi-nccl 1.17.2\x00", b"aws-ofi-nccl ", 5),
            vec!["aws-ofi-nccl 1.17.2"]
        );
        // Too long to be a version string, however it starts.
        let long = format!("\x00{}aws-ofi-nccl 1.0\x00", "x".repeat(MAX_STRING_BYTES));
        assert!(strings_containing(long.as_bytes(), b"aws-ofi-nccl ", 5).is_empty());
        let first = format!("aws-ofi-nccl 1.0\x00{}aws-ofi-nccl 2.0", "x".repeat(300));
        assert_eq!(strings_containing(first.as_bytes(), b"aws-ofi-nccl ", 5), ["aws-ofi-nccl 1.0"]);
    }

    /// Runs `f` on a thread and fails the test if it takes longer than `bound` (the thread
    /// is abandoned, so an unbounded search cannot hang the test run).
    fn within<T: Send + 'static>(
        bound: std::time::Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(bound).unwrap_or_else(|_| panic!("took longer than {bound:?}"))
    }

    /// Issue 12: a 1 MB run of text full of the needle took 29 s (quadratic). 4 MB must take
    /// well under 3 s, even unoptimised.
    #[test]
    fn version_string_search_is_linear_on_hostile_input() {
        let bound = std::time::Duration::from_secs(3);
        let needle_run = b"aws-ofi-nccl ".repeat(4 * 1024 * 1024 / 13);
        let found = within(bound, move || strings_containing(&needle_run, b"aws-ofi-nccl ", 1));
        assert!(found.is_empty(), "one 4 MB string is no version string");
        // Many short runs, each holding the needle once, and a near-miss of the release regex.
        let mut runs = Vec::new();
        while runs.len() < 4 * 1024 * 1024 {
            runs.extend_from_slice(b"aws-ofi-nccl 1.2\x00\x001.2.\x00");
        }
        let found = within(bound, move || {
            (strings_containing(&runs, b"aws-ofi-nccl ", 5), libfabric_release_in(&runs))
        });
        assert_eq!(found.0, ["aws-ofi-nccl 1.2"]);
        assert_eq!(found.1, None);
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    /// ld.so(8): LD_LIBRARY_PATH is searched before DT_RUNPATH; only DT_RPATH comes first,
    /// and DT_RPATH is ignored when DT_RUNPATH is present.
    #[test]
    fn loader_search_order() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let env = v(&["/env"]);
        let sys = v(&["/usr/lib"]);
        let runpath =
            ElfInfo { runpath: v(&["$ORIGIN/../lib"]), rpath: v(&["/old"]), ..ElfInfo::default() };
        assert_eq!(
            runpath.search_order("/p/lib", &env, &sys),
            v(&["/env", "/p/lib/../lib", "/usr/lib"])
        );
        let rpath = ElfInfo { rpath: v(&["/old"]), ..ElfInfo::default() };
        assert_eq!(rpath.search_order("/p", &env, &sys), v(&["/old", "/env", "/usr/lib"]));
    }
}
