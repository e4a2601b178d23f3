//! Native checks of a mounted node root (`--root /host` in a container): the helper runs
//! chrooted into the root, on the node's own loader and libraries. Exercised with a
//! recursive bind mount of `/` in a private mount namespace, as the fleet DaemonSet and
//! `kubectl debug node/...` mount the node's root at `/host`.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use efa_doctor::root::{Root, RootKind, is_mounted_live};

/// Whether this sandbox lets us make a private mount namespace with a bind mount in it.
fn can_bind_mount() -> Result<(), String> {
    let d = tempfile::tempdir().unwrap();
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", "mount --rbind / \"$1\"", "sh"])
        .arg(d.path())
        .output()
        .map_err(|e| format!("unshare: {e}"))?;
    if o.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&o.stderr).into_owned()) }
}

/// `efa-doctor --root <dir> ARGS` with `/` bind-mounted at `<dir>` in a private mount
/// namespace (gone, with the mount, when the command ends), optionally under `setpriv`.
fn run_in_bind_mount(dir: &Path, setpriv: &[&str], args: &[&str]) -> Output {
    let script = r#"mount --rbind / "$1" && shift && exec "$@""#;
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(dir)
        .args(setpriv)
        .arg(env!("CARGO_BIN_EXE_efa-doctor"))
        .arg("--root")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("unshare runs")
}

/// A directory to mount the root on that an unprivileged user may also reach.
fn mount_point() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

macro_rules! require_bind_mounts {
    () => {
        if let Err(why) = can_bind_mount() {
            eprintln!("skipped: cannot bind-mount / in a private mount namespace here: {why}");
            return;
        }
    };
}

/// (provider, fabric, domain) of every `fi_info` entry on this machine.
fn fi_info_entries() -> BTreeSet<(String, String, String)> {
    let o = Command::new("fi_info")
        .output()
        .expect("fi_info is required for this test: install libfabric-bin (see .ci/run)");
    let mut out = BTreeSet::new();
    let (mut prov, mut fabric) = (String::new(), String::new());
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        if let Some(p) = line.strip_prefix("provider: ") {
            prov = p.trim().to_string();
        } else if let Some(f) = line.trim().strip_prefix("fabric: ") {
            fabric = f.to_string();
        } else if let Some(d) = line.trim().strip_prefix("domain: ") {
            out.insert((prov.clone(), fabric.clone(), d.to_string()));
        }
    }
    out
}

#[test]
fn a_bind_mounted_root_enumerates_the_nodes_libfabric_from_a_chroot() {
    require_bind_mounts!();
    let d = mount_point();
    let shown = d.path().display().to_string();
    let o = run_in_bind_mount(
        d.path(),
        &[],
        &["--only", "libfabric.efa-provider,host.network", "--format", "json"],
    );
    let v = json(&o);
    assert_eq!(v["root"]["kind"], "host-mount", "{}", v["root"]);
    assert!(v["root"]["note"].as_str().unwrap().contains("live procfs and sysfs"), "{}", v["root"]);
    let lf = &v["facts"]["libfabric"];
    assert_eq!(lf["state"], "ok", "{lf}");
    assert_eq!(lf["vantage"], format!("chroot into {shown}"), "{lf}");
    // The helper was handed the node's own path, which resolves only inside the chroot.
    let path = lf["path"].as_str().unwrap();
    assert!(path.starts_with('/') && !path.starts_with(&shown), "{path}");
    let ours: BTreeSet<(String, String, String)> = lf["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("name"), s("fabric"), s("domain"))
        })
        .collect();
    let theirs = fi_info_entries();
    assert!(!theirs.is_empty(), "fi_info listed nothing");
    assert_eq!(ours, theirs);
    // IMDS is no longer refused for a mounted root: not an EC2 machine here, so not asked.
    let imds = sole_result(&v, "host.network");
    assert!(!imds["summary"].as_str().unwrap().contains("not live"), "{imds}");
    let human = run_in_bind_mount(d.path(), &[], &["--only", "libfabric.efa-provider"]);
    let text = stdout(&human);
    let line = text.lines().find(|l| l.starts_with("native: ")).unwrap_or_default();
    assert!(
        line.contains("libfabric") && line.contains(&format!("from chroot into {shown}")),
        "{text}"
    );
}

#[test]
fn without_the_privilege_to_chroot_native_checks_say_why() {
    require_bind_mounts!();
    let d = mount_point();
    let nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"];
    let o = run_in_bind_mount(
        d.path(),
        &nobody,
        &["--only", "libfabric.efa-provider", "--format", "json"],
    );
    let v = json(&o);
    assert_eq!(v["root"]["kind"], "host-mount");
    let lf = &v["facts"]["libfabric"];
    assert_eq!(lf["state"], "not-run", "{lf}");
    let error = lf["error"].as_str().unwrap();
    assert!(
        error.contains("CAP_SYS_CHROOT") && error.contains("Operation not permitted"),
        "{error}"
    );
    let r = sole_result(&v, "libfabric.efa-provider");
    assert_eq!(r["status"], "skip", "{r}");
    assert!(r["summary"].as_str().unwrap().contains("may not chroot into"), "{r}");
}

#[test]
fn a_fixture_directory_is_not_a_mounted_live_root() {
    let fixture = fixture("p5-healthy");
    assert!(!is_mounted_live(&fixture));
    assert_eq!(Root::directory(&fixture, RootKind::Directory).unwrap().kind(), RootKind::Directory);
    // The same test says yes where procfs and sysfs are mounted.
    assert!(is_mounted_live(Path::new("/")));
    let v = check_only(&fixture, "libfabric.efa-provider");
    assert_eq!(v["root"]["kind"], "directory");
    assert!(!v.to_string().contains("\"vantage\""), "a fixture run names no vantage");
}

/// A container without /proc (an image's root entered with plain `chroot`, as
/// `scripts/image` does) cannot start the helper inside `/host`: the native checks skip
/// saying why; they never fail the node.
#[test]
fn without_its_own_executable_native_checks_skip_not_fail() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: chroot needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let bin = env!("CARGO_BIN_EXE_efa-doctor");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(bin, root.join("bin/efa-doctor")).unwrap();
    // The binary's loader and libraries, so it starts inside the bare root.
    let ldd = Command::new("ldd").arg(bin).output().expect("ldd runs");
    for lib in
        String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/'))
    {
        let to = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lib, &to).unwrap();
    }
    copy_tree(&fixture("p5-healthy"), &root.join("host"));
    let o = Command::new("chroot")
        .arg(root)
        .args(["/bin/efa-doctor", "--root", "/host", "--no-probe", "--format", "json"])
        .output()
        .unwrap();
    let r = json(&o);
    assert_eq!(o.status.code(), Some(0), "{}", r["summary"]);
    for id in ["gpu.inventory", "libfabric.efa-provider"] {
        let res = r["results"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap();
        assert_eq!(res["status"], "skip", "{res}");
        assert!(res["summary"].as_str().unwrap().contains("own executable"), "{res}");
    }
}
