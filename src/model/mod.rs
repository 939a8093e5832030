//! Model backends behind one policy trait.
//!
//! The engine only ever calls [`Policy::propose`]: given the conversation so
//! far, return the next assistant message (ideally one tool call). Everything
//! model-specific — wire formats, the text tool-call protocol, retries, the
//! context budget, token accounting — lives behind that call, so the loop is
//! identical for a replayed script, a 135M local model and a frontier teacher.

pub mod anthropic;
pub mod build;
pub mod config;
pub mod context;
pub mod http;
pub mod local;
pub mod ollama;
pub mod openai;
pub mod reference;
pub mod remote;
pub mod script;
pub mod spec;
pub mod text_protocol;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Retryable;
pub use spec::ModelSpec;

/// Who said a message. Serialises to the OpenAI role names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system prompt.
    System,
    /// The task, harness feedback, nudges.
    User,
    /// The model.
    Assistant,
    /// A tool result, tied to a call by `tool_call_id`.
    Tool,
}

/// One tool invocation requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id; backends without native ids get a generated `call_<n>`.
    pub id: String,
    /// Tool name, e.g. `read_file`.
    pub name: String,
    /// Arguments as a JSON object.
    pub arguments: serde_json::Value,
}

/// A chat message in a backend-neutral shape that maps 1:1 onto OpenAI's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Speaker.
    pub role: Role,
    /// Text content (may be empty for a pure tool-call message).
    #[serde(default)]
    pub content: String,
    /// Tool calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this result answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
            tool_calls,
            tool_call_id: None,
        }
    }
    /// A tool result answering `call_id`.
    pub fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: Some(call_id.into()),
        }
    }

    /// The message in OpenAI chat-completions JSON (tool calls with ids,
    /// arguments as a JSON string), as SFT corpora expect.
    pub fn to_openai_json(&self) -> serde_json::Value {
        let mut m = serde_json::json!({ "role": self.role, "content": self.content });
        if !self.tool_calls.is_empty() {
            m["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id,
                        "type": "function",
                        "function": { "name": c.name, "arguments": c.arguments.to_string() },
                    })
                })
                .collect();
        }
        if let Some(id) = &self.tool_call_id {
            m["tool_call_id"] = serde_json::Value::String(id.clone());
        }
        m
    }
}

/// Token usage of one model call, from the server's usage fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
    /// Of the prompt tokens, those read from the server's prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Of the prompt tokens, those written to the server's prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    /// Cost in USD from the price table; 0 when the model is unpriced.
    #[serde(default)]
    pub cost_usd: f64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// Accumulates another call's usage.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.cost_usd += other.cost_usd;
    }
}

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
    fn system_prompt_addendum(&self) -> Option<String> {
        None
    }

    /// Releases resources (e.g. stops a local server this policy started).
    async fn shutdown(&mut self) {}
}
