//! `reference`: applies a tier task's `solution.patch` through the `run`
//! tool, then submits. Used only to validate tasks; it exercises the same
//! tools and gate as any model.

use std::path::Path;

use async_trait::async_trait;

use super::script::ScriptPolicy;
use super::{EpisodeInfo, Message, ModelError, Policy, Proposal};

/// Heredoc delimiter; chosen so it cannot plausibly occur in a patch line.
const EOF_MARK: &str = "AIRGATE_REFERENCE_PATCH_EOF";

/// Applies the reference patch with `git apply`, then submits.
#[derive(Debug)]
pub struct ReferencePolicy {
    inner: ScriptPolicy,
}

impl ReferencePolicy {
    /// Reads the patch; an unreadable or empty patch is a config error.
    pub fn load(patch: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(patch)
            .map_err(|e| ModelError::Config(format!("cannot read {}: {e}", patch.display())))?;
        if text.trim().is_empty() {
            return Err(ModelError::Config(format!("{} is empty", patch.display())));
        }
        if text.lines().any(|l| l == EOF_MARK) {
            return Err(ModelError::Config(format!(
                "{} contains the line {EOF_MARK}",
                patch.display()
            )));
        }
        let body = if text.ends_with('\n') {
            text
        } else {
            format!("{text}\n")
        };
        let command =
            format!("git apply --whitespace=nowarn --recount - <<'{EOF_MARK}'\n{body}{EOF_MARK}");
        let calls = vec![("run".to_string(), serde_json::json!({ "command": command }))];
        Ok(Self {
            inner: ScriptPolicy::from_calls("reference", calls),
        })
    }
}

#[async_trait]
impl Policy for ReferencePolicy {
    fn name(&self) -> String {
        "reference".into()
    }

    async fn propose(
        &mut self,
        conversation: &[Message],
        info: &EpisodeInfo,
    ) -> Result<Proposal, ModelError> {
        self.inner.propose(conversation, info).await
    }
}
