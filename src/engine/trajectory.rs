//! The trajectory: every turn of an episode, saved as JSON. A botched turn
//! is recorded, never dropped; it is what the factory trains on and what the
//! report's viewer shows.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::loop_breaker::NudgeKind;
use crate::gate::GateRun;
use crate::model::{Message, ToolCall, Usage};

/// The outcomes of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The baseline test run passed; nothing else ran.
    AlreadyPassing,
    /// The gate passed on a patch.
    Verified,
    /// No attempt passed the gate.
    GateHeld,
    /// The tests passed, but a cheat detector fired (see `flags`): never
    /// verified, never applied, never a corpus row by default.
    Suspicious,
}

impl Outcome {
    /// The JSON name (`already_passing`, `verified`, `gate_held`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::AlreadyPassing => "already_passing",
            Outcome::Verified => "verified",
            Outcome::GateHeld => "gate_held",
            Outcome::Suspicious => "suspicious",
        }
    }
}

/// Why an attempt ended (recorded as `ended` on each attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The model called `submit`.
    Submitted,
    /// The step budget of the attempt was spent.
    Steps,
    /// The model ignored the loop-breaker's nudges too many times.
    Stuck,
    /// The model's replies were empty.
    EmptyReply,
    /// The model sent the same reply text (with no valid action) again and again.
    RepeatedReply,
    /// A tool call's arguments were absurd (a 31-year timeout, a 1 MiB argument).
    AbsurdArguments,
    /// Too many replies without a valid action.
    FormatErrors,
    /// The run's wall-clock budget (`--max-wall`) was spent.
    WallBudget,
    /// The run's token budget (`--max-tokens`) was spent.
    TokenBudget,
    /// The model failed (unreachable, broken replies).
    ModelError,
    /// The person stopped the run (`solve --interactive`, quit).
    UserQuit,
}

impl EndReason {
    /// The JSON name (`stuck`, `wall_budget`...).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Submitted => "submitted",
            EndReason::Steps => "steps",
            EndReason::Stuck => "stuck",
            EndReason::EmptyReply => "empty_reply",
            EndReason::RepeatedReply => "repeated_reply",
            EndReason::AbsurdArguments => "absurd_arguments",
            EndReason::FormatErrors => "format_errors",
            EndReason::WallBudget => "wall_budget",
            EndReason::TokenBudget => "token_budget",
            EndReason::ModelError => "model_error",
            EndReason::UserQuit => "user_quit",
        }
    }

    /// The harness cut the attempt short because the model degenerated
    /// (the next attempt starts with a note and, if possible, hotter).
    pub fn degenerate(self) -> bool {
        matches!(
            self,
            EndReason::Stuck
                | EndReason::EmptyReply
                | EndReason::RepeatedReply
                | EndReason::AbsurdArguments
                | EndReason::FormatErrors
        )
    }
}

/// Which run budget ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// `--max-wall` (seconds of wall time).
    Wall,
    /// `--max-tokens` (prompt plus completion tokens).
    Tokens,
}

impl Budget {
    /// The JSON name (`wall`, `tokens`).
    pub fn as_str(self) -> &'static str {
        match self {
            Budget::Wall => "wall",
            Budget::Tokens => "tokens",
        }
    }
}

/// The project context file put in the system prompt (`AIRGATE.md`, else
/// `AGENTS.md`, from the repository root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectContext {
    /// The file's name at the repository root.
    pub file: String,
    /// sha256 of the whole file as found.
    pub sha256: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// Whether only its first `--context-bytes` were used.
    pub truncated: bool,
}

/// One thing that happened during an attempt, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A model call and its raw reply.
    ModelCall {
        /// Step number (1-based) within the attempt.
        step: u32,
        /// Raw reply text.
        raw: String,
        /// Wall time of the call.
        latency_ms: u64,
        /// Token usage.
        usage: Usage,
        /// Harness notes from the backend (e.g. context elision).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
    },
    /// A tool call and what it returned.
    ToolCall {
        /// Step number.
        step: u32,
        /// The call.
        call: ToolCall,
        /// The (truncated) result shown to the model.
        result: String,
        /// Whether it failed.
        is_error: bool,
        /// Wall time.
        duration_ms: u64,
    },
    /// A nudge injected by the loop-breaker or the harness.
    Nudge {
        /// Step number.
        step: u32,
        /// Why.
        kind: NudgeKind,
        /// What the model was told.
        text: String,
    },
    /// A reply with no valid action.
    FormatError {
        /// Step number.
        step: u32,
        /// What was wrong.
        error: String,
    },
    /// A model failure that ended the attempt.
    ModelError {
        /// Step number.
        step: u32,
        /// The error.
        error: String,
    },
    /// A person's decision about a proposed tool call (`solve
    /// --interactive`), recorded before the call's `tool_call` event.
    Review {
        /// Step number.
        step: u32,
        /// `accept`, `skip`, `instruct` or `quit`.
        decision: String,
        /// The instruction typed for `instruct` (given to the model).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instruction: Option<String>,
    },
    /// Something the harness decided that the reader should know about.
    Note {
        /// Step number (the last step of the attempt for gate notes).
        step: u32,
        /// What happened.
        text: String,
    },
}

/// One attempt: an agentic episode ending in a gate run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based, across escalation stages.
    pub index: u32,
    /// The policy that acted (`Policy::name`).
    pub model: String,
    /// Tool calls made (steps).
    pub steps: u32,
    /// Whether the model called `submit` (vs. running out of steps).
    pub submitted: bool,
    /// The whole conversation in neutral form (see `openai_messages`).
    pub messages: Vec<Message>,
    /// Events in order.
    pub events: Vec<Event>,
    /// The gate run that ended the attempt.
    pub gate: Option<GateRun>,
    /// The attempt's diff at gate time.
    pub patch: String,
    /// Calls repeating an earlier identical call.
    pub repeated_calls: u32,
    /// Changes the patch policy dropped before the gate (`path: reason`):
    /// they slipped in through `run` and were never judged or shipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// Cheat detector findings on this attempt (`code: detail`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Usage summed over the attempt.
    pub usage: Usage,
    /// Wall time.
    pub wall_ms: u64,
    /// Why the attempt ended (absent in trajectories older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndReason>,
    /// Sampling temperature the harness raised the model to for this
    /// attempt (after a stuck or degenerate one), when the backend allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

/// A whole episode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trajectory {
    /// Format version of this file.
    pub schema_version: u32,
    /// `airgate` version.
    pub engine_version: String,
    /// Task statement as given to the model.
    pub task: String,
    /// Label of the repo (path or instance id).
    pub repo: String,
    /// The verifier's command.
    pub test_cmd: String,
    /// `local` or `docker`.
    pub sandbox: String,
    /// System prompt in force (addenda included).
    pub system_prompt: String,
    /// Tool schemas offered.
    pub tools: Vec<serde_json::Value>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// The baseline test run.
    pub baseline: Option<GateRun>,
    /// Attempts in order.
    pub attempts: Vec<Attempt>,
    /// Final outcome.
    pub outcome: Outcome,
    /// The verified patch; `""` otherwise.
    pub patch: String,
    /// The model whose patch passed the gate.
    pub verified_by: Option<String>,
    /// Usage over all attempts.
    pub usage: Usage,
    /// Wall time of the whole episode in seconds.
    pub wall_s: f64,
    /// Set when the episode was cut short (Ctrl-C, a model that could not be reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// Why the outcome is `suspicious` (cheat detector findings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Secret-looking files masked from the agent's copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
    /// MCP servers of the run: their tools' sha256 pins, and why any was
    /// stopped mid-run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp: Vec<crate::mcp::ServerRecord>,
    /// The run budget (`--max-wall`, `--max-tokens`) that ended the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// The project context file in the system prompt, if the repo has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_context: Option<ProjectContext>,
}

impl Trajectory {
    /// Tool calls over all attempts.
    pub fn steps(&self) -> u32 {
        self.attempts.iter().map(|a| a.steps).sum()
    }

    /// Repeated calls over all attempts.
    pub fn repeated_calls(&self) -> u32 {
        self.attempts.iter().map(|a| a.repeated_calls).sum()
    }

    /// The verified attempt (or the last one) as OpenAI chat messages, tool
    /// calls and ids included: the SFT view of the episode.
    pub fn openai_messages(&self) -> Vec<serde_json::Value> {
        let attempt = self
            .attempts
            .iter()
            .rev()
            .find(|a| a.gate.as_ref().is_some_and(|g| g.passed))
            .or_else(|| self.attempts.last());
        attempt
            .map(|a| a.messages.iter().map(Message::to_openai_json).collect())
            .unwrap_or_default()
    }

    /// A copy with every string passed through `redactor` (secrets in a
    /// task statement, a model reply, a command line...). A trajectory
    /// whose patch would change is `suspicious` already (the engine flags
    /// `secret_in_patch`), so a verified patch is never altered here.
    pub fn redacted(&self, redactor: &crate::redact::Redactor) -> Self {
        let Ok(mut v) = serde_json::to_value(self) else {
            return self.clone();
        };
        redactor.redact_json(&mut v);
        serde_json::from_value(v).unwrap_or_else(|_| self.clone())
    }

    /// Writes `trajectory.json` into `dir` (created if needed) and returns its path.
    pub fn save(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("trajectory.json");
        let tmp = dir.join(".trajectory.json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Reads a saved trajectory.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read(path)?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }
}
