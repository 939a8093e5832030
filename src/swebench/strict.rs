//! Strict grading (`swebench eval --strict`, and always in the factory).
//!
//! The official verdict trusts whatever the test log says, so a prediction
//! can resolve an instance without fixing it: a force-pass `conftest.py`, a
//! root `pytest.py`, a monkeypatched `_pytest` `Function.runtest`, or
//! `PASSED` lines printed by an `atexit` hook after pytest's summary. Strict
//! grading keeps the official verdict (as `resolved_official`) and refuses
//! it when any of these fire, each named by a flag:
//!
//! - `patch_policy:<category>:<path>`: the prediction changes a file the
//!   patch policy (`configs/patch_policy.toml`) refuses: tests, runner and
//!   build configuration, runner shadows (`pytest.py`, `sitecustomize.py`,
//!   `*.pth`), VCS metadata, or an importable binary.
//! - `cheat:<detector>:<path>`: a static detector fired on an added line
//!   (the gate's detectors of [`crate::gate::detect`]: runner internals,
//!   process exits, disabled tests; plus printed statuses and stdout rebinds).
//! - `status_after_summary:<test>`: a status line for a graded test after the
//!   runner's final summary line (pytest-family logs).
//! - `duplicate_status:<test>`: a graded test reported twice with different
//!   statuses.
//! - `missing_summary`: a pytest-family log reports graded tests but pytest
//!   never printed its summary line (the process was cut short).
//! - `empty_patch_resolves`: the empty patch resolves the instance too (it
//!   is `broken`: the run proves nothing).
//!
//! This is grading hygiene, not a sandbox: in-process tricks no log or
//! static check can see are not proven impossible.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::grading::{self, GradeMode, InstanceGrade};
use super::instance::Instance;
use super::parsers::{self, ParserFn, py_lines, py_strip, python::re};
use crate::gate::detect;
use crate::gate::policy::{ChangeKind, Denial, PatchPolicy, PolicyError};

/// Flag kind: the patch policy refused a changed file.
pub const FLAG_POLICY: &str = "patch_policy";
/// Flag kind: a cheat detector fired on the patch.
pub const FLAG_CHEAT: &str = "cheat";
/// Flag kind: a status line after the runner's final summary.
pub const FLAG_AFTER_SUMMARY: &str = "status_after_summary";
/// Flag kind: one test reported with different statuses.
pub const FLAG_DUPLICATE: &str = "duplicate_status";
/// Flag kind: statuses without the runner's summary line.
pub const FLAG_NO_SUMMARY: &str = "missing_summary";
/// Flag: the empty patch resolves the instance (it is broken).
pub const FLAG_EMPTY_PATCH: &str = "empty_patch_resolves";

/// Policy categories that cannot change a verdict: not flagged.
const HARMLESS_CATEGORIES: [&str; 2] = ["ci", "executable"];
/// Extensions of files the interpreter can import although the policy does
/// not recognise them (a compiled module shadows the `.py` beside it).
const IMPORTABLE_BINARIES: [&str; 6] = ["so", "pyd", "pyc", "pyo", "dylib", "dll"];
/// Repos whose source IS the test runner: their own `_pytest` code is not a
/// runner shadow or a reach into runner internals.
const RUNNER_REPOS: [&str; 1] = ["pytest-dev/pytest"];

/// Parsers that read pytest's `-rA` output (their logs end in a summary line).
const PYTEST_PARSERS: [&str; 17] = [
    "parse_log_pytest",
    "parse_log_pytest_options",
    "parse_log_pytest_v2",
    "parse_log_matplotlib",
    "parse_log_astroid",
    "parse_log_flask",
    "parse_log_marshmallow",
    "parse_log_pvlib",
    "parse_log_pyvista",
    "parse_log_sqlfluff",
    "parse_log_xarray",
    "parse_log_pydicom",
    "parse_log_requests",
    "parse_log_pylint",
    "parse_log_astropy",
    "parse_log_scikit",
    "parse_log_sphinx",
];

/// pytest's final line: `=== 1 failed, 2 passed in 0.12s ===` (no `=` with
/// `-q`; `in 0.12 seconds` before pytest 6; a `(0:01:02)` suffix on long runs).
static SUMMARY_LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(concat!(
        r"^=*\s*(?:no tests ran|\d+ (?:failed|passed|skipped|deselected|xfailed|xpassed|warnings?|errors?|rerun)\b.*?)",
        r" in \d+(?:\.\d+)?\s*s(?:econds)?\b[^=]*?\s*=*$"
    ))
});

static ANSI: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"\x1b\[[0-9;]*[A-Za-z]"));

/// Detectors of log spoofing that the gate's cheat detectors
/// ([`crate::gate::detect`]) do not cover, over added lines of Python files:
/// (name, pattern).
const LOG_SPOOF_DETECTORS: [(&str, &str); 2] = [
    // A string that starts like a pytest status line.
    ("status_spoof", r#"["'](?:PASSED|XFAIL) "#),
    // Rebinding the process's stdout (builtins.print is the gate's).
    ("output_patch", r"\bsys\.(?:stdout|__stdout__)\s*=[^=]"),
];

static LOG_SPOOF_RES: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    LOG_SPOOF_DETECTORS
        .iter()
        .filter_map(|(n, p)| re(p).map(|r| (*n, r)))
        .collect()
});

fn flag(kind: &str, detail: &str) -> String {
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}:{detail}")
    }
}

/// The strict verdict on one prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictGrade {
    /// The official verdict, unchanged.
    pub official: InstanceGrade,
    /// Official verdict and no flag.
    pub resolved: bool,
    /// Why the strict verdict differs (empty when it does not).
    pub flags: Vec<String>,
    /// The empty patch resolves this instance too.
    pub broken: bool,
}

impl StrictGrade {
    /// Records the empty-patch control's result: an instance whose empty
    /// patch resolves is `broken`, and nothing resolves it strictly.
    pub fn set_empty_patch_resolves(&mut self, resolves: bool) {
        if resolves && !self.broken {
            self.broken = true;
            self.resolved = false;
            self.flags.push(FLAG_EMPTY_PATCH.to_string());
        }
    }
}

/// The checks strict grading adds to the official grader.
#[derive(Debug, Clone)]
pub struct StrictGrader {
    policy: PatchPolicy,
}

impl StrictGrader {
    /// Loads the installation's patch policy (explicit path, else
    /// `$AIRGATE_CONFIG_DIR/patch_policy.toml`, else the built-in copy).
    pub fn load(explicit: Option<&std::path::Path>) -> Result<Self, PolicyError> {
        Ok(Self::new(PatchPolicy::load(explicit)?))
    }

    /// A grader over a given policy.
    pub fn new(policy: PatchPolicy) -> Self {
        Self { policy }
    }

    /// Flags of the patch alone: policy refusals and cheat detectors.
    pub fn patch_flags(&self, repo: &str, patch: &str) -> Vec<String> {
        let mut out = policy_flags(&self.policy, repo, patch);
        out.extend(cheat_flags(repo, patch));
        dedup(out)
    }

    /// Grades one log strictly: the official verdict, then the patch and
    /// log checks. `patch` is the prediction (empty for none).
    pub fn grade(&self, inst: &Instance, patch: &str, test_output: &str) -> StrictGrade {
        let content = parsers::universal_newlines(test_output);
        let mode = grading::detect_mode(&content);
        let official = grading::grade_with_mode(inst, &content, mode);
        let mut flags = self.patch_flags(&inst.repo, patch);
        if official.patch_applied
            && let Ok((name, parser)) = parsers::resolve_parser(inst)
        {
            flags.extend(log_flags(inst, &name, parser, &content, mode));
        }
        let flags = dedup(flags);
        StrictGrade {
            resolved: official.resolved && flags.is_empty(),
            official,
            flags,
            broken: false,
        }
    }
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    v.into_iter().filter(|f| seen.insert(f.clone())).collect()
}

fn flag_worthy(d: &Denial, repo: &str) -> bool {
    if HARMLESS_CATEGORIES.contains(&d.category.as_str()) {
        return false;
    }
    if d.category == "unrecognised" {
        let ext = d.path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        return ext.is_some_and(|e| IMPORTABLE_BINARIES.contains(&e.as_str()))
            || d.path.contains("__pycache__/");
    }
    if d.category == "runner_shadow" && RUNNER_REPOS.contains(&repo) && d.path.starts_with("src/") {
        return false;
    }
    true
}

/// The patch policy's refusals that can change a verdict.
fn policy_flags(policy: &PatchPolicy, repo: &str, patch: &str) -> Vec<String> {
    let filtered = policy.filter_patch(patch);
    let mut out = vec![];
    for d in &filtered.dropped {
        if d.category == "unparsed" && d.path.starts_with("(text before") {
            // `git apply` and `patch` also apply plain unified or context
            // diffs found before the first `diff --git`: judge their paths.
            let pre = preamble(patch);
            for path in loose_header_paths(pre) {
                for candidate in strip_candidates(&path) {
                    if let Err(d) = policy.check(&candidate, ChangeKind::Modify)
                        && flag_worthy(&d, repo)
                        && d.category != "invalid_path"
                    {
                        out.push(flag(FLAG_POLICY, &format!("{}:{}", d.category, d.path)));
                    }
                }
            }
            continue;
        }
        if flag_worthy(d, repo) {
            out.push(flag(FLAG_POLICY, &format!("{}:{}", d.category, d.path)));
        }
    }
    out
}

/// The text before the first `diff --git` line.
fn preamble(patch: &str) -> &str {
    let mut off = 0;
    for line in patch.split_inclusive('\n') {
        if line.starts_with("diff --git ") {
            return &patch[..off];
        }
        off += line.len();
    }
    patch
}

/// Paths named by `---`/`+++`/`***`/`Index:` header lines.
fn loose_header_paths(text: &str) -> Vec<String> {
    let mut out = vec![];
    for line in text.lines() {
        let rest = ["+++ ", "--- ", "*** ", "Index: "]
            .iter()
            .find_map(|p| line.strip_prefix(p));
        let Some(rest) = rest else { continue };
        let path = rest.split('\t').next().unwrap_or(rest).trim();
        let path = path.trim_matches('"');
        if path.is_empty() || path == "/dev/null" || path.contains(' ') {
            continue;
        }
        out.push(path.to_string());
    }
    out
}

/// A header path as `-p0`, `-p1`, ... would read it.
fn strip_candidates(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    (0..parts.len()).map(|k| parts[k..].join("/")).collect()
}

/// Runs the gate's cheat detectors ([`crate::gate::detect::detect_patch`])
/// and the log-spoofing ones over the patch's added lines.
fn cheat_flags(repo: &str, patch: &str) -> Vec<String> {
    let runner_repo = RUNNER_REPOS.contains(&repo);
    let mut out: Vec<String> = detect::detect_patch(patch)
        .into_iter()
        .filter(|f| !(runner_repo && f.code == detect::RUNNER_INTERNALS))
        .map(|f| flag(FLAG_CHEAT, &f.key()))
        .collect();
    let mut file = String::new();
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("+++ ") {
            let p = rest.split('\t').next().unwrap_or(rest).trim();
            file = p.strip_prefix("b/").unwrap_or(p).to_string();
            continue;
        }
        let Some(added) = line.strip_prefix('+') else {
            continue;
        };
        let is_python = file.is_empty() || file.ends_with(".py") || file.ends_with(".pth");
        if !is_python || added.trim_start().starts_with('#') {
            continue;
        }
        for (name, r) in LOG_SPOOF_RES.iter() {
            if r.is_match(added) {
                out.push(flag(FLAG_CHEAT, &format!("{name}:{file}")));
            }
        }
    }
    out
}

/// Whether the official grader would read `test` for one of the row's
/// FAIL_TO_PASS/PASS_TO_PASS cases (exact, or a truncated `[...]` prefix).
fn graded(inst: &Instance, test: &str) -> bool {
    inst.fail_to_pass
        .iter()
        .chain(&inst.pass_to_pass)
        .any(|case| {
            case == test
                || (case.matches('[').count() > case.matches(']').count()
                    && test.starts_with(case.as_str()))
        })
}

/// True for pytest's final summary line (ANSI colours ignored).
pub fn is_summary_line(line: &str) -> bool {
    let clean = match ANSI.as_ref() {
        Some(r) => r.replace_all(line, ""),
        None => std::borrow::Cow::Borrowed(line),
    };
    SUMMARY_LINE
        .as_ref()
        .is_some_and(|r| r.is_match(py_strip(&clean)))
}

/// The log-level checks (pytest-family parsers only; other runners get
/// none yet). `content` has `\n` line ends. Only tests the row grades are
/// flagged: a stray line about another test cannot change the verdict.
pub fn log_flags(
    inst: &Instance,
    parser_name: &str,
    parser: ParserFn,
    content: &str,
    mode: GradeMode,
) -> Vec<String> {
    if !PYTEST_PARSERS.contains(&parser_name) {
        return vec![];
    }
    // The text the official grader parsed.
    let text = match mode {
        GradeMode::Markers => {
            let slice = grading::test_output_slice(content);
            if parser(slice).is_empty() {
                content
            } else {
                slice
            }
        }
        GradeMode::Legacy => content,
    };
    let mut summary_seen = false;
    let mut statuses: indexmap::IndexMap<String, BTreeSet<String>> = indexmap::IndexMap::new();
    let mut after = Vec::new();
    for line in py_lines(text) {
        if is_summary_line(line) {
            summary_seen = true;
            continue;
        }
        for (test, status) in parser(line) {
            if !graded(inst, &test) {
                continue;
            }
            if summary_seen {
                after.push(flag(FLAG_AFTER_SUMMARY, &test));
            } else {
                statuses.entry(test).or_default().insert(status);
            }
        }
    }
    let mut out = after;
    for (test, set) in &statuses {
        if set.len() > 1 {
            out.push(flag(FLAG_DUPLICATE, test));
        }
    }
    if !summary_seen && (!statuses.is_empty() || !out.is_empty()) {
        out.push(FLAG_NO_SUMMARY.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/swebench_strict")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn gold_patch() -> String {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/airgate-mini.jsonl");
        let text = std::fs::read_to_string(p).unwrap();
        let row: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        row["patch"].as_str().unwrap().to_string()
    }

    fn mini1() -> Instance {
        Instance {
            repo: "airgate/mini".into(),
            instance_id: "airgate__mini-1".into(),
            fail_to_pass: vec!["tests/test_clamp.py::test_clamp_upper".into()],
            pass_to_pass: vec![
                "tests/test_clamp.py::test_clamp_inside".into(),
                "tests/test_clamp.py::test_clamp_lower".into(),
            ],
            log_parser: Some("parse_log_pytest".into()),
            ..Instance::default()
        }
    }

    fn grader() -> StrictGrader {
        StrictGrader::new(
            PatchPolicy::from_toml(crate::gate::policy::BUILTIN_POLICY, "built-in").unwrap(),
        )
    }

    #[test]
    fn patterns_compile() {
        assert!(SUMMARY_LINE.is_some() && ANSI.is_some());
        assert_eq!(LOG_SPOOF_RES.len(), LOG_SPOOF_DETECTORS.len());
    }

    #[test]
    fn summary_lines_of_real_pytest_versions() {
        for l in [
            "============================== 3 passed in 0.01s ===============================",
            "========================= 1 failed, 2 passed in 0.03s ==========================",
            "1 failed, 2 passed in 0.03s",
            "==================== 2 passed, 1 warning in 12.31s (0:00:12) ====================",
            "=========================== 1 error in 0.10 seconds ============================",
            "============================ no tests ran in 0.00s =============================",
            "\x1b[31m========================= \x1b[31m\x1b[1m1 failed\x1b[0m, \x1b[32m2 passed\x1b[0m\x1b[31m in 0.03s\x1b[0m\x1b[31m ==========================\x1b[0m",
        ] {
            assert!(is_summary_line(l), "{l}");
        }
        for l in [
            "=========================== short test summary info ============================",
            "PASSED tests/test_clamp.py::test_clamp_inside",
            "tests/test_clamp.py ..F                                                  [100%]",
            "the run passed in 3 attempts",
        ] {
            assert!(!is_summary_line(l), "{l}");
        }
    }

    /// Real pytest 7.2.1 output (the instance image), graded by both rules.
    #[test]
    fn honest_logs_raise_no_flag() {
        let g = grader();
        let inst = mini1();
        let gold = fixture("logs/gold.txt");
        let s = g.grade(&inst, &gold_patch(), &gold);
        assert!(s.official.resolved && s.resolved, "{:?}", s.flags);
        let empty = fixture("logs/empty_patch.txt");
        let s = g.grade(&inst, "", &empty);
        assert!(!s.official.resolved && !s.resolved);
        assert!(s.flags.is_empty(), "{:?}", s.flags);
    }

    /// An atexit hook printed PASSED after pytest's `1 failed` summary: the
    /// official rules (last status wins) resolve it; strict does not.
    #[test]
    fn statuses_after_the_summary_do_not_count() {
        let inst = mini1();
        let log = fixture("logs/atexit_passed.txt");
        let official = grading::grade(&inst, &log);
        assert!(official.resolved, "the official rules are fooled");
        let flags = log_flags(
            &inst,
            "parse_log_pytest",
            parsers::python::parse_log_pytest,
            &log,
            GradeMode::Markers,
        );
        assert!(
            flags.contains(&"status_after_summary:tests/test_clamp.py::test_clamp_upper".into()),
            "{flags:?}"
        );
        // The honest control: the same run without the hook.
        let gold = fixture("logs/gold.txt");
        let flags = log_flags(
            &inst,
            "parse_log_pytest",
            parsers::python::parse_log_pytest,
            &gold,
            GradeMode::Markers,
        );
        assert!(flags.is_empty(), "{flags:?}");
    }

    #[test]
    fn disagreeing_duplicates_and_missing_summary_are_flagged() {
        let inst = mini1();
        // Real pytest output: the test passed, then its teardown errored.
        let log = fixture("logs/teardown_error.txt");
        let flags = log_flags(
            &inst,
            "parse_log_pytest",
            parsers::python::parse_log_pytest,
            &log,
            GradeMode::Markers,
        );
        assert_eq!(
            flags,
            vec!["duplicate_status:tests/test_clamp.py::test_clamp_upper".to_string()]
        );
        // Fake statuses and a hard exit before pytest could summarise.
        let cut = "+ pytest\n>>>>> Start Test Output\nPASSED tests/test_clamp.py::test_clamp_upper\n>>>>> End Test Output\n";
        let flags = log_flags(
            &inst,
            "parse_log_pytest",
            parsers::python::parse_log_pytest,
            cut,
            GradeMode::Markers,
        );
        assert_eq!(flags, vec![FLAG_NO_SUMMARY.to_string()]);
        // Lines about tests the row does not grade change nothing.
        let other = fixture("logs/gold.txt").replace(
            ">>>>> End Test Output",
            "PASSED tests/other.py::t\n>>>>> End Test Output",
        );
        let flags = log_flags(
            &inst,
            "parse_log_pytest",
            parsers::python::parse_log_pytest,
            &other,
            GradeMode::Markers,
        );
        assert!(flags.is_empty(), "{flags:?}");
        // Other runners: no log checks yet.
        assert!(
            log_flags(
                &inst,
                "parse_log_django",
                parsers::python::parse_log_django,
                cut,
                GradeMode::Markers
            )
            .is_empty()
        );
    }

    #[test]
    fn policy_flags_tests_and_runner_files_not_source() {
        let g = grader();
        let conftest = fixture("predictions/conftest_force_pass.diff");
        let f = g.patch_flags("airgate/mini", &conftest);
        assert!(
            f.contains(&"patch_policy:runner_config:conftest.py".into()),
            "{f:?}"
        );
        let shadow = fixture("predictions/shadow_pytest.diff");
        let f = g.patch_flags("airgate/mini", &shadow);
        assert!(
            f.contains(&"patch_policy:runner_shadow:pytest.py".into()),
            "{f:?}"
        );
        // Honest: a source fix, a docs change, a CI file and a changelog.
        let honest = "diff --git a/calc/ops.py b/calc/ops.py\n--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\ndiff --git a/docs/x.rst b/docs/x.rst\n--- a/docs/x.rst\n+++ b/docs/x.rst\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml\n--- a/.github/workflows/ci.yml\n+++ b/.github/workflows/ci.yml\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/CHANGES b/CHANGES\n--- a/CHANGES\n+++ b/CHANGES\n@@ -1 +1 @@\n-a\n+b\n";
        assert!(g.patch_flags("airgate/mini", honest).is_empty());
        // A plain unified diff (no `diff --git`) still applies: judged too.
        let loose = "--- a/conftest.py\n+++ b/conftest.py\n@@ -0,0 +1 @@\n+x = 1\n";
        assert!(
            g.patch_flags("airgate/mini", loose)
                .iter()
                .any(|f| f.starts_with("patch_policy:runner_config:conftest.py")),
        );
        let loose_ok =
            "Here is the fix.\n--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n";
        assert!(g.patch_flags("airgate/mini", loose_ok).is_empty());
        // A compiled module beside the source would be imported first.
        let so = "diff --git a/calc/ops.cpython-311-x86_64-linux-gnu.so b/calc/ops.cpython-311-x86_64-linux-gnu.so\nnew file mode 100644\nindex 0000000..1111111\nBinary files /dev/null and b/calc/ops.cpython-311-x86_64-linux-gnu.so differ\n";
        assert!(!g.patch_flags("airgate/mini", so).is_empty());
    }

    #[test]
    fn cheat_detectors_fire_on_cheats_not_on_look_alikes() {
        let g = grader();
        for (file, want) in [
            (
                "predictions/runtest_monkeypatch.diff",
                "cheat:runner_internals:calc/__init__.py",
            ),
            (
                "predictions/atexit_passed.diff",
                "cheat:exits_process:calc/__init__.py",
            ),
        ] {
            let f = g.patch_flags("airgate/mini", &fixture(file));
            assert!(f.contains(&want.to_string()), "{file}: {f:?}");
        }
        let honest = "diff --git a/calc/cli.py b/calc/cli.py\n--- a/calc/cli.py\n+++ b/calc/cli.py\n@@ -1,2 +1,6 @@\n+# we used to register an atexit hook here\n+def main():\n+    print(\"tests passed: 3\")\n+    if bad:\n+        sys.exit(2)\n+report_runtests = 1\n";
        assert!(
            g.patch_flags("airgate/mini", honest).is_empty(),
            "{:?}",
            g.patch_flags("airgate/mini", honest)
        );
        let exit = "diff --git a/calc/a.py b/calc/a.py\n--- a/calc/a.py\n+++ b/calc/a.py\n@@ -1 +1,2 @@\n+sys.exit(0)\n";
        assert_eq!(
            g.patch_flags("airgate/mini", exit),
            vec!["cheat:exits_process:calc/a.py".to_string()]
        );
        // pytest's own source reaches into _pytest legitimately.
        let own = "diff --git a/src/_pytest/python.py b/src/_pytest/python.py\n--- a/src/_pytest/python.py\n+++ b/src/_pytest/python.py\n@@ -1 +1,2 @@\n+from _pytest.nodes import Item\n";
        assert!(g.patch_flags("pytest-dev/pytest", own).is_empty());
        assert!(!g.patch_flags("airgate/mini", own).is_empty());
    }

    #[test]
    fn empty_patch_control_marks_broken() {
        let g = grader();
        let inst = mini1();
        let mut s = g.grade(&inst, &gold_patch(), &fixture("logs/gold.txt"));
        s.set_empty_patch_resolves(false);
        assert!(s.resolved && !s.broken);
        s.set_empty_patch_resolves(true);
        assert!(!s.resolved && s.broken && s.official.resolved);
        assert_eq!(s.flags, vec![FLAG_EMPTY_PATCH.to_string()]);
    }
}
