//! KV-transfer metrics scraped from a Prometheus endpoint (`--metrics URL`): vLLM's
//! NixlConnector series (`vllm:nixl_*`) and NIXL's own telemetry exporter (`agent_*`).
//!
//! `nixl_bytes_transferred` and `nixl_num_failed_transfers` are vLLM's metrics, not NIXL's
//! (REFERENCE §5.3); NIXL's exporter renamed its series between releases, so its series are
//! matched by family prefix and summed over label sets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest a scrape may take, connection included.
pub const SCRAPE_DEADLINE: Duration = Duration::from_secs(5);
/// Largest exposition body read: a vLLM server's /metrics is a few hundred KiB.
pub const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The KV-transfer totals one scrape gives. `None`: the series is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KvTotals {
    /// Bytes moved (vLLM: the `vllm:nixl_bytes_transferred` histogram sum; NIXL:
    /// `agent_tx_bytes_total` + `agent_rx_bytes_total`).
    pub bytes: Option<f64>,
    /// Transfers completed (vLLM: the histogram count; NIXL: request counters).
    pub transfers: Option<f64>,
    /// Failed transfers (vLLM `vllm:nixl_num_failed_transfers`) or errors (NIXL `agent_errors_total`,
    /// older `agent_err_*`).
    pub failures: Option<f64>,
    /// Failed notifications (vLLM only).
    pub failed_notifications: Option<f64>,
    /// Which families were found: `vllm` and/or `nixl`.
    pub sources: Vec<String>,
}

impl KvTotals {
    pub fn any(&self) -> bool {
        !self.sources.is_empty()
    }
}

/// One endpoint's readings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Scrape {
    pub url: String,
    /// Why the endpoint could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub first: KvTotals,
    /// The second reading when `--sample` asked for one, and the seconds between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second: Option<KvTotals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<f64>,
}

/// One sample line: metric name, labels text and value. Comments and malformed lines give
/// `None`.
fn sample(line: &str) -> Option<(&str, &str, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ', '\t']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let (labels, rest) = if let Some(r) = rest.strip_prefix('{') {
        // Label values may hold '}' inside quotes; the last '}' ends the set.
        let end = r.rfind('}')?;
        (&r[..end], &r[end + 1..])
    } else {
        ("", rest)
    };
    let value = rest.split_whitespace().next()?;
    let v: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    v.is_finite().then_some((name, labels, v))
}

/// Sums the KV-transfer series of one exposition text.
pub fn parse(text: &str) -> KvTotals {
    let mut t = KvTotals::default();
    let add = |slot: &mut Option<f64>, v: f64| *slot = Some(slot.unwrap_or(0.0) + v);
    let (mut vllm, mut nixl) = (false, false);
    let (mut vllm_count, mut vllm_xfer_count) = (None, None);
    for (name, _labels, v) in text.lines().filter_map(sample) {
        if let Some(rest) = name.strip_prefix("vllm:nixl_") {
            vllm = true;
            match rest {
                "bytes_transferred_sum" => add(&mut t.bytes, v),
                // Both histograms count the same transfers: prefer the bytes one.
                "bytes_transferred_count" => add(&mut vllm_count, v),
                "xfer_time_seconds_count" => add(&mut vllm_xfer_count, v),
                "num_failed_transfers" | "num_failed_transfers_total" => add(&mut t.failures, v),
                "num_failed_notifications" | "num_failed_notifications_total" => {
                    add(&mut t.failed_notifications, v)
                }
                _ => {}
            }
        } else if let Some(rest) = name.strip_prefix("agent_") {
            nixl = true;
            match rest {
                "tx_bytes_total" | "rx_bytes_total" | "tx_bytes" | "rx_bytes" => {
                    add(&mut t.bytes, v)
                }
                "tx_requests_num_total"
                | "rx_requests_num_total"
                | "tx_requests_num"
                | "rx_requests_num" => add(&mut t.transfers, v),
                r if r.starts_with("errors") || r.starts_with("err_") => add(&mut t.failures, v),
                _ => {}
            }
        }
    }
    if let Some(c) = vllm_count.or(vllm_xfer_count) {
        add(&mut t.transfers, c);
    }
    if vllm {
        t.sources.push("vllm".into());
    }
    if nixl {
        t.sources.push("nixl".into());
    }
    t
}

/// Reads one exposition: `http://` URLs are scraped, anything else is read as a saved
/// exposition file (`curl -s URL > FILE`).
fn fetch(target: &str) -> Result<String, String> {
    if target.starts_with("https://") {
        return Err("https is not supported: scrape the worker's plain-http /metrics port (it listens on the node)".into());
    }
    if !target.starts_with("http://") {
        use std::io::Read;
        let mut data = Vec::new();
        crate::root::open_user_file(std::path::Path::new(target))
            .and_then(|f| f.take(MAX_BODY_BYTES).read_to_end(&mut data))
            .map_err(|e| format!("cannot read {target}: {e}"))?;
        return Ok(String::from_utf8_lossy(&data).into_owned());
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(SCRAPE_DEADLINE))
        .http_status_as_error(true)
        .build()
        .into();
    let mut resp = agent.get(target).call().map_err(|e| format!("cannot scrape {target}: {e}"))?;
    resp.body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .map_err(|e| format!("cannot read the metrics from {target}: {e}"))
}

/// Scrapes every target, twice when `sample` asks for a rate.
pub fn gather(
    targets: &[String],
    sample: Option<Duration>,
    progress: &super::progress::Progress,
) -> Vec<Scrape> {
    let mut out: Vec<Scrape> = targets
        .iter()
        .map(|url| match fetch(url) {
            Ok(text) => Scrape { url: url.clone(), first: parse(&text), ..Scrape::default() },
            Err(e) => Scrape { url: url.clone(), error: Some(e), ..Scrape::default() },
        })
        .collect();
    let live: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, s)| s.error.is_none() && s.first.any())
        .map(|(i, _)| i)
        .collect();
    if let (Some(d), false) = (sample, live.is_empty()) {
        progress.wait("efa-doctor: sampling the KV-transfer metrics", d);
        for i in live {
            match fetch(&out[i].url) {
                Ok(text) => {
                    out[i].second = Some(parse(&text));
                    out[i].interval_secs = Some(d.as_secs_f64());
                }
                Err(e) => out[i].error = Some(format!("second reading failed: {e}")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vllm_series_are_summed() {
        let text = "# HELP vllm:nixl_bytes_transferred Number of bytes transferred per NIXL KV Cache transfers\n\
# TYPE vllm:nixl_bytes_transferred histogram\n\
vllm:nixl_bytes_transferred_bucket{engine=\"0\",le=\"+Inf\",model_name=\"m\"} 12.0\n\
vllm:nixl_bytes_transferred_count{engine=\"0\",model_name=\"m\"} 12.0\n\
vllm:nixl_bytes_transferred_sum{engine=\"0\",model_name=\"m\"} 3.2e+09\n\
vllm:nixl_xfer_time_seconds_count{engine=\"0\",model_name=\"m\"} 12.0\n\
vllm:nixl_num_failed_transfers_total{engine=\"0\",model_name=\"m\"} 0.0\n\
vllm:nixl_num_failed_transfers_total{engine=\"1\",model_name=\"m\"} 2.0\n";
        let t = parse(text);
        assert_eq!(t.bytes, Some(3.2e9));
        assert_eq!(t.transfers, Some(12.0));
        assert_eq!(t.failures, Some(2.0));
        assert_eq!(t.sources, vec!["vllm"]);
    }

    #[test]
    fn nixl_agent_series_and_malformed_lines() {
        let text = "agent_tx_bytes_total{hostname=\"n\",agent_name=\"a}b\"} 100\n\
agent_rx_bytes_total{hostname=\"n\",agent_name=\"a\"} 50\n\
agent_errors_total{status=\"NIXL_ERR_BACKEND\"} 1\n\
garbage\n\
agent_tx_requests_num_total NaN\n\
\u{0}\u{1}binary\n";
        let t = parse(text);
        assert_eq!(t.bytes, Some(150.0));
        assert_eq!(t.failures, Some(1.0));
        assert_eq!(t.transfers, None);
        assert_eq!(t.sources, vec!["nixl"]);
    }

    #[test]
    fn no_kv_series() {
        assert!(!parse("process_cpu_seconds_total 3\n").any());
    }
}
