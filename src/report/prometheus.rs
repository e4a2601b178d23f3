//! Prometheus text exposition (format 0.0.4), for node-exporter's textfile collector:
//! one series per check and status, the result counts, and key node facts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Report, Status, show};

/// A label value: redacted and with control characters written visibly ([`show`]; a label
/// ends up on dashboards and terminals), then the exposition format's escaping of
/// backslash, double quote and newline.
fn esc(v: &str) -> String {
    show(v).replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    // Several results may share an id (one per device or log finding): a check's status is
    // its worst result.
    let mut worst: BTreeMap<&str, Status> = BTreeMap::new();
    for r in &report.results {
        let e = worst.entry(r.id.as_str()).or_insert(r.status);
        if r.status > *e {
            *e = r.status;
        }
    }
    out.push_str(
        "# HELP efa_doctor_check_status 1 for the status a check is in, 0 for the others.\n",
    );
    out.push_str("# TYPE efa_doctor_check_status gauge\n");
    for (id, st) in &worst {
        for s in Status::ALL {
            let v = u8::from(s == *st);
            let _ = writeln!(
                out,
                "efa_doctor_check_status{{check=\"{}\",status=\"{}\"}} {v}",
                esc(id),
                s
            );
        }
    }
    out.push_str("# HELP efa_doctor_results Number of results per status in the last run.\n");
    out.push_str("# TYPE efa_doctor_results gauge\n");
    let s = &report.summary;
    for (st, n) in
        [("pass", s.pass), ("warn", s.warn), ("fail", s.fail), ("skip", s.skip), ("error", s.error)]
    {
        let _ = writeln!(out, "efa_doctor_results{{status=\"{st}\"}} {n}");
    }
    out.push_str(
        "# HELP efa_doctor_exit_code Exit code of the last run (0 OK, 1 problem, 2 unknown).\n",
    );
    out.push_str("# TYPE efa_doctor_exit_code gauge\n");
    let _ = writeln!(out, "efa_doctor_exit_code {}", s.exit_code);

    let f = &report.facts;
    out.push_str("# HELP efa_doctor_info Node identity as efa-doctor saw it (always 1).\n");
    out.push_str("# TYPE efa_doctor_info gauge\n");
    let _ = writeln!(
        out,
        "efa_doctor_info{{version=\"{}\",instance_type=\"{}\",kernel=\"{}\",arch=\"{}\",nvidia_driver=\"{}\"}} 1",
        esc(&report.tool.version),
        esc(f.instance.instance_type.as_deref().unwrap_or("")),
        esc(f.kernel.release.as_deref().unwrap_or("")),
        esc(f.kernel.arch.as_deref().unwrap_or("")),
        esc(f.nvidia_driver.version.as_deref().unwrap_or("")),
    );
    if let Some(devs) = &f.rdma.devices {
        out.push_str("# HELP efa_doctor_efa_devices EFA RDMA devices visible.\n");
        out.push_str("# TYPE efa_doctor_efa_devices gauge\n");
        let _ =
            writeln!(out, "efa_doctor_efa_devices {}", devs.iter().filter(|d| d.is_efa).count());
    }
    if let Some(sample) = &f.rdma.sample {
        let secs = sample.interval_ms as f64 / 1000.0;
        if secs > 0.0 {
            out.push_str("# HELP efa_doctor_efa_counter_rate Per-second rate of an EFA hw_counter over the --sample interval.\n");
            out.push_str("# TYPE efa_doctor_efa_counter_rate gauge\n");
            for d in f.rdma.efa() {
                for (k, rise) in sample.delta(d).unwrap_or_default() {
                    let rate = rise as f64 / secs;
                    let _ = writeln!(
                        out,
                        "efa_doctor_efa_counter_rate{{device=\"{}\",counter=\"{}\"}} {rate}",
                        esc(&d.name),
                        esc(&k)
                    );
                }
            }
        }
    }
    out
}
