//! Model backends behind one policy trait.
//!
//! The engine only ever calls [`Policy::propose`]: given the conversation so
//! far, return the next assistant message (ideally one tool call). Everything
//! model-specific — wire formats, the text tool-call protocol, retries, the
//! context budget, token accounting — lives behind that call, so the loop is
//! identical for a replayed script, a 135M local model and a frontier teacher.

pub mod anthropic;
pub mod config;
pub mod context;
pub mod http;
pub mod local;
pub mod ollama;
pub mod openai;
pub mod provider;
pub mod reference;
pub mod remote;
pub mod script;
pub mod spec;
pub mod text_protocol;

use crate::error::Retryable;
use async_trait::async_trait;
pub use spec::ModelSpec;

pub use crate::protocol::{Message, Role, ToolCall, Usage};

/// The policy's answer for one step.
#[derive(Debug, Clone, Default)]
pub struct Proposal {
    /// The assistant message to append to the conversation. Its `tool_calls`
    /// holds the parsed action(s); empty when the reply had no valid action.
    pub message: Option<Message>,
    /// Raw text of the reply as received (for the trajectory).
    pub raw: String,
    /// Set when the reply yielded no valid action: what was wrong. The engine
    /// records it and sends the model [`Proposal::format_hint`] if present.
    pub format_error: Option<String>,
    /// What the model should be told after a format error (shows the expected format).
    pub format_hint: Option<String>,
    /// Usage of this call.
    pub usage: Usage,
    /// Harness notes to record, e.g. "elided 6 old observations to fit the context".
    pub notes: Vec<String>,
    /// Wall time of the model call in milliseconds.
    pub latency_ms: u64,
}

/// Errors from a policy. Retries already happened inside the backend; what
/// reaches the engine is final for this step.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The server could not be reached or kept failing transiently.
    #[error("model server {endpoint} unreachable: {detail}")]
    Unreachable {
        /// Base URL.
        endpoint: String,
        /// Underlying cause.
        detail: String,
    },
    /// HTTP error status that is not worth retrying (401, 404, 400...).
    #[error("{0}")]
    Rejected(String),
    /// A transient failure that exhausted the retry budget.
    #[error("transient model failure after retries: {0}")]
    Transient(String),
    /// The request or whole call timed out.
    #[error("model call timed out after {0} s")]
    Timeout(u64),
    /// A bad model spec, config file or policy input (e.g. a malformed script line).
    #[error("{0}")]
    Config(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ModelError {
    /// The one answer to "is this the user's configuration, or a broken
    /// environment?": a bad spec, config file or a refused call (wrong key,
    /// unknown model) is configuration the user must fix (exit 2); a server
    /// that cannot be started or reached is a broken environment (exit 3).
    pub fn exit_code(&self) -> u8 {
        match self {
            ModelError::Config(_) | ModelError::Rejected(_) => crate::error::exit::USAGE,
            _ => crate::error::exit::ENVIRONMENT,
        }
    }
}

impl Retryable for ModelError {
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            ModelError::Unreachable { .. } | ModelError::Transient(_) | ModelError::Timeout(_)
        )
    }
}

/// What a policy may know about the episode it serves, fixed at start.
#[derive(Debug, Clone, Default)]
pub struct EpisodeInfo {
    /// The tool schemas offered (OpenAI function format).
    pub tools: Vec<serde_json::Value>,
}

/// The one interface between the loop and any model.
#[async_trait]
pub trait Policy: Send {
    /// A stable, human-readable name recorded in trajectories (e.g. `openai:qwen@http://...`).
    fn name(&self) -> String;

    /// Proposes the next assistant message for `conversation`.
    async fn propose(
        &mut self,
        conversation: &[Message],
        info: &EpisodeInfo,
    ) -> Result<Proposal, ModelError>;

    /// Text appended to the system prompt (e.g. the text tool-call protocol).
    /// `tools` are the schemas offered, for protocols that list them.
    fn system_prompt_addendum(&self, tools: &[serde_json::Value]) -> Option<String> {
        let _ = tools;
        None
    }

    /// Samples hotter from now on (after an attempt that got stuck, a
    /// hotter one is likelier to leave the rut); returns the new
    /// temperature, or `None` when the backend has no such knob.
    fn raise_temperature(&mut self) -> Option<f32> {
        None
    }

    /// Releases resources (e.g. stops a local server this policy started).
    async fn shutdown(&mut self) {}
}
