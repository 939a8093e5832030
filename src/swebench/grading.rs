//! The grader: one test log plus one dataset row in, one verdict out, by the
//! rules of `swebench==5.0.2` (`harness/grading.py`).
//!
//! Two modes, chosen from the log itself:
//! - [`GradeMode::Markers`] (harness 3.0 and later): the log has
//!   `>>>>> Start Test Output` / `>>>>> End Test Output`; the slice between
//!   them is parsed (whole log as a fallback), with the SUITE_RAN evidence rule
//!   and the recorded-exit-code cross-check.
//! - [`GradeMode::Legacy`] (harness 2.0.x, no markers at all): graded as that
//!   harness did — bad-code strings and "applied patch" decide whether the run
//!   counts, the whole log is parsed with the 2.0.x parsers, only `PASSED`
//!   passes, and there is no prefix matching, SKIPPED or fail-only rule.
//!
//! [`grade`] never panics: bad rows and unknown parsers become
//! [`InstanceGrade::error`], bad logs become "not applied" verdicts.

use std::sync::LazyLock;

use regex::Regex;

use super::instance::Instance;
use super::parsers::{self, ParserFn, StatusMap, python::re};

/// Marker before the test command's output (harness ≥ 3.0).
pub const START_TEST_OUTPUT: &str = ">>>>> Start Test Output";
/// Marker after the test command's output (harness ≥ 3.0).
pub const END_TEST_OUTPUT: &str = ">>>>> End Test Output";
/// A patch that did not apply.
pub const APPLY_PATCH_FAIL: &str = ">>>>> Patch Apply Failed";
/// A patch that applied.
pub const APPLY_PATCH_PASS: &str = ">>>>> Applied Patch";
/// The environment reset failed.
pub const RESET_FAILED: &str = ">>>>> Reset Failed";
/// The test command errored.
pub const TESTS_ERROR: &str = ">>>>> Tests Errored";
/// The test command timed out.
pub const TESTS_TIMEOUT: &str = ">>>>> Tests Timed Out";
/// The eval script's record of the test command's exit status.
pub const TEST_EXIT_CODE: &str = ">>>>> Test Exit Code";

/// Repos graded fail-only when the row has no `eval_type` (`FAIL_ONLY_REPOS`).
pub const FAIL_ONLY_REPOS: [&str; 6] = [
    "chartjs/Chart.js",
    "processing/p5.js",
    "markedjs/marked",
    "bpmn-io/bpmn-js",
    "openlayers/openlayers",
    "eslint/eslint",
];

static SUITE_RAN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(concat!(
        r"(?m)Executed [1-9]\d* of \d+",
        r"|TOTAL: [1-9]\d* (?:SUCCESS|FAILED)",
        r"|[1-9]\d* passing",
        r"|Tests:[\s\x1c-\x1f]+[1-9]\d*",
        r"|Test Suites:[\s\x1c-\x1f]+(?:\d+ \w+, )*[1-9]\d* total",
        r"|^# tests [1-9]\d*",
        r"|[1-9]\d* specs?, \d+ failures?",
        r"|': ok$",
    ))
});

static TEST_EXIT_CODE_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r">>>>> Test Exit Code:[\s\x1c-\x1f]*(-?\d+)"));

/// Infra-failure signatures of `harness/infra_failure.py`, first hit wins:
/// (reason, environment tier, pattern, the literals one of which any match
/// must contain). The literals let [`classify_text`] find every candidate in
/// one Aho-Corasick pass; only candidates are confirmed with their regex.
const INFRA_SIGNATURES: [(&str, bool, &str, &[&str]); 8] = [
    (
        "browser_launch_failed",
        true,
        r"Failed to launch|Failed to connect to the bus",
        &["Failed to launch", "Failed to connect to the bus"],
    ),
    (
        "display_unavailable",
        true,
        r"cannot open display|Missing X server|unable to open X display",
        &[
            "cannot open display",
            "Missing X server",
            "unable to open X display",
        ],
    ),
    (
        "out_of_memory",
        true,
        r"Cannot allocate memory|OutOfMemoryError|^Killed$",
        &["Cannot allocate memory", "OutOfMemoryError", "Killed"],
    ),
    (
        "container_unavailable",
        true,
        r"Error response from daemon|Cannot connect to the Docker daemon",
        &[
            "Error response from daemon",
            "Cannot connect to the Docker daemon",
        ],
    ),
    (
        "network_unreachable",
        true,
        r"Could not resolve host|Temporary failure in name resolution",
        &[
            "Could not resolve host",
            "Temporary failure in name resolution",
        ],
    ),
    (
        "missing_module",
        false,
        r"Cannot find module|MODULE_NOT_FOUND|ModuleNotFoundError",
        &[
            "Cannot find module",
            "MODULE_NOT_FOUND",
            "ModuleNotFoundError",
        ],
    ),
    (
        "no_tests_collected",
        false,
        r"no tests ran|collected 0 items",
        &["no tests ran", "collected 0 items"],
    ),
    (
        "tests_timed_out",
        false,
        r"Timeout error: \d+ seconds exceeded",
        &["Timeout error: "],
    ),
];

static INFRA_RES: LazyLock<Vec<(&'static str, bool, Regex)>> = LazyLock::new(|| {
    INFRA_SIGNATURES
        .iter()
        .filter_map(|(r, env, p, _)| re(&format!("(?m){p}")).map(|x| (*r, *env, x)))
        .collect()
});

/// One automaton over every signature literal; pattern id -> signature index.
static INFRA_LITERALS: LazyLock<Option<(aho_corasick::AhoCorasick, Vec<usize>)>> =
    LazyLock::new(|| {
        let mut lits = Vec::new();
        let mut owner = Vec::new();
        for (i, (_, _, _, ls)) in INFRA_SIGNATURES.iter().enumerate() {
            for l in *ls {
                lits.push(*l);
                owner.push(i);
            }
        }
        // Leftmost-first is the match kind the SIMD (Teddy) searcher serves.
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&lits)
            .ok()
            .map(|ac| (ac, owner))
    });

/// Which harness generation's rules graded an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GradeMode {
    /// 5.x rules on a log with Start/End Test Output markers.
    Markers,
    /// 2.0.x rules on a log without any marker (harness before 3.0).
    Legacy,
}

impl GradeMode {
    /// `markers` or `legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            GradeMode::Markers => "markers",
            GradeMode::Legacy => "legacy",
        }
    }
}

/// `pass_and_fail` (the default) or `fail_only` (runners that print only failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalType {
    /// A test passes only if the log says so.
    PassAndFail,
    /// A test passes unless the log says it FAILED.
    FailOnly,
}

impl EvalType {
    /// The row's `eval_type`, or the FAIL_ONLY_REPOS default when absent.
    pub fn for_instance(instance: &Instance) -> Result<Self, String> {
        match instance.eval_type.as_deref() {
            Some("pass_and_fail") => Ok(EvalType::PassAndFail),
            Some("fail_only") => Ok(EvalType::FailOnly),
            None | Some("") => Ok(if FAIL_ONLY_REPOS.contains(&instance.repo.as_str()) {
                EvalType::FailOnly
            } else {
                EvalType::PassAndFail
            }),
            Some(other) => Err(format!(
                "unknown eval_type `{other}`: expected `pass_and_fail` or `fail_only`"
            )),
        }
    }
}

/// FULL, PARTIAL or NO; only FULL counts as resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolvedStatus {
    /// Every F2P and P2P test passed.
    Full,
    /// Some but not all F2P tests passed, all P2P passed.
    Partial,
    /// Anything else.
    #[default]
    No,
}

impl ResolvedStatus {
    /// The official string (`RESOLVED_FULL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedStatus::Full => "RESOLVED_FULL",
            ResolvedStatus::Partial => "RESOLVED_PARTIAL",
            ResolvedStatus::No => "RESOLVED_NO",
        }
    }
}

/// The success and failure lists for one category of tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestResults {
    /// Tests that met the expectation.
    pub success: Vec<String>,
    /// Tests that did not.
    pub failure: Vec<String>,
}

/// The `tests_status` object of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestsStatus {
    /// `FAIL_TO_PASS`.
    pub fail_to_pass: TestResults,
    /// `PASS_TO_PASS`.
    pub pass_to_pass: TestResults,
    /// `FAIL_TO_FAIL` (always empty: the official harness does not compute it here).
    pub fail_to_fail: TestResults,
    /// `PASS_TO_FAIL` (always empty, as above).
    pub pass_to_fail: TestResults,
}

/// Advisory classification of a run that produced no usable test output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfraFailure {
    /// e.g. `out_of_memory`.
    pub reason: &'static str,
    /// True for the environment tier (counted as an infra failure).
    pub environment: bool,
}

/// The verdict for one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceGrade {
    /// The row's id.
    pub instance_id: String,
    /// Only FULL resolution counts.
    pub resolved: bool,
    /// The run counts (the official `patch_successfully_applied`).
    pub patch_applied: bool,
    /// Which rules graded it.
    pub mode: GradeMode,
    /// FULL/PARTIAL/NO (NO when the run did not count).
    pub resolution: ResolvedStatus,
    /// Per-test outcome lists (empty when the run did not count).
    pub tests_status: TestsStatus,
    /// A per-instance error (bad row, unknown parser): no verdict was possible.
    pub error: Option<String>,
    /// The parser's registry name, when one was resolved.
    pub parser: Option<String>,
    /// Fail-only or pass-and-fail.
    pub eval_type: EvalType,
    /// Set when the run did not count and the log matches an infra signature.
    pub infra_failure: Option<InfraFailure>,
    /// Number of tests the parser found.
    pub parsed_tests: usize,
    /// The recorded test exit code, if the log has one.
    pub exit_code: Option<i64>,
}

impl InstanceGrade {
    fn empty(instance_id: &str, mode: GradeMode) -> Self {
        InstanceGrade {
            instance_id: instance_id.to_owned(),
            resolved: false,
            patch_applied: false,
            mode,
            resolution: ResolvedStatus::No,
            tests_status: TestsStatus::default(),
            error: None,
            parser: None,
            eval_type: EvalType::PassAndFail,
            infra_failure: None,
            parsed_tests: 0,
            exit_code: None,
        }
    }
}

/// Detects the grading mode: legacy when neither marker is in the log.
pub fn detect_mode(content: &str) -> GradeMode {
    let h = harness_lines(content);
    if h.start || h.end {
        GradeMode::Markers
    } else {
        GradeMode::Legacy
    }
}

/// Grades raw log bytes, decoding invalid UTF-8 lossily.
pub fn grade_bytes(instance: &Instance, test_output: &[u8]) -> InstanceGrade {
    match std::str::from_utf8(test_output) {
        Ok(s) => grade(instance, s),
        Err(_) => grade(instance, &String::from_utf8_lossy(test_output)),
    }
}

/// Grades one log against one row. Never panics; see the module docs.
///
/// ```
/// use airgate::swebench::{grading, instance::Instance};
///
/// let row = Instance {
///     repo: "psf/requests".into(),
///     instance_id: "psf__requests-1".into(),
///     fail_to_pass: vec!["tests/test_a.py::test_fix".into()],
///     pass_to_pass: vec!["tests/test_a.py::test_old".into()],
///     ..Instance::default()
/// };
/// let log = ">>>>> Applied Patch (pred)\n>>>>> Start Test Output\n\
///            PASSED tests/test_a.py::test_fix\n\
///            PASSED tests/test_a.py::test_old\n>>>>> End Test Output\n";
/// let verdict = grading::grade(&row, log);
/// assert!(verdict.patch_applied);
/// assert!(verdict.resolved);
///
/// // The same log without the fixed test passing is not resolved.
/// let broken = log.replace("PASSED tests/test_a.py::test_fix", "FAILED tests/test_a.py::test_fix");
/// assert!(!grading::grade(&row, &broken).resolved);
/// ```
pub fn grade(instance: &Instance, test_output: &str) -> InstanceGrade {
    // The official grader reads the log in text mode: universal newlines.
    let content = parsers::universal_newlines(test_output);
    grade_with_mode(instance, &content, detect_mode(&content))
}

/// Grades with an explicit mode (the content must already have `\n` line ends).
pub fn grade_with_mode(instance: &Instance, content: &str, mode: GradeMode) -> InstanceGrade {
    let mut g = InstanceGrade::empty(&instance.instance_id, mode);
    let (name, parser) = match parsers::resolve_parser(instance) {
        Ok(p) => p,
        Err(e) => {
            g.error = Some(e);
            return g;
        }
    };
    g.eval_type = match EvalType::for_instance(instance) {
        Ok(t) => t,
        Err(e) => {
            g.error = Some(e);
            return g;
        }
    };
    let found = match mode {
        GradeMode::Markers => {
            g.exit_code = parse_test_exit_code(content);
            logs_eval_markers(content, parser)
        }
        GradeMode::Legacy => {
            let legacy = parsers::python::legacy_parser(&name).unwrap_or(parser);
            logs_eval_legacy(content, legacy)
        }
    };
    g.parser = Some(name);
    let Some(status_map) = found else {
        g.infra_failure = classify_text(content);
        return g;
    };
    g.patch_applied = true;
    g.parsed_tests = status_map.len();
    g.tests_status = match mode {
        GradeMode::Markers => eval_tests_report(
            &status_map,
            &instance.fail_to_pass,
            &instance.pass_to_pass,
            g.eval_type,
        ),
        GradeMode::Legacy => {
            legacy_eval_tests_report(&status_map, &instance.fail_to_pass, &instance.pass_to_pass)
        }
    };
    g.resolution = resolution_status(&g.tests_status);
    g.resolved = g.resolution == ResolvedStatus::Full;
    g
}

/// The recorded test exit code (`>>>>> Test Exit Code: N`), if any.
pub fn parse_test_exit_code(content: &str) -> Option<i64> {
    let caps = TEST_EXIT_CODE_RE.as_ref()?.captures(content)?;
    let digits = caps.get(1)?.as_str();
    match digits.parse::<i64>() {
        Ok(v) => Some(v),
        // Overflow or non-ASCII digits: only "is it zero" matters downstream.
        Err(_) => Some(if digits.chars().all(|c| c == '0' || c == '-') {
            0
        } else {
            1
        }),
    }
}

/// Which `>>>>> ...` harness lines a log contains, found in one SIMD pass
/// (every harness string starts with `>>>>> `, so scanning for that prefix
/// and checking the suffix at each hit is exactly `needle in content`).
#[derive(Debug, Default, Clone, Copy)]
struct HarnessLines {
    bad_code: bool,
    start: bool,
    end: bool,
}

fn harness_lines(content: &str) -> HarnessLines {
    let bytes = content.as_bytes();
    let mut h = HarnessLines::default();
    for pos in memchr::memmem::find_iter(bytes, b">>>>> ") {
        let rest = &bytes[pos..];
        if [APPLY_PATCH_FAIL, RESET_FAILED, TESTS_ERROR, TESTS_TIMEOUT]
            .iter()
            .any(|c| rest.starts_with(c.as_bytes()))
        {
            h.bad_code = true;
        }
        h.start |= rest.starts_with(START_TEST_OUTPUT.as_bytes());
        h.end |= rest.starts_with(END_TEST_OUTPUT.as_bytes());
    }
    h
}

fn has_bad_code(content: &str) -> bool {
    harness_lines(content).bad_code
}

/// `get_logs_eval` of 5.0.2: `None` when the run does not count.
pub fn logs_eval_markers(content: &str, parser: ParserFn) -> Option<StatusMap> {
    let h = harness_lines(content);
    if h.bad_code || !(h.start && h.end) {
        return None;
    }
    // content.split(START)[1].split(END)[0], with SIMD substring search.
    let after_start = split_nth1(content, START_TEST_OUTPUT);
    let sliced = split_first(after_start, END_TEST_OUTPUT);
    let mut status_map = parser(sliced);
    if status_map.is_empty() {
        status_map = parser(content);
    }
    if status_map.is_empty() && !SUITE_RAN.as_ref().is_some_and(|r| r.is_match(content)) {
        return None;
    }
    let exit_code = parse_test_exit_code(content);
    if exit_code.is_some_and(|c| c != 0)
        && !status_map.is_empty()
        && !status_map.values().any(|s| s == "FAILED" || s == "ERROR")
    {
        return None;
    }
    Some(status_map)
}

/// The part of a marker-mode log the official grader parses first: between
/// `>>>>> Start Test Output` and `>>>>> End Test Output` (empty when a
/// marker is missing).
pub fn test_output_slice(content: &str) -> &str {
    split_first(split_nth1(content, START_TEST_OUTPUT), END_TEST_OUTPUT)
}

/// Python's `s.split(sep)[1]` (empty when `sep` is absent).
fn split_nth1<'a>(s: &'a str, sep: &str) -> &'a str {
    let Some(p) = memchr::memmem::find(s.as_bytes(), sep.as_bytes()) else {
        return "";
    };
    split_first(&s[p + sep.len()..], sep)
}

/// Python's `s.split(sep)[0]`.
fn split_first<'a>(s: &'a str, sep: &str) -> &'a str {
    match memchr::memmem::find(s.as_bytes(), sep.as_bytes()) {
        Some(q) => &s[..q],
        None => s,
    }
}

/// `get_logs_eval` of 2.0.x: `None` when the run does not count.
pub fn logs_eval_legacy(content: &str, parser: ParserFn) -> Option<StatusMap> {
    if has_bad_code(content)
        || memchr::memmem::find(content.as_bytes(), b"Failed to reset task environment").is_some()
        || !mentions_applied_patch(content)
    {
        return None;
    }
    // content.split(">>>>> Applied Patch (pred)")[-1]
    const PRED: &str = ">>>>> Applied Patch (pred)";
    let tail = match memchr::memmem::rfind(content.as_bytes(), PRED.as_bytes()) {
        Some(p) => &content[p + PRED.len()..],
        None => content,
    };
    Some(parser(tail))
}

/// `"applied patch" in content.lower()`. No non-ASCII character lowercases
/// to one of these letters, so ASCII case folding is exact; the regex
/// engine's case-folded literal prefilter keeps it a SIMD scan.
static APPLIED_PATCH_CI: LazyLock<Option<regex::bytes::Regex>> =
    LazyLock::new(|| regex::bytes::Regex::new("(?i-u)applied patch").ok());

fn mentions_applied_patch(content: &str) -> bool {
    match APPLIED_PATCH_CI.as_ref() {
        Some(r) => r.is_match(content.as_bytes()),
        // Unreachable (the pattern is tested to compile); the slow scan is exact too.
        None => content.to_ascii_lowercase().contains("applied patch"),
    }
}

const PASSING: [&str; 2] = ["PASSED", "XFAIL"];

/// `_resolve_case`: exact id, or for ids truncated inside `[...]` the first
/// key with that prefix, when all such keys agree on pass-vs-fail.
pub fn resolve_case<'a>(case: &'a str, sm: &'a StatusMap) -> Option<&'a str> {
    if let Some((k, _)) = sm.get_key_value(case) {
        return Some(k.as_str());
    }
    if case.matches('[').count() > case.matches(']').count() {
        let mut first: Option<&str> = None;
        let mut outcome: Option<bool> = None;
        for (k, v) in sm {
            if k.starts_with(case) {
                let passing = PASSING.contains(&v.as_str());
                match outcome {
                    None => {
                        outcome = Some(passing);
                        first = Some(k.as_str());
                    }
                    Some(o) if o != passing => return None,
                    Some(_) => {}
                }
            }
        }
        return first;
    }
    None
}

fn status_of<'a>(case: &str, sm: &'a StatusMap) -> Option<&'a str> {
    let key = resolve_case(case, sm)?;
    sm.get(key).map(String::as_str)
}

/// `test_passed`: PASSED or XFAIL.
pub fn test_passed(case: &str, sm: &StatusMap) -> bool {
    status_of(case, sm).is_some_and(|s| PASSING.contains(&s))
}

/// `test_maintained` (P2P): passed, or SKIPPED.
pub fn test_maintained(case: &str, sm: &StatusMap) -> bool {
    status_of(case, sm).is_some_and(|s| PASSING.contains(&s) || s == "SKIPPED")
}

/// `test_failed`: absent, FAILED, ERROR or SKIPPED.
pub fn test_failed(case: &str, sm: &StatusMap) -> bool {
    match status_of(case, sm) {
        None => true,
        Some(s) => matches!(s, "FAILED" | "ERROR" | "SKIPPED"),
    }
}

/// `get_eval_tests_report` of 5.0.2.
pub fn eval_tests_report(
    sm: &StatusMap,
    f2p: &[String],
    p2p: &[String],
    eval_type: EvalType,
) -> TestsStatus {
    let mut out = TestsStatus::default();
    let fail_only = |case: &String, r: &mut TestResults| {
        if sm.get(case.as_str()).is_some_and(|s| s == "FAILED") {
            r.failure.push(case.clone());
        } else {
            r.success.push(case.clone());
        }
    };
    for case in f2p {
        match eval_type {
            EvalType::FailOnly => fail_only(case, &mut out.fail_to_pass),
            EvalType::PassAndFail => {
                if test_passed(case, sm) {
                    out.fail_to_pass.success.push(case.clone());
                } else if test_failed(case, sm) {
                    out.fail_to_pass.failure.push(case.clone());
                }
            }
        }
    }
    for case in p2p {
        match eval_type {
            EvalType::FailOnly => fail_only(case, &mut out.pass_to_pass),
            EvalType::PassAndFail => {
                if test_maintained(case, sm) {
                    out.pass_to_pass.success.push(case.clone());
                } else if test_failed(case, sm) {
                    out.pass_to_pass.failure.push(case.clone());
                }
            }
        }
    }
    out
}

/// `get_eval_tests_report` of 2.0.x: only PASSED passes; absent, FAILED
/// or ERROR fails; anything else lands in neither list.
pub fn legacy_eval_tests_report(sm: &StatusMap, f2p: &[String], p2p: &[String]) -> TestsStatus {
    let check = |case: &String, r: &mut TestResults| match sm.get(case.as_str()).map(String::as_str)
    {
        Some("PASSED") => r.success.push(case.clone()),
        None | Some("FAILED") | Some("ERROR") => r.failure.push(case.clone()),
        Some(_) => {}
    };
    let mut out = TestsStatus::default();
    for case in f2p {
        check(case, &mut out.fail_to_pass);
    }
    for case in p2p {
        check(case, &mut out.pass_to_pass);
    }
    out
}

/// `get_resolution_status`: FULL when every listed F2P and P2P test
/// succeeded (empty lists count as 1), PARTIAL when some F2P did.
pub fn resolution_status(ts: &TestsStatus) -> ResolvedStatus {
    fn ratio(r: &TestResults) -> (usize, usize) {
        (r.success.len(), r.success.len() + r.failure.len())
    }
    let (fs, ft) = ratio(&ts.fail_to_pass);
    let (ps, pt) = ratio(&ts.pass_to_pass);
    let f2p_full = ft == 0 || fs == ft;
    let p2p_full = pt == 0 || ps == pt;
    if f2p_full && p2p_full {
        ResolvedStatus::Full
    } else if ft > 0 && fs > 0 && fs < ft && p2p_full {
        ResolvedStatus::Partial
    } else {
        ResolvedStatus::No
    }
}

/// `classify_text` of `infra_failure.py`: the first matching signature.
pub fn classify_text(text: &str) -> Option<InfraFailure> {
    if text.is_empty() {
        return None;
    }
    // Candidates from one overlapping literal pass; a signature whose
    // literals never occur cannot match, so its regex is never run.
    let mut candidate = [false; INFRA_SIGNATURES.len()];
    match INFRA_LITERALS.as_ref() {
        Some((ac, owner)) => {
            // Leftmost-first search keeps the SIMD prefilter; restarting one
            // byte after each hit (not after its end) sees overlapping hits
            // too, and no literal is a prefix of another (tested), so no
            // start position hides a second literal.
            let mut at = 0;
            while let Some(m) = ac.find(aho_corasick::Input::new(text).range(at..)) {
                candidate[owner[m.pattern().as_usize()]] = true;
                at = m.start() + 1;
            }
        }
        None => candidate = [true; INFRA_SIGNATURES.len()],
    }
    if !candidate.contains(&true) {
        // The common case: no literal at all, no regex compiled or run.
        return None;
    }
    INFRA_RES
        .iter()
        .zip(candidate)
        .find(|((_, _, r), c)| *c && r.is_match(text))
        .map(|((reason, environment, _), _)| InfraFailure {
            reason,
            environment: *environment,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(f2p: &[&str], p2p: &[&str]) -> Instance {
        Instance {
            repo: "pytest-dev/pytest".into(),
            instance_id: "pytest-dev__pytest-1".into(),
            fail_to_pass: f2p.iter().map(|s| s.to_string()).collect(),
            pass_to_pass: p2p.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn wrap(body: &str) -> String {
        format!("+ git apply\n{START_TEST_OUTPUT}\n{body}\n{END_TEST_OUTPUT}\n")
    }

    #[test]
    fn patterns_compile() {
        assert!(SUITE_RAN.is_some());
        assert!(TEST_EXIT_CODE_RE.is_some());
        assert_eq!(INFRA_RES.len(), INFRA_SIGNATURES.len());
        assert!(INFRA_LITERALS.is_some());
        assert!(APPLIED_PATCH_CI.is_some());
    }

    #[test]
    fn no_infra_literal_is_a_prefix_of_another() {
        let lits: Vec<&str> = INFRA_SIGNATURES
            .iter()
            .flat_map(|(_, _, _, l)| l.iter().copied())
            .collect();
        for a in &lits {
            for b in &lits {
                assert!(a == b || !b.starts_with(a), "{a} / {b}");
            }
        }
    }

    /// Every alternative of every signature contains one of its literals,
    /// so the literal pass never hides a regex match.
    #[test]
    fn infra_literals_cover_every_alternative() {
        for (reason, _, pattern, lits) in INFRA_SIGNATURES {
            for branch in pattern.split('|') {
                let plain = branch.trim_start_matches('^').trim_end_matches('$');
                assert!(
                    lits.iter().any(|l| plain.contains(l)),
                    "{reason}: `{branch}` has none of {lits:?}"
                );
            }
        }
    }

    #[test]
    fn full_partial_no() {
        let i = inst(&["a", "b"], &["c"]);
        let g = grade(&i, &wrap("PASSED a\nPASSED b\nPASSED c"));
        assert_eq!((g.resolved, g.mode), (true, GradeMode::Markers));
        let g = grade(&i, &wrap("PASSED a\nFAILED b\nPASSED c"));
        assert_eq!(g.resolution, ResolvedStatus::Partial);
        assert!(!g.resolved);
        let g = grade(&i, &wrap("XFAIL a\nPASSED b\nSKIPPED c"));
        assert!(g.resolved, "XFAIL passes, skipped P2P is maintained");
        let g = grade(&i, &wrap("SKIPPED a\nPASSED b\nPASSED c"));
        assert_eq!(g.tests_status.fail_to_pass.failure, vec!["a"]);
    }

    #[test]
    fn truncated_parametrized_ids_prefix_match() {
        let i = inst(&["t.py::f[log(photon"], &[]);
        let g = grade(
            &i,
            &wrap("PASSED t.py::f[log(photon)]\nPASSED t.py::f[log(photon2)]"),
        );
        assert!(g.resolved);
        let g = grade(
            &i,
            &wrap("PASSED t.py::f[log(photon)]\nFAILED t.py::f[log(photon2)]"),
        );
        assert!(!g.resolved, "ambiguous prefix resolves to nothing");
    }

    #[test]
    fn exit_code_and_suite_ran_rules() {
        let i = inst(&["a"], &[]);
        let log = format!("{}\n{TEST_EXIT_CODE}: 1\n", wrap("PASSED a"));
        let g = grade(&i, &log);
        assert!(!g.patch_applied && !g.resolved);
        assert_eq!(g.exit_code, Some(1));
        let log = format!("{}\n{TEST_EXIT_CODE}: 0\n", wrap("PASSED a"));
        assert!(grade(&i, &log).resolved);
        // Empty map, no evidence: not applied; with evidence, graded.
        assert!(!grade(&i, &wrap("nothing")).patch_applied);
        let mut fo = inst(&["a"], &[]);
        fo.repo = "markedjs/marked".into();
        fo.log_parser = Some("parse_log_jest_json".into());
        let g = grade(&fo, &wrap("12 specs, 0 failures"));
        assert!(g.patch_applied && g.resolved);
        assert_eq!(g.eval_type, EvalType::FailOnly);
    }

    #[test]
    fn bad_codes_and_missing_markers() {
        let i = inst(&["a"], &[]);
        assert!(!grade(&i, &format!("{APPLY_PATCH_FAIL}\n{}", wrap("PASSED a"))).patch_applied);
        let g = grade(&i, &format!("{START_TEST_OUTPUT}\nPASSED a\n"));
        assert_eq!(g.mode, GradeMode::Markers);
        assert!(!g.patch_applied);
    }

    #[test]
    fn legacy_mode() {
        let i = inst(&["a"], &["b"]);
        let g = grade(&i, "Applied patch x cleanly.\nPASSED a\nSKIPPED b\n");
        assert_eq!(g.mode, GradeMode::Legacy);
        assert!(g.resolved);
        assert!(g.tests_status.pass_to_pass.success.is_empty());
        let g = grade(&i, "PASSED a\nPASSED b\n");
        assert!(!g.patch_applied, "no 'applied patch' in a legacy log");
        let g = grade(&i, "applied patch\nXFAIL a\nPASSED b\n");
        assert!(g.tests_status.fail_to_pass.success.is_empty());
        assert!(g.tests_status.fail_to_pass.failure.is_empty());
    }

    #[test]
    fn errors_are_per_instance() {
        let mut i = inst(&["a"], &[]);
        i.repo = "unknown/repo".into();
        let g = grade(&i, &wrap("PASSED a"));
        assert!(g.error.as_deref().unwrap().contains("unknown/repo"));
        assert!(!g.resolved);
        let mut i = inst(&["a"], &[]);
        i.eval_type = Some("weird".into());
        assert!(grade(&i, &wrap("PASSED a")).error.is_some());
    }

    #[test]
    fn crlf_is_normalized_like_text_mode() {
        let i = inst(&["a"], &[]);
        let g = grade(&i, &wrap("PASSED a\r\nFAILED b\r").replace('\n', "\r\n"));
        assert!(g.resolved);
    }

    #[test]
    fn infra_classification() {
        let i = inst(&["a"], &[]);
        let g = grade(&i, &format!("{START_TEST_OUTPUT}\nKilled\n"));
        assert_eq!(g.infra_failure.map(|f| f.reason), Some("out_of_memory"));
        // The literal alone is not enough: `^Killed$` needs the whole line.
        assert_eq!(classify_text("Process Killed by user\n"), None);
        // First signature in table order wins, not first in the text.
        let both = "no tests ran\nCould not resolve host: x\n";
        assert_eq!(
            classify_text(both).map(|f| f.reason),
            Some("network_unreachable")
        );
        assert_eq!(
            classify_text("Timeout error: 1800 seconds exceeded")
                .map(|f| (f.reason, f.environment)),
            Some(("tests_timed_out", false))
        );
        assert_eq!(classify_text("Timeout error: soon"), None);
    }
}
