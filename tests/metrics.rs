//! `kv.metrics`: scraping vLLM's and NIXL's Prometheus endpoints from a server on loopback.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{fixture, run};
use serde_json::Value;

/// Serves each response in turn (the last one repeatedly) on 127.0.0.1; returns the URL.
fn serve(responses: Vec<(u16, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let queue = Arc::new(Mutex::new(responses));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (code, body) = {
                let mut q = queue.lock().unwrap();
                if q.len() > 1 { q.remove(0) } else { q[0].clone() }
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn metrics(args: &[&str]) -> Value {
    let root = fixture("p5-healthy").display().to_string();
    let mut all =
        vec!["check", "--root", root.as_str(), "--only", "kv.metrics", "--format", "json"];
    all.extend_from_slice(args);
    let o = run(&all);
    serde_json::from_slice::<Value>(&o.stdout).unwrap()["results"][0].clone()
}

fn vllm(bytes: u64, count: u64, failed: u64) -> String {
    format!(
        "# HELP vllm:nixl_bytes_transferred Number of bytes transferred per NIXL KV Cache transfers\n\
         # TYPE vllm:nixl_bytes_transferred histogram\n\
         vllm:nixl_bytes_transferred_bucket{{engine=\"0\",le=\"+Inf\",model_name=\"Qwen/Qwen3-8B\"}} {count}.0\n\
         vllm:nixl_bytes_transferred_count{{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"}} {count}.0\n\
         vllm:nixl_bytes_transferred_sum{{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"}} {bytes}.0\n\
         # HELP vllm:nixl_num_failed_transfers Number of failed NIXL KV Cache transfers\n\
         # TYPE vllm:nixl_num_failed_transfers counter\n\
         vllm:nixl_num_failed_transfers_total{{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"}} {failed}.0\n"
    )
}

#[test]
fn real_nixl_exporter_output_passes() {
    let body = std::fs::read_to_string(fixture("real/h200-nixl-ucx.prom")).unwrap();
    let url = serve(vec![(200, body)]);
    let r = metrics(&["--metrics", &url]);
    assert_eq!(r["status"], "pass", "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains("128 MiB moved"));
    assert_eq!(r["details"]["first"]["transfers"], 2.0);
}

#[test]
fn failed_vllm_transfers_fail() {
    let url = serve(vec![(200, vllm(3_200_000_000, 12, 3))]);
    let r = metrics(&["--metrics", &url]);
    assert_eq!(r["status"], "fail", "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains("3 failed KV transfers"));
    assert!(r["evidence"][0]["observed"].as_str().unwrap().contains("3 failed"));
    assert!(r["remediation"].as_str().unwrap().contains("efa-doctor logs"));
}

#[test]
fn no_bytes_yet_warns_and_no_nixl_series_warns() {
    let r = metrics(&["--metrics", &serve(vec![(200, vllm(0, 0, 0))])]);
    assert_eq!(r["status"], "warn");
    assert!(r["summary"].as_str().unwrap().contains("no KV bytes moved yet"));
    let r = metrics(&["--metrics", &serve(vec![(200, "process_cpu_seconds_total 12.5\n".into())])]);
    assert_eq!(r["status"], "warn");
    assert!(r["remediation"].as_str().unwrap().contains("NixlConnector"));
}

#[test]
fn sample_sees_bytes_moving_or_not() {
    let moving = serve(vec![(200, vllm(1_000_000, 1, 0)), (200, vllm(9_000_000, 5, 0))]);
    let r = metrics(&["--metrics", &moving, "--sample", "1"]);
    assert_eq!(r["status"], "pass", "{r:#}");
    assert_eq!(r["details"]["second"]["bytes"], 9_000_000.0);
    let idle = serve(vec![(200, vllm(1_000_000, 1, 0))]);
    let r = metrics(&["--metrics", &idle, "--sample", "1"]);
    assert_eq!(r["status"], "warn", "{r:#}");
    assert!(r["summary"].as_str().unwrap().contains("none during the 1s sample"));
}

#[test]
fn unreachable_or_broken_endpoints_are_errors() {
    // A port nobody listens on (bound, then released).
    let port = common::free_port();
    let r = metrics(&["--metrics", &format!("http://127.0.0.1:{port}/metrics")]);
    assert_eq!(r["status"], "error");
    assert!(r["summary"].as_str().unwrap().contains("cannot scrape"));
    let r = metrics(&["--metrics", &serve(vec![(500, "boom".into())])]);
    assert_eq!(r["status"], "error", "{r:#}");
    let r = metrics(&["--metrics", "https://127.0.0.1:1/metrics"]);
    assert_eq!(r["status"], "error");
    assert!(r["summary"].as_str().unwrap().contains("https is not supported"));
}

#[test]
fn saved_exposition_files_and_binary_garbage() {
    let r = metrics(&["--metrics", fixture("real/h200-nixl-ucx.prom").to_str().unwrap()]);
    assert_eq!(r["status"], "pass");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.prom");
    std::fs::write(&junk, (0..=255u8).cycle().take(1 << 16).collect::<Vec<u8>>()).unwrap();
    let r = metrics(&["--metrics", junk.to_str().unwrap()]);
    assert_eq!(r["status"], "warn", "{r:#}");
    let r = metrics(&["--metrics", dir.path().join("absent.prom").to_str().unwrap()]);
    assert_eq!(r["status"], "error");
}

#[test]
fn without_metrics_the_check_skips() {
    let r = metrics(&[]);
    assert_eq!(r["status"], "skip");
}
