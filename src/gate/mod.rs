//! The gate: the only way out with a patch is a passing run of the real
//! test command on that patch.
//!
//! The gate never runs where the agent worked. Each run takes a fresh copy
//! of the pristine tree, applies the candidate patch with the harness's own
//! git, and runs the tests in a fresh sandbox: no agent process is alive
//! and no file the agent wrote outside its diff exists there. The verdict
//! belongs to that patch and nothing else.

pub mod detect;
pub mod policy;
pub mod results;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::sandbox::{ExecRequest, Sandbox, SandboxError, Workspace};
use crate::truncate::head_tail;

/// Default limit of one test run.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Bytes of gate output kept in trajectories and fed back to the model.
pub const GATE_OUTPUT_LIMIT: usize = 10_000;

/// Test-file conventions protected by default (Python, Rust, Go, JS).
pub const DEFAULT_PROTECTED: &[&str] = &[
    "tests/**",
    "test/**",
    "__tests__/**",
    "test_*.py",
    "*_test.py",
    "conftest.py",
    "pytest.ini",
    "tox.ini",
    ".cargo/**",
    "*_test.go",
    "*.test.js",
    "*.spec.js",
    "*.test.ts",
    "*.spec.ts",
];

/// One run of the test command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateRun {
    /// True only for exit code 0 within the timeout.
    pub passed: bool,
    /// Exit code, `None` when killed.
    pub exit_code: Option<i32>,
    /// True when the run hit its timeout (always a failure).
    pub timed_out: bool,
    /// Output, truncated head + tail.
    pub output: String,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Protected paths restored before this run (older trajectories; the
    /// patch policy now drops such changes before the gate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<String>,
    /// Passing runs on fresh copies behind this verdict (`--gate-runs`); a
    /// failing run ends the series.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runs: u32,
    /// The per-test table the runner reported (structured runners only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<results::TestTable>,
    /// The test-by-test verdict against the baseline (not for the
    /// baseline run itself). `passed` is its `verified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<results::Judgement>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Anything that can decide whether the workspace is fixed. The standard
/// gate runs a test command; the factory plugs in the official SWE-bench
/// eval in a fresh container.
#[async_trait]
pub trait Verifier: Send + Sync {
    /// The command shown to users and recorded as `test_cmd`.
    fn describe(&self) -> String;
    /// Judges `patch` (the policy-filtered diff against the baseline; `""`
    /// for the baseline run). `baseline` is the baseline's run, `None` when
    /// this is the baseline. `sandbox` is the agent's sandbox: gates that
    /// run commands use [`Sandbox::fresh`] from it, never it.
    async fn check(
        &self,
        sandbox: &dyn Sandbox,
        workspace: &Workspace,
        patch: &str,
        baseline: Option<&GateRun>,
    ) -> Result<GateRun, SandboxError>;
}

/// The standard gate: a shell test command whose exit code is the verdict.
#[derive(Debug, Clone)]
pub struct TestCommandGate {
    /// Shell command line.
    pub test_cmd: String,
    /// Per-run timeout; the process group is killed past it.
    pub timeout: Duration,
    /// Globs a patch may not touch (added to the policy's defaults).
    pub protected: Vec<String>,
    /// Runs on fresh copies a pass needs (`--gate-runs`, at least 1).
    pub runs: u32,
    /// Tests the task names as targets: they must pass (beside every test
    /// that failed at baseline).
    pub targets: Vec<String>,
}

impl TestCommandGate {
    /// One run of the test command on a fresh pristine copy with `patch`,
    /// in a fresh sandbox made from `sandbox`.
    async fn run_once(
        &self,
        sandbox: &dyn Sandbox,
        workspace: &Workspace,
        patch: &str,
        baseline: Option<&GateRun>,
    ) -> Result<GateRun, SandboxError> {
        let fresh = crate::sandbox::blocking(|| workspace.fresh_tree(patch))?;
        let sb = sandbox
            .fresh(fresh.root(), Some(fresh.report_dir()))
            .await?;
        let runner = results::detect_runner(&self.test_cmd, fresh.root());
        let report_dir = sb
            .report_dir()
            .unwrap_or_else(|| fresh.report_dir().display().to_string());
        let inst = results::instrument(runner, &self.test_cmd, &report_dir);
        let mut req = ExecRequest::new(inst.command, self.timeout);
        req.env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
        req.env.push(("CI".into(), "true".into()));
        req.env.extend(inst.env);
        let out = sb.exec(&req).await;
        let _ = sb.close().await;
        let out = out?;
        // A report that exists but cannot be trusted is an anomaly: never
        // verified, and said why.
        let table = match results::collect(runner, fresh.report_dir(), &out.output) {
            Ok(t) => t,
            Err(e) => {
                let mut t = results::TestTable::new(runner);
                t.anomalies.push(e.to_string());
                Some(t)
            }
        };
        let judgement = baseline.map(|b| {
            results::judge(
                out.success(),
                runner,
                b.tests.as_ref(),
                table.as_ref(),
                &self.targets,
            )
        });
        let mut output = head_tail(&out.output, GATE_OUTPUT_LIMIT);
        let passed = match &judgement {
            Some(j) => {
                if out.success() && !j.verified {
                    output.push_str(&format!(
                        "\n\n[airgate gate] the command exited 0, but the test-by-test check failed: {}",
                        j.reasons.join("; ")
                    ));
                }
                j.verified
            }
            None => out.success(),
        };
        Ok(GateRun {
            passed,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            output,
            duration_ms: out.duration_ms,
            restored: vec![],
            runs: 1,
            tests: table,
            judgement,
        })
    }
}

#[async_trait]
impl Verifier for TestCommandGate {
    fn describe(&self) -> String {
        self.test_cmd.clone()
    }

    async fn check(
        &self,
        sandbox: &dyn Sandbox,
        workspace: &Workspace,
        patch: &str,
        baseline: Option<&GateRun>,
    ) -> Result<GateRun, SandboxError> {
        let mut run = self.run_once(sandbox, workspace, patch, baseline).await?;
        // A pass must repeat on fresh copies, so a flaky pass is never
        // kept; the baseline runs once.
        let wanted = if baseline.is_some() {
            self.runs.max(1)
        } else {
            1
        };
        while run.passed && run.runs < wanted {
            let again = self.run_once(sandbox, workspace, patch, baseline).await?;
            let runs = run.runs + 1;
            let duration_ms = run.duration_ms + again.duration_ms;
            if !again.passed {
                run = again;
            }
            run.runs = runs;
            run.duration_ms = duration_ms;
        }
        Ok(run)
    }
}

/// Detects the test command from the repo's files, in DESIGN order:
/// Cargo, Go, npm (with a test script), pytest markers, make.
pub fn detect_test_command(repo: &Path) -> Option<String> {
    if repo.join("Cargo.toml").is_file() {
        return Some("cargo test".into());
    }
    if repo.join("go.mod").is_file() {
        return Some("go test ./...".into());
    }
    let npm_test = std::fs::read_to_string(repo.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| {
            v.pointer("/scripts/test")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        })
        .is_some_and(|t| !t.trim().is_empty());
    if npm_test {
        return Some("npm test".into());
    }
    if has_pytest_markers(repo) {
        return Some("python -m pytest -q".into());
    }
    let make_test = std::fs::read_to_string(repo.join("Makefile")).is_ok_and(|text| {
        text.lines()
            .any(|l| l.starts_with("test:") || l.starts_with("test :"))
    });
    if make_test {
        return Some("make test".into());
    }
    None
}

fn has_pytest_markers(repo: &Path) -> bool {
    if repo.join("pytest.ini").is_file() || repo.join("conftest.py").is_file() {
        return true;
    }
    let mentions = |f: &str, needle: &str| {
        std::fs::read_to_string(repo.join(f)).is_ok_and(|t| t.contains(needle))
    };
    if mentions("pyproject.toml", "[tool.pytest")
        || mentions("setup.cfg", "[tool:pytest]")
        || mentions("tox.ini", "[pytest]")
    {
        return true;
    }
    let tests = repo.join("tests");
    std::fs::read_dir(&tests).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            (n.starts_with("test_") && n.ends_with(".py")) || n.ends_with("_test.py")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let full = d.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, c).unwrap();
        }
        d
    }

    #[test]
    fn detection_order_and_markers() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            (
                &[("Cargo.toml", "[package]"), ("go.mod", "module x")],
                Some("cargo test"),
            ),
            (
                &[
                    ("go.mod", "module x"),
                    ("package.json", r#"{"scripts":{"test":"jest"}}"#),
                ],
                Some("go test ./..."),
            ),
            (
                &[("package.json", r#"{"scripts":{"test":"node t.js"}}"#)],
                Some("npm test"),
            ),
            (&[("package.json", r#"{"scripts":{}}"#)], None),
            (&[("pytest.ini", "")], Some("python -m pytest -q")),
            (
                &[("pyproject.toml", "[tool.pytest.ini_options]\n")],
                Some("python -m pytest -q"),
            ),
            (&[("pyproject.toml", "[project]\nname='x'\n")], None),
            (
                &[("setup.cfg", "[tool:pytest]\n")],
                Some("python -m pytest -q"),
            ),
            (&[("conftest.py", "")], Some("python -m pytest -q")),
            (&[("tests/test_x.py", "")], Some("python -m pytest -q")),
            (
                &[("Makefile", "all:\n\ttrue\ntest:\n\ttrue\n")],
                Some("make test"),
            ),
            (&[("Makefile", "all:\n\ttrue\n")], None),
            (&[("README", "")], None),
        ];
        for (files, want) in cases {
            let d = dir_with(files);
            assert_eq!(detect_test_command(d.path()).as_deref(), *want, "{files:?}");
        }
    }
}
