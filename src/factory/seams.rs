//! The two injectable seams of the factory: where the agent works
//! ([`InstanceEnv`]) and what decides that a patch resolves an instance
//! ([`PatchVerifier`]). Docker provides the production pair; tests and the
//! benchmark plug in the local and instant ones.

use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::FactoryError;
use crate::gate::{GateRun, Verifier};
use crate::sandbox::{Sandbox, SandboxError, Workspace, workspace::build_globset};
use crate::swebench::instance::Instance;

/// The agent's environment for one episode: a scratch workspace holding the
/// repo at `base_commit` (no later history, no `test_patch`) and the sandbox
/// where its commands run. Dropping it removes the scratch files; call
/// [`Prepared::close`] to release containers.
pub struct Prepared {
    /// The repo the file tools edit.
    pub workspace: Workspace,
    /// Where `run` commands execute (its workspace is `workspace.root()`).
    pub sandbox: Box<dyn Sandbox>,
    /// Keeps the scratch directory alive for the episode.
    pub scratch: Option<tempfile::TempDir>,
}

impl Prepared {
    /// Releases the sandbox (removes its container, if any).
    pub async fn close(self) -> Result<(), SandboxError> {
        self.sandbox.close().await
    }
}

/// Sets up the agent's side of an episode.
#[async_trait]
pub trait InstanceEnv: Send + Sync {
    /// `docker`, `local` or `instant`: recorded in logs.
    fn kind(&self) -> &'static str;
    /// Builds the environment for `inst`. The agent must never see
    /// `test_patch` and must not be able to read commits after `base_commit`.
    async fn prepare(&self, inst: &Instance) -> Result<Prepared, FactoryError>;
    /// The id (`sha256:...`) of the image `inst` runs in, for the corpus's
    /// `image_digest`; `None` for sandboxes without an image.
    async fn image_digest(&self, _inst: &Instance) -> Option<String> {
        None
    }
}

/// The official-style verdict on one patch, from a fresh environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The strict verdict: FULL resolution (every FAIL_TO_PASS and
    /// PASS_TO_PASS test passes) and no strict-grading flag.
    pub resolved: bool,
    /// What the official rules alone said.
    #[serde(default)]
    pub resolved_official: bool,
    /// Why strict grading refused an official pass (see
    /// [`crate::swebench::strict`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// FAIL_TO_PASS tests that passed.
    pub f2p_passed: usize,
    /// FAIL_TO_PASS tests in total.
    pub f2p_total: usize,
    /// PASS_TO_PASS tests that passed.
    pub p2p_passed: usize,
    /// PASS_TO_PASS tests in total.
    pub p2p_total: usize,
    /// Set when the eval could not grade (patch did not apply, timeout...).
    pub error: Option<String>,
    /// What produced the verdict (e.g. `docker eval in sweb.eval.x86_64.ID`).
    pub verified_by: String,
}

/// Runs the official eval of a patch in a fresh environment.
#[async_trait]
pub trait PatchVerifier: Send + Sync {
    /// A short description, recorded as `verified_by`.
    fn describe(&self) -> String;
    /// Evaluates `patch` against `inst`: fresh checkout at `base_commit`,
    /// apply the patch, apply `test_patch`, run the tests, grade F2P/P2P.
    async fn verify(&self, inst: &Instance, patch: &str) -> Result<Verdict, FactoryError>;
    /// The empty-patch control: true when the instance resolves with no
    /// change at all (it is broken and must not be used).
    async fn empty_patch_resolves(&self, inst: &Instance) -> Result<bool, FactoryError> {
        let v = self.verify(inst, "").await?;
        Ok(v.error.is_none() && v.resolved_official)
    }
}

/// Flags as the agent may see them: the kind, and the path for patch
/// flags (its own files); never a hidden test's name.
pub fn flags_for_agent(flags: &[String]) -> String {
    flags
        .iter()
        .map(|f| {
            let kind = f.split(':').next().unwrap_or(f);
            if kind == crate::swebench::strict::FLAG_POLICY
                || kind == crate::swebench::strict::FLAG_CHEAT
            {
                f.as_str()
            } else {
                kind
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Globs of files the agent may not change: the default test conventions
/// plus every file `test_patch` touches.
pub fn protected_globs(inst: &Instance) -> Vec<String> {
    let mut globs: Vec<String> = crate::gate::DEFAULT_PROTECTED
        .iter()
        .map(|s| s.to_string())
        .collect();
    globs.extend(crate::swebench::eval_script::modified_files(
        &inst.test_patch,
    ));
    globs
}

/// Paths changed by a unified diff (`diff --git a/X b/Y` headers, both sides).
pub fn patch_paths(patch: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            for part in rest.split(' ') {
                let p = part
                    .strip_prefix("a/")
                    .or_else(|| part.strip_prefix("b/"))
                    .unwrap_or(part);
                if !p.is_empty() && !out.iter().any(|x| x == p) {
                    out.push(p.to_string());
                }
            }
        }
    }
    out
}

/// Paths of `patch` matching the protected globs of `inst`.
pub fn tampered_paths(inst: &Instance, patch: &str) -> Result<Vec<String>, FactoryError> {
    let set = build_globset(&protected_globs(inst))?;
    Ok(patch_paths(patch)
        .into_iter()
        .filter(|p| set.is_match(p))
        .collect())
}

/// The text the agent sees at baseline: the hidden evaluation has not run.
pub const BASELINE_NOTICE: &str = "The hidden evaluation tests have not been run yet: they run in a fresh environment after you submit. Reproduce the bug yourself, fix it in the source (not in tests), then submit.";

/// The engine's gate during a factory episode. The baseline check reports
/// "not yet verified" without running anything (the hidden tests must not
/// be shown); every later check evaluates the workspace diff with the
/// [`PatchVerifier`] in a fresh environment. The agent only learns
/// pass/fail counts, never test names or output.
pub struct HiddenEvalGate<'a> {
    /// The instance.
    pub instance: &'a Instance,
    /// The fresh-environment evaluator.
    pub verifier: &'a dyn PatchVerifier,
    checks: Mutex<u32>,
    flags: Mutex<Vec<String>>,
}

impl<'a> HiddenEvalGate<'a> {
    /// A gate for one episode.
    pub fn new(instance: &'a Instance, verifier: &'a dyn PatchVerifier) -> Self {
        Self {
            instance,
            verifier,
            checks: Mutex::new(0),
            flags: Mutex::new(Vec::new()),
        }
    }

    /// Every strict-grading flag raised by a check of this episode (the
    /// agent saw only their kinds).
    pub fn flags(&self) -> Vec<String> {
        self.flags.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

fn gate_run(passed: bool, output: String) -> GateRun {
    GateRun {
        passed,
        exit_code: Some(if passed { 0 } else { 1 }),
        timed_out: false,
        output,
        duration_ms: 0,
        restored: vec![],
        runs: 1,
        tests: None,
        judgement: None,
    }
}

#[async_trait]
impl Verifier for HiddenEvalGate<'_> {
    fn describe(&self) -> String {
        "hidden SWE-bench evaluation (FAIL_TO_PASS / PASS_TO_PASS, run after submit)".into()
    }

    async fn check(
        &self,
        _sandbox: &dyn Sandbox,
        _workspace: &Workspace,
        patch: &str,
        _baseline: Option<&GateRun>,
    ) -> Result<GateRun, SandboxError> {
        let first = {
            let mut n = self
                .checks
                .lock()
                .map_err(|_| SandboxError::Other("gate state poisoned".into()))?;
            *n += 1;
            *n == 1
        };
        if first {
            return Ok(gate_run(false, BASELINE_NOTICE.to_string()));
        }
        if crate::corpus::normalise_patch(patch).is_empty() {
            return Ok(gate_run(
                false,
                "No changes were made: the hidden evaluation was not run.".into(),
            ));
        }
        let tampered =
            tampered_paths(self.instance, patch).map_err(|e| SandboxError::Other(e.to_string()))?;
        if !tampered.is_empty() {
            return Ok(gate_run(
                false,
                format!(
                    "Rejected: the patch changes test files ({}). Tests are fixed by the evaluator; fix the source instead.",
                    tampered.join(", ")
                ),
            ));
        }
        let verdict = self
            .verifier
            .verify(self.instance, patch)
            .await
            .map_err(|e| match e {
                FactoryError::Sandbox(s) => s,
                other => SandboxError::Other(other.to_string()),
            })?;
        if !verdict.flags.is_empty()
            && let Ok(mut f) = self.flags.lock()
        {
            for flag in &verdict.flags {
                if !f.contains(flag) {
                    f.push(flag.clone());
                }
            }
        }
        let text = match &verdict.error {
            Some(e) => format!("The hidden evaluation could not grade the patch: {e}"),
            None if !verdict.flags.is_empty() => format!(
                "Hidden evaluation: NOT resolved: strict grading refused the patch ({}). Fix the source code; do not change tests, the test runner or its output.",
                flags_for_agent(&verdict.flags)
            ),
            None => format!(
                "Hidden evaluation: {}. Tests that must start passing: {}/{} pass; tests that must keep passing: {}/{} pass.",
                if verdict.resolved {
                    "resolved"
                } else {
                    "NOT resolved"
                },
                verdict.f2p_passed,
                verdict.f2p_total,
                verdict.p2p_passed,
                verdict.p2p_total
            ),
        };
        Ok(gate_run(verdict.resolved, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tamper_detection_uses_defaults_and_test_patch_files() {
        let inst = Instance {
            test_patch: "diff --git a/pkg/checks.py b/pkg/checks.py\n--- a/pkg/checks.py\n+++ b/pkg/checks.py\n".into(),
            ..Instance::default()
        };
        let patch = "diff --git a/calc/core.py b/calc/core.py\n--- a/calc/core.py\n+++ b/calc/core.py\n@@\n";
        assert!(tampered_paths(&inst, patch).unwrap().is_empty());
        let patch = "diff --git a/tests/test_core.py b/tests/test_core.py\n";
        assert_eq!(
            tampered_paths(&inst, patch).unwrap(),
            ["tests/test_core.py"]
        );
        let patch = "diff --git a/pkg/checks.py b/pkg/checks.py\n";
        assert_eq!(tampered_paths(&inst, patch).unwrap(), ["pkg/checks.py"]);
        let patch = "diff --git a/conftest.py b/conftest.py\n";
        assert_eq!(tampered_paths(&inst, patch).unwrap(), ["conftest.py"]);
    }
}
