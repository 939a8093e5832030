//! One attempt: steps until the model submits, the steps or a budget run
//! out, or the attempt turns degenerate; then the gate judges its patch.

use std::time::Instant;

use super::job::Episode;
use super::loop_breaker;
use super::step::{StepEnd, Steps};
use super::trajectory::{Attempt, Budget, EndReason, Event};
use super::{EngineConfig, Live, emit};
use crate::gate::GateRun;
use crate::model::{EpisodeInfo, Message, ModelError, Policy, Usage};
use crate::sandbox::SandboxError;
use crate::tools::ToolContext;

/// When the run started and what earlier attempts spent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    /// The run's start.
    pub(super) started: Instant,
    /// Tokens spent by earlier attempts.
    pub(super) tokens_before: u64,
}

impl Clock {
    /// Tokens spent in the run so far, this attempt's `usage` included.
    pub(super) fn tokens(&self, usage: &Usage) -> u64 {
        self.tokens_before + tokens(usage)
    }
}

/// Tokens counted against `--max-tokens`.
pub(super) fn tokens(u: &Usage) -> u64 {
    u.prompt_tokens + u.completion_tokens
}

/// The budget spent, if any: wall time first.
pub(super) fn budget_spent(cfg: &EngineConfig, started: Instant, tokens: u64) -> Option<Budget> {
    if cfg.max_wall.is_some_and(|w| started.elapsed() >= w) {
        return Some(Budget::Wall);
    }
    if cfg.max_tokens.is_some_and(|t| tokens >= t) {
        return Some(Budget::Tokens);
    }
    None
}

/// What every step of an attempt works with.
pub(super) struct Turn<'a> {
    /// The episode.
    pub(super) ep: &'a Episode<'a>,
    /// Its limits.
    pub(super) cfg: &'a EngineConfig,
    /// Where the tools act.
    pub(super) ctx: &'a ToolContext<'a>,
    /// What the model is told about the episode.
    pub(super) info: &'a EpisodeInfo,
    /// The run's clock.
    pub(super) clock: Clock,
}

/// How an attempt failed.
#[derive(Debug)]
pub(super) enum AttemptFailure {
    /// The sandbox broke: the episode cannot go on.
    Sandbox(SandboxError),
    /// The model failed for good; the attempt as far as it got.
    Model {
        /// The attempt, ended `model_error`.
        attempt: Box<Attempt>,
        /// The model's error.
        error: ModelError,
    },
}

impl From<SandboxError> for AttemptFailure {
    fn from(e: SandboxError) -> Self {
        AttemptFailure::Sandbox(e)
    }
}

/// How attempt number `index` starts.
pub(super) struct AttemptStart<'s> {
    /// 1-based attempt number.
    pub(super) index: u32,
    /// The stage's system prompt.
    pub(super) system: &'s str,
    /// The first user message.
    pub(super) first: String,
    /// The sampling temperature raised after a cut-short attempt.
    pub(super) temperature: Option<f32>,
}

/// Runs one attempt from the baseline workspace: steps, then the gate on
/// its (policy-filtered) patch.
pub(super) async fn run_attempt(
    t: &Turn<'_>,
    policy: &mut dyn Policy,
    start: AttemptStart<'_>,
    baseline: &GateRun,
) -> Result<Attempt, AttemptFailure> {
    let (ep, cfg) = (t.ep, t.cfg);
    let started = Instant::now();
    let index = start.index;
    let mut a = empty_attempt(index, policy.name());
    a.temperature = start.temperature;
    a.messages = vec![Message::system(start.system), Message::user(start.first)];
    if let Some(t) = start.temperature {
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
    let mut steps = Steps::new(cfg.stuck_after);
    let end: Result<EndReason, ModelError> = loop {
        if steps.made >= cfg.max_steps {
            break Ok(EndReason::Steps);
        }
        if let Some(b) = budget_spent(cfg, t.clock.started, t.clock.tokens(&a.usage)) {
            a.events.push(Event::Note {
                step: steps.made,
                text: format!(
                    "the run's {} budget is spent: the attempt ends here",
                    b.as_str()
                ),
            });
            break Ok(match b {
                Budget::Wall => EndReason::WallBudget,
                Budget::Tokens => EndReason::TokenBudget,
            });
        }
        match steps.step(t, policy, &mut a).await {
            StepEnd::Next => {}
            StepEnd::End(why) => break Ok(why),
            StepEnd::Fatal(e) => break Err(e),
        }
    };
    let ended = *end.as_ref().unwrap_or(&EndReason::ModelError);
    a.ended = Some(ended);
    emit(
        ep,
        cfg,
        Live::AttemptEnd {
            attempt: index,
            ended,
        },
    );
    a.repeated_calls = steps.repeated_calls();
    // A model that failed for good leaves nothing to judge.
    let judged = match &end {
        Ok(_) => judge(t, &mut a, baseline).await,
        Err(_) => Ok(()),
    };
    a.wall_ms = started.elapsed().as_millis() as u64;
    judged?;
    match end {
        Ok(_) => Ok(a),
        Err(error) => Err(AttemptFailure::Model {
            attempt: Box::new(a),
            error,
        }),
    }
}

/// The attempt's patch (what the patch policy keeps of the workspace's
/// diff), the gate's verdict on it, and the cheat detectors' findings.
async fn judge(t: &Turn<'_>, a: &mut Attempt, baseline: &GateRun) -> Result<(), SandboxError> {
    let (ep, cfg) = (t.ep, t.cfg);
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
        emit(ep, cfg, Live::GateStart { attempt: a.index });
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
                attempt: a.index,
                passed: gate.passed,
                wall_ms: t0.elapsed().as_millis() as u64,
            },
        );
        a.gate = Some(gate);
    }
    a.flags = attempt_flags(a);
    // A patch that ADDS a secret (an exfiltration, or a key written into
    // the code) is never verified. Context lines are the user's own file.
    if let Some(r) = ep.redactor
        && matches!(r.redact(&added_lines(&a.patch)), std::borrow::Cow::Owned(_))
    {
        a.flags
            .push("secret_in_patch: the patch contains text that looks like a secret".into());
    }
    Ok(())
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
pub(super) fn redact_gate(ep: &Episode<'_>, g: &mut GateRun) {
    if let Some(r) = ep.redactor
        && let std::borrow::Cow::Owned(clean) = r.redact(&g.output)
    {
        g.output = clean;
    }
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

/// Says, for the next attempt's first message, why `a` was cut short.
pub(super) fn cut_short_reason(e: EndReason, a: &Attempt) -> String {
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
