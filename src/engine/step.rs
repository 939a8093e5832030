//! One step of an attempt: ask the model, then run its tool call (or
//! record a botched reply), with the loop-breaker's refusals and nudges.

use std::time::Instant;

use super::attempt::Turn;
use super::loop_breaker::{self, CallVerdict, LoopBreaker, NudgeKind};
use super::review::{self, Said};
use super::trajectory::{Attempt, EndReason, Event};
use super::{Live, emit, main_arg};
use crate::error::Retryable;
use crate::model::{Message, ModelError, Policy, Proposal, ToolCall};
use crate::tools;

/// Action-less replies with the same text, in a row, that end an attempt.
const DEGENERATE_REPEATS: u32 = 3;

/// How a step ended.
pub(super) enum StepEnd {
    /// The attempt goes on.
    Next,
    /// The attempt ends, for this reason.
    End(EndReason),
    /// The model failed for good: the attempt (and this model) stop.
    Fatal(ModelError),
}

/// The state of an attempt's steps: the loop-breaker, the step count and
/// the degenerate-reply counters.
pub(super) struct Steps {
    breaker: LoopBreaker,
    /// Steps made.
    pub(super) made: u32,
    format_errors: u32,
    /// Empty replies in a row.
    empty_replies: u32,
    /// The same action-less reply text, and how often in a row.
    same_reply: (String, u32),
}

impl Steps {
    /// No step made yet.
    pub(super) fn new(stuck_after: u32) -> Self {
        Self {
            breaker: LoopBreaker::with_stuck_after(stuck_after),
            made: 0,
            format_errors: 0,
            empty_replies: 0,
            same_reply: (String::new(), 0),
        }
    }

    /// Calls the loop-breaker saw repeated.
    pub(super) fn repeated_calls(&self) -> u32 {
        self.breaker.repeated_calls()
    }

    /// Makes one step of attempt `a`.
    pub(super) async fn step(
        &mut self,
        t: &Turn<'_>,
        policy: &mut dyn Policy,
        a: &mut Attempt,
    ) -> StepEnd {
        let (ep, cfg) = (t.ep, t.cfg);
        emit(
            ep,
            cfg,
            Live::Thinking {
                attempt: a.index,
                step: self.made + 1,
            },
        );
        // The wall budget also bounds a model call in flight: a slow local
        // model cannot overrun it by a whole generation.
        let call = policy.propose(&a.messages, t.info);
        let left = cfg
            .max_wall
            .map(|w| w.saturating_sub(t.clock.started.elapsed()));
        let reply = match left {
            Some(left) => match tokio::time::timeout(left, call).await {
                Ok(r) => r,
                Err(_) => {
                    a.events.push(Event::Note {
                        step: self.made,
                        text: "the run's wall budget ran out during a model call: the call was abandoned and the attempt ends here".into(),
                    });
                    return StepEnd::End(EndReason::WallBudget);
                }
            },
            None => call.await,
        };
        let mut proposal = match reply {
            Ok(p) => p,
            Err(e) => {
                a.events.push(Event::ModelError {
                    step: self.made + 1,
                    error: e.to_string(),
                });
                let fatal = !e.is_retryable() || matches!(e, ModelError::Unreachable { .. });
                return if fatal {
                    StepEnd::Fatal(e)
                } else {
                    StepEnd::End(EndReason::ModelError)
                };
            }
        };
        a.usage.add(&proposal.usage);
        a.events.push(Event::ModelCall {
            step: self.made + 1,
            raw: proposal.raw.clone(),
            latency_ms: proposal.latency_ms,
            usage: proposal.usage,
            notes: proposal.notes.clone(),
        });
        match proposal.message.take().filter(|m| !m.tool_calls.is_empty()) {
            Some(message) => self.act(t, a, message).await,
            None => self.botched(t, a, proposal),
        }
    }

    /// A reply with no tool call: recorded, and the model shown the
    /// expected format, unless the replies have become degenerate.
    fn botched(&mut self, t: &Turn<'_>, a: &mut Attempt, proposal: Proposal) -> StepEnd {
        let (ep, cfg) = (t.ep, t.cfg);
        self.made += 1;
        self.format_errors += 1;
        let step = self.made;
        let error = proposal
            .format_error
            .unwrap_or_else(|| "the reply contained no tool call".into());
        a.events.push(Event::FormatError {
            step,
            error: error.clone(),
        });
        a.messages
            .push(Message::assistant(proposal.raw.clone(), vec![]));
        live_step(t, a, step, None, 0, true, false);
        let raw = proposal.raw.trim();
        self.empty_replies = if raw.is_empty() {
            self.empty_replies + 1
        } else {
            0
        };
        if !raw.is_empty() && raw == self.same_reply.0 {
            self.same_reply.1 += 1;
        } else {
            self.same_reply = (raw.to_string(), 1);
        }
        let degenerate = if self.empty_replies >= DEGENERATE_REPEATS.min(2) {
            Some(EndReason::EmptyReply)
        } else if self.same_reply.1 >= DEGENERATE_REPEATS {
            Some(EndReason::RepeatedReply)
        } else if self.format_errors >= cfg.max_steps.min(10) {
            Some(EndReason::FormatErrors)
        } else {
            None
        };
        if let Some(d) = degenerate {
            if let Some(p) = ep.progress {
                p.step(a);
            }
            return StepEnd::End(d);
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
            p.step(a);
        }
        StepEnd::Next
    }

    /// Runs the reply's first tool call (unless the loop-breaker refuses
    /// it); any further call is answered with an error, not run.
    async fn act(&mut self, t: &Turn<'_>, a: &mut Attempt, message: Message) -> StepEnd {
        let (ep, cfg) = (t.ep, t.cfg);
        self.made += 1;
        let step = self.made;
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
                None => match self.breaker.check(call) {
                    CallVerdict::Run => None,
                    CallVerdict::Refuse { text, stuck, .. } => {
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
                    review::ask(cfg.review.as_ref(), ep.approval, root, a.index, step, call).await
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
                        .map_or_else(|| t.ctx.clone(), |s| s.context(t.ctx));
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
            live_step(
                t,
                a,
                step,
                Some(call),
                duration_ms,
                outcome.is_error,
                refused,
            );
            a.messages
                .push(Message::tool(call.id.clone(), outcome.text.clone()));
            if let Some(text) = said.as_ref().and_then(|s| s.instruction()) {
                a.messages.push(Message::user(text));
            }
            submitted = outcome.submitted;
            if !submitted && !refused && declined.is_none() {
                nudge = self.breaker.observe(call, outcome.is_error);
            }
        }
        if let Some(p) = ep.progress {
            p.step(a);
        }
        if submitted {
            a.submitted = true;
            return StepEnd::End(EndReason::Submitted);
        }
        if let Some(e) = stop {
            return StepEnd::End(e);
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
        StepEnd::Next
    }
}

/// Reports a finished step to the live display: the call made (`None`
/// for a reply without one), its wall time and how it went.
fn live_step(
    t: &Turn<'_>,
    a: &Attempt,
    step: u32,
    call: Option<&ToolCall>,
    tool_ms: u64,
    error: bool,
    refused: bool,
) {
    emit(
        t.ep,
        t.cfg,
        Live::Step {
            attempt: a.index,
            step,
            tool: call.map_or_else(|| "(no tool call)".into(), |c| c.name.clone()),
            arg: call.map(main_arg).unwrap_or_default(),
            tool_ms,
            error,
            refused,
            tokens: t.clock.tokens(&a.usage),
            elapsed: t.clock.started.elapsed(),
        },
    );
}
