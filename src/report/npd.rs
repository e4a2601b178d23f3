//! node-problem-detector custom-plugin output: one short line on stdout; the exit code
//! (0 OK, 1 NonOK, 2 Unknown) carries the verdict. NPD cuts the line at its
//! `max_output_length` (80 by default), so the most important words come first.

use super::{Report, Status};

pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let worst = [Status::Fail, Status::Error, Status::Warn]
        .into_iter()
        .find_map(|st| report.results.iter().find(|r| r.status == st));
    let line = match worst {
        Some(r) => {
            let more = s.fail + s.error + s.warn - 1;
            let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
            format!("{} {}: {}{more}", r.status.as_str().to_uppercase(), r.id, r.summary)
        }
        None => format!("OK: {} checks passed, {} skipped", s.pass, s.skip),
    };
    // One line, whatever the summaries contain.
    let mut out: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    out.push('\n');
    out
}
