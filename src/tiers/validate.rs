//! `tiers validate`: a task is only worth scoring if its tests fail as
//! shipped, pass with `solution.patch`, and cannot be passed by editing the
//! tests. Each check runs the real gate on a fresh scratch workspace.

use std::path::Path;

use futures_util::StreamExt;
use serde::Serialize;

use super::TiersError;
use super::suite::Task;
use crate::gate::{GateRun, TestCommandGate, Verifier};
use crate::sandbox::Workspace;
use crate::sandbox::workspace::build_globset;

/// What validation found for one task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskCheck {
    /// Task id.
    pub id: String,
    /// Tier.
    pub tier: String,
    /// Language.
    pub language: String,
    /// Why the task is invalid; empty when it is valid.
    pub problems: Vec<String>,
    /// Protected files the tamper simulation overwrote.
    pub tampered: Vec<String>,
    /// Whether the tampered tests would have passed without protection
    /// (shows that protection, not luck, is what holds the gate).
    pub tamper_would_pass_unprotected: Option<bool>,
    /// Test-run time over every check, in milliseconds.
    pub test_ms: u64,
}

impl TaskCheck {
    /// True when no check failed.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Validates every task, `jobs` at a time, calling `progress` after each.
pub async fn validate_all(
    tasks: &[Task],
    jobs: usize,
    progress: impl Fn(&TaskCheck),
) -> Vec<TaskCheck> {
    let mut stream =
        futures_util::stream::iter(tasks.iter().map(validate_task)).buffer_unordered(jobs.max(1));
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(check) = stream.next().await {
        progress(&check);
        out.push(check);
    }
    // Report in suite order whatever order the checks finished in.
    out.sort_by_key(|c| {
        tasks
            .iter()
            .position(|t| t.id() == c.id)
            .unwrap_or(usize::MAX)
    });
    out
}

/// Runs the three checks on one task. Environment failures become problems
/// too: a task that cannot be checked is not a valid task.
pub async fn validate_task(task: &Task) -> TaskCheck {
    let mut check = TaskCheck {
        id: task.id().to_string(),
        tier: task.tier().to_string(),
        language: task.language().to_string(),
        problems: vec![],
        tampered: vec![],
        tamper_would_pass_unprotected: None,
        test_ms: 0,
    };
    if let Err(e) = run_checks(task, &mut check).await {
        check.problems.push(e.to_string());
    }
    check
}

async fn run_checks(task: &Task, check: &mut TaskCheck) -> Result<(), TiersError> {
    let gate = task.gate()?;
    let patch = task.solution_patch();
    let patch_text = std::fs::read_to_string(&patch).unwrap_or_default();
    if patch_text.trim().is_empty() {
        check
            .problems
            .push("solution.patch is missing or empty".into());
    }

    // 1. The tests fail as shipped.
    let ws = Workspace::copy_from(&task.repo())?;
    let run = gate_run(&gate, &ws, check).await?;
    if run.passed {
        check.problems.push(format!(
            "the tests pass as shipped (`{}` exited 0): there is no bug to fix",
            gate.test_cmd
        ));
    }
    drop(ws);

    // 2. They pass with solution.patch, which must not touch protected files.
    if !patch_text.trim().is_empty() {
        let ws = Workspace::copy_from(&task.repo())?;
        let abs = patch.canonicalize().map_err(|e| TiersError::Io {
            context: format!("resolving {}", patch.display()),
            source: e,
        })?;
        let abs = abs.to_string_lossy();
        match ws.git(&["apply", "--whitespace=nowarn", "--recount", abs.as_ref()]) {
            Err(e) => check
                .problems
                .push(format!("solution.patch does not apply to repo/: {e}")),
            Ok(_) => {
                let set = build_globset(&gate.protected)?;
                let touched: Vec<String> = ws
                    .changed_paths()?
                    .into_iter()
                    .filter(|p| set.is_match(p))
                    .collect();
                if !touched.is_empty() {
                    check.problems.push(format!(
                        "solution.patch edits protected file(s) {}: the gate restores them, so the fix must live elsewhere",
                        touched.join(", ")
                    ));
                }
                let run = gate_run(&gate, &ws, check).await?;
                if !run.passed {
                    check.problems.push(format!(
                        "the tests still fail with solution.patch ({}): {}",
                        describe_exit(&run),
                        last_lines(&run.output, 6)
                    ));
                }
            }
        }
    }

    // 3. Editing the tests cannot pass: overwrite every protected file with a
    // passing stub, then run the gate (which restores them) and require failure.
    let ws = Workspace::copy_from(&task.repo())?;
    let set = build_globset(&gate.protected)?;
    let protected_files: Vec<String> = ws
        .git(&["ls-files", "-z"])?
        .split('\0')
        .filter(|p| !p.is_empty() && set.is_match(p))
        .map(str::to_string)
        .collect();
    if protected_files.is_empty() {
        match &task.toml.protected {
            Some(globs) if globs.is_empty() => {} // the check lives in test_cmd
            Some(globs) => check.problems.push(format!(
                "no file in repo/ matches the protected globs {globs:?}: a patch could edit the tests"
            )),
            None => check.problems.push(
                "no file in repo/ matches the default test-file globs: list the test files in `protected`, or set `protected = []` when the whole check lives in test_cmd".into(),
            ),
        }
        return Ok(());
    }
    for rel in &protected_files {
        let full = ws.root().join(rel);
        let original = std::fs::read_to_string(&full).unwrap_or_default();
        std::fs::write(&full, tamper_stub(rel, &original)).map_err(|e| TiersError::Io {
            context: format!("tampering with {rel}"),
            source: e,
        })?;
    }
    check.tampered = protected_files;
    let unprotected = TestCommandGate {
        protected: vec![],
        ..gate.clone()
    };
    let would = gate_run(&unprotected, &ws, check).await?;
    check.tamper_would_pass_unprotected = Some(would.passed);
    crate::sandbox::blocking(|| ws.restore_matching(&gate.protected))?;
    let run = gate_run(&gate, &ws, check).await?;
    if run.passed {
        check.problems.push(format!(
            "a patch that stubs out the protected tests passes the gate (restored: {:?}): protect the files the test command reads",
            run.restored
        ));
    }
    Ok(())
}

async fn gate_run(
    gate: &TestCommandGate,
    ws: &Workspace,
    check: &mut TaskCheck,
) -> Result<GateRun, TiersError> {
    // Task repos are data: their tests run in the same bubblewrap sandbox
    // as an episode's gate.
    let sandbox = crate::sandbox::SandboxChoice::Local.open(ws, None).await?;
    let patch = crate::sandbox::blocking(|| ws.diff())?;
    let run = gate.check(sandbox.as_ref(), ws, &patch, None).await?;
    check.test_ms += run.duration_ms;
    Ok(run)
}

fn describe_exit(run: &GateRun) -> String {
    if run.timed_out {
        "timed out".into()
    } else {
        match run.exit_code {
            Some(c) => format!("exit {c}"),
            None => "killed".into(),
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "(no output)".into();
    }
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// The content a cheating patch would put in a test file so that it passes:
/// an empty but valid test per language. Shared with the CI tamper script's
/// intent (`tests/fixtures/tiers_tamper/tamper.jsonl`).
pub fn tamper_stub(rel_path: &str, original: &str) -> String {
    let name = Path::new(rel_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = Path::new(rel_path)
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    match ext.as_str() {
        "py" if name == "conftest.py" || name == "__init__.py" => String::new(),
        "py" => "def test_stub():\n    pass\n".into(),
        "go" => {
            let package = original
                .lines()
                .find_map(|l| l.trim().strip_prefix("package ").map(str::trim))
                .unwrap_or("main");
            format!("package {package}\n\nimport \"testing\"\n\nfunc TestStub(t *testing.T) {{}}\n")
        }
        "rs" => "#[test]\nfn stub() {}\n".into(),
        "js" | "mjs" | "cjs" | "ts" => "'use strict';\n".into(),
        "sh" | "bash" => "#!/bin/sh\nexit 0\n".into(),
        _ => String::new(),
    }
}

/// The human report: one line per invalid task with every reason.
pub fn render(checks: &[TaskCheck]) -> String {
    let mut out = String::new();
    for c in checks {
        if c.is_valid() {
            let tamper = match c.tamper_would_pass_unprotected {
                None => "no test files: the check lives in test_cmd".to_string(),
                Some(would) => format!(
                    "{} protected file(s) stubbed: held by the gate{}",
                    c.tampered.len(),
                    if would {
                        ", would pass unprotected"
                    } else {
                        ""
                    }
                ),
            };
            out.push_str(&format!("ok       {:<6} {} ({tamper})\n", c.tier, c.id));
        } else {
            for p in &c.problems {
                out.push_str(&format!("INVALID  {:<6} {}: {p}\n", c.tier, c.id));
            }
        }
    }
    let bad = checks.iter().filter(|c| !c.is_valid()).count();
    out.push_str(&format!(
        "\n{} task(s) checked: {} valid, {bad} invalid\n",
        checks.len(),
        checks.len() - bad
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_keep_the_go_package() {
        let s = tamper_stub(
            "pkg/calc_test.go",
            "// x\npackage calc\n\nimport \"testing\"\n",
        );
        assert!(s.starts_with("package calc\n"), "{s}");
        assert!(tamper_stub("tests/test_a.py", "").contains("def test_stub"));
        assert_eq!(tamper_stub("conftest.py", "import x"), "");
    }

    #[test]
    fn last_lines_skips_blanks() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
    }
}
