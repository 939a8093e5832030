//! The local backend (`--sandbox local --repos DIR`): instances whose repo
//! is a git checkout on this machine at `DIR/<owner>__<name>` and whose eval
//! script runs on the host (self-contained instances: this repo's own mini
//! datasets, tests, development). Production runs use the Docker backend.
//!
//! Each episode and each verification gets its own fresh clone at
//! `base_commit`, with history after it stripped by the shared
//! [`strip_future_history`] script; the eval script is the official one
//! ([`eval_script`]) with `/testbed` pointing at the fresh clone, and the
//! verdict comes from the shared grader.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use super::FactoryError;
use super::seams::{InstanceEnv, PatchVerifier, Prepared, Verdict};
use crate::git::Git;
use crate::sandbox::local::LocalSandbox;
use crate::sandbox::{ExecRequest, Sandbox, SandboxError, Workspace};
use crate::swebench::eval_script::{REPO_DIRECTORY, eval_script};
use crate::swebench::git_hygiene::strip_future_history;
use crate::swebench::instance::Instance;
use crate::swebench::patch_apply::apply_chain;
use crate::swebench::strict::StrictGrader;

/// Where local repos live and how long an eval may run.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    /// Folder holding one git repo per dataset repo, named `owner__name`.
    pub repos: PathBuf,
    /// Limit of one eval script run.
    pub eval_timeout: Duration,
}

impl LocalBackend {
    fn source_repo(&self, inst: &Instance) -> Result<PathBuf, FactoryError> {
        let dir = self.repos.join(inst.repo.replace('/', "__"));
        if dir.join(".git").exists() {
            Ok(dir)
        } else {
            Err(FactoryError::Config(format!(
                "{}: no git repo for `{}` at {} (the local sandbox expects --repos DIR/<owner>__<name>)",
                inst.instance_id,
                inst.repo,
                dir.display()
            )))
        }
    }

    /// A fresh clone of the instance's repo at `base_commit`, history after
    /// it stripped, in a new temporary directory.
    async fn fresh_clone(
        &self,
        inst: &Instance,
    ) -> Result<(tempfile::TempDir, PathBuf), FactoryError> {
        let src = self.source_repo(inst)?;
        let scratch = tempfile::Builder::new()
            .prefix("airgate-factory-")
            .tempdir()
            .map_err(|e| FactoryError::io("creating a scratch directory", e))?;
        let repo = scratch.path().join("testbed");
        let base = inst.base_commit.clone();
        let (src2, repo2) = (src.clone(), repo.clone());
        tokio::task::spawn_blocking(move || -> Result<(), FactoryError> {
            let git = Git::clone_local(&src2, &repo2).map_err(SandboxError::from)?;
            git.run(&["checkout", "-q", "--detach", &base])
                .map_err(SandboxError::from)?;
            Ok(())
        })
        .await
        .map_err(|e| FactoryError::Other(format!("clone task failed: {e}")))??;
        let sb = LocalSandbox::new(&repo);
        strip_future_history(&sb, &inst.base_commit)
            .await
            .map_err(|e| FactoryError::Other(format!("{}: {e}", inst.instance_id)))?;
        Ok((scratch, repo))
    }
}

#[async_trait]
impl InstanceEnv for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn prepare(&self, inst: &Instance) -> Result<Prepared, FactoryError> {
        let (scratch, repo) = self.fresh_clone(inst).await?;
        let workspace = crate::sandbox::blocking(|| Workspace::adopt(&repo))?;
        // The teacher's commands run in bubblewrap, like `solve`'s.
        let sandbox = crate::sandbox::SandboxChoice::Local
            .open(&workspace, None)
            .await?;
        Ok(Prepared {
            workspace,
            sandbox,
            scratch: Some(scratch),
        })
    }
}

#[async_trait]
impl PatchVerifier for LocalBackend {
    fn describe(&self) -> String {
        "local eval (fresh clone, official eval script, shared grader)".into()
    }

    async fn verify(&self, inst: &Instance, patch: &str) -> Result<Verdict, FactoryError> {
        let (scratch, repo) = self.fresh_clone(inst).await?;
        // The patched code runs in a fresh bubblewrap sandbox; the patch,
        // the eval script and git's global config live in a control
        // directory beside the clone, visible at the sandbox's report path.
        let ctl = scratch.path().join("ctl");
        std::fs::create_dir_all(&ctl).map_err(|e| FactoryError::io("creating ctl", e))?;
        std::fs::write(ctl.join("patch.diff"), patch)
            .map_err(|e| FactoryError::io("writing patch.diff", e))?;
        let repo =
            std::fs::canonicalize(&repo).map_err(|e| FactoryError::io("resolving the clone", e))?;
        let cfg = std::sync::Arc::new(crate::sandbox::config::SandboxConfig::load(None)?);
        let base = crate::sandbox::bwrap::BwrapSandbox::new(&repo, None, cfg)?;
        let sb = base.fresh(&repo, Some(&ctl)).await?;
        let inside = sb.report_dir().unwrap_or_else(|| ctl.display().to_string());
        let patch_file = format!("{inside}/patch.diff");
        let mut verdict = Verdict {
            verified_by: self.describe(),
            ..Verdict::default()
        };
        // The empty patch (the control) applies nothing.
        if !patch.trim().is_empty() {
            let applied = apply_chain(&sb, &patch_file).await?;
            if !applied.applied {
                verdict.error = Some(format!(
                    "the patch did not apply: {}",
                    applied.failure_message()
                ));
                return Ok(verdict);
            }
        }
        let script = eval_script(inst)
            .map_err(|e| FactoryError::Other(format!("{}: {e}", inst.instance_id)))?
            .replace(REPO_DIRECTORY, &repo.to_string_lossy());
        std::fs::write(ctl.join("eval.sh"), script)
            .map_err(|e| FactoryError::io("writing eval.sh", e))?;
        let mut req = ExecRequest::new(format!("bash {inside}/eval.sh"), self.eval_timeout);
        req.env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
        // Eval scripts run `git config --global ...`: keep that in the
        // control directory.
        req.env
            .push(("GIT_CONFIG_GLOBAL".into(), format!("{inside}/gitconfig")));
        let out = sb.exec(&req).await?;
        if out.timed_out {
            verdict.error = Some(format!(
                "the eval timed out after {} s",
                self.eval_timeout.as_secs()
            ));
            return Ok(verdict);
        }
        Ok(from_grade(inst, patch, &out.output, verdict))
    }
}

/// The installation's strict grader, loaded once per process.
static STRICT: std::sync::LazyLock<Result<StrictGrader, String>> =
    std::sync::LazyLock::new(|| StrictGrader::load(None).map_err(|e| e.to_string()));

/// Fills a verdict from the shared grader's strict view of a test log: the
/// factory always grades strictly (`resolved` needs the official verdict
/// and no flag; `resolved_official` keeps the official one).
pub fn from_grade(inst: &Instance, patch: &str, log: &str, mut verdict: Verdict) -> Verdict {
    let strict = match STRICT.as_ref() {
        Ok(s) => s.grade(inst, patch, log),
        Err(e) => {
            verdict.error = Some(format!("loading the patch policy: {e}"));
            return verdict;
        }
    };
    let g = strict.official;
    let ts = &g.tests_status;
    verdict.resolved = strict.resolved;
    verdict.resolved_official = g.resolved;
    verdict.flags = strict.flags;
    verdict.f2p_passed = ts.fail_to_pass.success.len();
    verdict.f2p_total = ts.fail_to_pass.success.len() + ts.fail_to_pass.failure.len();
    verdict.p2p_passed = ts.pass_to_pass.success.len();
    verdict.p2p_total = ts.pass_to_pass.success.len() + ts.pass_to_pass.failure.len();
    if let Some(e) = g.error {
        verdict.error = Some(e);
    } else if !g.patch_applied {
        verdict.error = Some("the test run did not count (no test output)".into());
    }
    verdict
}
