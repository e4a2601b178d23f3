//! The streaming log analyser.
//!
//! Logs are read in large chunks; one Aho-Corasick pass over each chunk finds the rules'
//! literals (the way ripgrep prefilters), and only the few lines that contain one are tried
//! against the rules' regexes. Matches become [`Event`]s tagged with their file, line number
//! and stream (MPI rank, process id); [`interpret`] turns the events into verdicts. Memory is
//! bounded: a few chunk buffers, at most [`MAX_EVENTS_PER_KIND`] kept events per kind and
//! stream and [`MAX_KEPT_EVENTS`] in all, however many streams a log names (the rest are
//! counted), and at most [`MAX_USER_RESULTS`] user-rule results.
//!
//! A candidate line is first unwrapped ([`normalise`]: Ray, JSON shippers, kubectl, Open MPI,
//! pdsh, CloudWatch, ANSI colours, quoting), so a wrapper never changes a verdict; what the
//! wrappers said about the writer, and the line's own prefix (Open MPI `[1,R]<stdout>:`, NCCL
//! `host:pid:tid [dev]`, libfabric `libfabric:pid:`, vLLM `(EngineCore_DP0 pid=N)`, UCX
//! `[ts] [host:pid:tid]`, SGLang `[time TP3]`), tell streams apart.

pub mod normalise;
pub mod rules;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::OnceLock;

use regex::bytes::Regex;
use serde::{Deserialize, Serialize};

use rules::RuleSet;

/// Events kept per (kind, stream); later ones are only counted.
pub const MAX_EVENTS_PER_KIND: usize = 64;
/// Events kept in all, across every kind and stream: a log naming millions of process ids
/// must not keep 64 events for each. Later ones are only counted, and the summary says so.
pub const MAX_KEPT_EVENTS: usize = 20_000;
/// User-rule results kept (one per result id and distinct value).
pub const MAX_USER_RESULTS: usize = 1_000;
/// Longest part of a line kept as evidence.
const MAX_EVIDENCE_CHARS: usize = 400;
/// Lines longer than this are examined only around the match (a binary file or a
/// newline-free dump must not make the analyser hold it whole).
const MAX_LINE: usize = 64 * 1024;
/// Bytes read at a time; a reader thread fills the next chunk while this one is scanned.
const CHUNK: usize = 8 * 1024 * 1024;

/// One rule match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Event kind (`nccl.network`) or, for result-only user rules, the rule id.
    pub kind: String,
    pub rule: String,
    /// Index into [`Analysis::files`].
    pub file: usize,
    /// 1-based line number.
    pub line: u64,
    /// Order of arrival across all files, for "A after B" interpretations.
    pub seq: u64,
    /// Which process or rank wrote it (`rank 3`, `pid 6413`), or empty.
    pub stream: String,
    pub text: String,
    pub captures: BTreeMap<String, String>,
    /// Log lines this match stands for (Ray's `[repeated 15x across cluster]`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub repeats: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl Event {
    pub fn cap(&self, name: &str) -> Option<&str> {
        self.captures.get(name).map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogFile {
    pub name: String,
    pub bytes: u64,
    pub lines: u64,
    pub gzip: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the report's facts say about the logs analysed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogSummary {
    pub files: Vec<LogFile>,
    /// Matches per event kind.
    pub events: BTreeMap<String, u64>,
    pub rules: usize,
    /// Set when a global bound stopped keeping events or results (all are still counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped: Option<String>,
}

/// Everything the analyser kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Analysis {
    pub files: Vec<LogFile>,
    pub events: Vec<Event>,
    /// Matches per event kind, including those not kept.
    pub counts: BTreeMap<String, u64>,
    /// Results emitted by user rules with a `[rule.result]`.
    #[serde(skip)]
    pub user_results: Vec<(String, crate::verdict::Outcome)>,
    /// Matches past [`MAX_KEPT_EVENTS`]: counted, not kept.
    #[serde(default)]
    pub events_not_kept: u64,
    /// User-rule results past [`MAX_USER_RESULTS`]: not reported.
    #[serde(default)]
    pub results_not_kept: u64,
    /// What each rule proves and where its statements come from, so a verdict can say why
    /// it fired (rule id → why).
    #[serde(skip)]
    pub rule_info: BTreeMap<String, RuleInfo>,
}

/// A rule's evidence-table entry, as a verdict shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleInfo {
    pub proves: Option<String>,
    /// `component file (versions)` of each statement the rule recognises.
    pub statements: Vec<String>,
}

impl Analysis {
    pub fn summary(&self, rules: usize) -> LogSummary {
        let mut capped = Vec::new();
        if self.events_not_kept > 0 {
            capped.push(format!(
                "kept {MAX_KEPT_EVENTS} events (the limit across all streams); {} more matches were only counted",
                self.events_not_kept
            ));
        }
        if self.results_not_kept > 0 {
            capped.push(format!(
                "reported {MAX_USER_RESULTS} user-rule results (the limit); {} more matches of user rules were not reported",
                self.results_not_kept
            ));
        }
        LogSummary {
            files: self.files.clone(),
            events: self.counts.clone(),
            rules,
            capped: (!capped.is_empty()).then(|| capped.join("; ")),
        }
    }

    pub fn of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    pub fn has(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e.kind == kind)
    }

    /// `file:line` for evidence.
    pub fn source_of(&self, e: &Event) -> String {
        self.files.get(e.file).map_or_else(|| "log".into(), |f| f.name.clone())
    }
}

fn stream_patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        [
            (r"\[\d+,(\d+)\]<std(?:out|err)>:", "rank"),
            (r"libfabric:(\d+):", "pid"),
            (r"(?:^|[\s|])[\w.-]+:(\d+):\d+ \[\d+\]", "pid"),
            (r"\((?:[A-Za-z_][\w ]*) pid=(\d+)\)", "pid"),
            (r"\[\d+\.\d+\] \[[\w.-]+:(\d+) *:", "pid"),
            // glog, which NIXL's C++ code logs through: `I1202 06:52:38.550773   30829
            // file.cpp:352]`. glog prints the thread id: the pid for the main thread.
            (r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +(\d+) [\w.+-]+:\d+\]", "tid"),
            // SGLang: `[2026-07-21 08:04:41 TP7 EP7]`, `[2026-02-27 15:01:51 DP0 TP4]`.
            (r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d((?: [DTEP]P\d+)+)\]", "sglang"),
        ]
        .iter()
        .filter_map(|(p, k)| Regex::new(p).ok().map(|r| (r, *k)))
        .collect()
    })
}

/// Which stream (rank or process) wrote a line; empty when the line does not say.
pub fn stream_of(line: &[u8]) -> String {
    for (re, kind) in stream_patterns() {
        if let Some(c) = re.captures(line) {
            if let Some(m) = c.get(1) {
                let id = String::from_utf8_lossy(m.as_bytes());
                if *kind == "sglang" {
                    return id.trim().to_string();
                }
                return format!("{kind} {id}");
            }
        }
    }
    String::new()
}

/// The stream of a normalised line: an MPI or srun rank from the wrappers wins (ranks are what
/// a user compares); otherwise the line's own process (or the Ray worker's), qualified by the
/// pod or host a wrapper named (process ids repeat across nodes).
fn stream_with(writer: &[String], text: &[u8]) -> String {
    if let Some(rank) = writer.iter().find(|w| w.starts_with("rank ")) {
        return rank.clone();
    }
    let mut own = stream_of(text);
    if own.is_empty() {
        // A Ray worker's pid, when the line itself names no process.
        own = writer.iter().rev().find(|w| w.starts_with("pid ")).cloned().unwrap_or_default();
    }
    match (writer.iter().find(|w| !w.starts_with("pid ")), own.is_empty()) {
        (Some(place), false) => format!("{place} {own}"),
        (Some(place), true) => place.clone(),
        (None, _) => own,
    }
}

/// A matching line as kept for evidence: redacted (a vLLM `non-default args:` line can hold
/// an API key), then cut, so no part of a secret survives the cut.
fn evidence_text(line: &[u8]) -> String {
    // Redaction sees a generous window, so shrinking secrets cannot pull an unredacted
    // partial secret from past the window into the kept characters.
    let window = &line[..line.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(window);
    let text = crate::redact::text(text.trim_end_matches(['\r', '\n']));
    let text = text.as_ref();
    match text.char_indices().nth(MAX_EVIDENCE_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A capture's text, cut like evidence: a rule capturing a whole 64 KiB line must not make
/// each kept event hold it.
fn capture_text(v: &[u8]) -> String {
    let text = String::from_utf8_lossy(&v[..v.len().min(MAX_EVIDENCE_CHARS * 4)]);
    let text = text.trim();
    match text.char_indices().nth(MAX_EVIDENCE_CHARS) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// Matches found in one part of one input, with line numbers counted from the part's start.
/// A part keeps no more than the analysis will (MAX_EVENTS_PER_KIND per kind and stream,
/// MAX_KEPT_EVENTS in all, one result per user-rule result and value up to
/// MAX_USER_RESULTS), so memory stays bounded however large the part.
#[derive(Default)]
struct Part {
    events: Vec<Event>,
    /// Matches per event kind, including those past the limit.
    counts: BTreeMap<String, u64>,
    kept: BTreeMap<(String, String), usize>,
    /// Events this part may keep: what the analysis has left of MAX_KEPT_EVENTS (plus the
    /// first of each kind).
    room: usize,
    /// Matches not kept because of MAX_KEPT_EVENTS.
    not_kept: u64,
    /// User-rule results first seen in this part: (rule index, value, the line's event).
    results: Vec<(usize, String, Event)>,
    results_seen: std::collections::HashSet<(String, String)>,
    results_not_kept: u64,
    /// Newlines in the part.
    newlines: u64,
}

/// Scans `data` (whole lines) and returns its matches. Pure: parts of one file can be scanned
/// on several threads and merged in order.
fn scan_part(rules: &RuleSet, file: usize, data: &[u8], room: usize) -> Part {
    let mut part = Part { room, ..Part::default() };
    let ac = &rules.prefilter;
    let mut candidates = Vec::new();
    let mut counted = 0usize;
    let mut line_no: u64 = 0;
    let mut at = 0usize;
    while at < data.len() {
        let Some(m) = ac.find(aho_corasick::Input::new(data).span(at..data.len())) else { break };
        let pos = m.start();
        let ls = memchr::memrchr(b'\n', &data[..pos]).map_or(0, |i| i + 1);
        let le = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
        line_no += memchr::memchr_iter(b'\n', &data[counted..ls]).count() as u64;
        counted = ls;
        // Very long lines: only a window around the literal.
        let (ws, we) = if le - ls > MAX_LINE {
            (pos.saturating_sub(MAX_LINE / 2).max(ls), (pos + MAX_LINE / 2).min(le))
        } else {
            (ls, le)
        };
        let raw = &data[ws..we];
        let n = normalise::normalise(raw);
        match_line(rules, file, line_no, raw, &n, &mut part, &mut candidates);
        at = le + 1;
    }
    part.newlines = line_no + memchr::memchr_iter(b'\n', &data[counted..]).count() as u64;
    part
}

/// A user-rule result's text with the line's captures filled in (`{name}`).
fn fill(template: &str, captures: &BTreeMap<String, String>) -> String {
    let mut s = template.to_string();
    for (k, v) in captures {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// Tries every rule whose literal occurs in `line` (line numbers 0-based within the part).
fn match_line(
    rules: &RuleSet,
    file: usize,
    line_no: u64,
    raw: &[u8],
    normalised: &normalise::Normalised<'_>,
    part: &mut Part,
    candidates: &mut Vec<usize>,
) {
    let line: &[u8] = &normalised.text;
    let repeats = normalised.repeats;
    candidates.clear();
    // Each distinct literal in the line names its rules once: a line repeating a literal
    // thousands of times, or hundreds of rules sharing one, must not multiply the work (a
    // `contains` per candidate made this quadratic in the rule count).
    let mut literals: u64 = 0;
    let mut more_literals: Vec<usize> = Vec::new();
    for m in rules.per_line.find_overlapping_iter(line) {
        let l = m.pattern().as_usize();
        let new = if l < 64 {
            let bit = 1u64 << l;
            let new = literals & bit == 0;
            literals |= bit;
            new
        } else if more_literals.contains(&l) {
            false
        } else {
            more_literals.push(l);
            true
        };
        if new {
            candidates.extend_from_slice(&rules.rules_of_literal[l]);
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    let mut stream: Option<String> = None;
    for &r in candidates.iter() {
        let rule = &rules.rules[r];
        if !rule.regex.is_match(line) {
            continue;
        }
        let stream = stream.get_or_insert_with(|| stream_with(&normalised.writer, line)).clone();
        let keep_event = rule.event.as_ref().is_some_and(|kind| {
            let count = part.counts.entry(kind.clone()).or_default();
            let first = *count == 0;
            *count = count.saturating_add(repeats);
            let room = part.events.len() < part.room || first;
            if !room {
                part.not_kept += 1;
            }
            room && part.kept.get(&(kind.clone(), stream.clone())).copied().unwrap_or(0)
                < MAX_EVENTS_PER_KIND
        });
        // Past the result limit a result-only match is only counted: its captures (needed
        // to tell a new value from a repeat) would cost a regex run for nothing.
        let want_result = rule.result.is_some() && part.results.len() < MAX_USER_RESULTS;
        if rule.result.is_some() && !want_result {
            part.results_not_kept += 1;
        }
        if !keep_event && !want_result {
            continue;
        }
        let Some(caps) = rule.regex.captures(line) else { continue };
        let mut captures = BTreeMap::new();
        for name in rule.regex.capture_names().flatten() {
            if let Some(v) = caps.name(name) {
                captures.insert(name.to_string(), capture_text(v.as_bytes()));
            }
        }
        let event = |kind: String| Event {
            kind,
            rule: rule.id.clone(),
            file,
            line: line_no,
            seq: 0,
            stream: stream.clone(),
            // Evidence is the line as logged (renderers make control characters visible);
            // rules matched its unwrapped text.
            text: evidence_text(raw),
            captures: captures.clone(),
            repeats,
        };
        if let (true, Some(res)) = (want_result, &rule.result) {
            let value = fill(res.value.as_deref().unwrap_or(""), &captures);
            if part.results_seen.insert((res.id.clone(), value.clone())) {
                part.results.push((r, value, event(res.id.clone())));
            }
        }
        if let (true, Some(kind)) = (keep_event, &rule.event) {
            *part.kept.entry((kind.clone(), stream.clone())).or_default() += 1;
            part.events.push(event(kind.clone()));
        }
    }
}

/// Chunks smaller than this are scanned on one thread.
const PARALLEL_MIN_BYTES: usize = 1024 * 1024;

/// Collects events from any number of files.
pub struct Analyser<'r> {
    rules: &'r RuleSet,
    pub analysis: Analysis,
    kept: BTreeMap<(String, String), usize>,
    /// Kinds with at least one kept event.
    kinds_kept: std::collections::BTreeSet<String>,
    /// User-rule results already reported: (result id, value).
    reported: std::collections::BTreeSet<(String, String)>,
    seq: u64,
}

impl<'r> Analyser<'r> {
    pub fn new(rules: &'r RuleSet) -> Analyser<'r> {
        let rule_info = rules
            .rules
            .iter()
            .map(|r| {
                let statements = r
                    .statements
                    .iter()
                    .map(|st| {
                        format!("{} {} `{}` ({})", st.component, st.file, st.format, st.versions)
                    })
                    .collect();
                (r.id.clone(), RuleInfo { proves: r.proves.clone(), statements })
            })
            .collect();
        Analyser {
            rules,
            analysis: Analysis { rule_info, ..Analysis::default() },
            kept: BTreeMap::new(),
            kinds_kept: Default::default(),
            reported: Default::default(),
            seq: 0,
        }
    }

    fn new_file(&mut self, name: &str, gzip: bool) -> usize {
        self.analysis.files.push(LogFile { name: name.to_string(), gzip, ..LogFile::default() });
        self.analysis.files.len() - 1
    }

    /// Analyses a log file, plain or gzip. The file is read with read(2) (never memory-mapped:
    /// a mapped log truncated while it is read, as logrotate's `copytruncate` does, would
    /// kill the run with SIGBUS) in large chunks, each scanned in parallel parts.
    pub fn add_file(&mut self, name: &str, file: crate::root::UserFile) {
        self.add(name, file);
    }

    /// Analyses plain text already in memory.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) {
        let file = self.new_file(name, false);
        let line = self.scan_parallel(file, data, 1);
        let f = &mut self.analysis.files[file];
        f.bytes = data.len() as u64;
        f.lines = line - 1 + u64::from(data.last().is_some_and(|b| *b != b'\n'));
    }

    /// Scans whole lines on every core and merges the parts in order; returns the next line
    /// number.
    fn scan_parallel(&mut self, file: usize, data: &[u8], mut line: u64) -> u64 {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let rules = self.rules;
        let room = MAX_KEPT_EVENTS.saturating_sub(self.analysis.events.len());
        let parts = if data.len() >= PARALLEL_MIN_BYTES && threads > 1 {
            split_lines(data, threads)
        } else {
            vec![data]
        };
        let scanned: Vec<Part> = if parts.len() == 1 {
            vec![scan_part(rules, file, data, room)]
        } else {
            std::thread::scope(|s| {
                let hs: Vec<_> = parts
                    .iter()
                    .map(|p| s.spawn(move || scan_part(rules, file, p, room)))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
            })
        };
        for p in scanned {
            let n = p.newlines;
            self.merge(p, line);
            line += n;
        }
        line
    }

    /// Analyses one stream (plain or gzip, detected by its magic number).
    pub fn add(&mut self, name: &str, mut input: impl Read + Send) {
        let mut magic = [0u8; 2];
        let n = read_full(&mut input, &mut magic).unwrap_or(0);
        let gzip = n == 2 && magic == [0x1f, 0x8b];
        let file = self.new_file(name, gzip);
        let chained = std::io::Cursor::new(magic[..n].to_vec()).chain(input);
        let result = if gzip {
            self.stream(file, flate2::read::MultiGzDecoder::new(chained))
        } else {
            self.stream(file, chained)
        };
        if let Err(e) = result {
            self.analysis.files[file].error = Some(e.to_string());
        }
    }

    /// Reads `r` in large chunks that end at a line boundary. A reader thread fills the next
    /// chunk while the current one is scanned, split into parts on every core; memory stays
    /// bounded at three chunks whatever the input's size. A read error, or a file that
    /// shrinks while it is read, ends the input where it ends.
    fn stream(&mut self, file: usize, r: impl Read + Send) -> std::io::Result<()> {
        let mut line: u64 = 1;
        let mut last = b'\n';
        let mut bytes = 0u64;
        let result = std::thread::scope(|s| {
            // Two chunks in flight (one being filled, one queued) besides the one scanned.
            let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
            let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let reader = s.spawn(move || read_chunks(r, &full_tx, &empty_rx));
            for chunk in full_rx {
                if let Some(b) = chunk.last() {
                    last = *b;
                }
                bytes += chunk.len() as u64;
                line = self.scan_parallel(file, &chunk, line);
                let _ = empty_tx.send(chunk);
            }
            drop(empty_tx);
            reader.join().unwrap_or_else(|_| Err(std::io::Error::other("log reader panicked")))
        });
        // A last line without a newline still counts as a line.
        let f = &mut self.analysis.files[file];
        f.bytes = bytes;
        f.lines = if bytes == 0 { 0 } else { line - 1 + u64::from(last != b'\n') };
        result
    }

    /// Adds a part's events in order: line numbers made absolute, sequence numbers global,
    /// at most MAX_EVENTS_PER_KIND kept per (kind, stream).
    fn merge(&mut self, part: Part, first_line: u64) {
        for (kind, n) in part.counts {
            *self.analysis.counts.entry(kind).or_default() += n;
        }
        self.analysis.events_not_kept += part.not_kept;
        self.analysis.results_not_kept += part.results_not_kept;
        for mut e in part.events {
            e.line += first_line;
            self.seq += 1;
            e.seq = self.seq;
            // The first event of each kind is kept past the global limit, so a kind that
            // appears late in a huge log still has its evidence (at most one per rule).
            let first_of_kind = !self.kinds_kept.contains(&e.kind);
            if self.analysis.events.len() >= MAX_KEPT_EVENTS && !first_of_kind {
                self.analysis.events_not_kept += 1;
                continue;
            }
            let kept = self.kept.entry((e.kind.clone(), e.stream.clone())).or_default();
            if *kept < MAX_EVENTS_PER_KIND {
                *kept += 1;
                if first_of_kind {
                    self.kinds_kept.insert(e.kind.clone());
                }
                self.analysis.events.push(e);
            }
        }
        for (rule, value, mut e) in part.results {
            e.line += first_line;
            self.user_result(&self.rules.rules[rule], value, &e);
        }
    }

    /// One result per user-rule result and distinct value; the first line is the evidence.
    fn user_result(&mut self, rule: &crate::facts::logs::rules::Rule, value: String, e: &Event) {
        let Some(res) = &rule.result else { return };
        if self.reported.contains(&(res.id.clone(), value.clone())) {
            return;
        }
        if self.analysis.user_results.len() >= MAX_USER_RESULTS {
            self.analysis.results_not_kept += 1;
            return;
        }
        self.reported.insert((res.id.clone(), value));
        let mut o = crate::verdict::Outcome::new(res.status, fill(&res.summary, &e.captures))
            .evidence(
                crate::verdict::Evidence::new(self.analysis.source_of(e))
                    .line(e.line)
                    .observed(e.text.clone()),
            );
        if let Some(r) = &res.remediation {
            o = o.remediation(fill(r, &e.captures));
        }
        if let Some(v) = &res.value {
            o = o.value(fill(v, &e.captures));
        }
        self.analysis.user_results.push((res.id.clone(), o));
    }
}

/// Splits `data` into about `n` parts, each ending at a newline.
fn split_lines(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut start = 0;
    for i in 1..n {
        let target = data.len() * i / n;
        if target <= start {
            continue;
        }
        let cut = memchr::memchr(b'\n', &data[target..]).map_or(data.len(), |j| target + j + 1);
        parts.push(&data[start..cut]);
        start = cut;
        if start >= data.len() {
            break;
        }
    }
    if start < data.len() {
        parts.push(&data[start..]);
    }
    parts
}

/// The reader side of [`Analyser::stream`]: sends chunks that end at a newline (or are full
/// and hold none), carrying a partial last line into the next chunk.
fn read_chunks(
    mut r: impl Read,
    full: &std::sync::mpsc::SyncSender<Vec<u8>>,
    empty: &std::sync::mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        // A returned buffer is reused at its full length: zeroing 8 MiB per chunk cost as
        // much as a tenth of the scan.
        let mut buf = empty.try_recv().unwrap_or_default();
        if buf.len() < CHUNK.max(carry.len()) {
            buf.resize(CHUNK.max(carry.len()), 0);
        }
        buf[..carry.len()].copy_from_slice(&carry);
        let mut filled = carry.len();
        carry.clear();
        let mut eof = false;
        let mut failure = None;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    eof = true;
                    break;
                }
            }
        }
        buf.truncate(filled);
        if !eof {
            if let Some(i) = memchr::memrchr(b'\n', &buf) {
                carry.extend_from_slice(&buf[i + 1..]);
                buf.truncate(i + 1);
            }
        }
        if !buf.is_empty() && full.send(buf).is_err() {
            return Ok(());
        }
        if eof {
            return failure.map_or(Ok(()), Err);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Where a snapshot keeps the logs given to `efa-doctor snapshot --log`.
pub const CAPTURED_LOG_DIR: &str = ".efa-doctor/logs";

/// Most bytes of one `--log` a snapshot keeps: the first and last halves of a longer log
/// (its start says how the job was set up, its end how it failed), with a marker line
/// between. A capture stays loadable (under the loader's per-file limit) and bounded.
pub const MAX_CAPTURED_LOG_BYTES: u64 = 32 * 1024 * 1024;

/// Most bytes of a compressed or unseekable `--log` read for a snapshot (decompressed): a
/// gzip bomb or an endless pipe ends here, with the rest marked as not read.
pub const MAX_CAPTURE_READ_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Reads a `--log` for a snapshot within [`MAX_CAPTURED_LOG_BYTES`]: its first and last
/// halves, with a marker line saying how much was left out. A gzipped log is kept
/// decompressed (compressed bytes could be neither cut nor redacted); a plain regular file
/// seeks to its tail, anything else is streamed through a bounded tail buffer.
pub fn read_for_capture(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::{BufRead, Seek, SeekFrom};
    let half = MAX_CAPTURED_LOG_BYTES / 2;
    let file = crate::root::open_user_file(path)?;
    let len = file.regular().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let marker = |left_out: u64, how: &str| {
        format!(
            "\n[efa-doctor: {left_out} bytes of this log {how}: snapshots keep its first and last {half} bytes]\n"
        )
    };
    if !gzip && len > MAX_CAPTURED_LOG_BYTES {
        let mut data = Vec::new();
        (&mut reader).take(half).read_to_end(&mut data)?;
        let file = reader.into_inner();
        if file.regular().is_some_and(|mut f| f.seek(SeekFrom::Start(len - half)).is_ok()) {
            data.extend_from_slice(marker(len - 2 * half, "left out").as_bytes());
            file.take(half).read_to_end(&mut data)?;
            return Ok(data);
        }
        return Ok(data);
    }
    let input: Box<dyn Read> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut input = input.take(MAX_CAPTURE_READ_BYTES);
    let mut head = Vec::new();
    // A stream corrupt part-way keeps what it gave, as the analyser would read it.
    if (&mut input).take(half).read_to_end(&mut head).is_err() {
        return Ok(head);
    }
    let mut tail: Vec<u8> = Vec::new();
    let mut dropped = 0u64;
    let mut chunk = vec![0u8; 1024 * 1024];
    loop {
        match input.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => tail.extend_from_slice(&chunk[..n]),
        }
        if tail.len() as u64 > 2 * half {
            let cut = tail.len() - half as usize;
            dropped += cut as u64;
            tail.drain(..cut);
        }
    }
    if tail.len() as u64 > half {
        let cut = tail.len() - half as usize;
        dropped += cut as u64;
        tail.drain(..cut);
    }
    if input.limit() == 0 {
        head.extend_from_slice(marker(dropped, "left out, and the rest not read").as_bytes());
    } else if dropped > 0 {
        head.extend_from_slice(marker(dropped, "left out").as_bytes());
    }
    head.extend_from_slice(&tail);
    Ok(head)
}

/// Analyses the logs a capture holds, through its root.
/// Whether `root` holds logs a snapshot captured. Without them, and without logs the user
/// named, a run need not compile the rules: that compilation is most of the CPU a check
/// of a small tree spends.
pub fn has_captured(root: &crate::root::Root) -> bool {
    root.list(CAPTURED_LOG_DIR).is_ok_and(|names| !names.is_empty())
}

pub fn analyse_captured(root: &crate::root::Root, rules: &RuleSet) -> Option<Analysis> {
    let names = root.list(CAPTURED_LOG_DIR).ok()?;
    if names.is_empty() {
        return None;
    }
    let mut a = Analyser::new(rules);
    for n in names {
        if let Ok(data) = root.read(&format!("{CAPTURED_LOG_DIR}/{n}")) {
            a.add(&n, std::io::Cursor::new(data.as_slice()));
        }
    }
    Some(a.analysis)
}

/// Analyses named files (or `-` for standard input).
pub fn analyse_paths(paths: &[std::path::PathBuf], rules: &RuleSet) -> Analysis {
    let mut a = Analyser::new(rules);
    for p in paths {
        let name = p.display().to_string();
        if name == "-" {
            a.add("<stdin>", std::io::stdin());
            continue;
        }
        match crate::root::open_user_file(p) {
            Ok(f) => a.add_file(&name, f),
            Err(e) => a.analysis.files.push(LogFile {
                name,
                error: Some(open_error(&e)),
                ..LogFile::default()
            }),
        }
    }
    a.analysis
}

/// Why a named log could not be opened, in the words reports use for unreadable files.
fn open_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyse(text: &str) -> Analysis {
        let rules = RuleSet::new(RuleSet::builtin().unwrap()).unwrap();
        let mut a = Analyser::new(&rules);
        a.add("t.log", text.as_bytes());
        a.analysis
    }

    #[test]
    fn streams() {
        assert_eq!(stream_of(b"[1,7]<stdout>:ip-1:21471:22316 [7] NCCL INFO x"), "rank 7");
        assert_eq!(stream_of(b"libfabric:6413:1763620725::efa:mr:x"), "pid 6413");
        assert_eq!(stream_of(b"ip-10-216-178-255:416481:416522 [3] NCCL INFO"), "pid 416481");
        assert_eq!(stream_of(b"(EngineCore_DP0 pid=594) 2025-11-25 NIXL INFO"), "pid 594");
        // NIXL's glog prefix (real, tests/fixtures/real/cpu-nixl-mismatch.tar.gz).
        assert_eq!(
            stream_of(b"E1202 06:52:38.550815   30829 nixl_agent.cpp:334] createBackend: x"),
            "tid 30829"
        );
        assert_eq!(stream_of(b"plain line"), "");
    }

    #[test]
    fn line_numbers_and_captures() {
        let a = analyse(
            "a\nb\nx NCCL INFO Using network Socket\nc\nNET/OFI Selected provider is efa, fabric is efa-direct (found 32 nics)",
        );
        let net: Vec<_> = a.of("nccl.network").collect();
        assert_eq!(net[0].line, 3);
        assert_eq!(net[0].cap("network"), Some("Socket"));
        let p: Vec<_> = a.of("ofi.provider").collect();
        assert_eq!(p[0].line, 5);
        assert_eq!(p[0].cap("fabric"), Some("efa-direct"));
        assert_eq!(p[0].cap("nics"), Some("32"));
        assert_eq!(a.files[0].lines, 5);
    }

    #[test]
    fn gzip_input_and_binary_garbage() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"\x00\xff\xfe garbage\nBackend UCX was instantiated\n")
            .unwrap();
        let data = gz.finish().unwrap();
        let rules = RuleSet::new(RuleSet::builtin().unwrap()).unwrap();
        let mut a = Analyser::new(&rules);
        a.add("x.gz", &data[..]);
        assert!(a.analysis.files[0].gzip);
        assert_eq!(a.analysis.of("nixl.backend").next().unwrap().cap("backend"), Some("UCX"));
    }
}
