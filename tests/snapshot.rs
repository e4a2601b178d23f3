//! Snapshots: a capture replays to the same results as the live run, fixtures survive a
//! round trip, secrets stay out, and hostile archives are rejected with a clear error.

mod common;

use std::io::Write;

use common::*;

/// The parts of a report that must not change between a live run and its replay.
fn verdicts(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["results"].as_array().unwrap().clone()
}

#[test]
fn live_run_and_its_snapshot_agree() {
    let d = tempfile::tempdir().unwrap();
    let snap = d.path().join("node.tar.gz");
    let o = run(&["snapshot", "-o", snap.to_str().unwrap(), "--description", "test"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bytes compressed"), "size is reported");
    let live = json(&run(&["--format", "json"]));
    let replay = json(&run(&["--snapshot", snap.to_str().unwrap(), "--format", "json"]));
    assert_eq!(replay["root"]["kind"], "snapshot");
    assert_eq!(verdicts(&live), verdicts(&replay));
    assert_eq!(live["facts"]["kernel"]["release"], replay["facts"]["kernel"]["release"]);
    assert_eq!(live["facts"]["libfabric"]["providers"], replay["facts"]["libfabric"]["providers"]);
}

#[test]
fn fixture_round_trip() {
    for fx in ["p5-silent-drop", "p5-container-partial", "gb200-arm64", "stack-nixl-old-libfabric"]
    {
        let d = tempfile::tempdir().unwrap();
        let snap = d.path().join("s.tar.gz");
        let root = fixture(fx);
        let o = run(&["snapshot", "--root", root.to_str().unwrap(), "-o", snap.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{fx}: {}", String::from_utf8_lossy(&o.stderr));
        let direct = json(&run(&["--root", root.to_str().unwrap(), "--format", "json"]));
        let replay = json(&run(&["--snapshot", snap.to_str().unwrap(), "--format", "json"]));
        assert_eq!(verdicts(&direct), verdicts(&replay), "{fx}");
        // Extracted, a snapshot is a --root directory that gives the same verdicts again.
        let x = d.path().join("x");
        std::fs::create_dir(&x).unwrap();
        let st = std::process::Command::new("tar")
            .args(["xzf", snap.to_str().unwrap(), "-C", x.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
        let extracted = json(&run(&["--root", x.to_str().unwrap(), "--format", "json"]));
        assert_eq!(verdicts(&direct), verdicts(&extracted), "{fx} extracted");
    }
}

#[test]
fn environment_secrets_never_enter_a_capture() {
    let env =
        b"FI_PROVIDER=efa\0HF_TOKEN=hf_SECRET123\0AWS_SECRET_ACCESS_KEY=abc\0NCCL_DEBUG=INFO\0";
    let out = efa_doctor::commands::snapshot::redact("proc/7/environ", env);
    let s = String::from_utf8(out).unwrap();
    assert!(!s.contains("hf_SECRET123") && !s.contains("abc"));
    assert!(s.contains("FI_PROVIDER=efa"));
}

/// Builds a gzipped tar with raw header names, so hostile entries can be crafted.
fn hostile(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_old();
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                raw.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        gz.write_all(h.as_bytes()).unwrap();
        gz.write_all(data).unwrap();
        let pad = (512 - data.len() % 512) % 512;
        gz.write_all(&vec![0u8; pad]).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

fn refused(bytes: &[u8], expect: &str) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("h.tar.gz");
    std::fs::write(&f, bytes).unwrap();
    let o = run(&["--snapshot", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "hostile archive accepted");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(expect), "error {err:?} lacks {expect:?}");
}

#[test]
fn hostile_archives_are_rejected() {
    use tar::EntryType as T;
    refused(&hostile(&[("../../etc/passwd", T::Regular, b"x", None)]), "escapes the snapshot root");
    refused(&hostile(&[("/etc/passwd", T::Regular, b"x", None)]), "escapes the snapshot root");
    refused(
        &hostile(&[("sys/a", T::Symlink, b"", Some("../../../etc"))]),
        "leaves the snapshot root",
    );
    refused(
        &hostile(&[("sys/a", T::Symlink, b"", Some("/etc/shadow"))]),
        "leaves the snapshot root",
    );
    refused(&hostile(&[("proc/x", T::Link, b"", Some("etc/passwd"))]), "hard link");
    refused(&hostile(&[("dev/sda", T::Block, b"", None)]), "only files, directories and links");
    refused(b"this is not gzip at all", "corrupt");
    refused(&hostile(&[]), "empty");
    // A file claiming to be huge: refused from its header, before any read.
    let mut big = hostile(&[("proc/modules", T::Regular, b"", None)]);
    {
        let mut raw = Vec::new();
        let mut dec = flate2::read::GzDecoder::new(&big[..]);
        std::io::Read::read_to_end(&mut dec, &mut raw).unwrap();
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&raw[..512]);
        h.set_size(efa_doctor::root::MAX_FILE_BYTES + 1);
        h.set_cksum();
        raw[..512].copy_from_slice(h.as_bytes());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        big = gz.finish().unwrap();
    }
    refused(&big, "file limit");
    // A truncated archive.
    let good = hostile(&[("proc/modules", T::Regular, &[b'a'; 4000], None)]);
    refused(&good[..good.len() / 2], "corrupt");
}
