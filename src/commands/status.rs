//! The status line on stderr while efa-doctor waits (`--sample`, the probes): shown only when
//! stderr is a terminal, so a log, a pipe or a CI job never gets it. It is rewritten in place
//! with a carriage return and spaces, which every terminal understands (`TERM=dumb` too), is
//! cut to the terminal's width (a wrapped line could not be rewritten), and is cleared before
//! the report is written.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use crate::facts::progress::Progress;
use crate::report::show;

/// Columns assumed when the terminal does not say (it reports 0 or nothing).
const FALLBACK_COLUMNS: usize = 80;

/// The status line for this run: on stderr when it is a terminal, else nowhere.
pub fn stderr_status() -> Progress {
    if !std::io::stderr().is_terminal() {
        return Progress::default();
    }
    // How many characters the line holds now, to blank what a shorter one leaves.
    let shown = Mutex::new(0usize);
    Progress::new(move |text| {
        let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
        let columns = terminal_size::terminal_size_of(std::io::stderr())
            .map(|(w, _)| usize::from(w.0))
            .filter(|&w| w > 1)
            .unwrap_or(FALLBACK_COLUMNS);
        let line: String = show(text.unwrap_or("")).chars().take(columns - 1).collect();
        let len = line.chars().count();
        let blank = " ".repeat(shown.saturating_sub(len));
        let mut err = std::io::stderr().lock();
        // Nothing more can be done if stderr is gone; the run goes on.
        let _ = match text {
            Some(_) => write!(err, "\r{line}{blank}"),
            None => write!(err, "\r{blank}\r"),
        };
        let _ = err.flush();
        *shown = len;
    })
}
