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

pub mod audit;
pub mod loop_breaker;
pub mod prompt;
pub mod review;
pub mod trajectory;

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::error::Retryable;
use crate::gate::{GateRun, Verifier};
use crate::model::{EpisodeInfo, Message, ModelError, Policy, Usage};
use crate::sandbox::{Sandbox, SandboxError, Workspace};
use crate::tools::{self, ToolContext};
use loop_breaker::{LoopBreaker, NudgeKind, Verdict};
use review::Said;
pub use trajectory::{Attempt, Budget, EndReason, Event, Outcome, Trajectory};

/// Action-less replies with the same text, in a row, that end an attempt.
const DEGENERATE_REPEATS: u32 = 3;

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

/// The trajectory so far, refreshed after the baseline, after every step
/// and after every attempt, so that a run that is interrupted (Ctrl-C) or
/// fails half-way still saves every turn it made. With an audit log, every
/// event is also appended, as it happens, to a hash-chained JSONL file
/// outside the sandbox ([`audit::AuditLog`]).
#[derive(Debug, Default)]
pub struct Progress {
    state: std::sync::Mutex<(Option<Trajectory>, Option<Attempt>)>,
    audit: Option<std::sync::Mutex<AuditState>>,
}

/// What has been appended to the audit log so far.
#[derive(Debug)]
struct AuditState {
    log: audit::AuditLog,
    attempt: u32,
    events: usize,
    attempts_closed: usize,
    baseline: bool,
}

impl Progress {
    /// A recorder with nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder that also appends every event to `log`.
    pub fn with_audit(log: audit::AuditLog) -> Self {
        Self {
            state: Default::default(),
            audit: Some(std::sync::Mutex::new(AuditState {
                log,
                attempt: 0,
                events: 0,
                attempts_closed: 0,
                baseline: false,
            })),
        }
    }

    fn append(st: &mut AuditState, kind: &str, payload: serde_json::Value) {
        if let Err(e) = st.log.append(kind, &payload) {
            tracing::warn!(error = %e, "cannot append to the audit log");
        }
    }

    fn checkpoint(&self, traj: &Trajectory) {
        if let Ok(mut g) = self.state.lock() {
            *g = (Some(traj.clone()), None);
        }
        let Some(m) = &self.audit else { return };
        let Ok(mut st) = m.lock() else { return };
        if !st.baseline {
            st.baseline = true;
            let head = serde_json::json!({
                "task": traj.task, "repo": traj.repo, "test_cmd": traj.test_cmd,
                "sandbox": traj.sandbox, "engine_version": traj.engine_version,
                "masked": traj.masked,
            });
            Self::append(&mut st, "start", head);
        }
        if let Some(b) = &traj.baseline
            && st.attempts_closed == 0
            && traj.attempts.is_empty()
        {
            Self::append(&mut st, "baseline", serde_json::json!(b));
        }
        while st.attempts_closed < traj.attempts.len() {
            let a = &traj.attempts[st.attempts_closed];
            // Events of the attempt not appended step by step (a model
            // failure, the last step) go first.
            let from = if st.attempt == a.index { st.events } else { 0 };
            for ev in a.events.iter().skip(from) {
                Self::append(
                    &mut st,
                    "event",
                    serde_json::json!({"attempt": a.index, "event": ev}),
                );
            }
            let end = serde_json::json!({
                "attempt": a.index, "gate": a.gate, "patch": a.patch,
                "dropped": a.dropped, "flags": a.flags, "steps": a.steps,
                "ended": a.ended,
            });
            Self::append(&mut st, "attempt_end", end);
            st.attempts_closed += 1;
            st.attempt = 0;
            st.events = 0;
        }
    }

    fn step(&self, attempt: &Attempt) {
        if let Ok(mut g) = self.state.lock() {
            g.1 = Some(attempt.clone());
        }
        let Some(m) = &self.audit else { return };
        let Ok(mut st) = m.lock() else { return };
        if st.attempt != attempt.index {
            st.attempt = attempt.index;
            st.events = 0;
        }
        let from = st.events;
        for ev in attempt.events.iter().skip(from) {
            Self::append(
                &mut st,
                "event",
                serde_json::json!({"attempt": attempt.index, "event": ev}),
            );
        }
        st.events = attempt.events.len();
    }

    /// Ends the audit log with the outcome and the sha256 of the saved
    /// trajectory file; returns the log's final hash (`None` without a
    /// log).
    pub fn finish_audit(&self, traj: &Trajectory, trajectory_sha256: &str) -> Option<String> {
        let m = self.audit.as_ref()?;
        self.checkpoint(traj);
        let mut st = m.lock().ok()?;
        let end = serde_json::json!({
            "outcome": traj.outcome.as_str(), "flags": traj.flags,
            "patch": traj.patch, "aborted": traj.aborted,
            "budget": traj.budget,
        });
        Self::append(&mut st, "outcome", end);
        st.log.finish(trajectory_sha256).ok()
    }

    /// The trajectory as far as it got, with the attempt in progress
    /// appended, marked `aborted` with `why`. `None` before the baseline
    /// test run has started.
    pub fn snapshot(&self, why: &str) -> Option<Trajectory> {
        let g = self.state.lock().ok()?;
        let mut traj = g.0.clone()?;
        if let Some(a) = &g.1 {
            traj.usage.add(&a.usage);
            traj.attempts.push(a.clone());
        }
        traj.outcome = Outcome::GateHeld;
        traj.patch.clear();
        traj.aborted = Some(why.to_string());
        traj.wall_s = (Utc::now() - traj.started_at).as_seconds_f64();
        Some(traj)
    }
}

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
    pub policy: Option<&'a crate::gate::policy::PatchPolicy>,
    /// The approval policy and mode for `run` (`None`: no approval step).
    pub approval: Option<(
        &'a crate::tools::approval::ApprovalPolicy,
        crate::tools::approval::ApprovalMode,
    )>,
    /// Removes secrets from every tool result and gate output before the
    /// model (or the trajectory) sees them.
    pub redactor: Option<&'a crate::redact::Redactor>,
    /// Where to mirror the trajectory as it grows (for saving partial runs).
    pub progress: Option<&'a Progress>,
    /// The tools offered: [`tools::Registry::builtin`], plus any registered
    /// at run time (MCP servers).
    pub tools: &'a tools::Registry,
    /// MCP servers whose tools are offered beside the built-in ones.
    pub mcp: Option<&'a crate::mcp::McpHub>,
}

/// Runs the whole loop. `stages` holds one policy, or a small model then a
/// bigger one for escalation. The workspace is left at the verified patch
/// (or reset to the baseline when the gate held).
pub async fn run_episode(
    ep: &Episode<'_>,
    cfg: &EngineConfig,
    stages: &mut [Box<dyn Policy>],
) -> Result<Trajectory, EngineError> {
    let started = Instant::now();
    let tool_schemas = ep.tools.schemas();
    // The text protocol's tool list in the system prompt names the built-in
    // tools; MCP tools get their own section below, which names them and
    // their arguments only (a server's words never reach the system prompt).
    let builtin_schemas = tools::schemas();
    let mcp_section = ep.mcp.and_then(|h| h.prompt_section());
    // The project context is read from the scratch copy before the agent
    // can touch it, redacted like any tool output, and quoted as data.
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
    let build_system = |policy: Option<&dyn Policy>| {
        let mut system = prompt::system_prompt();
        if let Some(add) = policy.and_then(|p| p.system_prompt_addendum(&builtin_schemas)) {
            system.push_str("\n\n");
            system.push_str(&add);
        }
        for add in [&mcp_section, &context_section].into_iter().flatten() {
            system.push_str("\n\n");
            system.push_str(add);
        }
        system
    };
    let system = build_system(stages.first().map(|p| p.as_ref()));
    let mut traj = Trajectory {
        schema_version: 1,
        engine_version: crate::ENGINE_VERSION.to_string(),
        task: ep.task.clone(),
        repo: ep.repo_label.clone(),
        test_cmd: ep.verifier.describe(),
        sandbox: ep.sandbox.kind().to_string(),
        system_prompt: system.clone(),
        tools: tool_schemas.clone(),
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
        project_context: project.map(|(meta, _)| meta),
    };

    if let Some(p) = ep.progress {
        p.checkpoint(&traj);
    }
    tracing::info!(test_cmd = %traj.test_cmd, "baseline test run");
    emit(ep, cfg, Live::BaselineStart);
    let t0 = Instant::now();
    let baseline = ep
        .verifier
        .check(ep.sandbox, ep.workspace, "", None)
        .await?;
    let baseline_passed = baseline.passed;
    emit(
        ep,
        cfg,
        Live::Baseline {
            passed: baseline_passed,
            wall_ms: t0.elapsed().as_millis() as u64,
        },
    );
    traj.baseline = Some(baseline.clone());
    if let Some(p) = ep.progress {
        p.checkpoint(&traj);
    }
    if baseline_passed {
        traj.outcome = Outcome::AlreadyPassing;
        traj.wall_s = started.elapsed().as_secs_f64();
        return Ok(traj);
    }

    let info = EpisodeInfo {
        tools: tool_schemas.clone(),
    };
    let ctx = ToolContext {
        sandbox: ep.sandbox,
        guards: tools::Guards {
            policy: ep.policy,
            approval: ep.approval,
        },
        output_limit: cfg.output_limit,
        run_timeout: cfg.run_timeout,
        max_run_timeout: cfg.max_run_timeout,
    };
    let mut previous: Option<(String, GateRun)> = None;
    let mut index = 0;
    let stage_count = stages.len();
    // Why the last attempt was cut short, for the next one's first message.
    let mut cut_short: Option<String> = None;
    'stages: for (stage_no, policy) in stages.iter_mut().enumerate() {
        let mut stage_system = system.clone();
        if stage_no > 0 {
            stage_system = build_system(Some(policy.as_ref()));
        }
        for _ in 0..cfg.max_attempts {
            if let Some(b) = budget_spent(cfg, started, traj_tokens(&traj.usage)) {
                tracing::info!(budget = b.as_str(), "run budget spent; no further attempt");
                traj.budget = Some(b);
                break 'stages;
            }
            index += 1;
            crate::sandbox::blocking(|| ep.workspace.reset())?;
            let mut first = prompt::task_message(
                &ep.task,
                &traj.test_cmd,
                &baseline,
                previous.as_ref().map(|(d, r)| (d.as_str(), r)),
                ep.workspace.masked(),
            );
            let mut hotter = None;
            if let Some(why) = cut_short.take() {
                first.push_str(&format!(
                    "\n\nNote from the harness: the previous attempt was stopped early because {why}. This attempt starts fresh from the original repository. Do something different."
                ));
                hotter = policy.raise_temperature();
            }
            let clock = Clock {
                started,
                tokens_before: traj_tokens(&traj.usage),
            };
            let result = run_attempt(
                ep,
                cfg,
                &ctx,
                &info,
                policy.as_mut(),
                index,
                &stage_system,
                first,
                &baseline,
                clock,
                hotter,
            )
            .await?;
            let mut attempt = match result {
                Ok(a) => a,
                Err(AttemptAbort { attempt, error }) => {
                    traj.usage.add(&attempt.usage);
                    traj.attempts.push(*attempt);
                    crate::sandbox::blocking(|| ep.workspace.reset())?;
                    // A refused first call is a setup problem (bad key, wrong
                    // model name): say so rather than quietly escalating.
                    let setup = matches!(error, ModelError::Config(_) | ModelError::Rejected(_))
                        && index == 1;
                    if !setup && stage_no + 1 < stage_count {
                        // The small model's server died or broke its wire
                        // format: that is exactly when the big one should
                        // take over. The attempt keeps the error event.
                        tracing::warn!(%error, "model failed; escalating");
                        continue 'stages;
                    }
                    traj.aborted = Some(error.to_string());
                    traj.wall_s = started.elapsed().as_secs_f64();
                    if setup {
                        return Err(error.into());
                    }
                    break 'stages;
                }
            };
            traj.usage.add(&attempt.usage);
            let gate = attempt.gate.clone();
            let patch = attempt.patch.clone();
            let model = attempt.model.clone();
            let ended = attempt.ended;
            if let Some(e) = ended.filter(|e| e.degenerate()) {
                cut_short = Some(cut_short_reason(e, &attempt));
            }
            if gate.as_ref().is_some_and(|g| g.passed) && patch.trim().is_empty() {
                // Nothing changed, yet the tests now pass: the baseline
                // failure did not reproduce. There is no fix to claim.
                attempt.events.push(Event::Note {
                    step: attempt.steps,
                    text: NO_CHANGE_PASS.into(),
                });
                traj.attempts.push(attempt);
                crate::sandbox::blocking(|| ep.workspace.reset())?;
                traj.outcome = Outcome::AlreadyPassing;
                traj.wall_s = started.elapsed().as_secs_f64();
                return Ok(traj);
            }
            traj.attempts.push(attempt);
            if let Some(p) = ep.progress {
                p.checkpoint(&traj);
            }
            match gate {
                Some(g) if g.passed => {
                    // A pass with any cheat finding, in this attempt's
                    // patch or in any attempt's commands, is suspicious:
                    // never verified, whatever the tests said.
                    let flags = episode_flags(&traj);
                    traj.patch = patch;
                    traj.verified_by = Some(model);
                    traj.wall_s = started.elapsed().as_secs_f64();
                    if flags.is_empty() {
                        traj.outcome = Outcome::Verified;
                    } else {
                        traj.outcome = Outcome::Suspicious;
                        traj.flags = flags;
                    }
                    return Ok(traj);
                }
                Some(g) => previous = Some((patch, g)),
                None => {}
            }
            match ended {
                Some(EndReason::WallBudget) => {
                    traj.budget = Some(Budget::Wall);
                    break 'stages;
                }
                Some(EndReason::TokenBudget) => {
                    traj.budget = Some(Budget::Tokens);
                    break 'stages;
                }
                Some(EndReason::UserQuit) => {
                    traj.aborted = Some(review::QUIT.into());
                    break 'stages;
                }
                _ => {}
            }
        }
    }
    crate::sandbox::blocking(|| ep.workspace.reset())?;
    traj.outcome = Outcome::GateHeld;
    traj.wall_s = started.elapsed().as_secs_f64();
    Ok(traj)
}

/// The lines a unified diff adds (without their `+`), one per line.
fn added_lines(patch: &str) -> String {
    patch
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| &l[1..])
        .collect::<Vec<_>>()
        .join("\n")
}

/// Redacts a gate run's output (it is shown to the model and saved).
fn redact_gate(ep: &Episode<'_>, g: &mut GateRun) {
    if let Some(r) = ep.redactor
        && let std::borrow::Cow::Owned(clean) = r.redact(&g.output)
    {
        g.output = clean;
    }
}

/// Cheat findings of the episode so far: the last attempt's patch, and
/// the commands and reads of every attempt (history mining in attempt 1
/// taints a pass in attempt 2).
fn episode_flags(traj: &Trajectory) -> Vec<String> {
    use crate::gate::detect::{GIT_HISTORY, HIDDEN_TEST_READ, NETWORK};
    let n = traj.attempts.len();
    let mut flags = traj
        .attempts
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            a.flags.iter().filter(move |f| {
                // Patch findings of a rejected earlier attempt died with
                // its patch; command findings never do.
                i + 1 == n
                    || [GIT_HISTORY, HIDDEN_TEST_READ, NETWORK]
                        .iter()
                        .any(|c| f.starts_with(&format!("{c}:")))
            })
        })
        .cloned()
        .collect::<Vec<_>>();
    flags.sort();
    flags.dedup();
    flags
}

/// Runs the cheat detectors over one finished attempt: its patch and its
/// `run` commands and `read_file` paths.
fn attempt_flags(a: &Attempt) -> Vec<String> {
    let mut cmds = vec![];
    let mut reads = vec![];
    for ev in &a.events {
        if let Event::ToolCall { call, .. } = ev {
            let arg = |k: &str| {
                call.arguments
                    .get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            match call.name.as_str() {
                "run" => cmds.extend(arg("command")),
                "read_file" | "ls" => reads.extend(arg("path")),
                _ => {}
            }
        }
    }
    let mut flags: Vec<String> = crate::gate::detect::detect_patch(&a.patch)
        .into_iter()
        .chain(crate::gate::detect::detect_commands(&cmds, &reads, &[]))
        .map(|f| f.to_string())
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// The note recorded when the gate passes on an unchanged repository.
pub const NO_CHANGE_PASS: &str = "the tests passed with no change to the repository (outside ignored files): the baseline failure did not reproduce, so the tests are flaky or depend on the environment; there is no patch to verify, and the outcome is already_passing";

/// Tokens counted against `--max-tokens`.
fn traj_tokens(u: &Usage) -> u64 {
    u.prompt_tokens + u.completion_tokens
}

/// When the run started and what earlier attempts spent.
#[derive(Debug, Clone, Copy)]
struct Clock {
    started: Instant,
    tokens_before: u64,
}

/// The budget spent, if any: wall time first.
fn budget_spent(cfg: &EngineConfig, started: Instant, tokens: u64) -> Option<Budget> {
    if cfg.max_wall.is_some_and(|w| started.elapsed() >= w) {
        return Some(Budget::Wall);
    }
    if cfg.max_tokens.is_some_and(|t| tokens >= t) {
        return Some(Budget::Tokens);
    }
    None
}

/// Says, for the next attempt's first message, why `a` was cut short.
fn cut_short_reason(e: EndReason, a: &Attempt) -> String {
    let last_call = a.events.iter().rev().find_map(|ev| match ev {
        Event::ToolCall { call, .. } => Some(format!(
            "`{} {}`",
            call.name,
            loop_breaker::canonical(&call.arguments)
                .chars()
                .take(120)
                .collect::<String>()
        )),
        _ => None,
    });
    let call = last_call.unwrap_or_else(|| "the same call".into());
    match e {
        EndReason::Stuck => {
            format!("it kept making the call {call} after being told its result would not change")
        }
        EndReason::EmptyReply => "its replies were empty".into(),
        EndReason::RepeatedReply => {
            "it sent the same reply, with no valid tool call, again and again".into()
        }
        EndReason::AbsurdArguments => {
            format!("the call {call} had absurd arguments")
        }
        EndReason::FormatErrors => "too many of its replies had no valid tool call".into(),
        other => format!("it ended with `{}`", other.as_str()),
    }
}

struct AttemptAbort {
    attempt: Box<Attempt>,
    error: ModelError,
}

fn empty_attempt(index: u32, model: String) -> Attempt {
    Attempt {
        index,
        model,
        steps: 0,
        submitted: false,
        messages: vec![],
        events: vec![],
        gate: None,
        patch: String::new(),
        repeated_calls: 0,
        dropped: vec![],
        flags: vec![],
        usage: Usage::default(),
        wall_ms: 0,
        ended: None,
        temperature: None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_attempt(
    ep: &Episode<'_>,
    cfg: &EngineConfig,
    ctx: &ToolContext<'_>,
    info: &EpisodeInfo,
    policy: &mut dyn Policy,
    index: u32,
    system: &str,
    first: String,
    baseline: &GateRun,
    clock: Clock,
    temperature: Option<f32>,
) -> Result<Result<Attempt, AttemptAbort>, SandboxError> {
    let started = Instant::now();
    let mut a = empty_attempt(index, policy.name());
    a.temperature = temperature;
    a.messages = vec![Message::system(system), Message::user(first)];
    if let Some(t) = temperature {
        a.events.push(Event::Note {
            step: 0,
            text: format!("the previous attempt was cut short: sampling at temperature {t}"),
        });
    }
    if let Some(p) = ep.progress {
        p.step(&a);
    }
    emit(
        ep,
        cfg,
        Live::AttemptStart {
            attempt: index,
            model: a.model.clone(),
        },
    );
    let mut breaker = LoopBreaker::with_stuck_after(cfg.stuck_after);
    let mut step = 0;
    let mut format_errors = 0;
    // Degenerate replies: empty ones in a row (2), and the same action-less
    // reply text in a row.
    let mut empty_replies = 0;
    let mut same_reply: (String, u32) = (String::new(), 0);
    let mut ended = EndReason::Steps;
    while step < cfg.max_steps {
        if let Some(b) = budget_spent(
            cfg,
            clock.started,
            clock.tokens_before + traj_tokens(&a.usage),
        ) {
            ended = match b {
                Budget::Wall => EndReason::WallBudget,
                Budget::Tokens => EndReason::TokenBudget,
            };
            a.events.push(Event::Note {
                step,
                text: format!(
                    "the run's {} budget is spent: the attempt ends here",
                    b.as_str()
                ),
            });
            break;
        }
        emit(
            ep,
            cfg,
            Live::Thinking {
                attempt: index,
                step: step + 1,
            },
        );
        // The wall budget also bounds a model call in flight: a slow local
        // model cannot overrun it by a whole generation.
        let call = policy.propose(&a.messages, info);
        let left = cfg
            .max_wall
            .map(|w| w.saturating_sub(clock.started.elapsed()));
        let reply = match left {
            Some(left) => match tokio::time::timeout(left, call).await {
                Ok(r) => r,
                Err(_) => {
                    ended = EndReason::WallBudget;
                    a.events.push(Event::Note {
                        step,
                        text: "the run's wall budget ran out during a model call: the call was abandoned and the attempt ends here".into(),
                    });
                    break;
                }
            },
            None => call.await,
        };
        let proposal = match reply {
            Ok(p) => p,
            Err(e) => {
                a.events.push(Event::ModelError {
                    step: step + 1,
                    error: e.to_string(),
                });
                a.ended = Some(EndReason::ModelError);
                let fatal = !e.is_retryable() || matches!(e, ModelError::Unreachable { .. });
                if fatal {
                    a.wall_ms = started.elapsed().as_millis() as u64;
                    a.repeated_calls = breaker.repeated_calls();
                    emit(
                        ep,
                        cfg,
                        Live::AttemptEnd {
                            attempt: index,
                            ended: EndReason::ModelError,
                        },
                    );
                    return Ok(Err(AttemptAbort {
                        attempt: Box::new(a),
                        error: e,
                    }));
                }
                ended = EndReason::ModelError;
                break;
            }
        };
        a.usage.add(&proposal.usage);
        a.events.push(Event::ModelCall {
            step: step + 1,
            raw: proposal.raw.clone(),
            latency_ms: proposal.latency_ms,
            usage: proposal.usage,
            notes: proposal.notes.clone(),
        });
        let message = proposal.message.filter(|m| !m.tool_calls.is_empty());
        let Some(message) = message else {
            // A botched turn: record it, show the model the expected format.
            step += 1;
            format_errors += 1;
            let error = proposal
                .format_error
                .unwrap_or_else(|| "the reply contained no tool call".into());
            a.events.push(Event::FormatError {
                step,
                error: error.clone(),
            });
            a.messages
                .push(Message::assistant(proposal.raw.clone(), vec![]));
            emit(
                ep,
                cfg,
                Live::Step {
                    attempt: index,
                    step,
                    tool: "(no tool call)".into(),
                    arg: String::new(),
                    tool_ms: 0,
                    error: true,
                    refused: false,
                    tokens: clock.tokens_before + traj_tokens(&a.usage),
                    elapsed: clock.started.elapsed(),
                },
            );
            let raw = proposal.raw.trim();
            empty_replies = if raw.is_empty() { empty_replies + 1 } else { 0 };
            if !raw.is_empty() && raw == same_reply.0 {
                same_reply.1 += 1;
            } else {
                same_reply = (raw.to_string(), 1);
            }
            let degenerate = if empty_replies >= DEGENERATE_REPEATS.min(2) {
                Some(EndReason::EmptyReply)
            } else if same_reply.1 >= DEGENERATE_REPEATS {
                Some(EndReason::RepeatedReply)
            } else if format_errors >= cfg.max_steps.min(10) {
                Some(EndReason::FormatErrors)
            } else {
                None
            };
            if let Some(d) = degenerate {
                ended = d;
                if let Some(p) = ep.progress {
                    p.step(&a);
                }
                break;
            }
            let hint = proposal.format_hint.unwrap_or_else(|| {
                format!(
                    "Your reply did not contain a tool call. Reply with exactly one tool call ({}).",
                    ep.tools.names().join(", ")
                )
            });
            let text = format!("Format error: {error}\n{hint}");
            a.events.push(Event::Nudge {
                step,
                kind: NudgeKind::FormatError,
                text: text.clone(),
            });
            a.messages.push(Message::user(text));
            if let Some(p) = ep.progress {
                p.step(&a);
            }
            continue;
        };
        step += 1;
        a.steps = step;
        a.messages.push(message.clone());
        let mut submitted = false;
        let mut nudge = None;
        let mut stop = None;
        for (i, call) in message.tool_calls.iter().enumerate() {
            if i > 0 {
                let text = "ERROR: ignored: one tool call per step. Make the next call in your next reply.";
                a.messages.push(Message::tool(call.id.clone(), text));
                continue;
            }
            // Degenerate or ignoring a nudge: refused, never run.
            let refusal = match loop_breaker::absurd_arguments(call) {
                Some(why) => {
                    stop = Some(EndReason::AbsurdArguments);
                    Some(format!(
                        "ERROR: refused, not run: absurd arguments ({why}). This attempt ends."
                    ))
                }
                None => match breaker.check(call) {
                    Verdict::Run => None,
                    Verdict::Refuse { text, stuck, .. } => {
                        if stuck {
                            stop = Some(EndReason::Stuck);
                        }
                        Some(text)
                    }
                },
            };
            let refused = refusal.is_some();
            // A person's say before the call runs (`solve --interactive`).
            let said = match refusal {
                Some(_) => None,
                None => {
                    let root = ep.workspace.root();
                    review::ask(cfg.review.as_ref(), ep.approval, root, index, step, call).await
                }
            };
            if let Some(s) = &said {
                a.events.push(s.event(step));
                stop = stop.or(s.ends_attempt());
            }
            let declined = said.as_ref().and_then(Said::withheld);
            let t0 = Instant::now();
            let outcome = match refusal.or_else(|| declined.clone()) {
                Some(text) => tools::ToolOutcome {
                    text,
                    is_error: true,
                    submitted: false,
                },
                None => {
                    let ctx = &said
                        .as_ref()
                        .map_or_else(|| ctx.clone(), |s| s.context(ctx));
                    let mut outcome = ep.tools.dispatch(ctx, call).await;
                    if let Some(r) = ep.redactor
                        && let std::borrow::Cow::Owned(clean) = r.redact(&outcome.text)
                    {
                        outcome.text = clean;
                    }
                    outcome
                }
            };
            let duration_ms = t0.elapsed().as_millis() as u64;
            tracing::debug!(tool = %call.name, error = outcome.is_error, refused, "tool call");
            a.events.push(Event::ToolCall {
                step,
                call: call.clone(),
                result: outcome.text.clone(),
                is_error: outcome.is_error,
                duration_ms,
            });
            if refused {
                a.events.push(Event::Nudge {
                    step,
                    kind: NudgeKind::Refused,
                    text: outcome.text.clone(),
                });
            }
            emit(
                ep,
                cfg,
                Live::Step {
                    attempt: index,
                    step,
                    tool: call.name.clone(),
                    arg: main_arg(call),
                    tool_ms: duration_ms,
                    error: outcome.is_error,
                    refused,
                    tokens: clock.tokens_before + traj_tokens(&a.usage),
                    elapsed: clock.started.elapsed(),
                },
            );
            a.messages
                .push(Message::tool(call.id.clone(), outcome.text.clone()));
            if let Some(text) = said.as_ref().and_then(|s| s.instruction()) {
                a.messages.push(Message::user(text));
            }
            submitted = outcome.submitted;
            if !submitted && !refused && declined.is_none() {
                nudge = breaker.observe(call, outcome.is_error);
            }
        }
        if let Some(p) = ep.progress {
            p.step(&a);
        }
        if submitted {
            a.submitted = true;
            ended = EndReason::Submitted;
            break;
        }
        if let Some(e) = stop {
            ended = e;
            break;
        }
        if let Some((kind, text)) = nudge {
            a.events.push(Event::Nudge {
                step,
                kind,
                text: text.clone(),
            });
            a.messages.push(Message::user(text));
        } else if cfg.max_steps > 5 && step == cfg.max_steps - 2 {
            let text =
                "Two steps left in this attempt. Run the tests if you have not, then submit."
                    .to_string();
            a.events.push(Event::Nudge {
                step,
                kind: NudgeKind::StepsRunningOut,
                text: text.clone(),
            });
            a.messages.push(Message::user(text));
        }
    }
    a.ended = Some(ended);
    emit(
        ep,
        cfg,
        Live::AttemptEnd {
            attempt: index,
            ended,
        },
    );
    a.repeated_calls = breaker.repeated_calls();
    let raw = crate::sandbox::blocking(|| ep.workspace.diff())?;
    a.patch = match ep.policy {
        Some(policy) => {
            let filtered = policy.filter_patch(&raw);
            a.dropped = filtered.dropped.iter().map(|d| d.to_string()).collect();
            for d in &filtered.dropped {
                tracing::info!(path = %d.path, category = %d.category, "patch policy dropped a change");
            }
            filtered.kept
        }
        None => raw,
    };
    // The gate judges exactly this patch on a fresh pristine copy; the
    // same text is what the trajectory, --json, --apply and the corpus get.
    // A run whose budget is spent (or that the user stopped) does not
    // spend more on judging nothing.
    let budget_end = matches!(
        a.ended,
        Some(EndReason::WallBudget | EndReason::TokenBudget | EndReason::UserQuit)
    );
    if !(budget_end && a.patch.trim().is_empty()) {
        emit(ep, cfg, Live::GateStart { attempt: index });
        let t0 = Instant::now();
        let mut gate = ep
            .verifier
            .check(ep.sandbox, ep.workspace, &a.patch, Some(baseline))
            .await?;
        redact_gate(ep, &mut gate);
        emit(
            ep,
            cfg,
            Live::Gate {
                attempt: index,
                passed: gate.passed,
                wall_ms: t0.elapsed().as_millis() as u64,
            },
        );
        a.gate = Some(gate);
    }
    a.flags = attempt_flags(&a);
    // A patch that ADDS a secret (an exfiltration, or a key written into
    // the code) is never verified. Context lines are the user's own file.
    if let Some(r) = ep.redactor
        && matches!(r.redact(&added_lines(&a.patch)), std::borrow::Cow::Owned(_))
    {
        a.flags
            .push("secret_in_patch: the patch contains text that looks like a secret".into());
    }
    a.wall_ms = started.elapsed().as_millis() as u64;
    Ok(Ok(a))
}
