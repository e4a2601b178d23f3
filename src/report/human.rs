//! The human report: a header naming the root judged, a table of results, then every fail
//! and warn with its evidence and remediation, then the counts.

use std::fmt::Write as _;

use comfy_table::{
    Attribute, Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED,
};

use super::{Report, Status, show};
use crate::checks::human_bytes;

/// The width the tables are laid out in when nothing says otherwise: a file, a pipe, or a
/// terminal that does not report its width.
pub const DEFAULT_WIDTH: u16 = 120;

/// The narrowest layout: below it the summary column is too thin to read.
pub const MIN_WIDTH: u16 = 40;

/// The width of the human tables: `COLUMNS` when it holds a positive number (the user's
/// choice, for a file or a pipe too), else the width of the terminal on stdout, else
/// [`DEFAULT_WIDTH`]; at least [`MIN_WIDTH`]. A terminal that reports 0 columns (a pty
/// nobody sized, as under `kubectl exec -t` or a serial console) has no width: laid out at
/// 0 columns, each table column would be one character wide.
pub fn table_width() -> u16 {
    let columns =
        std::env::var("COLUMNS").ok().and_then(|v| v.trim().parse::<u16>().ok()).filter(|&w| w > 0);
    let terminal =
        || terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0).filter(|&w| w > 0);
    columns.or_else(terminal).unwrap_or(DEFAULT_WIDTH).max(MIN_WIDTH)
}

fn status_cell(s: Status, color: bool) -> Cell {
    let c = Cell::new(s.as_str().to_uppercase());
    if !color {
        return c;
    }
    match s {
        Status::Pass => c.fg(Color::Green),
        Status::Warn => c.fg(Color::Yellow).add_attribute(Attribute::Bold),
        Status::Fail => c.fg(Color::Red).add_attribute(Attribute::Bold),
        Status::Error => c.fg(Color::Magenta).add_attribute(Attribute::Bold),
        Status::Skip => c.fg(Color::DarkGrey),
    }
}

fn node_line(report: &Report) -> String {
    let f = &report.facts;
    let mut parts = Vec::new();
    if let Some(t) = &f.instance.instance_type {
        parts.push(t.clone());
    }
    parts.push(format!("kernel {}", f.kernel.release.as_deref().unwrap_or("unknown")));
    parts.push(f.kernel.arch.clone().unwrap_or_else(|| "arch unknown".into()));
    if let Some(p) = f.kernel.page_size {
        parts.push(format!("{} pages", human_bytes(p)));
    }
    if let Some(v) = &f.nvidia_driver.version {
        let kind = f.nvidia_driver.kernel_module.as_deref().unwrap_or("?");
        parts.push(format!("NVIDIA {v} ({kind})"));
    }
    show(&parts.join(" · "))
}

/// Which vantage point answered each native source (`libfabric, NVML from chroot into
/// /host`), when any is other than this process itself: the reader must know whose
/// libraries and network answered.
fn vantage_line(f: &crate::facts::Facts) -> Option<String> {
    let sources = [
        ("libfabric", &f.libfabric.vantage),
        ("NVML", &f.gpu.vantage),
        ("probe", &f.probe.vantage),
        ("pair probe", &f.pair.as_ref().and_then(|p| p.vantage.clone())),
        ("IMDS", &f.imds.vantage),
    ];
    let mut by_vantage: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, v) in sources {
        let Some(v) = v.as_deref() else { continue };
        match by_vantage.iter_mut().find(|(seen, _)| *seen == v) {
            Some((_, names)) => names.push(name),
            None => by_vantage.push((v, vec![name])),
        }
    }
    if by_vantage.iter().all(|(v, _)| *v == "this process") {
        return None;
    }
    let parts: Vec<String> =
        by_vantage.iter().map(|(v, names)| format!("{} from {v}", names.join(", "))).collect();
    Some(parts.join(" · "))
}

/// The human report, laid out in [`table_width`] columns.
pub fn render(report: &Report, color: bool) -> String {
    render_at(report, color, table_width())
}

/// The human report, its tables laid out in `width` columns.
pub fn render_at(report: &Report, color: bool, width: u16) -> String {
    let mut out = String::new();
    let r = &report.root;
    let kind = serde_json::to_value(r.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "efa-doctor {} — judging {} ({kind})",
        show(&report.tool.version),
        show(&r.path)
    );
    if let Some(n) = &r.note {
        let _ = writeln!(out, "note: {}", show(n));
    }
    let _ = writeln!(out, "node: {}", node_line(report));
    if let Some(line) = vantage_line(&report.facts) {
        let _ = writeln!(out, "native: {}", show(&line));
    }
    out.push('\n');

    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_width(width.max(MIN_WIDTH));
    table.set_header(vec!["Status", "Check", "Summary"]);
    for res in &report.results {
        table.add_row(vec![
            status_cell(res.status, color),
            Cell::new(show(&res.id)),
            Cell::new(show(&res.summary)),
        ]);
    }
    let _ = writeln!(out, "{table}");

    for res in &report.results {
        if let Some(m) = res.details.as_ref().and_then(|d| d.get("matrix")) {
            if let Some(t) = matrix_table(m) {
                let corner = show(m["corner"].as_str().unwrap_or(""));
                let _ = writeln!(out, "\n{} ({corner})\n{t}", show(&res.id));
                for line in matrix_legend(m, usize::from(width.max(MIN_WIDTH))) {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
    }

    let findings: Vec<_> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Warn | Status::Error))
        .collect();
    if !findings.is_empty() {
        out.push_str("\nFindings\n");
        for f in findings {
            let (id, summary) = (show(&f.id), show(&f.summary));
            let _ = writeln!(out, "\n{} {id}: {summary}", f.status.as_str().to_uppercase());
            for e in &f.evidence {
                let mut line = format!("  evidence: {}", show(&e.source));
                if let Some(n) = e.line {
                    let _ = write!(line, ":{n}");
                }
                if let Some(o) = &e.observed {
                    let _ = write!(line, " = {}", show(o));
                }
                if let Some(x) = &e.expected {
                    let _ = write!(line, " (expected {})", show(x));
                }
                let _ = writeln!(out, "{line}");
            }
            if let Some(rem) = &f.remediation {
                let _ = writeln!(out, "  fix: {}", show(rem));
            }
            if f.status == Status::Fail || f.status == Status::Warn {
                let _ = writeln!(out, "  more: efa-doctor explain {id}");
            }
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} pass, {} warn, {} fail, {} skip, {} error — exit code {}",
        s.pass, s.warn, s.fail, s.skip, s.error, s.exit_code
    );
    out
}

/// Renders `details.matrix` (`rows`, `cols`, `cells[row][col]`) as a compact table, the
/// way `nvidia-smi topo -m` shows PCIe relations.
fn matrix_table(m: &serde_json::Value) -> Option<Table> {
    let rows = m.get("rows")?.as_array()?;
    let cols = m.get("cols")?.as_array()?;
    let cells = m.get("cells")?.as_array()?;
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING).force_no_tty();
    // Wide matrices (GPU x NIC) abbreviate their columns with a legend; `"names": true`
    // prints the names as they are.
    let names = m.get("names").and_then(|v| v.as_bool()).unwrap_or(false);
    let mut header = vec![Cell::new("")];
    header.extend(cols.iter().enumerate().map(|(i, c)| {
        Cell::new(if names { show(c.as_str().unwrap_or("")) } else { format!("G{i}") })
    }));
    t.set_header(header);
    for (r, name) in rows.iter().enumerate() {
        let mut row = vec![Cell::new(show(name.as_str().unwrap_or("")))];
        let line = cells.get(r).and_then(|c| c.as_array());
        for c in 0..cols.len() {
            let cell = line.and_then(|l| l.get(c)).and_then(|v| v.as_str()).unwrap_or("");
            row.push(Cell::new(show(cell)));
        }
        t.add_row(row);
    }
    Some(t)
}

/// What the abbreviated columns of a matrix stand for (`G0=0000:53:00.0`), as lines of at
/// most `width` columns under the table; nothing when the matrix shows the names. Inside
/// the table it would widen its first column, and with it every row.
fn matrix_legend(m: &serde_json::Value, width: usize) -> Vec<String> {
    if m.get("names").and_then(|v| v.as_bool()).unwrap_or(false) {
        return Vec::new();
    }
    let Some(cols) = m.get("cols").and_then(|c| c.as_array()) else { return Vec::new() };
    let mut lines = Vec::new();
    let mut line = String::from(" ");
    for (i, c) in cols.iter().enumerate() {
        let entry = format!("G{i}={}", show(c.as_str().unwrap_or("")));
        if line.len() > 1 && line.chars().count() + 2 + entry.chars().count() > width {
            lines.push(std::mem::replace(&mut line, String::from(" ")));
        }
        line.push_str(if line.len() > 1 { "  " } else { "" });
        line.push_str(&entry);
    }
    if line.len() > 1 {
        lines.push(line);
    }
    lines
}
