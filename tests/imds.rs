//! IMDSv2 against a fake metadata server on loopback: token first, every answer under one
//! second, never required; `host.network` judges placement and secondary VPC CIDRs.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "AQAEAFakeTokenForTests==";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    RefuseToken,
    Silent,
}

/// A fake IMDSv2 on 127.0.0.1 serving `items` (path under /latest/meta-data/ -> body).
fn serve(items: BTreeMap<String, String>, mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            if mode == Mode::Silent {
                // Accept and never answer; keep the socket open.
                std::thread::spawn(move || {
                    let mut b = [0u8; 1024];
                    let _ = stream.read(&mut b);
                    std::thread::sleep(Duration::from_secs(30));
                });
                continue;
            }
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                headers.push(line.trim().to_ascii_lowercase());
            }
            let mut parts = request.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let has = |h: &str| headers.iter().any(|x| x.starts_with(h));
            let (code, body) = if method == "PUT" && path == "/latest/api/token" {
                if mode == Mode::RefuseToken || !has("x-aws-ec2-metadata-token-ttl-seconds:") {
                    (403, String::new())
                } else {
                    (200, TOKEN.to_string())
                }
            } else if !has(&format!("x-aws-ec2-metadata-token: {}", TOKEN.to_ascii_lowercase())) {
                (401, String::new())
            } else {
                match path.strip_prefix("/latest/meta-data/").and_then(|p| items.get(p)) {
                    Some(b) => (200, b.clone()),
                    None => (404, String::new()),
                }
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

const MAC_A: &str = "0e:1a:2b:3c:4d:5e";
const MAC_B: &str = "0e:1a:2b:3c:4d:5f";

fn instance(group: Option<&str>, second_subnet: &str) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = [
        ("instance-type", "p5.48xlarge"),
        ("instance-id", "i-0123456789abcdef0"),
        ("placement/availability-zone", "us-east-2b"),
        ("placement/availability-zone-id", "use2-az2"),
        ("placement/region", "us-east-2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(g) = group {
        m.insert("placement/group-name".into(), g.into());
    }
    m.insert("network/interfaces/macs/".into(), format!("{MAC_A}/\n{MAC_B}/"));
    for (i, (mac, subnet)) in
        [(MAC_A, "10.0.1.0/24"), (MAC_B, second_subnet)].into_iter().enumerate()
    {
        let p = |k: &str| format!("network/interfaces/macs/{mac}/{k}");
        m.insert(p("device-number"), i.to_string());
        m.insert(p("network-card-index"), i.to_string());
        m.insert(p("interface-id"), format!("eni-0{i}1234"));
        m.insert(p("subnet-id"), format!("subnet-0{i}"));
        m.insert(p("subnet-ipv4-cidr-block"), subnet.into());
        m.insert(p("vpc-id"), "vpc-0abc".into());
        m.insert(p("vpc-ipv4-cidr-block"), "10.0.0.0/16".into());
        m.insert(p("vpc-ipv4-cidr-blocks"), "10.0.0.0/16\n100.64.0.0/16".into());
    }
    m
}

fn check(endpoint: Option<&str>, extra_env: &[(&str, &str)]) -> Value {
    let mut c = common::bin();
    c.env_remove("AWS_EC2_METADATA_DISABLED").env_remove("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if let Some(e) = endpoint {
        c.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", e);
    }
    let o = c
        .envs(extra_env.iter().copied())
        .args(["check", "--only", "host.network", "--format", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn secondary_cidr_is_a_warning_with_the_cidrs() {
    let r = check(Some(&serve(instance(Some("efa-cluster"), "100.64.8.0/22"), Mode::Normal)), &[]);
    let res = &r["results"][0];
    assert_eq!(res["status"], "warn", "{res:#}");
    assert_eq!(res["value"], "secondary-cidr");
    assert!(res["summary"].as_str().unwrap().contains("100.64.8.0/22"));
    assert!(res["summary"].as_str().unwrap().contains("does not confirm"), "marked unconfirmed");
    let imds = &r["facts"]["imds"];
    assert_eq!(imds["state"], "ok");
    assert_eq!(imds["placement_group"], "efa-cluster");
    assert_eq!(imds["interfaces"][1]["secondary_cidr"], true);
    assert_eq!(imds["interfaces"][0]["secondary_cidr"], false);
    assert_eq!(imds["vantage"], "this process");
}

#[test]
fn a_mounted_node_root_asks_imds_from_this_process_and_says_so() {
    let endpoint = serve(instance(Some("efa-cluster"), "10.0.2.0/24"), Mode::Normal);
    let d = tempfile::tempdir().unwrap();
    // `/` bind-mounted at a temporary path in a private mount namespace: a mounted live root.
    let o = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --rbind / "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(d.path())
        .arg(env!("CARGO_BIN_EXE_efa-doctor"))
        .args(["check", "--only", "host.network", "--format", "json", "--root"])
        .arg(d.path())
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint)
        .output()
        .unwrap();
    if !o.status.success() && o.stdout.is_empty() {
        eprintln!(
            "skipped: cannot bind-mount / in a private mount namespace here: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        return;
    }
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["root"]["kind"], "host-mount");
    let imds = &r["facts"]["imds"];
    assert_eq!(imds["state"], "ok", "{imds:#}");
    assert_eq!(imds["vantage"], "this process's network namespace (a pod on the node)");
    assert_eq!(r["results"][0]["status"], "pass", "{r:#}");
    // A fixture stays refused, whatever the environment names.
    let fixture = common::fixture("p5-healthy");
    let o = common::bin()
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint)
        .args(["check", "--only", "host.network", "--format", "json", "--root"])
        .arg(&fixture)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(r["facts"]["imds"]["state"], "ok", "{:#}", r["facts"]["imds"]);
    assert!(r["facts"]["imds"].get("vantage").is_none());
}

#[test]
fn primary_cidrs_in_a_placement_group_pass() {
    let r = check(Some(&serve(instance(Some("efa-cluster"), "10.0.2.0/24"), Mode::Normal)), &[]);
    let res = &r["results"][0];
    assert_eq!(res["status"], "pass", "{res:#}");
    assert!(
        res["summary"]
            .as_str()
            .unwrap()
            .contains("p5.48xlarge in us-east-2b, placement group efa-cluster")
    );
}

#[test]
fn imds_is_never_required() {
    // Token refused (IMDSv1-only or disabled): a skip with the reason.
    let r = check(Some(&serve(instance(None, "10.0.2.0/24"), Mode::RefuseToken)), &[]);
    assert_eq!(r["results"][0]["status"], "skip");
    assert!(r["results"][0]["summary"].as_str().unwrap().contains("no IMDSv2 token"), "{r:#}");
    // A server that never answers costs about a second.
    let start = Instant::now();
    let r = check(Some(&serve(BTreeMap::new(), Mode::Silent)), &[]);
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
    assert_eq!(r["results"][0]["status"], "skip", "{r:#}");
    // Opted out.
    let r = check(Some("http://127.0.0.1:1"), &[("AWS_EC2_METADATA_DISABLED", "true")]);
    assert!(r["results"][0]["summary"].as_str().unwrap().contains("AWS_EC2_METADATA_DISABLED"));
    // Not EC2 and no endpoint named: not even asked.
    let r = check(None, &[]);
    assert_eq!(r["results"][0]["status"], "skip");
}

#[test]
fn snapshot_keeps_the_answers_and_efa_nodes_want_a_placement_group() {
    // Capture with the fake IMDS, then judge the capture with no server at all.
    let endpoint = serve(instance(None, "10.0.2.0/24"), Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("s.tar.gz");
    let o = common::bin()
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint)
        .args(["snapshot", "--no-probe", "-o", snap.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::run(&[
        "check",
        "--snapshot",
        snap.to_str().unwrap(),
        "--only",
        "host.network",
        "--format",
        "json",
    ]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["facts"]["imds"]["instance_type"], "p5.48xlarge", "{r:#}");
    assert_eq!(r["results"][0]["status"], "pass", "no EFA device here: no placement-group finding");

    // The same answers on a node with EFA devices (a p5 fixture carrying them): no
    // placement group is a warning.
    let imds = r["facts"]["imds"].clone();
    let root = dir.path().join("p5");
    common::copy_tree(&common::fixture("p5-healthy"), &root);
    common::inject_native(&root, "imds", imds);
    let r = common::check_only(&root, "host.network");
    let res = &r["results"][0];
    assert_eq!(res["status"], "warn", "{res:#}");
    assert_eq!(res["value"], "no-placement-group");
    assert!(res["remediation"].as_str().unwrap().contains("placement group"));
}
