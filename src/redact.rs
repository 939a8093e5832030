//! The redactor: removes secrets from every text airgate shows the model or
//! writes down (tool results, trajectories, reports, corpus rows, exports).
//!
//! It is a second line, not the boundary: the sandbox keeps secrets away
//! from the agent; this catches what still reaches an output. It knows
//! three kinds of secret:
//! - literal values: airgate's own secret environment variables
//!   ([`Redactor::from_env`]) and values of secret files masked from the
//!   workspace ([`Redactor::add_file_values`]), each also in the forms a
//!   model would try to slip past a filter (base64 at every alignment, hex,
//!   reversed, upper/lower case);
//! - known key formats (OpenAI/Anthropic, AWS, GitHub, Slack, Hugging Face,
//!   Google, JWTs, PEM private key blocks, bearer tokens, URL passwords);
//! - `NAME=VALUE` / `name: value` lines whose name looks secret (the name is
//!   kept, the value replaced) when the value looks like a secret rather
//!   than code (`api_key = os.environ["API_KEY"]` is kept).
//!
//! Each secret becomes [`REDACTED`]. Text without secrets is returned
//! borrowed, without allocating.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use regex::{Captures, Regex, RegexSet};
use serde::Deserialize;

/// What every secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Words that make an environment variable (or a `NAME=VALUE` line) look
/// secret, matched case-insensitively anywhere in the name.
pub const SECRET_NAME_WORDS: [&str; 10] = [
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
    "SESSION",
    "PRIVATE",
];

/// Built-in settings text (`configs/redact.toml`).
const BUILTIN: &str = include_str!("../configs/redact.toml");

/// Failure to set up the redactor.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The settings file could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The settings file is not valid.
    #[error("{origin}: {source} (fix the file; see configs/redact.toml for the format)")]
    Parse {
        /// Where the settings came from.
        origin: String,
        /// Cause.
        source: Box<toml::de::Error>,
    },
    /// A configured pattern is not a valid regex.
    #[error("redaction pattern `{pattern}` is not a valid regex: {source}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Cause.
        source: Box<regex::Error>,
    },
    /// A secret file could not be read.
    #[error("reading secret file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

impl crate::error::Retryable for RedactError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// Settings from `configs/redact.toml` (they add to the built-in rules).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactSettings {
    /// Shortest literal treated as a secret.
    #[serde(default = "default_min_len")]
    pub min_len: usize,
    /// More words that make a variable name look secret.
    #[serde(default)]
    pub extra_env_names: Vec<String>,
    /// Variable names never treated as secret (exact, case-insensitive).
    #[serde(default)]
    pub ignore_env_names: Vec<String>,
    /// More regexes; a group named `s` limits the replacement to it.
    #[serde(default)]
    pub extra_patterns: Vec<String>,
    /// Values never redacted.
    #[serde(default)]
    pub allow: Vec<String>,
}

fn default_min_len() -> usize {
    8
}

impl RedactSettings {
    /// Loads the settings: `explicit`, else `$AIRGATE_CONFIG_DIR/redact.toml`,
    /// else the built-in copy (never the current directory).
    pub fn load(explicit: Option<&Path>) -> Result<Self, RedactError> {
        let loaded = crate::config::load("redact.toml", explicit, BUILTIN)?;
        toml::from_str(&loaded.text).map_err(|source| RedactError::Parse {
            origin: loaded.origin,
            source: Box::new(source),
        })
    }

    /// The built-in settings.
    pub fn builtin() -> Result<Self, RedactError> {
        toml::from_str(BUILTIN).map_err(|source| RedactError::Parse {
            origin: "built-in configs/redact.toml".into(),
            source: Box::new(source),
        })
    }
}

/// Extra test a regex hit must pass before it is redacted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Check {
    /// Any hit is a secret.
    None,
    /// The secret contains a digit (real keys do; `sk-some-css-class` does not).
    Digit,
    /// A `NAME=VALUE` line: the value must look like a secret, not code.
    Assignment,
}

#[derive(Debug)]
struct Rule {
    re: Regex,
    check: Check,
}

/// Removes secrets from text. Build it once per run and share it (it is
/// `Send + Sync`); adding literals rebuilds the literal matcher.
#[derive(Debug)]
pub struct Redactor {
    min_len: usize,
    /// Every literal form, longest first (deduplicated).
    literals: Vec<String>,
    literal_matcher: Option<AhoCorasick>,
    rules: Vec<Rule>,
    set: RegexSet,
    allow: Vec<String>,
}

impl Redactor {
    /// The redactor airgate uses: settings from the installation, and the
    /// values of this process's secret-looking environment variables.
    pub fn from_env() -> Result<Self, RedactError> {
        Self::from_env_with(&RedactSettings::load(None)?, std::env::vars_os())
    }

    /// As [`Redactor::from_env`], with explicit settings and variables.
    pub fn from_env_with<I, K, V>(settings: &RedactSettings, vars: I) -> Result<Self, RedactError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let mut r = Self::new(settings)?;
        let words: Vec<String> = SECRET_NAME_WORDS
            .iter()
            .map(|w| w.to_string())
            .chain(
                settings
                    .extra_env_names
                    .iter()
                    .map(|w| w.to_ascii_uppercase()),
            )
            .collect();
        let ignore: Vec<String> = settings
            .ignore_env_names
            .iter()
            .map(|n| n.to_ascii_uppercase())
            .collect();
        let mut added = Vec::new();
        for (k, v) in vars {
            let (Some(name), Some(value)) = (k.as_ref().to_str(), v.as_ref().to_str()) else {
                continue;
            };
            let upper = name.to_ascii_uppercase();
            // AUTHOR contains AUTH; git's author variables hold names.
            if ignore.contains(&upper)
                || upper.contains("AUTHOR")
                || !words.iter().any(|w| upper.contains(w.as_str()))
            {
                continue;
            }
            if harmless_env_value(value, r.min_len) {
                continue;
            }
            added.push(value.to_string());
        }
        r.extend_literals(added);
        Ok(r)
    }

    /// A redactor with the built-in rules and `settings`, and no literals.
    pub fn new(settings: &RedactSettings) -> Result<Self, RedactError> {
        let mut words: Vec<String> = SECRET_NAME_WORDS.iter().map(|w| w.to_string()).collect();
        words.extend(
            settings
                .extra_env_names
                .iter()
                .filter(|w| !w.is_empty())
                .map(|w| regex::escape(w)),
        );
        let mut specs: Vec<(String, Check)> = builtin_patterns()
            .iter()
            .map(|(p, c)| (p.to_string(), *c))
            .collect();
        specs.push((assignment_pattern(&words), Check::Assignment));
        specs.extend(
            settings
                .extra_patterns
                .iter()
                .map(|p| (p.clone(), Check::None)),
        );
        let mut rules = Vec::with_capacity(specs.len());
        for (p, check) in &specs {
            let re = Regex::new(p).map_err(|source| RedactError::Pattern {
                pattern: p.clone(),
                source: Box::new(source),
            })?;
            rules.push(Rule { re, check: *check });
        }
        let set = RegexSet::new(specs.iter().map(|(p, _)| p.as_str())).map_err(|source| {
            RedactError::Pattern {
                pattern: "(the set of all patterns)".into(),
                source: Box::new(source),
            }
        })?;
        Ok(Self {
            min_len: settings.min_len.max(1),
            literals: Vec::new(),
            literal_matcher: None,
            rules,
            set,
            allow: settings.allow.clone(),
        })
    }

    /// Adds one secret value (ignored when shorter than `min_len` or
    /// allow-listed), in all its disguises.
    pub fn add_literal(&mut self, secret: &str) {
        self.extend_literals([secret.to_string()]);
    }

    /// Adds the values found in the text of a secret file masked from the
    /// workspace: `.env`-style `NAME=VALUE` values, `name: value` values, PEM
    /// body lines, and any other long line as a whole.
    pub fn add_file_values(&mut self, text: &str) {
        let mut values = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("-----") {
                continue;
            }
            let body = line.strip_prefix("export ").unwrap_or(line);
            let value = match body.find(['=', ':']) {
                Some(i) if is_name(body[..i].trim()) => body[i + 1..].trim(),
                _ => body,
            };
            let value = unquote(value);
            values.push(value.to_string());
            // The password of a URL (`postgres://user:PASSWORD@host`).
            if let Some((_, rest)) = value.split_once("://")
                && let Some((userinfo, _)) = rest.split_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
            {
                values.push(password.to_string());
            }
            // A line may also hold several space-separated secrets
            // (`ssh-ed25519 AAAA... user@host`): add the long words too.
            values.extend(
                value
                    .split_whitespace()
                    .filter(|w| w.len() >= 16)
                    .map(str::to_string),
            );
        }
        self.extend_literals(values);
    }

    /// Reads `path` and adds its values (see [`Redactor::add_file_values`]).
    pub fn add_file(&mut self, path: &Path) -> Result<(), RedactError> {
        let bytes = std::fs::read(path).map_err(|source| RedactError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_file_values(&String::from_utf8_lossy(&bytes));
        Ok(())
    }

    /// Number of literal forms known (for logs and tests).
    pub fn literal_count(&self) -> usize {
        self.literals.len()
    }

    fn extend_literals(&mut self, values: impl IntoIterator<Item = String>) {
        let mut changed = false;
        for v in values {
            if v.len() < self.min_len || self.allow.iter().any(|a| a == &v) {
                continue;
            }
            for form in disguises(&v, self.min_len) {
                if !self.literals.contains(&form) {
                    self.literals.push(form);
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
        self.literals
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.literal_matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&self.literals)
            .map_err(|e| tracing::error!("cannot build the literal secret matcher: {e}"))
            .ok();
    }

    /// `text` with every secret replaced by [`REDACTED`]; borrowed (no
    /// allocation) when there is none.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        if let Some(ac) = &self.literal_matcher {
            spans.extend(ac.find_iter(text).map(|m| (m.start(), m.end())));
        }
        let hits = self.set.matches(text);
        if hits.matched_any() {
            for i in hits.iter() {
                let rule = &self.rules[i];
                for caps in rule.re.captures_iter(text) {
                    if let Some(span) = self.secret_span(rule, &caps) {
                        spans.push(span);
                    }
                }
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (s, e) in spans {
            if e <= at {
                continue;
            }
            if s >= at {
                out.push_str(&text[at..s]);
                out.push_str(REDACTED);
            }
            at = e;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Redacts every string (and object key) inside `v`, in place.
    pub fn redact_json(&self, v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| self.redact_json(x)),
            Value::Object(map) => {
                let needs_key_change = map.keys().any(|k| matches!(self.redact(k), Cow::Owned(_)));
                if needs_key_change {
                    let old = std::mem::take(map);
                    for (k, mut x) in old {
                        self.redact_json(&mut x);
                        map.insert(self.redact(&k).into_owned(), x);
                    }
                } else {
                    map.values_mut().for_each(|x| self.redact_json(x));
                }
            }
            _ => {}
        }
    }

    /// The byte range to replace for one regex hit, if it passes the rule's
    /// check and the allow-list.
    fn secret_span(&self, rule: &Rule, caps: &Captures<'_>) -> Option<(usize, usize)> {
        let m = caps.name("s").or_else(|| caps.get(0))?;
        let mut secret = m.as_str();
        let mut range = (m.start(), m.end());
        match rule.check {
            Check::None => {}
            Check::Digit => {
                if !secret.bytes().any(|b| b.is_ascii_digit()) {
                    return None;
                }
            }
            Check::Assignment => {
                let quoted = secret.len() >= 2
                    && (secret.starts_with('"') && secret.ends_with('"')
                        || secret.starts_with('\'') && secret.ends_with('\''));
                if quoted {
                    secret = &secret[1..secret.len() - 1];
                    range = (range.0 + 1, range.1 - 1);
                } else if secret.contains(['(', ')', '[', ']', '{', '}', '"', '\'', ',', ';']) {
                    return None;
                }
                if !looks_secret_value(secret, self.min_len) {
                    return None;
                }
            }
        }
        if secret.is_empty() || self.allow.iter().any(|a| a == secret) {
            return None;
        }
        Some(range)
    }
}

/// Known key formats. A group `s` is the part replaced.
fn builtin_patterns() -> [(&'static str, Check); 12] {
    [
        // PEM private keys: the body, up to END (or the end of the text
        // when it was cut).
        (
            r"(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?P<s>.+?)(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\z)",
            Check::None,
        ),
        // OpenAI and Anthropic (`sk-ant-...`), not inside a longer name.
        (
            r"(?:^|[^A-Za-z0-9_-])(?P<s>sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})",
            Check::Digit,
        ),
        (
            r"\b(?P<s>(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16})\b",
            Check::None,
        ),
        (
            r#"(?i)aws_?secret_?access_?key["']?\s*[=:]\s*["']?(?P<s>[A-Za-z0-9/+=]{40})"#,
            Check::None,
        ),
        (
            r"\b(?P<s>(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36,255})\b",
            Check::None,
        ),
        (r"\b(?P<s>github_pat_[A-Za-z0-9_]{22,255})\b", Check::None),
        (r"\b(?P<s>xox[abprs]-[A-Za-z0-9-]{10,})", Check::None),
        (r"\b(?P<s>hf_[A-Za-z0-9]{30,})\b", Check::None),
        (r"\b(?P<s>AIza[0-9A-Za-z_-]{35})", Check::None),
        // JWTs: base64url JSON header and payload (`eyJ` = `{"`), signature.
        (
            r"\b(?P<s>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})",
            Check::None,
        ),
        (
            r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/-]{16,}=*)",
            Check::Digit,
        ),
        // Passwords in URLs: scheme://user:PASSWORD@host.
        (
            r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:(?P<s>[^/\s@]+)@",
            Check::None,
        ),
    ]
}

/// `NAME=VALUE`, `NAME: VALUE`, `"name": "value"` where NAME contains one
/// of `words`; the value (group `s`) is checked in code.
fn assignment_pattern(words: &[String]) -> String {
    format!(
        r#"(?:^|[^A-Za-z0-9_.-])["']?[A-Za-z0-9_.-]*(?i:{})[A-Za-z0-9_.-]*["']?[ \t]*(?:=|:=|:)[ \t]*(?P<s>"[^"\n]*"|'[^'\n]*'|[^\s"'#][^\s#]*)"#,
        words.join("|")
    )
}

/// A value that is a secret rather than code, prose or a setting: long
/// enough, no spaces or template markers, not a boolean/number, not only
/// letters and underscores (identifiers, words), not a dotted name, path or
/// URL.
fn looks_secret_value(v: &str, min_len: usize) -> bool {
    if v.len() < min_len || v.contains(char::is_whitespace) {
        return false;
    }
    if v.contains("${") || v.starts_with('$') || v.contains("%(") || v.starts_with('<') {
        return false;
    }
    if is_boolean_or_number(v) {
        return false;
    }
    if v.bytes()
        .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-')
    {
        return false;
    }
    let dotted = v.split('.').count() > 1
        && v.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-')
        });
    if dotted || v.starts_with('/') || v.starts_with("./") || v.contains("://") {
        return false;
    }
    true
}

/// Environment values that are settings, not secrets: too short, booleans,
/// numbers, single short words (`password`, `production`: redacting them
/// would wreck ordinary text), and paths that exist.
fn harmless_env_value(v: &str, min_len: usize) -> bool {
    let v = v.trim();
    v.len() < min_len
        || is_boolean_or_number(v)
        || (v.len() <= 12 && v.bytes().all(|b| b.is_ascii_lowercase()))
        || (v.starts_with('/') && Path::new(v).exists())
}

fn is_boolean_or_number(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "none"
    ) || v.parse::<f64>().is_ok()
}

fn is_name(s: &str) -> bool {
    let s = s.trim_matches(['"', '\'']);
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

fn unquote(v: &str) -> &str {
    let v = v.trim().trim_end_matches(',');
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// `s` and the forms a model might print it in to get it past a filter:
/// reversed, upper/lower case, hex, and base64 (standard and URL-safe) at
/// each of the three byte alignments it can have inside a longer encoded
/// stream (only the characters that depend on `s` alone are kept).
fn disguises(s: &str, min_len: usize) -> Vec<String> {
    let mut out = vec![
        s.to_string(),
        s.chars().rev().collect(),
        s.to_ascii_uppercase(),
        s.to_ascii_lowercase(),
        hex::encode(s),
        hex::encode_upper(s),
    ];
    let engines = [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = s.as_bytes();
    for engine in &engines {
        for k in 0..3usize {
            let mut buf = vec![0u8; k];
            buf.extend_from_slice(bytes);
            let enc = engine.encode(&buf);
            // Character i covers bits [6i, 6i+6); keep those inside s's bits.
            let first = (8 * k).div_ceil(6);
            let end = (8 * (k + bytes.len())) / 6;
            if end > first {
                out.push(enc[first..end].to_string());
            }
        }
    }
    out.retain(|f| f.len() >= min_len);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
