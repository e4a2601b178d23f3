//! Dotted version numbers as the EFA stack writes them: kernel releases (`6.8.0-1021-aws`),
//! libfabric (`2.4.0amzn3.0`, `1.22.0rc1`), driver versions (`580.95.05`, `2.17.3g`).

use std::cmp::Ordering;
use std::fmt;

/// The numeric core of a version plus whatever followed it. Ordering uses the numbers only,
/// so `2.4.0amzn3.0` sorts with `2.4.0` and before `2.5.0`.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Version {
    pub parts: Vec<u64>,
    /// Text after the numeric part (`amzn3.0`, `-1021-aws`, `g`), empty if none.
    pub suffix: String,
}

impl Version {
    /// Parses the leading `N(.N)*` of `s` (after an optional `v`). At least one number is
    /// required; at most four numeric parts are taken.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts = Vec::new();
        let mut rest = s;
        loop {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 12 {
                break;
            }
            parts.push(rest[..digits].parse().ok()?);
            rest = &rest[digits..];
            if parts.len() == 4 {
                break;
            }
            match rest.strip_prefix('.') {
                Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => rest = r,
                _ => break,
            }
        }
        if parts.is_empty() {
            return None;
        }
        Some(Version { parts, suffix: rest.to_string() })
    }

    pub fn new(parts: &[u64]) -> Version {
        Version { parts: parts.to_vec(), suffix: String::new() }
    }

    pub fn major(&self) -> u64 {
        self.parts.first().copied().unwrap_or(0)
    }

    pub fn minor(&self) -> u64 {
        self.parts.get(1).copied().unwrap_or(0)
    }

    /// Compares numeric parts, treating missing parts as zero.
    pub fn cmp_numeric(&self, other: &Version) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            let a = self.parts.get(i).copied().unwrap_or(0);
            let b = other.parts.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }

    pub fn at_least(&self, parts: &[u64]) -> bool {
        self.cmp_numeric(&Version::new(parts)) != Ordering::Less
    }

    pub fn below(&self, parts: &[u64]) -> bool {
        !self.at_least(parts)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nums: Vec<String> = self.parts.iter().map(u64::to_string).collect();
        write!(f, "{}{}", nums.join("."), self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stack_versions() {
        let v = Version::parse("2.4.0amzn3.0").unwrap();
        assert_eq!(v.parts, vec![2, 4, 0]);
        assert_eq!(v.suffix, "amzn3.0");
        assert!(v.below(&[2, 5]));
        assert!(Version::parse("6.8.0-1021-aws").unwrap().at_least(&[5, 12]));
        assert!(Version::parse("5.10.230-223.885.amzn2.x86_64").unwrap().below(&[5, 12]));
        assert_eq!(Version::parse("v1.17.0").unwrap().to_string(), "1.17.0");
        assert_eq!(Version::parse("2.17.3g").unwrap().suffix, "g");
        assert!(Version::parse("garbage").is_none());
        assert!(Version::parse("").is_none());
        assert!(Version::parse("99999999999999999999").is_none());
    }
}
