//! Untrusted text made safe to show: a terminal, a Prometheus label and an XML document get
//! the characters that could act on them (rewrite the screen, reorder what is read, end a
//! line or make the document ill-formed) written out visibly instead (`\x1b`, `\u{202e}`).
//!
//! Text from the node (a process name, a DMI string, a log line, a library's version) is
//! untrusted: any local user can plant it. This module is the bottom layer: it imports
//! nothing from the crate.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character shown escaped: every C0 control, DEL and C1 control (terminal
/// sequences, carriage returns that overprint a line), the bidirectional embedding,
/// override, isolate and mark controls (Trojan Source, CVE-2021-42574), the Unicode line and
/// paragraph separators, and U+FFFE/U+FFFF (not characters; XML cannot hold them).
pub fn shown_escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn escape_where(s: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&escaped) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if escaped(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of untrusted text, safe to show: see [`shown_escaped`]. Tabs and newlines are
/// escaped too, so the text stays on its line (a log line cannot print a line of its own).
pub fn visible(s: &str) -> Cow<'_, str> {
    escape_where(s, shown_escaped)
}

/// Several lines of untrusted text (an error message with a caret diagram): as [`visible`],
/// but newlines and tabs are kept.
pub fn visible_lines(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| c != '\n' && c != '\t' && shown_escaped(c))
}

/// Writes a JSON string literal (quotes included) that holds `s`, escaping `"`, `\`, and every
/// character [`shown_escaped`] as `\uXXXX`: valid JSON, and valid inside XML 1.0, that shows
/// nothing raw on a terminal.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if shown_escaped(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown() {
        assert_eq!(visible("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(visible("x\ry\tz\n"), "x\\ry\\tz\\n");
        assert_eq!(visible("\u{9b}31m \u{7f}"), "\\u{9b}31m \\x7f");
        assert_eq!(visible("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(visible("plain · text — ok"), "plain · text — ok");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(visible_lines("a\n\tb\x1b"), "a\n\tb\\x1b");
    }

    #[test]
    fn json_strings_stay_json() {
        let mut s = String::new();
        json_string(&mut s, "a\"\\\x1b\u{85}\u{2066}\u{ffff}é");
        assert_eq!(s, r#""a\"\\\u001b\u0085\u2066\uffffé""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"\\\x1b\u{85}\u{2066}\u{ffff}é");
    }
}
