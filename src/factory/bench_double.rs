//! The instant backend (`--sandbox instant`), for the benchmark and tests
//! only: the agent gets a scratch workspace holding the problem statement,
//! commands "succeed" at once without running, and a non-empty patch counts
//! as resolved. Rows record `verified_by = "instant: nothing was run"`, so
//! they can never be mistaken for verified data.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::FactoryError;
use super::seams::{InstanceEnv, PatchVerifier, Prepared, Verdict};
use crate::sandbox::{ExecOutput, ExecRequest, Sandbox, SandboxError, Workspace};
use crate::swebench::instance::Instance;

/// What `verified_by` says for instant rows.
pub const INSTANT_VERIFIED_BY: &str = "instant: nothing was run (benchmark mode)";

/// The instant environment and verifier.
#[derive(Debug, Clone, Default)]
pub struct InstantBackend;

struct InstantSandbox {
    root: PathBuf,
}

#[async_trait]
impl Sandbox for InstantSandbox {
    fn kind(&self) -> &'static str {
        "instant"
    }
    fn workspace(&self) -> &Path {
        &self.root
    }
    async fn fresh(
        &self,
        root: &Path,
        _report_dir: Option<&Path>,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        Ok(Box::new(InstantSandbox {
            root: root.to_path_buf(),
        }))
    }
    async fn exec(&self, _req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        Ok(ExecOutput {
            exit_code: Some(0),
            ..ExecOutput::default()
        })
    }
}

#[async_trait]
impl InstanceEnv for InstantBackend {
    fn kind(&self) -> &'static str {
        "instant"
    }

    async fn prepare(&self, inst: &Instance) -> Result<Prepared, FactoryError> {
        let scratch = tempfile::Builder::new()
            .prefix("airgate-instant-")
            .tempdir()
            .map_err(|e| FactoryError::io("creating a scratch directory", e))?;
        let root = scratch.path().join("repo");
        std::fs::create_dir_all(&root)
            .map_err(|e| FactoryError::io("creating the workspace", e))?;
        std::fs::write(root.join("ISSUE.md"), &inst.problem_statement)
            .map_err(|e| FactoryError::io("writing ISSUE.md", e))?;
        let workspace = crate::sandbox::blocking(|| Workspace::adopt(&root))?;
        Ok(Prepared {
            workspace,
            sandbox: Box::new(InstantSandbox { root }),
            scratch: Some(scratch),
        })
    }
}

#[async_trait]
impl PatchVerifier for InstantBackend {
    fn describe(&self) -> String {
        INSTANT_VERIFIED_BY.into()
    }

    async fn verify(&self, _inst: &Instance, patch: &str) -> Result<Verdict, FactoryError> {
        let resolved = !crate::corpus::normalise_patch(patch).is_empty();
        Ok(Verdict {
            resolved,
            f2p_passed: usize::from(resolved),
            f2p_total: 1,
            verified_by: self.describe(),
            ..Verdict::default()
        })
    }
}
