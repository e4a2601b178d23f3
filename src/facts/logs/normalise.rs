//! Undoes what log shippers wrap around a line before the rules see it.
//!
//! A line reaches efa-doctor through Ray's driver (`(RayTrainWorker pid=N, ip=A) ` and
//! `[repeated 15x across cluster]`), Fluent Bit, Docker or CloudWatch JSON (`{"log": "..."}`),
//! `kubectl logs --timestamps --prefix`, the kubelet's CRI files, Open MPI `--tag-output`
//! (`[1,7]<stdout>:`), `srun --label` (`7: `), pdsh (`host: `), a CloudWatch console copy (`| ts |`,
//! the message repeated after ` | `, or the timestamp after the message), ANSI colours and a
//! poster's `> ` quoting. Only the candidate lines the prefilter found are normalised, so the
//! cost is paid per match, not per byte.
//!
//! A wrapper never changes a verdict: it is removed, and what it said about the writer (rank,
//! pod, host, Ray worker) becomes the line's stream, and a repeat count multiplies the match.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::bytes::Regex;

/// Rounds of unwrapping: a JSON line holding a kubectl line holding a Ray line is three.
const MAX_ROUNDS: usize = 6;
/// Largest line parsed as JSON (a longer one is matched as it is).
const MAX_JSON_LINE: usize = 64 * 1024;

/// A line with its wrappers removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised<'a> {
    pub text: Cow<'a, [u8]>,
    /// How many log lines this one stands for (Ray's `[repeated Nx across cluster]`).
    pub repeats: u64,
    /// Who wrote it, from the wrappers, outermost first: `rank 7`, `pod prefill-0`,
    /// `host 10.0.0.1`, `pid 42` (a Ray worker).
    pub writer: Vec<String>,
}

/// Whether a line's start could hold a given wrapper (a cheap test before its regex).
type Gate = fn(&[u8]) -> bool;

struct Patterns {
    ansi: Regex,
    /// Leading wrappers, each with an optional capture naming the writer, tried only when
    /// the line's first byte could start it.
    prefixes: Vec<(Regex, &'static str, Gate)>,
    /// Ray's repeat count at the end of a line.
    ray_repeat: Regex,
    /// A timestamp after the message (CloudWatch exports and console copies).
    trailing_time: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        const TS: &str = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?";
        let prefixes: Vec<(String, &'static str, Gate)> = vec![
            // CloudWatch console copy: `  | 2025-05-16T16:39:51.208-07:00 | msg` (the second bar
            // is sometimes lost in the copy).
            (format!(r"^\s*\|\s*{TS}\s*\|?\s*"), "", |t| {
                t.iter().copied().find(|b| !b.is_ascii_whitespace()) == Some(b'|')
            }),
            // kubelet CRI file: `2026-05-02T12:00:00.1Z stdout F msg`.
            (format!(r"^{TS} (?:stdout|stderr) [FP] "), "", |t| t.first().is_some_and(u8::is_ascii_digit)),
            // kubectl logs --prefix: `[pod/prefill-0/vllm] `.
            (r"^\[pod/([^/\]\s]+)/[^\]\s]*\] ".into(), "pod", |t| t.starts_with(b"[pod/")),
            // kubectl logs --timestamps, and journal-less ISO timestamps.
            (format!(r"^{TS}\s+"), "", |t| t.first().is_some_and(u8::is_ascii_digit)),
            // Ray: `(RayTrainWorker pid=83500, ip=10.0.0.1) ` (nested: `(EngineCore_DP0 pid=1)
            // (RayWorkerWrapper pid=2, ip=...) `); the innermost is the writer.
            (r"^\((?:[A-Za-z_][\w.-]*) pid=(\d+(?:, ip=[\w.:-]+)?)\) ".into(), "Ray", |t| {
                t.first() == Some(&b'(')
            }),
            // Open MPI --tag-output: `[1,7]<stdout>:`.
            (r"^\[\d+,(\d+)\]<std(?:out|err)>:\s?".into(), "rank", |t| t.first() == Some(&b'[')),
            // A poster's markdown quote.
            (r"^(?:>[ \t]?)+".into(), "", |t| t.first() == Some(&b'>')),
            // pdsh / srun --label: `10.3.35.83: `, `ip-10-0-0-1: `, `7: ` (a host name has a
            // digit, so `WARNING: ` and `Traceback: ` stay).
            (r"^([A-Za-z0-9][\w.-]*\d[\w.-]*|\d+): ".into(), "host", label_like),
        ];
        Patterns {
            // Colours only (SGR, `ESC [ ... m`), which loggers add; other control sequences
            // (cursor moves, screen clears, titles) are not a shipper's and stay for the
            // renderers to show visibly.
            ansi: Regex::new(r"\x1b\[[0-9;]*m").expect("ansi pattern"),
            prefixes: prefixes
                .into_iter()
                .map(|(p, k, gate)| (Regex::new(&p).expect("prefix pattern"), k, gate))
                .collect(),
            ray_repeat: Regex::new(
                r"\s*\[repeated (\d+)x across cluster\](?:\s*\(Ray deduplicates logs by default\.[^)]*\))?\s*$",
            )
            .expect("ray pattern"),
            trailing_time: Regex::new(&format!(r"(?:\s*[|\t,]\s*|\s+){TS}\s*$"))
                .expect("time pattern"),
        }
    })
}

/// Whether the line starts with a word, then `: ` (a pdsh host or srun label candidate).
fn label_like(t: &[u8]) -> bool {
    let head = &t[..t.len().min(128)];
    match memchr::memchr(b' ', head) {
        Some(sp) => sp > 1 && head[sp - 1] == b':' && head[0].is_ascii_alphanumeric(),
        None => false,
    }
}

/// The JSON members that carry the message, in Fluent Bit / Docker (`log`), CloudWatch
/// (`message`, `@message`), journald (`MESSAGE`), Vector and Loki (`msg`, `line`) and GCP
/// (`textPayload`) records.
const MESSAGE_KEYS: [&str; 7] =
    ["log", "message", "@message", "MESSAGE", "msg", "line", "textPayload"];

/// The message of a JSON log record, and who wrote it (pod, log stream, host).
fn unwrap_json(line: &[u8]) -> Option<(String, Option<String>)> {
    let t = line.trim_ascii();
    if !(t.starts_with(b"{") && t.ends_with(b"}")) || t.len() > MAX_JSON_LINE {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(t).ok()?;
    let obj = v.as_object()?;
    let msg = MESSAGE_KEYS.iter().find_map(|k| obj.get(*k)?.as_str())?;
    let writer = obj
        .get("kubernetes")
        .and_then(|k| k.get("pod_name"))
        .and_then(|p| p.as_str())
        .map(|p| format!("pod {p}"))
        .or_else(|| {
            obj.get("logStreamName").and_then(|s| s.as_str()).map(|s| format!("stream {s}"))
        })
        .or_else(|| {
            ["_HOSTNAME", "hostname", "host"]
                .iter()
                .find_map(|k| obj.get(*k)?.as_str())
                .map(|h| format!("host {h}"))
        });
    Some((msg.trim_end_matches(['\r', '\n']).to_string(), writer))
}

/// Strips every known wrapper from `line`, however they nest.
pub fn normalise(line: &[u8]) -> Normalised<'_> {
    let p = patterns();
    let mut text: Cow<[u8]> = Cow::Borrowed(line);
    let mut repeats = 1u64;
    let mut writer = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let before = text.len();
        if text.ends_with(b"\r") {
            text = Cow::Owned(text[..text.len() - 1].to_vec());
        }
        if memchr::memchr(0x1b, &text).is_some() {
            text = Cow::Owned(p.ansi.replace_all(&text, &b""[..]).into_owned());
        }
        if text.first().is_some_and(|b| *b == b'{' || b.is_ascii_whitespace()) {
            if let Some((msg, w)) = unwrap_json(&text) {
                writer.extend(w);
                text = Cow::Owned(msg.into_bytes());
                continue;
            }
        }
        for (re, kind, gate) in &p.prefixes {
            if !gate(&text) {
                continue;
            }
            let Some(c) = re.captures(&text) else { continue };
            let end = c.get(0).map_or(0, |m| m.end());
            if let Some(w) = c.get(1).filter(|_| !kind.is_empty()) {
                let w = String::from_utf8_lossy(w.as_bytes());
                match (*kind, w.split_once(", ip=")) {
                    ("Ray", Some((pid, ip))) => {
                        writer.push(format!("host {ip}"));
                        writer.push(format!("pid {pid}"));
                    }
                    ("Ray", None) => writer.push(format!("pid {w}")),
                    ("host", _) if w.bytes().all(|b| b.is_ascii_digit()) => {
                        writer.push(format!("rank {w}"));
                    }
                    (k, _) => writer.push(format!("{k} {w}")),
                }
            }
            text = Cow::Owned(text[end..].to_vec());
            break;
        }
        let last = text.iter().rev().copied().find(|b| !b.is_ascii_whitespace());
        if let Some(c) =
            matches!(last, Some(b']' | b')')).then(|| p.ray_repeat.captures(&text)).flatten()
        {
            let n = c.get(1).and_then(|m| std::str::from_utf8(m.as_bytes()).ok()?.parse().ok());
            repeats = repeats.saturating_mul(n.unwrap_or(1).max(1));
            let start = c.get(0).map_or(text.len(), |m| m.start());
            text = Cow::Owned(text[..start].to_vec());
        }
        let last = text.iter().rev().copied().find(|b| !b.is_ascii_whitespace());
        if let Some(m) =
            matches!(last, Some(b'0'..=b'9' | b'Z')).then(|| p.trailing_time.find(&text)).flatten()
        {
            // A line that is only a timestamp stays (it matches nothing anyway).
            if m.start() > 0 {
                text = Cow::Owned(text[..m.start()].to_vec());
            }
        }
        // A CloudWatch console copy repeats the message after ` | `.
        if let Some(half) = duplicated_half(&text) {
            text = Cow::Owned(text[..half].to_vec());
        }
        if text.len() == before {
            break;
        }
    }
    Normalised { text, repeats, writer }
}

/// `X | X` → the length of `X`.
fn duplicated_half(text: &[u8]) -> Option<usize> {
    let n = text.len();
    if n < 7 || (n - 3) % 2 != 0 {
        return None;
    }
    let half = (n - 3) / 2;
    (&text[half..half + 3] == b" | " && text[..half] == text[half + 3..]).then_some(half)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> (String, u64, Vec<String>) {
        let r = normalise(s.as_bytes());
        (String::from_utf8_lossy(&r.text).into_owned(), r.repeats, r.writer)
    }

    const NCCL: &str = "ip-10-0-0-1:42:42 [0] NCCL INFO Using network Socket";

    #[test]
    fn every_wrapper_comes_off() {
        let wrapped = [
            format!("(RayTrainWorker pid=83500, ip=10.0.0.7) {NCCL} [repeated 15x across cluster]"),
            format!(
                "{{\"log\":\"{NCCL}\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-02T03:04:05.1Z\"}}"
            ),
            format!("2026-05-02T12:00:00.123456789Z {NCCL}"),
            format!("[pod/prefill-0/vllm] 2026-05-02T12:00:00Z {NCCL}"),
            format!("2026-05-02T12:00:00.1Z stdout F {NCCL}"),
            format!("[1,7]<stdout>:{NCCL}"),
            format!("10.3.35.83: {NCCL}"),
            format!("> > {NCCL}"),
            format!("\x1b[32m{NCCL}\x1b[0m"),
            format!("  | 2025-05-16T16:39:55.216-07:00 | {NCCL}"),
            format!("  | 2025-05-16T16:39:55.216-07:00{NCCL} | {NCCL}"),
            format!("{NCCL}\t2024-12-04T05:27:39.074Z"),
            format!("{NCCL} | 2024-12-04T05:27:39.074Z"),
        ];
        for w in &wrapped {
            assert_eq!(n(w).0, NCCL, "{w:?}");
        }
    }

    #[test]
    fn writers_and_repeats_are_kept() {
        let (_, r, w) = n(&format!(
            "(RayTrainWorker pid=83500, ip=10.0.0.7) {NCCL} [repeated 15x across cluster] (Ray deduplicates logs by default. Set RAY_DEDUP_LOGS=0 to disable log deduplication.)"
        ));
        assert_eq!((r, w), (15, vec!["host 10.0.0.7".to_string(), "pid 83500".to_string()]));
        assert_eq!(n(&format!("[1,7]<stderr>:{NCCL}")).2, ["rank 7"]);
        assert_eq!(n(&format!("3: {NCCL}")).2, ["rank 3"]);
        let json = format!("{{\"log\":\"{NCCL}\",\"kubernetes\":{{\"pod_name\":\"decode-1\"}}}}");
        assert_eq!(n(&json).2, ["pod decode-1"]);
    }

    #[test]
    fn only_colours_are_removed_from_control_sequences() {
        assert_eq!(
            n("\x1b[2J\x1b[H ALL CHECKS PASSED\x1b[0m").0,
            "\x1b[2J\x1b[H ALL CHECKS PASSED"
        );
    }

    #[test]
    fn ordinary_lines_stay_as_they_are() {
        for s in [
            NCCL,
            "WARNING: something",
            "E0721 08:06:26.781179    4330 nixl_agent.cpp:866] createXferReq: x",
            "{not json",
            "12:00:00",
        ] {
            assert_eq!(n(s).0, s);
            assert_eq!(n(s).1, 1);
        }
    }
}
