//! node-problem-detector custom-plugin output: one short line on stdout; the exit code
//! (0 OK, 1 NonOK, 2 Unknown) carries the verdict. NPD keeps the first `max_output_length`
//! bytes of the output (80 by default) and cuts them wherever that falls, even inside a
//! UTF-8 character, so the line is made to fit [`MAX_LINE_BYTES`] itself: the status, the
//! check id and the count of further findings come first, and the summary is shortened on
//! a character boundary.

use super::{Report, Status, show};

/// NPD's default `max_output_length` (pkg/custompluginmonitor/types/config.go,
/// `defaultMaxOutputLength`). A line this long fits any plugin config that keeps the
/// default or raises it.
pub const MAX_LINE_BYTES: usize = 80;

/// What ends a shortened line.
const CUT_MARK: &str = "...";

pub fn render(report: &Report) -> String {
    if let Some(why) = report.run_error() {
        return render_failure(why);
    }
    let s = &report.summary;
    let worst = [Status::Fail, Status::Error, Status::Warn]
        .into_iter()
        .find_map(|st| report.results.iter().find(|r| r.status == st));
    let line = match worst {
        Some(r) => {
            let more = s.fail + s.error + s.warn - 1;
            let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
            let (id, summary) = (show(&r.id), show(&r.summary));
            format!("{} {id}{more}: {summary}", r.status.as_str().to_uppercase())
        }
        None => format!("OK: {} checks passed, {} skipped", s.pass, s.skip),
    };
    // One line, whatever the summaries contain: `show` wrote every control character out.
    let mut out = fit(&line);
    out.push('\n');
    out
}

/// The line NPD shows when efa-doctor could not do its job (exit 2, condition `Unknown`):
/// without it the condition's message would be empty, since the error also goes to stderr.
pub fn render_failure(error: &str) -> String {
    let mut out = fit(&format!("ERROR efa-doctor could not run: {}", show(error)));
    out.push('\n');
    out
}

/// One line of at most [`MAX_LINE_BYTES`] bytes, whatever the text contains: control
/// characters become spaces, and a longer text is cut on a character boundary.
fn fit(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.trim_end();
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES - CUT_MARK.len();
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", line[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckResult, FailOn, RootInfo, SCHEMA, Summary, ToolInfo};

    fn report(results: Vec<CheckResult>) -> Report {
        let summary = Summary::of(&results, FailOn::Fail);
        Report {
            schema: SCHEMA.into(),
            tool: ToolInfo::current(),
            run: None,
            root: RootInfo { path: "/".into(), kind: crate::root::RootKind::Live, note: None },
            facts: Default::default(),
            results,
            summary,
        }
    }

    #[test]
    fn count_comes_before_the_summary_and_the_line_fits() {
        let long = "x".repeat(200);
        let r = report(vec![
            CheckResult::new("efa.traffic", Status::Fail, &long),
            CheckResult::new("efa.devices", Status::Fail, "b"),
            CheckResult::new("gpu.count", Status::Warn, "c"),
        ]);
        let line = render(&r);
        assert!(line.starts_with("FAIL efa.traffic (+2 more): xxx"), "{line}");
        assert!(line.trim_end().ends_with("x..."), "{line}");
        assert_eq!(line.trim_end().len(), MAX_LINE_BYTES);
    }

    #[test]
    fn multibyte_summaries_are_cut_on_a_character_boundary() {
        // 'é' is two bytes; whichever offset the limit falls on, the line stays valid
        // UTF-8 within the limit, and the cut never halves a character.
        for pad in 0..4 {
            let summary = format!("{}{}", "a".repeat(pad), "é".repeat(60));
            let line = render(&report(vec![CheckResult::new("k.x", Status::Fail, &summary)]));
            let line = line.trim_end();
            assert!(line.len() <= MAX_LINE_BYTES, "{line}");
            assert!(line.len() >= MAX_LINE_BYTES - 1, "{line}");
            assert!(line.ends_with("é..."), "{line}");
        }
    }

    #[test]
    fn short_lines_are_unchanged() {
        let r = report(vec![CheckResult::new("k.x", Status::Fail, "bad\nthing")]);
        // A control character in a summary is written visibly, as in every other format.
        assert_eq!(render(&r), "FAIL k.x: bad\\nthing\n");
        let r = report(vec![CheckResult::new("k.x", Status::Pass, "ok")]);
        assert_eq!(render(&r), "OK: 1 checks passed, 0 skipped\n");
    }

    #[test]
    fn failure_line_says_why_and_fits() {
        let line = render_failure("cannot use --root: /nope: No such file or directory");
        assert_eq!(
            line,
            "ERROR efa-doctor could not run: cannot use --root: /nope: No such file or dir...\n"
        );
        assert_eq!(line.trim_end().len(), MAX_LINE_BYTES);
    }
}
