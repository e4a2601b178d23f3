//! Issue 12: fuzz targets for the two parsers of untrusted bulk input, run as bounded
//! proptest suites (cargo-fuzz needs nightly): the snapshot loader on arbitrary and mutated
//! gzipped tars (GNU long names and links, PAX headers, deep names), and the log scanner on
//! arbitrary bytes (long lines, NULs, invalid UTF-8, CR-only lines). Each case must finish
//! without a panic, within a time bound, and keep the loader's and scanner's stated bounds.

use std::io::Write;
use std::time::{Duration, Instant};

use efa_doctor::facts::logs::{Analyser, MAX_EVENTS_PER_KIND, MAX_KEPT_EVENTS, rules::RuleSet};
use proptest::prelude::*;

/// Time one case may take, unoptimised, on a loaded 2-core machine.
const CASE_BOUND: Duration = Duration::from_secs(5);

fn block_header(name: &[u8], kind: u8, size: usize, link: &[u8]) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    {
        let raw = h.as_old_mut();
        let n = name.len().min(100);
        raw.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        raw.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_cksum();
    *h.as_bytes()
}

fn push_entry(out: &mut Vec<u8>, name: &[u8], kind: u8, data: &[u8], link: &[u8]) {
    out.extend_from_slice(&block_header(name, kind, data.len(), link));
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "LEN key=value\n", where LEN counts itself.
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// One entry of a generated archive.
#[derive(Debug, Clone)]
enum Piece {
    File(Vec<u8>, Vec<u8>),
    Dir(Vec<u8>),
    Link(Vec<u8>, Vec<u8>),
    LongName(Vec<u8>, Vec<u8>),
    LongLink(Vec<u8>, Vec<u8>),
    Pax(Vec<(String, Vec<u8>)>, Vec<u8>),
    Deep(usize),
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z]{1,8}(/[a-z0-9._]{1,8}){0,4}".prop_map(String::into_bytes),
        Just(b"../x".to_vec()),
        Just(b"/abs".to_vec()),
        Just(b"a/../../b".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn piece() -> impl Strategy<Value = Piece> {
    let data = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (name(), data.clone()).prop_map(|(n, d)| Piece::File(n, d)),
        name().prop_map(Piece::Dir),
        (name(), name()).prop_map(|(n, l)| Piece::Link(n, l)),
        (proptest::collection::vec(any::<u8>(), 0..600), data.clone())
            .prop_map(|(n, d)| Piece::LongName(n, d)),
        (name(), proptest::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(n, l)| Piece::LongLink(n, l)),
        (
            proptest::collection::vec(
                (
                    prop_oneof![Just("path"), Just("linkpath"), Just("size"), Just("mtime")]
                        .prop_map(String::from),
                    proptest::collection::vec(any::<u8>(), 0..200)
                ),
                0..4
            ),
            data
        )
            .prop_map(|(r, d)| Piece::Pax(r, d)),
        (1usize..300).prop_map(Piece::Deep),
    ]
}

fn build(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::File(n, d) => push_entry(&mut out, n, b'0', d, b""),
            Piece::Dir(n) => push_entry(&mut out, n, b'5', b"", b""),
            Piece::Link(n, l) => push_entry(&mut out, n, b'2', b"", l),
            Piece::LongName(n, d) => {
                push_entry(&mut out, b"././@LongLink", b'L', n, b"");
                push_entry(&mut out, b"short", b'0', d, b"");
            }
            Piece::LongLink(n, l) => {
                push_entry(&mut out, b"././@LongLink", b'K', l, b"");
                push_entry(&mut out, n, b'2', b"", b"");
            }
            Piece::Pax(records, d) => {
                let block: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
                push_entry(&mut out, b"PaxHeader", b'x', &block, b"");
                push_entry(&mut out, b"paxed", b'0', d, b"");
            }
            Piece::Deep(depth) => {
                let n = "d/".repeat(*depth) + "f";
                push_entry(&mut out, b"././@LongLink", b'L', n.as_bytes(), b"");
                push_entry(&mut out, b"deep", b'0', b"", b"");
            }
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(raw).unwrap();
    gz.finish().unwrap()
}

/// Loads `bytes` as a snapshot file: no panic, within the time bound, and an accepted tree
/// keeps the loader's bounds.
fn load_case(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.tar.gz");
    std::fs::write(&f, bytes).unwrap();
    let start = Instant::now();
    let loaded = efa_doctor::root::snapshot::load(&f);
    prop_assert!(start.elapsed() < CASE_BOUND, "took {:?}", start.elapsed());
    if let Err(e) = &loaded {
        prop_assert!(!e.reason.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn snapshot_loader_survives_crafted_archives(pieces in proptest::collection::vec(piece(), 0..8)) {
        load_case(&gzip(&build(&pieces)))?;
    }

    #[test]
    fn snapshot_loader_survives_mutated_archives(
        pieces in proptest::collection::vec(piece(), 1..6),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        compressed in any::<bool>(),
        truncate in any::<bool>(),
    ) {
        let raw = build(&pieces);
        // Mutate either the tar inside (valid gzip around it) or the gzip stream itself.
        let mut bytes = if compressed { gzip(&raw) } else { raw };
        for (at, b) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= *b | 1;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let bytes = if compressed { bytes } else { gzip(&bytes) };
        load_case(&bytes)?;
    }

    #[test]
    fn snapshot_loader_survives_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..4096), wrap in any::<bool>()) {
        let bytes = if wrap { gzip(&b) } else { b };
        load_case(&bytes)?;
    }
}

fn builtin_rules() -> &'static RuleSet {
    static R: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    R.get_or_init(|| RuleSet::new(RuleSet::builtin().unwrap()).unwrap())
}

/// Log lines from real rule literals, mixed with noise, NULs, CRs and invalid UTF-8.
fn log_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"ip-1:7:7 [0] NCCL INFO Using network Socket".to_vec()),
        Just(b"NET/OFI Selected provider is efa, fabric is efa-direct (found 32 nics)".to_vec()),
        Just(b"libfabric:6413:1763620725::efa:mr:x Unable to register MR".to_vec()),
        Just(b"Backend UCX was instantiated".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\0".to_vec()),
        Just(vec![0xff, 0xfe, 0xc3]),
        (1usize..100_000).prop_map(|n| vec![b'x'; n]),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

fn scan(bytes: &[u8], streamed: bool) -> efa_doctor::facts::logs::Analysis {
    let mut a = Analyser::new(builtin_rules());
    if streamed {
        a.add("fuzz.log", bytes);
    } else {
        a.add_bytes("fuzz.log", bytes);
    }
    a.analysis
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn log_scanner_survives_arbitrary_input(pieces in proptest::collection::vec(log_piece(), 0..40)) {
        let bytes: Vec<u8> = pieces.concat();
        let start = Instant::now();
        let streamed = scan(&bytes, true);
        let in_memory = scan(&bytes, false);
        prop_assert!(start.elapsed() < CASE_BOUND, "took {:?}", start.elapsed());
        // Reading and in-memory scanning agree, and both count lines as `wc -l` (+1 for an
        // unterminated last line).
        let newlines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
        let lines = newlines + u64::from(bytes.last().is_some_and(|b| *b != b'\n'));
        prop_assert_eq!(streamed.files[0].lines, lines);
        prop_assert_eq!(in_memory.files[0].lines, lines);
        prop_assert_eq!(streamed.files[0].bytes, bytes.len() as u64);
        prop_assert_eq!(&streamed.counts, &in_memory.counts);
        prop_assert_eq!(streamed.events.len(), in_memory.events.len());
        prop_assert!(streamed.events.len() <= MAX_KEPT_EVENTS + builtin_rules().rules.len());
        for e in &streamed.events {
            prop_assert!(e.line >= 1 && e.line <= lines.max(1));
            prop_assert!(e.text.chars().count() <= 401);
            prop_assert!(e.captures.values().all(|v| v.chars().count() <= 400));
        }
        let mut per: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
        for e in &streamed.events {
            *per.entry((&e.kind, &e.stream)).or_default() += 1;
        }
        prop_assert!(per.values().all(|n| *n <= MAX_EVENTS_PER_KIND));
    }

    #[test]
    fn log_scanner_survives_gzip_garbage(b in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut bytes = vec![0x1f, 0x8b];
        bytes.extend_from_slice(&b);
        let a = scan(&bytes, true);
        prop_assert!(a.files[0].gzip);
    }
}
