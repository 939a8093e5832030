//! The loop over policy stages and attempts (the algorithm in the
//! [module docs](super)).

use std::time::Instant;

use super::attempt::{
    AttemptFailure, AttemptStart, Clock, Turn, budget_spent, cut_short_reason, run_attempt, tokens,
};
use super::job::{Episode, SystemPrompt};
use super::prompt;
use super::trajectory::{Budget, EndReason, Event, Outcome, Trajectory};
use super::{EngineConfig, EngineError, Live, NO_CHANGE_PASS, emit};
use crate::gate::GateRun;
use crate::model::{EpisodeInfo, ModelError, Policy};
use crate::tools::{self, ToolContext};

/// Runs the whole loop. `stages` holds one policy, or a small model then a
/// bigger one for escalation. The workspace is left at the verified patch
/// (or reset to the baseline when the gate held).
pub async fn run_episode(
    ep: &Episode<'_>,
    cfg: &EngineConfig,
    stages: &mut [Box<dyn Policy>],
) -> Result<Trajectory, EngineError> {
    let started = Instant::now();
    let system = SystemPrompt::gather(ep, cfg);
    let mut traj = system.trajectory(ep, stages.first().map(|p| p.as_ref()));
    drive(ep, cfg, stages, &system, &mut traj, started).await?;
    traj.wall_s = started.elapsed().as_secs_f64();
    Ok(traj)
}

/// The baseline, then the attempts; leaves the outcome in `traj`.
async fn drive(
    ep: &Episode<'_>,
    cfg: &EngineConfig,
    stages: &mut [Box<dyn Policy>],
    system: &SystemPrompt,
    traj: &mut Trajectory,
    started: Instant,
) -> Result<(), EngineError> {
    if let Some(p) = ep.progress {
        p.checkpoint(traj);
    }
    tracing::info!(test_cmd = %traj.test_cmd, "baseline test run");
    emit(ep, cfg, Live::BaselineStart);
    let t0 = Instant::now();
    let baseline = ep
        .verifier
        .check(ep.sandbox, ep.workspace, "", None)
        .await?;
    emit(
        ep,
        cfg,
        Live::Baseline {
            passed: baseline.passed,
            wall_ms: t0.elapsed().as_millis() as u64,
        },
    );
    traj.baseline = Some(baseline.clone());
    if let Some(p) = ep.progress {
        p.checkpoint(traj);
    }
    if baseline.passed {
        traj.outcome = Outcome::AlreadyPassing;
        return Ok(());
    }

    let info = EpisodeInfo {
        tools: traj.tools.clone(),
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
        let stage_system = if stage_no == 0 {
            traj.system_prompt.clone()
        } else {
            system.for_policy(Some(policy.as_ref()))
        };
        for _ in 0..cfg.max_attempts {
            if let Some(b) = budget_spent(cfg, started, tokens(&traj.usage)) {
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
            let mut temperature = None;
            if let Some(why) = cut_short.take() {
                first.push_str(&format!(
                    "\n\nNote from the harness: the previous attempt was stopped early because {why}. This attempt starts fresh from the original repository. Do something different."
                ));
                temperature = policy.raise_temperature();
            }
            let turn = Turn {
                ep,
                cfg,
                ctx: &ctx,
                info: &info,
                clock: Clock {
                    started,
                    tokens_before: tokens(&traj.usage),
                },
            };
            let start = AttemptStart {
                index,
                system: &stage_system,
                first,
                temperature,
            };
            let mut attempt = match run_attempt(&turn, policy.as_mut(), start, &baseline).await {
                Ok(a) => a,
                Err(AttemptFailure::Sandbox(e)) => return Err(e.into()),
                Err(AttemptFailure::Model { attempt, error }) => {
                    traj.usage.add(&attempt.usage);
                    traj.attempts.push(*attempt);
                    crate::sandbox::blocking(|| ep.workspace.reset())?;
                    // A refused first call is a setup problem (bad key, wrong
                    // model name): say so rather than quietly escalating.
                    let setup = matches!(error, ModelError::Config(_) | ModelError::Rejected(_))
                        && index == 1;
                    if setup {
                        return Err(error.into());
                    }
                    if stage_no + 1 < stage_count {
                        // The small model's server died or broke its wire
                        // format: that is exactly when the big one should
                        // take over. The attempt keeps the error event.
                        tracing::warn!(%error, "model failed; escalating");
                        continue 'stages;
                    }
                    traj.aborted = Some(error.to_string());
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
                return Ok(());
            }
            traj.attempts.push(attempt);
            if let Some(p) = ep.progress {
                p.checkpoint(traj);
            }
            match gate {
                Some(g) if g.passed => {
                    // A pass with any cheat finding, in this attempt's
                    // patch or in any attempt's commands, is suspicious:
                    // never verified, whatever the tests said.
                    let flags = episode_flags(traj);
                    traj.patch = patch;
                    traj.verified_by = Some(model);
                    if flags.is_empty() {
                        traj.outcome = Outcome::Verified;
                    } else {
                        traj.outcome = Outcome::Suspicious;
                        traj.flags = flags;
                    }
                    return Ok(());
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
                    traj.aborted = Some(super::review::QUIT.into());
                    break 'stages;
                }
                _ => {}
            }
        }
    }
    crate::sandbox::blocking(|| ep.workspace.reset())?;
    traj.outcome = Outcome::GateHeld;
    Ok(())
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
