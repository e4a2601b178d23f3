//! Prometheus text exposition (format 0.0.4), for node-exporter's textfile collector.
//!
//! - `efa_doctor_up`, `efa_doctor_last_run_timestamp_seconds`,
//!   `efa_doctor_last_run_duration_seconds` and `efa_doctor_build_info`: whether the last run
//!   could do its job, when it ran and which efa-doctor ran. The textfile collector rejects
//!   client-side timestamps, so the run's time is a gauge.
//! - `efa_doctor_check_status{check,status}`: one series per check and status (1 for the
//!   check's worst status, [`super::severity`]), `efa_doctor_results`, `efa_doctor_exit_code`,
//!   `efa_doctor_info` and `efa_doctor_efa_devices`.
//! - The EFA hardware counters, raw, as counters in node_exporter's infiniband collector
//!   convention (one metric per counter, `_total`, labels `device` and `port`):
//!   `efa_doctor_efa_port_<counter>_total{device,port}` from `ports/N/hw_counters` and
//!   `efa_doctor_efa_device_<counter>_total{device}` from the device's own `hw_counters`.
//!   Prometheus computes rates; with `--sample` the values are the later reading. A counter
//!   that could not be read has no series (unreadable is never zero).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Report, Status, exit, severity, show};

/// Which hardware counters become series (`--prometheus-counters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CounterSeries {
    /// Every counter the driver exposes (about 45 per EFA device on a current driver)
    #[default]
    All,
    /// Only counters above zero: a healthy node's error counters add no series until they
    /// count something (a first increase then shows as the series appearing)
    Nonzero,
    /// No counter series
    None,
}

/// A label value: redacted and with control characters written visibly ([`show`]; a label
/// ends up on dashboards and terminals), then the exposition format's escaping of
/// backslash, double quote and newline.
fn esc(v: &str) -> String {
    show(v).replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Metric families in the order they are written, each with its HELP, TYPE and samples.
#[derive(Default)]
struct Exposition {
    families: Vec<(String, String, &'static str, Vec<String>)>,
    index: BTreeMap<String, usize>,
}

impl Exposition {
    /// Adds one sample (`labels` already escaped, without braces) to the family `name`.
    fn sample(&mut self, name: &str, kind: &'static str, help: &str, labels: &str, value: String) {
        let i = *self.index.entry(name.to_string()).or_insert_with(|| {
            self.families.push((name.to_string(), help.to_string(), kind, Vec::new()));
            self.families.len() - 1
        });
        let series = if labels.is_empty() {
            format!("{name} {value}")
        } else {
            format!("{name}{{{labels}}} {value}")
        };
        self.families[i].3.push(series);
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &str, value: impl ToString) {
        self.sample(name, "gauge", help, labels, value.to_string());
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (name, help, kind, samples) in &self.families {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in samples {
                out.push_str(s);
                out.push('\n');
            }
        }
        out
    }
}

/// A counter name that can become part of a metric name as it is. sysfs names are
/// lower-case identifiers; anything else (a planted file) is left out rather than mangled
/// into a name that could collide with a real one.
fn metric_safe(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub fn render(report: &Report, counters: CounterSeries) -> String {
    let mut x = Exposition::default();
    let s = &report.summary;
    x.gauge(
        "efa_doctor_up",
        "1 when the last run could do its job (exit code 0 or 1), 0 when it could not (exit code 2: the run failed or a check errored).",
        "",
        u8::from(s.exit_code != exit::UNKNOWN),
    );
    if let Some(run) = &report.run {
        x.gauge(
            "efa_doctor_last_run_timestamp_seconds",
            "When the last run started, in seconds since the Unix epoch.",
            "",
            run.started_unix,
        );
        x.gauge(
            "efa_doctor_last_run_duration_seconds",
            "How long the last run took to gather and judge, in seconds.",
            "",
            run.duration_seconds,
        );
    }
    x.gauge(
        "efa_doctor_build_info",
        "The efa-doctor that wrote this report (always 1).",
        &format!("version=\"{}\",schema=\"{}\"", esc(&report.tool.version), esc(&report.schema)),
        1,
    );

    // Several results may share an id (one per device or log finding): a check's status is
    // its worst result, ranked as the exit code ranks them.
    let mut worst: BTreeMap<&str, Status> = BTreeMap::new();
    for r in &report.results {
        let e = worst.entry(r.id.as_str()).or_insert(r.status);
        if severity(r.status) > severity(*e) {
            *e = r.status;
        }
    }
    for (id, st) in &worst {
        for status in Status::ALL {
            x.gauge(
                "efa_doctor_check_status",
                "1 for the status a check is in (its worst result), 0 for the others.",
                &format!("check=\"{}\",status=\"{status}\"", esc(id)),
                u8::from(status == *st),
            );
        }
    }
    for (st, n) in
        [("pass", s.pass), ("warn", s.warn), ("fail", s.fail), ("skip", s.skip), ("error", s.error)]
    {
        x.gauge(
            "efa_doctor_results",
            "Number of results per status in the last run.",
            &format!("status=\"{st}\""),
            n,
        );
    }
    x.gauge(
        "efa_doctor_exit_code",
        "Exit code of the last run (0 OK, 1 problem, 2 unknown).",
        "",
        s.exit_code,
    );

    let f = &report.facts;
    x.gauge(
        "efa_doctor_info",
        "Node identity as efa-doctor saw it (always 1).",
        &format!(
            "version=\"{}\",instance_type=\"{}\",kernel=\"{}\",arch=\"{}\",nvidia_driver=\"{}\"",
            esc(&report.tool.version),
            esc(f.instance.instance_type.as_deref().unwrap_or("")),
            esc(f.kernel.release.as_deref().unwrap_or("")),
            esc(f.kernel.arch.as_deref().unwrap_or("")),
            esc(f.nvidia_driver.version.as_deref().unwrap_or("")),
        ),
        1,
    );
    if let Some(devs) = &f.rdma.devices {
        x.gauge(
            "efa_doctor_efa_devices",
            "EFA RDMA devices visible.",
            "",
            devs.iter().filter(|d| d.is_efa).count(),
        );
    }
    if counters != CounterSeries::None {
        hardware_counters(&mut x, report, counters);
    }
    x.text()
}

/// The EFA devices' hw_counters as counters; the later reading when `--sample` took one.
fn hardware_counters(x: &mut Exposition, report: &Report, which: CounterSeries) {
    let rdma = &report.facts.rdma;
    for d in rdma.efa() {
        let later = rdma.sample.as_ref().and_then(|s| s.after.get(&d.name));
        let device = esc(&d.name);
        // (port, counter, value); the sample keys port counters `port<N>/<name>`.
        let mut values: Vec<(Option<u32>, &str, u64)> = Vec::new();
        match later {
            Some(after) => {
                for (key, v) in after {
                    match key.split_once('/') {
                        Some((p, name)) => {
                            if let Some(port) = p.strip_prefix("port").and_then(|n| n.parse().ok())
                            {
                                values.push((Some(port), name, *v));
                            }
                        }
                        None => values.push((None, key, *v)),
                    }
                }
            }
            None => {
                values.extend(d.counters.iter().map(|(k, v)| (None, k.as_str(), *v)));
                for p in &d.ports {
                    values.extend(p.counters.iter().map(|(k, v)| (Some(p.port), k.as_str(), *v)));
                }
            }
        }
        for (port, name, value) in values {
            if !metric_safe(name) || (which == CounterSeries::Nonzero && value == 0) {
                continue;
            }
            let (metric, help, labels) = match port {
                Some(port) => (
                    format!("efa_doctor_efa_port_{name}_total"),
                    format!("EFA port hardware counter {name} (ports/N/hw_counters/{name})."),
                    format!("device=\"{device}\",port=\"{port}\""),
                ),
                None => (
                    format!("efa_doctor_efa_device_{name}_total"),
                    format!("EFA device hardware counter {name} (hw_counters/{name})."),
                    format!("device=\"{device}\""),
                ),
            };
            x.sample(&metric, "counter", &help, &labels, value.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lower_case_identifiers_become_metric_names() {
        assert!(metric_safe("tx_pkts"));
        assert!(metric_safe("rdma_read_wr_err"));
        for bad in ["", "Tx", "1x", "a-b", "a b", "a\"b", "é"] {
            assert!(!metric_safe(bad), "{bad:?}");
        }
    }
}
