//! The verification-first loop.
//!
//! 1. The baseline: run the verifier first. If it passes, the outcome is
//!    `already_passing` and nothing else runs.
//! 2. Up to `max_attempts` attempts per policy stage, each an agentic episode
//!    of up to `max_steps` tool calls; each attempt starts from the baseline
//!    and is told how the previous one failed.
//! 3. The gate: after `submit` (or when steps run out) the verifier runs.
//!    Only a passing gate yields `verified` with its patch. A gate that
//!    passes on an unchanged repository means the baseline failure did not
//!    reproduce (flaky tests): the outcome is then `already_passing`, with a
//!    note, never a `verified` empty patch.
//!
//! With escalation, a second policy stage gets the task (and the first
//! stage's last failure) only when the first stage's gate held, or when the
//! first model failed for good mid-run (its server died, its replies stopped
//! decoding). A refused first call (bad key, unknown model) is a setup error
//! and stops the run instead.

//!
//! The rooms of the engine follow the algorithm: [`job`] sets an episode
//! up (what it works on, the system prompt), `run` is the loop over stages
//! and attempts, `attempt` one attempt and its gate, `step` one step.

mod attempt;
pub mod audit;
pub mod job;
pub mod loop_breaker;
mod progress;
pub mod prompt;
pub mod review;
mod run;
mod step;
pub mod trajectory;

use std::time::Duration;

use crate::error::Retryable;
use crate::model::ModelError;
use crate::sandbox::SandboxError;
use crate::tools;
pub use job::{Episode, Job, JobError};
pub use progress::Progress;
pub use run::run_episode;
pub use trajectory::{Attempt, Budget, EndReason, Event, Outcome, Trajectory};

/// What the engine is doing, as it happens, for a live progress display
/// (`solve`, `tiers run`, `factory run`). Sent to [`EngineConfig::observer`].
#[derive(Debug, Clone)]
pub enum Live {
    /// The baseline test run is starting.
    BaselineStart,
    /// The baseline test run ended.
    Baseline {
        /// Whether the tests already pass.
        passed: bool,
        /// Its wall time.
        wall_ms: u64,
    },
    /// An attempt starts (with the model's name).
    AttemptStart {
        /// 1-based attempt number.
        attempt: u32,
        /// The policy acting.
        model: String,
    },
    /// The model is being asked for step `step`.
    Thinking {
        /// Attempt number.
        attempt: u32,
        /// Step about to be made.
        step: u32,
    },
    /// A step ended.
    Step {
        /// Attempt number.
        attempt: u32,
        /// Step number.
        step: u32,
        /// The tool called, or `(no tool call)` for a botched reply.
        tool: String,
        /// The call's main argument (path, command, pattern), cut short.
        arg: String,
        /// The tool's wall time.
        tool_ms: u64,
        /// The tool failed, or the call was refused.
        error: bool,
        /// Refused by the loop-breaker (not run).
        refused: bool,
        /// Tokens spent so far in the run.
        tokens: u64,
        /// Wall time since the run started.
        elapsed: Duration,
    },
    /// The gate is judging the attempt's patch.
    GateStart {
        /// Attempt number.
        attempt: u32,
    },
    /// The gate judged the attempt's patch.
    Gate {
        /// Attempt number.
        attempt: u32,
        /// Whether the tests passed.
        passed: bool,
        /// Its wall time.
        wall_ms: u64,
    },
    /// An attempt ended.
    AttemptEnd {
        /// Attempt number.
        attempt: u32,
        /// Why.
        ended: EndReason,
    },
    /// The episode is over. Sent by runners of many episodes (`tiers
    /// run`, `factory run`) once [`run_episode`] has returned, so a display
    /// can retire the episode's line; `None` when the episode failed.
    EpisodeEnd {
        /// The outcome.
        outcome: Option<Outcome>,
    },
}

/// Receives [`Live`] events with the episode's `repo_label` (several
/// episodes may share one observer); must be cheap (it runs on the
/// engine's task).
#[derive(Clone)]
pub struct Observer(pub std::sync::Arc<ObserverFn>);

/// The function behind an [`Observer`]: `(repo_label, event)`.
pub type ObserverFn = dyn Fn(&str, &Live) + Send + Sync;

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

fn emit(ep: &Episode<'_>, cfg: &EngineConfig, ev: Live) {
    if let Some(o) = &cfg.observer {
        (o.0)(&ep.repo_label, &ev);
    }
}

/// The main argument of a call, for progress lines (first line, cut to 60
/// characters).
pub fn main_arg(call: &crate::model::ToolCall) -> String {
    let v = ["path", "command", "pattern", "query"]
        .iter()
        .find_map(|k| call.arguments.get(*k).and_then(|v| v.as_str()))
        .unwrap_or("");
    let line = v.lines().next().unwrap_or("");
    if line.chars().count() > 60 {
        line.chars().take(57).chain("...".chars()).collect()
    } else {
        line.to_string()
    }
}

/// Limits of one episode.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Tool calls per attempt.
    pub max_steps: u32,
    /// Attempts per policy stage.
    pub max_attempts: u32,
    /// Bytes of tool output shown to the model.
    pub output_limit: usize,
    /// Default timeout of the `run` tool.
    pub run_timeout: Duration,
    /// Largest `timeout_s` the model may ask for.
    pub max_run_timeout: Duration,
    /// Wall-time budget of the whole run, checked between steps.
    pub max_wall: Option<Duration>,
    /// Token budget (prompt + completion) of the whole run, checked between steps.
    pub max_tokens: Option<u64>,
    /// Ignored loop-breaker nudges after which an attempt ends as `stuck`.
    pub stuck_after: u32,
    /// Bytes of the project context file (`AIRGATE.md`/`AGENTS.md`) put
    /// in the system prompt; 0 reads none.
    pub context_bytes: usize,
    /// Live progress receiver.
    pub observer: Option<Observer>,
    /// Asks a person about each tool call before it runs (`solve
    /// --interactive`); `None` runs every call.
    pub review: Option<review::Reviewer>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_steps: 30,
            max_attempts: 5,
            output_limit: tools::DEFAULT_OUTPUT_LIMIT,
            run_timeout: Duration::from_secs(120),
            max_run_timeout: Duration::from_secs(600),
            max_wall: None,
            max_tokens: None,
            stuck_after: loop_breaker::DEFAULT_STUCK_AFTER,
            context_bytes: prompt::DEFAULT_CONTEXT_BYTES,
            observer: None,
            review: None,
        }
    }
}

/// Engine failures: the environment or the model broke, as opposed to the
/// gate holding (which is a normal outcome).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The sandbox or workspace failed.
    #[error("sandbox failure: {0}")]
    Sandbox(#[from] SandboxError),
    /// The model could not be used at all (unreachable, rejected, misconfigured).
    #[error("model failure: {0}")]
    Model(#[from] ModelError),
}

impl EngineError {
    /// The exit code a front end reports for this error: a model's own
    /// answer ([`ModelError::exit_code`]); a failed sandbox is always a broken
    /// environment.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Sandbox(_) => crate::error::exit::ENVIRONMENT,
            EngineError::Model(m) => m.exit_code(),
        }
    }
}

impl Retryable for EngineError {
    fn is_retryable(&self) -> bool {
        match self {
            EngineError::Sandbox(e) => e.is_retryable(),
            EngineError::Model(e) => e.is_retryable(),
        }
    }
}

/// The note recorded when the gate passes on an unchanged repository.
pub const NO_CHANGE_PASS: &str = "the tests passed with no change to the repository (outside ignored files): the baseline failure did not reproduce, so the tests are flaky or depend on the environment; there is no patch to verify, and the outcome is already_passing";
