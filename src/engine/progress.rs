//! The trajectory as it grows, mirrored for partial saves and appended to
//! the audit log.

use chrono::Utc;

use super::audit;
use super::trajectory::{Attempt, Outcome, Trajectory};

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

    pub(super) fn checkpoint(&self, traj: &Trajectory) {
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

    pub(super) fn step(&self, attempt: &Attempt) {
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
