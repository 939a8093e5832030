//! Per-test results: which runner a test command uses, how to make it write
//! structured results to a harness-owned directory, how to read them back,
//! and the verdict of a gate run against the baseline run.
//!
//! The exit code alone is a weak verdict: code under test can exit 0 early,
//! skip tests, or make the runner collect nothing. So a structured runner's
//! run is VERIFIED only when, test by test, every test that failed at
//! baseline (or that the task names) passes, every test that ran at
//! baseline ran again, and nothing that passed fails now ([`judge`]).
//!
//! Reports are written by processes that run the patched code, so a
//! determined in-process cheat can still forge one; the cheat detectors
//! flag such code, and [`TestTable::anomalies`] records the inconsistencies
//! a forgery tends to leave (duplicate ids that disagree, status lines
//! outside a test binary's run, counts that do not add up).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Retryable;

/// Largest report file read (a larger one is refused, not truncated).
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// File names the instrumented runners write inside the report directory.
pub const PYTEST_REPORT: &str = "pytest.xml";
/// `node --test`'s JUnit report.
pub const NODE_REPORT: &str = "node.xml";
/// Jest's `--json` report.
pub const JEST_REPORT: &str = "jest.json";

/// The test runner behind a test command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    /// pytest (JUnit XML report).
    Pytest,
    /// `go test` (`-json` event stream on stdout).
    GoTest,
    /// `cargo test` (libtest's per-test lines on stdout).
    Cargo,
    /// `node --test` (JUnit reporter).
    NodeTest,
    /// Jest (`--json` report).
    Jest,
    /// Anything else: only the exit code counts.
    Shell,
}

impl Runner {
    /// True for runners whose results are collected test by test.
    pub fn is_structured(self) -> bool {
        self != Runner::Shell
    }
}

/// Outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    /// Ran and passed.
    Passed,
    /// Did not run: skipped, ignored, deselected, xfail, todo.
    Skipped,
    /// Ran and failed.
    Failed,
    /// Could not run or crashed (setup error, build failure, no result).
    Error,
}

impl TestStatus {
    fn word(self) -> &'static str {
        match self {
            TestStatus::Passed => "passed",
            TestStatus::Skipped => "skipped",
            TestStatus::Failed => "failed",
            TestStatus::Error => "errored",
        }
    }
}

/// The per-test results of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestTable {
    /// Which runner produced it.
    pub runner: Runner,
    /// Test id to status. Ids are stable across copies of the repo (no
    /// absolute paths): pytest node ids, `pkg::TestName/sub` for Go,
    /// `crate@src/lib.rs::mod::test` for cargo, `a > b` suite paths for
    /// node, `file::a > b` for jest.
    pub tests: BTreeMap<String, TestStatus>,
    /// Inconsistencies in the report (duplicates that disagree, status
    /// lines outside a run, counts that do not add up). A gate run with
    /// any is never verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<String>,
}

impl TestTable {
    /// An empty table for `runner`.
    pub fn new(runner: Runner) -> Self {
        Self {
            runner,
            tests: BTreeMap::new(),
            anomalies: vec![],
        }
    }

    /// Records a status; a duplicate id keeps the worse status and, when the
    /// two disagree, records an anomaly.
    pub fn record(&mut self, id: impl Into<String>, status: TestStatus) {
        let id = id.into();
        match self.tests.get_mut(&id) {
            Some(old) if *old != status => {
                self.anomalies.push(format!(
                    "duplicate test id `{id}` reported as {} and {}",
                    old.word(),
                    status.word()
                ));
                *old = (*old).max(status);
            }
            Some(_) => {}
            None => {
                self.tests.insert(id, status);
            }
        }
    }
}

/// Failure to read a report that exists.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The report could not be read.
    #[error("reading test report {path}: {source}")]
    Io {
        /// The report file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The report is not what the runner writes (truncated, forged, too big).
    #[error("test report {path} is malformed: {message} (the run cannot be verified)")]
    Malformed {
        /// The report file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Retryable for ResultsError {
    fn is_retryable(&self) -> bool {
        false
    }
}

// --- runner detection ------------------------------------------------------

/// Finds the runner behind `test_cmd`. `repo` is a PRISTINE copy (never the
/// agent's workspace): `npm test` is resolved through its `package.json`
/// and `make test` through its Makefile recipe (best effort).
pub fn detect_runner(test_cmd: &str, repo: &Path) -> Runner {
    detect_in(test_cmd, repo, 0)
}

const MAX_DETECT_DEPTH: usize = 4;

fn detect_in(cmd: &str, repo: &Path, depth: usize) -> Runner {
    if depth > MAX_DETECT_DEPTH {
        return Runner::Shell;
    }
    for (s, e) in segments(cmd) {
        let seg = &cmd[s..e];
        let r = detect_segment(seg, repo, depth);
        if r != Runner::Shell {
            return r;
        }
    }
    Runner::Shell
}

pub(crate) fn basename(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or(w)
}

/// Skips `VAR=x` assignments and wrappers (`env`, `exec`, `timeout 60`...).
pub(crate) fn command_words(words: &[String]) -> &[String] {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        if is_assignment(w) {
            i += 1;
            continue;
        }
        match basename(w) {
            "env" | "exec" | "command" | "time" | "nice" | "stdbuf" => {
                i += 1;
                while i < words.len() && (words[i].starts_with('-') || is_assignment(&words[i])) {
                    i += 1;
                }
            }
            "timeout" => {
                i += 1;
                while i < words.len() && words[i].starts_with('-') {
                    i += 1;
                }
                i += 1; // the duration
            }
            _ => break,
        }
    }
    &words[i.min(words.len())..]
}

fn is_assignment(w: &str) -> bool {
    w.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn detect_segment(seg: &str, repo: &Path, depth: usize) -> Runner {
    let words = words_loose(seg);
    let w = command_words(&words);
    let Some(first) = w.first() else {
        return Runner::Shell;
    };
    let prog = basename(first);
    let args = &w[1..];
    let arg = |i: usize| args.get(i).map(String::as_str);
    match prog {
        "pytest" | "py.test" => return Runner::Pytest,
        p if p.starts_with("python") => {
            if let Some(i) = args.iter().position(|a| a == "-m")
                && matches!(arg(i + 1), Some("pytest" | "py.test"))
            {
                return Runner::Pytest;
            }
            if args.iter().any(|a| a == "-mpytest") {
                return Runner::Pytest;
            }
        }
        "go" if arg(0) == Some("test") => return Runner::GoTest,
        "cargo" => {
            let sub = args
                .iter()
                .find(|a| !a.starts_with('+') && !a.starts_with('-'));
            if sub.map(String::as_str) == Some("test") {
                return Runner::Cargo;
            }
        }
        "node" | "nodejs" => {
            for a in args {
                if a == "--test" {
                    return Runner::NodeTest;
                }
                if !a.starts_with('-') {
                    break;
                }
            }
            if args.iter().any(|a| basename(a).starts_with("jest")) {
                return Runner::Jest;
            }
        }
        "jest" => return Runner::Jest,
        "npx" | "pnpx"
            if args
                .iter()
                .find(|a| !a.starts_with('-'))
                .is_some_and(|a| basename(a) == "jest") =>
        {
            return Runner::Jest;
        }
        "npm" | "yarn" | "pnpm" => {
            let script = match (arg(0), arg(1)) {
                (Some("test" | "t" | "tst"), _) => Some("test"),
                (Some("run" | "run-script"), Some(name)) => Some(name),
                (Some("jest"), _) if prog != "npm" => return Runner::Jest,
                _ => None,
            };
            if let Some(name) = script
                && let Some(body) = package_script(repo, name)
            {
                return detect_in(&body, repo, depth + 1);
            }
        }
        "make" | "gmake" => {
            let mut targets: Vec<&str> = args
                .iter()
                .filter(|a| !a.starts_with('-') && !a.contains('='))
                .map(String::as_str)
                .collect();
            if targets.is_empty() {
                targets.push("");
            }
            for t in targets {
                for line in make_recipe(repo, t) {
                    let r = detect_in(&line, repo, depth + 1);
                    if r != Runner::Shell {
                        return r;
                    }
                    let r = detect_loose(&line);
                    if r != Runner::Shell {
                        return r;
                    }
                }
            }
        }
        _ => {}
    }
    Runner::Shell
}

/// Recognises a runner in a line with variables (`$(PYTHON) -m pytest`).
fn detect_loose(line: &str) -> Runner {
    let has = |needle: &str| {
        line.match_indices(needle).any(|(i, _)| {
            let before = line[..i].chars().next_back();
            let after = line[i + needle.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
    };
    if has("-m pytest") || has("pytest") {
        Runner::Pytest
    } else if has("go test") {
        Runner::GoTest
    } else if has("cargo test") {
        Runner::Cargo
    } else if has("node --test") {
        Runner::NodeTest
    } else if has("jest") {
        Runner::Jest
    } else {
        Runner::Shell
    }
}

fn read_small(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(1 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

fn package_script(repo: &Path, name: &str) -> Option<String> {
    let text = read_small(&repo.join("package.json"))?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("scripts")?.get(name)?.as_str().map(str::to_string)
}

/// Recipe lines of `target` (`""`: the first target) in the repo's Makefile.
fn make_recipe(repo: &Path, target: &str) -> Vec<String> {
    let Some(text) = ["GNUmakefile", "makefile", "Makefile"]
        .iter()
        .find_map(|n| read_small(&repo.join(n)))
    else {
        return vec![];
    };
    let mut out = vec![];
    let mut in_rule = false;
    let mut seen_first = false;
    for line in text.lines() {
        if let Some(recipe) = line.strip_prefix('\t') {
            if in_rule {
                out.push(recipe.trim_start_matches(['@', '-', '+']).to_string());
            }
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        in_rule = false;
        let Some((names, _deps)) = line.split_once(':') else {
            continue;
        };
        if names.contains('=') || line.contains(":=") {
            continue;
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let is_special = names.iter().all(|n| n.starts_with('.'));
        if is_special {
            continue;
        }
        let wanted = if target.is_empty() {
            !seen_first
        } else {
            names.contains(&target)
        };
        seen_first = true;
        in_rule = wanted;
    }
    out
}

// --- a tiny shell word splitter ---------------------------------------------

/// Byte ranges of the simple commands in `cmd`, split at unquoted `&&`,
/// `||`, `;`, `|`, `&` and newlines.
pub(crate) fn segments(cmd: &str) -> Vec<(usize, usize)> {
    let b = cmd.as_bytes();
    let mut out = vec![];
    let (mut start, mut i) = (0, 0);
    let (mut sq, mut dq) = (false, false);
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' if !sq => {
                i += 2;
                continue;
            }
            b'\'' if !dq => sq = !sq,
            b'"' if !sq => dq = !dq,
            b';' | b'|' | b'&' | b'\n' if !sq && !dq => {
                // `2>&1` and `>&` are redirections, not separators.
                let redirect = c == b'&' && i > 0 && b[i - 1] == b'>';
                if !redirect {
                    out.push((start, i));
                    if i + 1 < b.len() && (b[i + 1] == b'&' || b[i + 1] == b'|') && c != b';' {
                        i += 1;
                    }
                    start = i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push((start, b.len()));
    out.into_iter()
        .filter(|(s, e)| !cmd[*s..*e].trim().is_empty())
        .collect()
}

/// Words of a simple command with quotes removed; expansions are kept
/// literally. Never fails (for detection).
fn words_loose(seg: &str) -> Vec<String> {
    words(seg).0
}

/// Words, and whether the segment is "plain": no expansions, globs or
/// redirections, so it can be rebuilt from its words.
pub(crate) fn words(seg: &str) -> (Vec<String>, bool) {
    let mut out = vec![];
    let mut cur = String::new();
    let mut have = false;
    let mut plain = true;
    let mut chars = seg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                have = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                have = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        '$' | '`' => {
                            plain = false;
                            cur.push(d);
                        }
                        d => cur.push(d),
                    }
                }
            }
            '\\' => {
                have = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                if matches!(
                    c,
                    '$' | '`' | '*' | '?' | '[' | '<' | '>' | '(' | ')' | '{' | '}' | '~' | '#'
                ) {
                    plain = false;
                }
                have = true;
                cur.push(c);
            }
        }
    }
    if have {
        out.push(cur);
    }
    (out, plain)
}

/// Quotes a word for `bash -c` when it needs it.
fn shell_quote(w: &str) -> Cow<'_, str> {
    let safe = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+/.,:@%".contains(c));
    if safe {
        Cow::Borrowed(w)
    } else {
        Cow::Owned(format!("'{}'", w.replace('\'', r"'\''")))
    }
}

// --- instrumentation ---------------------------------------------------------

/// A test command rewritten to write structured results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrumented {
    /// The command line to run.
    pub command: String,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// Makes `runner` write structured results into `report_dir` (the path the
/// gate sandbox's commands see, from `Sandbox::report_dir`):
/// - pytest: `PYTEST_ADDOPTS` with `--junitxml` (also through make/npm),
///   `junit_family=xunit1` because it records each test's file, which
///   rebuilds node ids (`tests/test_x.py::test_y`);
/// - go: `GOFLAGS=-json -count=1` (events on stdout, never cached results);
/// - cargo: `--no-fail-fast` and libtest's `--format=pretty` on simple
///   `cargo test` commands (per-test lines on stdout, even after `-q`);
/// - node: `NODE_OPTIONS` with a JUnit reporter to the report directory and
///   the spec reporter on stdout (also through `npm test`);
/// - jest: `--json --outputFile=` appended to the jest or `npm test` command.
pub fn instrument(runner: Runner, test_cmd: &str, report_dir: &str) -> Instrumented {
    let dir = report_dir.trim_end_matches('/');
    let mut env: Vec<(String, String)> = vec![("NO_COLOR".into(), "1".into())];
    let command = match runner {
        Runner::Pytest => {
            let xml = format!("{dir}/{PYTEST_REPORT}");
            env.push((
                "PYTEST_ADDOPTS".into(),
                format!(
                    "--junitxml={} -p no:cacheprovider -o junit_family=xunit1",
                    shell_quote(&xml)
                ),
            ));
            test_cmd.to_string()
        }
        Runner::GoTest => {
            env.push(("GOFLAGS".into(), "-json -count=1".into()));
            test_cmd.to_string()
        }
        Runner::Cargo => {
            env.push(("CARGO_TERM_COLOR".into(), "never".into()));
            rewrite(test_cmd, rewrite_cargo)
        }
        Runner::NodeTest => {
            let xml = format!("{dir}/{NODE_REPORT}");
            let q = if xml.contains([' ', '"', '\\']) {
                format!("\"{}\"", xml.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                xml
            };
            env.push(("FORCE_COLOR".into(), "0".into()));
            env.push((
                "NODE_OPTIONS".into(),
                format!(
                    "--test-reporter=junit --test-reporter-destination={q} --test-reporter=spec --test-reporter-destination=stdout"
                ),
            ));
            test_cmd.to_string()
        }
        Runner::Jest => {
            let json = format!("{dir}/{JEST_REPORT}");
            env.push(("FORCE_COLOR".into(), "0".into()));
            rewrite(test_cmd, |w, plain, seg| rewrite_jest(w, plain, seg, &json))
        }
        Runner::Shell => test_cmd.to_string(),
    };
    Instrumented { command, env }
}

/// Applies `f` to each simple command; `f` returns a replacement or `None`.
fn rewrite(cmd: &str, f: impl Fn(&[String], bool, &str) -> Option<String>) -> String {
    let mut out = String::with_capacity(cmd.len() + 64);
    let mut last = 0;
    for (s, e) in segments(cmd) {
        let seg = &cmd[s..e];
        let (ws, plain) = words(seg);
        if let Some(new) = f(&ws, plain, seg) {
            out.push_str(&cmd[last..s]);
            // Keep the segment's leading whitespace.
            let lead = seg.len() - seg.trim_start().len();
            out.push_str(&seg[..lead]);
            out.push_str(&new);
            let trail = seg.len() - seg.trim_end().len();
            out.push_str(&seg[seg.len() - trail..]);
            last = e;
        }
    }
    out.push_str(&cmd[last..]);
    out
}

fn rewrite_cargo(ws: &[String], plain: bool, seg: &str) -> Option<String> {
    let cw = command_words(ws);
    if cw.first().is_none_or(|w| basename(w) != "cargo") {
        return None;
    }
    let sub = cw[1..]
        .iter()
        .position(|a| !a.starts_with('+') && !a.starts_with('-'))?
        + 1;
    if cw[sub] != "test" {
        return None;
    }
    if plain {
        let prefix = &ws[..ws.len() - cw.len()];
        let (cargo_args, test_args) = match cw.iter().position(|a| a == "--") {
            Some(i) => (&cw[..i], &cw[i + 1..]),
            None => (cw, &[][..]),
        };
        let mut out: Vec<&str> = prefix.iter().map(String::as_str).collect();
        out.extend(
            cargo_args
                .iter()
                .map(String::as_str)
                .filter(|a| *a != "-q" && *a != "--quiet"),
        );
        if !cargo_args.iter().any(|a| a == "--no-fail-fast") {
            out.push("--no-fail-fast");
        }
        out.push("--");
        out.extend(
            test_args
                .iter()
                .map(String::as_str)
                .filter(|a| *a != "-q" && *a != "--quiet" && !a.starts_with("--format")),
        );
        out.push("--format=pretty");
        return Some(
            out.iter()
                .map(|w| shell_quote(w))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let seg = seg.trim();
    if ws.iter().any(|a| a == "--") {
        Some(format!("{seg} --format=pretty"))
    } else {
        Some(format!("{seg} --no-fail-fast -- --format=pretty"))
    }
}

fn rewrite_jest(ws: &[String], _plain: bool, seg: &str, json: &str) -> Option<String> {
    let cw = command_words(ws);
    let first = basename(cw.first()?);
    let args = &cw[1..];
    let flags = format!("--json --outputFile={}", shell_quote(json));
    let seg = seg.trim();
    let is_jest = first == "jest"
        || (matches!(first, "npx" | "pnpx")
            && args
                .iter()
                .find(|a| !a.starts_with('-'))
                .is_some_and(|a| basename(a) == "jest"))
        || (matches!(first, "node" | "nodejs")
            && args.iter().any(|a| basename(a).starts_with("jest")))
        || (matches!(first, "yarn" | "pnpm") && args.first().is_some_and(|a| a == "jest"));
    if is_jest {
        return Some(format!("{seg} {flags}"));
    }
    let npm_test = matches!(first, "npm" | "yarn" | "pnpm")
        && (matches!(args.first().map(String::as_str), Some("test" | "t" | "tst"))
            || (matches!(args.first().map(String::as_str), Some("run" | "run-script"))
                && args.get(1).is_some_and(|a| a == "test")));
    if npm_test {
        let sep = if first == "npm" && !args.iter().any(|a| a == "--") {
            " --"
        } else {
            ""
        };
        return Some(format!("{seg}{sep} {flags}"));
    }
    None
}

// --- collection ----------------------------------------------------------------

/// Reads the results of a run of `runner`: the report files in `report_dir`
/// (pytest, node, jest) or the run's `output` (go, cargo). `Ok(None)` when
/// the runner wrote nothing (a structured run without a report is never
/// verified); `Err` when a report exists but cannot be trusted.
pub fn collect(
    runner: Runner,
    report_dir: &Path,
    output: &str,
) -> Result<Option<TestTable>, ResultsError> {
    match runner {
        Runner::Pytest => {
            read_report(&report_dir.join(PYTEST_REPORT))?.map_or(Ok(None), |(p, text)| {
                parse_junit(Runner::Pytest, &text)
                    .map(Some)
                    .map_err(|m| malformed(&p, m))
            })
        }
        Runner::NodeTest => {
            read_report(&report_dir.join(NODE_REPORT))?.map_or(Ok(None), |(p, text)| {
                parse_junit(Runner::NodeTest, &text)
                    .map(Some)
                    .map_err(|m| malformed(&p, m))
            })
        }
        Runner::Jest => read_report(&report_dir.join(JEST_REPORT))?
            .map_or(Ok(None), |(p, text)| {
                parse_jest(&text).map(Some).map_err(|m| malformed(&p, m))
            }),
        Runner::GoTest => Ok(parse_go(output)),
        Runner::Cargo => Ok(parse_cargo(output)),
        Runner::Shell => Ok(None),
    }
}

fn malformed(path: &Path, message: String) -> ResultsError {
    ResultsError::Malformed {
        path: path.to_path_buf(),
        message,
    }
}

fn read_report(path: &Path) -> Result<Option<(PathBuf, String)>, ResultsError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ResultsError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !meta.is_file() {
        return Err(malformed(path, "not a regular file".into()));
    }
    if meta.len() > MAX_REPORT_BYTES {
        return Err(malformed(
            path,
            format!(
                "{} bytes, more than the {MAX_REPORT_BYTES}-byte limit",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| malformed(path, "not UTF-8".into()))?;
    Ok(Some((path.to_path_buf(), text)))
}

/// One `<testcase>` of a JUnit report.
#[derive(Debug, Default)]
struct Case {
    suites: Vec<String>,
    classname: String,
    name: String,
    file: Option<String>,
    status: Option<TestStatus>,
}

/// Parses a JUnit XML report (pytest's or node's) into a table.
fn parse_junit(runner: Runner, xml: &str) -> Result<TestTable, String> {
    use quick_xml::events::{BytesStart, Event};

    fn attrs(e: &BytesStart<'_>) -> Result<BTreeMap<String, String>, String> {
        let mut m = BTreeMap::new();
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let k: &str = a.key.as_ref();
            let k = k.to_owned();
            let v = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?;
            m.insert(k, v.into_owned());
        }
        Ok(m)
    }

    let mut reader = quick_xml::Reader::from_str(xml);
    let mut table = TestTable::new(runner);
    let mut suites: Vec<String> = vec![];
    let mut case: Option<Case> = None;
    let mut saw_root = false;
    let mut depth_in_case = 0usize;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let tag = e.local_name();
                let tag: &str = tag.as_ref();
                match tag {
                    "testsuites" => saw_root = true,
                    "testsuite" => {
                        saw_root = true;
                        if !empty {
                            suites.push(attrs(e)?.remove("name").unwrap_or_default());
                        }
                    }
                    "testcase" => {
                        if case.is_some() {
                            return Err("a <testcase> inside a <testcase>".into());
                        }
                        let mut a = attrs(e)?;
                        let c = Case {
                            suites: suites.clone(),
                            classname: a.remove("classname").unwrap_or_default(),
                            name: a.remove("name").unwrap_or_default(),
                            file: a.remove("file"),
                            status: None,
                        };
                        if empty {
                            finish_case(&mut table, c);
                        } else {
                            case = Some(c);
                            depth_in_case = 0;
                        }
                    }
                    other => {
                        if let Some(c) = case.as_mut() {
                            if depth_in_case == 0 {
                                let s = match other {
                                    "failure" => Some(TestStatus::Failed),
                                    "error" => Some(TestStatus::Error),
                                    "skipped" => Some(TestStatus::Skipped),
                                    _ => None,
                                };
                                if let Some(s) = s {
                                    c.status = Some(c.status.map_or(s, |o| o.max(s)));
                                }
                            }
                            if !empty {
                                depth_in_case += 1;
                            }
                        }
                    }
                }
            }
            Event::End(ref e) => match AsRef::<str>::as_ref(&e.local_name()) {
                "testsuite" => {
                    suites.pop();
                }
                "testcase" if depth_in_case == 0 => {
                    if let Some(c) = case.take() {
                        finish_case(&mut table, c);
                    }
                }
                _ => {
                    depth_in_case = depth_in_case.saturating_sub(1);
                }
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if case.is_some() {
        return Err("the report ends inside a <testcase>".into());
    }
    if !saw_root {
        return Err("no <testsuites> or <testsuite> element".into());
    }
    Ok(table)
}

fn finish_case(table: &mut TestTable, c: Case) {
    let status = c.status.unwrap_or(TestStatus::Passed);
    let id = match table.runner {
        Runner::Pytest => pytest_id(&c),
        _ => {
            let mut parts: Vec<&str> = c.suites.iter().map(String::as_str).collect();
            parts.push(&c.name);
            parts.retain(|p| !p.is_empty());
            parts.join(" > ")
        }
    };
    table.record(id, status);
}

/// Rebuilds a pytest node id from an xunit1 test case: `file::Class::name`.
fn pytest_id(c: &Case) -> String {
    let Some(file) = c.file.as_deref().filter(|f| !f.is_empty()) else {
        return if c.classname.is_empty() {
            c.name.clone()
        } else {
            format!("{}::{}", c.classname, c.name)
        };
    };
    let module = file
        .strip_suffix(".py")
        .unwrap_or(file)
        .replace(['/', '\\'], ".");
    let rest = c
        .classname
        .strip_prefix(module.as_str())
        .map(|r| r.trim_start_matches('.'));
    match rest {
        Some("") => format!("{file}::{}", c.name),
        Some(classes) => format!("{file}::{}::{}", classes.replace('.', "::"), c.name),
        None if c.classname.is_empty() => format!("{file}::{}", c.name),
        None => format!("{file}::{}::{}", c.classname, c.name),
    }
}

#[derive(Deserialize)]
struct GoEvent {
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "Package", default)]
    package: String,
    #[serde(rename = "Test", default)]
    test: Option<String>,
}

/// `go test -json` events (plus the plain `FAIL pkg [build failed]` lines
/// go 1.19 prints outside the stream). Ids: `pkg::TestName/sub`, and `pkg`
/// for the package as a whole.
fn parse_go(output: &str) -> Option<TestTable> {
    let mut table = TestTable::new(Runner::GoTest);
    let mut started: BTreeMap<String, bool> = BTreeMap::new();
    let mut any = false;
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('{') {
            let Ok(ev) = serde_json::from_str::<GoEvent>(line) else {
                continue;
            };
            if ev.package.is_empty() {
                continue;
            }
            let id = match &ev.test {
                Some(t) => format!("{}::{t}", ev.package),
                None => ev.package.clone(),
            };
            let status = match ev.action.as_str() {
                "run" => {
                    any = true;
                    started.entry(id).or_insert(false);
                    continue;
                }
                "pass" => TestStatus::Passed,
                "fail" if ev.test.is_none() => {
                    // A package failing with no failing test: a crash,
                    // TestMain, or a timeout. Its tests' own events decide
                    // theirs; the package entry records the failure.
                    TestStatus::Failed
                }
                "fail" => TestStatus::Failed,
                "skip" => TestStatus::Skipped,
                _ => continue,
            };
            any = true;
            started.insert(id.clone(), true);
            table.record(id, status);
        } else if let Some(pkg) = line.strip_prefix("FAIL\t").and_then(|rest| {
            rest.strip_suffix(" [build failed]")
                .or_else(|| rest.strip_suffix(" [setup failed]"))
        }) {
            any = true;
            table.record(pkg.trim(), TestStatus::Error);
        }
    }
    for (id, done) in started {
        if !done {
            table.record(id, TestStatus::Error);
        }
    }
    any.then_some(table)
}

/// libtest's pretty lines from `cargo test`, qualified by the test binary
/// (`crate@src/lib.rs::tests::adds`, `crate@doc::src/lib.rs - f (line 3)`).
/// Each binary's lines are checked against its `running N tests` and
/// `test result:` counts; status lines outside a binary's run are ignored
/// and recorded as anomalies.
fn parse_cargo(output: &str) -> Option<TestTable> {
    struct Block {
        label: Option<String>,
        expected: usize,
        seen: [usize; 3],
    }
    let mut table = TestTable::new(Runner::Cargo);
    let mut label: Option<String> = None;
    let mut block: Option<Block> = None;
    let mut any = false;
    let close_crashed = |table: &mut TestTable, b: &Block| {
        table.anomalies.push(format!(
            "test binary {} ended without a summary (it crashed or exited early)",
            b.label.as_deref().unwrap_or("(unnamed)")
        ));
    };
    for raw in output.lines() {
        let line = raw.trim_end_matches('\r');
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("Running ") {
            if let Some(b) = block.take() {
                close_crashed(&mut table, &b);
            }
            label = Some(cargo_label(rest));
        } else if let Some(rest) = t.strip_prefix("Doc-tests ") {
            if let Some(b) = block.take() {
                close_crashed(&mut table, &b);
            }
            label = Some(format!("{}@doc", rest.trim()));
        } else if let Some(rest) = line.strip_prefix("running ") {
            let Some(n) = rest
                .strip_suffix(" tests")
                .or_else(|| rest.strip_suffix(" test"))
                .and_then(|n| n.trim().parse::<usize>().ok())
            else {
                continue;
            };
            if let Some(b) = block.take() {
                close_crashed(&mut table, &b);
            }
            any = true;
            block = Some(Block {
                label: label.take(),
                expected: n,
                seen: [0; 3],
            });
        } else if let Some(rest) = line.strip_prefix("test result: ") {
            let Some(b) = block.take() else {
                table.anomalies.push(format!(
                    "`test result:` line outside a test binary's run: {line}"
                ));
                continue;
            };
            let counts = summary_counts(rest);
            let seen_total: usize = b.seen.iter().sum();
            if counts != Some(b.seen) || seen_total != b.expected {
                table.anomalies.push(format!(
                    "test binary {}: {} status lines for `running {} tests` and `test result: {}`",
                    b.label.as_deref().unwrap_or("(unnamed)"),
                    seen_total,
                    b.expected,
                    rest.trim()
                ));
            }
        } else if let Some(rest) = line.strip_prefix("test ") {
            let Some(i) = rest.rfind(" ... ") else {
                continue;
            };
            let (name, word) = (&rest[..i], rest[i + 5..].trim());
            let status = if word == "ok" {
                TestStatus::Passed
            } else if word == "FAILED" {
                TestStatus::Failed
            } else if word == "ignored" || word.starts_with("ignored, ") {
                TestStatus::Skipped
            } else {
                continue;
            };
            let Some(b) = block.as_mut() else {
                table.anomalies.push(format!(
                    "test status line outside a test binary's run: {line}"
                ));
                continue;
            };
            b.seen[match status {
                TestStatus::Passed => 0,
                TestStatus::Failed => 1,
                _ => 2,
            }] += 1;
            let id = match &b.label {
                Some(l) => format!("{l}::{name}"),
                None => name.to_string(),
            };
            table.record(id, status);
        }
    }
    if let Some(b) = block.take() {
        close_crashed(&mut table, &b);
    }
    any.then_some(table)
}

/// `unittests src/lib.rs (target/debug/deps/ct-0123abcd)` -> `ct@src/lib.rs`.
fn cargo_label(rest: &str) -> String {
    let rest = rest.trim();
    let rest = rest.strip_prefix("unittests ").unwrap_or(rest);
    let (src, bin) = match rest.rsplit_once(" (") {
        Some((src, bin)) => (src.trim(), bin.trim_end_matches(')')),
        None => ("", rest),
    };
    let bin = basename(bin);
    let krate = match bin.rsplit_once('-') {
        Some((k, h)) if !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()) => k,
        _ => bin,
    };
    if src.is_empty() {
        krate.to_string()
    } else {
        format!("{krate}@{src}")
    }
}

/// `ok. 1 passed; 1 failed; 2 ignored; 0 measured; ...` -> [passed, failed, ignored].
fn summary_counts(rest: &str) -> Option<[usize; 3]> {
    let (_, counts) = rest.split_once(". ")?;
    let mut out = [None; 3];
    for part in counts.split(';') {
        let mut it = part.split_whitespace();
        let (Some(n), Some(what)) = (it.next(), it.next()) else {
            continue;
        };
        let slot = match what {
            "passed" => 0,
            "failed" => 1,
            "ignored" => 2,
            _ => continue,
        };
        out[slot] = n.parse::<usize>().ok();
    }
    Some([out[0]?, out[1]?, out[2]?])
}

#[derive(Deserialize)]
struct JestReport {
    #[serde(rename = "testResults")]
    test_results: Vec<JestFile>,
}

#[derive(Deserialize)]
struct JestFile {
    name: String,
    #[serde(default)]
    status: String,
    #[serde(rename = "assertionResults", default)]
    assertions: Vec<JestAssertion>,
}

#[derive(Deserialize)]
struct JestAssertion {
    #[serde(rename = "ancestorTitles", default)]
    ancestors: Vec<String>,
    title: String,
    status: String,
}

/// Jest's `--json` report. Ids: `file::a > b`, `file` relative to the
/// deepest directory holding every test file (absolute paths differ between
/// the baseline and the gate copy); a file that failed to run is `file`.
fn parse_jest(text: &str) -> Result<TestTable, String> {
    let report: JestReport = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut table = TestTable::new(Runner::Jest);
    let dirs: Vec<&str> = report
        .test_results
        .iter()
        .map(|f| f.name.rsplit_once('/').map_or("", |(d, _)| d))
        .collect();
    let common = common_dir(&dirs);
    for f in &report.test_results {
        let rel = f
            .name
            .strip_prefix(common)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(&f.name);
        if f.assertions.is_empty() {
            let st = if f.status == "passed" {
                TestStatus::Passed
            } else {
                TestStatus::Error
            };
            table.record(rel, st);
            continue;
        }
        if f.status == "failed" && f.assertions.iter().all(|a| a.status != "failed") {
            // The file failed outside any test (a hook, a crash).
            table.record(rel, TestStatus::Error);
        }
        for a in &f.assertions {
            let mut parts: Vec<&str> = a.ancestors.iter().map(String::as_str).collect();
            parts.push(&a.title);
            let id = format!("{rel}::{}", parts.join(" > "));
            let st = match a.status.as_str() {
                "passed" => TestStatus::Passed,
                "failed" => TestStatus::Failed,
                "pending" | "skipped" | "todo" | "disabled" => TestStatus::Skipped,
                _ => TestStatus::Error,
            };
            table.record(id, st);
        }
    }
    Ok(table)
}

fn common_dir<'a>(dirs: &[&'a str]) -> &'a str {
    let Some(first) = dirs.first() else {
        return "";
    };
    let mut common: &str = first;
    for d in &dirs[1..] {
        while !(d == &common || d.starts_with(&format!("{common}/")) || common.is_empty()) {
            common = common.rsplit_once('/').map_or("", |(p, _)| p);
        }
    }
    common
}

// --- the verdict ---------------------------------------------------------------

/// Counts behind a [`Judgement`], for trajectories and reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeSummary {
    /// The runner judged.
    pub runner: Option<Runner>,
    /// Tests in the gate run's report.
    pub tests_at_gate: usize,
    /// Targets the task named.
    pub targets_total: usize,
    /// Targets that pass at the gate.
    pub targets_passed: usize,
    /// Tests that failed (or errored) at baseline.
    pub baseline_failed: usize,
    /// Of those, how many pass now.
    pub baseline_fixed: usize,
    /// Tests that passed at baseline and pass now.
    pub baseline_kept: usize,
    /// Tests that ran at baseline and did not run now (missing or skipped),
    /// plus targets absent from the report.
    pub missing: usize,
    /// Tests that passed at baseline and fail now.
    pub regressions: usize,
    /// Tests absent at baseline that fail now.
    pub new_failures: usize,
}

/// The gate's verdict on one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    /// True only when every rule holds.
    pub verified: bool,
    /// Why not (empty when verified); each names a test or a rule.
    pub reasons: Vec<String>,
    /// The counts.
    pub summary: JudgeSummary,
}

/// Most reasons listed one by one; the rest are counted.
const MAX_REASONS: usize = 20;

/// True when report id `id` is the target `target`: equal, or `target` is
/// its trailing `::`-part or `/`-part (`tests::adds` names
/// `crate@src/lib.rs::tests::adds`; `TestUndo` names `pkg::TestUndo`).
pub fn id_matches(id: &str, target: &str) -> bool {
    id == target
        || id
            .strip_suffix(target)
            .is_some_and(|head| head.ends_with("::") || head.ends_with(" > "))
}

/// The verdict (see the module docs). `baseline` is the run before the
/// patch, `gate` the run on the fresh patched copy; `targets` the tests the
/// task names (`FAIL_TO_PASS`-style ids, or their trailing parts).
pub fn judge(
    exit_ok: bool,
    runner: Runner,
    baseline: Option<&TestTable>,
    gate: Option<&TestTable>,
    targets: &[String],
) -> Judgement {
    let mut reasons: Vec<String> = vec![];
    let mut summary = JudgeSummary {
        runner: Some(runner),
        targets_total: targets.len(),
        ..Default::default()
    };
    if !exit_ok {
        reasons.push("the test command did not exit 0".into());
    }
    if !runner.is_structured() {
        return Judgement {
            verified: reasons.is_empty(),
            reasons,
            summary,
        };
    }
    let Some(gate) = gate else {
        reasons.push(format!(
            "the {runner:?} runner wrote no per-test report, so no test can be shown to pass"
        ));
        return Judgement {
            verified: false,
            reasons,
            summary,
        };
    };
    summary.tests_at_gate = gate.tests.len();
    let mut detail: Vec<String> = vec![];
    if gate.tests.is_empty() {
        reasons.push("the report lists no tests".into());
    }
    for a in &gate.anomalies {
        detail.push(format!("report anomaly: {a}"));
    }
    let status_now = |id: &str| gate.tests.get(id).copied();
    let describe = |s: Option<TestStatus>| s.map_or("missing from the report", TestStatus::word);
    if let Some(base) = baseline {
        for (id, before) in &base.tests {
            let now = status_now(id);
            match before {
                TestStatus::Failed | TestStatus::Error => {
                    summary.baseline_failed += 1;
                    if now == Some(TestStatus::Passed) {
                        summary.baseline_fixed += 1;
                    } else {
                        if !matches!(now, Some(TestStatus::Failed | TestStatus::Error)) {
                            summary.missing += 1;
                        }
                        detail.push(format!(
                            "`{id}` {} at baseline and is {} now",
                            before.word(),
                            describe(now)
                        ));
                    }
                }
                TestStatus::Passed => match now {
                    Some(TestStatus::Passed) => summary.baseline_kept += 1,
                    Some(TestStatus::Failed | TestStatus::Error) => {
                        summary.regressions += 1;
                        detail.push(format!(
                            "`{id}` passed at baseline and {} now",
                            describe(now)
                        ));
                    }
                    Some(TestStatus::Skipped) | None => {
                        summary.missing += 1;
                        detail.push(format!(
                            "`{id}` ran at baseline and is {} now",
                            describe(now)
                        ));
                    }
                },
                TestStatus::Skipped => {}
            }
        }
    }
    for (id, now) in &gate.tests {
        let known = baseline.is_some_and(|b| b.tests.contains_key(id));
        if !known && matches!(now, TestStatus::Failed | TestStatus::Error) {
            summary.new_failures += 1;
            detail.push(format!(
                "`{id}` {} (not in the baseline report)",
                now.word()
            ));
        }
    }
    for t in targets {
        let hits: Vec<(&String, &TestStatus)> = gate
            .tests
            .iter()
            .filter(|(id, _)| id_matches(id, t))
            .collect();
        if hits.is_empty() {
            summary.missing += 1;
            detail.push(format!("target `{t}` is not in the report"));
        } else if let Some((id, s)) = hits.iter().find(|(_, s)| **s != TestStatus::Passed) {
            detail.push(format!("target `{t}`: `{id}` {}", s.word()));
        } else {
            summary.targets_passed += 1;
        }
    }
    let extra = detail.len().saturating_sub(MAX_REASONS);
    reasons.extend(detail.into_iter().take(MAX_REASONS));
    if extra > 0 {
        reasons.push(format!("... and {extra} more"));
    }
    Judgement {
        verified: reasons.is_empty(),
        reasons,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TestStatus::*;
    use std::process::Command;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gate_results")
    }

    fn read(rel: &str) -> String {
        std::fs::read_to_string(fixtures().join(rel)).unwrap()
    }

    fn table(runner: Runner, rows: &[(&str, TestStatus)]) -> TestTable {
        let mut t = TestTable::new(runner);
        for (id, s) in rows {
            t.record(*id, *s);
        }
        t
    }

    fn expected(runner: Runner) -> TestTable {
        let rows: &[(&str, TestStatus)] = match runner {
            Runner::Pytest => &[
                ("tests/test_calc.py::test_add", Passed),
                ("tests/test_calc.py::test_breaks", Failed),
                ("tests/test_calc.py::test_skipped", Skipped),
                ("tests/test_calc.py::test_xfail", Skipped),
                ("tests/test_calc.py::test_param[1-2]", Passed),
                ("tests/test_calc.py::test_param[x y-z]", Passed),
                ("tests/test_calc.py::TestGroup::test_in_class", Passed),
                ("tests/test_calc.py::test_error", Error),
            ],
            Runner::GoTest => &[
                ("example.com/gt/calc::TestAdd", Passed),
                ("example.com/gt/calc::TestBreaks", Failed),
                ("example.com/gt/calc::TestSkip", Skipped),
                ("example.com/gt/calc::TestTable", Failed),
                ("example.com/gt/calc::TestTable/one_case", Passed),
                ("example.com/gt/calc::TestTable/two", Failed),
                ("example.com/gt/calc", Failed),
                ("example.com/gt/empty", Skipped),
                ("example.com/gt/broken", Error),
            ],
            Runner::Cargo => &[
                ("ct@src/lib.rs::tests::adds", Passed),
                ("ct@src/lib.rs::tests::breaks", Failed),
                ("ct@src/lib.rs::tests::slow", Skipped),
                ("ct@src/lib.rs::tests::net", Skipped),
                ("it@tests/it.rs::adds", Passed),
                ("ct@doc::src/lib.rs - add (line 3)", Passed),
            ],
            Runner::NodeTest => &[
                ("math > adds", Passed),
                ("math > breaks", Failed),
                ("works", Passed),
                ("skipped", Skipped),
                ("todo one", Skipped),
                ("outer > inner", Passed),
            ],
            Runner::Jest => &[
                ("sum.test.js::sum > adds", Passed),
                ("sum.test.js::sum > breaks", Failed),
                ("sum.test.js::sum > skipped one", Skipped),
                ("sum.test.js::sum > later", Skipped),
                ("sum.test.js::top level", Passed),
            ],
            Runner::Shell => &[],
        };
        table(runner, rows)
    }

    /// Copies a captured report into a fresh report dir.
    fn report_dir_with(file: &str, from: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(file), read(from)).unwrap();
        d
    }

    // --- parsers on captured real output --------------------------------

    #[test]
    fn pytest_junit_capture() {
        let d = report_dir_with(PYTEST_REPORT, "pytest/pytest.xml");
        let got = collect(Runner::Pytest, d.path(), "").unwrap().unwrap();
        assert_eq!(got, expected(Runner::Pytest));
    }

    #[test]
    fn go_json_capture() {
        let got = collect(
            Runner::GoTest,
            Path::new("/nonexistent"),
            &read("go/output.txt"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(got, expected(Runner::GoTest));
    }

    #[test]
    fn cargo_pretty_capture() {
        let got = collect(
            Runner::Cargo,
            Path::new("/nonexistent"),
            &read("cargo/output.txt"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(got, expected(Runner::Cargo));
    }

    #[test]
    fn node_junit_capture() {
        let d = report_dir_with(NODE_REPORT, "node/node.xml");
        let got = collect(Runner::NodeTest, d.path(), "").unwrap().unwrap();
        assert_eq!(got, expected(Runner::NodeTest));
    }

    #[test]
    fn jest_json_capture() {
        let d = report_dir_with(JEST_REPORT, "jest/jest.json");
        let got = collect(Runner::Jest, d.path(), "").unwrap().unwrap();
        assert_eq!(got, expected(Runner::Jest));
    }

    #[test]
    fn no_report_is_none_and_bad_reports_are_errors() {
        let empty = tempfile::tempdir().unwrap();
        for r in [Runner::Pytest, Runner::NodeTest, Runner::Jest] {
            assert_eq!(collect(r, empty.path(), "").unwrap(), None, "{r:?}");
        }
        assert_eq!(
            collect(Runner::GoTest, empty.path(), "no json here").unwrap(),
            None
        );
        assert_eq!(
            collect(Runner::Cargo, empty.path(), "error[E0308]").unwrap(),
            None
        );
        assert_eq!(
            collect(Runner::Shell, empty.path(), "anything").unwrap(),
            None
        );
        // Truncated XML (a runner killed mid-write) and junk are refused.
        let xml = read("pytest/pytest.xml");
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(PYTEST_REPORT), &xml[..xml.len() / 2]).unwrap();
        assert!(matches!(
            collect(Runner::Pytest, d.path(), ""),
            Err(ResultsError::Malformed { .. })
        ));
        std::fs::write(d.path().join(PYTEST_REPORT), "<html></html>").unwrap();
        assert!(collect(Runner::Pytest, d.path(), "").is_err());
        std::fs::write(d.path().join(JEST_REPORT), "{}").unwrap();
        assert!(collect(Runner::Jest, d.path(), "").is_err());
        // A report that is a symlink (to a file the patch controls) is refused.
        std::fs::remove_file(d.path().join(PYTEST_REPORT)).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join(PYTEST_REPORT)).unwrap();
        assert!(collect(Runner::Pytest, d.path(), "").is_err());
    }

    /// ATTACK: a forged report lists a test twice with different statuses,
    /// or prints pass lines after libtest's summary. HONEST CONTROL: the
    /// captured real reports have no anomalies (asserted above by equality).
    #[test]
    fn forged_duplicates_and_stray_lines_are_anomalies() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(PYTEST_REPORT),
            r#"<testsuites><testsuite name="pytest">
<testcase classname="t" name="a" file="t.py"><failure message="x"/></testcase>
<testcase classname="t" name="a" file="t.py"/>
</testsuite></testsuites>"#,
        )
        .unwrap();
        let t = collect(Runner::Pytest, d.path(), "").unwrap().unwrap();
        assert_eq!(t.tests["t.py::a"], Failed, "the worse status is kept");
        assert_eq!(t.anomalies.len(), 1);

        let forged = format!(
            "{}\ntest tests::breaks ... ok\ntest result: ok. 9 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
            read("cargo/output.txt")
        );
        let t = parse_cargo(&forged).unwrap();
        assert_eq!(t.tests["ct@src/lib.rs::tests::breaks"], Failed);
        assert_eq!(t.anomalies.len(), 2, "{:?}", t.anomalies);

        // A binary whose counts do not add up (an extra forged line inside).
        let inside = "running 1 test\ntest a ... ok\ntest b ... ok\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(parse_cargo(inside).unwrap().anomalies.len(), 1);
        // A binary that crashed before its summary.
        let crashed = "running 2 tests\ntest a ... ok\n";
        assert_eq!(parse_cargo(crashed).unwrap().anomalies.len(), 1);
        // Go: a test that started and never finished is an error.
        let go = r#"{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}"#;
        let t = parse_go(go).unwrap();
        assert_eq!(t.tests["p::TestA"], Error);
    }

    // --- runner detection and instrumentation ------------------------------

    #[test]
    fn detects_runners() {
        let repo = tempfile::tempdir().unwrap();
        let r = repo.path();
        std::fs::write(
            r.join("package.json"),
            r#"{"scripts":{"test":"node --test test/","unit":"jest --ci"}}"#,
        )
        .unwrap();
        std::fs::write(
            r.join("Makefile"),
            "PY ?= python3\n.PHONY: test\nall: build\nbuild:\n\techo build\ntest: build\n\t@$(PY) -m pytest -q tests\n",
        )
        .unwrap();
        let cases: &[(&str, Runner)] = &[
            ("python -m pytest -q", Runner::Pytest),
            ("python3.11 -m pytest tests/x.py", Runner::Pytest),
            ("pytest tests/x.py -k foo", Runner::Pytest),
            ("cd sub && PYTHONPATH=. timeout 60 pytest", Runner::Pytest),
            ("go test ./...", Runner::GoTest),
            ("go vet ./... && go test -race ./...", Runner::GoTest),
            ("cargo test", Runner::Cargo),
            ("cargo +stable test -q --all", Runner::Cargo),
            ("node --test", Runner::NodeTest),
            (
                "node --experimental-vm-modules --test test/",
                Runner::NodeTest,
            ),
            ("npx jest --ci", Runner::Jest),
            ("npm test", Runner::NodeTest),
            ("npm run unit", Runner::Jest),
            ("make test", Runner::Pytest),
            ("make", Runner::Shell),
            ("grep -q foo config.yaml", Runner::Shell),
            ("python -m unittest", Runner::Shell),
            ("cargo build", Runner::Shell),
            ("node script.js --test", Runner::Shell),
            ("echo 'pytest'", Runner::Shell),
        ];
        for (cmd, want) in cases {
            assert_eq!(detect_runner(cmd, r), *want, "{cmd}");
        }
        // Without package.json, `npm test` is unknown.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(detect_runner("npm test", empty.path()), Runner::Shell);
        // A script that calls itself does not loop.
        std::fs::write(r.join("package.json"), r#"{"scripts":{"test":"npm test"}}"#).unwrap();
        assert_eq!(detect_runner("npm test", r), Runner::Shell);
    }

    #[test]
    fn instrumentation_commands() {
        let i = instrument(Runner::Cargo, "cargo test -q", "/r");
        assert_eq!(i.command, "cargo test --no-fail-fast -- --format=pretty");
        let i = instrument(
            Runner::Cargo,
            "cd x && cargo test --lib -- --quiet tests::a",
            "/r",
        );
        assert_eq!(
            i.command,
            "cd x && cargo test --lib --no-fail-fast -- tests::a --format=pretty"
        );
        let i = instrument(Runner::Cargo, "cargo test 2>&1 | tee log", "/r");
        assert_eq!(
            i.command,
            "cargo test 2>&1 --no-fail-fast -- --format=pretty | tee log"
        );
        let i = instrument(Runner::Jest, "npm test", "/r");
        assert_eq!(i.command, "npm test -- --json --outputFile=/r/jest.json");
        let i = instrument(Runner::Jest, "npx jest --ci", "/r d");
        assert_eq!(
            i.command,
            "npx jest --ci --json --outputFile='/r d/jest.json'"
        );
        let i = instrument(Runner::Pytest, "make test", "/r d/");
        assert_eq!(i.command, "make test");
        let addopts = &i.env.iter().find(|(k, _)| k == "PYTEST_ADDOPTS").unwrap().1;
        assert!(
            addopts.starts_with("--junitxml='/r d/pytest.xml' "),
            "{addopts}"
        );
        let i = instrument(Runner::GoTest, "go test ./...", "/r");
        assert!(i.env.contains(&("GOFLAGS".into(), "-json -count=1".into())));
        assert_eq!(
            instrument(Runner::Shell, "grep -q x y", "/r").command,
            "grep -q x y"
        );
    }

    fn have(tool: &str, arg: &str) -> bool {
        Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Runs the instrumented command on a copy of the fixture project with
    /// the REAL runner and checks the collected table.
    fn real_run(runner: Runner, project: &str, cmd: &str, extra_env: &[(&str, String)]) {
        let work = tempfile::tempdir().unwrap();
        let repo = work.path().join("repo");
        let report = work.path().join("report");
        std::fs::create_dir_all(&report).unwrap();
        let src = fixtures().join(project).join("project");
        let ok = Command::new("cp")
            .arg("-r")
            .arg(&src)
            .arg(&repo)
            .status()
            .unwrap();
        assert!(ok.success());
        assert_eq!(detect_runner(cmd, &repo), runner, "{cmd}");
        let inst = instrument(runner, cmd, report.to_str().unwrap());
        // One pipe for stdout and stderr, as the sandboxes capture them
        // (cargo's `Running` lines are on stderr, libtest's on stdout).
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("exec 2>&1\n{}", inst.command))
            .envs(inst.env.iter().map(|(k, v)| (k, v)))
            .envs(extra_env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_BACKTRACE")
            .current_dir(&repo)
            .output()
            .unwrap();
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "the fixture has failing tests");
        let got = collect(runner, &report, &output)
            .unwrap()
            .unwrap_or_else(|| panic!("{runner:?} wrote no report; output:\n{output}"));
        assert_eq!(got, expected(runner), "output:\n{output}");
    }

    #[test]
    fn real_pytest() {
        if !Command::new("python3")
            .args(["-m", "pytest", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            eprintln!("SKIPPED real_pytest: python3 -m pytest is not available");
            return;
        }
        real_run(Runner::Pytest, "pytest", "python3 -m pytest -q", &[]);
    }

    #[test]
    fn real_go() {
        if !have("go", "version") {
            eprintln!("SKIPPED real_go: go is not installed");
            return;
        }
        let cache = tempfile::tempdir().unwrap();
        let env = [
            ("GOCACHE", cache.path().display().to_string()),
            ("GOPROXY", "off".into()),
        ];
        real_run(Runner::GoTest, "go", "go test ./...", &env);
    }

    #[test]
    fn real_cargo() {
        if !have("cargo", "--version") {
            eprintln!("SKIPPED real_cargo: cargo is not installed");
            return;
        }
        let target = tempfile::tempdir().unwrap();
        let env = [("CARGO_TARGET_DIR", target.path().display().to_string())];
        // `-q` would print dots; the instrumentation restores per-test lines.
        real_run(Runner::Cargo, "cargo", "cargo test -q", &env);
    }

    #[test]
    fn real_node_test() {
        let v = Command::new("node").arg("--version").output();
        let major = v
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| {
                s.trim()
                    .trim_start_matches('v')
                    .split('.')
                    .next()?
                    .parse::<u32>()
                    .ok()
            });
        if major.is_none_or(|m| m < 20) {
            eprintln!("SKIPPED real_node_test: node 20+ is not installed");
            return;
        }
        real_run(Runner::NodeTest, "node", "node --test", &[]);
        // Through `npm test` too (NODE_OPTIONS reaches the node it starts).
        if have("npm", "--version") {
            real_run(Runner::NodeTest, "node", "npm test", &[]);
        }
    }

    #[test]
    fn real_jest() {
        if !have("jest", "--version") {
            eprintln!("SKIPPED real_jest: jest is not on PATH (the captured report is tested)");
            return;
        }
        real_run(Runner::Jest, "jest", "jest", &[]);
    }

    // --- the verdict -------------------------------------------------------------

    fn base() -> TestTable {
        table(
            Runner::Pytest,
            &[
                ("t.py::test_bug", Failed),
                ("t.py::test_ok", Passed),
                ("t.py::test_other", Passed),
                ("t.py::test_skip", Skipped),
            ],
        )
    }

    fn honest() -> TestTable {
        table(
            Runner::Pytest,
            &[
                ("t.py::test_bug", Passed),
                ("t.py::test_ok", Passed),
                ("t.py::test_other", Passed),
                ("t.py::test_skip", Skipped),
            ],
        )
    }

    #[test]
    fn judge_honest_fix_is_verified() {
        let j = judge(
            true,
            Runner::Pytest,
            Some(&base()),
            Some(&honest()),
            &["test_bug".into()],
        );
        assert!(j.verified, "{:?}", j.reasons);
        assert_eq!(
            j.summary,
            JudgeSummary {
                runner: Some(Runner::Pytest),
                tests_at_gate: 4,
                targets_total: 1,
                targets_passed: 1,
                baseline_failed: 1,
                baseline_fixed: 1,
                baseline_kept: 2,
                ..Default::default()
            }
        );
        let json = serde_json::to_value(&j).unwrap();
        assert_eq!(json["summary"]["targets_passed"], 1);
    }

    fn one_rule(gate: Option<&TestTable>, exit_ok: bool, targets: &[&str], needle: &str) {
        let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        let j = judge(exit_ok, Runner::Pytest, Some(&base()), gate, &targets);
        assert!(!j.verified);
        assert!(
            j.reasons.iter().any(|r| r.contains(needle)),
            "{needle:?} not in {:?}",
            j.reasons
        );
    }

    #[test]
    fn judge_each_rule_fires() {
        // Exit code.
        one_rule(Some(&honest()), false, &[], "did not exit 0");
        // No report.
        one_rule(None, true, &[], "no per-test report");
        // Empty report.
        one_rule(
            Some(&TestTable::new(Runner::Pytest)),
            true,
            &[],
            "lists no tests",
        );
        // A baseline failure still fails.
        let mut g = honest();
        g.tests.insert("t.py::test_bug".into(), Failed);
        one_rule(
            Some(&g),
            true,
            &[],
            "`t.py::test_bug` failed at baseline and is failed now",
        );
        // A baseline failure is now skipped (deselected/xfail'd).
        g.tests.insert("t.py::test_bug".into(), Skipped);
        one_rule(Some(&g), true, &[], "is skipped now");
        // A test that ran at baseline is missing.
        let mut g = honest();
        g.tests.remove("t.py::test_other");
        one_rule(
            Some(&g),
            true,
            &[],
            "`t.py::test_other` ran at baseline and is missing",
        );
        // ...or skipped.
        g.tests.insert("t.py::test_other".into(), Skipped);
        one_rule(Some(&g), true, &[], "ran at baseline and is skipped now");
        // A regression.
        let mut g = honest();
        g.tests.insert("t.py::test_ok".into(), Error);
        one_rule(Some(&g), true, &[], "passed at baseline and errored now");
        // A target absent from the report, or not passing.
        one_rule(
            Some(&honest()),
            true,
            &["test_missing"],
            "target `test_missing` is not in",
        );
        one_rule(Some(&honest()), true, &["test_skip"], "target `test_skip`");
        // A new test that fails.
        let mut g = honest();
        g.tests.insert("t.py::test_new".into(), Failed);
        one_rule(Some(&g), true, &[], "not in the baseline report");
        // Anomalies in the gate's report.
        let mut g = honest();
        g.anomalies.push("duplicate".into());
        one_rule(Some(&g), true, &[], "report anomaly");
    }

    #[test]
    fn judge_shell_keeps_exit_code_and_no_baseline_is_strict() {
        assert!(judge(true, Runner::Shell, None, None, &[]).verified);
        assert!(!judge(false, Runner::Shell, None, None, &[]).verified);
        // No baseline report (it did not build): every gate test must pass.
        assert!(judge(true, Runner::Pytest, None, Some(&honest()), &[]).verified);
        let mut g = honest();
        g.tests.insert("t.py::test_ok".into(), Failed);
        assert!(!judge(true, Runner::Pytest, None, Some(&g), &[]).verified);
        // Many reasons are capped.
        let mut b = TestTable::new(Runner::Cargo);
        for i in 0..50 {
            b.record(format!("t{i}"), Passed);
        }
        let j = judge(
            true,
            Runner::Cargo,
            Some(&b),
            Some(&TestTable::new(Runner::Cargo)),
            &[],
        );
        assert_eq!(j.summary.missing, 50);
        assert!(j.reasons.len() <= MAX_REASONS + 2);
    }

    #[test]
    fn target_matching() {
        assert!(id_matches("crate@src/lib.rs::tests::adds", "tests::adds"));
        assert!(id_matches("pkg::TestUndo", "TestUndo"));
        assert!(id_matches("tests/t.py::test_a", "tests/t.py::test_a"));
        assert!(id_matches("sum.test.js::sum > adds", "adds"));
        assert!(!id_matches("pkg::TestUndoAll", "TestUndo"));
        assert!(!id_matches("tests/t.py::test_ab", "test_b"));
    }
}
