//! The test-only libfabric provider `fakehmem` (tests/fakeprov/fakeprov.c) works through
//! the REAL libfabric: `fi_info` lists it from `FI_PROVIDER_PATH`, and efa-doctor's own
//! `native::fabric` layer opens it and gets exactly the registration results the
//! `FAKEPROV_*_RET` variables chose, with the EFA-style warning on libfabric's log.
//!
//! libfabric reads `FI_PROVIDER_PATH` and its log settings once per process, so every
//! configuration runs in a child: `fi_info`, or this test binary re-invoked with
//! `FAKEPROV_CHILD=1` (see [`fakeprov_child`]).

mod common;

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::path::Path;
use std::process::{Command, Output};

use common::fakeprov::{FAKEPROV_NAME, fakeprov_dir};
use efa_doctor::native::fabric::{
    FI_HMEM_CUDA, FI_HMEM_SYSTEM, FI_MR_DMABUF, FI_READ, FI_RECV, FI_REMOTE_READ, FI_REMOTE_WRITE,
    FI_SEND, FI_WRITE, Fabric, describe, fi_mr_attr, fi_mr_dmabuf, iovec,
};

/// Variables that would change what libfabric or the provider does, cleared in children.
const INHERITED: &[&str] = &[
    "FI_PROVIDER",
    "FI_PROVIDER_PATH",
    "FI_LOG_LEVEL",
    "FI_LOG_PROV",
    "FI_LOG_SUBSYS",
    "FI_HOOK",
    "FAKEPROV_NO_HMEM",
    "FAKEPROV_DMABUF_RET",
    "FAKEPROV_CUDA_RET",
    "FAKEPROV_HOST_RET",
    "FAKEPROV_TRACE",
    "FAKEPROV_CHILD",
    "FAKEPROV_CHILD_HMEM",
];

const RESULT: &str = "FAKEPROV-RESULT ";
const HOST_LEN: usize = 4096;
const DMABUF_LEN: usize = 8192;

fn clean(cmd: &mut Command) -> &mut Command {
    for v in INHERITED {
        cmd.env_remove(v);
    }
    cmd
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn fi_info(args: &[&str], env: &[(&str, &str)], provider_path: bool) -> (String, String) {
    let mut cmd = Command::new("fi_info");
    clean(&mut cmd).args(args).envs(env.iter().copied());
    if provider_path {
        cmd.env("FI_PROVIDER_PATH", fakeprov_dir());
    }
    let o = cmd
        .output()
        .expect("fi_info is required for this test: install libfabric-bin (see .ci/run)");
    text(&o)
}

/// Runs [`fakeprov_child`] in a fresh process with `env`; returns its `key=value` results
/// and its stderr (where libfabric logs).
fn child(env: &[(&str, &str)], provider_path: bool) -> (BTreeMap<String, String>, String) {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = Command::new(exe);
    clean(&mut cmd)
        .args(["fakeprov_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("FAKEPROV_CHILD", "1")
        .envs(env.iter().copied());
    if provider_path {
        cmd.env("FI_PROVIDER_PATH", fakeprov_dir());
    }
    let o = cmd.output().expect("re-run the test binary");
    let (out, err) = text(&o);
    assert!(o.status.success(), "child failed: {}\nstdout:\n{out}\nstderr:\n{err}", o.status);
    let results: BTreeMap<String, String> = out
        .lines()
        // The harness's "test fakeprov_child ... " may precede the first result on its line.
        .filter_map(|l| l.find(RESULT).map(|i| &l[i + RESULT.len()..]))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(results.contains_key("getinfo"), "child reported nothing:\n{out}\nstderr:\n{err}");
    (results, err)
}

fn get<'a>(r: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    r.get(key).map(String::as_str).unwrap_or_else(|| panic!("no {key} in child results {r:?}"))
}

/// The line libfabric's logger wrote for a failed registration, if any.
fn mr_warning<'a>(stderr: &'a str, len: usize, reason: &str) -> Option<&'a str> {
    let want = format!("Unable to register MR of {len} bytes: {reason}");
    stderr.lines().find(|l| l.contains(&want))
}

fn show(r: Result<(), i32>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

/// The child side: opens `fakehmem` through the real libfabric with efa-doctor's own FFI
/// layer and registers a host buffer three ways. A no-op in the normal test run.
#[test]
fn fakeprov_child() {
    if std::env::var_os("FAKEPROV_CHILD").is_none() {
        return;
    }
    let say = |k: &str, v: &str| println!("{RESULT}{k}={v}");
    let fab = Fabric::load("libfabric.so.1").expect("dlopen libfabric.so.1");
    let hmem = std::env::var("FAKEPROV_CHILD_HMEM").map_or(true, |v| v != "0");
    let mut hints = fab.hints().expect("fi_dupinfo(NULL)");
    hints.nixl_style(Some(FAKEPROV_NAME), hmem);
    let list = match fab.getinfo(fab.api_version(), Some(&hints)) {
        Ok(l) => l,
        Err(r) => return say("getinfo", &r.to_string()),
    };
    say("getinfo", "ok");
    let info = list.iter().next().expect("fi_getinfo returned an empty list");
    let d = describe(info);
    say("provider", &d.name);
    say("fabric", &d.fabric);
    say("domain", &d.domain);
    say("caps", &d.caps.join("|"));
    say("mr_mode", &d.mr_mode.join("|"));
    let dom = match fab.open_domain(info) {
        Ok(dom) => dom,
        Err((what, r)) => return say("open", &format!("{what}:{r}")),
    };
    say("open", "ok");

    let mut buf = vec![0u8; DMABUF_LEN];
    let iov = iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: HOST_LEN };
    let mut attr = fi_mr_attr {
        mr_iov_or_dmabuf: &iov as *const iovec as *const c_void,
        iov_count: 1,
        access: FI_SEND | FI_RECV | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE,
        iface: FI_HMEM_SYSTEM,
        ..fi_mr_attr::default()
    };
    say("host", &show(dom.register(&attr, 0)));
    attr.iface = FI_HMEM_CUDA;
    attr.device = 0;
    say("cuda", &show(dom.register(&attr, 0)));
    let dmabuf =
        fi_mr_dmabuf { fd: -1, offset: 0, len: DMABUF_LEN, base_addr: buf.as_mut_ptr().cast() };
    attr.mr_iov_or_dmabuf = &dmabuf as *const fi_mr_dmabuf as *const c_void;
    say("dmabuf", &show(dom.register(&attr, FI_MR_DMABUF)));
}

#[test]
fn fi_info_lists_the_fake_provider_from_fi_provider_path() {
    let (out, err) = fi_info(&["-p", FAKEPROV_NAME], &[], true);
    assert!(out.lines().any(|l| l.trim() == "provider: fakehmem"), "{out}\n{err}");
    assert!(out.lines().any(|l| l.trim() == "fabric: fake"), "{out}\n{err}");
    assert!(out.lines().any(|l| l.trim() == "domain: fake0-rdm"), "{out}\n{err}");
    assert!(out.lines().any(|l| l.trim() == "type: FI_EP_RDM"), "{out}\n{err}");

    let (v, _) = fi_info(&["-p", FAKEPROV_NAME, "-v"], &[], true);
    let caps = v.lines().find(|l| l.trim().starts_with("caps:")).expect("caps line");
    assert!(caps.contains("FI_HMEM") && caps.contains("FI_RMA"), "{caps}");
    let mr = v.lines().find(|l| l.trim().starts_with("mr_mode:")).expect("mr_mode line");
    for m in ["FI_MR_LOCAL", "FI_MR_VIRT_ADDR", "FI_MR_ALLOCATED", "FI_MR_PROV_KEY", "FI_MR_HMEM"] {
        assert!(mr.contains(m), "{mr} lacks {m}");
    }
    assert!(v.contains("prov_name: fakehmem\n"), "core must name it exactly once:\n{v}");
    assert!(v.contains("mr_key_size: 2"), "{v}");
    assert!(v.contains("threading: FI_THREAD_COMPLETION"), "{v}");

    // Control: without FI_PROVIDER_PATH the provider does not exist.
    let (out, _) = fi_info(&["-p", FAKEPROV_NAME], &[], false);
    assert!(!out.contains("fakehmem"), "{out}");
}

#[test]
fn fi_info_hmem_can_be_withdrawn() {
    let no_hmem = [("FAKEPROV_NO_HMEM", "1")];
    let (out, _) = fi_info(&["-p", FAKEPROV_NAME, "-c", "FI_MSG|FI_HMEM"], &no_hmem, true);
    assert!(!out.contains("provider: fakehmem"), "{out}");
    let (out, _) = fi_info(&["-p", FAKEPROV_NAME, "-c", "FI_MSG"], &no_hmem, true);
    assert!(out.contains("provider: fakehmem"), "{out}");
    let (v, _) = fi_info(&["-p", FAKEPROV_NAME, "-v"], &no_hmem, true);
    assert!(v.contains("caps: [ FI_MSG, FI_RMA, FI_LOCAL_COMM, FI_REMOTE_COMM ]"), "{v}");
    let (out, _) = fi_info(&["-p", FAKEPROV_NAME, "-c", "FI_MSG|FI_HMEM"], &[], true);
    assert!(out.contains("provider: fakehmem"), "{out}");
}

#[test]
fn cuda_registration_fails_with_the_chosen_code_and_logs_like_efa() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("trace");
    let trace_s = trace.to_str().unwrap();
    let (r, err) = child(
        &[("FAKEPROV_CUDA_RET", "-14"), ("FI_LOG_LEVEL", "warn"), ("FAKEPROV_TRACE", trace_s)],
        true,
    );
    assert_eq!(get(&r, "getinfo"), "ok");
    assert_eq!(get(&r, "provider"), "fakehmem");
    assert_eq!(get(&r, "fabric"), "fake");
    assert_eq!(get(&r, "domain"), "fake0-rdm");
    assert!(get(&r, "caps").contains("FI_HMEM"), "{r:?}");
    assert!(get(&r, "mr_mode").contains("FI_MR_HMEM"), "{r:?}");
    assert_eq!(get(&r, "open"), "ok");
    assert_eq!(get(&r, "host"), "ok");
    assert_eq!(get(&r, "cuda"), "-14");
    assert_eq!(get(&r, "dmabuf"), "ok");

    // libfabric's own logger: "libfabric:<pid>:<time>:fakehmem:mr:<func>():<line><warn> ...".
    let line = mr_warning(&err, HOST_LEN, "Bad address")
        .unwrap_or_else(|| panic!("no MR warning on stderr:\n{err}"));
    assert!(line.starts_with("libfabric:"), "{line}");
    assert!(line.contains(":fakehmem:mr:"), "{line}");
    assert!(line.contains("<warn>"), "{line}");
    assert_eq!(err.matches("Unable to register MR").count(), 1, "{err}");

    let t = std::fs::read_to_string(&trace).expect("trace written");
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines,
        [
            "iface=0 flags=0x0 len=4096 ret=0",
            "iface=1 flags=0x0 len=4096 ret=-14",
            "iface=1 flags=0x10000000000 len=8192 ret=0",
        ],
        "{t}"
    );
}

#[test]
fn dmabuf_and_host_codes_are_independent() {
    let (r, err) = child(
        &[("FAKEPROV_DMABUF_RET", "-95"), ("FAKEPROV_HOST_RET", "-12"), ("FI_LOG_LEVEL", "warn")],
        true,
    );
    assert_eq!(get(&r, "host"), "-12");
    assert_eq!(get(&r, "cuda"), "ok");
    assert_eq!(get(&r, "dmabuf"), "-95");
    assert!(mr_warning(&err, HOST_LEN, "Cannot allocate memory").is_some(), "{err}");
    assert!(mr_warning(&err, DMABUF_LEN, "Operation not supported").is_some(), "{err}");
}

#[test]
fn the_warning_follows_libfabric_log_settings() {
    // No FI_LOG_LEVEL: the failure is still returned, but libfabric prints nothing.
    let (r, err) = child(&[("FAKEPROV_CUDA_RET", "-14")], true);
    assert_eq!(get(&r, "cuda"), "-14");
    assert!(mr_warning(&err, HOST_LEN, "Bad address").is_none(), "{err}");
    // FI_LOG_PROV naming another provider silences ours.
    let (r, err) = child(
        &[("FAKEPROV_CUDA_RET", "-14"), ("FI_LOG_LEVEL", "warn"), ("FI_LOG_PROV", "tcp")],
        true,
    );
    assert_eq!(get(&r, "cuda"), "-14");
    assert!(mr_warning(&err, HOST_LEN, "Bad address").is_none(), "{err}");
}

#[test]
fn hmem_hints_find_nothing_when_hmem_is_withdrawn() {
    let (r, _) = child(&[("FAKEPROV_NO_HMEM", "1")], true);
    assert_eq!(get(&r, "getinfo"), "-61");
    let (r, _) = child(&[("FAKEPROV_NO_HMEM", "1"), ("FAKEPROV_CHILD_HMEM", "0")], true);
    assert_eq!(get(&r, "getinfo"), "ok");
    assert!(!get(&r, "caps").contains("FI_HMEM"), "{r:?}");
    assert_eq!(get(&r, "host"), "ok");
}

#[test]
fn the_provider_comes_only_from_fi_provider_path() {
    let (r, _) = child(&[], false);
    assert_eq!(get(&r, "getinfo"), "-61");
}

#[test]
fn the_built_provider_exports_fi_prov_ini() {
    let dir = fakeprov_dir();
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries, ["libfakehmem-fi.so"], "{}", dir.display());
    assert!(dir.starts_with(Path::new(env!("CARGO_TARGET_TMPDIR"))), "{}", dir.display());
    // A second call reuses the same build.
    assert_eq!(fakeprov_dir(), dir);
}
