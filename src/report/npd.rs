//! node-problem-detector custom-plugin output: one short line on stdout; the exit code
//! (0 OK, 1 NonOK, 2 Unknown) carries the verdict. NPD cuts the line at its
//! `max_output_length` (80 by default), so the most important words come first.

use super::{Report, Status, show};

pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let worst = [Status::Fail, Status::Error, Status::Warn]
        .into_iter()
        .find_map(|st| report.results.iter().find(|r| r.status == st));
    let line = match worst {
        Some(r) => {
            let more = s.fail + s.error + s.warn - 1;
            let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
            let (id, summary) = (show(&r.id), show(&r.summary));
            format!("{} {id}: {summary}{more}", r.status.as_str().to_uppercase())
        }
        None => format!("OK: {} checks passed, {} skipped", s.pass, s.skip),
    };
    // One line, whatever the summaries contain: `show` wrote every control character out.
    let mut out = line;
    out.push('\n');
    out
}
