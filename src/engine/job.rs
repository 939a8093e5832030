//! Episode set-up: what one episode works on ([`Episode`]), the owned
//! guard rails every front end builds it from ([`Job`]), the system prompt
//! and the trajectory's opening record.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;

use super::prompt;
use super::trajectory::{Outcome, Trajectory};
use super::{EngineConfig, Progress};
use crate::error::Retryable;
use crate::gate::Verifier;
use crate::gate::policy::PatchPolicy;
use crate::model::{Policy, Usage};
use crate::redact::{RedactError, Redactor};
use crate::sandbox::{Sandbox, Workspace};
use crate::tools::approval::{ApprovalError, ApprovalMode, ApprovalPolicy};
use crate::tools::{self, Registry};

/// Everything one episode works on.
pub struct Episode<'a> {
    /// The bug report / task statement.
    pub task: String,
    /// Label recorded as `repo` in the trajectory.
    pub repo_label: String,
    /// Where commands run.
    pub sandbox: &'a dyn Sandbox,
    /// The scratch workspace (its root is the sandbox's workspace).
    pub workspace: &'a Workspace,
    /// The gate.
    pub verifier: &'a dyn Verifier,
    /// The patch policy: what a patch may change. Refused changes are
    /// dropped from the patch before the gate (and `str_replace` refuses
    /// them when they are made). `None` keeps every change (the factory's
    /// hidden evaluation applies its own rules).
    pub policy: Option<&'a PatchPolicy>,
    /// The approval policy and mode for `run` (`None`: no approval step).
    pub approval: Option<(&'a ApprovalPolicy, ApprovalMode)>,
    /// Removes secrets from every tool result and gate output before the
    /// model (or the trajectory) sees them.
    pub redactor: Option<&'a Redactor>,
    /// Where to mirror the trajectory as it grows (for saving partial runs).
    pub progress: Option<&'a Progress>,
    /// The tools offered: [`tools::Registry::builtin`], plus any registered
    /// at run time (MCP servers).
    pub tools: &'a Registry,
    /// MCP servers whose tools are offered beside the built-in ones.
    pub mcp: Option<&'a crate::mcp::McpHub>,
}

/// A job's guard rails could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The approval rules do not load.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// The redaction settings do not load.
    #[error("redaction settings: {0}")]
    Redaction(#[from] RedactError),
}

impl Retryable for JobError {
    fn is_retryable(&self) -> bool {
        match self {
            JobError::Approval(e) => e.is_retryable(),
            JobError::Redaction(e) => e.is_retryable(),
        }
    }
}

/// The owned set-up of one episode, the same for `solve`, `tiers run` and
/// `factory run`: the task, its label, the patch policy, the approval rules
/// (when commands need approval) and the redactor. [`Job::episode`] lends
/// them to an [`Episode`].
#[derive(Debug)]
pub struct Job {
    task: String,
    repo_label: String,
    patch_policy: PatchPolicy,
    approval: Option<(ApprovalPolicy, ApprovalMode)>,
    redactor: Arc<Redactor>,
}

impl Job {
    /// Loads the installation's approval rules (only with `approval`: `None`
    /// means no approval step) and redaction settings. With `masked`, the
    /// values in the repository's masked files (`(repo, workspace)`: the
    /// original files the workspace left out) are redacted too.
    pub fn new(
        task: String,
        repo_label: String,
        patch_policy: PatchPolicy,
        approval: Option<ApprovalMode>,
        masked: Option<(&Path, &Workspace)>,
    ) -> Result<Self, JobError> {
        let approval = match approval {
            Some(mode) => Some((ApprovalPolicy::load(None)?, mode)),
            None => None,
        };
        // Secrets: this process's secret-looking variables and the values
        // in the masked files never reach the model or any file written.
        let mut redactor = Redactor::from_env()?;
        if let Some((repo, workspace)) = masked {
            for rel in workspace.masked() {
                if let Err(e) = redactor.add_file(&repo.join(rel)) {
                    tracing::warn!(file = %rel, error = %e, "cannot read a masked file for redaction");
                }
            }
        }
        Ok(Self {
            task,
            repo_label,
            patch_policy,
            approval,
            redactor: Arc::new(redactor),
        })
    }

    /// The redactor, shareable beyond the episode (the audit log's hook).
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// The episode of this job in `sandbox` over `workspace`, judged by
    /// `verifier`, with the built-in tools, no MCP servers and no progress
    /// mirror (set those with struct update syntax).
    pub fn episode<'a>(
        &'a self,
        sandbox: &'a dyn Sandbox,
        workspace: &'a Workspace,
        verifier: &'a dyn Verifier,
    ) -> Episode<'a> {
        Episode {
            task: self.task.clone(),
            repo_label: self.repo_label.clone(),
            sandbox,
            workspace,
            verifier,
            policy: Some(&self.patch_policy),
            approval: self.approval.as_ref().map(|(p, m)| (p, *m)),
            redactor: Some(self.redactor.as_ref()),
            progress: None,
            tools: Registry::builtin(),
            mcp: None,
        }
    }
}

/// The system prompt's parts, gathered once per episode: the base prompt,
/// the MCP tools' section and the project context. Only a policy's own
/// addendum differs between escalation stages.
pub(super) struct SystemPrompt {
    base: String,
    builtin_schemas: Vec<serde_json::Value>,
    sections: Vec<String>,
    project: Option<super::trajectory::ProjectContext>,
}

impl SystemPrompt {
    /// Reads the base prompt, the MCP section and (from the scratch copy,
    /// before the agent can touch it, redacted like any tool output and
    /// quoted as data) the project context.
    pub(super) fn gather(ep: &Episode<'_>, cfg: &EngineConfig) -> Self {
        // The text protocol's tool list in the system prompt names the
        // built-in tools; MCP tools get their own section, which names them
        // and their arguments only (a server's words never reach the system
        // prompt).
        let mcp_section = ep.mcp.and_then(|h| h.prompt_section());
        let project = (cfg.context_bytes > 0)
            .then(|| prompt::read_project_context(ep.workspace.root(), cfg.context_bytes))
            .flatten();
        let context_section = project.as_ref().map(|(meta, text)| {
            let text = match ep.redactor {
                Some(r) => r.redact(text).into_owned(),
                None => text.clone(),
            };
            prompt::context_section(&meta.file, &text, meta.truncated)
        });
        Self {
            base: prompt::system_prompt(),
            builtin_schemas: tools::schemas(),
            sections: [mcp_section, context_section]
                .into_iter()
                .flatten()
                .collect(),
            project: project.map(|(meta, _)| meta),
        }
    }

    /// The system prompt `policy` sees: the base, its addendum, the sections.
    pub(super) fn for_policy(&self, policy: Option<&dyn Policy>) -> String {
        let mut system = self.base.clone();
        if let Some(add) = policy.and_then(|p| p.system_prompt_addendum(&self.builtin_schemas)) {
            system.push_str("\n\n");
            system.push_str(&add);
        }
        for add in &self.sections {
            system.push_str("\n\n");
            system.push_str(add);
        }
        system
    }

    /// The trajectory's opening record, before the baseline, with the first
    /// stage's system prompt.
    pub(super) fn trajectory(&self, ep: &Episode<'_>, first: Option<&dyn Policy>) -> Trajectory {
        Trajectory {
            schema_version: 1,
            engine_version: crate::ENGINE_VERSION.to_string(),
            task: ep.task.clone(),
            repo: ep.repo_label.clone(),
            test_cmd: ep.verifier.describe(),
            sandbox: ep.sandbox.kind().to_string(),
            system_prompt: self.for_policy(first),
            tools: ep.tools.schemas(),
            started_at: Utc::now(),
            baseline: None,
            attempts: vec![],
            outcome: Outcome::GateHeld,
            patch: String::new(),
            verified_by: None,
            usage: Usage::default(),
            wall_s: 0.0,
            aborted: None,
            flags: vec![],
            masked: ep.workspace.masked().to_vec(),
            mcp: ep.mcp.map(|h| h.records()).unwrap_or_default(),
            budget: None,
            project_context: self.project.clone(),
        }
    }
}
