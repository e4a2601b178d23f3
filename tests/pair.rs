//! `efa-doctor probe pair` between two real processes over Debian's libfabric tcp provider:
//! on loopback, and between two network namespaces joined by veth links (one link for the
//! side channel, one for the data path, so the data path can be cut alone).

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn efa_doctor(prefix: &[&str], args: &[&str]) -> Command {
    let (program, pre) = match prefix.split_first() {
        Some((p, rest)) => (p.to_string(), rest.to_vec()),
        None => (env!("CARGO_BIN_EXE_efa-doctor").to_string(), vec![]),
    };
    let mut c = Command::new(program);
    c.args(pre);
    if !prefix.is_empty() {
        c.arg(env!("CARGO_BIN_EXE_efa-doctor"));
    }
    for v in [
        "FI_PROVIDER",
        "FI_PROVIDER_PATH",
        "FI_LOG_LEVEL",
        "FI_TCP_IFACE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    ] {
        c.env_remove(v);
    }
    c.args(["probe", "pair", "--format", "json"]);
    if !args.contains(&"--provider") {
        c.args(["--provider", "tcp"]);
    }
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Waits for `child` (reading its output meanwhile, so a full pipe never blocks it), killing
/// it after `limit`.
fn finish(child: Child, limit: Duration) -> (Option<i32>, Value) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let o: Output = match rx.recv_timeout(limit) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            rx.recv().unwrap().unwrap()
        }
    };
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), v)
}

fn pair_result(v: &Value) -> &Value {
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "{v:#}");
    common::sole_result(v, "probe.pair")
}

/// Runs both ends; returns (listener, connector) reports and exit codes.
fn run_pair(
    listen_prefix: &[&str],
    connect_prefix: &[&str],
    bind: &str,
    target: &str,
    extra: &[&str],
) -> ((Option<i32>, Value), (Option<i32>, Value)) {
    run_pair_on(listen_prefix, connect_prefix, bind, target, common::free_port(), extra)
}

fn run_pair_on(
    listen_prefix: &[&str],
    connect_prefix: &[&str],
    bind: &str,
    target: &str,
    port: u16,
    extra: &[&str],
) -> ((Option<i32>, Value), (Option<i32>, Value)) {
    let port = port.to_string();
    let mut largs = vec!["--listen", "--bind", bind, "--port", &port];
    largs.extend_from_slice(extra);
    let listener = efa_doctor(listen_prefix, &largs).spawn().unwrap();
    let target = format!("{target}:{port}");
    let mut cargs = vec!["--connect", target.as_str()];
    cargs.extend_from_slice(extra);
    let connector = efa_doctor(connect_prefix, &cargs).spawn().unwrap();
    let c = finish(connector, Duration::from_secs(90));
    let l = finish(listener, Duration::from_secs(30));
    (l, c)
}

#[test]
fn loopback_pair_measures_every_size() {
    let ((lc, l), (cc, c)) =
        run_pair(&[], &[], "127.0.0.1", "127.0.0.1", &["--sizes", "1,4K,64K", "--iters", "50"]);
    let r = pair_result(&c);
    assert_eq!(r["status"], "pass", "{r:#}");
    assert_eq!(r["value"], "ok");
    assert_eq!(cc, Some(0));
    let d = &r["details"];
    assert_eq!(d["data_ok"], true);
    let rows: Vec<(String, u64)> = d["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["test"].as_str().unwrap().to_string(), x["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [("pingpong", 1), ("pingpong", 4096), ("pingpong", 65536), ("stream", 65536)]
            .map(|(t, s)| (t.to_string(), s))
    );
    for x in d["results"].as_array().unwrap() {
        assert!(
            x["usec_per_xfer"].as_f64().unwrap() > 0.0 && x["mb_per_sec"].as_f64().unwrap() > 0.0,
            "{x}"
        );
    }
    // Both ends ran on this machine, and say so.
    assert!(r["summary"].as_str().unwrap().contains("same node"));
    // The listener finished cleanly too, with the plan the connecting end chose.
    assert_eq!(pair_result(&l)["status"], "pass", "{l:#}");
    assert_eq!(lc, Some(0));
}

#[test]
fn nobody_listening_is_a_side_channel_error_within_the_wait() {
    let start = Instant::now();
    let port = common::free_port().to_string();
    let target = format!("127.0.0.1:{port}");
    let child = efa_doctor(&[], &["--connect", &target, "--wait", "1"]).spawn().unwrap();
    let (code, v) = finish(child, Duration::from_secs(30));
    let r = pair_result(&v);
    assert_eq!(r["status"], "error", "{r:#}");
    assert!(
        r["summary"].as_str().unwrap().contains("cannot reach the peer's side channel"),
        "{r:#}"
    );
    assert_eq!(code, Some(2));
    assert!(start.elapsed() < Duration::from_secs(20));
    // And a listener nobody connects to gives up too.
    let port = common::free_port().to_string();
    let child =
        efa_doctor(&[], &["--listen", "--bind", "127.0.0.1", "--port", &port, "--wait", "1"])
            .spawn()
            .unwrap();
    let (code, v) = finish(child, Duration::from_secs(30));
    assert!(pair_result(&v)["summary"].as_str().unwrap().contains("no peer connected"), "{v:#}");
    assert_eq!(code, Some(2));
}

#[test]
fn unknown_provider_is_an_endpoint_error_on_both_ends() {
    let ((lcode, l), (code, c)) = run_pair(
        &[],
        &[],
        "127.0.0.1",
        "127.0.0.1",
        &["--provider", "nosuchprovider", "--wait", "10"],
    );
    for (v, code) in [(&c, code), (&l, lcode)] {
        let r = pair_result(v);
        assert_eq!(r["status"], "error", "{r:#}");
        assert!(
            r["summary"]
                .as_str()
                .unwrap()
                .contains("could not open an RDM endpoint of provider nosuchprovider"),
            "{r:#}"
        );
        assert_eq!(code, Some(2));
    }
}

/// Two network namespaces joined by a side-channel link and a data link.
struct Namespaces {
    a: String,
    b: String,
}

impl Namespaces {
    fn new() -> Option<Namespaces> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("network-namespace tests need root (CI runs them as root); not run here");
            return None;
        }
        // Interface names of letters only: libfabric 1.17's FI_TCP_IFACE did not match
        // names with digits in them here.
        let id: String = (std::process::id() % 100_000)
            .to_string()
            .chars()
            .map(|c| (b'a' + c.to_digit(10).unwrap() as u8) as char)
            .collect();
        let ns = Namespaces { a: format!("efad{id}a"), b: format!("efad{id}b") };
        let sh = |cmd: String| {
            let o = Command::new("sh").arg("-c").arg(&cmd).output().expect("sh runs");
            assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
        };
        let (a, b) = (&ns.a, &ns.b);
        for n in [a, b] {
            sh(format!("ip netns add {n} && ip -n {n} link set lo up"));
        }
        sh(format!("ip link add c{id}a netns {a} type veth peer name c{id}b netns {b}"));
        sh(format!("ip link add d{id}a netns {a} type veth peer name d{id}b netns {b}"));
        sh(format!(
            "ip -n {a} addr add 10.211.1.1/24 dev c{id}a && ip -n {b} addr add 10.211.1.2/24 dev c{id}b"
        ));
        sh(format!(
            "ip -n {a} addr add 10.211.2.1/24 dev d{id}a && ip -n {b} addr add 10.211.2.2/24 dev d{id}b"
        ));
        for (n, l) in [(a, "c"), (a, "d"), (b, "c"), (b, "d")] {
            let side = if n == a { "a" } else { "b" };
            sh(format!("ip -n {n} link set {l}{id}{side} up"));
        }
        // A veth is operational a moment after both ends are up; libfabric's tcp provider
        // lists only operational interfaces.
        let deadline = Instant::now() + Duration::from_secs(10);
        for (n, side) in [(a, "a"), (b, "b")] {
            loop {
                let o = Command::new("ip")
                    .args(["-n", n, "-o", "link", "show", "dev", &format!("d{id}{side}")])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&o.stdout).contains("state UP") {
                    break;
                }
                assert!(Instant::now() < deadline, "d{id}{side} in {n} never came up");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(ns)
    }

    fn exec(&self, which: &str, data_iface: &str) -> Vec<String> {
        let n = if which == "a" { &self.a } else { &self.b };
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            n.clone(),
            "env".into(),
            format!("FI_TCP_IFACE={data_iface}"),
        ]
    }

    fn id(&self) -> String {
        // Exactly one 'a' ends the name: the id itself may end in 'a' (a 0 digit).
        self.a
            .strip_prefix("efad")
            .and_then(|s| s.strip_suffix('a'))
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

#[test]
fn between_two_namespaces_and_with_the_data_link_cut() {
    let Some(ns) = Namespaces::new() else { return };
    let id = ns.id();
    let (ea, eb) = (ns.exec("a", &format!("d{id}a")), ns.exec("b", &format!("d{id}b")));
    let (pa, pb): (Vec<&str>, Vec<&str>) =
        (ea.iter().map(String::as_str).collect(), eb.iter().map(String::as_str).collect());
    let ((_, _), (code, c)) =
        run_pair(&pa, &pb, "10.211.1.1", "10.211.1.1", &["--sizes", "64,64K", "--iters", "50"]);
    let r = pair_result(&c);
    assert_eq!(r["status"], "pass", "{r:#}");
    assert_eq!(code, Some(0));
    // The data moved over the data link, the side channel over the other.
    assert_eq!(r["details"]["domain"], format!("d{id}b"), "{r:#}");
    assert_eq!(
        r["details"]["side_channel"],
        format!(
            "10.211.1.1:{}",
            r["details"]["side_channel"].as_str().unwrap().rsplit(':').next().unwrap()
        )
    );

    // Drop every packet of the data path in the connecting namespace (nftables), leaving
    // the side channel's port open: a silent drop. No message crosses, both ends say so
    // within their stall deadlines, and neither hangs.
    let port = common::free_port();
    let rules = "nft add table inet efad && nft add chain inet efad out '{ type filter hook output priority 0; }' && nft add rule inet efad out ip daddr 10.211.2.0/24 drop";
    let o = Command::new("ip").args(["netns", "exec", &ns.b, "sh", "-c", rules]).output().unwrap();
    assert!(o.status.success(), "nft: {}", String::from_utf8_lossy(&o.stderr));
    let start = Instant::now();
    let ((lcode, l), (code, c)) = run_pair_on(
        &pa,
        &pb,
        "10.211.1.1",
        "10.211.1.1",
        port,
        &["--sizes", "64", "--iters", "50", "--stall", "2"],
    );
    assert!(start.elapsed() < Duration::from_secs(60), "took {:?}", start.elapsed());
    let r = pair_result(&c);
    assert_eq!(r["status"], "fail", "{r:#}");
    assert_eq!(r["value"], "blocked", "{r:#}");
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("while the side channel between the same nodes worked"),
        "{r:#}"
    );
    assert!(r["evidence"].to_string().contains("stage pingpong"), "{r:#}");
    assert_eq!(code, Some(1));
    assert_eq!(pair_result(&l)["status"], "fail", "{l:#}");
    assert_eq!(lcode, Some(1));

    // Take the connecting end's data link down: its provider has nothing but loopback left,
    // and says so instead of sending into the void.
    let o = Command::new("ip")
        .args(["-n", &ns.b, "link", "set", &format!("d{id}b"), "down"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let ((_, _), (code, c)) = run_pair(
        &pa,
        &pb,
        "10.211.1.1",
        "10.211.1.1",
        &["--sizes", "64", "--iters", "50", "--stall", "2"],
    );
    let r = pair_result(&c);
    assert_eq!(r["status"], "error", "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains("loopback interfaces only"), "{r:#}");
    assert_eq!(code, Some(2));
}
