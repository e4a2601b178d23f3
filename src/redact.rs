//! The one redaction pass: what leaves efa-doctor (every report format, every snapshot) has
//! credentials replaced by [`REDACTED`], judged by *values* as well as by names.
//!
//! Three entry points, one rule set:
//! - [`args`]: a command line, word by word (`--api-key X`, `--auth=X`, `-k <token>`, JSON
//!   arguments, then [`text`] on every word);
//! - [`env_allowed`] and [`env_value`]: only allow-listed variables are kept at all, and
//!   their values still go through [`text`] (`NIXL_ETCD_ENDPOINTS=http://u:PASS@etcd`);
//! - [`text`] / [`bytes`]: free text such as log lines, report strings and captured logs.
//!
//! [`text`] replaces: URL passwords (`scheme://user:PASS@host`, keeping scheme, user and
//! host), `Authorization`-style header values (keeping the scheme word, `Bearer`),
//! `NAME=value` and `'name': value` pairs whose name looks secret ([`secret_name`]), and
//! values with a known credential shape wherever they occur ([`credential_shaped`]). It is
//! idempotent, so text redacted at its source can pass through it again at output.
//!
//! This module is the bottom layer: it imports nothing from the crate.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use regex::bytes::{Captures, Regex};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Environment variables whose values are kept in captures and reports: the EFA, NCCL,
/// NIXL, UCX and framework settings the checks judge. Everything else is dropped.
pub fn env_allowed(name: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "FI_",
        "NCCL_",
        "NIXL_",
        "UCX_",
        "OFI_NCCL_",
        "SGLANG_DISAGGREGATION_",
        "TRTLLM_NIXL_",
        "DYN_KVBM_NIXL_",
        "VLLM_NIXL_",
        "CUDA_",
    ];
    const NAMES: [&str; 7] = [
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "PATH",
        "NVIDIA_VISIBLE_DEVICES",
        // Fork support in rdma-core and the efa provider (efa_fork_support.c).
        "RDMAV_FORK_SAFE",
        "IBV_FORK_SAFE",
        // PyTorch's allocator: expandable segments put tensors in CUDA VMM memory.
        "PYTORCH_CUDA_ALLOC_CONF",
    ];
    let secretish = ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH"];
    if secretish.iter().any(|s| name.to_ascii_uppercase().contains(s)) {
        return false;
    }
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The value of an allow-listed variable as it may be shown: a name tells nothing about a
/// URL with a password in it.
pub fn env_value(value: &str) -> String {
    text(value).into_owned()
}

/// Words that make a name (option, variable, JSON key, header) a credential's name.
const SECRET_WORDS: [&str; 22] = [
    "key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "cookie",
    "signature",
    "bearer",
    "accesskey",
    "secretkey",
    "privatekey",
    "accesstoken",
    "authtoken",
    "sessiontoken",
];

/// Word endings that make a compound word secret (`hftoken`, `clientsecret`); `key` alone
/// is not one (`monkey`, `pkey`), and plurals are not (`max_num_batched_tokens`).
const SECRET_SUFFIXES: [&str; 5] = ["apikey", "token", "secret", "password", "passwd"];

/// True when a name says its value is a credential: one of its words (split at
/// non-alphanumerics and camelCase humps) is a secret word. `--api-key`, `HF_TOKEN`,
/// `kv_connector_extra_config.api_key`, `X-Api-Key`, `apiKey`, `--auth` are; `--tokenizer`,
/// `--max-num-batched-tokens`, `kv_connector`, `NCCL_IB_PKEY` are not.
pub fn secret_name(name: &str) -> bool {
    words(name).iter().any(|w| {
        SECRET_WORDS.contains(&w.as_str()) || SECRET_SUFFIXES.iter().any(|s| w.ends_with(s))
    })
}

fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Values that say "no credential", kept because they are informative and not secret.
fn empty_value(v: &str) -> bool {
    matches!(v, "" | "''" | "\"\"" | "None" | "none" | "null" | "[]" | "NULL" | "nil")
}

/// Known credential shapes, matched anywhere in text.
fn shapes() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(concat!(
            r"(?-u:\b)(?:",
            r"hf_[A-Za-z0-9]{20,}",                                        // Hugging Face
            r"|sk-[A-Za-z0-9_-]{20,}",                                     // OpenAI, Anthropic
            r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}", // AWS key ids
            r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,}",   // GitHub
            r"|glpat-[A-Za-z0-9_-]{20,}",                                  // GitLab
            r"|xox[abposr]-[A-Za-z0-9-]{10,}",                             // Slack
            r"|AIza[A-Za-z0-9_-]{35}",                                     // Google API keys
            r"|npm_[A-Za-z0-9]{36}",                                       // npm
            r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", // JWT
            r")",
            r"|-----BEGIN[A-Z ]* PRIVATE KEY-----[A-Za-z0-9+/=\\\s]*(?:-----END[A-Z ]* PRIVATE KEY-----)?",
        ))
        .expect("credential shapes compile")
    })
}

/// The literal each credential shape in [`shapes`] starts with (AWS key ids by their first
/// letter, checked by [`may_hold_aws_key_id`]). Text holding none of them cannot match,
/// and most text a run redacts holds none, so the shapes need not be compiled for it:
/// compiling them and the rules is about half of efa-doctor's start-up time.
const SHAPE_PREFIXES: [&[u8]; 14] = [
    b"hf_",
    b"sk-",
    b"ghp_",
    b"gho_",
    b"ghu_",
    b"ghs_",
    b"ghr_",
    b"github_pat_",
    b"glpat-",
    b"xox",
    b"AIza",
    b"npm_",
    b"eyJ",
    b"-----BEGIN",
];

/// An AWS key id needs 20 consecutive `[A-Z0-9]` starting with `A`.
fn may_hold_aws_key_id(data: &[u8]) -> bool {
    let mut run = 0usize;
    let mut starts_with_a = false;
    for &b in data {
        if b.is_ascii_uppercase() || b.is_ascii_digit() {
            if run == 0 {
                starts_with_a = b == b'A';
            }
            run += 1;
            if run >= 20 && starts_with_a {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Which bytes a prefix in [`SHAPE_PREFIXES`] starts with.
const SHAPE_FIRST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < SHAPE_PREFIXES.len() {
        t[SHAPE_PREFIXES[i][0] as usize] = true;
        i += 1;
    }
    t
};

/// One pass: this runs on every string a report holds.
fn may_hold_shape(data: &[u8]) -> bool {
    data.iter().enumerate().any(|(i, &b)| {
        SHAPE_FIRST_BYTES[b as usize] && SHAPE_PREFIXES.iter().any(|p| data[i..].starts_with(p))
    }) || may_hold_aws_key_id(data)
}

/// A word the header rule's name needs (`authorization`, `cookie`, `*-key`, `password` ...).
const HEADER_WORDS: [&[u8]; 7] =
    [b"auth", b"cookie", b"key", b"token", b"secret", b"passw", b"signature"];

fn has(data: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(data, needle).is_some()
}

/// `needle` is lowercase ASCII.
fn has_ignore_case(data: &[u8], needle: &[u8]) -> bool {
    data.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether any rule of [`bytes`] can match `data`: each rule needs a `:` (header, quoted
/// key, URL), a `=` (assignment), the word `bearer` or a shape's prefix.
fn may_hold_secret(data: &[u8]) -> bool {
    memchr::memchr2(b':', b'=', data).is_some()
        || has_ignore_case(data, b"bearer")
        || may_hold_shape(data)
}

/// True when the whole of `v` has a known credential shape.
pub fn credential_shaped(v: &str) -> bool {
    may_hold_shape(v.as_bytes())
        && shapes().find(v.as_bytes()).is_some_and(|m| m.start() == 0 && m.end() == v.len())
}

/// An opaque string that can only be a key: at least 16 characters of the base64, base64url
/// or hex alphabets, with letters and digits, and not both `/` and `-` (a model id such as
/// `Qwen/Qwen3-30B-A3B` has both; no encoding of random bytes has). Used where the name
/// says nothing: a short option's value and a URL's user part.
pub fn opaque(v: &str) -> bool {
    v.len() >= 16
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
        && v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes().any(|b| b.is_ascii_alphabetic())
        && !(v.contains('/') && v.contains('-'))
}

/// The rules of [`text`], applied in order.
struct Rules {
    /// `"api_key": "X"`, `'api_key': ['X']`: JSON and Python dict entries.
    quoted_key: LazyLock<Regex>,
    /// `Authorization: Bearer X`, `X-Api-Key: X`, `Cookie: X`; a leading `#` is captured so
    /// a counter label (`#new-token: 64,`) can be told from a header.
    header: LazyLock<Regex>,
    /// `Bearer X` on its own.
    bearer: LazyLock<Regex>,
    /// `scheme://user:PASS@host`.
    url: LazyLock<Regex>,
    /// `NAME=value`, `--name=value`, `?token=value`.
    assignment: LazyLock<Regex>,
}

// The rules match bytes and names are ASCII: `(?-u)` keeps `\w`, `\s` and case folding
// ASCII-only, which compiles several times faster than their Unicode forms (every run that
// renders a report pays for it) and treats non-UTF-8 bytes in a value as part of it. Each
// compiles on first use only, after its precondition in `apply_rules` held.
fn rules() -> &'static Rules {
    static R: Rules = Rules {
        quoted_key: LazyLock::new(|| {
            Regex::new(
            r#"(?-u)(?P<q>['"])(?P<name>[A-Za-z_][\w.-]*)['"][ \t]*:[ \t]*(?P<value>'(?:[^'\\\r\n]|\\.)*'|"(?:[^"\\\r\n]|\\.)*"|\[[^\]\r\n]*\]|[^\s,}\]]+)"#,
        )
        .expect("quoted-key rule compiles")
        }),
        header: LazyLock::new(|| {
            Regex::new(
            r#"(?i-u)(?P<hash>\#)?(?P<name>(?:proxy-)?authorization|(?:set-)?cookie|[\w-]*[-_](?:api-?key|token|auth|secret|password|key|signature)|api-?key|x-auth|password|passwd|secret)[ \t]*:[ \t]*(?P<scheme>(?:bearer|basic|token|digest|negotiate|ntlm|apikey|aws4-hmac-sha256)[ \t]+)?(?P<value>[^\s'"]\S*)"#,
        )
        .expect("header rule compiles")
        }),
        bearer: LazyLock::new(|| {
            Regex::new(r"(?i-u)\b(?P<scheme>bearer[ \t]+)(?P<value>[A-Za-z0-9._~+/=-]{16,})")
                .expect("bearer rule compiles")
        }),
        url: LazyLock::new(|| {
            Regex::new(
            r#"(?i-u)\b(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^\s:/?#@'"\[\]]*)(?::(?P<pass>[^\s/?#'"]*))?@"#,
        )
        .expect("URL rule compiles")
        }),
        assignment: LazyLock::new(|| {
            Regex::new(
            r#"(?-u)(?P<name>[A-Za-z_][\w.-]*)[ \t]*=[ \t]*(?P<value>'[^'\r\n]*'|"[^"\r\n]*"|[^\s'",;&)\]}]+)"#,
        )
        .expect("assignment rule compiles")
        }),
    };
    &R
}

/// The whole match with its `value` group replaced by `replacement`.
fn with_value(c: &Captures<'_>, replacement: &str) -> Vec<u8> {
    let start = c.name("value").map_or(0, |m| m.start()) - c.get(0).map_or(0, |m| m.start());
    [&c[0][..start], replacement.as_bytes()].concat()
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `value` replaced, keeping its quotes (and list brackets) so the text still parses.
fn redacted_like(value: &str) -> String {
    let v = value.trim();
    let first = v.chars().next().unwrap_or(' ');
    match first {
        '\'' | '"' => format!("{first}{REDACTED}{first}"),
        '[' => {
            let q = v[1..].chars().find(|c| *c == '\'' || *c == '"').unwrap_or('\'');
            format!("[{q}{REDACTED}{q}]")
        }
        _ => REDACTED.to_string(),
    }
}

/// True when a value needs no redaction: done already, or says there is none.
fn already(value: &str) -> bool {
    value.trim_start_matches(['\'', '"', '[']).starts_with("redacted") || empty_value(value)
}

/// `#name: 64,`: a statistics counter (SGLang's `Prefill batch. #new-seq: 1, #new-token: 64,
/// #cached-token: 0, ...`), not a header: header names never start with `#`, and a count is
/// no credential. A `#name` with any other value is still redacted.
fn counter(c: &Captures<'_>) -> bool {
    let value = c["value"].strip_suffix(b",").unwrap_or(&c["value"]);
    c.name("hash").is_some() && !value.is_empty() && value.iter().all(u8::is_ascii_digit)
}

/// Redacts free text (UTF-8 or not); see the module documentation for the rules.
pub fn bytes(data: &[u8]) -> Cow<'_, [u8]> {
    if !may_hold_secret(data) {
        return Cow::Borrowed(data);
    }
    apply_rules(data, true)
}

/// The rules in order; `guarded` runs each only where its precondition holds (the tests
/// compare that with running every rule everywhere).
fn apply_rules(data: &[u8], guarded: bool) -> Cow<'_, [u8]> {
    let r = rules();
    let mut cur: Cow<'_, [u8]> = Cow::Borrowed(data);
    if (!guarded || may_hold_shape(&cur)) && shapes().is_match(&cur) {
        cur = Cow::Owned(shapes().replace_all(&cur, REDACTED.as_bytes()).into_owned());
    }
    // Each rule runs only where the text has what the rule needs, so most text never
    // compiles it.
    let mut pass =
        |need: fn(&[u8]) -> bool, re: &LazyLock<Regex>, f: &dyn Fn(&Captures<'_>) -> Vec<u8>| {
            if (!guarded || need(&cur)) && re.is_match(&cur) {
                let out = re.replace_all(&cur, |c: &Captures<'_>| f(c)).into_owned();
                cur = Cow::Owned(out);
            }
        };
    // `name: value`, `'name': value` and `NAME=value`: the value of a secret-looking name.
    let named_value = |c: &Captures<'_>| {
        let value = lossy(&c["value"]);
        if !secret_name(&lossy(&c["name"])) || already(&value) {
            return c[0].to_vec();
        }
        with_value(c, &redacted_like(&value))
    };
    pass(
        |t| has(t, b":") && memchr::memchr2(b'"', b'\'', t).is_some(),
        &r.quoted_key,
        &named_value,
    );
    pass(|t| has(t, b":") && HEADER_WORDS.iter().any(|w| has_ignore_case(t, w)), &r.header, &|c| {
        if already(&lossy(&c["value"])) || counter(c) {
            return c[0].to_vec();
        }
        with_value(c, REDACTED)
    });
    pass(|t| has_ignore_case(t, b"bearer"), &r.bearer, &|c| {
        if lossy(&c["value"]).starts_with(REDACTED) {
            return c[0].to_vec();
        }
        [&c["scheme"], REDACTED.as_bytes()].concat()
    });
    pass(|t| has(t, b"://") && has(t, b"@"), &r.url, &|c| {
        let user = lossy(&c["user"]);
        let user: Cow<'_, str> =
            if c.name("pass").is_none() && opaque(&user) { Cow::Borrowed(REDACTED) } else { user };
        let pass = match c.name("pass") {
            Some(p) if p.as_bytes().is_empty() || p.as_bytes().starts_with(REDACTED.as_bytes()) => {
                format!(":{}", lossy(p.as_bytes()))
            }
            Some(_) => format!(":{REDACTED}"),
            None => String::new(),
        };
        [&c["scheme"], user.as_bytes(), pass.as_bytes(), b"@"].concat()
    });
    pass(|t| has(t, b"="), &r.assignment, &named_value);
    cur
}

/// Redacts free text; see the module documentation for the rules.
pub fn text(s: &str) -> Cow<'_, str> {
    match bytes(s.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(s),
        // Replacements are ASCII and the rules match whole UTF-8 characters.
        Cow::Owned(b) => Cow::Owned(
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    }
}

/// A JSON value with every secret-named member replaced and every string redacted as
/// [`text`].
fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let Cow::Owned(r) = text(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let empty = match x {
                    serde_json::Value::Null => true,
                    serde_json::Value::String(s) => s.is_empty(),
                    serde_json::Value::Array(a) => a.is_empty(),
                    serde_json::Value::Object(o) => o.is_empty(),
                    _ => false,
                };
                if secret_name(k) && !empty {
                    if x.as_str() != Some(REDACTED) {
                        *x = serde_json::Value::String(REDACTED.into());
                    }
                } else {
                    redact_json(x);
                }
            }
        }
        _ => {}
    }
}

/// An argument that is a JSON object or array (vLLM's `--kv-transfer-config`), with secrets
/// removed. The text is edited in place when that gives the same document, so the operator
/// sees the argument as written; otherwise it is the redacted document re-serialised. The
/// members the checks read (`kv_connector`, `kv_connector_extra_config.backends`) survive.
fn json_arg(word: &str) -> Option<String> {
    let t = word.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    let mut v: serde_json::Value = serde_json::from_str(word).ok()?;
    redact_json(&mut v);
    let edited = text(word);
    if serde_json::from_str::<serde_json::Value>(&edited).ok().as_ref() == Some(&v) {
        return Some(edited.into_owned());
    }
    Some(serde_json::to_string(&v).unwrap_or_else(|_| REDACTED.into()))
}

/// One word's value, redacted: JSON parsed, everything else as [`text`].
fn word(w: &str) -> String {
    json_arg(w).unwrap_or_else(|| text(w).into_owned())
}

/// A short option (`-k`, `-tp`): its name says nothing about its value.
fn short_option(a: &str) -> bool {
    let n = a.strip_prefix('-').unwrap_or("");
    !a.starts_with("--") && (1..=3).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A redacted command line. Rules, in order:
/// - the value of an option whose name looks secret ([`secret_name`]): `--api-key X`,
///   `--hf-token=X`, `--auth X`, `AWS_SECRET_ACCESS_KEY=X` (a bare `NAME=value` word);
/// - the value after a short option when it is [`credential_shaped`] or [`opaque`]
///   (`-k sk-...`, `-k 3Xa9...`): a short option's name says nothing, so its value decides;
/// - every other word: a JSON object or array has its secret-named members replaced
///   (recursively, keeping the rest), then [`text`] (URL passwords, header values, tokens).
pub fn args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut redact_next = false;
    let mut after_short = false;
    for a in args {
        if redact_next {
            out.push(REDACTED.to_string());
            redact_next = false;
            continue;
        }
        if std::mem::take(&mut after_short) && (credential_shaped(a) || opaque(a)) {
            out.push(REDACTED.to_string());
            continue;
        }
        if let Some((name, value)) = a.split_once('=') {
            let bare = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
            if (name.starts_with('-') || bare) && secret_name(name) {
                out.push(if empty_value(value) { a.clone() } else { format!("{name}={REDACTED}") });
                continue;
            }
            if name.starts_with('-') {
                out.push(format!("{name}={}", word(value)));
                continue;
            }
        }
        if a.starts_with('-') && secret_name(a) {
            out.push(a.clone());
            redact_next = true;
            continue;
        }
        after_short = short_option(a);
        out.push(word(a));
    }
    out
}

// JSON output, redacted on the way out.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

/// `value` as JSON (pretty or compact), every string (keys too) redacted as [`text`] and
/// written with [`crate::escape::json_string`]. Used for the JSON report, JUnit's system-out
/// and a snapshot's manifest.
pub fn to_json<T: Serialize>(value: &T, pretty: bool) -> serde_json::Result<String> {
    let mut out = Vec::new();
    if pretty {
        let f = Shown { inner: PrettyFormatter::new(), string: None };
        value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, f))?;
    } else {
        let f = Shown { inner: CompactFormatter, string: None };
        value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, f))?;
    }
    // The formatter writes only UTF-8.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// A formatter that collects each string whole (serde_json hands it over in fragments), then
/// writes it redacted and escaped. Layout is the inner formatter's.
struct Shown<F> {
    inner: F,
    /// The string being collected, unescaped.
    string: Option<String>,
}

macro_rules! scalar {
    ($($name:ident: $t:ty),*) => {$(
        fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W, v: $t) -> io::Result<()> {
            // Inside a string only for map keys that are numbers.
            match &mut self.string {
                Some(s) => {
                    s.push_str(&v.to_string());
                    Ok(())
                }
                None => self.inner.$name(w, v),
            }
        }
    )*};
}

macro_rules! layout {
    ($($name:ident),*) => {$(
        fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
            self.inner.$name(w)
        }
    )*};
}

impl<F: Formatter> Formatter for Shown<F> {
    scalar!(write_bool: bool, write_i8: i8, write_i16: i16, write_i32: i32, write_i64: i64,
        write_i128: i128, write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64,
        write_u128: u128, write_f32: f32, write_f64: f64);
    layout!(
        begin_array,
        end_array,
        end_array_value,
        begin_object,
        end_object,
        end_object_key,
        begin_object_value,
        end_object_value
    );

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_array_value(w, first)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_object_key(w, first)
    }

    fn begin_string<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.string = Some(String::new());
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        match &mut self.string {
            Some(s) => {
                s.push_str(fragment);
                Ok(())
            }
            None => self.inner.write_string_fragment(w, fragment),
        }
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        e: CharEscape,
    ) -> io::Result<()> {
        let Some(s) = &mut self.string else {
            return self.inner.write_char_escape(w, e);
        };
        s.push(match e {
            CharEscape::Quote => '"',
            CharEscape::ReverseSolidus => '\\',
            CharEscape::Solidus => '/',
            CharEscape::Backspace => '\u{8}',
            CharEscape::FormFeed => '\u{c}',
            CharEscape::LineFeed => '\n',
            CharEscape::CarriageReturn => '\r',
            CharEscape::Tab => '\t',
            CharEscape::AsciiControl(b) => char::from(b),
        });
        Ok(())
    }

    fn end_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        let s = self.string.take().unwrap_or_default();
        let mut out = String::with_capacity(s.len() + 2);
        crate::escape::json_string(&mut out, &text(&s));
        w.write_all(out.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_precheck_skips_only_text_no_rule_would_change() {
        // Every shape example is let through to the rules.
        for secret in [
            "hf_abcdefghijklmnopqrstuvwx",
            "sk-abcdefghijklmnopqrstuvwx",
            "AKIAABCDEFGHIJKLMNOP",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "github_pat_abcdefghijklmnopqrstuv",
            "glpat-abcdefghijklmnopqrstuv",
            "xoxb-0123456789-abcdef",
            "AIzaabcdefghijklmnopqrstuvwxyz012345678",
            "npm_abcdefghijklmnopqrstuvwxyz0123456789",
            "eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeK",
            "-----BEGIN PRIVATE KEY-----",
            "Bearer abcdefghijklmnopqrstuvwx",
        ] {
            assert!(may_hold_secret(secret.as_bytes()), "{secret}");
            assert_ne!(bytes(secret.as_bytes()).as_ref(), secret.as_bytes(), "{secret}");
        }
        // On real log lines, with secrets planted in some, and an efa-doctor command line:
        // the preconditions change nothing the rules would have done.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/logs");
        let (mut lines, mut skipped) = (0, 0);
        let planted = [
            &b"check --root tests/x --format json"[..],
            b"HF_TOKEN=hf_abcdefghijklmnopqrstuvwx x-api-key: abc Authorization: Bearer abcdefghijklmnopqrstu",
            b"{\"api_key\": \"abc\"} https://user:pw@host/ --password=x",
        ];
        for entry in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            for line in data.split(|b| *b == b'\n').chain(planted) {
                lines += 1;
                skipped += usize::from(!may_hold_secret(line));
                assert_eq!(
                    bytes(line).as_ref(),
                    apply_rules(line, false).as_ref(),
                    "{}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        assert!(skipped > 100 && lines > skipped, "{skipped} of {lines} lines skipped");
    }

    #[test]
    fn names() {
        for n in
            ["--api-key", "--hf-token", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "api_key", "apiKey"]
        {
            assert!(secret_name(n), "{n}");
        }
        for n in ["--auth", "X-Api-Key", "--db-password", "clientSecret", "--hftoken"] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "--tokenizer",
            "--max-num-batched-tokens",
            "kv_connector",
            "kv_connector_extra_config",
            "NCCL_IB_PKEY",
            "--port",
            "--openai-api-base",
            "backends",
        ] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn text_rules() {
        let cases = [
            (
                "postgres://admin:PASS1@db.internal:5432/app",
                "postgres://admin:[redacted]@db.internal:5432/app",
            ),
            ("http://user:p@ss@etcd:2379", "http://user:[redacted]@etcd:2379"),
            ("Authorization: Bearer XYZ123", "Authorization: Bearer [redacted]"),
            ("--header=Authorization: Basic dXNlcjpw", "--header=Authorization: Basic [redacted]"),
            ("X-Api-Key: abc123", "X-Api-Key: [redacted]"),
            ("HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz012345 next", "HF_TOKEN=[redacted] next"),
            (
                "non-default args: {'api_key': 'sk-local', 'model': 'Qwen/Qwen3-8B'}",
                "non-default args: {'api_key': '[redacted]', 'model': 'Qwen/Qwen3-8B'}",
            ),
            (
                "{'api_key': ['k1', 'k2'], 'port': 8000}",
                "{'api_key': ['[redacted]'], 'port': 8000}",
            ),
            ("Namespace(api_key=None, model='m')", "Namespace(api_key=None, model='m')"),
            ("https://h/x?token=abc&x=1", "https://h/x?token=[redacted]&x=1"),
            ("key ghp_abcdefghijklmnopqrstuvwxyz0123456789 here", "key [redacted] here"),
            (
                "NCCL INFO NET/OFI Selected provider is efa",
                "NCCL INFO NET/OFI Selected provider is efa",
            ),
            ("max token: 4096 tokens=5", "max token: 4096 tokens=5"),
            (
                "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r",
                "git clone https://[redacted]@github.com/o/r",
            ),
            (
                "https://AbCdEf0123456789xyzQ@h/x ssh://git@github.com/o",
                "https://[redacted]@h/x ssh://git@github.com/o",
            ),
            ("id AKIAIOSFODNN7EXAMPLE used", "id [redacted] used"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
                "jwt [redacted] end",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY----- after",
                "[redacted] after",
            ),
            ("Cookie: session=abc123; other=1", "Cookie: [redacted] other=1"),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key = [redacted]",
            ),
            (
                "headers={'Authorization': 'Bearer abc', 'Accept': '*/*'}",
                "headers={'Authorization': '[redacted]', 'Accept': '*/*'}",
            ),
            (
                "tcp://10.0.0.1:5555 and disk-abcdefghijklmnopqrstuvwxyz",
                "tcp://10.0.0.1:5555 and disk-abcdefghijklmnopqrstuvwxyz",
            ),
            // SGLang's scheduler statistics, a real line as posted in a public SGLang issue
            // (Sept 2025): counters, not secrets.
            (
                "[2025-09-11 10:26:02 TP0] Prefill batch. #new-seq: 1, #new-token: 6, #cached-token: 0, token usage: 0.00, #running-req: 0, #queue-req: 0,",
                "[2025-09-11 10:26:02 TP0] Prefill batch. #new-seq: 1, #new-token: 6, #cached-token: 0, token usage: 0.00, #running-req: 0, #queue-req: 0,",
            ),
            ("#new-token: 64,", "#new-token: 64,"),
            // The same names with a credential-shaped value, or without the `#`, stay secret.
            ("#x-auth-token: abc123def456", "#x-auth-token: [redacted]"),
            ("new-token: 64", "new-token: [redacted]"),
            ("X-Auth-Token: 1234567890", "X-Auth-Token: [redacted]"),
            ("#session-token: hf_abcdefghijklmnopqrstuvwxyz012345", "#session-token: [redacted]"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
            assert_eq!(text(want), want, "idempotent: {want}");
        }
    }

    #[test]
    fn command_lines() {
        let got = args(&v(&[
            "vllm",
            "serve",
            "--api-key",
            "s3cr3t",
            "--hf-token=abc",
            "--auth",
            "X",
            "-k",
            "Zm9vYmFyYmF6cXV4MTIzNDU2",
            "-tp",
            "8",
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "--tokenizer",
            "Qwen/Qwen3-8B",
            "--kv-transfer-config",
            r#"{"kv_connector":"NixlConnector","kv_connector_extra_config":{"backends":["LIBFABRIC"],"api_key":"X9"}}"#,
        ]));
        assert_eq!(
            got,
            v(&[
                "vllm",
                "serve",
                "--api-key",
                "[redacted]",
                "--hf-token=[redacted]",
                "--auth",
                "[redacted]",
                "-k",
                "[redacted]",
                "-tp",
                "8",
                "AWS_SECRET_ACCESS_KEY=[redacted]",
                "--tokenizer",
                "Qwen/Qwen3-8B",
                "--kv-transfer-config",
                r#"{"kv_connector":"NixlConnector","kv_connector_extra_config":{"backends":["LIBFABRIC"],"api_key":"[redacted]"}}"#,
            ])
        );
        assert_eq!(args(&got), got, "idempotent");
        // A short option's value is judged by its shape alone: a word-like value stays (the
        // name says nothing), as do ordinary values after short options.
        let kept = v(&["-k", "hunter2", "-m", "vllm.entrypoints.openai.api_server", "-O3"]);
        assert_eq!(args(&kept), kept);
    }

    #[test]
    fn json_members_whose_value_is_not_a_string() {
        let got = word(r#"{"kv_connector":"NixlConnector","auth":{"user":"u","x":"y"},"n":1}"#);
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["auth"], REDACTED);
        assert_eq!(v["kv_connector"], "NixlConnector");
        assert!(!got.contains("\"y\""));
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn strings_are_redacted_and_escaped_and_layout_kept() {
        let v = serde_json::json!({
            "b": "postgres://u:PW@h/db \u{1b}[2J",
            "a": [1, 2.5, true, null],
            "m": {"7": "x"},
        });
        let s = to_json(&v, true).unwrap();
        assert!(!s.contains("PW") && !s.contains('\u{1b}'), "{s}");
        assert!(s.contains("\\u001b[2J") && s.contains("postgres://u:[redacted]@h/db"));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["a"], serde_json::json!([1, 2.5, true, null]));
        assert_eq!(back["m"]["7"], "x");
        assert!(s.starts_with("{\n  \"a\""), "pretty layout: {s}");
        let mut keys = std::collections::BTreeMap::new();
        keys.insert(42u32, "y");
        assert_eq!(to_json(&keys, false).unwrap(), r#"{"42":"y"}"#);
    }
}
